"""DSP speed: ``python -m perf.dsp [--json PATH] [--quick]``.

Measures, in one process and one thread (every engine runs in the main thread, so on one
core at a time; numba's parallel backend is not used, BLAS is limited to one thread, and
``--cpu N`` pins the process to CPU N):

* the cost of every effect in dsp/ (found by walking the package), through ``process()``
  on 128-frame stereo blocks, in ns per channel-sample (time / (frames x channels));
* the W64 workload: 64 stereo tracks, each 4-band EQ (low shelf, two peaks, high shelf) ->
  compressor -> delay -> gain -> constant-power pan, summed, master limiter, in 128-frame
  blocks at 48 kHz: Retoone's ``StripBank`` (one jitted call per block), the same chain in
  pedalboard (a Pedalboard per track, ``reset=False``, pan gains and the sum in numpy,
  master Limiter) and in pyo (offline server, buffer 128: TableRead -> EQ x4 -> Compress ->
  Delay + Interp (dry/wet) -> per-channel gain x constant-power pan gains -> Mix -> master
  Compress at ratio 100 with 5 ms lookahead). The engines take turns, round after round,
  on the same input for the same duration; the best round of each counts;
* music analysis: ``dsp.analysis.analyze`` against librosa (beat_track for tempo, chroma_cqt
  with Retoone's own key templates for the key) on tracks of the generated test set
  (tests/dsp/testset.py, known tempo and key): speed and accuracy side by side.

Ratios are Retoone's speed over the other's: above 1 means Retoone is faster.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SR = 48000
BLOCK = 128
TRACKS = 64
LOOP_S = 2.0  # the W64 input loops over this much audio (held in memory per engine)

console = Console(width=None if sys.stdout.isatty() else 120)  # wide enough when piped


# -- settings of the W64 chain (the same numbers for every engine) -----------------------------

EQ_BANDS = (  # (kind, frequency Hz, gain dB, q)
    ("lowshelf", 100.0, 3.0, 0.7071),
    ("peak", 400.0, -2.0, 1.0),
    ("peak", 2500.0, 2.0, 1.0),
    ("highshelf", 8000.0, -1.5, 0.7071),
)
COMP = {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 80.0}
DELAY_FEEDBACK = 0.35
DELAY_MIX = 0.25
GAIN_DB = -6.0
HEADROOM_DB = -6.0
CEILING_DB = -1.0
LIMITER_RELEASE_MS = 60.0
LOOKAHEAD_MS = 5.0
DELAY_MAX_S = 1.0  # the longest echo the delay lines hold (Retoone's max_time_ms, pyo's maxdelay)


def delay_ms(track: int) -> float:
    """Echo times spread over 90..490 ms (whole samples at 48 kHz)."""
    return 90.0 + (track * 37) % 401


def pan_position(track: int, tracks: int) -> float:
    return -1.0 + 2.0 * track / max(tracks - 1, 1)


def pan_gains(track: int, tracks: int) -> tuple[float, float]:
    t = (pan_position(track, tracks) + 1.0) * math.pi / 4.0
    return math.cos(t), math.sin(t)


def track_signal(index: int, frames: int) -> F32:
    """A music-like stereo track: a chord of decaying notes, a kick-like burst train, noise."""
    rng = np.random.default_rng(index)
    t = np.arange(frames) / SR
    root = 55.0 * 2.0 ** (rng.integers(0, 24) / 12.0)
    tone = sum(0.12 / (k + 1) * np.sin(2 * np.pi * root * r * t + rng.uniform(0, 6.28))
               for k, r in enumerate((1.0, 1.5, 2.0, 2.5, 4.0)))
    beat = 60.0 / rng.uniform(90.0, 140.0)
    env = np.exp(-((t + rng.uniform(0, beat)) % beat) * rng.uniform(6.0, 20.0))
    kick = 0.5 * env * np.sin(2 * np.pi * 50.0 * t)
    noise = rng.standard_normal((frames, 2)) * 0.03 * env[:, None]
    x = (tone * (0.6 + 0.4 * env) + kick)[:, None] + noise
    x[:, 1] *= rng.uniform(0.7, 1.0)
    return np.ascontiguousarray(x, dtype=np.float32)


# -- results ----------------------------------------------------------------------------------


@dataclass
class Engine:
    name: str
    rounds_s: list[float] = field(default_factory=list)
    best_s: float = math.inf
    median_s: float = math.inf
    rtf: float = 0.0
    rtf_median: float = 0.0
    out_peak_dbfs: float = -math.inf
    out_rms_dbfs: float = -math.inf
    note: str = ""


@dataclass
class W64:
    rtf: float
    vs_pedalboard: float | None
    vs_pyo: float | None
    rtf_median: float
    vs_pedalboard_median: float | None
    vs_pyo_median: float | None
    seconds_per_round: float
    rounds: int
    tracks: int
    block: int
    sample_rate: int
    retoone_ns_per_track_channel_sample: float
    engines: dict[str, Engine]


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


@dataclass
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    effects_ns_per_sample: dict[str, float] = field(default_factory=dict)
    w64: W64 | None = None
    analysis: Analysis | None = None


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


# -- (a) every effect -------------------------------------------------------------------------


def discover_effects() -> list[type[Any]]:
    """Every Effect subclass in dsp/ (walking the package: nothing to keep in sync)."""
    import dsp
    from dsp.effect import Effect

    for info in pkgutil.walk_packages(dsp.__path__, "dsp."):
        importlib.import_module(info.name)
    found: set[type[Effect]] = set()
    stack = list(Effect.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.PARAMS and cls.run is not Effect.run and not cls.__name__.startswith("_"):
            found.add(cls)
    return sorted(found, key=lambda c: c.__name__)


def measure_effects(seconds: float, rounds: int) -> dict[str, float]:
    effects = discover_effects()
    signal = np.concatenate([track_signal(i, SR // 2) for i in range(2)])
    blocks = [np.ascontiguousarray(signal[i:i + BLOCK])
              for i in range(0, signal.shape[0] - BLOCK + 1, BLOCK)]
    count = max(1, int(seconds * SR / BLOCK))
    result: dict[str, float] = {}
    with progress() as bar:
        task = bar.add_task("effects (128-frame stereo blocks)", total=len(effects))
        for cls in effects:
            bar.update(task, description=f"effects: {cls.__name__}")
            fx = cls(float(SR), 2, **cls.EXAMPLE)
            for b in blocks[:64]:  # compile (or load the cache) and settle
                fx.process(b)
            best = math.inf
            for _ in range(rounds):
                start = time.perf_counter()
                for k in range(count):
                    fx.process(blocks[k % len(blocks)])
                best = min(best, time.perf_counter() - start)
            result[cls.__name__] = best / (count * BLOCK * 2) * 1e9
            bar.advance(task)
    return result


# -- (b) W64 ----------------------------------------------------------------------------------


class RetooneW64:
    name = "retoone"

    def __init__(self, inputs: F32) -> None:
        from dsp.strip import StripBank

        tracks = inputs.shape[0]
        self.bank = StripBank(tracks, float(SR), max_time_ms=DELAY_MAX_S * 1000.0)
        eq: dict[str, Any] = {}
        for k, (kind, freq, gain, q) in enumerate(EQ_BANDS):
            eq.update({f"b{k}_type": kind, f"b{k}_freq_hz": freq, f"b{k}_gain_db": gain,
                       f"b{k}_q": q, f"b{k}_enabled": "on"})
        self.bank.set("eq", **eq)
        self.bank.set("compressor", detector="peak", knee_db=0.0, makeup_db=0.0, mix=1.0,
                      threshold_db=COMP["threshold_db"], ratio=COMP["ratio"],
                      attack_ms=COMP["attack_ms"], release_ms=COMP["release_ms"])
        self.bank.set("delay", feedback=DELAY_FEEDBACK, mix=DELAY_MIX, lowcut_hz=20.0,
                      highcut_hz=20000.0, pingpong="off", sync="off")
        self.bank.set("gain", gain_db=GAIN_DB)
        for t in range(tracks):
            self.bank.set("delay", t, time_ms=delay_ms(t))
            self.bank.set("pan", t, pan=pan_position(t, tracks), law="constant_power")
        self.bank.set("bus", headroom_db=HEADROOM_DB)
        self.bank.set("limiter", ceiling_db=CEILING_DB, release_ms=LIMITER_RELEASE_MS,
                      lookahead_ms=LOOKAHEAD_MS)
        self.bank.reset()
        frames = inputs.shape[1]
        self.blocks = [np.ascontiguousarray(inputs[:, i:i + BLOCK])
                       for i in range(0, frames - BLOCK + 1, BLOCK)]

    def run(self, count: int, keep: F32 | None = None) -> None:
        for k in range(count):
            y = self.bank.process(self.blocks[k % len(self.blocks)])
            if keep is not None:
                keep[k * BLOCK:(k + 1) * BLOCK] = y


class PedalboardW64:
    name = "pedalboard"

    def __init__(self, inputs: F32) -> None:
        import pedalboard as pb

        tracks, frames = inputs.shape[0], inputs.shape[1]
        filters = {"lowshelf": pb.LowShelfFilter, "peak": pb.PeakFilter,
                   "highshelf": pb.HighShelfFilter}
        self.boards = []
        for t in range(tracks):
            chain: list[Any] = [filters[kind](cutoff_frequency_hz=freq, gain_db=gain, q=q)
                                for kind, freq, gain, q in EQ_BANDS]
            chain.append(pb.Compressor(**COMP))
            chain.append(pb.Delay(delay_seconds=delay_ms(t) / 1000.0, feedback=DELAY_FEEDBACK,
                                  mix=DELAY_MIX))
            chain.append(pb.Gain(gain_db=GAIN_DB))
            self.boards.append(pb.Pedalboard(chain))  # type: ignore[attr-defined]
        self.limiter = pb.Limiter(threshold_db=CEILING_DB, release_ms=LIMITER_RELEASE_MS)
        gains = np.array([pan_gains(t, tracks) for t in range(tracks)], dtype=np.float32)
        self.gains = gains[:, :, None]  # (tracks, 2, 1)
        self.headroom = np.float32(10.0 ** (HEADROOM_DB / 20.0))
        planar = np.ascontiguousarray(inputs.transpose(0, 2, 1))  # (tracks, 2, frames)
        self.blocks = [[np.ascontiguousarray(planar[t, :, i:i + BLOCK]) for t in range(tracks)]
                       for i in range(0, frames - BLOCK + 1, BLOCK)]
        self.bus = np.zeros((2, BLOCK), dtype=np.float32)
        self.panned = np.zeros((2, BLOCK), dtype=np.float32)

    def run(self, count: int, keep: F32 | None = None) -> None:
        sr = float(SR)
        for k in range(count):
            block = self.blocks[k % len(self.blocks)]
            bus = self.bus
            bus[:] = 0.0
            for t, board in enumerate(self.boards):
                y = board.process(block[t], sr, reset=False)
                np.multiply(y, self.gains[t], out=self.panned)
                bus += self.panned
            bus *= self.headroom
            out = self.limiter.process(bus, sr, reset=False)
            if keep is not None:
                keep[k * BLOCK:(k + 1) * BLOCK] = out.T


class PyoW64:
    name = "pyo"

    def __init__(self, inputs: F32) -> None:
        os.environ.setdefault("PYO_GUI_WX", "0")
        import pyo

        tracks, frames = inputs.shape[0], inputs.shape[1]
        self.pyo = pyo
        self.server = pyo.Server(sr=SR, nchnls=2, buffersize=BLOCK, duplex=0, audio="offline",
                                 verbosity=1).boot()
        self.tables = []
        self.objects: list[Any] = []
        kinds = {"peak": 0, "lowshelf": 1, "highshelf": 2}
        voices = []
        for t in range(tracks):
            table = pyo.DataTable(size=frames, chnls=2)
            for c in range(2):
                np.asarray(table.getBuffer(c))[:] = inputs[t, :, c]
            self.tables.append(table)
            sig = pyo.TableRead(table, freq=table.getRate(), loop=1).play()
            chain = [sig]
            for kind, freq, gain, q in EQ_BANDS:
                chain.append(pyo.EQ(chain[-1], freq=freq, q=q, boost=gain, type=kinds[kind]))
            comp = pyo.Compress(chain[-1], thresh=COMP["threshold_db"], ratio=COMP["ratio"],
                                risetime=COMP["attack_ms"] / 1000.0,
                                falltime=COMP["release_ms"] / 1000.0, lookahead=0.0, knee=0.0)
            echo = pyo.Delay(comp, delay=delay_ms(t) / 1000.0, feedback=DELAY_FEEDBACK,
                             maxdelay=DELAY_MAX_S)
            g = 10.0 ** (GAIN_DB / 20.0)
            gl, gr = pan_gains(t, tracks)
            # dry/wet, then gain x constant-power pan gains per channel (stream 0 left, 1 right)
            voice = pyo.Interp(comp, echo, interp=DELAY_MIX, mul=[g * gl, g * gr])
            chain += [comp, echo, voice]
            self.objects.extend(chain)
            voices.append(voice)
        self.bus = pyo.Mix(voices, voices=2, mul=10.0 ** (HEADROOM_DB / 20.0))
        self.master = pyo.Compress(self.bus, thresh=CEILING_DB, ratio=100.0, risetime=0.001,
                                   falltime=LIMITER_RELEASE_MS / 1000.0,
                                   lookahead=LOOKAHEAD_MS, knee=0.0).out()
        self.path = Path(tempfile.gettempdir()) / f"retoone-perf-pyo-{os.getpid()}.wav"

    def run(self, count: int, keep: F32 | None = None) -> None:
        self.server.recordOptions(dur=count * BLOCK / SR, filename=str(self.path),
                                  fileformat=0, sampletype=3)  # WAV, float32
        self.server.start()  # offline: renders the whole duration, then returns
        if keep is not None:
            import soundfile

            data, _ = soundfile.read(str(self.path), dtype="float32")
            n = min(keep.shape[0], data.shape[0])
            keep[:n] = data[:n]

    def close(self) -> None:
        self.server.shutdown()
        self.path.unlink(missing_ok=True)


def measure_w64(seconds: float, rounds: int) -> W64:
    loop = int(LOOP_S * SR) // BLOCK * BLOCK
    inputs = np.stack([track_signal(t, loop) for t in range(TRACKS)])
    count = max(1, int(seconds * SR / BLOCK))
    engines: dict[str, Engine] = {}
    runners: list[Any] = []
    with progress() as bar:
        task = bar.add_task("W64: building the three engines", total=3)
        for cls in (RetooneW64, PedalboardW64, PyoW64):
            try:
                runners.append(cls(inputs))
                engines[cls.name] = Engine(cls.name)
            except ImportError as exc:
                engines[cls.name] = Engine(cls.name, note=f"not installed: {exc}")
            bar.advance(task)
        # warm-up (compile, caches) and the output levels of one loop of input
        for runner in runners:
            keep = np.zeros((loop, 2), dtype=np.float32)
            runner.run(loop // BLOCK, keep)
            tail = keep[keep.shape[0] // 2:].astype(np.float64)
            engines[runner.name].out_peak_dbfs = db(float(np.max(np.abs(tail))))
            engines[runner.name].out_rms_dbfs = db(float(np.sqrt(np.mean(tail**2))))
        task = bar.add_task(f"W64: {rounds} rounds x {len(runners)} engines x {seconds:g} s",
                            total=rounds * len(runners))
        for r in range(rounds):
            order = runners[r % len(runners):] + runners[:r % len(runners)]
            for runner in order:
                bar.update(task, description=f"W64 round {r + 1}: {runner.name}")
                start = time.perf_counter()
                runner.run(count)
                elapsed = time.perf_counter() - start
                engines[runner.name].rounds_s.append(elapsed)
                bar.advance(task)
    for runner in runners:
        if isinstance(runner, PyoW64):
            runner.close()
    audio_s = count * BLOCK / SR
    for e in engines.values():
        if e.rounds_s:
            e.best_s = min(e.rounds_s)
            e.median_s = float(np.median(e.rounds_s))
            e.rtf = audio_s / e.best_s
            e.rtf_median = audio_s / e.median_s
    ours = engines["retoone"]

    def ratio(name: str, median: bool = False) -> float | None:
        other = engines.get(name)
        if other is None or other.rtf <= 0:
            return None
        return ours.rtf_median / other.rtf_median if median else ours.rtf / other.rtf

    return W64(
        rtf=ours.rtf,
        vs_pedalboard=ratio("pedalboard"),
        vs_pyo=ratio("pyo"),
        rtf_median=ours.rtf_median,
        vs_pedalboard_median=ratio("pedalboard", median=True),
        vs_pyo_median=ratio("pyo", median=True),
        seconds_per_round=audio_s,
        rounds=rounds,
        tracks=TRACKS,
        block=BLOCK,
        sample_rate=SR,
        retoone_ns_per_track_channel_sample=ours.best_s / (count * BLOCK * TRACKS * 2) * 1e9,
        engines=engines,
    )


# -- (c) analysis against librosa -------------------------------------------------------------


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


# -- the run ----------------------------------------------------------------------------------


def pin_to_cpu(cpu: int | None) -> int | None:
    """Pin the process to ``cpu`` (None: leave it to the scheduler); the CPU pinned to."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    os.sched_setaffinity(0, {cpu})
    return cpu


def one_blas_thread() -> AbstractContextManager[Any] | None:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return None
    limits: AbstractContextManager[Any] = threadpool_limits(limits=1)
    return limits


def machine_info(cpu: int | None) -> dict[str, Any]:
    import numba

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    versions: dict[str, str] = {"numpy": np.__version__, "numba": numba.__version__}
    for mod in ("pedalboard", "pyo", "librosa"):
        try:
            m = importlib.import_module(mod)
            versions[mod] = str(getattr(m, "__version__", getattr(m, "PYO_VERSION", "?")))
        except ImportError:
            versions[mod] = "missing"
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "pinned_cpu": cpu,
        "threads": 1,
        "load_average_at_start": [round(v, 2) for v in load],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "versions": versions,
    }


def run(args: argparse.Namespace) -> Report:
    cpu = pin_to_cpu(args.cpu)
    limits = one_blas_thread()
    quick = bool(args.quick)
    settings = {
        "quick": quick,
        "block": BLOCK,
        "tracks": TRACKS,
        "sample_rate": SR,
        "effect_seconds": 0.1 if quick else 1.0,
        "effect_rounds": 2 if quick else 5,
        "w64_seconds": 0.5 if quick else 2.0,
        "w64_rounds": 1 if quick else 10,
        "analysis_tracks": 1 if quick else 12,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report = Report(machine=machine_info(cpu), settings=settings)
    try:
        report.effects_ns_per_sample = measure_effects(
            float(settings["effect_seconds"]), int(settings["effect_rounds"]))
        report.w64 = measure_w64(float(settings["w64_seconds"]), int(settings["w64_rounds"]))
        report.analysis = measure_analysis(int(settings["analysis_tracks"]))
    finally:
        if limits is not None:
            limits.__exit__(None, None, None)
    return report


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def show(report: Report) -> None:
    m = report.machine
    pinned = "not pinned" if m["pinned_cpu"] is None else f"pinned to CPU {m['pinned_cpu']}"
    console.print(
        f"\n[bold]Retoone DSP perf[/]: {m['cpu_model'] or m['machine']}, {m['cpu_count']} CPUs "
        f"(one thread, {pinned}), load average at start "
        f"{m['load_average_at_start']}, Python {m['python']}"
    )
    if report.effects_ns_per_sample:
        t = Table(title="Effects through process(), 128-frame stereo blocks",
                  caption="ns per channel-sample = time / (frames x 2); includes the Python "
                          "call (~1 us per block)")
        t.add_column("effect")
        t.add_column("ns / channel-sample", justify="right")
        t.add_column("x real time (one stereo stream)", justify="right")
        for name, ns in sorted(report.effects_ns_per_sample.items(), key=lambda kv: kv[1]):
            t.add_row(name, f"{ns:.1f}", f"{1e9 / (ns * 2 * SR):.0f}")
        console.print(t)
    if report.w64 is not None:
        w = report.w64
        t = Table(title=f"W64: {w.tracks} stereo tracks (EQ4 -> compressor -> delay -> gain -> "
                        f"pan) + master limiter, {w.block}-frame blocks at {w.sample_rate} Hz",
                  caption=f"best of {w.rounds} interleaved rounds of {w.seconds_per_round:g} s "
                          "of audio; real-time factor = audio seconds / wall seconds, one core")
        for col in ("engine", "best s", "median s", "RTF best", "RTF median",
                    "Retoone is (best)", "(median)", "out peak dBFS", "out RMS dBFS"):
            t.add_column(col, justify="left" if col == "engine" else "right")
        for name, e in w.engines.items():
            ours = w.engines["retoone"]
            faster = None if name == "retoone" or e.rtf <= 0 else ours.rtf / e.rtf
            faster_med = (None if name == "retoone" or e.rtf_median <= 0
                          else ours.rtf_median / e.rtf_median)
            t.add_row(name + (f" ({e.note})" if e.note else ""),
                      f"{e.best_s:.3f}" if e.rounds_s else "-",
                      f"{e.median_s:.3f}" if e.rounds_s else "-",
                      f"{e.rtf:.2f}" if e.rtf else "-",
                      f"{e.rtf_median:.2f}" if e.rtf_median else "-",
                      _ratio(faster) if name != "retoone" else "",
                      _ratio(faster_med) if name != "retoone" else "",
                      f"{e.out_peak_dbfs:.1f}", f"{e.out_rms_dbfs:.1f}")
        console.print(t)
        for name, e in w.engines.items():
            console.print(f"  {name} rounds (s): " + " ".join(f"{s:.3f}" for s in e.rounds_s))
        console.print(f"Retoone StripBank: {w.retoone_ns_per_track_channel_sample:.2f} ns per "
                      "track-channel-sample")
    if report.analysis is not None:
        a = report.analysis
        t = Table(title=f"Music analysis on {a.tracks} generated tracks "
                        f"({a.audio_s:.0f} s of audio, known tempo and key)",
                  caption="Acc1: tempo within 4 %; Acc2: also at x2, x1/2, x3, x1/3; "
                          "librosa: resample to 22050 Hz, beat_track, chroma_cqt + Retoone's "
                          "key templates")
        for col in ("engine", "seconds", "x real time", "tempo Acc1", "tempo Acc2", "key exact"):
            t.add_column(col, justify="left" if col == "engine" else "right")
        for name, side in (("retoone analyze()", a.retoone), ("librosa", a.librosa)):
            if side is None:
                t.add_row(name, "-", "-", "-", "-", "-")
                continue
            t.add_row(name, f"{side.seconds:.2f}", f"{side.x_realtime:.0f}",
                      f"{side.tempo_acc1:.0%}", f"{side.tempo_acc2:.0%}",
                      f"{side.key_exact:.0%}")
        console.print(t)
        console.print(f"Retoone analysis is {_ratio(a.vs_librosa_speed)} librosa's speed")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.dsp",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run (a few seconds once the numba cache is warm)")
    parser.add_argument("--cpu", type=int, metavar="N", help="pin the process to CPU N")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
    show(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_jsonable(asdict(report)), indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
