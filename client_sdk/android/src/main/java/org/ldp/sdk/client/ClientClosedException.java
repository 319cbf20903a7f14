package org.ldp.sdk.client;

import org.ldp.sdk.LdpException;

/** The Client was closed. */
public class ClientClosedException extends LdpException {
  private static final long serialVersionUID = 1L;

  public ClientClosedException(String message) {
    super(message);
  }
}
