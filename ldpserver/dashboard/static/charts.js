/* Small SVG charts (no library): a bar chart with confidence-interval error bars and a
   line chart with a confidence band. Every data mark carries data-point (and
   data-label / data-value) so end-to-end tests can count and read the points. */
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, s, anchor) {
    const t = el("text", { x, y, "text-anchor": anchor || "middle" }, parent);
    t.textContent = s;
    return t;
  }
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
  function frame(opts, lo, hi) {
    const W = opts.width || 520, H = opts.height || 240, M = { l: 48, r: 12, t: 22, b: 36 };
    const svg = el("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
    if (opts.id) svg.setAttribute("id", opts.id);
    if (opts.title) text(svg, M.l, 14, opts.title, "start");
    if (hi === lo) hi = lo + 1;
    const y = (v) => M.t + (H - M.t - M.b) * (1 - (v - lo) / (hi - lo));
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      el("line", { class: "axis", x1: M.l - 3, x2: W - M.r, y1: y(v), y2: y(v), "stroke-opacity": i ? 0.25 : 1 }, svg);
      text(svg, M.l - 6, y(v) + 3, fmt(v), "end");
    }
    return { svg, W, H, M, y };
  }
  /* items: [{label, value, lo?, hi?, title?}] */
  function bar(items, opts) {
    opts = opts || {};
    const vals = items.flatMap((d) => [d.value, d.lo ?? d.value, d.hi ?? d.value]).filter(Number.isFinite);
    const lo = Math.min(0, ...vals), hi = Math.max(opts.max ?? 0, ...vals, 1e-9);
    const f = frame(opts, lo, hi), { svg, W, M, y } = f;
    const n = Math.max(items.length, 1), slot = (W - M.l - M.r) / n, bw = Math.max(2, slot * 0.65);
    items.forEach((d, i) => {
      const cx = M.l + slot * (i + 0.5);
      const g = el("g", { "data-point": "", "data-label": d.label, "data-value": d.value }, svg);
      const r = el("rect", {
        class: "bar" + (d.over ? " over" : ""), x: cx - bw / 2, width: bw,
        y: Math.min(y(d.value), y(0)), height: Math.max(1, Math.abs(y(d.value) - y(0))),
      }, g);
      el("title", {}, r).textContent = d.title || `${d.label}: ${fmt(d.value)}` +
        (d.lo != null ? ` [${fmt(d.lo)}, ${fmt(d.hi)}]` : "");
      if (d.lo != null && d.hi != null) {
        el("line", { class: "err", x1: cx, x2: cx, y1: y(d.lo), y2: y(d.hi), "data-ci": "" }, g);
        el("line", { class: "err", x1: cx - bw / 4, x2: cx + bw / 4, y1: y(d.lo), y2: y(d.lo) }, g);
        el("line", { class: "err", x1: cx - bw / 4, x2: cx + bw / 4, y1: y(d.hi), y2: y(d.hi) }, g);
      }
      if (n <= 40) text(svg, cx, f.H - M.b + 14, d.label);
    });
    if (opts.marker != null) {  // e.g. the budget cap
      const x = M.l + (W - M.l - M.r) * opts.marker.at;
      el("line", { class: "cap", x1: x, x2: x, y1: M.t, y2: f.H - M.b, "data-marker": opts.marker.name }, svg);
      text(svg, x - 4, M.t + 10, opts.marker.label, "end");
    }
    if (opts.xlabel) text(svg, (M.l + W - M.r) / 2, f.H - 6, opts.xlabel);
    return svg;
  }
  /* points: [{label, value, lo, hi}] in x order; value null = gap (no dot) */
  function line(points, opts) {
    opts = opts || {};
    const have = points.filter((p) => Number.isFinite(p.value));
    const vals = have.flatMap((p) => [p.value, p.lo ?? p.value, p.hi ?? p.value]);
    const lo = Math.min(0, ...vals), hi = Math.max(1e-9, ...vals);
    const f = frame(opts, lo, hi), { svg, W, M, y } = f;
    const n = points.length, x = (i) => M.l + (n <= 1 ? (W - M.l - M.r) / 2 : ((W - M.l - M.r - 20) * i) / (n - 1) + 10);
    const xy = points.map((p, i) => ({ ...p, x: x(i) })).filter((p) => Number.isFinite(p.value));
    if (xy.length && xy[0].lo != null) {
      const upper = xy.map((p) => `${p.x},${y(p.hi)}`), lower = xy.slice().reverse().map((p) => `${p.x},${y(p.lo)}`);
      el("polygon", { class: "band", points: upper.concat(lower).join(" "), "data-band": "" }, svg);
    }
    el("polyline", { class: "line", points: xy.map((p) => `${p.x},${y(p.value)}`).join(" ") }, svg);
    points.forEach((p, i) => text(svg, x(i), f.H - M.b + 14, p.label));
    for (const p of xy) {
      const c = el("circle", { class: "dot", cx: p.x, cy: y(p.value), r: 4, "data-point": "", "data-label": p.label, "data-value": p.value }, svg);
      el("title", {}, c).textContent = `${p.label}: ${fmt(p.value)}` + (p.lo != null ? ` [${fmt(p.lo)}, ${fmt(p.hi)}]` : "");
    }
    if (opts.xlabel) text(svg, (M.l + W - M.r) / 2, f.H - 6, opts.xlabel);
    return svg;
  }
  return { bar, line };
})();
