"""Beat tracking by dynamic programming (Ellis 2007), and 4/4 downbeats.

Given the onset envelope and a beat period P (frames), the tracker finds the
sequence of beat frames b_1..b_K maximising

    sum_k O(b_k)  -  TIGHTNESS * sum_k log((b_k - b_{k-1}) / P)^2

where O is the onset envelope, scaled to unit standard deviation (the tightness is
relative to that) and smoothed by a narrow Gaussian (sigma P/32): the
beats sit on strong onsets and their spacing stays close to P, so the grid is
carried across passages without drums and follows a slowly drifting tempo. The
recursion ``C(t) = O(t) + max_{t-2P <= s <= t-P/2} (C(s) - TIGHTNESS log((t-s)/P)^2)``
runs in one jitted pass; the beats are read back from the best end frame.

Downbeats: of the four ways to group the beats into 4/4 bars, the one whose first
beats carry the most accent wins. The accent of a beat is a weighted sum of
feature curves sampled there (low-frequency onsets: kick drum and bass notes;
harmonic change: new chords start on the bar).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TIGHTNESS = 100.0
BEATS_PER_BAR = 4


@njit(cache=True, nogil=True)
def smooth(env: F64, sigma: float, out: F64) -> None:
    """``out`` = ``env`` convolved with a unit-sum Gaussian of ``sigma`` frames (>= 0.5)."""
    n = env.shape[0]
    sigma = max(sigma, 0.5)
    half = int(3.0 * sigma) + 1
    norm = 0.0
    for k in range(-half, half + 1):
        norm += math.exp(-0.5 * (k / sigma) ** 2)
    for t in range(n):
        acc = 0.0
        for k in range(-half, half + 1):
            i = t + k
            if 0 <= i < n:
                acc += env[i] * math.exp(-0.5 * (k / sigma) ** 2)
        out[t] = acc / norm


@njit(cache=True, nogil=True)
def dp_track(local: F64, period: float, tightness: float, penalty: F64, cum: F64,
             back: I64) -> int:
    """Fill ``cum`` (best score of a beat chain ending at t) and ``back`` (its previous
    beat, -1 for a first beat); return the frame of the best last beat. ``penalty`` is
    work space of at least ``2 * period + 2`` values."""
    n = local.shape[0]
    lo_off = max(1, round(period / 2.0))
    hi_off = max(lo_off, round(2.0 * period))
    for off in range(lo_off, hi_off + 1):
        d = math.log(off / period)
        penalty[off] = tightness * d * d
    for t in range(n):
        best = -1e300
        arg = -1
        for off in range(lo_off, min(hi_off, t) + 1):
            v = cum[t - off] - penalty[off]
            if v > best:
                best = v
                arg = t - off
        if arg < 0 or best < 0.0:
            # Starting a new chain here beats any chain so far (or there is none).
            cum[t] = local[t]
            back[t] = -1
        else:
            cum[t] = local[t] + best
            back[t] = arg
    # The last beat: the best chain end within the final period.
    start = max(0, n - math.ceil(period))
    end = start
    for t in range(start, n):
        if cum[t] > cum[end]:
            end = t
    return int(end)


@njit(cache=True, nogil=True)
def backtrack(back: I64, end: int, out: I64) -> int:
    """Write the chain ending at ``end`` into ``out`` in time order; return its length."""
    count = 0
    t = end
    while t >= 0:
        count += 1
        t = back[t]
    t = end
    for k in range(count - 1, -1, -1):
        out[k] = t
        t = back[t]
    return count


def track(env: F64, period: float, tightness: float = TIGHTNESS) -> I64:
    """Beat frames (int64, increasing) for the onset envelope ``env`` and beat ``period``."""
    n = env.shape[0]
    if n == 0 or not period > 0.0:
        return np.zeros(0, dtype=np.int64)
    env = np.ascontiguousarray(env, dtype=np.float64)
    std = float(env.std())
    if std > 1e-12:  # the tightness is relative to onsets of unit standard deviation
        env = env / std
    local = np.empty(n)
    smooth(env, period / 32.0, local)
    cum = np.empty(n)
    back = np.empty(n, dtype=np.int64)
    penalty = np.empty(int(2.0 * period) + 3)
    end = dp_track(local, float(period), float(tightness), penalty, cum, back)
    out = np.empty(n, dtype=np.int64)
    count = backtrack(back, end, out)
    return out[:count].copy()


def sample_peaks(curve: F64, frames: I64, radius: int) -> F64:
    """The maximum of ``curve`` within ``radius`` frames of each frame in ``frames``."""
    n = curve.shape[0]
    if n == 0 or frames.size == 0:
        return np.zeros(frames.shape[0])
    offsets = np.arange(-radius, radius + 1)
    idx = np.clip(frames[:, None] + offsets[None, :], 0, n - 1)
    return np.asarray(curve[idx].max(axis=1), dtype=np.float64)


def bar_phase(accents: Sequence[F64], weights: Sequence[float]) -> int:
    """Which beat (0..3) starts the bars: the phase whose beats carry the most accent.

    ``accents`` are per-beat feature values (one array per feature, each scaled to
    unit mean so the weights compare like with like).
    """
    if not accents or accents[0].size < BEATS_PER_BAR:
        return 0
    total = np.zeros(accents[0].shape[0])
    for a, w in zip(accents, weights, strict=True):
        mean = float(np.mean(a))
        total += w * (a / mean if mean > 1e-12 else a)
    scores = [float(np.mean(total[p::BEATS_PER_BAR])) for p in range(BEATS_PER_BAR)]
    return int(np.argmax(scores))
