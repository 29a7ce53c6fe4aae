"""Chorus and flanger: comb notches where the delay puts them, and the LFO's delay trajectory."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from dsp.modulation import Chorus, Flanger
from tests.dsp.test_stereo import change_is_block_size_invariant

SR = 48000.0
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def impulse(frames: int, channels: int = 1) -> F32:
    x = np.zeros((frames, channels), dtype=np.float32)
    x[0] = 1.0
    return x


def dtft(h: F64, freqs: F64, sr: float = SR) -> npt.NDArray[np.complex128]:
    return np.asarray(np.exp(-2j * np.pi * np.outer(freqs / sr, np.arange(len(h)))) @ h)


def test_static_flanger_is_the_two_tap_comb() -> None:
    fx = Flanger(SR, 1, delay_ms=1.0, depth_ms=0.0, feedback=0.0, mix=0.5)
    h = fx.process(impulse(200))[:, 0]
    assert list(np.flatnonzero(h)) == [0, 48]
    assert h[0] == 0.5 and h[48] == 0.5


@pytest.mark.parametrize("delay_ms", [1.0, 1.37, 4.2])
def test_flanger_notches_sit_where_the_delay_puts_them(delay_ms: float) -> None:
    d = delay_ms * SR / 1000  # samples, fractional for 1.37 and 4.2 ms
    h = Flanger(SR, 1, delay_ms=delay_ms, depth_ms=0.0, feedback=0.0, mix=0.5).process(
        impulse(512))[:, 0].astype(np.float64)
    for k in range(4):
        predicted = (2 * k + 1) * SR / (2 * d)
        freqs = np.linspace(0.8 * predicted, 1.2 * predicted, 4001)
        mag = np.abs(dtft(h, freqs))
        found = freqs[np.argmin(mag)]
        assert abs(found - predicted) < 0.002 * predicted, (k, found, predicted)
        assert 20 * np.log10(mag.min()) < -40  # a real notch


@pytest.mark.parametrize("feedback", [0.7, -0.7, 0.95])
def test_flanger_with_feedback_matches_the_feedback_comb(feedback: float) -> None:
    d = 48
    n = d * int(math.log(1e-9) / math.log(abs(feedback)) + 2)
    fx = Flanger(SR, 1, delay_ms=1.0, depth_ms=0.0, feedback=feedback, mix=0.5)
    h = fx.process(impulse(n))[:, 0].astype(np.float64)
    freqs = np.linspace(20.0, 20000.0, 997)
    z_d = np.exp(-2j * np.pi * freqs / SR * d)
    expected = 0.5 + 0.5 * z_d / (1 - feedback * z_d)
    got = dtft(h, freqs)
    assert np.max(np.abs(got - expected)) < 1e-5


@pytest.mark.parametrize("cls", [Chorus, Flanger])
def test_lfo_sweeps_the_delay_as_specified(cls: type[Chorus] | type[Flanger]) -> None:
    """Through a linear ramp the (exact-for-lines) cubic read returns n - D(n): the delay."""
    rate, base_ms, depth_ms, phase_deg = 3.0, 6.0, 4.0, 90.0
    if cls is Flanger:
        base_ms, depth_ms = 0.5, 3.0
    n = 24000
    ramp = (np.arange(n) / n).astype(np.float32)
    x = np.stack([ramp, ramp], axis=1)
    fx = cls(SR, 2, rate_hz=rate, delay_ms=base_ms, depth_ms=depth_ms, feedback=0.0,
             mix=1.0, phase_deg=phase_deg)
    y = fx.process(x).astype(np.float64)
    idx = np.arange(n)
    base, depth = base_ms * SR / 1000, depth_ms * SR / 1000
    settled = idx > base + depth + 4  # the read reaches back before the ramp started
    for ch in range(2):
        measured = idx - n * y[:, ch]
        phase = (idx + 1) * rate / SR + ch * phase_deg / 360
        expected = base + depth * 0.5 * (1 + np.sin(2 * np.pi * phase))
        assert np.max(np.abs(measured - expected)[settled]) < 0.02, ch


def test_chorus_mix_zero_is_dry_and_mix_one_is_wet() -> None:
    x = np.random.default_rng(4).uniform(-1, 1, (4800, 2)).astype(np.float32)
    assert np.array_equal(Chorus(SR, 2, mix=0.0).process(x), x)
    wet = Chorus(SR, 2, mix=1.0, depth_ms=0.0, delay_ms=10.0).process(x)
    assert np.allclose(wet[480:], x[:-480], atol=1e-7)


@pytest.mark.parametrize("feedback", [0.95, -0.95])
def test_flanger_at_full_feedback_and_depth_stays_bounded_and_decays(feedback: float) -> None:
    fx = Flanger(SR, 2, rate_hz=10.0, depth_ms=5.0, delay_ms=0.1, feedback=feedback, mix=1.0)
    x = np.random.default_rng(1).uniform(-1, 1, (48000, 2)).astype(np.float32)
    y = fx.process(x)
    assert np.max(np.abs(y)) < 40.0  # below 1 / (1 - 0.95) = 20 times the input peak x 2
    silence = np.zeros((24000, 2), dtype=np.float32)
    first = float(np.max(np.abs(fx.process(silence))))
    second = float(np.max(np.abs(fx.process(silence))))
    assert second < 1e-3 * first


def test_changing_the_delay_bends_without_a_click() -> None:
    t = np.arange(48000) / SR
    x = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32).reshape(-1, 1)
    fx = Chorus(SR, 1, delay_ms=5.0, depth_ms=0.0, mix=1.0)
    first = fx.process(x[:24000]).copy()
    fx.set(delay_ms=30.0, depth_ms=10.0)
    y = np.concatenate([first, fx.process(x[24000:]).copy()])[:, 0].astype(np.float64)
    step = float(np.max(np.abs(np.diff(x[:, 0]))))
    # the read position moves at most 0.75 samples per sample: a pitch bend, not a jump
    assert np.max(np.abs(np.diff(y[2000:]))) < 1.8 * step


@pytest.mark.parametrize(
    ("cls", "change"),
    [(Chorus, {"rate_hz": 4.0, "depth_ms": 8.0, "delay_ms": 20.0, "feedback": -0.3, "mix": 0.9,
               "phase_deg": 170.0}),
     (Flanger, {"rate_hz": 7.0, "depth_ms": 4.0, "delay_ms": 3.0, "feedback": 0.9, "mix": 0.2})],
)
def test_changes_are_block_size_invariant(
    cls: type[Chorus] | type[Flanger], change: dict[str, object]
) -> None:
    change_is_block_size_invariant(cls, {}, change)
