"""A bank of channel strips rendered by one jitted call per block (the W64 workload).

``StripBank(tracks, sample_rate)`` runs N stereo tracks, each

    ParametricEQ4 -> Compressor -> Delay -> Gain -> Pan

sums them into a stereo bus (``Summer``'s ramped headroom gain) and puts the master
``Limiter`` (lookahead, true-peak ceiling) on the bus. ``process(inputs)`` takes float32
(tracks, frames, 2) and returns a view of a preallocated (frames, 2) buffer.

Same sound as the effects. Every stage does the arithmetic of the effect it stands for, in the
same order and with the same float32 rounding between stages, and ramps its parameters on the
same grid: the EQ coefficients and the pan gains step on the absolute 16-sample grid, the
delay's feedback, mix and filters move per sample and its time changes crossfade over 30 ms,
the gain ramps linearly over 15 ms, and the compressor's gain law runs on the compressor's
own hop grid (``_gain_computer`` is dsp.compressor's ``_compress`` line by line: hops of 16,
shorter for short releases, ended early by a louder frame; per-sample gains for fast
attacks). The one deliberate difference: the delay lines hold float32 (the Delay effect
holds float64), which keeps 64 tracks x 4 s of line at 98 MB instead of 197 MB; echoes differ
from the Delay effect's by float32 rounding. With the delays dry the bank's output is bit for
bit the chain's; with them, within 2e-7 (tests/dsp/test_strip.py). The output does not depend
on the block size (bit for bit).

Speed. The tracks lie along the SIMD axis: work buffers are (frames, 2, tracks) and per-track
filter state is (..., tracks), both contiguous along the tracks, so the innermost loops run
over tracks and LLVM vectorises them across tracks (the biquads and the delay's filters are
recursive in time, so they cannot vectorise along it). A block is cut into chunks of
``CHUNK`` frames that pass through the stages one after the other. Parameter logic (EQ
coefficients, pan laws) runs per track, scalar, at grid points and only while a parameter
moves. The compressors' gain computers run per track, scalar (the hop boundaries differ from
track to track, since a louder frame ends a hop early): each writes one output factor per
frame, and the delay's vectorised loop applies them on its way in. The delay lines are
(tracks, line, 2), so each track reads and writes one contiguous stream; a run of frames
copies each track's reads out of its line before the vectorised loop and its writes back
after it (runs are no longer than the shortest echo time, so a run never reads its own
writes). A track whose delay is moving (time crossfade, smoothing) takes an exact scalar path
for that block. The sum over tracks runs in track order per frame, as the Summer adds them.
Denormals are flushed for the whole call (``ftz_begin``/``ftz_end``).

Arrays. ``strip_kernel(inp, out, state, params, work)``: ``inp`` float32 (tracks, frames, 2)
and ``out`` float32 (frames, 2), both C-contiguous; ``state`` and ``params`` float64 and
``work`` float32, laid out by ``_views`` (sections in this order):

* state: master scalars ``M_*``; EQ smoothed values (4 bands, 4, tracks) ``[type, log2 f,
  q, gain_db]``, coefficients (4, 5, tracks) ``[b0 b1 b2 a1 a2]``, filter memory (4, 2, 2,
  tracks) and per-call enable flags (4, tracks); compressor states (tracks, STATE_SIZE) in
  ``dsp.compressor``'s layout; delay lanes (``D_ROWS``, tracks); gain lanes (``G_ROWS``,
  tracks); pan lanes (``PN_ROWS``, tracks); a scratch of 8; the compressors' output factors
  (CHUNK, tracks); the limiter state (``dsp.limiter.layout``).
* params: per track, each stage's ``PARAMS`` values followed by the sample rate (the layout
  of that effect's kernel params): EQ (tracks, 21), compressor (tracks, 10), delay
  (tracks, 9), gain (tracks, 3), pan (tracks, 3); then the bus ``[headroom_db, sr]`` and the
  limiter ``[ceiling_db, lookahead_ms, release_ms, sr]``.
* work: two (CHUNK, 2, tracks) buffers (the signal; the delay's reads and writes), the bus
  (CHUNK, 2), then the delay lines (tracks, line, 2).

Threads: ``process`` and ``reset`` on the audio thread (one at a time); ``set`` from any
thread (it writes float64 numbers into ``params``, which the kernel reads once per call).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.biquad import BAND_PARAMS, ParametricEQ4, rbj
from dsp.biquad import HOP as EQ_HOP
from dsp.biquad import SMOOTH_S as COMP_SMOOTH_S  # dsp.compressor's ramps use biquad's
from dsp.biquad import SMOOTH_S as EQ_SMOOTH_S
from dsp.compressor import (
    ABS_MASK,
    DB_PER_OCTAVE,
    EXACT_ATTACK,
    F32_INF_BITS,
    LIMIT_BITS,
    LIMIT_SQUARED,
    LN10_20,
    P_ATTACK,
    P_DETECTOR,
    P_KNEE,
    P_MAKEUP,
    P_RATIO,
    P_SR,
    P_THRESHOLD,
    RING,
    S_ALPHA_A,
    S_ALPHA_A1,
    S_ALPHA_R,
    S_ALPHA_R1,
    S_COUNTER,
    S_EXACT,
    S_F0,
    S_F1,
    S_GAIN,
    S_GAIN_DB,
    S_HOLD,
    S_HOP_LEN,
    S_HOP_PEAK,
    S_HOP_POWER,
    S_HOP_WANT,
    S_K_RMS,
    S_KNEE,
    S_LAST_LEVEL,
    S_LEVEL_DB,
    S_LIN_LO,
    S_MAKEUP,
    S_PEAKS,
    S_POWER,
    S_RED,
    S_RED_START,
    S_SLOPE,
    S_TARGET,
    S_THR,
    S_TRIGGER,
    TRIGGER_STEP,
    Compressor,
    _coefficients,
    _exact_gain,
    _ramp,
    _reduction_db,
    _slope,
    compressor_snap,
    hold_max,
)
from dsp.compressor import P_MIX as C_MIX
from dsp.compressor import PARAM_SIZE as COMP_PARAMS
from dsp.compressor import S_MIX as CS_MIX
from dsp.compressor import STATE_SIZE as COMP_STATE
from dsp.delay import (
    FADE_S,
    MAX_TIME_MS,
    P_FB,
    P_HIGHCUT,
    P_LOWCUT,
    P_MIX,
    P_PINGPONG,
    Delay,
    _coef_hp,
    _coef_lp,
    _smooth4,
    _target_tap,
    line_length,
)
from dsp.delay import (
    SMOOTH_S as DELAY_SMOOTH_S,
)
from dsp.effect import F32, F64, SAMPLE_RATES
from dsp.fastmath import bits_f32, f32_bits, fast_exp2, fast_log2
from dsp.fpu import SAMPLE_LIMIT, clean, ftz_begin, ftz_end
from dsp.limiter import T_DELAY as LIMITER_T_DELAY
from dsp.limiter import Limiter, layout, limiter_kernel, limiter_snap, ring_size
from dsp.mix import SUM_SMOOTH_S, Summer
from dsp.params import Param, ParamError, find
from dsp.stereo import GAIN_RAMP_S, Gain, Pan, gain_target, pan_gains
from dsp.stereo import HOP as PAN_HOP
from dsp.stereo import SMOOTH_S as PAN_SMOOTH_S

BANDS = 4
CHUNK = 64  # frames per pass through the stages
HOP = 16  # the absolute grid of the EQ and the pan
assert EQ_HOP == HOP and PAN_HOP == HOP  # one shared counter serves both grids

# master scalars
M_COUNTER, M_WRITE, M_SUM_GAIN, M_EQ_MOVING, M_EQ_MODE = 0, 1, 2, 3, 4  # M_EQ_MODE..+4
M_SIZE = 8
# delay lanes: smoothed values and filter memory, cached coefficients, per-call values
(D_TAP, D_NXT, D_FADE, D_FB, D_MIX, D_ALP, D_AHP, D_LPL, D_HPL, D_LPR, D_HPR, D_K, D_LP_HZ,
 D_LP_A, D_HP_HZ, D_HP_A, D_TARGET, D_PP, D_STEADY, D_MOVING, D_ALPC, D_AHPC) = range(22)
D_ROWS = 22
# gain lanes: ramp start, target, position and length (as dsp.stereo.gain_kernel), step
G_START, G_TARGET, G_POS, G_N, G_STEP = range(5)
G_ROWS = 5
# pan lanes: as dsp.stereo.pan_kernel, then per-call and per-segment values
PN_POS, PN_GL0, PN_GR0, PN_GL1, PN_GR1, PN_LAW, PN_MOVING, PN_DL, PN_DR = range(9)
PN_ROWS = 9
SCRATCH = 8
# master params
MP_HEADROOM, MP_SR = 0, 1
MP_SIZE = 2
LP_SIZE = 4

EQ_P = len(ParametricEQ4.PARAMS) + 1
DELAY_P = len(Delay.PARAMS) + 1
GAIN_P = len(Gain.PARAMS) + 1
PAN_P = len(Pan.PARAMS) + 1
assert len(Compressor.PARAMS) + 1 == COMP_PARAMS

STAGES: dict[str, tuple[Param, ...]] = {
    "eq": ParametricEQ4.PARAMS,
    "compressor": Compressor.PARAMS,
    "delay": Delay.PARAMS,
    "gain": Gain.PARAMS,
    "pan": Pan.PARAMS,
}
MASTER: dict[str, tuple[Param, ...]] = {"bus": Summer.PARAMS, "limiter": Limiter.PARAMS}


def state_size(tracks: int, sample_rate: float) -> int:
    per_track = BANDS * (4 + 5 + 4 + 1) + COMP_STATE + D_ROWS + G_ROWS + PN_ROWS + CHUNK
    return M_SIZE + tracks * per_track + SCRATCH + layout(2, sample_rate)[2]


def params_size(tracks: int) -> int:
    return tracks * (EQ_P + COMP_PARAMS + DELAY_P + GAIN_P + PAN_P) + MP_SIZE + LP_SIZE


def work_size(tracks: int, line: int) -> int:
    return 2 * CHUNK * 2 * tracks + CHUNK * 2 + tracks * line * 2


@njit(cache=True, nogil=True)
def _views(state: F64, params: F64, work: F32, tracks: int) -> Any:  # RT
    """The sections of the three arrays (views, no copies), in the documented order."""
    t = tracks
    at = 0
    m = state[at:at + M_SIZE]
    at += M_SIZE
    eqs = state[at:at + BANDS * 4 * t].reshape((BANDS, 4, t))
    at += BANDS * 4 * t
    eqc = state[at:at + BANDS * 5 * t].reshape((BANDS, 5, t))
    at += BANDS * 5 * t
    eqz = state[at:at + BANDS * 4 * t].reshape((BANDS, 2, 2, t))
    at += BANDS * 4 * t
    eqon = state[at:at + BANDS * t].reshape((BANDS, t))
    at += BANDS * t
    cs = state[at:at + t * COMP_STATE].reshape((t, COMP_STATE))
    at += t * COMP_STATE
    ds = state[at:at + D_ROWS * t].reshape((D_ROWS, t))
    at += D_ROWS * t
    gs = state[at:at + G_ROWS * t].reshape((G_ROWS, t))
    at += G_ROWS * t
    ps = state[at:at + PN_ROWS * t].reshape((PN_ROWS, t))
    at += PN_ROWS * t
    tmp = state[at:at + SCRATCH]
    at += SCRATCH
    cg = state[at:at + CHUNK * t].reshape((CHUNK, t))
    at += CHUNK * t
    ls = state[at:]
    at = 0
    eqp = params[at:at + t * EQ_P].reshape((t, EQ_P))
    at += t * EQ_P
    cp = params[at:at + t * COMP_PARAMS].reshape((t, COMP_PARAMS))
    at += t * COMP_PARAMS
    dp = params[at:at + t * DELAY_P].reshape((t, DELAY_P))
    at += t * DELAY_P
    gp = params[at:at + t * GAIN_P].reshape((t, GAIN_P))
    at += t * GAIN_P
    pp = params[at:at + t * PAN_P].reshape((t, PAN_P))
    at += t * PAN_P
    mp = params[at:at + MP_SIZE]
    at += MP_SIZE
    lp = params[at:at + LP_SIZE]
    at = 0
    x = work[at:at + CHUNK * 2 * t].reshape((CHUNK, 2, t))
    at += CHUNK * 2 * t
    dbuf = work[at:at + CHUNK * 2 * t].reshape((CHUNK, 2, t))
    at += CHUNK * 2 * t
    bus = work[at:at + CHUNK * 2].reshape((CHUNK, 2))
    at += CHUNK * 2
    line = (work.shape[0] - at) // (2 * t)
    lines = work[at:at + t * line * 2].reshape((t, line, 2))
    return (m, eqs, eqc, eqz, eqon, cs, ds, gs, ps, tmp, cg, ls,
            eqp, cp, dp, gp, pp, mp, lp, x, dbuf, bus, lines)


# -- reset --------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def strip_reset(  # RT
    state: F64, params: F64, work: F32, tracks: int, first: int, second: int, ring: int
) -> None:
    """Clear every state; smoothed values jump to their targets (each effect's reset)."""
    (m, eqs, eqc, _, _, cs, ds, gs, ps, tmp, _, ls,
     eqp, cp, dp, gp, pp, mp, lp, _, _, _, lines) = _views(state, params, work, tracks)
    state[:] = 0.0
    work[:] = 0.0  # writes every page of the delay lines now, not on the audio thread later
    sr = mp[MP_SR]
    line = lines.shape[1]
    for t in range(tracks):
        for b in range(BANDS):  # biquad_cascade_snap
            p = b * BAND_PARAMS
            eqs[b, 0, t] = eqp[t, p]
            eqs[b, 1, t] = math.log2(max(eqp[t, p + 1], 1.0))
            eqs[b, 2, t] = eqp[t, p + 2]
            eqs[b, 3, t] = eqp[t, p + 3]
            rbj(int(eqs[b, 0, t]), 2.0 ** eqs[b, 1, t], eqs[b, 2, t], eqs[b, 3, t], sr, tmp, 0)
            for j in range(5):
                eqc[b, j, t] = tmp[j]
        compressor_snap(cs[t], cp[t])
        d = dp[t]  # delay_reset
        tap = _target_tap(d, line)
        ds[D_TAP, t] = tap
        ds[D_NXT, t] = tap
        ds[D_FB, t] = d[P_FB]
        ds[D_MIX, t] = d[P_MIX]
        ds[D_ALP, t] = _coef_lp(d)
        ds[D_AHP, t] = _coef_hp(d)
        ds[D_K, t] = 1.0 - math.exp(-1.0 / (DELAY_SMOOTH_S * sr))
        ds[D_LP_HZ, t] = d[P_HIGHCUT]
        ds[D_LP_A, t] = ds[D_ALP, t]
        ds[D_HP_HZ, t] = d[P_LOWCUT]
        ds[D_HP_A, t] = ds[D_AHP, t]
        g = gain_target(gp[t, 0], gp[t, 1])  # gain_reset
        gs[G_START, t] = g
        gs[G_TARGET, t] = g
        gs[G_POS, t] = 1.0
        gs[G_N, t] = 1.0
        ps[PN_POS, t] = pp[t, 0]  # pan_reset
        ps[PN_LAW, t] = pp[t, 1]
        gl, gr = pan_gains(pp[t, 0], int(pp[t, 1]))
        ps[PN_GL0, t] = gl
        ps[PN_GR0, t] = gr
        ps[PN_GL1, t] = gl
        ps[PN_GR1, t] = gr
    m[M_SUM_GAIN] = 10.0 ** (mp[MP_HEADROOM] / 20.0)
    limiter_snap(ls, lp, first, second, ring)


# -- per-call preparation ---------------------------------------------------------------


@njit(cache=True, nogil=True)
def _eq_prepare(m: F64, eqs: F64, eqon: F64, eqp: F64) -> None:  # RT
    """Enable flags per band and track, each band's mode (0 all off, 1 all on, 2 mixed), and
    whether any smoothed value differs from its target (then the grid steps run)."""
    tracks = eqp.shape[0]
    moving = False
    for b in range(BANDS):
        p = b * BAND_PARAMS
        count = 0
        for t in range(tracks):
            on = eqp[t, p + 4] >= 0.5
            eqon[b, t] = 1.0 if on else 0.0
            count += 1 if on else 0
            if (eqs[b, 0, t] != eqp[t, p] or eqs[b, 2, t] != eqp[t, p + 2]
                    or eqs[b, 3, t] != eqp[t, p + 3]
                    or eqs[b, 1, t] != math.log2(max(eqp[t, p + 1], 1.0))):
                moving = True
        m[M_EQ_MODE + b] = 0.0 if count == 0 else (1.0 if count == tracks else 2.0)
    m[M_EQ_MOVING] = 1.0 if moving else 0.0


@njit(cache=True, nogil=True)
def _delay_prepare(ds: F64, dp: F64, line: int) -> tuple[int, bool]:  # RT
    """Targets and cached coefficients (as delay_kernel's preamble); which tracks are steady
    (no ramp, no crossfade: the vectorised path), the shortest steady echo, and whether all
    are steady without ping-pong (the plainest loop)."""
    tracks = dp.shape[0]
    shortest = line
    plain = True
    for t in range(tracks):
        d = dp[t]
        target = _target_tap(d, line)
        if ds[D_LP_HZ, t] != d[P_HIGHCUT]:
            ds[D_LP_HZ, t] = d[P_HIGHCUT]
            ds[D_LP_A, t] = _coef_lp(d)
        if ds[D_HP_HZ, t] != d[P_LOWCUT]:
            ds[D_HP_HZ, t] = d[P_LOWCUT]
            ds[D_HP_A, t] = _coef_hp(d)
        moving = (ds[D_FB, t] != d[P_FB] or ds[D_MIX, t] != d[P_MIX]
                  or ds[D_ALP, t] != ds[D_LP_A, t] or ds[D_AHP, t] != ds[D_HP_A, t])
        steady = not moving and ds[D_NXT, t] == ds[D_TAP, t] and ds[D_TAP, t] == target
        ds[D_TARGET, t] = target
        ds[D_PP, t] = 1.0 if d[P_PINGPONG] >= 0.5 else 0.0
        ds[D_MOVING, t] = 1.0 if moving else 0.0
        ds[D_STEADY, t] = 1.0 if steady else 0.0
        ds[D_ALPC, t] = 1.0 - ds[D_ALP, t]
        ds[D_AHPC, t] = 1.0 - ds[D_AHP, t]
        plain = plain and steady and ds[D_PP, t] < 0.5
        if steady:
            shortest = min(shortest, int(ds[D_TAP, t]))
    return shortest, plain


@njit(cache=True, nogil=True)
def _gain_pan_prepare(gs: F64, gp: F64, ps: F64, pp: F64) -> bool:  # RT
    """gain_kernel's preamble per track; which pans move (pan_kernel's steady test)."""
    tracks = gp.shape[0]
    moving = False
    for t in range(tracks):
        target = gain_target(gp[t, 0], gp[t, 1])
        n = max(gs[G_N, t], 1.0)
        if target != gs[G_TARGET, t]:
            current = (gs[G_START, t] + (gs[G_TARGET, t] - gs[G_START, t])
                       * min(gs[G_POS, t], n) / n)
            n = max(1.0, math.floor(GAIN_RAMP_S * gp[t, 2] + 0.5))
            gs[G_START, t] = current
            gs[G_TARGET, t] = target
            gs[G_POS, t] = 0.0
        gs[G_N, t] = n
        gs[G_STEP, t] = (target - gs[G_START, t]) / n
        steady = (ps[PN_POS, t] == pp[t, 0] and ps[PN_LAW, t] == pp[t, 1]
                  and ps[PN_GL0, t] == ps[PN_GL1, t] and ps[PN_GR0, t] == ps[PN_GR1, t])
        ps[PN_MOVING, t] = 0.0 if steady else 1.0
        moving = moving or not steady
    return moving


# -- stages -----------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def clamp(x: float) -> float:  # RT
    """``clean`` for a sample that cannot be NaN: the bank cleans its input, and every stage
    maps finite samples to finite samples, so between stages the effects' ``clean`` comes
    down to its clamp to +-SAMPLE_LIMIT (written as selects, which vectorise)."""
    v = float(x)
    v = SAMPLE_LIMIT if v > SAMPLE_LIMIT else v
    return -SAMPLE_LIMIT if v < -SAMPLE_LIMIT else v


@njit(cache=True, nogil=True)
def _load(inp: F32, x: F32, start: int, n: int) -> None:  # RT
    """``x[i, c, t] = clean(inp[t, start + i, c])``: tracks onto the SIMD axis."""
    for t in range(inp.shape[0]):
        for i in range(n):
            x[i, 0, t] = clean(inp[t, start + i, 0])
            x[i, 1, t] = clean(inp[t, start + i, 1])


@njit(cache=True, nogil=True)
def _eq_grid(eqs: F64, eqc: F64, eqp: F64, k: float, sr: float, tmp: F64) -> None:  # RT
    """One smoothing step of every band (biquad_cascade at a grid point)."""
    for t in range(eqp.shape[0]):
        for b in range(BANDS):
            p = b * BAND_PARAMS
            tf = math.log2(max(eqp[t, p + 1], 1.0))
            changed = False
            if eqs[b, 0, t] != eqp[t, p]:
                eqs[b, 0, t] = eqp[t, p]  # a type switch cannot ramp; it jumps
                changed = True
            for j in range(1, 4):
                target = tf if j == 1 else eqp[t, p + j]
                cur = eqs[b, j, t]
                if cur != target:
                    diff = target - cur
                    eqs[b, j, t] = target if abs(diff) < 1e-6 else cur + k * diff
                    changed = True
            if changed:
                rbj(int(eqs[b, 0, t]), 2.0 ** eqs[b, 1, t], eqs[b, 2, t], eqs[b, 3, t], sr,
                    tmp, 0)
                for j in range(5):
                    eqc[b, j, t] = tmp[j]


@njit(cache=True, nogil=True)
def _eq_filter(x: F32, lo: int, hi: int, m: F64, eqc: F64, eqz: F64, eqon: F64) -> None:  # RT
    """Frames lo:hi through the enabled bands, in series (TDF-II, float32 between bands)."""
    tracks = x.shape[2]
    for b in range(BANDS):
        mode = m[M_EQ_MODE + b]
        if mode == 0.0:
            continue
        for c in range(2):
            if mode == 1.0:
                for i in range(lo, hi):
                    for t in range(tracks):
                        v = x[i, c, t]
                        y = eqc[b, 0, t] * v + eqz[b, c, 0, t]
                        eqz[b, c, 0, t] = eqc[b, 1, t] * v - eqc[b, 3, t] * y + eqz[b, c, 1, t]
                        eqz[b, c, 1, t] = eqc[b, 2, t] * v - eqc[b, 4, t] * y
                        x[i, c, t] = y
            else:  # some tracks bypass this band: their memory stays as it is
                for i in range(lo, hi):
                    for t in range(tracks):
                        v = x[i, c, t]
                        z1 = eqz[b, c, 0, t]
                        z2 = eqz[b, c, 1, t]
                        y = eqc[b, 0, t] * v + z1
                        n1 = eqc[b, 1, t] * v - eqc[b, 3, t] * y + z2
                        n2 = eqc[b, 2, t] * v - eqc[b, 4, t] * y
                        on = eqon[b, t] > 0.5
                        eqz[b, c, 0, t] = n1 if on else z1
                        eqz[b, c, 1, t] = n2 if on else z2
                        x[i, c, t] = y if on else v


@njit(cache=True, nogil=True, inline="always")
def _frame_peak(x: F32, i: int, t: int) -> int:  # RT
    """peak_bits of one stereo frame: the larger clean ``|x|`` of the two, as float32 bits."""
    left = f32_bits(x[i, 0, t]) & ABS_MASK
    left = 0 if left > F32_INF_BITS else min(left, LIMIT_BITS)
    right = f32_bits(x[i, 1, t]) & ABS_MASK
    right = 0 if right > F32_INF_BITS else min(right, LIMIT_BITS)
    return max(left, right)


@njit(cache=True, nogil=True, inline="always")
def _frame_power(x: F32, i: int, t: int, acc: float) -> float:  # RT
    """_power of one stereo frame (left, then right, as the flat loop adds them)."""
    v = float(x[i, 0, t])
    sq = v * v
    acc += sq if sq <= LIMIT_SQUARED else (LIMIT_SQUARED if sq == sq else 0.0)
    v = float(x[i, 1, t])
    sq = v * v
    acc += sq if sq <= LIMIT_SQUARED else (LIMIT_SQUARED if sq == sq else 0.0)
    return acc


@njit(cache=True, nogil=True)
def _exact_factors(  # RT
    g: F64, t: int, start: int, end: int, at: int, target: float, red_start: float,
    alpha1: float, makeup: float, mix: float
) -> None:
    """_apply_exact's factors: frame ``start`` is sample ``at + 1`` of the hop."""
    d = (red_start - target) * alpha1 ** at
    for i in range(start, end):
        d *= alpha1
        g[i, t] = _exact_gain(target + d, makeup, mix)


@njit(cache=True, nogil=True)
def _gain_computer(x: F32, n: int, g: F64, state: F64, params: F64, t: int) -> None:  # RT
    """dsp.compressor._compress for track ``t`` of frames 0:n (stereo, keyed on its input),
    line by line, except that it writes the output factor of each frame into ``g[:, t]``
    instead of multiplying the samples (the delay stage does that for all tracks at once)."""
    frames = n
    kch = 2
    _coefficients(state, params)
    k = 1.0 - math.exp(-state[S_HOP_WANT] / (COMP_SMOOTH_S * params[P_SR]))
    rms = params[P_DETECTOR] >= 0.5
    thr_t = params[P_THRESHOLD]
    knee_t = max(params[P_KNEE], 0.0)
    slope_t = _slope(params[P_RATIO])
    makeup_t = params[P_MAKEUP]
    mix_t = params[C_MIX]
    alpha_a = state[S_ALPHA_A]
    alpha_r = state[S_ALPHA_R]
    alpha_a1 = state[S_ALPHA_A1]
    alpha_r1 = state[S_ALPHA_R1]
    hop_want = int(state[S_HOP_WANT])
    hop = int(state[S_HOP_LEN])
    fast_attack = params[P_ATTACK] * 1e-3 * params[P_SR] < EXACT_ATTACK
    k_rms = state[S_K_RMS]
    hold = int(state[S_HOLD])
    thr = state[S_THR]
    knee = state[S_KNEE]
    slope = state[S_SLOPE]
    makeup = state[S_MAKEUP]
    mix = state[CS_MIX]
    lin_lo = state[S_LIN_LO]
    red = state[S_RED]
    power = state[S_POWER]
    gain_db = state[S_GAIN_DB]
    gain = state[S_GAIN]
    last_level = state[S_LAST_LEVEL]
    level_db = state[S_LEVEL_DB]
    counter = int(state[S_COUNTER])
    f0 = state[S_F0]
    f1 = state[S_F1]
    df = (f1 - f0) / hop
    hop_peak = int(state[S_HOP_PEAK])
    hop_power = state[S_HOP_POWER]
    red_start = state[S_RED_START]
    target = state[S_TARGET]
    trigger = int(state[S_TRIGGER])
    exact = state[S_EXACT] > 0.5
    start = 0
    while start < frames:
        if counter == 0:  # a hop boundary: run the gain computer
            if thr != thr_t or knee != knee_t:
                thr = _ramp(thr, thr_t, k, 1e-6)
                knee = _ramp(knee, knee_t, k, 1e-6)
                lin_lo = math.exp((thr - 0.5 * knee) * LN10_20)
            if slope != slope_t:
                slope = _ramp(slope, slope_t, k, 1e-7)
            if makeup != makeup_t:
                makeup = _ramp(makeup, makeup_t, k, 1e-6)
            if mix != mix_t:
                mix = _ramp(mix, mix_t, k, 1e-7)
            if rms:
                power += k_rms * (hop_power / (hop * kch) - power)
                level, floor = power, lin_lo * lin_lo
            else:
                level = hold_max(state, S_PEAKS, RING, bits_f32(hop_peak), hold)
                floor = lin_lo
            target = 0.0
            red_start = red
            if level > floor:
                tag = -level if rms else level
                if tag != last_level:
                    last_level = tag
                    level_db = DB_PER_OCTAVE * fast_log2(level)
                    if rms:
                        level_db *= 0.5
                target = _reduction_db(level_db, thr, slope, knee)
            red = target + (red - target) * (alpha_a if target > red else alpha_r)
            if abs(red - target) < 1e-7:
                red = target
            if makeup - red != gain_db:
                gain_db = makeup - red
                gain = fast_exp2(gain_db * (1.0 / DB_PER_OCTAVE))
            hop = hop_want
            f0 = f1
            f1 = 1.0 - mix + mix * gain
            df = (f1 - f0) / hop
            exact = fast_attack and target > red_start
            hop_peak = 0
            hop_power = 0.0
            if not rms:
                trigger = f32_bits(np.float32(min(max(level, floor) * TRIGGER_STEP, 1e30)))
        end = min(start + hop - counter, frames)
        if rms:
            for i in range(start, end):
                hop_power = _frame_power(x, i, t, hop_power)
        else:
            j = start  # the first frame louder than the trigger, if any
            seg_peak = 0
            while j < end:
                peak = _frame_peak(x, j, t)
                if peak > trigger:
                    break
                seg_peak = max(seg_peak, peak)
                j += 1
            if j < end:  # attack at once: end the hop at frame j, start a new one there
                hop_peak = max(hop_peak, seg_peak, _frame_peak(x, j, t))
                done = counter + j - start
                alpha1 = alpha_a1 if target > red_start else alpha_r1
                red = target + (red_start - target) * alpha1**done
                if exact:
                    _exact_factors(g, t, start, j, counter, target, red_start, alpha_a1, makeup,
                                   mix)
                    f1 = _exact_gain(red, makeup, mix)
                else:
                    base = f0 + df * (counter + 1 - start)
                    for i in range(start, j):
                        g[i, t] = base + df * i
                    f1 = f0 + df * done
                counter = 0
                start = j
                continue
            if seg_peak > hop_peak:
                hop_peak = seg_peak
        if exact:
            _exact_factors(g, t, start, end, counter, target, red_start, alpha_a1, makeup, mix)
        else:
            base = f0 + df * (counter + 1 - start)
            for i in range(start, end):
                g[i, t] = base + df * i
        counter += end - start
        if counter == hop:
            counter = 0
        start = end
    state[S_THR] = thr
    state[S_KNEE] = knee
    state[S_SLOPE] = slope
    state[S_MAKEUP] = makeup
    state[CS_MIX] = mix
    state[S_LIN_LO] = lin_lo
    state[S_RED] = red
    state[S_POWER] = power
    state[S_GAIN_DB] = gain_db
    state[S_GAIN] = gain
    state[S_LAST_LEVEL] = last_level
    state[S_LEVEL_DB] = level_db
    state[S_COUNTER] = counter
    state[S_F0] = f0
    state[S_F1] = f1
    state[S_HOP_PEAK] = hop_peak
    state[S_HOP_POWER] = hop_power
    state[S_RED_START] = red_start
    state[S_TARGET] = target
    state[S_TRIGGER] = trigger
    state[S_EXACT] = 1.0 if exact else 0.0
    state[S_HOP_LEN] = hop


@njit(cache=True, nogil=True)
def _gain_computers(x: F32, n: int, g: F64, cs: F64, cp: F64) -> None:  # RT
    """Every track's compressor gain computer: the output factor of each frame into ``g``
    (the delay stage applies them on its way in: ``_compressed``)."""
    for t in range(x.shape[2]):
        _gain_computer(x, n, g, cs[t], cp[t], t)


@njit(cache=True, nogil=True, inline="always")
def _compressed(x: F32, g: F64, i: int, c: int, t: int) -> float:  # RT
    """The compressor's output sample (apply_ramp: ``clamp(x) * factor``, in float32)."""
    return float(np.float32(clamp(x[i, c, t]) * g[i, t]))


@njit(cache=True, nogil=True)
def _delay_track(  # RT
    x: F32, lo: int, hi: int, g: F64, lines: F32, ds: F64, d: F64, t: int, w: int,
    n_fade: float, inv_fade: float
) -> None:
    """Frames lo:hi of track ``t``, exactly as delay_kernel's stereo path (ramps, crossfade),
    fed by the compressor's output; ``d`` is the track's delay params."""
    line = lines.shape[1]
    target = ds[D_TARGET, t]
    fb_t = d[P_FB]
    mix_t = d[P_MIX]
    alp_t = ds[D_LP_A, t]
    ahp_t = ds[D_HP_A, t]
    k = ds[D_K, t]
    tap = ds[D_TAP, t]
    nxt = ds[D_NXT, t]
    fade = ds[D_FADE, t]
    fb = ds[D_FB, t]
    mix = ds[D_MIX, t]
    alp = ds[D_ALP, t]
    ahp = ds[D_AHP, t]
    lpl = ds[D_LPL, t]
    hpl = ds[D_HPL, t]
    lpr = ds[D_LPR, t]
    hpr = ds[D_HPR, t]
    moving = ds[D_MOVING, t] > 0.5
    pingpong = ds[D_PP, t] > 0.5
    trk = lines[t]
    for i in range(lo, hi):
        if moving:
            fb, mix, alp, ahp, moving = _smooth4(fb, mix, alp, ahp, fb_t, mix_t, alp_t, ahp_t, k)
        if nxt == tap and tap != target:
            nxt = target
            fade = 0.0
        r = w - int(tap)
        if r < 0:
            r += line
        yl = float(trk[r, 0])
        yr = float(trk[r, 1])
        if nxt != tap:
            r2 = w - int(nxt)
            if r2 < 0:
                r2 += line
            fade += 1.0
            f = fade * inv_fade
            yl += f * (trk[r2, 0] - yl)
            yr += f * (trk[r2, 1] - yr)
            if fade >= n_fade:
                tap = nxt
                fade = 0.0
        lpl = (1.0 - alp) * lpl + alp * yl
        lpr = (1.0 - alp) * lpr + alp * yr
        hpl = (1.0 - ahp) * hpl + ahp * lpl
        hpr = (1.0 - ahp) * hpr + ahp * lpr
        yl = lpl - hpl
        yr = lpr - hpr
        xl = clamp(_compressed(x, g, i, 0, t))
        xr = clamp(_compressed(x, g, i, 1, t))
        if pingpong:
            trk[w, 0] = 0.5 * (xl + xr) + fb * yr
            trk[w, 1] = fb * yl
        else:
            trk[w, 0] = xl + fb * yl
            trk[w, 1] = xr + fb * yr
        x[i, 0, t] = xl + mix * (yl - xl)
        x[i, 1, t] = xr + mix * (yr - xr)
        w += 1
        if w == line:
            w = 0
    ds[D_TAP, t] = tap
    ds[D_NXT, t] = nxt
    ds[D_FADE, t] = fade
    ds[D_FB, t] = fb
    ds[D_MIX, t] = mix
    ds[D_ALP, t] = alp
    ds[D_AHP, t] = ahp
    ds[D_LPL, t] = lpl
    ds[D_HPL, t] = hpl
    ds[D_LPR, t] = lpr
    ds[D_HPR, t] = hpr
    ds[D_MOVING, t] = 1.0 if moving else 0.0


@njit(cache=True, nogil=True)
def _delay_lanes(  # RT
    x: F32, lo: int, hi: int, dbuf: F32, ds: F64, g: F64, plain: bool
) -> None:
    """The steady delay across tracks, fed by the compressor's output (``x`` times its
    factors ``g``): ``dbuf`` holds each frame's echo reads on the way in and the line writes
    on the way out. ``plain``: every track is steady and none ping-pongs (no selects)."""
    tracks = x.shape[2]
    if plain:
        for i in range(hi - lo):
            f = lo + i
            for t in range(tracks):
                alp = ds[D_ALP, t]
                ahp = ds[D_AHP, t]
                alc = ds[D_ALPC, t]
                ahc = ds[D_AHPC, t]
                lpl = alc * ds[D_LPL, t] + alp * float(dbuf[i, 0, t])
                lpr = alc * ds[D_LPR, t] + alp * float(dbuf[i, 1, t])
                hpl = ahc * ds[D_HPL, t] + ahp * lpl
                hpr = ahc * ds[D_HPR, t] + ahp * lpr
                ds[D_LPL, t] = lpl
                ds[D_LPR, t] = lpr
                ds[D_HPL, t] = hpl
                ds[D_HPR, t] = hpr
                yl = lpl - hpl
                yr = lpr - hpr
                xl = clamp(_compressed(x, g, f, 0, t))
                xr = clamp(_compressed(x, g, f, 1, t))
                fb = ds[D_FB, t]
                dbuf[i, 0, t] = xl + fb * yl
                dbuf[i, 1, t] = xr + fb * yr
                mix = ds[D_MIX, t]
                x[f, 0, t] = xl + mix * (yl - xl)
                x[f, 1, t] = xr + mix * (yr - xr)
        return
    for i in range(hi - lo):
        f = lo + i
        for t in range(tracks):
            alp = ds[D_ALP, t]
            ahp = ds[D_AHP, t]
            alc = ds[D_ALPC, t]
            ahc = ds[D_AHPC, t]
            lpl = alc * ds[D_LPL, t] + alp * float(dbuf[i, 0, t])
            lpr = alc * ds[D_LPR, t] + alp * float(dbuf[i, 1, t])
            hpl = ahc * ds[D_HPL, t] + ahp * lpl
            hpr = ahc * ds[D_HPR, t] + ahp * lpr
            steady = ds[D_STEADY, t] > 0.5  # the others keep state and input for their path
            ds[D_LPL, t] = lpl if steady else ds[D_LPL, t]
            ds[D_LPR, t] = lpr if steady else ds[D_LPR, t]
            ds[D_HPL, t] = hpl if steady else ds[D_HPL, t]
            ds[D_HPR, t] = hpr if steady else ds[D_HPR, t]
            yl = lpl - hpl
            yr = lpr - hpr
            xl = clamp(_compressed(x, g, f, 0, t))
            xr = clamp(_compressed(x, g, f, 1, t))
            fb = ds[D_FB, t]
            pingpong = ds[D_PP, t] > 0.5
            dbuf[i, 0, t] = 0.5 * (xl + xr) + fb * yr if pingpong else xl + fb * yl
            dbuf[i, 1, t] = fb * yl if pingpong else xr + fb * yr
            mix = ds[D_MIX, t]
            x[f, 0, t] = xl + mix * (yl - xl) if steady else x[f, 0, t]
            x[f, 1, t] = xr + mix * (yr - xr) if steady else x[f, 1, t]


@njit(cache=True, nogil=True)
def _delay(  # RT
    x: F32, n: int, g: F64, dbuf: F32, lines: F32, ds: F64, dp: F64, w: int, shortest: int,
    plain: bool, n_fade: float, inv_fade: float
) -> int:
    """Frames 0:n through every track's delay (fed by the compressor: ``x`` times ``g``);
    returns the new write position."""
    tracks = x.shape[2]
    line = lines.shape[1]
    lo = 0
    while lo < n:
        hi = min(n, lo + shortest)  # a run never reads what it writes
        run = hi - lo
        for t in range(tracks):  # each track's echo reads, out of its line
            r = w - int(ds[D_TAP, t])
            if r < 0:
                r += line
            trk = lines[t]
            first = min(run, line - r)
            for i in range(first):
                dbuf[i, 0, t] = trk[r + i, 0]
                dbuf[i, 1, t] = trk[r + i, 1]
            for i in range(first, run):
                dbuf[i, 0, t] = trk[i - first, 0]
                dbuf[i, 1, t] = trk[i - first, 1]
        _delay_lanes(x, lo, hi, dbuf, ds, g, plain)
        first = min(run, line - w)
        for t in range(tracks):
            trk = lines[t]
            if ds[D_STEADY, t] > 0.5:  # its writes, into its line
                for i in range(first):
                    trk[w + i, 0] = dbuf[i, 0, t]
                    trk[w + i, 1] = dbuf[i, 1, t]
                for i in range(first, run):
                    trk[i - first, 0] = dbuf[i, 0, t]
                    trk[i - first, 1] = dbuf[i, 1, t]
            else:  # the exact per-sample path
                _delay_track(x, lo, hi, g, lines, ds, dp[t], t, w, n_fade, inv_fade)
        w += run
        if w >= line:
            w -= line
        lo = hi
    return w


@njit(cache=True, nogil=True)
def _gain_pan_sum(  # RT
    x: F32, n: int, bus: F32, counter: int, gs: F64, ps: F64, pp: F64, pan_moving: bool,
    k: float
) -> None:
    """Gain (linear ramps), pan (gains on the 16-sample grid, interpolated), then each frame's
    sum over the tracks in track order into ``bus`` (sum_kernel's float32 accumulation)."""
    tracks = x.shape[2]
    lo = 0
    while lo < n:
        if pan_moving and counter == 0:  # _pan_grid for the moving tracks
            for t in range(tracks):
                if ps[PN_MOVING, t] > 0.5:
                    target = pp[t, 0]
                    pos = ps[PN_POS, t]
                    pos = target if abs(target - pos) < 1e-6 else pos + k * (target - pos)
                    ps[PN_POS, t] = pos
                    ps[PN_LAW, t] = pp[t, 1]
                    ps[PN_GL0, t] = ps[PN_GL1, t]
                    ps[PN_GR0, t] = ps[PN_GR1, t]
                    gl, gr = pan_gains(pos, int(pp[t, 1]))
                    ps[PN_GL1, t] = gl
                    ps[PN_GR1, t] = gr
        run = min(HOP - counter, n - lo) if pan_moving else n - lo
        for t in range(tracks):
            ps[PN_DL, t] = (ps[PN_GL1, t] - ps[PN_GL0, t]) / HOP
            ps[PN_DR, t] = (ps[PN_GR1, t] - ps[PN_GR0, t]) / HOP
        for j in range(run):
            i = lo + j
            step = counter + j + 1.0
            for t in range(tracks):
                pos = gs[G_POS, t]
                g = (gs[G_START, t] + gs[G_STEP, t] * (pos + i + 1.0) if pos + i < gs[G_N, t]
                     else gs[G_TARGET, t])
                left = float(np.float32(clamp(x[i, 0, t]) * g))  # Gain's float32 output
                right = float(np.float32(clamp(x[i, 1, t]) * g))
                x[i, 0, t] = clamp(left) * (ps[PN_GL0, t] + ps[PN_DL, t] * step)
                x[i, 1, t] = clamp(right) * (ps[PN_GR0, t] + ps[PN_DR, t] * step)
            left_sum = np.float32(0.0)
            right_sum = np.float32(0.0)
            for t in range(tracks):
                left_sum = np.float32(left_sum + clamp(x[i, 0, t]))
                right_sum = np.float32(right_sum + clamp(x[i, 1, t]))
            bus[i, 0] = left_sum
            bus[i, 1] = right_sum
        counter = (counter + run) % HOP
        lo += run
    for t in range(tracks):  # the ramps' positions move on by this chunk
        gs[G_POS, t] = min(gs[G_POS, t] + n, max(gs[G_POS, t], gs[G_N, t]))


@njit(cache=True, nogil=True)
def _headroom(bus: F32, n: int, m: F64, mp: F64) -> None:  # RT
    """sum_kernel's headroom gain on the summed bus (a per-frame one-pole toward it)."""
    target = 10.0 ** (mp[MP_HEADROOM] / 20.0)
    g = m[M_SUM_GAIN]
    i = 0
    if g != target:
        k = 1.0 - math.exp(-1.0 / (SUM_SMOOTH_S * mp[MP_SR]))
        while i < n and g != target:
            g = target if abs(target - g) < 1e-9 else g + k * (target - g)
            bus[i, 0] *= g
            bus[i, 1] *= g
            i += 1
    for j in range(i, n):
        bus[j, 0] *= g
        bus[j, 1] *= g
    m[M_SUM_GAIN] = g


@njit(cache=True, nogil=True)
def strip_kernel(inp: F32, out: F32, state: F64, params: F64, work: F32) -> None:  # RT
    """Render one block: ``inp`` (tracks, frames, 2) -> ``out`` (frames, 2), laid out as the
    module says; ``strip_reset`` prepares ``state``."""
    saved = ftz_begin()
    tracks, frames = inp.shape[0], inp.shape[1]
    (m, eqs, eqc, eqz, eqon, cs, ds, gs, ps, tmp, cg, ls,
     eqp, cp, dp, gp, pp, mp, lp, x, dbuf, bus, lines) = _views(state, params, work, tracks)
    sr = mp[MP_SR]
    line = lines.shape[1]
    _eq_prepare(m, eqs, eqon, eqp)
    eq_moving = m[M_EQ_MOVING] > 0.5
    k_eq = 1.0 - math.exp(-HOP / (EQ_SMOOTH_S * sr))
    shortest, plain = _delay_prepare(ds, dp, line)
    n_fade = max(math.floor(FADE_S * sr + 0.5), 1.0)
    inv_fade = 1.0 / n_fade
    pan_moving = _gain_pan_prepare(gs, gp, ps, pp)
    k_pan = 1.0 - math.exp(-HOP / (PAN_SMOOTH_S * sr))
    counter = int(m[M_COUNTER])
    w = int(m[M_WRITE])
    start = 0
    while start < frames:
        n = min(CHUNK, frames - start)
        _load(inp, x, start, n)
        lo = 0  # EQ: runs between the grid points where coefficients may step
        c = counter
        while lo < n:
            if eq_moving and c == 0:
                _eq_grid(eqs, eqc, eqp, k_eq, sr, tmp)
            hi = min(lo + HOP - c, n) if eq_moving else n
            _eq_filter(x, lo, hi, m, eqc, eqz, eqon)
            c = (c + hi - lo) % HOP
            lo = hi
        _gain_computers(x, n, cg, cs, cp)
        w = _delay(x, n, cg, dbuf, lines, ds, dp, w, shortest, plain, n_fade, inv_fade)
        _gain_pan_sum(x, n, bus, counter, gs, ps, pp, pan_moving, k_pan)
        _headroom(bus, n, m, mp)
        limiter_kernel(bus[:n], out[start:start + n], ls, lp)
        counter = (counter + n) % HOP
        start += n
    m[M_COUNTER] = counter
    m[M_WRITE] = w
    ftz_end(saved)


# -- the bank -------------------------------------------------------------------------------


class StripBank:
    """N stereo channel strips (EQ4 -> compressor -> delay -> gain -> pan), summed and limited.

    ``set(stage, track, **values)`` takes the parameter names and ranges of the effect the
    stage stands for: ``"eq"`` (ParametricEQ4: ``b0_type``, ``b0_freq_hz``, ... ``b3_enabled``),
    ``"compressor"``, ``"delay"``, ``"gain"``, ``"pan"``; ``track=None`` sets every track. The
    master stages take no track: ``"bus"`` (Summer's ``headroom_db``) and ``"limiter"``
    (``ceiling_db``, ``lookahead_ms`` (applies at reset), ``release_ms``).

    ``max_time_ms`` (constructor only, 1..60000) sizes the delay lines, like Delay's.
    """

    def __init__(
        self,
        tracks: int,
        sample_rate: float = 48000.0,
        *,
        max_block: int = 8192,
        max_time_ms: float = MAX_TIME_MS,
    ) -> None:
        if isinstance(tracks, bool) or not isinstance(tracks, int) or tracks < 1:
            raise ParamError(f"tracks: {tracks!r} must be a positive integer")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float) or not (
            SAMPLE_RATES[0] <= float(sample_rate) <= SAMPLE_RATES[1]
        ):
            lo, hi = SAMPLE_RATES
            raise ParamError(f"sample_rate: {sample_rate!r} Hz is outside {lo:g}..{hi:g}")
        if isinstance(max_block, bool) or not isinstance(max_block, int) or max_block < 1:
            raise ParamError(f"max_block: {max_block!r} must be a positive integer")
        if isinstance(max_time_ms, bool) or not isinstance(max_time_ms, int | float) or not (
            1.0 <= max_time_ms <= 60000.0
        ):
            raise ParamError(f"max_time_ms: {max_time_ms!r} is outside 1..60000")
        self.tracks = tracks
        self.sample_rate = float(sample_rate)
        self.channels = 2
        self.max_time_ms = float(max_time_ms)
        line = line_length(self.max_time_ms, self.sample_rate)
        self.state = np.zeros(state_size(tracks, self.sample_rate), dtype=np.float64)
        self.params = np.zeros(params_size(tracks), dtype=np.float64)
        self.work = np.zeros(work_size(tracks, line), dtype=np.float32)
        views = _views(self.state, self.params, self.work, tracks)
        eqp, cp, dp, gp, pp, mp, lp = views[12:19]
        self._stage_params: dict[str, F64] = {
            "eq": eqp, "compressor": cp, "delay": dp, "gain": gp, "pan": pp,
        }
        self._master_params: dict[str, F64] = {"bus": mp, "limiter": lp}
        for name, table in self._stage_params.items():
            table[:, :-1] = [p.default for p in STAGES[name]]
            table[:, -1] = self.sample_rate
        for name, row in self._master_params.items():
            row[:-1] = [p.default for p in MASTER[name]]
            row[-1] = self.sample_rate
        self._limiter_at = layout(2, self.sample_rate)
        self._out = np.zeros((max_block, 2), dtype=np.float32)
        self._views: dict[int, F32] = {}
        self.reset()

    # -- parameters -----------------------------------------------------------------------

    def set(self, stage: str, track: int | None = None, **values: Any) -> None:
        """Set parameters of one stage of one track (or of every track with ``track=None``,
        or of a master stage). Out-of-range numbers are clamped; bad values raise ParamError
        before anything is written. Any thread."""
        table, index = self._where(stage, track)
        spec = STAGES.get(stage) or MASTER[stage]
        coerced = [(find(spec, name), spec[find(spec, name)].coerce(v))
                   for name, v in values.items()]
        for column, value in coerced:
            if table.ndim == 1:
                table[column] = value
            elif index is None:
                table[:, column] = value
            else:
                table[index, column] = value

    def get(self, stage: str, name: str, track: int = 0) -> float | str:
        table, index = self._where(stage, track if stage in STAGES else None)
        spec = STAGES.get(stage) or MASTER[stage]
        column = find(spec, name)
        value = table[column] if table.ndim == 1 else table[index, column]
        return spec[column].describe(float(value))

    def _where(self, stage: str, track: int | None) -> tuple[F64, int | None]:
        if stage in self._stage_params:
            if track is not None and (
                isinstance(track, bool) or not isinstance(track, int)
                or not 0 <= track < self.tracks
            ):
                raise ParamError(f"track: {track!r} is not 0..{self.tracks - 1}")
            return self._stage_params[stage], track
        if stage in self._master_params:
            if track is not None:
                raise ParamError(f"{stage}: a master stage has no track (got {track!r})")
            return self._master_params[stage], None
        known = ", ".join([*self._stage_params, *self._master_params])
        raise ParamError(f"unknown stage {stage!r}; known: {known}")

    # -- processing -----------------------------------------------------------------------

    @property
    def latency_samples(self) -> int:
        """The limiter's lookahead (as fixed at the last reset): the only latency."""
        first, second, _ = self._limiter_at
        ls = self.state[self.state.shape[0] - self._limiter_at[2]:]
        return int(ls[first + LIMITER_T_DELAY] + ls[second + LIMITER_T_DELAY])

    def reset(self) -> None:
        """Clear every state (delay lines too); smoothed values jump to their targets.
        Audio thread (or while nothing processes)."""
        first, second, _ = self._limiter_at
        strip_reset(self.state, self.params, self.work, self.tracks, first, second,
                    ring_size(self.sample_rate))

    def process(self, inputs: npt.ArrayLike) -> F32:  # RT for float32 (tracks, n, 2) input
        """Render one block: float32 (tracks, frames, 2) in, a view of the (frames, 2) output
        buffer out (valid until the next call; copy it to keep it). Audio thread."""
        inp = self._as_inputs(inputs)
        n = inp.shape[1]
        out = self._views.get(n)
        if out is None:  # first block of this size: not RT (allocates a view, maybe a buffer)
            if n > self._out.shape[0]:
                self._out = np.zeros((n, 2), dtype=np.float32)
                self._views.clear()
            out = self._views[n] = self._out[:n]
        if n:
            strip_kernel(inp, out, self.state, self.params, self.work)
        return out

    def _as_inputs(self, inputs: npt.ArrayLike) -> F32:  # RT for float32 C-contiguous input
        if (
            type(inputs) is np.ndarray
            and inputs.dtype == np.float32
            and inputs.ndim == 3
            and inputs.shape[0] == self.tracks
            and inputs.shape[2] == 2
            and inputs.flags.c_contiguous
        ):
            return inputs
        arr = np.asarray(inputs)
        if arr.ndim != 3 or arr.shape[0] != self.tracks or arr.shape[2] != 2:
            raise ParamError(
                f"inputs: expected shape ({self.tracks}, frames, 2), got {arr.shape}"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)

    def __repr__(self) -> str:
        return (f"StripBank(tracks={self.tracks}, sample_rate={self.sample_rate:g}, "
                f"latency={self.latency_samples})")
