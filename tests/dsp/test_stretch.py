"""Time-stretch (dsp/stretch.py): click timing, sine frequency and level, length, and the
streaming player's real-time behaviour."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import numpy.typing as npt
import pytest
from numba.core.runtime import _nrt_python as nrt
from scipy import ndimage, signal

from dsp.stretch import StretchPlayer, detect_onsets, frame_size, time_stretch

SR = 48000
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
CLICK_THRESHOLD = 0.5  # the tonal bed peaks at 0.3, clicks at 0.8 and more


def click_track(seconds: float = 8.0, period: float = 0.5) -> tuple[F32, I64]:
    """2 ms noise clicks every ``period`` s over a three-note chord; (signal, click starts)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = 0.15 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 331 * t)
    x += 0.05 * np.sin(2 * np.pi * 1250 * t)
    rng = np.random.default_rng(3)
    starts = (np.arange(0.25, seconds - 0.1, period) * SR).astype(np.int64)
    for s in starts:
        burst = rng.standard_normal(96) * np.exp(-np.arange(96) / 20.0)
        x[s : s + 96] += 0.8 * burst / np.max(np.abs(burst))
    return x.astype(np.float32), starts


def drum_loop(seconds: float = 8.0, bpm: float = 124.0) -> tuple[F32, I64]:
    """Kick on beats, snare on 2 and 4, over sustained chords; (stereo signal, hit starts)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    chord = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0, 246.9))
    x = np.stack([chord, 0.9 * chord], axis=1)
    rng = np.random.default_rng(5)
    beat = 60.0 / bpm
    starts = (np.arange(0.2, seconds - 0.3, beat) * SR).astype(np.int64)
    for k, s in enumerate(starts):
        m = np.arange(int(0.4 * SR))
        if k % 2 == 0:  # kick: a falling sine with a click
            hit = np.sin(2 * np.pi * np.cumsum(50.0 + 120.0 * np.exp(-m / 1500.0)) / SR)
            hit *= 0.9 * np.exp(-m / 6000.0)
        else:  # snare: noise and a tone
            hit = 0.6 * rng.standard_normal(m.shape[0]) * np.exp(-m / 2500.0)
            hit += 0.3 * np.sin(2 * np.pi * 190.0 * m / SR) * np.exp(-m / 3000.0)
        hit *= np.minimum(1.0, (m.shape[0] - m) / 2000.0)  # fade out, no click at the end
        end = min(s + m.shape[0], n)
        x[s:end] += hit[: end - s, None]
    return x.astype(np.float32), starts


def first_over(y: npt.NDArray[np.floating], around: int, threshold: float) -> int:
    """First sample within +-50 ms of ``around`` whose magnitude passes ``threshold``."""
    lo = max(around - SR // 20, 0)
    over = np.flatnonzero(np.abs(y[lo : around + SR // 20]) > threshold)
    assert over.size, f"no onset near {around}"
    return lo + int(over[0])


# -- clicks -------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.9, 1.1, 0.5, 2.0])
def test_clicks_keep_their_time_and_shape(ratio: float) -> None:
    x, starts = click_track()
    y = time_stretch(x, SR, ratio)
    assert y.shape == (round(ratio * x.shape[0]),) and y.dtype == np.float32
    worst = 0.0
    for s in starts:
        onset_in = first_over(x, int(s), CLICK_THRESHOLD)
        expected = round(onset_in * ratio)
        onset_out = first_over(y, expected, CLICK_THRESHOLD)
        worst = max(worst, abs(onset_out - expected) / SR)
        # sharp: the whole click is there once, at full level, with its own rise
        seg_in = x[onset_in - 100 : onset_in + 200]
        seg_out = y[onset_out - 100 : onset_out + 200]
        assert np.max(np.abs(seg_out)) >= 0.95 * np.max(np.abs(seg_in))
        assert np.max(np.abs(seg_out - seg_in)) < 0.1
    assert worst <= 0.002, f"click {1000 * worst:.2f} ms off"
    # no doubled clicks: as many runs over the threshold as clicks
    over = np.abs(y) > CLICK_THRESHOLD
    runs = np.flatnonzero(over[1:] & ~over[:-1])
    clusters = 1 + int(np.sum(np.diff(runs) > SR // 50))
    assert clusters == len(starts)


@pytest.mark.parametrize("ratio", [0.9, 1.1])
def test_drum_hits_keep_their_time(ratio: float) -> None:
    x, starts = drum_loop()
    y = time_stretch(x, SR, ratio)
    assert y.shape == (round(ratio * x.shape[0]), 2)
    for s in starts:
        onset_in = first_over(x[:, 0], int(s), 0.4)  # the chord peaks at 0.2
        expected = round(onset_in * ratio)
        onset_out = first_over(y[:, 0], expected, 0.4)
        assert abs(onset_out - expected) <= 0.002 * SR, (s, onset_out - expected)
        peak_in = np.max(np.abs(x[onset_in : onset_in + 480, 0]))
        assert np.max(np.abs(y[onset_out : onset_out + 480, 0])) >= 0.95 * peak_in


@pytest.mark.parametrize("source", [click_track, drum_loop])
def test_onsets_are_found_a_little_early(source: object) -> None:
    x, starts = source()  # type: ignore[operator]
    found = detect_onsets(x, SR)
    assert found.shape == starts.shape, found
    lead = starts - found
    assert np.all((lead >= 0) & (lead <= 0.002 * SR)), lead


def test_a_steady_tone_has_no_onsets() -> None:
    t = np.arange(4 * SR) / SR
    assert detect_onsets(0.5 * np.sin(2 * np.pi * 440 * t), SR).size == 0


# -- tones --------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.9, 1.1, 0.5, 2.0])
@pytest.mark.parametrize("freq", [440.0, 1000.7, 5003.1])
def test_a_sine_keeps_its_frequency_and_level(ratio: float, freq: float) -> None:
    t = np.arange(6 * SR) / SR
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    y = time_stretch(np.stack([x, x], axis=1), SR, ratio)
    assert y.shape == (round(ratio * x.shape[0]), 2)
    inner = y[SR // 4 : -SR // 4, 0].astype(np.float64)  # away from the ends
    analytic = signal.hilbert(inner)
    phase = np.unwrap(np.angle(analytic))
    measured = np.polyfit(np.arange(phase.shape[0]) / SR, phase, 1)[0] / (2 * np.pi)
    assert abs(1200 * np.log2(measured / freq)) <= 1.0, measured
    envelope = ndimage.uniform_filter1d(np.abs(analytic), SR // 500)[SR // 100 : -SR // 100]
    assert 20 * np.log10(envelope.max() / envelope.min()) <= 1.0
    assert abs(20 * np.log10(np.median(envelope) / 0.5)) <= 0.2
    assert np.array_equal(y[:, 0], y[:, 1])


def test_ratio_one_is_the_input() -> None:
    x, _ = click_track(3.0)
    y = time_stretch(x, SR, 1.0)
    assert float(np.max(np.abs(y - x))) < 1e-6


@pytest.mark.parametrize("ratio", [0.5, 0.77, 1.0, 1.3, 2.0])
def test_output_length(ratio: float) -> None:
    x = np.zeros((12345, 2), dtype=np.float32)
    y = time_stretch(x, SR, ratio)
    assert abs(y.shape[0] - ratio * x.shape[0]) <= frame_size(SR) // 2
    assert y.shape[0] == round(ratio * x.shape[0])


def test_bad_input_is_refused_or_cleaned() -> None:
    with pytest.raises(ValueError, match="ratio"):
        time_stretch(np.zeros(1000, dtype=np.float32), SR, float("nan"))
    x, _ = click_track(1.0)
    x[100] = np.nan
    x[200] = np.inf
    y = time_stretch(x, SR, 1.25)
    assert np.all(np.isfinite(y))
    assert time_stretch(x, SR, 9.0).shape[0] == 2 * x.shape[0]  # clamped to 2


# -- the streaming player -----------------------------------------------------------------


def test_player_is_block_size_invariant() -> None:
    x, _ = drum_loop(3.0)
    reference = time_stretch(x, SR, 1.07)
    for size in (1, 64, 65, 128, 8192, 8193):
        player = StretchPlayer(x, SR, 1.07)
        parts = [player.read(min(size, reference.shape[0] - i)).copy()
                 for i in range(0, reference.shape[0], size)]
        assert np.array_equal(np.concatenate(parts), reference), size


def test_player_ratio_changes_are_smooth_and_keep_the_playhead() -> None:
    x, _ = click_track(12.0, period=100.0)  # the chord only: no clicks
    player = StretchPlayer(x, SR, 1.0)
    block = 128
    out = []
    for i in range(0, 9 * SR, block):
        if i == 2 * SR:
            player.set_ratio(1.25)
        if i == 5 * SR:
            player.set_ratio(0.8)
        out.append(player.read(block).copy())
    y = np.concatenate(out)[:, 0].astype(np.float64)
    steady = np.max(np.abs(np.diff(x.astype(np.float64))))
    assert np.max(np.abs(np.diff(y))) <= 1.1 * steady
    # playhead: 2 s at 1.0, 3 s at 1.25, 4 s at 0.8 (ramps of 50 ms shift it < 10 ms)
    expected = (2.0 + 3.0 / 1.25 + 4.0 / 0.8) * SR
    assert abs(player.position - expected) < 0.01 * SR + frame_size(SR)


def test_player_seek_restarts_cleanly() -> None:
    x, starts = click_track(6.0)
    player = StretchPlayer(x, SR, 1.1)
    player.read(20000)
    player.seek(float(starts[4] - 1000))
    y = player.read(SR // 2).copy()[:, 0]
    onset = first_over(y, int(1000 * 1.1), CLICK_THRESHOLD)
    expected = round((first_over(x, int(starts[4]), CLICK_THRESHOLD) - starts[4] + 1000) * 1.1)
    assert abs(onset - expected) <= 0.002 * SR


def _nrt_allocations(player: StretchPlayer, block: int, calls: int) -> int:
    was = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        before = nrt.memsys_get_stats_alloc()
        for _ in range(calls):
            player.read(block)
        return int(nrt.memsys_get_stats_alloc() - before)
    finally:
        if not was:
            nrt.memsys_disable_stats()


def test_player_read_allocates_nothing_after_warm_up() -> None:
    x, _ = drum_loop(4.0)
    player = StretchPlayer(x, SR, 0.93)
    for _ in range(20):
        player.read(128)
        player.read(1024)
    gc.collect()
    tracemalloc.start()
    for _ in range(500):
        player.read(128)
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(400):
        player.read(128)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before < 64 and peak - before < 512, (after - before, peak - before)
    small = _nrt_allocations(player, 128, 100)
    large = _nrt_allocations(player, 1024, 100)
    assert small == large  # per-call wrapper bookkeeping only, not per sample
