@e2e @recovery @kills_processes
Feature: Recovery from a lost worker

  Scenario: A worker killed mid-job: the job is retried and finishes
    Given the platform is running
    And the launcher can kill platform processes
    When I queue a job running "sleep 1; echo survived"
    And the job reaches state RUNNING
    And I kill the worker running the job
    And I start a replacement worker
    Then the job reaches state SUCCEEDED
    And the job took 2 attempts
