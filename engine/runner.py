"""Runners drive an engine's ``render``: offline as fast as it goes, or in real time.

``render_offline(engine, frames, block)`` renders a span into one array (the engine's own
block size and arithmetic: a real-time run of the same project from the same state gives the
same samples).

``RealtimeRunner`` is the audio thread of a session on a server with no sound card: a thread
paced by the monotonic clock. Block ``k`` is due at ``start + (k + ahead) * period``: the
runner may render up to ``ahead`` blocks before they are due (the output FIFO a device or a
network sender reads), which absorbs the moments the thread waits for the interpreter lock;
a block finished after its due time is an xrun. Each rendered block goes to ``sink`` (a
callable taking a float32 (block, 2) view; it must copy what it keeps).
``SoundDeviceRunner`` plays through ``sounddevice`` when an audio device is chosen
(``--audio-device``); its callback is the audio thread.

``BlockStats`` keeps the last ``HISTORY`` block render times (preallocated) for p50, p99,
max and load, plus the xrun count.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dsp.effect import F32
from engine.engine import Engine

HISTORY = 8192
SWITCH_INTERVAL_S = 0.0005


class BlockStats:
    """Render times of the last HISTORY blocks. Written by the audio thread, read anywhere
    (a reader may see a block's time a moment late, never a torn one)."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self.times = np.zeros(HISTORY, dtype=np.float64)
        self.count = 0
        self.xruns = 0

    def add(self, seconds: float) -> None:  # RT
        self.times[self.count % HISTORY] = seconds
        self.count += 1

    def summary(self) -> dict[str, float]:
        n = min(self.count, HISTORY)
        t = self.times[:n] if n else np.zeros(1)
        return {
            "blocks": float(self.count), "xruns": float(self.xruns),
            "p50_ms": float(np.percentile(t, 50)) * 1e3,
            "p99_ms": float(np.percentile(t, 99)) * 1e3,
            "max_ms": float(t.max()) * 1e3,
            "load": float(t.mean()) / self.period_s,
        }


def render_offline(engine: Engine, frames: int, block: int = 128,
                   progress: Callable[[int], None] | None = None) -> F32:
    """Render ``frames`` frames, ``block`` at a time, into a new float32 (frames, 2)."""
    out = np.zeros((frames, 2), dtype=np.float32)
    engine.configure_meters(block)
    done = 0
    while done < frames:
        n = min(block, frames - done)
        out[done:done + n] = engine.render(n)
        done += n
        if progress is not None:
            progress(n)
    return out


class RealtimeRunner:
    """A clock-paced audio thread for an engine (headless: no sound card needed)."""

    def __init__(self, engine: Engine, block: int = 128, *, ahead: int = 4,
                 sink: Callable[[F32], Any] | None = None) -> None:
        self.engine = engine
        self.block = block
        self.ahead = ahead
        self.sink = sink
        self.period_s = block / engine.sample_rate
        self.stats = BlockStats(self.period_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # The audio thread needs the interpreter lock back after each block; by default
        # another thread may keep it 5 ms, two blocks at 128 frames. 0.5 ms is this
        # process's switch interval from now on (a server that runs sessions wants it).
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.engine.configure_meters(self.block)
        out = self.engine.render(self.block)  # the first block of this size: not timed
        if self.sink is not None:
            self.sink(out)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="retoone-audio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> RealtimeRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:  # the audio thread
        clock = time.perf_counter
        engine, block, sink, stats = self.engine, self.block, self.sink, self.stats
        period = self.period_s
        start = clock()
        k = 0
        while not self._stop.is_set():
            early = start + k * period - clock()  # not more than `ahead` blocks early
            if early > 0:
                time.sleep(early)
            t0 = clock()
            out = engine.render(block)
            if sink is not None:
                sink(out)
            t1 = clock()
            stats.add(t1 - t0)
            if t1 > start + (k + self.ahead) * period:
                stats.xruns += 1
                start = t1 - k * period  # start again from now rather than run behind
            k += 1


class SoundDeviceRunner:
    """Plays an engine through an audio device (``sounddevice``); the device's callback is
    the audio thread."""

    def __init__(self, engine: Engine, device: int | str | None, block: int = 128) -> None:
        import sounddevice as sd

        self.engine = engine
        self.stats = BlockStats(block / engine.sample_rate)
        engine.configure_meters(block)
        engine.render(block)

        def callback(outdata: Any, frames: int, _time: Any, status: Any) -> None:
            if status.output_underflow:
                self.stats.xruns += 1
            t0 = time.perf_counter()
            outdata[:] = engine.render(frames)
            self.stats.add(time.perf_counter() - t0)

        self.stream = sd.OutputStream(samplerate=engine.sample_rate, blocksize=block,
                                      device=device, channels=2, dtype="float32",
                                      callback=callback, latency="low")

    def start(self) -> None:
        self.stream.start()

    def stop(self) -> None:
        self.stream.stop()
        self.stream.close()
