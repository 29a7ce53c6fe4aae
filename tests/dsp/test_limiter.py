"""The true-peak limiter: never over the ceiling, transparent below it, honest latency."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsp.limiter import MIN_LATENCY, Limiter, _fir_peak
from dsp.truepeak import COEFS, TAPS, measure_true_peak, tp_step, true_peak
from dsp.truepeak import state_size as tp_state_size

F32 = npt.NDArray[np.float32]


def run(fx: Limiter, x: F32) -> F32:
    """The whole output of ``x``: processed, then flushed with silence past the lookahead."""
    tail = np.zeros((fx.latency_samples + TAPS, x.shape[1]), dtype=np.float32)
    return np.concatenate([fx.process(x).copy(), fx.process(tail).copy()])


def true_peak_db(x: F32, start: int = 0) -> float:
    """True peak of ``x`` in dBTP; from frame ``start`` on if given (the interpolator still
    reads the frames before it, so cutting the signal adds no edge)."""
    channels = x.shape[1]
    state = np.zeros(tp_state_size(channels))
    peaks = np.zeros(channels)
    true_peak(np.ascontiguousarray(x[:start]), peaks, state, COEFS)
    peaks[:] = 0.0
    true_peak(np.ascontiguousarray(x[start:]), peaks, state, COEFS)
    true_peak(np.zeros((TAPS, channels), dtype=np.float32), peaks, state, COEFS)
    return 20 * math.log10(max(float(np.max(peaks)), 1e-12))


frequency = st.one_of(
    st.floats(20.0, 20000.0),
    st.builds(lambda d: 0.25 + d, st.floats(-0.002, 0.002)),  # near fs/4 (as a fraction)
    st.builds(lambda d: 0.5 - d, st.floats(0.0, 0.01)),  # near fs/2 (as a fraction)
)


@st.composite
def loud_signals(draw: st.DrawFn) -> tuple[F32, float]:
    """(signal, sample rate): sums of sines, noise bursts, impulses, square waves or a mix,
    its sample peak scaled to -6..+24 dB over a ceiling drawn separately."""
    sr = draw(st.sampled_from([44100.0, 48000.0, 96000.0]))
    n = draw(st.integers(64, 3000))
    channels = draw(st.sampled_from([1, 2]))
    t = np.arange(n) / sr
    out = np.zeros((n, channels))
    kinds = draw(st.lists(st.sampled_from(["sines", "noise", "impulses", "square"]),
                          min_size=1, max_size=3))
    for kind in kinds:
        weights = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=channels,
                                         max_size=channels)))
        if kind == "sines":
            x = np.zeros(n)
            for f in draw(st.lists(frequency, min_size=1, max_size=6)):
                hz = f * sr if f < 1.0 else f
                x += draw(st.floats(0.1, 1.0)) * np.sin(2 * np.pi * hz * t
                                                         + draw(st.floats(0.0, 6.3)))
        elif kind == "noise":
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            x = np.zeros(n)
            start = draw(st.integers(0, n - 1))
            stop = min(n, start + draw(st.integers(1, n)))
            x[start:stop] = rng.standard_normal(stop - start)
        elif kind == "impulses":
            x = np.zeros(n)
            for at in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
                x[at] += draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(0.2, 1.0))
        else:
            hz = draw(st.floats(20.0, 12000.0))
            x = np.where((t * hz + draw(st.floats(0.0, 1.0))) % 1.0 < draw(
                st.floats(0.1, 0.9)), 1.0, -1.0)
        out += x[:, None] * weights[None, :]
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out /= peak
    return np.ascontiguousarray(out, dtype=np.float32), sr


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    signal=loud_signals(),
    over_db=st.floats(-6.0, 24.0),
    ceiling_db=st.floats(-12.0, 0.0),
    lookahead_ms=st.floats(0.5, 10.0),
    release_ms=st.floats(1.0, 1000.0),
)
def test_output_true_peak_never_exceeds_the_ceiling(
    signal: tuple[F32, float], over_db: float, ceiling_db: float, lookahead_ms: float,
    release_ms: float,
) -> None:
    x, sr = signal
    x = x * np.float32(10 ** ((ceiling_db + over_db) / 20))
    fx = Limiter(sr, x.shape[1], ceiling_db=ceiling_db, lookahead_ms=lookahead_ms,
                 release_ms=release_ms)
    y = run(fx, x)
    assert float(np.max(measure_true_peak(y))) <= 10 ** (ceiling_db / 20), true_peak_db(y)
    assert float(np.max(np.abs(y))) <= 10 ** (ceiling_db / 20)  # the samples themselves too


@pytest.mark.parametrize("ceiling_db", [-1.0, -6.0])
def test_a_lone_full_scale_sample_is_held_to_the_ceiling(ceiling_db: float) -> None:
    """The interpolated points lie between samples, so a lone sample reads lower than itself
    on them alone; the detector takes the samples too."""
    x = np.zeros((4800, 2), dtype=np.float32)
    x[1000, 0] = 1.0
    x[2001, 1] = -1.0
    y = run(Limiter(48000.0, 2, ceiling_db=ceiling_db), x)
    assert float(np.max(np.abs(y))) <= 10 ** (ceiling_db / 20)
    assert float(np.max(np.abs(y))) > 10 ** ((ceiling_db - 0.1) / 20)  # limited, not crushed


def program(sr: float, seconds: float, channels: int) -> F32:
    rng = np.random.default_rng(4)
    t = np.arange(int(sr * seconds)) / sr
    x = np.sum([0.2 * np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 3000.0, 11000.0)],
               axis=0)
    y = x[:, None] + 0.1 * rng.standard_normal((t.size, channels))
    return np.ascontiguousarray(y, dtype=np.float32)


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize(("ceiling_db", "lookahead_ms"), [(-1.0, 5.0), (-6.0, 0.5), (0.0, 10.0)])
def test_signal_below_the_ceiling_passes_unchanged(
    sr: float, ceiling_db: float, lookahead_ms: float
) -> None:
    x = program(sr, 0.5, 2)
    x *= np.float32(10 ** ((ceiling_db - 0.1) / 20) / np.max(measure_true_peak(x)))
    fx = Limiter(sr, 2, ceiling_db=ceiling_db, lookahead_ms=lookahead_ms)
    y = run(fx, x)
    d = fx.latency_samples
    assert np.max(np.abs(y[d:d + x.shape[0]] - x)) <= 1e-6
    assert np.max(np.abs(y[:d])) == 0.0


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("lookahead_ms", [0.5, 1.0, 3.3, 10.0])
def test_latency_samples_is_the_measured_delay(sr: float, lookahead_ms: float) -> None:
    fx = Limiter(sr, 1, lookahead_ms=lookahead_ms)
    assert fx.latency_samples == max(round(lookahead_ms * sr / 1000), MIN_LATENCY)
    x = np.zeros((4000, 1), dtype=np.float32)
    x[100] = 0.5
    y = run(fx, x)
    assert int(np.argmax(np.abs(y[:, 0]))) == 100 + fx.latency_samples
    # and while limiting: a loud tone comes out aligned with its input, scaled
    fx.reset()
    loud = program(sr, 0.2, 1) * np.float32(4.0)
    y = run(fx, loud)[: loud.shape[0] + fx.latency_samples]
    lags = np.arange(-5, 6)
    d = fx.latency_samples
    corr = [float(np.dot(y[d + k:d + k + 4000, 0], loud[1000:5000, 0])) for k in lags + 1000]
    assert lags[int(np.argmax(corr))] == 0


@pytest.mark.parametrize("over_db", [0.5, 6.0, 24.0])
@pytest.mark.parametrize("freq", [997.0, 11025.0, 15000.0])
def test_steady_tone_is_limited_to_the_ceiling_not_below(over_db: float, freq: float) -> None:
    sr, ceiling_db = 44100.0, -1.0
    t = np.arange(int(0.5 * sr)) / sr
    x = (10 ** ((ceiling_db + over_db) / 20) * np.sin(2 * np.pi * freq * t + 0.3)).astype(
        np.float32)[:, None]
    fx = Limiter(sr, 1, ceiling_db=ceiling_db, release_ms=200.0)
    y = run(fx, x)
    assert true_peak_db(y) <= ceiling_db
    assert true_peak_db(y, int(0.2 * sr)) >= ceiling_db - 0.02


@pytest.mark.parametrize("release_ms", [50.0, 200.0])
def test_gain_recovers_with_the_release_time_constant(release_ms: float) -> None:
    """After a loud burst the gain reduction (1 - gain, linear) falls to 1/e of its value
    within 10% of release_ms, counted from when it starts to recover."""
    sr = 48000.0
    n = int(0.1 * sr)
    quiet = 0.01
    x = np.full((n + int(1.5 * sr), 1), quiet, dtype=np.float32)
    x[:n] = 10 ** (12 / 20)  # +12 dBFS: 13 dB over a -1 dBTP ceiling
    fx = Limiter(sr, 1, ceiling_db=-1.0, lookahead_ms=1.0, release_ms=release_ms)
    y = run(fx, x)[fx.latency_samples:fx.latency_samples + x.shape[0], 0]
    gain = y[n:].astype(np.float64) / quiet
    reduction = 1.0 - gain
    start = int(np.argmax(reduction < reduction[0] - 1e-9))
    fall = int(np.argmax(reduction <= reduction[0] / math.e)) - start
    assert abs(fall / sr - release_ms / 1000) <= 0.1 * release_ms / 1000


def test_detector_matches_the_meters_interpolator_bit_for_bit() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal(5000)
    state = np.zeros(TAPS + 1)
    expected = np.array([tp_step(v, state, 0, COEFS) for v in x])[TAPS - 1:]
    got = np.zeros(expected.size)
    _fir_peak(x, got, expected.size, False)
    assert np.array_equal(got, expected)


def test_ceiling_change_applies_and_stays_safe() -> None:
    sr = 48000.0
    x = program(sr, 1.0, 2) * np.float32(3.0)
    fx = Limiter(sr, 2, ceiling_db=-1.0, lookahead_ms=2.0)
    first = fx.process(x[:24000]).copy()
    fx.set(ceiling_db=-6.0)
    second = run(fx, x[24000:])
    assert true_peak_db(first) <= -1.0
    # samples already inside the lookahead when the ceiling dropped were limited to -1 dBTP
    settled = second[2 * fx.latency_samples:]
    assert -6.05 <= true_peak_db(settled) <= -6.0
