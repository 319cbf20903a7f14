package org.ldp.sdk;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.longitudinal.Longitudinal;
import org.ldp.sdk.longitudinal.LongitudinalProtocol;

/**
 * Chi-square goodness of fit (DistributionTest's: critical value at 1 - 1e-6, and the same
 * samples must reject a law moved by a small amount) of each longitudinal protocol's one-report
 * output law, sampled from SecureRandom exactly as a device reports (a fresh memo, then round
 * 2), against its closed form: the permanent response's law chained with round 2's.
 */
class LongitudinalDistributionTest {
  static final String[] CONFIGS = {
    "{\"mechanism\":\"l-grr\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":4}",
    "{\"mechanism\":\"l-grr\",\"epsilon_perm\":3.0,\"epsilon_first\":1.0,\"domain_size\":5,\"tight\":true}",
    "{\"mechanism\":\"l-osue\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":3}",
    "{\"mechanism\":\"l-sue\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":4}",
    "{\"mechanism\":\"l-oue\",\"epsilon_perm\":3.0,\"epsilon_first\":1.0,\"domain_size\":3}",
    "{\"mechanism\":\"rappor\",\"domain_size\":3,\"f\":0.5,\"p\":0.25,\"q\":0.75}",
    "{\"mechanism\":\"loloha\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":50,\"g\":4}",
    "{\"mechanism\":\"biloloha\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":10}",
    "{\"mechanism\":\"dbitflip\",\"epsilon\":2.0,\"domain_size\":8,\"buckets\":4,\"d\":3}",
  };

  @Test
  void oneReportLawsMatchTheirClosedForms() {
    for (String text : CONFIGS) {
      LongitudinalProtocol m = Longitudinal.fromConfig(Json.parse(text));
      JsonObject state = m.needsState() ? m.newDeviceState() : null; // the law given the device's state
      for (long value : new long[] {0, m.domainSize() - 1}) {
        DistributionTest.fit(m + " value " + value, m.outputDistribution(value, state), i -> {
          JsonObject memo = m.newMemo(value, state, SecureRandomSource.INSTANCE);
          return m.payloadOutcome(m.perturbWithMemo(memo, state, SecureRandomSource.INSTANCE));
        });
      }
    }
  }

  @Test
  void roundTwoReRandomizesOneStoredMemo() {
    // many reports from ONE memo follow round 2's law given that memo (here: the memo's own code)
    for (String text : new String[] {CONFIGS[0], CONFIGS[2], CONFIGS[6]}) {
      LongitudinalProtocol m = Longitudinal.fromConfig(Json.parse(text));
      JsonObject state = m.needsState() ? m.newDeviceState() : null;
      JsonObject memo = m.newMemo(1, state, SecureRandomSource.INSTANCE);
      long code = memoCode(m, memo);
      DistributionTest.fit(m + " memo " + code, m.reportDistribution(code), i -> m.payloadOutcome(m.perturbWithMemo(memo, state, SecureRandomSource.INSTANCE)));
    }
  }

  /** The permanent response as an outcome code: the GRR index, or the unary bit pattern. */
  static long memoCode(LongitudinalProtocol m, JsonObject memo) {
    if (memo.get("prr").getAsJsonPrimitive().isNumber()) return memo.get("prr").getAsLong();
    JsonObject asPayload = Json.obj("v", 1, "m", m.name, "bits", memo.get("prr"));
    return m.payloadOutcome(asPayload);
  }
}
