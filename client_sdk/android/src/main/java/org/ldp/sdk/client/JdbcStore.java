package org.ldp.sdk.client;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.ldp.sdk.LdpException;

/**
 * The device store in SQLite through JDBC (on the JVM: sqlite-jdbc, {@code
 * new JdbcStore("jdbc:sqlite:/path/ldp-device.sqlite3")}). WAL with {@code synchronous=FULL}: a
 * committed report survives a crash or power loss. Every write is one {@code BEGIN IMMEDIATE}
 * transaction, so processes sharing the file queue on SQLite's write lock instead of
 * overspending; threads share one connection under a lock. The same schema ({@link #SCHEMA})
 * and transactions port to Android's {@code SQLiteDatabase} (docs/android-sdk.md).
 */
public final class JdbcStore implements DeviceStore {
  public static final String[] SCHEMA = {
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS configs (cid TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, report_id TEXT NOT NULL UNIQUE, cid TEXT NOT NULL,"
        + " hash TEXT NOT NULL, epoch INTEGER NOT NULL, payload TEXT NOT NULL, units INTEGER NOT NULL, created REAL NOT NULL,"
        + " attempts INTEGER NOT NULL DEFAULT 0, next REAL NOT NULL DEFAULT 0, error TEXT)",
    "CREATE INDEX IF NOT EXISTS outbox_cid ON outbox (cid, seq)",
    "CREATE TABLE IF NOT EXISTS charges (report_id TEXT PRIMARY KEY, cid TEXT NOT NULL, win INTEGER NOT NULL, units INTEGER NOT NULL,"
        + " status TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS charges_cid ON charges (cid, win)",
    "CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY AUTOINCREMENT, report_id TEXT NOT NULL, cid TEXT NOT NULL,"
        + " epoch INTEGER NOT NULL, payload TEXT NOT NULL, reason TEXT, detail TEXT, at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (cid TEXT PRIMARY KEY, reports INTEGER NOT NULL DEFAULT 0, accepted INTEGER NOT NULL DEFAULT 0,"
        + " duplicates INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS leases (cid TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL)",
    // memoized collections: the permanent responses keyed by an HMAC of the memo key (never the value)
    "CREATE TABLE IF NOT EXISTS memos (cid TEXT NOT NULL, key_hash TEXT NOT NULL, hash TEXT NOT NULL, memo TEXT NOT NULL, created REAL NOT NULL,"
        + " PRIMARY KEY (cid, key_hash))",
    "CREATE TABLE IF NOT EXISTS device_states (cid TEXT NOT NULL, hash TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (cid, hash))",
  };

  private final Connection connection;
  private final Object lock = new Object();

  public JdbcStore(String jdbcUrl) {
    try {
      connection = DriverManager.getConnection(jdbcUrl);
      try (Statement s = connection.createStatement()) {
        s.execute("PRAGMA busy_timeout = 30000");
        s.execute("PRAGMA journal_mode = WAL");
        s.execute("PRAGMA synchronous = FULL");
      }
      connection.setAutoCommit(true);
      write(c -> {
        try (Statement s = c.createStatement()) {
          for (String sql : SCHEMA) s.execute(sql);
        }
        return null;
      });
    } catch (SQLException e) {
      throw new LdpException("cannot open the device store " + jdbcUrl + ": " + e.getMessage(), e);
    }
  }

  private interface Body<T> {
    T run(Connection c) throws SQLException;
  }

  /** One BEGIN IMMEDIATE transaction (the write lock first: no lost update between processes). */
  private <T> T write(Body<T> body) {
    synchronized (lock) {
      try {
        try (Statement s = connection.createStatement()) {
          s.execute("BEGIN IMMEDIATE");
        }
        boolean ok = false;
        try {
          T result = body.run(connection);
          try (Statement s = connection.createStatement()) {
            s.execute("COMMIT");
          }
          ok = true;
          return result;
        } finally {
          if (!ok) {
            try (Statement s = connection.createStatement()) {
              s.execute("ROLLBACK");
            } catch (SQLException ignored) {
              // the original failure is the one to report
            }
          }
        }
      } catch (SQLException e) {
        throw new LdpException("device store failed: " + e.getMessage(), e);
      }
    }
  }

  private <T> T read(Body<T> body) {
    synchronized (lock) {
      try {
        return body.run(connection);
      } catch (SQLException e) {
        throw new LdpException("device store failed: " + e.getMessage(), e);
      }
    }
  }

  private static PreparedStatement prepare(Connection c, String sql, Object... args) throws SQLException {
    PreparedStatement p = c.prepareStatement(sql);
    for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
    return p;
  }

  private static long scalar(Connection c, String sql, Object... args) throws SQLException {
    try (PreparedStatement p = prepare(c, sql, args); ResultSet r = p.executeQuery()) {
      return r.next() ? r.getLong(1) : 0;
    }
  }

  private static void exec(Connection c, String sql, Object... args) throws SQLException {
    try (PreparedStatement p = prepare(c, sql, args)) {
      p.executeUpdate();
    }
  }

  @Override
  public String meta(String key, Supplier<String> create) {
    return write(c -> {
      try (PreparedStatement p = prepare(c, "SELECT v FROM meta WHERE k = ?", key); ResultSet r = p.executeQuery()) {
        if (r.next()) return r.getString(1);
      }
      String value = create.get();
      if (value != null) exec(c, "INSERT INTO meta (k, v) VALUES (?, ?)", key, value);
      return value;
    });
  }

  @Override
  public void setMeta(String key, String value) {
    write(c -> {
      if (value == null) exec(c, "DELETE FROM meta WHERE k = ?", key);
      else exec(c, "INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", key, value);
      return null;
    });
  }

  @Override
  public StoredConfig getConfig(String collectionId) {
    return read(c -> {
      try (PreparedStatement p = prepare(c, "SELECT kind, config, hash FROM configs WHERE cid = ?", collectionId); ResultSet r = p.executeQuery()) {
        return r.next() ? new StoredConfig(collectionId, r.getString(1), r.getString(2), r.getString(3)) : null;
      }
    });
  }

  @Override
  public void putConfig(StoredConfig config) {
    write(c -> {
      exec(c, "INSERT OR REPLACE INTO configs (cid, kind, config, hash) VALUES (?, ?, ?, ?)", config.collectionId, config.kind, config.canonical,
          config.configHash);
      return null;
    });
  }

  @Override
  public OutboxRow commitReport(String collectionId, long window, ChargeDecider decider) {
    return write(c -> {
      long total = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ?", collectionId);
      long inWindow = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ? AND win = ?", collectionId, window);
      OutboxRow row = decider.decide(total, inWindow);
      exec(c, "INSERT INTO outbox (report_id, cid, hash, epoch, payload, units, created, attempts, next, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
          row.reportId, row.collectionId, row.configHash, row.epoch, row.payload, row.units, row.createdAt, row.attempts, row.nextAttemptAt, row.lastError);
      exec(c, "INSERT INTO charges (report_id, cid, win, units, status) VALUES (?, ?, ?, ?, 'queued')", row.reportId, collectionId, window, row.units);
      exec(c, "INSERT OR IGNORE INTO counters (cid) VALUES (?)", collectionId);
      exec(c, "UPDATE counters SET reports = reports + 1 WHERE cid = ?", collectionId);
      return row;
    });
  }

  @Override
  public OutboxRow commitMemoReport(String collectionId, String configHash, long window, MemoChargeDecider decider) {
    return write(c -> {
      long total = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ?", collectionId);
      long inWindow = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ? AND win = ?", collectionId, window);
      MemoDecision decision = decider.decide(total, inWindow, new Memos() {
        @Override
        public String get(String digest) {
          return text("SELECT memo FROM memos WHERE cid = ? AND key_hash = ?", collectionId, digest);
        }

        @Override
        public String state() {
          return text("SELECT state FROM device_states WHERE cid = ? AND hash = ?", collectionId, configHash);
        }

        @Override
        public long count() {
          try {
            return scalar(c, "SELECT COUNT(*) FROM memos WHERE cid = ?", collectionId);
          } catch (SQLException e) {
            throw new LdpException("device store failed: " + e.getMessage(), e);
          }
        }

        private String text(String sql, Object... args) {
          try (PreparedStatement p = prepare(c, sql, args); ResultSet r = p.executeQuery()) {
            return r.next() ? r.getString(1) : null;
          } catch (SQLException e) {
            throw new LdpException("device store failed: " + e.getMessage(), e);
          }
        }
      });
      OutboxRow row = decision.row;
      // plain INSERTs: a memo or a device state that exists makes the transaction fail (never overwritten)
      if (decision.newState != null) exec(c, "INSERT INTO device_states (cid, hash, state) VALUES (?, ?, ?)", collectionId, configHash, decision.newState);
      if (decision.newMemo != null) {
        exec(c, "INSERT INTO memos (cid, key_hash, hash, memo, created) VALUES (?, ?, ?, ?, ?)", collectionId, decision.digest, configHash,
            decision.newMemo, row.createdAt);
      }
      exec(c, "INSERT INTO outbox (report_id, cid, hash, epoch, payload, units, created, attempts, next, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
          row.reportId, row.collectionId, row.configHash, row.epoch, row.payload, row.units, row.createdAt, row.attempts, row.nextAttemptAt, row.lastError);
      exec(c, "INSERT INTO charges (report_id, cid, win, units, status) VALUES (?, ?, ?, ?, 'queued')", row.reportId, collectionId, window, row.units);
      exec(c, "INSERT OR IGNORE INTO counters (cid) VALUES (?)", collectionId);
      exec(c, "UPDATE counters SET reports = reports + 1 WHERE cid = ?", collectionId);
      return row;
    });
  }

  @Override
  public long memoCount(String collectionId) {
    return read(c -> scalar(c, "SELECT COUNT(*) FROM memos WHERE cid = ?", collectionId));
  }

  @Override
  public BudgetSnapshot budget(String collectionId, long window) {
    return read(c -> {
      BudgetSnapshot b = new BudgetSnapshot();
      b.units = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ?", collectionId);
      b.windowUnits = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ? AND win = ?", collectionId, window);
      b.queuedUnits = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ? AND status = 'queued'", collectionId);
      b.acknowledgedUnits = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ? AND status = 'acknowledged'", collectionId);
      b.rejectedUnits = scalar(c, "SELECT COALESCE(SUM(units), 0) FROM charges WHERE cid = ? AND status = 'rejected'", collectionId);
      try (PreparedStatement p = prepare(c, "SELECT reports, accepted, duplicates, rejected FROM counters WHERE cid = ?", collectionId);
          ResultSet r = p.executeQuery()) {
        if (r.next()) {
          b.reports = r.getLong(1);
          b.accepted = r.getLong(2);
          b.duplicates = r.getLong(3);
          b.rejected = r.getLong(4);
        }
      }
      return b;
    });
  }

  @Override
  public List<String> outboxCollections() {
    return read(c -> {
      List<String> out = new ArrayList<>();
      try (PreparedStatement p = prepare(c, "SELECT cid FROM outbox GROUP BY cid ORDER BY MIN(seq)"); ResultSet r = p.executeQuery()) {
        while (r.next()) out.add(r.getString(1));
      }
      return out;
    });
  }

  private static OutboxRow row(ResultSet r) throws SQLException {
    return new OutboxRow(r.getString(1), r.getString(2), r.getString(3), r.getLong(4), r.getString(5), r.getInt(6), r.getDouble(7), r.getInt(8),
        r.getDouble(9), r.getString(10));
  }

  @Override
  public List<OutboxRow> nextBatch(String collectionId, double now, int limit) {
    return read(c -> {
      List<OutboxRow> out = new ArrayList<>();
      try (PreparedStatement p = prepare(c, "SELECT report_id, cid, hash, epoch, payload, units, created, attempts, next, error FROM outbox"
          + " WHERE cid = ? AND next <= ? ORDER BY seq LIMIT ?", collectionId, now, limit); ResultSet r = p.executeQuery()) {
        while (r.next()) out.add(row(r));
      }
      return out;
    });
  }

  @Override
  public void settle(String collectionId, List<Settlement> settlements) {
    if (settlements.isEmpty()) return;
    write(c -> {
      exec(c, "INSERT OR IGNORE INTO counters (cid) VALUES (?)", collectionId);
      for (Settlement s : settlements) {
        String id = s.row.reportId;
        if (scalar(c, "SELECT COUNT(*) FROM outbox WHERE report_id = ?", id) == 0) continue; // settled already
        switch (s.kind) {
          case DELIVERED:
            exec(c, "DELETE FROM outbox WHERE report_id = ?", id);
            exec(c, "UPDATE charges SET status = 'acknowledged' WHERE report_id = ?", id);
            exec(c, "duplicate".equals(s.status) ? "UPDATE counters SET duplicates = duplicates + 1 WHERE cid = ?"
                : "UPDATE counters SET accepted = accepted + 1 WHERE cid = ?", collectionId);
            break;
          case REJECTED:
            exec(c, "DELETE FROM outbox WHERE report_id = ?", id);
            exec(c, "UPDATE charges SET status = 'rejected' WHERE report_id = ?", id);
            exec(c, "UPDATE counters SET rejected = rejected + 1 WHERE cid = ?", collectionId);
            exec(c, "INSERT INTO rejected (report_id, cid, epoch, payload, reason, detail, at) VALUES (?,?,?,?,?,?,?)", id, collectionId,
                s.row.epoch, s.row.payload, s.reason, s.detail, s.at);
            break;
          default:
            exec(c, "UPDATE outbox SET attempts = attempts + 1, next = ?, error = ? WHERE report_id = ?", s.at, s.detail, id);
        }
      }
      return null;
    });
  }

  @Override
  public void noteError(List<OutboxRow> rows, String error) {
    if (rows.isEmpty()) return;
    write(c -> {
      for (OutboxRow r : rows) exec(c, "UPDATE outbox SET attempts = attempts + 1, error = ? WHERE report_id = ?", error, r.reportId);
      return null;
    });
  }

  @Override
  public int pending(String collectionId) {
    return read(c -> (int) (collectionId == null ? scalar(c, "SELECT COUNT(*) FROM outbox")
        : scalar(c, "SELECT COUNT(*) FROM outbox WHERE cid = ?", collectionId)));
  }

  @Override
  public List<RejectedRow> rejected(String collectionId, int limit) {
    return read(c -> {
      List<RejectedRow> out = new ArrayList<>();
      String sql = "SELECT report_id, cid, epoch, payload, reason, detail, at FROM rejected"
          + (collectionId == null ? "" : " WHERE cid = ?") + " ORDER BY seq DESC LIMIT ?";
      try (PreparedStatement p = collectionId == null ? prepare(c, sql, limit) : prepare(c, sql, collectionId, limit); ResultSet r = p.executeQuery()) {
        while (r.next()) out.add(new RejectedRow(r.getString(1), r.getString(2), r.getLong(3), r.getString(4), r.getString(5), r.getString(6), r.getDouble(7)));
      }
      return out;
    });
  }

  @Override
  public boolean acquireLease(String collectionId, String owner, double now, double until) {
    return write(c -> {
      try (PreparedStatement p = prepare(c, "SELECT owner, until FROM leases WHERE cid = ?", collectionId); ResultSet r = p.executeQuery()) {
        if (r.next() && !r.getString(1).equals(owner) && r.getDouble(2) > now) return false;
      }
      exec(c, "INSERT OR REPLACE INTO leases (cid, owner, until) VALUES (?, ?, ?)", collectionId, owner, until);
      return true;
    });
  }

  @Override
  public void releaseLease(String collectionId, String owner) {
    write(c -> {
      exec(c, "DELETE FROM leases WHERE cid = ? AND owner = ?", collectionId, owner);
      return null;
    });
  }

  @Override
  public void close() {
    synchronized (lock) {
      try {
        connection.close();
      } catch (SQLException e) {
        throw new LdpException("closing the device store failed: " + e.getMessage(), e);
      }
    }
  }
}
