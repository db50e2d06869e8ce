@e2e @chaos @kills_processes
Feature: Chaos: the platform broken from outside while jobs flow
  Each scenario starts a private platform of its own on the local launcher (its own
  embedded PostgreSQL), so the deployment the other scenarios use is never touched.
  Every job appends its id and attempt to a ledger file, so a command that ran twice
  is caught whatever the tables say.

  Scenario: The server is killed and restarted in the middle of a burst
    Given a private platform for chaos on the local launcher
    When the server is killed and restarted in the middle of a burst of 200 jobs
    Then no job was lost, none ran twice and no client retry made a duplicate
    And no process logged a traceback

  Scenario: The embedded database is restarted in the middle of a burst
    Given a private platform for chaos on the local launcher
    When the embedded database is restarted in the middle of a burst of 200 jobs
    Then no job was lost, none ran twice and no client retry made a duplicate
    And no process logged a traceback
