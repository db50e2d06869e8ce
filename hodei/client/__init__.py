"""Async client of the Hodei API: `HodeiClient` and the plain views it returns."""

from hodei.client.channel import channel_options
from hodei.client.client import DEFAULT_DEADLINE, HodeiClient, check_address, new_idempotency_key
from hodei.client.retries import NO_RETRY, RetryPolicy
from hodei.client.views import (
    JobView,
    LogLineView,
    LogsPage,
    QueuedJobView,
    QueueView,
    ServerInfoView,
    WorkerView,
)
from hodei.tls import ClientTLS, client_tls

__all__ = [
    "DEFAULT_DEADLINE",
    "NO_RETRY",
    "ClientTLS",
    "HodeiClient",
    "JobView",
    "LogLineView",
    "LogsPage",
    "QueueView",
    "QueuedJobView",
    "RetryPolicy",
    "ServerInfoView",
    "WorkerView",
    "channel_options",
    "check_address",
    "client_tls",
    "new_idempotency_key",
]
