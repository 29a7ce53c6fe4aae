"""The FDN reverb: Schroeder RT60 against the set decay, tail shape, decorrelation, pre-delay."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from dsp.reverb import SIZE_MIN, Reverb, line_lengths
from tests.dsp.test_stereo import change_is_block_size_invariant

SR = 48000.0
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def impulse_response(
    seconds: float, sr: float = SR, channels: int = 2, left: float = 1.0, right: float = 1.0,
    **params: Any
) -> F64:
    fx = Reverb(sr, channels, **{"predelay_ms": 0.0, "mix": 1.0, **params})
    x = np.zeros((int(seconds * sr), channels), dtype=np.float32)
    x[0, 0] = left
    if channels > 1:
        x[0, 1] = right
    return fx.process(x).astype(np.float64)


def edc_db(h: F64) -> F64:
    """Schroeder backward-integrated energy decay curve, dB re the total energy."""
    energy = np.cumsum((h**2)[::-1])[::-1]
    return np.asarray(10 * np.log10(energy / energy[0] + 1e-300), dtype=np.float64)


def rt60(h: F64, sr: float = SR) -> float:
    """T30: the slope of the EDC between -5 and -35 dB, extrapolated to 60 dB."""
    edc = edc_db(h)
    start, stop = int(np.argmax(edc < -5)), int(np.argmax(edc < -35))
    t = np.arange(start, stop) / sr
    slope = np.polyfit(t, edc[start:stop], 1)[0]
    return float(-60.0 / slope)


def lengths(size: float, sr: float = SR) -> F64:
    out = np.zeros(8)
    line_lengths(size, sr, out, 0, 1)
    return out


@pytest.mark.parametrize("size", [0.2, 0.9])
@pytest.mark.parametrize("decay", [0.3, 1.0, 2.5, 6.0])
def test_measured_rt60_matches_the_decay(size: float, decay: float) -> None:
    h = impulse_response(decay * 0.8 + 0.3, size=size, decay_s=decay, damping=0.0)
    for ch in range(2):
        measured = rt60(h[:, ch])
        assert abs(measured - decay) < 0.05 * decay, (ch, measured)  # spec: 20%


@pytest.mark.parametrize("sr", [44100.0, 96000.0])
def test_rt60_holds_at_other_rates(sr: float) -> None:
    h = impulse_response(1.8, sr=sr, size=0.6, decay_s=2.0, damping=0.0)
    assert abs(rt60(h[:, 0], sr) - 2.0) < 0.1


def test_damping_shortens_only_the_high_frequency_decay() -> None:
    decay = 2.0
    h = impulse_response(2.5, size=0.5, decay_s=decay, damping=0.5)[:, 0]
    low = signal.sosfilt(signal.butter(4, 300.0, "lowpass", fs=SR, output="sos"), h)
    high = signal.sosfilt(signal.butter(4, 8000.0, "highpass", fs=SR, output="sos"), h)
    assert abs(rt60(low) - decay) < 0.2 * decay
    nyquist_rt60 = decay * (1 - 0.9 * 0.5)
    assert nyquist_rt60 * 0.9 < rt60(high) < 0.8 * decay


def test_energy_decays_window_by_window() -> None:
    h = impulse_response(2.0, size=0.5, decay_s=1.5, damping=0.3)
    window = int(0.1 * SR)
    energy = (h[: 20 * window] ** 2).sum(axis=1).reshape(20, window).sum(axis=1)
    db = 10 * np.log10(energy[2:])  # after the first 200 ms of build-up
    assert np.all(np.diff(db) < 0), np.diff(db)
    assert abs(np.mean(np.diff(db)) + 60 * 0.1 / 1.5) < 1.0  # ~4 dB per 100 ms


def test_longer_decay_gives_a_longer_tail() -> None:
    measured = [rt60(impulse_response(d * 0.8 + 0.3, size=0.5, decay_s=d)[:, 0])
                for d in (0.5, 1.0, 2.0, 4.0)]
    assert all(b > 1.6 * a for a, b in itertools.pairwise(measured)), measured


def test_larger_size_spreads_the_reflections_and_ends_later() -> None:
    """decay_s is the RT60 at every size (by design); size scales the delay lines, so
    reflections arrive later and sparser, energy builds up later and the tail ends later."""
    firsts, centroids, ends = [], [], []
    for size in (0.0, 0.5, 1.0):
        h = impulse_response(1.6, size=size, decay_s=1.0, damping=0.0)[:, 0]
        firsts.append(int(np.flatnonzero(h)[0]))
        centroids.append(float((np.arange(len(h)) * h**2).sum() / (h**2).sum()))
        ends.append(int(np.argmax(edc_db(h) < -60)))
        factor = SIZE_MIN + (1 - SIZE_MIN) * size
        assert firsts[-1] == lengths(size)[0]
        assert abs(firsts[-1] - 29.7e-3 * SR * factor) < 30  # shortest line, as a prime
    assert firsts[0] < firsts[1] < firsts[2]
    assert centroids[0] < centroids[1] < centroids[2]
    assert ends[0] < ends[1] < ends[2]


def test_line_lengths_are_distinct_primes_at_every_size() -> None:
    for sr in (44100.0, 48000.0, 96000.0):
        for size in np.linspace(0, 1, 11):
            ls = lengths(float(size), sr).astype(int)
            assert len(set(ls)) == 8
            for n in ls:
                assert all(n % f for f in range(2, int(n**0.5) + 1)), n


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize(("left", "right"), [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
def test_the_tail_is_decorrelated(sr: float, left: float, right: float) -> None:
    h = impulse_response(1.5, sr=sr, left=left, right=right, size=0.6, decay_s=2.0)
    tail = h[int(0.1 * sr) :]
    rho = np.corrcoef(tail[:, 0], tail[:, 1])[0, 1]
    assert abs(rho) < 0.1, rho


def test_width_zero_makes_the_reverb_mono() -> None:
    h = impulse_response(0.5, width=0.0)
    assert np.array_equal(h[:, 0], h[:, 1]) and np.any(h[:, 0])


def test_mono_output_is_the_mid_of_the_stereo_reverb() -> None:
    stereo = impulse_response(0.5, size=0.4)
    mono = impulse_response(0.5, channels=1, size=0.4)[:, 0]
    assert np.allclose(mono, stereo.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("predelay_ms", [0.0, 12.5, 50.0, 200.0])
def test_predelay_delays_the_first_arrival_exactly(predelay_ms: float) -> None:
    h = impulse_response(0.5, size=0.0, predelay_ms=predelay_ms)[:, 0]
    expected = round(predelay_ms * SR / 1000) + int(lengths(0.0)[0])
    assert int(np.flatnonzero(h)[0]) == expected


def test_mix_zero_is_the_dry_signal() -> None:
    x = np.random.default_rng(2).uniform(-1, 1, (4800, 2)).astype(np.float32)
    y = Reverb(SR, 2, mix=0.0).process(x)
    assert np.array_equal(y, x)


def test_changing_size_and_predelay_bends_but_does_not_click() -> None:
    t = np.arange(int(1.5 * SR)) / SR
    x = np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32) * 0.5
    fx = Reverb(SR, 2, size=0.2, decay_s=1.0, mix=1.0)
    half = len(x) // 2
    first = fx.process(x[:half]).copy()
    fx.set(size=1.0, predelay_ms=150.0)
    second = fx.process(x[half:]).copy()
    y = np.concatenate([first, second]).astype(np.float64)
    before = np.abs(np.diff(y[half // 2 : half], axis=0)).max()
    after = np.abs(np.diff(y[half:], axis=0)).max()
    assert after < 2.0 * before, (before, after)


def test_changes_are_block_size_invariant() -> None:
    change = {"size": 0.9, "decay_s": 5.0, "damping": 0.9, "predelay_ms": 80.0, "width": 0.3,
              "mix": 0.7}
    change_is_block_size_invariant(Reverb, {}, change)
