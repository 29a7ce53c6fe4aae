"""Gain ramps, pan laws and stereo width against their analytic definitions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from dsp.biquad import rbj_ba
from dsp.effect import Effect
from dsp.stereo import GAIN_RAMP_S, Gain, Pan, Width

SR = 48000.0
F32 = npt.NDArray[np.float32]


def const(frames: int, channels: int = 2, value: float = 1.0) -> F32:
    return np.full((frames, channels), value, dtype=np.float32)


def stream(fx: Gain | Pan | Width, x: F32, block: int) -> F32:
    return np.concatenate([fx.process(x[i : i + block]).copy() for i in range(0, len(x), block)])


def _run_with_change(
    fx: Effect, x: F32, change: dict[str, Any], at: int, block: int
) -> F32:
    parts = []
    for lo, hi in ((0, at), (at, len(x))):
        if lo:
            fx.set(**change)
        for i in range(lo, hi, block):
            parts.append(fx.process(x[i : min(i + block, hi)]).copy())
    return np.concatenate(parts)


def change_is_block_size_invariant(
    cls: type[Effect], start: dict[str, Any], change: dict[str, Any]
) -> None:
    """A parameter change mid-stream gives bit-identical output however the stream is cut:
    the contract checks steady settings; this checks the ramps (1, 2 and 3 channels)."""
    for channels in (1, 2, 3):
        noise = np.random.default_rng(7).standard_normal((12000, channels))
        tone = np.sin(2 * np.pi * 220 * np.arange(12000) / SR)[:, None]
        x = np.ascontiguousarray(0.3 * tone + 0.05 * noise, dtype=np.float32)
        reference = _run_with_change(cls(SR, channels, **start), x, change, 5003, 12000)
        for block in (1, 64, 65, 128):
            got = _run_with_change(cls(SR, channels, **start), x, change, 5003, block)
            assert np.array_equal(got, reference), (cls.__name__, channels, block)


@pytest.mark.parametrize(
    ("cls", "change"),
    [(Gain, {"gain_db": -20.0, "mute": "on"}), (Pan, {"pan": -0.8, "law": "balance"}),
     (Width, {"width": 0.2, "bass_mono": "on", "bass_hz": 300.0})],
)
def test_ramps_are_block_size_invariant(cls: type[Effect], change: dict[str, Any]) -> None:
    change_is_block_size_invariant(cls, {}, change)


# -- gain ---------------------------------------------------------------------------


@pytest.mark.parametrize("db", [-100.0, -60.0, -6.0, 0.0, 7.5, 24.0])
def test_steady_gain_is_exact(db: float) -> None:
    x = np.random.default_rng(3).uniform(-1, 1, (1000, 2)).astype(np.float32)
    y = Gain(SR, 2, gain_db=db).process(x).astype(np.float64)
    g = 0.0 if db <= -100.0 else 10 ** (db / 20)
    assert np.allclose(y, g * x.astype(np.float64), rtol=1e-6, atol=0.0)


def test_bottom_of_range_is_silence() -> None:
    fx = Gain(SR, 2, gain_db=-1e9)  # clamped to -100 dB, which is -inf
    assert fx.get("gain_db") == -100.0
    assert not np.any(fx.process(const(256)))


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("block", [1, 64, 100, 4096])
def test_gain_change_ramps_linearly_and_lands_on_time(sr: float, block: int) -> None:
    fx = Gain(sr, 2, gain_db=0.0)
    fx.process(const(333))
    fx.set(gain_db=-12.0)
    y = stream(fx, const(4096), block)[:, 0].astype(np.float64)
    n = round(GAIN_RAMP_S * sr)
    target = 10 ** (-12 / 20)
    expected = 1.0 + (target - 1.0) * np.minimum(np.arange(1, 4097), n) / n
    assert np.max(np.abs(y - expected)) < 1e-6  # linear ramp, target reached at sample n
    steps = np.abs(np.diff(np.concatenate([[1.0], y])))
    assert steps.max() <= (1.0 - target) / n + 1e-6  # no step bigger than one ramp increment


def test_mute_ramps_down_and_back_up() -> None:
    fx = Gain(SR, 1, gain_db=-6.0)
    n = round(GAIN_RAMP_S * SR)
    g = 10 ** (-6 / 20)
    fx.process(const(100, 1))
    fx.set(mute="on")
    down = fx.process(const(2 * n, 1))[:, 0].astype(np.float64)
    assert down[n - 1 :].max() == 0.0  # silent from the end of the ramp
    assert np.all(np.diff(down) <= 0) and np.abs(np.diff(down)).max() <= g / n + 1e-6
    fx.set(mute="off")
    up = fx.process(const(2 * n, 1))[:, 0].astype(np.float64)
    assert abs(up[n - 1] - g) < 1e-6 and np.all(np.abs(up[n:] - g) < 1e-6)
    assert np.abs(np.diff(up)).max() <= g / n + 1e-6


def test_change_during_a_ramp_starts_from_where_the_ramp_is() -> None:
    fx = Gain(SR, 1, gain_db=0.0)
    n = round(GAIN_RAMP_S * SR)
    fx.set(gain_db=-100.0)
    a = fx.process(const(n // 2, 1))[:, 0].astype(np.float64).copy()
    fx.set(gain_db=0.0)
    b = fx.process(const(2 * n, 1))[:, 0].astype(np.float64)
    y = np.concatenate([a, b])
    assert abs(a[-1] - 0.5) < 1e-3
    assert np.abs(np.diff(y)).max() <= 1.0 / n + 1e-6
    assert abs(y[-1] - 1.0) < 1e-7


# -- pan ----------------------------------------------------------------------------


def pan_gains_measured(pan: float, law: str = "constant_power") -> tuple[float, float]:
    y = Pan(SR, 2, pan=pan, law=law).process(const(64)).astype(np.float64)
    return float(y[-1, 0]), float(y[-1, 1])


def test_constant_power_keeps_power_over_the_travel() -> None:
    for pan in np.linspace(-1, 1, 41):
        left, right = pan_gains_measured(float(pan))
        assert abs(left**2 + right**2 - 1.0) < 1e-6, pan
        t = (pan + 1) * math.pi / 4
        assert abs(left - math.cos(t)) < 1e-6 and abs(right - math.sin(t)) < 1e-6


def test_constant_power_centre_is_minus_3_01_db_and_ends_are_hard() -> None:
    left, right = pan_gains_measured(0.0)
    assert abs(20 * math.log10(left) + 3.0103) < 1e-4
    assert abs(20 * math.log10(right) + 3.0103) < 1e-4
    assert pan_gains_measured(-1.0)[1] < 1e-7 and abs(pan_gains_measured(-1.0)[0] - 1) < 1e-7
    assert pan_gains_measured(1.0)[0] < 1e-7 and abs(pan_gains_measured(1.0)[1] - 1) < 1e-7


def test_balance_law_is_unity_at_centre_and_fades_the_far_side() -> None:
    assert pan_gains_measured(0.0, "balance") == (1.0, 1.0)
    left, right = pan_gains_measured(0.5, "balance")
    assert abs(20 * math.log10(left) + 3.0103) < 1e-4 and right == 1.0
    left, right = pan_gains_measured(-1.0, "balance")
    assert left == 1.0 and right < 1e-7


def test_pan_sweep_is_smooth_and_keeps_power() -> None:
    fx = Pan(SR, 2, pan=-1.0)
    fx.process(const(100))
    fx.set(pan=1.0)
    y = stream(fx, const(9600), 37).astype(np.float64)
    assert np.abs(np.diff(y, axis=0)).max() < 0.01  # no step: at most 1% per sample
    power_db = 10 * np.log10(y[:, 0] ** 2 + y[:, 1] ** 2)
    assert np.abs(power_db).max() < 0.01  # constant power holds while it moves
    assert abs(y[-1, 1] - 1.0) < 1e-6 and abs(y[-1, 0]) < 1e-6


def test_pan_mono_and_odd_channels_pass_unchanged() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (500, 3)).astype(np.float32)
    y = Pan(SR, 3, pan=0.5).process(x)
    t = 1.5 * math.pi / 4
    assert np.allclose(y[:, 0], x[:, 0] * math.cos(t), atol=1e-6)
    assert np.allclose(y[:, 1], x[:, 1] * math.sin(t), atol=1e-6)
    assert np.array_equal(y[:, 2], x[:, 2])
    mono = x[:, :1].copy()
    assert np.array_equal(Pan(SR, 1, pan=0.9).process(mono), mono)


# -- width --------------------------------------------------------------------------


def stereo_noise(frames: int = 4800, seed: int = 5) -> F32:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (frames, 2)).astype(np.float32)


def test_width_zero_is_mono() -> None:
    y = Width(SR, 2, width=0.0).process(stereo_noise())
    assert np.array_equal(y[:, 0], y[:, 1])
    x = stereo_noise().astype(np.float64)
    assert np.allclose(y[:, 0], x.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("width", [0.5, 1.0, 2.0])
def test_width_scales_the_side_signal(width: float) -> None:
    x = stereo_noise().astype(np.float64)
    y = Width(SR, 2, width=width).process(x.astype(np.float32)).astype(np.float64)
    assert np.allclose(y[:, 0] + y[:, 1], x[:, 0] + x[:, 1], atol=1e-6)  # mid untouched
    assert np.allclose(y[:, 0] - y[:, 1], width * (x[:, 0] - x[:, 1]), atol=1e-6)


@pytest.mark.parametrize("freq", [30.0, 80.0, 150.0, 400.0, 3000.0])
def test_bass_mono_high_passes_the_side_at_the_butterworth_response(freq: float) -> None:
    cutoff = 150.0
    n = 48000
    t = np.arange(n) / SR
    s = 0.5 * np.sin(2 * np.pi * freq * t)
    x = np.stack([s, -s], axis=1).astype(np.float32)  # pure side signal
    y = Width(SR, 2, bass_mono="on", bass_hz=cutoff).process(x).astype(np.float64)
    side = 0.5 * (y[:, 0] - y[:, 1])[n // 2 :]
    got_db = 20 * np.log10(np.sqrt(2) * np.sqrt(np.mean(side**2)) / 0.5)
    b, a = rbj_ba("highpass", cutoff, 1 / math.sqrt(2), 0.0, SR)
    expected_db = 20 * np.log10(np.abs(signal.freqz(b, a, worN=[freq], fs=SR)[1][0]))
    assert abs(got_db - expected_db) < 0.02
    assert np.allclose(y[:, 0] + y[:, 1], 0.0, atol=1e-6)  # the mid (silent here) stays so


def test_width_changes_ramp_without_steps() -> None:
    s = np.full(9600, 0.5)
    x = np.stack([s, -s], axis=1).astype(np.float32)  # constant side: output = width * side
    fx = Width(SR, 2, width=0.0)
    fx.process(x[:10])
    fx.set(width=2.0)
    y = stream(fx, x, 50).astype(np.float64)
    assert np.abs(np.diff(y[:, 0])).max() < 0.01
    assert abs(y[-1, 0] - 1.0) < 1e-6  # reached width 2 within 0.2 s
