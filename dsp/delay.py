"""Echo delay: free or tempo-synced time, feedback through filters, ping-pong, dry/wet.

The delay line is a circular buffer per channel, preallocated for the longest
time (``max_time_ms``, 4000 ms unless the constructor is told otherwise), with
one write index for all channels. Echo times are whole samples (a 10 ms delay at
48 kHz echoes exactly 480 samples later): a synced time is rounded to the
nearest sample (at most 10 us off), and anything past ``max_time_ms`` is held
at it.

Changing the time never clicks: the tap does not jump, it *crossfades*
linearly over ``FADE_S`` (30 ms) from the old read position to the new one. A
change that arrives during a fade waits for it to finish. Each echo keeps its
pitch (no tape-style swoop).

The echo path is ``y = HP(LP(line))``; the line receives ``x + feedback * y``,
and the output is ``x + mix * (y - x)``. Both filters are one-pole (6 dB/oct)
with gain <= 1 at every frequency, so any feedback up to 0.98 decays. The
low-pass is off (exactly transparent) at ``highcut_hz`` = 20000, the top of its
range; the high-pass is off at ``lowcut_hz`` = 20, the bottom of its range.

Ping-pong (stereo only; ignored for other channel counts): the line of the left
channel receives ``(L + R) / 2 + feedback * y_right``, the right line receives
``feedback * y_left``. The first echo sounds on the left, the next on the right
``feedback`` times quieter, and so on.

Feedback, mix and the filter coefficients follow their targets with per-sample
one-poles (``SMOOTH_S``), so the output does not depend on block size.

Params ``[time_ms, sync, bpm, feedback, pingpong, lowcut_hz, highcut_hz, mix, sr]``.
State: ``[write, tap, next_tap, fade_pos, feedback, mix, a_lp, a_hp, k, lp_hz, a_lp_target,
hp_hz, a_hp_target]`` (the last five cache values derived from the params) then, per
channel, ``[lp_z, hp_z, line[L]...]`` with ``L = ceil(max_time_ms * sr / 1000) + 1``
(the longest tap is ``L - 1``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from dsp.effect import F32, F64, Effect, bind_params
from dsp.fpu import clean, ftz_begin, ftz_end
from dsp.params import Param, ParamError
from dsp.prefetch import prefetch_range

MAX_TIME_MS = 4000.0
FADE_S = 0.03
SMOOTH_S = 0.02
SNAP = 1e-9  # a smoothed value this close to its target jumps to it
LOWCUT_OFF_HZ = 20.0
HP_LEAK_S = 0.03  # with the low cut off, the high-pass memory fades out with this time constant
HIGHCUT_OFF_HZ = 20000.0

NOTES = ("1/1", "1/2", "1/4", "1/8", "1/16")
SYNC = ("off", *NOTES, *(n + "d" for n in NOTES), *(n + "t" for n in NOTES))

P_TIME, P_SYNC, P_BPM, P_FB, P_PINGPONG, P_LOWCUT, P_HIGHCUT, P_MIX, P_SR = range(9)
S_WRITE, S_TAP, S_NEXT, S_FADE, S_FB, S_MIX, S_ALP, S_AHP = range(8)
# derived values cached across blocks: the smoothing constant, and each filter's target
# coefficient with the cut-off it was computed for (a block pays for exp() only after a change)
S_K, S_LP_HZ, S_LP_A, S_HP_HZ, S_HP_A = range(8, 13)
HEAD = 13
CHANNEL_HEAD = 2  # lp_z, hp_z


def line_length(max_time_ms: float, sr: float) -> int:
    return math.ceil(max_time_ms * sr / 1000.0) + 1


def state_size(channels: int, sr: float, max_time_ms: float = MAX_TIME_MS) -> int:
    return HEAD + channels * (CHANNEL_HEAD + line_length(max_time_ms, sr))


def sync_ms(sync: int, bpm: float) -> float:
    """Milliseconds of a sync division (an index into ``SYNC``, not 0) at ``bpm``."""
    return float(_sync_ms(sync, bpm))


@njit(cache=True, nogil=True, inline="always")
def _sync_ms(sync: int, bpm: float) -> float:  # RT
    index = sync - 1
    group = index // 5
    factor = 1.0 if group == 0 else (1.5 if group == 1 else 2.0 / 3.0)
    beats = 4.0 / 2.0 ** (index % 5) * factor
    return beats * 60000.0 / max(bpm, 1.0)


@njit(cache=True, nogil=True, inline="always")
def _line_len(state: F64, channels: int) -> int:  # RT
    return int((state.shape[0] - HEAD) // channels - CHANNEL_HEAD)


@njit(cache=True, nogil=True, inline="always")
def _target_tap(params: F64, line: int) -> float:  # RT
    sync = int(params[P_SYNC])
    ms = params[P_TIME] if sync == 0 else _sync_ms(sync, params[P_BPM])
    d = math.floor(ms * params[P_SR] / 1000.0 + 0.5)
    return float(min(max(d, 1.0), line - 1.0))


@njit(cache=True, nogil=True, inline="always")
def _coef_lp(params: F64) -> float:  # RT
    f = params[P_HIGHCUT]
    if f >= HIGHCUT_OFF_HZ:
        return 1.0
    return 1.0 - math.exp(-2.0 * math.pi * f / params[P_SR])


@njit(cache=True, nogil=True, inline="always")
def _coef_hp(params: F64) -> float:  # RT
    f = params[P_LOWCUT]
    if f <= LOWCUT_OFF_HZ:
        return 0.0
    return 1.0 - math.exp(-2.0 * math.pi * f / params[P_SR])


@njit(cache=True, nogil=True, inline="always")
def hp_leak(params: F64) -> float:  # RT
    """The factor on the high-pass memory per sample: 1 while the low cut is on. The high-pass
    is ``lp - hp`` with ``hp`` a one-pole of ``lp``; switched off, its coefficient glides to 0
    and ``hp`` would freeze at its last value, a DC offset in every echo from then on (fed
    back, ``-hp / (1 - feedback)``). Off, ``hp`` fades to 0 over ``HP_LEAK_S`` instead."""
    if params[P_LOWCUT] <= LOWCUT_OFF_HZ:
        return math.exp(-1.0 / (HP_LEAK_S * params[P_SR]))
    return 1.0


@njit(cache=True, nogil=True, inline="always")
def echo_filter(  # RT
    y: float, lp: float, hp: float, alp: float, ahp: float, leak: float
) -> tuple[float, float, float]:
    """One sample of the echo path's filters: returns (filtered, lp, hp)."""
    lp = (1.0 - alp) * lp + alp * y
    hp = (1.0 - ahp) * leak * hp + ahp * lp
    return lp - hp, lp, hp


@njit(cache=True, nogil=True, inline="always")
def stereo_writes(  # RT
    xl: float, xr: float, yl: float, yr: float, fb: float, pingpong: bool
) -> tuple[float, float]:
    """What a stereo frame writes into the left and right lines."""
    if pingpong:
        return 0.5 * (xl + xr) + fb * yr, fb * yl
    return xl + fb * yl, xr + fb * yr


@njit(cache=True, nogil=True, inline="always")
def _smooth4(
    a: float, b: float, c: float, d: float, ta: float, tb: float, tc: float, td: float, k: float
) -> tuple[float, float, float, float, bool]:  # RT
    """One per-sample one-pole step of four values; all snap to their targets together."""
    a += k * (ta - a)
    b += k * (tb - b)
    c += k * (tc - c)
    d += k * (td - d)
    if abs(ta - a) < SNAP and abs(tb - b) < SNAP and abs(tc - c) < SNAP and abs(td - d) < SNAP:
        return ta, tb, tc, td, False
    return a, b, c, d, True


@njit(cache=True, nogil=True)
def delay_reset(state: F64, params: F64, channels: int) -> None:  # RT
    """Empty the line and jump every smoothed value to its target."""
    state[:] = 0.0
    tap = _target_tap(params, _line_len(state, channels))
    state[S_TAP] = tap
    state[S_NEXT] = tap
    state[S_FB] = params[P_FB]
    state[S_MIX] = params[P_MIX]
    state[S_ALP] = _coef_lp(params)
    state[S_AHP] = _coef_hp(params)
    state[S_K] = 1.0 - math.exp(-1.0 / (SMOOTH_S * params[P_SR]))
    state[S_LP_HZ] = params[P_HIGHCUT]
    state[S_LP_A] = state[S_ALP]
    state[S_HP_HZ] = params[P_LOWCUT]
    state[S_HP_A] = state[S_AHP]


@njit(cache=True, nogil=True)
def delay_kernel(inp: F32, out: F32, state: F64, params: F64) -> None:  # RT
    """Run the delay over one block; ``inp`` and ``out`` may be the same array."""
    saved = ftz_begin()
    frames, channels = inp.shape
    line = _line_len(state, channels)
    target = _target_tap(params, line)
    fb_t = params[P_FB]
    mix_t = params[P_MIX]
    if state[S_LP_HZ] != params[P_HIGHCUT]:
        state[S_LP_HZ] = params[P_HIGHCUT]
        state[S_LP_A] = _coef_lp(params)
    if state[S_HP_HZ] != params[P_LOWCUT]:
        state[S_HP_HZ] = params[P_LOWCUT]
        state[S_HP_A] = _coef_hp(params)
    alp_t = state[S_LP_A]
    ahp_t = state[S_HP_A]
    leak = hp_leak(params)
    k = state[S_K]
    n_fade = max(math.floor(FADE_S * params[P_SR] + 0.5), 1.0)
    inv_fade = 1.0 / n_fade
    w = int(state[S_WRITE])
    tap = state[S_TAP]
    nxt = state[S_NEXT]
    fade = state[S_FADE]
    fb = state[S_FB]
    mix = state[S_MIX]
    alp = state[S_ALP]
    ahp = state[S_AHP]
    if channels == 2:  # both channels per frame: two independent filter chains overlap
        pingpong = params[P_PINGPONG] >= 0.5
        bl = HEAD + CHANNEL_HEAD
        br = bl + CHANNEL_HEAD + line
        lpl = state[HEAD]
        hpl = state[HEAD + 1]
        lpr = state[br - 2]
        hpr = state[br - 1]
        moving = fb != fb_t or mix != mix_t or alp != alp_t or ahp != ahp_t
        for i in range(frames):
            if moving:
                fb, mix, alp, ahp, moving = _smooth4(
                    fb, mix, alp, ahp, fb_t, mix_t, alp_t, ahp_t, k)
            if nxt == tap and tap != target:
                nxt = target
                fade = 0.0
            r = w - int(tap)
            if r < 0:
                r += line
            yl = state[bl + r]
            yr = state[br + r]
            if nxt != tap:
                r2 = w - int(nxt)
                if r2 < 0:
                    r2 += line
                fade += 1.0
                t = fade * inv_fade
                yl += t * (state[bl + r2] - yl)
                yr += t * (state[br + r2] - yr)
                if fade >= n_fade:
                    tap = nxt
                    fade = 0.0
            yl, lpl, hpl = echo_filter(yl, lpl, hpl, alp, ahp, leak)
            yr, lpr, hpr = echo_filter(yr, lpr, hpr, alp, ahp, leak)
            xl = clean(inp[i, 0])
            xr = clean(inp[i, 1])
            state[bl + w], state[br + w] = stereo_writes(xl, xr, yl, yr, fb, pingpong)
            out[i, 0] = xl + mix * (yl - xl)
            out[i, 1] = xr + mix * (yr - xr)
            w += 1
            if w == line:
                w = 0
        state[HEAD] = lpl
        state[HEAD + 1] = hpl
        state[br - 2] = lpr
        state[br - 1] = hpr
        # the next block (if as long) reads from here on: start loading it now
        r = w - int(tap)
        if r < 0:
            r += line
        prefetch_range(state, bl + r, min(frames, line - r))
        prefetch_range(state, br + r, min(frames, line - r))
        prefetch_range(state, bl + w, min(frames, line - w))  # and writes to
        prefetch_range(state, br + w, min(frames, line - w))
    else:
        w0, tap0, nxt0, fade0, fb0, mix0, alp0, ahp0 = w, tap, nxt, fade, fb, mix, alp, ahp
        for c in range(channels):
            # every channel replays the same ramps and fades from the saved values
            w, tap, nxt, fade, fb, mix, alp, ahp = w0, tap0, nxt0, fade0, fb0, mix0, alp0, ahp0
            at = HEAD + c * (CHANNEL_HEAD + line)
            buf = at + CHANNEL_HEAD
            lp = state[at]
            hp = state[at + 1]
            moving = fb != fb_t or mix != mix_t or alp != alp_t or ahp != ahp_t
            for i in range(frames):
                if moving:
                    fb, mix, alp, ahp, moving = _smooth4(
                        fb, mix, alp, ahp, fb_t, mix_t, alp_t, ahp_t, k)
                if nxt == tap and tap != target:
                    nxt = target
                    fade = 0.0
                r = w - int(tap)
                if r < 0:
                    r += line
                y = state[buf + r]
                if nxt != tap:
                    r2 = w - int(nxt)
                    if r2 < 0:
                        r2 += line
                    fade += 1.0
                    y += fade * inv_fade * (state[buf + r2] - y)
                    if fade >= n_fade:
                        tap = nxt
                        fade = 0.0
                y, lp, hp = echo_filter(y, lp, hp, alp, ahp, leak)
                x = clean(inp[i, c])
                state[buf + w] = x + fb * y
                out[i, c] = x + mix * (y - x)
                w += 1
                if w == line:
                    w = 0
            state[at] = lp
            state[at + 1] = hp
    state[S_WRITE] = w
    state[S_TAP] = tap
    state[S_NEXT] = nxt
    state[S_FADE] = fade
    state[S_FB] = fb
    state[S_MIX] = mix
    state[S_ALP] = alp
    state[S_AHP] = ahp
    ftz_end(saved)


class Delay(Effect):
    """Echoes: time in ms or a note value at a tempo, filtered feedback, ping-pong, dry/wet.

    ``max_time_ms`` (constructor only, 1..60000) sizes the preallocated line;
    longer times are held at it.
    """

    PARAMS = (
        Param("time_ms", "ms", 1.0, MAX_TIME_MS, 375.0, "echo time when sync is off"),
        Param("sync", "", 0, len(SYNC) - 1, 0,
              "off, or a note value at bpm (d dotted, t triplet)", SYNC),
        Param("bpm", "bpm", 20.0, 300.0, 120.0, "tempo for synced times"),
        Param("feedback", "", 0.0, 0.98, 0.35, "level of each echo relative to the one before"),
        Param("pingpong", "", 0, 1, 0, "stereo: echoes alternate left and right", ("off", "on")),
        Param("lowcut_hz", "Hz", LOWCUT_OFF_HZ, 2000.0, LOWCUT_OFF_HZ,
              "high-pass in the echo path (off at 20)"),
        Param("highcut_hz", "Hz", 200.0, HIGHCUT_OFF_HZ, HIGHCUT_OFF_HZ,
              "low-pass in the echo path (off at 20000)"),
        Param("mix", "", 0.0, 1.0, 0.3, "dry/wet: 0 dry only, 1 echoes only"),
    )
    EXAMPLE = {"sync": "1/8", "bpm": 128.0, "feedback": 0.45, "pingpong": "on",
               "lowcut_hz": 150.0, "highcut_hz": 6000.0, "mix": 0.35}

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        max_time_ms: float = MAX_TIME_MS,
        **kw: Any,
    ) -> None:
        if isinstance(max_time_ms, bool) or not isinstance(max_time_ms, int | float) or not (
            1.0 <= max_time_ms <= 60000.0
        ):
            raise ParamError(f"max_time_ms: {max_time_ms!r} is outside 1..60000")
        self.max_time_ms = float(max_time_ms)
        super().__init__(sample_rate, channels, **kw)

    def make_state(self) -> F64:
        self.kp = bind_params(self)
        return np.zeros(state_size(self.channels, self.sample_rate, self.max_time_ms))

    def on_reset(self) -> None:
        delay_reset(self.state, self.kp, self.channels)

    def run(self, inp: F32, out: F32) -> None:  # RT
        delay_kernel(inp, out, self.state, self.kp)
