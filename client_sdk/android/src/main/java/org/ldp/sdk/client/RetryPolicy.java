package org.ldp.sdk.client;

/** Exponential backoff with full jitter (seconds): uniform(0, min(maxDelay, baseDelay 2^attempt)). */
public final class RetryPolicy {
  public final double baseDelay;
  public final double maxDelay;
  public final double requestTimeout;

  public RetryPolicy(double baseDelay, double maxDelay, double requestTimeout) {
    this.baseDelay = baseDelay;
    this.maxDelay = maxDelay;
    this.requestTimeout = requestTimeout;
  }

  public static RetryPolicy defaults() {
    return new RetryPolicy(0.5, 30.0, 10.0);
  }

  /** The delay before retry {@code attempt} (0-based) for a uniform {@code u} in [0, 1). */
  public double backoff(int attempt, double u) {
    double ceiling = Math.min(maxDelay, baseDelay * Math.pow(2, Math.min(attempt, 30)));
    return u * ceiling;
  }
}
