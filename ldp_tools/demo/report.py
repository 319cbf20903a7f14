"""The demo's HTML report: figures (matplotlib, Agg backend) and tables.

Each figure is written as a PNG beside ``index.html`` and embedded in it (base64), so the
page is self-contained. Without matplotlib the page is written with the tables only.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

COLORS = {"truth": "#9aa5b1", "estimate": "#1f6feb", "post": "#d9480f", "miss": "#c92a2a", "hit": "#2b8a3e"}


def word(item: Any) -> str:
    """An item as printable text (PEM may return candidates with control bytes)."""
    text = str(item)
    return text if text.isprintable() else ascii(text)[1:-1]


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_dir: Path, name: str) -> tuple[str, str]:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = buffer.getvalue()
    (out_dir / name).write_bytes(data)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return name, base64.b64encode(data).decode("ascii")


def _rows(rows: list[dict[str, Any]], attribute: int | None = None) -> list[dict[str, Any]]:
    out = [r for r in rows if r.get("item") is not None and (attribute is None or r.get("attribute") == attribute)]
    return sorted(out, key=lambda r: r["item"])


def _hist_axes(ax: Any, labels: list[str], truth: np.ndarray, rows: list[dict[str, Any]], title: str) -> None:
    x = np.arange(len(labels))
    est = np.asarray([r["frequency"] for r in rows])
    lo = np.asarray([r["ci_lower"] for r in rows])
    hi = np.asarray([r["ci_upper"] for r in rows])
    post = np.asarray([r["postprocessed"] for r in rows])
    ax.bar(x, truth, color=COLORS["truth"], label="true frequency", width=0.7)
    ax.errorbar(
        x,
        est,
        yerr=[est - lo, hi - est],
        fmt="o",
        color=COLORS["estimate"],
        ms=4,
        capsize=3,
        label="estimate, 95% interval",
    )
    ax.plot(x, post, "x", color=COLORS["post"], ms=5, label="norm-sub (post-processed)")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x)
    rotate = len(labels) > 6 or max(len(label) for label in labels) > 8
    ax.set_xticklabels(
        [label[:14] for label in labels], rotation=55 if rotate else 0, ha="right" if rotate else "center", fontsize=8
    )
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("frequency")


def figures(out_dir: Path, ctx: dict[str, Any]) -> dict[str, tuple[str, str]]:
    plt = _plt()
    if plt is None:
        return {}
    res = ctx["results"]
    figs: dict[str, tuple[str, str]] = {}

    # 1. frequency, cumulative
    freq = res["frequency"]
    labels = ctx["freq_labels"]
    truth = np.asarray(freq["cumulative_truth"])
    rows = _rows(freq["cumulative"])
    if rows:
        order = np.argsort(-truth)
        fig, ax = plt.subplots(figsize=(10, 4))
        _hist_axes(
            ax,
            [labels[i] for i in order],
            truth[order],
            [rows[i] for i in order],
            f"education: cumulative estimate over {ctx['days']} days vs truth ({freq['cumulative_reports']:,} reports)",
        )
        ax.legend(fontsize=8)
        figs["frequency"] = _save(fig, out_dir, "frequency_cumulative.png")

    # 2. frequency, per epoch (time series of the four most frequent values)
    epochs = [e for e in freq["per_epoch"] if _rows(e["rows"])]
    if epochs:
        top = np.argsort(-truth)[:4]
        fig, ax = plt.subplots(figsize=(10, 4))
        xs = [e["epoch"] for e in epochs]
        for n, v in enumerate(top):
            color = plt.cm.tab10(n)
            est = np.asarray([_rows(e["rows"])[v]["frequency"] for e in epochs])
            lo = np.asarray([_rows(e["rows"])[v]["ci_lower"] for e in epochs])
            hi = np.asarray([_rows(e["rows"])[v]["ci_upper"] for e in epochs])
            tr = np.asarray([e["truth"][v] for e in epochs])
            ax.plot(xs, est, "o-", color=color, label=f"{labels[v]} estimate")
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15)
            ax.plot(xs, tr, "--", color=color, lw=1, label=f"{labels[v]} true")
        ax.set_xticks(xs)
        ax.set_xlabel("epoch (day); one release per epoch")
        ax.set_ylabel("frequency")
        ax.set_title(
            "education: per-epoch releases, 95% interval bands (dashed: truth of that day's reporters)", fontsize=10
        )
        ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18))
        figs["frequency_time"] = _save(fig, out_dir, "frequency_per_epoch.png")

    # 3. multidim marginals
    md = res["multidim"]
    attrs = ctx["md_attributes"]
    fig, axes = plt.subplots(
        1,
        len(attrs),
        figsize=(14, 4.2),
        layout="constrained",
        gridspec_kw={"width_ratios": [len(x) + 1 for x in ctx["md_labels"]]},
    )
    drawn = False
    for j, ax in enumerate(np.atleast_1d(axes)):
        attr_rows = _rows(md["cumulative"], j)
        if not attr_rows:
            ax.set_title(f"{attrs[j]}: withheld")
            continue
        _hist_axes(ax, ctx["md_labels"][j], np.asarray(md["truth"][j]), attr_rows, attrs[j])
        drawn = True
    if drawn:
        np.atleast_1d(axes)[0].legend(fontsize=7)
        fig.suptitle("RS+FD (ADP) marginals on UCI Adult, cumulative", fontsize=10)
        figs["multidim"] = _save(fig, out_dir, "multidim_marginals.png")
    else:
        plt.close(fig)

    # 4. heavy hitters
    hh = res["heavy_hitters"]
    found = [r for r in hh["found"] if r.get("item") is not None and r.get("party") is None]
    top_words = {w for w, _ in hh["true_top"]}
    words = [str(r["item"]) for r in found] + [w for w, _ in hh["true_top"] if w not in {str(r["item"]) for r in found}]
    if words:
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(words) + 1.2))
        y = np.arange(len(words))[::-1]
        true_f = [hh["true_freq"].get(w, 0.0) for w in words]
        ax.barh(y, true_f, color=COLORS["truth"], height=0.6, label="true frequency")
        for yi, r in zip(y, found, strict=False):
            color = COLORS["hit"] if str(r["item"]) in top_words else COLORS["miss"]
            ax.errorbar(
                r["frequency"],
                yi,
                xerr=[[r["frequency"] - r["ci_lower"]], [r["ci_upper"] - r["frequency"]]],
                fmt="o",
                color=color,
                capsize=3,
                ms=5,
            )
        ax.set_yticks(y)
        ticks = [word(w) + ("" if i < len(found) else "  (missed)") for i, w in enumerate(words)]
        ax.set_yticklabels(ticks, fontsize=9)
        ax.errorbar([], [], xerr=[], fmt="o", color=COLORS["hit"], capsize=3, label="estimate (in the true top-k)")
        ax.errorbar([], [], xerr=[], fmt="o", color=COLORS["miss"], capsize=3, label="estimate (not in the true top-k)")
        ax.set_xlabel("frequency")
        ax.set_title("heavy hitters found by PEM (green: in the true top-k, red: not) with 95% intervals", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        figs["heavy_hitters"] = _save(fig, out_dir, "heavy_hitters.png")

    # 5. budget histograms from the audit summaries
    audit = res["audit"]
    fig, axes = plt.subplots(1, len(audit), figsize=(13, 3.4), layout="constrained")
    for ax, (kind, s) in zip(np.atleast_1d(axes), audit.items(), strict=True):
        lows = [b["lower"] for b in s["histogram"]]
        widths = [b["upper"] - b["lower"] for b in s["histogram"]]
        ax.bar(
            lows,
            [b["devices"] for b in s["histogram"]],
            width=widths,
            align="edge",
            color=COLORS["estimate"],
            edgecolor="white",
        )
        ax.axvline(s["cap_lifetime"], color=COLORS["miss"], ls="--", label=f"lifetime cap {s['cap_lifetime']:.1f}")
        ax.set_title(f"{kind}: ε spent per device", fontsize=10)
        ax.set_xlabel("ε")
        ax.set_ylabel("devices")
        ax.legend(fontsize=8)
    figs["budget"] = _save(fig, out_dir, "budget.png")

    # 6. oracles
    oracles = ctx.get("oracles")
    if oracles:
        names = [o["oracle"] for o in oracles["oracles"]]
        x = np.arange(len(names))
        fig, ax = plt.subplots(figsize=(9, 3.5))
        ax.bar(x - 0.27, [o["mse"] for o in oracles["oracles"]], 0.27, label="measured MSE", color=COLORS["estimate"])
        ax.bar(x, [o["closed_form"] for o in oracles["oracles"]], 0.27, label="closed form", color=COLORS["truth"])
        ax.bar(
            x + 0.27, [o["mse_norm_sub"] for o in oracles["oracles"]], 0.27, label="norm-sub MSE", color=COLORS["post"]
        )
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_ylabel("mean squared error")
        ax.set_title(
            f"frequency oracles on Adult '{oracles['attribute']}' (n = {oracles['n']:,}, ε = {oracles['epsilon']})",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        figs["oracles"] = _save(fig, out_dir, "oracles.png")
    return figs


# --- HTML ----------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
td,th{border-bottom:1px solid #eaeef2;padding:.25rem .6rem;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.5rem 0}
.note{color:#57606a;font-size:.9rem}.ok{color:#2b8a3e;font-weight:600}.bad{color:#c92a2a;font-weight:600}
code{background:#f6f8fa;padding:0 .25rem;border-radius:3px}
"""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(figs: dict[str, tuple[str, str]], key: str, alt: str) -> str:
    if key not in figs:
        return '<p class="note">(figure unavailable: matplotlib is not installed)</p>'
    name, data = figs[key]
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" title="{html.escape(name)}">'


def _f(x: Any, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def render(ctx: dict[str, Any], figs: dict[str, tuple[str, str]]) -> str:
    res = ctx["results"]
    cols = ctx["collections"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>LDP analytics demo</title>"
        f"<style>{CSS}</style></head><body>"
    ]
    total_devices = sum(ctx["populations"].values())
    parts.append("<h1>LDP analytics — end-to-end demo</h1>")
    parts.append(
        f"<p class=note>{total_devices:,} simulated devices (each a real SDK <code>Client</code> with its own state) "
        f"reported over HTTP to the server ({html.escape(ctx['server'])}, {html.escape(ctx['url'])}) for "
        f"{ctx['days']} simulated days starting {ctx['day0']}; every epoch was released through "
        f"<code>POST /v1/collections/{{id}}/releases</code> and everything below was read back through the API "
        f"(<code>/estimates</code>, <code>/heavy-hitters</code>, <code>/v1/audit/*</code>, <code>/metrics</code>). "
        f"Data directory <code>{html.escape(ctx['data_dir'])}</code>; seed {ctx['seed']}; scale {ctx['scale']:g}.</p>"
    )
    timing_rows = [[k, f"{v:.1f} s"] for k, v in ctx["timings"].items()]
    parts.append(_table(["phase", "time"], timing_rows))

    # collections
    parts.append("<h2>Collections</h2>")
    rows = []
    for kind, c in cols.items():
        p = c["privacy"]
        cfg = c["config"]
        rows.append(
            [
                c["id"],
                kind,
                cfg["mechanism"].get("mechanism") or cfg["mechanism"].get("protocol"),
                _f(p["charge"]["epsilon"], 3),
                p["neighbouring"],
                _f(p.get("epsilon_attribute"), 3),
                p["calculator"],
                f"{cfg['budget']['cap_lifetime']:g} / {cfg['budget']['cap_per_window'] or '—'}",
                ctx["populations"][kind],
            ]
        )
    parts.append(
        _table(
            [
                "id",
                "kind",
                "protocol",
                "ε charged / report",
                "notion",
                "ε one attribute",
                "calculator",
                "cap lifetime / day",
                "devices",
            ],
            rows,
        )
    )
    parts.append(
        "<p class=note>RS+FD is ε-LDP only for neighbours that differ in one attribute; the collection promises the "
        "tuple level, so the ledger charges ε′ per report (both numbers are recorded in every ledger row).</p>"
    )

    # frequency
    freq = res["frequency"]
    parts.append("<h2>Frequency: education (OUE)</h2>")
    parts.append(_img(figs, "frequency", "cumulative estimates"))
    parts.append(_img(figs, "frequency_time", "per-epoch estimates"))
    truth = np.asarray(freq["cumulative_truth"])
    crow = _rows(freq["cumulative"])
    table_rows = []
    for v in np.argsort(-truth):
        r = crow[int(v)] if crow else None
        if r is None:
            continue
        table_rows.append(
            [
                ctx["freq_labels"][int(v)],
                _f(truth[v]),
                _f(r["frequency"]),
                f"[{_f(r['ci_lower'])}, {_f(r['ci_upper'])}]",
                _f(r["postprocessed"]),
            ]
        )
    parts.append(_table(["value", "true", "estimate", "95% interval", "norm-sub"], table_rows))
    log_rows = [
        [r["number"], r["epoch"], r["released_at"], r["trigger"], r["sha256"][:16] + "…"] for r in freq["release_log"]
    ]
    parts.append(
        "<p class=note>The release log (immutable, numbered; the SHA-256 is of the exact document served):</p>"
    )
    parts.append(_table(["release", "epoch", "released at (simulated)", "trigger", "sha256"], log_rows))

    # multidim
    parts.append("<h2>Multidimensional: RS+FD on four Adult attributes</h2>")
    parts.append(_img(figs, "multidim", "multidim marginals"))

    # heavy hitters
    hh = res["heavy_hitters"]
    parts.append("<h2>Heavy hitters: short English words (PEM)</h2>")
    parts.append(_img(figs, "heavy_hitters", "heavy hitters"))
    found = [r for r in hh["found"] if r.get("item") is not None and r.get("party") is None]
    top_words = {w for w, _ in hh["true_top"]}
    hrows = [
        [
            r["rank"],
            r["item"],
            _f(r["frequency"]),
            f"[{_f(r['ci_lower'])}, {_f(r['ci_upper'])}]",
            _f(hh["true_freq"].get(str(r["item"]), 0.0)),
            hh["true_rank"].get(str(r["item"]), "—"),
            "yes" if str(r["item"]) in top_words else "no",
        ]
        for r in found
    ]
    parts.append(_table(["rank", "word", "estimate", "95% interval", "true", "true rank", "in true top-k"], hrows))
    found_set = {str(r["item"]) for r in found}
    missed = [w for w, _ in hh["true_top"] if w not in found_set]
    parts.append(
        f"<p class=note>True top-{len(hh['true_top'])} (tie-aware): "
        + ", ".join(html.escape(w) for w, _ in hh["true_top"])
        + (f"; missed: {', '.join(html.escape(w) for w in missed)}" if missed else "; all found")
        + ". With a few thousand devices an open-domain search needs a large ε per report; with 10⁵–10⁶ devices "
        "ε ≈ 4 finds the top 16 (docs/heavy_hitters.md, bench/results/heavy_hitters.md).</p>"
    )

    # budget
    parts.append("<h2>Privacy budget and audit</h2>")
    parts.append(_img(figs, "budget", "budget histograms"))
    brows = []
    for kind, s in res["audit"].items():
        q = s["quantiles"]
        brows.append(
            [
                kind,
                s["devices"],
                s["reports_accepted"],
                s["ledger_rows"],
                _f(s["charge_epsilon"], 3),
                _f(q["p50"], 2),
                _f(q["max"], 2),
                _f(s["cap_lifetime"], 2),
                _f(s["max_window_spent"], 2),
                "yes" if s["max_over_cap"] else "no",
                json.dumps(s["rejections"]) or "{}",
            ]
        )
    parts.append(
        _table(
            [
                "collection",
                "devices",
                "reports",
                "ledger rows",
                "ε / report",
                "ε p50",
                "ε max",
                "cap",
                "max ε in a day",
                "over cap",
                "rejections",
            ],
            brows,
        )
    )
    v = res["verify"]
    status = '<span class="ok">all intact</span>' if v["ok"] else '<span class="bad">TAMPERED</span>'
    chain_rows = [
        [c["collection_id"], c["rows"], c["head_seq"], (c.get("head_hash") or "")[:24] + "…"] for c in v["chains"]
    ]
    parts.append(f"<p>Ledger hash chains (<code>GET /v1/audit/verify</code>): {status}</p>")
    parts.append(_table(["collection", "rows", "head seq", "head hash"], chain_rows))
    g = res.get("guard") or {}
    if g:
        parts.append(
            f"<p>One device that reported on all {ctx['days']} days: spent {g['spent']:.1f} of its {g['cap']:.1f} "
            f"lifetime cap on the device ({g['acknowledged']:.1f} acknowledged by the server); the server's ledger "
            f"holds {g['server_rows']} rows for it, ε {g['server_epsilon']:.1f}. "
            + (
                f"A further report was refused on the device, before anything was perturbed: "
                f"<code>{html.escape(g['refused'])}</code>"
                if g.get("refused")
                else ""
            )
            + "</p>"
        )
    m = res.get("metrics") or {}
    if m:
        parts.append("<h2>Operations</h2>")
        parts.append(
            _table(
                ["metric (GET /metrics)", "value"],
                [
                    ["ldp_reports_total{status=accepted}", f"{m['reports'].get('accepted', 0):,.0f}"],
                    ["ldp_reports_total{status=duplicate}", f"{m['reports'].get('duplicate', 0):,.0f}"],
                    ["ldp_reports_total{status=rejected}", f"{m['reports'].get('rejected', 0):,.0f}"],
                    ["ldp_ingest_batches_total", f"{m['batches']:,.0f}"],
                    ["ldp_releases_total", f"{m['releases']:,.0f}"],
                    ["ldp_ledger_rows", f"{m['ledger_rows']:,.0f}"],
                ],
            )
        )
        relay = ctx["relay"]
        parts.append(
            f"<p class=note>The devices' {relay['device_uploads']:,} uploads were merged by the demo's relay into "
            f"{relay['upstream_batches']:,} batches of up to 1,000 reports (an edge gateway's job); each device "
            "settled its own outbox and ledger from its slice of the per-report results.</p>"
        )

    oracles = ctx.get("oracles")
    if oracles:
        parts.append("<h2>Frequency oracles on all of Adult (in process)</h2>")
        parts.append(_img(figs, "oracles", "oracle comparison"))
        parts.append(
            _table(
                ["oracle", "MSE", "closed form", "norm-sub MSE", "95% CI coverage"],
                [
                    [
                        o["oracle"],
                        f"{o['mse']:.2e}",
                        f"{o['closed_form']:.2e}",
                        f"{o['mse_norm_sub']:.2e}",
                        f"{o['coverage']:.0%}",
                    ]
                    for o in oracles["oracles"]
                ],
            )
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: Path, ctx: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = figures(out_dir, ctx)
    path = out_dir / "index.html"
    path.write_text(render(ctx, figs), encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(ctx, indent=1, default=str), encoding="utf-8")
    return path
