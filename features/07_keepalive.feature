@e2e @keepalive
Feature: Idle worker streams stay healthy
  The seed deployment logged "h2 protocol error" every 30 s on an idle stream.

  Scenario: An idle worker stream raises no gRPC errors over several keepalive periods
    Given the platform is running
    And the process logs can be scanned
    When the platform stays idle for 3 keepalive periods
    Then no gRPC stream error appears in the server or worker logs
