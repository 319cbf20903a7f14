"""The Android/JVM SDK end to end (issue 18): JVM device processes against a live server
(gunicorn on SQLite, started here). Devices report to OUE, RS+FD and PEM collections; an
admin release's estimates match the data; PEM finds the planted top items; the device
refuses the report past its cap; a JVM killed between report and flush loses nothing and a
second JVM delivers every report exactly once. A second test runs JVM devices against a
memoized longitudinal collection over three epochs (the harness server's settable clock, read
by the JVMs through LDP_TEST_CLOCK_FILE): releases match, repeated values cost no new memo.

Needs ``mvn`` and ``java`` (skipped with a message otherwise); builds the SDK's classes
offline (``mvn -o -q test-compile``) and runs ``org.ldp.sdk.DeviceHarness`` from them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.system.test_client_harness import live_server

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
ANDROID = REPO / "client_sdk" / "android"
M2 = Path.home() / ".m2" / "repository"
GSON = M2 / "com" / "google" / "code" / "gson" / "gson" / "2.11.0" / "gson-2.11.0.jar"
SQLITE_JDBC = Path("/usr/share/java/sqlite-jdbc.jar")  # Debian's libxerial-sqlite-jdbc-java (dev.py installs it)
K = 8
TRUE_WEIGHTS = np.array([8, 6, 5, 4, 3, 2, 1, 1], dtype=float)
DOMAINS = [4, 3]


@pytest.fixture(scope="module")
def classpath() -> str:
    if shutil.which("mvn") is None or shutil.which("java") is None:
        pytest.skip("mvn/java not installed: the Android SDK end-to-end test needs them")
    if not GSON.exists():
        pytest.skip(f"{GSON} is not in the local Maven repository")
    done = subprocess.run(["mvn", "-o", "-q", "test-compile"], cwd=ANDROID, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    jars = [ANDROID / "target" / "classes", ANDROID / "target" / "test-classes", GSON] + (
        [SQLITE_JDBC] if SQLITE_JDBC.exists() else []
    )
    return os.pathsep.join(map(str, jars))


def harness(
    cp: str, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["java", "-cp", cp, "org.ldp.sdk.DeviceHarness", *args], capture_output=True, text=True, timeout=400, env=env
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def run_fleet(
    cp: str, server: Any, plans: list[list[dict[str, Any]]], folder: Path, name: str, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One JVM process per plan (``DeviceHarness simulate``), all at once; each one's summary line."""
    procs = []
    for j, plan in enumerate(plans):
        path = folder / f"{name}{j}.json"
        path.write_text(json.dumps(plan))
        command = ["java", "-cp", cp, "org.ldp.sdk.DeviceHarness", "simulate", server.url, server.client_key, str(path)]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outs = [p.communicate(timeout=500) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def admin(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, server.url + path, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60, **kwargs
    )


def rows(server: Any, cid: str, endpoint: str) -> list[dict[str, Any]]:
    r = admin(server, "GET", f"/v1/collections/{cid}/{endpoint}", params={"scope": "epoch", "limit": 10000})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def within(row: dict[str, Any], truth: float) -> bool:
    """The true frequency lies within 4 standard errors of the estimate (the published
    variance): the 95 % interval alone would miss one of 8 values a third of the time."""
    return abs(row["frequency"] - truth) <= 4 * math.sqrt(row["variance"])


def test_jvm_devices_report_end_to_end(tmp_path: Path, classpath: str) -> None:
    pytest.importorskip("gunicorn")
    rng = np.random.default_rng(18)
    with live_server(tmp_path / "server", mode="gunicorn") as server:
        # releases carry central DP noise (ε_release per device-epoch): at its largest allowed
        # value here, and PEM publishes only items significant with that noise included, so
        # 1,200 devices with one PEM report each (cap = ε: u = 1, the sensitivity the noise
        # is scaled to) are what PEM needs to find both planted items reliably
        release = {"windows": [1], "cumulative": False, "min_reports": 50, "epsilon": 10.0}
        common = {"epoch": {"seconds": 86400, "grace": 1}, "release": release}
        oue = server.create_collection(
            {
                "name": "android-oue",
                "kind": "frequency",
                "mechanism": {"mechanism": "oue", "epsilon": 2.0, "domain_size": K},
                "budget": {"cap_lifetime": 2.0},
                **common,
            }
        )
        md = server.create_collection(
            {
                "name": "android-rsfd",
                "kind": "multidim",
                "mechanism": {"mechanism": "rsfd-grr", "epsilon": 2.0, "domain_sizes": DOMAINS},
                "budget": {"cap_lifetime": 20.0},
                **common,
            }
        )
        pem = server.create_collection(
            {
                "name": "android-pem",
                "kind": "heavy_hitters",
                "mechanism": {
                    "protocol": "pem",
                    "epsilon": 4.0,
                    "k": 2,
                    "domain": {"type": "integer", "bits": 8},
                    "eta": 2,
                },
                "budget": {"cap_lifetime": 4.0},
                **common,
            }
        )
        n = 1200
        values = rng.choice(K, size=n, p=TRUE_WEIGHTS / TRUE_WEIGHTS.sum())
        tuples = np.stack(
            [rng.choice(4, size=n, p=[0.5, 0.2, 0.2, 0.1]), rng.choice(3, size=n, p=[0.6, 0.3, 0.1])], axis=1
        )
        items = np.concatenate([np.full(540, 7), np.full(360, 200), rng.integers(0, 256, n - 900)])
        rng.shuffle(items)
        plans: list[list[dict[str, Any]]] = [[], []]
        for i in range(n):
            plans[i % 2].append(
                {
                    "dir": str(tmp_path / "devices" / f"d{i}"),
                    "reports": [
                        [oue["id"], int(values[i])],
                        [md["id"], [int(x) for x in tuples[i]]],
                        [pem["id"], {"item": int(items[i])}],
                    ],
                }
            )
        results = run_fleet(classpath, server, plans, tmp_path, "plan")
        assert sum(r["delivered"] for r in results) == 3 * n
        assert sum(r["remaining"] for r in results) == 0 and sum(r["refused"] for r in results) == 0

        # the device refuses the report past its cap (2 x epsilon 2.0 > cap 2.0): nothing is sent
        capped = str(tmp_path / "capped")
        harness(classpath, "report", server.url, server.client_key, capped, oue["id"], "3")
        refused = harness(classpath, "report", server.url, server.client_key, capped, oue["id"], "4", check=False)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert json.loads(refused.stdout)["scope"] == "lifetime"
        flushed = json.loads(harness(classpath, "flush", server.url, server.client_key, capped).stdout)
        assert flushed["accepted"] == 1
        ledger = server.ledger(oue["id"], flushed["client_id"])
        assert len(ledger) == 1

        # a JVM killed between report and flush loses nothing; a second JVM delivers each report
        # once: with the default file journal, and with the SQLite store where the driver exists
        stores = [str(tmp_path / "crashed")] + ([str(tmp_path / "crashed.sqlite3")] if SQLITE_JDBC.exists() else [])
        for crashed in stores:
            hang = subprocess.Popen(
                [
                    "java",
                    "-cp",
                    classpath,
                    "org.ldp.sdk.DeviceHarness",
                    "report-and-hang",
                    server.url,
                    server.client_key,
                    crashed,
                    md["id"],
                    "5",
                    "[1, 2]",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert hang.stdout is not None
            line = json.loads(hang.stdout.readline())
            assert line["queued"] == 5
            hang.send_signal(signal.SIGKILL)
            hang.wait(10)
            delivered = json.loads(harness(classpath, "flush", server.url, server.client_key, crashed).stdout)
            assert delivered["accepted"] == 5 and delivered["remaining"] == 0, delivered
            again = json.loads(harness(classpath, "flush", server.url, server.client_key, crashed).stdout)
            assert again["accepted"] == 0 and again["duplicates"] == 0
            assert len(server.ledger(md["id"], delivered["client_id"])) == 5
            budget = json.loads(harness(classpath, "budget", server.url, server.client_key, crashed, md["id"]).stdout)
            assert budget["reports"] == 5 and budget["accepted"] == 5 and budget["pending"] == 0

        # the admin releases the epoch; the estimates match the data
        for col in (oue, md, pem):
            r = admin(
                server,
                "POST",
                f"/v1/collections/{col['id']}/releases",
                json={"epoch": col["current_epoch"], "force": True},
            )
            assert r.status_code in (200, 201), r.text
        freq_truth = Counter(int(v) for v in values)
        freq_truth[3] += 1  # the capped device's one report (value 3)
        total = n + 1
        estimates = [r for r in rows(server, oue["id"], "estimates") if r["status"] == "released"]
        assert len(estimates) == K
        for row in estimates:
            assert within(row, freq_truth[int(row["item"])] / total), row
        marginals = [r for r in rows(server, md["id"], "estimates") if r["status"] == "released"]
        assert len(marginals) == sum(DOMAINS)
        crashed_tuple, extra = (1, 2), 5 * len(stores)  # the killed JVMs' reports
        for row in marginals:
            a, v = int(row["attribute"]), int(row["item"])
            truth = (int(np.sum(tuples[:, a] == v)) + (extra if crashed_tuple[a] == v else 0)) / (n + extra)
            assert within(row, truth), row
        found = {
            str(r["item"])
            for r in rows(server, pem["id"], "heavy-hitters")
            if r.get("party") in (None, "") and r.get("rank") in (1, 2)
        }
        assert found == {"7", "200"}, rows(server, pem["id"], "heavy-hitters")
        assert server.verify(oue["id"]) and server.verify(md["id"]) and server.verify(pem["id"])


LONG_K = 8
LONG_WEIGHTS = np.array([6, 5, 4, 3, 2, 2, 1, 1], dtype=float)
T0 = 1893456000.0  # 2030-01-01T00:00:00Z, the longitudinal collection's epoch start


def test_jvm_devices_report_a_memoized_longitudinal_collection_over_epochs(tmp_path: Path, classpath: str) -> None:
    """JVM devices report to an L-OSUE collection with a memoized budget for three epochs
    (the live server's clock and the devices' move together): every epoch's release matches the
    data within its interval; a device that repeats its value holds one memo and was charged
    ε∞ once on the device (the server charged the lifetime bound once, at the first report),
    one that moved to another value holds two; the cap refuses a fourth memo."""
    rng = np.random.default_rng(1818)
    with live_server(tmp_path / "server") as server:
        body = {
            "name": "android-l-osue",
            "kind": "longitudinal",
            "mechanism": {
                "kind": "longitudinal",
                "mechanism": "l-osue",
                "epsilon_perm": 2.0,
                "epsilon_first": 1.0,
                "domain_size": LONG_K,
            },
            "epoch": {"seconds": 60, "start": "2030-01-01T00:00:00Z", "grace": 10},
            "budget": {"cap_lifetime": 6.0, "memoized": True},
            "release": {"windows": [1], "cumulative": False, "min_reports": 50, "epsilon": 10.0},
        }
        created = server.create_collection(body)
        cid, lifetime = created["id"], created["privacy"]["charge"]["lifetime_epsilon"]
        n, epochs = 400, 3
        first = rng.choice(LONG_K, size=n, p=LONG_WEIGHTS / LONG_WEIGHTS.sum())
        values = np.repeat(first[:, None], epochs, axis=1)
        movers = rng.random(n) < 0.25  # a quarter of the devices move to another value at epoch 2
        values[movers, 2] = (first[movers] + 1 + rng.integers(0, LONG_K - 1, movers.sum())) % LONG_K
        env = {**os.environ, "LDP_TEST_CLOCK_FILE": str(server.clock.path)}
        for epoch in range(epochs):
            server.clock.set(T0 + 60 * epoch + 1)
            plans: list[list[dict[str, Any]]] = [[], []]
            for i in range(n):
                plans[i % 2].append(
                    {"dir": str(tmp_path / "devices" / f"d{i}"), "reports": [[cid, int(values[i, epoch])]]}
                )
            results = run_fleet(classpath, server, plans, tmp_path, f"long-plan{epoch}-", env=env)
            assert sum(r["delivered"] for r in results) == n and sum(r["remaining"] for r in results) == 0
            # a memo is charged only when a device reports a value it holds no memo for
            expected_new = n if epoch == 0 else (int(movers.sum()) if epoch == 2 else 0)
            assert sum(r["new_memos"] for r in results) == sum(r["units"] for r in results) == expected_new

        # the device ledgers: a repeated value created no new charge
        stayer, mover = int(np.flatnonzero(~movers)[0]), int(np.flatnonzero(movers)[0])
        for device, memos in ((stayer, 1), (mover, 2)):
            budget = json.loads(
                harness(
                    classpath,
                    "budget",
                    server.url,
                    server.client_key,
                    str(tmp_path / "devices" / f"d{device}"),
                    cid,
                    env=env,
                ).stdout
            )
            assert budget["unit"] == "memo" and budget["memo_count"] == memos and budget["units"] == memos, budget
            assert budget["spent"] == budget["acknowledged"] == 2.0 * memos and budget["reports"] == epochs, budget
            # the server charged the lifetime bound once, at the device's first report
            ledger = server.ledger(cid, budget["client_id"])
            assert len(ledger) == 1 and ledger[0]["epsilon"] == lifetime and ledger[0]["epoch"] == 0, ledger
        summary = server.summary(cid)
        assert summary["reports_accepted"] == n * epochs and summary["epsilon_total"] == n * lifetime

        # the cap (6.0 = 3 memos of ε∞ 2.0) refuses a device's fourth memo, nothing is sent
        dev = str(tmp_path / "devices" / f"d{mover}")
        others = [v for v in range(LONG_K) if v not in (int(values[mover, 0]), int(values[mover, 2]))]
        assert (
            harness(classpath, "report", server.url, server.client_key, dev, cid, str(others[0]), env=env).returncode
            == 0
        )
        refused = harness(
            classpath, "report", server.url, server.client_key, dev, cid, str(others[1]), check=False, env=env
        )
        assert refused.returncode == 3 and json.loads(refused.stdout)["scope"] == "lifetime", (
            refused.stdout + refused.stderr
        )
        assert "a new memo" in json.loads(refused.stdout)["refused"]
        # an existing memo still reports at the cap, at no charge
        again = json.loads(
            harness(classpath, "report", server.url, server.client_key, dev, cid, str(others[0]), env=env).stdout
        )
        assert again["epsilon"] == 0.0
        flushed = json.loads(harness(classpath, "flush", server.url, server.client_key, dev, env=env).stdout)
        assert flushed["accepted"] == 2 and flushed["remaining"] == 0, flushed

        # every epoch's release matches the data within its interval
        for epoch in range(epochs):
            r = admin(server, "POST", f"/v1/collections/{cid}/releases", json={"epoch": epoch, "force": True})
            assert r.status_code in (200, 201), r.text
            truth = Counter(int(v) for v in values[:, epoch])
            total = n + (2 if epoch == 2 else 0)
            if epoch == 2:
                truth[others[0]] += 2  # the mover's two reports at the cap
            released = [
                row for row in rows(server, cid, "estimates") if row["status"] == "released"
            ]  # the latest release
            assert len(released) == LONG_K, released
            for row in released:
                assert within(row, truth[int(row["item"])] / total), (epoch, row)
        assert server.verify(cid)
