"""Vertex clustering for the report's 3D view (mskai.measure.mesh.coarsen_mesh).

Truth: a sphere of radius 20 mm on a 0.3 x 0.3 x 1.5 mm grid (a DESS-like knee grid).
Coarsening at 0.8 mm must cut the faces several-fold and keep the enclosed volume and the
area of the analytic sphere within 2 %, with a closed surface left (outward faces).
"""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume

RADIUS = 20.0
SPACING = (0.3, 0.3, 1.5)


def _sphere_mesh():
    from mskai.measure.mesh import mask_to_mesh

    shape_kji = (36, 160, 160)
    k, j, i = np.indices(shape_kji, dtype=float)
    centre = (np.asarray(shape_kji) - 1) / 2
    mm = np.stack([(k - centre[0]) * SPACING[2], (j - centre[1]) * SPACING[1],
                   (i - centre[2]) * SPACING[0]])
    mask = (mm**2).sum(0) <= RADIUS**2
    return mask_to_mesh(mask, Volume(mask.astype(np.uint8), spacing=SPACING), smooth=True)


def test_coarsened_sphere_keeps_volume_and_area_with_far_fewer_faces():
    from mskai.measure.mesh import coarsen_mesh, mesh_area_mm2, signed_volume_mm3

    verts, faces = _sphere_mesh()
    small_v, small_f = coarsen_mesh(verts, faces, 0.8)
    assert len(small_f) < len(faces) / 4
    assert small_f.max() < len(small_v)
    volume = signed_volume_mm3(small_v, small_f)
    assert volume > 0  # faces still point outwards
    assert abs(volume / (4 / 3 * np.pi * RADIUS**3) - 1) < 0.02
    assert abs(mesh_area_mm2(small_v, small_f) / (4 * np.pi * RADIUS**2) - 1) < 0.02
