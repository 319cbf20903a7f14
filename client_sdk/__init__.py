"""Client SDK for local differential privacy: perturb on the device, estimate on the server.

The mechanism modules are the single source of truth for the protocol math: the server
imports them to validate, aggregate and estimate, so both sides can never drift apart.
"""

from client_sdk import mechanisms, postprocess
from client_sdk._version import __version__
from client_sdk.client import Client
from client_sdk.errors import BudgetExceededError, ConfigError, LDPError, ReportDecodeError

__all__ = [
    "BudgetExceededError",
    "Client",
    "ConfigError",
    "LDPError",
    "ReportDecodeError",
    "__version__",
    "mechanisms",
    "postprocess",
]
