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

The transport (``T_*`` in a float64 array) holds the timeline position, play state, loop and
the click-free bookkeeping: a jump in the timeline (loop wrap, seek while playing, pause)
renders the old place on for ``XFADE_S`` as a fading *tail* while the new one fades in, so
neither the loop boundary nor a stop clicks. Each block is described by up to
``MAX_SEGMENTS`` timeline segments ``[timeline start, buffer offset, length, g0, dg]`` (gain
``g0 + dg * i``, clamped to 0..1); sources render every segment; instruments hear the main
ones and an all-notes-off at a wrap.

Control comes in through ``ring`` (float64 records ``[kind, a, b, c]``, single producer:
engine.control), drained at the start of each block. Meter frames go out through
``meter_ring`` (records ``[block, row, peak_l, peak_r, rms_l, rms_r]``) about 30 times a
second, and the output is copied into ``tap`` (a ring of the last frames, for the loudness and
spectrum readers off this thread). Nothing here allocates, locks or raises.
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

I64 = Any  # numpy int64 arrays (numpy.typing has no short alias that mypy accepts here)

(OP_CLEAR, OP_CLIP, OP_INSTR, OP_FX, OP_MIX, OP_SEND, OP_METER, OP_OUT, OP_METRO,
 OP_INPUT, OP_TAP, OP_BANK) = range(12)
OPS_WIDTH = 8
OPF_WIDTH = 2

# transport
(T_PLAYING, T_POS, T_LOOP_ON, T_LOOP_START, T_LOOP_END, T_XFADE, T_TAIL_POS, T_TAIL_LEFT,
 T_FADE_LEFT, T_PLAY_START, T_BLOCKS, T_LATE, T_METRO_ON, T_METRO_GAIN, T_CLICK_LEFT,
 T_CLICK_PHASE, T_CLICK_STEP, T_METER_EVERY, T_METER_DROPS, T_WRAPS, T_SR, T_TAP_WRITE,
 T_NSEG, T_WRAP_AT, T_BAD_COMMANDS, T_JUMP, T_EVENTS_DROPPED) = range(27)
T_SIZE = 32
XFADE_S = 0.0025  # the crossfade at a jump in the timeline
CLICK_S = 0.03
MAX_SEGMENTS = 6
SEG_WIDTH = 5

# commands
(C_PLAY, C_PAUSE, C_STOP, C_SEEK, C_LOOP, C_METRO) = range(1, 7)
RECORD = 4  # numbers per command record

# the typed lists render_block takes, and the slot of each array in them
F1_TRANSPORT = 0  # float64 1-D
(F2_OPF, F2_SEG, F2_TEMPO, F2_RING, F2_METERS, F2_METER_RING, F2_LIMITS, F2_POINTS,
 F2_EVENTS) = range(9)
F2_FIXED = 9  # then each instrument track's event table
F3_BUFS = 0  # float32 3-D
I1_RING, I1_METER_RING = range(2)  # int64 1-D; then each bank's buffer indices
I1_FIXED = 2
I2_OPS, I2_LANES = range(2)  # int64 2-D; then each bank's parameter slots
I2_FIXED = 2
# w1 (float32 1-D): each bank's work array
IO_OUT, IO_TAP, IO_STEMS = range(3)  # float32 2-D; IO_STEMS.. one per track (stems)

# meters: per row [peak_l, peak_r, sumsq_l, sumsq_r, frames]
M_WIDTH = 5
METER_RECORD = 6

# tempo table rows for the metronome: [start sample, start beat, samples per beat, beats/bar]
TEMPO_WIDTH = 4


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


# -- commands ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _start_tail(tr: F64, pos: float) -> None:  # RT
    """The timeline jumps away from ``pos``: render it on as a fading tail."""
    tr[T_TAIL_POS] = pos
    tr[T_TAIL_LEFT] = tr[T_XFADE]


@njit(cache=True, nogil=True)
def drain(ring: F64, idx: I64, tr: F64) -> None:  # RT
    """Apply the queued commands (single consumer: the audio thread)."""
    head = idx[0]
    tail = idx[1]
    cap = ring.shape[0]
    while head < tail:
        rec = ring[head % cap]
        kind = int(rec[0])
        a = rec[1]
        if kind in (C_SEEK, C_PAUSE, C_STOP) and tr[T_PLAYING] > 0.5:
            tr[T_JUMP] = 1.0  # instruments release their voices
        if kind == C_PLAY:
            if tr[T_PLAYING] < 0.5:
                tr[T_PLAYING] = 1.0
                tr[T_PLAY_START] = tr[T_POS]
                tr[T_FADE_LEFT] = 0.0
        elif kind in (C_PAUSE, C_STOP):
            if tr[T_PLAYING] > 0.5:
                _start_tail(tr, tr[T_POS])
                tr[T_PLAYING] = 0.0
            if kind == C_STOP:
                tr[T_POS] = tr[T_PLAY_START] if a < 0.0 else a
        elif kind == C_SEEK:
            if a == a and a >= 0.0:
                target = math.floor(a)
                if tr[T_PLAYING] > 0.5 and target != tr[T_POS]:
                    _start_tail(tr, tr[T_POS])
                    tr[T_FADE_LEFT] = tr[T_XFADE]
                tr[T_POS] = target
                tr[T_PLAY_START] = target
            else:
                tr[T_BAD_COMMANDS] += 1.0
        elif kind == C_LOOP:
            start = a
            end = rec[2]
            if start == start and end == end and start >= 0.0 and end - start >= 2 * tr[T_XFADE]:
                tr[T_LOOP_ON] = 1.0 if rec[3] > 0.5 else 0.0
                tr[T_LOOP_START] = math.floor(start)
                tr[T_LOOP_END] = math.floor(end)
            else:
                tr[T_BAD_COMMANDS] += 1.0
        elif kind == C_METRO:
            tr[T_METRO_ON] = 1.0 if a > 0.5 else 0.0
            gain = rec[2]
            if gain == gain:
                tr[T_METRO_GAIN] = min(max(gain, 0.0), 1.0)
        else:
            tr[T_BAD_COMMANDS] += 1.0
        head += 1
    idx[0] = head


# -- the timeline segments of a block -----------------------------------------------------


@njit(cache=True, nogil=True)
def _add_segment(seg: F64, k: int, tl: float, off: int, length: int, g0: float,
                 dg: float) -> int:  # RT
    if k >= MAX_SEGMENTS or length <= 0:
        return k
    seg[k, 0] = tl
    seg[k, 1] = off
    seg[k, 2] = length
    seg[k, 3] = g0
    seg[k, 4] = dg
    return k + 1


@njit(cache=True, nogil=True)
def segments(tr: F64, n: int, seg: F64) -> int:  # RT
    """Fill ``seg`` with this block's timeline segments and move the transport on; returns
    how many. Main segments come first (``seg[0:T_NSEG]``), then the tail's."""
    x = max(tr[T_XFADE], 1.0)
    k = 0
    tail_off = 0
    tr[T_WRAP_AT] = -1.0
    if tr[T_PLAYING] > 0.5:
        pos = tr[T_POS]
        j = 0
        wraps = 0
        while j < n:
            span = n - j
            looping = (tr[T_LOOP_ON] > 0.5 and tr[T_LOOP_END] > tr[T_LOOP_START]
                       and pos < tr[T_LOOP_END])
            if looping:
                span = min(span, int(tr[T_LOOP_END] - pos))
            fade = tr[T_FADE_LEFT]
            if fade > 0.0:
                k = _add_segment(seg, k, pos, j, span, (x - fade) / x, 1.0 / x)
                tr[T_FADE_LEFT] = max(fade - span, 0.0)
            else:
                k = _add_segment(seg, k, pos, j, span, 1.0, 0.0)
            pos += span
            j += span
            if looping and pos >= tr[T_LOOP_END] and wraps < 2:
                _start_tail(tr, pos)
                tail_off = j
                pos = tr[T_LOOP_START]
                tr[T_FADE_LEFT] = x
                tr[T_WRAPS] += 1.0
                tr[T_WRAP_AT] = j
                wraps += 1
        tr[T_POS] = pos
    tr[T_NSEG] = k
    left = tr[T_TAIL_LEFT]
    if left > 0.0:
        length = int(min(left, n - tail_off))
        k = _add_segment(seg, k, tr[T_TAIL_POS], tail_off, length, left / x, -1.0 / x)
        tr[T_TAIL_POS] += length
        tr[T_TAIL_LEFT] = left - length
    return k


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
def _metronome(x: F32, n: int, tr: F64, tempo: F64, seg: F64, nseg: int) -> None:  # RT
    """A click on every beat of the main segments: 1.5 kHz on the bar, 1 kHz on the others,
    ``CLICK_S`` long with an exponential decay."""
    sr = tr[T_SR]
    level = tr[T_METRO_GAIN]
    click_len = CLICK_S * sr
    decay = math.exp(-5.0 / click_len)
    for s in range(nseg):
        tl = seg[s, 0]
        off = int(seg[s, 1])
        count = int(seg[s, 2])
        for i in range(count):
            t = tl + i
            k = 0  # the tempo segment holding t
            while k + 1 < tempo.shape[0] and tempo[k + 1, 0] <= t:
                k += 1
            rel = t - tempo[k, 0]
            spb = tempo[k, 2]
            beat = math.floor(rel / spb)
            if rel >= 0.0 and beat != math.floor((rel - 1.0) / spb):  # a beat starts at t
                number = int(tempo[k, 1] + beat + 0.5)
                per_bar = max(int(tempo[k, 3]), 1)
                tr[T_CLICK_LEFT] = click_len
                tr[T_CLICK_PHASE] = 0.0
                hz = 1500.0 if number % per_bar == 0 else 1000.0
                tr[T_CLICK_STEP] = 2.0 * math.pi * hz / sr
            left = tr[T_CLICK_LEFT]
            if left > 0.0:
                age = click_len - left
                v = level * math.sin(tr[T_CLICK_PHASE]) * decay ** age
                x[off + i, 0] += v
                x[off + i, 1] += v
                tr[T_CLICK_PHASE] += tr[T_CLICK_STEP]
                tr[T_CLICK_LEFT] = left - 1.0
    if nseg == 0:
        tr[T_CLICK_LEFT] = 0.0
    _ = n


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


# -- automation ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def automate(tr: F64, n: int, lanes: I64, limits: F64, points: F64, params: Any) -> None:  # RT
    """Each lane's value into its parameter, clamped to the parameter's range. A lane is
    ``[params slot, column, first point, points]`` with limits ``[lo, hi, lead, ramp
    column]``; a point ``[sample, value, curve]``.

    A level (a Gain's ``gain_db``: faders, sends, gain effects) is read at the block's end
    and its ramp set to the block, so it is exactly on its lane at every block boundary and
    a straight line between. Other parameters smooth their own way (a 10-50 ms one-pole):
    they are read that far ahead (``lead``) so that what is heard follows the lane."""
    for k in range(lanes.shape[0]):
        first = lanes[k, 2]
        count = lanes[k, 3]
        if count <= 0:
            continue
        ramp = int(limits[k, 3])
        if ramp >= 0:
            t = tr[T_POS] + n
            params[lanes[k, 0]][ramp] = n / tr[T_SR] * 1000.0
        else:
            t = tr[T_POS] + limits[k, 2]
        last = first + count - 1
        if t <= points[first, 0]:
            v = points[first, 1]
        elif t >= points[last, 0]:
            v = points[last, 1]
        else:
            j = first
            while points[j + 1, 0] <= t:
                j += 1
            u = (t - points[j, 0]) / max(points[j + 1, 0] - points[j, 0], 1.0)
            curve = points[j, 2]
            if curve != 0.0:
                u = u ** (2.0 ** curve)
            v = points[j, 1] + (points[j + 1, 1] - points[j, 1]) * u
        params[lanes[k, 0]][lanes[k, 1]] = min(max(v, limits[k, 0]), limits[k, 1])


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
            _meter(bufs[row[1]][:n], n, meters[row[2]])
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
                _metronome(bufs[row[1]][:n], n, tr, f2[F2_TEMPO], seg, main)
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
