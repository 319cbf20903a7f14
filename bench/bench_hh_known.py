"""Known-candidate mode at 10^6 candidates (issue 19, point 6): the ``known`` protocol against
the baseline measured in the same run.

1. **Baseline**: ``PEM.estimate_candidates`` estimates every dictionary item from PEM's final
   group with OLH — one hash evaluation per (report, candidate). Measured on K = 10^4
   candidates, then extrapolated linearly to K = 10^6.
2. **The known protocol** (client_sdk/heavy_hitters/known.py; no central noise — a server's
   release adds it, bench_hh_release.py ``--protocol known``): n users drawn i.i.d. from the
   wordfreq English frequencies, a dictionary of K candidates (the English words first, then
   random letter strings), repeated over seeds per ε: the CPU of encoding the dictionary
   (once per upload on a server) and of discovery (screen FFTs, selection, the test group's
   OLH on the chosen candidates), the true top-16 items among the published ones (recall and
   F1 at k = 16), published items no user holds (false discoveries), the coverage of the
   published 95 % intervals, and the z-scores of the screen's bucket-mass estimates of the 200
   most frequent words against their exact variance.

    nice python bench/bench_hh_known.py        # writes bench/results/hh_known.{json,md}
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, table, write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_sdk import heavy_hitters  # noqa: E402
from client_sdk.heavy_hitters import known as K  # noqa: E402
from client_sdk.heavy_hitters.encoding import EncodedItems  # noqa: E402

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


def population(n: int, rng: np.random.Generator, domain: object) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(vocabulary of canonical words, each user's word index, counts per word)."""
    import wordfreq

    words = wordfreq.top_n_list("en", 50_000)
    freqs = np.array([wordfreq.word_frequency(w, "en") for w in words])
    canon = [domain.canonical(w) for w in words]  # type: ignore[attr-defined]
    vocab = list(dict.fromkeys(canon))
    pos = {c: i for i, c in enumerate(vocab)}
    idx = np.array([pos[c] for c in canon])[rng.choice(len(words), size=n, p=freqs / freqs.sum())]
    return vocab, idx, np.bincount(idx, minlength=len(vocab))


def run_known(epsilon: float, n: int, size: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    known = heavy_hitters.create("known", epsilon=epsilon, k=16, domain=DOMAIN)
    vocab, idx, counts = population(n, rng, known.domain)
    cands = dictionary(rng, size, vocab)
    t0 = time.process_time()
    encoded = known.dictionary(cands)
    encode_s = time.process_time() - t0
    reports = known.perturb_batch(EncodedItems.from_vocabulary(known.domain, vocab, idx), rng)
    t0 = time.process_time()
    result = known.discover(reports, encoded)
    discover_s = time.process_time() - t0
    truth = counts / n
    freq = {w: truth[i] for i, w in enumerate(vocab)}
    top = {vocab[i] for i in np.argsort(-counts, kind="stable")[:16]}
    items = result.items
    hits = len(top & set(items))
    covered = [h.ci_lower <= freq.get(h.item, 0.0) <= h.ci_upper for h in result.heavy_hitters]
    # screen unbiasedness: the 200 most frequent words' bucket masses in the screen group
    scr = reports.levels == K.SCREEN
    screen = K.ScreenEstimator(known, reports.seeds[scr], reports.ys[scr])
    user_buckets = K.buckets_of(encoded.keys[: len(vocab)], known.p, known.d)[idx[scr]]
    at = np.argsort(-counts, kind="stable")[:200]
    cand_buckets = K.buckets_of(encoded.keys[at], known.p, known.d)
    mass = np.array([np.mean(user_buckets == b) for b in cand_buckets])
    f_hat = screen.estimate(screen.support(cand_buckets))
    z = (f_hat - mass) / np.sqrt(screen.variance(mass))
    return {
        "encode_cpu_s": encode_s,
        "discover_cpu_s": discover_s,
        "published": len(items),
        "true_top16_found": hits,
        "f1": 2 * hits / (16 + len(items)) if items else 0.0,
        "false_discoveries": int(sum(freq.get(item, 0.0) == 0.0 for item in items)),
        "covered": int(sum(covered)),
        "chosen_buckets": int(result.significance["screen"]["chosen_buckets"]),
        "tested": int(result.significance["tested"]),
        "z_mean": float(z.mean()),
        "z_sd": float(z.std()),
        "p": int(known.p),
        "d": int(known.d),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--candidates", type=int, default=1_000_000)
    ap.add_argument("--olh-candidates", type=int, default=10_000)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[2.0, 4.0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    # 1. baseline: PEM's final group, OLH over K = olh_candidates, extrapolated
    pem = heavy_hitters.create("pem", epsilon=2.0, k=16, domain=DOMAIN)
    vocab, idx, _ = population(args.n, rng, pem.domain)
    reports = pem.perturb_batch(EncodedItems.from_vocabulary(pem.domain, vocab, idx), rng)
    final = int(np.sum(reports.levels == pem.groups))
    t0 = time.process_time()
    pem.estimate_candidates(reports, dictionary(rng, args.olh_candidates, vocab))
    olh_s = time.process_time() - t0
    per_eval = olh_s / (final * args.olh_candidates)
    baseline = {"final_group": final, "candidates": args.olh_candidates, "cpu_s": olh_s,
                "ns_per_eval": per_eval * 1e9, "extrapolated_cpu_s": per_eval * final * args.candidates}  # fmt: skip

    # 2. the known protocol, repeated per ε
    runs: dict[str, list[dict[str, float]]] = {}
    for eps in args.epsilons:
        for r in range(args.repeats):
            row = run_known(eps, args.n, args.candidates, seed=100 + r)
            runs.setdefault(str(eps), []).append(row)
            print(eps, r, row, file=sys.stderr, flush=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = {"machine": {**machine(), "note": "machine shared with other work"}, "n": args.n,
            "candidates": args.candidates, "baseline": baseline, "known": runs, "peak_rss_mb": rss_mb,
            "load_1min": os.getloadavg()[0]}  # fmt: skip

    def mean(eps: str, key: str) -> float:
        return float(np.mean([row[key] for row in runs[eps]]))

    rows = [
        ["OLH over PEM's final group (baseline)", f"{args.olh_candidates:,}", f"{olh_s:.1f}", "–", "–", "–", "–"],
        ["OLH over PEM's final group, extrapolated", f"{args.candidates:,}", f"{baseline['extrapolated_cpu_s']:.0f}",
         "–", "–", "–", "–"],
    ]  # fmt: skip
    for eps, group in runs.items():
        covered = sum(row["covered"] for row in group)
        published = sum(row["published"] for row in group)
        rows.append([
            f"known, ε = {eps} (p = {group[0]['p']}, d = {group[0]['d']})", f"{args.candidates:,}",
            f"{mean(eps, 'discover_cpu_s'):.2f} (+ {mean(eps, 'encode_cpu_s'):.1f} encoding, once)",
            f"{mean(eps, 'f1'):.3f} (min {min(row['f1'] for row in group):.3f})",
            f"{sum(row['false_discoveries'] for row in group)}", f"{covered}/{published}",
            f"{mean(eps, 'z_mean'):+.3f} / {mean(eps, 'z_sd'):.3f}",
        ])  # fmt: skip
    md = [
        "# Known-candidate mode at 10^6 candidates (issue 19)",
        "",
        f"{data['machine']['cpu']}, {data['machine']['cores']} cores, load average {data['load_1min']:.1f}, "
        f"commit {data['machine']['commit']}; n = {args.n:,} users from the wordfreq English frequencies, "
        f"a dictionary of {args.candidates:,} candidates (the English words, then random letter strings), "
        f"k = 16, {args.repeats} repetitions per ε, no central noise (a release adds it: hh_release_known). "
        f"Peak RSS {rss_mb:.0f} MB.",
        "",
        table(
            [
                "estimator",
                "candidates",
                "CPU s",
                "F1 at k = 16",
                "false discoveries",
                "intervals covering",
                "screen z mean / sd (200 top words)",
            ],
            rows,
        ),  # fmt: skip
        "",
        f"Baseline: {final:,} final-group reports, {per_eval * 1e9:.2f} ns per (report, candidate) evaluation.",
    ]
    write_results("hh_known", data, "\n".join(md))


if __name__ == "__main__":
    main()
