// The end-to-end page (tests/system/test_web_e2e.py): uses the built browser bundle (global
// LDP) against a live server on this page's origin. ?phase=main reports the plan's values
// to every collection (IndexedDB outbox), checks the device budget refusal, flushes and
// renders a summary; ?phase=hide queues reports and leaves them to the page-hide keepalive
// request; ?phase=after reopens the same device and flushes what is left. ?phase=cors
// (tests/system/test_web_cors.py): the page is on another origin than the server
// (plan.baseUrl): enrol, report and flush cross-origin.
/* global LDP */
(async () => {
  const phase = new URLSearchParams(location.search).get("phase") || "main";
  const out = { phase, done: false, errors: [] };
  window.__ldp = out;
  const el = (tag, attrs = {}, text = "") => Object.assign(document.createElement(tag), attrs, text ? { textContent: text } : {});
  try {
    const plan = await (await fetch("/plan.json", { cache: "no-store" })).json();
    const baseUrl = plan.baseUrl || location.origin;
    const client = await LDP.Client.open({ baseUrl, apiKey: plan.apiKey, namespace: plan.namespace, batchSize: 250 });
    client.installPageHideFlush();
    // clientId: null until the first flush enrols the device (then it persists across visits)
    Object.assign(out, { clientId: client.clientId, storage: client.storage, userAgent: navigator.userAgent });
    document.getElementById("meta").textContent =
      `phase ${phase} · device ${client.clientId} · storage ${client.storage} · bundle ${document.scripts[0].src}`;

    if (phase === "main") {
      const rows = [];
      out.collections = {};
      for (const c of plan.collections) {
        const cfg = await client.config(c.id);
        const epochs = new Set();
        const started = performance.now();
        for (const value of c.values) epochs.add((await client.report(c.id, value, c.party ? { party: c.party } : {})).epoch);
        const ms = performance.now() - started;
        out.collections[c.id] = { kind: cfg.kind, configHash: cfg.configHash, reported: c.values.length, epochs: [...epochs], reportMs: ms };
        rows.push([c.label, cfg.kind, cfg.protocol.name, c.values.length, (ms / c.values.length).toFixed(2), cfg.configHash.slice(0, 19) + "…"]);
      }
      // the device ledger refuses the report past the cap: nothing perturbed or queued
      const cap = plan.capCollection;
      let refused = null;
      for (let i = 0; i <= cap.allowed; i++) {
        try {
          await client.report(cap.id, i % 4);
        } catch (error) {
          refused = { name: error.constructor.name, scope: error.scope, units: error.units, maxUnits: error.maxUnits, message: error.message };
        }
      }
      out.refusal = { refused, pending: await client.pending(cap.id) };
      out.pendingBeforeFlush = await client.pending();
      const flush = await client.flush({ timeout: 60 });
      out.flush = flush.toJSON();
      out.clientId = client.clientId;
      out.pendingAfterFlush = await client.pending();
      out.budgets = {};
      for (const c of [...plan.collections, cap]) out.budgets[c.id] = await client.budget(c.id);

      const table = el("table");
      table.append(el("tr", {}, ""));
      table.firstChild.append(...["collection", "kind", "protocol", "reports", "ms / report", "config hash"].map((h) => el("th", {}, h)));
      for (const r of rows) {
        const tr = el("tr");
        tr.append(...r.map((x) => el("td", {}, String(x))));
        table.append(tr);
      }
      const summary = el("div");
      summary.append(
        el("div", { className: flush.ok ? "ok" : "bad" }, `flush: ${flush.accepted} accepted, ${flush.duplicates} duplicates, ` +
          `${flush.rejected} rejected in ${flush.requests} requests; ${out.pendingAfterFlush} still queued`),
        el("div", { className: refused ? "ok" : "bad" }, `device budget: report ${cap.allowed + 1} to a collection capped at ` +
          `${cap.allowed} reports refused on the device (${refused ? refused.name + ", " + refused.scope : "NOT refused"}); ` +
          `${out.refusal.pending} queued`),
      );
      const ledger = el("pre", {}, Object.entries(out.budgets).map(([id, b]) =>
        `${id}: spent ${b.lifetime.spent.toFixed(3)} of ${b.lifetime.cap} (units ${b.lifetime.units}/${b.lifetime.maxUnits}), ` +
        `acknowledged ${b.acknowledged.toFixed(3)}, pending ${b.pending}, rejected ${b.rejected}`).join("\n"));
      document.getElementById("out").append(table, summary, el("h3", {}, "device ledger (IndexedDB)"), ledger);
    } else if (phase === "hide") {
      const h = plan.hideCollection;
      out.receipts = [];
      for (const value of h.values) out.receipts.push((await client.report(h.id, value)).reportId);
      out.pending = await client.pending(h.id);
      document.getElementById("out").append(el("div", {}, `${out.pending} reports queued; leaving the page sends them (fetch keepalive)`));
    } else if (phase === "cors") {
      const c = plan.corsCollection;
      for (const value of c.values) await client.report(c.id, value);
      const flush = await client.flush({ timeout: plan.flushTimeout || 30 });
      out.flush = flush.toJSON();
      out.clientId = client.clientId;
      out.pendingAfterFlush = await client.pending();
      document.getElementById("out").append(el("div", {}, `${baseUrl}: ${JSON.stringify(out.flush)}`));
    } else if (phase === "after") {
      out.pendingBeforeFlush = await client.pending();
      const flush = await client.flush({ timeout: 30 });
      out.flush = flush.toJSON();
      out.pendingAfterFlush = await client.pending();
      document.getElementById("out").append(el("div", {}, JSON.stringify(out.flush)));
    }
  } catch (error) {
    out.errors.push(`${error && error.name}: ${error && error.message}\n${error && error.stack}`);
    document.getElementById("out").append(el("pre", { className: "bad" }, out.errors.join("\n")));
  }
  out.done = true;
})();
