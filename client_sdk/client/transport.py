"""HTTP for the device, standard library only (``urllib.request``).

A transport is any object with ``request(method, url, *, headers, body, timeout) ->
HttpResponse`` that raises :class:`~client_sdk.client.errors.TransportError` when no HTTP
response arrived. Tests inject their own (a fake server, or a proxy); apps may wrap their
platform's HTTP stack the same way.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Any, Protocol

from client_sdk.client.errors import TransportError

MAX_RETRY_AFTER = 3600.0


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def problem_detail(self) -> tuple[str, dict[str, Any] | None]:
        """(human detail, problem document) of an error response."""
        try:
            doc = self.json()
        except (ValueError, UnicodeDecodeError):
            text = self.body[:200].decode("utf-8", "replace").strip()
            return (text or "no detail"), None
        if isinstance(doc, dict):
            return str(doc.get("detail") or doc.get("title") or doc), doc
        return str(doc)[:200], None

    def retry_after(self, now: float | None = None) -> float | None:
        """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped."""
        raw = self.headers.get("retry-after")
        if raw is None:
            return None
        raw = raw.strip()
        try:
            seconds = float(raw)
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None:
                return None
            seconds = when.timestamp() - (time.time() if now is None else now)
        if seconds != seconds:  # NaN
            return None
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Transport(Protocol):
    def request(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> HttpResponse: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: the Authorization header must not travel to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibTransport:
    """The default transport: ``urllib.request`` (proxies from the environment, TLS verified)."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect())

    def request(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> HttpResponse:
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=max(timeout, 0.001)) as resp:
                return HttpResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            try:
                data = exc.read()
            except (OSError, HTTPException):
                data = b""
            headers = {k.lower(): v for k, v in exc.headers.items()} if exc.headers else {}
            return HttpResponse(exc.code, headers, data)
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransportError(f"{method} {url}: {type(reason).__name__}: {reason}") from None
