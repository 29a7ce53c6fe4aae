"""Standard MIDI Files in and out of the project model, with mido.

Import (``import_midi``)
    Every MIDI track and channel that plays notes becomes one instrument ``Track``
    (``kind="instrument"``, ``Instrument("synth")``) holding one ``MidiClip`` that spans its
    notes and controller changes; note and controller times in the clip are beats from the
    clip's start, and the clip starts at the group's first event. Beats are ticks divided by
    the file's ticks per beat (a beat is a quarter note, as in SMF and the model).

    Pairing: a note-on with velocity 0 is a note-off. A note-off closes the *oldest* open note
    of its channel and pitch (first in, first out), so overlapping notes of one pitch pair up
    the way they were played: on A, on B, off, off gives A the first off. A note-off with no
    open note is ignored. A note never closed ends at the end of its track (the track's last
    event, normally its end-of-track meta event); the import's ``warnings`` say how many.

    Tempo comes from every ``set_tempo`` event of every track (a type 1 file keeps them in
    its first track), as ``TempoPoint(beat, bpm)`` with bpm in quarter notes per minute; a
    point at beat 0 is added at 120 bpm (the SMF default) when the file has none there. The
    project has one time signature: the first one in the file (4/4 if none), and the import
    warns when the file changes it later. Pitch bend, aftertouch, program changes and SysEx
    have no place in the model and are dropped (with a warning); controller changes on a
    channel that plays no notes are dropped too.

    ``MidiImport`` also keeps the file's ``ticks_per_beat`` and its length in beats. Track and
    clip ids are ``midi<track>-ch<channel>`` (1-based), unique within one import; callers that
    merge imports into a project re-id them.

Export (``export_midi``)
    A type 1 file: a first (conductor) track with the project name, the time signature and
    the tempo map (the first tempo point is written at tick 0, as ``engine.tempo`` reads it),
    then one MIDI track per instrument track, in project order, on channel 1, named after the
    track. A clip plays what lies inside it: notes starting in ``[0, clip.length)`` are
    written, cut at the clip's end; controller changes in ``[0, clip.length]``. Positions are
    ``round((clip.start + t) * ticks_per_beat)``; a note is at least one tick long. At one
    tick, note-offs come first, then controller changes, then note-ons, and note-ons of one
    pitch are ordered by their ends, so a reader pairing first-in-first-out gets the notes
    back. (Notes of one pitch nested inside each other, a later one ending first, cannot be
    told apart in MIDI at all: such a pair comes back with its two ends swapped.)

Errors
    Anything wrong with a file to import (missing, unreadable, not MIDI, truncated, corrupt,
    SMPTE timing) raises ``MidiError`` (a ``ValueError``) whose message names the file and
    says what is wrong; nothing else escapes. A project that cannot be written as SMF (a
    pitch or velocity out of range, a bpm too slow for SMF, a time signature whose
    denominator is not a power of two) raises ``MidiError`` too, naming the track and clip.
    Both run off the audio thread (file I/O).
"""

from __future__ import annotations

import io
import os
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import IO, Any

import mido  # type: ignore[import-untyped]

from engine.model import ControlChange, Instrument, MidiClip, Note, Project, TempoPoint, Track

StrPath = str | os.PathLike[str]
MidiSource = StrPath | IO[bytes]

DEFAULT_BPM = 120.0
MAX_FILE_BYTES = 32 * 1024 * 1024
"""Larger files are refused (mido parses in pure Python; real SMFs are far smaller)."""

_MICROSECONDS_PER_MINUTE = 60_000_000
_MAX_TEMPO = 0xFFFFFF  # microseconds per quarter note, 3 bytes
_DENOMINATORS = frozenset({1, 2, 4, 8, 16, 32, 64})


class MidiError(ValueError):
    """A MIDI file that cannot be read, or a project that cannot be written as one."""


@dataclass
class MidiImport:
    tempo: list[TempoPoint]
    time_signature: tuple[int, int]
    tracks: list[Track]
    ticks_per_beat: int
    length: float = 0.0
    """Beats to the end of the longest track."""
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------


_DROPPED = {
    "pitchwheel": "pitch bend event(s) (not in the project model)",
    "aftertouch": "channel aftertouch event(s) (not in the project model)",
    "polytouch": "polyphonic aftertouch event(s) (not in the project model)",
    "program_change": "program change(s) (not in the project model)",
    "sysex": "SysEx message(s) (not in the project model)",
    "silent_controls": "controller change(s) on channels that play no notes",
}


@dataclass
class _Group:
    """What one MIDI track plays on one channel: notes as (on tick, off tick, pitch,
    velocity), controller changes as (tick, controller, value)."""

    notes: list[tuple[int, int, int, int]] = field(default_factory=list)
    controls: list[tuple[int, int, int]] = field(default_factory=list)


def import_midi(source: MidiSource) -> MidiImport:
    """Read a Standard MIDI File (a path or a binary file object) into tracks, a tempo map
    and a time signature. Raises ``MidiError`` naming the file for anything wrong with it."""
    name = _source_name(source)
    mid = _read(source, name)
    tpb = int(mid.ticks_per_beat)  # 1..32767: _read checked the header
    warnings: list[str] = []
    if mid.type == 2:
        warnings.append("type 2 file: its independent sequences are imported as if they "
                        "played together")
    tempo_events: list[tuple[int, int]] = []
    signatures: list[tuple[int, int, int]] = []
    dropped: Counter[str] = Counter()
    unclosed = orphans = 0
    tracks: list[Track] = []
    end_tick = 0

    for ti, mtrack in enumerate(mid.tracks):
        tick = 0
        track_name = ""
        groups: dict[int, _Group] = {}
        open_notes: dict[tuple[int, int], deque[tuple[int, int]]] = {}
        for msg in mtrack:
            tick += msg.time
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                key = (msg.channel, msg.note)
                open_notes.setdefault(key, deque()).append((tick, msg.velocity))
                groups.setdefault(msg.channel, _Group())
            elif kind in ("note_off", "note_on"):
                queue = open_notes.get((msg.channel, msg.note))
                if queue:
                    start, velocity = queue.popleft()
                    groups[msg.channel].notes.append((start, tick, msg.note, velocity))
                else:
                    orphans += 1
            elif kind == "control_change":
                group = groups.setdefault(msg.channel, _Group())
                group.controls.append((tick, msg.control, msg.value))
            elif kind == "set_tempo":
                tempo_events.append((tick, msg.tempo))
            elif kind == "time_signature":
                signatures.append((tick, msg.numerator, msg.denominator))
            elif kind == "track_name" and not track_name:
                track_name = str(msg.name).strip()
            elif kind in ("pitchwheel", "aftertouch", "polytouch", "program_change", "sysex"):
                dropped[kind] += 1
        end_tick = max(end_tick, tick)
        for (channel, pitch), queue in open_notes.items():
            for start, velocity in queue:
                groups[channel].notes.append((start, tick, pitch, velocity))
                unclosed += 1
        playing = {ch: g for ch, g in groups.items() if g.notes}
        dropped["silent_controls"] += sum(
            len(g.controls) for ch, g in groups.items() if ch not in playing)
        for channel, group in sorted(playing.items()):
            tracks.append(_track(ti, channel, group, tpb, track_name, len(playing) > 1))

    if unclosed:
        warnings.append(f"{unclosed} note(s) had no note-off and end at the end of their track")
    if orphans:
        warnings.append(f"{orphans} note-off(s) without a note to end were ignored")
    warnings.extend(f"{count} {_DROPPED[kind]} dropped" for kind, count in dropped.items()
                    if count)
    tempo = _tempo_map(tempo_events, tpb, warnings)
    signature = _time_signature(signatures, warnings)
    return MidiImport(tempo, signature, tracks, tpb, end_tick / tpb, warnings)


def _source_name(source: MidiSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<MIDI data>"


def _read(source: MidiSource, name: str) -> Any:
    """The parsed ``mido.MidiFile``; every failure becomes a ``MidiError``."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        else:
            data = source.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MidiError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise MidiError(f"{name}: is a directory, not a MIDI file") from None
    except OSError as e:
        raise MidiError(f"{name}: cannot be read ({e.strerror or e})") from None
    if not isinstance(data, bytes):
        raise MidiError(f"{name}: not a binary file (read {type(data).__name__})")
    if not data:
        raise MidiError(f"{name}: empty file (0 bytes), not MIDI")
    if len(data) > MAX_FILE_BYTES:
        raise MidiError(f"{name}: too large for a MIDI file (over {MAX_FILE_BYTES} bytes)")
    if not data.startswith(b"MThd"):
        raise MidiError(f"{name}: not a MIDI file (it does not start with an MThd header)")
    division = int.from_bytes(data[12:14], "big") if len(data) >= 14 else None
    if division is not None and division & 0x8000:
        raise MidiError(f"{name}: SMPTE (frames per second) timing is not supported, only "
                        "ticks per beat")
    if division == 0:
        raise MidiError(f"{name}: corrupt MIDI file (0 ticks per beat)")
    try:
        return mido.MidiFile(file=io.BytesIO(data))
    except EOFError:
        raise MidiError(f"{name}: truncated MIDI file (it ends in the middle of a "
                        "track)") from None
    except Exception as e:  # mido raises OSError, ValueError, KeyError... on corrupt data
        raise MidiError(f"{name}: corrupt MIDI file ({e or type(e).__name__})") from e


def _track(ti: int, channel: int, group: _Group, tpb: int, track_name: str,
           several_channels: bool) -> Track:
    notes = sorted(group.notes, key=lambda n: (n[0], n[2], n[1]))
    controls = sorted(group.controls, key=lambda c: c[0])  # stable: file order at a tick
    first = min([notes[0][0], *(c[0] for c in controls)])
    last = max([max(n[1] for n in notes), *(c[0] for c in controls)])
    track_id = f"midi{ti + 1}-ch{channel + 1}"
    name = track_name or f"Track {ti + 1}"
    if several_channels:
        name = f"{name} (ch {channel + 1})"
    clip = MidiClip(
        id=f"{track_id}-clip",
        start=first / tpb,
        length=max(last - first, 1) / tpb,
        notes=[Note(pitch=p, start=(on - first) / tpb, length=(off - on) / tpb, velocity=v)
               for on, off, p, v in notes],
        controls=[ControlChange(beat=(t - first) / tpb, controller=c, value=v)
                  for t, c, v in controls],
    )
    return Track(id=track_id, name=name, kind="instrument", instrument=Instrument("synth"),
                 midi=[clip])


def _tempo_map(events: list[tuple[int, int]], tpb: int,
               warnings: list[str]) -> list[TempoPoint]:
    by_tick: dict[int, int] = {}
    bad = 0
    for tick, tempo in sorted(events, key=lambda e: e[0]):  # stable: the last at a tick wins
        if 0 < tempo <= _MAX_TEMPO:
            by_tick[tick] = tempo
        else:
            bad += 1
    if bad:
        warnings.append(f"{bad} tempo event(s) of 0 microseconds per beat ignored")
    points = [TempoPoint(tick / tpb, _bpm(tempo)) for tick, tempo in sorted(by_tick.items())]
    if not points or points[0].beat > 0:
        points.insert(0, TempoPoint(0.0, DEFAULT_BPM))
    return points


def _bpm(tempo: int) -> float:
    """Quarter notes per minute for microseconds per quarter note: the shortest decimal
    that the tempo rounds back to (500000 -> 120.0, 461538 -> 130.0)."""
    exact = _MICROSECONDS_PER_MINUTE / tempo
    for digits in range(7):
        bpm = round(exact, digits)
        if bpm > 0 and round(_MICROSECONDS_PER_MINUTE / bpm) == tempo:
            return bpm
    return exact


def _time_signature(events: list[tuple[int, int, int]], warnings: list[str]) -> tuple[int, int]:
    valid = [(t, n, d) for t, n, d in sorted(events, key=lambda e: e[0])
             if 1 <= n <= 255 and d in _DENOMINATORS]
    if len(valid) < len(events):
        warnings.append(f"{len(events) - len(valid)} invalid time signature(s) ignored")
    if not valid:
        return (4, 4)
    _, num, den = valid[0]
    if any((n, d) != (num, den) for _, n, d in valid[1:]):
        warnings.append(f"time signature changes ignored: the project keeps {num}/{den}")
    return (num, den)


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------

# Order of events at one tick: note-offs, then controller changes, then note-ons.
_OFF, _CONTROL, _ON = 0, 1, 2


def export_midi(project: Project, path_or_file: MidiSource, ticks_per_beat: int = 960
                ) -> list[str]:
    """Write ``project`` as a type 1 Standard MIDI File (see the module docstring). Returns
    warnings (notes left out because they lie outside their clip). Raises ``MidiError`` for
    a project SMF cannot hold and ``OSError`` if the file cannot be written."""
    if not 1 <= ticks_per_beat <= 0x7FFF:
        raise MidiError(f"ticks_per_beat must be 1..32767, got {ticks_per_beat}")
    tpb = ticks_per_beat
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mid.tracks.append(_conductor(project, tpb))
    warnings: list[str] = []
    for track in project.tracks:
        if track.kind == "instrument":
            mid.tracks.append(_export_track(track, tpb, warnings))
    if isinstance(path_or_file, (str, os.PathLike)):
        mid.save(filename=os.fspath(path_or_file))
    else:
        mid.save(file=path_or_file)
    return warnings


def _conductor(project: Project, tpb: int) -> Any:
    num, den = project.time_signature
    if not 1 <= num <= 255 or den not in _DENOMINATORS:
        raise MidiError(f"time signature {num}/{den} cannot be written to MIDI (numerator "
                        "1..255, denominator a power of two up to 64)")
    events: list[tuple[int, Any]] = [
        (0, mido.MetaMessage("time_signature", numerator=num, denominator=den)),
    ]
    points = sorted(project.tempo, key=lambda p: p.beat) or [TempoPoint(0.0, DEFAULT_BPM)]
    for k, point in enumerate(points):
        if not point.bpm > 0:
            raise MidiError(f"tempo {point.bpm} bpm at beat {point.beat} cannot be written")
        tempo = round(_MICROSECONDS_PER_MINUTE / point.bpm)
        if not 1 <= tempo <= _MAX_TEMPO:
            raise MidiError(f"tempo {point.bpm} bpm at beat {point.beat} is out of the range "
                            "MIDI can hold (about 3.6 to 60000000 bpm)")
        tick = 0 if k == 0 else max(round(point.beat * tpb), 0)
        events.append((tick, mido.MetaMessage("set_tempo", tempo=tempo)))
    track = mido.MidiTrack()
    if project.name:
        track.append(mido.MetaMessage("track_name", name=project.name))
    return _with_deltas(track, events, end=0)


def _export_track(track: Track, tpb: int, warnings: list[str]) -> Any:
    events: list[tuple[int, int, int, Any]] = []  # (tick, order, tie-break, message)
    end = 0
    outside = 0
    for clip in track.midi:
        where = f"track {track.id!r} clip {clip.id!r}"
        clip_start = clip.start
        end = max(end, round((clip_start + clip.length) * tpb))
        for note in clip.notes:
            if not 0 <= note.pitch <= 127:
                raise MidiError(f"{where}: note pitch {note.pitch} is outside 0..127")
            if not 1 <= note.velocity <= 127:
                raise MidiError(f"{where}: note velocity {note.velocity} is outside 1..127")
            if not 0 <= note.start < clip.length or clip_start + note.start < 0:
                outside += 1
                continue
            on = round((clip_start + note.start) * tpb)
            off = round((clip_start + min(note.start + max(note.length, 0.0), clip.length))
                        * tpb)
            off = max(off, on + 1)
            events.append((on, _ON, off, mido.Message(
                "note_on", channel=0, note=note.pitch, velocity=note.velocity)))
            events.append((off, _OFF, 0, mido.Message(
                "note_off", channel=0, note=note.pitch, velocity=64)))
            end = max(end, off)
        for cc in clip.controls:
            if not (0 <= cc.controller <= 127 and 0 <= cc.value <= 127):
                raise MidiError(f"{where}: controller {cc.controller} value {cc.value} is "
                                "outside 0..127")
            if not 0 <= cc.beat <= clip.length or clip_start + cc.beat < 0:
                outside += 1
                continue
            events.append((round((clip_start + cc.beat) * tpb), _CONTROL, 0, mido.Message(
                "control_change", channel=0, control=cc.controller, value=cc.value)))
    if outside:
        warnings.append(f"track {track.id!r}: {outside} note(s) or controller change(s) "
                        "outside their clip left out")
    events.sort(key=lambda e: e[:3])
    mtrack = mido.MidiTrack()
    mtrack.append(mido.MetaMessage("track_name", name=track.name or track.id))
    return _with_deltas(mtrack, [(tick, msg) for tick, _, _, msg in events], end)


def _with_deltas(track: Any, events: list[tuple[int, Any]], end: int) -> Any:
    """Append ``events`` (sorted, absolute ticks) to ``track`` as delta times, then the end
    of the track at ``end`` (or the last event, if later)."""
    now = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(end - now, 0)))
    return track
