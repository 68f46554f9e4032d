"""Units (UCUM) and concept codes of every measurement mskai writes (docs/contract.md).

One registry, :data:`QUANTITIES`, maps each measurement of ``measurements.json`` to its UCUM
unit and, where one exists, a coded concept as DICOM TID 1500 uses it: DICOM (``DCM``),
SNOMED CT (``SCT``), IBSI feature codes (``IBSI``, the permanent identifiers of the IBSI-1
reference manual) and, where no standard code exists, the private scheme ``99MSKAI``.
Statistics of one quantity (mean, median, SD, maximum, minimum of a thickness, T2, joint
space width) share its concept code and differ by a *derivation* (SNOMED CT), as in TID 300.

Measurements are named by their path in ``measurements.json``: ``segments[].volume_ml``,
``segments[].subregions[].area_mm2``, ``margin.min_distance_to_bone_mm``,
``fractures[].score_terms.gap``, ``features.original_firstorder_Mean``. A quantity is any
number, ``null`` or list of numbers (a point or vector); texts, booleans, identifiers
(``segments[].label``) and settings (``image.path``, ``feature_standard.params``) are not.

Units: ``mm``, ``mm2``, ``mm3``, ``mL``, ``ms``, ``deg``, ``/mm``; ``1`` for dimensionless
ratios, fractions and scores; ``{count}`` for counts. Image intensities are ``[hnsf'U]`` on
CT and ``[arb'U]`` (arbitrary unit) on other modalities (:func:`intensity_unit`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Code = tuple[str, str, str]  # (code value, coding scheme designator, code meaning)

PRIVATE_SCHEME = "99MSKAI"
PRIVATE_SCHEME_NAME = "MSK AI private measurement codes (docs/contract.md)"
IBSI_SCHEME = "IBSI"
IBSI_SCHEME_NAME = "Image Biomarker Standardisation Initiative, reference manual v11"
INTENSITY = "<intensity>"  # replaced by intensity_unit(modality)

UNIT_MEANINGS = {
    "mm": "millimeter", "mm2": "square millimeter", "mm3": "cubic millimeter",
    "mL": "milliliter", "ms": "millisecond", "deg": "degree", "/mm": "per millimeter",
    "1": "no units", "{count}": "count",
    "[hnsf'U]": "Hounsfield unit", "[hnsf'U]2": "square Hounsfield unit",
    "[hnsf'U]2.mm3": "square Hounsfield unit cubic millimeter",
    "[arb'U]": "arbitrary unit", "[arb'U]2": "square arbitrary unit",
    "[arb'U]2.mm3": "square arbitrary unit cubic millimeter",
}

MEAN: Code = ("373098007", "SCT", "Mean")
MEDIAN: Code = ("373099004", "SCT", "Median")
SD: Code = ("386136009", "SCT", "Standard Deviation")
MAXIMUM: Code = ("56851009", "SCT", "Maximum")
MINIMUM: Code = ("255605001", "SCT", "Minimum")


@dataclass(frozen=True)
class Quantity:
    """Unit (UCUM, may contain :data:`INTENSITY`), concept code and derivation of a value."""

    unit: str
    code: Code | None = None
    derivation: Code | None = None

    def resolved(self, modality: str | None) -> Quantity:
        """The quantity with :data:`INTENSITY` replaced by the modality's intensity unit."""
        if INTENSITY not in self.unit:
            return self
        return Quantity(self.unit.replace(INTENSITY, intensity_unit(modality)), self.code,
                        self.derivation)

    @property
    def unit_meaning(self) -> str:
        return UNIT_MEANINGS.get(self.unit, self.unit)

    def to_json(self) -> dict[str, Any]:
        """``{"unit", "unit_meaning", "code": {...} | null[, "derivation": {...}]}``."""
        out: dict[str, Any] = {"unit": self.unit, "unit_meaning": self.unit_meaning,
                               "code": code_json(self.code)}
        if self.derivation is not None:
            out["derivation"] = code_json(self.derivation)
        return out


def code_json(code: Code | None) -> dict[str, str] | None:
    if code is None:
        return None
    value, scheme, meaning = code
    return {"scheme": scheme, "value": value, "meaning": meaning}


def intensity_unit(modality: str | None) -> str:
    """``[hnsf'U]`` for CT, ``[arb'U]`` (arbitrary unit) for MR and anything else."""
    return "[hnsf'U]" if (modality or "").upper() == "CT" else "[arb'U]"


def _private(value: str, meaning: str) -> Code:
    assert len(value) <= 16, value  # DICOM CodeValue (SH)
    return (value, PRIVATE_SCHEME, meaning)


CARTILAGE_THICKNESS = _private("CARTTHICK", "Cartilage thickness")
INTERFACE_AREA = _private("CBIAREA", "Cartilage-bone interface area")
DENUDED = _private("DENUDEDFRAC", "Denuded area fraction of the cartilage-bone interface")
T2: Code = ("113065", "DCM", "T2")
JSW = _private("JSW", "Joint space width")
JSW_MEDIAL = _private("JSWMEDIAL", "Medial joint space width")
JSW_LATERAL = _private("JSWLATERAL", "Lateral joint space width")
FRACTURE = {
    "score": Quantity("1", _private("FXSCORE", "Fracture score")),
    "displacement_mm": Quantity("mm", _private("FXDISPLACEMENT", "Fracture displacement")),
    "angulation_deg": Quantity("deg", _private("FXANGULATION", "Fracture angulation")),
    "gap_mm": Quantity("mm", _private("FXGAP", "Fracture gap width")),
    "position_ras": Quantity("mm"),
    "score_terms.gap": Quantity("1", _private("FXTERMGAP", "Fracture score term: gap")),
    "score_terms.alignment": Quantity("1", _private("FXTERMALIGN",
                                                    "Fracture score term: alignment")),
    "score_terms.facing": Quantity("1", _private("FXTERMFACING", "Fracture score term: facing")),
    "score_terms.elongation": Quantity("1", _private("FXTERMELONG",
                                                     "Fracture score term: elongation")),
    "score_terms.end_faces": Quantity("1", _private("FXTERMENDFACES",
                                                    "Fracture score term: end faces")),
    "score_terms.heuristic_score": Quantity("1", _private("FXHEURSCORE",
                                                          "Heuristic fracture score")),
    "score_terms.*": Quantity("1"),
}

_SEGMENT = {
    "volume_ml": Quantity("mL", ("118565006", "SCT", "Volume")),
    "volume_surface_ml": Quantity("mL", ("RNU0", IBSI_SCHEME, "Volume (mesh)")),
    "surface_area_mm2": Quantity("mm2", ("C0JK", IBSI_SCHEME, "Surface area (mesh)")),
    "max_diameter_mm": Quantity("mm", ("L0JK", IBSI_SCHEME, "Maximum 3D diameter")),
    "centroid_ras": Quantity("mm", ("128138", "DCM", "Center of Mass")),
    "sphericity": Quantity("1", ("QCFX", IBSI_SCHEME, "Sphericity")),
    "mean_intensity": Quantity(INTENSITY, ("Q4LE", IBSI_SCHEME, "Mean")),
    "voxel_count": Quantity("{count}", _private("VOXELCOUNT", "Number of voxels")),
    "recist_long_axis_mm": Quantity("mm", ("103339001", "SCT", "Long axis")),
    "recist_short_axis_mm": Quantity("mm", ("103340004", "SCT", "Short axis")),
    "recist_endpoints_ras.long": Quantity("mm"),
    "recist_endpoints_ras.short": Quantity("mm"),
    "mean_thickness_mm": Quantity("mm", CARTILAGE_THICKNESS, MEAN),
    "median_thickness_mm": Quantity("mm", CARTILAGE_THICKNESS, MEDIAN),
    "sd_thickness_mm": Quantity("mm", CARTILAGE_THICKNESS, SD),
    "max_thickness_mm": Quantity("mm", CARTILAGE_THICKNESS, MAXIMUM),
    "mean_thickness_nearest_mm": Quantity("mm", _private(
        "CARTTHICKNEAR", "Cartilage thickness, nearest-point method"), MEAN),
    "mean_thickness_normal_mm": Quantity("mm", _private(
        "CARTTHICKNORM", "Cartilage thickness, surface-normal method"), MEAN),
    "area_mm2": Quantity("mm2", INTERFACE_AREA),
    "thickness_points": Quantity("{count}", _private(
        "THICKPOINTS", "Number of cartilage thickness measurement points")),
    "denuded_area_fraction": Quantity("1", DENUDED),
    "subregions[].area_mm2": Quantity("mm2", INTERFACE_AREA),
    "subregions[].mean_thickness_mm": Quantity("mm", CARTILAGE_THICKNESS, MEAN),
    "subregions[].denuded_area_fraction": Quantity("1", DENUDED),
    "t2.mean_t2_ms": Quantity("ms", T2, MEAN),
    "t2.median_t2_ms": Quantity("ms", T2, MEDIAN),
    "t2.sd_t2_ms": Quantity("ms", T2, SD),
    "t2.n_voxels": Quantity("{count}", _private("T2VOXELS", "Number of voxels with a T2 fit")),
    "t2.rejected_fraction": Quantity("1", _private("T2REJECTED",
                                                   "Fraction of rejected T2 fits")),
}

_DOCUMENT = {
    "image.size": Quantity("{count}"),
    "image.spacing_mm": Quantity("mm"),
    "margin.margin_mm": Quantity("mm", _private("SAFETYMARGIN", "Safety margin width")),
    "margin.min_distance_to_bone_mm": Quantity("mm", _private(
        "TUMORBONEDIST", "Minimum distance from tumor to bone")),
    "joint_space_width_mm.min": Quantity("mm", JSW, MINIMUM),
    "joint_space_width_mm.medial": Quantity("mm", JSW_MEDIAL, MINIMUM),
    "joint_space_width_mm.lateral": Quantity("mm", JSW_LATERAL, MINIMUM),
    "joint_space_width_mm.medial_mean": Quantity("mm", JSW_MEDIAL, MEAN),
    "joint_space_width_mm.lateral_mean": Quantity("mm", JSW_LATERAL, MEAN),
    "knee_axes.superior": Quantity("1"),
    "knee_axes.medial": Quantity("1"),
    "knee_axes.anterior": Quantity("1"),
    "knee_axes.ml_center_ras": Quantity("mm"),
    "knee_axes.plateau_ap_mm": Quantity("mm"),
    "t2_method.echo_times_ms": Quantity("ms"),
    **{f"fractures[].{k}": q for k, q in FRACTURE.items()},
    **{f"fracture_candidates[].{k}": q for k, q in FRACTURE.items()},
}

# The registry: measurement path in measurements.json -> Quantity. Paths ending in ``.*``
# cover any key there; radiomics features are resolved by radiomics_quantity().
QUANTITIES: dict[str, Quantity] = {**{f"segments[].{k}": q for k, q in _SEGMENT.items()},
                                   **_DOCUMENT}

# Paths that hold numbers but are no measurements (identifiers, settings).
NOT_QUANTITIES = ("schema", "module", "provenance", "warnings", "units", "source", "image.path",
                  "image.modality", "segments[].label", "feature_standard.params",
                  "feature_standard.naming", "feature_standard.ibsi_tags",
                  "feature_standard.deviations", "knee_axes.sources")

# IBSI-1 feature codes (permanent identifiers) by IBSI tag without aggregation suffix.
IBSI_CODES: dict[str, tuple[str, str]] = {
    "morph_volume": ("RNU0", "Volume (mesh)"),
    "morph_vol_approx": ("YEKZ", "Approximate volume"),
    "morph_area_mesh": ("C0JK", "Surface area (mesh)"),
    "morph_av": ("2PR5", "Surface to volume ratio"),
    "morph_sphericity": ("QCFX", "Sphericity"),
    "morph_diam": ("L0JK", "Maximum 3D diameter"),
    "morph_pca_maj_axis": ("TDIC", "Major axis length"),
    "morph_pca_min_axis": ("P9VJ", "Minor axis length"),
    "morph_pca_least_axis": ("7J51", "Least axis length"),
    "morph_pca_elongation": ("Q3CK", "Elongation"),
    "morph_pca_flatness": ("N17B", "Flatness"),
    "stat_mean": ("Q4LE", "Mean"),
    "stat_var": ("ECT3", "Variance"),
    "stat_skew": ("KE2A", "Skewness"),
    "stat_kurt": ("IPH6", "Kurtosis"),
    "stat_median": ("Y12H", "Median"),
    "stat_min": ("1GSF", "Minimum grey level"),
    "stat_p10": ("QG58", "10th percentile"),
    "stat_p90": ("8DWT", "90th percentile"),
    "stat_max": ("84IY", "Maximum grey level"),
    "stat_iqr": ("SALO", "Interquartile range"),
    "stat_range": ("2OJQ", "Range"),
    "stat_mad": ("4FUA", "Mean absolute deviation"),
    "stat_rmad": ("1128", "Robust mean absolute deviation"),
    "stat_energy": ("N8CA", "Energy"),
    "stat_rms": ("5ZWQ", "Root mean square"),
    "ih_entropy": ("TLU2", "Intensity histogram entropy"),
    "ih_uniformity": ("BJ5W", "Intensity histogram uniformity"),
    "cm_joint_max": ("GYBY", "Joint maximum"),
    "cm_joint_avg": ("60VM", "Joint average"),
    "cm_joint_var": ("UR99", "Joint variance"),
    "cm_joint_entr": ("TU9B", "Joint entropy"),
    "cm_diff_avg": ("TF7R", "Difference average"),
    "cm_diff_var": ("D3YU", "Difference variance"),
    "cm_diff_entr": ("NTRS", "Difference entropy"),
    "cm_sum_avg": ("ZGXS", "Sum average"),
    "cm_sum_entr": ("P6QZ", "Sum entropy"),
    "cm_energy": ("8ZQL", "Angular second moment"),
    "cm_contrast": ("ACUI", "Contrast (GLCM)"),
    "cm_inv_diff": ("IB1Z", "Inverse difference"),
    "cm_inv_diff_norm": ("NDRX", "Normalised inverse difference"),
    "cm_inv_diff_mom": ("WF0Z", "Inverse difference moment"),
    "cm_inv_diff_mom_norm": ("1QCO", "Normalised inverse difference moment"),
    "cm_inv_var": ("E8JP", "Inverse variance"),
    "cm_corr": ("NI2N", "Correlation"),
    "cm_auto_corr": ("QWB0", "Autocorrelation"),
    "cm_clust_tend": ("DG8W", "Cluster tendency"),
    "cm_clust_shade": ("7NFM", "Cluster shade"),
    "cm_clust_prom": ("AE86", "Cluster prominence"),
    "cm_info_corr1": ("R8DG", "First measure of information correlation"),
    "cm_info_corr2": ("JN9H", "Second measure of information correlation"),
    "rlm_sre": ("22OV", "Short runs emphasis"),
    "rlm_lre": ("W4KF", "Long runs emphasis"),
    "rlm_lgre": ("V3SW", "Low grey level run emphasis"),
    "rlm_hgre": ("G3QZ", "High grey level run emphasis"),
    "rlm_srlge": ("HTZT", "Short run low grey level emphasis"),
    "rlm_srhge": ("GD3A", "Short run high grey level emphasis"),
    "rlm_lrlge": ("IVPO", "Long run low grey level emphasis"),
    "rlm_lrhge": ("3KUM", "Long run high grey level emphasis"),
    "rlm_glnu": ("R5YN", "Grey level non-uniformity (GLRLM)"),
    "rlm_glnu_norm": ("OVBL", "Normalised grey level non-uniformity (GLRLM)"),
    "rlm_rlnu": ("W92Y", "Run length non-uniformity"),
    "rlm_rlnu_norm": ("IC23", "Normalised run length non-uniformity"),
    "rlm_r_perc": ("9ZK5", "Run percentage"),
    "rlm_gl_var": ("8CE5", "Grey level variance (GLRLM)"),
    "rlm_rl_var": ("SXLW", "Run length variance"),
    "rlm_rl_entr": ("HJ9O", "Run entropy"),
    "szm_sze": ("5QRC", "Small zone emphasis"),
    "szm_lze": ("48P8", "Large zone emphasis"),
    "szm_lgze": ("XMSY", "Low grey level zone emphasis"),
    "szm_hgze": ("5GN9", "High grey level zone emphasis"),
    "szm_szlge": ("5RAI", "Small zone low grey level emphasis"),
    "szm_szhge": ("HW1V", "Small zone high grey level emphasis"),
    "szm_lzlge": ("YH51", "Large zone low grey level emphasis"),
    "szm_lzhge": ("J17V", "Large zone high grey level emphasis"),
    "szm_glnu": ("JNSA", "Grey level non-uniformity (GLSZM)"),
    "szm_glnu_norm": ("Y1RO", "Normalised grey level non-uniformity (GLSZM)"),
    "szm_zsnu": ("4JP3", "Zone size non-uniformity"),
    "szm_zsnu_norm": ("VB3A", "Normalised zone size non-uniformity"),
    "szm_z_perc": ("P30P", "Zone percentage"),
    "szm_gl_var": ("BYLV", "Grey level variance (GLSZM)"),
    "szm_zs_var": ("3NSA", "Zone size variance"),
    "szm_zs_entr": ("GU8N", "Zone size entropy"),
    "ngl_lde": ("SODN", "Low dependence emphasis"),
    "ngl_hde": ("IMOQ", "High dependence emphasis"),
    "ngl_lgce": ("TL9H", "Low grey level count emphasis"),
    "ngl_hgce": ("OAE7", "High grey level count emphasis"),
    "ngl_ldlge": ("EQ3F", "Low dependence low grey level emphasis"),
    "ngl_ldhge": ("JA6D", "Low dependence high grey level emphasis"),
    "ngl_hdlge": ("NBZI", "High dependence low grey level emphasis"),
    "ngl_hdhge": ("9QMG", "High dependence high grey level emphasis"),
    "ngl_glnu": ("FP8K", "Grey level non-uniformity (NGLDM)"),
    "ngl_dcnu": ("Z87G", "Dependence count non-uniformity"),
    "ngl_dcnu_norm": ("OKJI", "Dependence count non-uniformity normalised"),
    "ngl_gl_var": ("1PFV", "Grey level variance (NGLDM)"),
    "ngl_dc_var": ("DNX2", "Dependence count variance"),
    "ngl_dc_entr": ("FCBV", "Dependence count entropy"),
    "ngt_coarseness": ("QCDE", "Coarseness"),
    "ngt_contrast": ("65HE", "Contrast (NGTDM)"),
    "ngt_busyness": ("NQ30", "Busyness"),
    "ngt_complexity": ("HDEZ", "Complexity"),
    "ngt_strength": ("1X9X", "Strength"),
}
IBSI_SUFFIXES = ("_3D_avg", "_3D_comb", "_3D", "_2D_avg", "_2D_comb", "_2D", "_2_5D_avg",
                 "_2_5D_comb")

# pyradiomics features with a unit other than "1" (by feature class, then feature name).
_LENGTH = {"Maximum3DDiameter", "Maximum2DDiameterSlice", "Maximum2DDiameterColumn",
           "Maximum2DDiameterRow", "MajorAxisLength", "MinorAxisLength", "LeastAxisLength",
           "MaximumDiameter", "Perimeter"}
_RADIOMICS_UNITS: dict[str, dict[str, str]] = {
    "shape": {**dict.fromkeys(_LENGTH, "mm"), "MeshVolume": "mm3", "VoxelVolume": "mm3",
              "SurfaceArea": "mm2", "SurfaceVolumeRatio": "/mm"},
    "shape2D": {**dict.fromkeys(_LENGTH, "mm"), "MeshSurface": "mm2", "PixelSurface": "mm2",
                "PerimeterSurfaceRatio": "/mm"},
    "firstorder": {**dict.fromkeys(
        ("10Percentile", "90Percentile", "InterquartileRange", "Maximum", "Mean", "Median",
         "Minimum", "Range", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation",
         "RootMeanSquared", "StandardDeviation"), INTENSITY),
        "Variance": INTENSITY + "2", "Energy": INTENSITY + "2",
        "TotalEnergy": INTENSITY + "2.mm3"},
}
_IBSI_INTENSITY_TAGS = {"stat_mean", "stat_median", "stat_min", "stat_p10", "stat_p90",
                        "stat_max", "stat_iqr", "stat_range", "stat_mad", "stat_rmad",
                        "stat_rms"}
_IBSI_UNITS = {"morph_volume": "mm3", "morph_vol_approx": "mm3", "morph_area_mesh": "mm2",
               "morph_av": "/mm", "morph_diam": "mm", "morph_pca_maj_axis": "mm",
               "morph_pca_min_axis": "mm", "morph_pca_least_axis": "mm",
               "stat_var": INTENSITY + "2", "stat_energy": INTENSITY + "2",
               **dict.fromkeys(_IBSI_INTENSITY_TAGS, INTENSITY)}


def ibsi_quantity(tag: str) -> Quantity | None:
    """Unit and IBSI code of an IBSI tag such as ``cm_joint_avg_3D_avg``; None if unknown."""
    base = tag
    for suffix in IBSI_SUFFIXES:
        if tag.endswith(suffix):
            base = tag[: -len(suffix)]
            break
    if base not in IBSI_CODES:
        return None
    value, meaning = IBSI_CODES[base]
    return Quantity(_IBSI_UNITS.get(base, "1"), (value, IBSI_SCHEME, meaning))


def radiomics_quantity(name: str) -> Quantity | None:
    """Unit and code of a pyradiomics feature ``<image type>_<class>_<feature>``.

    The code is the IBSI code where the feature is IBSI's as computed (original image, no
    conversion needed: :func:`mskai.radiomics.names.to_ibsi` converts kurtosis and the PCA
    axis lengths); else the ``99MSKAI`` code of :func:`pyradiomics_code`. None for a name
    that is not of that form.
    """
    from mskai.radiomics.names import PCA_AXES, ibsi_tag

    parts = name.split("_", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    image_type, feature_class, feature = parts
    unit = _RADIOMICS_UNITS.get(feature_class, {}).get(feature, "1")
    if image_type != "original" and INTENSITY in unit:
        unit = unit.replace(INTENSITY, "[arb'U]")  # filtered images: no physical unit
    tag = ibsi_tag(name)
    converted = feature == "Kurtosis" or (feature_class == "shape" and feature in PCA_AXES)
    if tag and not converted and (ibsi := ibsi_quantity(tag)) is not None:
        return Quantity(unit, ibsi.code)
    return Quantity(unit, pyradiomics_code(name))


def pyradiomics_code(name: str) -> Code:
    """``99MSKAI`` code of a pyradiomics feature without IBSI code: ``PYR`` + the first 10
    hex digits of the name's SHA-1 (a DICOM code value has at most 16 characters), meaning
    the pyradiomics name (cut to 64 characters)."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:10].upper()
    return (f"PYR{digest}", PRIVATE_SCHEME, name[:64])


def quantity(path: str, modality: str | None = None) -> Quantity | None:
    """The registry entry of a measurement path (module docstring), intensity resolved."""
    found = QUANTITIES.get(path)
    if found is None:
        head = path.rpartition(".")[0]
        found = QUANTITIES.get(f"{head}.*") if head else None
    if found is None and path.startswith("features."):
        found = radiomics_quantity(path[len("features."):])
    if found is None and path.startswith("feature_standard.ibsi_values."):
        found = ibsi_quantity(path[len("feature_standard.ibsi_values."):])
    return found.resolved(modality) if found is not None else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_numeric_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        v is None or _is_number(v) or _is_numeric_list(v) for v in value)


def measurement_values(document: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every quantity of a measurements document as ``(path, value)``, lists of objects
    (segments, subregions, fractures) once per item, in document order."""
    yield from _walk(document, "")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if path in NOT_QUANTITIES:
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif node is None or _is_number(node) or _is_numeric_list(node):
        yield path, node
    elif isinstance(node, list) and all(isinstance(v, Mapping) for v in node):
        for item in node:
            yield from _walk(item, f"{path}[]")
    # texts, booleans and lists of texts are not quantities


def document_units(document: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ``units`` block of a measurements document and the paths the registry lacks.

    ``units`` maps each measurement path present to :meth:`Quantity.to_json`; a path
    missing from the registry gets ``{"unit": null, ...}`` and is listed in the second
    value (the tests require that list to be empty for every task).
    """
    modality = (document.get("image") or {}).get("modality") or None
    units: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for path, _ in measurement_values(document):
        if path in units:
            continue
        found = quantity(path, modality)
        if found is None:
            missing.append(path)
            units[path] = {"unit": None, "unit_meaning": None, "code": None}
        else:
            units[path] = found.to_json()
    return units, missing


def is_finite_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)
