"""RBJ biquad filters and the N-band parametric EQ built from them.

Coefficients follow Robert Bristow-Johnson's Audio EQ Cookbook. Filtering is
transposed direct form II in float64. Parameters ramp: frequency (in octaves),
Q and gain move toward their targets with a one-pole smoother that steps on an
absolute 16-sample grid, and the coefficients are recomputed at each step while
anything moves, so a sweep is smooth and the output does not depend on how the
stream is cut into blocks.

State layout (float64), per band b at ``b * BAND_STATE``:
``[cur_type, cur_log2_f, cur_q, cur_gain_db, b0, b1, b2, a1, a2, z1[ch]..., z2[ch]...]``
followed by one global counter. Params layout per band at ``b * BAND_PARAMS``:
``[type, freq_hz, q, gain_db, enabled]``, then the sample rate last.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numba import njit

from dsp.effect import F32, F64, Effect
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param

KINDS = ("lowpass", "highpass", "bandpass", "notch", "peak", "lowshelf", "highshelf", "allpass")
LOWPASS, HIGHPASS, BANDPASS, NOTCH, PEAK, LOWSHELF, HIGHSHELF, ALLPASS = range(8)

BAND_PARAMS = 5
COEF = 4  # offset of b0 in a band's state
HOP = 16  # samples between smoothing steps
SMOOTH_S = 0.02  # smoothing time constant, seconds


def band_state_size(channels: int) -> int:
    return 9 + 2 * channels


@njit(cache=True, nogil=True)
def rbj(  # RT
    kind: int, freq: float, q: float, gain_db: float, sr: float, out: F64, at: int
) -> None:
    """Write normalised RBJ coefficients b0 b1 b2 a1 a2 into ``out[at:at+5]``."""
    f = min(max(freq, 1.0), 0.49 * sr)
    q = max(q, 1e-3)
    w0 = 2.0 * math.pi * f / sr
    cw = math.cos(w0)
    sw = math.sin(w0)
    alpha = sw / (2.0 * q)
    a_gain = 10.0 ** (gain_db / 40.0)
    if kind == LOWPASS:
        b0, b1, b2 = (1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0
        a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
    elif kind == HIGHPASS:
        b0, b1, b2 = (1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0
        a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
    elif kind == BANDPASS:  # constant 0 dB peak gain
        b0, b1, b2 = alpha, 0.0, -alpha
        a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
    elif kind == NOTCH:
        b0, b1, b2 = 1.0, -2.0 * cw, 1.0
        a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
    elif kind == PEAK:
        b0, b1, b2 = 1.0 + alpha * a_gain, -2.0 * cw, 1.0 - alpha * a_gain
        a0, a1, a2 = 1.0 + alpha / a_gain, -2.0 * cw, 1.0 - alpha / a_gain
    elif kind == LOWSHELF:
        sq = 2.0 * math.sqrt(a_gain) * alpha
        b0 = a_gain * ((a_gain + 1.0) - (a_gain - 1.0) * cw + sq)
        b1 = 2.0 * a_gain * ((a_gain - 1.0) - (a_gain + 1.0) * cw)
        b2 = a_gain * ((a_gain + 1.0) - (a_gain - 1.0) * cw - sq)
        a0 = (a_gain + 1.0) + (a_gain - 1.0) * cw + sq
        a1 = -2.0 * ((a_gain - 1.0) + (a_gain + 1.0) * cw)
        a2 = (a_gain + 1.0) + (a_gain - 1.0) * cw - sq
    elif kind == HIGHSHELF:
        sq = 2.0 * math.sqrt(a_gain) * alpha
        b0 = a_gain * ((a_gain + 1.0) + (a_gain - 1.0) * cw + sq)
        b1 = -2.0 * a_gain * ((a_gain - 1.0) + (a_gain + 1.0) * cw)
        b2 = a_gain * ((a_gain + 1.0) + (a_gain - 1.0) * cw - sq)
        a0 = (a_gain + 1.0) - (a_gain - 1.0) * cw + sq
        a1 = 2.0 * ((a_gain - 1.0) - (a_gain + 1.0) * cw)
        a2 = (a_gain + 1.0) - (a_gain - 1.0) * cw - sq
    else:  # ALLPASS
        b0, b1, b2 = 1.0 - alpha, -2.0 * cw, 1.0 + alpha
        a0, a1, a2 = 1.0 + alpha, -2.0 * cw, 1.0 - alpha
    out[at] = b0 / a0
    out[at + 1] = b1 / a0
    out[at + 2] = b2 / a0
    out[at + 3] = a1 / a0
    out[at + 4] = a2 / a0


def rbj_ba(kind: str, freq: float, q: float, gain_db: float, sr: float) -> tuple[F64, F64]:
    """(b, a) of an RBJ biquad, for analysis and tests (scipy.signal conventions)."""
    c = np.zeros(5)
    rbj(KINDS.index(kind), freq, q, gain_db, sr, c, 0)
    return c[:3].copy(), np.array([1.0, c[3], c[4]])


@njit(cache=True, nogil=True)
def biquad_cascade_snap(state: F64, params: F64, bands: int, channels: int) -> None:  # RT
    """Jump every band's smoothed values to the targets and compute coefficients."""
    sr = params[bands * BAND_PARAMS]
    size = 9 + 2 * channels
    for b in range(bands):
        s = b * size
        p = b * BAND_PARAMS
        state[s] = params[p]
        state[s + 1] = math.log2(max(params[p + 1], 1.0))
        state[s + 2] = params[p + 2]
        state[s + 3] = params[p + 3]
        rbj(int(state[s]), 2.0 ** state[s + 1], state[s + 2], state[s + 3], sr, state, s + COEF)


@njit(cache=True, nogil=True, inline="always")
def _band(out: F32, lo: int, hi: int, state: F64, s: int, channels: int) -> None:  # RT
    """One band (TDF-II, float64 state) over frames lo:hi of ``out``, in place. Stereo runs
    both channels in one loop: two independent recursions overlap in the pipeline."""
    b0 = state[s + 4]
    b1 = state[s + 5]
    b2 = state[s + 6]
    a1 = state[s + 7]
    a2 = state[s + 8]
    if channels == 2:
        z1l = state[s + 9]
        z1r = state[s + 10]
        z2l = state[s + 11]
        z2r = state[s + 12]
        for i in range(lo, hi):
            xl = out[i, 0]
            xr = out[i, 1]
            yl = b0 * xl + z1l
            yr = b0 * xr + z1r
            z1l = b1 * xl - a1 * yl + z2l
            z1r = b1 * xr - a1 * yr + z2r
            z2l = b2 * xl - a2 * yl
            z2r = b2 * xr - a2 * yr
            out[i, 0] = yl
            out[i, 1] = yr
        state[s + 9] = z1l
        state[s + 10] = z1r
        state[s + 11] = z2l
        state[s + 12] = z2r
        return
    for c in range(channels):
        z1 = state[s + 9 + c]
        z2 = state[s + 9 + channels + c]
        for i in range(lo, hi):
            x = out[i, c]
            y = b0 * x + z1
            z1 = b1 * x - a1 * y + z2
            z2 = b2 * x - a2 * y
            out[i, c] = y
        state[s + 9 + c] = z1
        state[s + 9 + channels + c] = z2


@njit(cache=True, nogil=True)
def biquad_cascade(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Run enabled bands in series over ``inp`` into ``out`` (may be the same array)."""
    saved = ftz_begin()
    frames, channels = inp.shape
    size = 9 + 2 * channels
    bands = (params.shape[0] - 1) // BAND_PARAMS
    sr = params[bands * BAND_PARAMS]
    counter_at = bands * size
    k = 1.0 - math.exp(-HOP / (SMOOTH_S * sr))
    for i in range(frames):
        for c in range(channels):
            out[i, c] = clean(inp[i, c])
    counter = int(state[counter_at])
    moving = False  # does any band still glide toward its parameters?
    for b in range(bands):
        s = b * size
        p = b * BAND_PARAMS
        if (state[s] != params[p] or state[s + 2] != params[p + 2]
                or state[s + 3] != params[p + 3]
                or state[s + 1] != math.log2(max(params[p + 1], 1.0))):
            moving = True
    start = 0
    while start < frames:
        # advance to the next smoothing step on the absolute grid
        if moving and counter % HOP == 0:
            for b in range(bands):
                s = b * size
                p = b * BAND_PARAMS
                tf = math.log2(max(params[p + 1], 1.0))
                changed = False
                if state[s] != params[p]:
                    state[s] = params[p]  # a type switch cannot ramp; it jumps
                    changed = True
                for j, target in ((1, tf), (2, params[p + 2]), (3, params[p + 3])):
                    cur = state[s + j]
                    if cur != target:
                        diff = target - cur
                        if abs(diff) < 1e-6:
                            state[s + j] = target
                        else:
                            state[s + j] = cur + k * diff
                        changed = True
                if changed:
                    rbj(int(state[s]), 2.0 ** state[s + 1], state[s + 2], state[s + 3], sr,
                        state, s + COEF)
        # steady: the whole block in one run (the coefficients cannot change in it)
        run = min(HOP - counter % HOP, frames - start) if moving else frames - start
        for b in range(bands):
            p = b * BAND_PARAMS
            if params[p + 4] < 0.5:
                continue
            _band(out, start, start + run, state, b * size, channels)
        start += run
        counter = (counter + run) % HOP
    state[counter_at] = counter
    ftz_end(saved)


def _band_params(prefix: str) -> tuple[Param, ...]:
    return (
        Param(f"{prefix}type", "", 0, len(KINDS) - 1, 0, "filter shape", KINDS),
        Param(f"{prefix}freq_hz", "Hz", 10.0, 24000.0, 1000.0, "cut-off or centre frequency"),
        Param(f"{prefix}q", "", 0.1, 40.0, 0.7071, "quality factor (bandwidth)"),
        Param(f"{prefix}gain_db", "dB", -30.0, 30.0, 0.0, "gain for peak and shelf types"),
        Param(f"{prefix}enabled", "", 0, 1, 1, "band on or bypassed", ("off", "on")),
    )


class _Cascade(Effect):
    BANDS: ClassVar[int] = 1

    def make_state(self) -> F64:
        return np.zeros(self.BANDS * band_state_size(self.channels) + 1, dtype=np.float64)

    def _kernel_params(self) -> F64:
        kp = np.empty(self.BANDS * BAND_PARAMS + 1, dtype=np.float64)
        return kp

    def on_reset(self) -> None:
        self.state[:] = 0.0
        self._kp = np.empty(self.BANDS * BAND_PARAMS + 1, dtype=np.float64)
        self._sync()
        biquad_cascade_snap(self.state, self._kp, self.BANDS, self.channels)

    def _sync(self) -> None:  # RT
        self._kp[:-1] = self.params
        self._kp[-1] = self.sample_rate

    def set(self, **values: Any) -> None:
        super().set(**values)
        kp = getattr(self, "_kp", None)
        if kp is not None:
            self._sync()

    def run(self, inp: F32, out: F32) -> None:  # RT
        biquad_cascade(inp, out, self.state, self._kp)


class Biquad(_Cascade):
    """One RBJ biquad: lowpass, highpass, bandpass, notch, peak, low/high shelf, allpass."""

    BANDS = 1
    PARAMS = tuple(
        Param(p.name, p.unit, p.lo, p.hi, p.default, p.doc, p.choices) for p in _band_params("")
    )


def parametric_eq(bands: int) -> type[_Cascade]:
    """An N-band parametric EQ class; band k's parameters are ``b{k}_type``, ``b{k}_freq_hz``..."""
    params: list[Param] = []
    for k in range(bands):
        params.extend(_band_params(f"b{k}_"))
    defaults = np.geomspace(100.0, 8000.0, bands) if bands > 1 else np.array([1000.0])
    params = [
        Param(p.name, p.unit, p.lo, p.hi, float(defaults[i // BAND_PARAMS]), p.doc, p.choices)
        if p.name.endswith("freq_hz") else
        Param(p.name, p.unit, p.lo, p.hi, float(KINDS.index("peak")), p.doc, p.choices)
        if p.name.endswith("_type") else p
        for i, p in enumerate(params)
    ]
    return type(f"ParametricEQ{bands}", (_Cascade,), {"BANDS": bands, "PARAMS": tuple(params)})


ParametricEQ4 = parametric_eq(4)
