"""Kept for existing imports: :func:`padded_bbox` lives in :mod:`mskai.crop` (a low-level
module that segmentation can use without importing the task layer)."""

from __future__ import annotations

from mskai.crop import padded_bbox

__all__ = ["padded_bbox"]
