@e2e @throughput
Feature: Throughput

  Scenario: A burst of jobs all succeed and the throughput is measured
    Given the platform is running
    When I queue a burst of 40 jobs running "true"
    Then all burst jobs reach state SUCCEEDED within 30 seconds
    And the throughput in jobs per minute is recorded
