"""The device runtime: config fetch and hash check, local budget ledger, durable outbox, transport.

>>> from client_sdk.client import Client, RetryPolicy
>>> RetryPolicy().max_delay
30.0

Standard library only (``sqlite3``, ``urllib``, ``threading``) on top of the SDK's
mechanisms: installing the SDK pulls no server dependency. See ``docs/sdk.md``.
"""

from client_sdk.client.config import BudgetPolicy, CollectionConfig
from client_sdk.client.errors import (
    ClientClosedError,
    ClientError,
    ConfigHashMismatchError,
    ConfigUnavailableError,
    DeviceBudgetExceededError,
    HTTPError,
    TransportError,
    UnsupportedCollectionError,
)
from client_sdk.client.runtime import (
    BudgetStatus,
    Client,
    FlushResult,
    RejectedReport,
    ReportReceipt,
    RetryPolicy,
    Spend,
)
from client_sdk.client.timing import SystemTimer, Timer, VirtualTimer
from client_sdk.client.transport import HttpResponse, Transport, UrllibTransport

__all__ = [
    "BudgetPolicy",
    "BudgetStatus",
    "Client",
    "ClientClosedError",
    "ClientError",
    "CollectionConfig",
    "ConfigHashMismatchError",
    "ConfigUnavailableError",
    "DeviceBudgetExceededError",
    "FlushResult",
    "HTTPError",
    "HttpResponse",
    "RejectedReport",
    "ReportReceipt",
    "RetryPolicy",
    "Spend",
    "SystemTimer",
    "Timer",
    "Transport",
    "TransportError",
    "UnsupportedCollectionError",
    "UrllibTransport",
    "VirtualTimer",
]
