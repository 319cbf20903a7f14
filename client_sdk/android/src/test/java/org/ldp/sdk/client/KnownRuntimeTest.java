package org.ldp.sdk.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.File;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ldp.sdk.Json;
import org.ldp.sdk.MechanismVectorsTestAccess;
import org.ldp.sdk.heavy.HeavyHitterProtocols;
import org.ldp.sdk.heavy.ItemEncodingException;
import org.ldp.sdk.heavy.KnownCandidates;

/** The device runtime reports to a heavy_hitters collection of protocol "known" as to a PEM one (charge per report, no memo). */
class KnownRuntimeTest {
  static final long START = CollectionConfig.parseTimestampMicros(Json.of("2030-01-01T00:00:00Z"));
  @TempDir File dir;

  VirtualTime time = new VirtualTime(START + 10L * 3600 * 1_000_000 + 5_000_000);
  FakeServer server = new FakeServer(time.micros);

  Client client() {
    return Client.builder("http://fake", "ldp_test").store(new FileJournalStore(dir)).transport(server).clock(time).sleeper(time).build();
  }

  /** A mechanism config of tests/vectors/known.json (written by the Python SDK). */
  static JsonObject mechanism(int index) {
    return MechanismVectorsTestAccess.load("known.json").getAsJsonArray("configs").get(index).getAsJsonObject().getAsJsonObject("config");
  }

  static String collection(JsonObject mechanism, double capLifetime) {
    return "{\"version\":2,\"kind\":\"heavy_hitters\",\"mechanism\":" + Json.write(mechanism) + ",\"epsilon\":" + mechanism.get("epsilon")
        + ",\"neighbouring\":\"record\",\"epoch\":{\"seconds\":3600,\"start\":\"2030-01-01T00:00:00Z\",\"grace\":1},"
        + "\"release\":{\"windows\":[1],\"cumulative\":true,\"min_reports\":100},\"budget\":{\"cap_lifetime\":" + capLifetime
        + ",\"cap_per_window\":null,\"window_epochs\":1,\"memoized\":false,\"epsilon_per_memo\":null}}";
  }

  @Test
  void reportsAreChargedPerReportAndDeliveredAsKnownPayloads() {
    JsonObject mechanism = mechanism(2); // epsilon 1.0, 32-bit integer items
    KnownCandidates known = (KnownCandidates) HeavyHitterProtocols.fromConfig(mechanism);
    server.addCollection("hh", collection(mechanism, 20.0));
    try (Client c = client()) {
      assertThrows(ItemEncodingException.class, () -> c.report("hh", -1L)); // a bad item costs nothing
      assertThrows(IllegalArgumentException.class, () -> c.report("hh", 5L, "eu")); // not federated
      assertEquals(0, c.pending("hh"));
      for (int i = 0; i < 20; i++) c.report("hh", (long) (i % 3));
      assertThrows(DeviceBudgetExceededException.class, () -> c.report("hh", 1L));
      assertEquals(20.0, c.budget("hh").spentLifetime);
      assertEquals("report", c.budget("hh").unit);
      FlushResult r = c.flush(30);
      assertEquals(20, r.accepted);
      assertTrue(r.ok());
    }
    TreeSet<Integer> levels = new TreeSet<>();
    for (String text : server.accepted.values()) {
      JsonElement payload = Json.parse(text).getAsJsonObject().get("payload");
      assertEquals("known", payload.getAsJsonObject().get("m").getAsString());
      levels.add(known.decode(payload, 0).get("l").getAsInt());
    }
    assertEquals(20, server.accepted.size());
    assertEquals("[1, 2]", levels.toString()); // both groups (2^-19 to fail by chance)
  }

  @Test
  void aMechanismConfigTheSdkReadsDifferentlyIsRefused() {
    JsonObject mechanism = mechanism(0).deepCopy();
    mechanism.getAsJsonObject("screen").addProperty("d", 1); // below the smallest screen: refused
    server.addCollection("bad", collection(mechanism, 10.0));
    JsonObject options = mechanism(0).deepCopy();
    options.getAsJsonObject("fo").addProperty("g", 9); // options other than the defaults: read as written
    options.addProperty("alpha", 0.5);
    server.addCollection("ok", collection(options, 10.0));
    try (Client c = client()) {
      assertThrows(UnsupportedCollectionException.class, () -> c.report("bad", "hi"));
      assertEquals(0, c.pending(null));
      c.report("ok", "hi");
      assertEquals(1, c.pending("ok"));
    }
  }
}
