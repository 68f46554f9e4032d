"""The page: trame-slicer's segmentation app (three slice views, 3D, segment editor with
undo, upload) plus the MSK AI panel on the right (TumorSeg, CartilageQuant,
FractureDetect), all on one MRML scene."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskai.volume import Volume
from mskai.web import state as names
from mskai.web.job_slot import JobSlot
from mskai.web.session import Session

TITLE = "MSK AI"


class MSKAIWebApp:
    """Builds the scene, the views and the panels on a trame ``server``."""

    def __init__(self, server: Any, work_dir: Path, out_dir: Path) -> None:
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.app.logic import SegmentationAppLogic
        from trame_slicer.app.ui import SegmentationAppUI
        from trame_slicer.core import SlicerApp

        from mskai.web.cartilage_logic import KneeWorkflow
        from mskai.web.fracture_logic import FractureWorkflow
        from mskai.web.panels import build_panel
        from mskai.web.tumor_logic import TumourWorkflow
        from mskai.web.views import ViewGeometry

        self.server = server
        server.enable_module(trame_slicer_module)
        server.state.update(names.initial_state())
        self.slicer_app = SlicerApp()
        self.logic = SegmentationAppLogic(server, self.slicer_app)
        self.ui = SegmentationAppUI(server, self.logic.layout_manager)
        self.logic.set_ui(self.ui)
        self.ui.layout.title.set_text(TITLE)
        server.state["trame__title"] = TITLE
        self.session = Session(self.slicer_app, work_dir, out_dir)
        self.jobs = JobSlot(server.state)
        self.tumour = TumourWorkflow(self.session, self.jobs, server.state)
        self.knee = KneeWorkflow(self.session, self.jobs, server.state)
        self.fracture = FractureWorkflow(self.session, self.jobs, server.state)
        self.views = ViewGeometry(self.slicer_app.scene, server.state)
        # trame-slicer 2.0.0 keeps its upload logic private; its signal is the one way to
        # hear about uploaded images (pinned version, see requirements/base.txt)
        self._loader = self.logic._load_files_logic
        self._loader.volume_loaded.connect(self._on_volume_loaded)
        build_panel(self)
        server.controller.on_server_ready.add(lambda **_: self.views.watch())

    def open_volume(self, volume: Volume, name: str) -> None:
        """Show a core Volume (read by the CLI's reader: file or DICOM folder)."""
        from mskai.slicer_io import volume_to_node

        self.slicer_app.scene.Clear()
        node = volume_to_node(self.slicer_app.scene, volume, name)
        self.slicer_app.display_manager.show_volume(node, do_reset_views=True)
        self.session.expect_source(volume)
        self._loader.volume_loaded(node)

    def open_path(self, path: str) -> None:
        """The page's "open" field: a file or a DICOM folder on the server's disk."""
        from mskai.errors import InputError
        from mskai.image import read_image

        try:
            volume = read_image(Path(path.strip()).expanduser())
        except (InputError, OSError) as exc:
            self.server.state[names.MESSAGE] = f"open: {exc}"
            return
        self.open_volume(volume, Path(path.strip()).name.split(".")[0] or "image")

    def _on_volume_loaded(self, node: Any) -> None:
        self._hide_volume_rendering(node)
        self.session.on_volume_loaded(node)
        with self.server.state as state:
            state[names.IMAGE_NAME] = self.session.name
            state[names.MESSAGE] = ""
            state[names.EXPORTED] = ""
            state[names.DICOM_SOURCE] = bool(self.session.dicom_files)
        self.views.watch()

    def _hide_volume_rendering(self, node: Any) -> None:
        """3D shows the segments; volume rendering on a CPU renderer would slow every edit."""
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display is not None and display.IsA("vtkMRMLVolumeRenderingDisplayNode"):
                display.SetVisibility(False)
