package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.multidim.MultidimProtocol;
import org.ldp.sdk.multidim.OracleBased;

/** SPL and SMP replay tests/vectors/multidim_oracles.json (tests/vectors/generate_multidim_oracles.py). */
class MultidimOraclesVectorsTest {
  static final JsonObject V = Vectors.load("multidim_oracles.json");

  static int[] ints(JsonArray a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsInt();
    return out;
  }

  @Test
  void configsHashesPrivacyAndOracles() {
    for (JsonElement e : V.getAsJsonArray("grid")) {
      JsonObject d = e.getAsJsonObject();
      OracleBased m = (OracleBased) MultidimProtocol.fromConfig(d.get("config"));
      String where = d.get("canonical").getAsString();
      assertEquals(d.get("canonical").getAsString(), Jcs.canonical(m.config()));
      assertEquals(d.get("config_hash").getAsString(), m.configHash());
      JsonObject privacy = d.getAsJsonObject("privacy");
      assertEquals(privacy.get("epsilon").getAsDouble(), m.epsilonCharged(), where);
      assertEquals(privacy.get("epsilon_tuple").getAsDouble(), m.epsilonTuple(), where);
      assertEquals(privacy.get("epsilon_attribute").getAsDouble(), m.epsilonAttribute(), where);
      JsonArray oracles = d.getAsJsonArray("oracles");
      for (int j = 0; j < oracles.size(); j++) {
        JsonObject o = oracles.get(j).getAsJsonObject();
        FrequencyOracle mine = m.oracles.get(j);
        assertEquals(o.get("name").getAsString(), mine.name, where);
        assertEquals(o.get("epsilon").getAsDouble(), mine.epsilon, where);
        assertEquals(o.get("domain_size").getAsLong(), mine.domainSize);
        assertTrue(Vectors.ulps(o.get("p_star").getAsDouble(), mine.pStar()) <= 1, where);
        assertTrue(Vectors.ulps(o.get("q_star").getAsDouble(), mine.qStar()) <= 1, where);
      }
      double[] variance = m.varianceApproxPerUser();
      JsonArray want = d.getAsJsonArray("variance_approx_per_user");
      for (int j = 0; j < variance.length; j++) assertEquals(want.get(j).getAsDouble(), variance[j], 1e-12 * Math.abs(variance[j]), where);
    }
  }

  @Test
  void configErrorsWithPythonsMessages() {
    for (JsonElement e : V.getAsJsonArray("errors")) {
      JsonObject c = e.getAsJsonObject();
      ConfigException error = assertThrows(ConfigException.class, () -> MultidimProtocol.create(c.get("name"), c.get("epsilon"), c.get("domain_sizes"),
          c.get("neighbouring"), c.getAsJsonObject("options")), c.toString());
      assertEquals(c.get("message").getAsString(), error.getMessage());
    }
  }

  @Test
  void perturbReplaysPythonsBytes() {
    TreeSet<String> seen = new TreeSet<>();
    for (JsonElement e : V.getAsJsonArray("perturb")) {
      JsonObject c = e.getAsJsonObject();
      MultidimProtocol m = MultidimProtocol.fromConfig(c.get("config"));
      ReplaySource source = new ReplaySource(c.get("random").getAsString());
      JsonObject payload = m.perturb(ints(c.getAsJsonArray("value")), source);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload), c.toString());
      assertEquals(0, source.remaining(), "must consume exactly the bytes Python consumed");
      m.decode(payload, 0);
      seen.add(Json.canonical(c.get("config")));
    }
    assertEquals(10, seen.size());
  }

  @Test
  void decoderVerdictsArePythons() {
    for (JsonElement e : V.getAsJsonArray("decode")) {
      JsonObject c = e.getAsJsonObject();
      MultidimProtocol m = MultidimProtocol.fromConfig(c.get("config"));
      JsonObject verdict = new JsonObject();
      try {
        m.decode(c.get("payload"), 4);
        verdict.addProperty("ok", true);
      } catch (ReportDecodeException ex) {
        assertEquals(4, ex.index);
        verdict.addProperty("reason", ex.reason);
      }
      assertEquals(Json.canonical(c.get("expect")), Json.canonical(verdict), c.get("config") + " " + c.get("payload"));
    }
  }

  @Test
  void exactOutputLaws() {
    for (JsonElement e : V.getAsJsonArray("output_distribution")) {
      JsonObject c = e.getAsJsonObject();
      OracleBased m = (OracleBased) MultidimProtocol.fromConfig(c.get("config"));
      Map<List<Long>, Double> got = m.outputDistribution(ints(c.getAsJsonArray("value")));
      JsonArray law = c.getAsJsonArray("law");
      assertEquals(law.size(), got.size());
      for (JsonElement row : law) {
        List<Long> key = new ArrayList<>();
        for (JsonElement k : row.getAsJsonArray().get(0).getAsJsonArray()) key.add(k.getAsLong());
        assertEquals(row.getAsJsonArray().get(1).getAsDouble(), got.get(key), 1e-15, key.toString());
      }
    }
  }
}
