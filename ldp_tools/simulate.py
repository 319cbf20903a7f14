"""``ldp simulate``: a collection config's devices and aggregation, in process, on a CSV.

For researchers who want to know what a collection would report before deploying it: no
server, no database. The collection config file is the one ``ldp collections create``
takes (YAML or JSON); the protocol is built exactly as the server builds it
(``ldpserver.kinds.ADAPTERS[kind].build``), every CSV row is one device whose true
value is perturbed once with the SDK's vectorised ``perturb_batch`` (seeded
``numpy.random.Generator``: simulation only — devices use the OS CSPRNG), the reports are
aggregated and estimated by the same SDK code the server uses, and the estimates are
printed beside the true frequencies of the CSV, with their confidence intervals.

Values: frequency / longitudinal collections read one column, multidim one column per
attribute (``--column`` repeated, in the mechanism's attribute order), heavy hitters one
column of items (strings, or integers for an integer domain) and optionally a party
column. Categorical values are either value indices ``0 .. k-1`` or labels; labels are
numbered in sorted order (``--values label``), and ``auto`` picks indices when every value
is an integer inside the domain.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ldpserver.csv_cells import safe_row


class SimulationError(ValueError):
    """The inputs cannot be simulated; the message says why."""


def read_columns(path: str | Path, columns: Sequence[str]) -> list[list[str]]:
    """The named CSV columns (header row required), as lists of stripped strings."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise SimulationError(f"column(s) {missing} not in {path}; it has {header}")
        out: list[list[str]] = [[] for _ in columns]
        for row in reader:
            for j, name in enumerate(columns):
                out[j].append((row.get(name) or "").strip())
    if not out or not out[0]:
        raise SimulationError(f"{path} has no data rows")
    return out


def encode_categorical(raw: list[str], k: int, mode: str, name: str) -> tuple[np.ndarray, list[str]]:
    """(value indices, label of each index) for one categorical column of domain size k."""
    if mode not in ("auto", "index", "label"):
        raise SimulationError(f"--values must be auto, index or label, not {mode!r}")
    as_ints: list[int] | None = None
    if mode in ("auto", "index"):
        try:
            as_ints = [int(v) for v in raw]
        except ValueError:
            if mode == "index":
                raise SimulationError(f"column {name!r}: --values index needs integers in [0, {k})") from None
        if as_ints is not None and not all(0 <= v < k for v in as_ints):
            if mode == "index":
                raise SimulationError(f"column {name!r}: values outside [0, {k})")
            as_ints = None
    if as_ints is not None:
        return np.asarray(as_ints, dtype=np.int64), [str(i) for i in range(k)]
    labels = sorted(set(raw))
    if len(labels) > k:
        raise SimulationError(
            f"column {name!r} has {len(labels)} distinct values but the domain size is {k}: "
            "enlarge the mechanism's domain or map the values first"
        )
    lookup = {label: i for i, label in enumerate(labels)}
    names = labels + [f"<unused {i}>" for i in range(len(labels), k)]
    return np.fromiter((lookup[v] for v in raw), dtype=np.int64, count=len(raw)), names


@dataclass
class SimulationResult:
    kind: str
    protocol: str
    n: int
    seed: int
    privacy: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    #: the SDK protocol's value shape: "index", "tuple" (one histogram per attribute) or
    #: "item" (ranked heavy hitters), which decides how the rows are printed
    shape: str = "index"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "protocol": self.protocol,
            "n": self.n,
            "seed": self.seed,
            "privacy": self.privacy,
            "summary": self.summary,
            "rows": self.rows,
        }


def _histogram_rows(estimate: Any, truth: np.ndarray, labels: list[str], level: float, attribute: int | None):
    lower, upper = estimate.confidence_interval(level)
    post = estimate.postprocessed("norm-sub").frequencies
    rows = []
    for v in range(len(truth)):
        rows.append(
            {
                "attribute": attribute,
                "value": v,
                "label": labels[v],
                "true": float(truth[v]),
                "estimate": float(estimate.frequencies[v]),
                "ci_lower": float(lower[v]),
                "ci_upper": float(upper[v]),
                "postprocessed": float(post[v]),
                "std": float(math.sqrt(max(float(estimate.variance[v]), 0.0))),
            }
        )
    errors = np.asarray(estimate.frequencies) - truth
    covered = (np.asarray(lower) <= truth) & (truth <= np.asarray(upper))
    stats = {
        "mse": float(np.mean(errors**2)),
        "mse_postprocessed": float(np.mean((np.asarray(post) - truth) ** 2)),
        "coverage": float(np.mean(covered)),
    }
    return rows, stats


def _privacy_dict(protocol: Any) -> dict[str, Any]:
    privacy = getattr(protocol, "privacy", None)
    if privacy is None:
        return {}
    if hasattr(privacy, "__dataclass_fields__"):
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(privacy), default=str))
    return {"epsilon": getattr(privacy, "epsilon", None)}


def run(
    config: dict[str, Any],
    data: str | Path,
    columns: Sequence[str],
    *,
    seed: int,
    values: str = "auto",
    party_column: str | None = None,
    level: float = 0.95,
    dictionary: str | Path | None = None,
) -> SimulationResult:
    """Simulate the collection ``config`` (the creation request) on the CSV ``data``.
    ``dictionary``: a known-candidate collection's candidate items, one per line (default:
    the CSV's distinct items)."""
    from ldpserver.kinds import ADAPTERS, KindUnavailable, ProtocolConfigError

    if not isinstance(config, dict):
        raise SimulationError("the config file must hold one collection (a mapping)")
    kind = config.get("kind")
    if kind not in ADAPTERS:
        raise SimulationError(f"unknown kind {kind!r}; one of {sorted(ADAPTERS)}")
    try:
        protocol = ADAPTERS[kind].build(config.get("mechanism") or {})
    except (ProtocolConfigError, KindUnavailable) as exc:
        raise SimulationError(f"mechanism config refused: {exc}") from None
    if not columns:
        raise SimulationError("name the CSV column(s) with --column")
    rng = np.random.default_rng(seed)
    name = str(protocol.config.get("mechanism") or protocol.config.get("protocol") or kind)
    privacy = _privacy_dict(protocol)

    shape = str(getattr(protocol, "value_shape", ""))
    simulate = SIMULATORS.get(shape)
    if simulate is None:
        raise SimulationError(f"kind {kind!r} cannot be simulated (value shape {shape!r})")
    job = Job(protocol, kind, data, list(columns), values, party_column, level, rng, dictionary)
    rows, summary, n = simulate(job)
    return SimulationResult(kind, name, n, seed, privacy, rows, summary, shape)


@dataclass
class Job:
    """One simulation: the SDK protocol and what to run it on."""

    protocol: Any
    kind: str
    data: Any  # the CSV path
    columns: list[str]
    values: str
    party_column: str | None
    level: float
    rng: np.random.Generator
    dictionary: str | Path | None = None  # known-candidate collections: a file of candidate items

    def unpack(self) -> tuple[Any, str, Any, list[str], str, str | None, float, np.random.Generator]:
        return (self.protocol, self.kind, self.data, self.columns, self.values, self.party_column, self.level,
                self.rng)  # fmt: skip


def _simulate_indices(job: Job) -> tuple[list, dict, int]:
    """One categorical column; the value index per row (frequency, longitudinal)."""
    protocol, kind, data, columns, values, party_column, level, rng = job.unpack()
    if party_column:
        raise SimulationError("--party-column applies to federated (tap/taps) collections only")
    if len(columns) != 1:
        raise SimulationError(f"a {kind} collection reads one column, got {len(columns)}")
    (raw,) = read_columns(data, columns)
    k = int(protocol.domain_size)
    codes, labels = encode_categorical(raw, k, values, columns[0])
    reports = protocol.perturb_batch(codes, rng)
    estimate = protocol.estimate(protocol.aggregate(reports))
    truth = np.bincount(codes, minlength=k) / codes.size
    rows, stats = _histogram_rows(estimate, truth, labels, level, None)
    return rows, stats, int(codes.size)


def _simulate_tuples(job: Job) -> tuple[list, dict, int]:
    """One column per attribute (multidim)."""
    protocol, kind, data, columns, values, party_column, level, rng = job.unpack()
    if party_column:
        raise SimulationError("--party-column applies to federated (tap/taps) collections only")
    sizes = [int(s) for s in protocol.config["domain_sizes"]]
    if len(columns) != len(sizes):
        raise SimulationError(f"this multidim mechanism has {len(sizes)} attributes; give as many --column")
    raws = read_columns(data, columns)
    encoded = [encode_categorical(raw, k, values, col) for raw, k, col in zip(raws, sizes, columns, strict=True)]
    matrix = np.stack([codes for codes, _ in encoded], axis=1)
    reports = protocol.perturb_batch(matrix, rng)
    estimates = protocol.estimate(protocol.aggregate(reports))
    rows = []
    per_attribute = []
    for j, (codes, labels) in enumerate(encoded):
        truth = np.bincount(codes, minlength=sizes[j]) / codes.size
        if estimates[j] is None:
            per_attribute.append({"attribute": j, "column": columns[j], "status": "no report informed it"})
            continue
        attr_rows, stats = _histogram_rows(estimates[j], truth, labels, level, j)
        rows.extend(attr_rows)
        per_attribute.append({"attribute": j, "column": columns[j], **stats})
    summary = {"attributes": per_attribute, "mse": float(np.mean([a.get("mse", np.nan) for a in per_attribute]))}
    return rows, summary, int(matrix.shape[0])


def _dictionary_of(job: Job, column: list[str], integers: bool) -> list[Any]:
    """The candidate items: the --dictionary file (one per line, blank lines skipped) or the
    CSV's distinct items."""
    if job.dictionary is None:
        lines = sorted(set(column))
    else:
        with open(job.dictionary, encoding="utf-8") as handle:
            lines = [line.rstrip("\n") for line in handle if line.strip()]
    if not integers:
        return lines
    try:
        return [int(v) for v in lines]
    except ValueError:
        raise SimulationError("an integer-domain collection needs an integer dictionary") from None


def _simulate_items(job: Job) -> tuple[list, dict, int]:
    """One column of items (heavy hitters), optionally a party column (federated protocols)."""
    protocol, kind, data, columns, values, party_column, level, rng = job.unpack()
    if len(columns) != 1:
        raise SimulationError("a heavy-hitter collection reads one column of items")
    wanted = [columns[0]] + ([party_column] if party_column else [])
    raws = read_columns(data, wanted)
    domain = protocol.config.get("domain", {})
    if domain.get("type") == "integer":
        try:
            items = np.asarray([int(v) for v in raws[0]], dtype=np.int64)
        except ValueError:
            raise SimulationError("an integer-domain collection needs integer items") from None
    else:
        items = np.asarray(raws[0], dtype=object)
    parties = None
    if getattr(protocol, "federated", False):
        if not party_column:
            raise SimulationError("a federated collection needs --party-column")
        parties = raws[1]
    elif party_column:
        raise SimulationError("--party-column applies to federated (tap/taps) collections only")
    reports = protocol.perturb_batch(items, rng, parties=parties) if parties else protocol.perturb_batch(items, rng)
    options: dict[str, Any] = {"ci_level": level}
    if getattr(protocol, "takes_dictionary", False):  # known-candidate mode: estimate the dictionary's items
        options["dictionary"] = _dictionary_of(job, raws[0], domain.get("type") == "integer")
    elif job.dictionary is not None:
        raise SimulationError("--dictionary applies to known-candidate (protocol 'known') collections only")
    try:
        found = protocol.discover(reports, **options)
    except ValueError as exc:  # ConfigError, ItemEncodingError: a dictionary the domain refuses
        raise SimulationError(f"dictionary refused: {exc}") from None
    counts = Counter(raws[0])
    n = len(raws[0])
    true_rank = {item: r + 1 for r, (item, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
    k = int(protocol.config.get("k", len(found.heavy_hitters)))
    # tie-aware ground truth: every item at least as frequent as the k-th most frequent one
    ordered = sorted(counts.values(), reverse=True)
    threshold = ordered[min(k, len(ordered)) - 1] if ordered else 0
    true_top = {item for item, c in counts.items() if c >= threshold}
    rows = []
    for rank, h in enumerate(found.heavy_hitters, 1):
        key = str(h.item)
        rows.append(
            {
                "rank": rank,
                "item": h.item,
                "true": counts.get(key, 0) / n,
                "true_rank": true_rank.get(key),
                "estimate": float(h.frequency),
                "ci_lower": float(h.ci_lower),
                "ci_upper": float(h.ci_upper),
                "postprocessed": None if h.consistent_frequency is None else float(h.consistent_frequency),
                "in_true_top": key in true_top,
            }
        )
    hits = sum(r["in_true_top"] for r in rows)
    summary = {
        "k": k,
        "found": len(rows),
        "in_true_top_k": hits,
        "precision": hits / len(rows) if rows else 0.0,
        "recall": min(hits, k) / k if k else 0.0,
    }
    return rows, summary, n


#: how to simulate a protocol, by the shape of a device's true value (never by kind)
SIMULATORS: dict[str, Any] = {"index": _simulate_indices, "tuple": _simulate_tuples, "item": _simulate_items}


def format_table(result: SimulationResult, top: int | None = None) -> str:
    """A plain-text table of the result (what ``ldp simulate`` prints)."""
    lines = [f"{result.kind} / {result.protocol}: n = {result.n:,} simulated devices, seed {result.seed}"]
    eps = result.privacy.get("epsilon")
    if eps is not None:
        lines.append(f"privacy: epsilon {eps:.4g} per report ({result.privacy.get('neighbouring', 'record')}-level)")
    if result.shape == "item":
        lines.append(f"  {'rank':>4} {'item':<20} {'true':>8} {'true rank':>9} {'estimate':>9}   interval")
        for r in result.rows:
            true_rank = "-" if r["true_rank"] is None else str(r["true_rank"])
            lines.append(
                f"  {r['rank']:>4} {str(r['item'])[:20]:<20} {r['true']:8.4f} {true_rank:>9} {r['estimate']:9.4f}"
                f"   [{r['ci_lower']:.4f}, {r['ci_upper']:.4f}]"
            )
        s = result.summary
        lines.append(f"found {s['found']} items, {s['in_true_top_k']} of them in the true top {s['k']}")
        return "\n".join(lines)
    attribute = object()
    shown = 0
    for r in result.rows:
        if r["attribute"] != attribute:
            attribute = r["attribute"]
            shown = 0
            if attribute is not None:
                lines.append(f"attribute {attribute}:")
            lines.append(f"  {'value':<20} {'true':>8} {'estimate':>9}   interval            {'norm-sub':>8}")
        if top is not None and shown >= top:
            continue
        shown += 1
        lines.append(
            f"  {r['label'][:20]:<20} {r['true']:8.4f} {r['estimate']:9.4f}   "
            f"[{r['ci_lower']:7.4f}, {r['ci_upper']:7.4f}]  {r['postprocessed']:8.4f}"
        )
    s = result.summary
    if "coverage" in s:
        lines.append(
            f"MSE {s['mse']:.3e} (norm-sub {s['mse_postprocessed']:.3e}); interval coverage {s['coverage']:.0%}"
        )
    elif "mse" in s:
        lines.append(f"mean MSE over attributes {s['mse']:.3e}")
    return "\n".join(lines)


def write_result(result: SimulationResult, path: str | Path) -> None:
    """``.json``: the whole result; anything else: the rows as CSV."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        return
    rows = result.rows
    columns = list(rows[0].keys()) if rows else ["value"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(safe_row(row, columns))
