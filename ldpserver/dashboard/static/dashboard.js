/* LDP dashboard: analyst and auditor views. All data comes from the role-checked JSON
   API, called with the key typed into the page (kept in sessionStorage only). A 403 is
   shown as "not permitted for this role" and nothing else is drawn for that part. */
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  const KEY = "ldpDashboardKey";
  const state = { key: sessionStorage.getItem(KEY) || "", collections: [], busy: 0, gen: 0 };
  const params = new URLSearchParams(location.search);

  function h(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) node.append(kid instanceof Node ? kid : document.createTextNode(String(kid ?? "")));
    return node;
  }
  const num = (v, d = 4) => (v === null || v === undefined ? "—" : typeof v === "number" ? +v.toFixed(d) + "" : String(v));
  function table(headers, rows, rowAttrs) {
    return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.map((r, i) => h("tr", rowAttrs ? rowAttrs(i) : {}, r.map((c) =>
        h("td", { class: typeof c === "number" ? "num" : null }, c instanceof Node ? c : typeof c === "number" ? num(c) : c ?? "—"))))));
  }
  const card = (title, ...kids) => h("div", { class: "card" }, h("h2", {}, title), ...kids);
  const denied = (what) => h("p", { class: "denied", "data-denied": what }, `${what}: not permitted for this role`);

  class ApiError extends Error {
    constructor(status, body) { super(body?.detail || `HTTP ${status}`); this.status = status; this.body = body; }
  }
  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" }, cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch (_) { /* empty */ }
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }
  /* calls api(); a 403 becomes null (the caller shows the denial), anything else rethrows */
  async function maybe(path) {
    try { return await api(path); } catch (e) { if (e.status === 403) return null; throw e; }
  }
  function status(msg, error) {
    const s = $("#status");
    s.textContent = msg || "";
    s.className = error ? "error" : "";
  }
  const view = () => (location.hash === "#auditor" ? "auditor" : "analyst");
  const current = () => state.collections.find((c) => c.id === $("#collection").value);

  async function run(task) {
    const gen = ++state.gen;
    document.body.dataset.state = "loading";
    try {
      await task(() => gen !== state.gen);
      if (gen === state.gen) status("");
    } catch (e) {
      if (gen === state.gen) status(e.status === 401 ? "key not accepted (401): " + e.message : "error: " + e.message, true);
    } finally {
      if (gen === state.gen) document.body.dataset.state = "ready";
    }
  }

  async function loadCollections() {
    if (!state.key) { status("enter an API key"); document.body.dataset.state = "ready"; return; }
    await run(async (stale) => {
      const body = await api("/v1/collections");
      if (stale()) return;
      state.collections = body.items || body;
      const sel = $("#collection"), want = sel.value || params.get("collection");
      sel.replaceChildren(...state.collections.map((c) => h("option", { value: c.id }, `${c.name} (${c.kind}, ${c.id})`)));
      if (want && state.collections.some((c) => c.id === want)) sel.value = want;
      await renderInto(stale);
    });
  }
  const render = () => run(renderInto);

  async function renderInto(stale) {
    const v = view();
    $("#view-analyst").hidden = v !== "analyst";
    $("#view-auditor").hidden = v !== "auditor";
    $("#tab-analyst").classList.toggle("active", v === "analyst");
    $("#tab-auditor").classList.toggle("active", v === "auditor");
    const col = current();
    $("#collection-meta").textContent = col ? `config ${col.config_hash}` : "";
    $("#collection-meta").dataset.configHash = col ? col.config_hash : "";
    if (!col) { $("#analyst-body").replaceChildren(); $("#auditor-body").replaceChildren(); return; }
    if (v === "analyst") await renderAnalyst(col, stale); else await renderAuditor(col, stale);
  }

  // ---------------------------------------------------------------- analyst view
  async function renderAnalyst(col, stale) {
    const out = $("#analyst-body"), info = $("#release-info");
    out.replaceChildren(); info.replaceChildren();
    const log = await maybe(`/v1/collections/${col.id}/releases?limit=500`);
    if (stale()) return;
    if (log === null) { out.append(denied("releases")); return; }
    const releases = log.items;
    const relSel = $("#release"), keep = relSel.dataset.collection === col.id ? relSel.value : "";
    relSel.dataset.collection = col.id;
    relSel.replaceChildren(...releases.slice().reverse().map((r) => h("option", { value: r.number }, `#${r.number} (epoch ${r.epoch})`)));
    if (!releases.length) { out.append(h("p", {}, "no release yet")); return; }
    if (keep && releases.some((r) => String(r.number) === keep)) relSel.value = keep;
    const rel = releases.find((r) => String(r.number) === relSel.value);
    info.append(h("span", { id: "release-number", "data-release": rel.number }, `release #${rel.number}`),
      ` · epoch ${rel.epoch} · released ${rel.released_at} · config `,
      h("span", { id: "release-config-hash" }, rel.config_hash), ` · sha256 ${rel.sha256.slice(0, 16)}…`);
    const scope = $("#scope").value;
    const isHH = col.kind === "heavy_hitters";
    const q = `release=${rel.number}&scope=${scope}&limit=10000`;
    const est = await maybe(`/v1/collections/${col.id}/${isHH ? "heavy-hitters" : "estimates"}?${q}`);
    if (stale()) return;
    if (est === null) { out.append(denied("estimates")); return; }
    const rows = est.items;
    const withheld = rows.filter((r) => r.status !== "released");
    if (withheld.length && withheld.length === rows.length) {
      out.append(card("Estimates", h("p", { "data-withheld": "" }, `withheld: ${withheld[0].reason}`)));
    } else if (isHH) {
      const body = await maybe(`/v1/collections/${col.id}/releases/${rel.number}`);
      if (stale()) return;
      heavyHitters(out, rows, body, scope);
    } else if (col.kind === "multidim") {
      marginals(out, rows);
    } else {
      const items = rows.map((r) => ({ label: String(r.item), value: r.frequency, lo: r.ci_lower, hi: r.ci_upper }));
      out.append(card(`Estimates (${scope}, 95 % CI)`, Charts.bar(items, { id: "est-chart", width: 720, xlabel: "item" }),
        h("p", { class: "info" }, `participation (noisy count): ${num(rows[0]?.participation, 0)}`)));
    }
    await timeSeries(out, col, rows, scope, stale);
  }

  // significance of a heavy-hitter scope (release body): level, correction, candidates tested and withheld
  function significanceNote(body, scope) {
    const s = body?.scopes?.find((x) => x.scope === scope && x.status === "released")?.estimates?.significance;
    if (!s) return null;
    return h("p", { class: "info", "data-hh-significance": "" },
      `significant at α = ${s.alpha} after ${s.correction === "holm" ? "Holm's" : s.correction} correction: ` +
      `${s.published} published of ${s.tested} candidates tested (${s.withheld} withheld` +
      (s.invalid_dropped ? `, ${s.invalid_dropped} invalid dropped` : "") + ")" +
      (s.published === 0 ? " — nothing significant" : "") +
      // known candidates: the dictionary the release estimated and how its screen chose
      (s.dictionary ? `; dictionary of ${s.dictionary} items (${String(s.dictionary_sha256).slice(0, 19)}…), ` +
        `screen: ${s.screen.chosen_buckets} of ${s.screen.buckets} buckets chosen (${s.screen.rule})` : ""));
  }

  function heavyHitters(out, rows, body, scope) {
    const global = rows.filter((r) => r.party === null && r.status === "released");
    const parties = [...new Set(rows.filter((r) => r.party !== null).map((r) => r.party))];
    const hhTable = (list, party) => table(["rank", "item", "frequency", "95 % CI", "p (Holm)", "consistent"],
      list.map((r) => [r.rank, String(r.item), r.frequency, `[${num(r.ci_lower)}, ${num(r.ci_upper)}]`,
        r.p_value === null || r.p_value === undefined ? "—" : r.p_value.toExponential(2), r.postprocessed]),
      () => ({ "data-hh-row": "", "data-party": party || "" }));
    const note = significanceNote(body, scope);
    const c = card("Heavy hitters (global)",
      Charts.bar(global.map((r) => ({ label: String(r.item), value: r.frequency, lo: r.ci_lower, hi: r.ci_upper })),
        { id: "hh-chart", width: 520, xlabel: "item" }), hhTable(global, ""), ...(note ? [note] : []));
    out.append(c);
    if (parties.length) {
      out.append(card("Heavy hitters per party", h("div", { class: "grid" }, parties.map((p) => {
        const list = rows.filter((r) => r.party === p && r.status === "released");
        return h("div", { "data-party-block": p }, h("h3", {}, `party ${p}`), hhTable(list, p));
      }))));
    }
  }

  function marginals(out, rows) {
    const attrs = [...new Set(rows.map((r) => r.attribute))];
    out.append(card("Marginals (95 % CI)", h("div", { class: "grid" }, attrs.map((a) => {
      const list = rows.filter((r) => r.attribute === a && r.status === "released");
      const svg = Charts.bar(list.map((r) => ({ label: String(r.item), value: r.frequency, lo: r.ci_lower, hi: r.ci_upper })),
        { title: `attribute ${a}`, width: 420, height: 200 });
      svg.setAttribute("data-marginal", a);
      return list.length ? svg : h("p", {}, `attribute ${a}: missing`);
    }))));
  }

  async function timeSeries(out, col, rows, scope, stale) {
    const isMD = col.kind === "multidim";
    const sel = h("select", { id: "ts-item" });
    const opts = [];
    for (const r of rows) {
      if (r.item === null || r.item === undefined || (col.kind === "heavy_hitters" && r.party !== null)) continue;
      const value = isMD ? `${r.attribute}:${r.item}` : String(r.item);
      if (!opts.includes(value)) opts.push(value);
    }
    if (!opts.length) return;
    sel.append(...opts.map((o) => h("option", { value: o }, isMD ? `attribute ${o.split(":")[0]}, value ${o.split(":")[1]}` : o)));
    const prev = sessionStorage.getItem("ldpTsItem:" + col.id);
    if (prev && opts.includes(prev)) sel.value = prev;
    const box = h("div", {});
    const c = card("Time series of one item across releases", h("label", {}, "item ", sel), box);
    out.append(c);
    const draw = async () => {
      sessionStorage.setItem("ldpTsItem:" + col.id, sel.value);
      const [attr, item] = isMD ? sel.value.split(":") : [null, sel.value];
      const q = `item=${encodeURIComponent(item)}&scope=${scope}&limit=1000` + (isMD ? `&attribute=${attr}` : "");
      const ts = await maybe(`/v1/collections/${col.id}/timeseries?${q}`);
      if (stale()) return;
      if (ts === null) { box.replaceChildren(denied("time series")); return; }
      const pts = ts.points.map((p) => ({ label: `#${p.release}`, value: p.status === "released" ? p.frequency : null, lo: p.ci_lower, hi: p.ci_upper }));
      box.replaceChildren(Charts.line(pts, { id: "ts-chart", width: 720, xlabel: "release (one point per released epoch)" }),
        h("p", { class: "info" }, `${ts.points.length} releases; ${pts.filter((p) => p.value === null).length} without a value (withheld / not in top)`));
    };
    sel.addEventListener("change", () => run(async (st) => { stale = st; await draw(); }));
    await draw();
  }

  // ---------------------------------------------------------------- auditor view
  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, name, out);
      else out.push([name, Array.isArray(v) ? JSON.stringify(v) : v]);
    }
    return out;
  }

  async function renderAuditor(col, stale) {
    const out = $("#auditor-body");
    out.replaceChildren();
    const summary = await maybe(`/v1/audit/summary?collection=${col.id}&bins=10`);
    if (stale()) return;
    if (summary === null) { out.append(denied("audit")); return; }
    const [rej, verify, log] = await Promise.all([
      maybe(`/v1/audit/rejections?collection=${col.id}`),
      maybe(`/v1/audit/verify?collection=${col.id}`),
      maybe(`/v1/collections/${col.id}/releases?limit=500`),
    ]);
    if (stale()) return;

    // privacy parameters
    const p = col.privacy || {}, cfg = col.config || {}, budget = cfg.budget || {};
    const details = p.details || {};
    const derived = flatten(details.parameters || details.statement?.parameters || {}, "", []);
    out.append(card("Privacy parameters",
      table(["parameter", "value"], [
        ["ε declared (per report)", p.epsilon_declared], ["ε computed", p.epsilon_computed],
        ["calculator", p.calculator], ["neighbouring notion", p.neighbouring],
        ["charge per unit", `${num(p.charge?.epsilon, 6)} per ${p.charge?.unit}`],
        ["ε record / attribute", `${num(p.epsilon_record, 6)} / ${num(p.epsilon_attribute, 6)}`],
        ["mechanism", details.mechanism || cfg.mechanism?.mechanism || cfg.mechanism?.protocol],
        ["memo policy", budget.memoized ? `memoized: ε∞ ${num(budget.epsilon_per_memo)} per new memo on the device, max memos ${p.max_memos ?? "—"}; server: ${num(p.charge?.lifetime_epsilon)} per device at its first report` : "not memoized (every report charged)"],
        ["cap lifetime / per window", `${budget.cap_lifetime} / ${budget.cap_per_window ?? "—"} (window ${budget.window_epochs ?? 1} epochs)`],
        ...derived.map(([k, v]) => [`derived ${k}`, v]),
      ], (i) => ({ "data-param": "" })),
      h("p", { class: "info" }, details.note || "")));

    // budget distribution vs cap
    const hist = summary.histogram, top = hist.length ? hist[hist.length - 1].upper : summary.cap_lifetime;
    out.append(card("Budget spent per device (ε) against the cap",
      Charts.bar(hist.map((b) => ({ label: num(b.upper, 2), value: b.devices, over: b.lower >= summary.cap_lifetime,
        title: `(${num(b.lower)}, ${num(b.upper)}]: ${b.devices} devices` })),
        { id: "budget-chart", width: 620, xlabel: "ε spent (bin upper edge)",
          marker: { name: "cap", at: Math.min(1, summary.cap_lifetime / top), label: `cap ${summary.cap_lifetime}` } }),
      table(["devices", "reports", "ledger rows", "p50", "p90", "p99", "max", "cap", "max over cap?", "max per window"],
        [[summary.devices, summary.reports_accepted, summary.ledger_rows, summary.quantiles.p50, summary.quantiles.p90,
          summary.quantiles.p99, summary.max_spent, summary.cap_lifetime, summary.max_over_cap ? "YES" : "no", summary.max_window_spent]])));

    // chain verification
    const vbox = card("Ledger chain verification");
    if (verify === null) vbox.append(denied("verify"));
    else {
      const chain = verify.chains[0];
      vbox.append(h("p", { id: "verify-result", "data-ok": verify.ok ? "true" : "false", class: verify.ok ? "ok" : "bad" },
        !verify.ok ? "chain verification FAILED" : verify.complete === false
          ? `chain verified: OK for its first ${chain?.rows ?? 0} rows (the rest: ldp audit verify, or follow next_cursor)`
          : "chain verified: OK"),
        table(["rows", "head seq", "head hash", "first bad", "checked at"],
          [[chain?.rows ?? 0, chain?.head_seq ?? "—", h("span", { class: "mono" }, chain?.head_hash ?? "—"),
            chain?.first_bad ? `seq ${chain.first_bad.seq}: ${chain.first_bad.problem}` : "none", verify.checked_at]]));
    }
    out.append(vbox);

    // rejection counters
    const rbox = card("Rejection counters");
    if (rej === null) rbox.append(denied("rejections"));
    else rbox.append(h("p", { id: "rejections-total", "data-total": rej.total }, `total rejected: ${rej.total}`),
      table(["reason", "count", "last"], rej.items.map((r) => [r.reason, r.count, r.last_at]), (i) => ({ "data-rejection": rej.items[i].reason })));
    out.append(rbox);

    // release log
    const lbox = card("Release log");
    if (log === null) lbox.append(denied("release log"));
    else lbox.append(table(["#", "epoch", "released at", "trigger", "post-processing", "config hash", "sha256"],
      log.items.map((r) => [r.number, r.epoch, r.released_at, r.trigger, r.postprocessing,
        h("span", { class: "mono" }, r.config_hash), h("span", { class: "mono" }, r.sha256.slice(0, 16) + "…")]),
      () => ({ "data-release-row": "" })));
    out.append(lbox);
  }

  // ---------------------------------------------------------------- wiring
  $("#key").value = state.key ? "••••••••" : "";
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("#key").value.trim();
    if (v && !v.startsWith("••")) { state.key = v; sessionStorage.setItem(KEY, v); }
    clearData();  // nothing seen with the previous key stays on screen
    $("#key").value = state.key ? "••••••••" : "";
    loadCollections();
  });
  function clearData() {
    state.gen++;
    state.collections = [];
    for (const sel of ["#collection", "#release", "#analyst-body", "#auditor-body", "#release-info"]) $(sel).replaceChildren();
    $("#collection-meta").textContent = "";
  }
  $("#forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY); state.key = ""; $("#key").value = "";
    clearData(); render();
    status("key forgotten");
  });
  $("#collection").addEventListener("change", render);
  $("#release").addEventListener("change", render);
  $("#scope").addEventListener("change", render);
  window.addEventListener("hashchange", render);
  loadCollections();
})();
