"""Peak, true-peak and RMS meters against analytic values and their stated ballistics.

Tolerances: sample peak and RMS of sines within 0.01 dB of the analytic value; true
peak within 0.2 dB of the analytic peak (4x interpolation misses a sine's crest by at
most cos(pi/16), -0.17 dB, at fs/4); ballistics within 0.01 dB of the stated hold
time and fall rate.
"""

from __future__ import annotations

import gc
import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from numba.core.runtime import _nrt_python as nrt

from dsp.meters import (
    FLOOR_DB,
    PeakMeter,
    RMSMeter,
    TruePeakMeter,
    peak_db,
    rms_db,
    true_peak_db,
)
from dsp.params import ParamError

F32 = npt.NDArray[np.float32]
RATES = [44100.0, 48000.0, 96000.0]
SINE_RMS_DB = -10 * math.log10(2.0)


def tone(frames: int, sr: float, freq: float, phase: float = 0.0, amp: float = 1.0,
         channels: int = 2) -> F32:
    t = np.arange(frames) / sr
    x = amp * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def assert_push_allocates_nothing(push: Callable[[F32], object], max_arrays: int,
                                  channels: int = 2) -> None:
    """As tests/dsp/test_contract.py: nothing retained or buffer-sized in ``push`` after
    warm-up (tracemalloc), and numba's NRT count per call (one MemInfo per array argument,
    no sample data) independent of the block size."""
    rng = np.random.default_rng(0)
    small = (0.1 * rng.standard_normal((64, channels))).astype(np.float32)
    large = (0.1 * rng.standard_normal((4096, channels))).astype(np.float32)
    for _ in range(5):
        push(small)
        push(large)
    gc.collect()
    tracemalloc.start()
    for _ in range(2000):
        push(small)
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(400):
        push(small)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before < 64, f"{after - before} bytes still held after 400 calls"
    assert peak - before < 512, f"peak {peak - before} bytes during push()"

    def per_call(block: F32, calls: int = 50) -> float:
        was_enabled = nrt.memsys_stats_enabled()
        nrt.memsys_enable_stats()
        try:
            start = nrt.memsys_get_stats_alloc()
            for _ in range(calls):
                push(block)
            return float(nrt.memsys_get_stats_alloc() - start) / calls
        finally:
            if not was_enabled:
                nrt.memsys_disable_stats()

    per_small, per_large = per_call(small), per_call(large)
    assert per_small == per_large <= max_arrays, (per_small, per_large)


@pytest.mark.parametrize("sr", RATES)
def test_true_peak_catches_the_inter_sample_peak_that_sample_peak_misses(sr: float) -> None:
    """A full-scale sine at fs/4 with 45 degree phase: every sample is +-0.7071 (-3.01 dBFS)
    while the waveform peaks at 1.0 (0 dBTP) half-way between samples."""
    x = tone(round(0.5 * sr), sr, sr / 4, phase=math.pi / 4)
    pm, tp = PeakMeter(sr, 2), TruePeakMeter(sr, 2)
    pm.push(x)
    tp.push(x)
    assert np.allclose(pm.level_db, -3.0103, atol=0.01)
    assert np.allclose(pm.max_db, -3.0103, atol=0.01)
    assert np.all(np.abs(tp.level_db) < 0.2), tp.level_db
    assert np.all(np.abs(tp.max_db) < 0.2), tp.max_db
    assert np.allclose(peak_db(x), -3.0103, atol=0.01)
    assert np.all(np.abs(true_peak_db(x)) < 0.2)


def test_true_peak_is_never_below_the_sample_peak() -> None:
    """A lone sample: the interpolated points beside it read 0.974 of it; the meter reads the
    sample itself."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = np.zeros((300, 2), dtype=np.float32)
        at = rng.integers(0, 300, size=2)
        x[at[0], 0] = rng.uniform(0.1, 1.0)
        x[at[1], 1] = -rng.uniform(0.1, 1.0)
        assert np.all(true_peak_db(x) >= peak_db(x) - 1e-6), (true_peak_db(x), peak_db(x))


@pytest.mark.parametrize("sr", RATES)
def test_true_peak_reads_the_analytic_peak_of_sines(sr: float) -> None:
    """Sines up to fs/4 at several phases (faded in over 20 ms: an abrupt start is a step,
    whose reconstruction really does overshoot)."""
    worst = 0.0
    frames = round(0.2 * sr)
    fade = np.minimum(np.arange(frames) / (0.02 * sr), 1.0)[:, None]
    for freq in (997.0, 5000.0, sr / 4 - 300.0, sr / 4):
        for phase in np.linspace(0.0, math.pi / 2, 7):
            amp = 0.5
            meter = TruePeakMeter(sr, 1)
            x = tone(frames, sr, freq, phase, amp, channels=1) * fade
            meter.push(x.astype(np.float32))
            worst = max(worst, abs(float(meter.max_db[0]) - 20 * math.log10(amp)))
    assert worst < 0.2, worst


@pytest.mark.parametrize("sr", RATES)
def test_peak_hold_then_fall_back_at_the_stated_rate(sr: float) -> None:
    hold_ms, rate = 500.0, 20.0
    meter = PeakMeter(sr, 1, hold_ms=hold_ms, fall_db_per_s=rate)
    x = np.zeros((round(3 * sr), 1), dtype=np.float32)
    x[0] = 0.5  # -6.02 dBFS
    block = round(0.01 * sr)
    readings = []
    for i in range(0, x.shape[0], block):
        meter.push(x[i : i + block])
        readings.append(float(meter.level_db[0]))
    times = (np.arange(len(readings)) + 1) * block / sr
    start = 20 * math.log10(0.5)
    hold_s = round(hold_ms * 1e-3 * sr) / sr
    # after the last sample pushed at time t the reading has held, then fallen
    last_sample = times - 1.0 / sr
    expected = start - rate * np.maximum(last_sample - hold_s, 0.0)
    assert np.max(np.abs(np.array(readings) - expected)) < 0.01
    assert float(meter.max_db[0]) == pytest.approx(start, abs=1e-6)


def test_fall_back_without_hold_and_new_peaks_jump_in() -> None:
    sr = 48000.0
    meter = PeakMeter(sr, 2, hold_ms=0.0, fall_db_per_s=40.0)
    x = np.zeros((round(0.5 * sr), 2), dtype=np.float32)
    x[0] = 1.0
    meter.push(x)
    assert np.allclose(meter.level_db, -40.0 * (x.shape[0] - 1) / sr, atol=0.01)
    meter.push(np.array([[0.25, 0.0]], dtype=np.float32))  # a new peak above the reading
    assert meter.level_db[0] == pytest.approx(20 * math.log10(0.25), abs=1e-6)
    assert meter.level_db[1] == pytest.approx(-40.0 * x.shape[0] / sr, abs=0.01)  # still falling
    assert np.allclose(meter.max_db, 0.0, atol=1e-6)


def test_fall_back_reaches_the_floor_and_silence_reads_the_floor() -> None:
    sr = 48000.0
    for meter in (PeakMeter(sr, 2, hold_ms=0.0, fall_db_per_s=1000.0),
                  TruePeakMeter(sr, 2, hold_ms=0.0, fall_db_per_s=1000.0),
                  RMSMeter(sr, 2, window_ms=50.0)):
        assert np.all(meter.level_db == FLOOR_DB)
        meter.push(tone(4800, sr, 1000.0))
        assert np.all(meter.level_db > -10.0)
        meter.push(np.zeros((48000, 2), dtype=np.float32))
        assert np.all(meter.level_db == FLOOR_DB)


@pytest.mark.parametrize("sr", RATES)
def test_rms_window(sr: float) -> None:
    meter = RMSMeter(sr, 2, window_ms=300.0)
    assert meter.window == round(0.3 * sr)
    x = tone(round(0.6 * sr), sr, 1000.0)
    meter.push(x[: round(0.1 * sr)])  # a third of the window: 10 log10(1/3) lower
    assert np.allclose(meter.level_db, SINE_RMS_DB + 10 * math.log10(1 / 3), atol=0.01)
    meter.push(x[round(0.1 * sr) :])
    assert np.allclose(meter.level_db, SINE_RMS_DB, atol=0.01)
    meter.push(np.zeros((round(0.15 * sr), 2), dtype=np.float32))  # half the window silent
    assert np.allclose(meter.level_db, SINE_RMS_DB + 10 * math.log10(0.5), atol=0.01)
    aes = RMSMeter(sr, 2, window_ms=300.0, aes17=True)
    aes.push(x)
    assert np.allclose(aes.level_db, 0.0, atol=0.01)
    assert np.allclose(rms_db(x), SINE_RMS_DB, atol=0.01)


def test_rms_does_not_drift_over_many_window_lengths() -> None:
    sr = 8000.0
    meter = RMSMeter(sr, 1, window_ms=10.0)
    rng = np.random.default_rng(2)
    loud = (20.0 * rng.standard_normal((200000, 1))).astype(np.float32)
    meter.push(loud)
    quiet = np.full((80, 1), 1e-4, dtype=np.float32)
    meter.push(quiet)
    assert meter.level_db[0] == pytest.approx(-80.0, abs=1e-6)


def test_readings_do_not_depend_on_block_size() -> None:
    sr = 48000.0
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((20000, 2)) * np.linspace(1.0, 0.0, 20000)[:, None])
    x = x.astype(np.float32)
    for make in (lambda: PeakMeter(sr, 2, hold_ms=30.0), lambda: TruePeakMeter(sr, 2),
                 lambda: RMSMeter(sr, 2, window_ms=20.0)):
        whole = make()
        whole.push(x)
        for size in (1, 64, 65, 8193):
            parts = make()
            for i in range(0, x.shape[0], size):
                parts.push(x[i : i + size])
            assert np.allclose(parts.level_db, whole.level_db, atol=1e-9)


def test_bad_samples_and_bad_arguments() -> None:
    sr = 48000.0
    x = tone(4800, sr, 1000.0, amp=0.5)
    x[10] = np.nan
    x[20, 0] = np.inf
    x[30, 1] = 1e30
    for meter in (PeakMeter(sr, 2), TruePeakMeter(sr, 2), RMSMeter(sr, 2)):
        meter.push(x)
        assert np.all(np.isfinite(meter.level_db))
        assert np.all(meter.level_db <= 20 * math.log10(64.0) + 1e-3)  # clean() clamps at 64
        with pytest.raises(ParamError, match="block"):
            meter.push(np.zeros((8, 3), dtype=np.float32))
    with pytest.raises(ParamError, match="hold_ms"):
        PeakMeter(sr, 2, hold_ms=-1.0)
    with pytest.raises(ParamError, match="fall_db_per_s"):
        TruePeakMeter(sr, 2, fall_db_per_s=math.nan)
    with pytest.raises(ParamError, match="window_ms"):
        RMSMeter(sr, 2, window_ms=0.0)
    with pytest.raises(ParamError, match="channels"):
        PeakMeter(sr, 0)
    assert np.all(peak_db(x) <= 20 * math.log10(64.0) + 1e-3)


@pytest.mark.parametrize(("make", "arrays"), [
    (lambda: PeakMeter(48000.0, 2), 3),
    (lambda: TruePeakMeter(48000.0, 2), 5),
    (lambda: RMSMeter(48000.0, 2), 4),
], ids=["peak", "true_peak", "rms"])
def test_push_allocates_nothing_after_warm_up(make: Callable[[], PeakMeter | RMSMeter],
                                              arrays: int) -> None:
    meter = make()
    assert_push_allocates_nothing(meter.push, arrays)
    assert meter.level_db is meter.level_db  # readings land in one preallocated array
