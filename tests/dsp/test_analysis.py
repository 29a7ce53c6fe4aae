"""Music analysis (dsp.analysis) against generated sets of tracks with known ground truth
(tests/dsp/testset.py: 48 tracks per seed, 24 keys twice, 70-180 BPM, ten styles).

The acceptance tests run the sets of two seeds (``SEEDS``, 96 tracks): the tempo weights
were searched on other seeds (see dsp/analysis/tempo.py), and one seed alone is too
small a sample to trust (a single miss in 48 is Acc2 0.979).

Acceptance, over all the tracks: tempo Acc1 (within 4 %) >= 0.90 and Acc2 (also x2, x1/2,
x3, x1/3) >= 0.98; exact key >= 0.75; mean beat F-measure (70 ms) >= 0.8 on the steady
tracks; analysis at least 100x faster than real time. The accuracy numbers (overall and
per seed) are printed (pytest -s) and are in every failure message.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from dsp.analysis import Analysis, analyze
from dsp.analysis.beats import track
from dsp.analysis.energy import energy
from dsp.analysis.key import (
    KEY_RATE,
    Chroma,
    camelot,
    chromagram,
    estimate_tuning,
    key_name,
    parse_key,
)
from dsp.analysis.key import estimate as estimate_key
from dsp.analysis.resample import ANALYSIS_RATE, resample, to_mono
from dsp.analysis.tempo import estimate as estimate_tempo
from tests.dsp.testset import Track, make_set

F64 = npt.NDArray[np.float64]
TOLERANCE_S = 0.07  # beat and downbeat matching window (MIREX)
SEEDS = (0, 1)  # generated sets the acceptance tests run on
TRACKS_PER_SEED = 48


@dataclass(frozen=True)
class Run:
    tracks: list[Track]
    seeds: list[int]  # the seed of each track's set
    results: list[Analysis]
    wall_s: float

    @property
    def audio_s(self) -> float:
        return sum(t.duration_s for t in self.tracks)


def analyse_all(tracks: list[Track]) -> tuple[list[Analysis], float]:
    start = time.perf_counter()
    results = [analyze(t.audio, t.sr) for t in tracks]
    return results, time.perf_counter() - start


@pytest.fixture(scope="module")
def run() -> Run:
    tracks: list[Track] = []
    seeds: list[int] = []
    for seed in SEEDS:
        tracks += make_set(TRACKS_PER_SEED, seed=seed)
        seeds += [seed] * TRACKS_PER_SEED
    analyze(tracks[0].audio[: int(10 * tracks[0].sr)], tracks[0].sr)  # warm-up (jit caches)
    results, wall = analyse_all(tracks)
    return Run(tracks, seeds, results, wall)


def f_measure(estimated: F64, reference: F64, tol: float = TOLERANCE_S) -> float:
    """F-measure of one-to-one matches within ``tol`` seconds (greedy, as mir_eval)."""
    if estimated.size == 0 or reference.size == 0:
        return 0.0
    used = np.zeros(reference.size, dtype=bool)
    hits = 0
    for e in estimated:
        d = np.abs(reference - e)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= tol:
            used[j] = True
            hits += 1
    if hits == 0:
        return 0.0
    precision, recall = hits / estimated.size, hits / reference.size
    return 2 * precision * recall / (precision + recall)


def tempo_ok(bpm: float, truth: float, factors: tuple[float, ...] = (1.0,)) -> bool:
    return any(abs(bpm / (truth * f) - 1.0) <= 0.04 for f in factors)


def key_relation(found: str, t: Track) -> str:
    if not found:
        return "none"
    tonic, minor = parse_key(found)
    if tonic == t.tonic and minor == t.minor:
        return "exact"
    if minor == t.minor and (tonic - t.tonic) % 12 in (5, 7):
        return "fifth"
    if minor != t.minor and (tonic - t.tonic) % 12 == (3 if t.minor else 9):
        return "relative"
    if tonic == t.tonic:
        return "parallel"
    return "other"


def table(run: Run) -> str:
    lines = []
    for seed, t, a in zip(run.seeds, run.tracks, run.results, strict=True):
        lines.append(
            f"s{seed} {t.name:34s} bpm {a.bpm:7.2f} conf {a.bpm_confidence:.2f}"
            f" {'ok ' if tempo_ok(a.bpm, t.bpm) else 'BAD'}"
            f" | key {a.key or '-':9s} {key_relation(a.key, t):8s}"
            f" | beatF {f_measure(a.beats, t.beats):.2f}"
            f" downF {f_measure(a.downbeats, t.downbeats):.2f}")
    return "\n".join(lines)


# -- acceptance on the generated set --------------------------------------------------------


def per_seed(run: Run, values: list[bool]) -> str:
    """The mean of ``values`` (one per track) for each seed, for the messages."""
    means = []
    for seed in SEEDS:
        mine = [v for v, s in zip(values, run.seeds, strict=True) if s == seed]
        means.append(f"seed {seed} {np.mean(mine):.3f}")
    return ", ".join(means)


def test_tempo_accuracy(run: Run) -> None:
    assert len(set(run.seeds)) >= 2  # one seed alone is too small a sample
    ok1 = [tempo_ok(a.bpm, t.bpm) for t, a in zip(run.tracks, run.results, strict=True)]
    ok2 = [tempo_ok(a.bpm, t.bpm, (1.0, 2.0, 0.5, 3.0, 1 / 3))
           for t, a in zip(run.tracks, run.results, strict=True)]
    acc1, acc2 = float(np.mean(ok1)), float(np.mean(ok2))
    summary = (f"tempo Acc1 {acc1:.3f} ({per_seed(run, ok1)}), "
               f"Acc2 {acc2:.3f} ({per_seed(run, ok2)}) over {len(run.tracks)} tracks")
    print(f"\n{summary}\n{table(run)}")
    assert acc1 >= 0.90 and acc2 >= 0.98, f"{summary}\n{table(run)}"


def test_tempo_has_sub_bpm_precision_on_steady_tracks(run: Run) -> None:
    errors = [abs(a.bpm - t.bpm) for t, a in zip(run.tracks, run.results, strict=True)
              if t.steady and tempo_ok(a.bpm, t.bpm)]
    assert len(errors) >= 30
    # The refined autocorrelation peak gives hundredths of a BPM, not whole BPMs.
    assert float(np.median(errors)) < 0.02, sorted(errors)
    assert max(errors) < 0.2, sorted(errors)


def test_key_accuracy(run: Run) -> None:
    assert len(set(run.seeds)) >= 2  # one seed alone is too small a sample
    relations = [key_relation(a.key, t) for t, a in zip(run.tracks, run.results, strict=True)]
    n = len(relations)
    exact = relations.count("exact") / n
    close = sum(r in ("exact", "fifth", "relative") for r in relations) / n
    by_seed = per_seed(run, [r == "exact" for r in relations])
    summary = (f"key exact {exact:.3f} ({by_seed}), exact+fifth+relative {close:.3f} "
               f"(fifth {relations.count('fifth') / n:.3f}, "
               f"relative {relations.count('relative') / n:.3f}, "
               f"parallel {relations.count('parallel') / n:.3f}, "
               f"other {relations.count('other') / n:.3f})")
    print(f"\n{summary}")
    assert exact >= 0.75, f"{summary}\n{table(run)}"
    assert close >= 0.9, summary


def test_beat_f_measure_on_steady_tracks(run: Run) -> None:
    steady = [f_measure(a.beats, t.beats) for t, a in zip(run.tracks, run.results, strict=True)
              if t.steady]
    drifting = [f_measure(a.beats, t.beats) for t, a in zip(run.tracks, run.results,
                                                             strict=True) if not t.steady]
    summary = (f"beat F (70 ms): steady tracks {np.mean(steady):.3f} ({len(steady)}), "
               f"drifting 'live' tracks {np.mean(drifting):.3f} ({len(drifting)})")
    print(f"\n{summary}")
    assert len(steady) >= 40 and drifting
    assert np.mean(steady) >= 0.8, f"{summary}\n{table(run)}"


def test_downbeats(run: Run) -> None:
    scores = [f_measure(a.downbeats, t.downbeats)
              for t, a in zip(run.tracks, run.results, strict=True)]
    right_bar = np.mean([s >= 0.8 for s in scores])
    summary = (f"downbeat F (70 ms) mean {np.mean(scores):.3f}; "
               f"bar phase right on {right_bar:.3f} of the tracks")
    print(f"\n{summary}")
    # Measured 0.996 / 0.99 on seeds 0 and 1; the floor keeps a regression from hiding.
    assert np.mean(scores) >= 0.85, f"{summary}\n{table(run)}"


def test_intro_and_outro_hints(run: Run) -> None:
    intros = [(a.intro_end_s, t.drums_in_s) for t, a in zip(run.tracks, run.results,
                                                            strict=True)]
    outros = [(a.outro_start_s, t.drums_out_s) for t, a in zip(run.tracks, run.results,
                                                               strict=True)]
    with_intro = [(got, want) for got, want in intros if want > 0.0]
    assert len(with_intro) >= 10
    # Within one beat (at most 0.86 s at 70 BPM) of where the drums come in / stop.
    intro_ok = np.mean([abs(got - want) <= 0.9 for got, want in intros])
    outro_ok = np.mean([abs(got - want) <= 0.9 for got, want in outros])
    assert intro_ok >= 0.9 and outro_ok >= 0.9, (intro_ok, outro_ok, intros, outros)


def test_analysis_is_100x_faster_than_real_time(run: Run) -> None:
    """Total audio seconds over wall seconds for the whole set, the best of two runs (the
    first is the fixture's, after a warm-up); the machine is shared, so one run may lose."""
    _, wall = analyse_all(run.tracks)
    speed = run.audio_s / min(run.wall_s, wall)
    print(f"\nanalysis speed {speed:.0f}x real time "
          f"({run.audio_s:.0f} s of audio, best of {run.wall_s:.2f} s and {wall:.2f} s)")
    assert speed >= 100.0, f"{speed:.0f}x real time"


def test_results_are_well_formed(run: Run) -> None:
    for t, a in zip(run.tracks, run.results, strict=True):
        assert a.duration_s == pytest.approx(t.duration_s)
        assert 0.0 <= a.bpm_confidence <= 1.0 and 0.0 <= a.key_confidence <= 1.0
        assert np.all(np.diff(a.beats) > 0) and a.beats[0] >= 0 and a.beats[-1] <= t.duration_s
        assert set(np.round(a.downbeats, 9)) <= set(np.round(a.beats, 9))
        assert a.energy.shape == (math.ceil(t.duration_s),)
        assert np.all((a.energy >= 0.0) & (a.energy <= 1.0)) and a.energy.max() == 1.0
        assert a.camelot == camelot(*parse_key(a.key))
        assert -40.0 < a.lufs < 0.0


# -- Camelot, key names ---------------------------------------------------------------------

# The standard Camelot wheel (Mixed In Key): number, minor key (A), major key (B).
WHEEL = [
    (1, "Ab minor", "B major"), (2, "Eb minor", "F# major"), (3, "Bb minor", "Db major"),
    (4, "F minor", "Ab major"), (5, "C minor", "Eb major"), (6, "G minor", "Bb major"),
    (7, "D minor", "F major"), (8, "A minor", "C major"), (9, "E minor", "G major"),
    (10, "B minor", "D major"), (11, "F# minor", "A major"), (12, "Db minor", "E major"),
]


@pytest.mark.parametrize(("number", "minor_key", "major_key"), WHEEL)
def test_camelot_wheel(number: int, minor_key: str, major_key: str) -> None:
    assert camelot(*parse_key(minor_key)) == f"{number}A"
    assert camelot(*parse_key(major_key)) == f"{number}B"
    # the names the analysis prints parse back to the same key
    for text in (minor_key, major_key):
        tonic, minor = parse_key(text)
        assert parse_key(key_name(tonic, minor)) == (tonic, minor)


def test_all_24_keys_have_distinct_codes_and_enharmonic_names_agree() -> None:
    codes = {camelot(pc, minor) for pc in range(12) for minor in (False, True)}
    assert len(codes) == 24
    assert parse_key("G# minor") == parse_key("Ab minor") == (8, True)
    assert parse_key("C#m") == parse_key("Db minor") == (1, True)
    assert parse_key("F#") == parse_key("Gb major") == (6, False)
    assert key_name(9, True) == "A minor" and camelot(9, True) == "8A"
    assert key_name(0, False) == "C major" and camelot(0, False) == "8B"
    with pytest.raises(ValueError, match="not a key"):
        parse_key("H minor")


# -- the parts ----------------------------------------------------------------------------


def test_resampler_keeps_the_passband_and_rejects_aliases() -> None:
    for sr in (44100.0, 48000.0, 96000.0, 32000.0):
        t = np.arange(int(sr * 2)) / sr
        for freq, want_db in ((440.0, 0.0), (3000.0, 0.0), (7000.0, -60.0), (9000.0, -60.0)):
            x = np.sin(2 * np.pi * freq * t).astype(np.float32)
            y, rate = resample(x, sr)
            assert rate == ANALYSIS_RATE
            level = 20 * np.log10(np.sqrt(2 * np.mean(y[500:-500].astype(np.float64) ** 2)))
            if want_db == 0.0:
                assert abs(level) < 0.05, (sr, freq, level)
                # no delay: the output matches the sine at the output sample times
                s = np.arange(y.size) / rate
                err = np.max(np.abs(y[500:-500] - np.sin(2 * np.pi * freq * s[500:-500])))
                assert err < 2e-3, (sr, freq, err)
            else:  # above the new Nyquist (5512.5 Hz): must not fold back
                assert level < want_db, (sr, freq, level)


def test_mono_mix_is_finite_for_bad_input() -> None:
    x = np.ones((100, 2), dtype=np.float32)
    x[10] = np.nan
    x[20, 0] = np.inf
    x[30, 1] = -1e30
    m = to_mono(x)
    assert np.all(np.isfinite(m)) and m[10] == 0.0 and m[0] == 1.0
    assert m[20] == pytest.approx(32.5) and m[30] == pytest.approx(-31.5)


@pytest.mark.parametrize("cents", [-40.0, -20.0, 0.0, 15.0, 35.0])
def test_tuning_estimate(cents: float) -> None:
    sr = KEY_RATE
    t = np.arange(int(sr * 4)) / sr
    notes = (57, 60, 64, 69, 72)  # A3 C4 E4 A4 C5
    x = sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69 + cents / 100) / 12) * t) for n in notes)
    spec = np.abs(np.fft.rfft(x[:2048] * np.hanning(2048)))
    got = estimate_tuning(spec.astype(np.float64), sr)
    assert abs(got - cents) < 3.0, got


def test_key_of_a_detuned_cadence() -> None:
    """I-IV-V-I in E major, 30 cents sharp: the key survives the detuning."""
    sr = ANALYSIS_RATE
    t = np.arange(int(sr * 2)) / sr
    env = np.exp(-t)
    chords = [(52, 56, 59), (57, 61, 64), (59, 63, 66), (52, 56, 59)]
    y = np.concatenate([sum(np.sin(2 * np.pi * 440 * 2 ** ((n + 12 - 69 + 0.3) / 12) * t)
                            for n in c) * env for c in chords]).astype(np.float32)
    chroma = chromagram(y, sr)
    assert abs(chroma.tuning_cents - 30.0) < 5.0
    k = estimate_key(chroma)
    assert (k.name, k.camelot) == ("E major", "12B")


def test_tempo_of_a_click_track_is_exact() -> None:
    sr = 44100.0
    for bpm in (73.0, 99.5, 128.0, 174.0):
        x = np.zeros(int(sr * 30), dtype=np.float32)
        burst = (np.random.default_rng(1).standard_normal(200) * np.exp(-np.arange(200) / 40))
        for b in np.arange(0.25, 29.5, 60.0 / bpm):
            i = int(b * sr)
            x[i : i + 200] += burst.astype(np.float32)
        a = analyze(x, sr)
        assert a.bpm == pytest.approx(bpm, abs=0.05), (bpm, a.bpm)
        assert a.bpm_confidence > 0.5
        truth = np.arange(0.25, 29.5, 60.0 / bpm)
        assert f_measure(a.beats, truth) > 0.97
        # Clicks in silence are seen early (the log flux rises as soon as the click
        # enters the 93 ms window); in music the bias is a few ms (see the beat F test).
        lag = [float(b - truth[np.argmin(np.abs(truth - b))]) for b in a.beats]
        assert -0.04 < float(np.median(lag)) < 0.01


def test_silence_noise_and_short_input() -> None:
    sr = 44100.0
    silent = analyze(np.zeros((int(sr * 5), 2), dtype=np.float32), sr)
    assert (silent.bpm, silent.bpm_confidence, silent.key, silent.camelot) == (0.0, 0.0, "", "")
    assert silent.beats.size == 0 and silent.downbeats.size == 0
    assert silent.lufs == -math.inf and np.all(silent.energy == 0.0)
    noise = np.random.default_rng(3).standard_normal((int(sr * 20), 1)).astype(np.float32)
    n = analyze(0.1 * noise, sr)
    assert n.bpm_confidence < 0.3  # white noise has no pulse worth trusting
    short = analyze(np.ones(100, dtype=np.float32), sr)  # 1-D mono, 2 ms
    assert short.duration_s == pytest.approx(100 / sr) and short.bpm == 0.0
    broken = noise.copy()
    broken[1000:2000] = np.nan
    assert math.isfinite(analyze(broken, sr).bpm)
    with pytest.raises(ValueError, match="sample rate"):
        analyze(noise, 0.0)
    with pytest.raises(ValueError, match="channels"):
        analyze(np.zeros((10, 2, 2), dtype=np.float32), sr)


def test_beat_tracker_follows_a_tempo_ramp() -> None:
    """Beats accelerating from 100 to 110 BPM: the DP tracker follows with a fixed period."""
    fps = 100.0
    times = np.cumsum(60.0 / np.linspace(100.0, 110.0, 80))
    env = np.zeros(int(times[-1] * fps) + 50)
    env[np.round(times * fps).astype(int)] = 1.0
    tempo = estimate_tempo(env, fps)
    assert 98.0 < tempo.bpm < 112.0
    beats = track(env, tempo.period) / fps
    assert f_measure(beats, times, 0.03) > 0.95


def test_energy_hints_on_a_quiet_intro() -> None:
    sr = ANALYSIS_RATE
    rng = np.random.default_rng(5)
    y = rng.standard_normal(int(sr * 40)).astype(np.float32)
    y[: int(sr * 8)] *= 0.05  # -26 dB for 8 s
    y[int(sr * 34) :] *= 0.05
    downbeats = np.arange(0.0, 40.0, 2.0)
    e = energy(y, sr, downbeats)
    assert (e.intro_end_s, e.outro_start_s) == (8.0, 34.0)
    assert e.curve.shape == (40,) and e.curve[:8].max() < 0.5 and e.curve[10:30].min() > 0.9
    flat = energy(y[int(sr * 8) : int(sr * 34)], sr, downbeats[:13])
    assert flat.intro_end_s == 0.0 and flat.outro_start_s == pytest.approx(26.0)


def test_chroma_is_empty_for_silence() -> None:
    c = chromagram(np.zeros(int(ANALYSIS_RATE), dtype=np.float32), ANALYSIS_RATE)
    assert isinstance(c, Chroma) and not np.any(c.frames)
    assert estimate_key(c).confidence == 0.0
