"""Domain event names. Every state change writes one `domain_events` row and one
`outbox_events` row in the transaction that makes the change."""

from __future__ import annotations

import enum

from hodei.domain.jobs import JobState


class EventType(enum.StrEnum):
    JOB_CREATED = "JobCreated"
    JOB_ASSIGNED = "JobAssigned"
    JOB_STARTED = "JobStarted"
    JOB_SUCCEEDED = "JobSucceeded"
    JOB_FAILED = "JobFailed"
    JOB_CANCELLED = "JobCancelled"
    JOB_TIMED_OUT = "JobTimedOut"
    JOB_REQUEUED = "JobRequeued"  # back to PENDING for another attempt
    JOB_CANCEL_REQUESTED = "JobCancelRequested"
    WORKER_REGISTERED = "WorkerRegistered"
    WORKER_READY = "WorkerReady"
    WORKER_BUSY = "WorkerBusy"
    WORKER_DRAINING = "WorkerDraining"
    WORKER_LOST = "WorkerLost"
    WORKER_TERMINATED = "WorkerTerminated"
    #: The scaler's decisions (hodei.server.scaler), aggregate `provisioning`: the
    #: provisioned_workers row's id.
    WORKER_PROVISIONED = "WorkerProvisioned"
    PROVISIONING_FAILED = "ProvisioningFailed"
    WORKER_SCALED_DOWN = "WorkerScaledDown"
    #: The platform corrected an inconsistency it found (payload `repair`: what, e.g.
    #: "stray_queue_row"): counted durably so that hodei-diagnose can report it.
    REPAIRED = "Repaired"


class AggregateType(enum.StrEnum):
    JOB = "job"
    WORKER = "worker"
    PROVISIONING = "provisioning"


_FINAL_EVENT = {
    JobState.SUCCEEDED: EventType.JOB_SUCCEEDED,
    JobState.FAILED: EventType.JOB_FAILED,
    JobState.CANCELLED: EventType.JOB_CANCELLED,
    JobState.TIMED_OUT: EventType.JOB_TIMED_OUT,
}


def event_for_job_state(state: JobState) -> EventType:
    """The event recorded when a job enters `state`."""
    if state in _FINAL_EVENT:
        return _FINAL_EVENT[state]
    return {
        JobState.PENDING: EventType.JOB_REQUEUED,
        JobState.ASSIGNED: EventType.JOB_ASSIGNED,
        JobState.RUNNING: EventType.JOB_STARTED,
    }[state]
