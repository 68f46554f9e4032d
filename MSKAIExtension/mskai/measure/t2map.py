"""T2 relaxation maps from multi-echo series: a vectorised mono-exponential fit per voxel.

Model: ``S(TE) = S0 exp(-TE / T2)``. Each voxel starts from a log-linear least-squares fit
weighted by ``S^2`` (the log amplifies noise by ``1/S``, so the weights undo that), then a
few Levenberg-Marquardt iterations minimise the squared residuals of the signal itself,
all voxels at once (closed-form 2x2 normal equations, per-voxel damping).

Choices, each a known source of bias in cartilage T2 (Raya et al., MRM 2010;
Maier et al., JMRI 2003):

- The first echo is skipped by default: in multi-echo spin-echo (CPMG) imaging imperfect
  refocusing pulses add stimulated echoes from the second echo on, so the first echo lies
  below the decay the later ones follow and pulls T2 up.
- Magnitude images carry a Rician noise floor: at low SNR the late echoes stay above the
  true decay, which lengthens T2. With ``noise_floor`` (the mean magnitude of pure noise,
  e.g. the mean signal in air; ``sigma = noise_floor / sqrt(pi / 2)``) the fit uses the
  expected Rician magnitude of the decay, ``S = E[M | A = S0 exp(-TE / T2), sigma]``, which
  tends to the plain model at high SNR and to the floor at low SNR. It is the exact form of
  the usual offset models (``S = sqrt(S0^2 exp(-2 TE / T2) + 2 sigma^2)``, Raya et al.),
  which overestimate the floor and so shorten T2 by a few per cent at low SNR.
- Rejection: a voxel is rejected when the fit fails, when its first fitted echo is below
  ``3 * noise_floor`` (the 99.9th percentile of pure noise), when R^2 (on the fitted
  echoes, in the signal domain) is below ``min_r2``, or when T2 is outside ``t2_range_ms``.
  Rejected voxels hold NaN in ``t2_ms``.

Only voxels inside ``mask`` (the cartilage) are fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mskai.errors import InputError
from mskai.measure.t2_io import check_echo_times
from mskai.volume import Volume

LM_ITERATIONS = 20
CHUNK_VOXELS = 200_000
NOISE_SNR_MIN = 3.0  # first fitted echo must exceed this multiple of the noise floor
REASONS = {0: "accepted", 1: "fit failed", 2: "signal below noise", 3: "poor fit (R^2)",
           4: "T2 out of range"}


@dataclass
class T2Map:
    """A fitted T2 map on the echoes' grid; NaN outside the mask and where rejected."""

    t2_ms: Volume            # float32
    s0: Volume               # float32, signal at TE = 0
    r2: Volume               # float32, coefficient of determination of the fit
    fitted: np.ndarray       # bool [k, j, i]: voxels that were fitted (the mask)
    reason: np.ndarray       # uint8 [k, j, i]: REASONS code, 0 where accepted or not fitted
    echo_times_ms: np.ndarray  # the echo times used in the fit
    method: str
    metadata: dict = field(default_factory=dict)

    @property
    def rejected(self) -> np.ndarray:
        """Fitted voxels whose T2 was rejected."""
        return self.fitted & (self.reason > 0)

    @property
    def valid(self) -> np.ndarray:
        """Fitted voxels with an accepted T2."""
        return self.fitted & (self.reason == 0)


def fit_t2(echoes: Volume, echo_times_ms, mask: np.ndarray | Volume | None = None,
           skip_first_echo: bool = True, min_r2: float = 0.8,
           t2_range_ms: tuple[float, float] = (1.0, 200.0),
           noise_floor: float | None = None) -> T2Map:
    """Fit T2 in every non-zero voxel of ``mask`` (all voxels without one); see the module notes.

    ``echoes`` is [k, j, i, e] (see :func:`mskai.measure.t2_io.read_multi_echo`); ``mask`` is
    an array or Volume on its [k, j, i] grid. ``noise_floor`` is the mean magnitude of pure
    noise; giving it switches on the Rician-corrected model and the below-noise rejection.
    """
    times = _check_echoes(echoes, echo_times_ms)
    _check_options(min_r2, t2_range_ms, noise_floor)
    fitted = _check_mask(mask, echoes)
    used = slice(1, None) if skip_first_echo else slice(None)
    times_used = times[used]
    if times_used.size < 3:
        raise InputError(f"{times_used.size} echoes remain after skipping the first; a T2 fit "
                         "needs at least 3: give more echoes or skip_first_echo=False")
    signals = np.asarray(echoes.array[fitted][:, used], dtype=np.float64)
    sigma = 0.0 if noise_floor is None else noise_floor / np.sqrt(np.pi / 2)
    t2, s0, r2 = _fit_in_chunks(signals, times_used, sigma)
    reason = _reject(signals, t2, s0, r2, min_r2, t2_range_ms, noise_floor)
    t2[reason > 0] = np.nan
    return T2Map(
        t2_ms=_map(echoes, fitted, t2), s0=_map(echoes, fitted, s0), r2=_map(echoes, fitted, r2),
        fitted=fitted, reason=_scatter(fitted, reason, np.uint8, 0),
        echo_times_ms=times_used, method=_describe(times_used, skip_first_echo, min_r2,
                                                   t2_range_ms, noise_floor),
    )


# ----- input checks ---------------------------------------------------------------------------
def _check_echoes(echoes: Volume, echo_times_ms) -> np.ndarray:
    if echoes.array.ndim != 4:
        raise InputError(f"the echoes have shape {echoes.array.shape}; give a 4D series "
                         "[k, j, i, echo] (see read_multi_echo)")
    return check_echo_times(echo_times_ms, echoes.array.shape[-1])


def _check_options(min_r2: float, t2_range_ms, noise_floor: float | None) -> None:
    if not 0.0 <= min_r2 <= 1.0:
        raise InputError(f"min_r2 {min_r2} is not between 0 and 1")
    low, high = (float(v) for v in t2_range_ms)
    if not (0 < low < high and np.isfinite(high)):
        raise InputError(f"the T2 range {tuple(t2_range_ms)} ms is not 0 < low < high")
    if noise_floor is not None and not (np.isfinite(noise_floor) and noise_floor > 0):
        raise InputError(f"the noise floor {noise_floor} is not a positive number; give the "
                         "mean magnitude of pure noise (e.g. in air) or leave it out")


def _check_mask(mask: np.ndarray | Volume | None, echoes: Volume) -> np.ndarray:
    shape = echoes.array.shape[:3]
    if mask is None:
        return np.ones(shape, dtype=bool)
    array = mask.array if isinstance(mask, Volume) else np.asarray(mask)
    if array.shape != shape:
        raise InputError(f"the mask has shape {array.shape} but the echoes {shape} [k, j, i]; "
                         "give a mask on the echoes' grid")
    if not np.any(array):
        raise InputError("the mask is empty: no voxel to fit; give the cartilage mask")
    return array.astype(bool)


# ----- fitting --------------------------------------------------------------------------------
def _fit_in_chunks(signals: np.ndarray, times: np.ndarray,
                   sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T2 (ms), S0 and R^2 per row of ``signals`` [n, echoes]; chunked to bound memory."""
    n = len(signals)
    t2, s0, r2 = (np.full(n, np.nan) for _ in range(3))
    for start in range(0, n, CHUNK_VOXELS):
        part = slice(start, start + CHUNK_VOXELS)
        y = signals[part]
        amp, rate = _loglinear(y, times)
        amp, rate = _levenberg_marquardt(y, times, amp, rate, sigma)
        with np.errstate(divide="ignore", invalid="ignore"):
            t2[part] = 1.0 / rate
        s0[part], r2[part] = amp, _r_squared(y, _model(amp, rate, times, sigma))
    return t2, s0, r2


def _loglinear(y: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted (S^2) least squares of ln S on TE: S0 and rate 1/T2 per voxel."""
    positive = np.isfinite(y) & (y > 0)
    w = np.where(positive, y, 0.0) ** 2
    z = np.log(np.where(positive, y, 1.0))
    sw = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_mean = (w * times).sum(axis=1) / sw
        z_mean = (w * z).sum(axis=1) / sw
        dx = times - x_mean[:, None]
        slope = (w * dx * (z - z_mean[:, None])).sum(axis=1) / (w * dx**2).sum(axis=1)
    rate = -slope
    amp = np.exp(z_mean + rate * x_mean)
    bad = (positive.sum(axis=1) < 2) | ~np.isfinite(rate) | ~np.isfinite(amp)
    return np.where(bad, np.nan, amp), np.where(bad, np.nan, rate)


def _model(amp: np.ndarray, rate: np.ndarray, times: np.ndarray, sigma: float) -> np.ndarray:
    decay = amp[:, None] * np.exp(-rate[:, None] * times)
    return _rician_mean(decay, sigma)[0] if sigma > 0 else decay


def _model_and_jacobian(amp: np.ndarray, rate: np.ndarray, times: np.ndarray,
                        sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model and its derivatives by S0 and by rate, each [n, echoes]."""
    e = np.exp(-rate[:, None] * times)
    decay = amp[:, None] * e
    d_amp, d_rate = e, -times * decay
    if sigma <= 0:
        return decay, d_amp, d_rate
    mean, scale = _rician_mean(decay, sigma)
    return mean, d_amp * scale, d_rate * scale


def _rician_mean(a: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """E[M] of a magnitude signal with true amplitude ``a`` and noise ``sigma``, and dE/da.

    ``E[M] = sigma sqrt(pi/2) L_1/2(-nu)``, ``nu = a^2 / (2 sigma^2)``, written with the
    exponentially scaled Bessel functions so that it stays finite at any SNR.
    """
    from scipy.special import i0e, i1e

    nu = a**2 / (2 * sigma**2)
    b0, b1 = i0e(nu / 2), i1e(nu / 2)
    mean = sigma * np.sqrt(np.pi / 2) * ((1 + nu) * b0 + nu * b1)
    slope = np.sqrt(np.pi / 2) * a / (2 * sigma) * (b0 + b1)
    return mean, slope


def _levenberg_marquardt(y: np.ndarray, times: np.ndarray, amp: np.ndarray, rate: np.ndarray,
                         sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimise sum (y - model)^2 over (S0, rate) for all voxels at once."""
    ok = np.isfinite(amp) & np.isfinite(rate) & np.all(np.isfinite(y), axis=1)
    amp, rate = np.where(ok, amp, 1.0), np.clip(np.where(ok, rate, 0.0), -0.1, 10.0)
    y = np.where(ok[:, None], y, 0.0)
    sse = ((y - _model(amp, rate, times, sigma)) ** 2).sum(axis=1)
    damping = np.full(len(y), 1e-3)
    for _ in range(LM_ITERATIONS):
        step_amp, step_rate = _lm_step(y, times, amp, rate, sigma, damping)
        new_amp, new_rate = amp + step_amp, np.clip(rate + step_rate, -0.1, 10.0)
        new_sse = ((y - _model(new_amp, new_rate, times, sigma)) ** 2).sum(axis=1)
        better = np.isfinite(new_sse) & (new_sse < sse)
        amp, rate = np.where(better, new_amp, amp), np.where(better, new_rate, rate)
        sse = np.where(better, new_sse, sse)
        damping = np.where(better, damping / 10, damping * 10).clip(1e-9, 1e9)
    return np.where(ok, amp, np.nan), np.where(ok, rate, np.nan)


def _lm_step(y, times, amp, rate, sigma, damping) -> tuple[np.ndarray, np.ndarray]:
    """Solve (J^T J + damping diag(J^T J)) step = J^T r per voxel, in closed form."""
    prediction, d_amp, d_rate = _model_and_jacobian(amp, rate, times, sigma)
    resid = y - prediction
    a00, a01, a11 = (d_amp**2).sum(1), (d_amp * d_rate).sum(1), (d_rate**2).sum(1)
    b0, b1 = (d_amp * resid).sum(1), (d_rate * resid).sum(1)
    a00, a11 = a00 * (1 + damping), a11 * (1 + damping)
    det = a00 * a11 - a01**2
    with np.errstate(divide="ignore", invalid="ignore"):
        step_amp = (a11 * b0 - a01 * b1) / det
        step_rate = (a00 * b1 - a01 * b0) / det
    bad = ~(np.isfinite(step_amp) & np.isfinite(step_rate))
    return np.where(bad, 0.0, step_amp), np.where(bad, 0.0, step_rate)


def _r_squared(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    sst = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    sse = ((y - prediction) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 0, 1.0 - sse / sst, np.nan)


def _reject(y: np.ndarray, t2: np.ndarray, s0: np.ndarray, r2: np.ndarray, min_r2: float,
            t2_range_ms, noise_floor: float | None) -> np.ndarray:
    """The REASONS code per voxel; priority: fit failed, below noise, R^2, T2 range."""
    reason = np.zeros(len(y), dtype=np.uint8)
    low, high = t2_range_ms
    out_of_range = ~((t2 >= low) & (t2 <= high))
    poor = ~(r2 >= min_r2)
    quiet = (np.zeros(len(y), bool) if noise_floor is None
             else ~(y[:, 0] >= NOISE_SNR_MIN * noise_floor))
    failed = ~(np.isfinite(t2) & np.isfinite(s0) & (s0 > 0))
    for code, test in ((4, out_of_range), (3, poor), (2, quiet), (1, failed)):
        reason[test] = code
    return reason


# ----- output ---------------------------------------------------------------------------------
def _scatter(where: np.ndarray, values: np.ndarray, dtype, fill) -> np.ndarray:
    out = np.full(where.shape, fill, dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # failed fits may hold huge S0
        out[where] = values
    return out


def _map(echoes: Volume, where: np.ndarray, values: np.ndarray) -> Volume:
    return Volume(_scatter(where, values, np.float32, np.nan), spacing=echoes.spacing,
                  origin=echoes.origin, direction=echoes.direction, modality="MR",
                  path=echoes.path)


def _describe(times: np.ndarray, skipped: bool, min_r2: float, t2_range_ms,
              noise_floor: float | None) -> str:
    model = ("Rician-corrected S = E[|S0 exp(-TE/T2) + noise|], "
             f"noise floor {noise_floor:g}" if noise_floor is not None
             else "mono-exponential S = S0 exp(-TE/T2)")
    skip = "first echo skipped (stimulated echoes), " if skipped else ""
    return (f"{model}; log-linear fit weighted by S^2, then {LM_ITERATIONS} Levenberg-Marquardt "
            f"iterations; {skip}{times.size} echoes {times[0]:g}-{times[-1]:g} ms; rejected: "
            f"R^2 < {min_r2:g}, T2 outside {t2_range_ms[0]:g}-{t2_range_ms[1]:g} ms"
            + (f", first fitted echo < {NOISE_SNR_MIN:g} x noise floor" if noise_floor else ""))


# ----- per region -----------------------------------------------------------------------------
def t2_per_region(t2map: T2Map, labels: dict[str, np.ndarray | Volume]) -> list[dict]:
    """Mean, median and SD of accepted T2 per named region (plates, subregions, layers).

    ``rejected_fraction`` is the share of the region's fitted voxels whose T2 was rejected;
    a region with no accepted voxel reports NaN statistics.
    """
    rows = []
    for name, region in labels.items():
        array = region.array if isinstance(region, Volume) else np.asarray(region)
        if array.shape != t2map.fitted.shape:
            raise InputError(f"the region {name!r} has shape {array.shape} but the T2 map "
                             f"{t2map.fitted.shape}; give masks on the echoes' grid")
        rows.append(_region_row(t2map, name, array.astype(bool)))
    return rows


def _region_row(t2map: T2Map, name: str, region: np.ndarray) -> dict:
    fitted = region & t2map.fitted
    values = t2map.t2_ms.array[region & t2map.valid].astype(np.float64)
    n_fitted = int(fitted.sum())
    stats = (dict.fromkeys(("mean_t2_ms", "median_t2_ms", "sd_t2_ms"), float("nan"))
             if values.size == 0 else {
                 "mean_t2_ms": float(values.mean()), "median_t2_ms": float(np.median(values)),
                 "sd_t2_ms": float(values.std(ddof=1)) if values.size > 1 else 0.0})
    rejected = int((region & t2map.rejected).sum())
    return {"name": name, **stats, "n_voxels": int(values.size),
            "rejected_fraction": rejected / n_fitted if n_fitted else float("nan")}
