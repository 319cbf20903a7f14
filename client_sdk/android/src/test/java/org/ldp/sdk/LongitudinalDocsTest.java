package org.ldp.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;
import org.ldp.sdk.longitudinal.InMemoryMemoStore;
import org.ldp.sdk.longitudinal.Longitudinal;
import org.ldp.sdk.longitudinal.LongitudinalProtocol;
import org.ldp.sdk.longitudinal.ReportOutcome;

/** The longitudinal examples of docs/android-sdk.md, run as written (the Kotlin one in Java). */
class LongitudinalDocsTest {
  @Test
  void theKotlinExample() {
    LongitudinalProtocol m = Longitudinal.create("l-osue", 2.0, 1.0, 16);
    InMemoryMemoStore store = new InMemoryMemoStore();
    ReportOutcome first = m.report(5, store, "collection-1", SecureRandomSource.INSTANCE);
    assertTrue(first.newMemo);
    assertEquals(2.0, first.charge);
    m.decode(first.payload, 0);
    ReportOutcome again = m.report(5, store, "collection-1", SecureRandomSource.INSTANCE);
    assertFalse(again.newMemo);
    assertEquals(0.0, again.charge);
    assertEquals(32.0, m.lifetimeBound());
  }

  @Test
  void theJavaExample() {
    LongitudinalProtocol m = Longitudinal.fromConfig(Json.parse(
        "{\"kind\":\"longitudinal\",\"mechanism\":\"loloha\",\"epsilon_perm\":2.0,\"epsilon_first\":1.0,\"domain_size\":100}"));
    JsonObject state = m.newDeviceState();
    JsonObject memo = m.newMemo(42, state, SecureRandomSource.INSTANCE);
    JsonObject payload = m.perturbWithMemo(memo, state, SecureRandomSource.INSTANCE);
    m.decode(payload, 0);
    assertEquals(state.get("s"), payload.get("s"));
    assertEquals(m.memoKey(42, state), memo.get("key").getAsLong());
  }
}
