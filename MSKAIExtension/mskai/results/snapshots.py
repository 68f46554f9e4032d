"""Report figures as PNG bytes: key slices with segment overlays and a 3D snapshot.

All 2D drawing uses matplotlib's Agg canvas directly (no pyplot, no display). The 3D
snapshot is rendered by VTK off screen in a child process (:mod:`.render3d`); when that
fails (no OpenGL context possible) matplotlib's mplot3d draws the meshes instead.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mskai.segments import Result, Segment
from mskai.volume import Volume

Figure = tuple[str, bytes]
PLANES = ("Sagittal", "Coronal", "Axial")  # named by the nearest LPS axis: L, P, S
SCREEN = {"Axial": ((1, 0, 0), (0, 1, 0)),      # (screen right, screen down) in LPS
          "Coronal": ((1, 0, 0), (0, 0, -1)),
          "Sagittal": ((0, 1, 0), (0, 0, -1))}
# The 3D view draws surfaces with more faces than this coarsened to this cell size.
VIEW_MAX_FACES = 200_000
VIEW_CELL_MM = 0.8


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _focus_index(result: Result) -> np.ndarray:
    """Array index ([k, j, i]) of the largest segment's centroid, or the image centre."""
    from mskai.measure.shape import centroid_kji

    counts = [(int(np.count_nonzero(s.mask)), n) for n, s in enumerate(result.segments)]
    counts = [(c, n) for c, n in counts if c > 0]
    if not counts:
        return np.array(result.image.array.shape[:3]) // 2
    largest = result.segments[max(counts, key=lambda c: (c[0], -c[1]))[1]]
    return np.round(centroid_kji(np.asarray(largest.mask, dtype=bool))).astype(int)


def _oriented(image2d: np.ndarray, row_dir: np.ndarray, col_dir: np.ndarray,
              plane: str) -> tuple[np.ndarray, bool]:
    """The slice turned so patient directions land where radiologists expect them."""
    right, down = (np.asarray(v, dtype=float) for v in SCREEN[plane])
    transposed = abs(row_dir @ right) > abs(col_dir @ right)
    if transposed:
        image2d, row_dir, col_dir = image2d.T, col_dir, row_dir
    if col_dir @ right < 0:
        image2d = image2d[:, ::-1]
    if row_dir @ down < 0:
        image2d = image2d[::-1, :]
    return image2d, transposed


def _slice_view(volume: Volume, array_axis: int, index: int) -> dict:
    """Plane name, in-slice axes' LPS directions and spacings of one array-axis slice."""
    image_axis = 2 - array_axis
    plane = PLANES[int(np.argmax(np.abs(volume.direction[:, image_axis])))]
    rows, cols = [2 - a for a in range(3) if a != array_axis]  # image axes of rows, cols
    return {"plane": plane, "row_dir": volume.direction[:, rows],
            "col_dir": volume.direction[:, cols],
            "row_mm": volume.spacing[rows], "col_mm": volume.spacing[cols]}


def _draw_slice(result: Result, array_axis: int, index: int,
                window: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    image = result.image
    low, high = window
    fig = MplFigure(figsize=(4.2, 4.2), dpi=100)
    ax = fig.add_axes((0, 0, 1, 0.93))
    plane = _draw_on(ax, image, result.segments, array_axis, index, (low, high))
    title = f"{plane} (image slice {index})"
    fig.suptitle(title, fontsize=10)
    return title, _png(fig)


def _draw_on(ax, image: Volume, segments: list[Segment], array_axis: int, index: int,
             window: tuple[float, float], marker_kji: np.ndarray | None = None,
             half_width_mm: float | None = None) -> str:
    """One array-axis slice with overlays on ``ax``; returns the plane name.

    ``marker_kji`` (array index) is drawn as a cross; ``half_width_mm`` crops the slice to
    a square window around it.
    """
    view = _slice_view(image, array_axis, index)
    orient = lambda a: _oriented(np.take(a, index, axis=array_axis),  # noqa: E731
                                 view["row_dir"], view["col_dir"], view["plane"])
    gray, transposed = orient(image.array)
    row_mm, col_mm = ((view["col_mm"], view["row_mm"]) if transposed
                      else (view["row_mm"], view["col_mm"]))
    box = (slice(None), slice(None))
    marker = None
    if marker_kji is not None:  # where the point lands after turning: turn a one-pixel mask
        shape = [n for a, n in enumerate(image.array.shape[:3]) if a != array_axis]
        dot = np.zeros(shape, dtype=bool)
        at = [int(v) for a, v in enumerate(marker_kji) if a != array_axis]
        dot[tuple(np.clip(at, 0, np.array(shape) - 1))] = True
        marker = np.argwhere(_oriented(dot, view["row_dir"], view["col_dir"],
                                       view["plane"])[0])[0]
        if half_width_mm is not None:
            half = (int(half_width_mm / row_mm), int(half_width_mm / col_mm))
            lo = [max(0, int(m) - h) for m, h in zip(marker, half, strict=True)]
            box = tuple(slice(a, int(m) + h + 1) for a, m, h in zip(lo, marker, half,
                                                                     strict=True))
            marker = marker - lo
    aspect = row_mm / col_mm
    low, high = window
    ax.imshow(gray[box], cmap="gray", vmin=low, vmax=max(high, low + 1e-6), aspect=aspect,
              interpolation="nearest")
    for seg in segments:
        _overlay(ax, orient(seg.mask)[0][box], seg, aspect)
    if marker is not None:
        ax.plot([marker[1]], [marker[0]], marker="+", color="yellow", markersize=16,
                markeredgewidth=2)
    ax.set_axis_off()
    return view["plane"]


def slices_through_point(image: Volume, segments: list[Segment], point_ras, title: str,
                         window: tuple[float, float] | None = None,
                         half_width_mm: float | None = 60.0) -> bytes:
    """PNG of the axial, coronal and sagittal slices through a RAS point, side by side.

    Each panel shows the segments' overlays and a cross at the point, cropped to
    ``half_width_mm`` around it (``None``: whole slice). ``window`` is the grey-value range
    (default: 1st to 99.5th percentile of a subsample of the image).
    """
    from matplotlib.figure import Figure as MplFigure

    kji = np.asarray(image.ras_to_index(np.asarray(point_ras, dtype=float)))[::-1]
    kji = np.clip(np.round(kji).astype(int), 0, np.array(image.array.shape[:3]) - 1)
    if window is None:
        sample = image.array[::4, ::4, ::4]
        window = tuple(np.percentile(sample, [1, 99.5])) if sample.size else (0.0, 1.0)
    fig = MplFigure(figsize=(10.5, 3.8), dpi=100)
    order = {"Axial": 0, "Coronal": 1, "Sagittal": 2}
    views = sorted(((_slice_view(image, axis, 0)["plane"], axis) for axis in range(3)),
                   key=lambda v: order.get(v[0], 3))
    for n, (plane, axis) in enumerate(views):
        ax = fig.add_axes((n / 3 + 0.005, 0.0, 1 / 3 - 0.01, 0.86))
        _draw_on(ax, image, segments, axis, int(kji[axis]), window, kji, half_width_mm)
        ax.set_title(plane, fontsize=9)
    fig.suptitle(title, fontsize=11)
    return _png(fig)


def _overlay(ax, mask2d: np.ndarray, seg: Segment, aspect: float) -> None:
    if not mask2d.any():
        return
    from mskai.measure.cartilage_surfaces import bounding_box

    rgba = np.zeros((*mask2d.shape, 4))
    rgba[mask2d] = (*seg.color, 0.35)
    ax.imshow(rgba, aspect=aspect, interpolation="nearest")
    # the contour of the mask's box grown by one pixel (all-outside edges): the same lines
    # at the same pixel coordinates as over the whole slice, traced on far fewer pixels
    rows, cols = bounding_box(mask2d[None], (1, *mask2d.shape), margin=1)[1:]
    ax.contour(np.arange(cols.start, cols.stop), np.arange(rows.start, rows.stop),
               mask2d[rows, cols].astype(float), levels=[0.5], colors=[seg.color],
               linewidths=1.0)


def key_slices(result: Result) -> list[Figure]:
    """Axial, coronal and sagittal image slices through the largest segment's centroid."""
    focus = _focus_index(result)
    sample = result.image.array[::2, ::2, ::2]  # display window: a subsample is enough
    window = tuple(np.percentile(sample, [1, 99.5])) if sample.size else (0, 1)
    views = [_draw_slice(result, axis, int(focus[axis]), window) for axis in range(3)]
    order = {"Axial": 0, "Coronal": 1, "Sagittal": 2}
    return sorted(views, key=lambda v: order.get(v[0].split()[0], 3))


def _meshes(result: Result) -> list[dict]:
    """Smoothed surface, colour and opacity (containers see-through) of each segment."""
    from mskai.measure.mesh import coarsen_mesh, mask_to_mesh

    filled = [s for s in result.segments if s.mask.any()]
    counts = {id(s): int(np.count_nonzero(s.mask)) for s in filled}
    meshes = []
    for seg in filled:
        contains_other = any(o is not seg and counts[id(seg)] >= 0.9 * counts[id(o)]
                             and _overlap(o.mask, seg.mask) >= 0.9 * counts[id(o)]
                             for o in filled)
        verts, faces = mask_to_mesh(seg.mask, result.image, smooth=True)
        if len(faces) > VIEW_MAX_FACES:  # drawing only; the renderer's time grows with faces
            verts, faces = coarsen_mesh(verts, faces, VIEW_CELL_MM)
        meshes.append({"verts": verts, "faces": faces, "color": np.asarray(seg.color),
                       "opacity": 0.3 if contains_other else 1.0})
    return meshes


def _overlap(inner: np.ndarray, outer: np.ndarray) -> int:
    """Voxels of ``inner`` also in ``outer``, counted in ``inner``'s bounding box."""
    from mskai.measure.cartilage_surfaces import bounding_box

    box = bounding_box(inner, inner.shape, margin=0)
    return int(np.count_nonzero(inner[box] & outer[box]))


def _render_vtk(meshes: list[dict], timeout_s: float = 120.0) -> bytes | None:
    """PNG from VTK in a child process, or ``None`` when off-screen rendering fails."""
    return _start_vtk(meshes, timeout_s)()


def _start_vtk(meshes: list[dict], timeout_s: float = 120.0) -> Callable[[], bytes | None]:
    """Start the VTK child process now; the returned call waits for its PNG (``None`` when
    off-screen rendering fails) and removes the temporary files. Other work (the key
    slices) can run while the child imports VTK and renders."""
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="mskai-3d-"))
    arrays = {f"{key}_{n}": m[key] for n, m in enumerate(meshes)
              for key in ("verts", "faces", "color", "opacity")}
    np.savez(tmp / "meshes.npz", **arrays)
    png = tmp / "snapshot.png"
    script = Path(__file__).with_name("render3d.py")
    try:
        child = subprocess.Popen([sys.executable, str(script), str(tmp / "meshes.npz"),
                                  str(png)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    except OSError:
        child = None

    def finish() -> bytes | None:
        try:
            if child is None:
                return None
            try:
                code = child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                return None
            return png.read_bytes() if code == 0 and png.is_file() else None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    return finish


def _render_matplotlib(meshes: list[dict], max_faces: int = 20000) -> bytes:
    """Lambert-shaded mplot3d drawing of (subsampled) meshes, seen from anterior."""
    from matplotlib.figure import Figure as MplFigure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    fig = MplFigure(figsize=(5.6, 5.6), dpi=100)
    ax = fig.add_subplot(projection="3d")
    light = np.array([0.3, 0.8, 0.5]) / np.linalg.norm([0.3, 0.8, 0.5])
    for m in meshes:
        faces = m["faces"][:: max(1, len(m["faces"]) // max_faces)]
        tri = m["verts"][faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        shade = 0.35 + 0.65 * np.clip(normal @ light, 0, 1)[:, None]
        colors = np.c_[np.clip(shade * m["color"], 0, 1), np.full(len(tri), m["opacity"])]
        ax.add_collection3d(Poly3DCollection(tri, facecolors=colors, linewidths=0))
    allv = np.concatenate([m["verts"] for m in meshes])
    centre, half = (allv.max(0) + allv.min(0)) / 2, (allv.max(0) - allv.min(0)).max() / 2
    for set_lim, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True):
        set_lim(c - half, c + half)
    ax.set_xlabel("R (mm)")
    ax.set_ylabel("A (mm)")
    ax.set_zlabel("S (mm)")
    ax.view_init(elev=15, azim=65)
    return _png(fig)


def snapshot_3d(result: Result, use_vtk: bool = True) -> Figure | None:
    """3D view of all segment surfaces (``None`` when every segment is empty)."""
    return start_snapshot_3d(result, use_vtk)()


def start_snapshot_3d(result: Result, use_vtk: bool = True) -> Callable[[], Figure | None]:
    """:func:`snapshot_3d` in two steps: the meshes are made and the VTK child is started
    now; the returned call waits for it (or draws with matplotlib when VTK fails)."""
    meshes = _meshes(result)
    if not meshes:
        return lambda: None
    pending = _start_vtk(meshes) if use_vtk else (lambda: None)

    def finish() -> Figure | None:
        png = pending()
        if png is not None:
            return "3D surfaces (VTK, anterior view)", png
        return "3D surfaces (matplotlib, anterior view)", _render_matplotlib(meshes)

    return finish
