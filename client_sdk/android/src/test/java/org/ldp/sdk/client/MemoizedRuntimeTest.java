package org.ldp.sdk.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ldp.sdk.Json;
import org.ldp.sdk.longitudinal.Longitudinal;
import org.ldp.sdk.longitudinal.LongitudinalProtocol;

/** Memoized (longitudinal) collections in the device runtime, against the in-process fake server, in virtual time. */
class MemoizedRuntimeTest {
  static final long START = CollectionConfig.parseTimestampMicros(Json.of("2030-01-01T00:00:00Z"));
  static final long EPOCH = 3600;
  @TempDir File dir;

  VirtualTime time = new VirtualTime(START + 5_000_000);
  FakeServer server = new FakeServer(time.micros);

  static String config(String mechanism, double epsilon, double capLifetime, Double capWindow, Double perMemo, boolean memoized) {
    String canonical = Json.write(Longitudinal.fromConfig(Json.parse(mechanism)).config());
    return "{\"version\":2,\"kind\":\"longitudinal\",\"mechanism\":" + canonical + ",\"epsilon\":" + epsilon
        + ",\"neighbouring\":\"record\",\"epoch\":{\"seconds\":" + EPOCH + ",\"start\":\"2030-01-01T00:00:00Z\",\"grace\":1},"
        + "\"release\":{\"windows\":[1],\"cumulative\":true,\"min_reports\":100},\"budget\":{\"cap_lifetime\":" + capLifetime
        + ",\"cap_per_window\":" + (capWindow == null ? "null" : capWindow.toString()) + ",\"window_epochs\":1,\"memoized\":" + memoized
        + ",\"epsilon_per_memo\":" + (perMemo == null ? "null" : perMemo.toString()) + "}}";
  }

  static final String LGRR = "{\"kind\":\"longitudinal\",\"mechanism\":\"l-grr\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":8}";
  static final String LOLOHA = "{\"kind\":\"longitudinal\",\"mechanism\":\"loloha\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":100}";
  static final String DBITFLIP = "{\"kind\":\"longitudinal\",\"mechanism\":\"dbitflip\",\"epsilon\":1.0,\"domain_size\":16,\"buckets\":8,\"d\":2}";

  Client client(DeviceStore store) {
    return Client.builder("http://fake", "ldp_test").store(store).transport(server).clock(time).sleeper(time).build();
  }

  static boolean jdbc() {
    return RuntimeTest.jdbcAvailable();
  }

  /** One device over many epochs: the same value costs one memo, other values one memo each until the cap. */
  void sameValueChargesOneMemoAndARestartReusesIt(Supplier<DeviceStore> store) {
    server.addCollection("c1", config(LGRR, 2.0, 6.0, null, null, true));
    LongitudinalProtocol m = Longitudinal.fromConfig(Json.parse(LGRR));
    List<ReportReceipt> receipts = new ArrayList<>();
    Set<String> payloads = new HashSet<>();
    try (Client c = client(store.get())) {
      for (int e = 0; e < 12; e++) {
        receipts.add(c.report("c1", 5));
        assertEquals(1, c.flush(30).accepted); // reports of an epoch are accepted until current - grace
        time.advance(EPOCH);
      }
      BudgetStatus b = c.budget("c1");
      assertEquals("memo", b.unit);
      assertEquals(1, b.memoCount);
      assertEquals(2.0, b.spentLifetime);
      assertEquals(2.0, b.acknowledged);
      assertEquals(1, b.unitsLifetime);
      assertEquals(3, b.maxUnitsLifetime);
    }
    for (int e = 0; e < receipts.size(); e++) {
      ReportReceipt r = receipts.get(e);
      assertEquals(e == 0 ? 1 : 0, r.units);
      assertEquals(e == 0 ? 2.0 : 0.0, r.epsilonCharged);
      assertEquals(e == 0, r.newMemo);
      assertEquals(1L, r.memoCount.longValue());
    }
    for (String text : server.accepted.values()) {
      JsonObject payload = Json.parse(text).getAsJsonObject().getAsJsonObject("payload");
      m.decode(payload, 0); // the server's decoder accepts it
      payloads.add(Json.write(payload));
    }
    assertTrue(payloads.size() > 1, "round 2 re-randomizes the memo every report: " + payloads);
    // a restarted process reuses the stored memo (no charge), pays for new values until the cap refuses a new memo
    try (Client c = client(store.get())) {
      assertEquals(0, c.report("c1", 5).units);
      assertEquals(1, c.report("c1", 0).units);
      assertEquals(1, c.report("c1", 1).units);
      DeviceBudgetExceededException refused = assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 2));
      assertEquals("lifetime", refused.scope);
      assertTrue(refused.getMessage().contains("a new memo"), refused.getMessage());
      ReportReceipt atCap = c.report("c1", 0); // an existing memo still reports at the cap, at no charge
      assertEquals(0, atCap.units);
      assertEquals(3L, atCap.memoCount.longValue());
      assertEquals(4, c.pending("c1"));
      assertEquals(4, c.flush(30).accepted);
      BudgetStatus b = c.budget("c1");
      assertEquals(3, b.memoCount);
      assertEquals(6.0, b.spentLifetime);
      assertEquals(6.0, b.acknowledged);
      assertEquals(16, b.reports);
    }
    assertEquals(16, server.accepted.size());
  }

  @Test
  void fileJournalKeepsMemosAcrossRestarts() throws Exception {
    sameValueChargesOneMemoAndARestartReusesIt(() -> new FileJournalStore(dir));
    String journal = new String(Files.readAllBytes(new File(dir, "ldp-journal.log").toPath()), StandardCharsets.UTF_8);
    assertTrue(journal.contains("\"memo\""));
    assertFalse(journal.contains("\\\"key\\\""), "a memo record is stored without its (value-derived) key");
  }

  @Test
  void sqliteStoreKeepsMemosAcrossRestarts() throws Exception {
    Assumptions.assumeTrue(jdbc(), "sqlite-jdbc is not on the class path (install libxerial-sqlite-jdbc-java)");
    String url = "jdbc:sqlite:" + new File(dir, "device.sqlite3");
    sameValueChargesOneMemoAndARestartReusesIt(() -> new JdbcStore(url));
    try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT key_hash, memo FROM memos")) {
      int rows = 0;
      while (r.next()) {
        assertEquals(64, r.getString(1).length());
        assertFalse(Json.parse(r.getString(2)).getAsJsonObject().has("key"));
        rows++;
      }
      assertEquals(3, rows);
    }
  }

  @Test
  void memosSurviveJournalCompaction() {
    server.addCollection("c1", config(LOLOHA, 2.0, 100.0, null, null, true));
    JsonObject firstState;
    try (Client c = client(new FileJournalStore(dir, true, 2048))) {
      for (int i = 0; i < 40; i++) c.report("c1", 42); // compacts several times
      assertEquals(1, c.budget("c1").memoCount);
      assertEquals(40, c.flush(30).accepted);
      firstState = Json.parse(server.accepted.values().iterator().next()).getAsJsonObject().getAsJsonObject("payload");
    }
    try (Client c = client(new FileJournalStore(dir, true, 2048))) {
      assertEquals(0, c.report("c1", 42).units);
      assertEquals(1, c.flush(30).accepted);
    }
    Set<String> seeds = new HashSet<>();
    for (String text : server.accepted.values()) seeds.add(Json.parse(text).getAsJsonObject().getAsJsonObject("payload").get("s").getAsString());
    assertEquals(1, seeds.size(), "the device state (LOLOHA's hash key) is drawn once and kept");
    assertEquals(firstState.get("s").getAsString(), seeds.iterator().next());
  }

  @Test
  void dbitflipResendsItsMemoizedResponse() {
    server.addCollection("c1", config(DBITFLIP, 1.0, 3.0, null, null, true));
    try (Client c = client(new FileJournalStore(dir))) {
      for (int e = 0; e < 5; e++) {
        c.report("c1", 3);
        assertEquals(1, c.flush(30).accepted);
        time.advance(EPOCH);
      }
      assertEquals(1.0, c.budget("c1").spentLifetime);
    }
    Set<String> payloads = new HashSet<>();
    for (String text : server.accepted.values()) payloads.add(Json.write(Json.parse(text).getAsJsonObject().get("payload")));
    assertEquals(1, payloads.size(), "no second round: the same response every epoch");
  }

  @Test
  void windowCapLimitsMemoCreationAndEpsilonPerMemoIsTheUnit() {
    server.addCollection("c1", config(LGRR, 2.0, 20.0, 5.0, 2.5, true));
    try (Client c = client(new FileJournalStore(dir))) {
      assertEquals(2.5, c.report("c1", 0).epsilonCharged);
      assertEquals(2.5, c.report("c1", 1).epsilonCharged);
      DeviceBudgetExceededException refused = assertThrows(DeviceBudgetExceededException.class, () -> c.report("c1", 2));
      assertEquals("window", refused.scope);
      assertEquals(0.0, c.report("c1", 1).epsilonCharged);
      time.advance(EPOCH); // the next accounting window
      assertEquals(2.5, c.report("c1", 2).epsilonCharged);
      BudgetStatus b = c.budget("c1");
      assertEquals(7.5, b.spentLifetime);
      assertEquals(3, b.memoCount);
      assertEquals(2.5, b.unitEpsilon);
    }
  }

  @Test
  void concurrentNewMemosNeverPassTheCap() throws Exception {
    server.addCollection("c1", config(LGRR, 2.0, 6.0, null, null, true));
    try (Client c = client(new FileJournalStore(dir))) {
      AtomicInteger refused = new AtomicInteger();
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        final int value = t;
        Thread th = new Thread(() -> {
          try {
            c.report("c1", value);
          } catch (DeviceBudgetExceededException e) {
            refused.incrementAndGet();
          }
        });
        threads.add(th);
        th.start();
      }
      for (Thread th : threads) th.join();
      assertEquals(5, refused.get());
      BudgetStatus b = c.budget("c1");
      assertEquals(3, b.memoCount);
      assertEquals(6.0, b.spentLifetime);
    }
  }

  @Test
  void configRulesOfThePythonRuntime() {
    // a longitudinal protocol needs budget.memoized; budget.memoized needs a longitudinal protocol
    assertThrows(UnsupportedCollectionException.class, () -> build(config(LGRR, 2.0, 6.0, null, null, false)));
    String memoizedFrequency = FakeServer.frequencyConfig("oue", 3.0, null).replace("\"memoized\":false", "\"memoized\":true");
    UnsupportedCollectionException e = assertThrows(UnsupportedCollectionException.class, () -> build(memoizedFrequency));
    assertTrue(e.getMessage().contains("budget.memoized applies to longitudinal collections only"), e.getMessage());
    // a unit below the mechanism's own loss (epsilon_perm per memo) is refused: never under-count
    assertThrows(UnsupportedCollectionException.class, () -> build(config(LGRR, 2.0, 6.0, null, 1.5, true)));
    assertThrows(UnsupportedCollectionException.class, () -> build(config(LGRR, 1.0, 6.0, null, null, true)));
    CollectionConfig ok = build(config(LGRR, 2.0, 6.0, null, null, true));
    assertTrue(ok.memoized);
    assertEquals(3, ok.maxUnitsLifetime);
    assertThrows(IllegalArgumentException.class, () -> ok.validate(8, null));
  }

  static CollectionConfig build(String text) {
    JsonElement config = Json.parse(text);
    return CollectionConfig.build("c1", config.getAsJsonObject(), Json.configHash(config));
  }

  @Test
  void storesWithoutMemoSupportRefuseMemoizedCollections() {
    server.addCollection("c1", config(LGRR, 2.0, 6.0, null, null, true));
    DeviceStore journal = new FileJournalStore(dir);
    DeviceStore plain = (DeviceStore) java.lang.reflect.Proxy.newProxyInstance(DeviceStore.class.getClassLoader(), new Class<?>[] {DeviceStore.class},
        (proxy, method, args) -> {
          if (method.isDefault()) return java.lang.reflect.InvocationHandler.invokeDefault(proxy, method, args);
          return method.invoke(journal, args);
        });
    try (Client c = client(plain)) {
      assertThrows(UnsupportedOperationException.class, () -> c.report("c1", 1));
      assertEquals(0, c.pending("c1"));
    }
  }
}
