"""The live dsp objects of one session, kept by stable keys across graph recompiles.

Effects by (strip id, effect id), faders (gain with mute, then pan) by strip id, send gains by
(source, bus), delay-compensation lines by (source, destination), instruments by track id,
and the bank of tracks rendered side by side (engine.bank). engine.graph asks the Rack for
an object when it compiles; a swap to the new graph therefore keeps every delay line, reverb
tail and voice, and a control thread's ``set()`` reaches the same arrays whatever graph is
playing. ``fresh`` remembers what was made since the last compile (their automation starts
without a ramp).
"""

from __future__ import annotations

import numpy as np

from dsp.effect import F32, F64, Effect
from dsp.sampler import Sampler
from dsp.stereo import Gain, Pan
from dsp.synth import Synth
from engine.bank import ChainBank
from engine.effects import kernel_params, make_effect
from engine.model import EffectSpec, Instrument, Project, Strip, Track


def effective_mute(project: Project, strip: Strip) -> bool:
    if strip.mute:
        return True
    if isinstance(strip, Track) and any(t.solo for t in project.tracks):
        return not strip.solo
    return False


class Rack:
    """The live dsp objects of one session, by stable key. Thread: the control side (the
    engine's lock); the audio thread only reads their arrays through a Graph."""

    def __init__(self, sample_rate: float) -> None:
        self.sample_rate = float(sample_rate)
        self.effects: dict[tuple[str, str], tuple[str, Effect]] = {}
        self.faders: dict[str, tuple[Gain, Pan]] = {}
        self.sends: dict[tuple[str, str], Gain] = {}
        self.lines: dict[tuple[str, str], F64] = {}
        self.fresh: set[int] = set()  # id() of objects made since the last compile
        self.instruments: dict[str, tuple[tuple[str, int, float], Synth | Sampler]] = {}
        self.bank: ChainBank | None = None

    def effect(self, strip: str, spec: EffectSpec) -> Effect:
        key = (strip, spec.id)
        have = self.effects.get(key)
        if have is not None and have[0] == spec.type:
            have[1].set(**spec.params)
            return have[1]
        fx = make_effect(spec.type, self.sample_rate, dict(spec.params))
        self.effects[key] = (spec.type, fx)
        self.fresh.add(id(fx))
        return fx

    def instrument(self, track: Track, sample: F32) -> Synth | Sampler:
        """The track's synth or sampler (a new sampler when its sample changed)."""
        inst = track.instrument or Instrument()
        key = (inst.kind, id(sample) if inst.kind == "sampler" else 0, float(inst.root))
        have = self.instruments.get(track.id)
        if have is not None and have[0] == key:
            have[1].set(**inst.params)
            return have[1]
        made: Synth | Sampler
        if inst.kind == "sampler":
            made = Sampler(self.sample_rate, sample, float(inst.root))
        else:
            made = Synth(self.sample_rate)
        made.set(**inst.params)
        self.instruments[track.id] = (key, made)
        return made

    def set_bank(self, ids: tuple[str, ...] | None, effects: list[list[Effect]]) -> ChainBank:
        """The bank for these tracks (the current one if its members are the same; else a
        new one that adopts the staying tracks' state). Tracks that left it get their own
        effects back, reset (their state is stale)."""
        old = self.bank
        if old is not None and ids == old.ids:
            return old
        kept = set(ids or ())
        if old is not None:
            for tid in old.ids:
                if tid not in kept:
                    for (sid, _), (_, fx) in self.effects.items():
                        if sid == tid:
                            fx.reset()
        if ids is None:
            self.bank = None
            return None  # type: ignore[return-value]
        longest = max((getattr(fxs[2], "max_time_ms", 4000.0) for fxs in effects),
                      default=4000.0)
        bank = ChainBank(ids, self.sample_rate, longest,
                         [(kernel_params(a), kernel_params(c), kernel_params(d),
                           kernel_params(g), kernel_params(p)) for a, c, d, g, p in effects])
        if old is not None:
            bank.adopt(old)
        self.bank = bank
        return bank

    def fader(self, strip: Strip, muted: bool) -> tuple[Gain, Pan]:
        have = self.faders.get(strip.id)
        if have is None:
            law = "constant_power" if isinstance(strip, Track) else "balance"
            have = (Gain(self.sample_rate, 2, gain_db=strip.gain_db, mute=int(muted)),
                    Pan(self.sample_rate, 2, pan=strip.pan, law=law))
            self.faders[strip.id] = have
            self.fresh.update((id(have[0]), id(have[1])))
        else:
            have[0].set(gain_db=strip.gain_db, mute=int(muted))
            have[1].set(pan=strip.pan)
        return have

    def send(self, src: str, bus: str, level_db: float, muted: bool) -> Gain:
        """A send's gain; ``muted`` for a pre-fader send of a muted strip (post-fader sends
        are after the fader's mute already)."""
        have = self.sends.get((src, bus))
        if have is None:
            have = Gain(self.sample_rate, 2, gain_db=level_db, mute=int(muted))
            self.sends[(src, bus)] = have
        else:
            have.set(gain_db=level_db, mute=int(muted))
        return have

    def line(self, src: str, dst: str, delay: int) -> F64:
        """A compensation delay line ``[write, delay, samples...]`` (kept while its delay is
        unchanged, so what it holds plays on through a swap)."""
        have = self.lines.get((src, dst))
        if have is None or int(have[1]) != delay:
            have = np.zeros(2 + 2 * max(delay, 1), dtype=np.float64)
            have[1] = delay
            self.lines[(src, dst)] = have
        return have

    def forget(self, keep_strips: set[str], keep_effects: set[tuple[str, str]]) -> None:
        """Drop the objects of strips and effects no longer in the project."""
        for key in [k for k in self.effects if k not in keep_effects]:
            del self.effects[key]
        for sid in [k for k in self.faders if k not in keep_strips]:
            del self.faders[sid]
        for key in [k for k in self.sends if k[0] not in keep_strips or k[1] not in keep_strips]:
            del self.sends[key]
        for key in [k for k in self.lines if k[0] not in keep_strips or k[1] not in keep_strips]:
            del self.lines[key]
        for sid in [k for k in self.instruments if k not in keep_strips]:
            del self.instruments[sid]
