"""Timing that holds up on a busy laptop: warm-up, then the median of several repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, min_seconds: float = 0.0) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs (more if under ``min_seconds``).

    >>> median_ms(lambda: sum(range(1000)), repeats=3) > 0
    True
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
