"""Build script of the server distribution (``ldp-analytics-server``); metadata is in pyproject.toml.

Only what pyproject.toml cannot say statically lives here:

* the version, read from ``client_sdk/_version.py`` (the one place it is written), and the
  dependency on the SDK distribution pinned to that same version;
* the Alembic migrations (``migrations/`` at the repository root) shipped inside the package
  as ``ldpserver.migrations``, found at run time through ``importlib.resources``;
* ``gunicorn.conf.py`` (repository root) copied into the wheel as ``ldpserver/gunicorn.conf.py``
  so that ``ldp serve`` finds it in an installed server too.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def read_version() -> str:
    tree = ast.parse((ROOT / "client_sdk" / "_version.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise RuntimeError("client_sdk/_version.py has no __version__")


VERSION = read_version()

SERVER_DEPENDENCIES = [
    f"ldp-analytics-sdk=={VERSION}",
    "flask>=3.0",
    "flask-openapi3>=4.0",
    "pydantic>=2.6",
    "pydantic-settings>=2.2",
    "sqlalchemy>=2.0",
    "alembic>=1.13",
    "gunicorn>=22.0",
    "opendp>=0.12",
    "psycopg[binary]>=3.1",
    "click>=8.1",
    "structlog>=24.1",
    "prometheus-client>=0.20",
    "pyyaml>=6.0",
    "redis>=5.0",
    "orjson>=3.9",
]


class BuildPyWithGunicornConfig(build_py):
    """build_py that also copies the repository's gunicorn.conf.py into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "ldpserver" / "gunicorn.conf.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "gunicorn.conf.py", target)


setup(
    version=VERSION,
    install_requires=SERVER_DEPENDENCIES,
    packages=[*find_packages(include=["ldpserver", "ldpserver.*", "ldp_tools", "ldp_tools.*"]), "ldpserver.migrations"],
    package_dir={"ldpserver.migrations": "migrations"},
    cmdclass={"build_py": BuildPyWithGunicornConfig},
)
