"""A bank of channel strips rendered by one jitted call per block (the W64 workload).

``StripBank(tracks, sample_rate)`` runs N stereo tracks, each

    ParametricEQ4 -> Compressor -> Delay -> Gain -> Pan

sums them into a stereo bus (``Summer``'s ramped headroom gain) and puts the master
``Limiter`` (lookahead, true-peak ceiling) on the bus. ``process(inputs)`` takes float32
(tracks, frames, 2) and returns a view of a preallocated (frames, 2) buffer.

Same sound as the effects. Every stage does the arithmetic of the effect it stands for, in
the same order and with the same float32 rounding between stages, and ramps its parameters
on the same grid: the EQ coefficients and the pan gains step on the absolute 16-sample grid,
the delay's feedback, mix and filters move per sample and its time changes crossfade over 30
ms, the gain ramps linearly over its ``ramp_ms`` (15 ms), and the compressors run
dsp.gaincomputer, the gain computer of the Compressor effect itself. The one deliberate
difference: the delay lines hold float32 (the Delay effect holds float64), which keeps 64
tracks x 4 s of line at 98 MB instead of 197 MB; echoes differ from the Delay effect's by
float32 rounding. With the delays dry the bank's output is bit for bit the chain's; with
them, within 2e-7 (tests/dsp/test_strip.py). The output does not depend on the block size
(bit for bit).

Speed (the stage kernels are in dsp.strip_stages, which says how they vectorise). A block is
cut into chunks of ``CHUNK`` frames that pass through the stages one after the other: load
(transpose the tracks onto the SIMD axis, clean), EQ, the compressors' detectors (vectorised)
and gain computers (per track, scalar: their hop boundaries differ from track to track, since
a louder frame ends a hop early; each writes one output factor per frame), the delay (whose
vectorised loop applies the compressor factors on its way in), gain/pan/sum, headroom,
limiter. Parameter logic (EQ coefficients, pan laws) runs per track, scalar, at grid points
and only while a parameter moves. A track whose delay is moving (time crossfade, smoothing)
takes an exact scalar path for that block. The sum over tracks runs in track order per
frame, as the Summer adds them. Denormals are flushed for the whole call
(``ftz_begin``/``ftz_end``).

Arrays. ``strip_kernel(inp, out, state, params, work)``: ``inp`` float32 (tracks, frames, 2)
and ``out`` float32 (frames, 2), both C-contiguous; ``state`` and ``params`` float64 and
``work`` float32, laid out by ``sections`` (sections in this order):

* state: master scalars ``M_*``; EQ smoothed values (4 bands, 4, tracks) ``[type, log2 f,
  q, gain_db]``, coefficients (4, 5, tracks) ``[b0 b1 b2 a1 a2]``, filter memory (4, 2, 2,
  tracks) and per-call enable flags (4, tracks); compressor states (tracks, STATE_SIZE) in
  ``dsp.gaincomputer``'s layout; delay lanes (``D_ROWS``, tracks); gain lanes (``G_ROWS``,
  tracks); pan lanes (``PN_ROWS``, tracks); a scratch of 8; the compressors' output factors
  (CHUNK, tracks) and detector levels (CHUNK, tracks); scratch rows (``R_ROWS``, tracks);
  the limiter state (``dsp.limiter.layout``).
* params: per track, each stage's ``PARAMS`` values followed by the sample rate (the layout
  of that effect's kernel params): EQ (tracks, 21), compressor (tracks, 10), delay
  (tracks, 9), gain (tracks, 4), pan (tracks, 3); then the bus ``[headroom_db, sr]`` and the
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
from dsp.biquad import SMOOTH_S as EQ_SMOOTH_S
from dsp.compressor import Compressor
from dsp.delay import (
    FADE_S,
    MAX_TIME_MS,
    P_FB,
    P_HIGHCUT,
    P_LOWCUT,
    P_MIX,
    Delay,
    _coef_hp,
    _coef_lp,
    _target_tap,
    line_length,
)
from dsp.delay import SMOOTH_S as DELAY_SMOOTH_S
from dsp.effect import F32, F64, SAMPLE_RATES
from dsp.fpu import ftz_begin, ftz_end
from dsp.gaincomputer import PARAM_SIZE as COMP_PARAMS
from dsp.gaincomputer import STATE_SIZE as COMP_STATE
from dsp.gaincomputer import compressor_snap
from dsp.limiter import T_DELAY as LIMITER_T_DELAY
from dsp.limiter import Limiter, layout, limiter_kernel, limiter_snap, ring_size
from dsp.mix import Summer
from dsp.params import Param, ParamError, find
from dsp.stereo import HOP as PAN_HOP
from dsp.stereo import SMOOTH_S as PAN_SMOOTH_S
from dsp.stereo import Gain, Pan, gain_target, pan_gains
from dsp.strip_stages import (
    BANDS,
    CHUNK,
    D_AHP,
    D_ALP,
    D_FB,
    D_HP_A,
    D_HP_HZ,
    D_K,
    D_LP_A,
    D_LP_HZ,
    D_MIX,
    D_NXT,
    D_ROWS,
    D_TAP,
    G_DB,
    G_MUTE,
    G_N,
    G_POS,
    G_ROWS,
    G_START,
    G_TARGET,
    HOP,
    M_COUNTER,
    M_EQ_MOVING,
    M_SIZE,
    M_SUM_GAIN,
    M_WRITE,
    MP_HEADROOM,
    MP_SR,
    PN_GL0,
    PN_GL1,
    PN_GR0,
    PN_GR1,
    PN_LAW,
    PN_POS,
    PN_ROWS,
    R_ROWS,
    comp_prepare,
    delay,
    delay_prepare,
    detect,
    eq_prepare,
    eq_run,
    gain_computers,
    gain_pan_prepare,
    gain_pan_sum,
    headroom,
    load,
)

assert EQ_HOP == HOP and PAN_HOP == HOP  # one shared counter serves both grids
SCRATCH = 8
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
    per_track = (BANDS * (4 + 5 + 4 + 1) + COMP_STATE + D_ROWS + G_ROWS + PN_ROWS
                 + 2 * CHUNK + R_ROWS)
    return M_SIZE + tracks * per_track + SCRATCH + layout(2, sample_rate)[2]


def params_size(tracks: int) -> int:
    return tracks * (EQ_P + COMP_PARAMS + DELAY_P + GAIN_P + PAN_P) + MP_SIZE + LP_SIZE


def work_size(tracks: int, line: int) -> int:
    return 2 * CHUNK * 2 * tracks + CHUNK * 2 + tracks * line * 2


@njit(cache=True, nogil=True)
def sections(state: F64, params: F64, work: F32, tracks: int) -> Any:  # RT
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
    det = state[at:at + CHUNK * t].reshape((CHUNK, t))
    at += CHUNK * t
    rows = state[at:at + R_ROWS * t].reshape((R_ROWS, t))
    at += R_ROWS * t
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
    return (m, eqs, eqc, eqz, eqon, cs, ds, gs, ps, tmp, cg, det, rows, ls,
            eqp, cp, dp, gp, pp, mp, lp, x, dbuf, bus, lines)


# -- reset --------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def strip_reset(  # RT
    state: F64, params: F64, work: F32, tracks: int, first: int, second: int, ring: int
) -> None:
    """Clear every state; smoothed values jump to their targets (each effect's reset)."""
    (m, eqs, eqc, _, _, cs, ds, gs, ps, tmp, _, _, _, ls,
     eqp, cp, dp, gp, pp, mp, lp, _, _, _, lines) = sections(state, params, work, tracks)
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
        gs[G_DB, t] = gp[t, 0]
        gs[G_MUTE, t] = gp[t, 1]
        ps[PN_POS, t] = pp[t, 0]  # pan_reset
        ps[PN_LAW, t] = pp[t, 1]
        gl, gr = pan_gains(pp[t, 0], int(pp[t, 1]))
        ps[PN_GL0, t] = gl
        ps[PN_GR0, t] = gr
        ps[PN_GL1, t] = gl
        ps[PN_GR1, t] = gr
    m[M_SUM_GAIN] = 10.0 ** (mp[MP_HEADROOM] / 20.0)
    limiter_snap(ls, lp, first, second, ring)


@njit(cache=True, nogil=True)
def strip_kernel(inp: F32, out: F32, state: F64, params: F64, work: F32) -> None:  # RT
    """Render one block: ``inp`` (tracks, frames, 2) -> ``out`` (frames, 2), laid out as the
    module says; ``strip_reset`` prepares ``state``."""
    saved = ftz_begin()
    tracks, frames = inp.shape[0], inp.shape[1]
    (m, eqs, eqc, eqz, eqon, cs, ds, gs, ps, tmp, cg, det, rows, ls,
     eqp, cp, dp, gp, pp, mp, lp, x, dbuf, bus, lines) = sections(state, params, work, tracks)
    sr = mp[MP_SR]
    line = lines.shape[1]
    eq_prepare(m, eqs, eqon, eqp)
    eq_moving = m[M_EQ_MOVING] > 0.5
    k_eq = 1.0 - math.exp(-HOP / (EQ_SMOOTH_S * sr))
    comp_prepare(rows, cp)
    shortest, plain = delay_prepare(ds, dp, line)
    n_fade = max(math.floor(FADE_S * sr + 0.5), 1.0)
    inv_fade = 1.0 / n_fade
    pan_moving = gain_pan_prepare(gs, gp, ps, pp)
    k_pan = 1.0 - math.exp(-HOP / (PAN_SMOOTH_S * sr))
    counter = int(m[M_COUNTER])
    w = int(m[M_WRITE])
    start = 0
    while start < frames:
        n = min(CHUNK, frames - start)
        load(inp, x, start, n)
        eq_run(x, n, counter, m, eqs, eqc, eqz, eqon, eqp, eq_moving, k_eq, sr, tmp)
        detect(x, n, det, rows)
        gain_computers(det, n, cg, cs, cp)
        w = delay(x, n, cg, dbuf, lines, ds, dp, rows, w, shortest, plain, n_fade, inv_fade)
        gain_pan_sum(x, n, bus, counter, gs, ps, pp, rows, pan_moving, k_pan)
        headroom(bus, n, m, mp)
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
        views = sections(self.state, self.params, self.work, tracks)
        eqp, cp, dp, gp, pp, mp, lp = views[14:21]
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
