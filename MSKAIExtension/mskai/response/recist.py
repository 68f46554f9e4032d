"""RECIST 1.1 response categories from sums of target-lesion diameters.

Eisenhauer et al., Eur J Cancer 2009 (RECIST 1.1), target lesions only:

- CR: all target lesions have disappeared (sum 0);
- PD: sum at least +20 % above the nadir (the smallest sum so far, baseline included)
  AND at least +5 mm above it in absolute terms;
- PR: sum at least 30 % below the baseline sum;
- SD: neither.

A lesion that reappears after CR (nadir 0) is PD.

PD is tested before PR, as RECIST requires: a sum can be 30 % below baseline and still be
progression from a lower nadir. With two time points the nadir is the baseline. New
lesions and non-target lesions (which also give PD) are outside what is measured here.
"""

from __future__ import annotations

from collections.abc import Callable

CR, PR, SD, PD = "CR", "PR", "SD", "PD"
PR_CHANGE_PCT = -30.0
PD_CHANGE_PCT = 20.0
PD_ABSOLUTE_MM = 5.0
# boundaries are inclusive; this absorbs rounding in e.g. 100 * (35 - 50) / 50
EPS = 1e-9


def percent_change(value: float, reference: float) -> float:
    """100 (value - reference) / reference; the reference must be positive."""
    if reference <= 0:
        raise ValueError("percent change needs a positive reference")
    return 100.0 * (value - reference) / reference


def recist_category(baseline_sum_mm: float, current_sum_mm: float,
                    nadir_sum_mm: float | None = None) -> str:
    """CR, PR, SD or PD for the current sum of diameters (mm); nadir defaults to baseline."""
    return response_category(baseline_sum_mm, current_sum_mm, nadir_sum_mm, is_progression,
                             PR_CHANGE_PCT, "sum of diameters")


def response_category(baseline: float, current: float, nadir: float | None,
                      progressed: Callable[[float, float], bool], pr_change_pct: float,
                      quantity: str) -> str:
    """The decision RECIST and its volumetric counterpart share: CR at 0, PD on
    reappearance after CR or when ``progressed(current, nadir)``, PR at ``pr_change_pct``
    or below from baseline, else SD. ``quantity`` names the value in error messages."""
    if baseline <= 0:
        raise ValueError(f"the baseline {quantity} must be positive")
    if current < 0:
        raise ValueError(f"a {quantity} cannot be negative")
    nadir = baseline if nadir is None else min(nadir, baseline)
    if current == 0:
        return CR
    if nadir == 0:
        return PD  # reappearance after a complete response
    if progressed(current, nadir):
        return PD
    if percent_change(current, baseline) <= pr_change_pct + EPS:
        return PR
    return SD


def is_progression(current_sum_mm: float, nadir_sum_mm: float) -> bool:
    """+20 % relative AND +5 mm absolute above the nadir."""
    grew_relative = percent_change(current_sum_mm, nadir_sum_mm) >= PD_CHANGE_PCT - EPS
    grew_absolute = current_sum_mm - nadir_sum_mm >= PD_ABSOLUTE_MM - EPS
    return grew_relative and grew_absolute
