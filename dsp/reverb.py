"""Stereo reverb: an 8-line feedback delay network (FDN) with a Hadamard feedback matrix.

Structure: the input (left and right) goes through a pre-delay, then into eight
delay lines with fixed +-1 gain patterns (a different, orthogonal pattern for
left and right). Each line ends in a loss filter; the eight filtered outputs
are mixed by the normalised 8x8 Hadamard matrix (orthogonal, so lossless: the
decay comes from the loss filters alone) and written back. The wet left and
right outputs are two further orthogonal +-1 combinations of the line outputs,
which makes them decorrelated (the pair was chosen, among all orthogonal sign
patterns, for the lowest worst-case tail correlation over sizes 0..1, 44.1 to
96 kHz, and left, right and centred inputs: |r| < 0.05 in that search).
``width`` scales their side signal (0 mono, 1 full) and ``mix`` blends wet and dry.

Line lengths: eight base times (``BASE_MS``, 29.7..61.9 ms) scaled by
``0.15 + 0.85 * size`` and rounded up to distinct primes, so the lengths are
mutually prime at every size and sample rate. A size change moves every line
length smoothly (a one-pole, ``LENGTH_SMOOTH_S``) with linearly interpolated
reads: no click, a brief pitch bend while the room changes.

Decay: a line of ``m`` samples loses ``-60 dB * m / (sr * decay_s)`` per pass at
low frequencies, so the reverberation time at DC is ``decay_s`` at any size.
``damping`` shortens the high-frequency decay: the loss filter is the one-pole
``c / (1 - b z^-1)`` with its gain at DC set by ``decay_s`` and at Nyquist by
``decay_s * (1 - 0.9 * damping)``.

Smoothing: decay and damping step on an absolute 16-sample grid (a counter in
the state), where the loss filters are recomputed; pre-delay, mix and width
follow per-sample one-poles; so the output does not depend on block size.

Channels: a mono block feeds both inputs and gets the mid of the wet pair; with
more than two channels, even channels belong to the left side and odd ones to
the right (each side's input is their mean).

Params ``[size, decay_s, damping, predelay_ms, width, mix, sr]``.
State: a header (``H_*``), 8 line records ``[cur_len, target_len, b, c, z, -]``,
8 line buffers of ``2 * lb`` samples (each sample written twice, so reads never
wrap), then 2 pre-delay buffers of ``2 * pb``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.effect import F32, F64, Effect, bind_params
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param

LINES = 8
BASE_MS = (29.7, 33.9, 37.3, 41.9, 46.1, 50.9, 55.7, 61.9)
SIZE_MIN = 0.15
MAX_PREDELAY_MS = 200.0
HOP = 16
SMOOTH_S = 0.05
LENGTH_SMOOTH_S = 0.1
NYQUIST_RATIO = 0.9  # damping 1: the decay at Nyquist is 10% of decay_s

P_SIZE, P_DECAY, P_DAMP, P_PREDELAY, P_WIDTH, P_MIX, P_SR = range(7)
(H_W, H_PW, H_PD, H_MIX, H_WIDTH, H_LOGT, H_DAMP, H_SIZE, H_MOVING, H_COUNTER,
 H_LB, H_PB) = range(12)
HEAD = 12
REC = 6
R_CUR, R_TARGET, R_B, R_C, R_Z = range(5)
LINES_AT = HEAD + LINES * REC
SCALE = 1.0 / math.sqrt(8.0)


@njit(cache=True, nogil=True)
def _is_prime(n: int) -> bool:  # RT
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


@njit(cache=True, nogil=True)
def line_lengths(size: float, sr: float, out: F64, at: int, stride: int) -> None:  # RT
    """Write the 8 line lengths (distinct primes, in samples) to ``out[at + i * stride]``."""
    factor = SIZE_MIN + (1.0 - SIZE_MIN) * min(max(size, 0.0), 1.0)
    prev = 1
    for i in range(LINES):
        n = max(int(BASE_MS[i] * factor * sr / 1000.0 + 0.5), prev + 1)
        while not _is_prime(n):
            n += 1
        out[at + i * stride] = n
        prev = n


def capacities(sr: float) -> tuple[int, int]:
    """(line buffer length, pre-delay buffer length) at this sample rate."""
    lengths = np.zeros(LINES, dtype=np.float64)
    line_lengths(1.0, sr, lengths, 0, 1)
    return int(lengths.max()) + 4, math.ceil(MAX_PREDELAY_MS * sr / 1000.0) + 4


def state_size(sr: float) -> int:
    lb, pb = capacities(sr)
    return LINES_AT + LINES * 2 * lb + 2 * 2 * pb


@njit(cache=True, nogil=True)
def _loss_filters(state: F64, sr: float) -> None:  # RT
    t0 = math.exp(state[H_LOGT])
    tpi = t0 * (1.0 - NYQUIST_RATIO * state[H_DAMP])
    for i in range(LINES):
        rec = HEAD + i * REC
        m = state[rec + R_CUR]
        g0 = 10.0 ** (-3.0 * m / (sr * t0))
        gpi = 10.0 ** (-3.0 * m / (sr * tpi))
        b = (g0 - gpi) / (g0 + gpi)
        state[rec + R_B] = b
        state[rec + R_C] = g0 * (1.0 - b)


@njit(cache=True, nogil=True)
def reverb_reset(state: F64, params: F64, lb: int, pb: int) -> None:  # RT
    """Silence the network and jump every smoothed value to its target."""
    state[:] = 0.0
    state[H_LB] = lb
    state[H_PB] = pb
    sr = params[P_SR]
    line_lengths(params[P_SIZE], sr, state, HEAD + R_TARGET, REC)
    for i in range(LINES):
        state[HEAD + i * REC + R_CUR] = state[HEAD + i * REC + R_TARGET]
    state[H_SIZE] = params[P_SIZE]
    state[H_PD] = params[P_PREDELAY] * sr / 1000.0
    state[H_MIX] = params[P_MIX]
    state[H_WIDTH] = params[P_WIDTH]
    state[H_LOGT] = math.log(params[P_DECAY])
    state[H_DAMP] = params[P_DAMP]
    _loss_filters(state, sr)


@njit(cache=True, nogil=True)
def _grid(state: F64, params: F64, k: float) -> None:  # RT
    """At a grid point: retarget sizes, smooth decay and damping, refresh the loss filters."""
    sr = params[P_SR]
    if state[H_SIZE] != params[P_SIZE]:
        state[H_SIZE] = params[P_SIZE]
        line_lengths(params[P_SIZE], sr, state, HEAD + R_TARGET, REC)
    moving = False
    for i in range(LINES):
        rec = HEAD + i * REC
        if state[rec + R_CUR] != state[rec + R_TARGET]:
            moving = True
    changed = moving or state[H_MOVING] != 0.0
    state[H_MOVING] = 1.0 if moving else 0.0
    target = math.log(max(params[P_DECAY], 1e-3))
    cur = state[H_LOGT]
    if cur != target:
        state[H_LOGT] = target if abs(target - cur) < 1e-6 else cur + k * (target - cur)
        changed = True
    cur = state[H_DAMP]
    if cur != params[P_DAMP]:
        target = params[P_DAMP]
        state[H_DAMP] = target if abs(target - cur) < 1e-6 else cur + k * (target - cur)
        changed = True
    if changed:
        _loss_filters(state, sr)


@njit(cache=True, nogil=True, inline="always")
def _tap(state: F64, rec: int, buf: int, w: int, lb: int) -> float:  # RT
    """The loss-filtered output of one line (linear interpolation at its current length)."""
    d = state[rec + R_CUR]
    ip = int(d)
    j = buf + w + lb - ip
    a = state[j]
    o = a + (d - ip) * (state[j - 1] - a)
    z: float = state[rec + R_C] * o + state[rec + R_B] * state[rec + R_Z]
    state[rec + R_Z] = z
    return z


@njit(cache=True, nogil=True, inline="always")
def _put(state: F64, buf: int, w: int, lb: int, v: float) -> None:  # RT
    state[buf + w] = v
    state[buf + w + lb] = v


@njit(cache=True, nogil=True)
def reverb_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Run the reverb over one block; ``inp`` and ``out`` may be the same array."""
    saved = ftz_begin()
    frames, channels = inp.shape
    sr = params[P_SR]
    lb = int(state[H_LB])
    pb = int(state[H_PB])
    k_grid = 1.0 - math.exp(-HOP / (SMOOTH_S * sr))
    k = 1.0 - math.exp(-1.0 / (SMOOTH_S * sr))
    k_len = 1.0 - math.exp(-1.0 / (LENGTH_SMOOTH_S * sr))
    pd_t = min(max(params[P_PREDELAY] * sr / 1000.0, 0.0), pb - 2.0)
    mix_t = params[P_MIX]
    width_t = params[P_WIDTH]
    b0 = LINES_AT
    b1 = b0 + 2 * lb
    b2 = b1 + 2 * lb
    b3 = b2 + 2 * lb
    b4 = b3 + 2 * lb
    b5 = b4 + 2 * lb
    b6 = b5 + 2 * lb
    b7 = b6 + 2 * lb
    pl = b7 + 2 * lb
    pr = pl + 2 * pb
    r0 = HEAD
    r1 = r0 + REC
    r2 = r1 + REC
    r3 = r2 + REC
    r4 = r3 + REC
    r5 = r4 + REC
    r6 = r5 + REC
    r7 = r6 + REC
    w = int(state[H_W])
    pw = int(state[H_PW])
    pd = state[H_PD]
    mix = state[H_MIX]
    width = state[H_WIDTH]
    counter = int(state[H_COUNTER])
    left_count = (channels + 1) // 2
    right_count = channels // 2
    for i in range(frames):
        if counter == 0:
            _grid(state, params, k_grid)
        counter += 1
        if counter == HOP:
            counter = 0
        if state[H_MOVING] != 0.0:
            for li in range(LINES):
                rec = HEAD + li * REC
                cur = state[rec + R_CUR]
                diff = state[rec + R_TARGET] - cur
                if abs(diff) < 1e-3:
                    state[rec + R_CUR] = state[rec + R_TARGET]
                else:
                    state[rec + R_CUR] = cur + k_len * diff
        # inputs: mean of even channels (left) and odd channels (right); mono feeds both
        x_l = 0.0
        x_r = 0.0
        for c in range(channels):
            if c % 2 == 0:
                x_l += clean(inp[i, c])
            else:
                x_r += clean(inp[i, c])
        x_l /= left_count
        x_r = x_r / right_count if right_count > 0 else x_l
        # pre-delay
        pd += k * (pd_t - pd)
        _put(state, pl, pw, pb, x_l)
        _put(state, pr, pw, pb, x_r)
        ip = int(pd)
        fr = pd - ip
        j = pw + pb - ip
        a = state[pl + j]
        in_l = a + fr * (state[pl + j - 1] - a)
        a = state[pr + j]
        in_r = a + fr * (state[pr + j - 1] - a)
        pw += 1
        if pw == pb:
            pw = 0
        # the network
        s0 = _tap(state, r0, b0, w, lb)
        s1 = _tap(state, r1, b1, w, lb)
        s2 = _tap(state, r2, b2, w, lb)
        s3 = _tap(state, r3, b3, w, lb)
        s4 = _tap(state, r4, b4, w, lb)
        s5 = _tap(state, r5, b5, w, lb)
        s6 = _tap(state, r6, b6, w, lb)
        s7 = _tap(state, r7, b7, w, lb)
        wet_l = SCALE * (s0 - s1 + s2 - s3 + s4 - s5 + s6 - s7)
        wet_r = SCALE * (s0 + s1 + s2 - s3 - s4 + s5 + s6 + s7)
        a0 = s0 + s1
        a1 = s0 - s1
        a2 = s2 + s3
        a3 = s2 - s3
        a4 = s4 + s5
        a5 = s4 - s5
        a6 = s6 + s7
        a7 = s6 - s7
        c0 = a0 + a2
        c2 = a0 - a2
        c1 = a1 + a3
        c3 = a1 - a3
        c4 = a4 + a6
        c6 = a4 - a6
        c5 = a5 + a7
        c7 = a5 - a7
        u = SCALE * in_l
        v = SCALE * in_r
        _put(state, b0, w, lb, SCALE * (c0 + c4) + u + v)
        _put(state, b1, w, lb, SCALE * (c1 + c5) + u - v)
        _put(state, b2, w, lb, SCALE * (c2 + c6) - u + v)
        _put(state, b3, w, lb, SCALE * (c3 + c7) + u + v)
        _put(state, b4, w, lb, SCALE * (c0 - c4) - u + v)
        _put(state, b5, w, lb, SCALE * (c1 - c5) + u + v)
        _put(state, b6, w, lb, SCALE * (c2 - c6) + u - v)
        _put(state, b7, w, lb, SCALE * (c3 - c7) - u - v)
        w += 1
        if w == lb:
            w = 0
        # output
        mix += k * (mix_t - mix)
        width += k * (width_t - width)
        mid = 0.5 * (wet_l + wet_r)
        side = 0.5 * width * (wet_l - wet_r)
        if channels == 1:
            x = clean(inp[i, 0])
            out[i, 0] = x + mix * (mid - x)
        else:
            for c in range(channels):
                x = clean(inp[i, c])
                wet = mid + side if c % 2 == 0 else mid - side
                out[i, c] = x + mix * (wet - x)
    state[H_W] = w
    state[H_PW] = pw
    state[H_PD] = pd
    state[H_MIX] = mix
    state[H_WIDTH] = width
    state[H_COUNTER] = counter
    ftz_end(saved)


class Reverb(Effect):
    """An 8-line FDN hall/room: size, decay (RT60), damping, pre-delay, width, mix."""

    PARAMS = (
        Param("size", "", 0.0, 1.0, 0.5, "room size: scales the delay lines (15%..100%)"),
        Param("decay_s", "s", 0.1, 20.0, 2.0, "reverberation time RT60 at low frequencies"),
        Param("damping", "", 0.0, 1.0, 0.4,
              "high-frequency loss: RT60 at Nyquist is decay_s * (1 - 0.9 * damping)"),
        Param("predelay_ms", "ms", 0.0, MAX_PREDELAY_MS, 10.0, "delay before the reverb starts"),
        Param("width", "", 0.0, 1.0, 1.0, "stereo width of the reverb: 0 mono, 1 full"),
        Param("mix", "", 0.0, 1.0, 0.25, "dry/wet: 0 dry only, 1 reverb only"),
    )
    EXAMPLE = {"size": 0.7, "decay_s": 2.5, "damping": 0.5, "predelay_ms": 20.0, "mix": 0.3}

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        self._lb, self._pb = capacities(self.sample_rate)
        return np.zeros(state_size(self.sample_rate), dtype=np.float64)

    def on_reset(self) -> None:
        reverb_reset(self.state, self.kp, self._lb, self._pb)

    def run(self, inp: F32, out: F32) -> None:  # RT
        reverb_kernel(inp, out, self.state, self.kp)
