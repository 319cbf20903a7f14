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
* ``canonical.json`` — float repr, canonical JSON and config hashes of typed objects.
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
    # the GRR-vs-rest boundary k <= 3e^eps + 2 (ALGORITHMS §7)
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


def typed(value: Any) -> Any:
    """A typed description of a Python value (JSON alone cannot tell 1.0 from 1)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": value}
    if isinstance(value, list):
        return {"list": [typed(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[k, typed(v)] for k, v in value.items()]}
    raise TypeError(type(value))


def build_canonical() -> dict[str, Any]:
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
        1e21,
        1e22,
        1e100,
        1.7976931348623157e308,
        5e-324,
        2.2250738585072014e-308,
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
    reprs = [[f, json.dumps(f)] for f in floats]

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
        {"\ue000": 1, "\U0001f600": 2, "a": 3, "B": 4, "é": 5, "": 6},
        {"big": 2**64 - 1, "neg": -(2**63), "floats": [1e16, 1e-5, -0.0, 0.1, 1e22, 5e-324]},
        [],
        {},
        {"nested": [[{"b": 1, "a": 2}], []]},
    ]
    for name in NAMES:
        m = mechanisms.create(name, epsilon=rng.choice([0.1, 1.0, 2.5]), domain_size=rng.choice([4, 16, 1000]))
        objects.append(m.config)
    canon = [
        {
            "value": typed(o),
            "canonical": canonical_json(o)
            if isinstance(o, dict)
            else json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            **({"config_hash": config_hash(o)} if isinstance(o, dict) else {}),
        }
        for o in objects
    ]
    return {
        "format": FORMAT,
        "about": (
            "json.dumps of floats (Python repr); canonical JSON and config hashes of typed values "
            "({'int': decimal}, {'float': x}, {'list': [...]}, {'dict': [[key, value], ...]})"
        ),
        "float_repr": reprs,
        "objects": canon,
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
    except Exception as exc:  # noqa: BLE001 - recorded: the Python decoder crashed
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


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "params.json": build_params,
    "config.json": build_config,
    "olh_hash.json": build_hash,
    "random.json": build_random,
    "canonical.json": build_canonical,
    "wire.json": build_wire,
    "perturb.json": build_perturb,
}


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


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
