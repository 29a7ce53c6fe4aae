"""The stages of the strip bank (dsp.strip): one function per stage over all tracks at once.

Work buffers are (frames, 2, tracks) float32 and per-track state is (rows, tracks) float64,
both contiguous along the tracks, so the innermost loops run over tracks and LLVM vectorises
them across tracks (the filters are recursive in time; they cannot vectorise along it).

A rule measured here: an innermost loop vectorises well only while its body is small. A body
that handles both channels of a frame (two filter chains, two loads and stores per array)
runs 3-4x slower than two loops of one channel each, so the stages loop ``for c`` outside
``for t`` and keep per-track values shared by the channels (the compressor's factor, the
fader gain) in rows computed once per frame. Scratch rows hold values between such loops.

Every stage does the arithmetic of the effect it stands for, in the same order and with the
same float32 rounding (dsp.strip says which parts differ and why).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dsp.biquad import BAND_PARAMS, rbj
from dsp.delay import (
    P_FB,
    P_HIGHCUT,
    P_LOWCUT,
    P_MIX,
    P_PINGPONG,
    _coef_hp,
    _coef_lp,
    _smooth4,
    _target_tap,
    echo_filter,
    hp_leak,
    stereo_writes,
)
from dsp.effect import F32, F64
from dsp.fastmath import f32_bits
from dsp.fpu import SAMPLE_LIMIT
from dsp.gaincomputer import (
    ABS_MASK,
    F32_INF_BITS,
    LIMIT_BITS,
    P_DETECTOR,
    clean_square,
    gain_factors,
)
from dsp.mix import SUM_SMOOTH_S
from dsp.prefetch import prefetch_range
from dsp.stereo import gain_target, pan_gains, ramp_samples

BANDS = 4
CHUNK = 64  # frames per pass through the stages
HOP = 16  # the absolute grid of the EQ and the pan
LIMIT32 = np.float32(SAMPLE_LIMIT)
ZERO32 = np.float32(0.0)

# master scalars
M_COUNTER, M_WRITE, M_SUM_GAIN, M_EQ_MOVING, M_EQ_MODE = 0, 1, 2, 3, 4  # M_EQ_MODE..+4
M_SIZE = 8
# delay lanes: smoothed values and filter memory (left, right: lowpass, highpass), cached
# coefficients, per-call values
(D_TAP, D_NXT, D_FADE, D_FB, D_MIX, D_ALP, D_AHP, D_LPL, D_HPL, D_LPR, D_HPR, D_K, D_LP_HZ,
 D_LP_A, D_HP_HZ, D_HP_A, D_TARGET, D_PP, D_STEADY, D_MOVING, D_ALPC, D_AHPC,
 D_LEAK) = range(23)
D_ROWS = 23
# gain lanes: ramp start, target, position and length (as dsp.stereo.gain_kernel), step,
# and the gain_db and mute the target was computed from
G_START, G_TARGET, G_POS, G_N, G_STEP, G_DB, G_MUTE = range(7)
G_ROWS = 7
# pan lanes: as dsp.stereo.pan_kernel, then per-call and per-segment values
PN_POS, PN_GL0, PN_GR0, PN_GL1, PN_GR1, PN_LAW, PN_MOVING, PN_DL, PN_DR = range(9)
PN_ROWS = 9
# scratch rows (float64, tracks): the delay's echoes (2) and compressed input (2), the fader
# gain of the frame, each compressor's detector kind (1 = RMS)
R_ECHO, R_DRY, R_GAIN, R_RMS = 0, 2, 4, 5
R_ROWS = 6
MP_HEADROOM, MP_SR = 0, 1


# -- per-call preparation ---------------------------------------------------------------


@njit(cache=True, nogil=True)
def eq_prepare(m: F64, eqs: F64, eqon: F64, eqp: F64) -> None:  # RT
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
def delay_prepare(ds: F64, dp: F64, line: int) -> tuple[int, bool]:  # RT
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
        if ds[D_HP_HZ, t] != d[P_LOWCUT] or ds[D_LEAK, t] == 0.0:
            ds[D_HP_HZ, t] = d[P_LOWCUT]
            ds[D_HP_A, t] = _coef_hp(d)
            ds[D_LEAK, t] = hp_leak(d)  # (exp): only when the low cut changes
        moving = (ds[D_FB, t] != d[P_FB] or ds[D_MIX, t] != d[P_MIX]
                  or ds[D_ALP, t] != ds[D_LP_A, t] or ds[D_AHP, t] != ds[D_HP_A, t])
        steady = not moving and ds[D_NXT, t] == ds[D_TAP, t] and ds[D_TAP, t] == target
        ds[D_TARGET, t] = target
        ds[D_PP, t] = 1.0 if d[P_PINGPONG] >= 0.5 else 0.0
        ds[D_MOVING, t] = 1.0 if moving else 0.0
        ds[D_STEADY, t] = 1.0 if steady else 0.0
        ds[D_ALPC, t] = 1.0 - ds[D_ALP, t]
        ds[D_AHPC, t] = (1.0 - ds[D_AHP, t]) * ds[D_LEAK, t]  # echo_filter's factor
        plain = plain and steady and ds[D_PP, t] < 0.5
        if steady:
            shortest = min(shortest, int(ds[D_TAP, t]))
    return shortest, plain


@njit(cache=True, nogil=True)
def gain_pan_prepare(gs: F64, gp: F64, ps: F64, pp: F64) -> bool:  # RT
    """gain_kernel's preamble per track; which pans move (pan_kernel's steady test)."""
    tracks = gp.shape[0]
    moving = False
    for t in range(tracks):
        if gs[G_DB, t] != gp[t, 0] or gs[G_MUTE, t] != gp[t, 1]:  # (a pow): on changes
            gs[G_DB, t] = gp[t, 0]
            gs[G_MUTE, t] = gp[t, 1]
            target = gain_target(gp[t, 0], gp[t, 1])
        else:
            target = gs[G_TARGET, t]
        n = max(gs[G_N, t], 1.0)
        if target != gs[G_TARGET, t]:
            current = (gs[G_START, t] + (gs[G_TARGET, t] - gs[G_START, t])
                       * min(gs[G_POS, t], n) / n)
            n = ramp_samples(gp[t, 2], gp[t, 3])
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


@njit(cache=True, nogil=True)
def comp_prepare(rows: F64, cp: F64) -> None:  # RT
    """Each compressor's detector kind into its scratch row (1.0: RMS, 0.0: peak)."""
    for t in range(cp.shape[0]):
        rows[R_RMS, t] = 1.0 if cp[t, P_DETECTOR] >= 0.5 else 0.0


# -- stages -----------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def clamp(x: float) -> float:  # RT
    """``clean`` for a sample that cannot be NaN: the bank cleans its input, and every stage
    maps finite samples to finite samples, so between stages the effects' ``clean`` comes
    down to its clamp to +-SAMPLE_LIMIT (written as selects, which vectorise)."""
    v = float(x)
    v = SAMPLE_LIMIT if v > SAMPLE_LIMIT else v
    return -SAMPLE_LIMIT if v < -SAMPLE_LIMIT else v


@njit(cache=True, nogil=True, inline="always")
def clean_block(x: F32, n: int) -> None:  # RT
    """``clean`` over frames 0:n of a (frames, 2, tracks) buffer, as selects over the
    contiguous memory (they vectorise)."""
    flat = x.reshape(-1)
    for j in range(n * 2 * x.shape[2]):
        v = flat[j]
        v = v if v == v else ZERO32
        v = LIMIT32 if v > LIMIT32 else v
        flat[j] = -LIMIT32 if v < -LIMIT32 else v


@njit(cache=True, nogil=True)
def load(inp: F32, x: F32, start: int, n: int) -> None:  # RT
    """``x[i, c, t] = clean(inp[t, start + i, c])``: tracks onto the SIMD axis (a plain
    transpose, then ``clean_block``)."""
    tracks = inp.shape[0]
    for t in range(tracks):
        for i in range(n):
            x[i, 0, t] = inp[t, start + i, 0]
            x[i, 1, t] = inp[t, start + i, 1]
    clean_block(x, n)


@njit(cache=True, nogil=True)
def eq_grid(eqs: F64, eqc: F64, eqp: F64, k: float, sr: float, tmp: F64) -> None:  # RT
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
def eq_filter(x: F32, lo: int, hi: int, m: F64, eqc: F64, eqz: F64, eqon: F64) -> None:  # RT
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


@njit(cache=True, nogil=True)
def eq_run(  # RT
    x: F32, n: int, counter: int, m: F64, eqs: F64, eqc: F64, eqz: F64, eqon: F64, eqp: F64,
    moving: bool, k: float, sr: float, tmp: F64
) -> None:
    """Frames 0:n through the EQ, in runs between the 16-sample grid points where moving
    coefficients step (``counter``: the chunk's position on the grid)."""
    lo = 0
    c = counter
    while lo < n:
        if moving and c == 0:
            eq_grid(eqs, eqc, eqp, k, sr, tmp)
        hi = min(lo + HOP - c, n) if moving else n
        eq_filter(x, lo, hi, m, eqc, eqz, eqon)
        c = (c + hi - lo) % HOP
        lo = hi


@njit(cache=True, nogil=True)
def detect(x: F32, n: int, det: F64, rows: F64) -> None:  # RT
    """Each compressor's detector level of frames 0:n into ``det`` (frames, tracks), as
    dsp.gaincomputer's detect_peak (float32 bits of the larger clean ``|x|``) or
    detect_power (the summed clean squares), by the track's detector kind."""
    tracks = x.shape[2]
    for i in range(n):
        for t in range(tracks):
            left = f32_bits(x[i, 0, t]) & ABS_MASK
            left = 0 if left > F32_INF_BITS else min(left, LIMIT_BITS)
            right = f32_bits(x[i, 1, t]) & ABS_MASK
            right = 0 if right > F32_INF_BITS else min(right, LIMIT_BITS)
            power = clean_square(float(x[i, 0, t])) + clean_square(float(x[i, 1, t]))
            det[i, t] = power if rows[R_RMS, t] > 0.5 else float(max(left, right))


@njit(cache=True, nogil=True)
def gain_computers(det: F64, n: int, g: F64, cs: F64, cp: F64) -> None:  # RT
    """Every track's compressor gain computer (dsp.gaincomputer, the one the Compressor
    effect runs): the output factor of each frame into ``g`` (frames, tracks); the delay
    stage applies them on its way in (``_compressed``)."""
    for t in range(det.shape[1]):
        gain_factors(det[:, t], g[:, t], n, cs[t], cp[t], 2)


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
    leak = ds[D_LEAK, t]
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
        yl, lpl, hpl = echo_filter(yl, lpl, hpl, alp, ahp, leak)
        yr, lpr, hpr = echo_filter(yr, lpr, hpr, alp, ahp, leak)
        xl = clamp(_compressed(x, g, i, 0, t))
        xr = clamp(_compressed(x, g, i, 1, t))
        trk[w, 0], trk[w, 1] = stereo_writes(xl, xr, yl, yr, fb, pingpong)
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
    x: F32, lo: int, hi: int, dbuf: F32, ds: F64, g: F64, rows: F64, plain: bool
) -> None:
    """The steady delay across tracks, fed by the compressor's output (``x`` times its
    factors ``g``): ``dbuf`` holds each frame's echo reads on the way in and the line writes
    on the way out. ``plain``: every track is steady and none ping-pongs."""
    tracks = x.shape[2]
    for i in range(hi - lo):
        f = lo + i
        for c in range(2):  # the filtered echo and the compressed input, channel by channel
            lp_row = D_LPL + 2 * c
            hp_row = D_HPL + 2 * c
            if plain:
                for t in range(tracks):
                    lp = ds[D_ALPC, t] * ds[lp_row, t] + ds[D_ALP, t] * float(dbuf[i, c, t])
                    hp = ds[D_AHPC, t] * ds[hp_row, t] + ds[D_AHP, t] * lp
                    ds[lp_row, t] = lp
                    ds[hp_row, t] = hp
                    rows[R_ECHO + c, t] = lp - hp
            else:  # the tracks off this path keep their filter memory for their own
                for t in range(tracks):
                    lp = ds[D_ALPC, t] * ds[lp_row, t] + ds[D_ALP, t] * float(dbuf[i, c, t])
                    hp = ds[D_AHPC, t] * ds[hp_row, t] + ds[D_AHP, t] * lp
                    steady = ds[D_STEADY, t] > 0.5
                    ds[lp_row, t] = lp if steady else ds[lp_row, t]
                    ds[hp_row, t] = hp if steady else ds[hp_row, t]
                    rows[R_ECHO + c, t] = lp - hp
            for t in range(tracks):
                rows[R_DRY + c, t] = clamp(_compressed(x, g, f, c, t))
        if plain:
            for c in range(2):
                for t in range(tracks):
                    dry = rows[R_DRY + c, t]
                    echo = rows[R_ECHO + c, t]
                    dbuf[i, c, t] = dry + ds[D_FB, t] * echo
                    x[f, c, t] = dry + ds[D_MIX, t] * (echo - dry)
            continue
        for t in range(tracks):
            xl = rows[R_DRY, t]
            xr = rows[R_DRY + 1, t]
            yl = rows[R_ECHO, t]
            yr = rows[R_ECHO + 1, t]
            fb = ds[D_FB, t]
            pingpong = ds[D_PP, t] > 0.5
            dbuf[i, 0, t] = 0.5 * (xl + xr) + fb * yr if pingpong else xl + fb * yl
            dbuf[i, 1, t] = fb * yl if pingpong else xr + fb * yr
        for c in range(2):
            for t in range(tracks):
                dry = rows[R_DRY + c, t]
                wet = dry + ds[D_MIX, t] * (rows[R_ECHO + c, t] - dry)
                x[f, c, t] = wet if ds[D_STEADY, t] > 0.5 else x[f, c, t]


@njit(cache=True, nogil=True)
def delay(  # RT
    x: F32, n: int, g: F64, dbuf: F32, lines: F32, ds: F64, dp: F64, rows: F64, w: int,
    shortest: int, plain: bool, n_fade: float, inv_fade: float
) -> int:
    """Frames 0:n through every track's delay (fed by the compressor: ``x`` times ``g``);
    returns the new write position. The lines are (tracks, line, 2): a run of frames copies
    each track's reads out of its line before the vectorised loop and its writes back after
    it (runs are no longer than the shortest echo, so a run never reads its own writes)."""
    tracks = x.shape[2]
    line = lines.shape[1]
    lo = 0
    while lo < n:
        hi = min(n, lo + shortest)
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
            # the next run reads on from here and writes on from w: start loading both
            flat = trk.reshape(-1)
            ahead = r + run if r + run < line else r + run - line
            prefetch_range(flat, 2 * ahead, 2 * run)
            ahead = w + run if w + run < line else w + run - line
            prefetch_range(flat, 2 * ahead, 2 * run)
        _delay_lanes(x, lo, hi, dbuf, ds, g, rows, plain)
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
def gain_pan_sum(  # RT
    x: F32, n: int, bus: F32, counter: int, gs: F64, ps: F64, pp: F64, rows: F64,
    pan_moving: bool, k: float, summing: bool = True
) -> None:
    """Gain (linear ramps), pan (gains on the 16-sample grid, interpolated), then each frame's
    sum over the tracks in track order into ``bus`` (sum_kernel's float32 accumulation);
    ``summing=False`` leaves the panned tracks in ``x`` (the engine's banks)."""
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
            for t in range(tracks):  # the fader gain of this frame
                pos = gs[G_POS, t]
                rows[R_GAIN, t] = (gs[G_START, t] + gs[G_STEP, t] * (pos + i + 1.0)
                                   if pos + i < gs[G_N, t] else gs[G_TARGET, t])
            for c in range(2):
                for t in range(tracks):
                    out = float(np.float32(clamp(x[i, c, t]) * rows[R_GAIN, t]))  # Gain's
                    # Pan's output, cleaned as the Summer cleans each track
                    x[i, c, t] = clamp(clamp(out) * (ps[PN_GL0 + c, t] + ps[PN_DL + c, t] * step))
            if not summing:
                continue
            left = ZERO32  # float32 adds: the Summer's double add rounded to float32 is the same
            right = ZERO32
            for t in range(tracks):
                left = left + x[i, 0, t]
                right = right + x[i, 1, t]
            bus[i, 0] = left
            bus[i, 1] = right
        counter = (counter + run) % HOP
        lo += run
    for t in range(tracks):  # the ramps' positions move on by this chunk
        gs[G_POS, t] = min(gs[G_POS, t] + n, max(gs[G_POS, t], gs[G_N, t]))


@njit(cache=True, nogil=True)
def headroom(bus: F32, n: int, m: F64, mp: F64) -> None:  # RT
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


