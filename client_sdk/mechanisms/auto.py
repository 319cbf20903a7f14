"""Automatic choice of the lowest-variance frequency oracle for (epsilon, k).

The choice depends only on public parameters, so client and server make it independently
and identically; the chosen mechanism's name travels in every report and mismatches are
rejected (docs/algorithms.md). Candidates: GRR, OUE, OLH and Hadamard response, compared by
Var* (the variance at f = 0). Ties go to the earlier candidate in that order, which
reproduces the GRR-vs-OUE rule ``k ≤ 3e^ε + 2`` of Wang et al., USENIX Security 2017. An optional ``max_report_bits``
drops candidates whose reports are larger (OUE needs k bits).

>>> choose(epsilon=1.0, domain_size=10).name
'grr'
>>> choose(epsilon=1.0, domain_size=11).name
'oue'
>>> choose(epsilon=1.0, domain_size=1000, max_report_bits=100).name
'olh'
"""

from __future__ import annotations

from client_sdk.errors import ConfigError
from client_sdk.mechanisms._base import FrequencyOracle
from client_sdk.mechanisms.grr import GRR
from client_sdk.mechanisms.hadamard import Hadamard
from client_sdk.mechanisms.olh import OLH
from client_sdk.mechanisms.unary import OUE

CANDIDATES: tuple[type[FrequencyOracle], ...] = (GRR, OUE, OLH, Hadamard)


def choose(epsilon: float, domain_size: int, max_report_bits: int | None = None) -> FrequencyOracle:
    """The candidate with the smallest Var* that fits the report-size limit."""
    best: FrequencyOracle | None = None
    for cls in CANDIDATES:
        if domain_size > cls.max_domain_size:
            continue
        mechanism = cls(epsilon=epsilon, domain_size=domain_size)
        if max_report_bits is not None and mechanism.report_bits > max_report_bits:
            continue
        # a strictly smaller variance (beyond rounding) is needed to displace an earlier one
        if best is None or mechanism.variance_approx_per_user < best.variance_approx_per_user * (1 - 1e-12):
            best = mechanism
    if best is None:
        raise ConfigError(f"no frequency oracle fits a report of at most {max_report_bits} bits for k={domain_size}")
    return best
