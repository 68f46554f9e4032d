"""Independent steps of one task run on a second thread while the caller goes on.

The heavy calls of the pipelines (``scipy.ndimage`` labelling, filters and distance maps,
numpy's array loops) release the GIL, so two such steps use two cores. scipy's Dijkstra
does not (measured: two solves on two threads take as long as one after the other), so a
step that solves one waits while the other thread solves.
The results are the same as one after the other: each step gets the same inputs, and
nothing it reads is written while it runs.

The process runs one second thread at a time (:data:`_SLOT`). A ``second_thread()`` asked
for while one is at work, by a step on it or by a nested call on the caller's thread, runs
its steps at once on the thread that submits them, so the two cores are never asked to
run three threads of work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager

_SLOT = threading.Lock()  # held while a second thread is at work


def _inline(fn: Callable, /, *args, **kwargs) -> Future:
    """``fn`` run at once on the calling thread, as a finished future."""
    future: Future = Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except Exception as error:  # raised again to whoever asks for the result
        future.set_exception(error)
    return future


class _SecondThread(Executor):
    """Takes the process's second thread at the first step submitted while it is free;
    without it, runs each step at once on the submitting thread."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        if self._pool is None and _SLOT.acquire(blocking=False):
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mskai-background")
        if self._pool is None:
            return _inline(fn, *args, **kwargs)
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._pool is None:
            return
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        self._pool = None
        _SLOT.release()


@contextmanager
def second_thread() -> Iterator[Executor]:
    """An executor for ``submit``: one worker thread, or inline while another is at work.

    On leaving, waits for what was submitted. When the caller's block raises (a cancel, bad
    input), the queued steps are dropped and the exception goes on at once; a step already
    running finishes on its own and its result is discarded.
    """
    executor = _SecondThread()
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
