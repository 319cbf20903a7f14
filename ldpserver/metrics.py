"""Prometheus metrics: what the services count, and the ``/metrics`` endpoint.

The services call three small hooks — :func:`observe_batch` (ingestion),
:func:`observe_release` (continual release) and, through :func:`init_app`, one per HTTP
request — and never touch ``prometheus_client`` themselves. No label ever names a device,
a report or an API key: labels are the collection *kind*, the outcome, the stable
rejection reason, the release trigger, the HTTP method, the Flask route rule (``/v1/
collections/<collection_id>/reports``, not the concrete path) and the status code.

Multiprocess (gunicorn): when ``PROMETHEUS_MULTIPROC_DIR`` is set (``gunicorn.conf.py``
sets and cleans it), every worker writes its samples to memory-mapped files in that
directory and ``/metrics`` merges all workers' files, whichever worker answers the
scrape; the master's ``child_exit`` hook calls ``mark_process_dead`` for a worker that
exits. Without the variable (``ldp serve --dev``, tests) the process-local default
registry is served.

Gauges that describe the database (ledger rows, collections, whether the database
answers) are computed at scrape time with two cheap queries: the ledger size is the sum
of the per-collection chain heads' ``seq`` (one row per collection in ``ledger_heads``),
never a ``COUNT(*)`` over the ledger. A database that is down makes ``ldp_database_up``
0; the endpoint itself still answers.

| metric | type | labels |
| --- | --- | --- |
| ``ldp_reports_total`` | counter | kind, status (accepted / duplicate / rejected), reason |
| ``ldp_ingest_batches_total`` | counter | kind |
| ``ldp_ingest_batch_duration_seconds`` | histogram | kind |
| ``ldp_ingest_batch_reports`` | histogram | kind |
| ``ldp_releases_total`` | counter | kind, trigger |
| ``ldp_release_duration_seconds`` | histogram | kind, trigger |
| ``ldp_http_requests_total`` | counter | method, route, status |
| ``ldp_http_request_duration_seconds`` | histogram | method, route |
| ``ldp_ledger_rows`` | gauge (scrape) | — |
| ``ldp_collections`` | gauge (scrape) | — |
| ``ldp_database_up`` | gauge (scrape) | — |
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = structlog.get_logger("ldpserver.metrics")

# multiprocess mode writes files in this directory from the first sample on: it must exist
if os.environ.get(MULTIPROC_ENV):
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RELEASE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_BATCH_SIZES = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

REPORTS = Counter(
    "ldp_reports",
    "Reports judged by ingestion, by outcome (accepted, duplicate, rejected) and rejection reason",
    ["kind", "status", "reason"],
)
BATCHES = Counter("ldp_ingest_batches", "Upload batches ingested (committed)", ["kind"])
INGEST_SECONDS = Histogram(
    "ldp_ingest_batch_duration_seconds",
    "Time to validate, judge and commit one upload batch",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
)
BATCH_REPORTS = Histogram("ldp_ingest_batch_reports", "Reports per upload batch", ["kind"], buckets=_BATCH_SIZES)
RELEASES = Counter("ldp_releases", "Releases created", ["kind", "trigger"])
RELEASE_SECONDS = Histogram(
    "ldp_release_duration_seconds",
    "Time to close, compact and release one epoch",
    ["kind", "trigger"],
    buckets=_RELEASE_BUCKETS,
)
HTTP_REQUESTS = Counter("ldp_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "ldp_http_request_duration_seconds", "HTTP request latency", ["method", "route"], buckets=_LATENCY_BUCKETS
)


# --- hooks the services call ----------------------------------------------------------------


def _never_raise(function: Callable[..., None]) -> Callable[..., None]:
    """Metrics must never fail the request or the transaction they describe."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            function(*args, **kwargs)
        except Exception as exc:
            log.warning("metrics_failed", hook=function.__name__, error=f"{type(exc).__name__}: {exc}")

    return wrapper


@_never_raise
def observe_batch(kind: str, result: Any, seconds: float) -> None:
    """One committed upload batch: ``result`` is the ingestion's ``BatchResult``."""
    REPORTS.labels(kind, "accepted", "").inc(result.accepted)
    REPORTS.labels(kind, "duplicate", "").inc(result.duplicates)
    if result.rejected:
        reasons = Tally(r["reason"] or "unknown" for r in result.result_list() if r and r.get("status") == "rejected")
        for reason, count in reasons.items():
            REPORTS.labels(kind, "rejected", reason).inc(count)
    BATCHES.labels(kind).inc()
    INGEST_SECONDS.labels(kind).observe(seconds)
    BATCH_REPORTS.labels(kind).observe(result.accepted + result.duplicates + result.rejected)


@_never_raise
def observe_release(kind: str, trigger: str, seconds: float) -> None:
    """One release created (``trigger``: scheduler, admin or cli)."""
    RELEASES.labels(kind, trigger).inc()
    RELEASE_SECONDS.labels(kind, trigger).observe(seconds)


# --- scrape-time gauges ------------------------------------------------------------------------


class DatabaseCollector:
    """Ledger rows, collections and database reachability, read when scraped."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy import text

        up = GaugeMetricFamily("ldp_database_up", "1 when the database answered the scrape's queries")
        rows = collections = None
        try:
            from ldpserver.api.health import sqlite_file_reachable

            sqlite_file_reachable(self.engine)  # pooled SQLite connections outlive a moved file
            with self.engine.connect() as conn:
                rows = conn.execute(text("SELECT COALESCE(SUM(seq), 0) FROM ledger_heads")).scalar_one()
                collections = conn.execute(text("SELECT COUNT(*) FROM collections")).scalar_one()
            up.add_metric([], 1)
        except Exception:  # any failure means "down"; the scrape itself must answer
            up.add_metric([], 0)
        yield up
        if rows is not None:
            ledger = GaugeMetricFamily(
                "ldp_ledger_rows", "Charges in the budget ledger (sum of the hash chains' heads), all collections"
            )
            ledger.add_metric([], float(rows))
            yield ledger
            count = GaugeMetricFamily("ldp_collections", "Collections defined")
            count.add_metric([], float(collections or 0))
            yield count


class _Chain:
    """A registry-like view over several collectors, for ``generate_latest``."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Metric]:
        for source in self.sources:
            yield from source.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render(engine: Any) -> bytes:
    """The exposition text: every process's samples (multiprocess) or this process's, plus
    the scrape-time database gauges."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        base: Any = registry
    else:
        base = REGISTRY
    return generate_latest(_Chain(base, DatabaseCollector(engine)))  # type: ignore[arg-type]


# --- the Flask side --------------------------------------------------------------------------


def init_app(app: Any) -> None:
    """Register ``GET /metrics`` (admin role on the public listener; Prometheus scrapes the
    separate listener of ``ldpserver/metrics_listener.py``) and the per-request HTTP metrics."""
    from flask import Response, g, request

    from ldpserver.api.common import operation

    extras, errors = operation("GET", "/metrics")

    @app.get(
        "/metrics",
        summary="Prometheus metrics (admin; Prometheus scrapes the metrics listener instead)",
        responses={200: None, **errors},
        **extras,
    )
    def metrics_endpoint():
        """The Prometheus text exposition, merged across gunicorn workers. Exact counters per
        kind move with single uploads, so they are not public: the metrics listener
        (``LDP_METRICS_BIND``, loopback by default) serves the same text without a key."""
        return Response(render(app.extensions["ldp"].engine), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @_never_raise
    def observe_request(response: Any) -> None:
        rule = request.url_rule
        route = rule.rule if rule is not None else "<unmatched>"
        if route != "/metrics":
            HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            started = g.get("started")  # set by the app's first before_request hook
            if started is not None:
                HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)

    @app.after_request
    def _metrics_finish(response):
        observe_request(response)
        return response
