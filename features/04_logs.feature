@e2e @logs
Feature: Logs streamed to the CLI
  The exact stdout and stderr lines of a job reach whoever follows it.

  Scenario: hodei job run prints the job's stdout and stderr lines
    Given the platform is running
    When I run "echo out-one; echo err-one >&2; echo out-two" with the hodei CLI
    Then the CLI exits with code 0
    And the CLI printed on stdout the lines: out-one, out-two
    And the CLI printed on stderr the lines: err-one

  Scenario: SubscribeLogs streams the exact lines and ends with the job
    Given the platform is running
    When I queue a job running "echo alpha; echo beta >&2; echo gamma" while following its logs
    Then the job reaches state SUCCEEDED
    And the log stream received stdout "alpha, gamma" and stderr "beta" and ended
