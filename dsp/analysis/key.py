"""Musical key: tuning, chromagram, key-profile correlation, and Camelot codes.

1. Spectrum: the analysis signal is resampled to ``KEY_RATE`` (5512.5 Hz), then
   2048-point Hann frames every 512 samples (2.7 Hz bins, 93 ms hop), magnitudes
   between ``FMIN_HZ`` and ``FMAX_HZ``.
2. Tuning: the peaks of the long-term average spectrum (of every fourth frame) are
   located to a fraction of a bin (parabolic interpolation on the log magnitude), and
   the magnitude-weighted circular mean of their distances from the equal-tempered grid
   (A4 = 440 Hz) gives the tuning offset in cents (-50..50).
3. Chromagram: every bin adds its log-compressed, spectrally whitened magnitude (what
   stands above the mean of the surrounding half octave) to the pitch class nearest its
   (tuning-corrected) pitch, weighted by a triangle that is 1 on the semitone and 0 half
   a semitone away, so bins between notes count little. Spectra come in chunks and are
   folded at once, so a long track never holds its spectrogram.
4. Key: the Pearson correlation of the mean chroma vector with the 24 rotations of a
   major and a minor key profile; the best one wins. The profiles are Temperley's
   (Kostka-Payne corpus) blended with Faraldo's EDMA profiles for electronic music,
   made polyphonic as in Gomez (2006) and Essentia's ``Key``: the profiles count the
   notes of a key, while the chromagram also holds their overtones, so each note of
   the profile lends its harmonic h (h = 1..``HARMONICS``) ``SLOPE ** (h - 1)`` of its
   weight at the pitch class of that harmonic (Essentia's defaults: 4 harmonics, slope
   0.6). Without it, the third harmonics (a fifth up) of the tonic and the fifth pull a
   major key towards its dominant.
   The confidence is four times the gap between the best and the runner-up
   correlation, clipped to 0..1 (0 for silence or an unpitched signal).

Camelot: the DJ wheel numbers keys around the circle of fifths, ``B`` for major and ``A``
for minor, with relative keys sharing a number: C major = 8B, A minor = 8A, G major =
9B, E minor = 9A, ..., B major = 1B, G# minor = 1A.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from dsp.analysis.resample import resample
from dsp.analysis.spectrum import frame_count, power_chunks

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

KEY_RATE = 5512.5  # the analysis signal is halved again: pitch content ends near 2 kHz
N_FFT = 2048
HOP = 512
TUNING_HOP = 4 * HOP
FMIN_HZ = 55.0
FMAX_HZ = 2100.0
WHITEN_OCTAVES = 0.5
HARMONICS = 4  # harmonics per note (the fundamental included) in the polyphonic profiles
SLOPE = 0.6  # weight ratio of consecutive harmonics there

MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Temperley (2007), Kostka-Payne corpus: probability of each scale degree.
TEMPERLEY_MAJOR = (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366,
                   0.057, 0.400)
TEMPERLEY_MINOR = (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067,
                   0.133, 0.330)
# Faraldo, Gomez, Jorda, Herrera (2016), "EDMA" profiles for electronic dance music.
EDMA_MAJOR = (1.0, 0.2875, 0.5020, 0.4048, 0.6050, 0.5614, 0.3205, 0.7966, 0.3159, 0.4506,
              0.4202, 0.3889)
EDMA_MINOR = (1.0, 0.3096, 0.4415, 0.5827, 0.3262, 0.4948, 0.2889, 0.7804, 0.4328, 0.2903,
              0.5331, 0.3217)


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    minor: bool
    confidence: float  # 0..1
    tuning_cents: float

    @property
    def name(self) -> str:
        return key_name(self.tonic, self.minor)

    @property
    def camelot(self) -> str:
        return camelot(self.tonic, self.minor)


def key_name(tonic: int, minor: bool) -> str:
    names = MINOR_NAMES if minor else MAJOR_NAMES
    return f"{names[tonic % 12]} {'minor' if minor else 'major'}"


def parse_key(text: str) -> tuple[int, bool]:
    """(tonic pitch class, minor) from names like "A minor", "F# major", "Bbm", "Eb"."""
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min|m)?\s*", text)
    if m is None:
        raise ValueError(f"not a key name: {text!r}")
    pc = _LETTERS[m.group(1).upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)
    mode = (m.group(3) or "major").lower()
    return pc % 12, mode in ("minor", "min", "m")


def camelot(tonic: int, minor: bool) -> str:
    """The Camelot wheel code of a key: C major = 8B, A minor = 8A."""
    major_tonic = (tonic + 3) % 12 if minor else tonic % 12  # a minor key's relative major
    number = (7 * major_tonic + 7) % 12 + 1  # steps of a fifth from B major (1B)
    return f"{number}{'A' if minor else 'B'}"


def _profile(major: bool) -> F64:
    a = np.array(TEMPERLEY_MAJOR if major else TEMPERLEY_MINOR)
    b = np.array(EDMA_MAJOR if major else EDMA_MINOR)
    return np.asarray(a / a.mean() + b / b.mean(), dtype=np.float64)


def _polyphonic(profile: F64) -> F64:
    """``profile`` with the first ``HARMONICS`` harmonics of each pitch class added at
    their own pitch classes (nearest semitone), harmonic h weighted ``SLOPE ** (h - 1)``."""
    out = np.zeros(12)
    for h in range(1, HARMONICS + 1):
        shift = round(12.0 * math.log2(h)) % 12
        out += SLOPE ** (h - 1) * np.roll(profile, shift)
    return out


@functools.cache
def key_templates() -> F64:
    """(24, 12): rows 0-11 major keys on C..B, rows 12-23 minor keys, zero mean, unit norm."""
    rows = []
    for major in (True, False):
        base = _polyphonic(_profile(major))
        for tonic in range(12):
            rows.append(np.roll(base, tonic))
    t = np.array(rows)
    t -= t.mean(axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return np.asarray(t, dtype=np.float64)


def _band(sr: float) -> tuple[int, int]:
    lo = max(1, math.floor(FMIN_HZ * N_FFT / sr))
    hi = min(N_FFT // 2, math.ceil(FMAX_HZ * N_FFT / sr))
    return lo, hi


def estimate_tuning(mean_mag: F64, sr: float) -> float:
    """Tuning offset in cents (-50..50) from the peaks of a long-term magnitude spectrum."""
    lo, hi = _band(sr)
    mag = mean_mag[lo - 1 : hi + 2]
    if mag.size < 5 or not np.any(mag > 0):
        return 0.0
    logm = np.log(np.maximum(mag, 1e-12))
    inner = (mag[1:-1] > mag[:-2]) & (mag[1:-1] >= mag[2:])
    idx = np.flatnonzero(inner) + 1
    if idx.size == 0:
        return 0.0
    # keep the peaks that stand out: the strongest 60, and above a tenth of the largest
    idx = idx[np.argsort(mag[idx])[::-1][:60]]
    idx = idx[mag[idx] >= 0.1 * mag[idx[0]]]
    a, b, c = logm[idx - 1], logm[idx], logm[idx + 1]
    denom = a - 2 * b + c
    offset = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0)
    freqs = (lo - 1 + idx + np.clip(offset, -0.5, 0.5)) * sr / N_FFT
    semis = 12.0 * np.log2(freqs / 440.0)
    angle = 2.0 * np.pi * (semis - np.round(semis))
    w = mag[idx]
    z = complex(np.sum(w * np.cos(angle)), np.sum(w * np.sin(angle)))
    if abs(z) < 1e-12:
        return 0.0
    return float(100.0 * math.atan2(z.imag, z.real) / (2.0 * np.pi))


@functools.cache
def chroma_map(sr: float, tuning_cents: float) -> tuple[I64, F32]:
    """For each bin in the analysis band: its pitch class (nearest tuned semitone) and a
    weight, 1 on the semitone falling to 0 half a semitone away."""
    lo, hi = _band(sr)
    freqs = np.arange(lo, hi) * sr / N_FFT
    semis = 12.0 * np.log2(freqs / 440.0) - tuning_cents / 100.0 + 69.0  # MIDI numbers
    nearest = np.round(semis)
    weight = np.maximum(0.0, 1.0 - 2.0 * np.abs(semis - nearest))
    return nearest.astype(np.int64) % 12, weight.astype(np.float32)


@functools.cache
def _whiten_spans(sr: float, bins: int) -> tuple[I64, I64]:
    """For each bin of the analysis band, the bin range of its running mean: about
    ``WHITEN_OCTAVES`` wide, so it grows with frequency."""
    lo, _ = _band(sr)
    k = np.arange(bins)
    half = np.maximum(2, ((lo + k) * (2.0 ** (WHITEN_OCTAVES / 2) - 1.0)).astype(np.int64))
    return np.clip(k - half, 0, bins).astype(np.int64), np.clip(k + half + 1, 0, bins)


@njit(cache=True, nogil=True)
def fold_chroma(logmag: F32, first: I64, last: I64, pitch_class: I64, weight: F32,
                csum: F64, out: F32) -> None:
    """Whiten each frame of ``logmag`` (keep what stands above the mean over
    [first[k], last[k]) around each bin k) and fold it onto 12 pitch classes:
    ``out[t, pitch_class[k]] += weight[k] * whitened[t, k]``. ``csum`` is work space of
    bins + 1 values."""
    frames, bins = logmag.shape
    for t in range(frames):
        csum[0] = 0.0
        for k in range(bins):
            csum[k + 1] = csum[k] + logmag[t, k]
        for c in range(12):
            out[t, c] = 0.0
        for k in range(bins):
            if weight[k] <= 0.0:
                continue
            mean = (csum[last[k]] - csum[first[k]]) / (last[k] - first[k])
            d = logmag[t, k] - mean
            if d > 0.0:
                out[t, pitch_class[k]] += weight[k] * d


@dataclass(frozen=True)
class Chroma:
    frames: F32  # (frames, 12), each frame's pitch-class energy
    fps: float  # frames per second
    tuning_cents: float


def chromagram(y: F32, sr: float) -> Chroma:
    """The chromagram of the mono analysis signal ``y`` at rate ``sr``."""
    y, sr = resample(y, sr, KEY_RATE)
    lo, hi = _band(sr)
    n = frame_count(y.shape[0], HOP)
    # Pass 1, on every fourth frame: the long-term spectrum, for the tuning, and the
    # level for the log scale.
    total = np.zeros(N_FFT // 2 + 1)
    peak = 0.0
    for _, power in power_chunks(y, N_FFT, TUNING_HOP):
        total += power.sum(axis=0, dtype=np.float64)
        peak = max(peak, float(power[:, lo:hi].max()))
    tuning = estimate_tuning(np.sqrt(total / frame_count(y.shape[0], TUNING_HOP)), sr)
    chroma = np.zeros((n, 12), dtype=np.float32)
    if peak <= 0.0:
        return Chroma(chroma, sr / HOP, tuning)
    # Pass 2: whitened log magnitudes folded onto the 12 pitch classes.
    pitch_class, weight = chroma_map(float(sr), round(tuning, 1))
    first, last = _whiten_spans(float(sr), hi - lo)
    csum = np.empty(hi - lo + 1)
    scale = np.float32(1000.0 / math.sqrt(peak))
    for start, power in power_chunks(y, N_FFT, HOP):
        logmag = np.log1p(np.sqrt(power[:, lo:hi]) * scale)
        fold_chroma(logmag, first, last, pitch_class, weight, csum,
                    chroma[start : start + power.shape[0]])
    return Chroma(chroma, sr / HOP, tuning)


def estimate(chroma: Chroma) -> Key:
    """The key of a chromagram (mean chroma against the 24 key templates)."""
    profile = chroma.frames.astype(np.float64).sum(axis=0)
    if not np.any(profile > 0):
        return Key(0, False, 0.0, chroma.tuning_cents)
    x = profile - profile.mean()
    norm = float(np.linalg.norm(x))
    if norm <= 1e-12:
        return Key(0, False, 0.0, chroma.tuning_cents)
    corr = key_templates() @ (x / norm)
    order = np.argsort(corr)[::-1]
    best = int(order[0])
    confidence = float(np.clip(corr[best] - corr[order[1]], 0.0, 1.0) * 4.0)
    return Key(best % 12, best >= 12, min(1.0, confidence), chroma.tuning_cents)
