package org.ldp.sdk.longitudinal;

import com.google.gson.JsonObject;

/** One memoized report: the wire payload, its memo key, whether the memo was created now, and the ledger charge (0 when reused). */
public final class ReportOutcome {
  public final JsonObject payload;
  public final long memoKey;
  public final boolean newMemo;
  public final double charge;

  public ReportOutcome(JsonObject payload, long memoKey, boolean newMemo, double charge) {
    this.payload = payload;
    this.memoKey = memoKey;
    this.newMemo = newMemo;
    this.charge = charge;
  }
}
