package org.ldp.sdk.client;

/** Wall-clock time in microseconds since the Unix epoch (decides epochs; injectable for tests). */
public interface Clock {
  long nowMicros();

  Clock SYSTEM = () -> System.currentTimeMillis() * 1000L;
}
