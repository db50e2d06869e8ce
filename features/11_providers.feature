@e2e @providers
Feature: Workers provisioned on demand by the Docker provider
  A server with a providers file starts worker containers itself when jobs wait and no
  worker matches them, and removes them once idle. Containers launcher only: the others
  skip these scenarios, saying why.

  Scenario: A job with no worker for it gets a container worker, which goes when idle
    Given a server that provisions Docker workers on demand
    When I queue a job for the provisioned pool running "echo provisioned"
    Then the job succeeds on a worker the Docker provider started
    And the provisioned worker's container is gone after its idle TTL

  Scenario: A provider whose image is missing is named by hodei-diagnose
    Given a server that provisions Docker workers from a missing image
    When I queue a job for the provisioned pool running "true"
    Then the scaler records a provisioning failure naming the image
    And hodei-diagnose names the failing provisioning
