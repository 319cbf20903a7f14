"""Shared test vectors of the frequency oracles, generated from the Python SDK.

The Python SDK (``client_sdk.mechanisms``) is the reference; the Web SDK
(``client_sdk/web``) must reproduce every vector here. Both test suites read these files:
``tests/unit/test_web_vectors.py`` regenerates them in memory and fails if the committed
JSON is stale, then runs the web package's tests, which check the TypeScript code against
them.

    .venv/bin/python tests/vectors/generate.py           # rewrite tests/vectors/*.json
    .venv/bin/python tests/vectors/generate.py --check   # exit 1 if any file is stale

Files (every 64-bit integer is a string: JSON numbers lose precision in JavaScript):

* ``params.json``    — p*, q*, the reported parameters, Var*, report size, config, canonical
  JSON and config hash over a grid of (mechanism, ε, k); ``g`` of OLH over a fine ε grid
  and at the half-integer boundaries of round(e^ε); the "auto" choice over a grid.
* ``config.json``    — ``create``/``from_config`` calls that succeed (with the config they
  yield) and that raise ConfigError (with Python's message).
* ``olh_hash.json``  — ``splitmix64``, ``expand_seed`` and ``hash_value`` of family
  olh-mas-v1, edge values 0 and 2^64 − 1 included.
* ``random.json``    — ``probability_threshold`` (and numpy's vector threshold) of many p,
  and replays of the sampling primitives on given bytes.
* ``canonical.json`` — RFC 8785 (JCS) canonical JSON: number forms, objects, config hashes, refusals.
* ``wire.json``      — payloads of given reports (encode) and the decoder's verdict on
  well- and ill-formed payloads (reason codes).
* ``perturb.json``   — whole perturbations replayed on fixed random bytes: the Python SDK's
  ``perturb`` is run with every OS-random byte it draws (``os.urandom`` behind
  ``secrets.randbits``/``randbelow`` and numpy's ``frombuffer``) taken from a given
  string, and the web SDK must consume exactly those bytes and return the same payload.

Where the web decoder deliberately differs from Python's (a JS number cannot tell ``3.0``
from ``3``; Python's ``!=`` takes ``True`` for version 1; ``int(s, 16)`` accepts
whitespace, signs, ``0x``, underscores and non-ASCII digits), a decode vector carries
``expect`` (the web SDK's verdict), ``python`` (Python's) and a ``note``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import random
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from client_sdk import _random, mechanisms  # noqa: E402
from client_sdk.canonical import canonical_json, config_hash  # noqa: E402
from client_sdk.errors import ConfigError, ReportDecodeError  # noqa: E402
from client_sdk.mechanisms.auto import choose  # noqa: E402
from client_sdk.mechanisms.grr import GRRReports  # noqa: E402
from client_sdk.mechanisms.hadamard import HadamardReports  # noqa: E402
from client_sdk.mechanisms.olh import GOLDEN, OLHReports, expand_seed, hash_value, optimal_g, splitmix64  # noqa: E402
from client_sdk.mechanisms.unary import UnaryReports  # noqa: E402

HERE = Path(__file__).resolve().parent
FORMAT = 1
MASK64 = (1 << 64) - 1

# --------------------------------------------------------------------------------------
# Replaying the OS random bytes the Python SDK draws
# --------------------------------------------------------------------------------------


class Replay:
    """A byte string handed out in order, as os.urandom would hand out fresh bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def __call__(self, n: int) -> bytes:
        if self.position + n > len(self.data):
            raise RuntimeError("replay buffer exhausted")
        out = self.data[self.position : self.position + n]
        self.position += n
        return out

    @property
    def consumed(self) -> bytes:
        return self.data[: self.position]


@contextlib.contextmanager
def replayed(data: bytes) -> Iterator[Replay]:
    """Route every OS-random byte of client_sdk._random through ``data``.

    ``secrets.randbits``/``randbelow`` read ``random._urandom`` (SystemRandom) and
    ``bernoulli_vector`` reads ``os.urandom``; both are redirected, nothing else is.
    """
    import random as stdlib_random

    replay = Replay(data)
    saved_urandom, saved_os = stdlib_random._urandom, _random.os
    stdlib_random._urandom = replay  # type: ignore[attr-defined]
    _random.os = types.SimpleNamespace(urandom=replay)  # type: ignore[assignment]
    try:
        yield replay
    finally:
        stdlib_random._urandom = saved_urandom  # type: ignore[attr-defined]
        _random.os = saved_os  # type: ignore[assignment]


def check_replay_hook() -> None:
    """Fail loudly if the stdlib no longer draws through the names redirected above."""
    data = bytes(range(1, 9)) + bytes([0xFF, 0x05]) + bytes(16)
    with replayed(data) as replay:
        ok = _random.random_u64() == int.from_bytes(data[:8], "big")
        ok = ok and _random.uniform_int(5) == 0 and replay.position == 10  # 0xFF>>5 = 7 rejected, 0x05>>5 = 0
        ok = ok and _random.bernoulli_vector(np.array([0.5, 0.5])).tolist() == [True, True] and replay.position == 26
    if not ok:
        raise SystemExit(
            "tests/vectors/generate.py: the replay hook no longer reaches the bytes secrets and "
            "client_sdk._random draw (did CPython's random.SystemRandom change?)"
        )


def replay_case(fn: Callable[[], Any], rng: random.Random, budget: int) -> tuple[str, Any]:
    """Run ``fn`` on ``budget`` fresh bytes from ``rng``; return (bytes consumed as hex, result)."""
    data = rng.randbytes(budget)
    with replayed(data) as replay:
        result = fn()
    return replay.consumed.hex(), result


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

EPS_GRID = [0.01, 0.1, 0.5, math.log(2), 1.0, math.log(3), 2.0, 2.5, 4.0, 8.0, 13.8, 20.0]
K_GRID = [2, 3, 10, 1000, 65536, 2**24, 2**32]
NAMES = ["grr", "sue", "oue", "olh", "blh", "hr"]


def u64(x: int) -> str:
    return f"{x:016x}"


def wire_text(payload: dict[str, Any]) -> str:
    """A payload as the compact JSON text a client sends (keys in the SDK's order)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def describe(m: mechanisms.FrequencyOracle) -> dict[str, Any]:
    """Everything the web SDK must compute identically for one mechanism."""
    out: dict[str, Any] = {
        "name": m.name,
        "config": m.config,
        "canonical": canonical_json(m.config),
        "config_hash": m.config_hash,
        "p_star": m.p_star,
        "q_star": m.q_star,
        "parameters": dict(m.privacy.parameters),
        "variance_approx_per_user": m.variance_approx_per_user,
        "report_bits": m.report_bits,
        "threshold_p": str(_random.probability_threshold(m.p_star)),
    }
    return out


def config_error(fn: Callable[[], Any]) -> str | None:
    try:
        fn()
    except ConfigError as exc:
        return str(exc)
    return None


def has_integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(has_integral_float(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_integral_float(v) for v in value)
    return False


def js_view(value: Any) -> Any:
    """What JSON.parse gives a JavaScript program: integral floats become integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: js_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [js_view(v) for v in value]
    return value


# --------------------------------------------------------------------------------------
# params.json
# --------------------------------------------------------------------------------------


def build_params() -> dict[str, Any]:
    rng = random.Random(20240601)
    eps_grid = (
        EPS_GRID + [round(rng.uniform(0.01, 20), 6) for _ in range(2)] + [rng.uniform(0.01, 20) for _ in range(2)]
    )
    grid = []
    for name in NAMES:
        for eps in eps_grid:
            for k in K_GRID:
                try:
                    m = mechanisms.create(name, epsilon=eps, domain_size=k)
                except ConfigError:
                    continue
                grid.append({"epsilon": eps, "domain_size": k, **describe(m)})
    for g in (2, 3, 5, 100, 1000, 2**20):
        for eps in (0.1, 1.0, 5.0):
            grid.append(
                {
                    "epsilon": eps,
                    "domain_size": 1000,
                    "g": g,
                    **describe(mechanisms.create("olh", epsilon=eps, domain_size=1000, g=g)),
                }
            )

    # g = round(e^eps) + 1 on a fine grid and at the half-integer boundaries of round()
    g_cases = [[round(0.01 * i, 2), optimal_g(round(0.01 * i, 2))] for i in range(1, 1387)]
    for n in list(range(1, 60)) + [99, 100, 1000, 12345, 99999, 10**6]:
        centre = math.log(n + 0.5)
        for eps in (
            math.nextafter(math.nextafter(centre, 0), 0),
            math.nextafter(centre, 0),
            centre,
            math.nextafter(centre, 99),
            math.nextafter(math.nextafter(centre, 99), 99),
        ):
            if 0.01 <= eps <= 20:
                g_cases.append([eps, optimal_g(eps)])

    # the "auto" choice
    auto = []
    for eps in [0.01, 0.1, 0.5, 1.0, math.log(3), 2.0, 3.0, 4.0, 8.0, 13.0, 20.0]:
        for k in list(range(2, 13)) + [
            20,
            50,
            100,
            1000,
            10**4,
            65536,
            65537,
            10**6,
            2**24,
            2**24 + 1,
            2**31,
            2**31 + 1,
            2**32,
            2**32 + 1,
        ]:
            for bits in (None, 1, 2, 8, 32, 64, 65, 100, 1000):
                try:
                    auto.append([eps, k, bits, choose(eps, k, bits).name])
                except ConfigError:
                    auto.append([eps, k, bits, None])
    # the GRR-vs-rest boundary k <= 3e^eps + 2 (docs/algorithms.md)
    for eps in (0.5, 1.0, 2.0, 4.0):
        for k in range(2, 200):
            auto.append([eps, k, None, choose(eps, k).name])
    distributions = []
    for name, eps, k in (
        ("grr", 1.0, 4),
        ("grr", 0.5, 2),
        ("sue", 1.0, 3),
        ("oue", 1.0, 4),
        ("hr", 1.0, 5),
        ("hr", 2.0, 2),
    ):
        m = mechanisms.create(name, epsilon=eps, domain_size=k)
        for value in range(k):
            law = m.output_distribution(value)
            distributions.append(
                {"config": m.config, "value": value, "law": [[int(y), float(law[y])] for y in sorted(law)]}
            )
    return {
        "format": FORMAT,
        "about": (
            "parameters of every mechanism over a grid; g of OLH; the auto choice "
            "[epsilon, k, max_report_bits, name or null]; exact output laws [[output, probability], ...]"
        ),
        "output_distribution": distributions,
        "grid": grid,
        "optimal_g": g_cases,
        "auto": auto,
    }


# --------------------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------------------


def build_config() -> dict[str, Any]:
    creates: list[tuple[Any, Any, Any, dict[str, Any]]] = [
        ("grr", 0, 4, {}),
        ("grr", -1, 4, {}),
        ("grr", 0.005, 4, {}),
        ("grr", 25, 4, {}),
        ("grr", 20.5, 4, {}),
        ("grr", "1", 4, {}),
        ("grr", None, 4, {}),
        ("grr", True, 4, {}),
        ("grr", [1], 4, {}),
        ("grr", 1.5, 1, {}),
        ("grr", 1.5, 0, {}),
        ("grr", 1.5, -5, {}),
        ("grr", 1.5, 2.5, {}),
        ("grr", 1.5, "4", {}),
        ("grr", 1.5, True, {}),
        ("grr", 1.5, None, {}),
        ("grr", 1.5, 2**31 + 1, {}),
        ("oue", 1.5, 65537, {}),
        ("sue", 1.5, 2**20, {}),
        ("hr", 1.5, 2**24 + 1, {}),
        ("olh", 1.5, 2**32 + 1, {}),
        ("olh", 1.5, 10, {"g": 1}),
        ("olh", 1.5, 10, {"g": 0}),
        ("olh", 1.5, 10, {"g": 2**20 + 1}),
        ("olh", 1.5, 10, {"g": 2.5}),
        ("olh", 1.5, 10, {"g": True}),
        ("olh", 1.5, 10, {"g": "4"}),
        ("olh", 14, 10, {}),
        ("olh", 20, 10, {}),
        ("blh", 1.5, 10, {"g": 3}),
        ("grr", 1.5, 4, {"g": 4}),
        ("hr", 1.5, 4, {"max_report_bits": 4}),
        ("auto", 1.5, 10, {"g": 4}),
        ("auto", 1.5, 2**32 + 1, {}),
        ("auto", 1.5, 1000, {"max_report_bits": 1}),
        ("auto", 0, 10, {}),
        ("auto", 1.5, 1, {}),
        ("nope", 1.5, 4, {}),
        (5, 1.5, 4, {}),
        (None, 1.5, 4, {}),
    ]
    errors = []
    for name, eps, k, options in creates:
        message = config_error(functools.partial(mechanisms.create, name, epsilon=eps, domain_size=k, **options))
        assert message is not None, (name, eps, k, options)
        inexact = has_integral_float([eps, k, options]) or (
            isinstance(name, str) and name != "auto" and message.startswith(f"bad options for {name}:")
        )
        errors.append(
            {
                "call": "create",
                "name": name,
                "epsilon": eps,
                "domain_size": k,
                "options": options,
                "message": message,
                "message_exact": not inexact,
            }
        )
    bad_configs: list[dict[str, Any]] = [
        {"epsilon": 1.5, "domain_size": 4},
        {"mechanism": "grr", "domain_size": 4},
        {"mechanism": "grr", "epsilon": 1.5},
        {"mechanism": "olh", "epsilon": 1.5, "domain_size": 4, "g": 4, "hash": "xxhash32"},
        {"mechanism": "olh", "epsilon": 1.5, "domain_size": 4, "g": 4, "hash": None},
        {"hash": "nope"},
        {"mechanism": "grr", "epsilon": 1.5, "domain_size": 4, "extra": 1},
        {"mechanism": "blh", "epsilon": 1.5, "domain_size": 4, "g": 4},
        {"mechanism": "auto", "epsilon": 1.5, "domain_size": 4, "g": 2},
        {"mechanism": "oue", "epsilon": 1.5, "domain_size": 100000},
        {"mechanism": "Nope", "epsilon": 1.5, "domain_size": 4},
    ]
    for config in bad_configs:
        message = config_error(functools.partial(mechanisms.from_config, config))
        assert message is not None, config
        inexact = has_integral_float(config) or (
            message.startswith("bad options for ") and not message.startswith("bad options for auto")
        )
        errors.append({"call": "from_config", "config": config, "message": message, "message_exact": not inexact})

    good_configs: list[dict[str, Any]] = [
        {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4},
        {"mechanism": "GRR", "epsilon": 1.0, "domain_size": 4},
        {"mechanism": "grr", "epsilon": 1, "domain_size": 4, "hash": "olh-mas-v1"},
        {"mechanism": "oue", "epsilon": 0.5, "domain_size": 65536},
        {"mechanism": "sue", "epsilon": 2.0, "domain_size": 3},
        {"mechanism": "olh", "epsilon": 1.0, "domain_size": 100},
        {"mechanism": "olh", "epsilon": 1.0, "domain_size": 100, "g": None},
        {"mechanism": "olh", "epsilon": 1.0, "domain_size": 100, "g": 7, "hash": "olh-mas-v1"},
        {"mechanism": "olh", "epsilon": 20.0, "domain_size": 100, "g": 2**20},
        {"mechanism": "blh", "epsilon": 1.0, "domain_size": 100, "g": 2, "hash": "olh-mas-v1"},
        {"mechanism": "blh", "epsilon": 1.0, "domain_size": 100},
        {"mechanism": "hr", "epsilon": 1.0, "domain_size": 10},
        {"mechanism": "auto", "epsilon": 1.0, "domain_size": 10},
        {"mechanism": "auto", "epsilon": 1.0, "domain_size": 11},
        {"mechanism": "auto", "epsilon": 1.0, "domain_size": 1000, "max_report_bits": 100},
        {"mechanism": "auto", "epsilon": 1.0, "domain_size": 1000, "max_report_bits": 10},
        {"mechanism": "auto", "epsilon": 4.0, "domain_size": 2**20},
    ]
    created = []
    for config in good_configs:
        m = mechanisms.from_config(config)
        created.append({"config_in": config, **describe(m)})
    return {
        "format": FORMAT,
        "about": "from_config successes (with the resulting config) and ConfigError cases with Python's message",
        "from_config": created,
        "errors": errors,
    }


# --------------------------------------------------------------------------------------
# olh_hash.json
# --------------------------------------------------------------------------------------


def build_hash() -> dict[str, Any]:
    rng = random.Random(424242)
    edges = [
        0,
        1,
        2,
        3,
        GOLDEN,
        (2 * GOLDEN) & MASK64,
        MASK64 - GOLDEN,
        MASK64 - GOLDEN + 1,
        1 << 63,
        (1 << 63) - 1,
        MASK64 - 1,
        MASK64,
    ]
    seeds = edges + [rng.getrandbits(64) for _ in range(24)] + [0xDEADBEEFCAFEF00D]
    keys = [0, 1, 2, 42, 17, 18, 123456789, 2**16, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1] + [
        rng.getrandbits(32) for _ in range(6)
    ]
    gs = [2, 3, 4, 5, 8, 21, 1000, 2**20 - 1, 2**20]
    hashes = []
    for seed in seeds:
        for key in keys:
            g = rng.choice(gs)
            hashes.append([u64(seed), key, g, hash_value(seed, key, g)])
    for g in gs:  # every g at the extremes
        for seed in (0, MASK64):
            for key in (0, 2**32 - 1):
                hashes.append([u64(seed), key, g, hash_value(seed, key, g)])
    hashes += [[u64(1), key, 4, hash_value(1, key, 4)] for key in range(10)]
    splitmix = [[u64(x), u64(splitmix64(x))] for x in edges + [rng.getrandbits(64) for _ in range(16)]]
    expand = [[u64(s), *(u64(v) for v in expand_seed(s))] for s in seeds]
    return {
        "format": FORMAT,
        "family": "olh-mas-v1",
        "about": (
            "splitmix64 [x, out]; expand_seed [seed, a, b]; hash_value [seed, key, g, h]; "
            "64-bit values as 16 hex digits"
        ),
        "splitmix64": splitmix,
        "expand_seed": expand,
        "hash_value": hashes,
    }


# --------------------------------------------------------------------------------------
# random.json
# --------------------------------------------------------------------------------------


def vector_threshold(p: float) -> int:
    """The threshold numpy's bernoulli_vector uses (same rounding, capped below 2^64)."""
    return int(np.minimum(np.round(np.array([p]) * 2.0**64), 2.0**64 - 2048).astype(np.uint64)[0])


def build_random() -> dict[str, Any]:
    rng = random.Random(777)
    probabilities = [
        0.0,
        -0.0,
        -1.0,
        1.0,
        1.5,
        5e-324,
        2.0**-1074 * 3,
        2.0**-64,
        2.0**-65,
        3 * 2.0**-66,
        1.5 * 2.0**-64,
        2.5 * 2.0**-64,
        0.5 * 2.0**-64,
        3.5 * 2.0**-64,
        2.0**-12,
        2.0**-13,
        math.nextafter(2.0**-12, 0),
        math.nextafter(2.0**-12, 1),
        0.5,
        0.1,
        1 / 3,
        2 / 3,
        math.nextafter(1.0, 0),
        math.nextafter(0.5, 1),
        1e-9,
        1e-300,
        2.0**-1022,
        math.nextafter(2.0**-1022, 0),
    ]
    probabilities += [rng.random() for _ in range(40)]
    probabilities += [10 ** rng.uniform(-30, 0) for _ in range(40)]
    probabilities += [2.0 ** rng.uniform(-70, -50) for _ in range(20)]
    for name in NAMES:
        for eps in (0.01, 0.5, 1.0, 4.0, 20.0):
            for k in (2, 10, 65536):
                with contextlib.suppress(ConfigError):
                    m = mechanisms.create(name, epsilon=eps, domain_size=k)
                    probabilities += [m.p_star, m.q_star, *m.privacy.parameters.values()]
    seen: set[str] = set()
    thresholds = []
    for p in probabilities:
        p = float(p)
        if repr(p) in seen:
            continue
        seen.add(repr(p))
        entry: dict[str, Any] = {"p": p, "threshold": str(_random.probability_threshold(p))}
        if 0 <= p < 1:
            entry["vector_threshold"] = str(vector_threshold(p))
        thresholds.append(entry)

    bernoulli = []
    for p in [0.5, 0.1, 0.9, 1e-9, 1 - 1e-9, 0.0, 1.0, 2.0**-64, 1 / 3]:
        for _ in range(6):
            data, result = replay_case(lambda p=p: _random.bernoulli(p), rng, 8)
            bernoulli.append({"p": p, "random": data, "result": bool(result)})
    # a few hand-made words around the threshold of p = 1/2 and p = 1/3
    for word in (
        0,
        (1 << 63) - 1,
        1 << 63,
        MASK64,
        _random.probability_threshold(1 / 3) - 1,
        _random.probability_threshold(1 / 3),
    ):
        for p in (0.5, 1 / 3):
            data = word.to_bytes(8, "big")
            with replayed(data):
                result = _random.bernoulli(p)
            bernoulli.append({"p": p, "random": data.hex(), "result": bool(result)})

    uniform = []
    for n in [
        1,
        2,
        3,
        5,
        7,
        8,
        16,
        100,
        255,
        256,
        257,
        1000,
        2**16,
        2**20 - 1,
        2**24,
        2**25,
        2**31 - 1,
        2**31,
        2**32 - 1,
        2**32,
        2**32 + 1,
        2**40 + 3,
    ]:
        for _ in range(5):
            data, result = replay_case(lambda n=n: _random.uniform_int(n), rng, 256)
            uniform.append({"n": n, "random": data, "result": result})

    words = []
    for _ in range(8):
        data, result = replay_case(_random.random_u64, rng, 8)
        words.append({"random": data, "result": u64(result)})

    vectors = []
    for probs in (
        [0.5, 0.5, 0.5],
        [0.1, 0.9, 0.3, 0.7, 0.5],
        [1e-9] * 4 + [1 - 1e-9] * 4,
        [rng.random() for _ in range(17)],
    ):
        data, result = replay_case(lambda probs=probs: _random.bernoulli_vector(np.array(probs)), rng, 8 * len(probs))
        vectors.append({"probabilities": probs, "random": data, "result": [int(b) for b in result]})
    return {
        "format": FORMAT,
        "about": (
            "probability_threshold(p) = min(max(round(p*2^64), 0), 2^64) as decimal strings, numpy's vector "
            "threshold, and primitive draws replayed on given bytes"
        ),
        "thresholds": thresholds,
        "bernoulli": bernoulli,
        "uniform_int": uniform,
        "random_u64": words,
        "bernoulli_vector": vectors,
    }


# --------------------------------------------------------------------------------------
# canonical.json
# --------------------------------------------------------------------------------------


def build_canonical() -> dict[str, Any]:
    """RFC 8785 (JCS) canonical JSON: number forms, objects and config hashes, and refusals.

    Values are stored as plain JSON: under JCS the text of a number depends on its value
    only (``1.0`` and ``1`` are both ``1``), so a JavaScript ``JSON.parse`` loses nothing."""
    rng = random.Random(99)
    floats = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        0.1,
        0.2 + 0.1,
        1 / 3,
        2.0,
        20.0,
        0.01,
        1e-4,
        1e-5,
        0.00012345,
        1.5e-5,
        123456789.0,
        1e15,
        1e16,
        1.5e16,
        9999999999999998.0,
        12345678901234567.0,
        1e20,
        1e21,
        1e22,
        1e100,
        1.7976931348623157e308,
        5e-324,
        2.2250738585072014e-308,
        1e-6,
        1e-7,
        123.456,
        100.0,
        1234.5,
        math.pi,
        math.e,
        math.log(3),
        2.0**53,
        2.0**63,
    ]
    floats += [rng.uniform(-1e3, 1e3) for _ in range(30)]
    floats += [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(60)]
    floats += [struct_float(rng.getrandbits(64)) for _ in range(60)]
    floats = [f for f in floats if math.isfinite(f)]
    numbers = [[f, canonical_json(f)] for f in floats]

    objects: list[Any] = [
        {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4},
        {"mechanism": "olh", "epsilon": 0.5, "domain_size": 100, "g": 3, "hash": "olh-mas-v1"},
        {"z": 1, "a": [1, 2.5, None, True, False], "m": {"y": "x", "b": {}}},
        {
            "text": "é ünïcödé ✓ \U0001f600",
            "quote": 'a"b\\c',
            "control": "\n\t\r\b\f\x00\x1f\x7f",
            "sep": "\u2028\u2029",
        },
        # JCS sorts keys by UTF-16 code units: U+E000 sorts after U+1F600 (a surrogate pair)
        {"\ue000": 1, "\U0001f600": 2, "a": 3, "B": 4, "é": 5, "": 6},
        {"big": 2**53 - 1, "neg": -(2**53 - 1), "floats": [1e16, 1e-5, -0.0, 0.1, 1e22, 5e-324, 1.0]},
        [],
        {},
        {"nested": [[{"b": 1, "a": 2}], []]},
    ]
    for name in NAMES:
        m = mechanisms.create(name, epsilon=rng.choice([0.1, 1.0, 2.5]), domain_size=rng.choice([4, 16, 1000]))
        objects.append(m.config)
    canon = [
        {
            "value": o,
            "canonical": canonical_json(o),
            **({"config_hash": config_hash(o)} if isinstance(o, dict) else {}),
        }
        for o in objects
    ]
    # I-JSON limits that JCS inherits: the canonicaliser refuses these (the texts parse as JSON)
    refused = ['{"big":9007199254740992}', '{"neg":-9007199254740992}']
    return {
        "format": FORMAT,
        "about": (
            "RFC 8785 (JCS) canonical JSON: numbers ([value, JCS text]), objects with their canonical text "
            "and config hash (sha256:<hex> of the UTF-8 bytes), and JSON texts a canonicaliser must refuse"
        ),
        "numbers": numbers,
        "objects": canon,
        "refused": refused,
    }


def struct_float(bits: int) -> float:
    import struct

    return struct.unpack(">d", bits.to_bytes(8, "big"))[0]


# --------------------------------------------------------------------------------------
# wire.json
# --------------------------------------------------------------------------------------


def decoded_form(m: mechanisms.FrequencyOracle, batch: Any) -> dict[str, Any]:
    if isinstance(batch, UnaryReports):
        return {"bits": "".join(str(int(b)) for b in batch.unpacked()[0])}
    if isinstance(batch, OLHReports):
        return {"seed": u64(int(batch.seeds[0])), "y": int(batch.ys[0])}
    return {"y": int(batch.values[0])}


def python_verdict(m: mechanisms.FrequencyOracle, payload: Any) -> dict[str, Any]:
    try:
        batch = m.decode([payload])
    except ReportDecodeError as exc:
        return {"reason": exc.reason}
    except Exception as exc:  # recorded: the Python decoder crashed
        return {"crash": type(exc).__name__}
    return {"ok": decoded_form(m, batch)}


HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def web_verdict(m: mechanisms.FrequencyOracle, payload: Any) -> tuple[dict[str, Any], str | None]:
    """The web decoder's verdict: Python's on the JavaScript view, stricter where Python is lax."""
    view = js_view(payload)
    if isinstance(view, dict) and view.get("v") is True:
        return {"reason": "bad_version"}, "Python's != takes True for version 1; the web decoder wants the number 1"
    if isinstance(view, dict) and view.get("v") == 1 and view.get("m") == m.name and m.name in ("olh", "blh"):
        s = view.get("s")
        if isinstance(s, str) and len(s) == 16 and not HEX16.fullmatch(s):
            return (
                {"reason": "bad_encoding"},
                "Python's int(s, 16) accepts whitespace, a sign, 0x, underscores and non-ASCII digits; "
                "the web decoder wants 16 hex digits",
            )
    verdict = python_verdict(m, view)
    note = None
    if view != payload or has_integral_float(payload):
        note = "an integral JSON float (e.g. 3.0) parses to a JavaScript integer: the web decoder cannot tell it from 3"
    return verdict, note


def header_cases(name: str, good: dict[str, Any]) -> list[Any]:
    other = "oue" if name != "oue" else "sue"
    return [
        [],
        "payload",
        1,
        None,
        True,
        [good],
        {},
        {k: v for k, v in good.items() if k != "v"},
        {**good, "v": 2},
        {**good, "v": 0},
        {**good, "v": "1"},
        {**good, "v": None},
        {**good, "v": True},
        {**good, "v": 1.0},
        {**good, "v": 1.5},
        {k: v for k, v in good.items() if k != "m"},
        {**good, "m": other},
        {**good, "m": name.upper()},
        {**good, "m": None},
        {**good, "m": 1},
        {**good, "extra": "ignored"},
    ]


def index_cases(good: dict[str, Any], upper: int) -> list[Any]:
    return [
        {**good, "y": 0},
        {**good, "y": upper - 1},
        {**good, "y": upper},
        {**good, "y": -1},
        {**good, "y": 2**53},
        {**good, "y": 10**30},
        {**good, "y": True},
        {**good, "y": False},
        {**good, "y": None},
        {**good, "y": "1"},
        {**good, "y": 1.5},
        {**good, "y": 1.0},
        {**good, "y": -0.0},
        {**good, "y": []},
        {**good, "y": {}},
        {k: v for k, v in good.items() if k != "y"},
    ]


def base64_fuzz(rng: random.Random, count: int) -> list[str]:
    pieces = [
        "A",
        "Q",
        "g",
        "w",
        "/",
        "+",
        "9",
        "z",
        "=",
        "==",
        "AA",
        "AAA",
        "AAAA",
        "\n",
        " ",
        "-",
        "_",
        "*",
        "é",
        "AA==",
        "AAA=",
    ]
    weights = [8, 4, 4, 4, 2, 2, 2, 2, 4, 2, 4, 4, 4, 1, 1, 1, 1, 1, 1, 2, 2]
    out = []
    for _ in range(count):
        out.append("".join(rng.choices(pieces, weights, k=rng.randint(0, 6))))
    return out


def build_wire() -> dict[str, Any]:
    rng = random.Random(31337)
    encode = []
    for k in [2, 3, 7, 8, 9, 10, 15, 16, 17, 24, 31, 64, 65, 100]:
        m = mechanisms.create(rng.choice(["sue", "oue"]), epsilon=1.0, domain_size=k)
        patterns = [[0] * k, [1] * k, [1] + [0] * (k - 1), [0] * (k - 1) + [1]] + [
            [rng.randint(0, 1) for _ in range(k)] for _ in range(3)
        ]
        for bits in patterns:
            packed = np.packbits(np.array(bits, dtype=np.uint8), bitorder="little")[None, :]
            payload = m.encode(UnaryReports(packed, k))[0]
            encode.append(
                {
                    "config": m.config,
                    "bits": "".join(map(str, bits)),
                    "payload": payload,
                    "payload_json": wire_text(payload),
                }
            )
    for name, k in (("olh", 100), ("blh", 10)):
        m = mechanisms.create(name, epsilon=1.0, domain_size=k)
        for seed in [0, 1, 0xABCDEF, 1 << 63, MASK64] + [rng.getrandbits(64) for _ in range(4)]:
            y = rng.randrange(m.g)
            payload = m.encode(OLHReports(np.array([seed], dtype=np.uint64), np.array([y])))[0]
            encode.append(
                {"config": m.config, "seed": u64(seed), "y": y, "payload": payload, "payload_json": wire_text(payload)}
            )
    for name, k in (("grr", 5), ("hr", 5)):
        m = mechanisms.create(name, epsilon=1.0, domain_size=k)
        cls = GRRReports if name == "grr" else HadamardReports
        upper = k if name == "grr" else m.K
        for y in range(upper):
            payload = m.encode(cls(np.array([y])))[0]
            encode.append({"config": m.config, "y": y, "payload": payload, "payload_json": wire_text(payload)})

    decode = []

    def add(m: mechanisms.FrequencyOracle, payloads: list[Any]) -> None:
        for payload in payloads:
            expect, note = web_verdict(m, payload)
            python = python_verdict(m, payload)
            case: dict[str, Any] = {"config": m.config, "payload": payload, "expect": expect}
            if python != expect:
                case["python"] = python
                case["note"] = note or "differs"
            decode.append(case)

    for name, k in (("grr", 4), ("hr", 10)):
        m = mechanisms.create(name, epsilon=1.0, domain_size=k)
        good = {"v": 1, "m": name, "y": 1}
        add(m, header_cases(name, good) + index_cases(good, k if name == "grr" else m.K))

    for name, k in (("oue", 10), ("sue", 16), ("oue", 8), ("sue", 3), ("oue", 24)):
        m = mechanisms.create(name, epsilon=1.0, domain_size=k)
        width = (k + 7) // 8
        good = m.encode(UnaryReports(np.zeros((1, width), dtype=np.uint8), k))[0]
        import base64

        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode("ascii")

        spare = width * 8 - k
        bits_cases = [
            b64(bytes(width)),
            b64(bytes([0xFF] * width)),
            b64(bytes(width - 1) + bytes([0xFF >> spare])),
            b64(bytes(width - 1) + bytes([(0xFF >> spare) + 1 & 0xFF])),
            b64(bytes(width - 1) + bytes([0x80])),
            b64(bytes(width + 1)),
            b64(bytes(max(width - 1, 0))),
            "",
            b64(bytes(width))[:-1],
            b64(bytes(width)) + "=",
            b64(bytes(width)) + "\n",
            " " + b64(bytes(width)),
            b64(bytes(width)).replace("A", "-", 1),
            b64(bytes(width)).rstrip("="),
            5,
            None,
            True,
            [],
            {"b": 1},
        ]
        bits_cases += base64_fuzz(rng, 120)
        add(
            m,
            header_cases(name, good)
            + [{**good, "bits": b} for b in bits_cases]
            + [{k2: v for k2, v in good.items() if k2 != "bits"}],
        )

    for name in ("olh", "blh"):
        m = mechanisms.create(name, epsilon=1.0, domain_size=100)
        good = {"v": 1, "m": name, "s": "0123456789abcdef", "y": 1}
        seeds = [
            "0000000000000000",
            "ffffffffffffffff",
            "FFFFFFFFFFFFFFFF",
            "DeadBeefCafeF00d",
            "0123456789abcde",
            "0123456789abcdef0",
            "",
            "ghijklmnopqrstuv",
            "0123456789abcdeg",
            " 123456789abcdef",
            "123456789abcdef ",
            "0x23456789abcdef",
            "0X23456789ABCDEF",
            "+123456789abcdef",
            "-123456789abcdef",
            "-000000000000000",
            "0000_00000000000",
            "\u0660" * 16,
            "\uff10" * 16,
            "\U0001f600" + "0" * 15,
            "é" * 16,
            "\t" * 16,
            12345,
            None,
            True,
            ["0123456789abcdef"],
        ]
        add(
            m,
            header_cases(name, good)
            + [{**good, "s": s} for s in seeds]
            + index_cases(good, m.g)
            + [{k2: v for k2, v in good.items() if k2 != "s"}],
        )
    return {
        "format": FORMAT,
        "about": (
            "encode: given reports -> payload; decode: (config, payload) -> expect ({'ok': decoded} or "
            "{'reason': code}); 'python' and 'note' where Python's decoder differs"
        ),
        "encode": encode,
        "decode": decode,
    }


# --------------------------------------------------------------------------------------
# perturb.json
# --------------------------------------------------------------------------------------


def build_perturb() -> dict[str, Any]:
    rng = random.Random(1234567)
    plan: list[tuple[str, float, int, dict[str, Any], list[int], int]] = [
        ("grr", 1.0, 4, {}, [0, 1, 2, 3], 6),
        ("grr", 0.5, 2, {}, [0, 1], 8),
        ("grr", 20.0, 2, {}, [1], 3),
        ("grr", 0.01, 1000, {}, [0, 999], 4),
        ("grr", 3.0, 2**31, {}, [0, 2**31 - 1], 4),
        ("sue", 1.0, 4, {}, [0, 3], 5),
        ("sue", 0.5, 17, {}, [16], 4),
        ("sue", 4.0, 8, {}, [5], 3),
        ("oue", 1.0, 4, {}, [0, 2], 5),
        ("oue", 2.0, 9, {}, [8], 4),
        ("oue", 0.01, 16, {}, [7], 3),
        ("oue", 20.0, 12, {}, [11], 3),
        ("oue", 1.0, 100, {}, [42], 2),
        ("olh", 1.0, 10, {}, [0, 9], 6),
        ("olh", 3.0, 100, {}, [57], 5),
        ("olh", 0.01, 2**32, {}, [0, 2**32 - 1], 4),
        ("olh", 8.0, 1000, {}, [999], 4),
        ("olh", 1.0, 50, {"g": 2**20}, [3], 4),
        ("olh", 13.8, 50, {}, [3], 3),
        ("blh", 1.0, 10, {}, [0, 7], 5),
        ("blh", 0.5, 3, {}, [2], 4),
        ("hr", 1.0, 10, {}, [0, 3, 9], 4),
        ("hr", 0.5, 3, {}, [0, 1, 2], 4),
        ("hr", 1.0, 7, {}, [6], 4),
        ("hr", 1.0, 8, {}, [7], 4),
        ("hr", 2.0, 2**24, {}, [0, 2**24 - 1], 4),
    ]
    cases = []
    for name, eps, k, options, values, repeats in plan:
        m = mechanisms.create(name, epsilon=eps, domain_size=k, **options)
        budget = 8 * k + 512 if name in ("sue", "oue") else 512
        for value in values:
            for _ in range(repeats):
                data, payload = replay_case(lambda m=m, value=value: m.perturb(value), rng, budget)
                cases.append(
                    {
                        "config": m.config,
                        "value": value,
                        "random": data,
                        "payload": payload,
                        "payload_json": wire_text(payload),
                    }
                )
    return {
        "format": FORMAT,
        "about": (
            "perturb(value) with every random byte replayed from 'random' (hex); "
            "the web SDK must consume exactly these bytes"
        ),
        "cases": cases,
    }


# --------------------------------------------------------------------------------------
# multidim.json (RS+FD)
# --------------------------------------------------------------------------------------

RSFD_NAMES = ["rsfd-grr", "rsfd-oue-z", "rsfd-oue-r", "rsfd-adp"]


def describe_multidim(m: Any) -> dict[str, Any]:
    """Everything the web SDK must compute identically for one RS+FD protocol."""
    s = m.privacy
    return {
        "name": m.name,
        "config": m.config,
        "canonical": canonical_json(m.config),
        "config_hash": m.config_hash,
        "epsilon_amplified": m.epsilon_amplified,
        "attributes": [
            {
                "k": a.k,
                "oracle": a.oracle,
                "fake": a.fake,
                "epsilon": a.epsilon,
                "p": a.p,
                "q": a.q,
                "fake_support": a.fake_support,
                "threshold_p": str(_random.probability_threshold(a.p)),
            }
            for a in m.attribute_parameters
        ],
        "privacy": {
            "epsilon": s.epsilon,
            "epsilon_tuple": s.epsilon_tuple,
            "epsilon_attribute": s.epsilon_attribute,
            "neighbouring": s.neighbouring,
        },
        "variance_approx_per_user": [float(v) for v in m.variance_approx_per_user],
    }


def multidim_decoded(m: Any, batch: Any, row: int = 0) -> list[Any]:
    """A decoded report as one entry per attribute: an int (GRR) or a bit string (OUE)."""
    out: list[Any] = []
    for a, column in zip(m.attribute_parameters, batch.columns, strict=True):
        if a.oracle == "grr":
            out.append(int(column.values[row]))
        else:
            out.append("".join(str(int(b)) for b in column.unpacked()[row]))
    return out


def multidim_verdict(m: Any, payload: Any) -> dict[str, Any]:
    try:
        batch = m.decode([payload])
    except ReportDecodeError as exc:
        return {"reason": exc.reason}
    except Exception as exc:  # recorded: the Python decoder crashed
        return {"crash": type(exc).__name__}
    return {"ok": multidim_decoded(m, batch)}


def web_verdict_of(python: Callable[[Any], dict[str, Any]], payload: Any) -> tuple[dict[str, Any], str | None]:
    """The web decoder's verdict for the RS+FD and heavy-hitter decoders: Python's on the
    JavaScript view of the payload, except that ``"v": true`` is not version 1."""
    view = js_view(payload)
    if isinstance(view, dict) and view.get("v") is True:
        return {"reason": "bad_version"}, "Python's != takes True for version 1; the web decoder wants the number 1"
    verdict = python(view)
    note = None
    if view != payload or has_integral_float(payload):
        note = "an integral JSON float (e.g. 3.0) parses to a JavaScript integer: the web decoder cannot tell it from 3"
    return verdict, note


def add_decode_cases(
    out: list[dict[str, Any]], config: Any, python: Callable[[Any], dict[str, Any]], payloads: list[Any]
) -> None:
    for payload in payloads:
        expect, note = web_verdict_of(python, payload)
        actual = python(payload)
        case: dict[str, Any] = {"config": config, "payload": payload, "expect": expect}
        if actual != expect:
            case["python"] = actual
            case["note"] = note or "differs"
        out.append(case)


def build_multidim() -> dict[str, Any]:
    from client_sdk import multidim

    rng = random.Random(8086)
    grid = []
    size_grid = [[2], [4, 4, 4], [2, 3, 40], [2, 100, 7, 1000], [65536, 2], [5, 9, 13, 17, 33, 64]]
    eps_grid = [0.01, 0.5, math.log(3), 2.0, 8.0, rng.uniform(0.01, 5)]
    for name in RSFD_NAMES:
        for i, eps in enumerate(eps_grid):
            for j, sizes in enumerate(size_grid + ([[2**31, 2]] if name == "rsfd-grr" else [])):
                neighbouring = "tuple" if (i + j) % 2 == 0 else "attribute"
                try:
                    m = multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes, neighbouring=neighbouring)
                except ConfigError:
                    continue
                grid.append(describe_multidim(m))
    # 256 attributes, and the amplified budget near its limit of 20
    grid.append(describe_multidim(multidim.create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[3] * 255 + [300])))
    for name in RSFD_NAMES:
        grid.append(describe_multidim(multidim.create_multidim(name, epsilon=14.0, domain_sizes=[3, 4, 5])))

    errors: list[dict[str, Any]] = []
    bad = [
        ("rsfd-grr", 1.0, [], "tuple", {}),
        ("rsfd-grr", 1.0, [1, 4], "tuple", {}),
        ("rsfd-grr", 1.0, [4, 2.5], "tuple", {}),
        ("rsfd-grr", 1.0, [4, "3"], "tuple", {}),
        ("rsfd-grr", 1.0, [4, True], "tuple", {}),
        ("rsfd-grr", 1.0, "44", "tuple", {}),
        ("rsfd-grr", 1.0, 4, "tuple", {}),
        ("rsfd-grr", 1.0, {"a": 4}, "tuple", {}),
        ("rsfd-grr", 1.0, [2] * 257, "tuple", {}),
        ("rsfd-grr", 1.0, [2**31 + 1], "tuple", {}),
        ("rsfd-oue-z", 1.0, [65537], "tuple", {}),
        ("rsfd-adp", 1.0, [2, 65537], "tuple", {}),
        ("rsfd-oue-r", 0.0, [4], "tuple", {}),
        ("rsfd-oue-r", 25.0, [4], "tuple", {}),
        ("rsfd-oue-r", "1", [4], "tuple", {}),
        ("rsfd-oue-r", True, [4], "tuple", {}),
        ("rsfd-grr", 19.5, [4, 4], "tuple", {}),  # amplified budget > 20
        ("rsfd-grr", 15.0, [2] * 256, "tuple", {}),
        ("rsfd-grr", 1.0, [4], "record", {}),
        ("rsfd-grr", 1.0, [4], None, {}),
        ("rsfd-grr", 1.0, [4], "tuple", {"oracle": "grr"}),
        ("rsfd-nope", 1.0, [4], "tuple", {}),
        ("", 1.0, [4], "tuple", {}),
        (7, 1.0, [4], "tuple", {}),
    ]
    for name, eps, sizes, neighbouring, options in bad:
        message = config_error(
            functools.partial(
                multidim.create_multidim, name, epsilon=eps, domain_sizes=sizes, neighbouring=neighbouring, **options
            )
        )
        assert message is not None, (name, eps, sizes, neighbouring, options)
        errors.append(
            {"name": name, "epsilon": eps, "domain_sizes": sizes, "neighbouring": neighbouring, "options": options}
        )
    from_config = []
    for config in (
        {"kind": "multidim", "mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [4, 2], "neighbouring": "tuple"},
        {"mechanism": "RSFD-ADP", "epsilon": 1, "domain_sizes": [4, 2, 40]},
        {"mechanism": "rsfd-oue-r", "epsilon": 0.5, "domain_sizes": [3], "neighbouring": "attribute"},
    ):
        from_config.append({"config_in": config, **describe_multidim(multidim.from_config(config))})
    config_errors = []
    for config in (
        {"kind": "frequency", "mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [4]},
        {"kind": "multidim", "epsilon": 1.0, "domain_sizes": [4]},
        {"kind": "multidim", "mechanism": "rsfd-grr", "domain_sizes": [4]},
        {"kind": "multidim", "mechanism": "rsfd-grr", "epsilon": 1.0},
        {"kind": "multidim", "mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [4], "extra": 1},
        {"kind": "multidim", "mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [4], "neighbouring": "x"},
    ):
        assert config_error(functools.partial(multidim.from_config, config)) is not None, config
        config_errors.append(config)

    # whole perturbations replayed on fixed bytes
    plan: list[tuple[str, float, list[int], str, list[tuple[int, ...]], int]] = [
        ("rsfd-grr", 1.0, [4, 4, 4], "tuple", [(0, 1, 2), (3, 3, 3)], 4),
        ("rsfd-grr", 0.5, [2, 3, 40], "attribute", [(1, 2, 39)], 4),
        ("rsfd-grr", 2.0, [2**31, 2], "tuple", [(2**31 - 1, 0)], 3),
        ("rsfd-grr", 1.0, [5], "tuple", [(4,)], 3),
        ("rsfd-grr", 14.0, [3, 4, 5], "tuple", [(2, 3, 4)], 3),
        ("rsfd-oue-z", 1.0, [3, 2], "tuple", [(2, 0), (1, 1)], 4),
        ("rsfd-oue-z", 0.1, [16, 9, 2], "attribute", [(15, 8, 1)], 3),
        ("rsfd-oue-z", 4.0, [8], "tuple", [(7,)], 3),
        ("rsfd-oue-r", 1.0, [3, 3, 3], "tuple", [(0, 1, 2)], 4),
        ("rsfd-oue-r", 2.0, [5, 2], "attribute", [(4, 1)], 4),
        ("rsfd-adp", 1.0, [4, 2, 40], "tuple", [(1, 0, 39), (3, 1, 0)], 4),
        ("rsfd-adp", 3.0, [2, 9], "tuple", [(1, 3)], 4),
        ("rsfd-adp", 0.3, [300, 2, 17], "attribute", [(299, 1, 16)], 2),
    ]
    perturb = []
    for name, eps, sizes, neighbouring, values, repeats in plan:
        m = multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes, neighbouring=neighbouring)
        budget = 8 * sum(a.k for a in m.attribute_parameters if a.oracle == "oue") + 64 * m.d + 512
        for value in values:
            for _ in range(repeats):
                data, payload = replay_case(lambda m=m, value=value: m.perturb(value), rng, budget)
                perturb.append(
                    {
                        "config": m.config,
                        "value": list(value),
                        "random": data,
                        "payload": payload,
                        "payload_json": wire_text(payload),
                    }
                )

    # encode: given decoded reports -> payloads (Python's encode of a vectorised batch)
    encode = []
    nprng = np.random.default_rng(99)
    for name, eps, sizes in (
        ("rsfd-grr", 1.0, [4, 3]),
        ("rsfd-oue-z", 1.0, [3, 10]),
        ("rsfd-oue-r", 2.0, [9, 2, 17]),
        ("rsfd-adp", 3.0, [2, 9]),
        ("rsfd-adp", 1.0, [4, 2, 40]),
    ):
        m = multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes)
        data = nprng.integers(0, sizes, size=(6, len(sizes)))
        batch = m.perturb_batch(data, rng=nprng)
        for row, payload in enumerate(m.encode(batch)):
            encode.append(
                {
                    "config": m.config,
                    "report": multidim_decoded(m, batch, row),
                    "payload": payload,
                    "payload_json": wire_text(payload),
                }
            )

    decode: list[dict[str, Any]] = []
    for name, eps, sizes in (("rsfd-grr", 1.0, [4, 3]), ("rsfd-oue-z", 1.0, [3, 10]), ("rsfd-adp", 3.0, [2, 9])):
        m = multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes)
        good = m.encode(m.perturb_batch(np.zeros((1, len(sizes)), dtype=int), rng=np.random.default_rng(0)))[0]
        cases = header_cases(name, good)
        cases += [{**good, "y": y} for y in (5, "x", None, {}, True, [], good["y"][:1], [*good["y"], 0])]
        cases.append({k: v for k, v in good.items() if k != "y"})
        for i, a in enumerate(m.attribute_parameters):

            def at(value: Any, i: int = i, good: dict[str, Any] = good) -> dict[str, Any]:
                y = list(good["y"])
                y[i] = value
                return {**good, "y": y}

            if a.oracle == "grr":
                entries = [0, a.k - 1, a.k, -1, 2**53, True, False, None, "1", 1.5, 1.0, -0.0, [], {}]
            else:
                width = (a.k + 7) // 8
                spare = width * 8 - a.k
                import base64

                def b64(raw: bytes) -> str:
                    return base64.b64encode(raw).decode("ascii")

                entries = [
                    b64(bytes(width)),
                    b64(bytes([0xFF] * width)),
                    b64(bytes(width - 1) + bytes([0xFF >> spare])),
                    b64(bytes(width + 1)),
                    b64(bytes(width))[:-1],
                    b64(bytes(width)) + "\n",
                    b64(bytes(width)).replace("A", "-", 1),
                    "",
                    5,
                    None,
                    True,
                    [],
                ] + base64_fuzz(rng, 25)
            cases += [at(e) for e in entries]
        add_decode_cases(decode, m.config, lambda p, m=m: multidim_verdict(m, p), cases)

    laws = []
    for name, eps, sizes, values in (
        ("rsfd-grr", 1.0, [3, 2], [(0, 0), (2, 1)]),
        ("rsfd-oue-z", 1.0, [2, 3], [(1, 2)]),
        ("rsfd-oue-r", 1.0, [3, 2], [(0, 1)]),
        ("rsfd-adp", 3.0, [2, 9], [(1, 3)]),
    ):
        m = multidim.create_multidim(name, epsilon=eps, domain_sizes=sizes)
        for value in values:
            law = m.output_distribution(value)
            laws.append(
                {
                    "config": m.config,
                    "value": list(value),
                    "law": [[[int(x) for x in y], float(law[y])] for y in sorted(law)],
                }
            )
    return {
        "format": FORMAT,
        "about": (
            "RS+FD (client_sdk.multidim): parameters and privacy over a grid; ConfigError cases; from_config; "
            "perturb(value) replayed on 'random'; encode of decoded reports (GRR attribute: int, OUE attribute: "
            "bit string); decoder verdicts; exact output laws [[outputs per attribute, probability], ...] "
            "(OUE outputs as bit patterns, bit j = value j)"
        ),
        "grid": grid,
        "errors": errors,
        "from_config": from_config,
        "config_errors": config_errors,
        "perturb": perturb,
        "encode": encode,
        "decode": decode,
        "output_distribution": laws,
    }


# --------------------------------------------------------------------------------------
# heavy_hitters.json (client side of PEM, TAP/TAPS, TreeHist)
# --------------------------------------------------------------------------------------


def typed_int(x: int) -> dict[str, str]:
    return {"int": str(x)}


def hh_verdict(protocol: Any, payload: Any) -> dict[str, Any]:
    try:
        r = protocol.decode([payload])
    except ReportDecodeError as exc:
        return {"reason": exc.reason}
    except Exception as exc:
        return {"crash": type(exc).__name__}
    out: dict[str, Any] = {"l": int(r.levels[0]), "s": u64(int(r.seeds[0])), "y": int(r.ys[0])}
    if r.parties is not None:
        out["p"] = int(r.parties[0])
    if r.item_seeds is not None:
        out["s2"] = u64(int(r.item_seeds[0]))
        out["y2"] = int(r.item_ys[0])
    return {"ok": out}


def build_heavy_hitters() -> dict[str, Any]:
    from client_sdk import heavy_hitters
    from client_sdk.heavy_hitters import encoding as E

    rng = random.Random(4242)
    strings = [
        "",
        "a",
        "hi",
        "hé",
        "ééé",
        "日本語",
        "\U0001f600",
        "a\U0001f600b",
        "e\u0301",
        "\u00ff" * 3,
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "a\x00b",
        "\x00",
        "\x7f",
        "\u2028",
        "x" * 31,
        "y" * 32,
        "z" * 33,
        "é" * 16 + "a",
        "a" + "é" * 16,
        "\U0010ffff",
        "Ω" * 3,
        "\uffff",
        "ab\U0001f600",
        "abc\U0001f600",
        " ",
    ]
    items = []
    for domain in (
        {"type": "string", "max_bytes": 1},
        {"type": "string", "max_bytes": 2, "overflow": "reject"},
        {"type": "string", "max_bytes": 4},
        {"type": "string", "max_bytes": 5, "overflow": "reject"},
        {"type": "string", "max_bytes": 6},
        {"type": "string", "max_bytes": 32},
    ):
        d = E.domain_from_config(domain)
        for s in strings + [5, None, ["a"]]:
            entry: dict[str, Any] = {"domain": d.config, "item": s}
            try:
                entry["code"] = format(d.encode(s), "x")
                entry["canonical"] = d.canonical(s)
            except E.ItemEncodingError:
                entry["error"] = True
            items.append(entry)
    for domain in (
        {"type": "string", "alphabet": "lower", "max_chars": 3},
        {"type": "string", "alphabet": "letters", "max_chars": 8, "overflow": "reject"},
        {"type": "string", "alphabet": "printable", "max_chars": 4, "outside": "drop"},
        {"type": "string", "alphabet": "lower-digits", "max_chars": 5, "outside": "drop", "overflow": "truncate"},
        {"type": "string", "alphabet": ["é", "a", "\U0001f600", "日"], "max_chars": 6},
        {"type": "string", "alphabet": "unicode", "max_chars": 4, "outside": "drop"},
    ):
        d = E.domain_from_config(domain)
        for s in strings + ["Hello", "abc1", "zz-9!", "aé日\U0001f600", "ab", 5, None]:
            entry = {"domain": d.config, "item": s}
            try:
                entry["code"] = format(d.encode(s), "x")
                entry["canonical"] = d.canonical(s)
            except E.ItemEncodingError:
                entry["error"] = True
            items.append(entry)
    for bits in (1, 8, 12, 32, 33, 53, 63, 64):
        d = E.IntegerDomain(bits)
        values: list[Any] = [0, 1, 2**bits - 1, 2**bits, -1, 255, 2**53 + 1, rng.getrandbits(bits)]
        for v in values:
            entry = {"domain": d.config, "item": typed_int(v)}
            try:
                entry["code"] = format(d.encode(v), "x")
            except E.ItemEncodingError:
                entry["error"] = True
            items.append(entry)
        for v in (1.5, "3", True, None):
            entry = {"domain": d.config, "item": v}
            try:
                d.encode(v)
                raise AssertionError(v)
            except E.ItemEncodingError:
                entry["error"] = True
            items.append(entry)

    keys = []
    for length in list(range(1, 70)) + [96, 127, 128, 129, 191, 192, 200, 255, 256]:
        for prefix in {0, 1, (1 << length) - 1, rng.getrandbits(length), rng.getrandbits(length)}:
            keys.append([format(prefix, "x"), length, E.prefix_key(prefix, length)])

    creates: list[tuple[str, dict[str, Any]]] = [
        ("pem", {"epsilon": 4.0, "k": 2, "domain": {"type": "string", "max_bytes": 2}}),
        ("pem", {"epsilon": 2, "k": 16, "domain": {"type": "integer", "bits": 32}, "eta": 4}),
        (
            "pem",
            {
                "epsilon": 1.0,
                "k": 8,
                "domain": {"type": "string", "max_bytes": 6, "overflow": "reject"},
                "eta": 3,
                "g": 5,
                "keep": "threshold",
                "width": 20,
                "alpha": 0.01,
                "max_width": 40,
                "prune_infeasible": False,
            },
        ),
        ("pem", {"epsilon": 12.0, "k": 1, "domain": {"type": "integer", "bits": 8}}),
        ("pem", {"epsilon": 20.0, "k": 100, "domain": {"type": "string", "max_bytes": 32}, "eta": 9}),
        ("pem", {"epsilon": 0.01, "k": 3, "domain": {"type": "integer", "bits": 64}, "eta": 10}),
        ("tap", {"epsilon": 3.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "parties": ["a", "b", "c"]}),
        (
            "tap",
            {
                "epsilon": 2.0,
                "k": 8,
                "domain": {"type": "integer", "bits": 24},
                "parties": ["north", "south"],
                "eta": 2,
                "shared_levels": 3,
                "k_max": 40,
                "k_local": 12,
                "k_global": 20,
                "z": 3,
                "z0": 0.5,
                "width_rule": "fixed",
                "floor": 9,
                "pruning": "consensus",
                "mode": "R",
                "order": "size-desc",
            },
        ),
        ("taps", {"epsilon": 2.0, "k": 4, "domain": {"type": "string", "max_bytes": 4}, "parties": ["x", "y"]}),
        ("treehist", {"epsilon": 2.0, "k": 4, "domain": {"type": "integer", "bits": 12}}),
        (
            "treehist",
            {
                "epsilon": 1.0,
                "k": 10,
                "domain": {"type": "string", "max_bytes": 3},
                "eta": 5,
                "threshold": 0.01,
                "fragment_estimator": "level",
                "width": 7,
            },
        ),
        ("treehist", {"epsilon": 0.02, "k": 2, "domain": {"type": "integer", "bits": 5}, "g": 3}),
        ("pem", {"epsilon": 4.0, "k": 16, "domain": {"type": "string", "alphabet": "letters", "max_chars": 8}}),
        (
            "pem",
            {
                "epsilon": 2.0,
                "k": 4,
                "domain": {"type": "string", "alphabet": "lower", "max_chars": 4},
                "eta": 10,
                "final_round": False,
                "alpha": 0.01,
                "expected_reports": 10**6,
            },
        ),
        (
            "tap",
            {
                "epsilon": 3.0,
                "k": 4,
                "domain": {"type": "string", "alphabet": "unicode", "max_chars": 2},
                "parties": ["a", "b"],
                "alpha": 0.1,
            },
        ),
        (
            "treehist",
            {"epsilon": 4.0, "k": 4, "domain": {"type": "string", "alphabet": ["x", "y", "z"], "max_chars": 5}},
        ),
    ]
    configs = []
    for protocol, options in creates:
        hh = heavy_hitters.create(protocol, **options)
        configs.append(
            {
                "protocol": protocol,
                "options": options,
                "config": hh.config,
                "canonical": canonical_json(hh.config),
                "config_hash": config_hash(hh.config),
                "levels": list(hh.lengths),
                "g": hh.g,
                "p": hh.olh.p_star,
                "epsilon_charged": hh.privacy.epsilon,
                "mechanism": hh.mechanism,
            }
        )
    bad_creates: list[tuple[Any, dict[str, Any]]] = [
        ("pem", {"epsilon": 20.0, "k": 4096, "domain": {"type": "string", "max_bytes": 32}, "eta": 10}),
        ("pem", {"epsilon": 1.0, "k": 0, "domain": {"type": "integer", "bits": 8}}),
        ("pem", {"epsilon": 1.0, "k": 4097, "domain": {"type": "integer", "bits": 8}}),
        ("pem", {"epsilon": 1.0, "k": 2.0, "domain": {"type": "integer", "bits": 8}}),
        ("pem", {"epsilon": 1.0, "k": True, "domain": {"type": "integer", "bits": 8}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 65}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 0}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "max_bytes": 33}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "max_bytes": 2, "overflow": "drop"}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "float"}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8, "encoding": "hh-item-v2"}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer"}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": "integer"}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 0}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 11}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "g": 1}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "g": 65537}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "keep": "all"}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "width": 1}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "alpha": 1.0}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "alpha": True}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "prune_infeasible": 1}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "split": "round-robin"}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"]}),
        ("pem", {"epsilon": 0.0, "k": 2, "domain": {"type": "integer", "bits": 8}}),
        ("pem", {"epsilon": 1.0, "k": 2}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": []}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": "ab"}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a", "a"]}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "mode": "Q"}),
        (
            "tap",
            {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "shared_levels": 9},
        ),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "pruning": "x"}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "order": "x"}),
        (
            "tap",
            {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "width_rule": "x"},
        ),
        ("tap", {"epsilon": 1.0, "k": 4, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "floor": 100}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "z": -1}),
        ("treehist", {"epsilon": 0.01, "k": 2, "domain": {"type": "integer", "bits": 8}}),
        ("treehist", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "fragment_estimator": "x"}),
        ("treehist", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 17}),
        ("treehist", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "threshold": -0.5}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "max_bytes": 4, "alphabet_x": 1}}),
        (
            "pem",
            {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": "lower", "max_chars": 4, "max_bytes": 4}},
        ),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8, "alphabet": "lower"}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": "greek", "max_chars": 4}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": ["a", "a"], "max_chars": 4}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": ["ab"], "max_chars": 4}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": [], "max_chars": 4}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": ["\n"], "max_chars": 4}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": "lower", "max_chars": 52}}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": "lower", "max_chars": 0}}),
        (
            "pem",
            {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": "lower", "max_chars": 4, "outside": "x"}},
        ),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "string", "alphabet": "lower", "max_chars": 4}, "eta": 7}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "final_round": 1}),
        ("pem", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "expected_reports": 0}),
        ("tap", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "parties": ["a"], "alpha": 2}),
        ("treehist", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "alpha": 0}),
        ("nope", {"epsilon": 1.0, "k": 2, "domain": {"type": "integer", "bits": 8}}),
        (5, {}),
    ]
    errors = []
    for protocol, options in bad_creates:
        message = config_error(functools.partial(heavy_hitters.create, protocol, **options))
        assert message is not None, (protocol, options)
        # an integral float (k=2.0) reaches JavaScript as an integer: Python refuses it, the web SDK cannot
        errors.append({"protocol": protocol, "options": options, "js_integral_float": has_integral_float(options)})
    base = heavy_hitters.create("pem", epsilon=2.0, k=4, domain={"type": "integer", "bits": 12}).config
    config_errors: list[Any] = [
        {**base, "version": 2},
        {**base, "fo": {"mechanism": "grr", "g": 8, "hash": "olh-mas-v1"}},
        {**base, "fo": {"mechanism": "olh", "g": 8, "hash": "xx"}},
        {**base, "levels": [6, 10]},
        {**base, "key": "hh-key-v2"},
        {**base, "fo": {"mechanism": "olh", "g": 9, "hash": "olh-mas-v1"}, "levels": [4, 8, 12]},
        {k: v for k, v in base.items() if k != "protocol"},
        {**base, "protocol": "smp"},
        {**base, "bogus": 1},
        {**base, "version": True},
        {**base, "domain": {**base["domain"], "bogus": 1}},  # unknown domain keys are refused, not dropped
        {**base, "fo": {**base["fo"], "bogus": 1}},
        "pem",
    ]
    for c in config_errors:
        assert config_error(functools.partial(heavy_hitters.from_config, c)) is not None, c
    from_config = []
    for c in (
        base,
        {**base, "fo": {"mechanism": "olh", "g": 8, "hash": "olh-mas-v1"}},
        {k: v for k, v in base.items() if k not in ("levels", "fo", "key", "version")},
    ):
        hh = heavy_hitters.from_config(c)
        from_config.append({"config_in": c, "config": hh.config, "config_hash": config_hash(hh.config)})

    perturb = []
    plan: list[tuple[int, list[Any], list[Any], int]] = [
        (0, ["hi", "ok", "", "日本語", "hé"], [None], 3),
        (1, [0, 1, 2**32 - 1, 123456789], [None], 3),
        (2, ["abcdef", "é"], [None], 3),
        (3, [0, 255], [None], 3),
        (4, ["the quick brown fox jumps over the lazy dog"], [None], 3),
        (5, [2**64 - 1, 2**63], [None], 3),
        (6, ["hi", "ciao"], ["a", "c", 1], 3),
        (7, [2**24 - 1, 5], ["south", 0], 3),
        (8, ["hi"], ["x", "y"], 3),
        (9, [0, 4095], [None], 3),
        (10, ["abc", "z"], [None], 3),
        (11, [31], [None], 3),
        (12, ["Hello", "the", ""], [None], 3),
        (13, ["abcd", "ab"], [None], 3),
        (14, ["日本", "é"], ["a", "b"], 3),
        (15, ["xyz", "zz"], [None], 3),
    ]
    for index, items_, parties, repeats in plan:
        c = configs[index]
        hh = heavy_hitters.from_config(c["config"])
        for item in items_:
            for party in parties:
                for _ in range(repeats):
                    data, payload = replay_case(
                        lambda hh=hh, item=item, party=party: hh.perturb(item, party=party), rng, 512
                    )
                    perturb.append(
                        {
                            "config": c["config"],
                            "item": typed_int(item) if isinstance(item, int) else item,
                            "party": party,
                            "random": data,
                            "payload": payload,
                            "payload_json": wire_text(payload),
                        }
                    )

    decode: list[dict[str, Any]] = []
    for index in (0, 6, 9):
        c = configs[index]
        hh = heavy_hitters.from_config(c["config"])
        good: dict[str, Any] = {"v": 1, "m": hh.mechanism, "l": 1, "s": "0123456789abcdef", "y": 1}
        if index == 6:
            good["p"] = 2
        if index == 9:
            good |= {"s2": "fedcba9876543210", "y2": 0}
        groups = len(hh.lengths)
        cases: list[Any] = [[], "x", 1, None, True, [good], {}, good]
        cases += [{k: v for k, v in good.items() if k != key} for key in good]
        cases += [{**good, "extra": 1}, {**good, "V": 1}]
        cases += [{**good, "v": v} for v in (2, 0, "1", None, True, 1.0, 1.5)]
        cases += [{**good, "m": m} for m in ("pem" if hh.mechanism != "pem" else "tap", hh.mechanism.upper(), None, 1)]
        cases += [{**good, "l": v} for v in (0, 1, groups, groups + 1, -1, True, 1.5, 1.0, "1", None, 2**53)]
        cases += [
            {**good, "s": s}
            for s in (
                "0000000000000000",
                "ffffffffffffffff",
                "FFFFFFFFFFFFFFFF",
                "0123456789abcde",
                "0123456789abcdef0",
                "",
                " 123456789abcdef",
                "0x23456789abcdef",
                "+123456789abcdef",
                "\u0660" * 16,
                12345,
                None,
                ["0123456789abcdef"],
            )
        ]
        cases += [{**good, "y": v} for v in (0, hh.g - 1, hh.g, -1, True, 1.5, 2.0, "1", None)]
        if "p" in good:
            cases += [{**good, "p": v} for v in (0, 2, 3, -1, "a", True, 1.0, None)]
        if "s2" in good:
            cases += [{**good, "s2": s} for s in ("ABCDEF0123456789", "abc", 5)]
            cases += [{**good, "y2": v} for v in (0, hh.g - 1, hh.g, -1, False, "0")]
        add_decode_cases(decode, c["config"], lambda p, hh=hh: hh_verdict(hh, p), cases)

    return {
        "format": FORMAT,
        "about": (
            "heavy-hitter client side (client_sdk.heavy_hitters): item codes (hex) of string and integer "
            "domains ({'int': decimal} for integers), prefix keys [prefix hex, length, key] of hh-key-v1, "
            "configs of create(protocol, **options) with their hashes, levels and g, ConfigError cases, "
            "from_config, perturb(item, party) replayed on 'random', decoder verdicts"
        ),
        "items": items,
        "prefix_keys": keys,
        "configs": configs,
        "errors": errors,
        "config_errors": config_errors,
        "from_config": from_config,
        "perturb": perturb,
        "decode": decode,
    }


# --------------------------------------------------------------------------------------
# runtime.json (the device runtime's rules: config hash of served JSON, epochs, units)
# --------------------------------------------------------------------------------------


def public_config(
    kind: str,
    mechanism: dict[str, Any],
    epsilon: float,
    neighbouring: str,
    *,
    seconds: int = 3600,
    start: str = "2030-01-01T00:00:00Z",
    grace: int = 1,
    cap_lifetime: float = 10.0,
    cap_per_window: float | None = None,
    window_epochs: int = 1,
    memoized: bool = False,
    epsilon_per_memo: float | None = None,
    parties: list[str] | None = None,
    release: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A collection's public config, laid out as ldpserver/services/collections.py builds it."""
    out: dict[str, Any] = {
        "version": 2,
        "kind": kind,
        "mechanism": mechanism,
        "epsilon": epsilon,
        "neighbouring": neighbouring,
        "epoch": {"seconds": seconds, "start": start, "grace": grace},
        "release": release or {"windows": [1], "cumulative": True, "min_reports": 100},
        "budget": {
            "cap_lifetime": float(cap_lifetime),
            "cap_per_window": None if cap_per_window is None else float(cap_per_window),
            "window_epochs": window_epochs,
            "memoized": memoized,
            "epsilon_per_memo": epsilon_per_memo,
        },
    }
    if parties is not None:
        out["parties"] = parties
    return out


def build_runtime() -> dict[str, Any]:
    from client_sdk import heavy_hitters, multidim
    from client_sdk.client.config import CollectionConfig, _parse_start, max_units

    rng = random.Random(5150)
    oue = mechanisms.create("oue", epsilon=1.0, domain_size=128).config
    rsfd = multidim.create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[4, 2, 40])
    pem = heavy_hitters.create("pem", epsilon=4.0, k=2, domain={"type": "string", "max_bytes": 2})
    tap = heavy_hitters.create("tap", epsilon=3.0, k=4, domain={"type": "string", "max_bytes": 4}, parties=["a", "b"])
    configs = [
        public_config("frequency", oue, 1.0, "record"),
        public_config("frequency", oue, 1.0, "record", cap_lifetime=3.0, cap_per_window=0.3 * 3, window_epochs=24),
        public_config(
            "frequency",
            mechanisms.create("olh", epsilon=0.1, domain_size=10**6).config,
            0.1,
            "record",
            cap_lifetime=0.3,
            cap_per_window=0.1,
            seconds=86400,
            start="2024-02-29T00:00:00Z",
            grace=0,
        ),
        public_config("multidim", rsfd.config, rsfd.privacy.epsilon, "tuple", cap_lifetime=100.0),
        public_config("heavy_hitters", pem.config, 4.0, "record", parties=[]),
        public_config("heavy_hitters", tap.config, 3.0, "record", parties=["a", "b"], cap_per_window=3.0),
        public_config("frequency", oue, 1.0, "record", memoized=True, epsilon_per_memo=1.0),
        public_config(
            "frequency", oue, 1.25, "record", release={"windows": [1, 7], "cumulative": False, "min_reports": 10**9}
        ),
        # ε_release and δ of the central noise on releases (issue 14): hashed like every field
        public_config(
            "frequency",
            oue,
            1.0,
            "record",
            release={"windows": [1, 24], "cumulative": True, "min_reports": 100, "epsilon": 1.5, "delta": 1e-07},
        ),
        # an exotic one: floats that Python and ECMAScript write differently, the largest safe
        # integer, unicode, nesting
        {
            **public_config("frequency", oue, 1.0, "record", cap_lifetime=1e16),
            "extra": {
                "tiny": 1e-05,
                "big": 2**53 - 1,
                "neg": -0.0,
                "text": "é ✓ \U0001f600",
                "list": [1.0, 2, None, True],
            },
        },
    ]
    cases = []
    for config in configs:
        text = json.dumps(config, ensure_ascii=False, separators=(",", ":"))
        entry: dict[str, Any] = {"text": text, "config_hash": config_hash(config), "canonical": canonical_json(config)}
        if "extra" not in config:
            try:
                compiled = CollectionConfig.build("col_test", json.loads(text), config_hash(config))
            except ConfigError as exc:
                entry["compile_error"] = type(exc).__name__
            else:
                b = compiled.budget
                entry["compiled"] = {
                    "kind": compiled.kind,
                    "epoch_seconds": compiled.epoch_seconds,
                    "epoch_start_us": compiled.epoch_start_us,
                    "grace": compiled.grace,
                    "unit_epsilon": b.unit_epsilon,
                    "max_units_lifetime": b.max_units_lifetime,
                    "max_units_window": b.max_units_window,
                    "memoized": b.memoized,
                    "charge_floor": compiled.perturber.charge_floor(),
                }
        cases.append(entry)

    epochs = []
    starts = [
        "2030-01-01T00:00:00Z",
        "2024-02-29T12:34:56Z",
        "1970-01-01T00:00:00Z",
        "2030-01-01T00:00:00+02:00",
        "2030-06-30T23:59:59.500000Z",
        "2030-01-01T00:00:00.000001+00:00",
    ]
    for start in starts:
        s_us = _parse_start(start)
        for seconds in (1, 60, 3600, 86400, 7 * 86400):
            for offset_ms in (
                0,
                -1,
                1,
                seconds * 1000 - 1,
                seconds * 1000,
                -seconds * 1000,
                10**9 + 7,
                rng.randrange(-(10**12), 10**12),
            ):
                now_ms = s_us // 1000 + offset_ms
                epochs.append([start, seconds, now_ms, (now_ms * 1000 - s_us) // (seconds * 1_000_000), s_us])
    units = []
    for cap, unit in [
        (0.3, 0.1),
        (1.0, 0.1),
        (3.0, 1.0),
        (1.0, 3.0),
        (2.0, 1.81724),
        (10.0, 1 / 3),
        (0.7, 0.07),
        (1e6, 0.01),
        (5.0, 5.0 * (1 + 1e-10)),
        (5.0, 5.0 * (1 + 1e-8)),
        (0.9, 0.3),
    ] + [
        (round(rng.uniform(0.1, 100), rng.randint(0, 3)), round(rng.uniform(0.01, 5), rng.randint(1, 4)))
        for _ in range(40)
    ]:
        units.append([cap, unit, max_units(cap, unit)])
    return {
        "format": FORMAT,
        "about": (
            "device runtime rules (client_sdk/client/config.py): public configs as the server serves them "
            "(JSON text) with their hash and what the device compiles from them; epochs [start, seconds, "
            "now in Unix ms, epoch, start in Unix µs]; units [cap, unit epsilon, floor(cap/unit*(1+1e-9))]"
        ),
        "configs": cases,
        "old_versions": old_versions(oue),
        "epochs": epochs,
        "units": units,
    }


def old_versions(mechanism: dict[str, Any]) -> list[dict[str, Any]]:
    """Configs of other versions, served with the hash their server computed: a device refuses
    them with UnsupportedCollectionError naming the version (version 1 was hashed as Python's
    ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` text)."""
    from client_sdk.client.config import CollectionConfig

    out = []
    for version in (1, 3):
        config = {**public_config("frequency", mechanism, 1.0, "record"), "version": version}
        legacy = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = "sha256:" + hashlib.sha256(legacy.encode()).hexdigest()
        try:
            CollectionConfig.build("col_test", json.loads(legacy), digest)
        except ConfigError as exc:
            out.append({"text": legacy, "config_hash": digest, "error": type(exc).__name__, "message": str(exc)})
        else:  # pragma: no cover - the generator must not write a vector the SDK does not refuse
            raise AssertionError(f"config version {version} was accepted")
    return out


# --------------------------------------------------------------------------------------


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "params.json": build_params,
    "config.json": build_config,
    "olh_hash.json": build_hash,
    "random.json": build_random,
    "canonical.json": build_canonical,
    "wire.json": build_wire,
    "perturb.json": build_perturb,
    "multidim.json": build_multidim,
    "heavy_hitters.json": build_heavy_hitters,
    "runtime.json": build_runtime,
}


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def vector_file_main(name: str, text: Callable[[], str], script: str, description: str, argv: list[str] | None) -> int:
    """The command line of a vector generator writing tests/vectors/``name``: rewrite the file,
    or with ``--check`` exit 1 if the committed file is stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = parser.parse_args(argv)
    fresh = text()
    path = HERE / name
    if args.check:
        stale = not path.exists() or path.read_text(encoding="utf-8") != fresh
        if stale:
            print(f"stale: tests/vectors/{name} (run: python tests/vectors/{script})")
        return 1 if stale else 0
    path.write_text(fresh, encoding="utf-8")
    print(f"wrote tests/vectors/{name} ({len(fresh.encode('utf-8')) // 1024} KiB)")
    return 0


def render(data: dict[str, Any]) -> str:
    """Top-level keys one per line, and one line per element of a top-level list (diffable)."""
    lines = []
    for key, value in sorted(data.items()):
        if isinstance(value, list) and value:
            items = ",\n".join(f"  {_compact(item)}" for item in value)
            lines.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {_compact(value)}")
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    assert json.loads(text) == json.loads(json.dumps(data)), "render lost information"
    return text


def build_all() -> dict[str, str]:
    """File name -> exact text of every vector file."""
    check_replay_hook()
    return {name: render(builder()) for name, builder in BUILDERS.items()}


def stale_files(directory: Path = HERE) -> list[str]:
    """Names of vector files whose committed text differs from a fresh generation."""
    return [
        name
        for name, text in build_all().items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: tests/vectors/{name} (run: python tests/vectors/generate.py)")
        return 1 if stale else 0
    for name, text in build_all().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote tests/vectors/{name} ({len(text.encode('utf-8')) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
