"""Errors of the client runtime. Every message says what happened and what to do."""

from __future__ import annotations

from typing import Any

from client_sdk.errors import BudgetExceededError, ConfigError, LDPError


class ClientError(LDPError):
    """Base class of the runtime's own errors."""


class ClientClosedError(ClientError):
    """The client was closed; create a new one."""


class TransportError(ClientError):
    """The request did not get an HTTP response (connection refused, reset, timeout...)."""


class HTTPError(ClientError):
    """The server answered with an error status; ``problem`` is its problem+json body (if any)."""

    def __init__(self, status: int, detail: str, problem: dict[str, Any] | None = None) -> None:
        self.status = status
        self.problem = problem or {}
        super().__init__(f"HTTP {status}: {detail}")


class ConfigUnavailableError(ClientError):
    """The collection's public config is not cached and could not be fetched: nothing was perturbed."""


class ConfigHashMismatchError(ClientError, ConfigError):
    """The config the server sent does not hash to the config_hash it claims: refused, not used."""


class UnsupportedCollectionError(ClientError, ConfigError):
    """The collection's kind or config cannot be run by this SDK (or would under-charge the budget)."""


class DeviceBudgetExceededError(BudgetExceededError):
    """The device ledger refuses the report: nothing was perturbed, stored or queued.

    Attributes: ``collection_id``, ``scope`` ("lifetime" or "window"), ``window`` (the
    accounting window, for scope "window"), ``spent`` and ``cap`` (epsilon), ``charge``
    (epsilon this report would have cost), ``units`` / ``max_units`` (charges counted).
    """

    def __init__(
        self,
        collection_id: str,
        scope: str,
        *,
        spent: float,
        cap: float,
        charge: float,
        units: int,
        max_units: int,
        window: int | None = None,
        memoized: bool = False,
    ) -> None:
        self.collection_id = collection_id
        self.scope = scope
        self.spent = spent
        self.cap = cap
        self.charge = charge
        self.units = units
        self.max_units = max_units
        self.window = window
        what = "a new memo" if memoized else "this report"
        where = f"lifetime cap {cap:g}" if scope == "lifetime" else f"cap {cap:g} for accounting window {window}"
        super().__init__(
            f"collection {collection_id!r}: {what} would cost epsilon {charge:g}, but this device has "
            f"already spent {spent:g} of its {where} ({units} of {max_units} charges); "
            "nothing was perturbed, stored or sent"
            + ("" if scope == "lifetime" else "; the window cap resets in a later window")
        )
