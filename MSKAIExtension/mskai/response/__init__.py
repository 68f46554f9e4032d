"""Response assessment between two time points: RECIST 1.1 and a volumetric counterpart."""

from mskai.response.compare import Assessment, compare_folders, read_time_point
from mskai.response.recist import recist_category
from mskai.response.volumetric import volumetric_category

__all__ = ["Assessment", "compare_folders", "read_time_point", "recist_category",
           "volumetric_category"]
