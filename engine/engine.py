"""One session's engine: the project, its live dsp objects, the graph, and the two pipes.

Threads. ``render(n)`` belongs to the audio thread (a runner: engine.runner). Everything else
is the control side and may be called from any thread; a lock serialises control calls.
The control side reaches the audio thread in three ways, none of which blocks it:

* parameter values: written into the effects' float64 params arrays (``set_param``); the
  kernels read them at their next call and ramp to them (one 8-byte store per number);
* transport commands: records in a single-producer ring, drained at the next block start;
* a new graph (a track or an effect added or removed, a clip moved): compiled here, then
  swapped in by replacing one reference, which ``render`` picks up at its next block.

Meters come back through a ring the kernel fills about 30 times a second
(``read_meters``), and the output of the last ``TAP_S`` seconds through ``tap``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import types
from numba.typed import List

from dsp.effect import F32, F64
from dsp.params import ParamError
from engine.blockargs import BlockArgs
from engine.effects import kernel_params, warm_up
from engine.graph import Graph, compile_graph
from engine.instruments import scratch_table
from engine.model import EffectSpec, Project, Strip, Track
from engine.rack import Rack, effective_mute
from engine.render import (
    METER_RECORD,
    render_block,
)
from engine.tempo import Position, TempoMap
from engine.timeline import (
    C_LOOP,
    C_METRO,
    C_PAUSE,
    C_PLAY,
    C_SEEK,
    C_STOP,
    MAX_SEGMENTS,
    RECORD,
    SEG_WIDTH,
    T_BAD_COMMANDS,
    T_BLOCKS,
    T_EVENTS_DROPPED,
    T_LATE,
    T_LOOP_END,
    T_LOOP_ON,
    T_LOOP_START,
    T_METER_DROPS,
    T_METER_EVERY,
    T_METRO_GAIN,
    T_PLAYING,
    T_POS,
    T_SIZE,
    T_SR,
    T_STRIP_TAPS,
    T_TAP_WRITE,
    T_WRAPS,
    T_XFADE,
    XFADE_S,
)

COMMANDS = 1024  # transport commands in flight
METER_FRAMES = 256  # meter records in flight
METER_HZ = 30.0
TAP_S = 2.0
STRIP_TAP_S = 0.15  # each strip's recent audio, for a monitor's loudness meters


class EngineError(ValueError):
    """A control call that cannot be done (unknown strip, effect or parameter, full pipe)."""


@dataclass(frozen=True)
class Meter:
    peak: tuple[float, float]
    rms: tuple[float, float]

    @property
    def peak_db(self) -> tuple[float, float]:
        return (_db(self.peak[0]), _db(self.peak[1]))

    @property
    def rms_db(self) -> tuple[float, float]:
        return (_db(self.rms[0]), _db(self.rms[1]))


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 1e-10 else -200.0


class Engine:
    def __init__(self, project: Project, *, max_block: int = 1024,
                 clip_data: dict[str, F32] | None = None, stems: bool = False,
                 banks: bool = True) -> None:
        self.project = project
        self.sample_rate = float(project.sample_rate)
        self.max_block = max_block
        warm_up(self.sample_rate)
        self.rack = Rack(self.sample_rate)
        self.clip_data: dict[str, F32] = dict(clip_data or {})
        self.tempo_map = TempoMap(project.tempo, self.sample_rate, project.time_signature)
        self._lock = threading.RLock()
        self.transport = np.zeros(T_SIZE, dtype=np.float64)
        self.transport[T_SR] = self.sample_rate
        self.transport[T_XFADE] = max(round(XFADE_S * self.sample_rate), 1)
        self.transport[T_METRO_GAIN] = 0.5
        self._segments = np.zeros((MAX_SEGMENTS, SEG_WIDTH), dtype=np.float64)
        self._events = scratch_table()
        self._ring = np.zeros((COMMANDS, RECORD), dtype=np.float64)
        self._ring_idx = np.zeros(2, dtype=np.int64)
        self._meter_ring = np.zeros((METER_FRAMES, METER_RECORD), dtype=np.float64)
        self._meter_idx = np.zeros(2, dtype=np.int64)
        self.tap = np.zeros((round(TAP_S * self.sample_rate), 2), dtype=np.float32)
        self.strip_taps = np.zeros((0, 1, 2), dtype=np.float32)  # see attach_strip_taps
        self._inputs: dict[str, tuple[F32, Any]] = {}
        self._out = np.zeros((max_block, 2), dtype=np.float32)  # io[IO_OUT]: frames 0:n
        self._views: dict[int, F32] = {}
        self._meters: dict[str, Meter] = {}
        self.stems = stems  # offline: each track's post-fader output per block (``stem``)
        self.banks = banks  # tracks with an EQ -> compressor -> delay chain side by side
        self._stems: list[F32] = []
        self.graph: Graph = self._compile()
        self._next: Graph = self.graph
        self._set_loop_from_project()

    # -- graph -------------------------------------------------------------------------

    def _compile(self) -> Graph:
        g = compile_graph(self.project, self.rack, self.clip_data, max_block=self.max_block,
                          inputs=self._inputs, position=float(self.transport[T_POS]),
                          stems=self.stems, banks=self.banks)
        self._bind(g)
        return g

    def _bind(self, g: Graph) -> None:
        """The typed lists ``render_block`` takes (engine.render says why lists): the graph's
        arrays and the engine's own (transport, pipes, output), in their slots."""
        f2 = List.empty_list(types.float64[:, ::1])
        for arr in (g.opf, self._segments, g.tempo, self._ring, g.meters, self._meter_ring,
                    g.limits, g.points, self._events, *g.tables):
            f2.append(arr)
        f1 = List.empty_list(types.float64[::1])
        f1.append(self.transport)
        f3 = List.empty_list(types.float32[:, :, ::1])
        f3.append(g.bufs)
        rows = len(g.rows)
        if self.strip_taps.shape[0] != rows:  # one ring of recent audio per strip
            self.strip_taps = np.zeros((rows, self.strip_taps.shape[1], 2), dtype=np.float32)
        f3.append(self.strip_taps)  # written only while a monitor is attached
        i1 = List.empty_list(types.int64[::1])
        i1.append(self._ring_idx)
        i1.append(self._meter_idx)
        for idx in g.bank_i1:
            i1.append(idx)
        i2 = List.empty_list(types.int64[:, ::1])
        i2.append(g.ops)
        i2.append(g.lanes)
        for slots in g.bank_i2:
            i2.append(slots)
        w1 = List.empty_list(types.float32[::1])
        for work in g.bank_w1:
            w1.append(work)
        io = List.empty_list(types.float32[:, ::1])
        io.append(self._out)
        io.append(self.tap)
        if self.stems:
            while len(self._stems) < len(self.project.tracks):
                self._stems.append(np.zeros((self.max_block, 2), dtype=np.float32))
            for stem in self._stems[:len(self.project.tracks)]:
                io.append(stem)
        g.call = BlockArgs(f1, f2, f3, i1, i2, io, g.states, g.params, g.clips, g.inputs,
                           g.input_idx, w1)

    def rebuild(self) -> None:
        """Compile the project again and swap it in at the next block. Control side."""
        with self._lock:
            self.tempo_map = TempoMap(self.project.tempo, self.sample_rate,
                                      self.project.time_signature)
            self._next = self._compile()

    @property
    def latency_samples(self) -> int:
        return self._next.latency

    def set_clip_data(self, asset: str, data: F32) -> None:
        """A decoded asset arrived (float32 (frames, 2) at the project's rate)."""
        with self._lock:
            self.clip_data[asset] = np.ascontiguousarray(data, dtype=np.float32)
            self.rebuild()

    # -- audio thread --------------------------------------------------------------------

    def render(self, frames: int) -> F32:  # RT once a block of this size has been seen
        """Render the next ``frames`` (<= max_block) of the session; returns a view of the
        output buffer (valid until the next call). Audio thread."""
        g = self._next
        if g is not self.graph:
            self.graph = g
        out = self._views.get(frames)
        if out is None:  # first block of this size: not RT (makes a view)
            if not 0 < frames <= self.max_block:
                raise EngineError(f"frames: {frames} is not 1..{self.max_block}")
            out = self._views[frames] = self._out[:frames]
        render_block(frames, g.call)
        return out

    def stem(self, index: int, frames: int) -> F32:
        """The k-th track's post-fader output of the last block (engines made with
        ``stems=True``; a view, valid until the next block)."""
        return self._stems[index][:frames]

    # -- transport (control side) ---------------------------------------------------------

    def _push(self, kind: int, a: float = 0.0, b: float = 0.0, c: float = 0.0) -> None:
        with self._lock:
            head, tail = int(self._ring_idx[0]), int(self._ring_idx[1])
            if tail - head >= COMMANDS:
                raise EngineError("the command pipe is full (the audio thread is not running?)")
            self._ring[tail % COMMANDS] = (kind, a, b, c)
            self._ring_idx[1] = tail + 1  # publish after the record is written

    def play(self) -> None:
        self._push(C_PLAY)

    def pause(self) -> None:
        self._push(C_PAUSE)

    def stop(self, to_beat: float | None = None) -> None:
        """Stop; back to where play started, or to ``to_beat``."""
        self._push(C_STOP, -1.0 if to_beat is None else float(self.tempo_map.sample(to_beat)))

    def seek(self, beat: float) -> None:
        if not math.isfinite(beat) or beat < 0:
            raise EngineError(f"seek: {beat!r} is not a position in beats >= 0")
        self._push(C_SEEK, float(self.tempo_map.sample(beat)))

    def set_loop(self, start: float, end: float, enabled: bool = True) -> None:
        """Loop between two beats."""
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise EngineError(f"loop: {start!r}..{end!r} is not a range of beats")
        with self._lock:
            self.project.loop.start, self.project.loop.end = start, end
            self.project.loop.enabled = enabled
            self._push(C_LOOP, float(self.tempo_map.sample(start)),
                       float(self.tempo_map.sample(end)), 1.0 if enabled else 0.0)

    def _set_loop_from_project(self) -> None:
        loop = self.project.loop
        self.transport[T_LOOP_START] = self.tempo_map.sample(loop.start)
        self.transport[T_LOOP_END] = self.tempo_map.sample(loop.end)
        self.transport[T_LOOP_ON] = 1.0 if loop.enabled else 0.0

    def metronome(self, on: bool, gain: float = 0.5) -> None:
        self._push(C_METRO, 1.0 if on else 0.0, gain)

    @property
    def playing(self) -> bool:
        return bool(self.transport[T_PLAYING] > 0.5)

    @property
    def position_samples(self) -> int:
        return int(self.transport[T_POS])

    @property
    def position(self) -> Position:
        return self.tempo_map.position(self.transport[T_POS])

    # -- parameters (control side) --------------------------------------------------------

    def strip(self, strip_id: str) -> Strip:
        try:
            return self.project.strip(strip_id)
        except KeyError:
            raise EngineError(f"no track or bus {strip_id!r}") from None

    def set_param(self, strip_id: str, target: str, value: Any) -> None:
        """Set a fader value (``gain_db``, ``pan``) or an effect parameter
        (``"<effect id>.<param>"``) of a track, bus or the master; audible at the next block,
        ramped by the parameter's own smoothing. ParamError for an unusable value."""
        with self._lock:
            strip = self.strip(strip_id)
            if target in ("gain_db", "pan"):
                gain, pan = self.rack.faders[strip.id]
                if target == "gain_db":
                    gain.set(gain_db=value)
                    strip.gain_db = float(gain.get("gain_db"))
                else:
                    pan.set(pan=value)
                    strip.pan = float(pan.get("pan"))
                return
            effect_id, dot, name = target.partition(".")
            spec = next((e for e in strip.chain if e.id == effect_id), None)
            have = self.rack.effects.get((strip.id, effect_id))
            if not dot or spec is None or have is None:
                raise EngineError(f"{strip_id}: no effect parameter {target!r}")
            have[1].set(**{name: value})
            spec.params[name] = have[1].get(name)

    def set_mute(self, strip_id: str, mute: bool) -> None:
        with self._lock:
            self.strip(strip_id).mute = bool(mute)
            self._apply_mutes()

    def set_solo(self, track_id: str, solo: bool) -> None:
        with self._lock:
            strip = self.strip(track_id)
            if not isinstance(strip, Track):
                raise EngineError(f"{track_id}: only tracks solo")
            strip.solo = bool(solo)
            self._apply_mutes()

    def _apply_mutes(self) -> None:
        for s in [*self.project.tracks, *self.project.buses, self.project.master]:
            muted = effective_mute(self.project, s)
            gain, _ = self.rack.faders[s.id]
            gain.set(mute=int(muted))
            for send in s.sends:
                g = self.rack.sends.get((s.id, send.bus))
                if g is not None:
                    g.set(mute=int(muted and send.pre_fader))

    def set_send(self, strip_id: str, bus: str, level_db: float) -> None:
        with self._lock:
            strip = self.strip(strip_id)
            send = next((s for s in strip.sends if s.bus == bus), None)
            g = self.rack.sends.get((strip_id, bus))
            if send is None or g is None:
                raise EngineError(f"{strip_id}: no send to {bus!r}")
            g.set(gain_db=level_db)
            send.level_db = float(g.get("gain_db"))

    def param_array(self, strip_id: str, target: str) -> tuple[F64, int]:
        """The params array and column a target lives in (for tests and bulk writers)."""
        strip = self.strip(strip_id)
        if target in ("gain_db", "pan"):
            gain, pan = self.rack.faders[strip.id]
            fx: Any = gain if target == "gain_db" else pan
            name = target
        else:
            effect_id, _, name = target.partition(".")
            fx = self.rack.effects[(strip.id, effect_id)][1]
        names = [p.name for p in type(fx).PARAMS]
        if name not in names:
            raise ParamError(f"unknown parameter {name!r}")
        return kernel_params(fx), names.index(name)

    # -- structure (control side): each swaps in a new graph --------------------------------

    def add_track(self, track: Track, index: int | None = None) -> None:
        with self._lock:
            if any(s.id == track.id for s in [*self.project.tracks, *self.project.buses]):
                raise EngineError(f"a track or bus {track.id!r} exists already")
            self.project.tracks.insert(len(self.project.tracks) if index is None else index,
                                       track)
            self._rebuild_or_undo(lambda: self.project.tracks.remove(track))

    def remove_track(self, track_id: str) -> None:
        with self._lock:
            try:
                track = self.project.track(track_id)
            except KeyError:
                raise EngineError(f"no track {track_id!r}") from None
            self.project.tracks.remove(track)
            self.rebuild()

    def add_effect(self, strip_id: str, spec: EffectSpec, index: int | None = None) -> None:
        with self._lock:
            strip = self.strip(strip_id)
            if any(e.id == spec.id for e in strip.chain):
                raise EngineError(f"{strip_id}: an effect {spec.id!r} exists already")
            strip.chain.insert(len(strip.chain) if index is None else index, spec)
            self._rebuild_or_undo(lambda: strip.chain.remove(spec))

    def remove_effect(self, strip_id: str, effect_id: str) -> None:
        with self._lock:
            strip = self.strip(strip_id)
            spec = next((e for e in strip.chain if e.id == effect_id), None)
            if spec is None:
                raise EngineError(f"{strip_id}: no effect {effect_id!r}")
            strip.chain.remove(spec)
            self.rebuild()

    def _rebuild_or_undo(self, undo: Any) -> None:
        try:
            self.rebuild()
        except (ParamError, ValueError):
            undo()
            raise

    # -- live inputs ---------------------------------------------------------------------

    def add_input(self, name: str, seconds: float = 0.5) -> None:
        """A live input port: a bounded ring that the network side fills (``push_input``)
        and input tracks (``Track.input == name``) read, one block at a time. What is not
        there when a block needs it plays as silence and is counted (``late_frames``).
        Control side; swaps in a new graph."""
        with self._lock:
            if name in self._inputs:
                raise EngineError(f"input {name!r} exists already")
            ring = np.zeros((max(round(seconds * self.sample_rate), self.max_block), 2),
                            dtype=np.float32)
            self._inputs[name] = (ring, np.zeros(2, dtype=np.int64))
            self.rebuild()

    def push_input(self, name: str, frames: F32) -> int:
        """Append float32 (n, 2) frames to an input's ring (single producer per input:
        the network side); returns how many fitted (the rest is dropped: the ring is full
        when the engine is not keeping up)."""
        ring, idx = self._inputs[name]
        head, tail = int(idx[0]), int(idx[1])
        n = int(min(frames.shape[0], ring.shape[0] - (tail - head)))
        for k in range(n):  # not the audio thread: a plain loop is fine here
            ring[(tail + k) % ring.shape[0]] = frames[k]
        idx[1] = tail + n  # publish after the frames are written
        return n

    # -- meters and stats (control side) -------------------------------------------------

    def read_meters(self) -> dict[str, Meter]:
        """The newest meter reading of every strip (drains the meter pipe)."""
        rows = {v: k for k, v in self.graph.rows.items()}
        head, tail = int(self._meter_idx[0]), int(self._meter_idx[1])
        for k in range(head, tail):
            rec = self._meter_ring[k % METER_FRAMES]
            sid = rows.get(int(rec[1]))
            if sid is not None:
                self._meters[sid] = Meter((float(rec[2]), float(rec[3])),
                                          (float(rec[4]), float(rec[5])))
        self._meter_idx[0] = tail
        return dict(self._meters)

    def configure_meters(self, block: int) -> None:
        """Send meter frames about METER_HZ times a second for blocks of ``block`` frames."""
        self.transport[T_METER_EVERY] = max(round(self.sample_rate / METER_HZ / block), 1)

    @property
    def stats(self) -> dict[str, float]:
        t = self.transport
        return {"blocks": t[T_BLOCKS], "late_frames": t[T_LATE], "loop_wraps": t[T_WRAPS],
                "meter_drops": t[T_METER_DROPS], "bad_commands": t[T_BAD_COMMANDS],
                "events_dropped": t[T_EVENTS_DROPPED]}

    def attach_strip_taps(self) -> None:
        """Start copying every strip's blocks into a ring of its last STRIP_TAP_S seconds
        (engine.monitor needs them; they cost memory traffic, so only while asked)."""
        with self._lock:
            if self.strip_taps.shape[1] == 1:
                self.strip_taps = np.zeros((len(self.graph.rows), round(
                    STRIP_TAP_S * self.sample_rate), 2), dtype=np.float32)
                self.rebuild()
                self.transport[T_STRIP_TAPS] = 1.0

    @property
    def frames_rendered(self) -> int:
        """Frames written to the taps so far (the monitor's read position runs behind it)."""
        return int(self.transport[T_TAP_WRITE])

    def tap_frames(self, frames: int) -> F32:
        """The last ``frames`` of output (a copy), for loudness and spectrum readers."""
        frames = min(frames, self.tap.shape[0])
        end = int(self.transport[T_TAP_WRITE])
        idx = (np.arange(end - frames, end) % self.tap.shape[0])
        return self.tap[idx].copy()
