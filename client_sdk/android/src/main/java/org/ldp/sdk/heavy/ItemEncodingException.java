package org.ldp.sdk.heavy;

import org.ldp.sdk.LdpException;

/** An item the configured domain cannot encode (wrong type, too long, NUL, lone surrogate). */
public final class ItemEncodingException extends LdpException {
  private static final long serialVersionUID = 1L;

  public ItemEncodingException(String message) {
    super(message);
  }
}
