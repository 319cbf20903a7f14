"""The Android/JVM SDK end to end (issue 18): JVM device processes against a live server
(gunicorn on SQLite, started here). Devices report to OUE, RS+FD and PEM collections; an
admin release's estimates match the data; PEM finds the planted top items; the device
refuses the report past its cap; a JVM killed between report and flush loses nothing and a
second JVM delivers every report exactly once.

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
    jars = [ANDROID / "target" / "classes", ANDROID / "target" / "test-classes", GSON] + ([SQLITE_JDBC] if SQLITE_JDBC.exists() else [])
    return os.pathsep.join(map(str, jars))


def harness(cp: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["java", "-cp", cp, "org.ldp.sdk.DeviceHarness", *args], capture_output=True, text=True, timeout=400)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def admin(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60, **kwargs)


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
            {"name": "android-oue", "kind": "frequency", "mechanism": {"mechanism": "oue", "epsilon": 2.0, "domain_size": K},
             "budget": {"cap_lifetime": 2.0}, **common}
        )
        md = server.create_collection(
            {"name": "android-rsfd", "kind": "multidim", "mechanism": {"mechanism": "rsfd-grr", "epsilon": 2.0, "domain_sizes": DOMAINS},
             "budget": {"cap_lifetime": 20.0}, **common}
        )
        pem = server.create_collection(
            {"name": "android-pem", "kind": "heavy_hitters",
             "mechanism": {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2},
             "budget": {"cap_lifetime": 4.0}, **common}
        )
        n = 1200
        values = rng.choice(K, size=n, p=TRUE_WEIGHTS / TRUE_WEIGHTS.sum())
        tuples = np.stack([rng.choice(4, size=n, p=[0.5, 0.2, 0.2, 0.1]), rng.choice(3, size=n, p=[0.6, 0.3, 0.1])], axis=1)
        items = np.concatenate([np.full(540, 7), np.full(360, 200), rng.integers(0, 256, n - 900)])
        rng.shuffle(items)
        plans: list[list[dict[str, Any]]] = [[], []]
        for i in range(n):
            plans[i % 2].append(
                {"dir": str(tmp_path / "devices" / f"d{i}"),
                 "reports": [[oue["id"], int(values[i])], [md["id"], [int(x) for x in tuples[i]]], [pem["id"], {"item": int(items[i])}]]}
            )
        procs = []
        for j, plan in enumerate(plans):
            path = tmp_path / f"plan{j}.json"
            path.write_text(json.dumps(plan))
            procs.append(subprocess.Popen(["java", "-cp", classpath, "org.ldp.sdk.DeviceHarness", "simulate", server.url, server.client_key, str(path)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=500) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, out + err
        results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
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
            hang = subprocess.Popen(["java", "-cp", classpath, "org.ldp.sdk.DeviceHarness", "report-and-hang", server.url, server.client_key,
                                     crashed, md["id"], "5", "[1, 2]"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
            r = admin(server, "POST", f"/v1/collections/{col['id']}/releases", json={"epoch": col["current_epoch"], "force": True})
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
        found = {str(r["item"]) for r in rows(server, pem["id"], "heavy-hitters") if r.get("party") in (None, "") and r.get("rank") in (1, 2)}
        assert found == {"7", "200"}, rows(server, pem["id"], "heavy-hitters")
        assert server.verify(oue["id"]) and server.verify(md["id"]) and server.verify(pem["id"])
