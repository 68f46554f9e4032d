"""Runner job of CartilageQuant, so the Slicer module can measure in a child process.

``{"task": "mskai.tasks.cartilage_jobs:measure_cartilage", "args": {...}}`` reads the image
and, optionally, the current (possibly hand-edited) knee masks from files, runs
:func:`mskai.tasks.cartilage.run_cartilage` (the code behind ``mskai cartilage --labels``)
and writes into ``out``:

- ``measurements.json``: the contract document (plates, subregions, joint space width);
- ``thickness_maps.npz``: per cartilage plate the bone-interface mesh with one thickness per
  vertex (:class:`PlateSurface`), for thickness-coloured models, profiles and change maps;
- ``segmentation.seg.nrrd``: only when the job segmented the image itself (no masks given);
  when the model's structures fail the anatomical checks it holds those that passed, and
  the first warning says what failed and how to fix it (seeded refinement).

Files, not arrays, cross the process boundary; the JSON-lines stream carries progress and
these paths. The masks file is ``.npz`` with bit-packed boolean masks keyed by canonical id,
so overlapping segments keep every voxel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import CancelledError, InputError
from mskai.measure.knee_axes import KneeAxes
from mskai.measure.thickness import ThicknessMap
from mskai.results.job_files import write_job_files
from mskai.runner.base import job
from mskai.segments import Result
from mskai.volume import Volume

TASK = "mskai.tasks.cartilage_jobs:measure_cartilage"
SURFACES_FILE = "thickness_maps.npz"
SMOOTH_ITERATIONS = 60  # cartilage_thickness's default: the same mesh as the measurement


@dataclass
class PlateSurface:
    """The bone interface of one plate as a triangle mesh, with a thickness per vertex."""

    plate_id: str
    thickness: ThicknessMap   # points_ras are the mesh vertices
    faces: np.ndarray         # (m, 3) indices into thickness.points_ras
    axes: KneeAxes            # the knee's anatomical directions (profiles, change maps)


def axes_from_json(data: Mapping[str, Any]) -> KneeAxes:
    """Inverse of :meth:`KneeAxes.to_json`."""
    return KneeAxes(superior=np.asarray(data["superior"], float),
                    medial=np.asarray(data["medial"], float),
                    anterior=np.asarray(data["anterior"], float),
                    ml_center_ras=np.asarray(data["ml_center_ras"], float),
                    plateau_ap_mm=tuple(float(v) for v in data["plateau_ap_mm"]),
                    sources=dict(data.get("sources") or {}))


def plate_surface(cartilage: np.ndarray, bone: np.ndarray, image: Volume, plate_id: str,
                  axes: KneeAxes, method: str = "nearest") -> PlateSurface:
    """The plate's thickness map (:func:`cartilage_thickness`) on its interface mesh."""
    from mskai.measure.cartilage_surfaces import cartilage_surfaces
    from mskai.measure.thickness import cartilage_thickness

    thickness = cartilage_thickness(cartilage, bone, image, method)
    surf = cartilage_surfaces(cartilage, bone, image, 0.0, SMOOTH_ITERATIONS)
    interface = np.flatnonzero(surf.is_interface)
    if len(interface) != len(thickness.points_ras) or not np.allclose(
            surf.verts_ras[interface], thickness.points_ras, atol=1e-6):
        faces = np.zeros((0, 3), dtype=np.int64)  # points only: still one scalar per point
    else:
        local = np.full(len(surf.verts_ras), -1, dtype=np.int64)
        local[interface] = np.arange(len(interface))
        faces = local[surf.interface_faces()]
    return PlateSurface(plate_id, thickness, faces, axes)


def plate_surfaces(result: Result, method: str = "nearest",
                   cancel: threading.Event | None = None) -> dict[str, PlateSurface]:
    """:func:`plate_surface` of every measured plate of a CartilageQuant result."""
    from mskai.tasks.cartilage import BONE_OF

    if "knee_axes" not in result.measurements:  # femur or tibia failed the checks
        return {}
    axes = axes_from_json(result.measurements["knee_axes"])
    present = {seg.id for seg in result.segments}
    out: dict[str, PlateSurface] = {}
    for seg in result.segments:
        if seg.id not in BONE_OF or BONE_OF[seg.id] not in present:
            continue
        if cancel is not None and cancel.is_set():
            raise CancelledError("cartilage thickness maps were cancelled")
        bone = result.segment(BONE_OF[seg.id]).mask
        out[seg.id] = plate_surface(seg.mask, bone, result.image, seg.id, axes, method)
    return out


# --- files ---------------------------------------------------------------------------------

def save_masks(masks: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Boolean masks (one grid) as bit-packed arrays in an ``.npz``."""
    arrays: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        arrays[f"mask:{name}"] = np.packbits(mask.ravel())
        arrays[f"shape:{name}"] = np.asarray(mask.shape, dtype=np.int64)
    np.savez(path, **arrays)
    return Path(path)


def load_masks(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        names = [key.split(":", 1)[1] for key in data.files if key.startswith("mask:")]
        out = {}
        for name in names:
            shape = tuple(int(v) for v in data[f"shape:{name}"])
            flat = np.unpackbits(data[f"mask:{name}"], count=int(np.prod(shape)))
            out[name] = flat.reshape(shape).astype(bool)
    return out


def save_surfaces(surfaces: Mapping[str, PlateSurface], path: str | Path) -> Path:
    arrays: dict[str, np.ndarray] = {}
    for plate_id, s in surfaces.items():
        t = s.thickness
        for key, value in (("points", t.points_ras), ("normals", t.normals_ras),
                           ("thickness", t.thickness_mm), ("area", t.area_mm2),
                           ("faces", s.faces)):
            arrays[f"{plate_id}:{key}"] = np.asarray(value)
        arrays[f"{plate_id}:meta"] = np.asarray(json.dumps({
            "method": t.method, "volume_ml": t.volume_ml,
            "interface_area_mm2": t.interface_area_mm2, "axes": s.axes.to_json()}))
    np.savez_compressed(path, **arrays)
    return Path(path)


def load_surfaces(path: str | Path) -> dict[str, PlateSurface]:
    out: dict[str, PlateSurface] = {}
    with np.load(path) as data:
        plates = [key.split(":", 1)[0] for key in data.files if key.endswith(":meta")]
        for plate_id in plates:
            meta = json.loads(str(data[f"{plate_id}:meta"]))
            thickness = ThicknessMap(
                points_ras=data[f"{plate_id}:points"], normals_ras=data[f"{plate_id}:normals"],
                thickness_mm=data[f"{plate_id}:thickness"], area_mm2=data[f"{plate_id}:area"],
                method=meta["method"], volume_ml=float(meta["volume_ml"]),
                interface_area_mm2=float(meta["interface_area_mm2"]))
            out[plate_id] = PlateSurface(plate_id, thickness, data[f"{plate_id}:faces"],
                                         axes_from_json(meta["axes"]))
    return out


def write_job_outputs(result: Result, surfaces: Mapping[str, PlateSurface], out: str | Path,
                      with_segmentation: bool) -> dict[str, Any]:
    """The files a CartilageQuant job hands back (also what a fake runner in tests writes)."""
    outputs = write_job_files(result, out, with_segmentation)
    outputs["thickness_maps"] = str(save_surfaces(surfaces, Path(out) / SURFACES_FILE))
    return outputs


# --- the job -------------------------------------------------------------------------------

@job
def measure_cartilage(image: str, out: str, labels: str | None = None,
                      method: str = "nearest", knee_side: str | None = None, *,
                      progress: Callable[[float, str], None],
                      cancel: threading.Event) -> dict[str, Any]:
    """Segment (without ``labels``) or take the knee masks, measure, write ``out``."""
    from mskai.image import read_image
    from mskai.tasks.cartilage import SURFACE_SLICER, check_failure, run_cartilage

    volume = read_image(image)
    masks = load_masks(labels) if labels else None
    if masks is not None and not masks:
        raise InputError("the segmentation holds no knee structures to measure")
    result, _figures = run_cartilage(volume, masks, method,
                                     progress=lambda f, m="": progress(0.85 * f, m),
                                     cancel=cancel, knee_side=knee_side)
    failure = check_failure(result, SURFACE_SLICER)
    if failure:  # the module shows warnings; the structures that passed are written
        result.warnings.insert(0, failure)
    progress(0.86, "thickness maps")
    surfaces = plate_surfaces(result, method, cancel)
    progress(0.95, "writing results")
    outputs = write_job_outputs(result, surfaces, out, with_segmentation=masks is None)
    progress(1.0, "done")
    return outputs
