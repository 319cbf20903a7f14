package org.ldp.sdk.longitudinal;

import org.ldp.sdk.LdpException;

/** A memo record or device state that is malformed or belongs to another configuration (Python's MemoError). */
public final class MemoException extends LdpException {
  private static final long serialVersionUID = 1L;

  public MemoException(String message) {
    super(message);
  }
}
