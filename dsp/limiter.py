"""Lookahead brick-wall limiter with a true-peak ceiling.

The output's true peak, as ``dsp.truepeak.measure_true_peak`` reads it, stays at or below
``ceiling_db`` dBTP (tests/dsp/test_limiter.py checks it on generated worst cases).

A stage. Each input frame goes into a delay line of ``D`` samples and into the true-peak
interpolator: the meter's own 4x polyphase filter (``dsp.truepeak.COEFS``, the arithmetic
of ``tp_step`` run as a block FIR so it vectorises; bit-identical), which gives the largest
value interpolated from the last ``TAPS`` = 16 samples (or the larger of the two samples
the points lie between), across channels (stereo-linked).
That window's required gain is ``r = min(1, ceiling / peak)``. Then

- a sliding minimum of ``r`` over ``D + 1`` samples (a monotonic deque) holds each
  requirement until every sample of its window has left the delay line;
- an exponential release (``release_ms``) lets the envelope rise back toward 1, never above
  the sliding minimum;
- a moving average over ``L = D - 14`` samples turns steps into linear ramps: the gain is
  down to ``r`` when the first sample of the window leaves the delay line and stays there
  until its last has left.

So each output sample of a window is scaled by at most that window's required gain. Because
the gain still moves within a window (ramps), interpolated peaks can exceed the ceiling by a
little (up to ~0.03 dB with short ramps in adversarial tests); a second stage with a fixed
24-sample lookahead (10-sample ramps, 5 ms release) removes that: what it leaves measured
below 0.0003 dB, and the ceiling is applied with a 0.0043 dB margin (``MARGIN``).

Latency: ``latency_samples`` = round(lookahead_ms * sample_rate), at least ``MIN_LATENCY``
= 40 samples (stage 1 needs 16, stage 2 takes 24). It is fixed at construction and at
``reset()`` (the delay line is preallocated for 10 ms): a latency changing mid-stream would
need the host's delay compensation anyway. Ceiling and release apply from the next block.

The moving average sums integers (reductions in units of 2**-40, rounded up), so it never
drifts: with nothing to limit the gain is exactly 1 and the output is the input, delayed,
bit for bit.

Params layout (float64): ``[ceiling_db, lookahead_ms, release_ms, sample_rate]``.
State layout (float64, ``layout(channels, sample_rate)``): global scalars ``G_*``, a
scratch chunk of output frames (channels x CHUNK), then the two stages; each stage has
scalars ``T_*`` and arrays (see ``stage_size``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from dsp.effect import F32, F64, Effect
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param
from dsp.truepeak import CENTRE, COEFS, TAPS

MAX_LOOKAHEAD_S = 0.010
MIN_DELAY = TAPS  # a stage's ramp is D - (TAPS - 2) >= 2 samples
FIX_DELAY = 24  # the second stage's lookahead (a 10-sample ramp)
MIN_LATENCY = MIN_DELAY + FIX_DELAY
FIX_RELEASE_S = 0.005
QUANT = float(2**40)  # moving-average units per unit of gain reduction
MARGIN = 0.9995  # -0.0043 dB: what stage 2 leaves (measured <= 0.0003 dB) and float32 rounding
CHUNK = 64  # frames per detection pass
HISTORY = TAPS - 1
# the most any interpolated point can exceed the largest sample of its window (a little
# over the taps' absolute sum, for rounding); the samples themselves count as 1
GAIN_BOUND = max(float(np.abs(COEFS).sum(axis=1).max()), 1.0) * (1.0 + 1e-9)

P_CEILING, P_LOOKAHEAD, P_RELEASE, P_SR = range(4)
PARAM_SIZE = 4

# global scalars, then the output frames of a chunk (channels x CHUNK), then the two stages
G_RELEASE_MS, G_ALPHA, G_ALPHA_FIX, G_OUT = range(4)
# a stage's scalars, then its arrays
(T_SIZE, T_DELAY, T_POS, T_TIME, T_ENV, T_SUM, T_HEAD, T_COUNT, T_GAIN, T_ARRAYS) = range(10)


def stage_size(channels: int, size: int) -> int:
    """Floats of one stage: scalars; per channel the interpolator's input (HISTORY + CHUNK);
    the chunk's required gains (CHUNK); per channel a delay line (size); the deque's values
    and times and the moving average (size each)."""
    return T_ARRAYS + channels * (HISTORY + CHUNK) + CHUNK + (channels + 3) * size


def ring_size(sample_rate: float) -> int:
    """Ring length of the first stage: 10 ms of lookahead, less the second stage's."""
    return max(math.ceil(MAX_LOOKAHEAD_S * sample_rate) - FIX_DELAY, MIN_DELAY) + 1


def layout(channels: int, sample_rate: float) -> tuple[int, int, int]:
    """(offset of stage 1, offset of stage 2, total state size)."""
    first = G_OUT + channels * CHUNK
    second = first + stage_size(channels, ring_size(sample_rate))
    return first, second, second + stage_size(channels, FIX_DELAY + 1)


@njit(cache=True, nogil=True)
def _stage_snap(state: F64, at: int, size: int, delay: int) -> None:  # RT
    state[at + T_SIZE] = size
    state[at + T_DELAY] = min(max(delay, MIN_DELAY), size - 1)
    state[at + T_ENV] = 1.0
    state[at + T_GAIN] = 1.0


@njit(cache=True, nogil=True)
def limiter_snap(state: F64, params: F64, first: int, second: int, size: int) -> None:  # RT
    """Clear ``state`` (laid out by ``layout``) and fix the lookahead from ``params``."""
    state[:] = 0.0
    state[G_RELEASE_MS] = -1.0
    total = math.floor(params[P_LOOKAHEAD] * 1e-3 * params[P_SR] + 0.5)
    _stage_snap(state, first, size, total - FIX_DELAY)
    _stage_snap(state, second, FIX_DELAY + 1, FIX_DELAY)


@njit(cache=True, nogil=True)
def _fir_peak(src: F64, peak: F64, n: int, keep: bool) -> None:  # RT
    """``peak[i]`` = the largest |value| the interpolator makes of ``src[i:i+TAPS]`` (or the
    larger of that and ``peak[i]`` if ``keep``)."""
    for i in range(n):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for k in range(TAPS):
            v = src[i + k]
            a0 += COEFS[0, k] * v
            a1 += COEFS[1, k] * v
            a2 += COEFS[2, k] * v
            a3 += COEFS[3, k] * v
        p = max(max(abs(a0), abs(a1)), max(abs(a2), abs(a3)))
        p = max(p, max(abs(src[i + CENTRE]), abs(src[i + CENTRE + 1])))  # tp_step's samples
        if keep:
            p = max(p, peak[i])
        peak[i] = p


@njit(cache=True, nogil=True)
def _detect(state: F64, at: int, channels: int, n: int, ceiling: float) -> None:  # RT
    """Required gain of each of the chunk's interpolation windows (max across channels).

    The same arithmetic as ``tp_step`` (same taps, same order of summation: bit-identical),
    run as a block FIR so that it vectorises across frames.
    """
    span = HISTORY + CHUNK
    need_at = at + T_ARRAYS + channels * span
    need = state[need_at:need_at + CHUNK]
    # No window can interpolate above GAIN_BOUND times its largest sample: when the chunk's
    # largest sample is that far under the ceiling, every window needs 1.0 (what the FIR
    # would give), and the FIR is skipped. Quiet passages cost a max instead of 128 MACs.
    loudest = 0.0
    for c in range(channels):
        b = at + T_ARRAYS + c * span
        for j in range(b, b + n + HISTORY):
            v = abs(state[j])
            loudest = v if v > loudest else loudest
    if loudest * GAIN_BOUND <= ceiling:
        for i in range(n):
            need[i] = 1.0
        return
    for c in range(channels):
        b = at + T_ARRAYS + c * span
        _fir_peak(state[b:b + span], need, n, c > 0)
    for i in range(n):
        p = need[i]
        need[i] = ceiling / p if p > ceiling else 1.0


@njit(cache=True, nogil=True)
def _apply(  # RT
    state: F64, at: int, channels: int, n: int, alpha: float, dst: int, stride: int
) -> None:
    """Run the chunk's frames through the stage's delay line and gain; frame i of channel c
    goes to ``state[dst + c * stride + i]``. Then keep the interpolator's history."""
    size = int(state[at + T_SIZE])
    delay = int(state[at + T_DELAY])
    ramp = delay - (TAPS - 2)
    inv_ramp = 1.0 / (ramp * QUANT)
    span = HISTORY + CHUNK
    src = at + T_ARRAYS
    need = src + channels * span
    lines = need + CHUNK
    vals = lines + channels * size
    times = vals + size
    ma = times + size
    pos = int(state[at + T_POS])
    now = state[at + T_TIME]
    env = state[at + T_ENV]
    total = state[at + T_SUM]
    head = int(state[at + T_HEAD])  # ring index of the deque's front
    count = int(state[at + T_COUNT])  # entries in the deque
    gain = state[at + T_GAIN]
    oldest = now - delay  # sample time of the oldest requirement still in the window
    read = pos - delay
    if read < 0:
        read += size
    drop = pos - ramp
    if drop < 0:
        drop += size
    for i in range(n):
        r = state[need + i]
        # sliding minimum over delay + 1 samples (monotonic deque, no integer division)
        back = head + count - 1
        if back >= size:
            back -= size
        while count > 0 and state[vals + back] >= r:
            count -= 1
            back = back - 1 if back > 0 else size - 1
        back = back + 1 if back + 1 < size else 0
        state[vals + back] = r
        state[times + back] = now
        count += 1
        if state[times + head] < oldest:
            head = head + 1 if head + 1 < size else 0
            count -= 1
        held = state[vals + head]
        # exponential release, never above the held requirement
        env = 1.0 - (1.0 - env) * alpha
        if env > 1.0 - 1e-12:
            env = 1.0
        if held < env:
            env = held
        # moving average over the ramp, in exact integer units
        q = math.ceil((1.0 - env) * QUANT)
        total += q - state[ma + drop]
        state[ma + pos] = q
        gain = 1.0 - total * inv_ramp
        # this frame in, the delayed frame out, scaled
        for c in range(channels):
            line = lines + c * size
            state[line + pos] = state[src + c * span + HISTORY + i]
            state[dst + c * stride + i] = state[line + read] * gain
        pos = pos + 1 if pos + 1 < size else 0
        read = read + 1 if read + 1 < size else 0
        drop = drop + 1 if drop + 1 < size else 0
        now += 1.0
        oldest += 1.0
    state[at + T_POS] = pos
    state[at + T_TIME] = now
    state[at + T_ENV] = env
    state[at + T_SUM] = total
    state[at + T_HEAD] = head
    state[at + T_COUNT] = count
    state[at + T_GAIN] = gain
    for c in range(channels):
        b = src + c * span
        for k in range(HISTORY):
            state[b + k] = state[b + n + k]


@njit(cache=True, nogil=True)
def limiter_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Limit ``inp`` into ``out`` (may be the same array), delayed by the lookahead.

    ``state`` is laid out by ``layout`` and prepared by ``limiter_snap``.
    """
    saved = ftz_begin()
    frames, channels = inp.shape
    span = HISTORY + CHUNK
    first = G_OUT + channels * CHUNK
    size = int(state[first + T_SIZE])
    second = first + T_ARRAYS + channels * span + CHUNK + (channels + 3) * size
    if state[G_RELEASE_MS] != params[P_RELEASE]:
        sr = params[P_SR]
        state[G_RELEASE_MS] = params[P_RELEASE]
        state[G_ALPHA] = math.exp(-1.0 / (max(params[P_RELEASE], 1e-3) * 1e-3 * sr))
        state[G_ALPHA_FIX] = math.exp(-1.0 / (FIX_RELEASE_S * sr))
    alpha = state[G_ALPHA]
    alpha_fix = state[G_ALPHA_FIX]
    ceiling = 10.0 ** (params[P_CEILING] / 20.0) * MARGIN
    start = 0
    while start < frames:
        n = min(CHUNK, frames - start)
        for c in range(channels):
            b = first + T_ARRAYS + c * span + HISTORY
            for i in range(n):
                state[b + i] = clean(inp[start + i, c])
        _detect(state, first, channels, n, ceiling)
        _apply(state, first, channels, n, alpha, second + T_ARRAYS + HISTORY, span)
        _detect(state, second, channels, n, ceiling)
        _apply(state, second, channels, n, alpha_fix, G_OUT, CHUNK)
        for c in range(channels):
            for i in range(n):
                out[start + i, c] = state[G_OUT + c * CHUNK + i]
        start += n
    ftz_end(saved)


class Limiter(Effect):
    """Lookahead brick-wall limiter: the output's true peak stays under ``ceiling_db``."""

    PARAMS = (
        Param("ceiling_db", "dBTP", -12.0, 0.0, -1.0, "highest true peak of the output"),
        Param("lookahead_ms", "ms", 0.5, 10.0, 5.0,
              "delay that lets the gain ramp down before a peak (applies at reset)"),
        Param("release_ms", "ms", 1.0, 1000.0, 100.0, "time constant of the gain's recovery"),
    )
    EXAMPLE = {"ceiling_db": -1.0, "lookahead_ms": 3.0, "release_ms": 60.0}

    def __init__(self, sample_rate: float = 48000.0, channels: int = 2, **kw: Any) -> None:
        self._kp = np.zeros(PARAM_SIZE, dtype=np.float64)
        super().__init__(sample_rate, channels, **kw)

    def make_state(self) -> F64:
        self._first, self._second, total = layout(self.channels, self.sample_rate)
        return np.zeros(total, dtype=np.float64)

    def set(self, **values: Any) -> None:
        super().set(**values)
        self._kp[:P_SR] = self.params
        self._kp[P_SR] = self.sample_rate

    def on_reset(self) -> None:
        limiter_snap(self.state, self._kp, self._first, self._second,
                     ring_size(self.sample_rate))

    def run(self, inp: F32, out: F32) -> None:  # RT
        limiter_kernel(inp, out, self.state, self._kp)

    @property
    def latency_samples(self) -> int:
        """The lookahead in samples (as fixed at the last reset): both stages' delays."""
        return int(self.state[self._first + T_DELAY] + self.state[self._second + T_DELAY])

    @property
    def gain_reduction_db(self) -> float:
        """The current gain reduction in dB, >= 0 (any thread; for meters)."""
        gain = self.state[self._first + T_GAIN] * self.state[self._second + T_GAIN]
        return -20.0 * math.log10(max(float(gain), 1e-12))
