"""The monitor: per-strip loudness and the output spectrum, computed off the audio thread
from what the engine copied out, agree with the offline measures of the same audio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.loudness import LoudnessMeter
from dsp.spectrum import band_edges
from engine.model import Bus
from engine.monitor import SPECTRUM_BANDS, Monitor
from tests.engine.helpers import SR, engine, project, render, send, sine, track


def test_strip_and_master_loudness_match_the_offline_meter() -> None:
    e = engine(project(track("t", "a", sends=[send("b", -6.0)]), buses=(Bus(id="b"),)),
               {"a": sine(4.0, 997.0, 0.5)})
    e.configure_meters(128)
    mon = Monitor(e)
    out = []
    for _ in range(20):  # 20 looks at 0.1 s of audio each
        out.append(render(e, 0.1))
        frame = mon.poll()
    y = np.concatenate(out)
    ref = LoudnessMeter(SR, 2)
    ref.push(y)
    master = frame.strips["master"]
    assert master.momentary_lufs == pytest.approx(ref.momentary, abs=0.05)
    assert master.short_term_lufs == pytest.approx(ref.short_term, abs=0.05)
    assert frame.integrated_lufs == pytest.approx(ref.integrated, abs=0.05)
    # the track alone: a 997 Hz sine at 0.5 x cos(pi/4) per channel
    alone = LoudnessMeter(SR, 2)
    alone.push(sine(2.0, 997.0, 0.5 * math.cos(math.pi / 4)))
    assert frame.strips["t"].momentary_lufs == pytest.approx(alone.momentary, abs=0.05)
    assert frame.strips["b"].momentary_lufs == pytest.approx(alone.momentary - 6.0, abs=0.05)
    assert frame.strips["t"].peak_db[0] == pytest.approx(20 * math.log10(0.5 * math.cos(
        math.pi / 4)), abs=0.05)
    assert frame.lost_frames == 0 and frame.playing


def test_the_spectrum_shows_the_tone_and_a_late_monitor_skips_ahead() -> None:
    e = engine(project(track("t", "a")), {"a": sine(4.0, 1000.0, 0.5)})
    mon = Monitor(e)
    render(e, 1.0)  # more than the strips' rings hold: the monitor skips ahead
    frame = mon.poll()
    assert frame.lost_frames > 0
    edges = band_edges(SPECTRUM_BANDS)
    loudest = int(np.argmax(frame.spectrum_db))
    assert edges[loudest] <= 1000.0 <= edges[loudest + 1]
