package org.ldp.sdk;

/** A mechanism configuration the math cannot support (Python's ConfigError, same messages). */
public class ConfigException extends LdpException {
  private static final long serialVersionUID = 1L;

  public ConfigException(String message) {
    super(message);
  }
}
