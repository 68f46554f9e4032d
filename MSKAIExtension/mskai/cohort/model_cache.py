"""Models load once per worker process, not once per case.

:func:`install` wraps the model loaders that the tasks call
(:func:`mskai.models.loaders.load_model`, used by the knee, bone and tumour-refinement
networks, and the fracture logistic regressions' :func:`mskai.fracture.scorer.load_scorer`
and :func:`mskai.fracture.valley_reducer.load_reducer`) with a per-process cache. The
tasks import them inside their functions, so they pick up the wrapped loader. Only batch
workers install it: a single ``mskai`` command loads each model once anyway.

The cache key is the manifest entry (id, version, sha256, file) plus the file's size and
modification time and the loader's other arguments (the device): the sha256 check of the
loader runs on the first load of a file, and a file replaced since is loaded (and checked)
again. Models are used for inference only (eval mode), so one object serves every case.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_CACHE: dict[tuple, Any] = {}
LOADS: Counter = Counter()  # "loader:id version" -> times the file was really loaded
HITS: Counter = Counter()  # "loader:id version" -> times the cached model was reused
_WRAPPED = "__mskai_model_cache__"


def _file_state(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def cached(loader: Callable, name: str) -> Callable:
    """``loader(entry, *args)`` that returns the model it loaded before for the same key."""

    @functools.wraps(loader)
    def load(entry, *args, **kwargs):
        path = Path(entry.path)
        label = f"{name}:{entry.id} {entry.version}"
        key = (name, entry.id, entry.version, entry.sha256, str(path), _file_state(path),
               repr(args), repr(sorted(kwargs.items())))
        with _LOCK:
            if key in _CACHE:
                HITS[label] += 1
                return _CACHE[key]
            model = loader(entry, *args, **kwargs)
            _CACHE[key] = model
            LOADS[label] += 1
            return model

    setattr(load, _WRAPPED, True)
    return load


def install() -> None:
    """Wrap the model loaders of this process (idempotent)."""
    from mskai.fracture import scorer, valley_reducer
    from mskai.models import loaders

    with _LOCK:
        for module, name in ((loaders, "load_model"), (scorer, "load_scorer"),
                             (valley_reducer, "load_reducer")):
            loader = getattr(module, name)
            if not getattr(loader, _WRAPPED, False):
                setattr(module, name, cached(loader, name))


def stats() -> dict[str, Any]:
    """This process's loads and cache hits (the batch reports them per case)."""
    with _LOCK:
        return {"pid": os.getpid(), "loads": dict(LOADS), "hits": dict(HITS)}
