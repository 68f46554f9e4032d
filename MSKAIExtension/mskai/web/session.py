"""What the open image is, in the scene and for the jobs: the volume node, its core
:class:`~mskai.volume.Volume`, the file the jobs read, and the segmentation node that both
the AI and trame-slicer's segment editor write into."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mskai.volume import Volume

IMAGE_FILE = "image.nrrd"


class Session:
    """The image open in the page; ``listeners`` run after each (re)load."""

    def __init__(self, slicer_app: Any, work_dir: Path, out_dir: Path) -> None:
        self.slicer_app = slicer_app
        self.work_dir = Path(work_dir)
        self.out_dir = Path(out_dir)
        self.volume_node: Any = None
        self.volume: Volume | None = None
        self.image_path: str | None = None
        self.name = ""
        # the DICOM series the open image was read from (a SEG/SR must reference it);
        # empty for uploads and image files
        self.dicom_files: list[str] = []
        self._next_dicom_files: list[str] = []
        self.listeners: list[Callable[[], None]] = []

    @property
    def scene(self) -> Any:
        return self.slicer_app.scene

    @property
    def editor(self) -> Any:
        """trame-slicer's SegmentationEditor (paint, erase, ... with undo)."""
        return self.slicer_app.segmentation_editor

    @property
    def segmentation_node(self) -> Any:
        return self.editor.active_segmentation_node

    @property
    def loaded(self) -> bool:
        return self.volume is not None

    def expect_source(self, volume: Volume) -> None:
        """The next loaded node shows ``volume`` (read by mskai): keep its DICOM files."""
        self._next_dicom_files = [str(p) for p in volume.metadata.get("dicom_files") or []]

    def on_volume_loaded(self, volume_node: Any) -> None:
        """The page loaded ``volume_node`` (uploaded or given): write it for the jobs."""
        from mskai.image import detect_modality, write_image
        from mskai.slicer_io import node_to_volume

        volume = node_to_volume(volume_node)
        if volume.modality is None:
            volume.modality = detect_modality(volume)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.image_path = str(write_image(volume, self.work_dir / IMAGE_FILE))
        self.volume_node, self.volume = volume_node, volume
        self.dicom_files, self._next_dicom_files = self._next_dicom_files, []
        self.name = volume_node.GetName() or "image"
        for listener in self.listeners:
            listener()

    def job_folder(self, name: str) -> Path:
        """A folder for one job's files (reused by the next job of that name)."""
        folder = self.work_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def require_image(self) -> Volume:
        from mskai.errors import InputError

        if self.volume is None:
            raise InputError("open an image first (upload it or give its path)")
        return self.volume
