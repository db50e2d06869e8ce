"""The job runner against real child processes (no mocks)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.processes import wait_gone_async
from harness.waits import wait_until_async
from hodei.worker.runner import JobProcess, Outcome, RunResult


class Collected:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.calls = 0
        self.pid: int | None = None

    def lines(self, is_stderr: bool, lines: list[bytes], ts_ns: int) -> None:
        assert ts_ns > 0
        self.calls += 1
        (self.err if is_stderr else self.out).extend(x.decode("utf-8") for x in lines)

    def started(self, pid: int) -> None:
        self.pid = pid


def _process(command: list[str], sink: Collected, **kw: object) -> JobProcess:
    kw.setdefault("env", dict(os.environ))
    return JobProcess(command, on_lines=sink.lines, **kw)  # type: ignore[arg-type]


async def _run(command: list[str], **kw: object) -> tuple[RunResult, Collected]:
    sink = Collected()
    result = await _process(command, sink, **kw).run(sink.started)
    return result, sink


async def _until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    await wait_until_async("the condition", predicate, seconds, poll_s=0.02)


async def test_success_with_stdout_stderr_env_and_working_dir(tmp_path: Path) -> None:
    result, sink = await _run(
        ["/bin/sh", "-c", 'echo "out $GREETING"; echo err >&2; pwd; printf "no newline"'],
        env={"PATH": os.environ["PATH"], "GREETING": "hola"},
        working_dir=str(tmp_path),
    )
    assert result == RunResult(Outcome.SUCCEEDED, 0, "")
    assert sink.out == ["out hola", str(tmp_path), "no newline"]
    assert sink.err == ["err"]
    assert sink.pid is not None


async def test_failing_exit_code_is_reported() -> None:
    result, _ = await _run(["/bin/sh", "-c", "exit 3"])
    assert (result.outcome, result.exit_code) == (Outcome.FAILED, 3)


async def test_missing_program_and_bad_working_dir_fail_with_a_message(tmp_path: Path) -> None:
    result, sink = await _run(["/no/such/program"])
    assert result.outcome == Outcome.FAILED and result.exit_code is None
    assert "cannot start '/no/such/program'" in result.error
    assert sink.pid is None
    result, _ = await _run(["/bin/true"], working_dir=str(tmp_path / "missing"))
    assert result.outcome == Outcome.FAILED and "missing" in result.error


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    t0 = time.monotonic()
    result, sink = await _run(
        ["/bin/sh", "-c", f"sleep 100 & echo $! > {pidfile}; echo started; wait"],
        timeout=0.5,
        kill_grace=1.0,
    )
    elapsed = time.monotonic() - t0
    assert result.outcome == Outcome.TIMED_OUT
    assert "timed out after 0.5 s" in result.error
    assert sink.out == ["started"]
    assert elapsed < 5
    grandchild = int(pidfile.read_text())
    await wait_gone_async(grandchild)  # the grandchild `sleep 100` goes with the timeout
    assert sink.pid is not None
    await wait_gone_async(sink.pid)


async def test_sigterm_ignored_means_sigkill_after_the_grace(tmp_path: Path) -> None:
    script = "trap '' TERM; echo ready; sleep 100 & wait; sleep 100"
    sink = Collected()
    proc = _process(["/bin/sh", "-c", script], sink, timeout=0.3, kill_grace=0.5)
    t0 = time.monotonic()
    result = await proc.run(sink.started)
    assert result.outcome == Outcome.TIMED_OUT
    assert 0.7 <= time.monotonic() - t0 < 5
    assert sink.pid is not None
    await wait_gone_async(sink.pid)


@pytest.mark.parametrize("force", [False, True])
async def test_cancel_kills_the_process_group(tmp_path: Path, force: bool) -> None:
    pidfile = tmp_path / "grandchild.pid"
    sink = Collected()
    proc = _process(
        ["/bin/sh", "-c", f"sleep 100 & echo $! > {pidfile}; echo started; wait"],
        sink,
        kill_grace=10.0,  # a non-forced cancel of a SIGTERM-obeying group is immediate anyway
    )
    task = asyncio.create_task(proc.run(sink.started))
    await _until(lambda: bool(sink.out))
    t0 = time.monotonic()
    proc.cancel(force=force, reason="user asked")
    result = await asyncio.wait_for(task, 5)
    assert time.monotonic() - t0 < 3
    assert result.outcome == Outcome.CANCELLED and result.error == "user asked"
    await wait_gone_async(int(pidfile.read_text()))


async def test_a_background_process_that_closed_its_output_ends_with_the_job() -> None:
    result, sink = await _run(["/bin/sh", "-c", "sleep 100 > /dev/null 2>&1 & echo $!"])
    assert result.outcome == Outcome.SUCCEEDED
    await wait_gone_async(int(sink.out[0]))


async def test_background_process_holding_the_pipe_does_not_hang_the_job() -> None:
    t0 = time.monotonic()
    result, sink = await _run(["/bin/sh", "-c", "sleep 100 & echo done"])
    assert result.outcome == Outcome.SUCCEEDED and sink.out == ["done"]
    assert time.monotonic() - t0 < 5


async def test_non_utf8_output_is_replaced_not_lost() -> None:
    script = r"printf 'caf\351\n\377ok\n'; printf 'a\000b\n' >&2"
    result, sink = await _run(["/bin/sh", "-c", script])
    assert result.outcome == Outcome.SUCCEEDED
    assert sink.out == ["caf\ufffd", "\ufffdok"]
    assert sink.err == ["a\ufffdb"]


async def test_very_long_line_is_split_at_the_cap() -> None:
    code = "import sys; sys.stdout.write('x' * 2_500_000 + '\\nend\\n')"
    result, sink = await _run([sys.executable, "-c", code], max_line_bytes=1024 * 1024)
    assert result.outcome == Outcome.SUCCEEDED
    assert [len(x) for x in sink.out] == [1024 * 1024, 1024 * 1024, 2_500_000 - 2 * 1024 * 1024, 3]


async def test_many_lines_arrive_in_chunks_not_one_call_per_line() -> None:
    result, sink = await _run(["/bin/sh", "-c", "seq 1 100000"])
    assert result.outcome == Outcome.SUCCEEDED
    assert sink.out == [str(i) for i in range(1, 100001)]
    assert sink.calls < 1000


async def test_killed_by_signal_reports_shell_style_exit_code() -> None:
    result, _ = await _run(["/bin/sh", "-c", "kill -9 $$"])
    assert result.outcome == Outcome.FAILED
    assert result.exit_code == 137 and result.error == "killed by SIGKILL"
