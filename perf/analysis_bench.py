"""Music analysis in the DSP benchmark (``python -m perf.dsp``): ``dsp.analysis.analyze``
against librosa, speed and accuracy side by side.

librosa estimates the tempo with ``beat_track`` and the key from the mean ``chroma_cqt``
matched against Retoone's own key templates, after resampling to 22050 Hz (its default
analysis rate). Both run on tracks of the generated test set (tests/dsp/testset.py, known
tempo and key). Tempo accuracy is Acc1 (within 4 %) and Acc2 (also at x2, x1/2, x3, x1/3).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from perf.dsp_common import F32, progress

# -- results ----------------------------------------------------------------------------------


@dataclass
class AnalysisSide:
    seconds: float
    x_realtime: float
    tempo_acc1: float
    tempo_acc2: float
    key_exact: float


@dataclass
class Analysis:
    x_realtime: float
    vs_librosa_speed: float | None
    tracks: int
    audio_s: float
    retoone: AnalysisSide
    librosa: AnalysisSide | None
    per_track: list[dict[str, Any]]


# -- the measurement -------------------------------------------------------------------------


def tempo_hits(estimate: float, truth: float) -> tuple[bool, bool]:
    """(Acc1, Acc2): within 4 % of the true tempo; also at x2, x1/2, x3, x1/3."""
    if estimate <= 0:
        return False, False
    acc1 = abs(estimate - truth) <= 0.04 * truth
    acc2 = any(abs(estimate - truth * f) <= 0.04 * truth * f
               for f in (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0))
    return acc1, acc2


def librosa_analyze(audio: F32, sr: float) -> tuple[float, int, bool]:
    """librosa's tempo (beat_track) and key (mean chroma_cqt against Retoone's templates) of
    the track resampled to 22050 Hz, librosa's default analysis rate."""
    import librosa

    from dsp.analysis.key import key_templates

    y = librosa.resample(audio.mean(axis=1), orig_sr=sr, target_sr=22050)
    tempo, _ = librosa.beat.beat_track(y=y, sr=22050)
    chroma = librosa.feature.chroma_cqt(y=y, sr=22050)
    profile = chroma.mean(axis=1).astype(np.float64)
    x = profile - profile.mean()
    norm = float(np.linalg.norm(x))
    best = int(np.argmax(key_templates() @ (x / max(norm, 1e-12))))
    return float(np.atleast_1d(tempo)[0]), best % 12, best >= 12


def measure_analysis(count: int) -> Analysis:
    from dsp.analysis import analyze
    from dsp.analysis.key import parse_key

    # the generated set with known tempo and key (tests is a package; imported by name so
    # that type checking perf/ does not pull the test helpers in)
    make_track = importlib.import_module("tests.dsp.testset").make_track

    try:
        import librosa  # noqa: F401
        have_librosa = True
    except ImportError:
        have_librosa = False
    per_track: list[dict[str, Any]] = []
    ours_s = theirs_s = audio_s = 0.0
    ours_hits = [0, 0, 0]
    theirs_hits = [0, 0, 0]
    with progress() as bar:
        task = bar.add_task("analysis: generating tracks", total=count)
        tracks = []
        for i in range(count):
            tracks.append(make_track(i, seed=0))
            bar.advance(task)
        warm = tracks[0]
        short = warm.audio[: int(8 * warm.sr)]
        analyze(short, warm.sr)  # compile / load the numba cache
        if have_librosa:
            librosa_analyze(short, warm.sr)  # librosa's own numba warm-up
        task = bar.add_task("analysis: Retoone vs librosa", total=count)
        for tr in tracks:
            bar.update(task, description=f"analysis: {tr.name}")
            start = time.perf_counter()
            result = analyze(tr.audio, tr.sr)
            t_ours = time.perf_counter() - start
            tonic, minor = parse_key(result.key) if result.key else (-1, False)
            a1, a2 = tempo_hits(result.bpm, tr.bpm)
            key_ok = tonic == tr.tonic and minor == tr.minor
            ours_hits = [ours_hits[0] + a1, ours_hits[1] + a2, ours_hits[2] + key_ok]
            row: dict[str, Any] = {
                "track": tr.name, "seconds": tr.duration_s, "true_bpm": round(tr.bpm, 2),
                "true_key": tr.key, "retoone_bpm": round(result.bpm, 2),
                "retoone_key": result.key, "retoone_s": t_ours,
            }
            if have_librosa:
                start = time.perf_counter()
                bpm, l_tonic, l_minor = librosa_analyze(tr.audio, tr.sr)
                t_theirs = time.perf_counter() - start
                b1, b2 = tempo_hits(bpm, tr.bpm)
                l_ok = l_tonic == tr.tonic and l_minor == tr.minor
                theirs_hits = [theirs_hits[0] + b1, theirs_hits[1] + b2, theirs_hits[2] + l_ok]
                from dsp.analysis.key import key_name

                row.update({"librosa_bpm": round(bpm, 2),
                            "librosa_key": key_name(l_tonic, l_minor), "librosa_s": t_theirs})
                theirs_s += t_theirs
            ours_s += t_ours
            audio_s += tr.duration_s
            per_track.append(row)
            bar.advance(task)
    n = len(tracks)
    ours = AnalysisSide(ours_s, audio_s / ours_s, ours_hits[0] / n, ours_hits[1] / n,
                        ours_hits[2] / n)
    theirs = (AnalysisSide(theirs_s, audio_s / theirs_s, theirs_hits[0] / n,
                           theirs_hits[1] / n, theirs_hits[2] / n) if have_librosa else None)
    return Analysis(
        x_realtime=ours.x_realtime,
        vs_librosa_speed=theirs_s / ours_s if theirs is not None else None,
        tracks=n,
        audio_s=audio_s,
        retoone=ours,
        librosa=theirs,
        per_track=per_track,
    )

