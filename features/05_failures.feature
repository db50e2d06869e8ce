@e2e
Feature: Jobs that do not succeed
  Failure, timeout and cancellation each end in their own final state.

  @failure
  Scenario: A failing command ends FAILED with its exit code
    Given the platform is running
    When I queue a job running "echo about-to-fail; exit 3"
    Then the job reaches state FAILED
    And the job's exit code is 3

  @job_timeout
  Scenario: A job over its timeout ends TIMED_OUT
    Given the platform is running
    When I queue a job running "sleep 30" with a timeout of 1 seconds
    Then the job reaches state TIMED_OUT

  @cancel
  Scenario: Cancelling a running job
    Given the platform is running
    When I queue a job running "sleep 30"
    And the job reaches state RUNNING
    And I cancel the job
    Then the job reaches state CANCELLED
