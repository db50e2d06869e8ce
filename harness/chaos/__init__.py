"""The chaos suite: a real platform broken from outside (SIGKILL, a stopped database,
two replicas) while jobs flow, and what a user would count afterwards: jobs lost,
commands that ran twice, duplicate jobs from client retries, recovery time, tracebacks.

`benchmarks/chaos.py` prints the table, `tests/chaos/` runs the short form in CI, and
the `@chaos` feature shows it in the e2e report. docs/chaos.md says what each figure is.
"""
