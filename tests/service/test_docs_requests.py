"""Every request body shown in docs/*.md is sent to the live app (so the docs cannot drift).

A request example is a fenced block whose info string is
``json request METHOD PATH [-> STATUS] [config_hash]``:

* it is sent with the admin key (``/reports``: the client key) to the test app (SQLite and
  PostgreSQL; clock at 2025-01-01T00:30Z): first every collection a document creates, in
  document order, then its other requests, ``{KIND}`` in PATH standing for the document's first
  collection of that kind (e.g. ``{frequency}``);
* the answer must have STATUS (default 200), and for a per-report upload every report must be
  accepted or a duplicate (a rerun);
* ``config_hash``: the collection's hash must appear in the document, so a shown hash is real.

``curl ... -d '<JSON>'`` bodies of bash blocks (without shell variables) are sent too, and a
JSON block that looks like a request body (a ``reports`` envelope or a collection with
``kind`` and ``budget``) but is not marked fails the test, so no example escapes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"^json request (GET|POST) (\S+)(?: -> (\d{3}))?((?: \w+)*)$")
CURL_BODY = re.compile(r"curl [^\n]*(?:\\\n[^\n]*)*?-X POST (\$LDP\S+)[^']*?-d '(\{.*?\})'", re.S)


@dataclass
class Example:
    doc: str
    method: str
    path: str
    status: int
    flags: tuple[str, ...]
    body: object


def examples_of(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    out = []
    for info, content in FENCE.findall(text):
        info = info.strip()
        mark = MARK.match(info)
        if mark:
            method, route, status, flags = mark.groups()
            out.append(Example(path.name, method, route, int(status or 200), tuple(flags.split()), json.loads(content)))
            continue
        if info.startswith("json"):
            try:
                value = json.loads(content)
            except json.JSONDecodeError:
                continue  # a schematic block with placeholders ({...}): not a request body
            looks_like_request = isinstance(value, dict) and (
                "reports" in value or {"kind", "mechanism", "budget"} <= set(value)
            )
            assert not looks_like_request, (
                f"{path.name}: a request body example not marked 'json request ...':\n{content}"
            )
        if info.startswith("bash"):
            for route, body in CURL_BODY.findall(content):
                if "$" in body:
                    continue  # shell variables: the same body is shown executable elsewhere
                route = route.replace("$LDP", "")
                out.append(
                    Example(path.name, "POST", route, 201 if route == "/v1/collections" else 200, (), json.loads(body))
                )
    return out


DOCUMENTS = sorted(DOCS.glob("*.md"))
ALL = {doc.name: examples_of(doc) for doc in DOCUMENTS}


def test_the_docs_show_request_bodies_of_every_kind_and_the_envelope() -> None:
    bodies = [e.body for examples in ALL.values() for e in examples]
    kinds = {b.get("kind") for b in bodies if isinstance(b, dict)}
    assert {"frequency", "multidim", "heavy_hitters", "longitudinal"} <= kinds
    assert any(isinstance(b, dict) and "reports" in b for b in bodies)
    assert len(ALL["wire.md"]) >= 5


@pytest.mark.parametrize("doc", [name for name, examples in ALL.items() if examples])
def test_every_request_body_in_the_docs_is_accepted(api, doc: str) -> None:
    text = (DOCS / doc).read_text(encoding="utf-8")
    created: dict[str, str] = {}
    ordered = sorted(ALL[doc], key=lambda e: e.path != "/v1/collections")  # stable: creations first
    for example in ordered:
        route = example.path
        for kind, collection_id in created.items():
            route = route.replace("{" + kind + "}", collection_id)
        assert "{" not in route, f"{doc}: {example.path} names a collection kind the document does not create"
        role = "client" if route.endswith("/reports") else "admin"
        body = example.body
        if "<client_id>" in json.dumps(body):  # an enrolled device's id and secret (docs/wire.md §1)
            device = api.post("/v1/devices", role="client", json={}).get_json()["devices"][0]
            text_body = json.dumps(body).replace("<client_id>", device["client_id"])
            body = json.loads(text_body.replace("<device_secret>", device["device_secret"]))
        answer = api.post(route, role=role, json=body) if example.method == "POST" else api.get(route, role=role)
        assert answer.status_code == example.status, (doc, body, answer.get_json())
        data = answer.get_json()
        if route == "/v1/collections":
            created.setdefault(data["kind"], data["id"])
            if "config_hash" in example.flags:
                assert data["config_hash"] in text, f"{doc}: shows a config_hash other than {data['config_hash']}"
        if route.endswith("/reports"):
            assert {r["status"] for r in data["results"]} <= {"accepted", "duplicate"}, (doc, data)


def test_the_canonical_text_shown_in_wire_md_hashes_to_the_hash_shown() -> None:
    """docs/wire.md §2 writes out the JCS text of its example config: it must be the RFC 8785
    form of the served config shown above it, and its SHA-256 the config_hash shown."""
    import hashlib

    from client_sdk.canonical import canonical_json

    text = (DOCS / "wire.md").read_text(encoding="utf-8")
    shown = re.search(r"^`(\{\"budget\":.*?\})`,$", text, re.M).group(1)
    served = json.loads(re.search(r"^```json\n(\{\"id\": \"col_.*?)^```", text, re.S | re.M).group(1))
    assert canonical_json(served["config"]) == shown
    assert served["config_hash"] == "sha256:" + hashlib.sha256(shown.encode()).hexdigest()
