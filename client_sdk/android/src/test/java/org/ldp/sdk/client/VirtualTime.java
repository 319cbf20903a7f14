package org.ldp.sdk.client;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** A virtual clock and a sleeper that advances it instead of waiting. */
final class VirtualTime implements Clock, Sleeper {
  final AtomicLong micros;
  final List<Double> sleeps = Collections.synchronizedList(new ArrayList<>());

  VirtualTime(long startMicros) {
    this.micros = new AtomicLong(startMicros);
  }

  @Override
  public long nowMicros() {
    return micros.get();
  }

  @Override
  public boolean sleep(double seconds) {
    sleeps.add(seconds);
    micros.addAndGet((long) (seconds * 1e6));
    return true;
  }

  @Override
  public void wakeAll() {}

  void advance(double seconds) {
    micros.addAndGet((long) (seconds * 1e6));
  }
}
