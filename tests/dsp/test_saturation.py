"""Saturation: the curves against tanh, the half-band filter, and aliasing with 2x oversampling."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from numba import njit
from scipy import signal

from dsp.saturation import BIAS, DC_HZ, HB, OS_LATENCY, Saturation, fast_tanh
from tests.dsp.test_stereo import change_is_block_size_invariant

SR = 48000.0
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def sine(freq: float, amp: float = 0.5, frames: int = 19200) -> F32:
    t = np.arange(frames) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32).reshape(-1, 1)


def run(x: F32, **params: Any) -> F64:
    return Saturation(SR, x.shape[1], **params).process(x).astype(np.float64)


@njit(cache=True)
def _tanh_all(x: F64, out: F64) -> None:
    for i in range(x.shape[0]):
        out[i] = fast_tanh(x[i])


def test_fast_tanh_is_accurate_odd_and_monotonic() -> None:
    x = np.linspace(-30.0, 30.0, 600001)
    y = np.empty_like(x)
    _tanh_all(x, y)
    assert np.max(np.abs(y - np.tanh(x))) < 3e-7
    assert np.all(np.diff(y) >= 0)
    y_neg = np.empty_like(x)
    _tanh_all(-x, y_neg)
    assert np.array_equal(y_neg, -y)


def test_halfband_filter_meets_its_spec() -> None:
    fs2 = 2 * SR
    w, h = signal.freqz(HB, worN=8192, fs=fs2)
    db = 20 * np.log10(np.maximum(np.abs(h), 1e-12))
    assert np.max(np.abs(db[w <= 20000.0])) < 0.01
    assert np.max(db[w >= 28000.0]) < -60.0
    assert len(HB) == 2 * OS_LATENCY + 1 and np.all(HB[1::2][np.arange(len(HB) // 2) != 11] == 0)


@pytest.mark.parametrize("oversample", ["2x", "off"])
@pytest.mark.parametrize("drive_db", [0.0, 12.0, 24.0])
@pytest.mark.parametrize("freq", [100.0, 300.0])
def test_tanh_mode_is_tanh_of_drive_times_x(oversample: str, drive_db: float, freq: float) -> None:
    x = sine(freq)
    fx = Saturation(SR, 1, drive_db=drive_db, oversample=oversample)
    y = fx.process(x).astype(np.float64)[:, 0]
    lat = fx.latency_samples
    assert lat == (OS_LATENCY if oversample == "2x" else 0)
    expected = np.tanh(10 ** (drive_db / 20) * x[:, 0].astype(np.float64))
    n = len(y)
    # the filters allow: 1e-4 (measured ~2e-6 at 100 Hz, 12 dB)
    assert np.max(np.abs(y[lat + 200 :] - expected[200 : n - lat])) < 1e-4


def test_asymmetric_mode_is_the_biased_curve_through_the_dc_blocker() -> None:
    x = sine(100.0)
    d = 10 ** (12 / 20)
    y = run(x, drive_db=12.0, mode="asymmetric")[:, 0]
    tb = np.tanh(BIAS)
    curve = (np.tanh(d * x[:, 0].astype(np.float64) + BIAS) - tb) / (1 - tb**2)
    r = np.exp(-2 * np.pi * DC_HZ / SR)
    expected = signal.lfilter([1.0, -1.0], [1.0, -r], curve)
    n = len(y)
    err = np.abs(y[OS_LATENCY:] - expected[: n - OS_LATENCY])
    assert np.max(err[200:]) < 1e-4  # past the filters' onset ringing
    tail = y[n // 2 :]
    assert -tail.min() > tail.max() + 0.1  # asymmetric: 0.98 up, -1.15 down once DC-free
    assert abs(tail[-9600:].mean()) < 2e-3  # the DC is blocked (two 100 Hz periods x 48)


def harmonic_db(y: F64, freq: float, k: int) -> float:
    """Level of harmonic k relative to the fundamental (windowed FFT)."""
    seg = y[4800 : 4800 + 9600] * signal.windows.blackmanharris(9600)
    spec = np.abs(np.fft.rfft(seg))
    bins = np.fft.rfftfreq(9600, 1 / SR)

    def level(f: float) -> float:
        return float(spec[np.abs(bins - f) < 30].max())

    return float(20 * np.log10(level(k * freq) / level(freq)))


def test_only_the_asymmetric_mode_makes_even_harmonics() -> None:
    x = sine(1000.0)
    sym = run(x, drive_db=12.0)[:, 0]
    asym = run(x, drive_db=12.0, mode="asymmetric")[:, 0]
    assert harmonic_db(sym, 1000.0, 2) < -100
    assert harmonic_db(asym, 1000.0, 2) > -30
    assert harmonic_db(sym, 1000.0, 3) > -30  # both make odd ones


def aliased_db(y: F64, f0: float) -> float:
    """Energy away from the in-band harmonics (f0, 2 f0) relative to theirs, in dB."""
    seg = y[4096 : 4096 + 16384] * signal.windows.blackmanharris(16384)
    power = np.abs(np.fft.rfft(seg)) ** 2
    freqs = np.fft.rfftfreq(16384, 1 / SR)
    harmonic = (np.abs(freqs - f0) < 60) | (np.abs(freqs - 2 * f0) < 60)
    other = ~harmonic & (freqs > 30)
    return float(10 * np.log10(power[other].sum() / power[harmonic].sum()))


@pytest.mark.parametrize("mode", ["tanh", "asymmetric"])
@pytest.mark.parametrize(("drive_db", "at_least_db"), [(12.0, 25.0), (18.0, 15.0), (36.0, 8.0)])
def test_oversampling_lowers_the_aliasing_of_a_driven_9khz_sine(
    mode: str, drive_db: float, at_least_db: float
) -> None:
    """Measured (48 kHz, 0.5 amplitude): 32 dB less aliasing at 12 dB drive, 21 dB at 18,
    10 dB at 36 (there the harmonics past 3 fs / 2 that 2x cannot remove dominate)."""
    x = sine(9000.0, frames=1 << 15)
    plain = aliased_db(run(x, drive_db=drive_db, mode=mode, oversample="off")[:, 0], 9000.0)
    over = aliased_db(run(x, drive_db=drive_db, mode=mode, oversample="2x")[:, 0], 9000.0)
    assert plain - over > at_least_db, (plain, over)


def test_mix_zero_is_the_dry_signal_delayed_by_the_latency() -> None:
    x = np.random.default_rng(8).uniform(-1, 1, (3000, 2)).astype(np.float32)
    y = run(x, mix=0.0)
    assert np.array_equal(y[OS_LATENCY:], x[:-OS_LATENCY].astype(np.float64))
    assert np.array_equal(run(x, mix=0.0, oversample="off"), x.astype(np.float64))


def test_mix_and_output_gain_combine_linearly() -> None:
    x = sine(200.0)
    wet = run(x, drive_db=18.0, oversample="off")
    half = run(x, drive_db=18.0, oversample="off", mix=0.5, output_db=-6.0)
    expected = 10 ** (-6 / 20) * 0.5 * (wet + x.astype(np.float64))
    assert np.max(np.abs(half - expected)) < 1e-6


def test_drive_changes_ramp() -> None:
    x = sine(100.0, frames=24000)
    fx = Saturation(SR, 1, drive_db=0.0)
    first = fx.process(x[:6000]).copy()
    fx.set(drive_db=24.0)
    y = np.concatenate([first, fx.process(x[6000:]).copy()])[:, 0].astype(np.float64)
    slope = float(np.max(np.abs(np.diff(x[:, 0]))))
    assert np.max(np.abs(np.diff(y))) < 10 ** (24 / 20) * slope  # a jump would be ~0.5


def test_changes_are_block_size_invariant() -> None:
    change = {"drive_db": 30.0, "output_db": -10.0, "mix": 0.3, "mode": "asymmetric"}
    change_is_block_size_invariant(Saturation, {}, change)
