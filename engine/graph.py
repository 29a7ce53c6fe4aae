"""Compile a project into the flat schedule ``engine.render.render_block`` runs.

``Rack`` keeps the live dsp objects of a session (effects, faders, send gains, delay
compensation lines) by stable keys, so a recompiled graph reuses them: a delay's echoes and a
reverb's tail carry on through a graph swap, and a control thread's ``set()`` reaches the
same arrays whatever graph is playing. ``compile_graph(project, rack, ...)`` builds a new
``Graph`` (off the audio thread: it allocates); the engine swaps it in at a block boundary.

Signal flow per strip (track, bus, master): sources (clips, instrument, live input) -> insert
chain -> pre-fader sends -> fader (gain + mute, then pan) -> post-fader sends -> meter ->
the master (tracks and buses) or the output (master). Post-fader sends are post-pan (as in
Reaper); a mute also silences the strip's pre-fader sends (as on most desks). Tracks pan
with the constant-power law (-3 dB at the centre), buses and the master with the balance
law (0 dB at the centre). Solo is solo-in-place on tracks: while
any track is soloed, the others are muted at their faders; buses and the master stay open,
so a soloed track's reverb send is still heard.

Delay compensation. Each strip's latency is the latency of its inputs' alignment plus its
chain's (``latency_samples`` of each enabled effect). Where signals meet (a bus, the master)
each input is delayed by the difference between its latency and the largest one there, so
parallel paths stay sample-aligned; ``Graph.latency`` is the master's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import types
from numba.typed import List

from dsp.effect import F32, F64, Effect
from dsp.reverb import SMOOTH_S as REVERB_SMOOTH_S
from dsp.sampler import Sampler
from dsp.stereo import GAIN_RAMP_S, Gain, Pan
from dsp.stereo import SMOOTH_S as PAN_SMOOTH_S
from engine.bank import MIN_TRACKS, bankable
from engine.effects import K_GAIN, K_PAN, effect_type, kernel_params
from engine.instruments import KIND_SAMPLER, KIND_SYNTH, event_table
from engine.model import Instrument, Project, Strip, Track
from engine.rack import Rack, effective_mute
from engine.render import (
    F2_FIXED,
    I1_FIXED,
    I2_FIXED,
    IO_STEMS,
    M_WIDTH,
    OP_BANK,
    OP_CLEAR,
    OP_CLIP,
    OP_FX,
    OP_INPUT,
    OP_INSTR,
    OP_METER,
    OP_METRO,
    OP_MIX,
    OP_OUT,
    OP_SEND,
    OP_TAP,
    OPF_WIDTH,
    OPS_WIDTH,
)
from engine.tempo import TempoMap
from engine.timeline import (
    TEMPO_WIDTH,
)

I64 = Any
EMPTY_CLIP = np.zeros((0, 2), dtype=np.float32)
SILENT_SAMPLE = np.zeros((1, 2), dtype=np.float32)
SMOOTHING_S = {"Reverb": REVERB_SMOOTH_S}  # the others smooth over 20 ms


def _f64_list() -> Any:
    return List.empty_list(types.float64[::1])


def _f32_list() -> Any:
    return List.empty_list(types.float32[:, ::1])


def _clip_list() -> Any:
    """Decoded audio is read-only (the asset cache shares it between sessions)."""
    return List.empty_list(types.Array(types.float32, 2, "C", readonly=True))


def _i64_list() -> Any:
    return List.empty_list(types.int64[::1])


@dataclass
class Graph:
    """Everything ``render_block`` needs besides the transport and the rings."""

    ops: I64
    opf: F64
    bufs: F32
    states: Any
    params: Any
    clips: Any
    tempo: F64
    meters: F64
    lanes: I64
    limits: F64
    points: F64
    inputs: Any
    input_idx: Any
    rows: dict[str, int]
    latency: int
    max_block: int
    tables: list[F64] = field(default_factory=list)  # f2 slots F2_FIXED.. (event tables)
    bank_i1: list[I64] = field(default_factory=list)  # i1 slots I1_FIXED..: bank buffers
    bank_i2: list[I64] = field(default_factory=list)  # i2 slots I2_FIXED..: bank slots
    bank_w1: list[F32] = field(default_factory=list)  # w1 slots: bank work arrays
    param_slots: dict[int, int] = field(default_factory=dict)  # id(params array) -> slot
    call: Any = None  # render_block's BlockArgs (made by the Engine)


class _Builder:
    def __init__(self, max_block: int) -> None:
        self.ops: list[list[int]] = []
        self.opf: list[list[float]] = []
        self.states = _f64_list()
        self.params = _f64_list()
        self.clips = _clip_list()
        self.slots: dict[int, int] = {}
        self.tables: list[F64] = []  # event tables, at f2 slots F2_FIXED + k
        self.bank_i1: list[I64] = []
        self.bank_i2: list[I64] = []
        self.bank_w1: list[F32] = []
        self.max_block = max_block
        self.buffers = 0

    def buffer(self) -> int:
        self.buffers += 1
        return self.buffers - 1

    def op(self, *values: int, f: tuple[float, ...] = ()) -> None:
        row = list(values) + [0] * (OPS_WIDTH - len(values))
        self.ops.append(row)
        self.opf.append(list(f) + [0.0] * (OPF_WIDTH - len(f)))

    def state(self, arr: F64) -> int:
        self.states.append(arr)
        return len(self.states) - 1

    def param(self, arr: F64) -> int:
        key = id(arr)
        if key not in self.slots:
            self.params.append(arr)
            self.slots[key] = len(self.params) - 1
        return self.slots[key]

    def fx(self, buf: int, kind: int, fx: Effect) -> None:
        self.op(OP_FX, buf, kind, self.state(fx.state), self.param(kernel_params(fx)))


def _bank(b: _Builder, project: Project, rack: Rack, bufs: dict[str, int]) -> set[str]:
    """The OP_BANK of the tracks whose chain has the bank's shape (if enough of them);
    returns their ids."""
    tracks = [t for t in project.tracks if bankable(t)]
    if len(tracks) < MIN_TRACKS:
        rack.set_bank(None, [])
        return set()
    effects: list[list[Effect]] = []
    for t in tracks:
        gain, pan = rack.fader(t, effective_mute(project, t))
        effects.append([*(rack.effect(t.id, spec) for spec in t.chain), gain, pan])
    bank = rack.set_bank(tuple(t.id for t in tracks), effects)
    for k, (t, fxs) in enumerate(zip(tracks, effects, strict=True)):
        bank.bufidx[k] = bufs[t.id]
        for j, fx in enumerate(fxs):
            bank.slots[j, k] = b.param(kernel_params(fx))
    b.bank_i1.append(bank.bufidx)
    b.bank_i2.append(bank.slots)
    b.bank_w1.append(bank.strip.work)
    k = len(b.bank_w1) - 1
    b.op(OP_BANK, b.state(bank.strip.state), b.param(bank.strip.params), k, I1_FIXED + k,
         I2_FIXED + k)
    return {t.id for t in tracks}


def _chain(b: _Builder, rack: Rack, strip: Strip, buf: int) -> int:
    latency = 0
    for spec in strip.chain:
        fx = rack.effect(strip.id, spec)
        if not spec.enabled:
            continue
        b.fx(buf, effect_type(spec.type).kind, fx)
        latency += int(fx.latency_samples)
    return latency


def _bus_order(project: Project) -> list[Strip]:
    """Buses so that a bus comes after every bus that sends into it (the loader has
    rejected cycles)."""
    buses = {bus.id: bus for bus in project.buses}
    done: list[Strip] = []
    seen: set[str] = set()

    def visit(bid: str) -> None:
        if bid in seen:
            return
        seen.add(bid)
        for other in project.buses:
            if any(s.bus == bid for s in other.sends):
                visit(other.id)
        done.append(buses[bid])

    for bus in project.buses:
        visit(bus.id)
    return done


def compile_graph(
    project: Project,
    rack: Rack,
    clip_data: dict[str, F32],
    *,
    max_block: int = 1024,
    inputs: dict[str, tuple[F32, I64]] | None = None,
    position: float = 0.0,
    stems: bool = False,
    banks: bool = True,
) -> Graph:
    """Build the schedule for ``project``. ``clip_data`` maps asset ids to decoded float32
    (frames, 2) at the project's rate (a missing one plays as silence and is counted);
    ``inputs`` maps live input port names to their (ring, indices); ``position`` is the
    transport's (new objects start at their automation's value there, without a ramp);
    ``stems``: copy each track's post-fader output into its own io slot (``IO_STEMS + k``
    for the k-th track) every block; ``banks``: render the tracks whose chains are EQ ->
    compressor -> delay side by side (engine.bank)."""
    sr = float(project.sample_rate)
    tmap = TempoMap(project.tempo, sr, project.time_signature)
    b = _Builder(max_block)
    order: list[Strip] = [*project.tracks, *_bus_order(project), project.master]
    bufs = {s.id: b.buffer() for s in order}
    scratch = b.buffer()
    rows = {s.id: k for k, s in enumerate(order)}
    input_rings = _f32_list()
    input_idx = _i64_list()
    ports: dict[str, int] = {}
    for name, (ring, idx) in (inputs or {}).items():
        ports[name] = len(input_rings)
        input_rings.append(ring)
        input_idx.append(idx)

    # latencies: each strip's chain, then alignment at buses and the master
    chain_latency: dict[str, int] = {}
    for s in order:
        total = 0
        for spec in s.chain:
            if spec.enabled:
                total += int(rack.effect(s.id, spec).latency_samples)
        chain_latency[s.id] = total
    out_latency: dict[str, int] = {}
    bus_in: dict[str, int] = {}
    feeders: dict[str, list[str]] = {s.id: [] for s in order}
    for s in order[:-1]:
        for send in s.sends:
            feeders[send.bus].append(s.id)
        feeders[project.master.id].append(s.id)
    for s in order:
        if isinstance(s, Track):
            bus_in[s.id] = 0
        else:
            bus_in[s.id] = max((out_latency[f] for f in feeders[s.id]), default=0)
        out_latency[s.id] = bus_in[s.id] + chain_latency[s.id]

    for s in order:  # sums start silent
        if not isinstance(s, Track):
            b.op(OP_CLEAR, bufs[s.id])
    for t in project.tracks:  # every track's sources first, so that a bank can take them
        b.op(OP_CLEAR, bufs[t.id])
        _sources(b, rack, tmap, t, bufs[t.id], clip_data, ports)
    banked = _bank(b, project, rack, bufs) if banks else set()
    keep_effects: set[tuple[str, str]] = set()
    for s in order:
        buf = bufs[s.id]
        keep_effects.update((s.id, spec.id) for spec in s.chain)
        if s.id not in banked:
            _chain(b, rack, s, buf)
        muted = effective_mute(project, s)
        gain, pan = rack.fader(s, muted)
        is_master = s.id == project.master.id
        for pre in (True, False):
            if not pre and s.id not in banked:  # a bank runs its tracks' faders
                b.fx(buf, K_GAIN, gain)
                b.fx(buf, K_PAN, pan)
            for send in s.sends:
                if send.pre_fader != pre or is_master:
                    continue
                g = rack.send(s.id, send.bus, send.level_db, muted and pre)
                lag = bus_in[send.bus] - out_latency[s.id]
                line = b.state(rack.line(s.id, send.bus, lag)) if lag > 0 else -1
                b.op(OP_SEND, buf, bufs[send.bus], b.state(g.state), b.param(kernel_params(g)),
                     line, scratch)
        if stems and isinstance(s, Track):
            b.op(OP_TAP, buf, IO_STEMS + project.tracks.index(s))
        if is_master:
            b.op(OP_METRO, buf)
            b.op(OP_METER, buf, rows[s.id])
            b.op(OP_OUT, buf)
        else:
            b.op(OP_METER, buf, rows[s.id])
            lag = bus_in[project.master.id] - out_latency[s.id]
            line = b.state(rack.line(s.id, project.master.id, lag)) if lag > 0 else -1
            b.op(OP_MIX, buf, bufs[project.master.id], line)
    rack.forget({s.id for s in order}, keep_effects)

    lanes, limits, points = _automation(project, rack, tmap, b, position)
    rack.fresh.clear()
    tempo = _tempo_table(project, tmap)
    return Graph(
        ops=np.array(b.ops, dtype=np.int64).reshape(-1, OPS_WIDTH),
        opf=np.array(b.opf, dtype=np.float64).reshape(-1, OPF_WIDTH),
        bufs=np.zeros((b.buffers, max_block, 2), dtype=np.float32),
        states=b.states,
        params=b.params,
        clips=b.clips,
        tempo=tempo,
        meters=np.zeros((len(order), M_WIDTH), dtype=np.float64),
        lanes=lanes,
        limits=limits,
        points=points,
        inputs=input_rings,
        input_idx=input_idx,
        rows=rows,
        latency=out_latency[project.master.id],
        max_block=max_block,
        tables=b.tables,
        param_slots=dict(b.slots),
        bank_i1=b.bank_i1,
        bank_i2=b.bank_i2,
        bank_w1=b.bank_w1,
    )


def _sources(b: _Builder, rack: Rack, tmap: TempoMap, track: Track, buf: int,
             clip_data: dict[str, F32], ports: dict[str, int]) -> None:
    sr = tmap.sample_rate
    if track.kind == "instrument":
        inst = track.instrument or Instrument()
        sample = clip_data.get(inst.asset or "", SILENT_SAMPLE)
        player = rack.instrument(track, sample)
        b.clips.append(player.sample if isinstance(player, Sampler) else SILENT_SAMPLE)
        b.tables.append(event_table(track, tmap))
        kind = KIND_SAMPLER if isinstance(player, Sampler) else KIND_SYNTH
        b.op(OP_INSTR, buf, kind, b.state(player.state), b.param(player.kp),
             F2_FIXED + len(b.tables) - 1, len(b.clips) - 1, f=(float(inst.root),))
    for clip in track.clips:
        data = clip_data.get(clip.asset, EMPTY_CLIP)
        b.clips.append(data)
        start = tmap.sample(clip.start)
        length = tmap.samples(clip.start, clip.length)
        b.op(OP_CLIP, buf, len(b.clips) - 1, start, round(clip.offset_s * sr), length,
             round(clip.fade_in_s * sr), round(clip.fade_out_s * sr),
             f=(10.0 ** (clip.gain_db / 20.0),))
    if track.kind == "input" and track.input is not None and track.input in ports:
        b.op(OP_INPUT, buf, ports[track.input])


def _automation(project: Project, rack: Rack, tmap: TempoMap, b: _Builder,
                position: float) -> tuple[I64, F64, F64]:
    lanes: list[list[int]] = []
    limits: list[list[float]] = []
    points: list[list[float]] = []
    for s in [*project.tracks, *project.buses, project.master]:
        for lane in s.automation:
            target = _lane_target(rack, s, lane.target)
            if target is None or not lane.points:
                continue
            fx, arr, column, lo, hi, lead_s = target
            lanes.append([b.param(arr), column, len(points), len(lane.points)])
            ramp = 2 if isinstance(fx, Gain) and column == 0 else -1  # Gain: gain_db, ramp_ms
            limits.append([lo, hi, round(lead_s * tmap.sample_rate), ramp])
            first = len(points)
            for p in sorted(lane.points, key=lambda p: p.beat):
                points.append([float(tmap.sample(p.beat)), p.value, p.curve])
            if id(fx) in rack.fresh:  # a new object starts where its lane is
                arr[column] = min(max(lane_value(points[first:], position), lo), hi)
                fx.reset()
    return (np.array(lanes, dtype=np.int64).reshape(-1, 4),
            np.array(limits, dtype=np.float64).reshape(-1, 4),
            np.array(points, dtype=np.float64).reshape(-1, 3))


def lane_value(points: list[list[float]], t: float) -> float:
    """A lane's value at sample ``t`` (as engine.render.automate computes it)."""
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0, c0), (t1, v1, _) in itertools.pairwise(points):
        if t < t1:
            u = (t - t0) / max(t1 - t0, 1.0)
            return v0 + (v1 - v0) * (u ** (2.0 ** c0) if c0 else u)
    return points[-1][1]


def _lane_target(
    rack: Rack, strip: Strip, target: str
) -> tuple[Effect, F64, int, float, float, float] | None:
    """The params array, column, range and smoothing lag (seconds) of an automation target.

    The parameter's own smoothing makes what is heard lag what is written: a linear ramp
    restarted every block lags a steady slope by its length, a one-pole by its time
    constant. The lane is read that far ahead, so that what is heard follows the lane."""
    if target in ("gain_db", "pan"):
        gain, pan = rack.faders[strip.id]
        fx: Effect = gain if target == "gain_db" else pan
        name = target
    else:
        effect_id, _, name = target.partition(".")
        have = rack.effects.get((strip.id, effect_id))
        if have is None:
            return None
        fx = have[1]
    lead = GAIN_RAMP_S if isinstance(fx, Gain) else (
        PAN_SMOOTH_S if isinstance(fx, Pan) else SMOOTHING_S.get(type(fx).__name__, 0.02))
    for column, p in enumerate(type(fx).PARAMS):
        if p.name == name:
            return fx, kernel_params(fx), column, p.lo, p.hi, (0.0 if p.choices else lead)
    return None


def _tempo_table(project: Project, tmap: TempoMap) -> F64:
    num, den = project.time_signature
    per_bar = num * 4.0 / den
    rows = []
    for p in sorted(project.tempo, key=lambda p: p.beat):
        spb = 60.0 / p.bpm * tmap.sample_rate
        rows.append([float(tmap.sample(p.beat)), p.beat, spb, per_bar])
    if not rows:
        rows.append([0.0, 0.0, 0.5 * tmap.sample_rate, per_bar])
    rows[0][0] = min(rows[0][0], 0.0)
    arr = np.array(rows, dtype=np.float64).reshape(-1, TEMPO_WIDTH)
    assert all(math.isfinite(v) for v in arr.ravel())
    return arr
