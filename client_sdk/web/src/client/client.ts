/**
 * The browser runtime: `await Client.open({ baseUrl, apiKey })` — the rules of the Python
 * runtime (client_sdk/client/runtime.py) in a page:
 *
 * * `report(collectionId, value)` perturbs on the device (crypto.getRandomValues), checks and
 *   charges the device budget and queues the report — the check, the charge and the outbox
 *   row commit in one storage transaction (IndexedDB; store.ts) — then returns without
 *   network I/O (unless the collection's public config is not cached yet). When a cap would
 *   be passed it throws DeviceBudgetExceededError and nothing is drawn, stored or queued.
 *   The true value is never stored or sent.
 * * `flush()` sends the outbox in batches (`batchSize`), oldest first, with retries:
 *   exponential backoff with full jitter, or exactly what `Retry-After` says, each request
 *   bounded by `requestTimeout`; a `413` splits the batch. Per report: `accepted` and
 *   `duplicate` are success (the server dedupes by report_id, so a re-sent batch is safe);
 *   `epoch_in_future` and `kind_unavailable` wait and retry; `config_mismatch` refetches the
 *   config (the report cannot be re-targeted: kept as rejected unless the hash still
 *   matches); any other rejection is permanent and kept on the device with its reason
 *   (`rejectedReports()`). Network trouble never throws: the reports stay queued.
 * * Page hide: `installPageHideFlush()` sends the reports this page queued with
 *   `fetch(..., {keepalive: true})` on `pagehide` / `visibilitychange` → hidden. Not
 *   `navigator.sendBeacon`: a beacon cannot carry the `Authorization` header the server
 *   requires. The reports stay in the outbox until a flush sees them acknowledged (the
 *   server answers `duplicate` if the keepalive request got through), so nothing is lost if
 *   the page dies first.
 * * Device credential: the first flush enrols the device with the app's client key
 *   (`POST /v1/devices`): the server chooses the `client_id` and a device secret, kept with
 *   the device state (IndexedDB) and never logged. Every upload carries the secret
 *   (`"devices": {client_id: secret}`), so only this browser can spend its server-side
 *   budget. On `device_unauthenticated` (the server no longer knows the device, or the app's
 *   key changed) the client enrols again and re-sends under the new id; the local ledger
 *   keeps every charge. Cross-origin pages need the server's `LDP_CORS_ORIGINS`.
 * * Tabs: IndexedDB transactions serialise budget checks across tabs; a flush takes a Web
 *   Lock per collection where the browser has the Locks API (else two tabs may send the
 *   same report: the server counts it once).
 */

import { toHex } from "../sha256.js";
import { CollectionConfig } from "./config.js";
import {
  ClientClosedError,
  ConfigHashMismatchError,
  ConfigUnavailableError,
  DeviceBudgetExceededError,
  HTTPError,
  UnsupportedCollectionError,
} from "./errors.js";
import { IndexedDBStore, indexedDBAvailable } from "./idb.js";
import {
  DocumentStore,
  LocalStorageBackend,
  MemoryBackend,
  type ChargeRow,
  type DeviceCredential,
  type DeviceStore,
  type OutboxRow,
  type RejectedRow,
  type Settlement,
  type StorageLike,
} from "./store.js";

export const SDK_VERSION = "0.2.0"; // = package.json and client_sdk/_version.py (tests/unit/test_packaging.py)
/** The report envelope version sent: `{"wire":2,"reports":[...]}`, with nothing data-dependent besides the payload. */
export const ENVELOPE_VERSION = 2;
/** rejection reasons that may clear up by themselves: the report stays queued */
export const DEFERRED_REASONS: ReadonlySet<string> = new Set(["epoch_in_future", "kind_unavailable", "device_unauthenticated"]);
/** the server does not accept this device's credential: enrol again, then re-send */
export const DEVICE_UNAUTHENTICATED = "device_unauthenticated";
/** HTTP statuses worth retrying (with backoff, or after Retry-After) */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);
/** how often a report refused for config_mismatch is retried when the refetched config still matches it */
export const MAX_MISMATCH_RETRIES = 3;
export const MAX_RETRY_AFTER = 3600;
/** browsers cap the bodies of all in-flight keepalive requests at 64 KiB */
export const KEEPALIVE_BUDGET = 60_000;

/** Exponential backoff with full jitter (seconds): uniform(0, min(maxDelay, baseDelay·2^attempt)). */
export class RetryPolicy {
  readonly baseDelay: number;
  readonly maxDelay: number;
  readonly requestTimeout: number;

  constructor({ baseDelay = 0.5, maxDelay = 30.0, requestTimeout = 10.0 }: Partial<Pick<RetryPolicy, "baseDelay" | "maxDelay" | "requestTimeout">> = {}) {
    this.baseDelay = baseDelay;
    this.maxDelay = maxDelay;
    this.requestTimeout = requestTimeout;
  }

  backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelay, this.baseDelay * 2 ** Math.min(attempt, 30));
    return Math.random() * ceiling;
  }
}

export interface ReportReceipt {
  reportId: string;
  collectionId: string;
  epoch: number;
  window: number;
  units: number;
  epsilonCharged: number;
}

export interface Spend {
  spent: number;
  cap: number | null;
  remaining: number | null;
  units: number;
  maxUnits: number | null;
  remainingUnits: number | null;
}

/** The device ledger of one collection (as the Python SDK's BudgetStatus). */
export interface BudgetStatus {
  collectionId: string;
  unit: "report" | "memo";
  unitEpsilon: number;
  epoch: number;
  windowIndex: number;
  lifetime: Spend;
  window: Spend;
  /** epsilon the server accepted (its ledger holds exactly this for the device) */
  acknowledged: number;
  /** epsilon of reports still queued */
  pending: number;
  /** epsilon of reports the server refused (still counted: the report left the device) */
  rejected: number;
  acknowledgedUnits: number;
  reports: number;
  reportsAccepted: number;
  reportsDuplicate: number;
  reportsRejected: number;
}

/** What one flush did; `remaining` reports are still queued (nothing is dropped). */
export class FlushResult {
  accepted = 0;
  duplicates = 0;
  rejected = 0;
  deferred = 0;
  requests = 0;
  remaining = 0;
  timedOut = false;
  reasons: Record<string, number> = {};
  errors: string[] = [];

  /** Reports the server now holds (accepted now, or already: duplicates are success). */
  get delivered(): number {
    return this.accepted + this.duplicates;
  }

  get ok(): boolean {
    return this.remaining === 0 && this.errors.length === 0;
  }

  toJSON(): Record<string, unknown> {
    const { accepted, duplicates, rejected, deferred, requests, remaining, timedOut, reasons, errors } = this;
    return { accepted, duplicates, rejected, deferred, requests, remaining, timedOut, reasons, errors, delivered: this.delivered, ok: this.ok };
  }
}

export type StorageChoice = "auto" | "indexeddb" | "localstorage" | "memory" | DeviceStore;

export interface ClientOptions {
  /** the server, e.g. "https://ldp.example.com" (or "" for the page's own origin) */
  baseUrl: string;
  /** a client-role API key (sent as `Authorization: Bearer`) */
  apiKey?: string | null;
  /** default "auto": IndexedDB, else localStorage, else memory */
  storage?: StorageChoice;
  /** separates several devices/apps in one origin (IndexedDB database `ldp-sdk:<namespace>`) */
  namespace?: string;
  /** reports per POST, 1..5000 (default 500) */
  batchSize?: number;
  retry?: RetryPolicy | Partial<Pick<RetryPolicy, "baseDelay" | "maxDelay" | "requestTimeout">>;
  /** replaces globalThis.fetch */
  fetch?: typeof fetch;
  /** Unix milliseconds (default Date.now); decides each report's epoch */
  clock?: () => number;
  /** `localStorage` replacement for storage "localstorage" */
  localStorage?: StorageLike;
}

class Stop extends Error {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

function randomHex(bytes: number): string {
  const out = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(out);
  return toHex(out);
}

/** Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped; null if absent or bad. */
export function retryAfterSeconds(raw: string | null, nowMs: number = Date.now()): number | null {
  if (raw === null) return null;
  const text = raw.trim();
  let seconds = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(seconds)) {
    const when = Date.parse(text);
    if (Number.isNaN(when)) return null;
    seconds = (when - nowMs) / 1000;
  }
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER);
}

async function problemDetail(response: Response): Promise<[string, Record<string, unknown>]> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // no body
  }
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (body && typeof body === "object") {
      const detail = String(body.detail ?? body.title ?? text).slice(0, 500);
      return [detail, body];
    }
  } catch {
    // not JSON
  }
  return [text.slice(0, 200) || response.statusText || "no detail", {}];
}

async function openStore(choice: StorageChoice, namespace: string, storage?: StorageLike): Promise<DeviceStore> {
  if (typeof choice === "object") return choice;
  const local = storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
  if (choice === "indexeddb" || (choice === "auto" && indexedDBAvailable())) {
    try {
      return await IndexedDBStore.open(namespace);
    } catch (error) {
      if (choice === "indexeddb") throw error;
      // e.g. a private window that refuses IndexedDB: fall back
    }
  }
  if (choice === "localstorage" || (choice === "auto" && local)) {
    if (!local) throw new Error("localStorage is not available");
    try {
      local.getItem("ldp-sdk:probe");
      return new DocumentStore(new LocalStorageBackend(local, `ldp-sdk:${namespace}`));
    } catch (error) {
      if (choice === "localstorage") throw error;
    }
  }
  return new DocumentStore(new MemoryBackend());
}

export class Client {
  readonly baseUrl: string;
  readonly batchSize: number;
  readonly retry: RetryPolicy;
  readonly store: DeviceStore;
  lastFlush: FlushResult | null = null;
  private readonly apiKey: string | null;
  private readonly fetchImpl: typeof fetch;
  private readonly clock: () => number;
  private readonly configs = new Map<string, Promise<CollectionConfig>>();
  private closed = false;
  private flushing: Promise<FlushResult> | null = null;
  private autoFlush: ReturnType<typeof setInterval> | null = null;
  private readonly wakeups = new Set<() => void>();
  /** reports this page queued and not yet seen settled, for the page-hide request */
  private readonly recent = new Map<string, OutboxRow>();
  private readonly beaconed = new Set<string>();
  /** the enrolment credential (null before the first flush enrols) */
  private credential: DeviceCredential | null;
  /** names this device state's flush locks across tabs (local only, never sent) */
  private readonly localId: string;

  private constructor(options: ClientOptions, store: DeviceStore, localId: string, credential: DeviceCredential | null) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey ?? null;
    const size = options.batchSize ?? 500;
    if (!Number.isInteger(size) || size < 1 || size > 5000) throw new RangeError(`batchSize must lie in [1, 5000], got ${size}`);
    this.batchSize = size;
    this.retry = options.retry instanceof RetryPolicy ? options.retry : new RetryPolicy(options.retry ?? {});
    const f = options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (!f) throw new Error("fetch is not available: pass options.fetch");
    this.fetchImpl = f.bind(globalThis);
    this.clock = options.clock ?? (() => Date.now());
    this.store = store;
    this.localId = localId;
    this.credential = credential;
  }

  /** Open the device state (IndexedDB by default) and the runtime. */
  static async open(options: ClientOptions): Promise<Client> {
    const store = await openStore(options.storage ?? "auto", options.namespace ?? "default", options.localStorage);
    const localId = await store.meta("client_id", () => randomHex(16));
    return new Client(options, store, localId, await store.device());
  }

  /** The server-chosen pseudonymous id (the unit of privacy), or null before enrolment. */
  get clientId(): string | null {
    return this.credential?.clientId ?? null;
  }

  /** Enrol now if not enrolled yet (flush() does this by itself); returns the client id. */
  async enrol(options: { timeout?: number } = {}): Promise<string> {
    this.checkOpen();
    try {
      return (await this.ensureDevice(performance.now() + (options.timeout ?? 30) * 1000)).clientId;
    } catch (error) {
      if (error instanceof Stop) throw new HTTPError(0, `enrolment failed: ${error.message}`);
      throw error;
    }
  }

  /** The stored credential, or a new one from POST /v1/devices (429/5xx/network retried). */
  private async ensureDevice(deadline: number): Promise<DeviceCredential> {
    const stored = await this.store.device();
    if (stored !== null) {
      this.credential = stored;
      return stored;
    }
    const url = this.url("v1", "devices");
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Stop("client closed");
      const remaining = (deadline - performance.now()) / 1000;
      if (remaining <= 0) throw new Stop("timed out enrolling the device; reports kept in the outbox", true);
      let problem = "";
      let delay: number | null = null;
      let response: Response | null = null;
      try {
        response = await this.request("POST", url, '{"count":1}', Math.min(this.retry.requestTimeout, remaining));
      } catch (error) {
        problem = `enrolment request failed: ${(error as Error).name}: ${(error as Error).message}`;
      }
      if (response !== null) {
        if (response.status === 201) {
          let fresh: DeviceCredential | null = null;
          try {
            const doc = (await response.json()) as { devices?: Array<{ client_id?: unknown; device_secret?: unknown }> };
            const first = doc.devices?.[0];
            if (typeof first?.client_id === "string" && typeof first.device_secret === "string") {
              fresh = { clientId: first.client_id, secret: first.device_secret };
            }
          } catch {
            fresh = null;
          }
          if (fresh === null) throw new Stop("the enrolment answer is unreadable; reports kept in the outbox");
          this.credential = await this.store.setDevice(fresh);
          return this.credential;
        }
        const [detail] = await problemDetail(response);
        problem = `enrolment: HTTP ${response.status}: ${detail}`;
        if (!RETRYABLE_STATUSES.has(response.status)) throw new Stop(`${problem} (reports kept in the outbox)`);
        delay = retryAfterSeconds(response.headers.get("Retry-After"));
      }
      if (delay === null) delay = this.retry.backoff(attempt);
      if (delay > (deadline - performance.now()) / 1000) throw new Stop(`${problem}; next retry in ${delay.toFixed(1)}s is past the timeout`, true);
      if (!(await this.sleep(delay))) throw new Stop("client closed");
    }
  }

  /** "indexeddb", "localstorage" or "memory". */
  get storage(): string {
    return this.store.backend;
  }

  close(): void {
    this.closed = true;
    this.stopAutoFlush();
    for (const wake of this.wakeups) wake();
    this.store.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError("this Client is closed");
  }

  private headers(jsonBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (jsonBody) headers["Content-Type"] = "application/json";
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    return headers;
  }

  private url(...parts: string[]): string {
    return `${this.baseUrl}/${parts.map(encodeURIComponent).join("/")}`;
  }

  // --- configs ---------------------------------------------------------------------------

  /** The collection's verified public config: memory, then the device store, then the server. */
  config(collectionId: string): Promise<CollectionConfig> {
    this.checkOpen();
    let pending = this.configs.get(collectionId);
    if (pending === undefined) {
      pending = this.loadConfig(collectionId);
      this.configs.set(collectionId, pending);
      pending.catch(() => this.configs.delete(collectionId));
    }
    return pending;
  }

  private async loadConfig(collectionId: string): Promise<CollectionConfig> {
    const row = await this.store.getConfig(collectionId);
    if (row !== null) {
      try {
        return await CollectionConfig.fromCache(collectionId, row.config, row.config_hash);
      } catch {
        // a damaged cache entry: fetch it again
      }
    }
    return this.fetchConfig(collectionId);
  }

  /** Fetch the public config from the server, check its hash, cache it on the device. */
  async refreshConfig(collectionId: string): Promise<CollectionConfig> {
    this.checkOpen();
    const fresh = this.fetchConfig(collectionId);
    this.configs.set(collectionId, fresh);
    fresh.catch(() => this.configs.delete(collectionId));
    return fresh;
  }

  private async fetchConfig(collectionId: string): Promise<CollectionConfig> {
    let response: Response;
    try {
      response = await this.request("GET", this.url("v1", "collections", collectionId), null, this.retry.requestTimeout);
    } catch (error) {
      throw new ConfigUnavailableError(
        `collection '${collectionId}': the public config is not cached and the server is unreachable (${(error as Error).message}); nothing was perturbed`,
      );
    }
    if (response.status !== 200) {
      const [detail, problem] = await problemDetail(response);
      const err = new HTTPError(response.status, detail, problem);
      throw new ConfigUnavailableError(`collection '${collectionId}': fetching the public config failed (${err.message}); nothing was perturbed`);
    }
    const compiled = await CollectionConfig.fromServerText(collectionId, await response.text());
    await this.store.putConfig({
      collection_id: collectionId,
      kind: compiled.kind,
      config: compiled.canonical,
      config_hash: compiled.configHash,
      fetched_at: Date.now() / 1000,
    });
    return compiled;
  }

  private async request(method: string, url: string, body: string | null, timeoutSeconds: number, keepalive = false): Promise<Response> {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), Math.max(timeoutSeconds, 0.001) * 1000) : null;
    try {
      return await this.fetchImpl(url, {
        method,
        headers: this.headers(body !== null),
        body,
        keepalive,
        signal: controller?.signal,
        credentials: "omit",
        cache: "no-store",
      });
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  // --- reporting -------------------------------------------------------------------------

  /**
   * Perturb `value` now and queue the report durably; returns without network I/O (unless
   * the config must be fetched first). `value`: a value index (frequency), a tuple
   * (multidim), an item (heavy hitters; `party` for TAP/TAPS). Throws
   * DeviceBudgetExceededError when the charge would pass a cap (nothing drawn or stored).
   */
  async report(collectionId: string, value: unknown, options: { party?: unknown } = {}): Promise<ReportReceipt> {
    this.checkOpen();
    const cfg = await this.config(collectionId);
    const epoch = cfg.epochAt(this.clock());
    const window = cfg.windowOf(epoch);
    const policy = cfg.budget;
    const reportId = randomHex(16);
    const now = Date.now() / 1000;
    const row = await this.store.commitReport(collectionId, window, (unitsTotal, windowUnits) => {
      const units = 1;
      const unit = policy.unitEpsilon;
      if (unitsTotal + units > policy.maxUnitsLifetime) {
        throw new DeviceBudgetExceededError(collectionId, "lifetime", unitsTotal * unit, policy.capLifetime, units * unit, unitsTotal, policy.maxUnitsLifetime);
      }
      if (policy.maxUnitsWindow !== null && windowUnits + units > policy.maxUnitsWindow) {
        throw new DeviceBudgetExceededError(
          collectionId,
          "window",
          windowUnits * unit,
          policy.capPerWindow ?? 0,
          units * unit,
          windowUnits,
          policy.maxUnitsWindow,
          window,
        );
      }
      const payload = cfg.perturb(value, options.party); // drawn only once the budget allows it
      const outbox: OutboxRow = {
        report_id: reportId,
        collection_id: collectionId,
        config_hash: cfg.configHash,
        epoch,
        payload: JSON.stringify(payload),
        memo_count: null,
        units,
        created_at: now,
        attempts: 0,
        next_attempt_at: 0,
        last_error: null,
      };
      const charge: ChargeRow = {
        report_id: reportId,
        collection_id: collectionId,
        epoch,
        window,
        units,
        epsilon: units * unit,
        memo_count: null,
        created_at: now,
        status: "queued",
      };
      return { outbox, charge };
    });
    this.recent.set(row.report_id, row);
    return { reportId, collectionId, epoch, window, units: row.units, epsilonCharged: row.units * policy.unitEpsilon };
  }

  // --- budget and inspection ---------------------------------------------------------------

  /** Spent and remaining epsilon, per current window and over the lifetime. */
  async budget(collectionId: string): Promise<BudgetStatus> {
    const cfg = await this.config(collectionId);
    const policy = cfg.budget;
    const unit = policy.unitEpsilon;
    const epoch = cfg.epochAt(this.clock());
    const window = cfg.windowOf(epoch);
    const snap = await this.store.budget(collectionId, window);
    const spend = (units: number, cap: number | null, maxU: number | null): Spend => ({
      spent: units * unit,
      cap,
      remaining: cap === null ? null : Math.max(cap - units * unit, 0),
      units,
      maxUnits: maxU,
      remainingUnits: maxU === null ? null : Math.max(maxU - units, 0),
    });
    return {
      collectionId,
      unit: policy.unit,
      unitEpsilon: unit,
      epoch,
      windowIndex: window,
      lifetime: spend(snap.row.units, policy.capLifetime, policy.maxUnitsLifetime),
      window: spend(snap.windowUnits, policy.capPerWindow, policy.maxUnitsWindow),
      acknowledged: snap.byStatus.acknowledged * unit,
      pending: snap.byStatus.queued * unit,
      rejected: snap.byStatus.rejected * unit,
      acknowledgedUnits: snap.byStatus.acknowledged,
      reports: snap.row.reports,
      reportsAccepted: snap.row.accepted,
      reportsDuplicate: snap.row.duplicates,
      reportsRejected: snap.row.rejected,
    };
  }

  /** Reports waiting in the outbox. */
  pending(collectionId?: string): Promise<number> {
    return this.store.pending(collectionId);
  }

  /** Reports the server refused for good, newest first, with the reason (kept, never dropped). */
  rejectedReports(collectionId?: string, limit = 1000): Promise<RejectedRow[]> {
    return this.store.rejected(collectionId, limit);
  }

  // --- flushing ------------------------------------------------------------------------------

  /**
   * Send queued reports until `timeout` seconds have passed (default 30). Never throws for
   * network trouble: what could not be sent stays queued (`result.remaining`) and
   * `result.errors` says why. Concurrent calls share one flush.
   */
  flush(options: { timeout?: number; collectionId?: string } = {}): Promise<FlushResult> {
    this.checkOpen();
    if (this.flushing === null) {
      this.flushing = this.runFlush(options.timeout ?? 30, options.collectionId).finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  private async runFlush(timeout: number, only?: string): Promise<FlushResult> {
    const deadline = performance.now() + Math.max(timeout, 0) * 1000;
    const result = new FlushResult();
    let collections = await this.store.outboxCollections();
    if (only !== undefined) collections = collections.filter((c) => c === only);
    for (const cid of collections) {
      if (this.closed) {
        result.errors.push("client closed during flush");
        break;
      }
      const ran = await this.withLease(cid, async () => {
        try {
          await this.flushCollection(cid, deadline, result);
        } catch (error) {
          if (!(error instanceof Stop)) throw error;
          result.errors.push(`${cid}: ${error.message}`);
          result.timedOut = result.timedOut || error.timedOut;
        }
      });
      if (!ran) result.errors.push(`${cid}: another tab is flushing this collection`);
    }
    result.remaining = this.closed ? result.remaining : await this.store.pending();
    this.lastFlush = result;
    return result;
  }

  /** Run `fn` holding this collection's flush lock (Web Locks), if no other tab holds it. */
  private async withLease(cid: string, fn: () => Promise<void>): Promise<boolean> {
    const locks = (globalThis as { navigator?: { locks?: { request: (...a: unknown[]) => Promise<unknown> } } }).navigator?.locks;
    if (!locks || typeof locks.request !== "function") {
      await fn();
      return true;
    }
    let ran = false;
    await locks.request(`ldp-sdk-flush:${this.localId}:${cid}`, { ifAvailable: true }, async (lock: unknown) => {
      if (lock === null) return;
      ran = true;
      await fn();
    });
    return ran;
  }

  private async flushCollection(cid: string, deadline: number, result: FlushResult): Promise<void> {
    for (;;) {
      const rows = await this.store.nextBatch(cid, Date.now() / 1000, this.batchSize);
      if (rows.length === 0) return;
      await this.deliver(cid, rows, deadline, result);
    }
  }

  private async deliver(cid: string, rows: OutboxRow[], deadline: number, result: FlushResult): Promise<void> {
    let device = await this.ensureDevice(deadline);
    let outcome = await this.post(cid, rows, deadline, result, device);
    if (outcome !== null && outcome.some((r) => r.reason === DEVICE_UNAUTHENTICATED)) {
      // the server no longer knows this device (or the app's key changed): enrol again and
      // re-send once; a second refusal keeps the reports queued (deferred)
      await this.store.forgetDevice(device.clientId);
      this.credential = null;
      device = await this.ensureDevice(deadline);
      outcome = await this.post(cid, rows, deadline, result, device);
    }
    if (outcome === null) {
      // 413: too large
      if (rows.length === 1) {
        const detail = "the server refused this single report as too large (413)";
        await this.store.settle(cid, [{ kind: "rejected", row: rows[0], reason: "too_large", detail, at: Date.now() / 1000 }]);
        result.rejected += 1;
        result.reasons.too_large = (result.reasons.too_large ?? 0) + 1;
        this.forget([rows[0]]);
        return;
      }
      const half = rows.length >> 1;
      await this.deliver(cid, rows.slice(0, half), deadline, result);
      await this.deliver(cid, rows.slice(half), deadline, result);
      return;
    }
    await this.apply(cid, rows, outcome, result);
  }

  private body(rows: OutboxRow[], device: DeviceCredential): string {
    const reports = rows.map((row) => {
      // wire version 2: no memo_count (a memo count would tell the server when a device moved to a new value)
      return `{"report_id":${JSON.stringify(row.report_id)},"client_id":${JSON.stringify(device.clientId)},"config_hash":${JSON.stringify(row.config_hash)},"epoch":${row.epoch},"payload":${row.payload}}`;
    });
    const devices = `{${JSON.stringify(device.clientId)}:${JSON.stringify(device.secret)}}`;
    return `{"wire":${ENVELOPE_VERSION},"reports":[${reports.join(",")}],"devices":${devices}}`;
  }

  /** POST one batch until a 200 (its per-report results) or a 413 (null). */
  private async post(
    cid: string,
    rows: OutboxRow[],
    deadline: number,
    result: FlushResult,
    device: DeviceCredential,
  ): Promise<Array<Record<string, unknown>> | null> {
    const body = this.body(rows, device);
    const url = this.url("v1", "collections", cid, "reports");
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Stop("client closed");
      const remaining = (deadline - performance.now()) / 1000;
      if (remaining <= 0) throw new Stop(`timed out with ${rows.length} report(s) of this batch still queued`, true);
      let problem = "";
      let delay: number | null = null;
      result.requests += 1;
      let response: Response | null = null;
      try {
        response = await this.request("POST", url, body, Math.min(this.retry.requestTimeout, remaining));
      } catch (error) {
        problem = `request failed: ${(error as Error).name}: ${(error as Error).message}`;
      }
      if (response !== null) {
        if (response.status === 200) {
          const parsed = await readResults(response, rows);
          if (parsed !== null) return parsed;
          problem = "HTTP 200 with an unreadable body";
        } else if (response.status === 413) {
          return null;
        } else if (RETRYABLE_STATUSES.has(response.status)) {
          const [detail] = await problemDetail(response);
          problem = `HTTP ${response.status}: ${detail}`;
          delay = retryAfterSeconds(response.headers.get("Retry-After"));
        } else {
          const [detail] = await problemDetail(response);
          await this.store.noteError(rows, `HTTP ${response.status}: ${detail}`);
          throw new Stop(`HTTP ${response.status}: ${detail} (reports kept in the outbox)`);
        }
      }
      if (delay === null) delay = this.retry.backoff(attempt);
      if (delay > (deadline - performance.now()) / 1000) {
        await this.store.noteError(rows, problem);
        throw new Stop(`${problem}; next retry in ${delay.toFixed(1)}s is past the timeout`, true);
      }
      if (!(await this.sleep(delay))) throw new Stop("client closed");
    }
  }

  /** Wait `seconds`; false if the client was closed meanwhile. */
  private sleep(seconds: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakeups.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.wakeups.delete(wake);
        resolve(!this.closed);
      }, seconds * 1000);
      this.wakeups.add(wake);
    });
  }

  private forget(rows: OutboxRow[]): void {
    for (const row of rows) {
      this.recent.delete(row.report_id);
      this.beaconed.delete(row.report_id);
    }
  }

  private async apply(cid: string, rows: OutboxRow[], results: Array<Record<string, unknown>>, result: FlushResult): Promise<void> {
    const now = Date.now() / 1000;
    const settlements: Settlement[] = [];
    const mismatched: OutboxRow[] = [];
    const settled: OutboxRow[] = [];
    rows.forEach((row, i) => {
      const res = results[i];
      const status = res.status;
      const reason = typeof res.reason === "string" ? res.reason : null;
      const detail = typeof res.detail === "string" ? res.detail : null;
      if (status === "accepted" || status === "duplicate") {
        settlements.push({ kind: "delivered", row, status });
        settled.push(row);
        if (status === "accepted") result.accepted += 1;
        else result.duplicates += 1;
      } else if (status === "rejected" && reason === "config_mismatch") {
        mismatched.push(row);
      } else if (status === "rejected" && reason !== null && DEFERRED_REASONS.has(reason)) {
        const delay = this.retry.backoff(row.attempts + 2) + 1.0;
        settlements.push({ kind: "deferred", row, nextAttemptAt: now + delay, lastError: `${reason}: ${detail}` });
        result.deferred += 1;
      } else if (status === "rejected") {
        const code = reason ?? "rejected";
        settlements.push({ kind: "rejected", row, reason: code, detail, at: now });
        settled.push(row);
        result.rejected += 1;
        result.reasons[code] = (result.reasons[code] ?? 0) + 1;
      } else {
        settlements.push({ kind: "deferred", row, nextAttemptAt: now + 1.0, lastError: `unexpected result ${JSON.stringify(res)}` });
        result.deferred += 1;
      }
    });
    await this.store.settle(cid, settlements);
    this.forget(settled);
    if (mismatched.length) await this.handleMismatch(cid, mismatched, result);
  }

  /** The server says the config hash is not the collection's: refetch the config. Reports
   *  perturbed under another config cannot be re-targeted; they are kept as rejected. */
  private async handleMismatch(cid: string, rows: OutboxRow[], result: FlushResult): Promise<void> {
    let fresh: CollectionConfig | null = null;
    let why = "";
    try {
      fresh = await this.refreshConfig(cid);
    } catch (error) {
      if (!(error instanceof ConfigUnavailableError || error instanceof ConfigHashMismatchError || error instanceof UnsupportedCollectionError)) {
        throw error;
      }
      why = error.message;
    }
    const now = Date.now() / 1000;
    const settlements: Settlement[] = [];
    for (const row of rows) {
      if (fresh === null) {
        settlements.push({ kind: "deferred", row, nextAttemptAt: now + 5.0, lastError: `config_mismatch; config refetch failed: ${why}` });
        result.deferred += 1;
      } else if (fresh.configHash === row.config_hash && row.attempts + 1 < MAX_MISMATCH_RETRIES) {
        settlements.push({ kind: "deferred", row, nextAttemptAt: now + 1.0, lastError: "config_mismatch, but the refetched config still has this hash" });
        result.deferred += 1;
      } else {
        const detail =
          `perturbed under config ${row.config_hash}; the collection's config is now ${fresh.configHash} ` +
          "(refetched). The report cannot be re-targeted to another config and is kept here.";
        settlements.push({ kind: "rejected", row, reason: "config_mismatch", detail, at: now });
        result.rejected += 1;
        result.reasons.config_mismatch = (result.reasons.config_mismatch ?? 0) + 1;
        this.forget([row]);
      }
    }
    await this.store.settle(cid, settlements);
  }

  // --- background and page-hide flushing -------------------------------------------------------

  /** Flush every `intervalMs` (each flush bounded by the interval), and when the browser comes online. */
  startAutoFlush(intervalMs = 30_000): void {
    this.checkOpen();
    if (this.autoFlush !== null) return;
    const tick = () => {
      if (!this.closed && this.flushing === null) this.flush({ timeout: intervalMs / 1000 }).catch(() => undefined);
    };
    this.autoFlush = setInterval(tick, intervalMs);
    const target = globalThis as { addEventListener?: (t: string, f: () => void) => void };
    target.addEventListener?.("online", tick);
  }

  stopAutoFlush(): void {
    if (this.autoFlush !== null) clearInterval(this.autoFlush);
    this.autoFlush = null;
  }

  /**
   * Send what this page queued with `fetch(..., {keepalive: true})` (at most ~60 KB of
   * request bodies, the browsers' keepalive limit), without waiting; returns the number of
   * reports sent. The reports stay in the outbox: a later flush sees them as `duplicate`
   * (success) if these requests got through. If the page lives on, the answers are applied.
   */
  flushOnPageHide(): number {
    const device = this.credential;
    if (this.closed || device === null) return 0; // not enrolled yet: the next visit's flush enrols
    const byCollection = new Map<string, OutboxRow[]>();
    for (const row of this.recent.values()) {
      if (this.beaconed.has(row.report_id)) continue;
      const list = byCollection.get(row.collection_id) ?? [];
      list.push(row);
      byCollection.set(row.collection_id, list);
    }
    let budget = KEEPALIVE_BUDGET;
    let sent = 0;
    for (const [cid, all] of byCollection) {
      for (let start = 0; start < all.length; ) {
        let end = Math.min(all.length, start + this.batchSize);
        let body = this.body(all.slice(start, end), device);
        while (body.length > budget && end - start > 1) {
          end = start + ((end - start) >> 1);
          body = this.body(all.slice(start, end), device);
        }
        if (body.length > budget) return sent;
        const rows = all.slice(start, end);
        budget -= body.length;
        for (const row of rows) this.beaconed.add(row.report_id);
        sent += rows.length;
        this.request("POST", this.url("v1", "collections", cid, "reports"), body, this.retry.requestTimeout, true)
          .then(async (response) => {
            const parsed = response.status === 200 ? await readResults(response, rows) : null;
            if (parsed !== null && !this.closed) await this.apply(cid, rows, parsed, new FlushResult());
          })
          .catch(() => undefined); // the page is going away, or the network failed: the outbox keeps them
        start = end;
      }
    }
    return sent;
  }

  /**
   * Call {@link flushOnPageHide} on `pagehide` and when the page becomes hidden. Returns a
   * function that removes the listeners.
   */
  installPageHideFlush(target: { addEventListener: (t: string, f: () => void) => void; removeEventListener: (t: string, f: () => void) => void } = globalThis as never): () => void {
    const onHide = () => {
      this.flushOnPageHide();
    };
    const onVisibility = () => {
      const doc = (globalThis as { document?: { visibilityState?: string } }).document;
      if (doc?.visibilityState === "hidden") this.flushOnPageHide();
    };
    target.addEventListener("pagehide", onHide);
    const doc = (globalThis as { document?: typeof target }).document;
    doc?.addEventListener("visibilitychange", onVisibility);
    return () => {
      target.removeEventListener("pagehide", onHide);
      doc?.removeEventListener("visibilitychange", onVisibility);
    };
  }
}

/** The per-report results of a 200, checked against the batch (null if unusable). */
async function readResults(response: Response, rows: OutboxRow[]): Promise<Array<Record<string, unknown>> | null> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    return null;
  }
  const results = body !== null && typeof body === "object" ? (body as { results?: unknown }).results : undefined;
  if (!Array.isArray(results) || results.length !== rows.length) return null;
  for (let i = 0; i < rows.length; i++) {
    const res = results[i] as Record<string, unknown>;
    if (res === null || typeof res !== "object" || !(res.report_id === rows[i].report_id || res.report_id === null || res.report_id === undefined)) {
      return null;
    }
  }
  return results as Array<Record<string, unknown>>;
}
