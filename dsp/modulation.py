"""Chorus and flanger: one modulated fractional delay per channel.

Each channel reads its delay line at ``D = delay + depth * (1 + sin(2 pi phase)) / 2``
(in ms: the read position sweeps from ``delay_ms`` to ``delay_ms + depth_ms``),
interpolating between samples with a 4-point cubic Hermite (Catmull-Rom)
polynomial. The line receives ``x + feedback * tap``; the output is
``x + mix * (tap - x)``, so ``mix`` 0.5 with no feedback is the classic comb
``(x[n] + x[n - D]) / 2`` with notches at odd multiples of ``1 / (2 D)``.

The LFO phase (in cycles) lives in the state and advances by ``rate / sr`` per
sample. The sine is evaluated only on an absolute 16-sample grid (a counter in
the state); between grid points the delay moves linearly (at most rate 10 Hz:
the piecewise-linear sine is within 6e-5 of the true one, relative to depth).
Channel ``c`` runs at phase ``phase + c * phase_deg / 360``: 90 degrees gives
the classic stereo chorus. Delay, depth and the stereo offset are smoothed at
the grid points (one-pole, ``SMOOTH_S``), feedback and mix per sample, so the
output does not depend on how the stream is cut into blocks.

Params (both effects) ``[rate_hz, depth_ms, delay_ms, feedback, mix, phase_deg, sr]``.
State: ``[write, counter, phase, offset, delay, depth, feedback, mix]`` (delays
in samples), per channel ``[D, dD]`` (current read delay and its per-sample step),
then per channel a line of ``2 L`` samples, each sample written twice so a read
never wraps.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.effect import F32, F64, Effect, bind_params
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param

HOP = 16
SMOOTH_S = 0.02
SNAP = 1e-9  # a smoothed value this close to its target jumps to it
MIN_DELAY = 2.0  # samples: the 4-point read needs x[n - D + 1] to be written already

P_RATE, P_DEPTH, P_DELAY, P_FB, P_MIX, P_PHASE, P_SR = range(7)
S_W, S_COUNTER, S_PHASE, S_OFFSET, S_DELAY, S_DEPTH, S_FB, S_MIX = range(8)
HEAD = 8


def line_length(max_ms: float, sr: float) -> int:
    return math.ceil(max_ms * sr / 1000.0) + 8


def state_size(channels: int, sr: float, max_ms: float) -> int:
    return HEAD + 2 * channels + channels * 2 * line_length(max_ms, sr)


@njit(cache=True, nogil=True, inline="always")
def _line_len(state: F64, channels: int) -> int:  # RT
    return int((state.shape[0] - HEAD - 2 * channels) // (2 * channels))


@njit(cache=True, nogil=True, inline="always")
def _read_delay(delay: float, depth: float, phase: float, line: int) -> float:  # RT
    d = delay + depth * 0.5 * (1.0 + math.sin(2.0 * math.pi * phase))
    return min(max(d, MIN_DELAY), line - 3.0)


@njit(cache=True, nogil=True)
def modulated_delay_reset(state: F64, params: F64, channels: int) -> None:  # RT
    state[:] = 0.0
    sr = params[P_SR]
    state[S_OFFSET] = params[P_PHASE] / 360.0
    state[S_DELAY] = params[P_DELAY] * sr / 1000.0
    state[S_DEPTH] = params[P_DEPTH] * sr / 1000.0
    state[S_FB] = params[P_FB]
    state[S_MIX] = params[P_MIX]
    line = _line_len(state, channels)
    for c in range(channels):
        phase = c * state[S_OFFSET]
        state[HEAD + 2 * c] = _read_delay(state[S_DELAY], state[S_DEPTH], phase, line)


@njit(cache=True, nogil=True, inline="always")
def _toward(cur: float, target: float, k: float) -> float:  # RT
    return target if abs(target - cur) < 1e-9 else cur + k * (target - cur)


@njit(cache=True, nogil=True)
def modulated_delay_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Chorus/flanger over one block; ``inp`` and ``out`` may be the same array."""
    saved = ftz_begin()
    frames, channels = inp.shape
    sr = params[P_SR]
    line = _line_len(state, channels)
    k = 1.0 - math.exp(-1.0 / (SMOOTH_S * sr))
    k_grid = 1.0 - math.exp(-HOP / (SMOOTH_S * sr))
    step = HOP * params[P_RATE] / sr
    offset_t = params[P_PHASE] / 360.0
    delay_t = params[P_DELAY] * sr / 1000.0
    depth_t = params[P_DEPTH] * sr / 1000.0
    fb_t = params[P_FB]
    mix_t = params[P_MIX]
    w0 = int(state[S_W])
    counter0 = int(state[S_COUNTER])
    phase0 = state[S_PHASE]
    offset0 = state[S_OFFSET]
    delay0 = state[S_DELAY]
    depth0 = state[S_DEPTH]
    fb0 = state[S_FB]
    mix0 = state[S_MIX]
    w, counter, phase, offset, delay, depth, fb, mix = (
        w0, counter0, phase0, offset0, delay0, depth0, fb0, mix0
    )
    for c in range(channels):
        # every channel replays the shared LFO and ramps from the saved values
        w, counter, phase, offset, delay, depth, fb, mix = (
            w0, counter0, phase0, offset0, delay0, depth0, fb0, mix0
        )
        rec = HEAD + 2 * c
        buf = HEAD + 2 * channels + c * 2 * line
        d = state[rec]
        dd = state[rec + 1]
        moving = fb != fb_t or mix != mix_t
        for i in range(frames):
            if counter == 0:
                phase += step
                phase -= math.floor(phase)
                offset = _toward(offset, offset_t, k_grid)
                delay = _toward(delay, delay_t, k_grid)
                depth = _toward(depth, depth_t, k_grid)
                dd = (_read_delay(delay, depth, phase + c * offset, line) - d) / HOP
            counter += 1
            if counter == HOP:
                counter = 0
            d += dd
            if moving:
                fb += k * (fb_t - fb)
                mix += k * (mix_t - mix)
                if abs(fb_t - fb) < SNAP and abs(mix_t - mix) < SNAP:
                    fb, mix, moving = fb_t, mix_t, False
            ip = int(d)
            f = d - ip
            j = buf + w + line - ip
            ym1 = state[j + 1]
            y0 = state[j]
            y1 = state[j - 1]
            y2 = state[j - 2]
            c1 = 0.5 * (y1 - ym1)
            c2 = ym1 - 2.5 * y0 + 2.0 * y1 - 0.5 * y2
            c3 = 0.5 * (y2 - ym1) + 1.5 * (y0 - y1)
            tap = ((c3 * f + c2) * f + c1) * f + y0
            x = clean(inp[i, c])
            v = x + fb * tap
            state[buf + w] = v
            state[buf + w + line] = v
            out[i, c] = x + mix * (tap - x)
            w += 1
            if w == line:
                w = 0
        state[rec] = d
        state[rec + 1] = dd
    state[S_W] = w
    state[S_COUNTER] = counter
    state[S_PHASE] = phase
    state[S_OFFSET] = offset
    state[S_DELAY] = delay
    state[S_DEPTH] = depth
    state[S_FB] = fb
    state[S_MIX] = mix
    ftz_end(saved)


class _ModulatedDelay(Effect):
    MAX_MS = 40.0

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        return np.zeros(state_size(self.channels, self.sample_rate, self.MAX_MS))

    def on_reset(self) -> None:
        modulated_delay_reset(self.state, self.kp, self.channels)

    def run(self, inp: F32, out: F32) -> None:  # RT
        modulated_delay_kernel(inp, out, self.state, self.kp)


class Chorus(_ModulatedDelay):
    """Stereo chorus: a slowly swept 5..40 ms delay mixed with the dry signal."""

    MAX_MS = 40.0 + 1.0
    PARAMS = (
        Param("rate_hz", "Hz", 0.01, 5.0, 0.8, "LFO rate"),
        Param("depth_ms", "ms", 0.0, 10.0, 3.0, "sweep range above delay_ms"),
        Param("delay_ms", "ms", 5.0, 30.0, 12.0, "shortest delay of the sweep"),
        Param("feedback", "", -0.5, 0.5, 0.0, "delayed signal fed back into the line"),
        Param("mix", "", 0.0, 1.0, 0.5, "dry/wet: 0 dry only, 1 delayed only"),
        Param("phase_deg", "deg", 0.0, 180.0, 90.0, "LFO phase offset between channels"),
    )
    EXAMPLE = {"rate_hz": 1.3, "depth_ms": 4.0, "delay_ms": 10.0, "feedback": 0.15}


class Flanger(_ModulatedDelay):
    """Flanger: a swept 0.1..15 ms delay with feedback, combed against the dry signal."""

    MAX_MS = 15.0 + 1.0
    PARAMS = (
        Param("rate_hz", "Hz", 0.01, 10.0, 0.25, "LFO rate"),
        Param("depth_ms", "ms", 0.0, 5.0, 2.0, "sweep range above delay_ms"),
        Param("delay_ms", "ms", 0.1, 10.0, 0.5, "shortest delay of the sweep"),
        Param("feedback", "", -0.95, 0.95, 0.5, "resonance: delayed signal fed back (sign "
              "picks which comb)"),
        Param("mix", "", 0.0, 1.0, 0.5, "dry/wet: 0.5 gives the deepest notches"),
        Param("phase_deg", "deg", 0.0, 180.0, 0.0, "LFO phase offset between channels"),
    )
    EXAMPLE = {"rate_hz": 0.6, "depth_ms": 3.0, "delay_ms": 0.8, "feedback": -0.7,
               "phase_deg": 60.0}
