package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.heavy.HeavyHitters;

/** Config rules of the final estimation round that the shared vectors do not reach (heavy_hitters/__init__.py, pem.py). */
class HeavyHitterConfigTest {
  static JsonObject pemOptions() {
    return Json.obj("epsilon", 2.0, "k", 2, "domain", Json.obj("type", "integer", "bits", 8), "eta", 2);
  }

  @Test
  void aConfigWrittenBeforeTheFinalRoundRebuildsWithoutIt() {
    JsonObject config = HeavyHitters.create(Json.of("pem"), pemOptions()).config();
    assertTrue(config.get("final_round").getAsBoolean());
    config.remove("final_round");
    config.remove("split");
    config.remove("levels");
    HeavyHitters old = HeavyHitters.fromConfig(config);
    assertFalse(old.finalRound);
    assertEquals("uniform", old.split);
    assertArrayEquals(new int[] {3, 5, 7, 8}, old.lengths); // no final group of length m
  }

  @Test
  void theFinalRoundHasTheFinalHeavySplitByDefaultAndOnlyThen() {
    HeavyHitters pem = HeavyHitters.create(Json.of("pem"), pemOptions());
    assertEquals("final-2x", pem.split);
    assertArrayEquals(new int[] {3, 5, 7, 8, 8}, pem.lengths);
    JsonObject uniform = pemOptions();
    uniform.addProperty("split", "uniform");
    assertEquals("uniform", HeavyHitters.create(Json.of("pem"), uniform).split);
    JsonObject noFinal = pemOptions();
    noFinal.addProperty("final_round", false);
    noFinal.addProperty("split", "final-2x");
    assertThrows(ConfigException.class, () -> HeavyHitters.create(Json.of("pem"), noFinal));
    JsonObject treehist = pemOptions();
    treehist.addProperty("split", "final-2x");
    assertThrows(ConfigException.class, () -> HeavyHitters.create(Json.of("treehist"), treehist));
    JsonObject treehistFinal = pemOptions();
    treehistFinal.addProperty("final_round", true);
    assertThrows(ConfigException.class, () -> HeavyHitters.create(Json.of("treehist"), treehistFinal));
  }

  @Test
  void tapSharedLevelsCannotReachTheFinalGroup() {
    JsonObject options = pemOptions();
    options.add("parties", Json.of(new com.google.gson.JsonArray()));
    options.getAsJsonArray("parties").add("eu");
    options.addProperty("shared_levels", 4); // 4 prefix levels: ok
    assertEquals(5, HeavyHitters.create(Json.of("tap"), options).groups());
    options.addProperty("shared_levels", 5); // the fifth group is the final round's
    assertThrows(ConfigException.class, () -> HeavyHitters.create(Json.of("tap"), options));
  }

  static JsonObject options(String json) {
    return com.google.gson.JsonParser.parseString(json).getAsJsonObject();
  }

  /** Smallest accepted expected_reports of each configuration, found with the Python SDK (pem.py, tap.py, treehist.py). */
  @Test
  void hopelessConfigurationsAreRefusedAtThePythonThreshold() {
    String[][] cases = {
        {"pem", "{\"epsilon\": 2.0, \"k\": 4, \"domain\": {\"type\": \"string\", \"max_bytes\": 4}}", "638"},
        {"pem", "{\"epsilon\": 1.0, \"k\": 8, \"domain\": {\"type\": \"string\", \"alphabet\": \"lower\", \"max_chars\": 6}, \"final_round\": false}", "19671"},
        {"tap", "{\"epsilon\": 3.0, \"k\": 4, \"domain\": {\"type\": \"integer\", \"bits\": 16}, \"parties\": [\"a\", \"b\", \"c\"]}", "372"},
        {"treehist", "{\"epsilon\": 2.0, \"k\": 4, \"domain\": {\"type\": \"string\", \"max_bytes\": 4}}", "37816"},
        {"treehist", "{\"epsilon\": 2.0, \"k\": 4, \"domain\": {\"type\": \"string\", \"max_bytes\": 4}, \"fragment_estimator\": \"level\"}", "4727"},
    };
    for (String[] c : cases) {
      long need = Long.parseLong(c[2]);
      JsonObject ok = options(c[1]);
      ok.addProperty("expected_reports", need);
      assertEquals(need, HeavyHitters.create(Json.of(c[0]), ok).config().get("expected_reports").getAsLong(), c[1]);
      JsonObject short1 = options(c[1]);
      short1.addProperty("expected_reports", need - 1);
      assertThrows(ConfigException.class, () -> HeavyHitters.create(Json.of(c[0]), short1), c[1]);
    }
    JsonObject far = options(cases[0][1]);
    far.addProperty("expected_reports", 100);
    ConfigException e = assertThrows(ConfigException.class, () -> HeavyHitters.create(Json.of("pem"), far));
    assertEquals("hopeless pem configuration: with n = 100 reports split over 5.5 groups at ε = 2.0, even an item held by 1/k of the"
        + " users would not be significant among 64 candidates (α = 0.05, Holm); it needs n ≥ 638 at this ε, or ε ≥ 3.62 for n = 100;"
        + " or fewer levels (shorter items, a smaller alphabet) or a smaller k", e.getMessage());
  }
}
