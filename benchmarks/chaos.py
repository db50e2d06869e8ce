"""Chaos suite: a script that prints figures (not a test; tests/chaos/ runs its short
form in CI).

    .venv/bin/python benchmarks/chaos.py [--profile short|default|both] [--quick]

On this machine only (127.0.0.1, a private embedded PostgreSQL per profile): a server
and 2 workers x 8 slots, broken from outside while bursts of ledger jobs flow:

- a worker SIGKILLed mid-job (--worker-kills times);
- the server SIGKILLed under a burst of --burst jobs and restarted on its port;
- PostgreSQL restarted (fast shutdown, start), and stopped for --outage seconds;
- two server replicas on the same database, clients spread over both.

Each job appends "start/end <job id> <attempt> <worker pid>" to a ledger file, so a
command that ran twice is caught whatever the tables say. Prints one line per trial,
then the table that benchmarks/RESULTS.md and the README quote. `--check` exits 1
when a target is missed: 0 lost, 0 ran twice, 0 duplicates from retries, 0 tracebacks,
worker-kill recovery p50 within 3 heartbeat-miss windows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from harness.chaos import scenarios
from harness.chaos.platform import PROFILES, ChaosPlatform
from harness.chaos.trial import Trial, markdown_table, missed_targets


async def run_profile(profile: str, args: argparse.Namespace) -> tuple[list[Trial], float]:
    platform = await ChaosPlatform.start(profile)
    trials: list[Trial] = []

    def record(trial: Trial) -> None:
        trials.append(trial)
        notes = f"  ({'; '.join(trial.notes)})" if trial.notes else ""
        print(f"  {trial.summary()}{notes}", flush=True)

    try:
        print(f"== profile {profile}: run dir {platform.run_dir}", flush=True)
        for _ in range(args.worker_kills):
            record(await scenarios.worker_kill(platform))
        for _ in range(args.server_kills):
            record(await scenarios.server_kill(platform, args.burst))
        for _ in range(args.db_restarts):
            record(await scenarios.database_restart(platform, args.burst))
        for _ in range(args.db_outages):
            record(await scenarios.database_outage(platform, args.burst, args.outage))
        for _ in range(args.replica_runs):
            record(await scenarios.two_replicas(platform, args.burst))
        return trials, platform.miss_window_s()
    finally:
        await platform.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=[*PROFILES, "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="the short form CI runs")
    parser.add_argument("--worker-kills", type=int, default=5)
    parser.add_argument("--server-kills", type=int, default=3)
    parser.add_argument("--db-restarts", type=int, default=3)
    parser.add_argument("--db-outages", type=int, default=2)
    parser.add_argument("--replica-runs", type=int, default=2)
    parser.add_argument("--burst", type=int, default=1000, help="jobs per burst")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL is down")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.worker_kills, args.server_kills, args.db_restarts = 2, 1, 1
        args.db_outages, args.replica_runs, args.burst, args.outage = 1, 1, 300, 3.0
    logging.basicConfig(level=logging.WARNING)
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    began = time.monotonic()
    trials: list[Trial] = []
    missed: list[str] = []
    for profile in profiles:
        got, window = asyncio.run(run_profile(profile, args))
        trials += got
        missed += missed_targets(got, window)
    print(f"\n{len(trials)} trials in {time.monotonic() - began:.0f} s\n")
    print(markdown_table(trials))
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
