"""True-peak estimation by 4x oversampling (the method of ITU-R BS.1770-4 Annex 2).

A 64-tap Kaiser-windowed sinc interpolator in four polyphase branches of 16 taps
(flat within 0.01 dB to 15 kHz at 48 kHz, -0.6 dB at 20 kHz)
reconstructs four points between each pair of samples (at 1/8, 3/8, 5/8 and
7/8 of the way: the prototype's centre falls between two taps); the true peak is
the largest magnitude among those points and the two samples they lie between
(``CENTRE`` and ``CENTRE + 1`` of the window). Without the samples a lone
full-scale sample would read 0.974: the points beside it, not on it.
Inter-sample peaks of a full-scale signal near fs/4 read up to ~3 dB above the
sample peak.

``tp_step`` is the per-sample building block (used by the limiter and the
meters); ``true_peak`` runs it over a block. The interpolator delays by
``TP_DELAY`` samples.

State per channel (float64): a circular history of ``TAPS`` samples and a write
position: ``state[c * (TAPS + 1) : (c + 1) * (TAPS + 1)]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dsp.effect import F32, F64
from dsp.fpu import clean, ftz_begin, ftz_end

PHASES = 4
TAPS = 16  # per phase
TP_DELAY = TAPS // 2
CENTRE = TAPS // 2 - 1  # window index (0 = oldest) of the sample before the points


def _design() -> F64:
    n = np.arange(PHASES * TAPS, dtype=np.float64)
    centre = (PHASES * TAPS - 1) / 2.0
    h = np.sinc((n - centre) / PHASES) * np.kaiser(PHASES * TAPS, 6.0)
    bank = np.empty((PHASES, TAPS), dtype=np.float64)
    for p in range(PHASES):
        phase = h[p::PHASES]
        bank[p] = phase[::-1] / phase.sum()  # each branch passes DC at unity
    return bank


COEFS: F64 = _design()


def state_size(channels: int) -> int:
    return channels * (TAPS + 1)


@njit(cache=True, nogil=True, inline="always")
def tp_step(x: float, state: F64, at: int, coefs: F64) -> float:  # RT
    """Push one sample of one channel; return the largest |value| it interpolates to."""
    pos = int(state[at + TAPS])
    state[at + pos] = x
    pos = (pos + 1) % TAPS
    state[at + TAPS] = pos
    before = float(state[at + (pos + CENTRE) % TAPS])  # the samples the points lie between
    after = float(state[at + (pos + CENTRE + 1) % TAPS])
    peak = max(abs(before), abs(after))
    for p in range(PHASES):
        acc = 0.0
        for k in range(TAPS):
            acc += coefs[p, k] * state[at + (pos + k) % TAPS]
        a = abs(acc)
        if a > peak:
            peak = a
    return peak


@njit(cache=True, nogil=True)
def true_peak(inp: F32, peaks: F64, state: F64, coefs: F64) -> None:  # RT
    """Raise ``peaks[c]`` to the true peak of channel c over ``inp`` (linear, not dB)."""
    saved = ftz_begin()
    frames, channels = inp.shape
    for c in range(channels):
        at = c * (TAPS + 1)
        best = peaks[c]
        for i in range(frames):
            v = tp_step(clean(inp[i, c]), state, at, coefs)
            if v > best:
                best = v
        peaks[c] = best
    ftz_end(saved)


def measure_true_peak(x: F32) -> F64:
    """True peak per channel of a whole signal (linear), flushing the interpolator's tail."""
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    channels = arr.shape[1]
    state = np.zeros(state_size(channels))
    peaks = np.zeros(channels)
    true_peak(arr, peaks, state, COEFS)
    true_peak(np.zeros((TAPS, channels), dtype=np.float32), peaks, state, COEFS)
    return peaks
