"""The three requests the device makes, built once: headers, URLs and bodies.

``GET /v1/collections/{id}`` (the public config), ``POST /v1/devices`` (enrolment) and
``POST /v1/collections/{id}/reports`` (a batch). Each returns the
:class:`~client_sdk.client.transport.HttpResponse` or raises
:class:`~client_sdk.client.errors.TransportError`; what to do with the answer (retry,
give up, split) is the uploader's and the config cache's business.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence

from client_sdk._version import __version__
from client_sdk.client.outbox import OutboxRow
from client_sdk.client.transport import HttpResponse, Transport

SDK_VERSION = __version__
#: the report envelope version this SDK sends (``{"wire": 2, "reports": [...]}``, no memo_count)
ENVELOPE_VERSION = 2


class ServerApi:
    def __init__(self, base_url: str, api_key: str | None, transport: Transport) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.transport = transport

    def headers(self, json_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"ldp-client/{SDK_VERSION}"}
        if json_body:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def url(self, *parts: str) -> str:
        return self.base_url + "/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)

    def fetch_config(self, collection_id: str, timeout: float) -> HttpResponse:
        url = self.url("v1", "collections", collection_id)
        return self.transport.request("GET", url, headers=self.headers(False), body=None, timeout=timeout)

    def enrol(self, timeout: float) -> HttpResponse:
        url = self.url("v1", "devices")
        return self.transport.request("POST", url, headers=self.headers(True), body=b'{"count":1}', timeout=timeout)

    def upload(self, collection_id: str, body: bytes, timeout: float) -> HttpResponse:
        url = self.url("v1", "collections", collection_id, "reports")
        return self.transport.request("POST", url, headers=self.headers(True), body=body, timeout=timeout)


def batch_body(rows: Sequence[OutboxRow], client_id: str, device_secret: str) -> bytes:
    """The upload envelope of a batch. Wire version 2: the memo count stays on the device (it
    would tell the server when the device moved to a value it never held); the server
    charges a lifetime bound instead."""
    reports = [
        {
            "report_id": row.report_id,
            "client_id": client_id,
            "config_hash": row.config_hash,
            "epoch": row.epoch,
            "payload": json.loads(row.payload),
        }
        for row in rows
    ]
    document = {"wire": ENVELOPE_VERSION, "reports": reports, "devices": {client_id: device_secret}}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
