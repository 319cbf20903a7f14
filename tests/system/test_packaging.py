"""The two Python distributions, built and installed as a user would (no checkout on sys.path).

From a copy of the files git tracks (what a clean clone holds), ``pip wheel`` builds
``ldp-analytics-sdk`` (client_sdk/) and ``ldp-analytics-server`` (the root). Then, each in a
fresh virtual environment, dependencies pinned by constraints.txt, run from a directory
outside the checkout with ``python -I`` (no PYTHONPATH, no current directory on sys.path):

* **SDK wheel only**: the README's mechanism example runs, ``ldp-client`` answers, and
  ``import ldpserver`` fails (the server is not in the SDK);
* **both wheels** (the image's install step: docker/Dockerfile installs exactly these with
  ``--no-deps`` after the pinned dependencies): the image's entry point (docker/entrypoint.sh)
  runs ``ldp migrate`` against the packaged migrations, ``ldp serve`` starts gunicorn with the
  packaged gunicorn.conf.py, ``/readyz`` is ready at the head revision, an SDK ``Client`` in
  that environment reports, and an admin release publishes the report.

Dependencies come from PyPI through pip's cache (nothing else is downloaded).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.system.ops_helpers import REPO, Proc, free_port

pytestmark = [pytest.mark.timeout(900)]


class ServerProc(Proc):
    """:class:`Proc` started in ``cwd`` (gunicorn puts its working directory on sys.path: not the checkout)."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, port: int, cwd: Path) -> None:
        self.log_path = log
        self._log = open(log, "ab")  # closed in stop()
        self.port = port
        self.proc = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=self._log, start_new_session=True, cwd=cwd
        )


def run(command: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no virtualenv of ours, nothing of the checkout."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_CACHE_DIR", "PIP_CONFIG_FILE", "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO)))
    env.update(extra)
    return env


def tracked_copy(destination: Path) -> Path:
    """The files of a clean clone (git's tracked and not-ignored files), copied to ``destination``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.exists() or source.is_dir():
            continue  # deleted in the work tree, or a submodule
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clean clone holds")
    root = tmp_path_factory.mktemp("packaging")
    source = tracked_copy(root / "source")
    dist = root / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist]
    run([*pip_wheel, source / "client_sdk"], cwd=root)
    run([*pip_wheel, source], cwd=root)
    return dist


def make_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", path], cwd=path.parent)
    return path / "bin"


def pip_install(venv_bin: Path, dist: Path, *requirements: str) -> None:
    """pip (ours) installs into the fresh environment, pinned by constraints.txt, our wheels from dist/."""
    command = [sys.executable, "-m", "pip", "--python", venv_bin / "python", "install", "-q"]
    command += ["--disable-pip-version-check", "-c", REPO / "constraints.txt", "--find-links", dist, *requirements]
    run(command, cwd=dist.parent)


def readme_mechanism_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The mechanism contract") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_wheels_are_named_and_versioned_from_one_place(wheels: Path) -> None:
    from client_sdk import __version__

    names = sorted(p.name for p in wheels.glob("*.whl"))
    assert names == [
        f"ldp_analytics_sdk-{__version__}-py3-none-any.whl",
        f"ldp_analytics_server-{__version__}-py3-none-any.whl",
    ]
    import zipfile

    sdk = zipfile.ZipFile(wheels / names[0]).namelist()
    server = zipfile.ZipFile(wheels / names[1]).namelist()
    assert "client_sdk/py.typed" in sdk and not any(n.startswith("ldpserver/") for n in sdk)
    assert not any(n.startswith("client_sdk/web") or n.endswith("datasets.py") for n in sdk)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in sdk)
    assert not any(n.startswith("client_sdk/") for n in server)
    assert "ldpserver/migrations/env.py" in server and "ldpserver/gunicorn.conf.py" in server
    assert any(re.fullmatch(r"ldpserver/migrations/versions/0001_\w+\.py", n) for n in server)
    assert {"ldpserver/dashboard/static/dashboard.js", "ldpserver/dashboard/templates/dashboard.html"} <= set(server)
    metadata = (
        zipfile.ZipFile(wheels / names[1]).read(f"ldp_analytics_server-{__version__}.dist-info/METADATA").decode()
    )
    assert f"Requires-Dist: ldp-analytics-sdk=={__version__}" in metadata
    # the demo and the simulator ship beside the server, not in it; their extra stays optional
    assert {"ldp_tools/demo/run.py", "ldp_tools/simulate.py"} <= set(server)
    assert not any(n.startswith("ldpserver/demo") or n == "ldpserver/simulate.py" for n in server)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: httpx")]
    assert any('extra == "demo"' in line for line in requires) and all("extra ==" in line for line in requires), (
        requires
    )
    assert "License-Expression: Apache-2.0" in metadata


def test_sdk_wheel_alone_runs_the_readme_example_and_has_no_server(wheels: Path, tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "sdk-venv")
    pip_install(venv, wheels, "ldp-analytics-sdk")
    work = tmp_path / "work"
    work.mkdir()
    script = "import numpy as np\nvalues = np.arange(2000) % 100\n" + readme_mechanism_example()
    script += "\nprint(m.privacy.epsilon, est.n)\nimport client_sdk\nprint(client_sdk.__file__)\n"
    out = run([venv / "python", "-I", "-c", script], cwd=work, env=clean_env()).split()
    assert out[:2] == ["1.0", "2001"]
    assert out[2].startswith(str(tmp_path / "sdk-venv"))  # the installed SDK, not the checkout
    missing = subprocess.run(
        [venv / "python", "-I", "-c", "import ldpserver"], cwd=work, env=clean_env(), capture_output=True, text=True
    )
    assert missing.returncode != 0 and "ModuleNotFoundError: No module named 'ldpserver'" in missing.stderr
    assert "report" in run([venv / "ldp-client", "--help"], cwd=work, env=clean_env())
    assert not (venv / "ldp").exists()
    installed = run([sys.executable, "-m", "pip", "--python", venv / "python", "list", "--format=json"], cwd=work)
    assert {p["name"].lower() for p in json.loads(installed)} == {"ldp-analytics-sdk", "numpy", "rfc8785"}


def test_server_wheels_migrate_serve_report_and_release(wheels: Path, tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "server-venv")
    pip_install(venv, wheels, "ldp-analytics-server")
    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    env = clean_env(
        DATABASE_URL=f"sqlite:///{work / 'ldp.sqlite3'}",
        PATH=str(venv) + os.pathsep + clean_env()["PATH"],
        PROMETHEUS_MULTIPROC_DIR=str(work / "prometheus"),
        LDP_LOG_LEVEL="WARNING",
    )
    where = run(
        [venv / "python", "-I", "-c", "import ldpserver.schema as s; print(s.MIGRATIONS_DIR)"], cwd=work, env=env
    )
    assert where.strip().startswith(str(tmp_path / "server-venv"))

    # the image's entry point (docker/entrypoint.sh) migrates, then runs what it is given
    entrypoint = [REPO / "docker" / "entrypoint.sh"]
    out = run([*entrypoint, "ldp", "keys", "create", "--role", "admin", "--name", "ops"], cwd=work, env=env)
    assert "is at revision" in out
    admin = out.strip().splitlines()[-1]
    client_key = run([venv / "ldp", "keys", "create", "--role", "client", "--name", "app"], cwd=work, env=env).strip()

    # `ldp serve`: gunicorn with the gunicorn.conf.py inside the installed package
    server = ServerProc([str(venv / "ldp"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                        env, work / "serve.log", port, cwd=work)  # fmt: skip
    try:
        server.wait_ready(timeout=90)
        ready = httpx.get(server.url + "/readyz", timeout=5).json()
        assert ready["status"] == "ready" and ready["database"] == "sqlite"
        # the dashboard's page and static files come from the installed package's data
        assert httpx.get(server.url + "/dashboard", timeout=5).status_code == 200
        script = httpx.get(server.url + "/dashboard/static/dashboard.js", timeout=5)
        assert script.status_code == 200 and len(script.content) > 1000
    finally:
        assert server.stop() == 0, server.log()

    # the image's command: the entry point migrates (again: a no-op), then execs gunicorn with the
    # packaged gunicorn.conf.py (LDP_APP_DIR holds none), bound by LDP_BIND as in the image
    port = free_port()
    image_env = {**env, "LDP_APP_DIR": str(work), "LDP_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
    server = ServerProc([str(REPO / "docker" / "entrypoint.sh")], image_env, work / "entrypoint.log", port, cwd=work)
    try:
        server.wait_ready(timeout=90)
        assert "is at revision" in server.log()
        body = {
            "name": "wheel smoke test",
            "kind": "frequency",
            "mechanism": {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4},
            "epoch": {"seconds": 3600, "grace": 1},
            "release": {"windows": [1], "min_reports": 1},
            "budget": {"cap_lifetime": 10.0},
        }
        created = httpx.post(server.url + "/v1/collections", json=body, headers={"Authorization": f"Bearer {admin}"})
        assert created.status_code == 201, created.text
        collection = created.json()
        assert collection["config"]["version"] == 2

        report = f"""
import sys
from client_sdk import Client
with Client({server.url!r}, {client_key!r}, {str(work / "device")!r}) as client:
    client.report({collection["id"]!r}, 2)
    result = client.flush(timeout=30)
print(result.accepted)
"""
        assert run([venv / "python", "-I", "-c", report], cwd=work, env=env).split()[0] == "1"

        release = httpx.post(
            f"{server.url}/v1/collections/{collection['id']}/releases",
            json={"epoch": collection["current_epoch"], "force": True},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert release.status_code in (200, 201), release.text
        assert release.json()["created"] == [1]
        published = httpx.get(
            f"{server.url}/v1/collections/{collection['id']}/releases/1",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        assert published.status_code == 200, published.text
        import hashlib

        assert published.headers["x-release-sha256"] == hashlib.sha256(published.content).hexdigest()
        document = published.json()
        assert document["epoch"] == collection["current_epoch"]
    finally:
        assert server.stop() == 0, server.log()
