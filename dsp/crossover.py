"""Linkwitz-Riley 4th-order crossovers and a 3-band splitter whose bands sum back flat.

An LR4 low-pass is two cascaded Butterworth (Q = 1/sqrt 2) low-passes; its
high-pass likewise. At any crossover frequency LP4 + HP4 is the 2nd-order
all-pass with the same frequency and Q, so the sum is flat in magnitude. The
3-band splitter runs the low band through that all-pass at the upper crossover,
which keeps low + mid + high flat too (tests/dsp/test_filters.py).

Crossover frequencies ramp like biquad parameters (one-pole in octaves, on an
absolute 16-sample grid), so sweeping them is smooth and block-size invariant.

State (float64): ``[cur_log2_f1, cur_log2_f2, coefs(5 filters x 5)...,
z(9 sections x 2 x channels)..., counter]``. Params: ``[low_hz, high_hz, sr]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from dsp.biquad import ALLPASS, HIGHPASS, HOP, LOWPASS, SMOOTH_S, rbj
from dsp.effect import F32, F64, Effect
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param

BUTTERWORTH_Q = 1.0 / math.sqrt(2.0)
# coefficient sets: LP at f1, HP at f1, LP at f2, HP at f2, AP at f2
C_LP1, C_HP1, C_LP2, C_HP2, C_AP2 = 0, 1, 2, 3, 4
COEFS_AT = 2
Z_AT = COEFS_AT + 25
SECTIONS = 9  # LP1 x2, HP1 x2, LP2 x2, HP2 x2, AP2


def state_size(channels: int) -> int:
    return Z_AT + SECTIONS * 2 * channels + 1


@njit(cache=True, nogil=True, inline="always")
def _section(x: float, state: F64, c: int, z: int) -> float:  # RT
    b0 = state[c]
    y: float = b0 * x + state[z]
    state[z] = state[c + 1] * x - state[c + 3] * y + state[z + 1]
    state[z + 1] = state[c + 2] * x - state[c + 4] * y
    return y


@njit(cache=True, nogil=True)
def _coefs(state: F64, sr: float) -> None:  # RT
    f1 = 2.0 ** state[0]
    f2 = 2.0 ** state[1]
    rbj(LOWPASS, f1, BUTTERWORTH_Q, 0.0, sr, state, COEFS_AT + 5 * C_LP1)
    rbj(HIGHPASS, f1, BUTTERWORTH_Q, 0.0, sr, state, COEFS_AT + 5 * C_HP1)
    rbj(LOWPASS, f2, BUTTERWORTH_Q, 0.0, sr, state, COEFS_AT + 5 * C_LP2)
    rbj(HIGHPASS, f2, BUTTERWORTH_Q, 0.0, sr, state, COEFS_AT + 5 * C_HP2)
    rbj(ALLPASS, f2, BUTTERWORTH_Q, 0.0, sr, state, COEFS_AT + 5 * C_AP2)


@njit(cache=True, nogil=True)
def split3_snap(state: F64, params: F64) -> None:  # RT
    state[0] = math.log2(max(params[0], 1.0))
    state[1] = math.log2(max(params[1], params[0], 1.0))
    _coefs(state, params[2])


@njit(cache=True, nogil=True)
def split3(inp: F32, low: F32, mid: F32, high: F32, state: F64, params: F64) -> None:  # RT
    """Split ``inp`` into three LR4 bands; ``low + mid + high`` is an all-pass of ``inp``."""
    saved = ftz_begin()
    frames, channels = inp.shape
    sr = params[2]
    counter_at = state.shape[0] - 1
    counter = int(state[counter_at])
    k = 1.0 - math.exp(-HOP / (SMOOTH_S * sr))
    c_lp1 = COEFS_AT + 5 * C_LP1
    c_hp1 = COEFS_AT + 5 * C_HP1
    c_lp2 = COEFS_AT + 5 * C_LP2
    c_hp2 = COEFS_AT + 5 * C_HP2
    c_ap2 = COEFS_AT + 5 * C_AP2
    for i in range(frames):
        if counter == 0:
            t1 = math.log2(max(params[0], 1.0))
            t2 = math.log2(max(params[1], params[0], 1.0))
            moved = False
            for j, target in ((0, t1), (1, t2)):
                cur = state[j]
                if cur != target:
                    diff = target - cur
                    state[j] = target if abs(diff) < 1e-6 else cur + k * diff
                    moved = True
            if moved:
                _coefs(state, sr)
        for ch in range(channels):
            z = Z_AT + ch * SECTIONS * 2
            x = clean(inp[i, ch])
            lo = _section(_section(x, state, c_lp1, z), state, c_lp1, z + 2)
            rest = _section(_section(x, state, c_hp1, z + 4), state, c_hp1, z + 6)
            mi = _section(_section(rest, state, c_lp2, z + 8), state, c_lp2, z + 10)
            hi = _section(_section(rest, state, c_hp2, z + 12), state, c_hp2, z + 14)
            lo = _section(lo, state, c_ap2, z + 16)
            low[i, ch] = lo
            mid[i, ch] = mi
            high[i, ch] = hi
        counter = (counter + 1) % HOP
    state[counter_at] = counter
    ftz_end(saved)


class BandSplitter3(Effect):
    """Three LR4 bands. ``split(block)`` gives (low, mid, high); ``process`` gives their sum.

    ``process`` is therefore an all-pass: flat in magnitude, phase-shifted around
    the crossovers (what a multiband processor with every band at unity does).
    """

    PARAMS = (
        Param("low_hz", "Hz", 20.0, 2000.0, 200.0, "crossover between low and mid"),
        Param("high_hz", "Hz", 200.0, 20000.0, 2500.0, "crossover between mid and high"),
    )

    def __init__(self, sample_rate: float = 48000.0, channels: int = 2, **kw: Any) -> None:
        max_block = int(kw.get("max_block", 8192))
        self._bands = np.zeros((3, max_block, channels), dtype=np.float32)
        self._band_views: dict[int, tuple[F32, F32, F32]] = {}
        self._kp = np.zeros(3, dtype=np.float64)
        super().__init__(sample_rate, channels, **kw)

    def make_state(self) -> F64:
        return np.zeros(state_size(self.channels), dtype=np.float64)

    def set(self, **values: Any) -> None:
        super().set(**values)
        self._kp[0] = self.params[0]
        self._kp[1] = max(self.params[1], self.params[0])
        self._kp[2] = self.sample_rate

    def on_reset(self) -> None:
        self.state[:] = 0.0
        split3_snap(self.state, self._kp)

    def split(self, block: F32) -> tuple[F32, F32, F32]:  # RT after the first block of a size
        """The three bands of ``block`` (views, valid until the next call)."""
        inp = self._as_block(block)
        n = inp.shape[0]
        views = self._band_views.get(n)
        if views is None:
            if n > self._bands.shape[1]:
                self._bands = np.zeros((3, n, self.channels), dtype=np.float32)
                self._band_views.clear()
            views = self._band_views[n] = (
                self._bands[0, :n], self._bands[1, :n], self._bands[2, :n]
            )
        split3(inp, views[0], views[1], views[2], self.state, self._kp)
        return views

    def run(self, inp: F32, out: F32) -> None:  # RT
        low, mid, high = self.split(inp)
        np.add(low, mid, out=out)
        np.add(out, high, out=out)
