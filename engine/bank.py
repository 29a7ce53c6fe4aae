"""Tracks whose insert chain is EQ -> compressor -> delay, rendered side by side.

Rendering every track's effects one kernel at a time leaves each filter's recursion
waiting on itself; the strip bank (dsp/strip.py, dsp/strip_stages.py) lays tracks along
the SIMD axis instead and runs the same arithmetic several times faster. The engine hands
it every track whose chain has exactly that shape (``BANK_SHAPE``, all enabled): one
``OP_BANK`` of engine.render copies those tracks' buffers (after their sources) into the
bank's (frames, 2, tracks) layout, runs the EQ, compressor, delay and fader (gain, pan)
stages, and copies the result back for the tracks' post-fader sends, meters and the master.
A track with a pre-fader send stays out (the bank has no pre-fader signal to give it).

The effect objects stay the source of truth for parameters: the bank copies each track's
EQ, compressor and delay params from them at every block (so ``set_param`` and automation
reach it unchanged); their own state is not used while the track is in a bank. Per track the
bank runs the effects' arithmetic (tests/dsp/test_strip.py: bit for bit, the delay within
float32 rounding of its line).

A bank is rebuilt when its membership changes (a track added, removed, or changing the shape
of its chain); ``adopt`` carries every staying track's state (EQ memory, compressor state,
delay line and filters) over by track id, so adding a track does not cut the others' echoes.
A track that joins a bank starts from its effects' parameters with empty state; one that
leaves resets its effect objects (their state is stale).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from dsp.biquad import SMOOTH_S as EQ_SMOOTH_S
from dsp.delay import FADE_S
from dsp.effect import F32, F64
from dsp.fpu import ftz_begin, ftz_end
from dsp.stereo import SMOOTH_S as PAN_SMOOTH_S
from dsp.strip import StripBank, sections
from dsp.strip_stages import (
    CHUNK,
    HOP,
    M_COUNTER,
    M_EQ_MOVING,
    M_WRITE,
    MP_SR,
    clean_block,
    comp_prepare,
    delay,
    delay_prepare,
    detect,
    eq_prepare,
    eq_run,
    gain_computers,
    gain_pan_prepare,
    gain_pan_sum,
)
from engine.model import Track

BANK_SHAPE = ("eq", "compressor", "delay")
MIN_TRACKS = 4  # fewer than this gain little from the SIMD axis
I64 = Any


def bankable(track: Track) -> bool:
    """The chain has the bank's shape, and no send needs the signal before the fader (the
    bank runs the fader too)."""
    return (tuple(e.type for e in track.chain) == BANK_SHAPE
            and all(e.enabled for e in track.chain)
            and not any(s.pre_fader for s in track.sends))


class ChainBank:
    """The bank of ``ids`` (track ids, in order). Arrays: ``strip`` (a StripBank whose state,
    params and work arrays the kernel uses; its master sections stay unused), ``slots``
    (int64 (5, tracks): the params-list slots of each track's EQ, compressor, delay, fader
    gain and fader pan, filled by the graph), ``bufidx`` (int64 (tracks,): each track's
    buffer)."""

    def __init__(self, ids: tuple[str, ...], sample_rate: float, max_time_ms: float,
                 kernel_params: list[tuple[F64, F64, F64, F64, F64]]) -> None:
        self.ids = ids
        self.strip = StripBank(len(ids), sample_rate, max_time_ms=max_time_ms)
        self.bufidx = np.zeros(len(ids), dtype=np.int64)
        self.slots = np.zeros((5, len(ids)), dtype=np.int64)
        views = sections(self.strip.state, self.strip.params, self.strip.work, len(ids))
        eqp, cp, dp, gp, pp = views[14:19]
        for t, (e, c, d, g, p) in enumerate(kernel_params):
            eqp[t, :] = e
            cp[t, :] = c
            dp[t, :] = d
            gp[t, :] = g
            pp[t, :] = p
        self.strip.reset()  # smoothed values snap to those params

    def adopt(self, old: ChainBank) -> None:
        """Take over the state of every track both banks hold (by id)."""
        t_new = len(self.ids)
        t_old = len(old.ids)
        new = sections(self.strip.state, self.strip.params, self.strip.work, t_new)
        was = sections(old.strip.state, old.strip.params, old.strip.work, t_old)
        m, eqs, eqc, eqz, eqon, cs, ds, gs, ps = new[:9]
        m0, eqs0, eqc0, eqz0, eqon0, cs0, ds0, gs0, ps0 = was[:9]
        lines, lines0 = new[24], was[24]
        m[M_COUNTER] = m0[M_COUNTER]
        m[M_WRITE] = m0[M_WRITE]  # the lines keep their phase: rows copy as they are
        where = {tid: k for k, tid in enumerate(old.ids)}
        for t, tid in enumerate(self.ids):
            k = where.get(tid)
            if k is None:
                continue
            eqs[..., t] = eqs0[..., k]
            eqc[..., t] = eqc0[..., k]
            eqz[..., t] = eqz0[..., k]
            eqon[..., t] = eqon0[..., k]
            cs[t] = cs0[k]
            ds[:, t] = ds0[:, k]
            gs[:, t] = gs0[:, k]
            ps[:, t] = ps0[:, k]
            if lines.shape[1] == lines0.shape[1]:
                lines[t] = lines0[k]


@njit(cache=True, nogil=True, inline="always")
def _copy(src: F64, dst: F64) -> None:  # RT
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(cache=True, nogil=True)
def bank_block(n: int, bufs: F32, bufidx: I64, slots: I64, params: Any, state: F64,
               bparams: F64, work: F32) -> None:  # RT
    """EQ, compressor, delay and fader of every banked track over frames 0:n of its
    buffer."""
    saved = ftz_begin()
    tracks = bufidx.shape[0]
    (m, eqs, eqc, eqz, eqon, cs, ds, gs, ps, tmp, cg, det, rows, _,
     eqp, cp, dp, gp, pp, mp, _, x, dbuf, bus, lines) = sections(state, bparams, work, tracks)
    for t in range(tracks):  # the effects' parameters, as set() and automation left them
        _copy(params[slots[0, t]], eqp[t])
        _copy(params[slots[1, t]], cp[t])
        _copy(params[slots[2, t]], dp[t])
        _copy(params[slots[3, t]], gp[t])
        _copy(params[slots[4, t]], pp[t])
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
    while start < n:
        count = min(CHUNK, n - start)
        for t in range(tracks):  # the tracks' buffers onto the SIMD axis
            b = bufs[bufidx[t]]
            for i in range(count):
                x[i, 0, t] = b[start + i, 0]
                x[i, 1, t] = b[start + i, 1]
        clean_block(x, count)
        eq_run(x, count, counter, m, eqs, eqc, eqz, eqon, eqp, eq_moving, k_eq, sr, tmp)
        detect(x, count, det, rows)
        gain_computers(det, count, cg, cs, cp)
        w = delay(x, count, cg, dbuf, lines, ds, dp, rows, w, shortest, plain, n_fade,
                  inv_fade)
        gain_pan_sum(x, count, bus, counter, gs, ps, pp, rows, pan_moving, k_pan, False)
        for t in range(tracks):  # and back
            b = bufs[bufidx[t]]
            for i in range(count):
                b[start + i, 0] = x[i, 0, t]
                b[start + i, 1] = x[i, 1, t]
        counter = (counter + count) % HOP
        start += count
    m[M_COUNTER] = counter
    m[M_WRITE] = w
    ftz_end(saved)
