package org.ldp.sdk;

/** Base of the SDK's exceptions (client_sdk/errors.py). Every message says what was wrong. */
public class LdpException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public LdpException(String message) {
    super(message);
  }

  public LdpException(String message, Throwable cause) {
    super(message, cause);
  }
}
