"""Per-track mixing stages: gain with ramps and mute, constant-power pan, stereo width.

Gain
    ``gain_db`` -100..+24 dB; the bottom of the range (-100) is silence (-inf dB,
    a gain of exactly 0). ``mute`` switches the target to 0. Every change of the
    target (level or mute) starts a *linear* amplitude ramp of ``ramp_ms``
    (default ``GAIN_RAMP_S``, 15 ms) from the gain at that moment, so the target
    is reached exactly at the end of the ramp, with no step anywhere.
    State ``[start, target, pos, n]``: the gain at ramp position ``pos`` (of
    ``n`` samples) is ``start + (target - start) * pos / n``. Params
    ``[gain_db, mute, ramp_ms, sr]``.

Pan
    ``pan`` -1 (left) .. +1 (right) and a ``law``:

    * ``constant_power`` (default): left gain ``cos(t)``, right gain ``sin(t)``,
      ``t = (pan + 1) * pi / 4``. A mono source reaches Pan as identical left and
      right channels (the engine duplicates a mono track into the stereo bus),
      so ``L^2 + R^2`` is the source power at every position and the centre is
      -3.01 dB on each side. For a stereo source it acts as a balance control
      that is -3 dB at the centre.
    * ``balance`` (for stereo sources): both channels unchanged at the centre;
      moving right fades the left channel with ``cos(pan * pi / 2)`` (-3 dB at
      +0.5, silent at +1) and leaves the right alone, and vice versa.

    With one channel Pan has nothing to place: the block passes unchanged.
    More than two channels are panned in pairs (0, 1), (2, 3)...; an odd last
    channel passes unchanged.

Width
    Mid/side: ``M = (L + R) / 2``, ``S = (L - R) / 2``, out ``M + w S'``,
    ``M - w S'``: ``width`` 0 is mono (L == R), 1 unchanged, 2 twice the side.
    ``bass_mono`` on replaces the side signal by its 12 dB/oct (Butterworth)
    high-pass above ``bass_hz``, so the low end is mono whatever the width.
    Pairs and mono as for Pan.

Pan and Width smooth their parameters with a one-pole (time constant
``SMOOTH_S``) stepped on an absolute 16-sample grid (a counter in the state),
computing the gains at each grid point and interpolating them linearly in
between: the output does not depend on how the stream is cut into blocks, and no
sin/cos runs per sample.

Pan state ``[pos, gl0, gr0, gl1, gr1, law, counter]`` (gains at the start and
end of the current 16-sample segment). Params ``[pan, law, sr]``.
Width state ``[w0, w1, a0, a1, log2_f, b0, b1, b2, a1c, a2c, counter,
(z1, z2) per pair]`` (width and bass-mono amount at the segment ends, high-pass
coefficients and state). Params ``[width, bass_mono, bass_hz, sr]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.biquad import HIGHPASS, rbj
from dsp.effect import F32, F64, Effect, bind_params
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param

GAIN_RAMP_S = 0.015
GAIN_FLOOR_DB = -100.0
HOP = 16
SMOOTH_S = 0.01
BUTTERWORTH_Q = 1.0 / math.sqrt(2.0)
CONSTANT_POWER, BALANCE = 0, 1


# -- gain --------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def gain_target(gain_db: float, mute: float) -> float:  # RT
    if mute >= 0.5 or gain_db <= GAIN_FLOOR_DB:
        return 0.0
    return float(10.0 ** (gain_db / 20.0))


@njit(cache=True, nogil=True, inline="always")
def ramp_samples(ramp_ms: float, sr: float) -> float:  # RT
    return max(1.0, math.floor(ramp_ms * 1e-3 * sr + 0.5))


@njit(cache=True, nogil=True)
def gain_reset(state: F64, params: F64) -> None:  # RT
    """Jump to the target gain (no ramp)."""
    t = gain_target(params[0], params[1])
    state[0] = t
    state[1] = t
    state[2] = 1.0
    state[3] = 1.0


@njit(cache=True, nogil=True)
def gain_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """``out = inp * gain``, the gain ramping linearly over ``ramp_ms`` after each change."""
    saved = ftz_begin()
    frames, channels = inp.shape
    target = gain_target(params[0], params[1])
    n = max(state[3], 1.0)
    if target != state[1]:
        current = state[0] + (state[1] - state[0]) * min(state[2], n) / n
        n = ramp_samples(params[2], params[3])
        state[0] = current
        state[1] = target
        state[2] = 0.0
        state[3] = n
    pos = state[2]
    if pos >= n:  # steady
        for c in range(channels):
            for i in range(frames):
                out[i, c] = clean(inp[i, c]) * target
    else:
        start = state[0]
        ramp = int(min(n - pos, frames))
        step = (target - start) / n
        for c in range(channels):
            for i in range(ramp):
                out[i, c] = clean(inp[i, c]) * (start + step * (pos + i + 1.0))
            for i in range(ramp, frames):
                out[i, c] = clean(inp[i, c]) * target
        state[2] = pos + ramp
    ftz_end(saved)


class Gain(Effect):
    """Level in dB with a linear ramp (15 ms unless ``ramp_ms`` says otherwise) on every
    change, and a ramped mute. The engine's automation sets ``ramp_ms`` to one block, so an
    automated level is where its lane says at the end of every block."""

    PARAMS = (
        Param("gain_db", "dB", GAIN_FLOOR_DB, 24.0, 0.0, "level; the bottom (-100) is silence"),
        Param("mute", "", 0, 1, 0, "mute (ramps like a level change)", ("off", "on")),
        Param("ramp_ms", "ms", 0.0, 1000.0, GAIN_RAMP_S * 1000.0,
              "time a change of level takes (at least one sample)"),
    )
    EXAMPLE = {"gain_db": -4.5}

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        return np.zeros(4, dtype=np.float64)

    def on_reset(self) -> None:
        gain_reset(self.state, self.kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        gain_kernel(inp, out, self.state, self.kp)


# -- pan ---------------------------------------------------------------------------

PAN_POS, PAN_GL0, PAN_GR0, PAN_GL1, PAN_GR1, PAN_LAW, PAN_COUNTER = range(7)
PAN_STATE = 7


@njit(cache=True, nogil=True, inline="always")
def pan_gains(pan: float, law: int) -> tuple[float, float]:  # RT
    """(left, right) gains for a pan position -1..1 under a pan law."""
    p = min(max(pan, -1.0), 1.0)
    if law == BALANCE:
        if p >= 0.0:
            return math.cos(p * math.pi / 2.0), 1.0
        return 1.0, math.cos(-p * math.pi / 2.0)
    t = (p + 1.0) * math.pi / 4.0
    return math.cos(t), math.sin(t)


@njit(cache=True, nogil=True)
def pan_reset(state: F64, params: F64) -> None:  # RT
    state[PAN_POS] = params[0]
    state[PAN_LAW] = params[1]
    gl, gr = pan_gains(params[0], int(params[1]))
    state[PAN_GL0] = gl
    state[PAN_GR0] = gr
    state[PAN_GL1] = gl
    state[PAN_GR1] = gr
    state[PAN_COUNTER] = 0.0


@njit(cache=True, nogil=True)
def _pan_grid(state: F64, params: F64, k: float) -> None:  # RT
    """At a grid point: smooth the position one step and compute the next segment's gains."""
    target = params[0]
    pos = state[PAN_POS]
    pos = target if abs(target - pos) < 1e-6 else pos + k * (target - pos)
    state[PAN_POS] = pos
    state[PAN_LAW] = params[1]
    state[PAN_GL0] = state[PAN_GL1]
    state[PAN_GR0] = state[PAN_GR1]
    gl, gr = pan_gains(pos, int(params[1]))
    state[PAN_GL1] = gl
    state[PAN_GR1] = gr


@njit(cache=True, nogil=True)
def pan_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Pan channel pairs with ramped gains; an unpaired channel passes unchanged."""
    saved = ftz_begin()
    frames, channels = inp.shape
    pairs = channels // 2
    for c in range(2 * pairs, channels):
        for i in range(frames):
            out[i, c] = clean(inp[i, c])
    counter = int(state[PAN_COUNTER])
    gl1 = state[PAN_GL1]
    gr1 = state[PAN_GR1]
    steady = (
        state[PAN_POS] == params[0] and state[PAN_LAW] == params[1]
        and state[PAN_GL0] == gl1 and state[PAN_GR0] == gr1
    )
    if steady:  # every grid point in this block would give the same gains
        for p in range(pairs):
            left = 2 * p
            for i in range(frames):
                out[i, left] = clean(inp[i, left]) * gl1
                out[i, left + 1] = clean(inp[i, left + 1]) * gr1
        state[PAN_COUNTER] = (counter + frames) % HOP
        ftz_end(saved)
        return
    k = 1.0 - math.exp(-HOP / (SMOOTH_S * params[2]))
    start = 0
    while start < frames:
        if counter == 0:
            _pan_grid(state, params, k)
        run = min(HOP - counter, frames - start)
        gl0 = state[PAN_GL0]
        gr0 = state[PAN_GR0]
        dl = (state[PAN_GL1] - gl0) / HOP
        dr = (state[PAN_GR1] - gr0) / HOP
        for p in range(pairs):
            left = 2 * p
            for j in range(run):
                i = start + j
                step = counter + j + 1.0
                out[i, left] = clean(inp[i, left]) * (gl0 + dl * step)
                out[i, left + 1] = clean(inp[i, left + 1]) * (gr0 + dr * step)
        start += run
        counter = (counter + run) % HOP
    state[PAN_COUNTER] = counter
    ftz_end(saved)


class Pan(Effect):
    """Constant-power (sin/cos) pan, or a balance control for stereo sources."""

    PARAMS = (
        Param("pan", "", -1.0, 1.0, 0.0, "position: -1 left, 0 centre, +1 right"),
        Param("law", "", 0, 1, 0, "constant_power: sin/cos, -3 dB at the centre; "
              "balance: 0 dB at the centre, fades the far side", ("constant_power", "balance")),
    )
    EXAMPLE = {"pan": 0.35}

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        return np.zeros(PAN_STATE, dtype=np.float64)

    def on_reset(self) -> None:
        pan_reset(self.state, self.kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        pan_kernel(inp, out, self.state, self.kp)


# -- width -------------------------------------------------------------------------

W_W0, W_W1, W_A0, W_A1, W_LOGF, W_COEF, W_COUNTER = 0, 1, 2, 3, 4, 5, 10
W_Z = 11


def width_state_size(channels: int) -> int:
    return W_Z + 2 * (channels // 2)


@njit(cache=True, nogil=True)
def width_reset(state: F64, params: F64) -> None:  # RT
    state[:] = 0.0
    state[W_W0] = state[W_W1] = params[0]
    state[W_A0] = state[W_A1] = params[1]
    state[W_LOGF] = math.log2(max(params[2], 1.0))
    rbj(HIGHPASS, params[2], BUTTERWORTH_Q, 0.0, params[3], state, W_COEF)


@njit(cache=True, nogil=True, inline="always")
def _smooth(cur: float, target: float, k: float, eps: float) -> float:  # RT
    return target if abs(target - cur) < eps else cur + k * (target - cur)


@njit(cache=True, nogil=True)
def _width_grid(state: F64, params: F64, k: float) -> None:  # RT
    state[W_W0] = state[W_W1]
    state[W_A0] = state[W_A1]
    state[W_W1] = _smooth(state[W_W1], params[0], k, 1e-6)
    state[W_A1] = _smooth(state[W_A1], params[1], k, 1e-6)
    target_f = math.log2(max(params[2], 1.0))
    if state[W_LOGF] != target_f:
        state[W_LOGF] = _smooth(state[W_LOGF], target_f, k, 1e-6)
        rbj(HIGHPASS, 2.0 ** state[W_LOGF], BUTTERWORTH_Q, 0.0, params[3], state, W_COEF)


@njit(cache=True, nogil=True)
def width_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Mid/side width per channel pair, with an optional mono bass."""
    saved = ftz_begin()
    frames, channels = inp.shape
    pairs = channels // 2
    for c in range(2 * pairs, channels):
        for i in range(frames):
            out[i, c] = clean(inp[i, c])
    k = 1.0 - math.exp(-HOP / (SMOOTH_S * params[3]))
    counter = int(state[W_COUNTER])
    start = 0
    while start < frames:
        if counter == 0:
            _width_grid(state, params, k)
        run = min(HOP - counter, frames - start)
        w0 = state[W_W0]
        a0 = state[W_A0]
        dw = (state[W_W1] - w0) / HOP
        da = (state[W_A1] - a0) / HOP
        b0 = state[W_COEF]
        b1 = state[W_COEF + 1]
        b2 = state[W_COEF + 2]
        a1 = state[W_COEF + 3]
        a2 = state[W_COEF + 4]
        for p in range(pairs):
            left = 2 * p
            z1 = state[W_Z + 2 * p]
            z2 = state[W_Z + 2 * p + 1]
            for j in range(run):
                i = start + j
                step = counter + j + 1.0
                x_l = clean(inp[i, left])
                x_r = clean(inp[i, left + 1])
                mid = 0.5 * (x_l + x_r)
                side = 0.5 * (x_l - x_r)
                high = b0 * side + z1
                z1 = b1 * side - a1 * high + z2
                z2 = b2 * side - a2 * high
                side = (w0 + dw * step) * (side + (a0 + da * step) * (high - side))
                out[i, left] = mid + side
                out[i, left + 1] = mid - side
            state[W_Z + 2 * p] = z1
            state[W_Z + 2 * p + 1] = z2
        start += run
        counter = (counter + run) % HOP
    state[W_COUNTER] = counter
    ftz_end(saved)


class Width(Effect):
    """Stereo width by mid/side: 0 mono, 1 unchanged, 2 wider; optional mono bass."""

    PARAMS = (
        Param("width", "", 0.0, 2.0, 1.0, "side level: 0 mono, 1 unchanged, 2 double"),
        Param("bass_mono", "", 0, 1, 0, "keep the side signal only above bass_hz", ("off", "on")),
        Param("bass_hz", "Hz", 20.0, 500.0, 120.0, "below this the output is mono (bass_mono)"),
    )
    EXAMPLE = {"width": 1.4, "bass_mono": "on", "bass_hz": 150.0}

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        return np.zeros(width_state_size(self.channels), dtype=np.float64)

    def on_reset(self) -> None:
        width_reset(self.state, self.kp)

    def run(self, inp: F32, out: F32) -> None:  # RT
        width_kernel(inp, out, self.state, self.kp)
