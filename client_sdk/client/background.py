"""The background flusher: a daemon thread that calls ``flush`` every ``interval`` seconds.

It waits through the injected :class:`~client_sdk.client.timing.Timer`, so a test can step
it; ``stop()`` (and ``Client.close()``) ends the wait at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from client_sdk.client.errors import ClientClosedError
from client_sdk.client.timing import Timer


class BackgroundFlusher:
    def __init__(self, flush: Callable[[float], object], timer: Timer, closing: threading.Event) -> None:
        self._flush = flush
        self._timer = timer
        self._closing = closing
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: the last flush's exception (``"Type: message"``), None after a flush that raised nothing
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float, per_flush: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval, per_flush), name="ldp-client-flush")
        self._thread.daemon = True
        self._thread.start()

    def _loop(self, interval: float, per_flush: float) -> None:
        while not self._timer.wait(self._stop, interval):
            if self._closing.is_set():
                return
            try:
                self._flush(per_flush)
                self.last_error = None
            except ClientClosedError:
                return
            except Exception as exc:  # keep flushing later; surface the problem in status()
                self.last_error = f"{type(exc).__name__}: {exc}"

    def stop(self, wait: float) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)
        self._thread = None
