"""Onset strength: log-magnitude spectral flux over mel bands, less its local mean.

At the analysis rate (11025 Hz) the signal is cut into 1024-sample Hann frames every
``HOP`` = 128 samples (86.1 frames per second, 11.6 ms). The power spectrum is summed
into ``BANDS`` triangular mel bands (30 Hz .. 5 kHz) and taken in dB with a floor
``RANGE_DB`` below the loudest band value of the track. The flux of a frame is the
sum over bands of the rise in dB since ``LAG`` frames before (half-wave rectified):
new energy anywhere in the spectrum, independent of the track's level. Subtracting
the mean over the surrounding ``MEAN_S`` seconds and rectifying again removes the
slow swell of pads and crescendos and keeps the attacks.

Besides the full-band envelope, the same flux over the bands below ``LOW_HZ`` (kick
drum and bass) is kept for finding downbeats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.analysis.spectrum import frame_count, power_chunks

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

N_FFT = 1024
HOP = 128
BANDS = 40
FMIN_HZ = 30.0
FMAX_HZ = 5000.0
LOW_HZ = 160.0
RANGE_DB = 80.0
LAG = 2
MEAN_S = 0.5


@dataclass(frozen=True)
class Onsets:
    env: F64  # onset strength per frame, full band (unit RMS)
    low: F64  # onset strength per frame, bands below LOW_HZ (unit RMS)
    fps: float  # frames per second; frame i is at time i / fps


def _mel(hz: F64) -> F64:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _hz(mel: F64) -> F64:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@functools.cache
def mel_bands(sr: float, n_fft: int = N_FFT, bands: int = BANDS) -> tuple[F32, F64]:
    """Triangular mel filterbank (bins, bands), area-normalised, and the band centres."""
    edges = _hz(np.linspace(_mel(np.array(FMIN_HZ)), _mel(np.array(min(FMAX_HZ, sr / 2))),
                            bands + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    # Bands narrower than a bin still get the nearest bin.
    for b in range(bands):
        if tri[b].sum() == 0.0:
            tri[b, int(np.argmin(np.abs(freqs - mid[b, 0])))] = 1.0
    tri /= tri.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(tri.T, dtype=np.float32), edges[1:-1].copy()


@njit(cache=True, nogil=True)
def apply_bands(power: F32, fb: F32, lo: I64, hi: I64, out: F32) -> None:
    """``out[t, b]`` = sum over bins k in [lo[b], hi[b]) of ``power[t, k] * fb[k, b]``:
    the filterbank product over each band's non-zero bins only (and no BLAS threads to
    fight over a busy machine)."""
    for t in range(power.shape[0]):
        for b in range(lo.shape[0]):
            acc = np.float32(0.0)
            for k in range(lo[b], hi[b]):
                acc += power[t, k] * fb[k, b]
            out[t, b] = acc


@njit(cache=True, nogil=True)
def flux(db: F32, lag: int, first_band: int, last_band: int, out: F64) -> None:
    """``out[t]`` = sum over bands [first, last) of max(0, db[t, b] - db[t - lag, b])."""
    frames = db.shape[0]
    for t in range(frames):
        acc = 0.0
        if t >= lag:
            for b in range(first_band, last_band):
                d = db[t, b] - db[t - lag, b]
                if d > 0.0:
                    acc += d
        out[t] = acc


@njit(cache=True, nogil=True)
def subtract_local_mean(x: F64, half: int, out: F64) -> None:
    """``out[t]`` = max(0, x[t] - mean of x over [t - half, t + half]) (clipped at the ends)."""
    n = x.shape[0]
    acc = 0.0
    lo = 0
    hi = 0  # the window is x[lo:hi]
    for t in range(n):
        while hi < min(n, t + half + 1):
            acc += x[hi]
            hi += 1
        while lo < t - half:
            acc -= x[lo]
            lo += 1
        d = x[t] - acc / (hi - lo)
        out[t] = d if d > 0.0 else 0.0


def _unit_rms(x: F64) -> F64:
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return x / rms if rms > 1e-12 else x


def onset_strength(y: F32, sr: float) -> Onsets:
    """Onset envelopes of the mono analysis signal ``y`` at rate ``sr``."""
    fb, centres = mel_bands(float(sr))
    nonzero = fb > 0.0
    lo = np.argmax(nonzero, axis=0).astype(np.int64)
    hi = (fb.shape[0] - np.argmax(nonzero[::-1], axis=0)).astype(np.int64)
    bands = np.empty((frame_count(y.shape[0], HOP), BANDS), dtype=np.float32)
    for start, power in power_chunks(y, N_FFT, HOP):
        apply_bands(power, fb, lo, hi, bands[start : start + power.shape[0]])
    peak = float(bands.max()) if bands.size else 0.0
    floor = max(peak * 10.0 ** (-RANGE_DB / 10.0), 1e-20)
    db = (10.0 * np.log10(np.maximum(bands, floor))).astype(np.float32)
    n = db.shape[0]
    half = max(1, round(MEAN_S * sr / HOP / 2))
    raw = np.empty(n)
    full = np.empty(n)
    low = np.empty(n)
    flux(db, LAG, 0, BANDS, raw)
    subtract_local_mean(raw, half, full)
    n_low = max(1, int(np.searchsorted(centres, LOW_HZ)))
    flux(db, LAG, 0, n_low, raw)
    subtract_local_mean(raw, half, low)
    return Onsets(env=_unit_rms(full), low=_unit_rms(low), fps=sr / HOP)
