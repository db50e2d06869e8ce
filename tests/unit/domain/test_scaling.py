"""hodei.domain.scaling: which provider starts a worker, which worker goes, the circuit."""

from __future__ import annotations

import uuid

import pytest

from hodei.domain.scaling import (
    Capacity,
    Circuit,
    IdleWorker,
    ProviderView,
    WaitingJob,
    parse_selector,
    plan_provisioning,
    plan_scale_down,
    selector_matches,
)

J = [uuid.UUID(int=i) for i in range(10)]


def view(
    name: str,
    priority: int = 0,
    live: int = 0,
    max_workers: int = 5,
    tags: dict[str, str] | None = None,
    slots: int = 1,
    healthy: bool = True,
    circuit_open: bool = False,
) -> ProviderView:
    return ProviderView(
        name, priority, dict(tags or {}), max_workers, live, slots, healthy, circuit_open
    )


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({}, {"pool": "a"}, True),
        ({"pool": "a"}, {"pool": "a", "gpu": "1"}, True),
        ({"pool": "a"}, {"pool": "b"}, False),
        ({"pool": "a", "gpu": "1"}, {"pool": "a"}, False),
    ],
)
def test_a_selector_matches_labels_that_contain_it(
    selector: dict[str, str], labels: dict[str, str], matches: bool
) -> None:
    assert selector_matches(selector, labels) is matches


def test_selectors_parse_from_repeated_or_comma_separated_items() -> None:
    assert parse_selector(["pool=docker", "gpu=true,zone = eu"]) == {
        "pool": "docker",
        "gpu": "true",
        "zone": "eu",
    }
    with pytest.raises(ValueError, match="'pool' is not KEY=VALUE"):
        parse_selector(["pool"])


CASES = [
    # (name, waiting, capacity, providers, expected [(provider, job index)])
    ("no waiting job, nothing", [], [], [view("a")], []),
    ("a free matching slot serves the job", [WaitingJob(J[0])], [Capacity({}, 1)], [view("a")], []),
    (
        "highest priority first",
        [WaitingJob(J[0])],
        [],
        [view("low", 1), view("high", 9)],
        [("high", 0)],
    ),
    (
        "ties keep file order",
        [WaitingJob(J[0])],
        [],
        [view("first", 5), view("second", 5)],
        [("first", 0)],
    ),
    (
        "tags must match the selector",
        [WaitingJob(J[0], {"pool": "gpu"})],
        [],
        [view("high", 9, tags={"pool": "cpu"}), view("low", 1, tags={"pool": "gpu"})],
        [("low", 0)],
    ),
    (
        "a free slot with other labels does not serve a selector",
        [WaitingJob(J[0], {"pool": "gpu"})],
        [Capacity({"pool": "cpu"}, 3)],
        [view("g", tags={"pool": "gpu"})],
        [("g", 0)],
    ),
    (
        "no provider matches: left waiting",
        [WaitingJob(J[0], {"pool": "tpu"})],
        [],
        [view("a", tags={"pool": "cpu"})],
        [],
    ),
    (
        "max_workers caps, then the next provider",
        [WaitingJob(J[0]), WaitingJob(J[1]), WaitingJob(J[2])],
        [],
        [view("big", 9, live=1, max_workers=2), view("small", 1, max_workers=1)],
        [("big", 0), ("small", 1)],
    ),
    (
        "an open circuit is skipped",
        [WaitingJob(J[0])],
        [],
        [view("broken", 9, circuit_open=True), view("spare", 1)],
        [("spare", 0)],
    ),
    (
        "an unhealthy provider is skipped",
        [WaitingJob(J[0])],
        [],
        [view("down", 9, healthy=False), view("spare", 1)],
        [("spare", 0)],
    ),
    (
        "a new worker's other slots serve the next jobs",
        [WaitingJob(J[0]), WaitingJob(J[1]), WaitingJob(J[2])],
        [],
        [view("a", slots=2)],
        [("a", 0), ("a", 2)],
    ),
    (
        "a worker being provisioned counts as capacity",
        [WaitingJob(J[0]), WaitingJob(J[1])],
        [Capacity({}, 1)],
        [view("a")],
        [("a", 1)],
    ),
]


@pytest.mark.parametrize(
    ("waiting", "capacity", "providers", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_provisioning_plan(
    waiting: list[WaitingJob],
    capacity: list[Capacity],
    providers: list[ProviderView],
    expected: list[tuple[str, int]],
) -> None:
    plan = plan_provisioning(waiting, capacity, providers)
    assert [(d.provider, J.index(d.job_id)) for d in plan] == expected


def test_provisioning_stops_at_the_round_limit() -> None:
    waiting = [WaitingJob(j) for j in J]
    assert len(plan_provisioning(waiting, [], [view("a", max_workers=100)], limit=3)) == 3


def test_workers_idle_past_their_providers_ttl_go() -> None:
    ids = [uuid.UUID(int=i) for i in range(4)]
    workers = [
        IdleWorker(ids[0], "fast", 11.0),
        IdleWorker(ids[1], "fast", 9.0),
        IdleWorker(ids[2], "slow", 11.0),
        IdleWorker(ids[3], "fast", None),  # running a job
    ]
    assert plan_scale_down(workers, {"fast": 10.0, "slow": 60.0}) == [ids[0]]


def test_the_circuit_opens_after_the_threshold_and_half_opens_after_the_cooldown() -> None:
    circuit = Circuit(threshold=2, cooldown=30.0)
    assert circuit.failure(0.0, "image missing") is False
    assert not circuit.is_open(0.0)
    assert circuit.failure(1.0, "image missing") is True
    assert circuit.is_open(20.0) and circuit.last_error == "image missing"
    assert not circuit.is_open(31.5)  # half-open: one attempt goes through
    assert circuit.failure(32.0, "still missing") is True  # one failure reopens it
    assert circuit.is_open(40.0)
    circuit.success()
    assert not circuit.is_open(40.0) and circuit.failures == 0
