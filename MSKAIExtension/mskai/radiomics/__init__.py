"""Radiomics through pyradiomics: extraction, IBSI naming, documented defaults.

pyradiomics is imported only inside the functions that run it.
"""

from mskai.radiomics.extract import DEFAULT_PARAMS, extract_features, make_extractor
from mskai.radiomics.names import ibsi_tag, pyradiomics_name, to_ibsi

__all__ = ["DEFAULT_PARAMS", "extract_features", "ibsi_tag", "make_extractor",
           "pyradiomics_name", "to_ibsi"]
