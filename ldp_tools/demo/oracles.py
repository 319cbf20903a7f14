"""The demo's frequency-oracle part: perturb UCI Adult with every oracle and estimate.

Every row of Adult is one simulated device (in process, ``perturb_batch``: no server).
Each oracle perturbs the device's value, the aggregate is estimated, and true vs
estimated frequencies are printed with 95% confidence intervals, with the measured error
beside the closed-form variance.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from client_sdk import mechanisms
from ldpserver.evaluation.datasets import load_adult

ORACLES = ("grr", "sue", "oue", "olh", "hr", "auto")


def run_oracle_demo(
    attribute: str = "education", epsilon: float = 1.0, seed: int | None = None, top: int = 8, verbose: bool = True
) -> dict[str, Any]:
    """Run every oracle on one Adult attribute; print (if ``verbose``) and return the results."""
    say = print if verbose else (lambda *a, **k: None)
    table = load_adult()
    values = table.column(attribute)
    categories = table.categories[table.names.index(attribute)]
    k = len(categories)
    n = values.size
    truth = np.bincount(values, minlength=k) / n
    seed = secrets.randbits(64) if seed is None else seed
    say(f"UCI Adult, attribute {attribute!r}: n = {n:,} devices, k = {k} values, epsilon = {epsilon}, seed = {seed}")
    order = np.argsort(-truth)[:top]
    summary = []
    for i, name in enumerate(ORACLES, 1):
        m = mechanisms.create(name, epsilon=epsilon, domain_size=k)
        started = time.perf_counter()
        reports = m.perturb_batch(values, rng=np.random.default_rng([seed, i]))
        estimate = m.estimate(m.aggregate(reports))
        elapsed = time.perf_counter() - started
        lower, upper = estimate.confidence_interval(0.95)
        label = f"{name} -> {m.name}" if name == "auto" else name
        say(f"\n[{i}/{len(ORACLES)}] {label}: {m.privacy.parameters}  ({elapsed:.2f} s)")
        say(f"  {'value':<16} {'true':>8} {'estimate':>9}   95% interval")
        for v in order:
            say(f"  {categories[v][:16]:<16} {truth[v]:8.4f} {estimate.frequencies[v]:9.4f}   "
                f"[{lower[v]:.4f}, {upper[v]:.4f}]")  # fmt: skip
        mse = float(np.mean((estimate.frequencies - truth) ** 2))
        mse_pp = float(np.mean((estimate.postprocessed("norm-sub").frequencies - truth) ** 2))
        expected = float(np.mean(m.exact_variance(n, truth)))
        covered = float(np.mean((lower <= truth) & (truth <= upper)))
        summary.append(
            {"oracle": label, "mse": mse, "closed_form": expected, "mse_norm_sub": mse_pp, "coverage": covered}
        )
    say(f"\n{'oracle':<12} {'MSE':>10} {'closed form':>12} {'norm-sub MSE':>13} {'CI coverage':>12}")
    for row in summary:
        say(f"{row['oracle']:<12} {row['mse']:10.2e} {row['closed_form']:12.2e} {row['mse_norm_sub']:13.2e} "
            f"{row['coverage']:12.0%}")  # fmt: skip
    return {"attribute": attribute, "epsilon": epsilon, "n": int(n), "k": k, "seed": seed, "oracles": summary}
