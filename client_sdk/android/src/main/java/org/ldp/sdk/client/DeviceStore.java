package org.ldp.sdk.client;

import java.util.List;

/**
 * The device's durable state: the verified config cache, the budget ledger (one charge per
 * report, never deleted), the outbox, the reports the server refused, flush leases, and for
 * memoized (longitudinal) collections the memo table and the device states.
 *
 * <p>Contract every implementation keeps (the Python runtime's, client_sdk/client/store.py):
 * <ul>
 *   <li>{@link #commitReport} is atomic and durable before it returns: the budget check (done by
 *       the {@link ChargeDecider} on the totals read inside the same transaction), the charge and
 *       the outbox row are written together or not at all, and concurrent callers in this or
 *       another process are serialised so that two of them can never both pass a cap;
 *   <li>a report leaves the outbox only through {@link #settle} (delivered or rejected); its
 *       charge stays, with its status;
 *   <li>{@link #commitMemoReport} reads and writes the memos of the collection in the same
 *       transaction as the charge and the outbox row: a new memo (the permanent randomized
 *       response, keyed by an HMAC of its memo key, never the value) and a new device state are
 *       stored with the report that first uses them, and a stored memo is never overwritten;
 *   <li>all methods are thread-safe.
 * </ul>
 *
 * <p>Implementations: {@link FileJournalStore} (default; an append-only journal with fsync),
 * {@link JdbcStore} (SQLite through JDBC, e.g. sqlite-jdbc on the JVM). On Android, implement
 * this interface over {@code android.database.sqlite.SQLiteDatabase} with the schema of
 * {@link JdbcStore#SCHEMA} and {@code beginTransactionNonExclusive()} / {@code
 * setTransactionSuccessful()} around {@link #commitReport} (docs/android-sdk.md).
 */
public interface DeviceStore extends AutoCloseable {
  /** A stored config: its canonical JSON and hash (re-verified when loaded). */
  final class StoredConfig {
    public final String collectionId;
    public final String kind;
    public final String canonical;
    public final String configHash;

    public StoredConfig(String collectionId, String kind, String canonical, String configHash) {
      this.collectionId = collectionId;
      this.kind = kind;
      this.canonical = canonical;
      this.configHash = configHash;
    }
  }

  /** One queued report. */
  final class OutboxRow {
    public final String reportId;
    public final String collectionId;
    public final String configHash;
    public final long epoch;
    /** the wire payload as JSON text */
    public final String payload;
    public final int units;
    public final double createdAt;
    public final int attempts;
    public final double nextAttemptAt;
    public final String lastError;

    public OutboxRow(String reportId, String collectionId, String configHash, long epoch, String payload, int units, double createdAt,
        int attempts, double nextAttemptAt, String lastError) {
      this.reportId = reportId;
      this.collectionId = collectionId;
      this.configHash = configHash;
      this.epoch = epoch;
      this.payload = payload;
      this.units = units;
      this.createdAt = createdAt;
      this.attempts = attempts;
      this.nextAttemptAt = nextAttemptAt;
      this.lastError = lastError;
    }

    OutboxRow withAttempt(double next, String error) {
      return new OutboxRow(reportId, collectionId, configHash, epoch, payload, units, createdAt, attempts + 1, next, error);
    }
  }

  /** A report the server refused for good, kept with its reason. */
  final class RejectedRow {
    public final String reportId;
    public final String collectionId;
    public final long epoch;
    public final String payload;
    public final String reason;
    public final String detail;
    public final double rejectedAt;

    public RejectedRow(String reportId, String collectionId, long epoch, String payload, String reason, String detail, double rejectedAt) {
      this.reportId = reportId;
      this.collectionId = collectionId;
      this.epoch = epoch;
      this.payload = payload;
      this.reason = reason;
      this.detail = detail;
      this.rejectedAt = rejectedAt;
    }
  }

  /** What became of one sent report. */
  final class Settlement {
    public enum Kind { DELIVERED, REJECTED, DEFERRED }

    public final Kind kind;
    public final OutboxRow row;
    /** "accepted" or "duplicate" (DELIVERED) */
    public final String status;
    public final String reason;
    public final String detail;
    public final double at;

    private Settlement(Kind kind, OutboxRow row, String status, String reason, String detail, double at) {
      this.kind = kind;
      this.row = row;
      this.status = status;
      this.reason = reason;
      this.detail = detail;
      this.at = at;
    }

    public static Settlement delivered(OutboxRow row, String status) {
      return new Settlement(Kind.DELIVERED, row, status, null, null, 0);
    }

    public static Settlement rejected(OutboxRow row, String reason, String detail, double at) {
      return new Settlement(Kind.REJECTED, row, null, reason, detail, at);
    }

    /** Stays queued; retried at {@code nextAttemptAt} (seconds). */
    public static Settlement deferred(OutboxRow row, double nextAttemptAt, String lastError) {
      return new Settlement(Kind.DEFERRED, row, null, null, lastError, nextAttemptAt);
    }
  }

  /** Ledger totals of one collection. */
  final class BudgetSnapshot {
    public long units;
    public long windowUnits;
    public long queuedUnits;
    public long acknowledgedUnits;
    public long rejectedUnits;
    public long reports;
    public long accepted;
    public long duplicates;
    public long rejected;
  }

  /** Decides, on the totals read inside the transaction, whether a report may be charged. */
  interface ChargeDecider {
    /**
     * @param unitsTotal units already charged for the collection (lifetime)
     * @param windowUnits units already charged in the report's window
     * @return the outbox row to store (its charge is {@code row.units}); throw to abort
     */
    OutboxRow decide(long unitsTotal, long windowUnits);
  }

  /** The memo table of one collection (and config hash), read inside a report transaction. */
  interface Memos {
    /** The memo record stored under {@code digest} (an HMAC of the memo key), or null. */
    String get(String digest);

    /** The device state of the collection under this config hash, or null. */
    String state();

    /** How many memos the collection holds. */
    long count();
  }

  /** What a memoized report stores: its outbox row and charge, and the memo and state it created (or null). */
  final class MemoDecision {
    public final OutboxRow row;
    public final String digest;
    /** the new memo record (JSON), or null when the report reused a stored memo */
    public final String newMemo;
    /** the new device state (JSON), or null when it existed */
    public final String newState;

    public MemoDecision(OutboxRow row, String digest, String newMemo, String newState) {
      this.row = row;
      this.digest = digest;
      this.newMemo = newMemo;
      this.newState = newState;
    }
  }

  /** Decides a memoized report on the totals and the memo table read inside the transaction. */
  interface MemoChargeDecider {
    MemoDecision decide(long unitsTotal, long windowUnits, Memos memos);
  }

  /**
   * Atomically: read the totals and the collection's memos, let {@code decider} check them and
   * draw, store its row, charge, and new memo / device state. Stores without memo support
   * refuse memoized collections.
   */
  default OutboxRow commitMemoReport(String collectionId, String configHash, long window, MemoChargeDecider decider) {
    throw new UnsupportedOperationException(getClass().getSimpleName() + " keeps no memos: memoized (longitudinal) collections need a store that does");
  }

  /** Memos held for a collection (0 for stores without memo support). */
  default long memoCount(String collectionId) {
    return 0;
  }

  /** The value of a meta key, created (once, atomically) by {@code create} if absent (a null from {@code create}: nothing stored, null returned). */
  String meta(String key, java.util.function.Supplier<String> create);

  /** Set (or, with null, remove) a meta value: the device credential lives here. */
  void setMeta(String key, String value);

  StoredConfig getConfig(String collectionId);

  void putConfig(StoredConfig config);

  /** Atomically: read the totals, let {@code decider} check them, store its row and charge. */
  OutboxRow commitReport(String collectionId, long window, ChargeDecider decider);

  BudgetSnapshot budget(String collectionId, long window);

  /** Collections with queued reports, in order of their oldest report. */
  List<String> outboxCollections();

  /** Up to {@code limit} queued reports due at {@code now} (seconds), oldest first. */
  List<OutboxRow> nextBatch(String collectionId, double now, int limit);

  void settle(String collectionId, List<Settlement> settlements);

  /** Count one failed attempt of each row and remember why. */
  void noteError(List<OutboxRow> rows, String error);

  /** Queued reports (of one collection, or all when null). */
  int pending(String collectionId);

  /** Refused reports, newest first (of one collection, or all when null). */
  List<RejectedRow> rejected(String collectionId, int limit);

  /** Take the flush lease of a collection unless another owner holds an unexpired one. */
  boolean acquireLease(String collectionId, String owner, double now, double until);

  void releaseLease(String collectionId, String owner);

  @Override
  void close();
}
