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

from mskai.response.recist import CR, EPS, PD, PR, SD, percent_change

PR_VOLUME_CHANGE_PCT = -65.0
PD_VOLUME_CHANGE_PCT = 73.0


def volumetric_category(baseline_ml: float, current_ml: float,
                        nadir_ml: float | None = None) -> str:
    """CR, PR, SD or PD for the current tumour volume (mL); nadir defaults to baseline."""
    if baseline_ml <= 0:
        raise ValueError("the baseline volume must be positive")
    if current_ml < 0:
        raise ValueError("a volume cannot be negative")
    nadir = baseline_ml if nadir_ml is None else min(nadir_ml, baseline_ml)
    if current_ml == 0:
        return CR
    if nadir == 0:
        return PD  # reappearance after a complete response
    if percent_change(current_ml, nadir) >= PD_VOLUME_CHANGE_PCT - EPS:
        return PD
    if percent_change(current_ml, baseline_ml) <= PR_VOLUME_CHANGE_PCT + EPS:
        return PR
    return SD
