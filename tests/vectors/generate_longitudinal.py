"""Shared test vectors of the longitudinal (memoized) protocols (client_sdk/longitudinal),
for SDKs in other languages (the Android/JVM SDK, client_sdk/android, replays them). Written
to ``tests/vectors/longitudinal.json`` with the conventions of generate.py (whose replay hook
and rendering it uses):

* ``grid``: configs (canonical JSON, config hash), privacy (ε1, exact one-report ε, ε∞, the
  ledger charge per new memo, max memos, lifetime bound), the protocol's parameters, key space;
* ``errors``: ``create_longitudinal`` and ``from_config`` calls the SDK refuses (ConfigError
  message);
* ``sequences``: ``m.report(value, store, collection)`` over several epochs against one memo
  store, every OS-random byte of each report replayed from ``random`` (hex): the device state,
  each memo record (created once per memo key, then reused), the wire payload, memo key,
  new-memo flag and ledger charge of every report;
* ``decode``: payloads and the Python decoder's verdict (``{"ok": true}`` or ``{"reason": ...}``);
* ``output_distribution``: exact one-report laws of small configs (given a device state);
* ``collections``: public configs of memoized collections as the device runtime compiles them
  (``client_sdk.client.config.CollectionConfig``: unit ε, max units, charge floor) or refuses
  them (UnsupportedCollectionError message).

    .venv/bin/python tests/vectors/generate_longitudinal.py           # rewrite the file
    .venv/bin/python tests/vectors/generate_longitudinal.py --check   # exit 1 if stale
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from client_sdk import longitudinal  # noqa: E402
from client_sdk.canonical import canonical_json  # noqa: E402
from client_sdk.errors import ReportDecodeError  # noqa: E402
from tests.vectors import generate as GEN  # noqa: E402 - the shared replay and formatting helpers

NAME = "longitudinal.json"


# (name, epsilon_perm, epsilon_first, domain_size, options)
GRID: list[tuple[str, float | None, float | None, int, dict[str, Any]]] = [
    ("l-grr", 2.0, 1.0, 4, {}),
    ("l-grr", 2.0, 1.0, 4, {"tight": True}),
    ("l-grr", 0.5, 0.1, 2, {}),
    ("l-grr", 5.0, 2.5, 1000, {}),
    ("l-grr", 3.0, 1.0, 2**31, {"tight": True}),
    ("l-osue", 2.0, 1.0, 8, {}),
    ("l-osue", 4.0, 0.5, 17, {}),
    ("l-osue", 1.0, 0.5, 2, {}),
    ("l-sue", 2.0, 1.0, 8, {}),
    ("l-sue", 0.5, 0.2, 3, {}),
    ("l-oue", 2.0, 1.0, 8, {}),
    ("l-oue", 5.0, 1.0, 9, {}),
    ("rappor", None, None, 8, {"f": 0.5, "p": 0.5, "q": 0.75}),
    ("rappor", None, None, 16, {"f": 0.25, "p": 0.35, "q": 0.65}),
    ("loloha", 2.0, 1.0, 100, {}),
    ("loloha", 4.0, 2.0, 1000, {}),
    ("loloha", 2.0, 1.0, 50, {"g": 5, "tight": True}),
    ("loloha", 8.0, 1.0, 2**32, {}),
    ("biloloha", 2.0, 1.0, 10, {}),
    ("dbitflip", 2.0, None, 8, {"buckets": 4, "d": 2}),
    ("dbitflip", 1.0, None, 100, {"buckets": 10, "d": 1}),
    ("dbitflip", 3.0, None, 16, {"buckets": 16, "d": 16}),
]

ERRORS: list[tuple[Any, Any, Any, Any, dict[str, Any]]] = [
    ("nope", 2.0, 1.0, 4, {}),
    (5, 2.0, 1.0, 4, {}),
    ("l-grr", 1.0, 2.0, 4, {}),
    ("l-grr", 1.0, 1.0, 4, {}),
    ("l-grr", None, 1.0, 4, {}),
    ("l-grr", 2.0, None, 4, {}),
    ("l-grr", 2.0, 1.0, 1, {}),
    ("l-grr", 2.0, 1.0, 4.0, {}),
    ("l-grr", 2.0, 1.0, 4, {"tight": 1}),
    ("l-grr", 2.0, 1.0, 4, {"g": 3}),
    ("l-grr", 25.0, 1.0, 4, {}),
    ("l-grr", True, 1.0, 4, {}),
    ("l-grr", "2", 1.0, 4, {}),
    ("l-osue", 2.0, 1.0, 70000, {}),
    ("l-osue", 2.0, 0.001, 8, {}),
    ("l-oue", 2.0, 1.9, 8, {}),
    ("l-sue", 2.0, 1.0, 8, {"tight": True}),
    ("rappor", 2.0, None, 8, {"f": 0.5, "p": 0.5, "q": 0.75}),
    ("rappor", None, None, 8, {"f": 0.5, "p": 0.5}),
    ("rappor", None, None, 8, {"f": 1.5, "p": 0.5, "q": 0.75}),
    ("rappor", None, None, 8, {"f": 0.5, "p": 0.75, "q": 0.5}),
    ("rappor", None, None, 8, {"f": True, "p": 0.5, "q": 0.75}),
    ("loloha", 2.0, 1.0, 100, {"g": 1}),
    ("loloha", 2.0, 1.0, 100, {"g": 3.0}),
    ("loloha", 2.0, 1.0, 100, {"g": 2**21}),
    ("loloha", 2.0, 1.0, 2**33, {}),
    ("biloloha", 2.0, 1.0, 10, {"g": 3}),
    ("dbitflip", 2.0, 1.0, 8, {"buckets": 4, "d": 2}),
    ("dbitflip", 2.0, None, 8, {"buckets": 4}),
    ("dbitflip", 2.0, None, 8, {"buckets": 9, "d": 2}),
    ("dbitflip", 2.0, None, 8, {"buckets": 4, "d": 5}),
    ("dbitflip", 2.0, None, 8, {"buckets": 4, "d": 0}),
    ("dbitflip", 2.0, None, 8, {"buckets": 4.0, "d": 2}),
]

CONFIG_ERRORS: list[Any] = [
    {"kind": "frequency", "mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 4},
    {"kind": "longitudinal", "mechanism": "grr", "epsilon": 2.0, "domain_size": 4},
    {"kind": "longitudinal", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 4},
    {"kind": "longitudinal", "mechanism": "l-grr", "epsilon_first": 1.0, "domain_size": 4},
    {
        "kind": "longitudinal",
        "mechanism": "l-grr",
        "epsilon_perm": 2.0,
        "epsilon_first": 1.0,
        "domain_size": 4,
        "extra": 1,
    },
    {
        "kind": "longitudinal",
        "mechanism": "l-grr",
        "epsilon_perm": 2.0,
        "epsilon_first": 1.0,
        "domain_size": 4,
        "tight": None,
    },
    {
        "kind": "longitudinal",
        "mechanism": "l-osue",
        "epsilon_perm": 2.0,
        "epsilon_first": 1.0,
        "domain_size": 4,
        "tight": False,
    },
    {
        "kind": "longitudinal",
        "mechanism": "loloha",
        "epsilon_perm": 2.0,
        "epsilon_first": 1.0,
        "domain_size": 4,
        "hash": "md5",
    },
    {"kind": "longitudinal", "mechanism": "rappor", "domain_size": 8, "f": 0.5, "p": 0.5},
    {"kind": "longitudinal", "mechanism": "dbitflip", "epsilon": 2.0, "domain_size": 8, "buckets": 4},
    {"kind": "longitudinal", "mechanism": "dbitflip", "epsilon_perm": 2.0, "domain_size": 8, "buckets": 4, "d": 2},
]


def create(name: Any, eps_perm: Any, eps_first: Any, k: Any, options: dict[str, Any]) -> Any:
    return longitudinal.create_longitudinal(
        name, epsilon_perm=eps_perm, epsilon_first=eps_first, domain_size=k, **options
    )


def describe(m: Any) -> dict[str, Any]:
    p = m.privacy
    params = {k: (float(v) if isinstance(v, float) else int(v)) for k, v in p.parameters.items()}
    return {
        "name": m.name,
        "config": m.config,
        "canonical": canonical_json(m.config),
        "config_hash": m.config_hash,
        "privacy": {
            "epsilon_first": p.epsilon_first,
            "epsilon_first_actual": p.epsilon_first_actual,
            "epsilon_perm": p.epsilon_perm,
            "charge_per_new_memo": p.charge_per_new_memo,
            "max_memos": p.max_memos,
            "lifetime_bound": p.lifetime_bound,
        },
        "parameters": params,
        "key_space": m.key_space,
    }


def verdict(m: Any, payload: Any) -> dict[str, Any]:
    try:
        m.decode([payload])
    except ReportDecodeError as exc:
        return {"reason": exc.reason}
    return {"ok": True}


def sequence_values(k: int) -> list[int]:
    top = k - 1
    return [top, top, top, 0, top, 0, min(1, top), top // 2, min(1, top)]


def bad_payloads(m: Any, good: dict[str, Any]) -> list[Any]:
    name = m.name
    out: list[Any] = [
        good,
        [],
        {**good, "v": 2},
        {**good, "v": True},
        {**good, "v": 1.0},
        {**good, "m": "grr"},
        {**good, "x": 1},
    ]
    if "y" in good:
        out += [{**good, "y": -1}, {**good, "y": m.key_space}, {**good, "y": 1.0}, {**good, "y": "0"}]
        out.append({k: v for k, v in good.items() if k != "y"})
    if "s" in good:
        out += [
            {**good, "s": good["s"][:-1]},
            {**good, "s": good["s"].upper()},
            {**good, "s": "zz" + good["s"][2:]},
            {**good, "s": 5},
        ]
    if "bits" in good:
        out += [{**good, "bits": 5}, {**good, "bits": "!!!!"}, {**good, "bits": good["bits"] + "AAAA"}]
        width = ((m.domain_size if name != "dbitflip" else m.d) + 7) // 8
        nbits = m.domain_size if name != "dbitflip" else m.d
        if nbits % 8:
            import base64

            out.append({**good, "bits": base64.b64encode(bytes([0] * (width - 1) + [0xFF])).decode()})
    if "j" in good:
        j = good["j"]
        out += [
            {**good, "j": j[::-1] if len(j) > 1 else [m.buckets]},
            {**good, "j": j[:-1]},
            {**good, "j": [float(x) for x in j]},
            {**good, "j": "0"},
            {**good, "j": [*j[:-1], m.buckets]},
        ]
    return out


COLLECTIONS: list[tuple[dict[str, Any], float, dict[str, Any]]] = [
    (
        {"mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8},
        2.0,
        {"cap_lifetime": 6.0, "memoized": True},
    ),
    (
        {"mechanism": "l-osue", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8},
        2.0,
        {"cap_lifetime": 10.0, "cap_per_window": 5.0, "window_epochs": 24, "memoized": True, "epsilon_per_memo": 2.5},
    ),
    ({"mechanism": "loloha", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 100}, 2.0, {"memoized": True}),
    ({"mechanism": "dbitflip", "epsilon": 1.0, "domain_size": 16, "buckets": 8, "d": 2}, 1.0, {"memoized": True}),
    (
        {"mechanism": "rappor", "domain_size": 8, "f": 0.5, "p": 0.5, "q": 0.75},
        4.5,
        {"cap_lifetime": 9.0, "memoized": True},
    ),
    ({"mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8}, 2.0, {"memoized": False}),
    ({"mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8}, 1.0, {"memoized": True}),
    (
        {"mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8},
        2.0,
        {"memoized": True, "epsilon_per_memo": 1.5},
    ),
    ({"mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 3.0, "domain_size": 8}, 2.0, {"memoized": True}),
]


def build_collections() -> list[dict[str, Any]]:
    from client_sdk.canonical import config_hash
    from client_sdk.client.config import CollectionConfig
    from client_sdk.errors import ConfigError

    out = []
    for mechanism, epsilon, budget in COLLECTIONS:
        served = {"kind": "longitudinal", **mechanism}
        try:  # the server stores the canonical mechanism config (every default spelled out)
            served = longitudinal.from_config(served).config
        except ConfigError:
            pass
        config = GEN.public_config("longitudinal", served, epsilon, "record", **budget)
        case: dict[str, Any] = {"config": config, "config_hash": config_hash(config)}
        try:
            cfg = CollectionConfig.build("col_test", config, case["config_hash"])
        except ConfigError as exc:
            case["error"] = {"type": type(exc).__name__, "message": str(exc)}
        else:
            policy = cfg.budget
            case["compiled"] = {
                "memoized": policy.memoized,
                "unit": policy.unit,
                "unit_epsilon": policy.unit_epsilon,
                "max_units_lifetime": policy.max_units_lifetime,
                "max_units_window": policy.max_units_window,
                "charge_floor": cfg.perturber.charge_floor(),
            }
        out.append(case)
    return out


def build() -> dict[str, Any]:
    GEN.check_replay_hook()
    rng = random.Random(1819)
    grid, sequences, decode, laws = [], [], [], []
    for name, eps_perm, eps_first, k, options in GRID:
        m = create(name, eps_perm, eps_first, k, options)
        grid.append(describe(m))
        width = m.domain_size if name in ("l-osue", "l-sue", "l-oue", "rappor") else 0
        budget = 16 * width + 16 * getattr(m, "buckets", 0) + 1024
        store = longitudinal.InMemoryMemoStore()
        steps = []
        for value in sequence_values(k):
            data, outcome = GEN.replay_case(
                lambda m=m, value=value, store=store: m.report(value, store, "c"), rng, budget
            )
            steps.append(
                {
                    "value": value,
                    "random": data,
                    "memo_key": outcome.memo_key,
                    "new_memo": outcome.new_memo,
                    "charge": outcome.charge,
                    "memo": store.get("c", outcome.memo_key),
                    "payload": outcome.payload,
                    "payload_json": GEN.wire_text(outcome.payload),
                }
            )
        sequences.append(
            {"config": m.config, "state": store.get_state("c"), "memo_count": store.count("c"), "steps": steps}
        )
        good = steps[0]["payload"]
        for payload in bad_payloads(m, good):
            decode.append({"config": m.config, "payload": payload, "expect": verdict(m, payload)})
    for name, eps_perm, eps_first, k, options in (
        ("l-grr", 2.0, 1.0, 4, {}),
        ("l-osue", 2.0, 1.0, 3, {}),
        ("rappor", None, None, 3, {"f": 0.5, "p": 0.5, "q": 0.75}),
        ("loloha", 2.0, 1.0, 10, {"g": 3}),
        ("dbitflip", 2.0, None, 8, {"buckets": 4, "d": 2}),
    ):
        m = create(name, eps_perm, eps_first, k, options)
        state = None
        if m.needs_state:
            state = {**m._record_header(), **({"s": "0123456789abcdef"} if name == "loloha" else {"j": [1, 3]})}
        value = k - 1
        law = m.output_distribution(value, state)
        laws.append(
            {"config": m.config, "state": state, "value": value, "law": [[int(y), pr] for y, pr in sorted(law.items())]}
        )
    errors = []
    for name, eps_perm, eps_first, k, options in ERRORS:
        message = GEN.config_error(
            lambda name=name, eps_perm=eps_perm, eps_first=eps_first, k=k, options=options: create(
                name, eps_perm, eps_first, k, options
            )
        )
        assert message is not None, (name, options)
        errors.append(
            {
                "name": name,
                "epsilon_perm": eps_perm,
                "epsilon_first": eps_first,
                "domain_size": k,
                "options": options,
                "message": message,
            }
        )
    config_errors = []
    for config in CONFIG_ERRORS:
        message = GEN.config_error(lambda config=config: longitudinal.from_config(config))
        assert message is not None, config
        config_errors.append({"config": config, "message": message})
    return {
        "format": GEN.FORMAT,
        "about": "longitudinal protocols (client_sdk/longitudinal): configs, hashes, privacy and parameters; "
        "report(value, store) sequences over epochs replayed on 'random' (device state, memo records, payloads, "
        "charges); Python decoder verdicts; exact one-report laws; ConfigError cases of create_longitudinal and "
        "from_config",
        "grid": grid,
        "errors": errors,
        "config_errors": config_errors,
        "sequences": sequences,
        "decode": decode,
        "output_distribution": laws,
        "collections": build_collections(),
    }


def text() -> str:
    return GEN.render(build())


def main(argv: list[str] | None = None) -> int:
    return GEN.vector_file_main(NAME, text, "generate_longitudinal.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
