"""Compressor, noise gate and multiband compressor against their analytic behaviour."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from dsp.compressor import Compressor, fast_exp2, fast_log2, static_gain_db
from dsp.crossover import BandSplitter3
from dsp.gate import NoiseGate
from dsp.multiband import MultibandCompressor
from dsp.params import ParamError

F32 = npt.NDArray[np.float32]
RMS_OF_SINE_DB = 10 * math.log10(2.0)  # a sine's RMS is its peak less 3.01 dB


def sine(level_db: float, freq: float, seconds: float, sr: float, channels: int = 2) -> F32:
    """A sine of peak ``level_db`` dBFS, starting at phase 0."""
    t = np.arange(int(seconds * sr)) / sr
    x = 10 ** (level_db / 20) * np.sin(2 * np.pi * freq * t)
    return np.ascontiguousarray(np.repeat(x[:, None], channels, axis=1), dtype=np.float32)


def rms_db(x: npt.NDArray[np.floating]) -> float:
    return 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64))))


def gain_db(y: F32, x: F32, tail: int) -> float:
    """Steady-state gain: RMS of the output over the input over the last ``tail`` frames."""
    return rms_db(y[-tail:]) - rms_db(x[-tail:])


# -- compressor: the static curve ----------------------------------------------------------


def test_static_gain_db_is_the_giannoulis_curve() -> None:
    # hard knee: 0 below, (1/R - 1)(L - T) above
    assert static_gain_db(-40.0, -20.0, 4.0, 0.0) == 0.0
    assert static_gain_db(-8.0, -20.0, 4.0, 0.0) == pytest.approx(-9.0)
    # soft knee: at the threshold the curve sits (1 - 1/R) W / 8 below the input
    assert static_gain_db(-20.0, -20.0, 4.0, 12.0) == pytest.approx(-0.75 * 12 / 8)
    # continuous at both knee edges, and the straight line beyond
    for edge in (-26.0, -14.0):
        for eps in (-1e-9, 1e-9):
            assert static_gain_db(edge + eps, -20.0, 4.0, 12.0) == pytest.approx(
                static_gain_db(edge, -20.0, 4.0, 12.0), abs=1e-6)
    assert static_gain_db(-10.0, -20.0, 4.0, 12.0) == pytest.approx(-7.5)
    # ratio 100 means infinite: the output stays at the threshold
    assert static_gain_db(-5.0, -20.0, 100.0, 0.0) == pytest.approx(-15.0)
    assert static_gain_db(-5.0, -20.0, 1.0, 6.0) == 0.0


CURVES = [  # threshold, ratio, knee, makeup
    (-30.0, 4.0, 0.0, 0.0),
    (-30.0, 4.0, 12.0, 0.0),
    (-20.0, 100.0, 6.0, 0.0),
    (-40.0, 2.0, 18.0, 6.0),
]


@pytest.mark.parametrize("detector", ["peak", "rms"])
@pytest.mark.parametrize(("threshold", "ratio", "knee", "makeup"), CURVES)
@pytest.mark.parametrize("sr", [44100.0, 48000.0])
def test_steady_state_gain_follows_the_static_curve(
    detector: str, threshold: float, ratio: float, knee: float, makeup: float, sr: float
) -> None:
    """Sines at -60..0 dBFS: the law is fed the sine's peak (peak detector) or its RMS,
    the peak less 3.01 dB (RMS detector); the settled gain matches it within 0.1 dB."""
    fed_offset = 0.0 if detector == "peak" else -RMS_OF_SINE_DB
    for level in np.arange(-60.0, 0.1, 3.0):
        fx = Compressor(sr, 2, detector=detector, threshold_db=threshold, ratio=ratio,
                        knee_db=knee, makeup_db=makeup, attack_ms=5.0, release_ms=100.0)
        x = sine(level, 1000.0, 0.6, sr)
        y = fx.process(x)
        expected = static_gain_db(level + fed_offset, threshold, ratio, knee) + makeup
        got = gain_db(y, x, int(0.1 * sr))
        assert abs(got - expected) < 0.1, (level, got, expected)
        assert fx.gain_reduction_db == pytest.approx(makeup - expected, abs=0.1)


def test_stereo_link_reads_the_louder_channel() -> None:
    sr = 48000.0
    x = sine(-10.0, 1000.0, 0.5, sr)
    x[:, 1] *= 0.1  # right 20 dB quieter: both channels get the left channel's reduction
    fx = Compressor(sr, 2, threshold_db=-30.0, ratio=4.0, knee_db=0.0)
    y = fx.process(x)
    expected = static_gain_db(-10.0, -30.0, 4.0, 0.0)
    for ch in range(2):
        assert abs(gain_db(y[:, ch], x[:, ch], 4800) - expected) < 0.1


# -- compressor: time constants --------------------------------------------------------------


def step_response(attack: float, release: float, sr: float) -> tuple[F32, F32, int, int]:
    """A DC level stepping -40 -> -10 dBFS (threshold -30, ratio 4: 15 dB of reduction) and
    back. With a constant |x| the detector is exact at every sample, so the gain is y/x."""
    up = int(0.05 * sr)
    down = up + int(max(8 * attack, 0.3) * sr)
    n = down + int(8 * release * sr)
    x = np.full((n, 1), 10 ** (-40 / 20), dtype=np.float32)
    x[up:down] = 10 ** (-10 / 20)
    fx = Compressor(sr, 1, threshold_db=-30.0, ratio=4.0, knee_db=0.0,
                    attack_ms=attack * 1000, release_ms=release * 1000)
    return x, fx.process(x).copy(), up, down


@pytest.mark.parametrize("sr", [48000.0, 96000.0])
@pytest.mark.parametrize(("attack", "release"), [
    (0.0001, 0.001), (0.0005, 0.005), (0.005, 0.05), (0.01, 0.1), (0.03, 0.4), (0.2, 2.0)])
def test_attack_and_release_reach_63_percent_at_their_time_constants(
    attack: float, release: float, sr: float
) -> None:
    x, y, up, down = step_response(attack, release, sr)
    reduction = -20 * np.log10(y[:, 0].astype(np.float64) / x[:, 0])
    full = 15.0
    assert reduction[down - 1] == pytest.approx(full, abs=0.01)
    t_attack = (np.argmax(reduction[up:] >= full * (1 - 1 / math.e)) + 1) / sr
    t_release = (np.argmax(reduction[down:] <= full / math.e) + 1) / sr
    assert abs(t_attack - attack) <= 0.1 * attack, t_attack
    assert abs(t_release - release) <= 0.1 * release, t_release


@pytest.mark.parametrize("settings", [
    {"attack_ms": 10.0, "release_ms": 100.0},
    {"attack_ms": 0.2, "release_ms": 50.0},  # attack computed per sample
    {"attack_ms": 3.0, "release_ms": 2.0, "knee_db": 0.0},  # short hops
])
def test_peak_detector_streams_like_one_block(settings: dict[str, float]) -> None:
    """Early hops (attacks), per-sample attacks and short hops all sit on stream positions."""
    sr = 48000.0
    rng = np.random.default_rng(2)
    t = np.arange(30000) / sr
    env = np.exp(-((t * 4.0) % 1.0) * 20.0)  # repeated hits
    x = (env * np.sin(2 * np.pi * 150 * t))[:, None] + 0.02 * rng.standard_normal((t.size, 2))
    x = np.ascontiguousarray(x, dtype=np.float32)
    fx = Compressor(sr, 2, threshold_db=-30.0, ratio=6.0, **settings)
    whole = fx.process(x).copy()
    assert np.min(np.abs(whole[:, 0]) / np.maximum(np.abs(x[:, 0]), 1e-9)) < 0.5  # it works
    for size in (1, 7, 64, 65, 8193):
        fx.reset()
        parts = [fx.process(x[i:i + size]).copy() for i in range(0, x.shape[0], size)]
        assert np.max(np.abs(np.concatenate(parts) - whole)) <= 1e-6, size


def test_parameter_change_ramps_without_a_step() -> None:
    sr = 48000.0
    x = sine(-6.0, 200.0, 0.4, sr, 1)
    fx = Compressor(sr, 1, threshold_db=-30.0, ratio=4.0, makeup_db=0.0)
    first = fx.process(x[:9600]).copy()
    fx.set(makeup_db=12.0, mix=0.3)
    second = fx.process(x[9600:]).copy()
    y = np.concatenate([first, second])[:, 0]
    # a 200 Hz sine at this level moves at most ~0.013 per sample; a jump would show
    assert np.max(np.abs(np.diff(y))) < 0.05


# -- compressor: sidechain and mix -----------------------------------------------------------


def test_sidechain_key_drives_the_detector() -> None:
    sr = 48000.0
    quiet = sine(-40.0, 440.0, 0.5, sr)
    loud_key = sine(-6.0, 100.0, 0.5, sr)
    fx = Compressor(sr, 2, threshold_db=-30.0, ratio=4.0, knee_db=0.0)
    y = fx.process_sidechain(quiet, loud_key)
    assert gain_db(y, quiet, 4800) == pytest.approx(static_gain_db(-6.0, -30.0, 4.0, 0.0),
                                                    abs=0.1)
    fx.reset()
    silent = np.zeros_like(quiet)
    y = fx.process_sidechain(quiet, silent)
    assert np.array_equal(y, quiet)
    # a mono key serves a stereo input
    fx.reset()
    y = fx.process_sidechain(quiet, np.ascontiguousarray(loud_key[:, :1]))
    assert gain_db(y, quiet, 4800) == pytest.approx(-18.0, abs=0.1)


def test_sidechain_refuses_mismatched_keys() -> None:
    fx = Compressor(48000.0, 2)
    block = np.zeros((64, 2), dtype=np.float32)
    with pytest.raises(ParamError, match="key"):
        fx.process_sidechain(block, np.zeros((63, 2), dtype=np.float32))
    with pytest.raises(ParamError, match="key"):
        fx.process_sidechain(block, np.zeros((64, 3), dtype=np.float32))


def test_sidechain_streams_like_one_block() -> None:
    sr = 48000.0
    x = sine(-20.0, 440.0, 0.3, sr)
    key = sine(-3.0, 60.0, 0.3, sr)
    key[5000:9000] = 0.0
    fx = Compressor(sr, 2, **Compressor.EXAMPLE)
    whole = fx.process_sidechain(x, key).copy()
    for size in (1, 65, 128):
        fx.reset()
        parts = [fx.process_sidechain(x[i:i + size], key[i:i + size]).copy()
                 for i in range(0, x.shape[0], size)]
        assert np.max(np.abs(np.concatenate(parts) - whole)) <= 1e-6


def test_mix_zero_is_the_dry_signal_and_half_is_the_average() -> None:
    sr = 48000.0
    x = sine(-3.0, 440.0, 0.3, sr)
    settings = {"threshold_db": -40.0, "ratio": 10.0, "makeup_db": 6.0}
    dry = Compressor(sr, 2, mix=0.0, **settings).process(x)
    assert np.array_equal(dry, x)
    wet = Compressor(sr, 2, mix=1.0, **settings).process(x).copy()
    half = Compressor(sr, 2, mix=0.5, **settings).process(x)
    assert np.max(np.abs(half - 0.5 * (x + wet))) < 1e-6


def test_fast_log2_and_exp2_are_accurate() -> None:
    """The gain computer's libm-free log2 and exp2 (called here from Python, one by one)."""
    xs = np.geomspace(1e-12, 1e4, 20_001)
    ys = np.linspace(-60.0, 20.0, 20_001)
    logs = np.array([fast_log2(float(v)) for v in xs])
    exps = np.array([fast_exp2(float(v)) for v in ys])
    assert np.max(np.abs(logs - np.log2(xs))) < 1e-7  # 6e-7 dB
    assert np.max(np.abs(exps / np.exp2(ys) - 1)) < 1e-8
    assert fast_exp2(0.0) == 1.0


# -- gate ------------------------------------------------------------------------------------


def hovering(sr: float, low_db: float, high_db: float) -> F32:
    """A 440 Hz tone: 0.2 s at -20 dBFS, then its level swinging between ``low_db`` and
    ``high_db`` at 3 Hz for 2 s."""
    t = np.arange(int(2.2 * sr)) / sr
    mid, swing = (low_db + high_db) / 2, (high_db - low_db) / 2
    level = np.where(t < 0.2, -20.0, mid + swing * np.sin(2 * np.pi * 3 * t))
    x = 10 ** (level / 20) * np.sin(2 * np.pi * 440 * t)
    return np.ascontiguousarray(x[:, None], dtype=np.float32)


def test_gate_between_its_thresholds_does_not_chatter() -> None:
    sr = 48000.0
    x = hovering(sr, -40.0, -32.0)  # between close (-42) and open (-30)
    fx = NoiseGate(sr, 1, open_db=-30.0, close_db=-42.0, hold_ms=0.0, release_ms=10.0)
    fx.process(x)
    assert fx.transitions == 1 and fx.is_open  # opened by the burst, then stayed open
    # the same swing across a single threshold (no hysteresis) does chatter
    fx = NoiseGate(sr, 1, open_db=-36.0, close_db=-36.0, hold_ms=0.0, release_ms=10.0)
    fx.process(x)
    assert fx.transitions >= 10


@pytest.mark.parametrize("range_db", [12.0, 40.0, 80.0])
def test_closed_gate_attenuates_by_its_range(range_db: float) -> None:
    sr = 48000.0
    x = sine(-60.0, 440.0, 0.5, sr, 1)
    fx = NoiseGate(sr, 1, open_db=-40.0, range_db=range_db)
    y = fx.process(x)
    assert not fx.is_open
    assert gain_db(y, x, 4800) == pytest.approx(-range_db, abs=0.01)
    assert fx.gain_db == pytest.approx(-range_db, abs=1e-6)


def test_open_gate_passes_the_signal_exactly() -> None:
    sr = 48000.0
    x = sine(-10.0, 440.0, 0.5, sr, 2)
    fx = NoiseGate(sr, 2, open_db=-30.0, attack_ms=1.0)
    y = fx.process(x)
    assert fx.is_open
    assert np.array_equal(y[4800:], x[4800:])


@pytest.mark.parametrize("hold_ms", [0.0, 50.0, 200.0])
def test_gate_holds_then_releases(hold_ms: float) -> None:
    """After the tone stops, the gate closes once the detector window (10 ms) and the hold
    have passed, then the gain falls with the release time constant (linear gain)."""
    sr = 48000.0
    release = 0.05
    x = sine(-10.0, 440.0, 0.5, sr, 1)
    stop = x.shape[0]
    x = np.concatenate([x, np.zeros((int(0.6 * sr), 1), dtype=np.float32)])
    x[stop:] = 1e-6  # a floor to divide by, far below the close threshold
    fx = NoiseGate(sr, 1, open_db=-30.0, close_db=-40.0, hold_ms=hold_ms,
              release_ms=release * 1000, range_db=60.0)
    y = fx.process(x)[:, 0].astype(np.float64)
    gain = y[stop:] / x[stop:, 0]
    closed_at = np.argmax(gain < 1.0) / sr
    assert hold_ms / 1000 <= closed_at <= hold_ms / 1000 + 0.010 + 16 / sr
    floor = 10 ** (-60 / 20)
    fall = np.argmax(gain <= floor + (1 - floor) / math.e) / sr - closed_at
    assert abs(fall - release) <= 0.1 * release


def test_gate_sidechain() -> None:
    sr = 48000.0
    quiet = sine(-60.0, 440.0, 0.3, sr, 1)
    fx = NoiseGate(sr, 1, open_db=-30.0, attack_ms=1.0)
    y = fx.process_sidechain(quiet, sine(-6.0, 100.0, 0.3, sr, 1))
    assert fx.is_open and np.array_equal(y[4800:], quiet[4800:])
    fx.reset()
    y = fx.process_sidechain(quiet, np.zeros_like(quiet))
    assert not fx.is_open and gain_db(y, quiet, 4800) == pytest.approx(-80.0, abs=0.01)


# -- multiband -------------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize(("low", "high"), [(120.0, 2000.0), (300.0, 5000.0), (80.0, 12000.0)])
def test_multiband_at_unity_nulls_against_the_splitter(sr: float, low: float, high: float) -> None:
    rng = np.random.default_rng(3)
    x = (0.5 * rng.standard_normal((int(0.5 * sr), 2))).astype(np.float32)
    unity = {f"{b}_ratio": 1.0 for b in ("low", "mid", "high")}
    mb = MultibandCompressor(sr, 2, low_hz=low, high_hz=high, **unity,
                             low_threshold_db=-60.0, mid_threshold_db=-60.0,
                             high_threshold_db=-60.0)
    reference = BandSplitter3(sr, 2, low_hz=low, high_hz=high).process(x)
    assert np.max(np.abs(mb.process(x) - reference)) <= 1e-5


def tone_db(y: npt.NDArray[np.floating], freq: float, sr: float) -> float:
    """Peak level in dBFS of the ``freq`` component of ``y`` (least squares, whole periods).

    The detectors read sample peaks: the tones here are chosen so that over a 10 ms hold the
    samples reach the tone's amplitude (not locked to a few phases of the sample clock)."""
    n = round(int(len(y) * freq / sr) * sr / freq)
    t = np.arange(n) / sr
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y[-n:].astype(np.float64), rcond=None)
    return 20 * math.log10(float(np.hypot(*coef)))


def lr4_share(band: str, freq: float, low: float, high: float, sr: float) -> float:
    """Magnitude of the low or high LR4 band at ``freq`` (bilinear Butterworth squared); the
    three bands are in phase, so the other two together carry 1 minus this."""
    def warp(f: float) -> float:
        return math.tan(math.pi * f / sr)

    if band == "low":
        return 1 / (1 + (warp(freq) / warp(low)) ** 4)
    return 1 / (1 + (warp(high) / warp(freq)) ** 4)


@pytest.mark.parametrize(("loud_band", "loud_freq"), [("low", 60.0), ("high", 10007.0)])
def test_multiband_compresses_only_the_loud_band(loud_band: str, loud_freq: float) -> None:
    """A -6 dBFS tone in one outer band and a -30 dBFS tone in the mid band; every band's
    threshold is -20 dB, so only the loud band's compressor works. Expected levels: the loud
    band's share m of each tone is scaled by that compressor's gain g (static curve at the
    band's peak level), the rest passes: amplitude * (m g + 1 - m)."""
    sr, low, high = 48000.0, 200.0, 3000.0
    seconds = 1.0
    x = sine(-6.0, loud_freq, seconds, sr, 1)[:, 0] + sine(-30.0, 1000.0, seconds, sr, 1)[:, 0]
    x = np.ascontiguousarray(x[:, None], dtype=np.float32)
    settings: dict[str, float | str] = {"low_hz": low, "high_hz": high, "knee_db": 0.0}
    for b in ("low", "mid", "high"):
        settings.update({f"{b}_threshold_db": -20.0, f"{b}_ratio": 4.0,
                         f"{b}_release_ms": 200.0})
    mb = MultibandCompressor(sr, 1, **settings)
    y = mb.process(x)[int(0.5 * sr):, 0]
    share = lr4_share(loud_band, loud_freq, low, high, sr)
    band_level = -6.0 + 20 * math.log10(share)
    g_db = static_gain_db(band_level, -20.0, 4.0, 0.0)
    g = 10 ** (g_db / 20)
    loud = -6.0 + 20 * math.log10(share * g + 1 - share)
    assert tone_db(y, loud_freq, sr) == pytest.approx(loud, abs=0.1)
    leak = lr4_share(loud_band, 1000.0, low, high, sr)
    assert tone_db(y, 1000.0, sr) == pytest.approx(
        -30.0 + 20 * math.log10(leak * g + 1 - leak), abs=0.02)
    assert loud < -15.0  # compressed by ~10 dB
    assert mb.gain_reduction_db(loud_band) == pytest.approx(-g_db, abs=0.1)
    for b in ("low", "mid", "high"):
        if b != loud_band:
            assert mb.gain_reduction_db(b) == 0.0


def test_multiband_band_threshold_above_the_band_level_leaves_it_alone() -> None:
    """The same loud low tone with the low band's threshold at 0 dB: nothing is compressed,
    so the output nulls against the splitter."""
    sr, low, high = 48000.0, 200.0, 3000.0
    x = sine(-6.0, 60.0, 0.5, sr, 2) + sine(-30.0, 1000.0, 0.5, sr, 2)
    mb = MultibandCompressor(sr, 2, low_hz=low, high_hz=high, low_threshold_db=0.0,
                             mid_threshold_db=-20.0, high_threshold_db=-20.0, low_ratio=4.0)
    reference = BandSplitter3(sr, 2, low_hz=low, high_hz=high).process(x)
    assert np.max(np.abs(mb.process(x) - reference)) <= 1e-5
    assert all(mb.gain_reduction_db(b) == 0.0 for b in ("low", "mid", "high"))
