"""What one comparison run measured, as the printed tables, the goal checks of issue 16
and the JSON document (--json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any

from bench_platform import pct

SIDES = ("hodei", "procrastinate")
#: The latency series: each side's (issue 16's definitions), and procrastinate's to the
#: point Hodei's figure ends at (its task's `true` started, not the task's first line).
LATENCY_SERIES = (*SIDES, "procrastinate_spawned")
LABELS = {"hodei": "Hodei", "procrastinate": "procrastinate"}


@dataclass
class Row:
    """One shape (K worker processes x S slots each), R runs per side."""

    workers: int
    slots: int
    runs: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {side: [] for side in SIDES}
    )

    @property
    def shape(self) -> str:
        return f"{self.workers}x{self.slots}"

    def rate(self, side: str) -> float:
        return median(run["jobs_per_s"] for run in self.runs[side])

    def ratio(self) -> float:
        return self.rate("hodei") / self.rate("procrastinate")

    def first_start(self, side: str) -> float:
        """Median seconds from the workers' spawn to the first job started."""
        return median(run["first_start_s"] for run in self.runs[side])

    def cpu_ms_per_job(self, side: str, jobs: int) -> tuple[float, float | None]:
        """Median CPU ms per job of the side's own processes, and of PostgreSQL (None
        when the server is not the embedded one)."""
        own = median(run["own_s"] for run in self.runs[side]) * 1000 / jobs
        pg_runs = [run["postgres_s"] for run in self.runs[side] if run["postgres_s"] is not None]
        return own, (median(pg_runs) * 1000 / jobs if pg_runs else None)


@dataclass
class Latency:
    """Idle latency runs: one list of per-job seconds per run and side."""

    shape: str
    runs: dict[str, list[list[float]]] = field(
        default_factory=lambda: {series: [] for series in LATENCY_SERIES}
    )

    def quantile(self, side: str, q: float) -> float:
        """The median over runs of each run's q-th percentile, in seconds."""
        return median(pct(samples, q) for samples in self.runs[side])


@dataclass
class Check:
    goal: str
    value: float
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.goal}: {self.value:.2f} ({self.detail})"


@dataclass
class Comparison:
    jobs: int
    repeat: int
    facts: dict[str, Any]
    rows: list[Row]
    ceiling_runs: list[dict[str, Any]] = field(default_factory=list)
    latency: Latency | None = None

    def ceiling(self) -> float:
        return median(run["jobs_per_s"] for run in self.ceiling_runs)

    def checks(self) -> list[Check]:
        """Issue 16's goals, as ratios computed from this run."""
        worst = min(self.rows, key=Row.ratio)
        best_h = max(self.rows, key=lambda row: row.rate("hodei"))
        best_p = max(self.rows, key=lambda row: row.rate("procrastinate"))
        found = [
            Check(
                "min ratio Hodei/procrastinate over rows >= 1.0",
                worst.ratio(),
                worst.ratio() >= 1.0,
                f"row {worst.shape}",
            ),
            Check(
                "best Hodei / best procrastinate >= 2",
                best_h.rate("hodei") / best_p.rate("procrastinate"),
                best_h.rate("hodei") >= 2 * best_p.rate("procrastinate"),
                f"Hodei {best_h.rate('hodei'):.1f} jobs/s at {best_h.shape}, procrastinate "
                f"{best_p.rate('procrastinate'):.1f} at {best_p.shape}",
            ),
        ]
        if self.ceiling_runs:
            found.append(
                Check(
                    "best Hodei / no-queue ceiling >= 0.7",
                    best_h.rate("hodei") / self.ceiling(),
                    best_h.rate("hodei") >= 0.7 * self.ceiling(),
                    f"{best_h.rate('hodei'):.1f} / {self.ceiling():.1f} jobs/s",
                )
            )
        if self.latency is not None:
            for q in (50, 99):
                hodei = self.latency.quantile("hodei", q)
                peer = self.latency.quantile("procrastinate", q)
                found.append(
                    Check(
                        f"idle latency p{q} Hodei <= procrastinate (ratio <= 1)",
                        hodei / peer,
                        hodei <= peer,
                        f"{hodei * 1000:.2f} ms vs {peer * 1000:.2f} ms",
                    )
                )
        return found

    def render(self) -> str:
        out = [
            f"\n## Throughput: {self.jobs} `true` jobs queued first, jobs/s from the "
            f"workers' spawn to the last success (median of {self.repeat})\n",
            "| worker processes x slots | Hodei | procrastinate | ratio |",
            "|---|---|---|---|",
        ]
        for row in self.rows:
            out.append(
                f"| {row.shape} | {row.rate('hodei'):.1f} | {row.rate('procrastinate'):.1f} "
                f"| {row.ratio():.2f} |"
            )
        if self.ceiling_runs:
            concurrency = self.ceiling_runs[0]["concurrency"]
            out.append(
                f"| no-queue ceiling (1 asyncio process, concurrency {concurrency}) "
                f"| {self.ceiling():.1f} | | |"
            )
        out += [
            "\nPer row (medians): seconds from the spawn to the first job started (the "
            "workers' start-up, inside the figure above); CPU ms per job of the side's own "
            "processes (Hodei: server + workers, procrastinate: workers) and of PostgreSQL "
            "(the embedded server only)\n",
            "| worker processes x slots | Hodei first start | Hodei CPU own | Hodei CPU PG "
            "| procrastinate first start | procrastinate CPU own | procrastinate CPU PG |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            cells = []
            for side in SIDES:
                own, pg = row.cpu_ms_per_job(side, self.jobs)
                cells += [
                    f"{row.first_start(side):.2f} s",
                    f"{own:.2f}",
                    "n/a" if pg is None else f"{pg:.2f}",
                ]
            out.append(f"| {row.shape} | " + " | ".join(cells) + " |")
        if self.latency is not None:
            lat = self.latency
            jobs = len(lat.runs["hodei"][0])
            out += [
                f"\n## Idle latency, {jobs} sequential jobs at {lat.shape} (median of "
                f"{len(lat.runs['hodei'])} runs)\n",
                "Hodei: QueueJob call -> the job's started_at (its process spawned); "
                "procrastinate: defer call -> the task's first line (issue 16's "
                "definitions), and -> its task's `true` started (where Hodei's ends).\n",
                "| | Hodei | procrastinate, first line | ratio "
                "| procrastinate, `true` started | ratio |",
                "|---|---|---|---|---|---|",
            ]
            for q in (50, 99):
                hodei, peer = lat.quantile("hodei", q), lat.quantile("procrastinate", q)
                spawned = lat.quantile("procrastinate_spawned", q)
                out.append(
                    f"| p{q} | {hodei * 1000:.2f} ms | {peer * 1000:.2f} ms | {hodei / peer:.2f} "
                    f"| {spawned * 1000:.2f} ms | {hodei / spawned:.2f} |"
                )
        out.append("\n## Goals (issue 16)\n")
        out += [check.line() for check in self.checks()]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "jobs": self.jobs,
            "repeat": self.repeat,
            **self.facts,
            "rows": [
                {
                    "shape": row.shape,
                    "workers": row.workers,
                    "slots": row.slots,
                    "hodei_jobs_per_s": row.rate("hodei"),
                    "procrastinate_jobs_per_s": row.rate("procrastinate"),
                    "ratio": row.ratio(),
                    "runs": row.runs,
                }
                for row in self.rows
            ],
            "ceiling": {
                "jobs_per_s": self.ceiling() if self.ceiling_runs else None,
                "runs": self.ceiling_runs,
            },
            "checks": [
                {"goal": c.goal, "value": c.value, "pass": c.passed, "detail": c.detail}
                for c in self.checks()
            ],
        }
        if self.latency is not None:
            doc["latency"] = {
                "shape": self.latency.shape,
                **{
                    f"{series}_p{q}_ms": self.latency.quantile(series, q) * 1000
                    for series in LATENCY_SERIES
                    for q in (50, 99)
                },
                "runs_ms": {
                    side: [[s * 1000 for s in samples] for samples in runs]
                    for side, runs in self.latency.runs.items()
                },
            }
        return doc
