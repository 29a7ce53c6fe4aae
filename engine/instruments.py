"""Instrument tracks: MIDI clips become timeline events; the synth or sampler plays them.

Compile side (``event_table``): every note of a track's MIDI clips becomes a note-on and a
note-off at their samples on the timeline (notes are cut at their clip's end; a note that
starts outside its clip is not played), every control change a CC event; the rows
``[sample, type, number, value]`` are sorted by sample, note-offs before note-ons at the
same sample (so a repeated note retriggers).

Audio side (``render_instrument``, one ``OP_INSTR`` of engine.render): the events of this
block's main timeline segments are copied, with their offsets in the block, into a scratch
table and handed to ``dsp.synth.synth_kernel`` or ``dsp.sampler.sampler_kernel`` (which
apply each at its exact frame). A jump in the timeline (seek, stop, pause) releases every
voice at the block's start, and a loop wrap at the wrap's frame (an all-notes-off: the
envelopes release, nothing clicks).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dsp.effect import F32, F64
from dsp.sampler import sampler_kernel
from dsp.synth import synth_kernel
from engine.model import Track
from engine.tempo import TempoMap

NOTE_OFF, NOTE_ON, CONTROL, ALL_OFF = 0.0, 1.0, 2.0, 3.0
MAX_EVENTS = 1024  # per block; more than this in one block are dropped (and counted)
KIND_SYNTH, KIND_SAMPLER = 0, 1


def event_table(track: Track, tmap: TempoMap) -> F64:
    """The track's MIDI as sorted rows ``[sample, type, number, value]`` (float64)."""
    rows: list[tuple[float, float, float, float]] = []
    for clip in track.midi:
        start = clip.start
        end = tmap.sample(start + clip.length)
        for note in clip.notes:
            if note.start >= clip.length:
                continue
            on = tmap.sample(start + note.start)
            off = min(tmap.sample(start + note.start + note.length), end)
            if off <= on:
                continue
            rows.append((float(on), NOTE_ON, float(note.pitch), float(note.velocity)))
            rows.append((float(off), NOTE_OFF, float(note.pitch), 0.0))
        for cc in clip.controls:
            if cc.beat <= clip.length:
                rows.append((float(tmap.sample(start + cc.beat)), CONTROL,
                             float(cc.controller), float(cc.value)))
    rows.sort(key=lambda r: (r[0], r[1] != NOTE_OFF, r[1]))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


@njit(cache=True, nogil=True, inline="always")
def _first_at(events: F64, t: float) -> int:  # RT
    """The first row whose sample is >= t (binary search)."""
    lo, hi = 0, events.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid, 0] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def block_events(events: F64, scratch: F64, seg: F64, main: int, jump: bool,
                 wrap_at: float) -> tuple[int, int]:  # RT
    """This block's events into ``scratch`` with their frame offsets; returns (count,
    dropped)."""
    k = 0
    dropped = 0
    cap = scratch.shape[0]
    if jump:
        scratch[0, 0] = 0.0
        scratch[0, 1] = ALL_OFF
        scratch[0, 2] = 0.0
        scratch[0, 3] = 0.0
        k = 1
    for s in range(main):
        tl = seg[s, 0]
        off = seg[s, 1]
        count = seg[s, 2]
        if s > 0 and off == wrap_at:  # the loop wrapped here: release what was playing
            if k < cap:
                scratch[k, 0] = off
                scratch[k, 1] = ALL_OFF
                scratch[k, 2] = 0.0
                scratch[k, 3] = 0.0
                k += 1
            else:
                dropped += 1
        j = _first_at(events, tl)
        while j < events.shape[0] and events[j, 0] < tl + count:
            if k < cap:
                scratch[k, 0] = off + (events[j, 0] - tl)
                scratch[k, 1] = events[j, 1]
                scratch[k, 2] = events[j, 2]
                scratch[k, 3] = events[j, 3]
                k += 1
            else:
                dropped += 1
            j += 1
    return k, dropped


@njit(cache=True, nogil=True)
def render_instrument(  # RT
    x: F32, kind: int, events: F64, scratch: F64, sample: F32, root: float, state: F64,
    params: F64, seg: F64, main: int, jump: bool, wrap_at: float,
) -> int:
    """Render the instrument over ``x`` (overwriting it); returns the events dropped."""
    count, dropped = block_events(events, scratch, seg, main, jump, wrap_at)
    if kind == KIND_SAMPLER:
        sampler_kernel(x, scratch, 0, count, sample, root, state, params)
    else:
        synth_kernel(x, scratch, 0, count, state, params)
    return dropped


def scratch_table() -> F64:
    return np.zeros((MAX_EVENTS, 4), dtype=np.float64)


__all__ = ["ALL_OFF", "CONTROL", "KIND_SAMPLER", "KIND_SYNTH", "NOTE_OFF", "NOTE_ON",
           "block_events", "event_table", "render_instrument", "scratch_table"]
