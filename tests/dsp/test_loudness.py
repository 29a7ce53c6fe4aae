"""BS.1770-4 / EBU R 128 loudness against pyloudnorm, the standard's coefficients and the
EBU Tech 3341 / 3342 test-signal expectations.

Tolerances: integrated loudness within 0.1 LU of pyloudnorm's default meter (which
approximates the K-weighting with RBJ biquads, about 0.04 dB off the standard's
filter) and within 0.01 LU of pyloudnorm's exact ("DeMan") K-weighting; EBU Tech 3341
cases within their stated +-0.1 LU; EBU Tech 3342 loudness ranges within their stated
+-1 LU.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyloudnorm as pyln
import pytest
from scipy import signal

from dsp.loudness import (
    NBINS,
    LoudnessMeter,
    channel_weights,
    integrated_loudness,
    k_weighting,
    k_weighting_ba,
    loudness_range,
)
from dsp.params import ParamError
from tests.dsp.test_meters import assert_push_allocates_nothing

F32 = npt.NDArray[np.float32]
RATES = [44100.0, 48000.0, 96000.0]


def pink(seconds: float, sr: float, channels: int = 2, rms_db: float = -20.0,
         seed: int = 1) -> F32:
    """Pink noise: white noise shaped to a 1/f power spectrum in the frequency domain."""
    n = round(seconds * sr)
    rng = np.random.default_rng(seed)
    white = np.fft.rfft(rng.standard_normal((n, channels)), axis=0)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1]
    x = np.fft.irfft(white / np.sqrt(f)[:, None], n, axis=0)
    x *= 10 ** (rms_db / 20) / np.sqrt(np.mean(x**2))
    return x.astype(np.float32)


def sine(seconds: float, sr: float, dbfs: float, freq: float = 1000.0,
         channels: int = 2) -> F32:
    t = np.arange(round(seconds * sr)) / sr
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def music(sr: float, seed: int = 3) -> F32:
    """20 s stereo: chords, drum-like bursts, a quiet passage and silence gaps."""
    rng = np.random.default_rng(seed)
    n = round(20 * sr)
    t = np.arange(n) / sr
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6)]
    x = np.zeros((n, 2))
    for i, chord in enumerate(chords * 3):
        a, b = round(i * 2.2 * sr), min(round((i * 2.2 + 2.0) * sr), n)
        env = np.exp(-np.arange(b - a) / sr * 0.8)
        for k, f in enumerate(chord):
            tone = 0.12 * env * np.sin(2 * np.pi * f * t[a:b] + k)
            x[a:b, 0] += tone * (1.0 - 0.2 * k)
            x[a:b, 1] += tone * (0.6 + 0.2 * k)
    beat = 0.5
    for start in np.arange(0.0, 20.0, beat):
        a = round(start * sr)
        m = min(round(0.25 * sr), n - a)
        env = np.exp(-np.arange(m) / sr * 25.0)
        kick = 0.7 * env * np.sin(2 * np.pi * 55.0 * np.arange(m) / sr)
        hat = 0.15 * (env**3)[:, None] * rng.standard_normal((m, 2))
        x[a : a + m] += kick[:, None] + hat
    x[round(6 * sr) : round(8 * sr)] = 0.0  # silence gap
    x[round(12 * sr) : round(14 * sr)] *= 10 ** (-30 / 20)  # quiet passage (gated out)
    x[round(17 * sr) : round(17.5 * sr)] = 0.0
    return x.astype(np.float32)


SIGNALS = {
    "pink": lambda sr: pink(10.0, sr),
    "sine_1k": lambda sr: sine(10.0, sr, -18.0),
    "music": music,
}


def test_k_weighting_matches_the_standard_table_at_48k() -> None:
    # ITU-R BS.1770-4 Tables 1 and 2 (48 kHz).
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285,
             -1.69065929318241, 0.73248077421585]
    rlb = [1.0, -2.0, 1.0, -1.99004745483398, 0.99007225036621]
    assert np.allclose(k_weighting(48000.0), shelf + rlb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sr", [44100.0, 88200.0, 96000.0, 192000.0])
def test_k_weighting_is_the_same_filter_at_other_rates(sr: float) -> None:
    """Recomputed coefficients give the 48 kHz response within 0.05 dB up to 16 kHz."""
    freqs = np.geomspace(20.0, 16000.0, 300)

    def response_db(rate: float) -> npt.NDArray[np.float64]:
        (b, a), (c, d) = k_weighting_ba(rate)
        h = signal.freqz(b, a, freqs, fs=rate)[1] * signal.freqz(c, d, freqs, fs=rate)[1]
        return 20 * np.log10(np.abs(h))

    assert np.max(np.abs(response_db(sr) - response_db(48000.0))) < 0.05
    # and it is the K curve: +4 dB shelf, about +0.7 dB at 1 kHz, high-pass below 100 Hz
    r = response_db(sr)
    assert 3.9 < r[-1] < 4.1
    assert abs(np.interp(1000.0, freqs, r) - 0.69) < 0.02
    assert np.interp(20.0, freqs, r) < -10.0


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("name", list(SIGNALS))
def test_integrated_matches_pyloudnorm(name: str, sr: float) -> None:
    x = SIGNALS[name](sr)
    ours = integrated_loudness(x, sr)
    reference = pyln.Meter(sr).integrated_loudness(x.astype(np.float64))
    exact_k = pyln.Meter(sr, filter_class="DeMan").integrated_loudness(x.astype(np.float64))
    assert abs(ours - reference) < 0.1, (ours, reference)
    assert abs(ours - exact_k) < 0.01, (ours, exact_k)


@pytest.mark.parametrize("sr", RATES)
def test_ebu_3341_case_1_and_2_steady_sines(sr: float) -> None:
    """Tech 3341 cases 1 and 2: a 1 kHz stereo sine at -23 (-33) dBFS per channel reads
    M = S = I = -23.0 (-33.0) LUFS +-0.1."""
    for level in (-23.0, -33.0):
        meter = LoudnessMeter(sr, 2)
        meter.push(sine(20.0, sr, level))
        for reading in (meter.momentary, meter.short_term, meter.integrated):
            assert abs(reading - level) <= 0.1, (level, reading)


def _sequence(sr: float, parts: list[tuple[float, float]]) -> F32:
    return np.concatenate([sine(seconds, sr, level) for seconds, level in parts])


@pytest.mark.parametrize("sr", [48000.0, 44100.0])
@pytest.mark.parametrize(
    "parts",
    [
        [(10, -36.0), (60, -23.0), (10, -36.0)],  # case 3: relative gate
        [(10, -72.0), (10, -36.0), (60, -23.0), (10, -36.0), (10, -72.0)],  # case 4
        [(20, -26.0), (20.1, -20.0), (20, -26.0)],  # case 5
    ],
    ids=["case3", "case4", "case5"],
)
def test_ebu_3341_gated_cases(sr: float, parts: list[tuple[float, float]]) -> None:
    """Tech 3341 cases 3-5: integrated loudness -23.0 LUFS +-0.1."""
    assert abs(integrated_loudness(_sequence(sr, parts), sr) + 23.0) <= 0.1


def test_ebu_3341_case_6_five_channels() -> None:
    """Tech 3341 case 6: L, R -28 dBFS, C -24 dBFS, Ls, Rs -30 dBFS reads -23.0 +-0.1."""
    sr = 48000.0
    levels = (-28.0, -28.0, -24.0, -30.0, -30.0)
    x = np.concatenate([sine(20.0, sr, lv, channels=1) for lv in levels], axis=1)
    assert abs(integrated_loudness(x, sr) + 23.0) <= 0.1


def test_lfe_is_excluded_when_named() -> None:
    sr = 48000.0
    five = np.concatenate([sine(5.0, sr, lv, channels=1) for lv in (-28, -28, -24, -30, -30)],
                          axis=1)
    lfe = sine(5.0, sr, -6.0, freq=60.0, channels=1)
    six = np.concatenate([five[:, :3], lfe, five[:, 3:]], axis=1)  # L R C LFE Ls Rs
    assert integrated_loudness(six, sr, lfe=3) == pytest.approx(integrated_loudness(five, sr),
                                                                abs=1e-9)
    assert integrated_loudness(six, sr) > integrated_loudness(five, sr) + 1.0
    assert list(channel_weights(6, lfe=3)) == [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]


@pytest.mark.parametrize("sr", RATES)
def test_momentary_and_short_term_match_integrated_on_steady_signals(sr: float) -> None:
    for x, m_tol, s_tol in ((sine(10.0, sr, -20.0, 997.0), 0.01, 0.01),
                            (pink(10.0, sr, rms_db=-25.0), 0.5, 0.15)):
        meter = LoudnessMeter(sr, 2)
        meter.push(x)
        integrated = meter.integrated
        assert abs(meter.momentary - integrated) < m_tol
        assert abs(meter.short_term - integrated) < s_tol


@pytest.mark.parametrize(
    ("levels", "expected"),
    [((-20.0, -30.0), 10.0), ((-20.0, -15.0), 5.0), ((-40.0, -20.0), 20.0),
     ((-50.0, -35.0, -20.0, -35.0, -50.0), 15.0)],
    ids=["case1", "case2", "case3", "case4"],
)
def test_ebu_3342_loudness_range_cases(levels: tuple[float, ...], expected: float) -> None:
    """Tech 3342 cases 1-4: 1 kHz stereo sines, 20 s per level; LRA within +-1 LU."""
    sr = 48000.0
    x = _sequence(sr, [(20.0, lv) for lv in levels])
    assert abs(loudness_range(x, sr) - expected) <= 1.0


@pytest.mark.parametrize("sr", RATES)
def test_loudness_range_of_pink_noise_steps(sr: float) -> None:
    """20 s of pink noise at -20 LUFS then 20 s at -30 LUFS: LRA 10 LU +-1, and within
    0.5 LU of pyloudnorm (whose short-term hop is 90 ms and which pads 1.5 s of silence)."""
    loud = pink(20.0, sr, seed=4)
    loud *= np.float32(10 ** ((-20.0 - integrated_loudness(loud, sr)) / 20))
    quiet = pink(20.0, sr, seed=5)
    quiet *= np.float32(10 ** ((-30.0 - integrated_loudness(quiet, sr)) / 20))
    x = np.concatenate([loud, quiet])
    lra = loudness_range(x, sr)
    assert abs(lra - 10.0) <= 1.0, lra
    assert abs(lra - pyln.Meter(sr).loudness_range(x.astype(np.float64))) < 0.5


@pytest.mark.parametrize("sr", RATES)
def test_streaming_in_128_sample_blocks_matches_offline(sr: float) -> None:
    x = music(sr)
    meter = LoudnessMeter(sr, 2)
    for i in range(0, x.shape[0], 128):
        meter.push(x[i : i + 128])
    assert meter.integrated == pytest.approx(integrated_loudness(x, sr), abs=1e-9)
    assert meter.lra == pytest.approx(loudness_range(x, sr), abs=1e-9)
    whole = LoudnessMeter(sr, 2)
    whole.push(x)
    assert meter.momentary == pytest.approx(whole.momentary, abs=1e-9)
    assert meter.short_term == pytest.approx(whole.short_term, abs=1e-9)


def test_readings_while_streaming_follow_the_signal() -> None:
    """Momentary reading 100 ms after a step from -40 to -20 dBFS has moved 1/4 of the way
    in energy; 400 ms after, it reads the new level."""
    sr = 48000.0
    meter = LoudnessMeter(sr, 2)
    meter.push(sine(2.0, sr, -40.0))
    before = meter.momentary
    step = sine(0.4, sr, -20.0)
    meter.push(step[:4800])
    e_before, e_after = 10 ** (before / 10), 10 ** ((before + 20.0) / 10)
    assert meter.momentary == pytest.approx(10 * math.log10((3 * e_before + e_after) / 4),
                                            abs=0.01)
    meter.push(step[4800:])
    assert meter.momentary == pytest.approx(before + 20.0, abs=0.01)


def test_silence_and_short_signals() -> None:
    sr = 48000.0
    silence = np.zeros((round(5 * sr), 2), dtype=np.float32)
    assert integrated_loudness(silence, sr) == -math.inf
    assert loudness_range(silence, sr) == 0.0
    meter = LoudnessMeter(sr, 2)
    meter.push(silence)
    assert meter.momentary == meter.short_term == meter.integrated == -math.inf
    assert integrated_loudness(sine(0.39, sr, -20.0), sr) == -math.inf  # no 400 ms block
    assert integrated_loudness(sine(0.4, sr, -20.0), sr) > -21.0
    # below the absolute gate: -75 dBFS reads as silence
    assert integrated_loudness(sine(5.0, sr, -75.0), sr) == -math.inf
    # mono input (1-D) is taken as one channel
    mono = sine(5.0, sr, -20.0, channels=1)[:, 0]
    assert integrated_loudness(mono, sr) == pytest.approx(
        pyln.Meter(sr).integrated_loudness(mono.astype(np.float64)), abs=0.1)


def test_bad_samples_and_bad_arguments() -> None:
    sr = 48000.0
    x = sine(3.0, sr, -20.0)
    x[1000] = np.nan
    x[2000] = np.inf
    meter = LoudnessMeter(sr, 2)
    meter.push(x)
    assert math.isfinite(meter.integrated) and math.isfinite(meter.momentary)
    with pytest.raises(ParamError, match="block"):
        meter.push(np.zeros((64, 3), dtype=np.float32))
    with pytest.raises(ParamError, match="sample_rate"):
        LoudnessMeter(1000.0, 2)
    with pytest.raises(ParamError, match="lfe"):
        LoudnessMeter(sr, 2, lfe=2)
    with pytest.raises(ParamError, match="weights"):
        LoudnessMeter(sr, 2, weights=[1.0])


def test_memory_is_fixed_and_push_allocates_nothing_after_warm_up() -> None:
    meter = LoudnessMeter(48000.0, 2)
    sizes = [a.nbytes for a in (meter.hist, meter.ring, meter.state, meter.filt, meter.acc)]
    assert_push_allocates_nothing(meter.push, 8)
    meter.push(pink(30.0, 48000.0))
    after = [a.nbytes for a in (meter.hist, meter.ring, meter.state, meter.filt, meter.acc)]
    assert sizes == after
    assert meter.hist.shape == (2, 2, NBINS)
