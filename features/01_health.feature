@e2e @health
Feature: Platform health
  The database, the schema, the gRPC server and its port all answer.

  Scenario: Every layer of the platform answers
    Given the platform is running
    Then the database answers a query
    And the schema migrations are applied
    And the gRPC health service reports SERVING
    And the server port is listening
