"""Torch intra-op threads for one inference call, fitted to the cores that are free now.

On a shared machine torch's default (one thread per core) oversubscribes busy cores: on the
2-core development machine at load average 3, the knee model's 8 windows took 7.8 s with 2
threads and 3.6 s with 1. The count is the cores minus the load from other processes (the
1-minute load average, less this process's own one), at least 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def free_cpu_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads that fit the idle cores: ``cores - (load - 1)``, between 1 and ``cores``."""
    cores = cores or os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this platform
            return cores
    return max(1, min(cores, int(round(cores - max(load - 1.0, 0.0)))))


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads, then restore the old count."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(old)
