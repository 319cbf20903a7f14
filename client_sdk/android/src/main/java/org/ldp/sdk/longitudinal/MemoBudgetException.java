package org.ldp.sdk.longitudinal;

import org.ldp.sdk.LdpException;

/** A new memo the device budget refuses (Python's BudgetExceededError from {@code m.report(..., can_spend=...)}): nothing of it was drawn or stored. */
public final class MemoBudgetException extends LdpException {
  private static final long serialVersionUID = 1L;

  public MemoBudgetException(String message) {
    super(message);
  }
}
