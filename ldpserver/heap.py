"""The server process's garbage-collector settings (``ldpserver/wsgi.py`` applies them).

A request of the ingestion path allocates thousands of short-lived containers (a batch
of 1,000 reports: ~10,000 dicts, lists and tuples), freed by reference counting when it
ends. With CPython's default young threshold (700 allocations net of frees) a batch ran
about 8 collections (5 % of the server's CPU), each scanning the request's live objects
and promoting them to be scanned again.
"""

from __future__ import annotations

import gc

#: allocations net of frees between young collections: a batch's objects are freed before
#: one is due, and reference cycles are still collected
YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Freeze what exists now (the app, modules, caches live for the whole process: no
    collection rescans them, ~10 % CPU on large batches) and raise the young generation's
    threshold to :data:`YOUNG_THRESHOLD` (older generations every 20 and 50 of the younger)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 50)
