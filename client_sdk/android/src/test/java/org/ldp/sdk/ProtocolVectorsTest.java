package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.heavy.HeavyHitters;
import org.ldp.sdk.heavy.ItemDomain;
import org.ldp.sdk.heavy.ItemEncodingException;
import org.ldp.sdk.multidim.AttributeParameters;
import org.ldp.sdk.multidim.Rsfd;

/** RS+FD and heavy-hitter clients replay tests/vectors/multidim.json and heavy_hitters.json. */
class ProtocolVectorsTest {
  static final JsonObject MULTIDIM = Vectors.load("multidim.json");
  static final JsonObject HH = Vectors.load("heavy_hitters.json");

  static boolean close(double a, double b, double rel) {
    return a == b || Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));
  }

  static int[] ints(JsonArray a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsInt();
    return out;
  }

  static String bitString(byte[] bits) {
    StringBuilder s = new StringBuilder();
    for (byte b : bits) s.append(b);
    return s.toString();
  }

  static JsonArray reportJson(List<Object> report) {
    JsonArray out = new JsonArray();
    for (Object o : report) {
      if (o instanceof byte[]) out.add(bitString((byte[]) o));
      else out.add((Long) o);
    }
    return out;
  }

  @Test
  void multidimGrid() {
    int exact = 0;
    int total = 0;
    for (JsonElement e : MULTIDIM.getAsJsonArray("grid")) {
      JsonObject d = e.getAsJsonObject();
      Rsfd m = Rsfd.fromConfig(d.get("config"));
      String where = d.get("name") + " " + d.get("config");
      assertEquals(d.get("name").getAsString(), m.name);
      assertEquals(d.get("canonical").getAsString(), Jcs.canonical(m.config()), where);
      assertEquals(d.get("config_hash").getAsString(), m.configHash(), where);
      assertTrue(Vectors.ulps(m.epsilonAmplified, d.get("epsilon_amplified").getAsDouble()) <= 1, where);
      JsonArray attributes = d.getAsJsonArray("attributes");
      for (int i = 0; i < attributes.size(); i++) {
        JsonObject a = attributes.get(i).getAsJsonObject();
        AttributeParameters w = m.attributes.get(i);
        assertEquals(a.get("k").getAsLong(), w.k);
        assertEquals(a.get("oracle").getAsString(), w.oracle, where);
        assertEquals(a.get("fake").getAsString(), w.fake);
        double[][] pairs = {{w.p, a.get("p").getAsDouble()}, {w.q, a.get("q").getAsDouble()},
            {w.fakeSupport, a.get("fake_support").getAsDouble()}, {w.epsilon, a.get("epsilon").getAsDouble()}};
        for (double[] pair : pairs) {
          assertTrue(Vectors.ulps(pair[0], pair[1]) <= 1, where + " attribute " + i);
          total++;
          if (pair[0] == pair[1]) exact++;
        }
        if (w.p == a.get("p").getAsDouble()) assertEquals(new BigInteger(a.get("threshold_p").getAsString()), Sampling.probabilityThreshold(w.p));
      }
      JsonObject privacy = d.getAsJsonObject("privacy");
      assertEquals(privacy.get("neighbouring").getAsString(), m.neighbouring);
      assertTrue(close(m.epsilonCharged(), privacy.get("epsilon").getAsDouble(), 1e-12), where);
      assertTrue(close(m.epsilonTuple(), privacy.get("epsilon_tuple").getAsDouble(), 1e-12), where);
      assertTrue(close(m.epsilonAttribute(), privacy.get("epsilon_attribute").getAsDouble(), 1e-12), where);
      double[] variance = m.varianceApproxPerUser();
      JsonArray want = d.getAsJsonArray("variance_approx_per_user");
      for (int i = 0; i < variance.length; i++) assertTrue(close(variance[i], want.get(i).getAsDouble(), 1e-12), where);
    }
    assertTrue(MULTIDIM.getAsJsonArray("grid").size() > 100);
    assertTrue(exact >= 0.97 * total, exact + " of " + total);
  }

  @Test
  void multidimErrorsAndFromConfig() {
    for (JsonElement e : MULTIDIM.getAsJsonArray("errors")) {
      JsonObject c = e.getAsJsonObject();
      assertThrows(ConfigException.class,
          () -> Rsfd.create(c.get("name"), c.get("epsilon"), c.get("domain_sizes"), c.get("neighbouring"), c.getAsJsonObject("options")), c.toString());
    }
    for (JsonElement c : MULTIDIM.getAsJsonArray("config_errors")) assertThrows(ConfigException.class, () -> Rsfd.fromConfig(c), c.toString());
    for (JsonElement e : MULTIDIM.getAsJsonArray("from_config")) {
      JsonObject d = e.getAsJsonObject();
      Rsfd m = Rsfd.fromConfig(d.get("config_in"));
      assertEquals(Json.canonical(d.get("config")), Json.canonical(m.config()));
      assertEquals(d.get("config_hash").getAsString(), m.configHash());
    }
  }

  @Test
  void multidimPerturbReplaysPythonsBytes() {
    TreeSet<String> seen = new TreeSet<>();
    for (JsonElement e : MULTIDIM.getAsJsonArray("perturb")) {
      JsonObject c = e.getAsJsonObject();
      Rsfd m = Rsfd.fromConfig(c.get("config"));
      ReplaySource source = new ReplaySource(c.get("random").getAsString());
      JsonObject payload = m.perturb(ints(c.getAsJsonArray("value")), source);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload), c.toString());
      assertEquals(0, source.remaining());
      seen.add(m.name);
    }
    assertEquals("[rsfd-adp, rsfd-grr, rsfd-oue-r, rsfd-oue-z]", seen.toString());
  }

  @Test
  void multidimEncodeAndDecoderVerdicts() {
    for (JsonElement e : MULTIDIM.getAsJsonArray("encode")) {
      JsonObject c = e.getAsJsonObject();
      Rsfd m = Rsfd.fromConfig(c.get("config"));
      List<Object> report = new ArrayList<>();
      for (JsonElement entry : c.getAsJsonArray("report")) {
        if (Json.isString(entry)) {
          String s = entry.getAsString();
          byte[] bits = new byte[s.length()];
          for (int i = 0; i < bits.length; i++) bits[i] = (byte) (s.charAt(i) - '0');
          report.add(bits);
        } else {
          report.add(entry.getAsLong());
        }
      }
      JsonObject payload = m.encode(report);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload));
      assertEquals(Json.canonical(c.get("report")), Json.canonical(reportJson(m.decode(payload, -1))));
    }
    for (JsonElement e : MULTIDIM.getAsJsonArray("decode")) {
      JsonObject c = e.getAsJsonObject();
      Rsfd m = Rsfd.fromConfig(c.get("config"));
      JsonObject verdict = new JsonObject();
      try {
        verdict.add("ok", reportJson(m.decode(c.get("payload"), 5)));
      } catch (ReportDecodeException ex) {
        assertEquals(5, ex.index);
        verdict.addProperty("reason", ex.reason);
      }
      JsonElement want = c.has("python") ? c.get("python") : c.get("expect");
      assertEquals(Json.canonical(want), Json.canonical(verdict), c.get("config") + " " + c.get("payload"));
    }
  }

  @Test
  void multidimOutputLaws() {
    for (JsonElement e : MULTIDIM.getAsJsonArray("output_distribution")) {
      JsonObject c = e.getAsJsonObject();
      Map<String, Double> got = Rsfd.fromConfig(c.get("config")).outputDistribution(ints(c.getAsJsonArray("value")));
      JsonArray law = c.getAsJsonArray("law");
      assertEquals(law.size(), got.size());
      for (JsonElement row : law) {
        JsonArray outputs = row.getAsJsonArray().get(0).getAsJsonArray();
        StringBuilder key = new StringBuilder();
        for (int i = 0; i < outputs.size(); i++) key.append(i > 0 ? "," : "").append(outputs.get(i).getAsLong());
        assertTrue(Math.abs(got.get(key.toString()) - row.getAsJsonArray().get(1).getAsDouble()) <= 1e-15);
      }
    }
  }

  /** A JSON item of the vectors as a Java item: {"int": "..."} is a BigInteger. */
  static Object item(JsonElement e) {
    if (e == null || e.isJsonNull()) return null;
    if (e.isJsonObject() && e.getAsJsonObject().has("int")) return new BigInteger(e.getAsJsonObject().get("int").getAsString());
    if (Json.isString(e)) return e.getAsString();
    if (Json.isBoolean(e)) return e.getAsBoolean();
    if (Json.isInt(e)) return e.getAsLong();
    if (Json.isNumber(e)) return e.getAsDouble();
    return e; // a list: not an item
  }

  @Test
  void itemCodesAndPrefixKeys() {
    for (JsonElement e : HH.getAsJsonArray("items")) {
      JsonObject c = e.getAsJsonObject();
      ItemDomain domain = ItemDomain.fromConfig(c.get("domain"));
      assertEquals(Json.canonical(c.get("domain")), Json.canonical(domain.config()));
      Object item = item(c.get("item"));
      if (c.has("error") && c.get("error").getAsBoolean()) {
        assertThrows(ItemEncodingException.class, () -> domain.encode(item), c.toString());
      } else {
        assertEquals(c.get("code").getAsString(), domain.encode(item).toString(16), c.toString());
        if (c.has("canonical")) assertEquals(c.get("canonical").getAsString(), domain.canonical(item));
      }
    }
    assertThrows(ItemEncodingException.class, () -> ItemDomain.strings(4, "truncate").encode("a\ud800"));
    for (JsonElement e : HH.getAsJsonArray("prefix_keys")) {
      JsonArray c = e.getAsJsonArray();
      assertEquals(c.get(2).getAsLong(), ItemDomain.prefixKey(new BigInteger(c.get(0).getAsString(), 16), c.get(1).getAsInt()), c.toString());
    }
  }

  @Test
  void heavyHitterConfigsAndErrors() {
    for (JsonElement e : HH.getAsJsonArray("configs")) {
      JsonObject c = e.getAsJsonObject();
      HeavyHitters p = HeavyHitters.create(c.get("protocol"), c.getAsJsonObject("options"));
      assertEquals(c.get("canonical").getAsString(), Jcs.canonical(p.config()), c.toString());
      assertEquals(c.get("config_hash").getAsString(), p.configHash());
      assertEquals(Json.canonical(c.get("levels")), Json.canonical(Json.of(p.lengths)));
      assertEquals(c.get("g").getAsInt(), p.g());
      assertEquals(c.get("mechanism").getAsString(), p.mechanism);
      assertTrue(Vectors.ulps(p.olh.pStar(), c.get("p").getAsDouble()) <= 1);
      assertEquals(c.get("epsilon_charged").getAsDouble(), p.epsilonCharged());
      assertEquals(c.get("config_hash").getAsString(), HeavyHitters.fromConfig(c.get("config")).configHash());
    }
    // Java keeps Python's int/float typing, so every error case applies (also the integral floats)
    for (JsonElement e : HH.getAsJsonArray("errors")) {
      JsonObject c = e.getAsJsonObject();
      assertThrows(ConfigException.class, () -> HeavyHitters.create(c.get("protocol"), c.getAsJsonObject("options")), c.toString());
    }
    for (JsonElement c : HH.getAsJsonArray("config_errors")) assertThrows(ConfigException.class, () -> HeavyHitters.fromConfig(c), c.toString());
    for (JsonElement e : HH.getAsJsonArray("from_config")) {
      JsonObject d = e.getAsJsonObject();
      HeavyHitters p = HeavyHitters.fromConfig(d.get("config_in"));
      assertEquals(Json.canonical(d.get("config")), Json.canonical(p.config()));
      assertEquals(d.get("config_hash").getAsString(), p.configHash());
    }
  }

  @Test
  void heavyHitterPerturbReplaysPythonsBytes() {
    TreeSet<String> seen = new TreeSet<>();
    for (JsonElement e : HH.getAsJsonArray("perturb")) {
      JsonObject c = e.getAsJsonObject();
      HeavyHitters p = HeavyHitters.fromConfig(c.get("config"));
      ReplaySource source = new ReplaySource(c.get("random").getAsString());
      JsonElement party = c.get("party");
      Object partyArg = party == null || party.isJsonNull() ? null : Json.isString(party) ? party.getAsString() : (Object) party.getAsInt();
      JsonObject payload = p.perturb(item(c.get("item")), partyArg, source);
      assertEquals(c.get("payload_json").getAsString(), Json.write(payload), c.toString());
      assertEquals(0, source.remaining());
      p.decode(payload, 0);
      seen.add(p.name);
    }
    assertEquals("[pem, tap, taps, treehist]", seen.toString());
  }

  @Test
  void heavyHitterDecoderVerdicts() {
    JsonArray cases = HH.getAsJsonArray("decode");
    for (JsonElement e : cases) {
      JsonObject c = e.getAsJsonObject();
      HeavyHitters p = HeavyHitters.fromConfig(c.get("config"));
      JsonObject verdict = new JsonObject();
      try {
        verdict.add("ok", p.decode(c.get("payload"), 2));
      } catch (ReportDecodeException ex) {
        assertEquals(2, ex.index);
        verdict.addProperty("reason", ex.reason);
      }
      JsonElement want = c.has("python") ? c.get("python") : c.get("expect");
      assertEquals(Json.canonical(want), Json.canonical(verdict), c.get("config").getAsJsonObject().get("protocol") + " " + c.get("payload"));
    }
    assertTrue(cases.size() > 150);
  }
}
