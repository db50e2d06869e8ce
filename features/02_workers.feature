@e2e @workers
Feature: Worker registration and heartbeats

  Scenario: Workers are registered, connected and heartbeating
    Given the platform is running
    Then at least 1 worker is connected and READY
    And every connected worker's heartbeat advances
