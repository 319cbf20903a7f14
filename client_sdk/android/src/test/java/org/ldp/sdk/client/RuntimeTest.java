package org.ldp.sdk.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ldp.sdk.Json;
import org.ldp.sdk.MechanismVectorsTestAccess;

/** The device runtime against an in-process fake of the wire contract, in virtual time. */
class RuntimeTest {
  static final long START = CollectionConfig.parseTimestampMicros(Json.of("2030-01-01T00:00:00Z"));
  @TempDir File dir;

  VirtualTime time = new VirtualTime(START + 10L * 3600 * 1_000_000 + 5_000_000);
  FakeServer server = new FakeServer(time.micros);

  Client client(DeviceStore store) {
    return Client.builder("http://fake", "ldp_test").store(store).transport(server).clock(time).sleeper(time).batchSize(500).build();
  }

  Client client() {
    return client(new FileJournalStore(dir));
  }

  static boolean jdbcAvailable() {
    try {
      Class.forName("org.sqlite.JDBC");
      return true;
    } catch (ClassNotFoundException e) {
      return false;
    }
  }

  @Test
  void runtimeVectorsConfigsEpochsUnits() {
    JsonObject v = MechanismVectorsTestAccess.load("runtime.json");
    for (JsonElement e : v.getAsJsonArray("configs")) {
      JsonObject c = e.getAsJsonObject();
      String body = "{\"id\":\"col_x\",\"config\":" + c.get("text").getAsString() + ",\"config_hash\":\"" + c.get("config_hash").getAsString() + "\"}";
      JsonObject served = Json.parse(c.get("text").getAsString()).getAsJsonObject();
      assertEquals(c.get("canonical").getAsString(), org.ldp.sdk.Jcs.canonical(served));
      assertEquals(c.get("config_hash").getAsString(), Json.configHash(served));
      JsonObject compiled = c.getAsJsonObject("compiled");
      if (compiled == null) continue; // a hashing case only
      CollectionConfig cfg = CollectionConfig.fromServerText("col_x", body);
      assertEquals(c.get("canonical").getAsString(), cfg.canonical);
      assertEquals(c.get("config_hash").getAsString(), cfg.configHash);
      assertEquals(compiled.get("epoch_seconds").getAsLong(), cfg.epochSeconds);
      assertEquals(compiled.get("epoch_start_us").getAsLong(), cfg.epochStartMicros);
      assertEquals(compiled.get("grace").getAsLong(), cfg.grace);
      assertEquals(compiled.get("kind").getAsString(), cfg.kind);
      assertEquals(compiled.get("max_units_lifetime").getAsLong(), cfg.maxUnitsLifetime);
      JsonElement w = compiled.get("max_units_window");
      if (w.isJsonNull()) assertNull(cfg.maxUnitsWindow);
      else assertEquals(w.getAsLong(), cfg.maxUnitsWindow.longValue());
      assertEquals(compiled.get("unit_epsilon").getAsDouble(), cfg.unitEpsilon);
      assertEquals(compiled.get("memoized").getAsBoolean(), cfg.memoized);
      // one changed byte in the served config: refused
      String tampered = body.replace("\"epsilon\":1.0,\"neighbouring\"", "\"epsilon\":1.5,\"neighbouring\"");
      if (!tampered.equals(body)) assertThrows(ConfigHashMismatchException.class, () -> CollectionConfig.fromServerText("col_x", tampered));
    }
    for (JsonElement e : v.getAsJsonArray("epochs")) {
      com.google.gson.JsonArray c = e.getAsJsonArray();
      long start = CollectionConfig.parseTimestampMicros(c.get(0));
      assertEquals(c.get(4).getAsLong(), start, c.toString());
      long span = c.get(1).getAsLong() * 1_000_000L;
      assertEquals(c.get(3).getAsLong(), Math.floorDiv(c.get(2).getAsLong() * 1000 - start, span), c.toString());
    }
    for (JsonElement e : v.getAsJsonArray("units")) {
      com.google.gson.JsonArray c = e.getAsJsonArray();
      assertEquals(c.get(2).getAsLong(), CollectionConfig.maxUnits(c.get(0).getAsDouble(), c.get(1).getAsDouble()), c.toString());
    }
  }

  @Test
  void reportThenFlushDeliversAndTheBudgetRefusesPastTheCap() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 3.0, null));
    try (Client c = client()) {
      for (int i = 0; i < 3; i++) c.report("c1", i);
      DeviceBudgetExceededException refused = assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 5));
      assertEquals("lifetime", refused.scope);
      assertEquals(3, c.pending("c1")); // nothing queued by the refused report
      FlushResult r = c.flush(30);
      assertEquals(3, r.accepted);
      assertEquals(0, r.remaining);
      assertTrue(r.ok());
      BudgetStatus b = c.budget("c1");
      assertEquals(3.0, b.spentLifetime);
      assertEquals(3.0, b.acknowledged);
      assertEquals(0.0, b.pending);
      assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 1));
      assertEquals(3, server.accepted.size());
    }
  }

  @Test
  void windowCapAndABadValueCostsNothing() {
    server.addCollection("c1", FakeServer.frequencyConfig("grr", 10.0, 2.0));
    try (Client c = client()) {
      assertThrows(IllegalArgumentException.class, () -> c.report("c1", 16));
      c.report("c1", 1);
      c.report("c1", 2);
      DeviceBudgetExceededException e = assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 3));
      assertEquals("window", e.scope);
      time.advance(3600); // next epoch, next window
      c.report("c1", 3);
      assertEquals(3, c.budget("c1").unitsLifetime);
    }
  }

  @Test
  void retriesWithFullJitterThenExactlyRetryAfter() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    try (Client c = client()) {
      c.report("c1", 1);
      server.failNext = 3;
      FlushResult r = c.flush(120);
      assertEquals(1, r.accepted);
      assertEquals(4, r.requests);
      assertEquals(3, time.sleeps.size());
      for (int attempt = 0; attempt < 3; attempt++) {
        double s = time.sleeps.get(attempt);
        assertTrue(s >= 0 && s <= 0.5 * Math.pow(2, attempt), "backoff " + attempt + ": " + s);
      }
      time.sleeps.clear();
      c.report("c1", 2);
      server.failNext = 2;
      server.retryAfter = "7";
      r = c.flush(120);
      assertEquals(1, r.accepted);
      assertEquals(List.of(7.0, 7.0), time.sleeps);
    }
  }

  @Test
  void aRetryPastTheTimeoutIsNotAttemptedAndTheReportStaysQueued() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    try (Client c = client()) {
      c.report("c1", 1);
      server.failNext = 100;
      server.retryAfter = "30";
      FlushResult r = c.flush(10);
      assertTrue(r.timedOut);
      assertEquals(1, r.remaining);
      assertEquals(1, r.requests);
      assertTrue(time.sleeps.isEmpty());
      server.failNext = 0;
      assertEquals(1, c.flush(10).accepted);
    }
  }

  @Test
  void tooLargeSplitsTheBatchAndASingleTooLargeReportIsKept() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 100.0, null));
    try (Client c = client()) {
      for (int i = 0; i < 7; i++) c.report("c1", i);
      server.maxBatch = 2;
      FlushResult r = c.flush(30);
      assertEquals(7, r.accepted);
      assertTrue(server.batchSizes.stream().allMatch(n -> n <= 7));
      c.report("c1", 1);
      server.maxBatch = 0;
      r = c.flush(30);
      assertEquals(1, r.rejected);
      assertEquals("too_large", c.rejectedReports("c1", 10).get(0).reason);
    }
  }

  @Test
  void aLostAnswerIsRetriedAndCountsAsDelivered() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    try (Client c = client()) {
      c.report("c1", 1);
      c.report("c1", 2);
      server.loseAnswers = 1;
      FlushResult r = c.flush(60);
      assertEquals(2, r.duplicates);
      assertEquals(0, r.remaining);
      assertEquals(2, server.accepted.size());
      assertEquals(2.0, c.budget("c1").acknowledged);
    }
  }

  @Test
  void permanentRejectionsAreKeptWithTheirReasonAndFutureEpochsWait() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    try (Client c = client()) {
      ReportReceipt old = c.report("c1", 1);
      server.refuse.put(old.reportId, "epoch_closed");
      time.advance(3 * 3600); // the device's clock now runs ahead of the server's
      long serverTime = time.micros.get();
      c.report("c1", 2);
      time.micros.set(serverTime - 2 * 3600L * 1_000_000);
      FlushResult r = c.flush(30);
      assertEquals(1, r.rejected);
      assertEquals(1, r.deferred);
      assertEquals(1, r.remaining);
      DeviceStore.RejectedRow kept = c.rejectedReports("c1", 10).get(0);
      assertEquals("epoch_closed", kept.reason);
      assertEquals(old.reportId, kept.reportId);
      assertEquals(1.0, c.budget("c1").rejected); // still charged: the report left the device
    }
  }

  @Test
  void configMismatchRefetchesAndKeepsTheReport() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    try (Client c = client()) {
      c.report("c1", 1);
      server.addCollection("c1", FakeServer.frequencyConfig("oue", 20.0, null));
      FlushResult r = c.flush(30);
      assertEquals(1, r.rejected);
      assertEquals("config_mismatch", c.rejectedReports("c1", 1).get(0).reason);
      assertEquals(server.hashes.get("c1"), c.config("c1").configHash);
      c.report("c1", 2);
      assertEquals(1, c.flush(30).accepted);
    }
  }

  @Test
  void aConfigWhoseHashDoesNotMatchIsRefusedAndNothingIsPerturbed() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    server.hashes.put("c1", "sha256:" + "0".repeat(64));
    try (Client c = client()) {
      assertThrows(ConfigHashMismatchException.class, () -> c.report("c1", 1));
      assertEquals(0, c.pending(null));
    }
  }

  @Test
  void queuedReportsSurviveReopeningAndATornJournalTail() throws IOException {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    String clientId;
    try (Client c = client()) {
      c.report("c1", 1);
      c.report("c1", 2);
      clientId = c.clientId();
    }
    // a crash in the middle of a write leaves a torn last line: ignored and truncated
    File journal = new File(dir, "ldp-journal.log");
    try (RandomAccessFile raf = new RandomAccessFile(journal, "rw")) {
      raf.seek(raf.length());
      raf.write("0badc0de {\"op\":\"report\",\"id\":\"tor".getBytes("UTF-8"));
    }
    try (Client c = client()) {
      assertEquals(clientId, c.clientId());
      assertEquals(2, c.pending("c1"));
      assertEquals(2, c.flush(30).accepted);
      assertEquals(2, c.budget("c1").unitsLifetime);
    }
    assertFalse(new String(Files.readAllBytes(journal.toPath()), "UTF-8").contains("tor\n"));
  }

  @Test
  void threadsNeverOverspendTheCap() throws Exception {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 5.0, null));
    try (Client c = client()) {
      c.config("c1");
      AtomicInteger ok = new AtomicInteger();
      AtomicInteger refused = new AtomicInteger();
      CountDownLatch go = new CountDownLatch(1);
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        Thread th = new Thread(() -> {
          try {
            go.await();
            for (int i = 0; i < 3; i++) {
              try {
                c.report("c1", i);
                ok.incrementAndGet();
              } catch (DeviceBudgetExceededException e) {
                refused.incrementAndGet();
              }
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        });
        threads.add(th);
        th.start();
      }
      go.countDown();
      for (Thread th : threads) th.join();
      assertEquals(5, ok.get());
      assertEquals(19, refused.get());
      assertEquals(5, c.pending("c1"));
    }
  }

  @Test
  void twoStoresOnOneDirectorySeeEachOthersCharges() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 3.0, null));
    try (Client a = client(); Client b = client(new FileJournalStore(dir))) {
      a.report("c1", 1);
      b.report("c1", 2);
      a.report("c1", 3);
      assertThrows(DeviceBudgetExceededException.class, () -> b.report("c1", 4));
      assertEquals(3, b.pending("c1"));
    }
  }

  @Test
  void theJournalCompactsAndKeepsEverything() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 100000.0, null));
    try (Client c = client(new FileJournalStore(dir, false, 16 * 1024))) { // no fsync: this test is about compaction
      int n = 0;
      File journal = new File(dir, "ldp-journal.log");
      int compactions = 0;
      long last = 0;
      while (compactions < 3) {
        if (journal.length() < last) compactions++;
        last = journal.length();
        c.report("c1", n % 16);
        n++;
        if (n % 500 == 0) c.flush(30);
        assertTrue(n < 20000, "the journal never compacted");
      }
      c.flush(30);
      assertEquals(n, server.accepted.size());
      assertEquals(n, c.budget("c1").unitsLifetime);
    }
    // a fresh process replays the compacted journal to the same ledger
    try (Client c = client(new FileJournalStore(dir))) {
      assertEquals(0, c.pending(null));
      assertTrue(c.budget("c1").unitsLifetime > 100);
      assertEquals(c.budget("c1").unitsLifetime, c.budget("c1").reportsAccepted);
    }
  }

  @Test
  void theSqliteStoreKeepsTheSameContract() {
    Assumptions.assumeTrue(jdbcAvailable(), "sqlite-jdbc is not on the class path (install libxerial-sqlite-jdbc-java)");
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 3.0, null));
    String url = "jdbc:sqlite:" + new File(dir, "device.sqlite3").getPath();
    String clientId;
    try (Client c = client(new JdbcStore(url))) {
      for (int i = 0; i < 3; i++) c.report("c1", i);
      assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 1));
      server.loseAnswers = 1;
      FlushResult r = c.flush(60);
      assertEquals(3, r.duplicates);
      clientId = c.clientId(); // the server's, once the flush enrolled (kept in the store)
    }
    try (Client c = client(new JdbcStore(url))) {
      assertEquals(clientId, c.clientId());
      assertEquals(0, c.pending(null));
      BudgetStatus b = c.budget("c1");
      assertEquals(3, b.unitsLifetime);
      assertEquals(3.0, b.acknowledged);
      assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 1));
    }
  }

  @Test
  void theDeviceEnrolsOnceAndProvesItselfOnEveryUpload() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    server.requireDevices = true;
    java.util.function.Supplier<Client> open = () -> Client.builder("http://fake", "ldp_test").store(new FileJournalStore(dir)).transport(server)
        .clock(time).sleeper(time).enrolDevice(true).build();
    String enrolled;
    try (Client c = open.get()) {
      c.report("c1", 1);
      assertEquals(null, c.clientId()); // not enrolled before the first flush
      assertEquals(1, c.flush(30).accepted);
      enrolled = c.clientId();
      assertEquals(1, server.enrolments);
      assertEquals(List.of(enrolled), server.acceptedFor);
    }
    try (Client c = open.get()) { // the credential is kept in the store
      assertEquals(enrolled, c.clientId());
      c.report("c1", 2);
      assertEquals(1, c.flush(30).accepted);
      assertEquals(1, server.enrolments);
      // the server forgets the device: enrol again, re-send once under the new id
      server.devices.clear();
      c.report("c1", 3);
      FlushResult r = c.flush(30);
      assertEquals(1, r.accepted);
      assertEquals(2, server.enrolments);
      assertTrue(!enrolled.equals(c.clientId()));
      assertEquals(c.clientId(), server.acceptedFor.get(2));
      assertEquals(3, c.budget("c1").unitsLifetime); // the local ledger keeps every charge
    }
  }

  @Test
  void withoutEnrolmentNoDeviceProofIsSent() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    server.requireDevices = true;
    try (Client c = Client.builder("http://fake", "ldp_test").store(new FileJournalStore(dir)).transport(server).clock(time).sleeper(time)
        .enrolDevice(false).build()) {
      c.report("c1", 1);
      FlushResult r = c.flush(5);
      assertEquals(0, r.accepted);
      assertEquals(1, r.deferred); // device_unauthenticated waits in the outbox
      assertEquals(0, server.enrolments);
    }
  }

  @Test
  void theEnvelopeIsWireVersionTwoWithNothingDataDependentButThePayload() {
    server.addCollection("c1", FakeServer.frequencyConfig("oue", 10.0, null));
    try (Client c = client()) {
      ReportReceipt r = c.report("c1", 1);
      assertEquals(1, c.flush(5).accepted);
      JsonObject body = Json.parse(server.lastBody).getAsJsonObject();
      // the device credential ("devices": {client_id: secret}) is the only other member
      assertEquals(java.util.Set.of("wire", "reports", "devices"), body.keySet());
      assertEquals(2, body.get("wire").getAsInt());
      JsonObject report = body.getAsJsonArray("reports").get(0).getAsJsonObject();
      assertEquals(java.util.Set.of("report_id", "client_id", "config_hash", "epoch", "payload"), report.keySet());
      assertEquals(r.reportId, report.get("report_id").getAsString());
    }
  }

  @Test
  void configVersionTwoIsHashedAsRfc8785AndOtherVersionsAreRefused() {
    String v2 = FakeServer.frequencyConfig("oue", 10.0, null);
    JsonObject config = Json.parse(v2).getAsJsonObject();
    String jcsHash = org.ldp.sdk.Jcs.hash(config);
    // Python's json.dumps text of the same config keeps 1.0: its hash is not the config hash
    String legacyHash = "sha256:" + org.ldp.sdk.Hex.encode(Json.sha256(Json.canonical(config).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    assertTrue(!jcsHash.equals(legacyHash));
    CollectionConfig ok = CollectionConfig.fromServerText("c", "{\"config\":" + v2 + ",\"config_hash\":\"" + jcsHash + "\"}");
    assertEquals(jcsHash, ok.configHash);
    assertEquals(org.ldp.sdk.Jcs.canonical(config), ok.canonical);
    assertEquals(ok.configHash, CollectionConfig.fromCache("c", ok.canonical, ok.configHash).configHash);
    assertThrows(ConfigHashMismatchException.class,
        () -> CollectionConfig.fromServerText("c", "{\"config\":" + v2 + ",\"config_hash\":\"" + legacyHash + "\"}"));
    // versions other than the integer 2 are refused before any hash, naming the version
    for (String version : new String[] {"1", "3", "2.0", "true", "\"2\""}) {
      String text = v2.replace("{\"version\":2,", "{\"version\":" + version + ",");
      UnsupportedCollectionException e = assertThrows(UnsupportedCollectionException.class,
          () -> CollectionConfig.fromServerText("c", "{\"config\":" + text + ",\"config_hash\":\"" + jcsHash + "\"}"), version);
      assertTrue(e.getMessage().contains("is not supported (this SDK reads 2)"), e.getMessage());
    }
    // the shared vectors: version 1 (hashed as Python's json.dumps text) and 3, with Python's message
    for (JsonElement e : MechanismVectorsTestAccess.load("runtime.json").getAsJsonArray("old_versions")) {
      JsonObject c = e.getAsJsonObject();
      assertEquals("UnsupportedCollectionError", c.get("error").getAsString());
      UnsupportedCollectionException refused = assertThrows(UnsupportedCollectionException.class,
          () -> CollectionConfig.build("col_test", Json.parse(c.get("text").getAsString()).getAsJsonObject(), c.get("config_hash").getAsString()));
      assertEquals(c.get("message").getAsString(), refused.getMessage());
    }
  }

  @Test
  void retryAfterAsAnHttpDate() {
    assertEquals(120.0, Client.retryAfterSeconds("Wed, 21 Oct 2015 07:30:00 GMT", 1445412480.0), 1e-9);
    assertEquals(0.0, Client.retryAfterSeconds("-5", 0), 0);
    assertNull(Client.retryAfterSeconds("soon", 0));
  }
}
