"""Time and jitter for the device runtime, injectable so retries can run in virtual time.

The runtime never calls ``time`` or ``random`` directly: it asks a :class:`Timer` for the
monotonic clock (deadlines), the wall clock (timestamps stored in state_dir, flush leases,
``Retry-After`` dates) and for interruptible waits (backoff, the background flusher), and a
``Uniform`` callable for the backoff jitter. :class:`SystemTimer` and
:func:`system_uniform` are the real defaults; :class:`VirtualTimer` advances a virtual
clock instead of sleeping, so a test of a 30 s backoff takes no time and can check every
wait exactly.

>>> import threading
>>> timer = VirtualTimer(start=100.0)
>>> timer.wait(threading.Event(), 2.5)  # returns at once, 2.5 virtual seconds later
False
>>> timer.monotonic(), timer.time(), timer.waits
(102.5, 102.5, [2.5])

What this does not cover: perturbation, report ids and device secrets always use the OS
CSPRNG (``secrets``); they are privacy- and security-relevant and never injectable.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Protocol

#: ``uniform(low, high)``: a float drawn in ``[low, high]`` (the backoff's full jitter)
Uniform = Callable[[float, float], float]


class Timer(Protocol):
    """What the runtime needs of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines)."""
        ...

    def time(self) -> float:
        """Unix seconds (timestamps kept in state_dir, flush leases, ``Retry-After`` dates)."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait ``seconds`` unless ``event`` is set first; True when ``event`` is set."""
        ...


class SystemTimer:
    """The real clocks, and ``Event.wait`` (so ``close()`` interrupts a backoff at once)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(seconds, 0.0))


def system_uniform(low: float, high: float) -> float:
    """The default jitter: ``uniform(low, high)`` from the OS CSPRNG."""
    return secrets.SystemRandom().uniform(low, high)


class VirtualTimer:
    """A clock that moves only when the runtime waits: ``wait`` records the delay, advances
    both clocks by it and returns at once (True if ``event`` was already set). Thread-safe."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        #: every delay the runtime asked to wait, in order
        self.waits: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(float(seconds), 0.0)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        with self._lock:
            self.waits.append(float(seconds))
            self._now += max(float(seconds), 0.0)
        return event.is_set()
