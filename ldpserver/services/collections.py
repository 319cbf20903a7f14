"""Collections: validate and create (immutable), load and cache for ingestion.

Creation checks, in order, and refuses with the reason (422):

1. the kind's SDK package is importable (else ``kind-unavailable``);
2. the SDK accepts the mechanism config (``invalid-config``, path ``/mechanism``);
3. the neighbouring notion is the one the mechanism promises (multidim: its config's
   ``neighbouring``, "tuple" or "attribute"; everything else: "record");
4. **the declared epsilon covers the privacy loss** computed by OpenDP where it has the
   measurement, else by the SDK's closed form (``privacy-check-failed``);
5. the budget policy is usable (caps at least one charge; per-window caps need
   ``grace <= window_epochs`` so that at most two windows are open at a time).

The public config (what a device needs) is a :class:`client_sdk.public_config.PublicConfig`,
which also holds the epoch and budget-unit arithmetic the server and the devices share; its
canonical JSON's SHA-256 is the config hash every report must carry.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from client_sdk.public_config import (
    CONFIG_VERSION,
    BudgetRule,
    EpochRule,
    PublicConfig,
    epoch_boundary,
    lifetime_units,
    max_units,
)
from ldpserver.clock import as_utc
from ldpserver.db import read_transaction, write_transaction
from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS, BoundProtocol, KindUnavailable, ProtocolConfigError
from ldpserver.models import Collection, LedgerHead
from ldpserver.schemas.collections import CollectionCreate
from ldpserver.services.ledger import chain_of_config_version, genesis_hash
from ldpserver.services.privacy import declared_covers

#: the config versions of the collections a server may hold (version 1: created before RFC 8785 hashing)
STORED_VERSIONS = (1, CONFIG_VERSION)

collections_t = Collection.__table__


def _invalid(detail: str, path: str, code: str = "invalid") -> ProblemError:
    return ProblemError("invalid-config", detail, errors=[{"path": path, "message": detail, "code": code}])


def _release_statement(request: CollectionCreate, protocol: Any, memoized: bool, unit: float) -> dict[str, Any]:
    """ε_release with its accounting, and what its noise adds at ``min_reports`` (so a small
    collection is never degraded silently)."""
    from ldpserver.services.release_policy import budget_for, expected_noise

    units_window = max_units(request.budget.cap_per_window, unit)
    budget = budget_for(
        request.kind,
        protocol,
        request.release.model_dump(),
        memoized=memoized,
        units_lifetime=int(max_units(request.budget.cap_lifetime, unit) or 1),
        units_window=units_window,
    )
    statement = budget.statement(None if memoized else int(max_units(request.budget.cap_lifetime, unit) or 1))
    expected = expected_noise(request.kind, protocol, budget, request.release.min_reports)
    if expected is not None:
        statement["expected_at_min_reports"] = expected
    return statement


def create_collection(engine: Engine, request: CollectionCreate, created_by: str, now: datetime) -> dict[str, Any]:
    adapter = ADAPTERS[request.kind]
    try:
        adapter.module()
    except KindUnavailable as exc:
        raise ProblemError("kind-unavailable", str(exc), kind=request.kind) from None

    if request.parties is not None and not adapter.takes_parties:
        raise _invalid(f"collections of kind {request.kind!r} take no parties", "/parties")
    try:
        protocol = adapter.build(request.mechanism)
    except (ProtocolConfigError, KindUnavailable) as exc:
        raise _invalid(f"mechanism config refused: {exc}", "/mechanism") from None
    mechanism_config = dict(protocol.config)
    parties: list[str] = []
    if adapter.takes_parties:
        # federated protocols (TAP/TAPS) carry their parties in the mechanism config: one source of truth
        sdk_parties = mechanism_config.get("parties")
        if request.parties is not None and sdk_parties is None:
            raise _invalid(
                f"protocol {mechanism_config.get('protocol')!r} is not federated: it takes no parties "
                "(set mechanism.parties of a federated protocol such as tap)",
                "/parties",
            )
        if request.parties is not None and list(request.parties) != list(sdk_parties or []):
            raise _invalid(f"parties must equal the mechanism's parties {list(sdk_parties or [])}", "/parties")
        parties = [str(p) for p in sdk_parties or []]

    try:
        assessment = adapter.assess(protocol)
    except Exception as exc:  # the calculator refused the parameters (e.g. outside OpenDP's domain)
        raise _invalid(f"privacy loss could not be computed: {exc}", "/mechanism") from None
    neighbouring = assessment.neighbouring
    if request.neighbouring is not None and request.neighbouring != neighbouring:
        hint = adapter.neighbouring_hint()
        raise _invalid(
            f"the mechanism promises {neighbouring!r}-level privacy, not {request.neighbouring!r}{hint}",
            "/neighbouring",
        )
    loss = assessment.epsilon
    closed_form = assessment.details.get("closed_form_epsilon")
    if request.epsilon is not None:
        declared = float(request.epsilon)
    elif isinstance(closed_form, float) and declared_covers(closed_form, loss):
        declared = closed_form
    else:
        declared = loss
    if not declared_covers(declared, loss):
        how = "OpenDP" if assessment.calculator == "opendp" else "the SDK's closed form"
        measurement = assessment.details.get("measurement")
        via = f" ({measurement})" if measurement else ""
        raise ProblemError(
            "privacy-check-failed",
            f"declared epsilon {declared} is below the privacy loss {loss!r} computed by {how}{via} for "
            f"{neighbouring}-level neighbours of {mechanism_config.get('mechanism', request.kind)}",
            errors=[{"path": "/epsilon", "message": f"must be at least {loss!r}", "code": "below_privacy_loss"}],
            declared_epsilon=declared,
            computed_epsilon=loss,
            calculator=assessment.calculator,
        )

    budget = request.budget
    if adapter.requires_memoized and not budget.memoized:
        raise _invalid(f"collections of kind {request.kind!r} are memoized: set budget.memoized", "/budget/memoized")
    if budget.memoized and not adapter.requires_memoized:
        # memoizing a one-round mechanism re-sends its first payload verbatim: equal reports
        # reveal equal values, with no second randomisation to hide them (docs/privacy.md)
        memo_kinds = ", ".join(repr(a.kind) for a in ADAPTERS.values() if a.requires_memoized)
        raise _invalid(
            f"budget.memoized applies only to kinds with a second randomisation round ({memo_kinds}): "
            f"a memoized {request.kind!r} collection would re-send its first report verbatim; use kind "
            f"{memo_kinds} (e.g. l-grr, l-oue, rappor, loloha, dbitflip) for repeated reports of one value, "
            "or a per-window cap here",
            "/budget/memoized",
        )
    if budget.memoized:
        if budget.epsilon_per_memo is not None:
            per_memo = float(budget.epsilon_per_memo)
        else:
            per_memo = max(declared, assessment.charge_per_new_memo or declared)
        if assessment.charge_per_new_memo is not None and not declared_covers(per_memo, assessment.charge_per_new_memo):
            raise ProblemError(
                "privacy-check-failed",
                f"epsilon_per_memo {per_memo} is below the protocol's charge per new memo "
                f"{assessment.charge_per_new_memo!r}",
                errors=[
                    {
                        "path": "/budget/epsilon_per_memo",
                        "message": "below the charge per new memo",
                        "code": "below_privacy_loss",
                    }
                ],
                declared_epsilon=per_memo,
                computed_epsilon=assessment.charge_per_new_memo,
                calculator=assessment.calculator,
            )
        if per_memo < declared:
            raise _invalid(
                f"epsilon_per_memo ({per_memo}) must be at least the per-report epsilon ({declared})",
                "/budget/epsilon_per_memo",
            )
        unit = per_memo
    else:
        if budget.epsilon_per_memo is not None:
            raise _invalid("epsilon_per_memo applies to memoized collections only", "/budget/epsilon_per_memo")
        per_memo = None
        unit = declared
    if max_units(budget.cap_lifetime, unit) < 1:
        raise _invalid(
            f"cap_lifetime {budget.cap_lifetime} is below one charge of {unit}: no report could be accepted",
            "/budget/cap_lifetime",
        )
    if budget.cap_per_window is not None:
        if max_units(budget.cap_per_window, unit) < 1:
            raise _invalid(
                f"cap_per_window {budget.cap_per_window} is below one charge of {unit}: no report could be accepted",
                "/budget/cap_per_window",
            )
        if request.epoch.grace > budget.window_epochs:
            raise _invalid(
                f"epoch grace ({request.epoch.grace}) must not exceed window_epochs ({budget.window_epochs}) "
                "when a per-window cap is set",
                "/epoch/grace",
            )

    epoch_start = as_utc(request.epoch.start) if request.epoch.start else epoch_boundary(now, request.epoch.seconds)
    public = PublicConfig(
        kind=request.kind,
        mechanism=mechanism_config,
        epsilon=declared,
        neighbouring=neighbouring,
        epoch=EpochRule.starting(epoch_start, request.epoch.seconds, request.epoch.grace),
        budget=BudgetRule(
            cap_lifetime=float(budget.cap_lifetime),
            cap_per_window=float(budget.cap_per_window) if budget.cap_per_window is not None else None,
            window_epochs=budget.window_epochs,
            memoized=budget.memoized,
            epsilon_per_memo=per_memo,
        ),
        release=request.release.model_dump(),
        parties=parties if adapter.takes_parties else None,
    )
    digest = public.config_hash()

    if budget.memoized:
        lifetime = lifetime_units(max_units(budget.cap_lifetime, unit), adapter.memo_limit(protocol))
        charge = {
            "unit": "memo",
            "epsilon": unit,
            "epsilon_record": unit,
            "epsilon_attribute": None,
            # charged in full at a device's first accepted report, nothing afterwards
            "lifetime_units": lifetime,
            "lifetime_epsilon": lifetime * unit,
        }
    else:
        record = declared if neighbouring != "attribute" else max(declared, assessment.epsilon_record)
        attribute = None
        if assessment.epsilon_attribute is not None:
            attribute = declared if neighbouring == "attribute" else assessment.epsilon_attribute
        charge = {"unit": "report", "epsilon": unit, "epsilon_record": record, "epsilon_attribute": attribute}
    privacy = {
        "calculator": assessment.calculator,
        "neighbouring": neighbouring,
        "epsilon_declared": declared,
        "epsilon_computed": loss,
        "epsilon_record": assessment.epsilon_record,
        "epsilon_attribute": assessment.epsilon_attribute,
        "max_memos": assessment.max_memos,
        "charge": charge,
        "details": assessment.details,
        "release": _release_statement(request, protocol, budget.memoized, unit),
    }

    collection_id = "col_" + secrets.token_hex(8)
    with write_transaction(engine) as conn:
        conn.execute(
            collections_t.insert().values(
                id=collection_id,
                name=request.name,
                kind=request.kind,
                config=public.canonical(),
                config_hash=digest,
                privacy=json.dumps(privacy, sort_keys=True),
                epsilon=declared,
                charge_epsilon=unit,
                neighbouring=neighbouring,
                epoch_seconds=request.epoch.seconds,
                epoch_start=epoch_start,
                grace_epochs=request.epoch.grace,
                window_epochs=budget.window_epochs,
                cap_window=budget.cap_per_window,
                cap_lifetime=budget.cap_lifetime,
                memoized=budget.memoized,
                created_at=now,
                created_by=created_by,
            )
        )
        conn.execute(
            LedgerHead.__table__.insert().values(
                collection_id=collection_id,
                seq=0,
                head_hash=genesis_hash(collection_id, digest, chain_of_config_version(CONFIG_VERSION)),
                updated_at=now,
            )
        )
    return {"id": collection_id}


@dataclass(frozen=True)
class CollectionRuntime:
    """An immutable collection, compiled for ingestion (cached per process)."""

    id: str
    name: str
    kind: str
    config: dict[str, Any]
    config_hash: str
    privacy: dict[str, Any]
    epsilon: float
    charge_epsilon: float
    charge_epsilon_record: float
    charge_epsilon_attribute: float | None
    neighbouring: str
    epoch_seconds: int
    epoch_start: datetime
    grace_epochs: int
    window_epochs: int
    cap_window: float | None
    cap_lifetime: float
    memoized: bool
    created_at: datetime
    max_units_lifetime: int
    max_units_window: int | None
    memo_limit: int | None
    #: memoized: units charged at a device's first accepted report (its lifetime bound)
    lifetime_units: int
    protocol: BoundProtocol | None
    unavailable: str | None  # why the protocol could not be built on this server, if so
    #: the typed public config: its epoch and budget rules are the devices'
    public: PublicConfig

    def epoch_at(self, now: datetime) -> int:
        return self.public.epoch_at(as_utc(now))

    def window_of(self, epoch: int) -> int:
        return self.public.window_of(epoch)

    def public_view(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "config": self.config,
            "config_hash": self.config_hash,
            "privacy": self.privacy,
            "current_epoch": self.epoch_at(now),
            "created_at": self.created_at,
        }


def _compile(row: Any) -> CollectionRuntime:
    config = json.loads(row.config)
    public = PublicConfig.from_dict(config, row.id, accept=STORED_VERSIONS)
    privacy = json.loads(row.privacy)
    adapter = ADAPTERS.get(row.kind)
    protocol = None
    unavailable = None
    memo_limit = None
    if adapter is None:
        unavailable = f"unknown collection kind {row.kind!r}"
    else:
        try:
            sdk_object = adapter.build(config["mechanism"])
            protocol = BoundProtocol(adapter, sdk_object)
            memo_limit = adapter.memo_limit(sdk_object)
        except (KindUnavailable, ProtocolConfigError) as exc:
            unavailable = str(exc)
    charge = privacy["charge"]
    return CollectionRuntime(
        id=row.id,
        name=row.name,
        kind=row.kind,
        config=config,
        config_hash=row.config_hash,
        privacy=privacy,
        epsilon=row.epsilon,
        charge_epsilon=row.charge_epsilon,
        charge_epsilon_record=float(charge["epsilon_record"]),
        charge_epsilon_attribute=charge.get("epsilon_attribute"),
        neighbouring=row.neighbouring,
        epoch_seconds=int(row.epoch_seconds),
        epoch_start=as_utc(row.epoch_start),
        grace_epochs=row.grace_epochs,
        window_epochs=row.window_epochs,
        cap_window=row.cap_window,
        cap_lifetime=row.cap_lifetime,
        memoized=bool(row.memoized),
        created_at=as_utc(row.created_at),
        max_units_lifetime=public.max_units_lifetime,
        max_units_window=public.max_units_window,
        memo_limit=memo_limit,
        lifetime_units=int(charge.get("lifetime_units") or lifetime_units(public.max_units_lifetime, memo_limit)),
        protocol=protocol,
        unavailable=unavailable,
        public=public,
    )


class CollectionCache:
    """Compiled collections by id: they are immutable, so a hit never goes stale."""

    def __init__(self, engine: Engine, max_entries: int = 1024) -> None:
        self.engine = engine
        self.max_entries = max_entries
        self._items: dict[str, CollectionRuntime] = {}
        self._lock = threading.Lock()

    def get(self, collection_id: str, conn: Connection | None = None) -> CollectionRuntime | None:
        with self._lock:
            hit = self._items.get(collection_id)
        if hit is not None:
            return hit
        if conn is None:
            with read_transaction(self.engine) as own:
                row = own.execute(select(collections_t).where(collections_t.c.id == collection_id)).first()
        else:
            row = conn.execute(select(collections_t).where(collections_t.c.id == collection_id)).first()
        if row is None:
            return None
        compiled = _compile(row)
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items.pop(next(iter(self._items)))
            self._items[collection_id] = compiled
        return compiled

    def list(self, kind: str | None = None) -> list[CollectionRuntime]:
        with read_transaction(self.engine) as conn:
            query = select(collections_t.c.id).order_by(collections_t.c.created_at, collections_t.c.id)
            if kind is not None:
                query = query.where(collections_t.c.kind == kind)
            ids = conn.execute(query).scalars().all()
            return [c for c in (self.get(i, conn) for i in ids) if c is not None]
