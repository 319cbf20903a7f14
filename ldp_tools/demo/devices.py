"""The demo's device fleet: one SDK ``Client`` per simulated device, uploading through a relay.

Every simulated device is a real :class:`client_sdk.client.Client` with its own state
directory (its random ``client_id``, its local budget ledger, its durable outbox): it
fetches and verifies the collection's config, perturbs its true value with the OS CSPRNG,
charges its own budget, queues the report and delivers it with ``flush()`` over HTTP.

Thousands of devices each sending a one-report batch would mostly measure HTTP overhead,
so the devices share an :class:`UploadRelay` transport — what an edge gateway in front of
the API does: uploads that arrive within a few milliseconds of each other are merged
into one batch for ``POST /v1/collections/{id}/reports`` and the server's per-report
results (in request order) are split back to each device, which then settles its outbox
and ledger exactly as if it had sent the batch itself; the merged batch carries every
device's secret (``devices``), so the server checks each device exactly as for a direct
upload. First-time enrolments (``POST /v1/devices``) arriving together are merged the same
way into one ``{"count": n}`` enrolment and one credential is handed to each device. The
public config (immutable, and verified against its hash by every device) is cached by the relay.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from client_sdk.client import Client, DeviceBudgetExceededError, HttpResponse, RetryPolicy, TransportError

DEVICE_RETRY = RetryPolicy(base_delay=0.05, max_delay=1.0, request_timeout=120.0)


@dataclass
class _Upload:
    key: tuple[str, str]  # (url, authorization)
    reports: list[Any]  # an enrolment: one placeholder
    arrived: float
    devices: dict[str, str] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    response: HttpResponse | None = None
    error: Exception | None = None


class UploadRelay:
    """A ``Transport`` shared by many devices: merges their report uploads into large
    batches, caches public configs, passes everything else through.

    ``stats`` counts device requests and upstream batches.
    """

    def __init__(self, max_reports: int = 1000, linger: float = 0.03, parallel: int = 2) -> None:
        self.max_reports = max_reports
        self.linger = linger
        self._http = httpx.Client(timeout=120.0, limits=httpx.Limits(max_connections=parallel + 4))
        self._cond = threading.Condition()
        self._pending: list[_Upload] = []
        self._closed = False
        self._configs: dict[str, HttpResponse] = {}
        self.stats = {
            "device_uploads": 0,
            "upstream_batches": 0,
            "reports": 0,
            "config_fetches": 0,
            "enrolments": 0,
            "enrol_requests": 0,
        }
        self._threads = [
            threading.Thread(target=self._dispatch, daemon=True, name=f"relay-{i}") for i in range(parallel)
        ]
        for thread in self._threads:
            thread.start()

    # --- the Transport protocol ------------------------------------------------------------
    def request(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> HttpResponse:
        enrolment = method == "POST" and url.endswith("/v1/devices")
        if (method == "POST" and url.endswith("/reports") and body) or enrolment:
            key = (url, headers.get("Authorization", ""))
            if enrolment:
                upload = _Upload(key, [None], time.monotonic())
            else:
                document = json.loads(body or b"{}")
                upload = _Upload(key, document["reports"], time.monotonic(), document.get("devices", {}))
            with self._cond:
                self._pending.append(upload)
                if not enrolment:
                    self.stats["device_uploads"] += 1
                self._cond.notify_all()
            upload.done.wait()
            if upload.error is not None:
                raise upload.error
            assert upload.response is not None
            return upload.response
        if method == "GET" and "/v1/collections/" in url:
            cached = self._configs.get(url)
            if cached is not None:
                return cached
            response = self._forward(method, url, headers, body)
            if response.status == 200:
                self._configs[url] = response
                self.stats["config_fetches"] += 1
            return response
        return self._forward(method, url, headers, body)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        self._http.close()

    # --- internals -------------------------------------------------------------------------------
    def _forward(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        try:
            r = self._http.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        return HttpResponse(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    def _take(self) -> list[_Upload] | None:
        """Wait for uploads; return one merged group (same URL and key), or None when closed."""
        with self._cond:
            while True:
                while not self._pending:
                    if self._closed:
                        return None
                    self._cond.wait()
                first = self._pending[0]
                deadline = first.arrived + self.linger
                while first in self._pending:
                    queued = sum(len(u.reports) for u in self._pending if u.key == first.key)
                    remaining = deadline - time.monotonic()
                    if queued >= self.max_reports or remaining <= 0 or self._closed:
                        break
                    self._cond.wait(remaining)
                if first not in self._pending:
                    continue  # another dispatcher took it meanwhile
                group: list[_Upload] = []
                total = 0
                for upload in list(self._pending):
                    if upload.key != first.key:
                        continue
                    if group and total + len(upload.reports) > self.max_reports:
                        break
                    group.append(upload)
                    total += len(upload.reports)
                    self._pending.remove(upload)
                return group

    def _dispatch(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            url, auth = group[0].key
            enrolment = url.endswith("/v1/devices")
            reports = [r for u in group for r in u.reports]
            if enrolment:
                document: dict[str, Any] = {"count": len(group)}
            else:
                devices = {k: v for u in group for k, v in u.devices.items()}
                document = {"wire": 2, "reports": reports, "devices": devices}
            body = json.dumps(document, separators=(",", ":")).encode()
            headers = {"Authorization": auth, "Content-Type": "application/json", "Accept": "application/json"}
            try:
                upstream = self._forward("POST", url, headers, body)
            except TransportError as exc:
                for upload in group:
                    upload.error = exc
                    upload.done.set()
                continue
            if enrolment:
                self._split_enrolment(group, upstream)
                continue
            self.stats["upstream_batches"] += 1
            self.stats["reports"] += len(reports)
            if upstream.status != 200:  # the same answer for every device (503 + Retry-After, ...)
                for upload in group:
                    upload.response = upstream
                    upload.done.set()
                continue
            results = upstream.json()["results"]
            offset = 0
            for upload in group:
                mine = results[offset : offset + len(upload.reports)]
                offset += len(upload.reports)
                statuses = [r["status"] for r in mine]
                doc = {
                    "accepted": statuses.count("accepted"),
                    "duplicates": statuses.count("duplicate"),
                    "rejected": statuses.count("rejected"),
                    "results": mine,
                }
                upload.response = HttpResponse(200, {"content-type": "application/json"}, json.dumps(doc).encode())
                upload.done.set()

    def _split_enrolment(self, group: list[_Upload], upstream: HttpResponse) -> None:
        """One credential from a merged enrolment to each waiting device."""
        self.stats["enrol_requests"] += 1
        if upstream.status != 201:
            for upload in group:
                upload.response = upstream
                upload.done.set()
            return
        devices = upstream.json()["devices"]
        self.stats["enrolments"] += len(devices)
        for upload, device in zip(group, devices, strict=True):
            doc = json.dumps({"devices": [device]}).encode()
            upload.response = HttpResponse(201, {"content-type": "application/json"}, doc)
            upload.done.set()


class Progress:
    """A plain progress bar on stderr (one line, redrawn; a few lines when not a terminal)."""

    def __init__(self, label: str, total: int, width: int = 28) -> None:
        self.label = label
        self.total = max(total, 1)
        self.width = width
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last = -1.0
        self._last_quarter = -1

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        fraction = min(done / self.total, 1.0)
        if self.tty:
            if not force and now - self._last < 0.1 and done < self.total:
                return
            self._last = now
        else:
            quarter = int(fraction * 4)
            if quarter == self._last_quarter and not force:
                return
            self._last_quarter = quarter
        filled = int(round(self.width * fraction))
        rate = done / max(now - self.started, 1e-9)
        line = (
            f"  {self.label:<30} [{'#' * filled}{'.' * (self.width - filled)}] {done:>6,}/{self.total:,} "
            f"{rate:7,.0f}/s {extra}"
        )
        sys.stderr.write(("\r" + line) if self.tty else (line + "\n"))
        sys.stderr.flush()

    def finish(self, done: int, extra: str = "") -> None:
        self.update(done, extra, force=True)
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


@dataclass
class SessionOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    refused_by_device: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    relay: dict[str, int] = field(default_factory=dict)  # relay counters of worker processes

    def add(self, other: SessionOutcome) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.refused_by_device += other.refused_by_device
        self.pending += other.pending
        self.errors.extend(other.errors[:3])
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        for name, n in other.relay.items():
            self.relay[name] = self.relay.get(name, 0) + n


class Fleet:
    """Simulated devices of one collection: device i keeps its state in ``root/i``.

    ``run`` drives the devices from a thread pool in this process, or — given a process
    pool — in chunks spread over worker processes (each with its own relay and threads):
    the devices' SDK work is Python and would otherwise be bound to one core.
    """

    def __init__(
        self, base_url: str, api_key: str, collection_id: str, root: Path, clock_path: Path, relay: UploadRelay | None
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.collection_id = collection_id
        self.root = root
        self.clock_path = clock_path
        self.relay = relay
        root.mkdir(parents=True, exist_ok=True)

    def spec(self) -> tuple[str, str, str, str, str]:
        return self.base_url, self.api_key, self.collection_id, str(self.root), str(self.clock_path)

    def client(self, device: int) -> Client:
        from ldp_tools.demo.server import FileClock

        assert self.relay is not None
        return Client(
            self.base_url,
            self.api_key,
            str(self.root / f"{device:06d}"),
            clock=FileClock(self.clock_path),
            transport=self.relay,
            retry=DEVICE_RETRY,
        )

    def _session(self, device: int, value: Any, party: Any) -> SessionOutcome:
        out = SessionOutcome()
        with self.client(device) as client:
            try:
                client.report(self.collection_id, value, party=party)
            except DeviceBudgetExceededError:
                out.refused_by_device = 1
                return out
            result = client.flush(timeout=300)
        out.accepted, out.duplicates, out.rejected = result.accepted, result.duplicates, result.rejected
        out.pending = result.remaining
        out.errors = list(result.errors)
        out.reasons = dict(result.reasons)
        return out

    def run_local(
        self,
        devices: Sequence[int],
        values: Sequence[Any],
        parties: Sequence[Any] | None,
        threads: int,
        progress: Progress | None = None,
    ) -> SessionOutcome:
        total = SessionOutcome()
        done = 0
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [
                pool.submit(self._session, d, values[i], None if parties is None else parties[i])
                for i, d in enumerate(devices)
            ]
            for future in as_completed(futures):
                total.add(future.result())
                done += 1
                if progress is not None:
                    progress.update(done, f"accepted {total.accepted:,}")
        return total

    def run(
        self,
        devices: Sequence[int],
        values: Sequence[Any],
        label: str,
        *,
        parties: Sequence[Any] | None = None,
        threads: int = 64,
        processes: Any = None,
        chunk: int = 250,
    ) -> SessionOutcome:
        """Each device reports its value once and flushes."""
        progress = Progress(label, len(devices))
        if processes is None:
            total = self.run_local(devices, values, parties, threads, progress)
            progress.finish(len(devices), f"accepted {total.accepted:,}")
            return total
        total = SessionOutcome()
        futures = []
        for start in range(0, len(devices), chunk):
            part = slice(start, start + chunk)
            futures.append(
                processes.submit(
                    _run_chunk,
                    self.spec(),
                    list(devices[part]),
                    list(values[part]),
                    None if parties is None else list(parties[part]),
                    threads,
                )
            )
        done = 0
        for future in as_completed(futures):
            outcome, n = future.result()
            total.add(outcome)
            done += n
            progress.update(done, f"accepted {total.accepted:,}")
        progress.finish(done, f"accepted {total.accepted:,}")
        return total


_worker_relay: UploadRelay | None = None


def _run_chunk(
    spec: tuple[str, str, str, str, str],
    devices: list[int],
    values: list[Any],
    parties: list[Any] | None,
    threads: int,
) -> tuple[SessionOutcome, int]:
    """A worker process's share of a fleet (its relay lives as long as the process)."""
    global _worker_relay
    if _worker_relay is None:
        _worker_relay = UploadRelay()
    base_url, api_key, collection_id, root, clock_path = spec
    fleet = Fleet(base_url, api_key, collection_id, Path(root), Path(clock_path), _worker_relay)
    before = dict(_worker_relay.stats)
    outcome = fleet.run_local(devices, values, parties, threads)
    outcome.relay = {k: v - before.get(k, 0) for k, v in _worker_relay.stats.items()}
    return outcome, len(devices)


def device_root(preferred: Path) -> tuple[Path, bool]:
    """Where the simulated devices keep their state: a RAM-backed directory when the OS has
    one (thousands of fsync'd SQLite files on a disk would dominate the run time; a phone
    has its own flash per device), else ``preferred``. Returns (path, is_temporary)."""
    shm = Path("/dev/shm")
    if shm.is_dir():
        try:
            return Path(tempfile.mkdtemp(prefix="ldp-demo-devices-", dir=shm)), True
        except OSError:
            pass
    preferred.mkdir(parents=True, exist_ok=True)
    return preferred, False


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
