package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.heavy.HeavyHitterProtocol;
import org.ldp.sdk.heavy.HeavyHitterProtocols;
import org.ldp.sdk.heavy.HeavyHitters;
import org.ldp.sdk.heavy.ItemDomain;
import org.ldp.sdk.heavy.KnownCandidates;
import org.ldp.sdk.heavy.LinearHash;

/** The known-candidate protocol replays every section of tests/vectors/known.json (generate_known.py). */
class KnownVectorsTest {
  static final JsonObject V = Vectors.load("known.json");

  static KnownCandidates known(JsonElement config) {
    HeavyHitterProtocol p = HeavyHitterProtocols.fromConfig(config);
    assertTrue(p instanceof KnownCandidates, config.toString());
    return (KnownCandidates) p;
  }

  @Test
  void defaultScreens() {
    JsonArray screens = V.getAsJsonArray("screens");
    for (JsonElement e : screens) {
      JsonArray c = e.getAsJsonArray();
      int[] screen = LinearHash.defaultScreen(c.get(0).getAsDouble());
      assertEquals(c.get(1).getAsInt(), screen[0], c.toString());
      assertEquals(c.get(2).getAsInt(), screen[1], c.toString());
    }
    assertEquals(12, screens.size());
  }

  @Test
  void configsHashesAndProbabilities() {
    JsonArray configs = V.getAsJsonArray("configs");
    for (JsonElement e : configs) {
      JsonObject c = e.getAsJsonObject();
      HeavyHitterProtocol built = HeavyHitterProtocols.create(Json.of("known"), c.getAsJsonObject("options"));
      KnownCandidates k = (KnownCandidates) built;
      String where = c.get("options").toString();
      assertEquals(c.get("canonical").getAsString(), Jcs.canonical(k.config()), where);
      assertEquals(Json.canonical(c.get("config")), Json.canonical(k.config()), where);
      assertEquals(c.get("config_hash").getAsString(), k.configHash(), where);
      assertEquals(c.get("g").getAsInt(), k.g(), where);
      assertEquals(c.get("p_star").getAsDouble(), k.olh.pStar(), where);
      JsonObject screen = c.getAsJsonObject("screen");
      assertEquals(screen.get("p").getAsInt(), k.p, where);
      assertEquals(screen.get("d").getAsInt(), k.d, where);
      assertEquals(screen.get("p_star").getAsDouble(), k.screenPStar, where);
      assertEquals(c.get("epsilon_charged").getAsDouble(), k.epsilonCharged(), where);
      assertEquals(c.get("mechanism").getAsString(), k.protocol());
      // rebuilt from its config (also with the protocol's name in capitals, as Python's create accepts)
      assertEquals(c.get("config_hash").getAsString(), known(c.get("config")).configHash(), where);
      JsonObject upper = c.getAsJsonObject("config").deepCopy();
      upper.addProperty("protocol", "KNOWN");
      assertEquals(c.get("config_hash").getAsString(), known(upper).configHash(), where);
    }
    assertEquals(8, configs.size());
  }

  /** Java keeps Python's int/float typing, so every refused option set applies (the integral floats too). */
  @Test
  void refusedOptions() {
    JsonArray errors = V.getAsJsonArray("errors");
    for (JsonElement e : errors) {
      JsonObject options = e.getAsJsonObject().getAsJsonObject("options");
      assertThrows(ConfigException.class, () -> HeavyHitterProtocols.create(Json.of("known"), options), options.toString());
      JsonObject config = options.deepCopy();
      config.addProperty("protocol", "known");
      assertThrows(ConfigException.class, () -> HeavyHitterProtocols.fromConfig(config), config.toString());
    }
    assertEquals(16, errors.size());
    // a config whose derived fields disagree with its parameters, or that is not a prefix-tree protocol's
    JsonObject good = V.getAsJsonArray("configs").get(0).getAsJsonObject().getAsJsonObject("config");
    JsonObject badFo = good.deepCopy();
    badFo.getAsJsonObject("fo").addProperty("hash", "other");
    assertThrows(ConfigException.class, () -> HeavyHitterProtocols.fromConfig(badFo));
    JsonObject badKey = good.deepCopy();
    badKey.addProperty("key", "hh-key-v0");
    assertThrows(ConfigException.class, () -> HeavyHitterProtocols.fromConfig(badKey));
    JsonObject levels = good.deepCopy();
    levels.add("levels", Json.of(new int[] {32}));
    assertThrows(ConfigException.class, () -> HeavyHitterProtocols.fromConfig(levels));
    assertThrows(ConfigException.class, () -> HeavyHitters.fromConfig(good));
  }

  @Test
  void bucketsAndLinearHashes() {
    JsonArray buckets = V.getAsJsonArray("buckets");
    for (JsonElement e : buckets) {
      JsonArray c = e.getAsJsonArray();
      long key = Compat.parseHex64(c.get(0).getAsString());
      assertEquals(c.get(3).getAsLong(), LinearHash.bucketOf(key, c.get(1).getAsInt(), c.get(2).getAsInt()), c.toString());
    }
    JsonArray hashes = V.getAsJsonArray("linear_hash");
    for (JsonElement e : hashes) {
      JsonArray c = e.getAsJsonArray();
      long key = Compat.parseHex64(c.get(1).getAsString());
      assertEquals(c.get(4).getAsInt(), LinearHash.value(c.get(0).getAsLong(), key, c.get(2).getAsInt(), c.get(3).getAsInt()), c.toString());
    }
    assertEquals(224, buckets.size());
    assertEquals(400, hashes.size());
  }

  @Test
  void perturbReplaysPythonsBytes() {
    JsonArray cases = V.getAsJsonArray("perturb");
    int[] groups = new int[3];
    int screenOther = 0;
    TreeSet<String> configs = new TreeSet<>();
    for (JsonElement e : cases) {
      JsonObject c = e.getAsJsonObject();
      KnownCandidates k = known(c.get("config"));
      Object item = ProtocolVectorsTest.item(c.get("item"));
      ReplaySource source = new ReplaySource(c.get("random").getAsString());
      JsonObject payload = k.perturb(item, null, source);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload), c.toString());
      assertEquals(Json.canonical(c.get("payload")), Json.canonical(payload));
      assertEquals(0, source.remaining(), c.toString());
      JsonObject decoded = k.decode(payload, 0);
      int level = decoded.get("l").getAsInt();
      groups[level]++;
      if (level == KnownCandidates.SCREEN) {
        long key = ItemDomain.prefixKey(k.domain.encode(item), k.domain.bits);
        long seed = Compat.parseHex64(decoded.get("s").getAsString());
        if (LinearHash.value(seed, key, k.p, k.d) != decoded.get("y").getAsInt()) screenOther++;
      }
      configs.add(k.configHash());
    }
    assertEquals(104, cases.size());
    assertEquals(8, configs.size());
    // both groups, and the screen's GRR both keeping and replacing its value, are replayed
    assertTrue(groups[1] > 10 && groups[2] > 10, groups[1] + " screen, " + groups[2] + " test");
    assertTrue(screenOther > 0 && screenOther < groups[1], screenOther + " of " + groups[1]);
  }

  @Test
  void aBadItemOrAPartyIsRefusedBeforeAnythingIsDrawn() {
    KnownCandidates k = known(V.getAsJsonArray("configs").get(2).getAsJsonObject().get("config")); // 32-bit integers
    ReplaySource empty = new ReplaySource(new byte[0]);
    assertThrows(org.ldp.sdk.heavy.ItemEncodingException.class, () -> k.perturb(-1L, null, empty));
    assertThrows(org.ldp.sdk.heavy.ItemEncodingException.class, () -> k.perturb("x", null, empty));
    assertThrows(IllegalArgumentException.class, () -> k.perturb(1L, "eu", empty));
    assertThrows(IllegalArgumentException.class, () -> k.validate(1L, "eu"));
    k.validate(1L, null);
    for (int i = 0; i < 200; i++) k.decode(k.perturb((long) i, null), i); // the platform CSPRNG: always a valid payload
  }

  @Test
  void decoderVerdicts() {
    JsonArray cases = V.getAsJsonArray("decode");
    TreeSet<String> reasons = new TreeSet<>();
    for (JsonElement e : cases) {
      JsonObject c = e.getAsJsonObject();
      KnownCandidates k = known(c.get("config"));
      JsonObject verdict = new JsonObject();
      try {
        verdict.add("ok", k.decode(c.get("payload"), 3));
      } catch (ReportDecodeException ex) {
        assertEquals(3, ex.index);
        verdict.addProperty("reason", ex.reason);
        reasons.add(ex.reason);
      }
      JsonElement want = c.has("python") ? c.get("python") : c.get("expect");
      assertEquals(Json.canonical(want), Json.canonical(verdict), k.configHash() + " " + c.get("payload"));
    }
    assertEquals(74, cases.size());
    assertEquals("[bad_encoding, bad_type, bad_version, missing_field, not_an_object, out_of_range, unknown_field, wrong_mechanism]",
        reasons.toString());
  }
}
