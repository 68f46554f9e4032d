"""The ``mrml`` fixture: a fresh Slicer scene with its module logics for each test.

Real MRML from slicer-core, set up as the Slicer application does (see
:func:`mskai.slicer_io.app.create_app`); no Slicer application or GUI is needed.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def mrml():
    """An :class:`~mskai.slicer_io.app.MRMLApp`: ``.scene``, ``.app_logic``, ``.logic(name)``."""
    pytest.importorskip("slicer", reason="slicer-core is not installed")
    from mskai.slicer_io.app import create_app

    app = create_app()
    yield app
    app.close()
