"""The metric contract of issue 15, written out once for the tests: name -> (type,
label names). A family the code declares differently, or does not declare, fails."""

from __future__ import annotations

SERVER: dict[str, tuple[str, tuple[str, ...]]] = {
    "hodei_build_info": ("gauge", ("version", "python_version", "component")),
    "hodei_jobs_submitted": ("counter", ()),
    "hodei_jobs_finished": ("counter", ("state",)),
    "hodei_job_queue_wait_seconds": ("histogram", ()),
    "hodei_job_run_duration_seconds": ("histogram", ()),
    "hodei_dispatcher_cycles": ("counter", ()),
    "hodei_dispatcher_errors": ("counter", ()),
    "hodei_dispatcher_last_cycle_timestamp_seconds": ("gauge", ()),
    "hodei_outbox_published": ("counter", ()),
    "hodei_log_lines_ingested": ("counter", ()),
    "hodei_log_bytes_ingested": ("counter", ()),
    "hodei_grpc_server_handled": ("counter", ("grpc_service", "grpc_method", "grpc_code")),
    "hodei_grpc_server_handling_seconds": ("histogram", ("grpc_service", "grpc_method")),
    "hodei_db_pool_connections": ("gauge", ("pool", "state")),
    "hodei_db_pool_requests_waiting": ("gauge", ("pool",)),
    "hodei_database_up": ("gauge", ()),
    "hodei_queue_depth": ("gauge", ()),
    "hodei_queue_oldest_wait_seconds": ("gauge", ()),
    "hodei_outbox_unpublished": ("gauge", ()),
    "hodei_outbox_publish_lag_seconds": ("gauge", ()),
    "hodei_workers": ("gauge", ("state",)),
    "hodei_worker_slots": ("gauge", ()),
    "hodei_worker_slots_busy": ("gauge", ()),
}

WORKER: dict[str, tuple[str, tuple[str, ...]]] = {
    "hodei_build_info": ("gauge", ("version", "python_version", "component")),
    "hodei_worker_jobs": ("counter", ("result",)),
    "hodei_worker_spawn_seconds": ("histogram", ()),
    "hodei_worker_log_bytes": ("counter", ()),
    "hodei_worker_reconnects": ("counter", ()),
    "hodei_worker_slots": ("gauge", ()),
    "hodei_worker_slots_busy": ("gauge", ()),
}
