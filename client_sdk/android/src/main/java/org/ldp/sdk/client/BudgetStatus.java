package org.ldp.sdk.client;

/** The device ledger of one collection (as the Python SDK's BudgetStatus). */
public final class BudgetStatus {
  public String collectionId;
  /** epsilon of one charge unit: one report, or one new memo when memoized */
  public double unitEpsilon;
  /** "report", or "memo" for a memoized (longitudinal) collection */
  public String unit;
  /** memos the device holds for the collection (memoized collections; else 0) */
  public long memoCount;
  public long epoch;
  public long window;
  public double spentLifetime;
  public double capLifetime;
  public long unitsLifetime;
  public long maxUnitsLifetime;
  public double spentWindow;
  /** null: no window cap */
  public Double capWindow;
  public long unitsWindow;
  public Long maxUnitsWindow;
  /** epsilon the server accepted (its ledger holds exactly this for the device) */
  public double acknowledged;
  /** epsilon of reports still queued */
  public double pending;
  /** epsilon of reports the server refused (still counted: the report left the device) */
  public double rejected;
  public long reports;
  public long reportsAccepted;
  public long reportsDuplicate;
  public long reportsRejected;

  public double remainingLifetime() {
    return Math.max(capLifetime - spentLifetime, 0);
  }
}
