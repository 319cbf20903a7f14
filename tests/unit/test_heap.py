"""The server's garbage-collector settings (ldpserver/heap.py, applied by ldpserver/wsgi.py)."""

from __future__ import annotations

import gc

from ldpserver.heap import YOUNG_THRESHOLD, settle_heap


def _collections_while_allocating_a_batch() -> int:
    """Collections run while a batch's worth of containers (3,000 dicts) is alive."""
    runs = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.callbacks.append(count)
    try:
        rows = [{"report_id": str(i), "payload": {"bits": str(i)}} for i in range(1_500)]
        del rows
    finally:
        gc.callbacks.remove(count)
    return len(runs)


def test_settle_heap_freezes_the_startup_heap_and_no_collection_runs_during_a_batch():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # CPython's default
        gc.collect()
        assert _collections_while_allocating_a_batch() >= 3
        settle_heap()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 20, 50)
        assert gc.get_freeze_count() > 0
        assert _collections_while_allocating_a_batch() == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
