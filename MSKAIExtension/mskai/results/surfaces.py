"""Surface export of segments as STL (binary) or OBJ (text), in RAS millimetres.

Meshes are the smoothed closed surfaces of :func:`mskai.measure.mesh.mask_to_mesh`, with
outward-facing triangles. Coordinates are RAS, as Slicer loads models by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.measure.mesh import mask_to_mesh
from mskai.segments import Result

FORMATS = ("stl", "obj")


def write_stl(verts: np.ndarray, faces: np.ndarray, path: Path, name: str = "mskai") -> Path:
    """Binary STL: 80-byte header, triangle count, then normal + 3 vertices per triangle."""
    tri = verts[faces].astype(np.float32)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    record = np.zeros(len(faces), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    record["n"], record["v"] = normals, tri
    header = f"MSK AI surface {name} (RAS mm)".encode("ascii", "replace")[:80].ljust(80, b" ")
    path.write_bytes(header + np.uint32(len(faces)).tobytes() + record.tobytes())
    return path


def read_stl(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of a binary STL as ``(verts (3m, 3), faces (m, 3))`` (vertices not merged)."""
    raw = Path(path).read_bytes()
    count = int(np.frombuffer(raw, dtype="<u4", count=1, offset=80)[0])
    record = np.frombuffer(raw, offset=84, count=count,
                           dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    verts = record["v"].reshape(-1, 3).astype(float)
    return verts, np.arange(len(verts)).reshape(-1, 3)


def write_obj(verts: np.ndarray, faces: np.ndarray, path: Path, name: str = "mskai") -> Path:
    """Wavefront OBJ text with one named object (1-based face indices)."""
    lines = [f"# MSK AI surface {name} (RAS mm)", f"o {name}"]
    lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def export_surfaces(result: Result, out_dir: str | Path, fmt: str = "stl",
                    segment_ids: list[str] | None = None) -> list[Path]:
    """One ``<segment id>.<fmt>`` surface file per (non-empty) segment; returns the paths."""
    if fmt not in FORMATS:
        raise InputError(f"surface format '{fmt}' is not supported; use one of {FORMATS}")
    known = {s.id for s in result.segments}
    missing = sorted(set(segment_ids or ()) - known)
    if missing:
        raise InputError(f"no segment {missing} in the result; choose from {sorted(known)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = write_stl if fmt == "stl" else write_obj
    paths = []
    for seg in result.segments:
        if (segment_ids is not None and seg.id not in segment_ids) or not seg.mask.any():
            continue
        verts, faces = mask_to_mesh(seg.mask, result.image, smooth=True)
        paths.append(writer(verts, faces, out / f"{seg.id}.{fmt}", seg.id))
    return paths
