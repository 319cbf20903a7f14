package org.ldp.sdk.heavy;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.mechanisms.Olh;

/**
 * The known-candidate screen's hash family {@code lin-zp-v1} (client_sdk/heavy_hitters/known.py):
 * a 32-bit item key picks a non-zero bucket vector b(key) in Z_p^d, and a report's seed s (a
 * uniform vector of Z_p^d) hashes it to the inner product {@code <s, b(key)> mod p}. Vectors of
 * Z_p^d are flat indices in [0, p^d), base-p digits most significant first.
 *
 * <p>Guarantees: {@link #bucketOf} is {@code 1 + splitmix64(key XOR "LINHASH1") mod (p^d - 1)}
 * in unsigned 64-bit arithmetic, so never the zero vector; {@link #value} is exact for every
 * seed in [0, p^d) (p^d is at most 2^22, so no product overflows); the screen sizes are integer
 * bounds (the largest d with p^d at most 2^21 or 2^22), equal to the Python SDK's floating-point
 * floors for every listed prime.
 */
public final class LinearHash {
  private LinearHash() {}

  public static final String FAMILY = "lin-zp-v1";
  /** XORed into the key before SplitMix64 picks the bucket (ASCII "LINHASH1") */
  public static final long BUCKET_SALT = 0x4C494E4841534831L;
  /** the primes a screen may use */
  public static final List<Integer> PRIMES = Collections.unmodifiableList(Arrays.asList(2, 3, 5, 7, 11, 13));
  /** the largest screen: p^d buckets at most */
  public static final long MAX_BUCKETS = 1L << 22;
  /** the default screen holds p^d buckets at most */
  public static final long DEFAULT_BUCKETS = 1L << 21;

  /** p^d (p^d at most 2^22 here, so exact). */
  public static long buckets(int p, int d) {
    long out = 1;
    for (int i = 0; i < d; i++) out *= p;
    return out;
  }

  /** The largest d with p^d at most {@code limit} (p at least 2). */
  public static int maxDigits(int p, long limit) {
    int d = 0;
    for (long size = p; size <= limit; size *= p) d++;
    return d;
  }

  /**
   * The default screen (p, d) at epsilon: p the largest listed prime up to 11 with p at most
   * e^min(eps, 10) + 1 (OLH's optimal g; 2 if none), d the largest with p^d at most 2^21.
   */
  public static int[] defaultScreen(double epsilon) {
    double target = ExactMath.exp(Math.min(epsilon, 10.0)) + 1;
    int p = 2;
    for (int q : PRIMES.subList(0, PRIMES.size() - 1)) if (q <= target) p = Math.max(p, q);
    return new int[] {p, maxDigits(p, DEFAULT_BUCKETS)};
  }

  /** The bucket vector of a 32-bit key as a flat index in [1, p^d). */
  public static long bucketOf(long key, int p, int d) {
    return 1 + Compat.remainderUnsigned(Olh.splitmix64(key ^ BUCKET_SALT), buckets(p, d) - 1);
  }

  /** {@code <s, b(key)> mod p} for a seed s in [0, p^d) (a flat index): the report's hash value. */
  public static int value(long seed, long key, int p, int d) {
    long b = bucketOf(key, p, d);
    long s = seed;
    long total = 0;
    for (int i = 0; i < d; i++) {
      total += (s % p) * (b % p);
      s /= p;
      b /= p;
    }
    return (int) (total % p);
  }
}
