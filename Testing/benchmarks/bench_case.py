"""A benchmark case: shared input, our implementation, and a baseline doing the same job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    prepare: Callable[[], Any]
    ours: Callable[[Any], Any]
    baseline: Callable[[Any], Any]
    baseline_name: str
    max_repeats: int | None = None  # a case of minutes: fewer repeats than ``--repeats``
    warm_up: bool = True            # False: no untimed first call (a case of minutes)


class Measured(float):
    """Seconds a case measured itself (e.g. from the browser's side); ``make bench`` takes
    them instead of the wall-clock time of the whole call."""
