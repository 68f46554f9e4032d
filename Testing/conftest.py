"""Shared pytest set-up: import paths and the location of the shared real data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTING = Path(__file__).resolve().parent
REPO = TESTING.parent
sys.path.insert(0, str(TESTING))
sys.path.insert(0, str(REPO / "MSKAIExtension"))

SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = TESTING / "Data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, the real openly licensed images; tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def tampered_copy(tmp_path):
    """``tampered_copy(entry)``: the manifest entry pointing at a copy of its model file
    with one byte appended (so its sha256 no longer matches)."""
    import shutil
    from dataclasses import replace

    def make(entry):
        copy = tmp_path / entry.path.name
        shutil.copy(entry.path, copy)
        with copy.open("ab") as handle:
            handle.write(b"0")
        return replace(entry, root=tmp_path, file=copy.name)

    return make


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Testing/Data: small real files copied into the repository with attribution."""
    return TEST_DATA


from mrml import mrml  # noqa: E402, F401  (fresh Slicer scene + logics per test)
