"""The compressor's gain computer: detector levels in, one linear output factor per frame out.

One implementation serves every compressor in Retoone: the Compressor effect, the bands of
the MultibandCompressor (both through dsp.compressor) and the 64 compressors of the strip
bank (dsp.strip), so that they cannot drift apart. The sound it makes is described in
dsp.compressor; this module is the arithmetic.

Two steps per chunk of at most ``CHUNK`` frames:

* detection, one number per frame into ``det`` (float64): the peak detector stores the
  largest ``|clean(x)|`` over the key's channels as float32 bits (an integer held exactly in
  a float64; for non-negative floats the bit patterns order like the values), the RMS
  detector the sum over channels of ``clean(x)**2``, each square clamped
  (``detect_peak``/``detect_power`` for a (frames, channels) key; the strip bank fills its
  own (frames, tracks) table the same way);
* ``gain_factors(det, g, n, state, params, kch)``: the gain computer over frames ``0:n``
  (hops of ``hop_length`` on the stream's own grid, ended early by a louder frame; per-sample
  gains for fast attacks) writes the linear factor ``1 - mix + mix * gain`` of each frame
  into ``g``; the caller multiplies the samples by it.

Params layout (float64, ``P_*``): ``[detector, threshold_db, ratio, knee_db, attack_ms,
release_ms, makeup_db, mix, rms_ms, sample_rate]`` (the first nine are ``Compressor.PARAMS``).

State layout (float64, ``STATE_SIZE`` numbers whatever the channel count): the scalars
named by the ``S_*`` constants (hop position and length, the output factors ``f0``/``f1`` at
the start and end of the current hop, the detector's accumulators (``hop_peak`` as float32
bits), the smoothed parameters, the reduction in dB, cached coefficients), then the peak-hold
block (``hold_max``: pos, held, age, ring[RING]). Call ``compressor_snap`` once after
allocating or clearing a state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from dsp.biquad import SMOOTH_S
from dsp.effect import F32, F64
from dsp.fastmath import bits_f32, f32_bits, fast_exp2, fast_log2
from dsp.fpu import SAMPLE_LIMIT

CHUNK = 64  # frames per detection/gain pass (the callers' scratch rows hold this many)
HOP = 16
RING = 64  # hop peaks kept for the peak hold
HOLD_MAX_S = 0.010
RATIO_INF = 100.0  # a ratio at or above this is limiting (infinite)
LN10_20 = math.log(10.0) / 20.0
DB_PER_OCTAVE = 20.0 * math.log10(2.0)  # 20 log10(x) = DB_PER_OCTAVE * log2(x)
ABS_MASK = 0x7FFFFFFF
F32_INF_BITS = 0x7F800000
LIMIT_BITS = int(np.float32(SAMPLE_LIMIT).view(np.int32))
LIMIT_SQUARED = SAMPLE_LIMIT * SAMPLE_LIMIT
TRIGGER_STEP = 1.01  # a frame this much (0.086 dB) above the held peak starts a hop early
EXACT_ATTACK = 4 * HOP  # attacks faster than this many samples get their gain per sample

(P_DETECTOR, P_THRESHOLD, P_RATIO, P_KNEE, P_ATTACK, P_RELEASE, P_MAKEUP, P_MIX, P_RMS,
 P_SR) = range(10)
PARAM_SIZE = 10

(S_COUNTER, S_F0, S_F1, S_HOP_PEAK, S_HOP_POWER, S_POWER, S_RED, S_THR, S_SLOPE, S_KNEE,
 S_MAKEUP, S_MIX, S_ALPHA_A, S_ALPHA_R, S_K_RMS, S_HOLD, S_ATTACK_MS, S_RELEASE_MS,
 S_RMS_MS, S_LIN_LO, S_GAIN_DB, S_GAIN, S_LAST_LEVEL, S_LEVEL_DB, S_RED_START, S_TARGET,
 S_TRIGGER, S_EXACT, S_ALPHA_A1, S_ALPHA_R1, S_HOP_LEN, S_HOP_WANT, S_K_SMOOTH,
 S_PEAKS) = range(34)
STATE_SIZE = S_PEAKS + 3 + RING  # the peak hold block (``hold_max``) is last


def static_gain_db(level_db: float, threshold_db: float, ratio: float, knee_db: float) -> float:
    """The static curve: gain in dB (<= 0) for a detector level in dB.

    Below ``threshold - knee/2`` the gain is 0; above ``threshold + knee/2`` the output rises
    1/ratio dB per dB; in between the quadratic knee of Giannoulis et al. (2012), eq. 4.
    A ratio of ``RATIO_INF`` (100) or more is infinite (a limiter's flat top).
    """
    slope = 1.0 if ratio >= RATIO_INF else 1.0 - 1.0 / max(ratio, 1.0)
    over = level_db - threshold_db
    knee = max(knee_db, 0.0)
    if 2.0 * over <= -knee:
        return 0.0
    if 2.0 * abs(over) <= knee:
        return -slope * (over + knee / 2.0) ** 2 / (2.0 * knee)
    return -slope * over


@njit(cache=True, nogil=True, inline="always")
def _reduction_db(level_db: float, thr: float, slope: float, knee: float) -> float:  # RT
    """``-static_gain_db`` with the slope ``1 - 1/ratio`` precomputed."""
    over = level_db - thr
    if 2.0 * over <= -knee:
        return 0.0
    if 2.0 * abs(over) <= knee:
        half = over + 0.5 * knee
        return slope * half * half / (2.0 * knee)
    return slope * over


@njit(cache=True, nogil=True, inline="always")
def _slope(ratio: float) -> float:  # RT
    return 1.0 if ratio >= RATIO_INF else 1.0 - 1.0 / max(ratio, 1.0)


@njit(cache=True, nogil=True, inline="always")
def _ramp(cur: float, target: float, k: float, eps: float) -> float:  # RT
    diff = target - cur
    return target if abs(diff) < eps else cur + k * diff


@njit(cache=True, nogil=True, inline="always")
def hop_length(release_ms: float, sr: float) -> int:  # RT
    """Samples between runs of the gain law: HOP, shorter for releases under 40 HOPs so that
    the release still starts within release/40."""
    return max(1, min(HOP, int(release_ms * 1e-3 * sr / 40.0)))


@njit(cache=True, nogil=True, inline="always")
def hold_hops(release_ms: float, sr: float, hop: int) -> int:  # RT
    """Hop peaks the peak detector holds: min(10 ms, release/20), 1..RING."""
    hold = min(HOLD_MAX_S, release_ms * 5e-5) * sr
    return max(1, min(RING, int(hold / hop + 0.5)))


@njit(cache=True, nogil=True, inline="always")
def peak_bits(flat: F32, lo: int, hi: int, peak: int) -> int:  # RT
    """Raise ``peak`` to the largest ``|clean(x)|`` of ``flat[lo:hi]``, as float32 bits (for
    non-negative floats the bit patterns order like the values; an integer max vectorises
    where a float max does not)."""
    for j in range(lo, hi):
        b = f32_bits(flat[j]) & ABS_MASK
        b = 0 if b > F32_INF_BITS else min(b, LIMIT_BITS)  # NaN reads 0, huge reads the limit
        peak = b if b > peak else peak
    return peak


@njit(cache=True, nogil=True, inline="always")
def _exact_gain(red: float, makeup: float, mix: float) -> float:  # RT
    return 1.0 - mix + mix * fast_exp2((makeup - red) * (1.0 / DB_PER_OCTAVE))


@njit(cache=True, nogil=True, inline="always")
def hold_max(state: F64, at: int, ring: int, value: float, count: int) -> float:  # RT
    """Push ``value`` into the ring at ``state[at]`` and return the largest of the last
    ``count`` (1..ring) values pushed: a sliding maximum that rescans the ring only when the
    held maximum expires. Block layout: ``[pos, held, age, values[ring]...]``.
    """
    pos = int(state[at])
    state[at + 3 + pos] = value
    state[at] = pos + 1 if pos + 1 < ring else 0
    held: float = state[at + 1]
    age: float = state[at + 2] + 1.0
    if value >= held:
        held = value
        age = 0.0
    elif age >= count:
        held = value
        age = 0.0
        j = pos
        for back in range(1, count):
            j = j - 1 if j > 0 else ring - 1
            v = state[at + 3 + j]
            if v > held:
                held = v
                age = back
    state[at + 1] = held
    state[at + 2] = age
    return held


@njit(cache=True, nogil=True)
def _coefficients(state: F64, params: F64) -> None:  # RT
    """Refresh the hop length and time-constant coefficients if a time parameter changed."""
    if (state[S_ATTACK_MS] == params[P_ATTACK] and state[S_RELEASE_MS] == params[P_RELEASE]
            and state[S_RMS_MS] == params[P_RMS]):
        return
    sr = params[P_SR]
    state[S_ATTACK_MS] = params[P_ATTACK]
    state[S_RELEASE_MS] = params[P_RELEASE]
    state[S_RMS_MS] = params[P_RMS]
    attack = max(params[P_ATTACK], 1e-3) * 1e-3 * sr  # in samples
    release = max(params[P_RELEASE], 1e-3) * 1e-3 * sr
    hop = hop_length(params[P_RELEASE], sr)
    state[S_HOP_WANT] = hop
    state[S_ALPHA_A1] = math.exp(-1.0 / attack)
    state[S_ALPHA_R1] = math.exp(-1.0 / release)
    state[S_ALPHA_A] = math.exp(-hop / attack)
    state[S_ALPHA_R] = math.exp(-hop / release)
    state[S_K_RMS] = 1.0 - math.exp(-hop / (max(params[P_RMS], 1e-3) * 1e-3 * sr))
    state[S_HOLD] = hold_hops(params[P_RELEASE], sr, hop)
    state[S_K_SMOOTH] = 1.0 - math.exp(-hop / (SMOOTH_S * sr))  # parameter ramps per hop
    state[S_PEAKS + 2] = RING  # make the hold rescan its ring at the next hop


@njit(cache=True, nogil=True)
def compressor_snap(state: F64, params: F64) -> None:  # RT
    """Clear ``state``; smoothed values jump to the targets in ``params``."""
    state[:] = 0.0
    state[S_ATTACK_MS] = -1.0
    state[S_RELEASE_MS] = -1.0
    state[S_RMS_MS] = -1.0
    state[S_LAST_LEVEL] = math.nan
    _coefficients(state, params)
    state[S_THR] = params[P_THRESHOLD]
    state[S_SLOPE] = _slope(params[P_RATIO])
    state[S_KNEE] = max(params[P_KNEE], 0.0)
    state[S_MAKEUP] = params[P_MAKEUP]
    state[S_MIX] = params[P_MIX]
    state[S_LIN_LO] = math.exp((state[S_THR] - 0.5 * state[S_KNEE]) * LN10_20)
    state[S_GAIN_DB] = state[S_MAKEUP]
    state[S_GAIN] = math.exp(state[S_MAKEUP] * LN10_20)
    state[S_F0] = 1.0 - state[S_MIX] + state[S_MIX] * state[S_GAIN]
    state[S_F1] = state[S_F0]
    state[S_TRIGGER] = LIMIT_BITS  # until the first hop sets it
    state[S_HOP_LEN] = state[S_HOP_WANT]




@njit(cache=True, nogil=True, inline="always")
def clean_square(v: float) -> float:  # RT
    """``clean(v)**2`` for the RMS detector (clamping the square, not v: the same values, one
    compare in the common case)."""
    sq = v * v
    return sq if sq <= LIMIT_SQUARED else (LIMIT_SQUARED if sq == sq else 0.0)


@njit(cache=True, nogil=True)
def detect_peak(key: F32, start: int, n: int, det: Any) -> None:  # RT
    """``det[i]``: the peak of key frame ``start + i`` over its channels, as float32 bits."""
    kch = key.shape[1]
    flat = key.reshape(-1)
    for i in range(n):
        at = (start + i) * kch
        det[i] = float(peak_bits(flat, at, at + kch, 0))


@njit(cache=True, nogil=True)
def detect_power(key: F32, start: int, n: int, det: Any) -> None:  # RT
    """``det[i]``: the summed clean squares of key frame ``start + i`` over its channels."""
    kch = key.shape[1]
    for i in range(n):
        acc = 0.0
        for c in range(kch):
            acc += clean_square(float(key[start + i, c]))
        det[i] = acc


@njit(cache=True, nogil=True)
def _exact_factors(  # RT
    g: Any, start: int, end: int, at: int, target: float, red_start: float, alpha1: float,
    makeup: float, mix: float
) -> None:
    """A fast attack, sample by sample: frame ``start`` is sample ``at + 1`` of the hop."""
    d = (red_start - target) * alpha1 ** at
    for i in range(start, end):
        d *= alpha1
        g[i] = _exact_gain(target + d, makeup, mix)


@njit(cache=True, nogil=True, inline="always")
def _ramp_factors(g: Any, start: int, end: int, base: float, df: float) -> None:  # RT
    for i in range(start, end):
        g[i] = base + df * i


@njit(cache=True, nogil=True)
def gain_factors(det: Any, g: Any, n: int, state: F64, params: F64, kch: int) -> None:  # RT
    """The gain computer over frames ``0:n`` of ``det`` (see the module doc): the linear
    output factor of each frame into ``g[0:n]``. ``det`` and ``g`` are 1-D float64 (views of
    a column are fine); ``kch`` is the key's channel count (the RMS mean divides by it)."""
    _coefficients(state, params)
    k = state[S_K_SMOOTH]
    rms = params[P_DETECTOR] >= 0.5
    thr_t = params[P_THRESHOLD]
    knee_t = max(params[P_KNEE], 0.0)
    slope_t = _slope(params[P_RATIO])
    makeup_t = params[P_MAKEUP]
    mix_t = params[P_MIX]
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
    mix = state[S_MIX]
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
    hop_peak = state[S_HOP_PEAK]
    hop_power = state[S_HOP_POWER]
    red_start = state[S_RED_START]
    target = state[S_TARGET]
    trigger = state[S_TRIGGER]
    exact = state[S_EXACT] > 0.5
    start = 0
    while start < n:
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
            # detector: the level as a power (RMS) or an amplitude (peak)
            if rms:
                power += k_rms * (hop_power / (hop * kch) - power)
                level, floor = power, lin_lo * lin_lo
            else:
                level = hold_max(state, S_PEAKS, RING, bits_f32(int(hop_peak)), hold)
                floor = lin_lo
            target = 0.0
            red_start = red
            if level > floor:
                tag = -level if rms else level  # which detector measured it
                if tag != last_level:  # a held peak often repeats: skip the log
                    last_level = tag
                    level_db = DB_PER_OCTAVE * fast_log2(level)
                    if rms:
                        level_db *= 0.5
                target = _reduction_db(level_db, thr, slope, knee)
            # smooth branching one-pole on the reduction (dB)
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
            hop_peak = 0.0
            hop_power = 0.0
            if not rms:  # louder than this and the target would rise: see below
                trigger = float(f32_bits(np.float32(min(max(level, floor) * TRIGGER_STEP,
                                                        1e30))))
        end = min(start + hop - counter, n)
        if rms:
            for i in range(start, end):
                hop_power += det[i]
        else:
            j = start  # the first frame louder than the trigger, if any
            seg_peak = 0.0
            while j < end:
                peak = det[j]
                if peak > trigger:
                    break
                seg_peak = peak if peak > seg_peak else seg_peak
                j += 1
            if j < end:
                # Attack without waiting for the hop to end: at the first frame louder than
                # the trigger, end the hop (the gain reached so far carries on) and start a
                # new one there.
                hop_peak = max(hop_peak, seg_peak, det[j])
                done = counter + j - start
                alpha1 = alpha_a1 if target > red_start else alpha_r1
                red = target + (red_start - target) * alpha1**done
                if exact:
                    _exact_factors(g, start, j, counter, target, red_start, alpha_a1, makeup,
                                   mix)
                    f1 = _exact_gain(red, makeup, mix)
                else:
                    _ramp_factors(g, start, j, f0 + df * (counter + 1 - start), df)
                    f1 = f0 + df * done
                counter = 0
                start = j
                continue
            if seg_peak > hop_peak:
                hop_peak = seg_peak
        if exact:
            _exact_factors(g, start, end, counter, target, red_start, alpha_a1, makeup, mix)
        else:
            _ramp_factors(g, start, end, f0 + df * (counter + 1 - start), df)
        counter += end - start
        if counter == hop:
            counter = 0
        start = end
    state[S_THR] = thr
    state[S_KNEE] = knee
    state[S_SLOPE] = slope
    state[S_MAKEUP] = makeup
    state[S_MIX] = mix
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
