"""The web SDK as an npm user gets it: ``npm pack`` (which builds on ``prepack``), install the
tarball into a fresh temporary project, and run a node test and a TypeScript check against it.

The installed package must resolve through its ``exports`` (ESM bundle with types, the IIFE
bundle as ``@ldp-analytics/web-sdk/iife``), carry its license, need no runtime dependency
(npm ``canonicalize`` is bundled), and hash a shared vector's config as the Python SDK does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "client_sdk" / "web"
NAME = "@ldp-analytics/web-sdk"

NODE_TEST = r"""
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import vm from "node:vm";

import * as LDP from "@ldp-analytics/web-sdk";

const vectors = JSON.parse(readFileSync(process.env.LDP_VECTORS, "utf8"));

test("the installed package hashes configs as the Python SDK does (RFC 8785)", async () => {
  for (const { value, canonical, config_hash } of vectors.objects) {
    assert.equal(LDP.canonicalJson(value), canonical);
    if (config_hash !== undefined) assert.equal(await LDP.configHash(value), config_hash);
  }
});

test("the installed package perturbs and exposes its version", () => {
  const m = LDP.create("oue", { epsilon: 1, domainSize: 16 });
  const payload = m.perturb(3);
  assert.equal(payload.m, "oue");
  assert.equal(LDP.SDK_VERSION, process.env.LDP_VERSION);
});

test("the IIFE bundle resolves through exports and defines the global LDP", () => {
  const require = createRequire(import.meta.url);
  const path = require.resolve("@ldp-analytics/web-sdk/iife");
  const context = vm.createContext({ TextEncoder, crypto: globalThis.crypto });
  vm.runInContext(readFileSync(path, "utf8"), context);
  assert.equal(typeof context.LDP.create, "function");
  assert.equal(context.LDP.canonicalJson({ b: 1.0, a: 1e-7 }), '{"a":1e-7,"b":1}');
});
"""

TS_CHECK = """
import { canonicalJson, create, type FrequencyOracle } from "@ldp-analytics/web-sdk";
const m: FrequencyOracle = create("grr", { epsilon: 1, domainSize: 4 });
const text: string = canonicalJson(m.config);
export { text };
"""


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on PATH on CI: the web SDK package must be checked there")
        pytest.skip(f"{name} is not on PATH")
    return found


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{' '.join(command)} failed in {cwd}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_npm_pack_installs_into_a_fresh_project_and_works(tmp_path: Path) -> None:
    npm, node = tool("npm"), tool("node")
    if not (WEB / "node_modules" / "typescript").exists():
        run([npm, "ci", "--no-audit", "--no-fund"], WEB)
    packed = json.loads(run([npm, "pack", "--json", "--pack-destination", str(tmp_path)], WEB))
    tarball = tmp_path / packed[0]["filename"]
    with tarfile.open(tarball) as archive:
        files = set(archive.getnames())
    for needed in ("package/package.json", "package/LICENSE", "package/README.md", "package/dist/index.js",
                   "package/dist/index.d.ts", "package/dist/ldp-sdk.min.js"):  # fmt: skip
        assert needed in files, needed
    assert not any(f.startswith(("package/src/", "package/test/", "package/node_modules/")) for f in files)

    manifest = json.loads((WEB / "package.json").read_text(encoding="utf-8"))
    assert manifest["name"] == NAME and manifest["license"] == "Apache-2.0" and "private" not in manifest
    assert "dependencies" not in manifest  # canonicalize is bundled: nothing to install at run time
    assert manifest["scripts"]["prepack"] == "npm run build"

    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    run([npm, "install", "--no-audit", "--no-fund", "--offline", str(tarball)], project)
    assert (project / "node_modules" / "@ldp-analytics" / "web-sdk" / "dist" / "index.js").is_file()
    (project / "sdk.test.mjs").write_text(NODE_TEST)
    from client_sdk import __version__

    env = dict(os.environ, LDP_VECTORS=str(REPO / "tests" / "vectors" / "canonical.json"), LDP_VERSION=__version__)
    out = run([node, "--test", "sdk.test.mjs"], project, env=env)
    assert "# fail 0" in out and "# pass 3" in out, out

    # the types resolve through exports for a TypeScript user (nodenext resolution)
    (project / "check.ts").write_text(TS_CHECK)
    tsc = WEB / "node_modules" / "typescript" / "bin" / "tsc"
    run([node, str(tsc), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
         "--target", "es2020", "--lib", "es2020,dom", "--skipLibCheck", "false", "check.ts"], project)  # fmt: skip
