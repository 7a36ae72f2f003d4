"""Garbage collection for a run that holds thousands of long-lived objects.

A fleet run keeps every collected item, every report and each host's facts until the end.
Python's collector walks all of them again at each full collection, and at 200 hosts that
walking was about a seventh of the controller's CPU. What exists once collection is done
lives for the whole run, so it is frozen (never walked again, and not copied page by page
into the forked probe process), and young collections run less often.
"""

from __future__ import annotations

import gc

# Allocations between young collections (Python's default is 700): the run allocates
# tens of thousands of short-lived report objects per second of checks.
YOUNG_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Freeze every object alive now and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
