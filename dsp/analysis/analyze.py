"""One call for everything the AI DJ needs to know about a track.

``analyze(x, sr)`` takes float32 audio (frames, channels) and returns an ``Analysis``:
tempo and its confidence, the beat grid and downbeats (seconds), the key and its
Camelot code, a per-second energy curve with intro/outro hints, and the integrated
loudness (LUFS, BS.1770). Offline: it allocates freely and never runs on the audio thread.

The pipeline: mix to mono and resample to 11025 Hz (dsp.analysis.resample); onset
envelopes (dsp.analysis.onset); tempo and beats (dsp.analysis.tempo, .beats); the
chromagram and key (dsp.analysis.key); downbeats from the beats, the low-frequency
onsets and the harmonic change at each beat; energy (dsp.analysis.energy); loudness
(dsp.loudness) on the original channels and rate.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from dsp.analysis import beats as beatmod
from dsp.analysis import key as keymod
from dsp.analysis import tempo as tempomod
from dsp.analysis.energy import energy
from dsp.analysis.onset import onset_strength
from dsp.analysis.resample import ANALYSIS_RATE, resample, to_mono
from dsp.loudness import integrated_loudness

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MIN_RATE = 8000.0
MAX_RATE = 384000.0
MAX_CHANNELS = 16
# Downbeat evidence: low-frequency onsets (kick, bass notes) and harmonic change.
LOW_WEIGHT = 1.0
HARMONY_WEIGHT = 1.0


@dataclass(frozen=True)
class Analysis:
    duration_s: float
    bpm: float  # 0.0 when no pulse was found
    bpm_confidence: float  # 0..1
    beats: F64 = field(repr=False)  # seconds
    downbeats: F64 = field(repr=False)  # seconds, first beats of 4/4 bars
    key: str  # e.g. "A minor"; "" when there is no pitched content
    camelot: str  # e.g. "8A"; "" with the key
    key_confidence: float  # 0..1
    tuning_cents: float  # deviation of the tuning from A4 = 440 Hz
    energy: F64 = field(repr=False)  # per second, 0..1
    intro_end_s: float
    outro_start_s: float
    lufs: float  # integrated loudness; -inf for silence


def harmonic_change(chroma: F32, chroma_fps: float, beat_frames: I64, fps: float) -> F64:
    """Per beat: how much the harmony of the two beats after it differs from the two
    before it (cosine distance of beat-averaged chroma vectors, 0..1)."""
    n_beats = beat_frames.shape[0]
    if n_beats < 2 or chroma.shape[0] == 0:
        return np.zeros(n_beats)
    # chroma frame index of each beat, and the beat-synchronous mean chroma
    idx = np.clip(np.round(beat_frames / fps * chroma_fps).astype(np.int64), 0,
                  chroma.shape[0])
    idx = np.append(idx, chroma.shape[0])
    cum = np.concatenate([np.zeros((1, 12)), np.cumsum(chroma, axis=0, dtype=np.float64)])
    sync = np.zeros((n_beats, 12))
    for i in range(n_beats):
        lo, hi = idx[i], max(idx[i + 1], idx[i] + 1)
        hi = min(hi, chroma.shape[0])
        if hi > lo:
            sync[i] = (cum[hi] - cum[lo]) / (hi - lo)
    change = np.zeros(n_beats)
    for i in range(n_beats):
        before = sync[max(0, i - 2) : i].sum(axis=0)
        after = sync[i : i + 2].sum(axis=0)
        nb, na = float(np.linalg.norm(before)), float(np.linalg.norm(after))
        if nb > 1e-12 and na > 1e-12:
            change[i] = 1.0 - float(before @ after) / (nb * na)
    return change


def _check(x: npt.ArrayLike, sr: float) -> F32:
    if not isinstance(sr, numbers.Real) or not math.isfinite(sr) or not (
        MIN_RATE <= float(sr) <= MAX_RATE
    ):
        raise ValueError(f"sample rate {sr!r} is outside {MIN_RATE:g}..{MAX_RATE:g} Hz")
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or not 1 <= arr.shape[1] <= MAX_CHANNELS:
        raise ValueError(f"audio must be (frames, 1..{MAX_CHANNELS} channels), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def analyze(x: npt.ArrayLike, sr: float) -> Analysis:
    """Tempo, beats, downbeats, key, energy and loudness of float32 ``x`` (frames, channels)."""
    audio = _check(x, sr)
    sr = float(sr)
    duration = audio.shape[0] / sr
    y, rate = resample(to_mono(audio), sr, ANALYSIS_RATE)
    onsets = onset_strength(y, rate)
    tempo = tempomod.estimate(onsets.env, onsets.fps)
    chroma = keymod.chromagram(y, rate)
    key = keymod.estimate(chroma)
    beat_frames = tempo.beats
    phase = 0
    if beat_frames.size >= 2 * beatmod.BEATS_PER_BAR:
        low = beatmod.sample_peaks(onsets.low, beat_frames, 2)
        harmony = harmonic_change(chroma.frames, chroma.fps, beat_frames, onsets.fps)
        phase = beatmod.bar_phase([low, harmony], [LOW_WEIGHT, HARMONY_WEIGHT])
    beats = beat_frames / onsets.fps
    downbeats = beats[phase :: beatmod.BEATS_PER_BAR] if beats.size else beats
    en = energy(y, rate, downbeats)
    lufs = integrated_loudness(audio, sr) if audio.shape[0] else -math.inf
    pitched = key.confidence > 0.0
    return Analysis(
        duration_s=duration,
        bpm=tempo.bpm,
        bpm_confidence=tempo.confidence,
        beats=np.asarray(beats, dtype=np.float64),
        downbeats=np.asarray(downbeats, dtype=np.float64),
        key=key.name if pitched else "",
        camelot=key.camelot if pitched else "",
        key_confidence=key.confidence,
        tuning_cents=key.tuning_cents,
        energy=en.curve,
        intro_end_s=en.intro_end_s,
        outro_start_s=en.outro_start_s,
        lufs=float(lufs),
    )
