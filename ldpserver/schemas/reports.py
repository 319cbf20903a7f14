"""The ingestion wire contract (fixed: the SDK is written against it).

Request (wire version 2)::

    {"wire": 2,
     "reports": [{"report_id": "<32 lowercase hex = 16 random bytes>",
                  "client_id": "<1-64 chars [A-Za-z0-9_-]>",
                  "config_hash": "sha256:<64 hex>",
                  "epoch": <int>,
                  "payload": {...mechanism payload...}}],
     "devices": {"<client_id>": "<device secret>", ...}}

Nothing in the envelope depends on the device's data: version 1 sent ``memo_count`` (how
many memos the device held), which told the server when a device moved to a value it had
never held; version 2 has no such field (memoized collections are charged their lifetime
bound at a device's first report, ``services/ingest.py``). A version 1 body (no ``wire``)
is refused as a whole (400 ``unsupported-wire-version``, ``api/reports.py``).

``devices`` holds the secret of every device the batch reports for (``POST /v1/devices``
gave both); a report whose device is not enrolled by this client key, or whose secret is
missing or wrong, is rejected ``device_unauthenticated``.

Response 200 (results in request order)::

    {"accepted": n, "duplicates": n, "rejected": n,
     "results": [{"report_id": ..., "status": "accepted" | "duplicate" | "rejected",
                  "reason": <stable code or null>, "detail": <text or null>}]}

Each report is validated on its own (a bad one is rejected with a reason and the rest of
the batch is kept), so the request model only checks the envelope.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Report")

    report_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="16 random bytes as 32 lowercase hex digits")
    client_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the device's pseudonymous id")
    config_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="hash of the collection's public config")
    epoch: StrictInt = Field(ge=-(2**62), le=2**62)
    payload: dict[str, Any] = Field(description='the mechanism\'s wire payload, e.g. {"v": 1, "m": "oue", ...}')


_REPORT_SCHEMA = ReportIn.model_json_schema()


#: the envelope version this server speaks (``IngestRequest.wire``)
ENVELOPE_VERSION = 2


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wire: Literal[2] = Field(description="the envelope version: 2 (version 1 carried memo_count and is refused)")
    reports: Annotated[
        list[Any],
        WithJsonSchema({"type": "array", "items": _REPORT_SCHEMA, "minItems": 1}),
    ] = Field(min_length=1)
    devices: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")],
    ] = Field(
        default_factory=dict,
        max_length=20000,
        description="client_id -> device secret, for every device this batch reports for",
    )


Status = Literal["accepted", "duplicate", "rejected"]


class ReportResult(BaseModel):
    report_id: str | None
    status: Status
    reason: str | None = Field(description="stable code (see docs/api.md), null when accepted")
    detail: str | None


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ReportResult]
