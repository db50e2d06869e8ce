"""The role rules and the token format (hodei.domain.auth): no I/O."""

from __future__ import annotations

import uuid

import pytest

from hodei.api.v1 import jobs_pb2, logs_pb2, platform_pb2, workers_pb2
from hodei.domain.auth import (
    METHOD_ROLES,
    Caller,
    Role,
    allowed_roles,
    authorize,
    bearer,
    check_name,
    format_token,
    hash_secret,
    is_open,
    new_secret,
    parse_expiry,
    parse_token,
    secret_matches,
)
from hodei.errors import InvalidArgument, PermissionDenied, Unauthenticated


def _rpcs() -> set[str]:
    return {
        f"/{service.full_name}/{method.name}"
        for module in (jobs_pb2, logs_pb2, workers_pb2, platform_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_rpc_has_a_rule_and_every_rule_an_rpc() -> None:
    # A new RPC without a rule is admin-only; this test makes its author decide.
    assert set(METHOD_ROLES) == _rpcs()


def test_admin_may_call_everything_and_a_worker_only_the_worker_stream() -> None:
    for method in _rpcs():
        assert Role.ADMIN in allowed_roles(method)
    worker = {m for m in _rpcs() if Role.WORKER in allowed_roles(m)}
    assert worker == {
        "/hodei.api.v1.WorkerAgentService/Register",
        "/hodei.api.v1.WorkerAgentService/WorkerStream",
    }
    assert Role.CLIENT not in allowed_roles("/hodei.api.v1.WorkerAgentService/Register")
    assert Role.CLIENT in allowed_roles("/hodei.api.v1.WorkerAgentService/ListWorkers")


def test_an_unknown_method_is_admin_only_and_health_is_open() -> None:
    assert allowed_roles("/hodei.api.v1.NewService/Do") == {Role.ADMIN}
    assert is_open("/grpc.health.v1.Health/Check")
    assert is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert is_open("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    assert not is_open("/hodei.api.v1.PlatformService/GetServerInfo")


def test_a_refusal_names_the_token_its_role_and_the_roles_needed() -> None:
    caller = Caller(Role.WORKER, uuid.uuid4(), "rack-1")
    with pytest.raises(PermissionDenied) as info:
        authorize("/hodei.api.v1.JobExecutionService/QueueJob", caller)
    assert str(info.value) == (
        "token 'rack-1' has role worker; QueueJob needs role admin or client"
    )


def test_a_client_sees_only_what_it_owns_an_admin_everything() -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    client = Caller(Role.CLIENT, mine, "c")
    assert client.may_see(mine) and not client.may_see(other) and not client.may_see(None)
    assert client.owner_filter() == mine
    admin = Caller(Role.ADMIN, uuid.uuid4(), "a")
    assert admin.may_see(other) and admin.may_see(None) and admin.owner_filter() is None


def test_a_token_round_trips_and_its_secret_is_checked_by_hash() -> None:
    token_id, secret = uuid.uuid4(), new_secret()
    text = format_token(token_id, secret)
    parsed = parse_token(text)
    assert (parsed.token_id, parsed.secret) == (token_id, secret)
    assert len(secret) >= 43  # 32 random bytes, base64url
    stored = hash_secret(secret)
    assert secret_matches(secret, stored) and not secret_matches(secret + "x", stored)


@pytest.mark.parametrize("text", ["", "hodei_", "hodei_xyz_abc", "Bearer x", "hodei_" + "0" * 32])
def test_a_malformed_token_is_unauthenticated(text: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed token"):
        parse_token(text)


def test_the_bearer_metadata() -> None:
    assert bearer("Bearer hodei_x") == "hodei_x"
    assert bearer("bearer  hodei_x ") == "hodei_x"
    with pytest.raises(Unauthenticated, match="no token"):
        bearer(None)
    with pytest.raises(Unauthenticated, match="'Bearer <token>'"):
        bearer("Basic abc")


def test_names_and_expiries_are_bounded() -> None:
    assert check_name("ci.runner-1@prod") == "ci.runner-1@prod"
    for bad in ("", "-x", "a b", "x" * 101):
        with pytest.raises(InvalidArgument):
            check_name(bad)
    assert parse_expiry("30d") == 30 * 86400
    assert parse_expiry("12h") == 12 * 3600
    for bad in ("0d", "30", "3651d", "1y", "-1d"):
        with pytest.raises(InvalidArgument):
            parse_expiry(bad)
