"""Argument types for the ``mskai`` command: RAS points, boxes and label-name maps."""

from __future__ import annotations

import argparse
import math


def ras_point(text: str) -> tuple[float, float, float]:
    """Parse ``R,A,S`` millimetres (Slicer's RAS convention)."""
    values = _floats(text, 3, "a point as R,A,S in millimetres, e.g. 12.5,-30,40")
    return (values[0], values[1], values[2])


def labelled_ras_point(text: str) -> tuple[str, tuple[float, float, float]]:
    """Parse ``LABEL=R,A,S``: a structure's canonical id and a point inside it (RAS mm)."""
    label, sep, point = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not LABEL=R,A,S, e.g. "
                                         "femoral_cartilage=12.5,-30,40")
    return label.strip().lower().replace("-", "_").replace(" ", "_"), ras_point(point)


def ras_box(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Parse ``R1,A1,S1,R2,A2,S2``: two opposite corners of a box in RAS millimetres."""
    v = _floats(text, 6, "a box as R1,A1,S1,R2,A2,S2 in millimetres")
    return (v[0], v[1], v[2]), (v[3], v[4], v[5])


def ras_line(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Parse ``R1,A1,S1,R2,A2,S2``: the two end points of a line in RAS millimetres."""
    v = _floats(text, 6, "a line as R1,A1,S1,R2,A2,S2 (its two end points) in millimetres")
    return (v[0], v[1], v[2]), (v[3], v[4], v[5])


def positive_mm(text: str) -> float:
    value = _floats(text, 1, "a distance in millimetres, e.g. 10")[0]
    if value <= 0 or value > 200:
        raise argparse.ArgumentTypeError(f"{text!r} is not a margin between 0 and 200 mm")
    return value


def _floats(text: str, count: int, expected: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {expected}") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
    return values
