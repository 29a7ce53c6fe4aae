"""Biquads, the parametric EQ and LR4 crossovers against scipy's analytic responses."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from dsp.biquad import KINDS, Biquad, ParametricEQ4, rbj_ba
from dsp.crossover import BandSplitter3

FREQS = np.geomspace(20.0, 20000.0, 160)
N = 1 << 14  # the slowest filter here has decayed below -200 dB by then


@functools.cache
def dtft_kernel(sr: float) -> npt.NDArray[np.complex128]:
    return np.exp(-2j * np.pi * np.outer(FREQS / sr, np.arange(N)))


def measured_db(h: npt.NDArray[np.float64], sr: float) -> npt.NDArray[np.float64]:
    """Exact DTFT magnitude of an impulse response at FREQS, in dB."""
    return 20 * np.log10(np.abs(dtft_kernel(sr) @ h))


def impulse(channels: int = 1) -> npt.NDArray[np.float32]:
    x = np.zeros((N, channels), dtype=np.float32)
    x[0] = 1.0
    return x


CASES = [
    (kind, freq, q, gain)
    for kind in KINDS
    for freq, q, gain in ((100.0, 0.7071, 6.0), (1000.0, 2.0, -9.0), (8000.0, 0.5, 12.0))
]


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize(("kind", "freq", "q", "gain"), CASES)
def test_biquad_matches_scipy_freqz(
    sr: float, kind: str, freq: float, q: float, gain: float
) -> None:
    fx = Biquad(sr, 1, type=kind, freq_hz=freq, q=q, gain_db=gain)
    h = fx.process(impulse()).astype(np.float64)[:, 0]
    b, a = rbj_ba(kind, freq, q, gain, sr)
    _, expected = signal.freqz(b, a, worN=FREQS, fs=sr)
    expected_db = 20 * np.log10(np.maximum(np.abs(expected), 1e-12))
    got = measured_db(h, sr)
    # Notches reach -inf at their centre; compare where the reference is above -60 dB.
    keep = expected_db > -60
    assert np.max(np.abs(got[keep] - expected_db[keep])) < 0.01


def test_rbj_coefficients_match_known_design() -> None:
    # The RBJ low-pass with Q = 1/sqrt(2) is the bilinear Butterworth with prewarping.
    b, a = rbj_ba("lowpass", 1000.0, 1 / np.sqrt(2), 0.0, 48000.0)
    bb, ab = signal.butter(2, 1000.0, fs=48000.0)
    assert np.allclose(b, bb, atol=1e-12) and np.allclose(a, ab, atol=1e-12)


def test_parametric_eq_is_the_product_of_its_bands() -> None:
    sr = 48000.0
    bands = [("lowshelf", 80.0, 0.7, 4.0), ("peak", 400.0, 1.5, -6.0),
             ("peak", 2500.0, 3.0, 5.0), ("highshelf", 10000.0, 0.7, -3.0)]
    values: dict[str, object] = {}
    for k, (kind, f, q, g) in enumerate(bands):
        values.update({f"b{k}_type": kind, f"b{k}_freq_hz": f, f"b{k}_q": q, f"b{k}_gain_db": g})
    eq = ParametricEQ4(sr, 2, **values)
    h = eq.process(impulse(2)).astype(np.float64)
    expected = np.ones(FREQS.shape, dtype=complex)
    for kind, f, q, g in bands:
        b, a = rbj_ba(kind, f, q, g, sr)
        expected *= signal.freqz(b, a, worN=FREQS, fs=sr)[1]
    expected_db = 20 * np.log10(np.abs(expected))
    for ch in range(2):
        assert np.max(np.abs(measured_db(h[:, ch], sr) - expected_db)) < 0.01


def test_disabled_band_is_bypassed() -> None:
    eq = ParametricEQ4(48000.0, 1, b0_gain_db=12.0, b0_enabled="off")
    x = np.random.default_rng(1).standard_normal((4096, 1)).astype(np.float32)
    assert np.allclose(eq.process(x), x, atol=1e-6)


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize(("low", "high"), [(120.0, 2000.0), (300.0, 5000.0), (80.0, 12000.0)])
def test_three_band_splitter_sums_flat(sr: float, low: float, high: float) -> None:
    splitter = BandSplitter3(sr, 2, low_hz=low, high_hz=high)
    lo, mid, hi = (b.astype(np.float64) for b in splitter.split(impulse(2)))
    total = measured_db(lo[:, 0] + mid[:, 0] + hi[:, 0], sr)
    assert np.max(np.abs(total)) < 0.1
    # Each band is LR4: -6.02 dB at its crossover, and the right slopes around it.
    low_db = measured_db(lo[:, 0], sr)
    at_low = np.argmin(np.abs(FREQS - low))
    assert abs(np.interp(low, FREQS, low_db) + 6.02) < 0.3 or abs(low_db[at_low] + 6.02) < 0.5


def test_lr4_bands_match_squared_butterworth() -> None:
    sr, low, high = 48000.0, 250.0, 4000.0
    splitter = BandSplitter3(sr, 1, low_hz=low, high_hz=high)
    hi = splitter.split(impulse())[2].astype(np.float64)[:, 0]
    hp_b, hp_a = signal.butter(2, high, "highpass", fs=sr)
    hp1_b, hp1_a = signal.butter(2, low, "highpass", fs=sr)
    expected = (signal.freqz(hp_b, hp_a, worN=FREQS, fs=sr)[1] ** 2
                * signal.freqz(hp1_b, hp1_a, worN=FREQS, fs=sr)[1] ** 2)
    expected_db = 20 * np.log10(np.maximum(np.abs(expected), 1e-12))
    keep = expected_db > -80
    assert np.max(np.abs(measured_db(hi, sr)[keep] - expected_db[keep])) < 0.01


def test_sweeping_the_cutoff_is_smooth() -> None:
    """A cut-off jump ramps: no step in the output bigger than the signal allows."""
    sr = 48000.0
    fx = Biquad(sr, 1, type="lowpass", freq_hz=200.0)
    t = np.arange(9600) / sr
    x = (0.5 * np.sin(2 * np.pi * 150 * t)).astype(np.float32).reshape(-1, 1)
    first = fx.process(x[:4800]).copy()
    fx.set(freq_hz=12000.0)
    second = fx.process(x[4800:]).copy()
    y = np.concatenate([first, second])[:, 0]
    assert np.max(np.abs(np.diff(y))) < 0.05
