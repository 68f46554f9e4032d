"""Off-screen VTK rendering of segment meshes to PNG, run as a separate process.

``python render3d.py MESHES.npz OUT.png``. It runs in its own process because an OpenGL
context that cannot be created (no display, no EGL, no OSMesa) may abort the process
instead of raising; the caller (:mod:`mskai.results.snapshots`) falls back to matplotlib.
The npz holds, for each mesh n, ``verts_n`` (RAS), ``faces_n``, ``color_n`` and
``opacity_n``. Only numpy and vtk are imported: this file must not import :mod:`mskai`.
"""

from __future__ import annotations

import sys

import numpy as np

SIZE = (560, 560)


def _vtk():
    """The VTK classes used here, from their own modules: ``import vtk`` loads every VTK
    module (about 0.4 s of the child's 1.4 s CPU on the bench knee; the PNG is the same
    pixel for pixel). ``vtkRenderingOpenGL2`` registers the render window,
    ``vtkInteractionStyle`` what ``import vtk`` also sets up for it."""
    from types import SimpleNamespace

    import vtkmodules.vtkInteractionStyle
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals
    from vtkmodules.vtkIOImage import vtkPNGWriter
    from vtkmodules.vtkRenderingCore import (
        vtkActor,
        vtkPolyDataMapper,
        vtkRenderer,
        vtkRenderWindow,
        vtkWindowToImageFilter,
    )

    return SimpleNamespace(**{c.__name__: c for c in (
        vtkPoints, vtkCellArray, vtkPolyData, vtkPolyDataNormals, vtkPNGWriter, vtkActor,
        vtkPolyDataMapper, vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter)})


def _polydata(verts: np.ndarray, faces: np.ndarray):
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray

    vtk = _vtk()

    points = vtk.vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(verts, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells = vtk.vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_to_vtkIdTypeArray(faces.astype(np.int64).ravel(), deep=True))
    poly = vtk.vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    normals = vtk.vtkPolyDataNormals()
    normals.SetInputData(poly)
    normals.Update()
    return normals.GetOutput()


def _actor(verts, faces, color, opacity):
    vtk = _vtk()

    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputData(_polydata(verts, faces))
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*[float(c) for c in color])
    actor.GetProperty().SetOpacity(float(opacity))
    return actor


def render(npz_path: str, png_path: str) -> None:
    """Render every mesh in ``npz_path`` seen from anterior (superior up) into ``png_path``."""
    vtk = _vtk()

    data = np.load(npz_path)
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.12, 0.12, 0.14)
    n = 0
    while f"verts_{n}" in data:
        renderer.AddActor(_actor(data[f"verts_{n}"], data[f"faces_{n}"], data[f"color_{n}"],
                                 data[f"opacity_{n}"]))
        n += 1
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(0, 0, 0)
    camera.SetPosition(0, 1, 0)  # anterior (+A) looking back at the patient
    camera.SetViewUp(0, 0, 1)
    renderer.ResetCamera()
    camera.Elevation(15)
    camera.Azimuth(-25)
    camera.Zoom(1.3)
    renderer.ResetCameraClippingRange()
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(*SIZE)
    window.AddRenderer(renderer)
    window.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.Update()
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(png_path)
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()


if __name__ == "__main__":
    render(sys.argv[1], sys.argv[2])
