package org.ldp.sdk.client;

import org.ldp.sdk.LdpException;

/** The served config does not hash to its claimed config_hash: nothing is reported under it. */
public class ConfigHashMismatchException extends LdpException {
  private static final long serialVersionUID = 1L;

  public ConfigHashMismatchException(String message) {
    super(message);
  }
}
