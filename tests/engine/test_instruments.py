"""Instrument tracks: MIDI clips played by the synth and the sampler, sample-accurately."""

from __future__ import annotations

import io

import numpy as np
import pytest

from engine.midi import export_midi, import_midi
from engine.model import Instrument, Loop, MidiClip, Note, Project, Track
from tests.engine.helpers import BEAT, SR, engine, max_jump, render, sine

SINE = {"osc1_wave": "sine", "osc2_wave": "sine", "osc2_detune_cents": 0.0, "osc_mix": 0.0,
        "attack_ms": 0.0, "release_ms": 30.0, "spread": 0.0,
        "cutoff_hz": 20000.0}


def synth_track(notes: list[Note], start: float = 0.0, length: float = 8.0) -> Track:
    return Track(id="keys", kind="instrument", instrument=Instrument("synth", dict(SINE)),
                 midi=[MidiClip("m", start, length, notes=notes)])


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), 8 * x.size))
    return float(np.fft.rfftfreq(8 * x.size, 1 / SR)[np.argmax(spec)])


@pytest.mark.parametrize("block", [1, 100, 128, 1024])
def test_notes_start_on_their_exact_sample(block: int) -> None:
    notes = [Note(69, 0.5, 0.25), Note(76, 1.3, 0.25)]
    y = render(engine(Project(tracks=[synth_track(notes, start=1.0)]), {}), 1.5, block)[:, 0]
    first = np.flatnonzero(y)[0]
    assert first == round(1.5 * BEAT)
    second = round(2.3 * BEAT)
    assert np.abs(y[round(1.75 * BEAT) + 4000:second]).max() < 1e-4  # the first released
    assert y[second] != 0.0 and not y[second - 1]


def test_pitches_and_timing_of_a_little_tune() -> None:
    tune = [Note(60, 0.0, 1.0), Note(64, 1.0, 1.0), Note(67, 2.0, 1.0), Note(72, 3.0, 1.0)]
    y = render(engine(Project(tracks=[synth_track(tune)]), {}), 2.0)[:, 0]
    for k, note in enumerate(tune):
        seg = y[k * BEAT + 2000:k * BEAT + 2000 + 16384]
        expected = 440.0 * 2 ** ((note.pitch - 69) / 12)
        assert peak_hz(seg) == pytest.approx(expected, rel=0.002)


def test_a_loop_wrap_releases_held_notes_without_a_click() -> None:
    """A note held across the loop's end is released at the wrap (no hanging notes) and
    the note at the loop's start plays again each time round."""
    p = Project(tracks=[synth_track([Note(57, 0.0, 1.5), Note(69, 1.25, 4.0)])])
    p.loop = Loop(True, 0.0, 2.0)
    e = engine(p, {})
    y = render(e, 4.2)[:, 0]
    assert e.stats["loop_wraps"] >= 3
    for wrap in range(1, 4):
        at = wrap * 2 * BEAT
        assert y[at:at + 1200].any()  # the first note again
    low = y[2 * BEAT + 2500:2 * BEAT + 2500 + 4096]
    assert peak_hz(low) == pytest.approx(220.0, rel=0.003)  # only A3 once 69 has released
    assert max_jump(y[:, None]) < 0.2


def test_pause_releases_every_voice() -> None:
    e = engine(Project(tracks=[synth_track([Note(69, 0.0, 8.0)])]), {})
    render(e, 0.5)
    e.pause()
    y = render(e, 0.5)[:, 0]
    assert np.abs(y[:100]).max() > 0.01
    assert not y[-1000:].any()


def test_sampler_plays_its_sample_transposed() -> None:
    sample = sine(1.0, 261.6255653, 0.5)  # C4 recorded
    t = Track(id="smp", kind="instrument",
              instrument=Instrument("sampler", {"attack_ms": 0.0}, asset="c4", root=60),
              midi=[MidiClip("m", 0.0, 4.0, notes=[Note(67, 0.0, 2.0)])])
    p = Project(tracks=[t], assets={"c4": "c4"})
    y = render(engine(p, {"c4": sample}), 0.6)[:, 0]
    assert peak_hz(y[2000:2000 + 16384]) == pytest.approx(391.995, rel=0.002)


def test_a_midi_file_imports_into_an_instrument_track_and_exports_back() -> None:
    p = Project(tracks=[synth_track([Note(60, 0.0, 0.5, 90), Note(64, 0.5, 0.5, 70),
                                     Note(67, 1.0, 1.0, 110)])])
    buf = io.BytesIO()
    export_midi(p, buf)
    buf.seek(0)
    imported = import_midi(buf)
    track = imported.tracks[0]
    track.instrument = Instrument("synth", dict(SINE))
    notes = sorted((track.midi[0].start + n.start, n.pitch, n.length, n.velocity)
                   for n in track.midi[0].notes)
    assert notes == [(0.0, 60, 0.5, 90), (0.5, 64, 0.5, 70), (1.0, 67, 1.0, 110)]
    y = render(engine(Project(tracks=[track], tempo=imported.tempo), {}), 1.0)[:, 0]
    assert np.flatnonzero(y)[0] == 0 and y[BEAT // 2] != 0.0
