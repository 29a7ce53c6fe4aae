"""YIN fundamental-frequency estimation (de Cheveigné & Kawahara 2002), for the tests.

``yin(x, sr)`` returns one F0 per frame (Hz, NaN where unvoiced) and the frame
start times in samples. Steps follow the paper: the difference function (through
FFT autocorrelations, all frames at once), the cumulative-mean-normalised
difference, the absolute threshold (first dip below it, followed down to its
local minimum) and parabolic interpolation of the dip. A frame is voiced when its
dip is below ``threshold`` and its level is within ``floor_db`` of the loudest
frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def yin(
    x: npt.ArrayLike,
    sr: float,
    *,
    fmin: float = 60.0,
    fmax: float = 600.0,
    window_s: float = 0.025,
    hop_s: float = 0.005,
    threshold: float = 0.12,
    floor_db: float = -35.0,
) -> tuple[F64, F64]:
    """(f0 per frame in Hz with NaN for unvoiced frames, frame start positions in samples)."""
    sig = np.asarray(x, dtype=np.float64)
    if sig.ndim == 2:
        sig = sig.mean(axis=1)
    w = round(window_s * sr)
    tau_max = int(np.ceil(sr / fmin)) + 2
    tau_min = max(2, int(np.floor(sr / fmax)))
    hop = round(hop_s * sr)
    span = w + tau_max
    if sig.shape[0] < span:
        return np.zeros(0), np.zeros(0)
    starts = np.arange(0, sig.shape[0] - span + 1, hop)
    frames = np.lib.stride_tricks.sliding_window_view(sig, span)[starts]
    nfft = 1 << int(np.ceil(np.log2(2 * span)))
    head = frames[:, :w]
    # r(tau) = sum_j x_j x_{j+tau} over the integration window j < w
    spec = np.fft.rfft(frames, nfft) * np.conj(np.fft.rfft(head, nfft))
    r = np.fft.irfft(spec, nfft)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    e0 = sq[:, w][:, None]
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-300)
    f0 = np.full(frames.shape[0], np.nan)
    level = 10.0 * np.log10(np.maximum(e0[:, 0] / w, 1e-20))
    loud = level > level.max() + floor_db
    for i in np.flatnonzero(loud):
        c = cmnd[i]
        below = np.flatnonzero(c[tau_min:tau_max] < threshold)
        if below.size == 0:
            continue
        t = tau_min + int(below[0])
        while t + 1 < tau_max and c[t + 1] < c[t]:
            t += 1
        a, b, cc = c[t - 1], c[t], c[t + 1]
        denom = a - 2.0 * b + cc
        shift = 0.5 * (a - cc) / denom if denom > 0 else 0.0
        f0[i] = sr / (t + float(np.clip(shift, -0.5, 0.5)))
    return f0, starts.astype(np.float64)


def cents(ratio: npt.ArrayLike) -> F64:
    return np.asarray(1200.0 * np.log2(np.asarray(ratio, dtype=np.float64)), dtype=np.float64)
