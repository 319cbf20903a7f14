"""Frequency-oracle throughput and accuracy (issue: foundation).

Measures, on one core, perturb_batch and aggregate throughput of every oracle for n in
{1e5, 1e6} and k in {16, 128, 1024}, and at n = 1e6, k = 128, epsilon = 1 the MSE against
the closed-form variance, with the post-processed MSE (norm-sub, simplex, base-cut, EM)
beside it.

    python bench/bench_oracles.py            # full grid
    python bench/bench_oracles.py --quick    # n = 1e5 only, 1 repetition
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine, table, write_results

from client_sdk import mechanisms

ORACLES = ("grr", "sue", "oue", "olh", "blh", "hr")


def zipf_values(n: int, k: int, rng: np.random.Generator, s: float = 1.1) -> np.ndarray:
    weights = 1 / np.arange(1, k + 1) ** s
    return rng.choice(k, n, p=weights / weights.sum())


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def throughput(ns: list[int], ks: list[int], repeat: int) -> list[dict]:
    rows = []
    for n in ns:
        for k in ks:
            rng = np.random.default_rng(1)
            values = zipf_values(n, k, rng)
            for name in ORACLES:
                m = mechanisms.create(name, epsilon=1.0, domain_size=k)
                perturb_s = best_of(lambda: m.perturb_batch(values, rng), 1)
                reports = m.perturb_batch(values, rng)
                aggregate_s = best_of(lambda: m.aggregate(reports), repeat)
                agg = m.aggregate(reports)
                estimate_s = best_of(lambda: m.estimate(agg), repeat)
                row = {
                    "oracle": name,
                    "n": n,
                    "k": k,
                    "perturb_per_s": n / perturb_s,
                    "aggregate_per_s": n / aggregate_s,
                    "estimate_ms": estimate_s * 1e3,
                }
                rows.append(row)
                print(f"  n={n:>9,} k={k:>5} {name:<4} perturb {row['perturb_per_s'] / 1e6:7.2f} M/s   "
                      f"aggregate {row['aggregate_per_s'] / 1e6:8.2f} M/s", flush=True)  # fmt: skip
    return rows


def accuracy(n: int, k: int, epsilon: float, reps: int) -> list[dict]:
    rng = np.random.default_rng(7)
    values = zipf_values(n, k, rng)
    f = np.bincount(values, minlength=k) / n
    rows = []
    for name in ORACLES:
        m = mechanisms.create(name, epsilon=epsilon, domain_size=k)
        errors: dict[str, list[float]] = {"raw": [], "norm-sub": [], "simplex": [], "base-cut": [], "mle": []}
        for _ in range(reps):
            agg = m.aggregate(m.perturb_batch(values, rng))
            est = m.estimate(agg)
            errors["raw"].append(float(np.mean((est.frequencies - f) ** 2)))
            for method in ("norm-sub", "simplex", "base-cut"):
                errors[method].append(float(np.mean((est.postprocessed(method).frequencies - f) ** 2)))
            errors["mle"].append(float(np.mean((m.estimate_mle(agg).frequencies - f) ** 2)))
        closed_form = float(np.mean(m.exact_variance(n, f)))
        mse = {key: float(np.mean(v)) for key, v in errors.items()}
        best = min((key for key in mse if key != "raw"), key=mse.get)
        rows.append({"oracle": name, "closed_form": closed_form, "mse": mse, "best_postprocessed": best})
        print(f"  {name:<4} MSE {mse['raw']:.3e} closed form {closed_form:.3e} "
              f"(ratio {mse['raw'] / closed_form:.3f}); best post-processed {best} {mse[best]:.3e}", flush=True)  # fmt: skip
    return rows


def summary(data: dict) -> list[str]:
    at = [r for r in data["throughput"] if r["n"] == 1_000_000 and r["k"] == 128]
    acc = data["accuracy"]["rows"]
    lines = ["Summary:", ""]
    if at:
        slowest = min(at, key=lambda r: r["aggregate_per_s"])
        lines.append(
            f"* n = 1e6, k = 128, ε = 1: every oracle aggregates at ≥ {slowest['aggregate_per_s'] / 1e6:.1f} M reports/s "
            f"on one core (slowest: {slowest['oracle']}). The reference libraries need about 80 s per million "
            "OLH reports at k = 100 (pure-ldp, measured on this project's first machine), i.e. ~0.0125 M/s."
        )
    ratios = [r["mse"]["raw"] / r["closed_form"] for r in acc]
    lines.append(f"* MSE / closed-form variance: {min(ratios):.3f} – {max(ratios):.3f} over all oracles.")
    gains = [r["mse"][r["best_postprocessed"]] / r["mse"]["raw"] for r in acc]
    lines.append(f"* Best post-processing keeps {min(gains):.2f} – {max(gains):.2f} of the raw MSE.")
    return lines


def markdown(data: dict) -> str:
    info = data["machine"]
    out = [
        "## Frequency oracles",
        "",
        f"`python bench/bench_oracles.py` — {info['date']}, {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}, commit {info['commit']}. One process, numpy on one core; "
        "throughput in millions of reports per second (best of runs).",
        "",
        *summary(data),
        "",
        "### Throughput",
        "",
    ]
    rows = [
        [r["oracle"], f"{r['n']:,}", r["k"], f"{r['perturb_per_s'] / 1e6:.2f}", f"{r['aggregate_per_s'] / 1e6:.2f}",
         f"{r['estimate_ms']:.2f}"]
        for r in data["throughput"]
    ]  # fmt: skip
    out.append(table(["oracle", "n", "k", "perturb_batch M/s", "aggregate M/s", "estimate ms"], rows))
    acc = data["accuracy"]
    out += [
        "",
        f"### Accuracy at n = {acc['n']:,}, k = {acc['k']}, epsilon = {acc['epsilon']} "
        f"(Zipf 1.1 data, {acc['reps']} repetitions)",
        "",
        "MSE = mean over the k values of (f̂ − f)², averaged over repetitions; the closed form is the exact "
        "fixed-data variance (docs/mechanisms.md) averaged over values. MLE is the maximum-likelihood estimate: EM (iterative Bayesian update) for GRR and HR, the exact constrained composite MLE for support-count oracles (docs/mechanisms.md).",
        "",
    ]
    rows = []
    for r in acc["rows"]:
        mse = r["mse"]
        rows.append(
            [r["oracle"], f"{mse['raw']:.3e}", f"{r['closed_form']:.3e}", f"{mse['raw'] / r['closed_form']:.3f}",
             f"{mse['norm-sub']:.3e}", f"{mse['base-cut']:.3e}", f"{mse['mle']:.3e}",
             f"{r['best_postprocessed']} ({mse[r['best_postprocessed']] / mse['raw']:.2f}× raw)"]
        )  # fmt: skip
    out.append(
        table(
            ["oracle", "MSE raw", "closed form", "ratio", "norm-sub", "base-cut", "MLE (EM)", "best post-processed"],
            rows,
        )
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    ns = [100_000] if args.quick else [100_000, 1_000_000]
    ks = [16, 128, 1024]
    print("throughput:")
    rows = throughput(ns, ks, repeat=1 if args.quick else 3)
    acc_n = 100_000 if args.quick else 1_000_000
    reps = 1 if args.quick else args.reps
    print(f"accuracy at n={acc_n:,}, k=128, epsilon=1:")
    acc = {"n": acc_n, "k": 128, "epsilon": 1.0, "reps": reps, "rows": accuracy(acc_n, 128, 1.0, reps)}
    data = {"machine": machine(), "throughput": rows, "accuracy": acc}
    write_results("oracles", data, markdown(data))


if __name__ == "__main__":
    main()
