"""Mix down and resample to the analysis rate: a polyphase windowed-sinc (Kaiser) filter.

Analysis looks at frequencies below a few kHz only, so tracks are brought to
``ANALYSIS_RATE`` (11025 Hz) first, which makes every later FFT four times smaller
for 44.1 kHz input. The ratio ``sr_out / sr_in`` is taken as a fraction ``p / q``
(denominator limited to ``MAX_PHASES``); output sample k sits at input position
``k q / p``, and its filter phase is one of p precomputed rows of taps, so there is
no interpolation error. The rate actually produced is ``sr_in p / q`` (exactly the
target for the usual rates: 44100, 48000, 96000, 22050, 32000 Hz...).

The low-pass cut-off is ``ROLLOFF`` times the lower Nyquist frequency; the Kaiser
window (beta ``BETA``) spans ``ZERO_CROSSINGS`` zero crossings of the sinc on each
side, which puts the stop band below -70 dB: plenty for onset and pitch analysis.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from numba import njit

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

ANALYSIS_RATE = 11025.0
ROLLOFF = 0.9
ZERO_CROSSINGS = 8
BETA = 7.5
MAX_PHASES = 2048
SAMPLE_LIMIT = 64.0


def ratio(sr_in: float, sr_out: float) -> tuple[int, int]:
    """(p, q) with p / q close to sr_out / sr_in and p at most ``MAX_PHASES``."""
    frac = Fraction(sr_out / sr_in).limit_denominator(10**6)
    if frac.numerator > MAX_PHASES:
        # p/q ~ r with p <= MAX_PHASES: limit the denominator of the inverse instead.
        inv = Fraction(sr_in / sr_out).limit_denominator(MAX_PHASES)
        frac = Fraction(inv.denominator, inv.numerator)
    return frac.numerator, frac.denominator


def design(p: int, q: int) -> tuple[F32, int]:
    """The polyphase table (p rows of 2 * half taps) and ``half``, the taps each side."""
    # Cut-off in cycles per input sample: ROLLOFF times the lower of the two Nyquists.
    fc = 0.5 * ROLLOFF * min(1.0, p / q)
    half = max(2, math.ceil(ZERO_CROSSINGS / (2.0 * fc)))
    phases = np.arange(p, dtype=np.float64)[:, None] / p
    t = phases + (half - 1) - np.arange(2 * half, dtype=np.float64)[None, :]
    window = np.i0(BETA * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, 1.0))) / np.i0(BETA)
    taps = 2.0 * fc * np.sinc(2.0 * fc * t) * window
    taps /= taps.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
    return np.ascontiguousarray(taps, dtype=np.float32), half


@njit(cache=True, nogil=True, fastmath=True)
def polyphase(x: F32, table: F32, p: int, q: int, half: int, out: F32) -> None:
    """``out[k]`` = the filtered input at position ``k q / p`` (``out`` preallocated)."""
    n_in = x.shape[0]
    taps = table.shape[1]
    for k in range(out.shape[0]):
        pos = k * q
        n = pos // p
        phase = pos - n * p
        start = n - (half - 1)
        acc = np.float32(0.0)
        if start >= 0 and start + taps <= n_in:
            for m in range(taps):
                acc += x[start + m] * table[phase, m]
        else:
            for m in range(taps):
                i = start + m
                if 0 <= i < n_in:
                    acc += x[i] * table[phase, m]
        out[k] = acc


@njit(cache=True, nogil=True, inline="always")
def _finite(v: float) -> float:
    """NaN as 0, everything clamped to +-SAMPLE_LIMIT (branch-free, so loops vectorise)."""
    v = v if v == v else 0.0
    return min(max(v, -SAMPLE_LIMIT), SAMPLE_LIMIT)


@njit(cache=True, nogil=True)
def mix_down(x: F32, out: F32) -> None:
    """``out[i]`` = the mean over channels of the finite, clamped ``x[i]``."""
    frames, channels = x.shape
    scale = np.float32(1.0 / channels)
    if channels == 1:
        for i in range(frames):
            out[i] = _finite(x[i, 0])
    elif channels == 2:
        for i in range(frames):
            out[i] = (_finite(x[i, 0]) + _finite(x[i, 1])) * scale
    else:
        for i in range(frames):
            acc = np.float32(0.0)
            for c in range(channels):
                acc += _finite(x[i, c])
            out[i] = acc * scale


def to_mono(x: npt.ArrayLike) -> F32:
    """The channel mean of ``x`` (frames, channels) or (frames,), as finite float32."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"audio must be (frames, channels) or (frames,), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    out = np.empty(arr.shape[0], dtype=np.float32)
    if arr.shape[1]:
        mix_down(arr, out)
    else:
        out[:] = 0.0
    return out


def resample(x: F32, sr_in: float, sr_out: float = ANALYSIS_RATE) -> tuple[F32, float]:
    """Resample the mono ``x`` from ``sr_in`` to about ``sr_out``; returns (y, actual rate)."""
    if not (sr_in > 0 and sr_out > 0 and math.isfinite(sr_in) and math.isfinite(sr_out)):
        raise ValueError(f"bad sample rates {sr_in!r} -> {sr_out!r}")
    p, q = ratio(sr_in, sr_out)
    rate = sr_in * p / q
    x = np.ascontiguousarray(x, dtype=np.float32)
    if p == q:
        return x.copy(), rate
    table, half = design(p, q)
    n_out = (x.shape[0] * p + q - 1) // q
    out = np.empty(n_out, dtype=np.float32)
    polyphase(x, table, p, q, half, out)
    return out, rate
