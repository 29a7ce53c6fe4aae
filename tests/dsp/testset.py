"""A generated test set of music-like tracks with known tempo, beat grid, downbeats and key.

Each track is synthesised from a seed (deterministic) in a style with its conventional
tempo range and drum pattern: four-on-the-floor house and techno, syncopated breakbeats
and drum & bass, swung hip-hop, funk, rock and fast punk backbeats, shuffled jazz ride
patterns, slow ballads. Over the drums run a bass line, a pad playing a chord progression
of the key (I-V-vi-IV, I-IV-V-I, i-VI-III-VII, i-iv-V-i, ...) and a melody from the scale
that lands on chord tones on strong beats and on the tonic at phrase ends. Some tracks open
with a drum-less ambient intro, some end with a drum-less outro, some have noise added,
some are "live" (the tempo drifts by a few percent and the timing is humanised), and some
are detuned by up to 25 cents. Every track starts at a random point of its first bar, so
the first downbeat is not at time zero.

The 24 major and minor keys appear twice each in a 48-track set. Generation is vectorised:
every distinct note or drum sound is rendered once per track and pasted at its onsets.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

PITCH_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)

# Chords as (semitones above the tonic, quality): "M" major, "m" minor, "d" diminished.
MAJOR_PROGRESSIONS: tuple[tuple[tuple[int, str], ...], ...] = (
    ((0, "M"), (7, "M"), (9, "m"), (5, "M")),  # I-V-vi-IV
    ((0, "M"), (5, "M"), (7, "M"), (0, "M")),  # I-IV-V-I
    ((0, "M"), (9, "m"), (5, "M"), (7, "M")),  # I-vi-IV-V
    ((0, "M"), (5, "M"), (0, "M"), (7, "M")),  # I-IV-I-V
    ((0, "M"), (2, "m"), (7, "M"), (0, "M")),  # I-ii-V-I
)
MINOR_PROGRESSIONS: tuple[tuple[tuple[int, str], ...], ...] = (
    ((0, "m"), (8, "M"), (3, "M"), (10, "M")),  # i-VI-III-VII
    ((0, "m"), (5, "m"), (7, "m"), (0, "m")),  # i-iv-v-i
    ((0, "m"), (5, "m"), (7, "M"), (0, "m")),  # i-iv-V-i (harmonic minor)
    ((0, "m"), (10, "M"), (8, "M"), (7, "M")),  # i-VII-VI-V (Andalusian)
    ((0, "m"), (8, "M"), (5, "m"), (7, "M")),  # i-VI-iv-V
)
QUALITY = {"M": (0, 4, 7), "m": (0, 3, 7), "d": (0, 3, 6)}


@dataclass(frozen=True)
class Style:
    name: str
    bpm: tuple[float, float]
    # Drum hits per 4/4 bar on a 16-step grid: instrument -> ((step, velocity), ...)
    pattern: dict[str, tuple[tuple[int, float], ...]]
    swing8: float = 0.5  # where the off-beat 8th falls, in beats (0.5 straight, 0.667 shuffle)
    swing16: float = 0.25  # where the off-beat 16th falls inside its 8th, in beats
    bass: str = "roots"  # roots | offbeat | eighths | walking | whole
    melody_density: float = 0.5  # chance of a melody note on each 8th
    chord_bars: tuple[int, ...] = (1, 2)  # bars per chord (one is drawn)
    live_chance: float = 0.0  # chance the track is played "live" (tempo drift, jitter)


def _steps(*steps: int, v: float = 1.0) -> tuple[tuple[int, float], ...]:
    return tuple((s, v) for s in steps)


EIGHTHS = tuple(range(0, 16, 2))
SIXTEENTHS = tuple(range(16))
STYLES: tuple[Style, ...] = (
    Style("house", (118.0, 128.0), {
        "kick": _steps(0, 4, 8, 12), "clap": _steps(4, 12, v=0.8),
        "open_hat": _steps(2, 6, 10, 14, v=0.6), "hat": _steps(*SIXTEENTHS, v=0.2),
    }, bass="offbeat", melody_density=0.35, chord_bars=(1, 2)),
    Style("techno", (124.0, 140.0), {
        "kick": _steps(0, 4, 8, 12), "hat": _steps(*SIXTEENTHS, v=0.3)
        + _steps(2, 6, 10, 14, v=0.5), "clap": _steps(4, 12, v=0.6), "rim": _steps(3, 11, v=0.4),
    }, bass="eighths", melody_density=0.3, chord_bars=(2,)),
    Style("breakbeat", (125.0, 140.0), {
        "kick": _steps(0, 6, 10), "snare": _steps(4, 12) + _steps(15, v=0.3),
        "hat": _steps(*EIGHTHS, v=0.45),
    }, bass="roots", melody_density=0.45),
    Style("drum_and_bass", (160.0, 178.0), {
        "kick": _steps(0, 10), "snare": _steps(4, 12) + _steps(7, 14, v=0.25),
        "hat": _steps(*EIGHTHS, v=0.35), "ride": _steps(0, 4, 8, 12, v=0.3),
    }, bass="whole", melody_density=0.25, chord_bars=(2,)),
    Style("hiphop", (80.0, 98.0), {
        "kick": _steps(0, 7, 10), "snare": _steps(4, 12), "hat": _steps(*EIGHTHS, v=0.45)
        + _steps(3, 11, v=0.25),
    }, swing16=0.31, bass="roots", melody_density=0.5),
    Style("funk", (95.0, 112.0), {
        "kick": _steps(0, 3, 10), "snare": _steps(4, 12) + _steps(7, 9, 15, v=0.25),
        "hat": _steps(*SIXTEENTHS, v=0.3) + _steps(*EIGHTHS, v=0.2),
    }, swing16=0.27, bass="eighths", melody_density=0.5, chord_bars=(1,)),
    Style("rock", (100.0, 150.0), {
        "kick": _steps(0, 8) + _steps(10, v=0.7), "snare": _steps(4, 12),
        "hat": _steps(*EIGHTHS, v=0.5),
    }, bass="eighths", melody_density=0.5, live_chance=0.5),
    Style("punk", (160.0, 180.0), {
        "kick": _steps(0, 8), "snare": _steps(4, 12), "hat": _steps(0, 4, 8, 12, v=0.55),
    }, bass="eighths", melody_density=0.3, chord_bars=(1, 2)),
    Style("ballad", (70.0, 82.0), {
        "kick": _steps(0, 8) + _steps(11, v=0.5), "snare": _steps(4, 12, v=0.8),
        "hat": _steps(*EIGHTHS, v=0.3),
    }, bass="whole", melody_density=0.6, chord_bars=(1,), live_chance=0.5),
    Style("swing", (110.0, 180.0), {
        "ride": _steps(0, 4, 8, 12, v=0.7) + _steps(6, 14, v=0.5),
        "hat": _steps(4, 12, v=0.5), "kick": _steps(0, 4, 8, 12, v=0.35),
        "snare": _steps(14, v=0.3),
    }, swing8=0.667, bass="walking", melody_density=0.55, chord_bars=(1, 2), live_chance=0.5),
)


@dataclass(frozen=True)
class Track:
    name: str
    style: str
    sr: float
    audio: F32 = field(repr=False)  # (frames, 2)
    bpm: float  # the median tempo (the only tempo of a steady track)
    beats: F64 = field(repr=False)  # seconds
    downbeats: F64 = field(repr=False)  # seconds
    tonic: int  # pitch class, 0 = C
    minor: bool
    steady: bool  # constant tempo, no humanised timing
    drums_in_s: float  # end of the drum-less intro (0.0 without one)
    drums_out_s: float  # start of the drum-less outro (the duration without one)
    tuning_cents: float

    @property
    def key(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def duration_s(self) -> float:
        return self.audio.shape[0] / self.sr


# -- sounds ------------------------------------------------------------------------------


def _decay(n: int, sr: float, seconds: float) -> F64:
    return np.exp(-np.arange(n) / (seconds * sr))


def _highpassed_noise(rng: np.random.Generator, n: int, order: int) -> F64:
    x = rng.standard_normal(n + order)
    for _ in range(order):
        x = np.diff(x)
    return x / (2.0 ** (order / 2))


def _drum_kit(sr: float, rng: np.random.Generator) -> dict[str, F64]:
    kit: dict[str, F64] = {}
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    f0 = rng.uniform(42.0, 55.0)
    freq = f0 + rng.uniform(80.0, 140.0) * np.exp(-t / 0.035)
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * _decay(n, sr, rng.uniform(0.12, 0.22))
    kick[: int(0.003 * sr)] += rng.standard_normal(int(0.003 * sr)) * 0.3
    kit["kick"] = kick
    n = int(0.3 * sr)
    body = np.sin(2 * np.pi * rng.uniform(170.0, 220.0) * np.arange(n) / sr)
    kit["snare"] = (0.6 * _highpassed_noise(rng, n, 1) * _decay(n, sr, 0.09)
                    + 0.5 * body * _decay(n, sr, 0.05))
    clap = _highpassed_noise(rng, n, 1) * _decay(n, sr, 0.07)
    for k in (1, 2):  # a clap is three quick bursts
        d = int(k * 0.011 * sr)
        clap[d:] += 0.7 * _highpassed_noise(rng, n - d, 1) * _decay(n - d, sr, 0.02)
    kit["clap"] = 0.6 * clap
    n = int(0.08 * sr)
    kit["hat"] = 0.5 * _highpassed_noise(rng, n, 2) * _decay(n, sr, 0.018)
    kit["rim"] = 0.5 * _highpassed_noise(rng, n, 1) * _decay(n, sr, 0.01)
    n = int(0.35 * sr)
    kit["open_hat"] = 0.45 * _highpassed_noise(rng, n, 2) * _decay(n, sr, 0.1)
    n = int(1.0 * sr)
    t = np.arange(n) / sr
    bell = sum(np.sin(2 * np.pi * f * t) for f in (3150.0, 4720.0, 5510.0))
    kit["ride"] = (0.3 * _highpassed_noise(rng, n, 2) + 0.06 * bell) * _decay(n, sr, 0.35)
    n = int(2.0 * sr)
    kit["crash"] = 0.45 * _highpassed_noise(rng, n, 2) * _decay(n, sr, 0.6)
    return kit


def _midi_hz(note: float, cents: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0 + cents / 100.0) / 12.0)


TABLE = 4096


@functools.cache
def _wavetable(rolloff: float, harmonics: int) -> F64:
    phase = 2 * np.pi * np.arange(TABLE) / TABLE
    return np.asarray(sum(np.sin(h * phase) / h**rolloff for h in range(1, harmonics + 1)))


def _tone(hz: float, n: int, sr: float, rolloff: float, harmonics: int,
          attack_s: float, decay_s: float) -> F64:
    """A harmonic tone (wavetable oscillator) with an attack, an exponential decay and a
    short release at the end."""
    harmonics = max(1, min(harmonics, int(0.45 * sr / hz)))
    index = (np.arange(n) * (hz * TABLE / sr)).astype(np.int64) & (TABLE - 1)
    x = _wavetable(rolloff, harmonics)[index]
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / attack_s) * np.exp(-t / decay_s)
    release = min(n, int(0.02 * sr))
    env[n - release :] *= np.linspace(1.0, 0.0, release)
    return x * env


# -- composition ---------------------------------------------------------------------------


def _chord_notes(tonic: int, root_offset: int, quality: str) -> list[int]:
    root = 48 + (tonic + root_offset) % 12  # C3..B3
    return [root + i for i in QUALITY[quality]]


def _beat_times(n_beats: int, bpm: float, live: bool, rng: np.random.Generator) -> F64:
    period = 60.0 / bpm
    if not live:
        return np.arange(n_beats + 1) * period
    # A slow drift of a few percent around the median tempo.
    k = np.arange(n_beats)
    depth = rng.uniform(0.015, 0.03)
    drift = 1.0 + depth * np.sin(2 * np.pi * k / rng.uniform(48.0, 96.0) + rng.uniform(0, 6.3))
    periods = period / drift
    periods *= period / np.median(periods)
    return np.concatenate(([0.0], np.cumsum(periods)))


@dataclass
class _Score:
    """Onsets in beats (float) with what to play there."""

    hits: list[tuple[float, str, float]] = field(default_factory=list)  # (beat, drum, velocity)
    notes: list[tuple[float, float, int, str, float]] = field(default_factory=list)
    # (beat, length in beats, midi note, voice, velocity)


def _compose(style: Style, tonic: int, minor: bool, n_bars: int, intro_bars: int,
             outro_bars: int, rng: np.random.Generator) -> _Score:
    score = _Score()
    progs = MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS
    prog = progs[int(rng.integers(len(progs)))]
    bars_per_chord = int(rng.choice(style.chord_bars))
    scale = MINOR_SCALE if minor else MAJOR_SCALE
    drums_from, drums_to = intro_bars, n_bars - outro_bars
    melody_note = 72 + tonic % 12 - (12 if tonic % 12 > 7 else 0)
    for bar in range(n_bars):
        b0 = 4.0 * bar
        drums = drums_from <= bar < drums_to
        chord_index = (bar // bars_per_chord) % len(prog)
        root_offset, quality = prog[chord_index]
        chord_start = bar % bars_per_chord == 0
        chord = _chord_notes(tonic, root_offset, quality)
        if drums:
            for drum, hits in style.pattern.items():
                for step, vel in hits:
                    beat, sub = divmod(step, 4)
                    frac16 = style.swing16 / 0.5
                    pos = (0.0, style.swing8 * frac16, style.swing8,
                           style.swing8 + (1.0 - style.swing8) * frac16)[sub]
                    v = vel * rng.uniform(0.85, 1.0)
                    score.hits.append((b0 + beat + pos, drum, v))
            if (bar - drums_from) % 8 == 0:
                score.hits.append((b0, "crash", 0.8))
        # pad: the chord, held for its bars (in the intro and outro too)
        if chord_start:
            length = 4.0 * min(bars_per_chord, n_bars - bar)
            for note in chord:
                score.notes.append((b0, length, note, "pad", 0.5))
        # bass: the chord root in octave 1-2
        bass_root = 36 + (tonic + root_offset) % 12
        if drums or bar < drums_from:
            _bass(score, style.bass, b0, bass_root, scale, tonic, drums, rng)
        # melody: chord tones on strong beats, scale steps between, the tonic at phrase ends
        if drums or rng.random() < 0.5:
            melody_note = _melody_bar(score, b0, melody_note, chord, scale, tonic,
                                      style, bar % 4 == 3, rng)
    return score


def _bass(score: _Score, kind: str, b0: float, root: int, scale: tuple[int, ...],
          tonic: int, drums: bool, rng: np.random.Generator) -> None:
    if not drums or kind == "whole":
        score.notes.append((b0, 4.0, root, "bass", 0.9 if drums else 0.6))
    elif kind == "roots":
        score.notes.append((b0, 1.5, root, "bass", 1.0))
        score.notes.append((b0 + 2.5, 1.0, root + (7 if rng.random() < 0.5 else 0), "bass", 0.8))
    elif kind == "offbeat":
        for beat in range(4):
            score.notes.append((b0 + beat + 0.5, 0.4, root + (12 if beat == 3 else 0),
                                "bass", 0.9))
    elif kind == "eighths":
        for e in range(8):
            score.notes.append((b0 + 0.5 * e, 0.45, root, "bass", 1.0 if e % 2 == 0 else 0.75))
    else:  # walking: quarter notes through the scale from the root
        pcs = [(p + tonic) % 12 for p in scale]
        note = root
        for beat in range(4):
            score.notes.append((b0 + beat, 0.9, note, "bass", 0.9))
            step = int(rng.choice((1, 1, 2, -1)))
            pc = note % 12
            idx = min(range(len(pcs)), key=lambda i: (pcs[i] - pc) % 12)
            new_pc = pcs[(idx + step) % len(pcs)]
            note = note + ((new_pc - pc + 6) % 12 - 6)
            if not 33 <= note <= 52:
                note = root


def _melody_bar(score: _Score, b0: float, last: int, chord: list[int],
                scale: tuple[int, ...], tonic: int, style: Style, phrase_end: bool,
                rng: np.random.Generator) -> int:
    pcs = sorted((p + tonic) % 12 for p in scale)
    candidates = [n for n in range(64, 90) if n % 12 in pcs]
    chord_pcs = {n % 12 for n in chord}
    note = last
    for eighth in range(8):
        pos = b0 + 0.5 * eighth
        if eighth % 2 == 1:
            pos = b0 + (eighth // 2) + style.swing8
        strong = eighth in (0, 4)
        if phrase_end and eighth >= 4:
            if eighth == 4:
                target = min((n for n in candidates if n % 12 == tonic % 12),
                             key=lambda n: abs(n - note))
                score.notes.append((pos, 2.0, target, "lead", 0.8))
                note = target
            continue
        if not strong and rng.random() > style.melody_density:
            continue
        if strong:
            options = [n for n in candidates if n % 12 in chord_pcs and abs(n - note) <= 7]
            note = int(rng.choice(options)) if options else note
        else:
            i = min(range(len(candidates)), key=lambda i: abs(candidates[i] - note))
            i = int(np.clip(i + int(rng.choice((-2, -1, -1, 1, 1, 2))), 0, len(candidates) - 1))
            note = candidates[i]
        score.notes.append((pos, 0.5 if not strong else 1.0, note, "lead",
                            rng.uniform(0.55, 0.75)))
    return note


VOICES = {  # rolloff, harmonics, attack s, decay s, gain, pan (-1 left .. 1 right)
    "pad": (1.5, 10, 0.25, 6.0, 0.16, -0.3),
    "bass": (1.8, 6, 0.005, 0.8, 0.55, 0.0),
    "lead": (2.0, 8, 0.005, 0.35, 0.22, 0.3),
}
DRUM_GAIN = {"kick": 0.9, "snare": 0.55, "clap": 0.5, "hat": 0.35, "open_hat": 0.3,
             "rim": 0.3, "ride": 0.3, "crash": 0.3}
DRUM_PAN = {"hat": 0.3, "open_hat": 0.3, "ride": -0.3, "crash": -0.3, "rim": 0.3}


def _render(score: _Score, times: F64, sr: float, kit: dict[str, F64], cents: float,
            live: bool, rng: np.random.Generator, frames: int) -> F64:
    buses: dict[float, F64] = {}  # one mono bus per pan position, panned at the end
    jitter = 0.008 if live else 0.0

    def at(beat: float) -> float:  # seconds, between the beats of the grid
        i = min(int(beat), len(times) - 2)
        return float(times[i] + (beat - i) * (times[i + 1] - times[i]))

    def paste(sound: F64, start_s: float, gain: float, pan: float) -> None:
        start = round(start_s * sr)
        if start >= frames or start + len(sound) <= 0:
            return
        lo = max(0, -start)
        hi = min(len(sound), frames - start)
        bus = buses.get(pan)
        if bus is None:
            bus = buses[pan] = np.zeros(frames, dtype=np.float32)
        bus[start + lo : start + hi] += sound[lo:hi] * gain

    for beat, drum, vel in score.hits:
        t = at(beat) + (rng.normal(0.0, jitter) if jitter else 0.0)
        paste(kit[drum], t, DRUM_GAIN[drum] * vel, DRUM_PAN.get(drum, 0.0))

    @functools.cache
    def note_sound(voice: str, midi: int, n: int) -> F64:
        rolloff, harmonics, attack, decay, _, _ = VOICES[voice]
        return _tone(_midi_hz(midi, cents), n, sr, rolloff, harmonics, attack, decay)

    for beat, length, midi, voice, vel in score.notes:
        t0, t1 = at(beat), at(beat + length)
        n = max(16, round((t1 - t0) * sr / 256) * 256)  # a coarse length grid: more reuse
        _, _, _, _, gain, pan = VOICES[voice]
        paste(note_sound(voice, midi, n), t0, gain * vel, pan)
    out = np.zeros((frames, 2), dtype=np.float32)
    for pan, bus in buses.items():
        out[:, 0] += bus * math.sqrt(0.5 * (1.0 - pan))
        out[:, 1] += bus * math.sqrt(0.5 * (1.0 + pan))
    return out


def make_track(index: int, seed: int = 0) -> Track:
    """Track ``index`` of the set for ``seed``; its key is one of the 24, by index."""
    rng = np.random.default_rng([seed, index])
    style = STYLES[index % len(STYLES)]
    tonic = (index * 7) % 12  # walks the circle of fifths
    minor = (index // 12) % 2 == 1
    sr = 48000.0 if index % 3 == 2 else 44100.0
    lo, hi = style.bpm
    bpm = float(round(rng.uniform(lo, hi), 1))
    live = rng.random() < style.live_chance
    duration = float(rng.uniform(30.0, 60.0))
    intro_bars = int(rng.choice((4, 8))) if index % 3 == 0 else 0
    outro_bars = int(rng.choice((2, 4))) if index % 4 == 1 else 0
    bar_s = 240.0 / bpm
    crop_s = float(rng.uniform(0.0, bar_s))  # start somewhere in the first bar
    n_bars = math.ceil((duration + crop_s) / bar_s) + 1
    # The drums must play for most of the track: shorten intro/outro on short tracks.
    while intro_bars + outro_bars > n_bars // 2:
        intro_bars, outro_bars = intro_bars // 2, outro_bars // 2
    times = _beat_times(4 * n_bars, bpm, live, rng)
    score = _compose(style, tonic, minor, n_bars, intro_bars, outro_bars, rng)
    kit = _drum_kit(sr, rng)
    cents = float(rng.uniform(-25.0, 25.0)) if index % 5 == 3 else 0.0
    frames_full = math.ceil((times[-1] + 2.0) * sr)
    mix = _render(score, times, sr, kit, cents, live, rng, frames_full)
    start = round(crop_s * sr)
    frames = round(duration * sr)
    mix = mix[start : start + frames]
    noisy = index % 4 == 2
    if noisy:  # noise about 12-20 dB below the music
        rms = float(np.sqrt(np.mean(mix**2)))
        snr_db = rng.uniform(12.0, 20.0)
        noise = rng.standard_normal((frames, 2), dtype=np.float32)
        mix = mix + noise * np.float32(rms * 10 ** (-snr_db / 20))
    mix *= np.float32(rng.uniform(0.3, 0.95) / max(float(np.max(np.abs(mix))), 1e-9))
    beat_s = times[:-1] - crop_s
    keep = (beat_s >= 0.0) & (beat_s < duration)
    beats = beat_s[keep]
    downbeats = beat_s[::4][(beat_s[::4] >= 0.0) & (beat_s[::4] < duration)]
    median_period = float(np.median(np.diff(times)))
    name = f"{index:02d}-{style.name}-{bpm:g}bpm-{PITCH_NAMES[tonic]}{'m' if minor else ''}"
    return Track(
        name=name, style=style.name, sr=sr, audio=np.ascontiguousarray(mix),
        bpm=60.0 / median_period, beats=beats, downbeats=downbeats, tonic=tonic, minor=minor,
        steady=not live, drums_in_s=max(0.0, float(times[4 * intro_bars]) - crop_s),
        drums_out_s=min(duration, float(times[4 * (n_bars - outro_bars)]) - crop_s)
        if outro_bars else duration,
        tuning_cents=cents,
    )


def make_set(count: int = 48, seed: int = 0) -> list[Track]:
    return [make_track(i, seed) for i in range(count)]
