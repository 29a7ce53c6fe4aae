"""The effects a project may put in an insert chain: type names, dsp classes, kernel ids.

A project names an effect by its ``type`` (``"eq"``, ``"compressor"``...); its parameters are
that dsp effect's ``PARAMS`` (names, units, ranges: docs/dsp.md). The engine builds the dsp
wrapper (which validates and clamps the values and owns the state and params arrays) and the
render kernel calls the wrapper's kernel on the arrays by its ``kind`` number
(engine.render dispatches on it).

``make_effect(type, sample_rate, params)`` raises ``UnknownEffect`` for a type that is not
here and ``ParamError`` for an unusable value, each naming what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dsp.biquad import ParametricEQ4
from dsp.compressor import Compressor
from dsp.delay import Delay
from dsp.effect import F64, Effect
from dsp.gate import NoiseGate
from dsp.limiter import Limiter
from dsp.modulation import Chorus, Flanger
from dsp.params import Param
from dsp.pitch import PitchShifter
from dsp.reverb import Reverb
from dsp.saturation import Saturation
from dsp.stereo import Gain, Pan, Width

# kernel ids: engine.render's dispatch (keep in step with its _effect function)
(K_EQ, K_COMPRESSOR, K_GATE, K_LIMITER, K_DELAY, K_REVERB, K_CHORUS, K_FLANGER, K_SATURATION,
 K_GAIN, K_PAN, K_WIDTH, K_PITCH) = range(13)


@dataclass(frozen=True)
class EffectType:
    name: str
    cls: type[Effect]
    kind: int
    doc: str


TYPES: dict[str, EffectType] = {
    t.name: t for t in (
        EffectType("eq", ParametricEQ4, K_EQ, "4-band parametric EQ"),
        EffectType("compressor", Compressor, K_COMPRESSOR, "feed-forward compressor"),
        EffectType("gate", NoiseGate, K_GATE, "noise gate with hysteresis"),
        EffectType("limiter", Limiter, K_LIMITER, "lookahead true-peak limiter"),
        EffectType("delay", Delay, K_DELAY, "delay, tempo-syncable, ping-pong"),
        EffectType("reverb", Reverb, K_REVERB, "FDN reverb"),
        EffectType("chorus", Chorus, K_CHORUS, "chorus"),
        EffectType("flanger", Flanger, K_FLANGER, "flanger"),
        EffectType("saturation", Saturation, K_SATURATION, "tanh/asymmetric saturation"),
        EffectType("gain", Gain, K_GAIN, "gain and mute, ramped"),
        EffectType("pan", Pan, K_PAN, "constant-power or balance pan"),
        EffectType("width", Width, K_WIDTH, "stereo width"),
        EffectType("pitch", PitchShifter, K_PITCH, "pitch and formant shift"),
    )
}


class UnknownEffect(ValueError):
    """An effect type the engine does not have."""

    def __init__(self, name: object) -> None:
        known = ", ".join(sorted(TYPES))
        super().__init__(f"unknown effect type {name!r}; known: {known}")
        self.name = name


def effect_type(name: object) -> EffectType:
    if not isinstance(name, str) or name not in TYPES:
        raise UnknownEffect(name)
    return TYPES[name]


def make_effect(name: str, sample_rate: float, params: dict[str, Any]) -> Effect:
    """A stereo dsp effect of type ``name`` with ``params`` set (ParamError if unusable)."""
    return effect_type(name).cls(sample_rate, 2, **params)


def params_of(name: str) -> tuple[Param, ...]:
    return effect_type(name).cls.PARAMS


def kernel_params(fx: Effect) -> F64:
    """The float64 params array the effect's kernel reads (its ``set`` writes into it)."""
    for attr in ("_kp", "kp"):
        arr = getattr(fx, attr, None)
        if isinstance(arr, np.ndarray):
            return arr
    raise TypeError(f"{type(fx).__name__} keeps no kernel params array")


_warm: set[float] = set()


def warm_up(sample_rate: float) -> None:
    """Make and run one of every effect type once in this process, so that loading their
    compiled kernels (tens of ms each, holding the interpreter lock) happens now and not
    when a musician first adds one to a playing session (it would stall the audio thread).
    Control side; cheap after the first call."""
    if sample_rate in _warm:
        return
    block = np.zeros((16, 2), dtype=np.float32)
    for t in TYPES.values():
        fx = t.cls(sample_rate, 2)
        fx.process(block)
    _warm.add(sample_rate)
