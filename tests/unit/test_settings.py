"""hodei.settings: nested groups, the HODEI_* names, one-line refusals, the fault switch,
and the README's configuration table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hodei.errors import ConfigError
from hodei.settings import environment_for, load_settings, setting_fields

README = Path(__file__).resolve().parents[2] / "README.md"


def _configuration_rows() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith(("| `HODEI_", "| `OTEL_"))]


def test_every_setting_has_a_row_in_the_readme_configuration_table() -> None:
    rows = _configuration_rows()
    missing = [
        f"{field.env} ({field.path})"
        for field in setting_fields()
        if not any(row.startswith(f"| `{field.env}` | `{field.path}` |") for row in rows)
    ]
    assert not missing, f"README.md's Configuration table lacks: {', '.join(missing)}"


def test_the_readme_table_names_no_setting_that_does_not_exist() -> None:
    known = {field.env for field in setting_fields()}
    listed = {re.match(r"\| `((?:HODEI|OTEL)_\w+)`", row).group(1) for row in _configuration_rows()}  # type: ignore[union-attr]
    assert listed <= known, sorted(listed - known)


def test_every_setting_has_its_own_variable() -> None:
    names = [field.env for field in setting_fields()]
    assert len(names) == len(set(names))
    # The tracing group reads OpenTelemetry's standard variables, every other HODEI_*.
    assert all(
        field.env.startswith("OTEL_" if field.group == "tracing" else "HODEI_")
        for field in setting_fields()
    )


def test_the_environment_fills_the_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HODEI_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("HODEI_DISPATCHER_ENABLED", "false")
    monkeypatch.setenv("HODEI_SLOTS", "4")
    monkeypatch.setenv("HODEI_LOG_LEVEL", "debug")
    settings = load_settings(worker={"name": "w1"})
    assert settings.database.url == "postgresql://u@h/db"
    assert settings.dispatcher.enabled is False
    assert (settings.worker.slots, settings.worker.name) == (4, "w1")
    assert settings.logging.level == "DEBUG"


def test_an_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HODEI_PORT", "6000")
    monkeypatch.setenv("HODEI_HOST", "0.0.0.0")
    settings = load_settings(server={"port": 7000, "host": None})
    assert settings.server.listen_address == "0.0.0.0:7000"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HODEI_DATABASE_URL", "mysql://x", "invalid setting 'database.url' (HODEI_DATABASE_URL,"),
        ("HODEI_SLOTS", "0", "invalid setting 'worker.slots' (HODEI_SLOTS, --slots)"),
        ("HODEI_ACK_TIMEOUT", "soon", "invalid setting 'dispatcher.ack_timeout' (HODEI_ACK"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_a_fault_is_refused_without_the_testing_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HODEI_TESTING", raising=False)
    monkeypatch.setenv("HODEI_FAULT_DROP_LOGS", "true")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "HODEI_FAULT_DROP_LOGS" in message and "unless HODEI_TESTING=true" in message
    assert "\n" not in message


def test_a_clock_offset_is_a_fault_refused_without_the_testing_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HODEI_TESTING", raising=False)
    monkeypatch.setenv("HODEI_FAULT_CLOCK_OFFSET_S", "-30")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "HODEI_FAULT_CLOCK_OFFSET_S injects a fault" in str(caught.value)
    monkeypatch.setenv("HODEI_TESTING", "true")
    assert load_settings().faults.clock_offset_s == -30.0


def test_a_fault_is_accepted_with_the_testing_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HODEI_TESTING", "true")
    monkeypatch.setenv("HODEI_FAULT_DROP_LOGS", "true")
    assert load_settings().faults.drop_logs is True


def test_overrides_travel_as_their_variables() -> None:
    env = environment_for({"worker": {"kill_grace": 1.5}, "faults": {"drop_logs": True}})
    assert env == {"HODEI_WORKER_KILL_GRACE": "1.5", "HODEI_FAULT_DROP_LOGS": "true"}


def test_an_invalid_secret_key_is_one_line_that_does_not_quote_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HODEI_SECRET_KEY", "not-a-fernet-key-hunter2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid setting 'server.secret_key' (HODEI_SECRET_KEY): not a")
    assert "hunter2" not in message and "\n" not in message


def test_a_valid_secret_key_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("HODEI_SECRET_KEY", key)
    assert load_settings().server.secret_key == key


def test_worker_labels_are_key_value_pairs() -> None:
    from hodei.settings import load_settings

    labels = load_settings(worker={"labels": " pool=docker, gpu=1 "}).worker.label_map
    assert labels == {"pool": "docker", "gpu": "1"}
    assert load_settings().worker.label_map == {}
    with pytest.raises(ConfigError, match=r"'worker.labels' \(HODEI_WORKER_LABELS, --labels\)"):
        load_settings(worker={"labels": "pool"})


def test_previous_secret_keys_are_checked_one_by_one_without_quoting_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.fernet import Fernet

    current, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("HODEI_SECRET_KEY", current)
    monkeypatch.setenv("HODEI_PREVIOUS_SECRET_KEYS", f" {old} , ")
    assert load_settings().server.previous_secret_key_list == [old]
    monkeypatch.setenv("HODEI_PREVIOUS_SECRET_KEYS", f"{old},hunter2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "key 2 of 2 is not a Fernet key" in message
    assert "hunter2" not in message and old not in message and "\n" not in message


def test_previous_secret_keys_need_a_current_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("HODEI_PREVIOUS_SECRET_KEYS", Fernet.generate_key().decode())
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "HODEI_PREVIOUS_SECRET_KEYS needs HODEI_SECRET_KEY" in str(caught.value)
