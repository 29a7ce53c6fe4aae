"""The echo delay against its analytic impulse response, tempo table and click-free retiming."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from dsp.delay import FADE_S, SYNC, Delay, sync_ms
from tests.dsp.test_stereo import change_is_block_size_invariant

SR = 48000.0
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def impulse(frames: int, channels: int = 2) -> F32:
    x = np.zeros((frames, channels), dtype=np.float32)
    x[0] = 1.0
    return x


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize(("time_ms", "feedback"), [(10.0, 0.5), (1.0, 0.9), (250.0, 0.3)])
def test_echoes_sit_at_the_delay_and_fall_by_the_feedback(
    sr: float, time_ms: float, feedback: float
) -> None:
    d = round(time_ms * sr / 1000)
    n = 6 * d + 10
    y = Delay(sr, 2, time_ms=time_ms, feedback=feedback, mix=1.0).process(impulse(n))
    expected = np.zeros(n)
    expected[d::d] = feedback ** np.arange(len(expected[d::d]))
    for ch in range(2):
        assert np.max(np.abs(y[:, ch] - expected)) < 1e-6


def test_mix_blends_dry_and_echoes() -> None:
    y = Delay(SR, 1, time_ms=10.0, feedback=0.5, mix=0.25).process(impulse(1500, 1))[:, 0]
    nz = np.flatnonzero(y)
    assert list(nz) == [0, 480, 960, 1440]
    assert np.allclose(y[nz], [0.75, 0.25, 0.125, 0.0625], atol=1e-7)


def test_ping_pong_alternates_channels() -> None:
    d = 480
    fx = Delay(SR, 2, time_ms=10.0, feedback=0.6, pingpong="on", mix=1.0)
    y = fx.process(impulse(8 * d + 1)).astype(np.float64)
    left, right = np.flatnonzero(y[:, 0]), np.flatnonzero(y[:, 1])
    assert list(left) == [d, 3 * d, 5 * d, 7 * d]
    assert list(right) == [2 * d, 4 * d, 6 * d, 8 * d]
    echoes = np.array([y[k * d, (k - 1) % 2] for k in range(1, 9)])
    assert np.allclose(echoes, 0.6 ** np.arange(8), atol=1e-6)


def test_ping_pong_sums_a_hard_left_source_into_the_first_bounce() -> None:
    x = np.zeros((1000, 2), dtype=np.float32)
    x[0, 0] = 1.0
    y = Delay(SR, 2, time_ms=10.0, feedback=0.5, pingpong="on", mix=1.0).process(x)
    assert abs(y[480, 0] - 0.5) < 1e-7 and abs(y[960, 1] - 0.25) < 1e-7


def test_ping_pong_is_ignored_for_mono() -> None:
    y = Delay(SR, 1, time_ms=10.0, feedback=0.5, pingpong="on", mix=1.0).process(impulse(1000, 1))
    assert list(np.flatnonzero(y[:, 0])) == [480, 960]


def test_tempo_sync_at_120_bpm_quarter_is_500_ms() -> None:
    assert sync_ms(SYNC.index("1/4"), 120.0) == 500.0
    fx = Delay(SR, 1, sync="1/4", bpm=120.0, feedback=0.0, mix=1.0)
    y = fx.process(impulse(30000, 1))[:, 0]
    assert list(np.flatnonzero(y)) == [24000]


@pytest.mark.parametrize("name", SYNC[1:])
@pytest.mark.parametrize("bpm", [20.0, 93.0, 120.0, 174.0, 300.0])
def test_sync_divisions(name: str, bpm: float) -> None:
    whole = {"1/1": 4.0, "1/2": 2.0, "1/4": 1.0, "1/8": 0.5, "1/16": 0.25}
    kind = name[-1] if name[-1] in "dt" else ""
    beats = whole[name.rstrip("dt")] * {"": 1.0, "d": 1.5, "t": 2.0 / 3.0}[kind]
    assert sync_ms(SYNC.index(name), bpm) == pytest.approx(beats * 60000.0 / bpm, rel=1e-12)


def test_synced_times_past_the_line_are_held_at_its_length() -> None:
    fx = Delay(SR, 1, max_time_ms=100.0, sync="1/1", bpm=60.0, feedback=0.0, mix=1.0)
    y = fx.process(impulse(10000, 1))[:, 0]
    assert list(np.flatnonzero(y)) == [4800]  # 4 s asked, 100 ms available


def one_pole(x: F64, a: float) -> F64:
    """y += a (x - y): the echo-path low-pass."""
    return np.asarray(signal.lfilter([a], [1.0, -(1.0 - a)], x), dtype=np.float64)


def test_filters_in_the_loop_shape_each_echo() -> None:
    lowcut, highcut, d, fb = 300.0, 3000.0, 480, 0.5
    a_lp = 1 - np.exp(-2 * np.pi * highcut / SR)
    a_hp = 1 - np.exp(-2 * np.pi * lowcut / SR)

    def path(x: F64) -> F64:
        lp = one_pole(x, a_lp)
        return lp - one_pole(lp, a_hp)

    n = 3 * d
    fx = Delay(SR, 1, time_ms=10.0, feedback=fb, lowcut_hz=lowcut, highcut_hz=highcut, mix=1.0)
    y = fx.process(impulse(n, 1))[:, 0].astype(np.float64)
    # y = P(z^-d x + fb z^-d y): solve the recursion with the reference filters
    expected = np.zeros(n)
    first = np.zeros(n)
    first[d] = 1.0
    echo = path(first)
    expected += echo
    second = np.zeros(n)
    second[d:] = fb * echo[: n - d]
    expected += path(second)
    assert np.max(np.abs(y[: 3 * d - 1] - expected[: 3 * d - 1])) < 1e-6


def test_maximum_feedback_with_filters_still_decays() -> None:
    fx = Delay(SR, 2, time_ms=5.0, feedback=0.98, lowcut_hz=200.0, highcut_hz=5000.0, mix=1.0)
    x = np.random.default_rng(1).uniform(-1, 1, (4800, 2)).astype(np.float32)
    fx.process(x)
    silence = np.zeros((48000, 2), dtype=np.float32)
    levels = [float(np.max(np.abs(fx.process(silence)))) for _ in range(5)]
    assert all(b < a for a, b in itertools.pairwise(levels)), levels


@pytest.mark.parametrize("channels", [1, 2])
def test_switching_the_low_cut_off_leaves_no_dc_in_the_echoes(channels: int) -> None:
    """The high-pass's memory must not freeze when its coefficient glides to 0: that would
    put a constant offset into every echo, fed back for ever."""
    sr = 48000.0
    fx = Delay(sr, channels, time_ms=100.0, feedback=0.5, mix=1.0, lowcut_hz=800.0)
    t = np.arange(int(sr)) / sr
    bass = (0.5 * np.sin(2 * np.pi * 60.0 * t) + 0.3).astype(np.float32)
    fx.process(np.repeat(bass[:, None], channels, axis=1))
    fx.set(lowcut_hz=20.0)  # off
    fx.process(np.zeros((3 * int(sr), channels), dtype=np.float32))  # echoes die away
    tail = fx.process(np.zeros((int(sr), channels), dtype=np.float32))
    assert float(np.max(np.abs(tail))) < 1e-6  # it froze at -0.27


def test_changing_the_time_crossfades_without_a_jump() -> None:
    """A time change crossfades the read position: the output moves no faster than the input
    plus the fade slope (a jump of the tap would step by up to twice the amplitude)."""
    amp, freq = 0.8, 440.0
    t = np.arange(48000) / SR
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32).reshape(-1, 1)
    fx = Delay(SR, 1, time_ms=100.0, feedback=0.0, mix=1.0)
    parts = [fx.process(x[:20000]).copy()]
    fx.set(time_ms=37.3)
    parts.append(fx.process(x[20000:]).copy())
    y = np.concatenate(parts)[:, 0].astype(np.float64)
    n_fade = round(FADE_S * SR)
    bound = float(np.max(np.abs(np.diff(x[:, 0])))) + 2 * amp / n_fade
    assert np.max(np.abs(np.diff(y))) <= bound + 1e-6
    # a sudden switch would have jumped far beyond that bound here
    d_old, d_new = 4800, round(37.3 * 48)
    jump = abs(float(x[20000 - d_new, 0]) - float(x[20000 - d_old, 0]))
    assert jump > 10 * bound
    # after the fade the echo is exactly the input 37.3 ms earlier
    after = 20000 + n_fade + 1
    assert np.allclose(y[after:], x[after - d_new : 48000 - d_new, 0], atol=1e-7)


def test_a_time_change_during_a_fade_waits_for_it() -> None:
    fx = Delay(SR, 1, time_ms=50.0, feedback=0.0, mix=1.0)
    n_fade = round(FADE_S * SR)
    fx.process(np.zeros((100, 1), dtype=np.float32))
    fx.set(time_ms=20.0)
    fx.process(np.zeros((n_fade // 2, 1), dtype=np.float32))
    fx.set(time_ms=10.0)
    fx.process(np.zeros((2 * n_fade, 1), dtype=np.float32))  # both fades are over
    y = fx.process(impulse(1000, 1))[:, 0]
    assert list(np.flatnonzero(y)) == [480]


def test_max_time_is_checked() -> None:
    from dsp.params import ParamError

    with pytest.raises(ParamError, match="max_time_ms"):
        Delay(SR, 2, max_time_ms=0.0)


@pytest.mark.parametrize(
    "change",
    [{"time_ms": 23.0, "feedback": 0.8, "lowcut_hz": 500.0, "highcut_hz": 3000.0, "mix": 0.9,
      "pingpong": "on"}, {"sync": "1/16t", "bpm": 140.0, "feedback": 0.8}],
)
def test_changes_are_block_size_invariant(change: dict[str, object]) -> None:
    change_is_block_size_invariant(Delay, {"time_ms": 50.0}, change)
