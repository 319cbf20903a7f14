package org.ldp.sdk.client;

/**
 * What {@code report()} queued: the report id, epoch, accounting window and the charge. For a
 * memoized (longitudinal) collection also whether the report created a memo ({@code newMemo}:
 * only then is it charged) and how many memos the device holds for the collection.
 */
public final class ReportReceipt {
  public final String reportId;
  public final String collectionId;
  public final long epoch;
  public final long window;
  public final int units;
  public final double epsilonCharged;
  /** memos held after this report (memoized collections), else null */
  public final Long memoCount;
  public final boolean newMemo;

  ReportReceipt(String reportId, String collectionId, long epoch, long window, int units, double epsilonCharged) {
    this(reportId, collectionId, epoch, window, units, epsilonCharged, null, false);
  }

  ReportReceipt(String reportId, String collectionId, long epoch, long window, int units, double epsilonCharged, Long memoCount, boolean newMemo) {
    this.reportId = reportId;
    this.collectionId = collectionId;
    this.epoch = epoch;
    this.window = window;
    this.units = units;
    this.epsilonCharged = epsilonCharged;
    this.memoCount = memoCount;
    this.newMemo = newMemo;
  }
}
