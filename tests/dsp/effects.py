"""Every Effect subclass in dsp/, found by walking the package (no list to forget to update)."""

from __future__ import annotations

import importlib
import pkgutil

import dsp
from dsp.effect import Effect


def all_effects() -> list[type[Effect]]:
    for info in pkgutil.walk_packages(dsp.__path__, "dsp."):
        importlib.import_module(info.name)
    found: list[type[Effect]] = []
    stack = list(Effect.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.PARAMS and cls.run is not Effect.run and not cls.__name__.startswith("_"):
            found.append(cls)
    return sorted(set(found), key=lambda c: c.__name__)


def make(cls: type[Effect], channels: int = 2, sr: float = 48000.0) -> Effect:
    return cls(sr, channels, **cls.EXAMPLE)
