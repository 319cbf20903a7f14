"""Issue 19 acceptance: PEM over a declared letters alphabet on real word and name lists,
with significance (Holm) and the final estimation round; pure-ldp's PEM on the same users at
the n it can finish (``--pure-ldp``); 0 invalid items published across ε, n and every protocol.

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
    nice python bench/bench_hh_alphabet.py --pure-ldp --chars 3 --n 2000,20000 --eps 2,4 --reps 3

Writes bench/results/hh_alphabet.{json,md} and docs/img/hh_alphabet_f1.png.

``--pure-ldp``: pure-ldp's PEM (1.2.0; not a project dependency: ``pip install pure-ldp
scikit-learn statsmodels``, the last two only because ``pure_ldp.frequency_oracles`` imports
its RAPPOR server) and ours on the same users: English words of at most ``--chars``
lower-case letters, for each n, ε and seed (``--reps``); each pure-ldp run stops after
``--budget`` wall seconds and then records how far it got; ``--own-pad``: the users pad
their words themselves (see ``run_pure_ldp``); ``--ours-only``: our PEM alone, for n beyond
pure-ldp's reach; ``--first-seed``: add runs with further seeds. Rows are appended to
bench/results/hh_pureldp.json (rebuilt into hh_pureldp.md and docs/img/hh_pureldp_f1.png;
``--pure-ldp --report-only`` only rebuilds); several runs may write at once.
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


def run_pem(dataset: str, epsilon: float, n: int, seed: int) -> dict:
    words, freqs = load(dataset)
    domain = {"type": "string", "alphabet": "letters", "max_chars": MAX_CHARS[dataset], "outside": "drop"}
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
        "method": "PEM (letters)", "dataset": dataset, "epsilon": epsilon, "n": n, "seed": seed,
        "f1": f1_score(result.items, counts), "published": len(result.items), "invalid": invalid,
        "covered": covered, "ci_level": result.ci_level,
        "server_cpu_s": server, "load_1min": os.getloadavg()[0], "significance": result.significance,
        "groups": pem.groups, "max_chars": MAX_CHARS[dataset],
    }  # fmt: skip


# --- pure-ldp's PEM beside ours (--pure-ldp) ------------------------------------------------

PURE_JSON = Path(__file__).resolve().parent / "results" / "hh_pureldp.json"
#: the k of the comparison: 16 as in the issue, 8 because at n ≤ 2·10^4 the 9th to 16th
#: words (1.4–2.5 %) are within one standard deviation of a level's estimate
PURE_KS = (8, 16)


def lower_words(chars: int) -> tuple[list[str], np.ndarray]:
    """The wordfreq English words pure-ldp can encode: lower-case a–z only, 1 to ``chars``
    letters (the others are removed, not cut), with their frequencies renormalised."""
    words, freqs = load("english")
    keep = [i for i, w in enumerate(words) if 1 <= len(w) <= chars and w.isascii() and w.isalpha() and w.islower()]
    f = freqs[keep]
    return [words[i] for i in keep], f / f.sum()


def prf(output: list[str], counts: dict[str, int], k: int) -> tuple[float | None, float, float]:
    """Tie-aware precision (None for an empty output), recall and F1, as ``f1_score``."""
    ranked = sorted(counts.values(), reverse=True)
    kth = ranked[min(k, len(ranked)) - 1]
    out = list(dict.fromkeys(output))
    hits = sum(1 for x in out if counts.get(x, 0) >= kth)
    p = hits / len(out) if out else None
    r = min(hits, k) / k
    return p, r, (2 * p * r / (p + r) if p and r else 0.0)


def _xxhash_str_shim() -> None:
    """pure-ldp 1.2 hashes ``str``; xxhash ≥ 3 accepts only bytes: encode on the way in
    (measured ≈ 10 % of a hash evaluation)."""
    import xxhash

    if not getattr(xxhash, "_str_shim", False):
        raw32 = xxhash.xxh32
        xxhash.xxh32 = lambda data, seed=0: raw32(data.encode() if isinstance(data, str) else data, seed=seed)
        xxhash._str_shim = True


def lower_population(chars: int, n: int, seed: int) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """The n users of one run of the comparison: word indices drawn from ``seed`` alone, so
    both implementations (and the report) see exactly the same items."""
    words, freqs = lower_words(chars)
    idx = np.random.default_rng(seed).choice(len(words), size=n, p=freqs)
    held, counts = np.unique(np.array(words)[idx], return_counts=True)
    return words, idx, {str(w): int(c) for w, c in zip(held, counts, strict=True)}


def run_pure_ldp(chars: int, epsilon: float, n: int, seed: int, budget_s: float, own_pad: bool = False) -> dict:
    """pure-ldp's PEM (``PEMClient``/``PEMServer`` with their default OLH oracle): one level per
    character of the alphabet a–z plus the pad ``*`` (27 symbols), level j's oracle over all
    27^j fragments; each user reports one level (full ε). The server's ``aggregate`` evaluates
    the report's hash on every fragment of its level in Python, so a run costs about
    n / chars · Σ_j 27^j hash evaluations. Aggregation stops after ``budget_s`` wall seconds:
    the row then says how many of the n reports were aggregated and the projected time.
    The same users feed ours (``run_ours``): the population is drawn from ``seed`` alone.

    ``own_pad``: the users pad their words themselves with ``{`` (a 27th symbol of the
    alphabet) to ``chars`` letters, so pure-ldp never pads and never cuts; fragments are
    numbered in base 27 and ``a{b`` is a fragment of its own (estimated near 0) instead of
    a copy of ``a``."""
    import random

    _xxhash_str_shim()
    from pure_ldp.heavy_hitters.prefix_extending import PEMClient, PEMServer

    words, idx, truth = lower_population(chars, n, seed)
    random.seed(seed)
    np.random.seed(seed)  # pure-ldp draws from the global generators
    # pure-ldp strips the pad before its index mapper: number the strings of each length
    # bijectively (shorter first) so that "ab" (padded "ab***") and "aab" stay distinct
    offsets = np.cumsum([0] + [26**j for j in range(chars + 1)]).tolist()

    def index(s: str) -> int:
        v = 0
        for ch in s:
            v = v * 26 + ord(ch) - 97
        return offsets[len(s)] + v

    pad = "{" if own_pad else "*"
    if own_pad:  # base 27, "{" = 26: level j's fragments are exactly 0 … 27^j − 1

        def index(s: str) -> int:
            v = 0
            for ch in s:
                v = v * 27 + ord(ch) - 97
            return v

        words = [w + pad * (chars - len(w)) for w in words]
    options = {
        "start_length": 0,
        "max_string_length": chars,
        "fragment_length": 1,
        "alphabet": [chr(c) for c in range(97, 123)] + [pad],
        "index_mapper": index,
    }
    load0 = os.getloadavg()[0]
    client = PEMClient(epsilon=epsilon, **options)
    server = PEMServer(epsilon=epsilon, **options)
    client_cpu = aggregate_cpu = 0.0
    wall0 = time.perf_counter()
    done = 0
    for j in idx:
        t0 = time.process_time()
        report = client.privatise(words[j])
        t1 = time.process_time()
        server.aggregate(report)
        client_cpu += t1 - t0
        aggregate_cpu += time.process_time() - t1
        done += 1
        if time.perf_counter() - wall0 > budget_s:
            break
    wall = time.perf_counter() - wall0
    row = {
        "method": "pure-ldp PEM (own pad)" if own_pad else "pure-ldp PEM", "chars": chars, "epsilon": epsilon, "n": n, "seed": seed,
        "finished": done == n, "aggregated": done, "client_cpu_s": client_cpu, "aggregate_cpu_s": aggregate_cpu,
        "wall_s": wall, "budget_s": budget_s, "load_1min": [load0, os.getloadavg()[0]],
    }  # fmt: skip
    if done < n:
        row["projected_wall_s"] = wall * n / done
        return row
    for k in PURE_KS:
        t0, w0 = time.process_time(), time.perf_counter()
        items, _ = server.find_heavy_hitters(k=k)
        row[f"find_cpu_s@{k}"] = time.process_time() - t0
        row["wall_s"] += time.perf_counter() - w0
        # pure-ldp hands its index mapper the fragment cut at the first pad, so "a*b" is
        # estimated as "a" (= "a**") and such copies fill the width. Its raw output counts
        # them as invalid (pad inside); F1 is computed leniently on the output cut at the
        # first pad with duplicates removed (what pure-ldp itself estimated).
        out = list(dict.fromkeys(x.split(pad)[0] for x in items))
        p, r, f1 = prf(out, truth, k)
        row[f"k{k}"] = {"f1": f1, "precision": p, "recall": r, "published": len(out), "raw_output": list(items),
                        "output": out, "invalid": sum(1 for x in items if pad in x.rstrip(pad))}  # fmt: skip
    row["cpu_s"] = client_cpu + aggregate_cpu + sum(row[f"find_cpu_s@{k}"] for k in PURE_KS)
    return row


def run_ours(chars: int, epsilon: float, n: int, seed: int) -> dict:
    """Our PEM on exactly the users of ``run_pure_ldp(chars, epsilon, n, seed)``: alphabet
    ``lower``, ``max_chars`` = chars, defaults otherwise (levels, final group, Holm at α = 0.05)."""
    words, idx, truth = lower_population(chars, n, seed)
    domain = {"type": "string", "alphabet": "lower", "max_chars": chars, "outside": "drop"}
    row: dict = {"method": "our PEM", "chars": chars, "epsilon": epsilon, "n": n, "seed": seed, "finished": True,
                 "load_1min": [os.getloadavg()[0]], "client_cpu_s": 0.0, "server_cpu_s": 0.0, "wall_s": 0.0}  # fmt: skip
    for k in PURE_KS:
        pem = heavy_hitters.create("pem", epsilon=epsilon, k=k, domain=domain)
        rng = np.random.default_rng([seed, k])
        t0, w0 = time.process_time(), time.perf_counter()
        reports = pem.perturb_batch(EncodedItems.from_vocabulary(pem.domain, words, idx), rng)
        t1 = time.process_time()
        result = pem.discover(reports)
        row["server_cpu_s"] += time.process_time() - t1
        row["client_cpu_s"] += t1 - t0
        row["wall_s"] += time.perf_counter() - w0
        p, r, f1 = prf(result.items, truth, k)
        row[f"k{k}"] = {"f1": f1, "precision": p, "recall": r, "published": len(result.items),
                        "output": result.items, "groups": pem.groups,
                        "invalid": sum(1 for h in result.heavy_hitters if not pem.domain.is_valid_code(h.code))}  # fmt: skip
    row["cpu_s"] = row["client_cpu_s"] + row["server_cpu_s"]
    row["load_1min"].append(os.getloadavg()[0])
    return row


def pure_append(row: dict) -> None:
    """Add a row to hh_pureldp.json under a lock (several runs may write at once) and
    rewrite the markdown and the plot."""
    import fcntl

    PURE_JSON.parent.mkdir(exist_ok=True)
    with open(PURE_JSON.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(PURE_JSON.read_text()) if PURE_JSON.exists() else {"rows": []}
        data["machine"] = {**machine(), "note": "machine shared with other work"}
        data["rows"].append(row)
        write_results("hh_pureldp", data, pure_report(data))
        pure_plot(data)


def _fmt(values: list[float | None], digits: int = 3) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    text = f"{np.mean(vals):.{digits}f}"
    if len(vals) > 1:
        text += f" ± {np.std(vals):.{digits}f}"
    return text + ("" if len(vals) == len(values) else f" ({len(vals)} of {len(values)})")


def pure_cells(data: dict) -> dict[tuple, list[dict]]:
    cells: dict[tuple, list[dict]] = {}
    seen = set()
    for r in data.get("rows", []):
        run = (r["chars"], r["n"], r["epsilon"], r["method"], r["seed"])
        if r["finished"] and run not in seen:  # a rerun of a seed (same users, same draws) counts once
            seen.add(run)
            cells.setdefault(run[:4], []).append(r)
    return dict(sorted(cells.items(), key=lambda kv: (kv[0][:3], kv[0][3] != "pure-ldp PEM")))


def pure_side_by_side(data: dict) -> str:
    """One line per (letters, n, ε) that pure-ldp finished: F1 (mean over the runs) and
    published items held by no user (per run) of each implementation, wall seconds per run."""
    cells = pure_cells(data)
    methods = ("pure-ldp PEM", "pure-ldp PEM (own pad)", "our PEM")
    rows = []
    for chars, n, eps in sorted({key[:3] for key in cells}):
        runs = [cells.get((chars, n, eps, m), []) for m in methods]
        if not runs[0] or not runs[2]:
            continue
        held = {r["seed"]: lower_population(chars, n, r["seed"])[2] for rs in runs for r in rs}
        row = [f"≤ {chars}", f"{n:,}", f"{eps:g}", " / ".join(str(len(rs)) for rs in runs)]
        for k in PURE_KS:
            for rs in runs:
                if not rs:
                    row.append("–")
                    continue
                junk = np.mean([sum(1 for x in r[f"k{k}"]["output"] if x not in held[r["seed"]]) for r in rs])
                row.append(f"{np.mean([r[f'k{k}']['f1'] for r in rs]):.2f} ({junk:.1f})")
        row += [" / ".join(f"{np.mean([r['wall_s'] for r in rs]):.0f}" if rs else "–" for rs in runs[:2]),
                f"{np.mean([r['wall_s'] for r in runs[2]]):.2f}"]  # fmt: skip
        rows.append(row)
    heads = ["letters", "n", "ε", "runs", "k = 8: pure-ldp", "own pad", "ours", "k = 16: pure-ldp", "own pad", "ours",
             "pure-ldp wall s (/ own pad)", "ours wall s"]  # fmt: skip
    return table(heads, rows) + (
        "\n\nF1 (mean over the runs; in brackets: published items no user holds, per run). runs: "
        "pure-ldp / pure-ldp with its own pad / ours."
    )


def pure_report(data: dict) -> str:
    lines = ["# pure-ldp's PEM beside ours on the same users (issue 19)", "", f"Machine: {data['machine']}", ""]
    rows = []
    for (chars, n, eps, method), rs in pure_cells(data).items():
        held = [lower_population(chars, n, r["seed"])[2] for r in rs]
        for k in PURE_KS:
            ks = [r[f"k{k}"] for r in rs]
            unheld = sum(sum(1 for x in o["output"] if x not in h) for o, h in zip(ks, held, strict=True))
            rows.append([
                f"≤ {chars}", f"{n:,}", eps, k, method, len(rs), _fmt([x["f1"] for x in ks]),
                _fmt([x["precision"] for x in ks]), _fmt([x["recall"] for x in ks]),
                f"{np.mean([x['published'] for x in ks]):.1f}", f"{unheld / len(rs):.1f}", f"{np.mean([x['invalid'] for x in ks]):.1f}",
                _fmt([r["wall_s"] for r in rs], 2), _fmt([r["cpu_s"] for r in rs], 2),
                f"{np.mean([np.mean(r['load_1min']) for r in rs]):.1f}",
            ])  # fmt: skip
    heads = ["letters", "n", "ε", "k", "method", "reps", "F1", "precision", "recall", "published", "held by no user", "invalid",
             "wall s (both k)", "CPU s (both k)", "load avg"]  # fmt: skip
    lines += [table(heads, rows), ""]
    lines += ["## Side by side", "", pure_side_by_side(data), ""]
    stopped = [r for r in data.get("rows", []) if not r["finished"]]
    if stopped:
        lines += ["## Runs stopped at the time budget", ""]
        lines += [table(
            ["letters", "n", "ε", "aggregated reports", "wall s", "aggregate CPU s", "projected wall s for n", "load avg"],
            [[f"≤ {r['chars']}", f"{r['n']:,}", r["epsilon"], f"{r['aggregated']:,}", f"{r['wall_s']:.0f}",
              f"{r['aggregate_cpu_s']:.0f}", f"{r['projected_wall_s']:.0f}", f"{np.mean(r['load_1min']):.1f}"]
             for r in stopped],
        ), ""]  # fmt: skip
    lines += [
        "Same users: words of wordfreq's 50,000 most frequent English words that are lower-case a–z "
        "of 1 to `letters` letters (others removed, frequencies renormalised), n users drawn i.i.d. "
        "from one seed; both implementations get exactly these items. Truth: the top k of the drawn "
        "items, tie-aware. Precision over the distinct published items ('–' when nothing was "
        "published); published, 'held by no user' and 'invalid' are means per run; 'held by no user': published items that none of the n users holds. "
        "pure-ldp always outputs k candidates (no significance), ours only the significant ones. "
        "pure-ldp's 'invalid': raw outputs with the pad inside (`a*b`: pure-ldp cuts every fragment at its "
        "first pad before estimating, so `a*a` … `a*z` are 26 copies of `a`); its F1 is computed on the "
        "output cut at the first pad, duplicates removed ('published' = those distinct items). "
        "wall/CPU: the whole simulated collection of both k (pure-ldp: per-user client, per-report "
        "aggregation, `find_heavy_hitters` for k = 8 and k = 16 on the same aggregated reports; ours: "
        "`perturb_batch` and `discover`, run once per k).",
        "",
    ]
    return "\n".join(lines)


def pure_plot(data: dict) -> None:
    """F1 against n: colour = implementation, line style = ε (dashed 2, solid 4), marker = the
    words' letters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = pure_cells(data)
    if not cells:
        return
    fig, axes = plt.subplots(1, len(PURE_KS), figsize=(5.6 * len(PURE_KS), 3.8), sharey=True, squeeze=False)
    colours = {"pure-ldp PEM": "tab:grey", "pure-ldp PEM (own pad)": "tab:orange", "our PEM": "tab:blue"}
    markers = {3: "o", 4: "s", 5: "^"}
    lines = sorted({(key[3], key[0], key[2]) for key in cells})
    for ax, k in zip(axes[0], PURE_KS, strict=True):
        for method, chars, eps in lines:
            ns = sorted(key[1] for key in cells if (key[3], key[0], key[2]) == (method, chars, eps))
            ys = [np.mean([r[f"k{k}"]["f1"] for r in cells[(chars, n, eps, method)]]) for n in ns]
            style = "none" if len(ns) > 1 and ns[1] / ns[0] > 100 else "-" if eps >= 4 else "--"  # no line over a gap
            ax.plot(ns, ys, color=colours[method], ls=style, marker=markers.get(chars, "x"),
                    label=f"{method}, ≤ {chars} letters, ε = {eps:g}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("n (same users for both)")
        ax.set_title(f"English words, top {k}")
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("F1")
    axes[0][-1].legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "img" / "hh_pureldp_f1.png", dpi=110)
    plt.close(fig)


def pure_ldp_runs(
    chars: int,
    ns: list[int],
    eps_list: list[float],
    reps: int,
    budget_s: float,
    ours_only: bool = False,
    first_seed: int = 0,
    own_pad: bool = False,
) -> None:
    """Both implementations on the same users for each n, ε and seed; pure-ldp first, and
    no larger n once pure-ldp stopped at the budget. ``ours_only``: our PEM alone (for n
    beyond pure-ldp's reach)."""
    for n in ns:
        for eps in eps_list:
            for seed in range(first_seed, first_seed + reps):
                row = {"finished": True}
                if not ours_only:
                    row = run_pure_ldp(chars, eps, n, seed, budget_s, own_pad)
                    print(json.dumps({k: v for k, v in row.items() if not k.startswith("k")}), flush=True)
                    pure_append(row)
                ours = run_ours(chars, eps, n, seed)
                print(json.dumps({k: v for k, v in ours.items() if not k.startswith("k")}), flush=True)
                pure_append(ours)
                if not row["finished"]:
                    return


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
    ap.add_argument("--pure-ldp", action="store_true", help="pure-ldp's PEM beside ours: bench/results/hh_pureldp.*")
    ap.add_argument("--chars", type=int, default=3, help="--pure-ldp: words of at most this many letters")
    ap.add_argument("--n", default="2000,5000,10000,20000", help="--pure-ldp: comma-separated population sizes")
    ap.add_argument("--eps", default="2,4", help="--pure-ldp: comma-separated ε")
    ap.add_argument("--budget", type=float, default=300.0, help="--pure-ldp: wall seconds per pure-ldp run")
    ap.add_argument("--ours-only", action="store_true", help="--pure-ldp: run only our PEM (n beyond pure-ldp)")
    ap.add_argument("--own-pad", action="store_true", help="--pure-ldp: users pad their words themselves")
    ap.add_argument("--first-seed", type=int, default=0, help="--pure-ldp: seeds first-seed … first-seed + reps − 1")
    ap.add_argument("--resume", action="store_true", help="keep the grid rows already in the JSON")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of " + ", ".join(DATASETS))
    args = ap.parse_args()
    if args.pure_ldp:
        if args.report_only:
            data = json.loads(PURE_JSON.read_text())
            write_results("hh_pureldp", data, pure_report(data))
            pure_plot(data)
        else:
            ns, eps = [int(x) for x in args.n.split(",")], [float(x) for x in args.eps.split(",")]
            pure_ldp_runs(args.chars, ns, eps, args.reps, args.budget, args.ours_only, args.first_seed, args.own_pad)
        return
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
    write_results("hh_alphabet", data, report(data))
    plot(data)


if __name__ == "__main__":
    main()
