package org.ldp.sdk;

/** Where random bytes come from: the CSPRNG on devices, recorded bytes in tests. */
public interface RandomSource {
  /** Fill {@code bytes} with uniform random bytes. */
  void fill(byte[] bytes);
}
