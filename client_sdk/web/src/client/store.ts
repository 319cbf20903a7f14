/**
 * The device's state: the device ledger (budget and charges), the outbox, the reports the
 * server refused, and the cached configs — behind one interface with three back ends:
 *
 * * {@link IndexedDBStore} (idb.ts, the default in browsers): charge + enqueue commit in
 *   **one IndexedDB transaction** (`readwrite` over budget, charges and outbox), so a
 *   report is either charged and queued, or neither; transactions of other tabs on the
 *   same stores are serialised by the browser, so two tabs cannot both spend the last unit;
 * * {@link DocumentStore} over `localStorage` (fallback where IndexedDB is unavailable):
 *   the whole state is one JSON document written with one `setItem` (atomic); tabs are
 *   serialised with the Web Locks API where the browser has it (else a write of another
 *   tab in between could be lost — the budget check is then per tab);
 * * {@link DocumentStore} in memory (tests, or a page that must not persist anything).
 *
 * Rows use the Python SDK's column names (client_sdk/client/store.py).
 */

export interface OutboxRow {
  seq?: number;
  report_id: string;
  collection_id: string;
  config_hash: string;
  epoch: number;
  /** the wire payload as compact JSON text */
  payload: string;
  memo_count: number | null;
  units: number;
  /** Unix seconds */
  created_at: number;
  attempts: number;
  /** Unix seconds; the report is not sent before */
  next_attempt_at: number;
  last_error: string | null;
}

export type ChargeStatus = "queued" | "acknowledged" | "rejected";

export interface ChargeRow {
  report_id: string;
  collection_id: string;
  epoch: number;
  window: number;
  units: number;
  epsilon: number;
  memo_count: number | null;
  created_at: number;
  status: ChargeStatus;
}

export interface RejectedRow {
  report_id: string;
  collection_id: string;
  config_hash: string;
  epoch: number;
  payload: string;
  memo_count: number | null;
  units: number;
  created_at: number;
  rejected_at: number;
  reason: string;
  detail: string | null;
}

export interface BudgetRow {
  collection_id: string;
  units: number;
  memo_count: number;
  reports: number;
  accepted: number;
  duplicates: number;
  rejected: number;
}

export interface ConfigRow {
  collection_id: string;
  kind: string;
  /** canonical JSON of the config */
  config: string;
  config_hash: string;
  fetched_at: number;
}

/** What became of one outbox row after a server answer. */
export type Settlement =
  | { kind: "delivered"; row: OutboxRow; status: "accepted" | "duplicate" }
  | { kind: "rejected"; row: OutboxRow; reason: string; detail: string | null; at: number }
  | { kind: "deferred"; row: OutboxRow; nextAttemptAt: number; lastError: string };

/** Decides a report inside the storage transaction: throws to abort (nothing is written). */
export type ReportPlan = (unitsTotal: number, windowUnits: number) => { outbox: OutboxRow; charge: ChargeRow | null };

export interface BudgetSnapshot {
  row: BudgetRow;
  windowUnits: number;
  /** units per charge status */
  byStatus: Record<ChargeStatus, number>;
}

/** What enrolment (POST /v1/devices) gave this device: kept with its state, never logged. */
export interface DeviceCredential {
  clientId: string;
  secret: string;
}

export interface DeviceStore {
  readonly backend: "indexeddb" | "localstorage" | "memory" | string;
  /** A device value (client id, ...): read, or created by `create` once. */
  meta(key: string, create: () => string): Promise<string>;
  /** The enrolment credential, or null before the first enrolment. */
  device(): Promise<DeviceCredential | null>;
  /** Keep a fresh credential unless another tab stored one first (then that one is returned). */
  setDevice(credential: DeviceCredential): Promise<DeviceCredential>;
  /** Drop the credential if it is still `clientId` (the server no longer knows it). */
  forgetDevice(clientId: string): Promise<void>;
  getConfig(collectionId: string): Promise<ConfigRow | null>;
  putConfig(row: ConfigRow): Promise<void>;
  /** Budget check + charge + enqueue, atomically; returns the queued row (with its seq). */
  commitReport(collectionId: string, window: number, plan: ReportPlan): Promise<OutboxRow>;
  /** Up to `limit` queued reports due at `now` (Unix seconds), oldest first. */
  nextBatch(collectionId: string, now: number, limit: number): Promise<OutboxRow[]>;
  /** Collections with queued reports. */
  outboxCollections(): Promise<string[]>;
  /** Apply server verdicts in one transaction; rows already settled are skipped (idempotent). */
  settle(collectionId: string, settlements: Settlement[]): Promise<void>;
  /** Count a failed attempt on queued rows. */
  noteError(rows: OutboxRow[], problem: string): Promise<void>;
  budget(collectionId: string, window: number): Promise<BudgetSnapshot>;
  pending(collectionId?: string): Promise<number>;
  rejected(collectionId?: string, limit?: number): Promise<RejectedRow[]>;
  close(): void;
}

export function credentialOf(meta: Record<string, string | undefined>): DeviceCredential | null {
  const clientId = meta.device_client_id;
  const secret = meta.device_secret;
  return clientId !== undefined && secret !== undefined ? { clientId, secret } : null;
}

export function emptyBudget(collectionId: string): BudgetRow {
  return { collection_id: collectionId, units: 0, memo_count: 0, reports: 0, accepted: 0, duplicates: 0, rejected: 0 };
}

export function rejectedRowOf(row: OutboxRow, reason: string, detail: string | null, at: number): RejectedRow {
  return {
    report_id: row.report_id,
    collection_id: row.collection_id,
    config_hash: row.config_hash,
    epoch: row.epoch,
    payload: row.payload,
    memo_count: row.memo_count,
    units: row.units,
    created_at: row.created_at,
    rejected_at: at,
    reason,
    detail,
  };
}

// --- the document store (localStorage, memory) ----------------------------------------------

interface State {
  version: 1;
  meta: Record<string, string>;
  configs: Record<string, ConfigRow>;
  budget: Record<string, BudgetRow>;
  charges: ChargeRow[];
  outbox: OutboxRow[];
  rejected: RejectedRow[];
  nextSeq: number;
}

function emptyState(): State {
  return { version: 1, meta: {}, configs: {}, budget: {}, charges: [], outbox: [], rejected: [], nextSeq: 1 };
}

/** Where a document store keeps its one document. */
export interface DocumentBackend {
  readonly name: string;
  read(): State | null;
  write(state: State): void;
  /** Run `fn` exclusively (across tabs, where the back end can). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** A `Storage`-like object (`localStorage`). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

function webLocks(): LockManagerLike | null {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  return locks && typeof locks.request === "function" ? locks : null;
}

/** In this tab, one operation at a time (a promise chain). */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** The state in this page's memory (lost on reload). */
export class MemoryBackend implements DocumentBackend {
  readonly name = "memory";
  private state: State | null = null;
  private readonly queue = new Queue();
  read(): State | null {
    return this.state;
  }
  write(state: State): void {
    this.state = state;
  }
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}

/** The state as one JSON document under one `localStorage` key. */
export class LocalStorageBackend implements DocumentBackend {
  readonly name = "localstorage";
  private readonly queue = new Queue();
  /** the last text read or written, parsed: reused while the stored text is unchanged */
  private cache: { text: string; state: State } | null = null;
  constructor(
    private readonly storage: StorageLike,
    private readonly key: string,
  ) {}
  read(): State | null {
    const text = this.storage.getItem(this.key);
    if (text === null) return null;
    if (this.cache === null || this.cache.text !== text) this.cache = { text, state: JSON.parse(text) as State };
    return this.cache.state;
  }
  write(state: State): void {
    const text = JSON.stringify(state);
    try {
      this.storage.setItem(this.key, text); // one call: all or nothing
    } catch (error) {
      this.cache = null; // the parsed copy was changed but not stored: read the stored text again
      throw error;
    }
    this.cache = { text, state };
  }
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const locks = webLocks();
    return this.queue.run(() => (locks ? locks.request(`ldp-sdk:${this.key}`, fn) : fn()));
  }
}

/** The whole device state in one document, rewritten on every change. */
export class DocumentStore implements DeviceStore {
  constructor(private readonly doc: DocumentBackend) {}

  get backend(): string {
    return this.doc.name;
  }

  private load(): State {
    return this.doc.read() ?? emptyState();
  }

  private async update<T>(fn: (state: State) => T): Promise<T> {
    return this.doc.exclusive(async () => {
      const state = this.load();
      const out = fn(state); // throws before any write: nothing is stored
      this.doc.write(state);
      return out;
    });
  }

  private async view<T>(fn: (state: State) => T): Promise<T> {
    return this.doc.exclusive(async () => fn(this.load()));
  }

  async meta(key: string, create: () => string): Promise<string> {
    const found = await this.view((s) => s.meta[key]);
    if (found !== undefined) return found;
    return this.update((s) => (s.meta[key] ??= create()));
  }

  device(): Promise<DeviceCredential | null> {
    return this.view((s) => credentialOf(s.meta));
  }

  setDevice(credential: DeviceCredential): Promise<DeviceCredential> {
    return this.update((s) => {
      const have = credentialOf(s.meta);
      if (have !== null) return have;
      s.meta.device_client_id = credential.clientId;
      s.meta.device_secret = credential.secret;
      return credential;
    });
  }

  forgetDevice(clientId: string): Promise<void> {
    return this.update((s) => {
      if (s.meta.device_client_id === clientId) {
        delete s.meta.device_client_id;
        delete s.meta.device_secret;
      }
    });
  }

  getConfig(collectionId: string): Promise<ConfigRow | null> {
    return this.view((s) => s.configs[collectionId] ?? null);
  }

  putConfig(row: ConfigRow): Promise<void> {
    return this.update((s) => {
      s.configs[row.collection_id] = row;
    });
  }

  commitReport(collectionId: string, window: number, plan: ReportPlan): Promise<OutboxRow> {
    return this.update((s) => {
      const budget = s.budget[collectionId] ?? emptyBudget(collectionId);
      const windowUnits = s.charges
        .filter((c) => c.collection_id === collectionId && c.window === window)
        .reduce((sum, c) => sum + c.units, 0);
      const { outbox, charge } = plan(budget.units, windowUnits);
      const row = { ...outbox, seq: s.nextSeq++ };
      s.outbox.push(row);
      if (charge) s.charges.push(charge);
      s.budget[collectionId] = { ...budget, units: budget.units + row.units, reports: budget.reports + 1 };
      return row;
    });
  }

  nextBatch(collectionId: string, now: number, limit: number): Promise<OutboxRow[]> {
    return this.view((s) =>
      s.outbox
        .filter((r) => r.collection_id === collectionId && r.next_attempt_at <= now)
        .sort((a, b) => (a.seq as number) - (b.seq as number))
        .slice(0, limit),
    );
  }

  outboxCollections(): Promise<string[]> {
    return this.view((s) => [...new Set(s.outbox.map((r) => r.collection_id))].sort());
  }

  settle(collectionId: string, settlements: Settlement[]): Promise<void> {
    return this.update((s) => {
      const budget = s.budget[collectionId] ?? emptyBudget(collectionId);
      for (const st of settlements) {
        const i = s.outbox.findIndex((r) => r.seq === st.row.seq);
        if (i < 0) continue; // settled already (e.g. by a keepalive answer)
        const charge = s.charges.find((c) => c.report_id === st.row.report_id);
        if (st.kind === "delivered") {
          s.outbox.splice(i, 1);
          if (charge) charge.status = "acknowledged";
          if (st.status === "accepted") budget.accepted += 1;
          else budget.duplicates += 1;
        } else if (st.kind === "rejected") {
          const [stored] = s.outbox.splice(i, 1);
          s.rejected = s.rejected.filter((r) => r.report_id !== st.row.report_id);
          s.rejected.push(rejectedRowOf(stored, st.reason, st.detail, st.at));
          if (charge) charge.status = "rejected";
          budget.rejected += 1;
        } else {
          const r = s.outbox[i];
          r.attempts += 1;
          r.next_attempt_at = st.nextAttemptAt;
          r.last_error = st.lastError.slice(0, 500);
        }
      }
      s.budget[collectionId] = budget;
    });
  }

  noteError(rows: OutboxRow[], problem: string): Promise<void> {
    const seqs = new Set(rows.map((r) => r.seq));
    return this.update((s) => {
      for (const r of s.outbox) {
        if (seqs.has(r.seq)) {
          r.attempts += 1;
          r.last_error = problem.slice(0, 500);
        }
      }
    });
  }

  budget(collectionId: string, window: number): Promise<BudgetSnapshot> {
    return this.view((s) => {
      const charges = s.charges.filter((c) => c.collection_id === collectionId);
      const byStatus: Record<ChargeStatus, number> = { queued: 0, acknowledged: 0, rejected: 0 };
      let windowUnits = 0;
      for (const c of charges) {
        byStatus[c.status] += c.units;
        if (c.window === window) windowUnits += c.units;
      }
      return { row: s.budget[collectionId] ?? emptyBudget(collectionId), windowUnits, byStatus };
    });
  }

  pending(collectionId?: string): Promise<number> {
    return this.view((s) => s.outbox.filter((r) => collectionId === undefined || r.collection_id === collectionId).length);
  }

  rejected(collectionId?: string, limit = 1000): Promise<RejectedRow[]> {
    return this.view((s) =>
      s.rejected
        .filter((r) => collectionId === undefined || r.collection_id === collectionId)
        .sort((a, b) => b.rejected_at - a.rejected_at || (a.report_id < b.report_id ? -1 : 1))
        .slice(0, limit),
    );
  }

  close(): void {}
}
