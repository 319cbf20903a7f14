package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.mechanisms.DecodedReport;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Mechanisms;
import org.ldp.sdk.mechanisms.Olh;

/** Frequency oracles replay the shared vectors byte for byte (params, config, hash, random, wire, perturb). */
class MechanismVectorsTest {
  private static JsonObject options(JsonObject d) {
    JsonObject o = new JsonObject();
    if (d.has("g")) o.add("g", d.get("g"));
    return o;
  }

  /** Compare with the Python description; returns whether p* and q* are bit-identical. */
  static boolean check(FrequencyOracle m, JsonObject d, String where) {
    assertEquals(d.get("name").getAsString(), m.name, where);
    assertEquals(Json.canonical(d.get("config")), Json.canonical(m.config()), where);
    assertEquals(d.get("canonical").getAsString(), Jcs.canonical(m.config()), where);
    assertEquals(d.get("config_hash").getAsString(), m.configHash(), where);
    assertEquals(d.get("report_bits").getAsInt(), m.reportBits(), where);
    Map<String, Number> params = m.parameters();
    JsonObject expected = d.getAsJsonObject("parameters");
    assertEquals(expected.keySet(), params.keySet(), where);
    for (Map.Entry<String, JsonElement> e : expected.entrySet()) {
      if (e.getKey().equals("g") || e.getKey().equals("K")) {
        assertEquals(e.getValue().getAsLong(), params.get(e.getKey()).longValue(), where);
      } else {
        assertTrue(Vectors.ulps(params.get(e.getKey()).doubleValue(), e.getValue().getAsDouble()) <= 1, where + " " + e.getKey());
      }
    }
    double p = d.get("p_star").getAsDouble();
    double q = d.get("q_star").getAsDouble();
    assertTrue(Vectors.ulps(m.pStar(), p) <= 1, where);
    assertTrue(Vectors.ulps(m.qStar(), q) <= 1, where);
    boolean exact = m.pStar() == p && m.qStar() == q;
    if (exact) assertEquals(d.get("variance_approx_per_user").getAsDouble(), m.varianceApproxPerUser(), where);
    assertEquals(new BigInteger(d.get("threshold_p").getAsString()), Sampling.probabilityThreshold(p), where);
    return exact;
  }

  @Test
  void paramsGrid() {
    JsonArray grid = Vectors.load("params.json").getAsJsonArray("grid");
    int exact = 0;
    for (JsonElement e : grid) {
      JsonObject d = e.getAsJsonObject();
      FrequencyOracle m = Mechanisms.create(d.get("name"), d.get("epsilon"), d.get("domain_size"), options(d));
      if (check(m, d, d.get("name") + " eps=" + d.get("epsilon") + " k=" + d.get("domain_size"))) exact++;
    }
    assertTrue(grid.size() > 300);
    // correctly rounded exp/log: every p*, q* bit-identical except where glibc misrounds
    assertTrue(exact >= 0.99 * grid.size(), "only " + exact + " of " + grid.size() + " bit-identical");
  }

  @Test
  void optimalGAndAuto() {
    JsonObject v = Vectors.load("params.json");
    for (JsonElement e : v.getAsJsonArray("optimal_g")) {
      JsonArray c = e.getAsJsonArray();
      assertEquals(c.get(1).getAsLong(), Olh.optimalG(c.get(0).getAsDouble()), "eps=" + c.get(0));
    }
    for (JsonElement e : v.getAsJsonArray("auto")) {
      JsonArray c = e.getAsJsonArray();
      String got;
      try {
        got = Mechanisms.choose(c.get(0), c.get(1), c.get(2).isJsonNull() ? null : c.get(2)).name;
      } catch (ConfigException ex) {
        got = null;
      }
      String want = c.get(3).isJsonNull() ? null : c.get(3).getAsString();
      assertEquals(want, got, "auto " + c);
    }
  }

  @Test
  void outputDistributions() {
    for (JsonElement e : Vectors.load("params.json").getAsJsonArray("output_distribution")) {
      JsonObject c = e.getAsJsonObject();
      Map<Long, Double> got = Mechanisms.fromConfig(c.get("config")).outputDistribution(c.get("value").getAsLong());
      JsonArray law = c.getAsJsonArray("law");
      assertEquals(law.size(), got.size());
      for (JsonElement row : law) {
        double want = row.getAsJsonArray().get(1).getAsDouble();
        assertTrue(Math.abs(got.get(row.getAsJsonArray().get(0).getAsLong()) - want) <= 1e-15);
      }
    }
  }

  @Test
  void configSuccessesAndErrors() {
    JsonObject v = Vectors.load("config.json");
    for (JsonElement e : v.getAsJsonArray("from_config")) {
      JsonObject d = e.getAsJsonObject();
      check(Mechanisms.fromConfig(d.get("config_in")), d, d.get("config_in").toString());
    }
    int exactMessages = 0;
    for (JsonElement e : v.getAsJsonArray("errors")) {
      JsonObject c = e.getAsJsonObject();
      ConfigException error = assertThrows(ConfigException.class, () -> {
        if (c.get("call").getAsString().equals("create")) {
          Mechanisms.create(c.get("name"), c.get("epsilon"), c.get("domain_size"), c.getAsJsonObject("options"));
        } else {
          Mechanisms.fromConfig(c.get("config"));
        }
      }, c.toString());
      if (c.get("message_exact").getAsBoolean()) {
        assertEquals(c.get("message").getAsString(), error.getMessage(), c.toString());
        exactMessages++;
      }
    }
    assertTrue(exactMessages > 30);
  }

  @Test
  void olhHash() {
    JsonObject v = Vectors.load("olh_hash.json");
    assertEquals(Olh.HASH_FAMILY, v.get("family").getAsString());
    for (JsonElement e : v.getAsJsonArray("splitmix64")) {
      JsonArray c = e.getAsJsonArray();
      assertEquals(c.get(1).getAsString(), Hex.u64(Olh.splitmix64(Long.parseUnsignedLong(c.get(0).getAsString(), 16))));
    }
    for (JsonElement e : v.getAsJsonArray("expand_seed")) {
      JsonArray c = e.getAsJsonArray();
      long[] ab = Olh.expandSeed(Long.parseUnsignedLong(c.get(0).getAsString(), 16));
      assertEquals(c.get(1).getAsString(), Hex.u64(ab[0]));
      assertEquals(c.get(2).getAsString(), Hex.u64(ab[1]));
    }
    JsonArray hv = v.getAsJsonArray("hash_value");
    for (JsonElement e : hv) {
      JsonArray c = e.getAsJsonArray();
      assertEquals(c.get(3).getAsInt(), Olh.hashValue(Long.parseUnsignedLong(c.get(0).getAsString(), 16), c.get(1).getAsLong(), c.get(2).getAsLong()), c.toString());
    }
    assertTrue(hv.size() > 500);
  }

  @Test
  void randomThresholdsAndDraws() {
    JsonObject v = Vectors.load("random.json");
    for (JsonElement e : v.getAsJsonArray("thresholds")) {
      JsonObject c = e.getAsJsonObject();
      double p = c.get("p").getAsDouble();
      assertEquals(new BigInteger(c.get("threshold").getAsString()), Sampling.probabilityThreshold(p), "p=" + p);
      if (c.has("vector_threshold")) {
        assertEquals(new BigInteger(c.get("vector_threshold").getAsString()), Sampling.Threshold.ofVector(p).value, "p=" + p);
      }
    }
    for (JsonElement e : v.getAsJsonArray("bernoulli")) {
      JsonObject c = e.getAsJsonObject();
      ReplaySource s = new ReplaySource(c.get("random").getAsString());
      assertEquals(c.get("result").getAsBoolean(), Sampling.bernoulli(Sampling.Threshold.of(c.get("p").getAsDouble()), s));
      assertEquals(0, s.remaining());
    }
    for (JsonElement e : v.getAsJsonArray("uniform_int")) {
      JsonObject c = e.getAsJsonObject();
      ReplaySource s = new ReplaySource(c.get("random").getAsString());
      assertEquals(c.get("result").getAsLong(), Sampling.uniformInt(c.get("n").getAsLong(), s), c.toString());
      assertEquals(0, s.remaining());
    }
    for (JsonElement e : v.getAsJsonArray("random_u64")) {
      JsonObject c = e.getAsJsonObject();
      ReplaySource s = new ReplaySource(c.get("random").getAsString());
      assertEquals(c.get("result").getAsString(), Hex.u64(Sampling.randomU64(s)));
      assertEquals(0, s.remaining());
    }
    for (JsonElement e : v.getAsJsonArray("bernoulli_vector")) {
      JsonObject c = e.getAsJsonObject();
      JsonArray probabilities = c.getAsJsonArray("probabilities");
      ReplaySource s = new ReplaySource(c.get("random").getAsString());
      byte[] bits = Sampling.bernoulliBits(probabilities.size(), i -> Sampling.Threshold.ofVector(probabilities.get(i).getAsDouble()), s);
      JsonArray want = c.getAsJsonArray("result");
      for (int i = 0; i < bits.length; i++) assertEquals(want.get(i).getAsInt(), bits[i]);
      assertEquals(0, s.remaining());
    }
  }

  @Test
  void canonicalJsonIsRfc8785() {
    JsonObject v = Vectors.load("canonical.json");
    for (JsonElement e : v.getAsJsonArray("numbers")) {
      JsonArray c = e.getAsJsonArray();
      assertEquals(c.get(1).getAsString(), Jcs.canonical(new com.google.gson.JsonPrimitive(c.get(0).getAsDouble())), "JCS form of " + c.get(0));
    }
    for (JsonElement e : v.getAsJsonArray("objects")) {
      JsonObject c = e.getAsJsonObject();
      JsonElement value = c.get("value"); // plain JSON: under JCS a number's text depends on its value only
      assertEquals(c.get("canonical").getAsString(), Jcs.canonical(value));
      if (c.has("config_hash")) assertEquals(c.get("config_hash").getAsString(), Json.configHash(value));
    }
    for (JsonElement e : v.getAsJsonArray("refused")) {
      JsonElement parsed = Json.parse(e.getAsString());
      assertThrows(IllegalArgumentException.class, () -> Jcs.canonical(parsed), e.getAsString());
      assertThrows(IllegalArgumentException.class, () -> Json.configHash(parsed), e.getAsString());
    }
  }

  @Test
  void wireEncodings() {
    for (JsonElement e : Vectors.load("wire.json").getAsJsonArray("encode")) {
      JsonObject c = e.getAsJsonObject();
      FrequencyOracle m = Mechanisms.fromConfig(c.get("config"));
      DecodedReport r;
      if (c.has("bits")) {
        String s = c.get("bits").getAsString();
        byte[] bits = new byte[s.length()];
        for (int i = 0; i < bits.length; i++) bits[i] = (byte) (s.charAt(i) - '0');
        r = DecodedReport.ofBits(bits);
      } else if (c.has("seed")) {
        r = DecodedReport.ofSeed(Long.parseUnsignedLong(c.get("seed").getAsString(), 16), c.get("y").getAsLong());
      } else {
        r = DecodedReport.ofIndex(c.get("y").getAsLong());
      }
      JsonObject payload = m.encode(r);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload));
      assertEquals(Json.canonical(c.get("payload")), Json.canonical(payload));
      DecodedReport back = m.decode(payload, -1);
      if (c.has("bits")) {
        StringBuilder s = new StringBuilder();
        for (byte b : back.bits) s.append(b);
        assertEquals(c.get("bits").getAsString(), s.toString());
      } else {
        assertEquals(c.get("y").getAsLong(), back.y);
      }
    }
  }

  @Test
  void decoderVerdictsArePythons() {
    JsonArray cases = Vectors.load("wire.json").getAsJsonArray("decode");
    for (JsonElement e : cases) {
      JsonObject c = e.getAsJsonObject();
      FrequencyOracle m = Mechanisms.fromConfig(c.get("config"));
      JsonObject verdict = new JsonObject();
      try {
        DecodedReport r = m.decode(c.get("payload"), 3);
        JsonObject ok = new JsonObject();
        if (r.bits != null) {
          StringBuilder s = new StringBuilder();
          for (byte b : r.bits) s.append(b);
          ok.addProperty("bits", s.toString());
        } else if (r.hasSeed) {
          ok.addProperty("seed", Hex.u64(r.seed));
          ok.addProperty("y", r.y);
        } else {
          ok.addProperty("y", r.y);
        }
        verdict.add("ok", ok);
      } catch (ReportDecodeException ex) {
        assertEquals(3, ex.index);
        verdict.addProperty("reason", ex.reason);
      }
      // Java keeps Python's int/float distinction, so it must give Python's own verdict
      JsonElement want = c.has("python") ? c.get("python") : c.get("expect");
      assertEquals(Json.canonical(want), Json.canonical(verdict), c.get("config") + " " + c.get("payload"));
    }
    assertTrue(cases.size() > 700);
  }

  @Test
  void wholeReportsReplayPythonsBytes() {
    java.util.Set<String> seen = new java.util.TreeSet<>();
    for (JsonElement e : Vectors.load("perturb.json").getAsJsonArray("cases")) {
      JsonObject c = e.getAsJsonObject();
      FrequencyOracle m = Mechanisms.fromConfig(c.get("config"));
      ReplaySource source = new ReplaySource(c.get("random").getAsString());
      JsonObject payload = m.perturb(c.get("value").getAsLong(), source);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload), c.toString());
      assertEquals(0, source.remaining(), "must consume exactly the bytes Python consumed");
      seen.add(m.name);
    }
    assertEquals("[blh, grr, hr, olh, oue, sue]", seen.toString());
  }
}
