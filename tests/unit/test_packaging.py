"""The two distributions' static facts: one version, the SDK's package list, its dependencies.

The wheels themselves are built and installed into fresh virtual environments by
tests/system/test_packaging.py; the npm tarball by tests/system/test_web_package.py.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

from setuptools import find_packages

import client_sdk

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "client_sdk"


def test_the_version_is_written_once_and_everything_agrees() -> None:
    version = client_sdk.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    package = json.loads((SDK / "web" / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == version
    web_client = (SDK / "web" / "src" / "client" / "client.ts").read_text(encoding="utf-8")
    assert f'export const SDK_VERSION = "{version}";' in web_client
    from client_sdk.client.runtime import SDK_VERSION

    assert SDK_VERSION == version
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    # nowhere else: the pyproject files take it from client_sdk/_version.py
    for path in (ROOT / "pyproject.toml", SDK / "pyproject.toml"):
        project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
        assert "version" not in project and "version" in project["dynamic"]
    assert "read_version()" in (ROOT / "setup.py").read_text(encoding="utf-8")


def test_the_sdk_distribution_lists_every_subpackage_and_nothing_of_the_server() -> None:
    config = tomllib.loads((SDK / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {"client_sdk"} | {f"client_sdk.{p}" for p in find_packages(str(SDK), exclude=["web*"])}
    assert listed == found
    assert (SDK / "py.typed").is_file() and "py.typed" in config["tool"]["setuptools"]["package-data"]["client_sdk"]
    dependencies = [re.split(r"[<>=!~ ]", d)[0] for d in config["project"]["dependencies"]]
    assert dependencies == ["numpy", "rfc8785"]
    assert config["project"]["scripts"] == {"ldp-client": "client_sdk.cli:main"}


def test_the_sdk_imports_nothing_but_the_standard_library_numpy_and_rfc8785() -> None:
    allowed_third_party = {"numpy", "rfc8785"}
    import sys

    for path in SDK.rglob("*.py"):
        if "web" in path.relative_to(SDK).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed_third_party or top == "client_sdk", (path, name)


def test_evaluation_code_is_outside_the_sdk() -> None:
    assert not (SDK / "datasets.py").exists() and not (SDK / "heavy_hitters" / "metrics.py").exists()
    assert (ROOT / "ldpserver" / "evaluation" / "datasets.py").is_file()


def test_license_is_the_apache_text_in_every_package() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert (SDK / "LICENSE").read_text(encoding="utf-8") == text
    assert (SDK / "web" / "LICENSE").read_text(encoding="utf-8") == text
    for path in (ROOT / "pyproject.toml", SDK / "pyproject.toml"):
        assert tomllib.loads(path.read_text(encoding="utf-8"))["project"]["license"] == "Apache-2.0"
    assert json.loads((SDK / "web" / "package.json").read_text(encoding="utf-8"))["license"] == "Apache-2.0"


def test_constraints_pin_every_declared_dependency() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    declared = tomllib.loads((SDK / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for extra in root["optional-dependencies"].values():
        declared += extra
    setup_py = (ROOT / "setup.py").read_text(encoding="utf-8")
    block = setup_py[
        setup_py.index("SERVER_DEPENDENCIES = [") : setup_py.index("]\n", setup_py.index("SERVER_DEPENDENCIES"))
    ]
    declared += [d for d in re.findall(r'"([^"]+)"', block) if not d.startswith("ldp-analytics")]
    for requirement in declared:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[]", requirement)[0]).lower()
        if name == "setuptools":  # pip freeze leaves it out; the build backend's own lower bound applies
            continue
        assert name in pins, f"{requirement} is not pinned in constraints.txt"
