"""The per-block hot path: one jitted call renders the whole graph (``render_block``).

The graph (engine.graph compiles it from the project) is a flat schedule of operations over a
pool of preallocated stereo buffers. Each row of ``ops`` (int64, ``OPS_WIDTH`` columns) and
``opf`` (float64, ``OPF_WIDTH``) is one operation:

==========  ====================================================================
OP_CLEAR    ``[op, buf]``: silence a buffer
OP_CLIP     ``[op, buf, clip, start, offset, length, fade_in, fade_out]`` (samples), opf
            ``[gain]``: add an audio clip's samples where the timeline segments meet it
OP_INSTR    ``[op, buf, kind, state, params, events, sample]``, opf ``[root]``: render an
            instrument (synth or sampler) with this block's MIDI events
OP_FX       ``[op, buf, kind, state, params]``: run an effect kernel in place
OP_MIX      ``[op, src, dst, pdc]``: ``dst += src`` through a compensation delay (-1: none)
OP_SEND     ``[op, src, dst, state, params, pdc, scratch]``: ``dst += gain(src)``
OP_METER    ``[op, buf, row]``: peak and power of a strip into the meter accumulators
OP_OUT      ``[op, buf]``: the block's output
OP_METRO    ``[op, buf]``: metronome clicks (when on)
OP_INPUT    ``[op, buf, port]``: a live input port's ring into the buffer
OP_TAP      ``[op, buf, io]``: copy a buffer into ``io[io]`` (stems, offline)
OP_BANK     ``[op, state, params, work, bufidx, slots]``: EQ, compressor and delay of
            several tracks side by side (engine.bank)
==========  ====================================================================

``state``, ``params``, ``pdc``... are indices into typed lists of float64 arrays: the effects'
own arrays, so a control thread's ``set()`` on an effect writes what the kernel reads (one
8-byte store per number: the kernel sees the old or the new value, never a torn one).

The transport, the block's timeline segments, the metronome and automation are
engine.timeline's; a block starts with them.

Meter frames go out through ``meter_ring`` (records ``[block, row, peak_l, peak_r, rms_l,
rms_r]``) about 30 times a second, and the output is copied into ``tap`` (a ring of the last
frames, for the loudness and spectrum readers off this thread), and every strip's block into
its own ring (``f3[F3_STRIP_TAPS]``: per-strip loudness) while a monitor is attached
(engine.monitor). Nothing here allocates,
locks or raises.
"""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from dsp.biquad import biquad_cascade
from dsp.compressor import compressor_kernel
from dsp.delay import delay_kernel
from dsp.effect import F32, F64
from dsp.fpu import ftz_begin, ftz_end
from dsp.gate import gate_kernel
from dsp.limiter import limiter_kernel
from dsp.modulation import modulated_delay_kernel
from dsp.pitch import pitch_shift
from dsp.reverb import reverb_kernel
from dsp.saturation import saturation_kernel
from dsp.stereo import gain_kernel, pan_kernel, width_kernel
from engine.bank import bank_block
from engine.effects import (
    K_CHORUS,
    K_COMPRESSOR,
    K_DELAY,
    K_EQ,
    K_FLANGER,
    K_GAIN,
    K_GATE,
    K_LIMITER,
    K_PAN,
    K_PITCH,
    K_REVERB,
    K_SATURATION,
    K_WIDTH,
)
from engine.instruments import render_instrument
from engine.timeline import (
    T_BLOCKS,
    T_EVENTS_DROPPED,
    T_JUMP,
    T_LATE,
    T_METER_DROPS,
    T_METER_EVERY,
    T_METRO_ON,
    T_NSEG,
    T_PLAYING,
    T_STRIP_TAPS,
    T_TAP_WRITE,
    T_WRAP_AT,
    automate,
    drain,
    metronome,
    segments,
)

I64 = Any  # numpy int64 arrays (numpy.typing has no short alias that mypy accepts here)

(OP_CLEAR, OP_CLIP, OP_INSTR, OP_FX, OP_MIX, OP_SEND, OP_METER, OP_OUT, OP_METRO,
 OP_INPUT, OP_TAP, OP_BANK) = range(12)
OPS_WIDTH = 8
OPF_WIDTH = 2


# the typed lists render_block takes, and the slot of each array in them
F1_TRANSPORT = 0  # float64 1-D
(F2_OPF, F2_SEG, F2_TEMPO, F2_RING, F2_METERS, F2_METER_RING, F2_LIMITS, F2_POINTS,
 F2_EVENTS) = range(9)
F2_FIXED = 9  # then each instrument track's event table
F3_BUFS, F3_STRIP_TAPS = range(2)  # float32 3-D
I1_RING, I1_METER_RING = range(2)  # int64 1-D; then each bank's buffer indices
I1_FIXED = 2
I2_OPS, I2_LANES = range(2)  # int64 2-D; then each bank's parameter slots
I2_FIXED = 2
# w1 (float32 1-D): each bank's work array
IO_OUT, IO_TAP, IO_STEMS = range(3)  # float32 2-D; IO_STEMS.. one per track (stems)

# meters: per row [peak_l, peak_r, sumsq_l, sumsq_r, frames]
M_WIDTH = 5
METER_RECORD = 6



@njit(cache=True, nogil=True)
def _effect(kind: int, x: F32, st: F64, pr: F64) -> None:  # RT
    """One effect kernel in place on ``x`` (every kernel allows ``inp is out``)."""
    if kind == K_EQ:
        biquad_cascade(x, x, st, pr)
    elif kind == K_COMPRESSOR:
        compressor_kernel(x, x, st, pr)
    elif kind == K_GATE:
        gate_kernel(x, x, st, pr)
    elif kind == K_LIMITER:
        limiter_kernel(x, x, st, pr)
    elif kind == K_DELAY:
        delay_kernel(x, x, st, pr)
    elif kind == K_REVERB:
        reverb_kernel(x, x, st, pr)
    elif kind in (K_CHORUS, K_FLANGER):
        modulated_delay_kernel(x, x, st, pr)
    elif kind == K_SATURATION:
        saturation_kernel(x, x, st, pr)
    elif kind == K_GAIN:
        gain_kernel(x, x, st, pr)
    elif kind == K_PAN:
        pan_kernel(x, x, st, pr)
    elif kind == K_WIDTH:
        width_kernel(x, x, st, pr)
    elif kind == K_PITCH:
        pitch_shift(x, x, st, pr)


# -- sources ------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _clip(x: F32, data: F32, row: I64, gain: float, seg: F64, nseg: int, tr: F64) -> None:  # RT
    """Add a clip's samples where the segments meet it (gain, fades, segment envelope)."""
    start = row[3]
    offset = row[4]
    length = row[5]
    fade_in = row[6]
    fade_out = row[7]
    frames = data.shape[0]
    for s in range(nseg):
        tl = int(seg[s, 0])
        off = int(seg[s, 1])
        count = int(seg[s, 2])
        g0 = seg[s, 3]
        dg = seg[s, 4]
        a = max(tl, start)
        b = min(tl + count, start + length)
        if a >= b:
            continue
        if frames == 0:  # not decoded yet (or it failed): silence, counted
            tr[T_LATE] += b - a
            continue
        r0 = a - start
        r1 = b - start
        src0 = offset + r0
        if (g0 == 1.0 and dg == 0.0 and r0 >= fade_in and length - r1 >= fade_out
                and src0 >= 0 and offset + r1 <= frames):  # the plain middle of a clip
            x_flat = x.reshape(-1)
            d_flat = data.reshape(-1)
            at = 2 * (off + a - tl)
            at_src = 2 * src0
            for j in range(2 * (b - a)):
                x_flat[at + j] += d_flat[at_src + j] * gain
            continue
        for t in range(a, b):
            r = t - start
            src = offset + r
            if src < 0 or src >= frames:
                continue
            g = gain
            if r < fade_in:
                g *= (r + 0.5) / fade_in
            q = length - 1 - r
            if q < fade_out:
                g *= (q + 0.5) / fade_out
            i = t - tl
            e = g0 + dg * i
            g *= 0.0 if e < 0.0 else (1.0 if e > 1.0 else e)
            x[off + i, 0] += data[src, 0] * g
            x[off + i, 1] += data[src, 1] * g


@njit(cache=True, nogil=True)
def _input(x: F32, n: int, ring: F32, ridx: I64, tr: F64) -> None:  # RT
    """Up to ``n`` frames from a live input ring (single producer: the network side); what is
    missing plays as silence and is counted."""
    head = ridx[0]
    tail = ridx[1]
    cap = ring.shape[0]
    have = min(tail - head, n)
    for i in range(have):
        j = (head + i) % cap
        x[i, 0] = ring[j, 0]
        x[i, 1] = ring[j, 1]
    for i in range(max(have, 0), n):
        x[i, 0] = 0.0
        x[i, 1] = 0.0
    if have < n:
        tr[T_LATE] += n - max(have, 0)
    ridx[0] = head + max(have, 0)


# -- mixing -------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _add(src: F32, dst: F32, n: int) -> None:  # RT
    """``dst += src`` over frames 0:n as one flat loop (a loop body that touches both
    channels of a frame vectorises badly; a flat one well)."""
    s = src.reshape(-1)
    d = dst.reshape(-1)
    for j in range(2 * n):
        d[j] += s[j]


@njit(cache=True, nogil=True, inline="always")
def _zero(x: F32, n: int) -> None:  # RT
    flat = x.reshape(-1)
    for j in range(2 * n):
        flat[j] = 0.0


@njit(cache=True, nogil=True)
def _mix_delayed(src: F32, dst: F32, n: int, line: F64) -> None:  # RT
    """``dst += src`` delayed by ``line[1]`` samples (plugin delay compensation); the line is
    ``[write, delay, (delay x 2) samples]``."""
    d = int(line[1])
    if d <= 0:
        _add(src, dst, n)
        return
    w = int(line[0])
    for i in range(n):
        at = 2 + 2 * w
        dst[i, 0] += line[at]
        dst[i, 1] += line[at + 1]
        line[at] = src[i, 0]
        line[at + 1] = src[i, 1]
        w += 1
        if w == d:
            w = 0
    line[0] = w


@njit(cache=True, nogil=True)
def _meter(x: F32, n: int, acc: F64) -> None:  # RT
    """Peak and sum of squares per channel (locals, not the accumulator array, in the loop:
    a store to an array it cannot prove apart from ``x`` keeps LLVM from keeping them in
    registers)."""
    for c in range(2):
        peak = acc[c]
        power = acc[2 + c]
        for i in range(n):
            v = float(x[i, c])
            a = v if v >= 0.0 else -v
            peak = a if a > peak else peak
            power += v * v
        acc[c] = peak
        acc[2 + c] = power
    acc[4] += n


@njit(cache=True, nogil=True)
def _strip_tap(x: F32, n: int, ring: F32, tr: F64) -> None:  # RT
    """A strip's block into its ring of recent audio, at the output tap's position (every
    strip writes the same frames of the timeline there; engine.monitor reads them)."""
    cap = ring.shape[0]
    if cap < n:  # the placeholder of a graph bound before the rings were made
        return
    w = int(tr[T_TAP_WRITE]) % cap
    src = x.reshape(-1)
    flat = ring.reshape(-1)
    first = min(n, cap - w)
    for j in range(2 * first):
        flat[2 * w + j] = src[j]
    for j in range(2 * first, 2 * n):
        flat[j - 2 * first] = src[j]


@njit(cache=True, nogil=True)
def _send_meters(meters: F64, mring: F64, midx: I64, tr: F64) -> None:  # RT
    """Every ``T_METER_EVERY`` blocks: one record per strip into the return ring (dropped and
    counted when the reader is behind), then clear the accumulators."""
    every = max(int(tr[T_METER_EVERY]), 1)
    if int(tr[T_BLOCKS]) % every != 0:
        return
    cap = mring.shape[0]
    for row in range(meters.shape[0]):
        if midx[1] - midx[0] >= cap:
            tr[T_METER_DROPS] += 1.0
        else:
            rec = mring[midx[1] % cap]
            frames = max(meters[row, 4], 1.0)
            rec[0] = tr[T_BLOCKS]
            rec[1] = row
            rec[2] = meters[row, 0]
            rec[3] = meters[row, 1]
            rec[4] = math.sqrt(meters[row, 2] / frames)
            rec[5] = math.sqrt(meters[row, 3] / frames)
            midx[1] += 1
        for j in range(M_WIDTH):
            meters[row, j] = 0.0


# -- the block ----------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def render_block(n: int, args: Any) -> None:  # RT
    """Render ``n`` frames of the graph into ``io[IO_OUT][:n]``.

    Every array comes in a typed list (slots ``F1_*``, ``F2_*``... above), and the lists in
    one ``engine.blockargs.BlockArgs``: numba wraps each numpy array passed from Python in a
    new runtime object, one allocation per array per call, while a typed list's arrays are
    wrapped once, when they are put in; and one object unboxes faster than twelve lists."""
    saved = ftz_begin()
    f1 = args.f1
    f2 = args.f2
    f3 = args.f3
    i1 = args.i1
    i2 = args.i2
    io = args.io
    states = args.states
    params = args.params
    clips = args.clips
    inputs = args.inputs
    input_idx = args.input_idx
    w1 = args.w1
    tr = f1[F1_TRANSPORT]
    opf = f2[F2_OPF]
    seg = f2[F2_SEG]
    meters = f2[F2_METERS]
    bufs = f3[F3_BUFS]
    ops = i2[I2_OPS]
    out = io[IO_OUT]
    tap = io[IO_TAP]
    drain(f2[F2_RING], i1[I1_RING], tr)
    if tr[T_PLAYING] > 0.5:
        automate(tr, n, i2[I2_LANES], f2[F2_LIMITS], f2[F2_POINTS], params)
    nseg = segments(tr, n, seg)
    main = int(tr[T_NSEG])
    for k in range(ops.shape[0]):
        row = ops[k]
        op = row[0]
        if op == OP_CLEAR:
            _zero(bufs[row[1]][:n], n)
        elif op == OP_CLIP:
            _clip(bufs[row[1]][:n], clips[row[2]], row, opf[k, 0], seg, nseg, tr)
        elif op == OP_INSTR:
            tr[T_EVENTS_DROPPED] += render_instrument(
                bufs[row[1]][:n], row[2], f2[row[5]], f2[F2_EVENTS], clips[row[6]], opf[k, 0],
                states[row[3]], params[row[4]], seg, main, tr[T_JUMP] > 0.5, tr[T_WRAP_AT])
        elif op == OP_FX:
            _effect(row[2], bufs[row[1]][:n], states[row[3]], params[row[4]])
        elif op == OP_BANK:
            bank_block(n, bufs, i1[row[4]], i2[row[5]], params, states[row[1]], params[row[2]],
                       w1[row[3]])
        elif op == OP_MIX:
            src = bufs[row[1]][:n]
            dst = bufs[row[2]][:n]
            if row[3] >= 0:
                _mix_delayed(src, dst, n, states[row[3]])
            else:
                _add(src, dst, n)
        elif op == OP_SEND:
            scratch = bufs[row[6]][:n]
            gain_kernel(bufs[row[1]][:n], scratch, states[row[3]], params[row[4]])
            dst = bufs[row[2]][:n]
            if row[5] >= 0:
                _mix_delayed(scratch, dst, n, states[row[5]])
            else:
                _add(scratch, dst, n)
        elif op == OP_METER:
            x = bufs[row[1]][:n]
            _meter(x, n, meters[row[2]])
            if tr[T_STRIP_TAPS] > 0.5:  # a monitor is attached (engine.monitor)
                _strip_tap(x, n, f3[F3_STRIP_TAPS][row[2]], tr)
        elif op == OP_OUT:
            src = bufs[row[1]][:n].reshape(-1)
            flat = out.reshape(-1)
            for j in range(2 * n):
                flat[j] = src[j]
            cap = tap.shape[0]
            w = int(tr[T_TAP_WRITE]) % cap
            first = min(n, cap - w)
            ring = tap.reshape(-1)
            for j in range(2 * first):
                ring[2 * w + j] = src[j]
            for j in range(2 * first, 2 * n):
                ring[j - 2 * first] = src[j]
            tr[T_TAP_WRITE] = tr[T_TAP_WRITE] + n
        elif op == OP_METRO:
            if tr[T_METRO_ON] > 0.5:
                metronome(bufs[row[1]][:n], n, tr, f2[F2_TEMPO], seg, main)
        elif op == OP_INPUT:
            _input(bufs[row[1]][:n], n, inputs[row[2]], input_idx[row[2]], tr)
        elif op == OP_TAP:
            src = bufs[row[1]][:n].reshape(-1)
            flat = io[row[2]].reshape(-1)
            for j in range(2 * n):
                flat[j] = src[j]
    tr[T_BLOCKS] += 1.0
    tr[T_JUMP] = 0.0
    _send_meters(meters, f2[F2_METER_RING], i1[I1_METER_RING], tr)
    ftz_end(saved)
