"""Shared test vectors of the known-candidate heavy-hitter protocol (``protocol: "known"``,
client_sdk/heavy_hitters/known.py), for the web and Android SDKs. Written to
``tests/vectors/known.json`` with the conventions of generate.py (its replay hook and
rendering):

* ``screens``: the default screen ``[epsilon, p, d]`` of many ε;
* ``configs``: ``create("known", **options)`` — canonical config, hash, g, the test group's
  p*, the screen's p, d and p*, the ledger charge;
* ``errors``: options the SDK refuses (``js_integral_float``: an integral float such as 2.0,
  which JavaScript cannot tell from an integer);
* ``buckets``: ``[key, p, d, bucket]`` (the bucket vector's flat index, ``lin-zp-v1``);
* ``linear_hash``: ``[seed, key, p, d, ⟨s, b(key)⟩ mod p]``;
* ``perturb``: ``perturb(item)`` with every OS-random byte replayed from ``random`` (hex);
* ``decode``: payloads and the Python decoder's verdict.

    .venv/bin/python tests/vectors/generate_known.py           # rewrite the file
    .venv/bin/python tests/vectors/generate_known.py --check   # exit 1 if stale
"""

from __future__ import annotations

import functools
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from client_sdk import heavy_hitters  # noqa: E402
from client_sdk.canonical import canonical_json, config_hash  # noqa: E402
from client_sdk.heavy_hitters import known as K  # noqa: E402
from tests.vectors import generate as GEN  # noqa: E402 - the shared replay and formatting helpers

NAME = "known.json"

CREATES: list[dict[str, Any]] = [
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}},
    {"epsilon": 4.0, "k": 16, "domain": {"type": "string", "alphabet": "letters", "max_chars": 8, "outside": "drop"}},
    {"epsilon": 1.0, "k": 8, "domain": {"type": "integer", "bits": 32}},
    {"epsilon": 0.5, "k": 2, "domain": {"type": "integer", "bits": 64}},
    {"epsilon": 3.0, "k": 10, "domain": {"type": "string", "alphabet": "lower", "max_chars": 6}, "g": 9},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 8}, "screen": {"p": 13, "d": 5}},
    {"epsilon": 6.0, "k": 1, "domain": {"type": "integer", "bits": 8}, "screen": {"hash": "lin-zp-v1", "p": 2}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "alpha": 0.01, "screen": {"d": 3}},
]

BAD: list[dict[str, Any]] = [
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": 4}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": 17}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": 11, "d": 7}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": 7, "d": 1}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"hash": "x"}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": 7, "bogus": 1}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": "p7"},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": 7.0}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "screen": {"p": True}},
    {"epsilon": 2.0, "k": 0, "domain": {"type": "string", "max_bytes": 4}},
    {"epsilon": 2.0, "k": 4097, "domain": {"type": "string", "max_bytes": 4}},
    {"epsilon": 0.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "alpha": 1.0},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "eta": 4},
    {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "parties": ["a"]},
    {"epsilon": 2.0, "k": 4},
]

ITEMS: list[list[Any]] = [
    ["hi", "ok", "", "é", "abcdefgh"],
    ["Hello", "the", "", "x9y"],
    [0, 1, 2**32 - 1, 123456789],
    [0, 2**64 - 1, 2**63],
    ["abc", "zzzzzz", "q"],
    ["hi", "日本"],
    [0, 255, 7],
    ["hi", "ok"],
]


def build() -> dict[str, Any]:
    GEN.check_replay_hook()
    rng = random.Random(1717)
    screens = [
        [eps, *K.default_screen(eps)] for eps in (0.01, 0.5, 0.69, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 10.0, 50.0)
    ]
    configs = []
    for options in CREATES:
        hh = heavy_hitters.create("known", **options)
        configs.append(
            {
                "options": options,
                "config": hh.config,
                "canonical": canonical_json(hh.config),
                "config_hash": config_hash(hh.config),
                "g": hh.g,
                "p_star": hh.olh.p_star,
                "screen": {"p": hh.p, "d": hh.d, "p_star": hh.screen_p_star},
                "epsilon_charged": hh.privacy.epsilon,
                "mechanism": hh.mechanism,
            }
        )
    errors = []
    for options in BAD:
        message = GEN.config_error(functools.partial(heavy_hitters.create, "known", **options))
        assert message is not None, options
        errors.append({"options": options, "js_integral_float": GEN.has_integral_float(options)})

    shapes = [(2, 21), (2, 3), (3, 13), (5, 9), (7, 7), (11, 6), (13, 5), (13, 2)]
    keys = [0, 1, 2**32 - 1, 0x4C494E48] + [rng.getrandbits(32) for _ in range(24)]
    buckets = [[GEN.u64(key), p, d, K.bucket_of(key, p, d)] for p, d in shapes for key in keys]
    hashes = []
    for p, d in shapes:
        for key in keys[:10]:
            for seed in (0, 1, p**d - 1, rng.randrange(p**d), rng.randrange(p**d)):
                hashes.append([seed, GEN.u64(key), p, d, K.linear_hash(seed, key, p, d)])

    perturb = []
    for c, items in zip(configs, ITEMS, strict=True):
        hh = heavy_hitters.from_config(c["config"])
        for item in items:
            for _ in range(4):
                data, payload = GEN.replay_case(lambda hh=hh, item=item: hh.perturb(item), rng, 512)
                perturb.append(
                    {
                        "config": c["config"],
                        "item": GEN.typed_int(item) if isinstance(item, int) else item,
                        "random": data,
                        "payload": payload,
                        "payload_json": GEN.wire_text(payload),
                    }
                )

    decode: list[dict[str, Any]] = []
    for c in (configs[0], configs[5]):
        hh = heavy_hitters.from_config(c["config"])
        good: dict[str, Any] = {"v": 1, "m": "known", "l": 1, "s": "0000000000000005", "y": 1}
        top = GEN.u64(hh.buckets - 1)
        cases: list[Any] = [[], "x", None, [good], {}, good, {**good, "l": 2}]
        cases += [{k: v for k, v in good.items() if k != key} for key in good]
        cases += [{**good, "extra": 1}, {**good, "m": "pem"}, {**good, "v": 2}]
        cases += [{**good, "l": v} for v in (0, 3, True, 1.0, "1")]
        cases += [{**good, "s": s} for s in (top, GEN.u64(hh.buckets), "ffffffffffffffff", "FFFF", 5)]
        cases += [{**good, "l": 2, "s": s} for s in (GEN.u64(hh.buckets), "ffffffffffffffff")]
        cases += [{**good, "y": v} for v in (0, hh.p - 1, hh.p, -1, True, 1.5)]
        cases += [{**good, "l": 2, "y": v} for v in (0, hh.g - 1, hh.g, hh.y_bound)]
        GEN.add_decode_cases(decode, c["config"], lambda p, hh=hh: GEN.hh_verdict(hh, p), cases)

    return {
        "format": GEN.FORMAT,
        "about": (
            "known-candidate heavy hitters (client_sdk.heavy_hitters.known): default screens [epsilon, p, d], "
            "configs of create('known', **options) with hashes, refused options, bucket vectors "
            "[key, p, d, flat index], linear hashes [seed, key, p, d, value], perturb(item) replayed on "
            "'random', decoder verdicts"
        ),
        "screens": screens,
        "configs": configs,
        "errors": errors,
        "buckets": buckets,
        "linear_hash": hashes,
        "perturb": perturb,
        "decode": decode,
    }


def text() -> str:
    return GEN.render(build())


def main(argv: list[str] | None = None) -> int:
    return GEN.vector_file_main(NAME, text, "generate_known.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
