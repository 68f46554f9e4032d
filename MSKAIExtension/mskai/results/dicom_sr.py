"""DICOM SR of a :class:`Result`'s measurements: TID 1500 Measurement Report (highdicom).

:func:`write_dicom_sr` writes a Comprehensive 3D SR that sits in the source study next to
the DICOM SEG of the same result (:mod:`mskai.results.dicom_seg`):

- one TID 1411 volumetric measurement group per SEG segment: tracking identifier = the
  segment id (the SEG's ``TrackingID``, with its ``TrackingUID``), ReferencedSegment = the
  SEG instance + segment number (with the source series it was drawn on), finding type and
  category = the segment's SNOMED CT codes; it holds the segment's scalar measurements
  (``segments[].*`` and ``segments[].t2.*``) and, on the tumour, the ``margin`` ones;
- radiomics features of a segment in a second TID 1411 group on the same segment (tracking
  identifier ``<segment id>:radiomics``): IBSI-coded values as IBSI defines them
  (``feature_standard.ibsi_values``), pyradiomics features without IBSI code under
  ``99MSKAI``;
- TID 1501 groups (no region) for what is not one segment's: each cartilage subregion
  (``<segment id>/<subregion>``), the joint space width (``joint_space_width``) and each
  fracture of ``fractures`` (``fracture_<n>``).

Every measurement carries the unit (UCUM) and concept code (and derivation) of
:mod:`mskai.measurement_codes`; points, vectors, nulls and non-finite values are left out
(they stay in ``measurements.json``). The image library lists the source images; the SR
copies patient and study from them, and the evidence lists the source series and the SEG.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mskai.measurement_codes import (
    IBSI_SCHEME,
    IBSI_SCHEME_NAME,
    PRIVATE_SCHEME,
    PRIVATE_SCHEME_NAME,
    UNIT_MEANINGS,
    Code,
    Quantity,
    is_finite_number,
    measurement_values,
    quantity,
)
from mskai.segments import Result
from mskai.terminology import TUMOR

if TYPE_CHECKING:
    import highdicom
    import pydicom

MANUFACTURER = "MSK AI"
COPIED_MAX_LENGTH = {"SH": 16, "LO": 64, "CS": 16}
SERIES_NUMBER = 301
SERIES_DESCRIPTION = "MSK AI measurements"
RADIOMICS_SUFFIX = ":radiomics"
JSW_GROUP = "joint_space_width"
FRACTURE: Code = ("125605004", "SCT", "Fracture of bone")
PROCEDURES: dict[str, Code] = {"CT": ("25045-6", "LN", "CT unspecified body region"),
                               "MR": ("25056-3", "LN", "MRI unspecified body region")}
IMAGING_PROCEDURE: Code = ("363679005", "SCT", "Imaging procedure")


@dataclass
class SrItem:
    """One NUM of the report: the measurements.json path it comes from, its code, value."""

    path: str
    quantity: Quantity
    value: float

    def key(self) -> tuple[str, str, str | None]:
        code = self.quantity.code
        assert code is not None
        derivation = self.quantity.derivation[0] if self.quantity.derivation else None
        return code[1], code[0], derivation


@dataclass
class SrGroup:
    """One measurement group: TID 1411 on ``segment_id`` when ``volumetric``, else TID 1501."""

    tracking_id: str
    segment_id: str | None
    volumetric: bool
    items: list[SrItem] = field(default_factory=list)


def write_dicom_sr(result: Result, seg: highdicom.seg.Segmentation,
                   source_images: list[pydicom.Dataset],
                   path: str | Path) -> highdicom.sr.Comprehensive3DSR:
    """Write the measurements of ``result`` as a TID 1500 Comprehensive 3D SR to ``path``.

    ``seg``: the ``highdicom.seg.Segmentation`` written for the same result (its segments
    are matched by ``TrackingID`` = segment id, else by label = segment name);
    ``source_images``: the datasets of the source series. Returns the
    ``highdicom.sr.Comprehensive3DSR`` (saved to ``path``).
    """
    import highdicom as hd

    from mskai.results.tables import measurements_document

    if not source_images:
        raise ValueError("write_dicom_sr needs the source images the SEG references")
    document = measurements_document(result)
    segments = _seg_segments(seg, document)
    groups = [_group_content(g, seg, segments, result) for g in sr_groups(document)
              if g.items and (not g.volumetric or g.segment_id in segments)]
    modality = str(getattr(source_images[0], "Modality", "") or document["image"]["modality"])
    observer = hd.sr.ObserverContext(
        observer_type=_concept(("121007", "DCM", "Device")),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="mskai", manufacturer_name=MANUFACTURER, model_name="mskai"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_concept(PROCEDURES.get(modality.upper(), IMAGING_PROCEDURE)),
        imaging_measurements=groups, referenced_images=list(source_images))
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*source_images, seg], content=report, series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False,
        series_description=SERIES_DESCRIPTION, manufacturer_model_name="mskai",
        software_versions=result.provenance.mskai_version,
        coding_schemes=[
            hd.coding_schemes.CodingSchemeIdentificationItem(designator=PRIVATE_SCHEME,
                                                 name=PRIVATE_SCHEME_NAME,
                                                 responsible_organization=MANUFACTURER),
            hd.coding_schemes.CodingSchemeIdentificationItem(designator=IBSI_SCHEME,
                                                 name=IBSI_SCHEME_NAME)])
    _cut_copied_strings(sr)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(out)
    return sr


def _cut_copied_strings(sr: Any) -> None:
    """Cut over-long SH/LO/CS values the SR copied from the source (patient, study) to the
    VR's maximum length, as the SEG writer does: a source's invalid StudyID must not make
    the SR invalid."""
    for element in sr:
        limit = COPIED_MAX_LENGTH.get(element.VR)
        if limit is None or element.VM != 1 or not isinstance(element.value, str):
            continue
        if len(element.value) > limit:
            element.value = element.value[:limit]


def sr_groups(document: dict[str, Any]) -> list[SrGroup]:
    """The measurement groups (and their NUMs) :func:`write_dicom_sr` writes for a
    measurements document, segment groups first, in document order."""
    modality = (document.get("image") or {}).get("modality") or None
    groups: list[SrGroup] = []
    by_segment: dict[str, SrGroup] = {}
    for entry in document.get("segments", []):
        group = SrGroup(entry["id"], entry["id"], True,
                        [i for i in _items(entry, "segments[]", modality) if "[]." not in
                         i.path[len("segments[]."):]])
        by_segment[entry["id"]] = group
        groups.append(group)
    tumor = by_segment.get(TUMOR) or next(iter(by_segment.values()), None)
    if tumor is not None:
        tumor.items += list(_items(document.get("margin") or {}, "margin", modality))
        radiomics = _radiomics_items(document, modality)
        if radiomics:
            groups.append(SrGroup(tumor.segment_id + RADIOMICS_SUFFIX, tumor.segment_id, True,
                                  radiomics))
    for entry in document.get("segments", []):
        for sub in entry.get("subregions") or []:
            groups.append(SrGroup(f"{entry['id']}/{sub.get('name')}", entry["id"], False,
                                  list(_items(sub, "segments[].subregions[]", modality))))
    jsw = document.get("joint_space_width_mm")
    if isinstance(jsw, dict):
        groups.append(SrGroup(JSW_GROUP, None, False,
                              list(_items(jsw, "joint_space_width_mm", modality))))
    for n, fracture in enumerate(document.get("fractures") or [], start=1):
        groups.append(SrGroup(f"fracture_{n}", None, False,
                              list(_items(fracture, "fractures[]", modality))))
    return groups


def _items(node: dict[str, Any], prefix: str, modality: str | None) -> Iterator[SrItem]:
    """Scalar finite coded measurements of ``node`` (a part of the document at ``prefix``)."""
    for path, value in measurement_values(node):
        full = f"{prefix}.{path}" if prefix else path
        found = quantity(full, modality)
        if found is not None and found.code is not None and is_finite_number(value):
            yield SrItem(full, found, float(value))


def _radiomics_items(document: dict[str, Any], modality: str | None) -> list[SrItem]:
    """IBSI values under IBSI codes, then pyradiomics features without an IBSI value."""
    from mskai.radiomics.names import ibsi_tag

    standard = document.get("feature_standard") or {}
    ibsi = standard.get("ibsi_values") or {}
    items = list(_items({"ibsi_values": ibsi}, "feature_standard", modality))
    rest = {name: v for name, v in (document.get("features") or {}).items()
            if ibsi_tag(name) not in ibsi}
    return items + list(_items({"features": rest}, "", modality))


def _seg_segments(seg: Any, document: dict[str, Any]) -> dict[str, Any]:
    """Segment id -> its item of the SEG's SegmentSequence (by TrackingID, else label)."""
    names = {e.get("name"): e["id"] for e in document.get("segments", [])}
    ids = {e["id"] for e in document.get("segments", [])}
    out: dict[str, Any] = {}
    for item in seg.SegmentSequence:
        tracking = str(getattr(item, "TrackingID", "") or "")
        seg_id = tracking if tracking in ids else names.get(str(item.SegmentLabel))
        if seg_id is not None and seg_id not in out:
            out[seg_id] = item
    return out


def _group_content(group: SrGroup, seg: Any, segments: dict[str, Any], result: Result) -> Any:
    import highdicom as hd

    measurements = [hd.sr.Measurement(
        name=_concept(i.quantity.code), value=i.value,
        unit=_concept((i.quantity.unit, "UCUM", UNIT_MEANINGS.get(i.quantity.unit,
                                                                   i.quantity.unit))),
        derivation=_concept(i.quantity.derivation) if i.quantity.derivation else None)
        for i in group.items]
    algorithm = _algorithm(group, result)
    item = segments.get(group.segment_id) if group.segment_id else None
    finding_type = finding_category = None
    if item is not None:
        finding_type = hd.sr.CodedConcept.from_dataset(item.SegmentedPropertyTypeCodeSequence[0])
        finding_category = hd.sr.CodedConcept.from_dataset(
            item.SegmentedPropertyCategoryCodeSequence[0])
    if group.volumetric:
        uid = getattr(item, "TrackingUID", None) if not group.tracking_id.endswith(
            RADIOMICS_SUFFIX) else None
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=uid or hd.UID(),
                                                         identifier=group.tracking_id),
            referenced_segment=_referenced_segment(seg, int(item.SegmentNumber)),
            finding_type=finding_type, finding_category=finding_category,
            algorithm_id=algorithm, measurements=measurements)
    if group.tracking_id.startswith("fracture_"):
        finding_type = _concept(FRACTURE)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(),
                                                     identifier=group.tracking_id),
        finding_type=finding_type, finding_category=finding_category,
        algorithm_id=algorithm, measurements=measurements)


def _referenced_segment(seg: Any, number: int) -> Any:
    """ReferencedSegment of SEG segment ``number`` with the source images of its frames.

    (highdicom's ``ReferencedSegment.from_segmentation`` fails on a SEG with one segment,
    whose SegmentIdentificationSequence is in the shared functional groups.)
    """
    import highdicom as hd

    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg \
        else None
    sources: dict[str, str] = {}
    for frame in getattr(seg, "PerFrameFunctionalGroupsSequence", []):
        ident = getattr(frame, "SegmentIdentificationSequence", None) or getattr(
            shared, "SegmentIdentificationSequence", None)
        if not ident or int(ident[0].ReferencedSegmentNumber) != number:
            continue
        for derivation in getattr(frame, "DerivationImageSequence", []):
            for source in getattr(derivation, "SourceImageSequence", []):
                sources[str(source.ReferencedSOPInstanceUID)] = str(source.ReferencedSOPClassUID)
    if sources:
        return hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
            segment_number=number,
            source_images=[hd.sr.SourceImageForSegmentation(cls, uid)
                           for uid, cls in sources.items()])
    return hd.sr.ReferencedSegment(
        sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
        segment_number=number, source_series=hd.sr.SourceSeriesForSegmentation(
            seg.ReferencedSeriesSequence[0].SeriesInstanceUID))


def _algorithm(group: SrGroup, result: Result) -> Any:
    import highdicom as hd

    prov = result.provenance
    if group.tracking_id.endswith(RADIOMICS_SUFFIX):
        return hd.sr.AlgorithmIdentification(name="pyradiomics",
                                             version=prov.method.rpartition(" ")[2][:64] or "?")
    return hd.sr.AlgorithmIdentification(name=(prov.model_id or "mskai")[:64],
                                         version=(prov.model_version or prov.mskai_version)[:64])


def _concept(code: Code) -> Any:
    from highdicom.sr import CodedConcept

    value, scheme, meaning = code
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning[:64])


def read_dicom_sr(sr: str | Path | pydicom.Dataset) -> list[dict[str, Any]]:
    """The measurements of an SR written by :func:`write_dicom_sr` (a path or dataset).

    One dict per NUM: ``tracking_id``, ``segment_number`` (None outside a segment group),
    ``code`` and ``derivation`` as ``(value, scheme, meaning)`` (derivation may be None),
    ``value`` (float) and ``unit`` (UCUM code).
    """
    import highdicom as hd
    import pydicom

    if isinstance(sr, str | Path):
        sr = pydicom.dcmread(sr)
    if not isinstance(sr, hd.sr.Comprehensive3DSR):
        sr = hd.sr.Comprehensive3DSR.from_dataset(sr)
    report = sr.content
    rows: list[dict[str, Any]] = []
    volumetric = report.get_volumetric_roi_measurement_groups()
    for group in [*volumetric, *report.get_image_measurement_groups()]:
        number = None
        if any(group is g for g in volumetric):
            number = int(group.referenced_segment.referenced_segment_numbers[0])
        for m in group.get_measurements():
            derivation = m.derivation
            rows.append({"tracking_id": str(group.tracking_identifier),
                         "segment_number": number,
                         "code": _code_tuple(m.name),
                         "derivation": _code_tuple(derivation) if derivation else None,
                         "value": float(m.value), "unit": str(m.unit.value)})
    return rows


def _code_tuple(concept: Any) -> Code:
    return (str(concept.value), str(concept.scheme_designator), str(concept.meaning))


def sr_rows(document: dict[str, Any], groups: Sequence[SrGroup] | None = None
            ) -> list[dict[str, Any]]:
    """What :func:`read_dicom_sr` should read back for ``document`` (segment numbers aside):
    the rows of :func:`sr_groups`, with ``path`` naming the measurements.json value."""
    rows = []
    for group in groups if groups is not None else sr_groups(document):
        for i in group.items:
            q = i.quantity
            rows.append({"tracking_id": group.tracking_id, "path": i.path, "code": q.code,
                         "derivation": q.derivation, "value": i.value, "unit": q.unit})
    return rows
