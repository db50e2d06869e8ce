@e2e @metrics
Feature: Metrics scraped by a real Prometheus
  Every server and worker serves /metrics; a Prometheus scrapes them with Hodei's
  alert rules loaded, and its job counters add up to the jobs table.

  # The burst comes first: the counters count since each server started, and a run
  # whose platform is broken fails here at once instead of after Prometheus's start.
  Scenario: Prometheus scrapes the platform and its counters match the jobs table
    Given the platform is running
    When I queue a burst of 20 jobs running "true"
    Then all burst jobs reach state SUCCEEDED within 30 seconds
    Given a Prometheus scraping the platform's servers and workers
    Then Prometheus sees every server and worker up
    And Prometheus has loaded and evaluated the Hodei alert rules
    And Prometheus's job counters match the jobs table
    And no Hodei alert is pending or firing
