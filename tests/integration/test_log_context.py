"""One job followed through the logs of a real server process and real worker processes
by its correlation id (hodei.log_context): the submission, the dispatch, the worker's
RunJob, start and result, the server's result; and a retry keeps the id, with the new
attempt number. In JSON and in text, at DEBUG, from log files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.waits import wait_for
from hodei.api.v1 import common_pb2, jobs_pb2
from tests.integration.conftest import SpawnWorker
from tests.integration.wire import Stubs

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[2]
_TEXT_FIELD = re.compile(r" (job_id|worker_id|attempt|correlation_id)=(\S+)")
#: What each process must have said about the job (message prefixes).
SERVER_SAYS = ("job queued", "RunJob sent", "job started", "job succeeded")
WORKER_SAYS = ("RunJob received", "job started pid=", "job finished: SUCCEEDED")


class ServerExited(AssertionError):
    """The server process ended before it said where it listens."""


def parse(path: Path, fmt: str) -> list[dict[str, Any]]:
    """A log file's records: message and job fields (text lines: the `key=value` tail)."""
    records: list[dict[str, Any]] = []
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines():
        if fmt == "json":
            if line.startswith("{"):
                records.append(json.loads(line))
            continue
        head = re.match(r"\S+Z [A-Z]+ [\w.]+: ", line)
        if head is None:
            continue  # a traceback's line
        fields: dict[str, Any] = dict(_TEXT_FIELD.findall(line))
        message = _TEXT_FIELD.split(line[head.end() :], maxsplit=1)[0]
        records.append({"message": message, **fields})
    return records


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, fmt: str) -> None:
        self.proc, self.log, self.fmt = proc, log, fmt

    def address(self) -> str:
        def port() -> str | None:
            for record in parse(self.log, self.fmt):
                found = re.search(r"listening on (127\.0\.0\.1:\d+)", record["message"])
                if found:
                    return found.group(1)
            if self.proc.poll() is not None:
                raise ServerExited(f"server exited; log:\n{self.log.read_text()}")
            return None

        found = wait_for(
            "the server to say where it listens",
            port,
            lambda p: p is not None,
            timeout_s=30,
            poll_s=0.1,
            abort_on=(ServerExited,),
        )
        assert found is not None
        return found


@pytest.fixture
def server_process(db_url: str, tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(fmt: str) -> ServerProcess:
        log = tmp_path / f"server-{fmt}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env |= {
            "PYTHONPATH": str(_REPO),
            "HODEI_LOG_FORMAT": fmt,
            "HODEI_LOG_LEVEL": "DEBUG",
            "HODEI_LOG_FILE": str(log),
            "HODEI_AUTH": "off",  # loopback only
            "HODEI_METRICS": "false",
            "HODEI_DATABASE_URL": db_url,
        }
        argv = [sys.executable, "-m", "hodei.server", "--host", "127.0.0.1", "--port", "0"]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        return ServerProcess(proc, log, fmt)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def queue(stubs: Stubs, script: str, correlation_id: str = "") -> jobs_pb2.Job:
    request = jobs_pb2.QueueJobRequest(
        spec=jobs_pb2.JobSpec(command=["/bin/sh", "-c", script]), correlation_id=correlation_id
    )
    return (await stubs.jobs.QueueJob(request)).job


def about(records: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    """The records of this job: by its job_id field, or naming it in their message."""
    found = [r for r in records if r.get("job_id") == job_id or job_id in r["message"]]
    assert found, "no line about the job"
    return found


def assert_followed(
    records: list[dict[str, Any]], job_id: str, correlation_id: str, says: tuple[str, ...]
) -> list[dict[str, Any]]:
    mine = about(records, job_id)
    wrong = [
        r for r in mine if r.get("job_id") != job_id or r.get("correlation_id") != correlation_id
    ]
    assert wrong == [], f"lines about {job_id} without its ids: {wrong}"
    said = [r["message"] for r in mine]
    for prefix in says:
        assert any(m.startswith(prefix) for m in said), f"no {prefix!r} line in {said}"
    return mine


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_one_job_through_both_processes_logs(
    server_process: Any, spawn_worker: SpawnWorker, fmt: str
) -> None:
    server = server_process(fmt)
    address = server.address()
    worker = await spawn_worker(address, logging={"format": fmt}, metrics={"enabled": False})
    async with Stubs(address, token="") as stubs:
        # JSON: the client's own correlation id; text: the default (the job id's hex).
        given = "order-4711" if fmt == "json" else ""
        job = await queue(stubs, "echo hello", given)
        await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    correlation_id = given or job.id.replace("-", "")
    assert job.correlation_id == correlation_id
    await worker.wait_log(r"attempt done")
    for record in assert_followed(parse(worker.log_path, fmt), job.id, correlation_id, WORKER_SAYS):
        assert str(record.get("attempt")) == "1"
    server_lines = parse(server.log, fmt)
    assert_followed(server_lines, job.id, correlation_id, SERVER_SAYS)


async def test_a_retry_keeps_the_correlation_id_with_the_next_attempt(
    server_process: Any, spawn_worker: SpawnWorker
) -> None:
    server = server_process("json")
    address = server.address()
    settings: dict[str, Any] = {"logging": {"format": "json"}, "metrics": {"enabled": False}}
    first = await spawn_worker(
        address, worker={"shutdown_grace": 0.2, "kill_grace": 0.5}, **settings
    )
    async with Stubs(address, token="") as stubs:
        # Attempt 1 runs until its worker stops and hands it back; attempt 2 ends at once.
        script = 'test "$HODEI_JOB_ATTEMPT" = 1 && exec sleep 60; echo second'
        job = await queue(stubs, script, "retry-me")
        await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING, seconds=20)
        second = await spawn_worker(address, **settings)
        assert await first.stop(seconds=20) == 0
        done = await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    assert done.attempts == 2
    first_lines = assert_followed(
        parse(first.log_path, "json"), job.id, "retry-me", ("RunJob received", "job stopped")
    )
    assert {r["attempt"] for r in first_lines} == {1}
    await second.wait_log(r"attempt done")
    second_lines = assert_followed(parse(second.log_path, "json"), job.id, "retry-me", WORKER_SAYS)
    assert {r["attempt"] for r in second_lines} == {2}
    server_lines = assert_followed(
        parse(server.log, "json"), job.id, "retry-me", ("job requeued", "job succeeded")
    )
    requeued = [r for r in server_lines if r["message"].startswith("job requeued")]
    assert [r["attempt"] for r in requeued] == [1]
    sent = [r["attempt"] for r in server_lines if r["message"] == "RunJob sent"]
    assert sent == [1, 2]
