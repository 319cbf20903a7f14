package org.ldp.sdk.client;

import org.ldp.sdk.LdpException;

/** A collection this SDK cannot (or will not) report to, with the reason. */
public class UnsupportedCollectionException extends LdpException {
  private static final long serialVersionUID = 1L;

  public UnsupportedCollectionException(String message) {
    super(message);
  }
}
