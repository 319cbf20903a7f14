package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.client.CollectionConfig;
import org.ldp.sdk.client.UnsupportedCollectionException;
import org.ldp.sdk.longitudinal.InMemoryMemoStore;
import org.ldp.sdk.longitudinal.Longitudinal;
import org.ldp.sdk.longitudinal.LongitudinalProtocol;
import org.ldp.sdk.longitudinal.ReportOutcome;

/** The longitudinal protocols replay tests/vectors/longitudinal.json (tests/vectors/generate_longitudinal.py). */
class LongitudinalVectorsTest {
  static final JsonObject V = Vectors.load("longitudinal.json");

  static JsonElement arg(JsonObject c, String key) {
    JsonElement e = c.get(key);
    return e == null || e.isJsonNull() ? null : e;
  }

  @Test
  void configsHashesPrivacyAndParameters() {
    int n = 0;
    for (JsonElement e : V.getAsJsonArray("grid")) {
      JsonObject d = e.getAsJsonObject();
      LongitudinalProtocol m = Longitudinal.fromConfig(d.get("config"));
      String where = d.get("canonical").getAsString();
      assertEquals(d.get("name").getAsString(), m.name);
      assertEquals(where, Jcs.canonical(m.config()));
      assertEquals(d.get("config_hash").getAsString(), m.configHash(), where);
      assertEquals(d.get("key_space").getAsLong(), m.keySpace(), where);
      JsonObject p = d.getAsJsonObject("privacy");
      assertEquals(p.get("epsilon_perm").getAsDouble(), m.epsilonPerm(), where);
      assertEquals(p.get("charge_per_new_memo").getAsDouble(), m.chargePerNewMemo(), where);
      assertEquals(p.get("max_memos").getAsLong(), m.maxMemos(), where);
      assertEquals(p.get("lifetime_bound").getAsDouble(), m.lifetimeBound(), where);
      // derived from libm exp/log/expm1/log1p: bit for bit in nearly all cases, 2 ulps allowed
      assertTrue(Vectors.ulps(p.get("epsilon_first").getAsDouble(), m.epsilonFirst()) <= 2, where);
      assertTrue(Vectors.ulps(p.get("epsilon_first_actual").getAsDouble(), m.epsilonFirstActual()) <= 4, where);
      Map<String, Number> mine = m.parameters();
      JsonObject want = d.getAsJsonObject("parameters");
      assertEquals(new TreeSet<>(want.keySet()), new TreeSet<>(mine.keySet()), where);
      for (Map.Entry<String, JsonElement> w : want.entrySet()) {
        double x = w.getValue().getAsDouble();
        double y = mine.get(w.getKey()).doubleValue();
        assertTrue(Vectors.ulps(x, y) <= 2, where + " " + w.getKey() + ": " + x + " vs " + y);
      }
      // the round-trip through the canonical JSON the server serves
      assertEquals(m.configHash(), Longitudinal.fromConfig(Json.parse(where)).configHash());
      n++;
    }
    assertEquals(22, n);
  }

  @Test
  void createAndFromConfigErrorsWithPythonsMessages() {
    for (JsonElement e : V.getAsJsonArray("errors")) {
      JsonObject c = e.getAsJsonObject();
      ConfigException error = assertThrows(ConfigException.class, () -> Longitudinal.create(c.get("name"), arg(c, "epsilon_perm"), arg(c, "epsilon_first"),
          c.get("domain_size"), c.getAsJsonObject("options")), c.toString());
      assertEquals(c.get("message").getAsString(), error.getMessage());
    }
    for (JsonElement e : V.getAsJsonArray("config_errors")) {
      JsonObject c = e.getAsJsonObject();
      ConfigException error = assertThrows(ConfigException.class, () -> Longitudinal.fromConfig(c.get("config")), c.toString());
      assertEquals(c.get("message").getAsString(), error.getMessage());
    }
  }

  @Test
  void reportSequencesReplayPythonsBytesOverEpochs() {
    int steps = 0;
    for (JsonElement e : V.getAsJsonArray("sequences")) {
      JsonObject s = e.getAsJsonObject();
      LongitudinalProtocol m = Longitudinal.fromConfig(s.get("config"));
      InMemoryMemoStore store = new InMemoryMemoStore();
      for (JsonElement st : s.getAsJsonArray("steps")) {
        JsonObject c = st.getAsJsonObject();
        String where = Json.write(s.get("config")) + " value " + c.get("value");
        ReplaySource source = new ReplaySource(c.get("random").getAsString());
        ReportOutcome out = m.report(c.get("value").getAsLong(), store, "c", source);
        assertEquals(0, source.remaining(), "must consume exactly the bytes Python consumed: " + where);
        assertEquals(c.get("payload_json").getAsString(), Json.write(out.payload), where);
        assertEquals(c.get("memo_key").getAsLong(), out.memoKey, where);
        assertEquals(c.get("new_memo").getAsBoolean(), out.newMemo, where);
        assertEquals(c.get("charge").getAsDouble(), out.charge, where);
        assertEquals(Jcs.canonical(c.get("memo")), Jcs.canonical(store.get("c", out.memoKey)), where);
        m.decode(out.payload, 0);
        steps++;
      }
      assertEquals(Jcs.canonical(s.get("state")), Jcs.canonical(store.getState("c")));
      assertEquals(s.get("memo_count").getAsInt(), store.count("c"));
    }
    assertEquals(22 * 9, steps);
  }

  @Test
  void aRefusedNewMemoDrawsNothingAndAHeldMemoIsNeverCharged() {
    LongitudinalProtocol m = Longitudinal.create("l-grr", 2.0, 1.0, 4);
    InMemoryMemoStore store = new InMemoryMemoStore();
    // an empty replay source: drawing anything would throw
    assertThrows(org.ldp.sdk.longitudinal.MemoBudgetException.class, () -> m.report(3, store, "c", new ReplaySource(new byte[0]), charge -> false));
    assertEquals(0, store.count("c"));
    ReportOutcome first = m.report(3, store, "c", SecureRandomSource.INSTANCE, charge -> charge <= 2.0);
    assertEquals(2.0, first.charge);
    // the held memo reports although the budget would refuse any charge
    ReportOutcome again = m.report(3, store, "c", SecureRandomSource.INSTANCE, charge -> false);
    assertEquals(0.0, again.charge);
    assertEquals(1, store.count("c"));
    assertEquals(8.0, m.lifetimeBound());
    assertEquals(4.0, m.ledgerCharge(2));
  }

  @Test
  void decoderVerdictsMatchPythons() {
    int n = 0;
    for (JsonElement e : V.getAsJsonArray("decode")) {
      JsonObject c = e.getAsJsonObject();
      LongitudinalProtocol m = Longitudinal.fromConfig(c.get("config"));
      JsonObject expect = c.getAsJsonObject("expect");
      String where = Json.write(c);
      if (expect.has("ok")) {
        m.decode(c.get("payload"), 0);
      } else {
        ReportDecodeException error = assertThrows(ReportDecodeException.class, () -> m.decode(c.get("payload"), 0), where);
        assertEquals(expect.get("reason").getAsString(), error.reason, where);
      }
      n++;
    }
    assertTrue(n > 200, "decode vectors: " + n);
  }

  @Test
  void memoizedCollectionsCompileAsThePythonRuntimeOrAreRefusedWithItsMessage() {
    int n = 0;
    for (JsonElement e : V.getAsJsonArray("collections")) {
      JsonObject c = e.getAsJsonObject();
      JsonObject config = c.getAsJsonObject("config");
      String hash = c.get("config_hash").getAsString();
      if (c.has("error")) {
        UnsupportedCollectionException error = assertThrows(UnsupportedCollectionException.class, () -> CollectionConfig.build("col_test", config, hash));
        assertEquals(c.getAsJsonObject("error").get("message").getAsString(), error.getMessage());
        continue;
      }
      CollectionConfig cfg = CollectionConfig.build("col_test", config, hash);
      JsonObject compiled = c.getAsJsonObject("compiled");
      assertEquals(compiled.get("memoized").getAsBoolean(), cfg.memoized);
      assertEquals(compiled.get("unit_epsilon").getAsDouble(), cfg.unitEpsilon);
      assertEquals(compiled.get("max_units_lifetime").getAsLong(), cfg.maxUnitsLifetime);
      JsonElement w = compiled.get("max_units_window");
      assertEquals(w.isJsonNull() ? null : w.getAsLong(), cfg.maxUnitsWindow);
      assertTrue(Vectors.ulps(compiled.get("charge_floor").getAsDouble(), cfg.longitudinal().chargePerNewMemo()) <= 2);
      n++;
    }
    assertEquals(5, n);
  }

  @Test
  void exactOutputLawsMatchPythons() {
    for (JsonElement e : V.getAsJsonArray("output_distribution")) {
      JsonObject c = e.getAsJsonObject();
      LongitudinalProtocol m = Longitudinal.fromConfig(c.get("config"));
      JsonObject state = c.get("state").isJsonNull() ? null : c.getAsJsonObject("state");
      Map<Long, Double> law = m.outputDistribution(c.get("value").getAsLong(), state);
      assertEquals(c.getAsJsonArray("law").size(), law.size());
      for (JsonElement pair : c.getAsJsonArray("law")) {
        long y = pair.getAsJsonArray().get(0).getAsLong();
        double pr = pair.getAsJsonArray().get(1).getAsDouble();
        assertEquals(pr, law.get(y), 1e-15, Json.write(c.get("config")) + " y=" + y);
      }
    }
  }
}
