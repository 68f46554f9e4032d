"""pyradiomics feature names <-> IBSI feature tags (IBSI-1 reference manual, v11).

pyradiomics' own table (``labs/pyradiomics-dcm/resources/featuresDict_IBSIv7.tsv``) is not in
the shared data, so this is our own table. The tags are those of the IBSI-1 reference-value
tables (column ``tag``). pyradiomics averages its texture features over the 13 directions of
a 3D neighbourhood, which is IBSI's "3D, averaged" aggregation for GLCM and GLRLM (tag
suffix ``_3D_avg``); GLSZM, GLDM (= IBSI NGLDM with alpha 0, Chebyshev distance 1) and NGTDM
are 3D (suffix ``_3D``). Each mapping is checked against the IBSI digital phantom in
``Testing/test_radiomics.py``; the numerical differences are in ``ibsi_deviations.md``.
"""

from __future__ import annotations

import math

IMAGE_TYPE = "original"

SHAPE = {
    "MeshVolume": "morph_volume",
    "VoxelVolume": "morph_vol_approx",
    "SurfaceArea": "morph_area_mesh",
    "SurfaceVolumeRatio": "morph_av",
    "Sphericity": "morph_sphericity",
    "Maximum3DDiameter": "morph_diam",
    "MajorAxisLength": "morph_pca_maj_axis",
    "MinorAxisLength": "morph_pca_min_axis",
    "LeastAxisLength": "morph_pca_least_axis",
    "Elongation": "morph_pca_elongation",
    "Flatness": "morph_pca_flatness",
}

FIRSTORDER = {
    "Mean": "stat_mean",
    "Variance": "stat_var",
    "Skewness": "stat_skew",
    "Kurtosis": "stat_kurt",
    "Median": "stat_median",
    "Minimum": "stat_min",
    "10Percentile": "stat_p10",
    "90Percentile": "stat_p90",
    "Maximum": "stat_max",
    "InterquartileRange": "stat_iqr",
    "Range": "stat_range",
    "MeanAbsoluteDeviation": "stat_mad",
    "RobustMeanAbsoluteDeviation": "stat_rmad",
    "Energy": "stat_energy",
    "RootMeanSquared": "stat_rms",
    # computed on the discretised intensities: IBSI's intensity-histogram family
    "Entropy": "ih_entropy",
    "Uniformity": "ih_uniformity",
}

GLCM = {
    "MaximumProbability": "cm_joint_max",
    "JointAverage": "cm_joint_avg",
    "SumSquares": "cm_joint_var",
    "JointEntropy": "cm_joint_entr",
    "DifferenceAverage": "cm_diff_avg",
    "DifferenceVariance": "cm_diff_var",
    "DifferenceEntropy": "cm_diff_entr",
    "SumAverage": "cm_sum_avg",
    "SumEntropy": "cm_sum_entr",
    "JointEnergy": "cm_energy",
    "Contrast": "cm_contrast",
    "Id": "cm_inv_diff",
    "Idn": "cm_inv_diff_norm",
    "Idm": "cm_inv_diff_mom",
    "Idmn": "cm_inv_diff_mom_norm",
    "InverseVariance": "cm_inv_var",
    "Correlation": "cm_corr",
    "Autocorrelation": "cm_auto_corr",
    "ClusterTendency": "cm_clust_tend",
    "ClusterShade": "cm_clust_shade",
    "ClusterProminence": "cm_clust_prom",
    "Imc1": "cm_info_corr1",
    "Imc2": "cm_info_corr2",
}

GLRLM = {
    "ShortRunEmphasis": "rlm_sre",
    "LongRunEmphasis": "rlm_lre",
    "LowGrayLevelRunEmphasis": "rlm_lgre",
    "HighGrayLevelRunEmphasis": "rlm_hgre",
    "ShortRunLowGrayLevelEmphasis": "rlm_srlge",
    "ShortRunHighGrayLevelEmphasis": "rlm_srhge",
    "LongRunLowGrayLevelEmphasis": "rlm_lrlge",
    "LongRunHighGrayLevelEmphasis": "rlm_lrhge",
    "GrayLevelNonUniformity": "rlm_glnu",
    "GrayLevelNonUniformityNormalized": "rlm_glnu_norm",
    "RunLengthNonUniformity": "rlm_rlnu",
    "RunLengthNonUniformityNormalized": "rlm_rlnu_norm",
    "RunPercentage": "rlm_r_perc",
    "GrayLevelVariance": "rlm_gl_var",
    "RunVariance": "rlm_rl_var",
    "RunEntropy": "rlm_rl_entr",
}

GLSZM = {
    "SmallAreaEmphasis": "szm_sze",
    "LargeAreaEmphasis": "szm_lze",
    "LowGrayLevelZoneEmphasis": "szm_lgze",
    "HighGrayLevelZoneEmphasis": "szm_hgze",
    "SmallAreaLowGrayLevelEmphasis": "szm_szlge",
    "SmallAreaHighGrayLevelEmphasis": "szm_szhge",
    "LargeAreaLowGrayLevelEmphasis": "szm_lzlge",
    "LargeAreaHighGrayLevelEmphasis": "szm_lzhge",
    "GrayLevelNonUniformity": "szm_glnu",
    "GrayLevelNonUniformityNormalized": "szm_glnu_norm",
    "SizeZoneNonUniformity": "szm_zsnu",
    "SizeZoneNonUniformityNormalized": "szm_zsnu_norm",
    "ZonePercentage": "szm_z_perc",
    "GrayLevelVariance": "szm_gl_var",
    "ZoneVariance": "szm_zs_var",
    "ZoneEntropy": "szm_zs_entr",
}

GLDM = {
    "SmallDependenceEmphasis": "ngl_lde",
    "LargeDependenceEmphasis": "ngl_hde",
    "LowGrayLevelEmphasis": "ngl_lgce",
    "HighGrayLevelEmphasis": "ngl_hgce",
    "SmallDependenceLowGrayLevelEmphasis": "ngl_ldlge",
    "SmallDependenceHighGrayLevelEmphasis": "ngl_ldhge",
    "LargeDependenceLowGrayLevelEmphasis": "ngl_hdlge",
    "LargeDependenceHighGrayLevelEmphasis": "ngl_hdhge",
    "GrayLevelNonUniformity": "ngl_glnu",
    "DependenceNonUniformity": "ngl_dcnu",
    "DependenceNonUniformityNormalized": "ngl_dcnu_norm",
    "GrayLevelVariance": "ngl_gl_var",
    "DependenceVariance": "ngl_dc_var",
    "DependenceEntropy": "ngl_dc_entr",
}

NGTDM = {
    "Coarseness": "ngt_coarseness",
    "Contrast": "ngt_contrast",
    "Busyness": "ngt_busyness",
    "Complexity": "ngt_complexity",
    "Strength": "ngt_strength",
}

# feature class -> (table, IBSI aggregation suffix)
CLASSES: dict[str, tuple[dict[str, str], str]] = {
    "shape": (SHAPE, ""),
    "firstorder": (FIRSTORDER, ""),
    "glcm": (GLCM, "_3D_avg"),
    "glrlm": (GLRLM, "_3D_avg"),
    "glszm": (GLSZM, "_3D"),
    "gldm": (GLDM, "_3D"),
    "ngtdm": (NGTDM, "_3D"),
}

# pyradiomics' kurtosis is the plain fourth standardised moment; IBSI reports excess kurtosis
KURTOSIS_OFFSET = 3.0
PCA_AXES = ("MajorAxisLength", "MinorAxisLength", "LeastAxisLength")


def ibsi_tag(name: str) -> str | None:
    """IBSI tag of a pyradiomics name such as ``original_firstorder_Mean``; None if none."""
    parts = name.split("_", 2)
    if len(parts) != 3 or parts[0] != IMAGE_TYPE or parts[1] not in CLASSES:
        return None
    table, suffix = CLASSES[parts[1]]
    tag = table.get(parts[2])
    return tag + suffix if tag else None


def pyradiomics_name(tag: str) -> str | None:
    """The pyradiomics name (image type ``original``) of an IBSI tag; None if none."""
    for cls, (table, suffix) in CLASSES.items():
        for feature, base in table.items():
            if base + suffix == tag:
                return f"{IMAGE_TYPE}_{cls}_{feature}"
    return None


def to_ibsi(features: dict[str, float], voxel_count: int | None = None) -> dict[str, float]:
    """The IBSI-tagged copy of pyradiomics features, with the documented conversions.

    - kurtosis: pyradiomics reports the fourth standardised moment, IBSI the excess
      kurtosis, so 3 is subtracted;
    - PCA axis lengths: pyradiomics takes eigenvalues of the population covariance
      (divides by N), the IBSI reference values the sample covariance (N - 1); with
      ``voxel_count`` (N) the lengths are scaled by sqrt(N / (N - 1)), without it they are
      copied unchanged. Elongation and flatness are ratios and need no conversion.

    Features without an IBSI counterpart are left out; ``features`` is not changed.
    """
    out: dict[str, float] = {}
    for name, value in features.items():
        tag = ibsi_tag(name)
        if tag is None:
            continue
        feature = name.split("_", 2)[2]
        if tag == "stat_kurt":
            value = value - KURTOSIS_OFFSET
        elif feature in PCA_AXES and name.split("_")[1] == "shape" and voxel_count:
            value = value * pca_correction(voxel_count)
        out[tag] = float(value)
    return out


def pca_correction(voxel_count: int) -> float:
    """sqrt(N / (N - 1)): population -> sample covariance for axis lengths 4 sqrt(lambda)."""
    if voxel_count < 2:
        return 1.0
    return math.sqrt(voxel_count / (voxel_count - 1))


# one line each; the full text with the checks is ibsi_deviations.md
DEVIATIONS = (
    "Kurtosis is the fourth standardised moment; IBSI stat_kurt is excess kurtosis "
    "(pyradiomics - 3; converted in ibsi_values)",
    "Major/Minor/LeastAxisLength use the population covariance; IBSI reference values are "
    "sqrt(N/(N-1)) larger (converted in ibsi_values)",
    "binWidth bins start at a multiple of binWidth, IBSI fixed bin size at the ROI minimum; "
    "discretised features agree only when the ROI minimum is a multiple of binWidth",
    "Energy, TotalEnergy and RootMeanSquared add voxelArrayShift to every intensity; they "
    "equal IBSI only with voxelArrayShift 0; TotalEnergy (Energy x voxel volume) is not IBSI",
    "GLCM and GLRLM features are averaged over 13 directions (IBSI 3D averaged); IBSI's merged "
    "(3D_comb) variants are not computed",
    "MeshVolume is IBSI morph_volume (mesh); VoxelVolume is morph_vol_approx (voxel count)",
)
