"""The njit FFT against numpy.fft, and the spectrum analyser against analytic readings.

Tolerances: FFT within 1e-9 of numpy relative to the largest bin magnitude (per-bin
relative error is meaningless for bins near zero); a full-scale sine at a bin centre
reads 0 dB +-0.2 (observed: within 1e-6 dB); a sine between bins reads within the
window's scalloping loss below its level; silence reads exactly ``FLOOR_DB``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from dsp.fft import FFTPlan, fft, rfft
from dsp.spectrum import FLOOR_DB, WINDOWS, SpectrumAnalyzer, band_edges
from tests.dsp.test_meters import assert_push_allocates_nothing

F32 = npt.NDArray[np.float32]
SCALLOP_DB = {"hann": 1.43, "blackman-harris": 0.83}  # worst loss half-way between bins


def tone(frames: int, sr: float, freq: float, amp: float = 1.0, channels: int = 2,
         phase: float = 0.3) -> F32:
    t = np.arange(frames) / sr
    x = amp * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.mark.parametrize("n", [4, 8, 512, 1024, 4096, 16384, 65536])
def test_rfft_matches_numpy(n: int) -> None:
    x = np.random.default_rng(n).standard_normal(n)
    expected = np.fft.rfft(x)
    got = rfft(x)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-9 * np.max(np.abs(expected))


@pytest.mark.parametrize("n", [2, 16, 256, 8192])
def test_complex_fft_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    expected = np.fft.fft(z)
    assert np.max(np.abs(fft(z) - expected)) <= 1e-9 * np.max(np.abs(expected))


def test_fft_plan_runs_in_place_on_preallocated_arrays() -> None:
    plan = FFTPlan(1024)
    x = np.random.default_rng(0).standard_normal(1024)
    out = np.zeros(513, dtype=np.complex128)
    plan.rfft_into(x, out)
    assert np.max(np.abs(out - np.fft.rfft(x))) <= 1e-9 * np.max(np.abs(out))
    with pytest.raises(ValueError, match="power of two"):
        FFTPlan(1000)


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("size", [512, 4096, 16384])
def test_full_scale_sine_reads_0_dbfs_at_its_bin(sr: float, window: str, size: int) -> None:
    k = size // 10 + 3
    an = SpectrumAnalyzer(sr, 2, fft_size=size, window=window)
    an.push(tone(2 * size, sr, k * sr / size))
    frame = an.frame()
    assert frame.shape == (size // 2 + 1,)
    assert abs(frame[k]) <= 0.2, frame[k]
    assert int(np.argmax(frame)) == k
    assert an.frequencies[k] == pytest.approx(k * sr / size)


@pytest.mark.parametrize("window", WINDOWS)
def test_levels_between_bins_and_below_full_scale(window: str) -> None:
    sr, size = 48000.0, 4096
    df = sr / size
    for offset in (0.0, 0.25, 0.5):
        for amp_db in (0.0, -20.0, -60.0):
            an = SpectrumAnalyzer(sr, 2, fft_size=size, window=window)
            an.push(tone(2 * size, sr, (200 + offset) * df, 10 ** (amp_db / 20)))
            peak = float(np.max(an.frame()))
            assert amp_db - SCALLOP_DB[window] <= peak <= amp_db + 0.01, (offset, amp_db, peak)


def test_dc_and_channel_selection() -> None:
    sr, size = 48000.0, 1024
    x = np.zeros((size, 2), dtype=np.float32)
    x[:, 0] = 0.5
    an = SpectrumAnalyzer(sr, 2, fft_size=size, hop=size)
    an.push(x)  # the mean of the channels: 0.25
    assert an.frame()[0] == pytest.approx(20 * math.log10(0.25), abs=1e-6)
    left = SpectrumAnalyzer(sr, 2, fft_size=size, hop=size, channel=0)
    left.push(x)
    assert left.frame()[0] == pytest.approx(20 * math.log10(0.5), abs=1e-6)
    right = SpectrumAnalyzer(sr, 2, fft_size=size, hop=size, channel=1)
    right.push(x)
    assert np.all(right.frame() == FLOOR_DB)


@pytest.mark.parametrize("window", WINDOWS)
def test_silence_reads_the_documented_floor(window: str) -> None:
    for bands in (0, 48):
        an = SpectrumAnalyzer(48000.0, 2, fft_size=2048, window=window, bands=bands)
        assert np.all(an.frame() == FLOOR_DB)  # before any frame
        an.push(np.zeros((8192, 2), dtype=np.float32))
        assert an.frames_done == 8192 // 512
        assert np.all(an.frame() == FLOOR_DB)
    # after a loud signal, the floor comes back once the window holds only silence
    an = SpectrumAnalyzer(48000.0, 2, fft_size=2048, window=window)
    an.push(tone(4096, 48000.0, 1000.0))
    an.push(np.zeros((2048, 2), dtype=np.float32))
    assert np.all(an.frame() == FLOOR_DB)


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("bands", [10, 31, 64, 200])
def test_band_mapping_puts_a_sine_in_its_band(sr: float, bands: int) -> None:
    edges = band_edges(bands)
    assert edges[0] == pytest.approx(20.0) and edges[-1] == pytest.approx(20000.0)
    for freq in (1000.0, 100.0, 9000.0):
        an = SpectrumAnalyzer(sr, 2, fft_size=8192, bands=bands)
        an.push(tone(16384, sr, freq))
        frame = an.frame()
        assert frame.shape == (bands,)
        expected = int(np.searchsorted(edges, freq, side="right")) - 1
        assert int(np.argmax(frame)) == expected, (freq, np.argmax(frame), expected)
        assert abs(frame[expected]) <= 0.05, frame[expected]  # the peak estimate, not a bin
        assert edges[expected] <= freq < edges[expected + 1]
        assert np.all(np.isfinite(frame)) and np.all(frame >= FLOOR_DB)


@pytest.mark.parametrize("window", WINDOWS)
def test_band_peaks_read_a_sine_between_bins_at_its_level(window: str) -> None:
    """Sines at random frequencies and phases read their level in their band: Hann within
    0.01 dB (Grandke's estimator is exact for one sine), Blackman-Harris within 0.05 dB."""
    rng = np.random.default_rng(8)
    tolerance = {"hann": 0.01, "blackman-harris": 0.05}[window]
    for sr, size, bands in ((44100.0, 2048, 31), (48000.0, 8192, 200), (96000.0, 4096, 64)):
        edges = band_edges(bands)
        an = SpectrumAnalyzer(sr, 1, fft_size=size, bands=bands, window=window)
        for freq in rng.uniform(150.0, 15000.0, 25):
            an.reset()
            amp_db = rng.uniform(-60.0, 0.0)
            an.push(tone(2 * size, sr, freq, 10 ** (amp_db / 20), 1, rng.uniform(0, 6.3)))
            band = int(np.searchsorted(edges, freq, side="right")) - 1
            assert int(np.argmax(an.frame())) == band
            assert abs(an.frame()[band] - amp_db) <= tolerance, (freq, an.frame()[band], amp_db)


def test_bands_above_nyquist_read_the_floor() -> None:
    an = SpectrumAnalyzer(8000.0, 1, fft_size=1024, bands=30)
    an.push(np.random.default_rng(1).standard_normal((4096, 1)).astype(np.float32))
    above = band_edges(30)[:-1] >= 4000.0
    assert above.any()
    assert np.all(an.frame()[above] == FLOOR_DB)
    assert np.all(an.frame()[an.frequencies < 3000.0] > -100.0)


def test_attack_and_release_smoothing_follow_their_time_constants() -> None:
    """Each frame, each bin moves (1 - a) of the way to the new value in dB, with
    a = exp(-hop / tau), tau = attack_ms rising and release_ms falling."""
    sr, size, hop = 48000.0, 1024, 256
    attack_ms, release_ms = 20.0, 300.0
    a_att = math.exp(-hop / (attack_ms * 1e-3 * sr))
    a_rel = math.exp(-hop / (release_ms * 1e-3 * sr))
    smooth = SpectrumAnalyzer(sr, 1, fft_size=size, hop=hop, attack_ms=attack_ms,
                              release_ms=release_ms)
    raw = SpectrumAnalyzer(sr, 1, fft_size=size, hop=hop)
    k = 40
    x = np.concatenate([tone(size * 3, sr, k * sr / size, channels=1),
                        np.zeros((size * 3, 1), dtype=np.float32)])
    expected = np.full(size // 2 + 1, FLOOR_DB)
    for i in range(0, x.shape[0], hop):
        smooth.push(x[i : i + hop])
        raw.push(x[i : i + hop])
        new = raw.frame()
        a = np.where(new > expected, a_att, a_rel)
        expected = new + a * (expected - new)
        assert np.allclose(smooth.frame(), expected, atol=1e-9)
    # the sine's bin rose to 0 dB (within a_att ** 8 of the distance) and is now falling
    # toward the floor, having fallen for the frames since the window held only silence
    falling = (x.shape[0] - 3 * size - size) // hop
    assert falling > 0
    assert smooth.frame()[k] > FLOOR_DB + 1.0
    assert smooth.frame()[k] < FLOOR_DB + 200.0 * a_rel**falling + 1.0


def test_frames_do_not_depend_on_block_size() -> None:
    sr = 48000.0
    rng = np.random.default_rng(4)
    x = (0.3 * rng.standard_normal((20000, 2))).astype(np.float32)
    for bands in (0, 40):
        whole = SpectrumAnalyzer(sr, 2, fft_size=1024, hop=300, bands=bands, release_ms=100.0)
        whole.push(x)
        for size in (1, 64, 65, 8193):
            parts = SpectrumAnalyzer(sr, 2, fft_size=1024, hop=300, bands=bands,
                                     release_ms=100.0)
            for i in range(0, x.shape[0], size):
                parts.push(x[i : i + size])
            assert parts.frames_done == whole.frames_done == 20000 // 300
            assert np.allclose(parts.frame(), whole.frame(), atol=1e-9)


def test_bad_samples_and_bad_arguments() -> None:
    an = SpectrumAnalyzer(48000.0, 2, fft_size=512, bands=20)
    x = tone(2048, 48000.0, 1000.0)
    x[5] = np.nan
    x[6] = np.inf
    an.push(x)
    assert np.all(np.isfinite(an.frame()))
    for kwargs in ({"fft_size": 1000}, {"fft_size": 256}, {"fft_size": 32768},
                   {"window": "kaiser"}, {"hop": 0}, {"bands": -1}, {"channel": 2}):
        with pytest.raises(ValueError):
            SpectrumAnalyzer(48000.0, 2, **kwargs)


@pytest.mark.parametrize("bands", [0, 32])
def test_push_allocates_nothing_after_warm_up(bands: int) -> None:
    an = SpectrumAnalyzer(48000.0, 2, fft_size=1024, hop=64, bands=bands, release_ms=200.0)
    assert_push_allocates_nothing(an.push, 6)
    assert an.frame() is an.frame()  # the frame is one preallocated array
