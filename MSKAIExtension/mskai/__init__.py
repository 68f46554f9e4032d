"""MSK AI core: pure-Python imaging, inference and measurement for musculoskeletal imaging.

The core never imports ``slicer``; the MRML adapters live in :mod:`mskai.slicer_io`.
Heavy libraries (torch, MONAI, pyradiomics) are imported inside the functions that need
them, so importing :mod:`mskai` stays cheap for Slicer start-up.
"""

__version__ = "0.1.0"
