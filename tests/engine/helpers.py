"""Builders shared by the engine tests: projects from a few lines, signals, renders."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dsp.effect import F32
from engine.engine import Engine
from engine.model import AudioClip, Bus, EffectSpec, Project, Send, Track
from engine.runner import render_offline

SR = 48000
BEAT = 24000  # samples per beat at 120 bpm, 48 kHz


def dc(seconds: float, value: float = 0.5) -> F32:
    return np.full((round(seconds * SR), 2), value, dtype=np.float32)


def sine(seconds: float, hz: float = 440.0, amp: float = 0.5, phase: float = 0.0) -> F32:
    t = np.arange(round(seconds * SR)) / SR
    x = amp * np.sin(2 * np.pi * hz * t + phase)
    return np.ascontiguousarray(np.repeat(x[:, None], 2, axis=1), dtype=np.float32)


def noise(seconds: float, amp: float = 0.25, seed: int = 1) -> F32:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal((round(seconds * SR), 2))).astype(np.float32)


def track(tid: str, asset: str | None = None, start: float = 0.0, length: float = 8.0,
          **kw: Any) -> Track:
    clips = [AudioClip(id=f"{tid}-clip", asset=asset, start=start, length=length)] if asset \
        else []
    return Track(id=tid, clips=clips, **kw)


def fx(eid: str, kind: str, **params: Any) -> EffectSpec:
    return EffectSpec(id=eid, type=kind, params=params)


def send(bus: str, level_db: float = 0.0, pre: bool = False) -> Send:
    return Send(bus=bus, level_db=level_db, pre_fader=pre)


def project(*tracks: Track, buses: tuple[Bus, ...] = (), assets: dict[str, str] | None = None,
            **kw: Any) -> Project:
    p = Project(tracks=list(tracks), buses=list(buses), **kw)
    p.assets = dict(assets or {})
    for t in tracks:
        for c in t.clips:
            p.assets.setdefault(c.asset, c.asset)
    return p


def engine(p: Project, data: dict[str, F32], *, play: bool = True) -> Engine:
    e = Engine(p, clip_data=data)
    if play:
        e.play()
    return e


def render(e: Engine, seconds: float, block: int = 128) -> F32:
    return render_offline(e, round(seconds * SR), block)


def max_jump(x: F32) -> float:
    """The largest sample-to-sample step of either channel (a click shows as a big one)."""
    return float(np.max(np.abs(np.diff(x.astype(np.float64), axis=0))))


def sine_step(hz: float, amp: float) -> float:
    """The largest step a clean sine of this frequency and amplitude takes per sample."""
    return 2.0 * amp * math.sin(math.pi * hz / SR)


def const_power(pan: float) -> tuple[float, float]:
    t = (pan + 1.0) * math.pi / 4.0
    return math.cos(t), math.sin(t)


def db(x: float) -> float:
    return 10.0 ** (x / 20.0)
