"""Named effect parameters: range, unit, default, and validation of values.

Out-of-range numbers are clamped into the documented range (a knob turned past
its end stops at the end). Values that are not finite numbers (NaN, inf,
strings where a number belongs) and unknown choices are rejected with
``ParamError`` naming the parameter, the value and the valid range: they never
reach a kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class ParamError(ValueError):
    """A parameter value that cannot be used (non-finite, wrong type, unknown name)."""


@dataclass(frozen=True)
class Param:
    name: str
    unit: str
    lo: float
    hi: float
    default: float
    doc: str = ""
    choices: tuple[str, ...] = ()  # for switch parameters; the value is the index

    def coerce(self, value: object) -> float:
        """The value to use, clamped into ``[lo, hi]``; ParamError when unusable."""
        if self.choices:
            if isinstance(value, str):
                if value not in self.choices:
                    raise ParamError(
                        f"{self.name}: {value!r} is not one of {', '.join(self.choices)}"
                    )
                return float(self.choices.index(value))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParamError(f"{self.name}: expected one of {', '.join(self.choices)}")
            count = len(self.choices)
            if not math.isfinite(value) or int(value) != value or not 0 <= value < count:
                raise ParamError(f"{self.name}: index {value!r} out of 0..{len(self.choices) - 1}")
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"{self.name}: expected a number in {self.unit}, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ParamError(
                f"{self.name}: {number} is not a finite number "
                f"(range {self.lo:g}..{self.hi:g} {self.unit})"
            )
        return min(max(number, self.lo), self.hi)

    def describe(self, value: float) -> str | float:
        return self.choices[int(value)] if self.choices else value


def find(params: tuple[Param, ...], name: str) -> int:
    for i, p in enumerate(params):
        if p.name == name:
            return i
    raise ParamError(f"unknown parameter {name!r}; known: {', '.join(p.name for p in params)}")
