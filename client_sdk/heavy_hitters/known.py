"""Known-candidate mode ("known"): the frequency of every item of an analyst-supplied
dictionary (up to 10^6 entries: an app's emoji, product ids, known words), as Apple's
deployment estimates known words; discovery (PEM, TreeHist, TAP) remains for the unknown tail.

Privacy: ε-LDP per user, one report per user. Each user joins one of two groups uniformly at
random, independently of its item (the group is public):

* **screen** (``l`` = 1): OLH with a *linear* hash over Z_p^d. The item's 32-bit key picks,
  by a public hash, a non-zero bucket vector b(key) in Z_p^d; the user draws s uniformly in
  Z_p^d and reports ``(s, y)`` with ``y = GRR_p(⟨s, b⟩ mod p)`` — keep with probability
  ``p* = e^ε/(e^ε + p − 1)``, else one of the p − 1 other values uniformly. s does not
  depend on the item and GRR_p is ε-LDP, so the report is (Wang et al., USENIX Security 2017,
  OLH with g = p).
* **test** (``l`` = 2): OLH (``fo``) of the item's full key, as PEM's final group.

Server (pure post-processing of stored reports, :meth:`KnownCandidates.discover`): the
screen estimates the mass of every bucket the dictionary occupies at once — with the
histograms of (s, y), ``C(b) = (1/p)·(N + Σ_{t=1}^{p−1} Σ_s g_t[s]·ω^{⟨s, t·b⟩})`` with
``g_t[s] = Σ_{i: s_i = s} ω^{−t·y_i}``: p − 1 FFTs over Z_p^d and p − 1 gathers per bucket,
O(n + p·p^d·log p^d + p·K) whatever the K candidates. A report from an item in bucket w ≠ b
supports b with probability exactly 1/p (⟨s, b⟩ and ⟨s, w⟩ are independent and uniform when
b, w are independent; when w = c·b, c ≠ 1, ``P = p*/p + (1 − p*)/p``), so OLH's unbiased
estimator and exact variance hold with q* = 1/p. A bucket's mass includes every item that
shares it (about K/p^d candidates per bucket), so the screen only *selects*: the candidates
of buckets significantly above zero (exact binomial p-value, Holm over the occupied buckets)
are then tested and estimated by the test group's exact OLH, whose users took no part in the
screening. The test group's reports are halved by the parity of their (public, uniformly
random) OLH seed: one half decides — exact binomial p-values, Holm over the candidates tested,
the top k — and the other estimates the published frequencies and intervals, unbiased and
honest since it took no part in choosing them (as PEM's final group; docs/heavy_hitters.md,
"Known-candidate mode").

>>> import numpy as np
>>> from client_sdk import heavy_hitters
>>> known = heavy_hitters.create("known", epsilon=2.0, k=4, domain={"type": "string", "max_bytes": 4})
>>> known.config["screen"]
{'hash': 'lin-zp-v1', 'p': 7, 'd': 7}
>>> words = ["hi"] * 6000 + ["ok"] * 3000 + ["no"] * 1000
>>> reports = known.perturb_batch(words, rng=np.random.default_rng(1))
>>> known.discover(reports, dictionary=["hi", "ok", "yes", "maybe"]).items
['hi', 'ok']
>>> sorted(known.perturb("hi"))
['l', 'm', 's', 'v', 'y']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.canonical import canonical_json, config_hash
from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters.encoding import KEY_FAMILY, Domain, as_domain, codes_to_words, keys_of_codes, parse_item
from client_sdk.mechanisms._base import PrivacyStatement, pure_variance
from client_sdk.mechanisms.grr import grr_probabilities
from client_sdk.mechanisms.olh import MASK64, splitmix64, splitmix64_array

#: the screen's hash family: bucket vectors and inner products over Z_p^d (this module)
LINEAR_HASH = "lin-zp-v1"
#: XORed into the key before SplitMix64 picks the bucket (ASCII "LINHASH1")
BUCKET_SALT = 0x4C494E4841534831
#: the primes the screen may use, and the largest screen (p^d buckets: FFT size)
PRIMES = (2, 3, 5, 7, 11, 13)
MAX_BUCKETS = 1 << 22
#: the default screen holds p^d ≤ 2^21 buckets
DEFAULT_BUCKETS = 1 << 21
#: the largest analyst-supplied dictionary
MAX_CANDIDATES = 1_000_000
#: the most screened candidates the test group estimates (largest screen estimates first)
MAX_TESTED = 4096
#: under central noise the screen chooses SCREEN_TOP·k buckets (noisy top-m)
SCREEN_TOP = 4
SCREEN, TEST = 1, 2


def default_screen(epsilon: float) -> tuple[int, int]:
    """(p, d): the largest listed prime ≤ e^ε + 1 (OLH's optimal g, Wang et al. 2017) up to
    11, and the largest d with p^d ≤ 2^21."""
    target = math.exp(min(epsilon, 10.0)) + 1
    p = max([q for q in PRIMES[:-1] if q <= target] or [2])
    d = int(math.floor(math.log(DEFAULT_BUCKETS) / math.log(p) + 1e-9))
    return p, d


def bucket_of(key: int, p: int, d: int) -> int:
    """The bucket vector of a 32-bit key as a flat index in [1, p^d) (digit 0 most significant)."""
    return 1 + splitmix64((int(key) ^ BUCKET_SALT) & MASK64) % (p**d - 1)


def buckets_of(keys: np.ndarray, p: int, d: int) -> np.ndarray:
    """:func:`bucket_of` over an array of keys (int64)."""
    h = splitmix64_array(np.asarray(keys, dtype=np.uint64) ^ np.uint64(BUCKET_SALT))
    return (h % np.uint64(p**d - 1)).astype(np.int64) + 1


def digits_of(flat: np.ndarray, p: int, d: int) -> np.ndarray:
    """Base-p digits (n × d, most significant first) of flat indices in [0, p^d)."""
    weights = p ** np.arange(d - 1, -1, -1, dtype=np.int64)
    return (np.asarray(flat, dtype=np.int64)[:, None] // weights[None, :]) % p


def linear_hash(seed: int, key: int, p: int, d: int) -> int:
    """⟨s, b(key)⟩ mod p for the screen seed s (a flat index in [0, p^d)): the client side."""
    b, s, total = bucket_of(key, p, d), int(seed), 0
    for _ in range(d):
        total += (s % p) * (b % p)
        s //= p
        b //= p
    return total % p


def linear_hashes(seeds: np.ndarray, keys: np.ndarray, p: int, d: int) -> np.ndarray:
    """:func:`linear_hash` over paired arrays (vectorised)."""
    s = digits_of(np.asarray(seeds, dtype=np.uint64).astype(np.int64), p, d)
    b = digits_of(buckets_of(keys, p, d), p, d)
    return np.einsum("ij,ij->i", s, b) % p


def check_screen(screen: Any, epsilon: float) -> tuple[int, int]:
    if screen is None:
        return default_screen(epsilon)
    if not isinstance(screen, Mapping):
        raise ConfigError("screen must be an object {'hash', 'p', 'd'}")
    unknown = sorted(str(key) for key in screen if key not in ("hash", "p", "d"))
    if unknown:
        raise ConfigError(f"unknown screen fields {unknown}; allowed: ['d', 'hash', 'p']")
    if screen.get("hash", LINEAR_HASH) != LINEAR_HASH:
        raise ConfigError(f"screen.hash must be {LINEAR_HASH!r}, got {screen.get('hash')!r}")
    default_p, _ = default_screen(epsilon)
    p = C.check_int(screen.get("p", default_p), "screen.p", 2, 13)
    if p not in PRIMES:
        raise ConfigError(f"screen.p must be one of {list(PRIMES)}, got {p}")
    d_max = int(math.floor(math.log(MAX_BUCKETS) / math.log(p) + 1e-9))
    d = C.check_int(
        screen.get("d", int(math.floor(math.log(DEFAULT_BUCKETS) / math.log(p) + 1e-9))), "screen.d", 2, d_max
    )
    return p, d


@dataclass(frozen=True)
class KnownDictionary:
    """An analyst's dictionary, validated and encoded once: the items as supplied, their
    32-bit keys, and the SHA-256 of the items' canonical JSON list (what a release names)."""

    items: Sequence[Any]
    keys: np.ndarray
    sha256: str


class KnownCandidates(C.GroupCounts):
    """Known-candidate heavy hitters: a linear-hash screen group and an OLH test group (see
    the module docstring). ``k`` caps how many significant items a result publishes."""

    value_shape = "item"
    name = "known"
    mechanism = "known"  # the wire ``m``
    federated = False
    #: discovery estimates an analyst-supplied dictionary (servers store one per collection)
    takes_dictionary = True

    def __init__(
        self,
        epsilon: float,
        k: int,
        domain: Domain | Mapping[str, Any],
        g: int | None = None,
        screen: Mapping[str, Any] | None = None,
        alpha: float = 0.05,
    ) -> None:
        self.olh = C.make_olh(epsilon, g)
        self.epsilon = self.olh.epsilon
        self.k = C.check_int(k, "k", 1, 4096)
        self.domain = as_domain(domain)
        self.alpha = C.check_alpha(alpha)
        self.p, self.d = check_screen(screen, self.epsilon)
        self.buckets = self.p**self.d
        self.screen_p_star, self.screen_q = grr_probabilities(self.epsilon, self.p)

    @property
    def groups(self) -> int:
        return 2  # screen, test

    @property
    def g(self) -> int:
        return self.olh.g

    @property
    def y_bound(self) -> int:
        """Values y lie below this in either group (the strict decoder's bound; then per group)."""
        return max(self.p, self.g)

    def parse_value(self, text: str) -> Any:
        """A true item typed as text (a command line)."""
        return parse_item(self.domain, text)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "protocol": self.name,
            "version": C.WIRE_VERSION,
            "epsilon": self.epsilon,
            "k": self.k,
            "domain": self.domain.config,
            "fo": C.olh_config(self.olh),
            "key": KEY_FAMILY,
            "screen": {"hash": LINEAR_HASH, "p": self.p, "d": self.d},
            "alpha": self.alpha,
        }

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def privacy(self) -> PrivacyStatement:
        return PrivacyStatement(
            self.epsilon, "record", self.name,
            {"g": self.g, "p": self.olh.p_star, "q_star": self.olh.q_star, "screen_p": self.p,
             "screen_p_star": self.screen_p_star},
        )  # fmt: skip

    # --- client ---------------------------------------------------------------------------
    def _key(self, item: Any) -> int:
        return C.item_prefix_key(self.domain, item, self.domain.bits)

    def perturb(self, item: Any, party: Any = None) -> dict[str, Any]:
        """One report of ``item`` (OS CSPRNG): the group, then the group's report."""
        if party is not None:
            raise ValueError("known is not federated; do not pass a party")
        key = self._key(item)
        level = 1 + _random.uniform_int(2)
        if level == SCREEN:
            seed = _random.uniform_int(self.buckets)
            x = linear_hash(seed, key, self.p, self.d)
            if _random.bernoulli(self.screen_p_star):
                y = x
            else:
                u = _random.uniform_int(self.p - 1)
                y = u + (u >= x)
            return {"v": C.WIRE_VERSION, "m": self.mechanism, "l": SCREEN, "s": f"{seed:016x}", "y": y}
        inner = self.olh.perturb_key(key)
        return {"v": C.WIRE_VERSION, "m": self.mechanism, "l": TEST, "s": inner["s"], "y": inner["y"]}

    def perturb_batch(self, items: Any, rng: np.random.Generator, parties: Any = None) -> C.PrefixReports:
        """Vectorised reports (simulation): same distribution as :meth:`perturb`."""
        if parties is not None:
            raise ValueError("known is not federated; do not pass parties")
        enc = items if isinstance(items, C.EncodedItems) else self.domain.encode_many(items)
        keys = enc.keys(self.domain.bits)[enc.inverse]
        n = keys.size
        levels = rng.integers(1, 3, size=n, dtype=np.int64)
        test = self.olh.perturb_keys(keys, rng)
        seeds, ys = test.seeds.copy(), np.asarray(test.ys, dtype=np.int64).copy()
        scr = levels == SCREEN
        m = int(np.count_nonzero(scr))
        s = rng.integers(0, self.buckets, size=m, dtype=np.int64)
        x = linear_hashes(s.astype(np.uint64), keys[scr], self.p, self.d)
        keep = rng.random(m) < self.screen_p_star
        other = rng.integers(0, self.p - 1, size=m)
        other += other >= x
        seeds[scr] = s.astype(np.uint64)
        ys[scr] = np.where(keep, x, other)
        return C.PrefixReports(levels, seeds, ys)

    # --- wire form ------------------------------------------------------------------------
    def encode(self, reports: C.PrefixReports) -> list[dict[str, Any]]:
        return C.encode_payloads(reports, self.mechanism)

    def _check_groups(self, reports: C.PrefixReports) -> C.PrefixReports:
        """Per-group bounds: screen seeds below p^d and values below p, test values below g."""
        scr = reports.levels == SCREEN
        bad = (scr & ((reports.seeds >= np.uint64(self.buckets)) | (reports.ys >= self.p))) | (
            ~scr & (reports.ys >= self.g)
        )
        if bad.any():
            i = int(np.argmax(bad))
            if scr[i]:
                detail = f"a screen report (l = 1) needs s < {self.buckets} (p^d) and y < {self.p}"
            else:
                detail = f"a test report (l = 2) needs y < {self.g}"
            raise ReportDecodeError("out_of_range", detail, i)
        return reports

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> C.PrefixReports:
        return self._check_groups(C.decode_payloads(payloads, self.mechanism, self.groups, self.y_bound))

    def decode_stored(self, texts: Sequence[str]) -> C.PrefixReports:
        """Decode payloads as the server stores them (compact sorted-key JSON), fast."""
        return self._check_groups(C.decode_stored(texts, self.mechanism, self.groups, self.y_bound))

    def decode_stored_rows(self, block: str | bytes) -> tuple[np.ndarray, C.PrefixReports] | None:
        """(epochs, reports) of ``<epoch>\\t<payload>`` lines, or None (see _common)."""
        out = C.decode_stored_rows(block, self.mechanism, self.groups, self.y_bound)
        if out is None:
            return None
        return out[0], self._check_groups(out[1])

    def check_reports(self, reports: Any) -> C.PrefixReports:
        if isinstance(reports, Sequence) and not isinstance(reports, C.PrefixReports):
            reports = self.decode(reports)
        reports = C.check_reports(reports, self.groups, self.y_bound)
        try:
            return self._check_groups(reports)
        except ReportDecodeError as exc:
            raise ValueError(str(exc)) from None

    # --- server ---------------------------------------------------------------------------
    def dictionary(self, items: Sequence[Any]) -> KnownDictionary:
        """Validate and encode an analyst-supplied dictionary once (a server does it at upload):
        1 to :data:`MAX_CANDIDATES` items of the domain, distinct after canonicalisation
        (ConfigError / ItemEncodingError otherwise)."""
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
            raise ConfigError("the dictionary must be a list of items")
        if not 1 <= len(items) <= MAX_CANDIDATES:
            raise ConfigError(f"the dictionary must hold 1 to {MAX_CANDIDATES} items, got {len(items)}")
        codes = [self.domain.encode(item) for item in items]
        if len(set(codes)) != len(codes):
            raise ConfigError("the dictionary's items must be distinct items of the domain (after canonicalisation)")
        bits = self.domain.bits
        keys = keys_of_codes(codes_to_words(codes, bits), bits, bits)
        return KnownDictionary(
            list(items), keys, "sha256:" + hashlib.sha256(canonical_json(list(items)).encode()).hexdigest()
        )

    def discover(
        self,
        reports: C.PrefixReports | Sequence[Mapping[str, Any]],
        dictionary: KnownDictionary | Sequence[Any] | None = None,
        *,
        ci_level: float = 0.95,
        chunk: int = 4096,
    ) -> C.DiscoveryResult:
        """The dictionary's significant items, ranked, at most k (pure post-processing)."""
        if dictionary is None:
            raise ConfigError("known-candidate discovery needs the dictionary of candidate items")
        if not isinstance(dictionary, KnownDictionary):
            dictionary = self.dictionary(dictionary)
        keys = dictionary.keys
        reports = self.check_reports(reports)
        n = len(reports)
        scr, tst = reports.levels == SCREEN, reports.levels == TEST
        screen = ScreenEstimator(self, reports.seeds[scr], reports.ys[scr])
        occupied, bucket_index = np.unique(buckets_of(keys, self.p, self.d), return_inverse=True)
        chosen_buckets, rule = screen.select(screen.support(occupied), self.alpha, SCREEN_TOP * self.k)
        chosen_set = np.zeros(occupied.size, dtype=bool)
        chosen_set[chosen_buckets] = True
        rank = np.empty(occupied.size, dtype=np.int64)
        rank[chosen_buckets] = np.arange(chosen_buckets.size)
        passed = np.nonzero(chosen_set[bucket_index])[0]
        chosen = np.sort(passed[np.argsort(rank[bucket_index[passed]], kind="stable")][:MAX_TESTED])
        stats: dict[str, Any] = {
            "dictionary": len(dictionary.items),
            "dictionary_sha256": dictionary.sha256,
            "screen": {
                "rule": rule,
                "buckets": int(occupied.size),
                "chosen_buckets": int(chosen_buckets.size),
                "candidates_passed": int(passed.size),
                "candidates_dropped_over_cap": int(max(0, passed.size - MAX_TESTED)),
            },
        }
        if not tst.any() and not C.noisy_statistics():
            raise C.InsufficientReportsError("the test group has no report")
        # the test group's halves by the parity of the OLH seed (public, independent of the
        # item): one decides (significance, ranking), the other estimates what is published, so
        # the published intervals are not those of the winners of a contest they decided
        odd = (reports.seeds & np.uint64(1)).astype(bool)
        decide = C.LevelEstimator(self.olh, reports.seeds[tst & ~odd], reports.ys[tst & ~odd], n, chunk)
        codes = [self.domain.encode(dictionary.items[j]) for j in chosen]
        f = np.asarray(decide.estimate(keys[chosen]), dtype=np.float64) if chosen.size else np.zeros(0)
        selection = C.select_significant(
            self.domain, codes, f, self.k, self.alpha,
            counts=C.support_of(f, self.olh, decide.n), trials=decide.n, q=self.olh.q_star,
            noise_var=decide.support_noise_variance,
        )  # fmt: skip
        pick = selection.published
        publish = C.LevelEstimator(self.olh, reports.seeds[tst & odd], reports.ys[tst & odd], n, chunk)
        f_pub = np.asarray(publish.estimate(keys[chosen[pick]]), dtype=np.float64) if pick.size else np.zeros(0)
        hitters = C.make_hitters(
            self.domain, [codes[j] for j in pick], f_pub, publish.variance(f_pub), n, ci_level,
            None, selection.p_adjusted[pick],
        )  # fmt: skip
        diagnostics = {
            "screen_gathers": int(occupied.size) * (self.p - 1),
            "hash_evaluations": decide.hash_evaluations + publish.hash_evaluations,
        }
        return C.DiscoveryResult(
            self.name, self.epsilon, self.k, n, hitters, [], ci_level,
            diagnostics=diagnostics, significance={**selection.stats, **stats},
        )  # fmt: skip

    @property
    def screen_q_star(self) -> float:
        return 1.0 / self.p

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epsilon={self.epsilon}, k={self.k}, domain={self.domain.config})"


class ScreenEstimator:
    """Every occupied bucket's support from the screen group's reports at once (FFTs over
    Z_p^d; see the module docstring), and the choice of the buckets whose candidates the test
    group estimates: without central noise, the buckets significantly above zero (exact
    binomial p-values, Holm over the occupied buckets); under a server's central noise
    (``CENTRAL_NOISE``), a noisy top-m — m buckets by report-noisy-max with Gumbel noise
    (McKenna & Sheldon, NeurIPS 2020; the server's noise source draws it), whose cost depends on m and
    not on the number of buckets, since one report adds at most 1 to each bucket count
    (L∞ sensitivity 1 per report, monotone). No count of the group is drawn."""

    def __init__(self, protocol: KnownCandidates, seeds: np.ndarray, ys: np.ndarray) -> None:
        self.p, self.d = protocol.p, protocol.d
        self.p_star, self.q_star = protocol.screen_p_star, 1.0 / protocol.p
        self.s = np.asarray(seeds, dtype=np.uint64).astype(np.int64)
        self.ys = np.asarray(ys, dtype=np.int64)
        self.n = int(self.s.size)
        self.noise = C.CENTRAL_NOISE.get()

    def _scaled(self, digits: np.ndarray, t: int) -> np.ndarray:
        """Flat indices of t·v (mod p, digit-wise) for vectors v given as int16 digits."""
        weights = self.p ** np.arange(self.d - 1, -1, -1, dtype=np.int64)
        return ((digits * np.int16(t)) % np.int16(self.p)).astype(np.int64) @ weights

    def _spectrum(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The DFT over Z_p^d of ``Σ_i values_i·δ(index_i)``, flat."""
        size = self.p**self.d
        grid = np.bincount(index, weights=values.real, minlength=size) + 1j * np.bincount(
            index, weights=values.imag, minlength=size
        )
        return np.fft.fftn(grid.reshape((self.p,) * self.d)).ravel()

    def support(self, targets: np.ndarray) -> np.ndarray:
        """#{i : ⟨s_i, b⟩ = y_i} for every target bucket b (flat indices), exactly."""
        if self.n == 0:
            return np.zeros(targets.size, dtype=np.int64)
        omega = np.exp(-2j * np.pi * np.arange(self.p) / self.p)  # ω^{−m}
        acc = np.zeros(targets.size, dtype=np.complex128)
        digits = digits_of(targets, self.p, self.d).astype(np.int16)  # small: 2 bytes per digit
        for t in range(1, self.p):
            # fftn gives Σ_s g_t[s]·ω^{−⟨s, w⟩}: read it at w = −t·b
            spectrum = self._spectrum(omega[(t * self.ys) % self.p], self.s)
            acc += spectrum[self._scaled(digits, self.p - t)]
            del spectrum
        return np.rint((self.n + acc.real) / self.p).astype(np.int64)

    def select(self, counts: np.ndarray, alpha: float, top: int) -> tuple[np.ndarray, str]:
        """Indices of the chosen buckets (largest screen estimate first) and how they were chosen."""
        if self.noise is not None:
            m = min(top, counts.size)
            return np.asarray(self.noise.select_top(counts, m, self), dtype=np.int64), "noisy-top-m"
        passed = np.nonzero(C.holm_adjusted(self.p_values(counts, alpha)) <= alpha)[0]
        return passed[np.argsort(-counts[passed], kind="stable")], "holm"

    def p_values(self, counts: np.ndarray, alpha: float) -> np.ndarray:
        """One-sided p-values of H0 (the bucket holds no item) per bucket (no central noise).
        Buckets whose count reaches ``z − 1`` standard deviations above H0's mean, z the normal
        quantile of Holm's smallest threshold α/m, get their exact binomial tail; the others
        get 1 — never smaller than their true p-value, so Holm's correction over all m
        occupied buckets still holds the family-wise error; it only skips the exact tail of
        buckets far below any threshold (10^6 incomplete beta evaluations otherwise)."""
        m = max(1, counts.size)
        mean = self.n * self.q_star
        sd = math.sqrt(max(1e-12, self.n * self.q_star * (1 - self.q_star)))
        cut = max(0.0, NormalDist().inv_cdf(1 - alpha / m) - 1.0)
        out = np.ones(counts.size)
        high = counts > mean + cut * sd
        out[high] = C.upper_tail_p_values(counts[high], float(self.n), self.q_star)
        return out

    def estimate(self, counts: np.ndarray) -> np.ndarray:
        """Unbiased bucket masses (fractions of the group): (C/N − q*)/(p* − q*)."""
        return (counts / max(1, self.n) - self.q_star) / (self.p_star - self.q_star)

    def variance(self, f_hat: np.ndarray) -> np.ndarray:
        """OLH's exact variance given the group (q* = 1/p), at the clipped estimate."""
        return pure_variance(self.p_star, self.q_star, max(1, self.n), np.clip(f_hat, 0.0, 1.0))
