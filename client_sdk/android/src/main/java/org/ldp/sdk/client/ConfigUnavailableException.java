package org.ldp.sdk.client;

import org.ldp.sdk.LdpException;

/** The config is neither cached nor reachable: nothing was perturbed. */
public class ConfigUnavailableException extends LdpException {
  private static final long serialVersionUID = 1L;

  public ConfigUnavailableException(String message) {
    super(message);
  }
}
