package org.ldp.sdk;

import java.security.SecureRandom;

/**
 * The platform CSPRNG ({@link SecureRandom}: /dev/urandom-backed on Android and Linux). Device
 * perturbation never uses a seedable PRNG whose state an observer could reproduce.
 */
public final class SecureRandomSource implements RandomSource {
  public static final SecureRandomSource INSTANCE = new SecureRandomSource();
  private final SecureRandom random = new SecureRandom();

  private SecureRandomSource() {}

  @Override
  public void fill(byte[] bytes) {
    random.nextBytes(bytes);
  }
}
