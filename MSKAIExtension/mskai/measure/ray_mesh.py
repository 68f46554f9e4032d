"""Vectorised first intersection of many rays with a triangle mesh.

Each ray tests only a few candidate triangles: those whose centroids are nearest to the
ray's predicted hit point. The prediction starts at a lower bound of the hit distance
(the distance to the nearest mesh vertex) and is refined by intersecting the ray with the
tangent plane at the nearest vertex, a few times (Newton's method on the surface). Rays
whose candidates are not hit within the length limit are misses (NaN).
"""

from __future__ import annotations

import numpy as np

CANDIDATES = 16
REFINEMENTS = 8
CONVERGED_MM = 1e-6
NEIGHBOURS = 12


def _moller_trumbore(origins: np.ndarray, dirs: np.ndarray, a: np.ndarray, b: np.ndarray,
                     c: np.ndarray) -> np.ndarray:
    """Ray parameter of each ray/triangle pair (broadcast), NaN where they do not meet."""
    e1, e2 = b - a, c - a
    p = np.cross(dirs, e2)
    det = np.einsum("...k,...k->...", e1, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        s = origins - a
        u = np.einsum("...k,...k->...", s, p) * inv
        q = np.cross(s, e1)
        v = np.einsum("...k,...k->...", dirs, q) * inv
        t = np.einsum("...k,...k->...", e2, q) * inv
    eps = 1e-9
    ok = (np.abs(det) > 1e-12) & (u >= -eps) & (v >= -eps) & (u + v <= 1 + eps) & (t > 0)
    return np.where(ok, t, np.nan)


def _facing_vertex(tree, points: np.ndarray, dirs: np.ndarray,
                   vert_normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest of the k nearest vertices that the ray can leave through, and whether any is."""
    _, idx = tree.query(points, k=min(NEIGHBOURS, tree.n), workers=-1)
    idx = idx.reshape(len(points), -1)
    facing = np.einsum("ikj,ij->ik", vert_normals[idx], dirs) > 0.3
    first = np.where(facing.any(axis=1), facing.argmax(axis=1), 0)
    return idx[np.arange(len(points)), first], facing.any(axis=1)


def _predict_hits(origins: np.ndarray, dirs: np.ndarray, verts: np.ndarray,
                  vert_normals: np.ndarray, max_length: float, step: float) -> np.ndarray:
    """Estimated ray parameter of the hit, by repeated tangent-plane intersection.

    Where no nearby vertex faces the ray (near a steep edge of the mesh) the estimate
    advances by ``step`` instead.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(verts)
    t, _ = tree.query(origins, k=1, workers=-1)
    lower = t.copy()
    active = np.arange(len(origins))
    for _ in range(REFINEMENTS):  # rays whose estimate no longer moves are done
        o, d, ta = origins[active], dirs[active], t[active]
        idx, facing = _facing_vertex(tree, o + ta[:, None] * d, d, vert_normals)
        q, m = verts[idx], vert_normals[idx]
        denom = np.einsum("ij,ij->i", d, m)
        gap = np.einsum("ij,ij->i", q - o - ta[:, None] * d, m)
        with np.errstate(divide="ignore", invalid="ignore"):
            planar = ta + gap / denom
        new = np.clip(np.where(facing & (denom > 0.2), planar, ta + step), lower[active],
                      max_length)
        t[active] = new
        active = active[np.abs(new - ta) > CONVERGED_MM]
        if len(active) == 0:
            break
    return t


def first_hits(origins: np.ndarray, dirs: np.ndarray, verts: np.ndarray, faces: np.ndarray,
               vert_normals: np.ndarray, max_length: float, step: float = 0.5) -> np.ndarray:
    """Distance along each unit ray to the mesh, NaN for misses or beyond ``max_length``.

    ``step`` (mm) should be about the mesh's edge length.
    """
    from scipy.spatial import cKDTree

    if len(faces) == 0 or len(origins) == 0:
        return np.full(len(origins), np.nan)
    used = np.unique(faces)
    t_guess = _predict_hits(origins, dirs, verts[used], vert_normals[used], max_length,
                             step)
    centroids = verts[faces].mean(axis=1)
    k = min(CANDIDATES, len(faces))
    _, cand = cKDTree(centroids).query(origins + t_guess[:, None] * dirs, k=k, workers=-1)
    cand = cand.reshape(len(origins), k)
    tri = verts[faces[cand]]  # (n, k, 3 vertices, 3)
    t = _moller_trumbore(origins[:, None, :], dirs[:, None, :],
                         tri[:, :, 0], tri[:, :, 1], tri[:, :, 2])
    t = np.where(t <= max_length, t, np.nan)
    hit = np.isfinite(t).any(axis=1)
    out = np.full(len(origins), np.nan)
    out[hit] = np.nanmin(t[hit], axis=1)
    return out
