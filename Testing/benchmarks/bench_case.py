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
