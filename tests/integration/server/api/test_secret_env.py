"""Secret env over real gRPC, a real PostgreSQL and a real worker: the job gets the
value, its stored output and every answer show `***`, the database holds ciphertext,
and a server without HODEI_SECRET_KEY refuses secret env."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import psycopg
import pytest
from cryptography.fernet import Fernet

from hodei.api.v1 import common_pb2, jobs_pb2, logs_pb2
from tests.integration.wire import Stubs

StartServer = Callable[..., Awaitable[Any]]
SpawnWorker = Callable[..., Awaitable[Any]]

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-Value-7f2a"
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()
PRINT_AND_CHECK = (
    'echo "$TOKEN"; echo "x${TOKEN}y" >&2; '
    f'test "$(printf %s "$TOKEN" | sha256sum | cut -c1-64)" = {DIGEST}'
)


async def test_a_secret_reaches_the_job_and_nothing_else(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    app = await start_server(server={"secret_key": Fernet.generate_key().decode()})
    await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    # The job prints the value (stdout and stderr, alone and inside text) and proves it
    # got it exactly, by its digest: its exit code says whether the comparison held.
    job = await stubs.queue(["/bin/sh", "-c", PRINT_AND_CHECK], secret_env={"TOKEN": SECRET})
    assert dict(job.spec.secret_env) == {"TOKEN": "***"}
    done = await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    assert done.has_exit_code and done.exit_code == 0
    assert dict(done.spec.secret_env) == {"TOKEN": "***"}

    logs = await stubs.logs.GetLogs(logs_pb2.GetLogsRequest(job_id=job.id))
    assert [line.line for line in logs.lines] == ["***", "x***y"]
    listed = await stubs.jobs.ListJobs(jobs_pb2.ListJobsRequest())
    assert [dict(j.spec.secret_env) for j in listed.jobs] == [{"TOKEN": "***"}]
    assert SECRET not in str(listed) and SECRET not in str(done)

    with psycopg.connect(db_url) as conn:
        names, sealed = conn.execute(
            "SELECT secret_names, secret_env FROM jobs WHERE id = %s", (job.id,)
        ).fetchone()  # type: ignore[misc]
        stored_lines = [r[0] for r in conn.execute("SELECT line FROM job_logs").fetchall()]
        events = conn.execute(
            "SELECT (SELECT string_agg(payload::text, ' ') FROM domain_events), "
            "(SELECT string_agg(payload::text, ' ') FROM outbox_events)"
        ).fetchone()
    assert names == ["TOKEN"]
    assert sealed is None  # dropped once the job ended (migration 0014)
    assert stored_lines == ["***", "x***y"]
    assert events is not None and all(SECRET not in (text or "") for text in events)


async def test_short_secrets_are_not_masked_in_output(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Stubs]
) -> None:
    """Below 4 bytes a value would mask every occurrence of a common string."""
    app = await start_server(server={"secret_key": Fernet.generate_key().decode()})
    await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/sh", "-c", 'echo "$A $B"'], secret_env={"A": "abc", "B": "abcd"})
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    logs = await stubs.logs.GetLogs(logs_pb2.GetLogsRequest(job_id=job.id))
    assert [line.line for line in logs.lines] == ["abc ***"]


async def test_without_a_key_the_server_refuses_secret_env(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"enabled": False})
    stubs = stubs_for(app.address)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stubs.queue(["true"], secret_env={"TOKEN": SECRET})
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "secret env needs HODEI_SECRET_KEY on the server"
    with pytest.raises(grpc.aio.AioRpcError) as bulk:
        await stubs.jobs.QueueJobs(
            jobs_pb2.QueueJobsRequest(
                jobs=[
                    jobs_pb2.QueueJobRequest(spec=jobs_pb2.JobSpec(command=["true"])),
                    jobs_pb2.QueueJobRequest(
                        spec=jobs_pb2.JobSpec(command=["true"], secret_env={"T": SECRET})
                    ),
                ]
            )
        )
    assert bulk.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert bulk.value.details() == "secret env needs HODEI_SECRET_KEY on the server"
    # Plain env still works without a key.
    await stubs.queue(["true"], env={"A": "1"})
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"env": {"T": "1"}, "secret_env": {"T": SECRET}}, "T given both in env and in secret_env"),
        ({"secret_env": {"A=B": SECRET}}, "invalid secret_env name 'A=B'"),
        ({"secret_env": {"T": ""}}, "secret_env 'T' is empty"),
        ({"secret_env": {"T": "a\x00" + SECRET}}, "secret_env 'T' must not contain NUL"),
    ],
)
async def test_invalid_secret_env_is_refused_without_quoting_the_value(
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    spec: dict[str, Any],
    message: str,
) -> None:
    app = await start_server(
        dispatcher={"enabled": False}, server={"secret_key": Fernet.generate_key().decode()}
    )
    stubs = stubs_for(app.address)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stubs.queue(["true"], **spec)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert message in details and SECRET not in details


async def test_a_job_queued_under_another_key_fails_with_a_clear_error(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Stubs]
) -> None:
    """A key the server does not have (not current, not previous): the job cannot be
    decrypted, so it fails (no retry can do better) with an error that names the
    cause, not the value."""
    first = await start_server(
        dispatcher={"enabled": False}, server={"secret_key": Fernet.generate_key().decode()}
    )
    job = await stubs_for(first.address).queue(["true"], secret_env={"TOKEN": SECRET})
    await first.stop(grace=1.0)
    second = await start_server(server={"secret_key": Fernet.generate_key().decode()})
    await spawn_worker(second.address)
    failed = await stubs_for(second.address).wait_state(
        job.id, common_pb2.JOB_STATE_FAILED, seconds=20
    )
    assert "cannot be decrypted" in failed.error and SECRET not in failed.error


async def test_after_a_key_rotation_a_job_queued_under_the_old_key_still_runs(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    """Rotation, step 1 (docs/server.md): the new key current, the old one previous.
    A job queued before it runs with its secret; a job queued after is sealed under
    the new key alone."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = await start_server(dispatcher={"enabled": False}, server={"secret_key": old})
    before = await stubs_for(first.address).queue(
        ["/bin/sh", "-c", PRINT_AND_CHECK], secret_env={"TOKEN": SECRET}
    )
    await first.stop(grace=1.0)
    second = await start_server(server={"secret_key": new, "previous_secret_keys": old})
    await spawn_worker(second.address)
    stubs = stubs_for(second.address)
    done = await stubs.wait_state(before.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    assert done.has_exit_code and done.exit_code == 0  # the job got the value exactly

    # A selector no worker matches keeps it queued, sealed (a final job's is dropped).
    after = await stubs.queue(["true"], secret_env={"TOKEN": SECRET}, selector={"pool": "none"})
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT secret_env FROM jobs WHERE id = %s", (after.id,)).fetchone()
    assert row is not None
    Fernet(new.encode()).decrypt(bytes(row[0]))  # raises unless the new key made it


async def test_mid_rotation_a_server_not_yet_swapped_runs_a_job_sealed_under_the_new_key(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Stubs]
) -> None:
    """Rotation step 2 with two servers (docs/server.md): one already swapped seals a
    job under the new key; the other, still on the old key but taught the new one in
    step 1, hands it to its worker, which gets the exact value."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    not_swapped = await start_server(server={"secret_key": old, "previous_secret_keys": new})
    swapped = await start_server(
        dispatcher={"enabled": False}, server={"secret_key": new, "previous_secret_keys": old}
    )
    await spawn_worker(not_swapped.address)
    job = await stubs_for(swapped.address).queue(
        ["/bin/sh", "-c", PRINT_AND_CHECK], secret_env={"TOKEN": SECRET}
    )
    done = await stubs_for(not_swapped.address).wait_state(
        job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20
    )
    assert done.has_exit_code and done.exit_code == 0


async def test_a_sealed_secret_is_kept_while_the_job_waits_and_dropped_when_it_ends(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(server={"secret_key": Fernet.generate_key().decode()})
    stubs = stubs_for(app.address)
    job = await stubs.queue(["true"], secret_env={"TOKEN": SECRET})  # no worker: it waits

    def stored() -> tuple[list[str], bytes | None]:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT secret_names, secret_env FROM jobs WHERE id = %s", (job.id,)
            ).fetchone()
        assert row is not None
        return row[0], None if row[1] is None else bytes(row[1])

    names, sealed = stored()
    assert names == ["TOKEN"] and sealed is not None and SECRET.encode() not in sealed
    await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id, reason="test"))
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_CANCELLED)
    assert stored() == (["TOKEN"], None)  # the names stay for GetJob's ***
    shown = await stubs.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id))
    assert dict(shown.spec.secret_env) == {"TOKEN": "***"}
