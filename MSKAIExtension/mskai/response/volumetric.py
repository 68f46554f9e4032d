"""Volumetric response categories: RECIST 1.1 thresholds carried over to volume.

Convention (mskai): a sphere whose diameter changes by the RECIST thresholds changes its
volume by their cube, rounded to whole percent:

- PR: volume at least 65 % below baseline (0.7^3 = 0.343, i.e. -65.7 %);
- PD: volume at least 73 % above the nadir (1.2^3 = 1.728, i.e. +72.8 %); no absolute
  minimum (RECIST's 5 mm has no agreed volume counterpart);
- CR: no tumour volume left;
- SD: otherwise.

This is a reporting convention, not a validated response criterion: tumours that do not
shrink or grow isotropically change volume by other factors than a sphere would.
"""

from __future__ import annotations

from mskai.response.recist import EPS, percent_change, response_category

PR_VOLUME_CHANGE_PCT = -65.0
PD_VOLUME_CHANGE_PCT = 73.0


def volumetric_category(baseline_ml: float, current_ml: float,
                        nadir_ml: float | None = None) -> str:
    """CR, PR, SD or PD for the current tumour volume (mL); nadir defaults to baseline."""
    return response_category(baseline_ml, current_ml, nadir_ml, is_volume_progression,
                             PR_VOLUME_CHANGE_PCT, "volume")


def is_volume_progression(current_ml: float, nadir_ml: float) -> bool:
    """+73 % above the nadir (no absolute minimum)."""
    return percent_change(current_ml, nadir_ml) >= PD_VOLUME_CHANGE_PCT - EPS
