"""The grain shifter of the voice pitch shifter (dsp/pitch.py, step 4): reading the
residual's delay line and moving its tap.

The tap's delay D changes by ``1 - r`` per sample (read at speed r, the excitation's pitch
is r times higher); ``_read`` reads the ring there with a 12-tap Kaiser-windowed sinc
(``interp_table``). When D passes its threshold, ``_jump`` starts a crossfade to a tap at
the delay that ``_search`` finds: where the waveform (the channels' mean) best matches the
current read point, by normalised cross-correlation (``_similarity``) over 8 ms, coarse
then fine, over one 75 Hz period; among near-best matches the farthest. Jumping by whole
pitch periods is what keeps a shifted voice free of phasiness and echo; after a jump to D'
the tap sweeps to ``2 L - D'``, so its mean delay stays at the latency L.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.effect import F64
from dsp.pitch_layout import (
    P_DMAX,
    P_DMIN,
    P_LAT,
    P_SPAN,
    P_STEP,
    P_TABLE,
    P_WIN,
    P_XF,
    PHASES,
    S_D,
    S_DOLD,
    S_HI,
    S_LO,
    S_RATIO,
    S_XF,
    TAPS,
)

KAISER_BETA = 6.0
MATCH_TOL = 0.05  # similarity within this of the best counts as a match
MIN_SWEEP = 64


@njit(cache=True, nogil=True, inline="always")
def _read(buf: F64, at: int, mask: int, pos: float, params: F64) -> float:  # RT
    """Windowed-sinc read of ring ``buf[at : at + mask + 1]`` at absolute position ``pos``."""
    i = math.floor(pos)
    ph = (pos - i) * PHASES
    p0 = int(ph)
    a = ph - p0
    row0 = P_TABLE + p0 * TAPS
    row1 = row0 + TAPS
    acc0 = 0.0
    acc1 = 0.0
    first = i - TAPS // 2 + 1
    for j in range(TAPS):
        x = buf[at + ((first + j) & mask)]
        acc0 += params[row0 + j] * x
        acc1 += params[row1 + j] * x
    return acc0 + a * (acc1 - acc0)


def interp_table() -> F64:
    """Kaiser-windowed sinc taps for fractions k / PHASES, k = 0..PHASES (row 0 is exact)."""
    j = np.arange(TAPS) - (TAPS // 2 - 1)
    t = np.arange(PHASES + 1)[:, None] / PHASES
    u = j[None, :] - t
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1.0 - (u / (TAPS / 2)) ** 2, 0.0, 1.0)))
    table: F64 = np.sinc(u) * window / np.i0(KAISER_BETA)
    return table.ravel()


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _similarity(  # RT
    h: F64, a: int, b: int, length: int, stride: int
) -> float:
    """Normalised cross-correlation of ``h[a : a + length]`` and ``h[b : b + length]``."""
    xy = 0.0
    xx = 0.0
    yy = 0.0
    for u in range(0, length, stride):
        x = h[a + u]
        y = h[b + u]
        xy += x * y
        xx += x * x
        yy += y * y
    return xy / math.sqrt(xx * yy + 1e-20)


@njit(cache=True, nogil=True)
def _search(  # RT
    h: F64, newest: int, d: float, lo: float, hi: float, params: F64
) -> float:
    """A delay in ``[lo, hi]`` (same fraction as ``d``) where the signal matches delay ``d``.

    Of the candidates within ``MATCH_TOL`` of the best normalised cross-correlation
    (coarse pass), the one nearest ``hi`` when ``hi`` is the far end (``lo > d``),
    else nearest ``lo``: whole periods before the far end, so grains stay long and
    sweep symmetrically about the latency. A fine pass then refines it.
    """
    win = int(params[P_WIN])
    step = int(params[P_STEP])
    di = math.floor(d + 0.5)
    ref = newest - di - win + 1
    j_lo = math.ceil(lo - d)
    j_hi = math.floor(hi - d)
    best = -1e300
    for j in range(j_lo, j_hi + 1, step):
        best = max(best, _similarity(h, ref, ref - j, win, 2 * step))
    centre = j_lo
    count = (j_hi - j_lo) // step + 1
    for m in range(count):  # the same grid from the far end (hi when jumping up)
        j = j_lo + step * (count - 1 - m if lo > d else m)
        if _similarity(h, ref, ref - j, win, 2 * step) >= best - MATCH_TOL:
            centre = j
            break
    best = -1e300
    best_j = centre
    for j in range(max(j_lo, centre - step + 1), min(j_hi, centre + step - 1) + 1):
        s = _similarity(h, ref, ref - j, win, 1)
        if s > best:
            best = s
            best_j = j
    return d + best_j


@njit(cache=True, nogil=True)
def _jump(state: F64, newest: int, params: F64) -> None:  # RT
    """Start a crossfade to a new tap when the current one leaves its range.

    After a jump to D' the tap sweeps to ``2 L - D'`` before the next (kept at least
    ``MIN_SWEEP`` samples), so the mean delay while shifting is the latency L.
    """
    r = state[S_RATIO]
    d = state[S_D]
    lat = params[P_LAT]
    d_min = params[P_DMIN]
    d_max = params[P_DMAX]
    span = params[P_SPAN]
    sweep = params[P_XF] + MIN_SWEEP
    target = -1.0
    if r > 1.0 and d < state[S_LO]:
        target = _search(state, newest, d, d_max - span, d_max, params)
        state[S_LO] = max(min(2.0 * lat - target, target - sweep), d_min)
        state[S_HI] = d_max
    elif r < 1.0 and d > state[S_HI]:
        target = _search(state, newest, d, d_min, d_min + span, params)
        state[S_HI] = min(max(2.0 * lat - target, target + sweep), d_max)
        state[S_LO] = d_min
    elif r == 1.0 and d != lat:
        target = lat
        state[S_LO] = d_min
        state[S_HI] = d_max
    if target >= 0.0:
        state[S_DOLD] = d
        state[S_D] = target
        state[S_XF] = 1.0
