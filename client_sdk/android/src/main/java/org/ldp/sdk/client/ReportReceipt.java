package org.ldp.sdk.client;

/** What {@code report()} queued: the report id, epoch, accounting window and the charge. */
public final class ReportReceipt {
  public final String reportId;
  public final String collectionId;
  public final long epoch;
  public final long window;
  public final int units;
  public final double epsilonCharged;

  ReportReceipt(String reportId, String collectionId, long epoch, long window, int units, double epsilonCharged) {
    this.reportId = reportId;
    this.collectionId = collectionId;
    this.epoch = epoch;
    this.window = window;
    this.units = units;
    this.epsilonCharged = epsilonCharged;
  }
}
