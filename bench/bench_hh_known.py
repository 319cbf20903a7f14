"""Known-candidate mode at 10^6 candidates (issue 19, point 6): today's cost and a prototype.

1. **Today**: ``PEM.estimate_candidates`` estimates every dictionary item from the final
   group with OLH — one hash evaluation per (report, candidate). Measured on K = 10^4
   candidates (English words plus random letter strings) with the final group of
   n = 10^6 users (ε = 2), then extrapolated linearly to K = 10^6.
2. **Prototype (simulation only; it needs a new device report)**: a *dictionary group*
   reports OLH with a **linear hash over Z_p**: the item's 32-bit key picks, by a salted
   public hash, a bucket b — a point of the projective space over Z_p^d (a non-zero vector
   whose first non-zero digit is 1, so two distinct buckets are linearly independent);
   the user draws s uniform in Z_p^d and reports (s, y = GRR_p(⟨s, b⟩ mod p)). For two
   distinct buckets ⟨s, b⟩ and ⟨s, b'⟩ are independent and uniform on Z_p, so the
   estimator is OLH's with g = p (q* = 1/p exactly) and its exact variance given the data
   is ``q*(1 − q*)/(N(p* − q*)²) + f_B(1 − p* − q*)/(N(p* − q*))`` (f_B: the mass of the
   bucket). The server gets every bucket's support from p FFTs over Z_p^d of the
   histograms h_y[s] and (p − 1)·p gathers per candidate:
   ``C(b) = (1/p)·(N + Σ_{t=1}^{p−1} Σ_y ω^{−t·y} F_y(−t·b))``, F_y = DFT(h_y), ω = e^{2πi/p};
   O(n + p·D·log D + p²·K) whatever the candidates. Buckets are shared by ≈ K/D candidates,
   so this group only screens; the final group's exact OLH tests the survivors.

    nice python bench/bench_hh_known.py        # writes bench/results/hh_known.{json,md}
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, table, write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_sdk import heavy_hitters  # noqa: E402
from client_sdk.heavy_hitters.encoding import EncodedItems, prefix_keys  # noqa: E402
from client_sdk.mechanisms._base import pure_variance  # noqa: E402
from client_sdk.mechanisms.olh import splitmix64_array  # noqa: E402

DOMAIN = {"type": "string", "alphabet": "letters", "max_chars": 8, "outside": "drop"}


def dictionary(rng: np.random.Generator, size: int, words: list[str]) -> list[str]:
    """The real words plus random letter strings (distinct, canonical) up to ``size``."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = dict.fromkeys(words)
    while len(out) < size:
        lengths = rng.integers(3, 9, size - len(out))
        for n_chars in np.unique(lengths):
            rows = rng.integers(0, 26, (int(np.sum(lengths == n_chars)), int(n_chars)))
            out.update(dict.fromkeys("".join(r) for r in letters[rows]))
    return list(out)[:size]


# --- the prototype oracle ----------------------------------------------------------------------


class LinearHashOracle:
    """OLH with a linear hash over Z_p^d (see the module docstring); simulation only."""

    def __init__(self, epsilon: float, p: int, d: int, salt: int) -> None:
        self.p, self.d, self.salt = p, d, np.uint64(salt)
        self.D = p**d
        e = math.exp(epsilon)
        self.p_star, self.q_star = e / (e + p - 1), 1.0 / p
        self.inverse = np.array([0] + [pow(a, -1, p) for a in range(1, p)], dtype=np.int64)
        self.weights = p ** np.arange(d - 1, -1, -1, dtype=np.int64)  # digit 0 most significant

    def buckets(self, keys: np.ndarray) -> np.ndarray:
        """Projective points (K × d digits, first non-zero digit 1) of 32-bit keys."""
        h = splitmix64_array(np.asarray(keys, dtype=np.uint64) ^ self.salt)
        v = (h % np.uint64(self.D - 1)).astype(np.int64) + 1  # a non-zero vector, uniform
        digits = (v[:, None] // self.weights[None, :]) % self.p
        lead = digits[np.arange(digits.shape[0]), np.argmax(digits != 0, axis=1)]
        return (digits * self.inverse[lead][:, None]) % self.p

    def perturb(self, buckets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(s as a flat index in Z_p^d, y) per user: GRR_p of ⟨s, b⟩."""
        n = buckets.shape[0]
        s = rng.integers(0, self.p, (n, self.d))
        v = np.einsum("ij,ij->i", s, buckets) % self.p
        keep = rng.random(n) < self.p_star
        other = (v + rng.integers(1, self.p, n)) % self.p
        return s @ self.weights, np.where(keep, v, other)

    def support(self, s_index: np.ndarray, ys: np.ndarray, buckets: np.ndarray) -> np.ndarray:
        """C(b) for every candidate bucket: p FFTs over Z_p^d and (p − 1)·p gathers per candidate."""
        p, d = self.p, self.d
        acc = np.zeros(buckets.shape[0], dtype=np.complex128)
        neg = [((-t * buckets) % p) @ self.weights for t in range(1, p)]  # flat index of −t·b
        omega = np.exp(2j * np.pi / p)
        for y in range(p):
            h = np.bincount(s_index[ys == y], minlength=self.D).astype(np.float64)
            spectrum = np.fft.fftn(h.reshape((p,) * d)).ravel()
            for t in range(1, p):
                acc += omega ** (-t * y % p) * spectrum[neg[t - 1]]
        return np.rint((s_index.size + acc.real) / p).astype(np.int64)

    def estimate(self, counts: np.ndarray, n: int) -> np.ndarray:
        return (counts / n - self.q_star) / (self.p_star - self.q_star)


def check_exact(rng: np.random.Generator) -> bool:
    """The FFT supports equal the per-report count on a small case."""
    oracle = LinearHashOracle(2.0, 5, 3, 7)
    users = oracle.buckets(rng.integers(0, 2**32, 400, dtype=np.uint64))
    s_index, ys = oracle.perturb(users, rng)
    cands = oracle.buckets(rng.integers(0, 2**32, 50, dtype=np.uint64))
    s = (s_index[:, None] // oracle.weights[None, :]) % oracle.p
    direct = ((s @ cands.T) % oracle.p == ys[:, None]).sum(axis=0)
    return bool(np.array_equal(direct, oracle.support(s_index, ys, cands)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--candidates", type=int, default=1_000_000)
    ap.add_argument("--olh-candidates", type=int, default=10_000)
    ap.add_argument("--epsilon", type=float, default=2.0)
    args = ap.parse_args()
    import wordfreq

    rng = np.random.default_rng(0)
    words = wordfreq.top_n_list("en", 50_000)
    freqs = np.array([wordfreq.word_frequency(w, "en") for w in words])
    pem = heavy_hitters.create("pem", epsilon=args.epsilon, k=16, domain=DOMAIN)
    canon = [pem.domain.canonical(w) for w in words]
    vocab = list(dict.fromkeys(canon))
    pos = {c: i for i, c in enumerate(vocab)}
    idx = np.array([pos[c] for c in canon])[rng.choice(len(words), size=args.n, p=freqs / freqs.sum())]
    counts = np.bincount(idx, minlength=len(vocab))
    cands = dictionary(rng, args.candidates, vocab)
    rows: dict[str, object] = {"exact_fft_support": check_exact(rng)}

    # 1. today: OLH on the final group, K = olh_candidates, extrapolated
    reports = pem.perturb_batch(EncodedItems.from_vocabulary(pem.domain, vocab, idx), rng)
    final = int(np.sum(reports.levels == pem.groups))
    t0 = time.process_time()
    known = pem.estimate_candidates(reports, cands[: args.olh_candidates])
    olh_s = time.process_time() - t0
    per_eval = olh_s / (final * args.olh_candidates)
    rows.update({
        "olh_final_group": final, "olh_candidates": args.olh_candidates, "olh_cpu_s": olh_s,
        "olh_ns_per_eval": per_eval * 1e9, "olh_extrapolated_cpu_s": per_eval * final * args.candidates,
        "olh_published": len(known.heavy_hitters),
    })  # fmt: skip

    # 2. prototype: a dictionary group of the same size as the final group, all candidates
    oracle = LinearHashOracle(args.epsilon, 11, 6, salt=0x5EED)
    group = rng.choice(args.n, size=final, replace=False)
    item_keys = prefix_keys([pem.domain.encode(v) for v in vocab], pem.domain.bits)
    s_index, ys = oracle.perturb(oracle.buckets(item_keys[idx[group]]), rng)
    cand_keys = prefix_keys([pem.domain.encode(c) for c in cands], pem.domain.bits)
    t0 = time.process_time()
    cand_buckets = oracle.buckets(cand_keys)
    support = oracle.support(s_index, ys, cand_buckets)
    f_hat = oracle.estimate(support, final)
    proto_s = time.process_time() - t0
    # exact variance check on the 200 most frequent words (their bucket mass is known)
    bucket_of = cand_buckets @ oracle.weights
    user_buckets = oracle.buckets(item_keys[idx[group]]) @ oracle.weights
    mass = np.bincount(user_buckets, minlength=oracle.D) / final  # f_B in the group
    top = np.argsort(-counts)[:200]
    at = top  # dictionary() lists the vocabulary first, in order
    var = pure_variance(oracle.p_star, oracle.q_star, final, mass[bucket_of[at]])
    z = (f_hat[at] - mass[bucket_of[at]]) / np.sqrt(var)
    shared = np.bincount(bucket_of, minlength=oracle.D)
    rows.update({
        "proto_p": oracle.p, "proto_d": oracle.d, "proto_buckets": (oracle.D - 1) // (oracle.p - 1),
        "proto_candidates": len(cands), "proto_cpu_s": proto_s, "proto_z_mean": float(z.mean()),
        "proto_z_sd": float(z.std()), "proto_candidates_per_used_bucket": float(shared[shared > 0].mean()),
        "proto_var_per_user": oracle.q_star * (1 - oracle.q_star) / (oracle.p_star - oracle.q_star) ** 2,
        "olh_var_per_user": pem.olh.variance_approx_per_user, "load_1min": os.getloadavg()[0],
    })  # fmt: skip
    data = {"machine": {**machine(), "note": "machine shared with other work"}, "epsilon": args.epsilon, **rows}
    md = [
        "# Known-candidate mode at 10^6 candidates (issue 19)",
        "",
        f"Machine: {data['machine']}; load average {rows['load_1min']:.1f}; ε = {args.epsilon}, n = {args.n:,}.",
        "",
        table(
            ["oracle", "reports", "candidates", "CPU s", "note"],
            [
                [
                    "OLH (today, final group)",
                    f"{final:,}",
                    f"{args.olh_candidates:,}",
                    f"{olh_s:.1f}",
                    f"{per_eval * 1e9:.2f} ns per evaluation",
                ],
                [
                    "OLH (today), extrapolated",
                    f"{final:,}",
                    f"{args.candidates:,}",
                    f"{rows['olh_extrapolated_cpu_s']:.0f}",
                    "linear in candidates",
                ],
                [
                    f"linear hash over Z_{oracle.p}^{oracle.d} (prototype)",
                    f"{final:,}",
                    f"{len(cands):,}",
                    f"{proto_s:.1f}",
                    f"{rows['proto_buckets']:,} buckets, "
                    f"{rows['proto_candidates_per_used_bucket']:.1f} candidates per used bucket",
                ],
            ],
        ),  # fmt: skip
        "",
        f"FFT supports equal the per-report count (small case): {rows['exact_fft_support']}. "
        f"Prototype estimates of the 200 most frequent words against their bucket's mass: "
        f"z mean {rows['proto_z_mean']:.3f}, sd {rows['proto_z_sd']:.3f} (exact variance: sd 1). "
        f"Variance per user at f = 0: {rows['proto_var_per_user']:.3f} (p = {oracle.p}) against OLH's "
        f"{rows['olh_var_per_user']:.3f} (g = {pem.g}).",
    ]
    write_results("hh_known", data, "\n".join(md))


if __name__ == "__main__":
    main()
