"""Shared test vectors of SPL and SMP (client_sdk/multidim/spl.py, smp.py), the
oracle-per-attribute multidimensional protocols, for SDKs in other languages (the
Android/JVM SDK, client_sdk/android, replays them). Written to
``tests/vectors/multidim_oracles.json`` with the conventions of generate.py (whose replay
hook and rendering it uses):

* ``grid``: configs (created and canonical), hashes, privacy (epsilon charged, tuple,
  attribute), each attribute's oracle (name, epsilon, p*, q*), n·Var* per attribute;
* ``errors``: create_multidim calls the SDK refuses (ConfigError);
* ``perturb``: perturb(value) with every OS-random byte replayed from ``random`` (hex);
* ``decode``: payloads and the Python decoder's verdict (``{"ok": ...}`` or ``{"reason": ...}``);
* ``output_distribution``: exact output laws of small configs.

    .venv/bin/python tests/vectors/generate_multidim_oracles.py           # rewrite the file
    .venv/bin/python tests/vectors/generate_multidim_oracles.py --check   # exit 1 if stale
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from client_sdk import multidim  # noqa: E402
from client_sdk.canonical import canonical_json  # noqa: E402
from client_sdk.errors import ReportDecodeError  # noqa: E402
from tests.vectors import generate as GEN  # noqa: E402 - the shared replay and formatting helpers

NAME = "multidim_oracles.json"


GRID = [
    ("spl", 1.0, [4, 4, 4], "tuple", "grr"),
    ("spl", 2.0, [2, 10, 300], "attribute", "auto"),
    ("spl", 3.0, [5, 17], "tuple", ["oue", "olh"]),
    ("spl", 0.5, [2, 3], "tuple", ["sue", "hr"]),
    ("spl", 4.0, [1000, 2], "attribute", ["blh", "GRR"]),
    ("smp", 1.0, [4, 4, 4], "tuple", "grr"),
    ("smp", 2.0, [2, 10, 300], "attribute", "auto"),
    ("smp", 3.0, [5, 17], "tuple", ["oue", "olh"]),
    ("smp", 0.5, [2, 3, 7], "tuple", ["sue", "hr", "blh"]),
    ("smp", 8.0, [2**31, 2], "tuple", "grr"),
]


def describe(m: Any) -> dict[str, Any]:
    p = m.privacy
    return {
        "name": m.name,
        "config": m.config,
        "canonical": canonical_json(m.config),
        "config_hash": m.config_hash,
        "privacy": {"epsilon": p.epsilon, "epsilon_tuple": p.epsilon_tuple, "epsilon_attribute": p.epsilon_attribute},
        "oracles": [
            {"name": o.name, "epsilon": o.epsilon, "domain_size": o.domain_size, "p_star": o.p_star, "q_star": o.q_star}
            for o in m.oracles
        ],
        "variance_approx_per_user": list(m.variance_approx_per_user),
    }


def verdict(m: Any, payload: Any) -> dict[str, Any]:
    try:
        m.decode([payload])
    except ReportDecodeError as exc:
        return {"reason": exc.reason}
    return {"ok": True}


def build() -> dict[str, Any]:
    GEN.check_replay_hook()
    rng = random.Random(1818)
    grid, perturb, decode, laws = [], [], [], []
    for name, eps, sizes, neighbouring, oracle in GRID:
        m = multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes, neighbouring=neighbouring, oracle=oracle)
        grid.append(describe(m))
        values = [tuple(k - 1 for k in sizes), tuple(min(1, k - 1) for k in sizes), tuple(0 for _ in sizes)]
        budget = 8 * sum(min(k, 65536) for k in sizes) + 128 * len(sizes) + 512
        for value in values:
            for _ in range(3):
                data, payload = GEN.replay_case(lambda m=m, value=value: m.perturb(value), rng, budget)
                perturb.append(
                    {
                        "config": m.config,
                        "value": list(value),
                        "random": data,
                        "payload": payload,
                        "payload_json": GEN.wire_text(payload),
                    }
                )
        _, good = GEN.replay_case(lambda m=m, first=values[0]: m.perturb(first), rng, budget)
        bad: list[Any] = [
            good,
            [],
            {"v": 2, "m": name, "y": good["y"]},
            {"v": 1, "m": "rsfd-grr", "y": good["y"]},
            {"v": True, "m": name, "y": good["y"]},
            {"v": 1.0, "m": name, "y": good["y"]},
        ]
        if name == "spl":
            y = good["y"]
            bad += [
                {"v": 1, "m": name, "y": y[:-1]},
                {"v": 1, "m": name, "y": "x"},
                {"v": 1, "m": name, "y": [*y[:-1], {"v": 1, **y[-1]}]},
                {"v": 1, "m": name, "y": [*y[:-1], 5]},
                {"v": 1, "m": name, "y": [{**y[0], "m": "zzz"}, *y[1:]]},
            ]
            if "y" in y[0]:
                bad += [
                    {"v": 1, "m": name, "y": [{**y[0], "y": 10**9}, *y[1:]]},
                    {"v": 1, "m": name, "y": [{**y[0], "y": 1.0}, *y[1:]]},
                ]
        else:
            inner = good["y"]
            bad += [
                {"v": 1, "m": name, "y": inner},
                {"v": 1, "m": name, "j": len(sizes), "y": inner},
                {"v": 1, "m": name, "j": True, "y": inner},
                {"v": 1, "m": name, "j": good["j"]},
                {"v": 1, "m": name, "j": good["j"], "y": {"v": 1, **inner}},
                {"v": 1, "m": name, "j": good["j"], "y": [inner]},
                {"v": 1, "m": name, "j": 0.0, "y": inner},
            ]
        for payload in bad:
            decode.append({"config": m.config, "payload": payload, "expect": verdict(m, payload)})
    for name, sizes, oracle in (
        ("spl", [3, 2], "grr"),
        ("spl", [2, 3], ["oue", "hr"]),
        ("smp", [3, 2], "grr"),
        ("smp", [3, 4], ["sue", "grr"]),
    ):
        m = multidim.create_multidim(name, epsilon=1.0, domain_sizes=sizes, oracle=oracle)
        value = tuple(k - 1 for k in sizes)
        laws.append(
            {
                "config": m.config,
                "value": list(value),
                "law": [
                    [_key(k), pr] for k, pr in sorted(m.output_distribution(value).items(), key=lambda kv: str(kv[0]))
                ],
            }
        )
    errors = []
    for name, eps, sizes, neighbouring, options in (
        ("spl", 1.0, [4, 4], "tuple", {"oracle": "nope"}),
        ("spl", 0.01, [4, 4], "tuple", {}),
        ("spl", 1.0, [4, 4], "tuple", {"oracle": ["grr"]}),
        ("spl", 1.0, [4, 4], "tuple", {"oracle": 5}),
        ("spl", 1.0, [4, 4], "tuple", {"oracle": ["grr", 3]}),
        ("smp", 1.0, [4, 70000], "tuple", {"oracle": "oue"}),
        ("smp", 1.0, [4], "record", {}),
        ("smp", 1.0, [4], "tuple", {"g": 3}),
        ("smp", 1.0, [], "tuple", {}),
        ("spl", 25.0, [4], "tuple", {}),
    ):
        message = GEN.config_error(
            lambda name=name, eps=eps, sizes=sizes, neighbouring=neighbouring, options=options: (
                multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes, neighbouring=neighbouring, **options)
            )
        )
        assert message is not None, (name, options)
        errors.append(
            {
                "name": name,
                "epsilon": eps,
                "domain_sizes": sizes,
                "neighbouring": neighbouring,
                "options": options,
                "message": message,
            }
        )
    return {
        "format": GEN.FORMAT,
        "about": "SPL and SMP (client_sdk/multidim/spl.py, smp.py): configs, hashes, privacy, per-attribute oracles, "
        "perturb(value) replayed on 'random', Python decoder verdicts, exact output laws, ConfigError cases",
        "grid": grid,
        "errors": errors,
        "perturb": perturb,
        "decode": decode,
        "output_distribution": laws,
    }


def _key(key: Any) -> Any:
    """A law's key as JSON: SPL a list of per-attribute outputs, SMP [j, output]."""
    return list(key) if isinstance(key, tuple) else key


def text() -> str:
    return GEN.render(build())


def main(argv: list[str] | None = None) -> int:
    return GEN.vector_file_main(NAME, text, "generate_multidim_oracles.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
