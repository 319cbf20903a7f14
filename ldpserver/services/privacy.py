"""Privacy loss of a configured mechanism: OpenDP where it has the measurement, else closed form.

OpenDP (0.16) is the calculator for:

* **GRR** — ``make_randomized_response(categories=[0..k-1], prob=p)``: the same k
  categories and the same probability ``p`` of reporting the true value the SDK uses
  (k ≤ 65,536; beyond, building the category set costs more than it is worth and the
  closed form ``ln(p/q)`` is recorded instead).
* **SUE** — ``make_randomized_response_bitvec(bitvector_domain(max_weight=1),
  discrete_distance(), f=2q)``: RAPPOR's symmetric flip (a bit is replaced by a fair coin
  with probability ``f``), which is exactly SUE with ``q = f/2``; ``max_weight=1`` because
  the input is one-hot; OpenDP's loss ``2·ln((2−f)/f)`` equals SUE's ε.

Not expressible in OpenDP 0.16, so the SDK's closed-form statement is recorded with
``"calculator": "closed-form"``: **OUE** (its flips are asymmetric, ``P[1|1] = 1/2``,
``P[1|0] = q``; the bit-vector measurement has a single symmetric ``f``; for information
the bound of the tightest symmetric measurement that dominates OUE is recorded as
``opendp_upper_bound``, which is looser than OUE's exact ε), **OLH/BLH** (hashing then
GRR over a data-independent range), **Hadamard response**, and the multidimensional
and heavy-hitter protocols.

OpenDP rounds its arithmetic conservatively, so its loss can exceed the exact ε by a few
units in the last place; a declared ε is accepted when it is at least the computed loss
minus ``TOLERANCE`` (relative, 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TOLERANCE = 1e-9
OPENDP_MAX_CATEGORIES = 1 << 16


@dataclass(frozen=True)
class PrivacyAssessment:
    """The privacy loss of one report under the promised notion, and how it was computed.

    ``epsilon`` is the loss under ``neighbouring`` (what a declared epsilon must cover);
    ``epsilon_record`` the loss for any two records/tuples; ``epsilon_attribute`` the loss
    for tuples differing in one attribute (multidim only).
    """

    epsilon: float
    neighbouring: str
    epsilon_record: float
    epsilon_attribute: float | None
    calculator: str  # "opendp" | "closed-form"
    details: dict[str, Any] = field(default_factory=dict)
    charge_per_new_memo: float | None = None  # memoized protocols: the SDK's ε∞ per memo
    max_memos: int | None = None


def declared_covers(declared: float, computed: float) -> bool:
    """True when the declared epsilon is at least the computed loss (up to OpenDP's rounding)."""
    return declared >= computed - TOLERANCE * max(1.0, abs(computed))


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def opendp_version() -> str:
    from importlib.metadata import version

    try:
        return version("opendp")
    except Exception:  # pragma: no cover - opendp is a server dependency
        return "unknown"


def assess_frequency_oracle(mechanism: Any) -> PrivacyAssessment:
    """Loss of one report of a client_sdk frequency oracle (OpenDP for GRR and SUE)."""
    statement = mechanism.privacy
    closed_form = float(statement.epsilon)
    parameters = {k: (float(v) if isinstance(v, float) else v) for k, v in dict(statement.parameters).items()}
    details: dict[str, Any] = {
        "mechanism": mechanism.name,
        "closed_form_epsilon": closed_form,
        "parameters": parameters,
    }
    name = mechanism.name
    if name == "grr" and mechanism.domain_size <= OPENDP_MAX_CATEGORIES:
        dp = _opendp()
        p = float(mechanism.p_star)
        measurement = dp.m.make_randomized_response(list(range(mechanism.domain_size)), p)
        loss = float(measurement.map(1))
        details.update(
            measurement="opendp.measurements.make_randomized_response",
            measurement_arguments={"categories": f"[0, {mechanism.domain_size})", "prob": p},
            opendp_version=opendp_version(),
            opendp_epsilon=loss,
        )
        return PrivacyAssessment(loss, "record", loss, None, "opendp", details)
    if name == "sue":
        dp = _opendp()
        f = 2.0 * float(mechanism.q_star)
        measurement = dp.m.make_randomized_response_bitvec(
            dp.bitvector_domain(max_weight=1), dp.discrete_distance(), f=f
        )
        loss = float(measurement.map(1))
        details.update(
            measurement="opendp.measurements.make_randomized_response_bitvec",
            measurement_arguments={"max_weight": 1, "f": f},
            opendp_version=opendp_version(),
            opendp_epsilon=loss,
        )
        return PrivacyAssessment(loss, "record", loss, None, "opendp", details)
    if name == "grr":
        details["note"] = f"k > {OPENDP_MAX_CATEGORIES}: closed form ln(p/q) recorded instead of OpenDP"
    elif name == "oue":
        dp = _opendp()
        p, q = float(mechanism.p_star), float(mechanism.q_star)
        # the tightest symmetric per-bit flip that dominates OUE's asymmetric channel
        per_bit = max(math.log(p / q), math.log((1 - q) / (1 - p)))
        f = 2.0 / (math.exp(per_bit) + 1.0)
        bound = dp.m.make_randomized_response_bitvec(dp.bitvector_domain(max_weight=1), dp.discrete_distance(), f=f)
        details.update(
            note="OpenDP 0.16 has no asymmetric bit-vector randomized response; OUE's exact loss "
            "ln(p(1-q)/((1-p)q)) is the closed form",
            opendp_upper_bound=float(bound.map(1)),
            opendp_version=opendp_version(),
        )
    else:
        details["note"] = "no OpenDP measurement for this mechanism; closed-form statement of the SDK"
    return PrivacyAssessment(closed_form, "record", closed_form, None, "closed-form", details)


def assess_closed_form(protocol: Any) -> PrivacyAssessment:
    """Loss from the SDK's own privacy statement (multidim, heavy hitters, longitudinal, ...).

    ``privacy.epsilon`` is the charge under the promised ``privacy.neighbouring``;
    ``epsilon_tuple`` / ``epsilon_attribute`` (multidim) and ``charge_per_new_memo`` /
    ``max_memos`` (longitudinal) are taken when the statement has them.
    """
    statement = protocol.privacy
    epsilon = float(statement.epsilon)
    neighbouring = str(getattr(statement, "neighbouring", None) or "record")
    tuple_level = getattr(statement, "epsilon_tuple", None)
    attribute_level = getattr(statement, "epsilon_attribute", None)
    per_memo = getattr(statement, "charge_per_new_memo", None)
    max_memos = getattr(statement, "max_memos", None)
    details: dict[str, Any] = {
        "mechanism": getattr(statement, "mechanism", None) or getattr(protocol, "name", None),
        "closed_form_epsilon": epsilon,
        "note": "no OpenDP measurement for this protocol; closed-form statement of the SDK",
    }
    to_dict = getattr(statement, "to_dict", None)
    if callable(to_dict):
        try:
            details["statement"] = _json_safe(to_dict())
        except Exception:  # pragma: no cover - defensive: statements are SDK-defined
            pass
    return PrivacyAssessment(
        epsilon=epsilon,
        neighbouring=neighbouring,
        epsilon_record=float(tuple_level) if tuple_level is not None else epsilon,
        epsilon_attribute=float(attribute_level) if attribute_level is not None else None,
        calculator="closed-form",
        details=details,
        charge_per_new_memo=float(per_memo) if per_memo is not None else None,
        max_memos=int(max_memos) if max_memos is not None else None,
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
