"""engine.midi: Standard MIDI File import and export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import mido  # type: ignore[import-untyped]
import numpy as np
import pytest

from engine.midi import MidiError, MidiImport, export_midi, import_midi
from engine.model import (
    AudioClip,
    ControlChange,
    Instrument,
    MidiClip,
    Note,
    Project,
    TempoPoint,
    Track,
)

TICK = 1 / 960

AbsNote = tuple[int, float, float, int]  # pitch, absolute start, length, velocity
AbsControl = tuple[float, int, int]  # absolute beat, controller, value


def instrument(track_id: str, name: str, *clips: MidiClip) -> Track:
    return Track(id=track_id, name=name, kind="instrument", instrument=Instrument("synth"),
                 midi=list(clips))


def absolute_notes(track: Track) -> list[AbsNote]:
    return sorted((n.pitch, clip.start + n.start, n.length, n.velocity)
                  for clip in track.midi for n in clip.notes)


def absolute_controls(track: Track) -> list[AbsControl]:
    return sorted((clip.start + c.beat, c.controller, c.value)
                  for clip in track.midi for c in clip.controls)


def assert_same_notes(got: list[AbsNote], want: list[AbsNote], tolerance: float) -> None:
    assert len(got) == len(want), f"{len(got)} notes, expected {len(want)}"
    for g, w in zip(sorted(got), sorted(want), strict=True):
        assert g[0] == w[0] and g[3] == w[3], (g, w)
        assert abs(g[1] - w[1]) <= tolerance, (g, w)
        assert abs(g[2] - w[2]) <= tolerance, (g, w)


def song() -> Project:
    """Chords, triplets, overlapping notes of one pitch, unison duplicates, CCs, two clips on
    a track, a tempo change and 3/4: what a round trip must keep."""
    piano = instrument("pno", "Piano", MidiClip(
        "pno-1", start=4.0, length=8.0,
        notes=[
            Note(60, 0.0, 1.0, 100), Note(64, 0.0, 1.0, 90), Note(67, 0.0, 1.0, 80),  # C
            Note(65, 1.5, 1.5, 70), Note(69, 1.5, 1.5, 72), Note(72, 1.5, 1.5, 74),  # F
            Note(62, 3.0, 1 / 3, 60), Note(64, 3 + 1 / 3, 1 / 3, 61),  # triplets
            Note(65, 3 + 2 / 3, 1 / 3, 62),
            Note(48, 4.0, 1.0, 70), Note(48, 4.5, 1.0, 110),  # one pitch, overlapping
            Note(50, 5.0, 1.0, 20), Note(50, 6.0, 0.5, 127),  # one pitch, back to back
            Note(55, 6.0, 0.5, 30), Note(55, 6.0, 1.25, 90),  # unison, different lengths
        ],
        controls=[ControlChange(0.0, 64, 127), ControlChange(1.25, 1, 40),
                  ControlChange(3.9, 64, 0), ControlChange(7.0, 7, 100)],
    ))
    bass = instrument(
        "bass", "Bass",
        MidiClip("bass-1", start=0.0, length=4.0,
                 notes=[Note(36, 0.0, 0.75, 100), Note(43, 1.0, 0.25, 90),
                        Note(36, 2.0, 2.0, 95)]),
        MidiClip("bass-2", start=12.0, length=6.0,
                 notes=[Note(38, 0.5, 1.0, 100), Note(41, 9 / 7, 2 / 7, 77)],
                 controls=[ControlChange(0.0, 10, 20)]),
    )
    vocals = Track(id="vox", name="Vocals", kind="audio",
                   clips=[AudioClip("v1", asset="vox.wav", start=0.0, length=8.0)])
    empty = instrument("pad", "Pad")
    return Project(name="Round Trip", tempo=[TempoPoint(0.0, 120.0), TempoPoint(8.0, 90.5),
                                             TempoPoint(14.0, 140.0)],
                   time_signature=(3, 4), tracks=[piano, bass, vocals, empty])


# ---------------------------------------------------------------------------------------
# Round trip and export
# ---------------------------------------------------------------------------------------


def test_round_trip_keeps_notes_controls_tempo_and_time_signature(tmp_path: Path) -> None:
    project = song()
    path = tmp_path / "song.mid"
    assert export_midi(project, path) == []
    back = import_midi(path)

    assert isinstance(back, MidiImport)
    assert back.warnings == []
    assert back.ticks_per_beat == 960
    assert back.time_signature == (3, 4)
    assert back.tempo == [TempoPoint(0.0, 120.0), TempoPoint(8.0, 90.5),
                          TempoPoint(14.0, 140.0)]
    assert [t.name for t in back.tracks] == ["Piano", "Bass"]  # audio and empty ones out
    for track in back.tracks:
        assert track.kind == "instrument" and track.instrument == Instrument("synth")
        assert len(track.midi) == 1
        clip = track.midi[0]
        assert all(n.start >= 0 and n.start + n.length <= clip.length + 1e-12
                   for n in clip.notes)
    for original, imported in zip(project.tracks[:2], back.tracks, strict=True):
        assert_same_notes(absolute_notes(imported), absolute_notes(original), TICK)
        got_cc = absolute_controls(imported)
        want_cc = absolute_controls(original)
        assert [c[1:] for c in got_cc] == [c[1:] for c in want_cc]
        assert np.allclose([c[0] for c in got_cc], [c[0] for c in want_cc], atol=TICK)
    assert len({t.id for t in back.tracks}) == len(back.tracks)


def test_round_trip_through_a_file_object_at_another_resolution() -> None:
    project = song()
    buf = io.BytesIO()
    export_midi(project, buf, ticks_per_beat=480)
    buf.seek(0)
    back = import_midi(buf)
    assert back.ticks_per_beat == 480
    for original, imported in zip(project.tracks[:2], back.tracks, strict=True):
        assert_same_notes(absolute_notes(imported), absolute_notes(original), 1 / 480)


def absolute_messages(track: Any) -> list[tuple[int, Any]]:
    now, out = 0, []
    for msg in track:
        now += msg.time
        out.append((now, msg))
    return out


def test_export_writes_a_type_1_file_with_a_conductor_track(tmp_path: Path) -> None:
    path = tmp_path / "song.mid"
    export_midi(song(), path)
    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == 960
    assert len(mid.tracks) == 4  # conductor, Piano, Bass, Pad (the audio track is left out)

    conductor = absolute_messages(mid.tracks[0])
    names = [m.name for _, m in conductor if m.type == "track_name"]
    assert names == ["Round Trip"]
    signatures = [(t, m.numerator, m.denominator) for t, m in conductor
                  if m.type == "time_signature"]
    assert signatures == [(0, 3, 4)]
    tempos = [(t, m.tempo) for t, m in conductor if m.type == "set_tempo"]
    assert tempos == [(0, 500000), (8 * 960, round(60e6 / 90.5)), (14 * 960, round(60e6 / 140))]
    assert not any(m.type.startswith("note") for _, m in conductor)

    assert [tr.name for tr in mid.tracks[1:]] == ["Piano", "Bass", "Pad"]
    piano = absolute_messages(mid.tracks[1])
    first_on = next((t, m) for t, m in piano if m.type == "note_on")
    assert first_on[0] == 4 * 960  # clip start + note start
    triplet = next(t for t, m in piano if m.type == "note_on" and m.note == 64 and t > 5000)
    assert triplet == round((4 + 3 + 1 / 3) * 960)
    bass = absolute_messages(mid.tracks[2])
    second_clip = [t for t, m in bass if m.type == "note_on" and m.note == 38]
    assert second_clip == [round(12.5 * 960)]
    cc = [(t, m.control, m.value) for t, m in bass if m.type == "control_change"]
    assert cc == [(12 * 960, 10, 20)]
    end = absolute_messages(mid.tracks[2])[-1]
    assert end[1].type == "end_of_track" and end[0] == 18 * 960  # the end of the last clip


def test_export_orders_events_at_one_tick_for_fifo_readers() -> None:
    project = Project(tracks=[instrument("t", "T", MidiClip(
        "c", 0.0, 4.0, notes=[Note(60, 1.0, 2.0, 50), Note(60, 0.0, 1.0, 40),
                              Note(60, 1.0, 1.0, 60)],
        controls=[ControlChange(1.0, 64, 127)]))])
    buf = io.BytesIO()
    export_midi(project, buf)
    buf.seek(0)
    at_one = [m for t, m in absolute_messages(mido.MidiFile(file=buf).tracks[1]) if t == 960]
    kinds = [(m.type, getattr(m, "velocity", None)) for m in at_one]
    # The note ending here first, then the controller, then the shorter new note first.
    assert kinds == [("note_off", 64), ("control_change", None), ("note_on", 60),
                     ("note_on", 50)]


def test_export_keeps_to_the_clip() -> None:
    clip = MidiClip("c", 2.0, 2.0, notes=[
        Note(60, 0.0, 1.0), Note(62, 1.5, 3.0),  # the second is cut at the clip end
        Note(64, 2.0, 1.0), Note(65, -0.5, 1.0),  # outside: left out
    ], controls=[ControlChange(2.0, 64, 0), ControlChange(2.5, 1, 1)])
    project = Project(tracks=[instrument("t", "T", clip)])
    buf = io.BytesIO()
    warnings = export_midi(project, buf)
    assert len(warnings) == 1 and "'t'" in warnings[0] and "3" in warnings[0]
    buf.seek(0)
    back = import_midi(buf)
    assert absolute_notes(back.tracks[0]) == [(60, 2.0, 1.0, 100), (62, 3.5, 0.5, 100)]
    assert absolute_controls(back.tracks[0]) == [(4.0, 64, 0)]


def test_nested_notes_of_one_pitch_keep_their_starts_and_ends() -> None:
    """MIDI cannot tell which note-off ends which of two nested notes of one pitch: the
    reader pairs first in, first out, so the ends swap but every on and off stays put."""
    clip = MidiClip("c", 0.0, 4.0, notes=[Note(60, 0.0, 4.0, 100), Note(60, 1.0, 1.0, 50)])
    buf = io.BytesIO()
    export_midi(Project(tracks=[instrument("t", "T", clip)]), buf)
    buf.seek(0)
    notes = absolute_notes(import_midi(buf).tracks[0])
    assert notes == [(60, 0.0, 2.0, 100), (60, 1.0, 3.0, 50)]


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: setattr(p.tracks[0].midi[0].notes[0], "pitch", 200), "pitch 200"),
    (lambda p: setattr(p.tracks[0].midi[0].notes[0], "velocity", 0), "velocity 0"),
    (lambda p: setattr(p.tracks[0].midi[0].controls[0], "value", 128), "value 128"),
    (lambda p: setattr(p, "time_signature", (4, 3)), "4/3"),
    (lambda p: setattr(p, "tempo", [TempoPoint(0.0, 0.0)]), "tempo 0.0"),
    (lambda p: setattr(p, "tempo", [TempoPoint(0.0, 1.0)]), "out of the range"),
])
def test_export_rejects_what_midi_cannot_hold(change: Any, message: str) -> None:
    project = song()
    change(project)
    with pytest.raises(MidiError, match=message) as info:
        export_midi(project, io.BytesIO())
    if "pitch" in message or "value" in message:
        assert "'pno'" in str(info.value) and "'pno-1'" in str(info.value)


def test_export_rejects_a_bad_resolution() -> None:
    with pytest.raises(MidiError, match="ticks_per_beat"):
        export_midi(song(), io.BytesIO(), ticks_per_beat=0)


# ---------------------------------------------------------------------------------------
# Importing files written by others
# ---------------------------------------------------------------------------------------


def write_with_mido(path: Path, tpb: int, tracks: list[list[tuple[int, Any]]],
                    file_type: int = 1) -> Path:
    """A file written with mido directly: ``tracks`` of (absolute tick, message)."""
    mid = mido.MidiFile(type=file_type, ticks_per_beat=tpb)
    for events in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(path)
    return path


def meta(kind: str, **kw: Any) -> Any:
    return mido.MetaMessage(kind, **kw)


def on(note: int, velocity: int, channel: int = 0) -> Any:
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note: int, channel: int = 0) -> Any:
    return mido.Message("note_off", note=note, velocity=0, channel=channel)


def cc(control: int, value: int, channel: int = 0) -> Any:
    return mido.Message("control_change", control=control, value=value, channel=channel)


def test_import_of_a_file_written_with_mido(tmp_path: Path) -> None:
    q = 480
    conductor = [(0, meta("track_name", name="Tune")),
                 (0, meta("time_signature", numerator=6, denominator=8)),
                 (0, meta("set_tempo", tempo=mido.bpm2tempo(100))),
                 (8 * q, meta("set_tempo", tempo=mido.bpm2tempo(75))),
                 (8 * q, meta("end_of_track"))]
    lead = [(0, meta("track_name", name="Lead")),
            (0, mido.Message("program_change", program=5)),
            (q // 2, cc(7, 100)),
            (q, on(60, 100)),
            (q + q // 2, on(60, 50)),  # the same pitch again, overlapping
            (2 * q, off(60)),  # ends the first (FIFO)
            (2 * q + q // 2, on(60, 0)),  # velocity 0: ends the second
            (3 * q, on(64, 90)), (3 * q, on(67, 91)),
            (3 * q, mido.Message("pitchwheel", pitch=100)),
            (4 * q, off(64)), (4 * q, off(67)),
            (4 * q, on(72, 30)),  # never ended
            (6 * q, meta("end_of_track"))]
    mixed = [(0, on(36, 120, channel=9)), (q // 4, off(36, channel=9)),
             (q, off(50, channel=1)),  # ends nothing
             (2 * q, on(50, 64, channel=1)), (3 * q, off(50, channel=1)),
             (3 * q, cc(1, 5, channel=3)),  # a channel that plays no notes
             (3 * q, meta("end_of_track"))]
    path = write_with_mido(tmp_path / "other.mid", q, [conductor, lead, mixed])
    got = import_midi(path)

    assert got.ticks_per_beat == q and got.length == 8.0  # the conductor track's end
    assert got.tempo == [TempoPoint(0.0, 100.0), TempoPoint(8.0, 75.0)]
    assert got.time_signature == (6, 8)
    assert [t.name for t in got.tracks] == ["Lead", "Track 3 (ch 2)", "Track 3 (ch 10)"]
    lead_track = got.tracks[0]
    clip = lead_track.midi[0]
    assert clip.start == 0.5  # the first event of the channel: the CC
    assert clip.length == 5.5  # to the end of the never-ended note
    assert [(n.pitch, n.start, n.length, n.velocity) for n in clip.notes] == [
        (60, 0.5, 1.0, 100), (60, 1.0, 1.0, 50), (64, 2.5, 1.0, 90), (67, 2.5, 1.0, 91),
        (72, 3.5, 2.0, 30)]
    assert [(c.beat, c.controller, c.value) for c in clip.controls] == [(0.0, 7, 100)]
    assert absolute_notes(got.tracks[1]) == [(50, 2.0, 1.0, 64)]
    assert absolute_notes(got.tracks[2]) == [(36, 0.0, 0.25, 120)]
    text = "\n".join(got.warnings)
    assert "1 note(s) had no note-off" in text
    assert "1 note-off(s) without a note" in text
    assert "program change" in text and "pitch bend" in text
    assert "1 controller change(s) on channels that play no notes" in text


def test_type_0_file_is_split_by_channel(tmp_path: Path) -> None:
    q = 96
    events = [(0, meta("set_tempo", tempo=mido.bpm2tempo(90))),
              (0, meta("track_name", name="All")),
              (0, on(60, 100, channel=0)), (0, on(40, 80, channel=2)),
              (q, off(60, channel=0)), (2 * q, off(40, channel=2)),
              (2 * q, meta("end_of_track"))]
    got = import_midi(write_with_mido(tmp_path / "t0.mid", q, [events], file_type=0))
    assert got.tempo == [TempoPoint(0.0, 90.0)]
    assert got.time_signature == (4, 4)
    assert [t.name for t in got.tracks] == ["All (ch 1)", "All (ch 3)"]
    assert absolute_notes(got.tracks[0]) == [(60, 0.0, 1.0, 100)]
    assert absolute_notes(got.tracks[1]) == [(40, 0.0, 2.0, 80)]


def test_tempo_and_time_signature_defaults(tmp_path: Path) -> None:
    events = [(0, on(60, 100)), (480, off(60)),
              (4 * 480, meta("set_tempo", tempo=mido.bpm2tempo(150))),
              (4 * 480, meta("time_signature", numerator=7, denominator=8)),
              (5 * 480, meta("time_signature", numerator=4, denominator=4))]
    got = import_midi(write_with_mido(tmp_path / "late.mid", 480, [events]))
    assert got.tempo == [TempoPoint(0.0, 120.0), TempoPoint(4.0, 150.0)]
    assert got.time_signature == (7, 8)
    assert any("time signature changes ignored" in w for w in got.warnings)


# ---------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------


def valid_bytes() -> bytes:
    buf = io.BytesIO()
    export_midi(song(), buf)
    return buf.getvalue()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"This is a text file, not MIDI at all\n" * 4, "not a MIDI file"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\xe7\x28", "SMPTE"),
    (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\x45\x00\x00",
     "corrupt MIDI file"),  # a data byte where a status byte must be
    (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xf4\x00\x00",
     "corrupt MIDI file"),  # an undefined status byte
    (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0RIFF\x00\x00\x00\x00",
     "corrupt MIDI file"),  # no MTrk
    (b"MThd\x00\x00", "truncated"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x00\x00", "0 ticks per beat"),
])
def test_malformed_files_raise_midi_error(tmp_path: Path, content: bytes,
                                          message: str) -> None:
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MidiError, match=message) as info:
        import_midi(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_and_directory_raise_midi_error(tmp_path: Path) -> None:
    with pytest.raises(MidiError, match="file not found"):
        import_midi(tmp_path / "nowhere.mid")
    with pytest.raises(MidiError, match="directory"):
        import_midi(tmp_path)


def test_every_truncation_of_a_valid_file_raises_midi_error() -> None:
    data = valid_bytes()
    for cut in range(len(data)):
        with pytest.raises(MidiError) as info:
            import_midi(io.BytesIO(data[:cut]))
        assert "<MIDI data>" in str(info.value)
    assert import_midi(io.BytesIO(data)).tracks  # the whole file is fine


def test_truncated_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "cut.mid"
    path.write_bytes(valid_bytes()[:-10])
    with pytest.raises(MidiError, match="truncated"):
        import_midi(path)


def test_corrupted_files_raise_nothing_but_midi_error() -> None:
    data = valid_bytes()
    rng = np.random.default_rng(11)
    imported = 0
    for trial in range(300):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            where = int(rng.integers(0, 120 if trial % 2 else len(damaged)))
            damaged[where] = int(rng.integers(0, 256))
        try:
            result = import_midi(io.BytesIO(bytes(damaged)))
        except MidiError:
            continue
        imported += 1
        for track in result.tracks:
            for clip in track.midi:
                assert clip.length > 0
                assert all(n.length >= 0 and 1 <= n.velocity <= 127 for n in clip.notes)
        assert result.tempo[0].beat == 0.0 and all(p.bpm > 0 for p in result.tempo)
    assert imported > 0  # some damage (e.g. to a note's velocity) still imports
