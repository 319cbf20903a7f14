package org.ldp.sdk.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import java.util.zip.CRC32;
import org.ldp.sdk.Json;
import org.ldp.sdk.LdpException;

/**
 * The default device store: an append-only journal file, fsync'd on every write, replayed at
 * open. java.io only (RandomAccessFile, FileChannel.force and FileChannel.lock work on every
 * Android API level; java.nio.file needs API 26).
 *
 * <p>Crash safety: every record is one line {@code <crc32 hex> <json>\n}; a write returns only
 * after {@code FileChannel.force(true)}. A crash mid-write leaves a torn last line whose CRC
 * does not match: replay stops there and the next writer truncates it, so a record is either
 * wholly in the journal or not at all. Transactions ({@link #commitReport}) are one record.
 *
 * <p>Processes: every operation holds an exclusive {@link FileLock} on {@code journal.lock}
 * (and a JVM-wide lock for the same directory), first reads what other processes appended,
 * then appends. The journal is compacted into one snapshot record (written to a temporary file,
 * fsync'd, renamed over the journal) when it grows past {@link #COMPACT_BYTES}; the first
 * record of every journal file is a random generation id, so another process notices a
 * replaced file and replays it from the start.
 *
 * <p>{@code fsync(false)} trades durability of the last reports on power loss for speed (the
 * ledger can then lose charges for reports that were never sent either); the default is true.
 */
public final class FileJournalStore implements DeviceStore {
  public static final long COMPACT_BYTES = 4L << 20;
  private final long compactBytes;
  private static final Map<String, ReentrantLock> JVM_LOCKS = new ConcurrentHashMap<>();

  private final File journal;
  private final File lockFile;
  private final boolean fsync;
  private final ReentrantLock jvmLock;
  private final DeviceState state = new DeviceState();
  private String generation;
  private long offset;
  /** journal size right after the last compaction: compact again only once it has doubled */
  private long compactedSize;
  private boolean closed;

  public FileJournalStore(File directory) {
    this(directory, true);
  }

  public FileJournalStore(File directory, boolean fsync) {
    this(directory, fsync, COMPACT_BYTES);
  }

  /** {@code compactBytes}: journal size that triggers compaction. */
  public FileJournalStore(File directory, boolean fsync, long compactBytes) {
    this.compactBytes = compactBytes;
    if (!directory.isDirectory() && !directory.mkdirs()) throw new LdpException("cannot create state directory " + directory);
    this.journal = new File(directory, "ldp-journal.log");
    this.lockFile = new File(directory, "ldp-journal.lock");
    this.fsync = fsync;
    String key;
    try {
      key = directory.getCanonicalPath();
    } catch (IOException e) {
      key = directory.getAbsolutePath();
    }
    this.jvmLock = JVM_LOCKS.computeIfAbsent(key, k -> new ReentrantLock());
    transact(null);
  }

  // --- the transaction: lock, catch up, optionally append one record --------------------

  private interface Op<T> {
    /** Runs on the caught-up state; returns the result and, via out[0], a record to append (or null). */
    T run(JsonObject[] out);
  }

  private <T> T transact(Op<T> op) {
    jvmLock.lock();
    try (RandomAccessFile lockRaf = new RandomAccessFile(lockFile, "rw"); FileChannel lockChannel = lockRaf.getChannel(); FileLock ignored = lockChannel.lock()) {
      if (closed) throw new IllegalStateException("the store is closed");
      try (RandomAccessFile raf = new RandomAccessFile(journal, "rw")) {
        catchUp(raf);
        if (op == null) return null;
        JsonObject[] out = new JsonObject[1];
        T result = op.run(out);
        if (out[0] != null) {
          append(raf, out[0]);
          state.apply(out[0]);
        }
        if (raf.length() > Math.max(compactBytes, 2 * compactedSize)) compact();
        return result;
      }
    } catch (IOException e) {
      throw new LdpException("device store I/O failed: " + e.getMessage(), e);
    } finally {
      jvmLock.unlock();
    }
  }

  /** Read what was appended since our last look (or everything, if the file was replaced). */
  private void catchUp(RandomAccessFile raf) throws IOException {
    long length = raf.length();
    if (length == 0) {
      String gen = randomGeneration();
      JsonObject head = Json.obj("op", "gen", "id", gen);
      append(raf, head);
      state.reset();
      generation = gen;
      offset = raf.length();
      return;
    }
    String head = firstRecordGeneration(raf);
    if (generation == null || !generation.equals(head) || length < offset) {
      state.reset();
      generation = head;
      offset = 0;
    }
    if (length == offset) return;
    raf.seek(offset);
    byte[] data = new byte[(int) (length - offset)];
    raf.readFully(data);
    int start = 0;
    for (int i = 0; i < data.length; i++) {
      if (data[i] != '\n') continue;
      JsonObject record = parseLine(new String(data, start, i - start, StandardCharsets.UTF_8));
      if (record == null) break; // torn or corrupt: everything after it is ignored and truncated
      if (!record.get("op").getAsString().equals("gen")) state.apply(record);
      start = i + 1;
    }
    offset += start;
    if (offset < length) raf.setLength(offset); // drop a torn tail (we hold the lock)
  }

  private static String firstRecordGeneration(RandomAccessFile raf) throws IOException {
    raf.seek(0);
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = raf.read()) != -1 && b != '\n') line.write(b);
    JsonObject record = b == '\n' ? parseLine(new String(line.toByteArray(), StandardCharsets.UTF_8)) : null;
    if (record == null || !record.get("op").getAsString().equals("gen")) throw new IOException("the journal does not start with a generation record");
    return record.get("id").getAsString();
  }

  private static JsonObject parseLine(String line) {
    int space = line.indexOf(' ');
    if (space != 8) return null;
    String body = line.substring(9);
    CRC32 crc = new CRC32();
    crc.update(body.getBytes(StandardCharsets.UTF_8));
    if (!String.format("%08x", crc.getValue()).equals(line.substring(0, 8))) return null;
    try {
      return Json.parse(body).getAsJsonObject();
    } catch (RuntimeException e) {
      return null;
    }
  }

  private static byte[] encodeLine(JsonObject record) {
    String body = Json.write(record);
    CRC32 crc = new CRC32();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    crc.update(bytes);
    return (String.format("%08x", crc.getValue()) + " " + body + "\n").getBytes(StandardCharsets.UTF_8);
  }

  private void append(RandomAccessFile raf, JsonObject record) throws IOException {
    raf.seek(raf.length());
    raf.write(encodeLine(record));
    if (fsync) raf.getChannel().force(true);
    offset = raf.length();
  }

  private void compact() throws IOException {
    File tmp = new File(journal.getPath() + ".tmp");
    String gen = randomGeneration();
    try (FileOutputStream out = new FileOutputStream(tmp)) {
      out.write(encodeLine(Json.obj("op", "gen", "id", gen)));
      out.write(encodeLine(Json.obj("op", "snapshot", "state", state.snapshot())));
      out.getChannel().force(true);
    }
    if (!tmp.renameTo(journal)) throw new IOException("cannot replace the journal with its compacted copy");
    generation = gen;
    offset = journal.length();
    compactedSize = offset;
  }

  private static String randomGeneration() {
    byte[] b = new byte[8];
    org.ldp.sdk.SecureRandomSource.INSTANCE.fill(b);
    return org.ldp.sdk.Hex.encode(b);
  }

  // --- DeviceStore ---------------------------------------------------------------------------

  @Override
  public String meta(String key, Supplier<String> create) {
    return transact(out -> {
      String value = state.meta.get(key);
      if (value == null) {
        value = create.get();
        if (value != null) out[0] = Json.obj("op", "meta", "k", key, "v", value);
      }
      return value;
    });
  }

  @Override
  public void setMeta(String key, String value) {
    transact(out -> {
      out[0] = Json.obj("op", "meta", "k", key, "v", value);
      return null;
    });
  }

  @Override
  public StoredConfig getConfig(String collectionId) {
    return transact(out -> state.configs.get(collectionId));
  }

  @Override
  public void putConfig(StoredConfig c) {
    transact(out -> {
      out[0] = Json.obj("op", "config", "cid", c.collectionId, "kind", c.kind, "config", c.canonical, "hash", c.configHash);
      return null;
    });
  }

  @Override
  public OutboxRow commitReport(String collectionId, long window, ChargeDecider decider) {
    return transact(out -> {
      long total = state.units(collectionId, null);
      long inWindow = state.units(collectionId, window);
      OutboxRow row = decider.decide(total, inWindow);
      JsonObject record = DeviceState.rowJson(row);
      record.addProperty("op", "report");
      record.addProperty("window", window);
      out[0] = record;
      return row;
    });
  }

  @Override
  public OutboxRow commitMemoReport(String collectionId, String configHash, long window, MemoChargeDecider decider) {
    return transact(out -> {
      long total = state.units(collectionId, null);
      long inWindow = state.units(collectionId, window);
      Map<String, String> memos = state.memos.getOrDefault(collectionId, java.util.Collections.emptyMap());
      String stateKey = collectionId + "\u0000" + configHash;
      MemoDecision decision = decider.decide(total, inWindow, new Memos() {
        @Override
        public String get(String digest) {
          return memos.get(digest);
        }

        @Override
        public String state() {
          return state.deviceStates.get(stateKey);
        }

        @Override
        public long count() {
          return memos.size();
        }
      });
      if (decision.newMemo != null && memos.containsKey(decision.digest)) throw new LdpException("a stored memo is never overwritten");
      if (decision.newState != null && state.deviceStates.containsKey(stateKey)) throw new LdpException("a device state is fixed for the horizon");
      JsonObject record = DeviceState.rowJson(decision.row);
      record.addProperty("op", "report");
      record.addProperty("window", window);
      if (decision.newMemo != null) record.add("memo", Json.obj("d", decision.digest, "memo", decision.newMemo));
      if (decision.newState != null) record.add("dstate", Json.obj("hash", configHash, "state", decision.newState));
      out[0] = record; // one record: the memo, the state, the charge and the row land together or not at all
      return decision.row;
    });
  }

  @Override
  public long memoCount(String collectionId) {
    return transact(out -> (long) state.memos.getOrDefault(collectionId, java.util.Collections.emptyMap()).size());
  }

  @Override
  public BudgetSnapshot budget(String collectionId, long window) {
    return transact(out -> state.budget(collectionId, window));
  }

  @Override
  public List<String> outboxCollections() {
    return transact(out -> state.outboxCollections());
  }

  @Override
  public List<OutboxRow> nextBatch(String collectionId, double now, int limit) {
    return transact(out -> state.nextBatch(collectionId, now, limit));
  }

  @Override
  public void settle(String collectionId, List<Settlement> settlements) {
    if (settlements.isEmpty()) return;
    transact(out -> {
      JsonArray items = new JsonArray();
      for (Settlement s : settlements) items.add(DeviceState.settlementJson(s));
      out[0] = Json.obj("op", "settle", "cid", collectionId, "items", items);
      return null;
    });
  }

  @Override
  public void noteError(List<OutboxRow> rows, String error) {
    if (rows.isEmpty()) return;
    transact(out -> {
      JsonArray ids = new JsonArray();
      for (OutboxRow r : rows) ids.add(r.reportId);
      out[0] = Json.obj("op", "note", "ids", ids, "error", error);
      return null;
    });
  }

  @Override
  public int pending(String collectionId) {
    return transact(out -> state.pending(collectionId));
  }

  @Override
  public List<RejectedRow> rejected(String collectionId, int limit) {
    return transact(out -> state.rejected(collectionId, limit));
  }

  @Override
  public boolean acquireLease(String collectionId, String owner, double now, double until) {
    return transact(out -> {
      DeviceState.Lease lease = state.leases.get(collectionId);
      if (lease != null && !lease.owner.equals(owner) && lease.until > now) return false;
      out[0] = Json.obj("op", "lease", "cid", collectionId, "owner", owner, "until", until);
      return true;
    });
  }

  @Override
  public void releaseLease(String collectionId, String owner) {
    transact(out -> {
      DeviceState.Lease lease = state.leases.get(collectionId);
      if (lease != null && lease.owner.equals(owner)) out[0] = Json.obj("op", "lease", "cid", collectionId, "owner", owner, "until", 0.0);
      return null;
    });
  }

  @Override
  public void close() {
    jvmLock.lock();
    try {
      closed = true;
    } finally {
      jvmLock.unlock();
    }
  }

  /** The journal's in-memory state: what replaying its records gives. */
  static final class DeviceState {
    final Map<String, String> meta = new HashMap<>();
    final Map<String, StoredConfig> configs = new HashMap<>();
    final LinkedHashMap<String, OutboxRow> outbox = new LinkedHashMap<>();
    /** the charges of queued reports; settled ones are folded into the sums below */
    final LinkedHashMap<String, Charge> charges = new LinkedHashMap<>();
    final Map<String, Long> acknowledgedUnits = new HashMap<>();
    final Map<String, Long> rejectedUnits = new HashMap<>();
    final List<RejectedRow> rejected = new ArrayList<>();
    final Map<String, long[]> counters = new HashMap<>(); // reports, accepted, duplicates, rejected
    final Map<String, Lease> leases = new HashMap<>();
    /** memo records per collection, keyed by the HMAC digest of the memo key */
    final Map<String, Map<String, String>> memos = new HashMap<>();
    /** device states keyed by collection id + NUL + config hash */
    final Map<String, String> deviceStates = new HashMap<>();

    static final class Charge {
      final String collectionId;
      final long window;
      final int units;
      String status;

      Charge(String collectionId, long window, int units, String status) {
        this.collectionId = collectionId;
        this.window = window;
        this.units = units;
        this.status = status;
      }
    }

    static final class Lease {
      final String owner;
      final double until;

      Lease(String owner, double until) {
        this.owner = owner;
        this.until = until;
      }
    }

    void reset() {
      meta.clear();
      configs.clear();
      outbox.clear();
      charges.clear();
      rejected.clear();
      counters.clear();
      leases.clear();
      totals.clear();
      windowTotals.clear();
      acknowledgedUnits.clear();
      rejectedUnits.clear();
      memos.clear();
      deviceStates.clear();
    }

    long[] counter(String cid) {
      return counters.computeIfAbsent(cid, k -> new long[4]);
    }

    /** units per collection, and per collection and window (kept up to date: O(1) budget checks) */
    final Map<String, Long> totals = new HashMap<>();
    final Map<String, Long> windowTotals = new HashMap<>();

    void addCharge(String id, Charge c) {
      charges.put(id, c);
      totals.merge(c.collectionId, (long) c.units, Long::sum);
      windowTotals.merge(c.collectionId + "\u0000" + c.window, (long) c.units, Long::sum);
    }

    long units(String cid, Long window) {
      Long v = window == null ? totals.get(cid) : windowTotals.get(cid + "\u0000" + window);
      return v == null ? 0 : v;
    }

    static JsonObject rowJson(OutboxRow r) {
      return Json.obj("id", r.reportId, "cid", r.collectionId, "hash", r.configHash, "epoch", r.epoch, "payload", r.payload,
          "units", r.units, "created", r.createdAt, "attempts", r.attempts, "next", r.nextAttemptAt, "error", r.lastError);
    }

    static OutboxRow rowOf(JsonObject o) {
      JsonElement error = o.get("error");
      return new OutboxRow(o.get("id").getAsString(), o.get("cid").getAsString(), o.get("hash").getAsString(), o.get("epoch").getAsLong(),
          o.get("payload").getAsString(), o.get("units").getAsInt(), o.get("created").getAsDouble(), o.get("attempts").getAsInt(),
          o.get("next").getAsDouble(), error == null || error.isJsonNull() ? null : error.getAsString());
    }

    static JsonObject settlementJson(Settlement s) {
      return Json.obj("kind", s.kind.name(), "id", s.row.reportId, "status", s.status, "reason", s.reason, "detail", s.detail, "at", s.at);
    }

    static JsonObject rejectedJson(RejectedRow r) {
      return Json.obj("id", r.reportId, "cid", r.collectionId, "epoch", r.epoch, "payload", r.payload, "reason", r.reason, "detail", r.detail,
          "at", r.rejectedAt);
    }

    static String str(JsonElement e) {
      return e == null || e.isJsonNull() ? null : e.getAsString();
    }

    void apply(JsonObject record) {
      String op = record.get("op").getAsString();
      switch (op) {
        case "meta":
          if (record.get("v").isJsonNull()) meta.remove(record.get("k").getAsString());
          else meta.put(record.get("k").getAsString(), record.get("v").getAsString());
          break;
        case "config": {
          String cid = record.get("cid").getAsString();
          configs.put(cid, new StoredConfig(cid, record.get("kind").getAsString(), record.get("config").getAsString(), record.get("hash").getAsString()));
          break;
        }
        case "report": {
          OutboxRow row = rowOf(record);
          outbox.put(row.reportId, row);
          addCharge(row.reportId, new Charge(row.collectionId, record.get("window").getAsLong(), row.units, "queued"));
          counter(row.collectionId)[0]++;
          if (record.has("memo")) {
            JsonObject m = record.getAsJsonObject("memo");
            memos.computeIfAbsent(row.collectionId, k -> new HashMap<>()).putIfAbsent(m.get("d").getAsString(), m.get("memo").getAsString());
          }
          if (record.has("dstate")) {
            JsonObject d = record.getAsJsonObject("dstate");
            deviceStates.putIfAbsent(row.collectionId + "\u0000" + d.get("hash").getAsString(), d.get("state").getAsString());
          }
          break;
        }
        case "settle":
          for (JsonElement e : record.getAsJsonArray("items")) applySettlement(e.getAsJsonObject());
          break;
        case "note":
          for (JsonElement id : record.getAsJsonArray("ids")) {
            OutboxRow row = outbox.get(id.getAsString());
            if (row != null) outbox.put(row.reportId, row.withAttempt(row.nextAttemptAt, str(record.get("error"))));
          }
          break;
        case "lease":
          leases.put(record.get("cid").getAsString(), new Lease(record.get("owner").getAsString(), record.get("until").getAsDouble()));
          break;
        case "snapshot":
          restore(record.getAsJsonObject("state"));
          break;
        default:
          throw new LdpException("unknown journal record " + op);
      }
    }

    private void applySettlement(JsonObject s) {
      String id = s.get("id").getAsString();
      OutboxRow row = outbox.get(id);
      if (row == null) return; // settled already (e.g. by another process)
      Charge charge = charges.get(id);
      switch (s.get("kind").getAsString()) {
        case "DELIVERED":
          outbox.remove(id);
          if (charges.remove(id) != null) acknowledgedUnits.merge(row.collectionId, (long) charge.units, Long::sum);
          counter(row.collectionId)["duplicate".equals(str(s.get("status"))) ? 2 : 1]++;
          break;
        case "REJECTED":
          outbox.remove(id);
          if (charges.remove(id) != null) rejectedUnits.merge(row.collectionId, (long) charge.units, Long::sum);
          counter(row.collectionId)[3]++;
          rejected.add(new RejectedRow(id, row.collectionId, row.epoch, row.payload, str(s.get("reason")), str(s.get("detail")), s.get("at").getAsDouble()));
          break;
        default:
          outbox.put(id, row.withAttempt(s.get("at").getAsDouble(), str(s.get("detail"))));
      }
    }

    JsonObject snapshot() {
      JsonObject m = new JsonObject();
      for (Map.Entry<String, String> e : meta.entrySet()) m.addProperty(e.getKey(), e.getValue());
      JsonArray cfg = new JsonArray();
      for (StoredConfig c : configs.values()) cfg.add(Json.obj("cid", c.collectionId, "kind", c.kind, "config", c.canonical, "hash", c.configHash));
      JsonArray out = new JsonArray();
      for (OutboxRow r : outbox.values()) out.add(rowJson(r));
      JsonArray ch = new JsonArray();
      for (Map.Entry<String, Charge> e : charges.entrySet()) {
        Charge c = e.getValue();
        ch.add(Json.obj("id", e.getKey(), "cid", c.collectionId, "window", c.window, "units", c.units, "status", c.status));
      }
      JsonArray rej = new JsonArray();
      for (RejectedRow r : rejected) rej.add(rejectedJson(r));
      JsonObject cnt = new JsonObject();
      for (Map.Entry<String, long[]> e : counters.entrySet()) {
        JsonArray a = new JsonArray();
        for (long x : e.getValue()) a.add(x);
        cnt.add(e.getKey(), a);
      }
      JsonObject ls = new JsonObject();
      for (Map.Entry<String, Lease> e : leases.entrySet()) ls.add(e.getKey(), Json.obj("owner", e.getValue().owner, "until", e.getValue().until));
      JsonObject mem = new JsonObject();
      for (Map.Entry<String, Map<String, String>> e : memos.entrySet()) {
        JsonObject byDigest = new JsonObject();
        for (Map.Entry<String, String> d : e.getValue().entrySet()) byDigest.addProperty(d.getKey(), d.getValue());
        mem.add(e.getKey(), byDigest);
      }
      JsonObject ds = new JsonObject();
      for (Map.Entry<String, String> e : deviceStates.entrySet()) ds.addProperty(e.getKey(), e.getValue());
      return Json.obj("meta", m, "configs", cfg, "outbox", out, "charges", ch, "rejected", rej, "counters", cnt, "leases", ls,
          "totals", longs(totals), "window_totals", longs(windowTotals), "acknowledged", longs(acknowledgedUnits), "rejected_units", longs(rejectedUnits),
          "memos", mem, "device_states", ds);
    }

    private static JsonObject longs(Map<String, Long> map) {
      JsonObject o = new JsonObject();
      for (Map.Entry<String, Long> e : map.entrySet()) o.addProperty(e.getKey(), e.getValue());
      return o;
    }

    private static void readLongs(JsonObject o, Map<String, Long> into) {
      for (Map.Entry<String, JsonElement> e : o.entrySet()) into.put(e.getKey(), e.getValue().getAsLong());
    }

    private void restore(JsonObject s) {
      reset();
      for (Map.Entry<String, JsonElement> e : s.getAsJsonObject("meta").entrySet()) meta.put(e.getKey(), e.getValue().getAsString());
      for (JsonElement e : s.getAsJsonArray("configs")) {
        JsonObject o = e.getAsJsonObject();
        configs.put(o.get("cid").getAsString(), new StoredConfig(o.get("cid").getAsString(), o.get("kind").getAsString(), o.get("config").getAsString(), o.get("hash").getAsString()));
      }
      for (JsonElement e : s.getAsJsonArray("outbox")) {
        OutboxRow r = rowOf(e.getAsJsonObject());
        outbox.put(r.reportId, r);
      }
      for (JsonElement e : s.getAsJsonArray("charges")) {
        JsonObject o = e.getAsJsonObject();
        charges.put(o.get("id").getAsString(), new Charge(o.get("cid").getAsString(), o.get("window").getAsLong(), o.get("units").getAsInt(), o.get("status").getAsString()));
      }
      readLongs(s.getAsJsonObject("totals"), totals);
      readLongs(s.getAsJsonObject("window_totals"), windowTotals);
      readLongs(s.getAsJsonObject("acknowledged"), acknowledgedUnits);
      readLongs(s.getAsJsonObject("rejected_units"), rejectedUnits);
      for (JsonElement e : s.getAsJsonArray("rejected")) {
        JsonObject o = e.getAsJsonObject();
        rejected.add(new RejectedRow(o.get("id").getAsString(), o.get("cid").getAsString(), o.get("epoch").getAsLong(), o.get("payload").getAsString(),
            str(o.get("reason")), str(o.get("detail")), o.get("at").getAsDouble()));
      }
      for (Map.Entry<String, JsonElement> e : s.getAsJsonObject("counters").entrySet()) {
        JsonArray a = e.getValue().getAsJsonArray();
        counters.put(e.getKey(), new long[] {a.get(0).getAsLong(), a.get(1).getAsLong(), a.get(2).getAsLong(), a.get(3).getAsLong()});
      }
      for (Map.Entry<String, JsonElement> e : s.getAsJsonObject("leases").entrySet()) {
        JsonObject o = e.getValue().getAsJsonObject();
        leases.put(e.getKey(), new Lease(o.get("owner").getAsString(), o.get("until").getAsDouble()));
      }
      if (s.has("memos")) { // snapshots written before memo support have none
        for (Map.Entry<String, JsonElement> e : s.getAsJsonObject("memos").entrySet()) {
          Map<String, String> byDigest = new HashMap<>();
          for (Map.Entry<String, JsonElement> d : e.getValue().getAsJsonObject().entrySet()) byDigest.put(d.getKey(), d.getValue().getAsString());
          memos.put(e.getKey(), byDigest);
        }
        for (Map.Entry<String, JsonElement> e : s.getAsJsonObject("device_states").entrySet()) deviceStates.put(e.getKey(), e.getValue().getAsString());
      }
    }

    BudgetSnapshot budget(String cid, long window) {
      BudgetSnapshot b = new BudgetSnapshot();
      b.units = units(cid, null);
      b.windowUnits = units(cid, window);
      for (Charge c : charges.values()) if (c.collectionId.equals(cid)) b.queuedUnits += c.units;
      b.acknowledgedUnits = acknowledgedUnits.getOrDefault(cid, 0L);
      b.rejectedUnits = rejectedUnits.getOrDefault(cid, 0L);
      long[] n = counter(cid);
      b.reports = n[0];
      b.accepted = n[1];
      b.duplicates = n[2];
      b.rejected = n[3];
      return b;
    }

    List<String> outboxCollections() {
      List<String> out = new ArrayList<>();
      for (OutboxRow r : outbox.values()) if (!out.contains(r.collectionId)) out.add(r.collectionId);
      return out;
    }

    List<OutboxRow> nextBatch(String cid, double now, int limit) {
      List<OutboxRow> out = new ArrayList<>();
      for (OutboxRow r : outbox.values()) {
        if (out.size() >= limit) break;
        if (r.collectionId.equals(cid) && r.nextAttemptAt <= now) out.add(r);
      }
      return out;
    }

    int pending(String cid) {
      int n = 0;
      for (OutboxRow r : outbox.values()) if (cid == null || r.collectionId.equals(cid)) n++;
      return n;
    }

    List<RejectedRow> rejected(String cid, int limit) {
      List<RejectedRow> out = new ArrayList<>();
      for (int i = rejected.size() - 1; i >= 0 && out.size() < limit; i--) {
        if (cid == null || rejected.get(i).collectionId.equals(cid)) out.add(rejected.get(i));
      }
      return out;
    }
  }
}
