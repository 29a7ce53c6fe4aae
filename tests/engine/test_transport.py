"""Transport: sample-exact clip starts, click-free loops and jumps, play/pause/stop, the
metronome and positions in bars and beats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.model import AudioClip, Loop, TempoPoint
from engine.tempo import TempoMap
from engine.timeline import XFADE_S
from tests.engine.helpers import (
    BEAT,
    SR,
    dc,
    engine,
    max_jump,
    project,
    render,
    sine,
    sine_step,
    track,
)


@pytest.mark.parametrize("block", [1, 64, 100, 128, 1000])
@pytest.mark.parametrize("beat", [1.0, 2.37, 0.0])
def test_a_clip_starts_on_its_exact_sample(block: int, beat: float) -> None:
    e = engine(project(track("t", "a", start=beat, length=1.0)), {"a": dc(1.0)})
    y = render(e, 3.0, block)
    at = round(beat * BEAT)
    nonzero = np.flatnonzero(y[:, 0])
    assert nonzero[0] == at
    assert nonzero[-1] == at + BEAT - 1  # and it ends on its last sample


def test_clips_follow_tempo_changes() -> None:
    p = project(track("t", "a", start=4.0, length=0.5))
    p.tempo = [TempoPoint(0.0, 120.0), TempoPoint(2.0, 60.0)]  # 2 beats at 120, then 60
    y = render(engine(p, {"a": dc(1.0)}), 6.0)
    expected = 2 * BEAT + 2 * 2 * BEAT  # 1 s, then 2 beats of 1 s
    assert np.flatnonzero(y[:, 0])[0] == expected == TempoMap(p.tempo, SR).sample(4.0)


def test_clip_offset_gain_and_fades() -> None:
    ramp = np.repeat(np.arange(SR, dtype=np.float32)[:, None] / SR, 2, axis=1)
    clip = AudioClip("c", "a", start=0.0, length=1.0, offset_s=0.25, gain_db=-6.0,
                     fade_in_s=0.01, fade_out_s=0.01)
    p = project(track("t"))
    p.tracks[0].clips.append(clip)
    p.assets["a"] = "a"
    y = render(engine(p, {"a": ramp}), 0.6)[:, 0] / math.cos(math.pi / 4)
    g = 10 ** (-6 / 20)
    mid = 2000
    assert y[mid] == pytest.approx(g * (0.25 + mid / SR), rel=1e-5)  # offset and gain
    assert y[0] < y[mid] * 0.01 and y[479] == pytest.approx(y[480] * 479.5 / 480, rel=1e-3)
    assert y[BEAT - 1] < 0.01 * y[BEAT - 1000]  # faded out to its last sample


def test_missing_clip_data_plays_as_silence_and_is_counted() -> None:
    e = engine(project(track("t", "a", start=0.0, length=1.0)), {})
    y = render(e, 0.1)
    assert not y.any()
    assert e.stats["late_frames"] == y.shape[0]


def test_the_loop_wraps_without_a_click() -> None:
    """A 441 Hz sine looped from beat 1 to 1.25 (6000 samples, 55.125 cycles): a hard cut
    would jump by 0.35 at every wrap; the crossfade keeps every step within what the sine
    takes plus the crossfade's slope (0.037)."""
    hz, amp = 441.0, 0.5
    p = project(track("t", "a", length=8.0))
    p.loop = Loop(True, 1.0, 1.25)
    e = engine(p, {"a": sine(4.0, hz, amp)})
    y = render(e, 1.0)
    assert e.stats["loop_wraps"] == 4  # at 0.625 s, then every 0.125 s
    left = y[:, 0] / math.cos(math.pi / 4)
    fade = round(XFADE_S * SR)
    bound = sine_step(hz, amp) + 2 * amp / fade
    assert max_jump(left[:, None]) <= bound * 1.01
    # it really loops: one loop length later the sound repeats (away from the crossfades)
    start = BEAT + BEAT // 4 + fade + 10
    assert np.allclose(left[start:start + 3000], left[start + 6000:start + 9000], atol=1e-5)
    hard_cut = abs(amp * math.sin(2 * math.pi * hz * 1.25 * 0.5) - amp * math.sin(
        2 * math.pi * hz * 0.5))
    assert hard_cut > 9 * bound


def test_seek_while_playing_and_pause_do_not_click() -> None:
    hz, amp = 441.0, 0.5
    e = engine(project(track("t", "a", length=16.0)), {"a": sine(8.0, hz, amp)})
    parts = [render(e, 0.3)]
    e.seek(5.123)
    parts.append(render(e, 0.3))
    e.pause()
    parts.append(render(e, 0.1))
    y = np.concatenate(parts)[:, :1] / math.cos(math.pi / 4)
    bound = sine_step(hz, amp) + 2 * amp / round(XFADE_S * SR)
    assert max_jump(y) <= bound * 1.01
    assert not y[-100:].any()  # paused: silence after the fade
    assert not e.playing


def test_play_stop_returns_to_where_play_started() -> None:
    e = engine(project(track("t", "a")), {"a": dc(8.0)}, play=False)
    assert not render(e, 0.05).any()  # stopped: nothing
    e.seek(2.0)
    e.play()
    render(e, 0.5)
    assert e.position_samples == 2 * BEAT + round(0.5 * SR)
    e.stop()
    render(e, 0.01)
    assert e.position_samples == 2 * BEAT


def test_metronome_clicks_on_every_beat_and_accents_the_bar() -> None:
    e = engine(project(), {})
    e.metronome(True, 0.5)
    y = render(e, 2.1)[:, 0]
    onsets = [i for i in range(1, y.size) if y[i] != 0.0 and y[i - 1] == 0.0]
    assert onsets[:5] == [1, BEAT + 1, 2 * BEAT + 1, 3 * BEAT + 1, 4 * BEAT + 1]
    # the bar's first click is higher: count zero crossings over its first 10 ms
    def crossings(at: int) -> int:
        seg = y[at:at + 480]
        return int(np.sum(np.signbit(seg[1:]) != np.signbit(seg[:-1])))
    assert crossings(0) > crossings(BEAT) + 5


def test_positions_in_bars_and_beats() -> None:
    tm = TempoMap([TempoPoint(0.0, 120.0)], SR, (3, 4))
    assert str(tm.position(0)) == "1.1.000"
    assert str(tm.position(BEAT)) == "1.2.000"
    assert str(tm.position(3 * BEAT + BEAT // 2)) == "2.1.480"
    tm68 = TempoMap([TempoPoint(0.0, 120.0)], SR, (6, 8))
    assert str(tm68.position(3 * BEAT)) == "2.1.000"  # a 6/8 bar is three quarter notes
