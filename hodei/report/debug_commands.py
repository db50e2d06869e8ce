"""Commands pointed at the very deployment a report describes: the seed's SQL queries,
`hodei` subcommands and log tails. The password never reaches them."""

from __future__ import annotations

import shlex

from hodei.redaction import redact

SEED_QUERIES = [
    "SELECT id, state, attempts, created_at FROM jobs ORDER BY created_at DESC LIMIT 5;",
    "SELECT jq.job_id, jq.enqueued_at, j.state FROM job_queue jq JOIN jobs j ON jq.job_id = j.id;",
    "SELECT id, state, last_heartbeat, current_job_id FROM workers;",
    "SELECT event_type, aggregate_id, actor, occurred_at FROM domain_events "
    "ORDER BY occurred_at DESC LIMIT 10;",
    "SELECT server_id, dispatcher_enabled, dispatcher_last_cycle_at, dispatcher_cycles, "
    "outbox_last_publish_at, heartbeat_at FROM server_status;",
    "SELECT count(*) FILTER (WHERE published_at IS NULL) AS unpublished, "
    "min(created_at) FILTER (WHERE published_at IS NULL) AS oldest FROM outbox_events;",
]


def debug_commands(
    database_url: str | None, server: str | None, log_paths: list[str] | None = None
) -> list[str]:
    """Commands pointed at this very deployment; the password is never printed."""
    cmds: list[str] = []
    if database_url:
        url = redact(database_url)
        note = "# password redacted: export PGPASSWORD first" if url != database_url else ""
        if note:
            cmds.append(note)
        for q in SEED_QUERIES:
            cmds.append(f"psql {shlex.quote(url)} -c {shlex.quote(q)}")
    if server:
        for sub in ("job list", "workers", "queue"):
            cmds.append(f"hodei {sub} --server {server}")
        diag = f"hodei-diagnose --server {server} --canary"
        if database_url:
            diag += f" --database-url {shlex.quote(redact(database_url))}"
        cmds.append(diag)
    for path in log_paths or []:
        cmds.append(f"tail -f {shlex.quote(path)} | grep -E 'dispatcher|ERROR|UNAVAILABLE'")
    return cmds


#: Which of the seed's queries go with a finding's actions (indexes into SEED_QUERIES),
#: and the log words to look for.
_QUERIES = {
    "DISPATCHER": (4, 1),
    "OUTBOX": (5, 4),
    "WORKER": (2,),
    "PENDING": (1, 0),
    "QUEUE": (1,),
    "JOB": (0, 2),
    "LOGS": (0,),
    "EVENTS": (3,),
}
_GREP = {
    "DISPATCHER": "dispatcher|ERROR",
    "OUTBOX": "outbox|relay|ERROR",
    "GRPC": "UNAVAILABLE|GOAWAY|h2|Stream removed",
    "LOGS": "log|batch|ERROR",
    "WORKER": "worker|heartbeat|ERROR",
}


def commands_for(
    code: str, database_url: str | None, server: str | None, log_paths: list[str] | None = None
) -> list[str]:
    """The exact commands, against this deployment, that go with a finding's recommended
    actions (the seed put them inline: `grep -i "JobController" /tmp/server.log`)."""
    cmds: list[str] = []
    prefix = next((k for k in _QUERIES if k in code), "")
    if database_url:
        url = shlex.quote(redact(database_url))
        for i in _QUERIES.get(prefix, ()):
            cmds.append(f"psql {url} -c {shlex.quote(SEED_QUERIES[i])}")
    words = next((w for k, w in _GREP.items() if k in code), "ERROR")
    logs = [p for p in log_paths or [] if "server" in p.rsplit("/", 1)[-1] or "LOGS" in code]
    for path in (logs or list(log_paths or []))[:2]:
        cmds.append(f"grep -iE {shlex.quote(words)} {shlex.quote(path)} | tail -20")
    if server:
        diag = f"hodei-diagnose --server {server}"
        if database_url:
            diag += f" --database-url {shlex.quote(redact(database_url))}"
        cmds.append(diag)
    return cmds
