package org.ldp.sdk.client;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What one flush did; {@code remaining} reports are still queued (nothing is dropped). */
public final class FlushResult {
  public int accepted;
  public int duplicates;
  public int rejected;
  public int deferred;
  public int requests;
  public int remaining;
  public boolean timedOut;
  public final Map<String, Integer> reasons = new LinkedHashMap<>();
  public final List<String> errors = new ArrayList<>();

  /** Reports the server now holds (accepted now, or already: duplicates are success). */
  public int delivered() {
    return accepted + duplicates;
  }

  public boolean ok() {
    return remaining == 0 && errors.isEmpty();
  }

  @Override
  public String toString() {
    return "accepted " + accepted + ", duplicates " + duplicates + ", rejected " + rejected + ", deferred " + deferred + ", still queued "
        + remaining + " (" + requests + " requests)" + (errors.isEmpty() ? "" : "; errors: " + errors);
  }
}
