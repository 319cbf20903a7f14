package org.ldp.sdk.client;

import java.util.Locale;
import org.ldp.sdk.LdpException;

/**
 * The report would pass the device's cap: nothing was perturbed, stored or sent (Python's
 * DeviceBudgetExceededError). {@code scope} is "lifetime" or "window".
 */
public final class DeviceBudgetExceededException extends LdpException {
  private static final long serialVersionUID = 1L;
  public final String collectionId;
  public final String scope;
  public final double spent;
  public final double cap;
  public final double charge;

  public DeviceBudgetExceededException(String collectionId, String scope, double spent, double cap, double charge, long window) {
    this(collectionId, scope, spent, cap, charge, window, false);
  }

  /** {@code memoized}: the charge is that of a new memo (a report reusing a memo is never refused). */
  public DeviceBudgetExceededException(String collectionId, String scope, double spent, double cap, double charge, long window, boolean memoized) {
    super(String.format(Locale.ROOT, "collection '%s': the %s budget would be exceeded (spent %s of %s, %s costs %s)%s; "
        + "nothing was perturbed, stored or sent", collectionId, scope, num(spent), num(cap), memoized ? "a new memo" : "this report", num(charge),
        scope.equals("window") ? " in accounting window " + window : ""));
    this.collectionId = collectionId;
    this.scope = scope;
    this.spent = spent;
    this.cap = cap;
    this.charge = charge;
  }

  private static String num(double x) {
    return String.format(Locale.ROOT, "%.6g", x).replaceAll("\\.?0+$", "").replaceAll("\\.?0+e", "e");
  }
}
