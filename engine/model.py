"""The studio project as plain typed data: what the engine renders.

A project is tracks (audio, instrument or live input), buses, a master, a tempo map, a time
signature and a loop region. Times on the timeline are in beats (quarter notes) from the
start of the project; the tempo map turns them into seconds and samples. Clip offsets into
an audio file and fade lengths are in seconds (they belong to the sound, not to the bar).

Every track and bus has the same fader: an insert chain of effects (``EffectSpec``), then
gain, mute and pan, with sends to buses before (``pre_fader``) or after the fader.
Automation lanes move any parameter of the fader or of an effect along breakpoints.

The JSON form (``engine.project``: ``load_project``, ``dump_project``) is documented in
docs/project.md and versioned by ``SCHEMA_VERSION``. These classes hold values already
checked by the loader; the engine trusts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SCHEMA_VERSION = 1

TrackKind = Literal["audio", "instrument", "input"]
TRACK_KINDS: tuple[TrackKind, ...] = ("audio", "instrument", "input")
InstrumentKind = Literal["synth", "sampler"]
INSTRUMENT_KINDS: tuple[InstrumentKind, ...] = ("synth", "sampler")


@dataclass
class EffectSpec:
    """One insert: an effect type from the registry (engine.effects) and its parameters
    (names and ranges of that dsp effect's ``PARAMS``; choice parameters by name)."""

    id: str
    type: str
    params: dict[str, float | str] = field(default_factory=dict)
    enabled: bool = True


@dataclass
class Send:
    """A feed from a track (or bus) into a bus, before or after the fader."""

    bus: str
    level_db: float = 0.0
    pre_fader: bool = False


@dataclass
class Breakpoint:
    """A point of an automation lane. ``curve`` shapes the segment that starts here:
    0 is a straight line, > 0 bends it late (slow start), < 0 early (fast start)."""

    beat: float
    value: float
    curve: float = 0.0


@dataclass
class AutomationLane:
    """``target`` is ``"gain_db"``, ``"pan"`` (the fader) or ``"<effect id>.<param>"``."""

    target: str
    points: list[Breakpoint] = field(default_factory=list)


@dataclass
class AudioClip:
    """A region of an audio asset on the timeline: from ``offset_s`` into the file, for
    ``length`` beats starting at ``start`` beats; gain and linear fades in and out."""

    id: str
    asset: str
    start: float
    length: float
    offset_s: float = 0.0
    gain_db: float = 0.0
    fade_in_s: float = 0.0
    fade_out_s: float = 0.0


@dataclass
class Note:
    """A MIDI note, times in beats from the clip's start; velocity 1..127."""

    pitch: int
    start: float
    length: float
    velocity: int = 100


@dataclass
class ControlChange:
    beat: float
    controller: int
    value: int


@dataclass
class MidiClip:
    id: str
    start: float
    length: float
    notes: list[Note] = field(default_factory=list)
    controls: list[ControlChange] = field(default_factory=list)


@dataclass
class Instrument:
    """An instrument track's sound source: ``synth`` (params of engine.synth) or
    ``sampler`` (plays ``asset`` pitched from ``root``)."""

    kind: InstrumentKind = "synth"
    params: dict[str, float | str] = field(default_factory=dict)
    asset: str | None = None
    root: int = 60


@dataclass
class Strip:
    """What tracks, buses and the master share: the insert chain and the fader."""

    id: str
    name: str = ""
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    chain: list[EffectSpec] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    automation: list[AutomationLane] = field(default_factory=list)


@dataclass
class Track(Strip):
    kind: TrackKind = "audio"
    color: str = ""
    solo: bool = False
    clips: list[AudioClip] = field(default_factory=list)
    midi: list[MidiClip] = field(default_factory=list)
    instrument: Instrument | None = None
    input: str | None = None  # the live input port an input track listens to


@dataclass
class Bus(Strip):
    pass


@dataclass
class TempoPoint:
    beat: float
    bpm: float


@dataclass
class Loop:
    enabled: bool = False
    start: float = 0.0
    end: float = 16.0


@dataclass
class Project:
    name: str = ""
    sample_rate: int = 48000
    tempo: list[TempoPoint] = field(default_factory=lambda: [TempoPoint(0.0, 120.0)])
    time_signature: tuple[int, int] = (4, 4)
    loop: Loop = field(default_factory=Loop)
    tracks: list[Track] = field(default_factory=list)
    buses: list[Bus] = field(default_factory=list)
    master: Strip = field(default_factory=lambda: Strip(id="master", name="Master"))
    assets: dict[str, str] = field(default_factory=dict)  # asset id -> file path

    def track(self, track_id: str) -> Track:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise KeyError(track_id)

    def strip(self, strip_id: str) -> Strip:
        """A track, a bus, or the master (``"master"``) by id."""
        if strip_id == self.master.id:
            return self.master
        for s in [*self.tracks, *self.buses]:
            if s.id == strip_id:
                return s
        raise KeyError(strip_id)
