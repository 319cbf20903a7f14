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
}
