"""Segment tags MSK AI writes: terminology (Slicer's TerminologyEntry format) and provenance."""

from __future__ import annotations

from typing import Any

from mskai.segments import TAG_METHOD as METHOD
from mskai.segments import TAG_MODEL_ID as MODEL_ID
from mskai.segments import TAG_MODEL_SHA256 as MODEL_SHA256
from mskai.segments import TAG_MODEL_VERSION as MODEL_VERSION
from mskai.segments import TAG_STATUS as STATUS
from mskai.segments import TAG_TIME as TIME
from mskai.segments import TAG_VERSION as VERSION
from mskai.segments import Provenance
from mskai.terminology import SegmentType

__all__ = ["METHOD", "MODEL_ID", "MODEL_SHA256", "MODEL_VERSION", "STATUS", "TIME", "VERSION"]

MODULE = "MSKAI.Module"
FINGERPRINT = "MSKAI.Fingerprint"
FINGERPRINT_GEOMETRY = "MSKAI.FingerprintGeometry"
BACKUP_OF = "MSKAI.BackupOf"

TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
REGION_CONTEXT = "Anatomic codes - DICOM master list"


def get_tag(segment: Any, name: str) -> str | None:
    """A segment tag's value, or None when the segment has no such tag."""
    from vtkmodules.vtkCommonCore import reference

    value = reference("")
    return value.get() if segment.GetTag(name, value) else None


def set_tags(segment: Any, tags: dict[str, str]) -> None:
    """Set tags; ``|`` would split a tag in a .seg.nrrd file, so it becomes ``/``."""
    for name, value in tags.items():
        segment.SetTag(name, str(value).replace("|", "/"))


def provenance_tags(provenance: Provenance, module: str) -> dict[str, str]:
    return {
        METHOD: provenance.method,
        MODEL_ID: provenance.model_id or "",
        MODEL_VERSION: provenance.model_version or "",
        MODEL_SHA256: provenance.model_sha256 or "",
        TIME: provenance.time,
        VERSION: provenance.mskai_version,
        MODULE: module,
    }


def terminology_entry(kind: SegmentType) -> str:
    """Slicer's serialised entry: context~category~type~modifier~region context~region~modifier."""
    import slicer

    category_value, category_scheme, category_meaning = kind.category
    type_value, type_scheme, type_meaning = kind.type
    return slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(
        TERMINOLOGY_CONTEXT,
        category_value, category_scheme, category_meaning,
        type_value, type_scheme, type_meaning,
        "", "", "",
        REGION_CONTEXT, "", "", "", "", "", "")


def parse_terminology(entry: str) -> dict[str, tuple[str, str, str]]:
    """Category and type codes ``(value, scheme, meaning)`` of a serialised terminology entry."""
    import slicer

    from mskai.errors import InputError

    parsed = slicer.vtkSlicerTerminologyEntry()
    if not slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(entry, parsed):
        raise InputError(f"Terminology entry {entry!r} is not in Slicer's format; "
                         "set the segment's terminology in the Segment Editor.")
    return {"category": _code(parsed.GetCategoryObject()), "type": _code(parsed.GetTypeObject())}


def _code(obj: Any) -> tuple[str, str, str]:
    return (obj.GetCodeValue(), obj.GetCodingSchemeDesignator(), obj.GetCodeMeaning())
