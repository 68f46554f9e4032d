"""The Dask cluster of a batch: a LocalCluster sized to the machine, or a running scheduler.

The same code runs on a laptop, a workstation or an HPC cluster: ``--scheduler ADDRESS``
joins a scheduler started elsewhere (``dask scheduler``, dask-jobqueue's ``SLURMCluster``,
...) whose workers see the same file paths; without it a ``LocalCluster`` of worker
processes with one thread each is started and closed again at the end.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mskai.errors import InputError

# what one worker needs for a typical case (a CT of a few hundred MB plus its masks and a
# model): fewer workers than cores are started when memory is short
WORKER_MEMORY_BYTES = 3 * 2**30


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(n_cases: int) -> int:
    """min(CPUs, available memory / 3 GiB, cases), at least 1."""
    try:
        import psutil

        by_memory = int(psutil.virtual_memory().available // WORKER_MEMORY_BYTES)
    except (ImportError, OSError):
        by_memory = usable_cpus()
    return max(1, min(usable_cpus(), by_memory, n_cases))


def has_dashboard() -> bool:
    return importlib.util.find_spec("bokeh") is not None


@contextmanager
def dask_client(scheduler: str | None, workers: int | None, n_cases: int,
                say: Callable[[str], None]) -> Iterator:
    """A ``distributed.Client`` for the batch; a local cluster is closed afterwards."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); check "
                             "the address (tcp://host:8786) and that the scheduler runs") \
                from None
        n = len(client.scheduler_info().get("workers", {}))
        where = f"the Dask scheduler at {scheduler} ({n} workers now)"
    else:
        n = workers or default_workers(n_cases)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":8787",
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        where = f"a local Dask cluster of {n} worker processes ({cluster.scheduler_address})"
    try:
        say(f"running on {where}; dashboard: {_dashboard(client)}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dashboard(client) -> str:
    try:
        link = client.dashboard_link
    except Exception:  # only a hint for the user
        return "none"
    return link if has_dashboard() else f"{link} (install bokeh to see its plots)"
