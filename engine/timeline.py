"""The timeline side of a block: transport commands, the block's timeline segments, the
metronome, automation.

The transport (``T_*`` in a float64 array) holds the timeline position, play state, loop and
the click-free bookkeeping: a jump in the timeline (loop wrap, seek while playing, pause)
renders the old place on for ``XFADE_S`` as a fading *tail* while the new one fades in, so
neither the loop boundary nor a stop clicks. Each block is described by up to
``MAX_SEGMENTS`` timeline segments ``[timeline start, buffer offset, length, g0, dg]`` (gain
``g0 + dg * i``, clamped to 0..1); sources render every segment; instruments hear the main
ones and an all-notes-off at a wrap.

Control comes in through a ring of float64 records ``[kind, a, b, c]`` (single producer:
engine.engine), drained at the start of each block (``drain``). engine.render runs these
first in every block.
"""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from dsp.effect import F32, F64

I64 = Any

# transport
(T_PLAYING, T_POS, T_LOOP_ON, T_LOOP_START, T_LOOP_END, T_XFADE, T_TAIL_POS, T_TAIL_LEFT,
 T_FADE_LEFT, T_PLAY_START, T_BLOCKS, T_LATE, T_METRO_ON, T_METRO_GAIN, T_CLICK_LEFT,
 T_CLICK_PHASE, T_CLICK_STEP, T_METER_EVERY, T_METER_DROPS, T_WRAPS, T_SR, T_TAP_WRITE,
 T_NSEG, T_WRAP_AT, T_BAD_COMMANDS, T_JUMP, T_EVENTS_DROPPED, T_STRIP_TAPS) = range(28)
T_SIZE = 32
XFADE_S = 0.0025  # the crossfade at a jump in the timeline
CLICK_S = 0.03
MAX_SEGMENTS = 6
SEG_WIDTH = 5

# commands
(C_PLAY, C_PAUSE, C_STOP, C_SEEK, C_LOOP, C_METRO) = range(1, 7)
RECORD = 4  # numbers per command record
# tempo table rows for the metronome: [start sample, start beat, samples per beat, beats/bar]
TEMPO_WIDTH = 4


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

@njit(cache=True, nogil=True)
def metronome(x: F32, n: int, tr: F64, tempo: F64, seg: F64, nseg: int) -> None:  # RT
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
