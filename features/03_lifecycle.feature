@e2e @lifecycle
Feature: Job lifecycle
  A job goes PENDING -> ASSIGNED -> RUNNING -> SUCCEEDED; every change writes a
  domain event and an outbox row, and the outbox relay publishes them.

  Scenario: A job runs from PENDING to SUCCEEDED
    Given the platform is running
    When I queue a job running "echo lifecycle-ok"
    Then the job reaches state SUCCEEDED
    And the job went through the states PENDING, ASSIGNED, RUNNING, SUCCEEDED
    And the job has left the queue
    And the job's domain events include JobCreated, JobAssigned, JobStarted, JobSucceeded in that order
    And the job has one outbox row per domain event
    And every outbox row of the job is published
