/**
 * The device state in IndexedDB (database `ldp-sdk:<namespace>`, version 1).
 *
 * Object stores: `meta` (the local lock id; after enrolment the server-chosen client id and
 * the device secret), `configs` (cached public configs, re-verified when
 * read), `budget` (per collection: units charged, reports made/accepted/...), `charges`
 * (the device ledger: one row per charged report, its accounting window and status;
 * index `by_window` [collection_id, window]), `outbox` (queued reports, auto-increment
 * `seq`; index `by_collection` [collection_id, seq]) and `rejected` (reports the server
 * refused for good, with the reason).
 *
 * `commitReport` reads the budget row and the window's charges, runs the plan (budget
 * check, then perturbation) and writes the outbox row, the charge and the budget row in
 * ONE `readwrite` transaction: all or nothing, and serialised with every other tab's
 * transaction on these stores, with `durability: "strict"` (on disk before `report()`
 * returns, so before the report can be sent). Only IndexedDB requests are awaited inside a
 * transaction (promise continuations run before the transaction can auto-commit).
 */

import {
  credentialOf,
  emptyBudget,
  rejectedRowOf,
  type BudgetRow,
  type BudgetSnapshot,
  type ChargeRow,
  type ChargeStatus,
  type ConfigRow,
  type DeviceCredential,
  type DeviceStore,
  type OutboxRow,
  type RejectedRow,
  type ReportPlan,
  type Settlement,
} from "./store.js";

const VERSION = 1;
const STORES = ["meta", "configs", "budget", "charges", "outbox", "rejected"] as const;

function req<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    tx.onerror = () => reject(tx.error);
  });
}

export function indexedDBAvailable(): boolean {
  return typeof (globalThis as { indexedDB?: unknown }).indexedDB === "object" && (globalThis as { indexedDB?: unknown }).indexedDB !== null;
}

export class IndexedDBStore implements DeviceStore {
  readonly backend = "indexeddb";

  private constructor(private readonly db: IDBDatabase) {}

  /** Open (creating or upgrading) the database of `namespace`. */
  static async open(namespace: string): Promise<IndexedDBStore> {
    const request = indexedDB.open(`ldp-sdk:${namespace}`, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta", { keyPath: "key" });
      if (!db.objectStoreNames.contains("configs")) db.createObjectStore("configs", { keyPath: "collection_id" });
      if (!db.objectStoreNames.contains("budget")) db.createObjectStore("budget", { keyPath: "collection_id" });
      if (!db.objectStoreNames.contains("charges")) {
        db.createObjectStore("charges", { keyPath: "report_id" }).createIndex("by_window", ["collection_id", "window"]);
      }
      if (!db.objectStoreNames.contains("outbox")) {
        const outbox = db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
        outbox.createIndex("by_collection", ["collection_id", "seq"]);
        outbox.createIndex("report_id", "report_id", { unique: true });
      }
      if (!db.objectStoreNames.contains("rejected")) {
        db.createObjectStore("rejected", { keyPath: "report_id" }).createIndex("by_collection", "collection_id");
      }
    };
    const db = await req(request);
    // another tab upgrading the schema: let it, this connection closes
    db.onversionchange = () => db.close();
    return new IndexedDBStore(db);
  }

  private tx(stores: readonly (typeof STORES)[number][], mode: IDBTransactionMode, durability: "default" | "strict" = "default"): IDBTransaction {
    return this.db.transaction(stores as string[], mode, { durability });
  }

  async meta(key: string, create: () => string): Promise<string> {
    const tx = this.tx(["meta"], "readwrite");
    const finished = done(tx);
    const store = tx.objectStore("meta");
    const found = (await req(store.get(key))) as { key: string; value: string } | undefined;
    let value = found?.value;
    if (value === undefined) {
      value = create();
      store.put({ key, value });
    }
    await finished;
    return value;
  }

  async device(): Promise<DeviceCredential | null> {
    const tx = this.tx(["meta"], "readonly");
    const store = tx.objectStore("meta");
    const rows = (await Promise.all([req(store.get("device_client_id")), req(store.get("device_secret"))])) as Array<
      { key: string; value: string } | undefined
    >;
    return credentialOf({ device_client_id: rows[0]?.value, device_secret: rows[1]?.value });
  }

  async setDevice(credential: DeviceCredential): Promise<DeviceCredential> {
    const tx = this.tx(["meta"], "readwrite", "strict");
    const finished = done(tx);
    const store = tx.objectStore("meta");
    const rows = (await Promise.all([req(store.get("device_client_id")), req(store.get("device_secret"))])) as Array<
      { key: string; value: string } | undefined
    >;
    const have = credentialOf({ device_client_id: rows[0]?.value, device_secret: rows[1]?.value });
    if (have === null) {
      store.put({ key: "device_client_id", value: credential.clientId });
      store.put({ key: "device_secret", value: credential.secret });
    }
    await finished;
    return have ?? credential;
  }

  async forgetDevice(clientId: string): Promise<void> {
    const tx = this.tx(["meta"], "readwrite", "strict");
    const finished = done(tx);
    const store = tx.objectStore("meta");
    const row = (await req(store.get("device_client_id"))) as { key: string; value: string } | undefined;
    if (row?.value === clientId) {
      store.delete("device_client_id");
      store.delete("device_secret");
    }
    await finished;
  }

  async getConfig(collectionId: string): Promise<ConfigRow | null> {
    const row = await req(this.tx(["configs"], "readonly").objectStore("configs").get(collectionId));
    return (row as ConfigRow | undefined) ?? null;
  }

  async putConfig(row: ConfigRow): Promise<void> {
    const tx = this.tx(["configs"], "readwrite");
    tx.objectStore("configs").put(row);
    await done(tx);
  }

  async commitReport(collectionId: string, window: number, plan: ReportPlan): Promise<OutboxRow> {
    // strict: flushed to disk before the report can be sent, as the Python SDK's synchronous=FULL
    // (a charge lost in an OS crash after its report left would under-count the budget)
    const tx = this.tx(["budget", "charges", "outbox"], "readwrite", "strict");
    const finished = done(tx);
    finished.catch(() => undefined); // observed below, or superseded by the plan's error
    try {
      const budgetStore = tx.objectStore("budget");
      const budget = ((await req(budgetStore.get(collectionId))) as BudgetRow | undefined) ?? emptyBudget(collectionId);
      const charges = (await req(
        tx.objectStore("charges").index("by_window").getAll(IDBKeyRange.only([collectionId, window])),
      )) as ChargeRow[];
      const windowUnits = charges.reduce((sum, c) => sum + c.units, 0);
      const { outbox, charge } = plan(budget.units, windowUnits); // may throw: the transaction is aborted
      const fresh: OutboxRow = { ...outbox };
      delete fresh.seq;
      const seq = (await req(tx.objectStore("outbox").add(fresh))) as number;
      if (charge) tx.objectStore("charges").add(charge);
      budgetStore.put({ ...budget, units: budget.units + outbox.units, reports: budget.reports + 1 });
      await finished;
      return { ...fresh, seq };
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // already finished or aborted
      }
      throw error;
    }
  }

  async nextBatch(collectionId: string, now: number, limit: number): Promise<OutboxRow[]> {
    const index = this.tx(["outbox"], "readonly").objectStore("outbox").index("by_collection");
    const range = IDBKeyRange.bound([collectionId, -Infinity], [collectionId, Infinity]);
    const out: OutboxRow[] = [];
    return new Promise((resolve, reject) => {
      const cursor = index.openCursor(range);
      cursor.onerror = () => reject(cursor.error);
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (c === null || out.length >= limit) {
          resolve(out);
          return;
        }
        const row = c.value as OutboxRow;
        if (row.next_attempt_at <= now) out.push(row);
        c.continue();
      };
    });
  }

  async outboxCollections(): Promise<string[]> {
    const rows = (await req(this.tx(["outbox"], "readonly").objectStore("outbox").getAll())) as OutboxRow[];
    return [...new Set(rows.map((r) => r.collection_id))].sort();
  }

  async settle(collectionId: string, settlements: Settlement[]): Promise<void> {
    const tx = this.tx(["budget", "charges", "outbox", "rejected"], "readwrite");
    const finished = done(tx);
    const outbox = tx.objectStore("outbox");
    const charges = tx.objectStore("charges");
    const budgetStore = tx.objectStore("budget");
    const budget = ((await req(budgetStore.get(collectionId))) as BudgetRow | undefined) ?? emptyBudget(collectionId);
    for (const st of settlements) {
      const stored = (await req(outbox.get(st.row.seq as number))) as OutboxRow | undefined;
      if (stored === undefined) continue; // settled already (e.g. by a keepalive answer)
      const charge = (await req(charges.get(stored.report_id))) as ChargeRow | undefined;
      if (st.kind === "delivered") {
        outbox.delete(stored.seq as number);
        if (charge) charges.put({ ...charge, status: "acknowledged" });
        if (st.status === "accepted") budget.accepted += 1;
        else budget.duplicates += 1;
      } else if (st.kind === "rejected") {
        outbox.delete(stored.seq as number);
        tx.objectStore("rejected").put(rejectedRowOf(stored, st.reason, st.detail, st.at));
        if (charge) charges.put({ ...charge, status: "rejected" });
        budget.rejected += 1;
      } else {
        outbox.put({ ...stored, attempts: stored.attempts + 1, next_attempt_at: st.nextAttemptAt, last_error: st.lastError.slice(0, 500) });
      }
    }
    budgetStore.put(budget);
    await finished;
  }

  async noteError(rows: OutboxRow[], problem: string): Promise<void> {
    const tx = this.tx(["outbox"], "readwrite");
    const finished = done(tx);
    const outbox = tx.objectStore("outbox");
    for (const row of rows) {
      const stored = (await req(outbox.get(row.seq as number))) as OutboxRow | undefined;
      if (stored) outbox.put({ ...stored, attempts: stored.attempts + 1, last_error: problem.slice(0, 500) });
    }
    await finished;
  }

  async budget(collectionId: string, window: number): Promise<BudgetSnapshot> {
    const tx = this.tx(["budget", "charges"], "readonly");
    const row = ((await req(tx.objectStore("budget").get(collectionId))) as BudgetRow | undefined) ?? emptyBudget(collectionId);
    const range = IDBKeyRange.bound([collectionId, -Infinity], [collectionId, Infinity]);
    const charges = (await req(tx.objectStore("charges").index("by_window").getAll(range))) as ChargeRow[];
    const byStatus: Record<ChargeStatus, number> = { queued: 0, acknowledged: 0, rejected: 0 };
    let windowUnits = 0;
    for (const c of charges) {
      byStatus[c.status] += c.units;
      if (c.window === window) windowUnits += c.units;
    }
    return { row, windowUnits, byStatus };
  }

  async pending(collectionId?: string): Promise<number> {
    const store = this.tx(["outbox"], "readonly").objectStore("outbox");
    if (collectionId === undefined) return req(store.count());
    return req(store.index("by_collection").count(IDBKeyRange.bound([collectionId, -Infinity], [collectionId, Infinity])));
  }

  async rejected(collectionId?: string, limit = 1000): Promise<RejectedRow[]> {
    const store = this.tx(["rejected"], "readonly").objectStore("rejected");
    const rows = (await req(collectionId === undefined ? store.getAll() : store.index("by_collection").getAll(collectionId))) as RejectedRow[];
    return rows.sort((a, b) => b.rejected_at - a.rejected_at || (a.report_id < b.report_id ? -1 : 1)).slice(0, limit);
  }

  close(): void {
    this.db.close();
  }
}
