"""Charts of a burst for the e2e report: throughput over time and the latency
distribution, drawn from the jobs' own times (created, started, finished) as the jobs
table recorded them, and rendered as Mermaid `xychart-beta` blocks, which GitHub draws.

Buckets are a "nice" width (0.1 s, 0.5 s, 1 s, 5 s...) chosen so that a chart keeps at
most a few dozen bars however long the burst ran: a 10-minute burst gets 30 bars of
20 s, not 600 of 1 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hodei.report.catalogue import say
from hodei.report.model import Chart, JobTimes, Phrase

#: The most bars a throughput chart and a latency chart draw.
MAX_THROUGHPUT_BARS = 30
MAX_LATENCY_BARS = 20
#: Bucket widths, seconds, smallest first.
NICE_WIDTHS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5,
    1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600,
)  # fmt: skip


def _seconds(value: float) -> str:
    """0.5 -> "0.5", 2.0 -> "2", 0.30000000000000004 -> "0.3"."""
    return f"{round(value, 3):g}"


def _width(span: float, most: int) -> float:
    for width in NICE_WIDTHS:
        if math.ceil(span / width) <= most:
            return width
    return math.ceil(span / most)


def throughput_chart(times: Sequence[JobTimes]) -> Chart | None:
    """Jobs finished in each time bucket, from the burst's first submission to its last
    end; None when no job finished. The bars add up to the jobs that finished."""
    ends = [t.finished_at for t in times if t.finished_at is not None]
    if not ends:
        return None
    first = min(t.created_at for t in times)
    span = max(max(ends) - first, 1e-9)
    width = _width(span, MAX_THROUGHPUT_BARS)
    count = max(1, math.ceil(span / width))
    bars = [0] * count
    for end in ends:
        bars[min(int((end - first) // width), count - 1)] += 1
    return Chart(
        code="CHART_THROUGHPUT",
        params={
            "jobs": len(ends),
            "width": _seconds(width),
            "span": _seconds(span),
            "rate": f"{len(ends) / span:.0f}",
        },
        x_labels=[_seconds(i * width) for i in range(count)],
        values=[float(b) for b in bars],
    )


def latency_chart(times: Sequence[JobTimes]) -> Chart | None:
    """How many jobs took how long from submission to their end, in buckets; None
    when no job finished. The bars add up to the jobs that finished."""
    took = [t.finished_at - t.created_at for t in times if t.finished_at is not None]
    if not took:
        return None
    low, high = min(took), max(took)
    for width in NICE_WIDTHS:
        start = math.floor(low / width) * width
        count = int((high - start) // width) + 1
        if count <= MAX_LATENCY_BARS:
            break
    else:
        width = math.ceil((high - low) / MAX_LATENCY_BARS) or 1
        start = math.floor(low / width) * width
        count = int((high - start) // width) + 1
    bars = [0] * count
    for value in took:
        bars[min(int((value - start) // width), count - 1)] += 1
    ordered = sorted(took)
    return Chart(
        code="CHART_LATENCY",
        params={
            "jobs": len(took),
            "width": _seconds(width),
            "p50": _seconds(ordered[len(ordered) // 2]),
            "max": _seconds(high),
        },
        x_labels=[
            f"{_seconds(start + i * width)}-{_seconds(start + (i + 1) * width)}"
            for i in range(count)
        ],
        values=[float(b) for b in bars],
    )


def burst_charts(times: Sequence[JobTimes]) -> list[Chart]:
    return [c for c in (throughput_chart(times), latency_chart(times)) if c is not None]


def _quoted(text: str) -> str:
    """A Mermaid string: it has no escape for `"`, and a line break would end the
    statement."""
    return '"' + " ".join(text.replace('"', "'").split()) + '"'


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def mermaid_xychart(chart: Chart, lang: str) -> str:
    """The chart as a Mermaid `xychart-beta` block's body, its words in `lang`."""

    def words(code: str) -> str:
        return say(Phrase(code=code, params=chart.params), lang)

    top = max(chart.values, default=0.0)
    return "\n".join(
        [
            "xychart-beta",
            f"    title {_quoted(words(chart.code))}",
            f"    x-axis {_quoted(words(chart.code + '_X'))} "
            f"[{', '.join(_quoted(label) for label in chart.x_labels)}]",
            f"    y-axis {_quoted(words(chart.code + '_Y'))} 0 --> {_number(max(top, 1.0))}",
            f"    bar [{', '.join(_number(v) for v in chart.values)}]",
        ]
    )
