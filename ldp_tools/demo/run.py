"""``ldp demo``: the product end to end on a fresh embedded database.

1. a fresh data directory (default ``./var/demo``) and SQLite database, migrated;
2. the real server as a subprocess — gunicorn with ``gunicorn.conf.py`` (or the
   development server) on 127.0.0.1 and a free port — whose clock is a file the demo
   moves (one epoch = one simulated day, a few seconds of real time);
3. API keys (admin, client, analyst, auditor) and three collections created through the
   API: a frequency collection (OUE on Adult's education), a multidimensional one (RS+FD
   on four Adult attributes) and a heavy-hitter one (PEM over short English words drawn
   from ``wordfreq``);
4. simulated devices — each a real SDK ``Client`` with its own state — report over HTTP
   day after day; after every day the demo releases the day's epoch through
   ``POST /v1/collections/{id}/releases``;
5. the estimates (``/estimates``, ``/heavy-hitters``), the release log, the audit
   summaries, the ledger verification and ``/metrics`` are read back through the API and
   printed beside the truth, and an HTML report with figures is written.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ldp_tools.demo.devices import Fleet, SessionOutcome, UploadRelay, device_root, remove_tree
from ldp_tools.demo.report import word
from ldp_tools.demo.server import CLOCK_ENV, FileClock

REPO = Path(__file__).resolve().parents[2]
DAY = 86400
DAYS = 4
FREQ_ATTRIBUTE = "education"
MULTIDIM_ATTRIBUTES = ("marital-status", "race", "sex", "income")
MULTIDIM_DAYS = 2
HH_DAYS = 2
HH_K = 8
HH_RELEASE_EPSILON = 8.0  # central (ε, δ = 1e-7) of the heavy-hitter releases (docs/privacy.md)


NO_PROXY_NOTE = (
    "serving WITHOUT a buffering reverse proxy: slow clients can stall the sync workers; "
    "production puts nginx in front (docker/nginx/, docs/operations.md)"
)


def say(message: str = "") -> None:
    print(message, flush=True)


def step(number: int, total: int, message: str) -> None:
    say(f"\n[{number}/{total}] {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the server process -----------------------------------------------------------------------------


@dataclass
class ServerProcess:
    mode: str
    env: dict[str, str]
    log_path: Path
    workers: int = 2
    port: int = 0
    metrics_port: int | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        """The metrics listener gunicorn's master runs (None: the development server has none)."""
        return None if self.metrics_port is None else f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 90.0) -> None:
        log = open(self.log_path, "ab")  # closed in stop()
        self._log = log
        if self.mode == "gunicorn":
            self.port = free_port()
            self.metrics_port = free_port()
            self.env = {**self.env, "LDP_METRICS_BIND": f"127.0.0.1:{self.metrics_port}"}
            command = [sys.executable, "-m", "gunicorn"]
            config = REPO / "gunicorn.conf.py"
            if config.is_file():
                command += ["-c", str(config)]
            command += ["-w", str(self.workers), "-b", f"127.0.0.1:{self.port}", "ldp_tools.demo.server:build_app()"]
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=log, start_new_session=True, cwd=str(REPO)
            )
        else:
            command = [sys.executable, "-m", "ldp_tools.demo.server", "0"]
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().strip()
            if not line.isdigit():
                self.stop()
                raise RuntimeError(f"the development server did not start; see {self.log_path}")
            self.port = int(line)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not become ready within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()


# --- a small API client for the admin / analyst / auditor side ------------------------------------


class Api:
    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url = url
        self.keys = keys
        self.http = httpx.Client(base_url=url, timeout=300.0)

    def _headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def get(self, path: str, role: str = "analyst", **params: Any) -> Any:
        r = self.http.get(path, params={k: v for k, v in params.items() if v is not None}, headers=self._headers(role))
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} -> {r.status_code}: {r.text[:300]}")
        return r.json()

    def post(self, path: str, body: dict[str, Any], role: str = "admin") -> Any:
        r = self.http.post(path, json=body, headers=self._headers(role))
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} -> {r.status_code}: {r.text[:500]}")
        return r.json()

    def all_rows(self, path: str, role: str = "analyst", **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(path, role, cursor=cursor, **params)
            rows.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    def close(self) -> None:
        self.http.close()


# --- the simulated population -------------------------------------------------------------------------


@dataclass
class Population:
    freq_values: np.ndarray  # education code per frequency device
    freq_labels: tuple[str, ...]
    freq_participation: np.ndarray  # (DAYS, n) bool
    md_values: np.ndarray  # (n, d)
    md_labels: list[tuple[str, ...]]
    hh_items: list[str]
    hh_day: np.ndarray  # which day each heavy-hitter device reports


def build_population(scale: float, rng: np.random.Generator) -> Population:
    from ldpserver.evaluation.datasets import load_adult, word_frequencies

    table = load_adult()
    n_freq = max(50, int(round(2500 * scale)))
    n_md = max(50, int(round(4000 * scale)))
    n_hh = max(50, int(round(6000 * scale)))
    rows = rng.permutation(len(table.codes))
    freq_rows, md_rows = rows[:n_freq], rows[n_freq : n_freq + n_md]
    j = table.names.index(FREQ_ATTRIBUTE)
    md_idx = [table.names.index(a) for a in MULTIDIM_ATTRIBUTES]
    words = word_frequencies("en", 5000)
    short = [w for w in words if w.isascii() and w.isalpha() and len(w.encode()) <= 4]
    p = np.asarray([words[w] for w in short], dtype=np.float64)
    hh_items = [short[i] for i in rng.choice(len(short), size=n_hh, p=p / p.sum())]
    return Population(
        freq_values=table.codes[freq_rows, j],
        freq_labels=table.categories[j],
        freq_participation=rng.random((DAYS, n_freq)) < 0.85,
        md_values=table.codes[md_rows][:, md_idx],
        md_labels=[table.categories[i] for i in md_idx],
        hh_items=hh_items,
        hh_day=np.arange(n_hh) % HH_DAYS,
    )


def collection_bodies() -> dict[str, dict[str, Any]]:
    from client_sdk import multidim

    md_sizes = [7, 5, 2, 2]  # marital-status, race, sex, income
    md_epsilon = multidim.calibrate_epsilon("rsfd-adp", 3.0, domain_sizes=md_sizes, neighbouring="tuple")
    epoch = {"seconds": DAY, "grace": 1}
    return {
        "frequency": {
            "name": "education (UCI Adult), one report per device per day",
            "kind": "frequency",
            "mechanism": {"mechanism": "oue", "epsilon": 2.0, "domain_size": 16},
            "epoch": epoch,
            "release": {"windows": [1, 2], "cumulative": True, "min_reports": 100},
            "budget": {"cap_lifetime": 2.0 * DAYS, "cap_per_window": 2.0, "window_epochs": 1},
        },
        "multidim": {
            "name": "marital status, race, sex, income (UCI Adult), RS+FD",
            "kind": "multidim",
            "mechanism": {"mechanism": "rsfd-adp", "epsilon": md_epsilon, "domain_sizes": md_sizes},
            "epoch": epoch,
            "release": {"windows": [1], "cumulative": True, "min_reports": 100},
            "budget": {"cap_lifetime": 3.0 * MULTIDIM_DAYS, "cap_per_window": 3.0, "window_epochs": 1},
        },
        "heavy_hitters": {
            "name": "short English words (wordfreq), PEM",
            "kind": "heavy_hitters",
            "mechanism": {
                "protocol": "pem",
                "epsilon": 5.0,
                "k": HH_K,
                "eta": 6,
                "domain": {"type": "string", "max_bytes": 4, "overflow": "truncate"},
            },
            "epoch": epoch,
            # central DP on heavy hitters needs many reports: at the demo's 6,000 devices the
            # default ε_release (1.5) leaves noise only; the demo states a larger one
            "release": {
                "windows": [1, HH_DAYS],
                "cumulative": False,
                "min_reports": 100,
                "epsilon": HH_RELEASE_EPSILON,
            },
            "budget": {"cap_lifetime": 5.0},
        },
    }


# --- the demo ----------------------------------------------------------------------------------------


@dataclass
class Timings:
    marks: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.marks[name] = self.marks.get(name, 0.0) + seconds


def _fresh_dir(data_dir: Path) -> None:
    """Empty the demo's own files in data_dir (never anything else)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("ldp.sqlite3", "ldp.sqlite3-wal", "ldp.sqlite3-shm", "clock.txt", "server.log"):
        (data_dir / name).unlink(missing_ok=True)
    for name in ("devices", "report", "prometheus"):
        shutil.rmtree(data_dir / name, ignore_errors=True)


def _truth_hist(codes: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(codes, minlength=k) / max(codes.size, 1)


def _fmt_interval(row: dict[str, Any]) -> str:
    return f"[{row['ci_lower']:7.4f}, {row['ci_upper']:7.4f}]"


def run_demo(
    *,
    data_dir: str | Path | None = None,
    scale: float = 1.0,
    seed: int | None = None,
    server: str = "gunicorn",
    workers: int = 2,
    oracles: bool = True,
    keep_devices: bool = False,
    threads: int = 64,
    processes: int | None = None,
) -> Path:
    """Run the demo; returns the path of the HTML report."""
    started = time.perf_counter()
    timings = Timings()
    seed = secrets.randbits(32) if seed is None else seed
    rng = np.random.default_rng(seed)
    data_dir = Path(data_dir or "var/demo").resolve()
    total_steps = 8 if oracles else 7
    if server == "gunicorn":
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            server = "dev"

    # 1. data directory and database ---------------------------------------------------------------
    step(1, total_steps, f"fresh data directory {data_dir}")
    _fresh_dir(data_dir)
    database_url = f"sqlite:///{data_dir / 'ldp.sqlite3'}"
    say(f"  database {database_url} (embedded SQLite, WAL); simulation seed {seed}; scale {scale:g}")

    from ldpserver import schema
    from ldpserver.db import make_engine
    from ldpserver.services.keys import KeyLimits, create_key

    t = time.perf_counter()
    schema.upgrade(database_url)
    engine = make_engine(database_url, null_pool=True)
    say(f"  ldp migrate: database at revision {schema.current_revision(engine)} (head {schema.head_revision()})")
    # the demo's devices all enrol from this machine's one address, far above the per-address
    # default a real app gets (ldp keys create --enrol-per-address-hour ...)
    demo_enrolment = KeyLimits(max_devices=200_000, enrol_per_hour=200_000, enrol_per_address_hour=200_000)
    keys = {
        role: create_key(
            engine, role, f"demo {role}", datetime.now(UTC), limits=demo_enrolment if role == "client" else None
        )[1]
        for role in ("admin", "client", "analyst", "auditor")
    }
    engine.dispose()
    say("  API keys created (ldp keys create): admin, client, analyst, auditor — stored hashed")
    say("  devices enrol with the client key on their first upload: server-chosen id + device secret")
    timings.add("setup", time.perf_counter() - t)

    # 2. the server ------------------------------------------------------------------------------------
    clock = FileClock(data_dir / "clock.txt")
    day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock.set(day0 + timedelta(hours=10))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        LDP_DATA_DIR=str(data_dir),
        LDP_LOG_LEVEL="WARNING",
        LDP_GUNICORN_LOG_LEVEL="warning",
        PROMETHEUS_MULTIPROC_DIR=str(data_dir / "prometheus"),
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        **{CLOCK_ENV: str(data_dir / "clock.txt")},
    )
    (data_dir / "prometheus").mkdir(exist_ok=True)
    proc = ServerProcess(server, env, data_dir / "server.log", workers=workers)
    step(2, total_steps, "starting the server")
    t = time.perf_counter()
    proc.start()
    timings.add("server start", time.perf_counter() - t)
    how = f"gunicorn, {workers} workers, gunicorn.conf.py" if server == "gunicorn" else "development server"
    say(f"  {proc.url} ({how}); /readyz answered 200 in {time.perf_counter() - t:.1f} s; log {proc.log_path}")
    say(f"  {NO_PROXY_NOTE} (loopback only here)")
    say(f"  simulated clock shared through {clock.path}: day 0 starts {day0:%Y-%m-%d} (epochs of one day)")

    api = Api(proc.url, keys)
    devices_dir, devices_tmp = device_root(data_dir / "devices")
    relay = UploadRelay()
    processes = min(2, os.cpu_count() or 1) if processes is None else processes
    pool = None
    if processes > 1:  # the devices' Python work would otherwise be bound to one core
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"))
    try:
        report_path = _run(
            api,
            proc,
            clock,
            day0,
            relay,
            pool,
            devices_dir,
            rng,
            scale,
            seed,
            oracles,
            timings,
            threads,
            total_steps,
            data_dir,
            how,
            processes,
        )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        relay.close()
        api.close()
        proc.stop()
        if devices_tmp and not keep_devices:
            remove_tree(devices_dir)
    elapsed = time.perf_counter() - started
    say(f"\ndemo finished in {elapsed:.0f} s — report: {report_path}")
    return report_path


def _run(
    api: Api,
    proc: ServerProcess,
    clock: FileClock,
    day0: datetime,
    relay: UploadRelay,
    pool: Any,
    devices_dir: Path,
    rng: np.random.Generator,
    scale: float,
    seed: int,
    oracles: bool,
    timings: Timings,
    threads: int,
    total_steps: int,
    data_dir: Path,
    how: str,
    processes: int,
) -> Path:
    from ldp_tools.demo import report

    # 3. collections -----------------------------------------------------------------------------------
    step(3, total_steps, "collections (POST /v1/collections, admin key)")
    bodies = collection_bodies()
    created = {kind: api.post("/v1/collections", body) for kind, body in bodies.items()}
    for kind, col in created.items():
        charge = col["privacy"]["charge"]
        extra = ""
        if col["privacy"].get("epsilon_attribute") is not None:  # multidim: tuple vs attribute level
            extra = f" (tuple level; one attribute alone: {col['privacy']['epsilon_attribute']:.3f})"
        say(
            f"  {col['id']} {kind:<13} ε charged per report {charge['epsilon']:.3f}{extra}; "
            f"calculator {col['privacy']['calculator']}; {col['config_hash'][:19]}…"
        )
    ids = {kind: col["id"] for kind, col in created.items()}

    # 4. devices, day after day ----------------------------------------------------------------------
    pop = build_population(scale, rng)
    n_freq, n_md, n_hh = pop.freq_values.size, pop.md_values.shape[0], len(pop.hh_items)
    step(4, total_steps, f"{n_freq + n_md + n_hh:,} simulated devices (SDK Client each) over {DAYS} days")
    say(f"  frequency: {n_freq:,} devices report their education every day they are active (85 %)")
    say(f"  multidim:  {n_md:,} devices report (marital status, race, sex, income) on days 0-{MULTIDIM_DAYS - 1}")
    say(f"  heavy hitters: {n_hh:,} devices report one word each (half on day 0, half on day 1)")
    fleets = {
        kind: Fleet(api.url, api.keys["client"], ids[kind], devices_dir / kind, clock.path, relay) for kind in ids
    }
    outcomes = {kind: SessionOutcome() for kind in ids}
    releases: dict[str, list[dict[str, Any]]] = {kind: [] for kind in ids}
    t_devices = 0.0
    t_release = 0.0
    for day in range(DAYS):
        clock.set(day0 + timedelta(days=day, hours=10))
        say(f"  day {day} ({(day0 + timedelta(days=day)):%Y-%m-%d})")
        t = time.perf_counter()
        active = np.flatnonzero(pop.freq_participation[day])
        outcomes["frequency"].add(
            fleets["frequency"].run(
                active.tolist(),
                [int(v) for v in pop.freq_values[active]],
                "education (OUE)",
                threads=threads,
                processes=pool,
            )
        )
        if day < MULTIDIM_DAYS:
            values = [tuple(int(x) for x in row) for row in pop.md_values]
            outcomes["multidim"].add(
                fleets["multidim"].run(
                    list(range(n_md)), values, "Adult tuple (RS+FD)", threads=threads, processes=pool
                )
            )
        if day < HH_DAYS:
            mine = np.flatnonzero(pop.hh_day == day)
            outcomes["heavy_hitters"].add(
                fleets["heavy_hitters"].run(
                    mine.tolist(), [pop.hh_items[i] for i in mine], "words (PEM)", threads=threads, processes=pool
                )
            )
        t_devices += time.perf_counter() - t
        # the next morning: release the day that just ended (it is in its grace period: the
        # release closes it, and any later upload for it is refused as epoch_closed)
        clock.set(day0 + timedelta(days=day + 1, hours=1))
        t = time.perf_counter()
        line = []
        for kind, cid in ids.items():
            outcome = api.post(f"/v1/collections/{cid}/releases", {"epoch": day})
            for item in outcome["releases"]:
                if item["epoch"] == day:
                    releases[kind].append(item)
                    line.append(f"{kind} #{item['number']}")
        t_release += time.perf_counter() - t
        say(f"    released epoch {day}: {', '.join(line)} ({time.perf_counter() - t:.1f} s)")
    timings.add("devices", t_devices)
    timings.add("releases", t_release)
    for kind, outcome in outcomes.items():
        if outcome.pending or outcome.rejected or outcome.errors:
            say(
                f"  WARNING {kind}: {outcome.rejected} rejected {outcome.reasons}, {outcome.pending} still queued, "
                f"errors {outcome.errors[:2]}"
            )
    relay_stats = dict(relay.stats)
    for outcome in outcomes.values():
        for name, n in outcome.relay.items():
            relay_stats[name] = relay_stats.get(name, 0) + n
    where = f"{processes if pool else 1} device process(es) × {threads} threads"
    say(
        f"  relay: {relay_stats['device_uploads']:,} device uploads merged into {relay_stats['upstream_batches']:,} "
        f"batches; {relay_stats['config_fetches']} config fetches (cached for every device); {where}"
    )
    say(
        f"  enrolment: {relay_stats.get('enrolments', 0):,} devices enrolled (server-chosen id + device secret) "
        f"in {relay_stats.get('enrol_requests', 0):,} merged requests; every upload proves each device's secret"
    )

    # the device's own guard: a device that reported on every day has spent its lifetime cap
    full = np.flatnonzero(pop.freq_participation.all(axis=0))
    guard: dict[str, Any] = {}
    if full.size:
        device = int(full[0])
        with fleets["frequency"].client(device) as client:
            from client_sdk.client import DeviceBudgetExceededError

            try:
                client.report(ids["frequency"], int(pop.freq_values[device]))
                guard["refused"] = None
            except DeviceBudgetExceededError as exc:
                guard["refused"] = str(exc)
            budget = client.budget(ids["frequency"])
            guard.update(
                client_id=client.client_id,
                spent=budget.lifetime.spent,
                cap=budget.lifetime.cap,
                acknowledged=budget.acknowledged,
            )
        ledger = api.get("/v1/audit/ledger", "auditor", collection=ids["frequency"], client_id=guard["client_id"])
        guard["server_rows"] = len(ledger["items"])
        guard["server_epsilon"] = sum(float(r["epsilon"]) for r in ledger["items"])

    # 5. read everything back through the API ---------------------------------------------------------
    step(5, total_steps, "estimates, heavy hitters, release log and audit, read back through the API")
    t = time.perf_counter()
    results = _collect(api, ids, pop)
    results["guard"] = guard
    timings.add("read back", time.perf_counter() - t)
    _print_results(results, pop, ids)

    # 6. metrics ------------------------------------------------------------------------------------------
    step(6, total_steps, "operations: /metrics (Prometheus, merged across gunicorn workers)")
    if proc.metrics_url is not None:  # what Prometheus scrapes: the master's loopback listener
        say(f"  scraped {proc.metrics_url} (the public port refuses /metrics without an admin key)")
        text = httpx.get(proc.metrics_url, timeout=30).text
    else:  # the development server has no listener: an admin key on the public port
        text = api.http.get("/metrics", headers={"Authorization": f"Bearer {api.keys['admin']}"}).text
    metrics = _parse_metrics(text)
    results["metrics"] = metrics
    for name in ("accepted", "duplicate", "rejected"):
        say(f"  ldp_reports_total{{status={name!r}}}: {metrics['reports'].get(name, 0):,.0f}")
    say(
        f"  ldp_ingest_batches_total: {metrics['batches']:,.0f}; ldp_releases_total: {metrics['releases']:,.0f}; "
        f"ldp_ledger_rows: {metrics['ledger_rows']:,.0f}"
    )

    oracle_results = None
    if oracles:
        step(7, total_steps, "every frequency oracle on all 48,842 Adult rows (in process, no server)")
        t = time.perf_counter()
        from ldp_tools.demo.oracles import run_oracle_demo

        oracle_results = run_oracle_demo(attribute=FREQ_ATTRIBUTE, epsilon=1.0, seed=seed, top=5)
        timings.add("oracles", time.perf_counter() - t)

    step(total_steps, total_steps, "HTML report")
    t = time.perf_counter()
    context = {
        "seed": seed,
        "scale": scale,
        "server": how,
        "url": proc.url,
        "data_dir": str(data_dir),
        "days": DAYS,
        "day0": day0.strftime("%Y-%m-%d"),
        "collections": created,
        "populations": {"frequency": n_freq, "multidim": n_md, "heavy_hitters": n_hh},
        "outcomes": {k: vars(v) for k, v in outcomes.items()},
        "relay": relay_stats,
        "releases": releases,
        "results": results,
        "oracles": oracle_results,
        "timings": timings.marks,
        "freq_labels": list(pop.freq_labels),
        "md_attributes": list(MULTIDIM_ATTRIBUTES),
        "md_labels": [list(x) for x in pop.md_labels],
    }
    path = report.write_report(data_dir / "report", context)
    timings.add("report", time.perf_counter() - t)
    say(f"  {path}")
    return path


def _collect(api: Api, ids: dict[str, str], pop: Population) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fid, mid, hid = ids["frequency"], ids["multidim"], ids["heavy_hitters"]

    # frequency: per-epoch estimates of every release, cumulative of the last
    log = api.all_rows(f"/v1/collections/{fid}/releases")
    per_epoch = []
    for item in log:
        rows = api.all_rows(f"/v1/collections/{fid}/estimates", release=item["number"], scope="epoch")
        day = item["epoch"]
        active = pop.freq_participation[day]
        truth = _truth_hist(pop.freq_values[active], 16)
        per_epoch.append(
            {
                "epoch": day,
                "release": item["number"],
                "rows": rows,
                "truth": truth.tolist(),
                "reports": int(active.sum()),
            }
        )
    cumulative = api.all_rows(f"/v1/collections/{fid}/estimates", scope="cumulative")
    counts = np.sum(
        [np.bincount(pop.freq_values[pop.freq_participation[d]], minlength=16) for d in range(DAYS)], axis=0
    )
    out["frequency"] = {
        "release_log": log,
        "per_epoch": per_epoch,
        "cumulative": cumulative,
        "cumulative_truth": (counts / counts.sum()).tolist(),
        "cumulative_reports": int(counts.sum()),
    }

    # multidim: cumulative marginals of the last release
    md_rows = api.all_rows(f"/v1/collections/{mid}/estimates", scope="cumulative")
    md_truth = [_truth_hist(pop.md_values[:, j], len(pop.md_labels[j])).tolist() for j in range(len(pop.md_labels))]
    out["multidim"] = {
        "cumulative": md_rows,
        "truth": md_truth,
        "release_log": api.all_rows(f"/v1/collections/{mid}/releases"),
    }

    # heavy hitters: cumulative discovery of the last release, and per epoch
    # heavy hitters are discovered from the stored raw reports of a scope: the window of
    # HH_DAYS epochs ending with the last day that had reports covers every device
    hh_rows = api.all_rows(f"/v1/collections/{hid}/heavy-hitters", release=HH_DAYS, scope="window", window=HH_DAYS)
    counts_hh = Counter(pop.hh_items)
    n = len(pop.hh_items)
    ranked = sorted(counts_hh.items(), key=lambda kv: (-kv[1], kv[0]))
    threshold = ranked[min(HH_K, len(ranked)) - 1][1]
    true_top = [(w, c / n) for w, c in ranked if c >= threshold]
    out["heavy_hitters"] = {
        "found": hh_rows,
        "true_top": true_top,
        "true_freq": {w: c / n for w, c in counts_hh.items()},
        "true_rank": {w: i + 1 for i, (w, _) in enumerate(ranked)},
        "release_log": api.all_rows(f"/v1/collections/{hid}/releases"),
        "per_epoch": [
            {"epoch": e, "rows": api.all_rows(f"/v1/collections/{hid}/heavy-hitters", release=e + 1, scope="epoch")}
            for e in range(HH_DAYS)
        ],
    }

    # audit
    out["audit"] = {kind: api.get("/v1/audit/summary", "auditor", collection=cid, bins=10) for kind, cid in ids.items()}
    out["verify"] = api.get("/v1/audit/verify", "auditor")
    out["rejections"] = api.get("/v1/audit/rejections", "auditor")
    return out


def _print_results(results: dict[str, Any], pop: Population, ids: dict[str, str]) -> None:
    freq = results["frequency"]
    truth = np.asarray(freq["cumulative_truth"])
    rows = [r for r in freq["cumulative"] if r["item"] is not None]
    part = rows[0]["participation"] if rows else None
    say(
        f"\n  education, cumulative over {DAYS} days: {freq['cumulative_reports']:,} reports "
        f"(participation, a noisy count under ε_release: {part:,.0f})"
    )
    say(f"    {'value':<14} {'true':>7} {'estimate':>9}   95% interval        {'norm-sub':>8}")
    for v in np.argsort(-truth)[:8]:
        r = rows[int(v)]
        say(
            f"    {pop.freq_labels[int(v)][:14]:<14} {truth[v]:7.4f} {r['frequency']:9.4f}   {_fmt_interval(r)}  "
            f"{r['postprocessed']:8.4f}"
        )
    est = np.asarray([r["frequency"] for r in rows])
    lo = np.asarray([r["ci_lower"] for r in rows])
    hi = np.asarray([r["ci_upper"] for r in rows])
    say(
        f"    all 16 values: MSE {np.mean((est - truth) ** 2):.2e}, intervals cover the truth for "
        f"{np.mean((lo <= truth) & (truth <= hi)):.0%}"
    )
    for e in freq["per_epoch"]:
        er = [r for r in e["rows"] if r["item"] is not None]
        if not er:
            say(f"    epoch {e['epoch']}: {e['rows'][0]['status']} ({e['rows'][0]['reason']})")
            continue
        t = np.asarray(e["truth"])
        f = np.asarray([r["frequency"] for r in er])
        say(
            f"    epoch {e['epoch']} (release #{e['release']}, {e['reports']:,} reports): "
            f"MSE {np.mean((f - t) ** 2):.2e}"
        )

    md = results["multidim"]
    say("\n  RS+FD marginals, cumulative (two reports per device):")
    for j, name in enumerate(MULTIDIM_ATTRIBUTES):
        attr_rows = [r for r in md["cumulative"] if r["attribute"] == j and r["item"] is not None]
        cells = []
        for r in attr_rows[:7]:
            cells.append(f"{pop.md_labels[j][r['item']][:10]} {md['truth'][j][r['item']]:.3f}/{r['frequency']:.3f}")
        say(f"    {name:<15} true/est: " + "; ".join(cells))

    hh = results["heavy_hitters"]
    say(f"\n  heavy hitters (PEM, k = {HH_K}), window of both days (release #{HH_DAYS}, GET /heavy-hitters):")
    say(
        f"    central DP for release readers at ε_release = {HH_RELEASE_EPSILON:g} (the default 1.5 needs far more "
        "than 6,000 reports for heavy hitters)"
    )
    say(f"    {'rank':>4} {'word':<8} {'estimate':>9}   95% interval        {'true':>7} {'true rank':>9}")
    top_words = {w for w, _ in hh["true_top"]}
    for r in [r for r in hh["found"] if r["item"] is not None and r["party"] is None]:
        w = str(r["item"])
        mark = "" if w in top_words else "  (not in the true top)"
        say(
            f"    {r['rank']:>4} {word(w)[:8]:<8} {r['frequency']:9.4f}   {_fmt_interval(r)}  "
            f"{hh['true_freq'].get(w, 0.0):7.4f} {hh['true_rank'].get(w, '-')!s:>9}{mark}"
        )
    found = {str(r["item"]) for r in hh["found"] if r["item"] is not None}
    say(
        f"    true top {HH_K} (tie-aware): "
        + ", ".join(f"{w}{'' if w in found else ' (missed)'}" for w, _ in hh["true_top"])
    )

    say("\n  privacy budget (GET /v1/audit/summary, auditor key):")
    for kind, s in results["audit"].items():
        q = s["quantiles"]
        say(
            f"    {kind:<13} {s['devices']:>6,} devices, {s['reports_accepted']:>6,} reports, ledger rows "
            f"{s['ledger_rows']:>6,}; ε per device p50 {q['p50']:.2f} max {q['max']:.2f} "
            f"(cap {s['cap_lifetime']:.2f}); "
            f"over cap: {s['max_over_cap']}"
        )
    v = results["verify"]
    say(
        f"    ledger hash chains (GET /v1/audit/verify): {'all intact' if v['ok'] else 'TAMPERED'} "
        f"({len(v['chains'])} chains)"
    )
    g = results.get("guard") or {}
    if g:
        say(
            f"    one device after {DAYS} days: spent {g['spent']:.1f} of {g['cap']:.1f} on the device, "
            f"acknowledged {g['acknowledged']:.1f}; the server ledger holds {g['server_rows']} rows = "
            f"{g['server_epsilon']:.1f}"
        )
        if g.get("refused"):
            say(f"    its 5th report was refused on the device: {g['refused'].split('.')[0]}")


def _parse_metrics(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"reports": {}, "batches": 0.0, "releases": 0.0, "ledger_rows": 0.0, "latency": {}}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            number = float(value)
        except ValueError:
            continue
        if name.startswith("ldp_reports_total{"):
            status = name.split('status="', 1)[1].split('"', 1)[0]
            out["reports"][status] = out["reports"].get(status, 0.0) + number
        elif name.startswith("ldp_ingest_batches_total"):
            out["batches"] += number
        elif name.startswith("ldp_releases_total"):
            out["releases"] += number
        elif name == "ldp_ledger_rows":
            out["ledger_rows"] = number
        elif name.startswith("ldp_ingest_batch_duration_seconds_bucket{"):
            le = name.split('le="', 1)[1].split('"', 1)[0]
            out["latency"][le] = out["latency"].get(le, 0.0) + number
    return out
