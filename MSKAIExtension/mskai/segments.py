"""What every task returns: named segments on the input grid, plus measurements.

A :class:`Result` is the one currency between the tasks, the writers (:mod:`mskai.results`)
and the Slicer adapters (:mod:`mskai.slicer_io`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mskai import __version__
from mskai.terminology import segment_type
from mskai.volume import Volume

STATUS_AI = "ai_result"
STATUS_EDITED = "edited_by_hand"

# Segment tags carrying status and provenance, written alike into .seg.nrrd files
# (mskai.results.segnrrd) and onto Slicer segments (mskai.slicer_io.tags).
TAG_STATUS = "MSKAI.Status"
TAG_METHOD = "MSKAI.Method"
TAG_VERSION = "MSKAI.Version"
TAG_TIME = "MSKAI.Time"
TAG_MODEL_ID = "MSKAI.ModelId"
TAG_MODEL_VERSION = "MSKAI.ModelVersion"
TAG_MODEL_SHA256 = "MSKAI.ModelSha256"


@dataclass
class Provenance:
    """How a segment or result was made: method, model identity, software version, time."""

    method: str
    model_id: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    mskai_version: str = __version__
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def model_dict(self) -> dict[str, str] | None:
        if self.model_id is None:
            return None
        return {"id": self.model_id, "version": self.model_version or "",
                "sha256": self.model_sha256 or ""}

    def to_json(self) -> dict[str, Any]:
        return {"mskai_version": self.mskai_version, "method": self.method,
                "model": self.model_dict()}


@dataclass
class Segment:
    """One structure: a boolean mask on the reference grid and its measurements."""

    id: str
    mask: np.ndarray
    label: int
    name: str | None = None
    color: tuple[float, float, float] | None = None
    status: str = STATUS_AI
    measurements: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = segment_type(self.id)
        self.name = self.name or kind.name
        self.color = self.color or kind.color
        self.mask = np.asarray(self.mask, dtype=bool)


@dataclass
class Result:
    """Output of one module run on one image."""

    module: str
    image: Volume
    provenance: Provenance
    segments: list[Segment] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def segment(self, segment_id: str) -> Segment:
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise KeyError(segment_id)

    def label_map(self) -> np.ndarray:
        """All segments painted into one label map (later segments win where they overlap)."""
        labels = np.zeros(self.image.array.shape[:3], dtype=np.uint16)
        for seg in self.segments:
            labels[seg.mask] = seg.label
        return labels
