package org.ldp.sdk.client;

/** Waits between retries (injectable: tests advance a virtual clock instead of sleeping). */
public interface Sleeper {
  /** Wait {@code seconds}; false if woken early by {@link #wakeAll} (the client is closing). */
  boolean sleep(double seconds) throws InterruptedException;

  /** Interrupt current waits. */
  void wakeAll();

  /** Real sleeping on a monitor, woken by {@link #wakeAll}. */
  final class Real implements Sleeper {
    private final Object monitor = new Object();
    private long wakeups;

    @Override
    public boolean sleep(double seconds) throws InterruptedException {
      long end = System.nanoTime() + (long) (seconds * 1e9);
      synchronized (monitor) {
        long seen = wakeups;
        for (long left = end - System.nanoTime(); left > 0; left = end - System.nanoTime()) {
          monitor.wait(Math.max(1, left / 1_000_000));
          if (wakeups != seen) return false;
        }
      }
      return true;
    }

    @Override
    public void wakeAll() {
      synchronized (monitor) {
        wakeups++;
        monitor.notifyAll();
      }
    }
  }
}
