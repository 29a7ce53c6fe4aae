"""What the control surfaces show, about 30 times a second, computed off the audio thread.

The audio thread only copies: every strip's block into its ring of recent audio (from when a
monitor is attached: it costs memory traffic, 10-20% of an 8-track session's block), the output
into the output tap, and peak/RMS sums into the meter pipe (engine.render). A ``Monitor``
reads what arrived since its last look and turns it into a ``MonitorFrame``: per strip (track,
bus, master) peak and RMS (from the meter pipe) and BS.1770 loudness (momentary and
short-term LUFS, from a ``dsp.loudness.LoudnessMeter`` per strip fed from the strip's ring),
the master's integrated loudness and LRA, and a spectrum of the output
(``dsp.spectrum.SpectrumAnalyzer``: 4096-point Hann FFT, log bands, attack/release smoothed).

``poll()`` does one look (tests call it directly); ``start(callback, hz)`` runs it on its own
thread and hands each frame to ``callback`` (the session layer broadcasts them). A monitor
that falls more than the rings' length behind skips ahead and counts the frames it lost.
Thread: one monitor thread per engine (the engine's control side is thread-safe).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dsp.effect import F64
from dsp.loudness import LoudnessMeter
from dsp.spectrum import SpectrumAnalyzer
from engine.engine import Engine, Meter

SPECTRUM_BANDS = 64


@dataclass(frozen=True)
class StripReading:
    peak_db: tuple[float, float]
    rms_db: tuple[float, float]
    momentary_lufs: float
    short_term_lufs: float


@dataclass
class MonitorFrame:
    position: str
    playing: bool
    strips: dict[str, StripReading]
    integrated_lufs: float
    lra: float
    spectrum_db: F64  # SPECTRUM_BANDS log bands of the output, 20 Hz .. Nyquist
    lost_frames: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -200.0


class Monitor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.attach_strip_taps()
        self.sample_rate = engine.sample_rate
        self._loudness: dict[str, LoudnessMeter] = {}
        self._master = LoudnessMeter(self.sample_rate, 2)
        self._spectrum = SpectrumAnalyzer(self.sample_rate, 2, fft_size=4096,
                                          bands=SPECTRUM_BANDS, attack_ms=20.0,
                                          release_ms=300.0)
        self._read = engine.frames_rendered
        self.lost_frames = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> MonitorFrame:
        """Read everything that arrived since the last poll; return the newest frame."""
        engine = self.engine
        end = engine.frames_rendered
        taps = engine.strip_taps
        cap = taps.shape[1]
        new = end - self._read
        if new > cap:  # fell behind the rings: skip to what they still hold
            self.lost_frames += new - cap
            self._read = end - cap
            new = cap
        rows = engine.graph.rows
        meters: dict[str, Meter] = engine.read_meters()
        if new > 0:
            idx = np.arange(self._read, end) % cap
            for sid, row in rows.items():
                if row >= taps.shape[0]:
                    continue
                meter = self._loudness.get(sid)
                if meter is None:
                    meter = self._loudness[sid] = LoudnessMeter(self.sample_rate, 2)
                meter.push(np.ascontiguousarray(taps[row][idx]))
            out = engine.tap_frames(new)
            self._master.push(out)
            self._spectrum.push(out)
            self._read = end
        for sid in [s for s in self._loudness if s not in rows]:
            del self._loudness[sid]
        strips = {}
        for sid in rows:
            m = meters.get(sid, Meter((0.0, 0.0), (0.0, 0.0)))
            lm = self._loudness.get(sid)
            strips[sid] = StripReading(
                m.peak_db, m.rms_db,
                _finite(lm.momentary) if lm else -200.0,
                _finite(lm.short_term) if lm else -200.0)
        return MonitorFrame(str(engine.position), engine.playing, strips,
                            _finite(self._master.integrated), float(self._master.lra),
                            self._spectrum.frame().copy(), self.lost_frames)

    def start(self, callback: Callable[[MonitorFrame], object], hz: float = 30.0) -> None:
        def run() -> None:
            period = 1.0 / hz
            while not self._stop.wait(period):
                callback(self.poll())

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="retoone-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
