"""The W64 workload of the DSP benchmark (``python -m perf.dsp``) and its three engines.

W64 is 64 stereo tracks, each 4-band EQ (low shelf, two peaks, high shelf) -> compressor ->
delay -> gain -> constant-power pan, summed, master limiter, in 128-frame blocks at 48 kHz:

* Retoone's ``StripBank`` (one jitted call per block);
* the same chain in pedalboard (a Pedalboard per track, ``reset=False``, pan gains and the
  sum in numpy, master Limiter);
* and in pyo (offline server, buffer 128: TableRead -> EQ x4 -> Compress -> Delay + Interp
  (dry/wet) -> per-channel gain x constant-power pan gains -> Mix -> master Compress at
  ratio 100 with 5 ms lookahead).

Every engine gets the same settings (below) and the same input. ``measure_w64`` has the
engines take turns, round after round, for the same duration; the best round of each counts.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perf.dsp_common import BLOCK, F32, SR, progress, track_signal

# -- settings of the W64 chain (the same numbers for every engine) -----------------------------

TRACKS = 64
LOOP_S = 2.0  # the W64 input loops over this much audio (held in memory per engine)

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


def db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


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


# -- the engines ------------------------------------------------------------------------------


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

