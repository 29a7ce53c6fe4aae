"""The thin Python side of the instruments: their shared parameters and the wrapper base.

``common_params`` builds the twelve parameters both instruments have (envelope, velocity,
filter, spread, volume) in kernel order; ``Instrument`` is the base of ``dsp.synth.Synth`` and
``dsp.sampler.Sampler``: parameters by name (clamped, bad values refused), preallocated state
and output, ``render(frames, events)``. The voice engine they drive is dsp/voices.py.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from dsp.effect import F32, F64, check_rate_channels
from dsp.params import Param, ParamError, find
from dsp.voices import (
    DEFAULT_VOICES,
    HEAD,
    MAX_ATTACK_MS,
    MAX_POLYPHONY,
    MAX_TIME_MS,
    OFF,
    STAGES,
    V_PITCH,
    V_STAGE,
    VS,
    instrument_state_size,
)


def common_params(
    cutoff_hz: float, resonance: float, env_oct: float, key: float, spread: float,
    volume_db: float, attack_ms: float, sustain: float,
) -> tuple[Param, ...]:
    """The twelve parameters both instruments have, in kernel order (``P_ATTACK``..)."""
    return (
        Param("attack_ms", "ms", 0.0, MAX_ATTACK_MS, attack_ms,
              "linear rise to the velocity peak (0: at once)"),
        Param("decay_ms", "ms", 1.0, MAX_TIME_MS, 300.0,
              "time for the level to come within 60 dB of the sustain level"),
        Param("sustain", "", 0.0, 1.0, sustain, "held level, relative to the velocity peak"),
        Param("release_ms", "ms", 1.0, MAX_TIME_MS, 400.0,
              "time for the level to fall by 60 dB after the note off"),
        Param("velocity_sens", "", 0.0, 1.0, 0.8,
              "peak = 1 - s + s * (velocity / 127)**2: 0 ignores velocity"),
        Param("cutoff_hz", "Hz", 20.0, 20000.0, cutoff_hz,
              "low-pass cutoff before modulation (kept below 0.45 sr)"),
        Param("resonance", "", 0.0, 1.0, resonance,
              "filter Q = 0.707 * 30**resonance: 0 flat (Butterworth), 1 ringing"),
        Param("env_amount_oct", "oct", -8.0, 8.0, env_oct,
              "cutoff shift at the envelope's peak, in octaves"),
        Param("key_track", "", 0.0, 1.0, key,
              "cutoff follows pitch: 1 moves it an octave per octave from middle C"),
        Param("mod_wheel_oct", "oct", 0.0, 8.0, 3.0,
              "cutoff shift with the mod wheel (CC 1) at 127, in octaves"),
        Param("spread", "", 0.0, 1.0, spread,
              "stereo spread by pitch: low notes left, high notes right"),
        Param("volume_db", "dB", -60.0, 12.0, volume_db, "output level (times CC 7's gain)"),
    )


# -- the wrapper -------------------------------------------------------------------------------


class Instrument:
    """Base of ``Synth`` and ``Sampler``: parameters, state, and ``render(frames, events)``.

    ``render`` returns a view of a preallocated (frames, 2) float32 buffer (cached per block
    size; copy it to keep it). Events are a float64 (E, 4) array of ``[offset, type, a, b]``
    rows with offsets in frames from the start of this block. With float64 C-contiguous
    events ``render`` allocates nothing after the first block of a size. ``set`` only writes
    numbers into the params array the kernel reads (safe from a control thread).
    """

    PARAMS: ClassVar[tuple[Param, ...]] = ()
    EXAMPLE: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        sample_rate: float = 48000.0,
        *,
        voices: int = DEFAULT_VOICES,
        max_block: int = 8192,
        **values: Any,
    ) -> None:
        rate = check_rate_channels(sample_rate, 2)
        if isinstance(voices, bool) or not isinstance(voices, int) or not (
            1 <= voices <= MAX_POLYPHONY
        ):
            raise ParamError(f"voices: {voices!r} is not 1..{MAX_POLYPHONY}")
        if isinstance(max_block, bool) or not isinstance(max_block, int) or max_block < 1:
            raise ParamError(f"max_block: {max_block!r} must be a positive integer")
        self.sample_rate = rate
        self.voices = voices
        count = len(self.PARAMS)
        self.kp = np.zeros(count + 1, dtype=np.float64)
        self.kp[:count] = [p.default for p in self.PARAMS]
        self.kp[count] = rate
        self.params = self.kp[:count]
        self.state = np.zeros(instrument_state_size(voices), dtype=np.float64)
        self._out = np.zeros((max_block, 2), dtype=np.float32)
        self._views: dict[int, F32] = {}
        self._no_events = np.zeros((0, 4), dtype=np.float64)
        self.set(**values)
        self.reset()

    def set(self, **values: Any) -> None:
        """Set parameters by name; out-of-range numbers are clamped, bad values refused."""
        coerced = [(find(self.PARAMS, name), self.PARAMS[find(self.PARAMS, name)].coerce(v))
                   for name, v in values.items()]
        for index, value in coerced:
            self.params[index] = value

    def get(self, name: str) -> float | str:
        index = find(self.PARAMS, name)
        return self.PARAMS[index].describe(float(self.params[index]))

    def reset(self) -> None:
        """Silence, controllers to defaults (CC 7 at 127, pedal up), smoothing at its targets."""
        raise NotImplementedError

    def run(self, out: F32, events: F64) -> None:  # RT
        raise NotImplementedError

    def render(self, frames: int, events: npt.ArrayLike | None = None) -> F32:  # RT (see class)
        """The next ``frames`` of output, with this block's events."""
        if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 0:
            raise ParamError(f"frames: {frames!r} must be a non-negative integer")
        ev = self._as_events(events)
        out = self._output(int(frames))
        if frames:
            self.run(out, ev)
        return out

    def voices_playing(self) -> list[tuple[int, str]]:
        """(pitch, stage) of each busy playing slot, for inspection (not real-time safe)."""
        found = []
        for slot in range(self.voices):
            b = HEAD + slot * VS
            if self.state[b + V_STAGE] != OFF:
                found.append((int(self.state[b + V_PITCH]), STAGES[int(self.state[b + V_STAGE])]))
        return found

    def _as_events(self, events: npt.ArrayLike | None) -> F64:  # RT for float64 (E, 4)
        if events is None:
            return self._no_events
        if (
            type(events) is np.ndarray
            and events.dtype == np.float64
            and events.ndim == 2
            and events.shape[1] == 4
            and events.flags.c_contiguous
        ):
            return events
        arr = np.asarray(events, dtype=np.float64)
        if arr.size == 0:
            return self._no_events
        if arr.ndim == 1 and arr.shape[0] == 4:
            arr = arr.reshape(1, 4)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ParamError(f"events: expected shape (E, 4), got {arr.shape}")
        return np.ascontiguousarray(arr)

    def _output(self, n: int) -> F32:  # RT after the first block of this size
        out = self._views.get(n)
        if out is None:
            if n > self._out.shape[0]:
                self._out = np.zeros((n, 2), dtype=np.float32)
                self._views.clear()
            out = self._views[n] = self._out[:n]
        return out

    def __repr__(self) -> str:
        values = ", ".join(f"{p.name}={self.get(p.name)!r}" for p in self.PARAMS)
        return f"{type(self).__name__}({values})"
