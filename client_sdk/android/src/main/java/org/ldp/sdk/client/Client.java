package org.ldp.sdk.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.net.URLEncoder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.ldp.sdk.Hex;
import org.ldp.sdk.Json;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.SecureRandomSource;
import org.ldp.sdk.longitudinal.LongitudinalProtocol;

/**
 * The device runtime, the rules of the Python runtime (client_sdk/client/runtime.py, docs/sdk.md)
 * for Android and the JVM:
 *
 * <ul>
 *   <li>{@link #report} perturbs on the device (SecureRandom), checks and charges the device
 *       budget and queues the report: the check, the charge and the outbox row commit in one
 *       durable store transaction ({@link DeviceStore#commitReport}); no network unless the
 *       config is not cached yet. Past a cap it throws {@link DeviceBudgetExceededException}
 *       and nothing is drawn, stored or queued. The true value is never stored or sent.
 *   <li>Memoized (longitudinal) collections keep the permanent randomized response per memo
 *       key in the store (under an HMAC of the key, {@link DeviceStore#commitMemoReport}) and
 *       re-randomize it for every report; only a report that creates a memo is charged
 *       (epsilon_per_memo), so a repeated value costs nothing more on the device.
 *   <li>{@link #flush} sends the outbox oldest first in batches with retries: exponential
 *       backoff with full jitter, or exactly what {@code Retry-After} says; a 413 splits the
 *       batch; {@code accepted} and {@code duplicate} are delivered; {@code epoch_in_future} and
 *       {@code kind_unavailable} wait; {@code config_mismatch} refetches the config; any other
 *       rejection is kept on the device with its reason. Network trouble never throws.
 *   <li>Thread-safe: reports from any thread; one flush at a time per client, and a lease in the
 *       store so two processes do not flush one collection at once.
 *   <li>Clock, sleeper, randomness and transport are injectable (virtual-time tests).
 * </ul>
 */
public final class Client implements AutoCloseable {
  public static final String SDK_VERSION = "0.1.0";
  /** the report envelope version sent: {@code {"wire":2,"reports":[...]}} (docs/api.md) */
  public static final int ENVELOPE_VERSION = 2;
  public static final Set<String> DEFERRED_REASONS = new HashSet<>(Arrays.asList("epoch_in_future", "kind_unavailable", "device_unauthenticated"));
  /** the server does not accept this device's credential: enrol again, then re-send */
  public static final String DEVICE_UNAUTHENTICATED = "device_unauthenticated";
  public static final Set<Integer> RETRYABLE_STATUSES = new HashSet<>(Arrays.asList(408, 425, 429, 500, 502, 503, 504));
  public static final int MAX_MISMATCH_RETRIES = 3;
  public static final double MAX_RETRY_AFTER = 3600;
  public static final double LEASE_SECONDS = 120;

  private final String baseUrl;
  private final String apiKey;
  private final DeviceStore store;
  private final Transport transport;
  private final Clock clock;
  private final Sleeper sleeper;
  private final RandomSource random;
  private final int batchSize;
  private final RetryPolicy retry;
  private final Map<String, CollectionConfig> configs = new ConcurrentHashMap<>();
  private final Object flushLock = new Object();
  private final String clientId;
  private final String instanceId;
  private final boolean enrol;
  private volatile boolean closed;
  private volatile FlushResult lastFlush;
  /** the store's memo secret (HMAC key of memo rows), read once */
  private volatile byte[] memoSecret;
  private Thread background;

  /** Builder: {@code Client.builder(url, key).stateDir(dir).build()}. */
  public static final class Builder {
    private final String baseUrl;
    private final String apiKey;
    private DeviceStore store;
    private File stateDir;
    private Transport transport = new HttpUrlConnectionTransport();
    private Clock clock = Clock.SYSTEM;
    private Sleeper sleeper;
    private RandomSource random = SecureRandomSource.INSTANCE;
    private int batchSize = 500;
    private RetryPolicy retry = RetryPolicy.defaults();
    private boolean enrol = true;

    Builder(String baseUrl, String apiKey) {
      this.baseUrl = baseUrl;
      this.apiKey = apiKey;
    }

    /** The default store: a {@link FileJournalStore} in this directory. */
    public Builder stateDir(File dir) {
      this.stateDir = dir;
      return this;
    }

    public Builder store(DeviceStore store) {
      this.store = store;
      return this;
    }

    public Builder transport(Transport transport) {
      this.transport = transport;
      return this;
    }

    public Builder clock(Clock clock) {
      this.clock = clock;
      return this;
    }

    public Builder sleeper(Sleeper sleeper) {
      this.sleeper = sleeper;
      return this;
    }

    /** Randomness of perturbations, report ids and jitter (default: SecureRandom). */
    public Builder random(RandomSource random) {
      this.random = random;
      return this;
    }

    public Builder batchSize(int batchSize) {
      if (batchSize < 1 || batchSize > 5000) throw new IllegalArgumentException("batchSize must lie in [1, 5000], got " + batchSize);
      this.batchSize = batchSize;
      return this;
    }

    public Builder retry(RetryPolicy retry) {
      this.retry = retry;
      return this;
    }

    /**
     * Enrol the device with the server ({@code POST /v1/devices}: a server-chosen client id and
     * a device secret, sent with every upload; the server refuses uploads without it). On by
     * default; off only for a server that predates device enrolment (docs/android-sdk.md).
     */
    public Builder enrolDevice(boolean enrol) {
      this.enrol = enrol;
      return this;
    }

    public Client build() {
      if (store == null && stateDir == null) throw new IllegalArgumentException("give a stateDir or a store");
      return new Client(this);
    }
  }

  public static Builder builder(String baseUrl, String apiKey) {
    return new Builder(baseUrl, apiKey);
  }

  private Client(Builder b) {
    this.baseUrl = b.baseUrl.replaceAll("/+$", "");
    this.apiKey = b.apiKey;
    this.store = b.store != null ? b.store : new FileJournalStore(b.stateDir);
    this.transport = b.transport;
    this.clock = b.clock;
    this.sleeper = b.sleeper != null ? b.sleeper : new Sleeper.Real();
    this.random = b.random;
    this.batchSize = b.batchSize;
    this.retry = b.retry;
    this.clientId = store.meta("client_id", () -> randomHex(16));
    this.instanceId = randomHex(8);
    this.enrol = b.enrol;
  }

  /**
   * The device's pseudonymous id, the unit of privacy: with enrolment the server-chosen one
   * (null before the first flush enrols), else a random one made once and kept in the store.
   */
  public String clientId() {
    if (!enrol) return clientId;
    Credential c = credential();
    return c == null ? null : c.clientId;
  }

  /** An enrolment credential: the server's client id and the device secret (never logged). */
  private static final class Credential {
    final String clientId;
    final String secret;

    Credential(String clientId, String secret) {
      this.clientId = clientId;
      this.secret = secret;
    }
  }

  private Credential credential() {
    String id = store.meta("device_client_id", () -> null);
    String secret = store.meta("device_secret", () -> null);
    return id == null || secret == null ? null : new Credential(id, secret);
  }

  private void forgetCredential() {
    store.setMeta("device_client_id", null);
    store.setMeta("device_secret", null);
  }

  /** The stored credential, or a new one from {@code POST /v1/devices} (429/5xx/network retried). */
  private Credential ensureDevice(double deadline) throws Stop {
    Credential stored = credential();
    if (stored != null) return stored;
    String url = url("v1", "devices");
    for (int attempt = 0; ; attempt++) {
      if (closed) throw new Stop("client closed", false);
      double remaining = deadline - nowSeconds();
      if (remaining <= 0) throw new Stop("timed out enrolling the device; reports kept in the outbox", true);
      String problem;
      Double delay = null;
      try {
        Transport.Response response = transport.send("POST", url, headers(true), "{\"count\":1}", (int) Math.max(1, Math.min(retry.requestTimeout, remaining) * 1000));
        if (response.status == 201) {
          Credential fresh = null;
          try {
            JsonObject first = Json.parse(response.body).getAsJsonObject().getAsJsonArray("devices").get(0).getAsJsonObject();
            if (Json.isString(first.get("client_id")) && Json.isString(first.get("device_secret"))) {
              fresh = new Credential(first.get("client_id").getAsString(), first.get("device_secret").getAsString());
            }
          } catch (RuntimeException unreadable) {
            fresh = null;
          }
          if (fresh == null) throw new Stop("the enrolment answer is unreadable; reports kept in the outbox", false);
          store.setMeta("device_client_id", fresh.clientId);
          store.setMeta("device_secret", fresh.secret);
          return fresh;
        }
        problem = "enrolment: HTTP " + response.status + ": " + problemDetail(response);
        if (!RETRYABLE_STATUSES.contains(response.status)) throw new Stop(problem + " (reports kept in the outbox)", false);
        delay = retryAfterSeconds(response.header("Retry-After"), nowSeconds());
      } catch (IOException e) {
        problem = "enrolment request failed: " + e;
      }
      double wait = delay != null ? delay : retry.backoff(attempt, uniform());
      if (wait > deadline - nowSeconds()) throw new Stop(problem + String.format(Locale.ROOT, "; next retry in %.1fs is past the timeout", wait), true);
      try {
        if (!sleeper.sleep(wait)) throw new Stop("client closed", false);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new Stop("interrupted", false);
      }
    }
  }

  public FlushResult lastFlush() {
    return lastFlush;
  }

  private String randomHex(int bytes) {
    byte[] b = new byte[bytes];
    random.fill(b);
    return Hex.encode(b);
  }

  private double uniform() {
    return (Sampling.randomU64(random) >>> 11) * 0x1.0p-53;
  }

  private double nowSeconds() {
    return clock.nowMicros() / 1e6;
  }

  private void checkOpen() {
    if (closed) throw new ClientClosedException("this Client is closed");
  }

  private String url(String... parts) {
    StringBuilder out = new StringBuilder(baseUrl);
    try {
      for (String p : parts) out.append('/').append(URLEncoder.encode(p, "UTF-8").replace("+", "%20"));
    } catch (java.io.UnsupportedEncodingException e) {
      throw new IllegalStateException(e);
    }
    return out.toString();
  }

  private Map<String, String> headers(boolean json) {
    Map<String, String> h = new LinkedHashMap<>();
    h.put("Accept", "application/json");
    if (json) h.put("Content-Type", "application/json");
    if (apiKey != null) h.put("Authorization", "Bearer " + apiKey);
    h.put("User-Agent", "ldp-sdk-android/" + SDK_VERSION);
    return h;
  }

  // --- configs --------------------------------------------------------------------------------

  /** The collection's verified public config: memory, then the store, then the server. */
  public CollectionConfig config(String collectionId) {
    checkOpen();
    CollectionConfig cached = configs.get(collectionId);
    if (cached != null) return cached;
    DeviceStore.StoredConfig row = store.getConfig(collectionId);
    if (row != null) {
      try {
        CollectionConfig c = CollectionConfig.fromCache(collectionId, row.canonical, row.configHash);
        configs.put(collectionId, c);
        return c;
      } catch (RuntimeException damaged) {
        // a damaged cache entry: fetch it again
      }
    }
    return refreshConfig(collectionId);
  }

  /** Fetch the public config from the server, check its hash, cache it on the device. */
  public CollectionConfig refreshConfig(String collectionId) {
    checkOpen();
    Transport.Response response;
    try {
      response = transport.send("GET", url("v1", "collections", collectionId), headers(false), null, (int) (retry.requestTimeout * 1000));
    } catch (IOException e) {
      throw new ConfigUnavailableException("collection '" + collectionId + "': the public config is not cached and the server is unreachable ("
          + e + "); nothing was perturbed");
    }
    if (response.status != 200) {
      throw new ConfigUnavailableException("collection '" + collectionId + "': fetching the public config failed (HTTP " + response.status + ": "
          + problemDetail(response) + "); nothing was perturbed");
    }
    CollectionConfig compiled = CollectionConfig.fromServerText(collectionId, response.body);
    store.putConfig(new DeviceStore.StoredConfig(collectionId, compiled.kind, compiled.canonical, compiled.configHash));
    configs.put(collectionId, compiled);
    return compiled;
  }

  private static String problemDetail(Transport.Response response) {
    try {
      JsonElement body = Json.parse(response.body);
      if (body.isJsonObject()) {
        JsonObject o = body.getAsJsonObject();
        JsonElement d = o.has("detail") && !o.get("detail").isJsonNull() ? o.get("detail") : o.get("title");
        if (d != null && !d.isJsonNull()) {
          String s = Json.isString(d) ? d.getAsString() : d.toString();
          return s.length() > 500 ? s.substring(0, 500) : s;
        }
      }
    } catch (RuntimeException notJson) {
      // fall through to the raw text
    }
    String text = response.body == null ? "" : response.body;
    return text.isEmpty() ? "no detail" : text.substring(0, Math.min(200, text.length()));
  }

  // --- reporting --------------------------------------------------------------------------------

  public ReportReceipt report(String collectionId, Object value) {
    return report(collectionId, value, null);
  }

  /**
   * Perturb {@code value} now and queue the report durably. Value: an Integer/Long (frequency),
   * an int[] (multidim), a String/Long/BigInteger item (heavy hitters; {@code party} for TAP/TAPS).
   *
   * @throws DeviceBudgetExceededException when the charge would pass a cap (nothing drawn or stored)
   * @throws ConfigUnavailableException when the config is neither cached nor reachable
   */
  public ReportReceipt report(String collectionId, Object value, Object party) {
    checkOpen();
    CollectionConfig cfg = config(collectionId);
    cfg.validate(value, party);
    long epoch = cfg.epochAt(clock.nowMicros());
    long window = cfg.windowOf(epoch);
    String reportId = randomHex(16);
    double now = nowSeconds();
    double unit = cfg.unitEpsilon;
    if (cfg.memoized) return reportMemoized(cfg, ((Number) value).longValue(), reportId, epoch, window, now);
    DeviceStore.OutboxRow row = store.commitReport(collectionId, window, (unitsTotal, windowUnits) -> {
      int units = 1;
      checkCaps(cfg, unitsTotal, windowUnits, units, window);
      JsonObject payload = cfg.perturb(value, party, random); // drawn only once the budget allows it
      return new DeviceStore.OutboxRow(reportId, collectionId, cfg.configHash, epoch, Json.write(payload), units, now, 0, 0, null);
    });
    return new ReportReceipt(reportId, collectionId, epoch, window, row.units, row.units * unit);
  }

  private static void checkCaps(CollectionConfig cfg, long unitsTotal, long windowUnits, int units, long window) {
    double unit = cfg.unitEpsilon;
    if (unitsTotal + units > cfg.maxUnitsLifetime) {
      throw new DeviceBudgetExceededException(cfg.collectionId, "lifetime", unitsTotal * unit, cfg.capLifetime, units * unit, window, cfg.memoized);
    }
    if (cfg.maxUnitsWindow != null && windowUnits + units > cfg.maxUnitsWindow) {
      throw new DeviceBudgetExceededException(cfg.collectionId, "window", windowUnits * unit, cfg.capWindow, units * unit, window, cfg.memoized);
    }
  }

  /**
   * A memoized (longitudinal) report, as the Python runtime's: in one store transaction, the
   * device state (drawn once per collection and config), the memo key of the value, the memo
   * stored under an HMAC of that key with the device's memo secret (never the value), and only
   * when the memo is new a charge of one unit (epsilon_per_memo) against the caps — refused
   * before the memo is drawn; then round 2 re-randomizes the memo into the wire payload. A value
   * whose memo exists reports at no charge, also at the cap.
   */
  private ReportReceipt reportMemoized(CollectionConfig cfg, long value, String reportId, long epoch, long window, double now) {
    LongitudinalProtocol m = cfg.longitudinal();
    byte[] secret = memoSecret;
    if (secret == null) {
      secret = Hex.decode(store.meta("memo_secret", () -> {
        byte[] b = new byte[32];
        SecureRandomSource.INSTANCE.fill(b); // a device secret: never from a test's replayed bytes
        return Hex.encode(b);
      }));
      memoSecret = secret; // fixed once made: every process on this store reads the same one
    }
    byte[] key = secret;
    long[] memoCount = new long[1];
    boolean[] created = new boolean[1];
    DeviceStore.OutboxRow row = store.commitMemoReport(cfg.collectionId, cfg.configHash, window, (unitsTotal, windowUnits, memos) -> {
      JsonObject state = null;
      String newState = null;
      if (m.needsState()) {
        String stored = memos.state();
        if (stored == null) {
          state = m.newDeviceState(random);
          newState = Json.write(state);
        } else {
          state = Json.parse(stored).getAsJsonObject();
        }
      }
      long memoKey = m.memoKey(value, state);
      String digest = memoDigest(key, cfg.collectionId, cfg.configHash, Long.toString(memoKey));
      String storedMemo = memos.get(digest);
      long count = memos.count();
      int units;
      JsonObject memo;
      String newMemo = null;
      if (storedMemo == null) {
        units = 1;
        checkCaps(cfg, unitsTotal, windowUnits, units, window);
        memo = m.newMemo(value, state, random);
        memo.remove("key"); // stored without the (value-derived) key
        newMemo = Json.write(memo);
        count += 1;
      } else {
        units = 0;
        memo = Json.parse(storedMemo).getAsJsonObject();
      }
      memo.addProperty("key", memoKey);
      JsonObject payload = m.perturbWithMemo(memo, state, random);
      memoCount[0] = count;
      created[0] = newMemo != null;
      DeviceStore.OutboxRow r = new DeviceStore.OutboxRow(reportId, cfg.collectionId, cfg.configHash, epoch, Json.write(payload), units, now, 0, 0, null);
      return new DeviceStore.MemoDecision(r, digest, newMemo, newState);
    });
    return new ReportReceipt(reportId, cfg.collectionId, epoch, window, row.units, row.units * cfg.unitEpsilon, memoCount[0], created[0]);
  }

  /** The stored key of a memo: HMAC-SHA256 of [collection, config hash, memo key] under the device's memo secret. */
  static String memoDigest(byte[] secret, String collectionId, String configHash, String keyText) {
    JsonArray message = new JsonArray();
    message.add(collectionId);
    message.add(configHash);
    message.add(keyText);
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret, "HmacSHA256"));
      return Hex.encode(mac.doFinal(Json.write(message).getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is unavailable", e);
    }
  }

  // --- budget and inspection ----------------------------------------------------------------------

  public BudgetStatus budget(String collectionId) {
    CollectionConfig cfg = config(collectionId);
    long epoch = cfg.epochAt(clock.nowMicros());
    long window = cfg.windowOf(epoch);
    DeviceStore.BudgetSnapshot snap = store.budget(collectionId, window);
    BudgetStatus s = new BudgetStatus();
    double unit = cfg.unitEpsilon;
    s.collectionId = collectionId;
    s.unitEpsilon = unit;
    s.unit = cfg.memoized ? "memo" : "report";
    s.memoCount = cfg.memoized ? store.memoCount(collectionId) : 0;
    s.epoch = epoch;
    s.window = window;
    s.spentLifetime = snap.units * unit;
    s.capLifetime = cfg.capLifetime;
    s.unitsLifetime = snap.units;
    s.maxUnitsLifetime = cfg.maxUnitsLifetime;
    s.spentWindow = snap.windowUnits * unit;
    s.capWindow = cfg.capWindow;
    s.unitsWindow = snap.windowUnits;
    s.maxUnitsWindow = cfg.maxUnitsWindow;
    s.acknowledged = snap.acknowledgedUnits * unit;
    s.pending = snap.queuedUnits * unit;
    s.rejected = snap.rejectedUnits * unit;
    s.reports = snap.reports;
    s.reportsAccepted = snap.accepted;
    s.reportsDuplicate = snap.duplicates;
    s.reportsRejected = snap.rejected;
    return s;
  }

  /** Reports waiting in the outbox (all collections when null). */
  public int pending(String collectionId) {
    return store.pending(collectionId);
  }

  /** Reports the server refused for good, newest first, with the reason (kept, never dropped). */
  public List<DeviceStore.RejectedRow> rejectedReports(String collectionId, int limit) {
    return store.rejected(collectionId, limit);
  }

  // --- flushing ----------------------------------------------------------------------------------------

  private static final class Stop extends Exception {
    private static final long serialVersionUID = 1L;
    final boolean timedOut;

    Stop(String message, boolean timedOut) {
      super(message);
      this.timedOut = timedOut;
    }
  }

  public FlushResult flush(double timeoutSeconds) {
    return flush(timeoutSeconds, null);
  }

  /**
   * Send queued reports until {@code timeoutSeconds} have passed. Never throws for network
   * trouble: what could not be sent stays queued ({@code remaining}) and {@code errors} says why.
   */
  public FlushResult flush(double timeoutSeconds, String onlyCollection) {
    checkOpen();
    synchronized (flushLock) {
      double deadline = nowSeconds() + Math.max(timeoutSeconds, 0);
      FlushResult result = new FlushResult();
      for (String cid : store.outboxCollections()) {
        if (onlyCollection != null && !onlyCollection.equals(cid)) continue;
        if (closed) {
          result.errors.add("client closed during flush");
          break;
        }
        String owner = clientId + ":" + instanceId;
        if (!store.acquireLease(cid, owner, nowSeconds(), nowSeconds() + LEASE_SECONDS)) {
          result.errors.add(cid + ": another process is flushing this collection");
          continue;
        }
        try {
          flushCollection(cid, deadline, result);
        } catch (Stop stop) {
          result.errors.add(cid + ": " + stop.getMessage());
          result.timedOut |= stop.timedOut;
        } finally {
          store.releaseLease(cid, owner);
        }
      }
      result.remaining = store.pending(null);
      lastFlush = result;
      return result;
    }
  }

  private void flushCollection(String cid, double deadline, FlushResult result) throws Stop {
    while (true) {
      List<DeviceStore.OutboxRow> rows = store.nextBatch(cid, nowSeconds(), batchSize);
      if (rows.isEmpty()) return;
      deliver(cid, rows, deadline, result);
    }
  }

  private void deliver(String cid, List<DeviceStore.OutboxRow> rows, double deadline, FlushResult result) throws Stop {
    Credential device = enrol ? ensureDevice(deadline) : null;
    List<JsonObject> outcome = post(cid, rows, deadline, result, device);
    if (device != null && outcome != null && outcome.stream().anyMatch(r -> DEVICE_UNAUTHENTICATED.equals(str(r, "reason")))) {
      // the server no longer knows this device (or the app's key changed): enrol again and
      // re-send once; a second refusal keeps the reports queued (deferred)
      forgetCredential();
      device = ensureDevice(deadline);
      outcome = post(cid, rows, deadline, result, device);
    }
    if (outcome == null) { // 413: too large
      if (rows.size() == 1) {
        store.settle(cid, java.util.Collections.singletonList(DeviceStore.Settlement.rejected(rows.get(0), "too_large",
            "the server refused this single report as too large (413)", nowSeconds())));
        result.rejected++;
        result.reasons.merge("too_large", 1, Integer::sum);
        return;
      }
      int half = rows.size() / 2;
      deliver(cid, new ArrayList<>(rows.subList(0, half)), deadline, result);
      deliver(cid, new ArrayList<>(rows.subList(half, rows.size())), deadline, result);
      return;
    }
    apply(cid, rows, outcome, result);
  }

  private String body(List<DeviceStore.OutboxRow> rows, Credential device) {
    String id = device != null ? device.clientId : clientId;
    // wire version 2: nothing in the envelope depends on the device's data besides the payload
    StringBuilder out = new StringBuilder("{\"wire\":" + ENVELOPE_VERSION + ",\"reports\":[");
    for (int i = 0; i < rows.size(); i++) {
      DeviceStore.OutboxRow r = rows.get(i);
      if (i > 0) out.append(',');
      out.append("{\"report_id\":\"").append(r.reportId).append("\",\"client_id\":\"").append(id).append("\",\"config_hash\":")
          .append(Json.write(Json.of(r.configHash))).append(",\"epoch\":").append(r.epoch).append(",\"payload\":").append(r.payload).append('}');
    }
    out.append(']');
    // the device secret proves to the server that this device sends its own reports
    if (device != null) out.append(",\"devices\":{").append(Json.write(Json.of(device.clientId))).append(':').append(Json.write(Json.of(device.secret))).append('}');
    return out.append('}').toString();
  }

  /** POST one batch until a 200 (its per-report results) or a 413 (null). */
  private List<JsonObject> post(String cid, List<DeviceStore.OutboxRow> rows, double deadline, FlushResult result, Credential device) throws Stop {
    String body = body(rows, device);
    String url = url("v1", "collections", cid, "reports");
    for (int attempt = 0; ; attempt++) {
      if (closed) throw new Stop("client closed", false);
      double remaining = deadline - nowSeconds();
      if (remaining <= 0) throw new Stop("timed out with " + rows.size() + " report(s) of this batch still queued", true);
      String problem;
      Double delay = null;
      result.requests++;
      Transport.Response response = null;
      try {
        response = transport.send("POST", url, headers(true), body, (int) Math.max(1, Math.min(retry.requestTimeout, remaining) * 1000));
        problem = null;
      } catch (IOException e) {
        problem = "request failed: " + e;
      }
      if (response != null) {
        if (response.status == 200) {
          List<JsonObject> parsed = readResults(response, rows);
          if (parsed != null) return parsed;
          problem = "HTTP 200 with an unreadable body";
        } else if (response.status == 413) {
          return null;
        } else if (RETRYABLE_STATUSES.contains(response.status)) {
          problem = "HTTP " + response.status + ": " + problemDetail(response);
          delay = retryAfterSeconds(response.header("Retry-After"), nowSeconds());
        } else {
          String detail = "HTTP " + response.status + ": " + problemDetail(response);
          store.noteError(rows, detail);
          throw new Stop(detail + " (reports kept in the outbox)", false);
        }
      }
      double wait = delay != null ? delay : retry.backoff(attempt, uniform());
      if (wait > deadline - nowSeconds()) {
        store.noteError(rows, problem);
        throw new Stop(problem + String.format(Locale.ROOT, "; next retry in %.1fs is past the timeout", wait), true);
      }
      try {
        if (!sleeper.sleep(wait)) throw new Stop("client closed", false);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new Stop("interrupted", false);
      }
    }
  }

  /** Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped; null if absent or bad. */
  public static Double retryAfterSeconds(String raw, double nowSeconds) {
    if (raw == null) return null;
    String text = raw.trim();
    double seconds;
    if (text.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?")) {
      seconds = Double.parseDouble(text);
    } else {
      java.text.SimpleDateFormat http = new java.text.SimpleDateFormat("EEE, dd MMM yyyy HH:mm:ss zzz", Locale.US);
      try {
        seconds = http.parse(text).getTime() / 1000.0 - nowSeconds;
      } catch (java.text.ParseException e) {
        return null;
      }
    }
    return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER);
  }

  /** The per-report results of a 200, checked against the batch (null if unusable). */
  private static List<JsonObject> readResults(Transport.Response response, List<DeviceStore.OutboxRow> rows) {
    try {
      JsonElement body = Json.parse(response.body);
      JsonElement results = body.isJsonObject() ? body.getAsJsonObject().get("results") : null;
      if (results == null || !results.isJsonArray() || results.getAsJsonArray().size() != rows.size()) return null;
      JsonArray a = results.getAsJsonArray();
      List<JsonObject> out = new ArrayList<>();
      for (int i = 0; i < rows.size(); i++) {
        if (!a.get(i).isJsonObject()) return null;
        JsonObject r = a.get(i).getAsJsonObject();
        JsonElement id = r.get("report_id");
        if (!(id == null || id.isJsonNull() || (Json.isString(id) && id.getAsString().equals(rows.get(i).reportId)))) return null;
        out.add(r);
      }
      return out;
    } catch (RuntimeException e) {
      return null;
    }
  }

  private static String str(JsonObject o, String key) {
    JsonElement e = o.get(key);
    return Json.isString(e) ? e.getAsString() : null;
  }

  private void apply(String cid, List<DeviceStore.OutboxRow> rows, List<JsonObject> results, FlushResult result) {
    double now = nowSeconds();
    List<DeviceStore.Settlement> settlements = new ArrayList<>();
    List<DeviceStore.OutboxRow> mismatched = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      DeviceStore.OutboxRow row = rows.get(i);
      JsonObject res = results.get(i);
      String status = str(res, "status");
      String reason = str(res, "reason");
      String detail = str(res, "detail");
      if ("accepted".equals(status) || "duplicate".equals(status)) {
        settlements.add(DeviceStore.Settlement.delivered(row, status));
        if (status.equals("accepted")) result.accepted++;
        else result.duplicates++;
      } else if ("rejected".equals(status) && "config_mismatch".equals(reason)) {
        mismatched.add(row);
      } else if ("rejected".equals(status) && reason != null && DEFERRED_REASONS.contains(reason)) {
        double delay = retry.backoff(row.attempts + 2, uniform()) + 1.0;
        settlements.add(DeviceStore.Settlement.deferred(row, now + delay, reason + ": " + detail));
        result.deferred++;
      } else if ("rejected".equals(status)) {
        String code = reason != null ? reason : "rejected";
        settlements.add(DeviceStore.Settlement.rejected(row, code, detail, now));
        result.rejected++;
        result.reasons.merge(code, 1, Integer::sum);
      } else {
        settlements.add(DeviceStore.Settlement.deferred(row, now + 1.0, "unexpected result " + res));
        result.deferred++;
      }
    }
    store.settle(cid, settlements);
    if (!mismatched.isEmpty()) handleMismatch(cid, mismatched, result);
  }

  /** The server says the config hash is not the collection's: refetch; reports perturbed under
   *  another config cannot be re-targeted, so they are kept as rejected. */
  private void handleMismatch(String cid, List<DeviceStore.OutboxRow> rows, FlushResult result) {
    CollectionConfig fresh = null;
    String why = "";
    try {
      fresh = refreshConfig(cid);
    } catch (ConfigUnavailableException | ConfigHashMismatchException | UnsupportedCollectionException e) {
      why = e.getMessage();
    }
    double now = nowSeconds();
    List<DeviceStore.Settlement> settlements = new ArrayList<>();
    for (DeviceStore.OutboxRow row : rows) {
      if (fresh == null) {
        settlements.add(DeviceStore.Settlement.deferred(row, now + 5.0, "config_mismatch; config refetch failed: " + why));
        result.deferred++;
      } else if (fresh.configHash.equals(row.configHash) && row.attempts + 1 < MAX_MISMATCH_RETRIES) {
        settlements.add(DeviceStore.Settlement.deferred(row, now + 1.0, "config_mismatch, but the refetched config still has this hash"));
        result.deferred++;
      } else {
        settlements.add(DeviceStore.Settlement.rejected(row, "config_mismatch", "perturbed under config " + row.configHash
            + "; the collection's config is now " + fresh.configHash + " (refetched). The report cannot be re-targeted to another config and is kept here.", now));
        result.rejected++;
        result.reasons.merge("config_mismatch", 1, Integer::sum);
      }
    }
    store.settle(cid, settlements);
  }

  // --- background flushing and closing ---------------------------------------------------------------

  /**
   * Flush every {@code intervalSeconds} on a daemon thread (each flush bounded by the interval).
   * On Android prefer WorkManager (docs/android-sdk.md): a process may be killed at any time.
   */
  public synchronized void startBackgroundFlush(double intervalSeconds) {
    checkOpen();
    if (background != null) return;
    background = new Thread(() -> {
      try {
        while (!closed) {
          if (!sleeper.sleep(intervalSeconds)) break;
          if (!closed) flush(intervalSeconds);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (ClientClosedException e) {
        // closing
      }
    }, "ldp-flush");
    background.setDaemon(true);
    background.start();
  }

  public synchronized void stopBackgroundFlush() {
    Thread t = background;
    background = null;
    if (t != null) {
      t.interrupt();
      try {
        t.join(5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Stops the flusher, interrupts a backoff wait, closes the store. */
  @Override
  public void close() {
    closed = true;
    sleeper.wakeAll();
    stopBackgroundFlush();
    synchronized (flushLock) {
      store.close();
    }
  }
}
