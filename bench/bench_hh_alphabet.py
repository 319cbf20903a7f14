"""Issue 19 acceptance: PEM over a declared letters alphabet on real word and name lists,
with significance (Holm) and the final estimation round; pure-ldp's PEM on the same data at
the n it can finish; 0 invalid items published across ε, n and every protocol.

Data (read offline from installed packages; the bench extra):
* ``english``: the 50,000 most frequent English words of ``wordfreq``;
* ``surnames``: the 1,000 weighted US surnames of ``faker`` (``en_US`` last names, census
  weights; not first names);
* ``surnames_ar``: the 100 most common surnames of Argentina with their weights (``faker``
  ``es_AR`` last names, source apellidos.de). Chosen as a second names list because the
  ``en_US`` surnames ranked 13 to 20 hold 0.58–0.66 % each: no ε-LDP protocol resolves that
  boundary at n = 10^6 (see ``oracle_f1``), so those cells measure the data, not PEM.
Users draw their item i.i.d. from the list's frequencies (n = 10^6); items are canonical
under the domain (letters alphabet, ``outside="drop"``, ``max_chars`` = 8 for words and 10
for names, truncation); the truth is the top-16 of the drawn canonical items (tie-aware as
in docs/heavy_hitters.md). F1 counts published items (only significant ones are published).

    nice python bench/bench_hh_alphabet.py                 # the acceptance grid (≈ 15 min, one core)
    nice python bench/bench_hh_alphabet.py --quick         # 1 repetition, ε ∈ {2, 4}
    nice python bench/bench_hh_alphabet.py --validity      # 0 invalid items: ε × n × every protocol
    nice python bench/bench_hh_alphabet.py --coverage      # interval coverage over repeated runs
    nice python bench/bench_hh_alphabet.py --report-only   # rebuild the markdown and plots

Writes bench/results/hh_alphabet.{json,md} and docs/img/hh_alphabet_f1.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, table, write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_sdk import heavy_hitters  # noqa: E402
from client_sdk.heavy_hitters.encoding import EncodedItems  # noqa: E402

RESULTS_JSON = Path(__file__).resolve().parent / "results" / "hh_alphabet.json"
K = 16
MAX_CHARS = {"english": 8, "surnames": 10, "surnames_ar": 10}
DATASETS = tuple(MAX_CHARS)


def load(dataset: str) -> tuple[list[str], np.ndarray]:
    if dataset == "english":
        import wordfreq

        words = wordfreq.top_n_list("en", 50_000)
        freqs = np.array([wordfreq.word_frequency(w, "en") for w in words])
    else:
        if dataset == "surnames":
            from faker.providers.person.en_US import Provider
        else:
            from faker.providers.person.es_AR import Provider

        words = list(Provider.last_names)
        freqs = np.array(list(Provider.last_names.values()), dtype=np.float64)
    return words, freqs / freqs.sum()


def oracle_f1(dataset: str, epsilon: float, n: int = 1_000_000, reps: int = 300, seed: int = 0) -> float:
    """What the data allows: the mean F1 of the top k if all n users' full items were
    estimated by one OLH oracle over the known list (no discovery, no final group), with
    OLH's exact variance (normal approximation), the truth drawn as in the bench. The
    ranking noise at the k-th place alone caps every protocol's F1 near this value."""
    from client_sdk.mechanisms._base import pure_variance

    words, freqs = load(dataset)
    pem = heavy_hitters.create(
        "pem", epsilon=epsilon, k=K, domain={"type": "string", "alphabet": "letters", "max_chars": MAX_CHARS[dataset], "outside": "drop"}
    )  # fmt: skip
    share: dict[str, float] = {}
    for w, f in zip(words, freqs, strict=True):
        c = pem.domain.canonical(w)
        share[c] = share.get(c, 0.0) + float(f)
    p = np.array(sorted(share.values(), reverse=True)[:400])
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(reps):
        counts = rng.multinomial(n, np.append(p, max(0.0, 1 - p.sum())))[:-1]
        f = counts / n
        est = f + rng.standard_normal(f.size) * np.sqrt(pure_variance(pem.olh.p_star, pem.olh.q_star, n, f))
        kth = np.sort(counts)[::-1][K - 1]
        scores.append(float(np.mean(counts[np.argsort(-est)[:K]] >= kth)))
    return float(np.mean(scores))


def f1_score(output: list[str], counts: dict[str, int], k: int = K) -> float:
    """Tie-aware F1: an output item is correct iff its count reaches the k-th largest count."""
    ranked = sorted(counts.values(), reverse=True)
    kth = ranked[min(k, len(ranked)) - 1]
    hits = sum(1 for x in dict.fromkeys(output) if counts.get(x, 0) >= kth)
    if not output or not hits:
        return 0.0
    p, r = hits / len(set(output)), min(hits, k) / k
    return 2 * p * r / (p + r)


def population(hh, words: list[str], freqs: np.ndarray, n: int, rng: np.random.Generator):
    canon = [hh.domain.canonical(w) for w in words]
    vocab = list(dict.fromkeys(canon))
    pos = {c: i for i, c in enumerate(vocab)}
    to_vocab = np.array([pos[c] for c in canon])
    idx = to_vocab[rng.choice(len(words), size=n, p=freqs)]
    counts = np.bincount(idx, minlength=len(vocab))
    return vocab, idx, {vocab[j]: int(c) for j, c in enumerate(counts) if c}


def run_pem(dataset: str, epsilon: float, n: int, seed: int, lower5: bool = False) -> dict:
    words, freqs = load(dataset)
    domain = {"type": "string", "alphabet": "letters", "max_chars": MAX_CHARS[dataset], "outside": "drop"}
    if lower5:  # the items pure-ldp can handle: lower-case, at most PURE_LDP_CHARS letters
        words = [w.lower() for w in words]
        domain = {"type": "string", "alphabet": "lower", "max_chars": PURE_LDP_CHARS, "outside": "drop"}
    pem = heavy_hitters.create("pem", epsilon=epsilon, k=K, domain=domain)
    rng = np.random.default_rng(seed)
    vocab, idx, counts = population(pem, words, freqs, n, rng)
    reports = pem.perturb_batch(EncodedItems.from_vocabulary(pem.domain, vocab, idx), rng)
    t0 = time.process_time()
    result = pem.discover(reports)
    server = time.process_time() - t0
    invalid = sum(1 for h in result.heavy_hitters if not pem.domain.is_valid_code(h.code))
    # the published interval refers to the item's share of these n users (count / n)
    covered = sum(1 for h in result.heavy_hitters if h.ci_lower <= counts.get(h.item, 0) / n <= h.ci_upper)
    return {
        "method": f"PEM ({'lower, 5 chars' if lower5 else 'letters'})", "dataset": dataset, "epsilon": epsilon, "n": n, "seed": seed,
        "f1": f1_score(result.items, counts), "published": len(result.items), "invalid": invalid,
        "covered": covered, "ci_level": result.ci_level,
        "server_cpu_s": server, "load_1min": os.getloadavg()[0], "significance": result.significance,
        "groups": pem.groups, "max_chars": MAX_CHARS[dataset],
    }  # fmt: skip


#: pure-ldp's PEM allocates an array of |alphabet|^length floats per level (26^6 = 2.5 GB):
#: it runs on lower-case items of at most 5 letters, and ours is run on the same items
PURE_LDP_CHARS = 5


def run_pure_ldp(dataset: str, epsilon: float, n: int, seed: int) -> dict:
    """pure-ldp's PEM (S6) on lower-case letters, one character per level, items cut to
    PURE_LDP_CHARS letters."""
    import random

    import xxhash

    if not getattr(xxhash, "_str_shim", False):  # pure-ldp 1.2 hashes str; xxhash ≥ 3 wants bytes
        raw32 = xxhash.xxh32
        xxhash.xxh32 = lambda data, seed=0: raw32(data.encode() if isinstance(data, str) else data, seed=seed)
        xxhash._str_shim = True
    from pure_ldp.heavy_hitters.prefix_extending import PEMClient, PEMServer

    words, freqs = load(dataset)
    rng = np.random.default_rng(seed)
    random.seed(seed)
    letters = [chr(c) for c in range(97, 123)]
    L = PURE_LDP_CHARS
    canon = ["".join(ch for ch in w.lower() if ch in letters)[:L] for w in words]
    vocab = list(dict.fromkeys(canon))
    pos = {c: i for i, c in enumerate(vocab)}
    idx = np.array([pos[c] for c in canon])[rng.choice(len(words), size=n, p=freqs)]
    counts = np.bincount(idx, minlength=len(vocab))
    truth = {vocab[j]: int(c) for j, c in enumerate(counts) if c}
    # pure-ldp strips the padding '*' before its index mapper: number the strings of each
    # length bijectively (shorter first), so "ab" (padded "ab***") and "aab" stay distinct
    offsets = np.cumsum([0] + [26**j for j in range(L + 1)])

    def index(s: str) -> int:
        v = 0
        for ch in s:
            v = v * 26 + ord(ch) - 97
        return int(offsets[len(s)] + v)

    alphabet = letters + ["*"]
    options = {
        "start_length": 0,
        "max_string_length": L,
        "fragment_length": 1,
        "alphabet": alphabet,
        "index_mapper": index,
    }
    client = PEMClient(epsilon=epsilon, **options)
    server = PEMServer(epsilon=epsilon, **options)
    t0 = time.process_time()
    for j in idx:
        server.aggregate(client.privatise(vocab[j]))
    client_s = time.process_time() - t0
    t0 = time.process_time()
    items, _ = server.find_heavy_hitters(k=K)
    server_s = time.process_time() - t0
    out = [x.rstrip("*") for x in items]
    return {
        "method": f"pure-ldp PEM (lower, {L} chars)", "dataset": dataset, "epsilon": epsilon, "n": n, "seed": seed,
        "f1": f1_score(out, truth), "published": len(out), "invalid": 0, "server_cpu_s": server_s,
        "client_cpu_s": client_s,
    }  # fmt: skip


def validity(seed: int = 0) -> list[dict]:
    """0 invalid items across ε ∈ {1, 2, 4}, n ∈ {2·10^3, 10^5, 10^6}, every protocol, on the
    English words as byte items (6 bytes) and as letters (8 characters)."""
    words, freqs = load("english")
    rows = []
    for protocol in ("pem", "treehist", "tap", "taps"):
        for domain in (
            {"type": "string", "max_bytes": 6},
            {"type": "string", "alphabet": "letters", "max_chars": 8, "outside": "drop"},
        ):
            for epsilon in (1.0, 2.0, 4.0):
                for n in (2_000, 100_000, 1_000_000):
                    extra = {"parties": ["a", "b"]} if protocol in ("tap", "taps") else {}
                    hh = heavy_hitters.create(protocol, epsilon=epsilon, k=K, domain=domain, **extra)
                    rng = np.random.default_rng(seed + n)
                    vocab, idx, counts = population(hh, words, freqs, n, rng)
                    parties = rng.integers(0, 2, n) if extra else None
                    enc = EncodedItems.from_vocabulary(hh.domain, vocab, idx)
                    t0 = time.process_time()
                    result = hh.discover(hh.perturb_batch(enc, rng, parties=parties))
                    published = result.heavy_hitters + [h for hs in result.local.values() for h in hs]
                    invalid = [
                        h.item for h in published if not hh.domain.is_valid_code(h.code) or not h.item.isprintable()
                    ]
                    ranked = sorted(counts.values(), reverse=True)
                    kth = ranked[min(K, len(ranked)) - 1]
                    not_top = [h.item for h in result.heavy_hitters if counts.get(h.item, 0) < kth]
                    rows.append({
                        "protocol": protocol, "domain": "letters" if "alphabet" in domain else "bytes",
                        "epsilon": epsilon, "n": n, "published": len(result.heavy_hitters),
                        "published_local": len(published) - len(result.heavy_hitters), "invalid": len(invalid),
                        "invalid_items": invalid, "not_true_top": not_top, "f1": f1_score(result.items, counts),
                        "cpu_s": time.process_time() - t0,
                    })  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def coverage_runs(runs: int = 25, n: int = 200_000, epsilon: float = 4.0) -> list[dict]:
    """Repeated runs for the interval-coverage acceptance (smaller n, many seeds)."""
    rows = []
    for dataset in ("english", "surnames_ar"):
        for seed in range(runs):
            row = run_pem(dataset, epsilon, n, 1000 + seed)
            rows.append(
                {k: row[k] for k in ("dataset", "epsilon", "n", "seed", "f1", "published", "covered", "ci_level")}
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def coverage_lines(rows: list[dict], what: str = "all runs above") -> list[str]:
    """Acceptance: published intervals cover the true frequencies of published items at their
    nominal rate ± 3 % over repeated runs (Wilson 95 % interval of the measured rate)."""
    pub = sum(r["published"] for r in rows)
    if not pub:
        return []
    hit = sum(r["covered"] for r in rows)
    rate, z = hit / pub, 1.96
    centre = (rate + z * z / (2 * pub)) / (1 + z * z / pub)
    half = z * np.sqrt(rate * (1 - rate) / pub + z * z / (4 * pub * pub)) / (1 + z * z / pub)
    nominal = rows[0]["ci_level"]
    verdict = "within" if abs(rate - nominal) <= 0.03 else "outside"
    return [
        f"Interval coverage ({what}): {hit} of {pub} published intervals cover the item's true "
        f"share of the n users = {rate:.3f} (95 % Wilson interval {centre - half:.3f}–{centre + half:.3f}); "
        f"nominal {nominal}: {verdict} ± 0.03.",
        "",
    ]


def report(data: dict) -> str:
    lines = ["# Heavy hitters over a declared alphabet (issue 19)", "", f"Machine: {data['machine']}", ""]
    grid = data.get("grid", [])
    if grid:
        cells: dict[tuple, list[dict]] = {}
        for r in grid:
            cells.setdefault((r["method"], r["dataset"], r["n"], r["epsilon"]), []).append(r)
        rows = []
        for (method, dataset, n, eps), rs in sorted(cells.items()):
            f1 = np.array([r["f1"] for r in rs])
            cpu = np.array([r["server_cpu_s"] for r in rs])
            pub = sum(r["published"] for r in rs)
            cov = f"{sum(r['covered'] for r in rs)}/{pub}" if "covered" in rs[0] else "–"
            load = f"{np.mean([r['load_1min'] for r in rs]):.1f}" if "load_1min" in rs[0] else "–"
            oracle = data.get("oracle", {}).get(f"{dataset}|{eps}") if n == 1_000_000 else None
            rows.append([
                method, dataset, f"{n:,}", eps, len(rs), f"{f1.mean():.3f} ± {f1.std():.3f}", f"{f1.min():.3f}",
                "–" if oracle is None else f"{oracle:.3f}",
                f"{pub / len(rs):.1f}", sum(r["invalid"] for r in rs), cov, f"{cpu.mean():.2f} (max {cpu.max():.2f})", load,
            ])  # fmt: skip
        lines += [
            table(
                [
                    "method",
                    "data",
                    "n",
                    "ε",
                    "reps",
                    "F1 mean ± sd",
                    "F1 min",
                    "oracle F1",
                    "published",
                    "invalid",
                    "CI covers",
                    "server CPU s",
                    "load avg",
                ],
                rows,
            ),  # fmt: skip
            "",
        ]
        lines += [
            "oracle F1: the top 16 if all n users' full items went into one OLH estimate of every item "
            "of the list (known candidates, no discovery, no final group; `oracle_f1`) — the ranking "
            "noise at the 16th place alone caps any protocol near it.",
            "",
        ]
        lines += coverage_lines([r for r in grid if "covered" in r])
    cov = data.get("coverage", [])
    if cov:
        first = cov[0]
        lines += ["## Interval coverage over repeated runs", ""]
        lines += coverage_lines(
            cov,
            f"{len(cov)} runs, {', '.join(sorted({r['dataset'] for r in cov}))}, n = {first['n']:,}, ε = {first['epsilon']}",
        )
    val = data.get("validity", [])
    if val:
        rows = [
            [r["protocol"], r["domain"], r["epsilon"], f"{r['n']:,}", r["published"], r["published_local"], r["invalid"],
             len(r["not_true_top"]), f"{r['f1']:.3f}", f"{r['cpu_s']:.1f}"]
            for r in val
        ]  # fmt: skip
        lines += ["## Validity: invalid items published", "",
                  table(["protocol", "domain", "ε", "n", "published", "published (parties)", "invalid", "not in true top-16", "F1", "CPU s"], rows), ""]  # fmt: skip
    return "\n".join(lines)


def plot(data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [r for r in data.get("grid", []) if r["n"] == 1_000_000]
    if not grid:
        return
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in grid)]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.4), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        oracle = sorted(
            (float(key.split("|")[1]), v) for key, v in data.get("oracle", {}).items() if key.split("|")[0] == dataset
        )
        if oracle:
            ax.plot(
                [e for e, _ in oracle],
                [v for _, v in oracle],
                ls="--",
                c="black",
                lw=1,
                label="oracle (all users, known list)",
            )
        for method in sorted({r["method"] for r in grid}):
            pts = sorted({r["epsilon"] for r in grid if r["dataset"] == dataset and r["method"] == method})
            ys = [
                np.mean([r["f1"] for r in grid if (r["dataset"], r["method"], r["epsilon"]) == (dataset, method, e)])
                for e in pts
            ]
            ax.plot(pts, ys, marker="o", label=method)
        ax.axhline(0.95, ls=":", c="grey")
        ax.axhline(0.85, ls=":", c="grey")
        ax.set_title(f"{dataset}, n = 10^6, k = 16")
        ax.set_xlabel("ε")
    axes[0].set_ylabel("F1 (published items)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "img" / "hh_alphabet_f1.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--validity", action="store_true")
    ap.add_argument("--coverage", action="store_true", help="interval coverage over 25 runs per list (n = 2·10^5)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pure-ldp-n", type=int, default=100_000, help="0: skip pure-ldp")
    ap.add_argument("--resume", action="store_true", help="keep the grid rows already in the JSON")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of " + ", ".join(DATASETS))
    args = ap.parse_args()
    data = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    data["machine"] = {**machine(), "note": "machine shared with other work"}
    if args.validity:
        data["validity"] = validity()
    elif args.coverage:
        data["coverage"] = coverage_runs()
    elif not args.report_only:
        eps_list = (2.0, 4.0) if args.quick else (1.0, 2.0, 4.0)
        reps = 1 if args.quick else args.reps
        grid = data["grid"] = [r for r in data.get("grid", []) if args.resume]
        done = {(r["method"], r["dataset"], r["epsilon"], r["n"], r["seed"]) for r in grid}

        def add(row: dict) -> None:
            grid.append(row)
            print(json.dumps(row), flush=True)
            write_results("hh_alphabet", data, report(data))  # after every run: a crash loses nothing

        oracle = data.setdefault("oracle", {})
        for dataset in args.datasets.split(","):
            for eps in eps_list:
                oracle[f"{dataset}|{eps}"] = oracle_f1(dataset, eps)
                for seed in range(reps):
                    if ("PEM (letters)", dataset, eps, 1_000_000, seed) not in done:
                        add(run_pem(dataset, eps, 1_000_000, seed))
                if args.pure_ldp_n:
                    try:
                        add(run_pure_ldp(dataset, eps, args.pure_ldp_n, 0))
                        add(run_pem(dataset, eps, args.pure_ldp_n, 0, lower5=True))
                    except (ImportError, MemoryError) as exc:
                        print(f"pure-ldp failed ({type(exc).__name__}: {exc}); skipped", flush=True)
    write_results("hh_alphabet", data, report(data))
    plot(data)


if __name__ == "__main__":
    main()
