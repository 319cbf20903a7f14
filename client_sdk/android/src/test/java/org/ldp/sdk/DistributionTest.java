package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.heavy.HeavyHitters;
import org.ldp.sdk.heavy.ItemDomain;
import org.ldp.sdk.mechanisms.DecodedReport;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Mechanisms;
import org.ldp.sdk.mechanisms.Olh;
import org.ldp.sdk.multidim.Rsfd;

/**
 * Chi-square goodness of fit of each mechanism's output law, sampled from the real CSPRNG,
 * against its closed form. The critical value is the chi-square quantile at 1 - 1e-6
 * (Wilson-Hilferty), so a correct sampler fails about once in a million runs; each test also
 * checks that the same samples reject a law off by a small amount (the test can fail).
 */
class DistributionTest {
  static final int N = 40_000;

  /** Chi-square upper quantile at 1 - 1e-6 (z = 4.753), Wilson-Hilferty approximation. */
  static double critical(int df) {
    double z = 4.753;
    double a = 2.0 / (9.0 * df);
    return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
  }

  static double chiSquare(Map<Long, Integer> counts, Map<Long, Double> law, int n) {
    double stat = 0;
    for (Map.Entry<Long, Double> e : law.entrySet()) {
      double expected = n * e.getValue();
      double observed = counts.getOrDefault(e.getKey(), 0);
      stat += (observed - expected) * (observed - expected) / expected;
    }
    for (Long k : counts.keySet()) assertTrue(law.containsKey(k), "output " + k + " has probability 0");
    return stat;
  }

  static void fit(String what, Map<Long, Double> law, Function<Integer, Long> draw) {
    double total = 0;
    for (double p : law.values()) total += p;
    assertEquals(1.0, total, 1e-9, what + ": law sums to 1");
    Map<Long, Integer> counts = new HashMap<>();
    for (int i = 0; i < N; i++) counts.merge(draw.apply(i), 1, Integer::sum);
    int df = law.size() - 1;
    double stat = chiSquare(counts, law, N);
    assertTrue(stat < critical(df), what + ": chi2 = " + stat + " >= " + critical(df) + " (df " + df + ")");
    // a law moved by 0.1 between the two most likely outputs must be rejected by the same samples
    Map<Long, Double> wrong = new HashMap<>(law);
    Long[] keys = law.keySet().toArray(new Long[0]);
    java.util.Arrays.sort(keys, (x, y) -> Double.compare(law.get(y), law.get(x)));
    double shift = Math.min(0.1, law.get(keys[1]) / 2);
    wrong.put(keys[0], law.get(keys[0]) + shift);
    wrong.put(keys[1], law.get(keys[1]) - shift);
    assertTrue(chiSquare(counts, wrong, N) > critical(df), what + ": the test cannot tell a wrong law");
  }

  static long outputKey(FrequencyOracle m, JsonObject payload) {
    DecodedReport r = m.decode(payload, -1);
    if (r.bits == null) return r.y;
    long key = 0;
    for (int j = 0; j < r.bits.length; j++) key |= (long) r.bits[j] << j;
    return key;
  }

  @Test
  void frequencyOraclesMatchTheirClosedForms() {
    String[][] cases = {{"grr", "1.0", "5"}, {"grr", "3.0", "3"}, {"sue", "1.0", "4"}, {"oue", "2.0", "5"}, {"hr", "1.0", "6"}, {"hr", "0.5", "3"}};
    for (String[] c : cases) {
      FrequencyOracle m = Mechanisms.create(c[0], Double.parseDouble(c[1]), Long.parseLong(c[2]));
      long value = m.domainSize - 2;
      fit(m.toString(), m.outputDistribution(value), i -> outputKey(m, m.perturb(value)));
    }
  }

  @Test
  void olhSupportsTheValueWithPStarAndOthersWithQStar() {
    for (String name : new String[] {"olh", "blh"}) {
      FrequencyOracle m = Mechanisms.create(name, 1.5, 1000);
      long value = 17;
      // law of (y == H_s(value), y == H_s(other)): independent seeds make the two hashes independent
      double p = m.pStar();
      double q = m.qStar();
      int g = ((Olh) m).g;
      // P[support other | support value] = P[H(other) == H(value)] = 1/g (given y = H(value));
      // P[support other | not value] = P[H(other) == y | y != H(value)] = 1/g as well
      Map<Long, Double> law = new HashMap<>();
      law.put(3L, p / g);
      law.put(2L, p * (1 - 1.0 / g));
      law.put(1L, (1 - p) / g);
      law.put(0L, (1 - p) * (1 - 1.0 / g));
      assertEquals(q, p / g + (1 - p) / g, 1e-12);
      fit(m.toString(), law, i -> {
        DecodedReport r = m.decode(m.perturb(value), -1);
        long own = Olh.hashValue(r.seed, value, g) == r.y ? 2 : 0;
        long other = Olh.hashValue(r.seed, 999, g) == r.y ? 1 : 0;
        return own | other;
      });
    }
  }

  @Test
  void rsfdMatchesItsExactLaw() {
    for (String name : Rsfd.RSFD_NAMES) {
      Rsfd m = Rsfd.create(name, 1.0, new int[] {3, 2});
      int[] value = {1, 0};
      Map<String, Double> exact = m.outputDistribution(value);
      Map<Long, Double> law = new HashMap<>();
      Map<String, Long> index = new HashMap<>();
      for (Map.Entry<String, Double> e : exact.entrySet()) {
        index.put(e.getKey(), (long) index.size());
        law.put(index.get(e.getKey()), e.getValue());
      }
      fit(name, law, i -> {
        java.util.List<Object> r = m.decode(m.perturb(value), -1);
        StringBuilder key = new StringBuilder();
        for (int j = 0; j < r.size(); j++) {
          long out;
          if (r.get(j) instanceof byte[]) {
            byte[] bits = (byte[]) r.get(j);
            out = 0;
            for (int b = 0; b < bits.length; b++) out |= (long) bits[b] << b;
          } else {
            out = (Long) r.get(j);
          }
          key.append(j > 0 ? "," : "").append(out);
        }
        return index.get(key.toString());
      });
    }
  }

  @Test
  void splAndSmpMatchTheirExactLaws() {
    for (String name : new String[] {"spl", "smp"}) {
      org.ldp.sdk.multidim.OracleBased m = (org.ldp.sdk.multidim.OracleBased) org.ldp.sdk.multidim.MultidimProtocol.create(Json.of(name),
          Json.of(2.0), Json.of(new int[] {3, 4}), Json.of("tuple"), Json.obj("oracle", "grr"));
      int[] value = {2, 1};
      Map<java.util.List<Long>, Double> exact = m.outputDistribution(value);
      Map<java.util.List<Long>, Long> index = new HashMap<>();
      Map<Long, Double> law = new HashMap<>();
      for (Map.Entry<java.util.List<Long>, Double> e : exact.entrySet()) {
        index.put(e.getKey(), (long) index.size());
        law.put(index.get(e.getKey()), e.getValue());
      }
      fit(name, law, i -> {
        JsonObject payload = m.perturb(value);
        java.util.List<Long> key = new java.util.ArrayList<>();
        if (name.equals("smp")) {
          key.add(payload.get("j").getAsLong());
          key.add(payload.getAsJsonObject("y").get("y").getAsLong());
        } else {
          for (com.google.gson.JsonElement o : payload.getAsJsonArray("y")) key.add(o.getAsJsonObject().get("y").getAsLong());
        }
        return index.get(key);
      });
    }
  }

  /** P(level l) of the user split: uniform 1/G, or "final-2x" (1/(G+2), the last two groups 2/(G+2)). */
  static double levelShare(HeavyHitters pem, int l) {
    int groups = pem.groups();
    if (pem.split.equals("uniform")) return 1.0 / groups;
    if (groups < 2) return 1.0;
    return (l >= groups - 1 ? 2.0 : 1.0) / (groups + 2);
  }

  @Test
  void pemLevelFollowsTheSplitAndItsReportIsOlhOfThePrefix() {
    // the default (final round, split "final-2x") and a config without the final round ("uniform")
    for (boolean finalRound : new boolean[] {true, false}) {
      JsonObject options = Json.obj("epsilon", 2.0, "k", 2, "domain", Json.obj("type", "integer", "bits", 12), "eta", 4);
      if (!finalRound) options.addProperty("final_round", false);
      HeavyHitters pem = HeavyHitters.create(Json.of("pem"), options);
      assertEquals(finalRound ? "final-2x" : "uniform", pem.split);
      long item = 0xabc;
      int groups = pem.groups();
      double p = pem.olh.pStar();
      int g = pem.g();
      // joint law of (level, y == H_s(key of the item's prefix at that level))
      Map<Long, Double> law = new HashMap<>();
      for (int l = 1; l <= groups; l++) {
        law.put(2L * l + 1, p * levelShare(pem, l));
        law.put(2L * l, (1 - p) * levelShare(pem, l));
      }
      fit("pem " + pem.split, law, i -> {
        JsonObject r = pem.decode(pem.perturb(item, null), -1);
        int l = r.get("l").getAsInt();
        int length = pem.lengths[l - 1];
        long key = ItemDomain.prefixKey(java.math.BigInteger.valueOf(item >> (12 - length)), length);
        boolean hit = Olh.hashValue(Long.parseUnsignedLong(r.get("s").getAsString(), 16), key, g) == r.get("y").getAsLong();
        return 2L * l + (hit ? 1 : 0);
      });
    }
  }
}
