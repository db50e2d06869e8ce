"""How the doctor names a failed connection and an address: libpq's messages (real ones,
as psycopg raises them) and listen addresses as servers store them."""

from __future__ import annotations

import pytest

from hodei.db.connector import application_name
from hodei.diagnose.checks_server import dialable
from hodei.diagnose.probes import connect_failure_code


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 1 failed: '
            "Connection refused\n\tIs the server running on that host?",
            "DATABASE_DOWN",
        ),
        (
            'connection failed: connection to server on socket "/tmp/.s.PGSQL.5432" failed: '
            "No such file or directory",
            "DATABASE_DOWN",
        ),
        ("connection timeout expired", "DATABASE_TIMEOUT"),
        (
            'connection to server at "::1", port 5432 failed: Connection refused\n'
            'connection to server at "127.0.0.1", port 5432 failed: FATAL:  too many '
            'connections for role "app"',
            "DATABASE_REFUSING_CONNECTIONS",
        ),
        ("FATAL:  sorry, too many clients already", "DATABASE_REFUSING_CONNECTIONS"),
        ('FATAL:  role "nobody" does not exist', "DATABASE_CREDENTIALS_REJECTED"),
        (
            'FATAL:  password authentication failed for user "app"',
            "DATABASE_CREDENTIALS_REJECTED",
        ),
        ('could not translate host name "db.example" to address', "DATABASE_UNREACHABLE"),
    ],
)
def test_connect_failures_are_named_by_how(message: str, code: str) -> None:
    assert connect_failure_code(message) == code


def test_wildcard_and_localhost_listen_addresses_are_dialled_on_loopback() -> None:
    assert dialable("0.0.0.0:50051") == "127.0.0.1:50051"
    assert dialable("[::]:7000") == "127.0.0.1:7000"
    assert dialable("localhost:7000") == "127.0.0.1:7000"
    assert dialable("10.0.0.5:7000") == "10.0.0.5:7000"


def test_application_name_keeps_the_role_within_postgresql_limit() -> None:
    assert application_name("h:1:ab", "dispatcher") == "hodei-h:1:ab-dispatcher"
    long = application_name("x" * 80, "worker-stream")
    assert len(long.encode()) == 63 and long.endswith("-worker-stream")
