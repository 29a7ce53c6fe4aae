"""The tempo map: beats to seconds and samples and back, bars and beats for display.

The tempo is piecewise constant: each ``TempoPoint`` sets the bpm from its beat on (the first
point is taken to start at beat 0). Positions in samples are rounded to the nearest sample
(``round_half_even`` of Python's ``round``), so a clip at beat b starts at exactly
``TempoMap.sample(b)`` whatever block the engine is rendering.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from engine.model import TempoPoint


@dataclass(frozen=True)
class Position:
    """A transport position for people: 1-based bar and beat, and the tick within the beat
    (960 per beat)."""

    bar: int
    beat: int
    tick: int

    def __str__(self) -> str:
        return f"{self.bar}.{self.beat}.{self.tick:03d}"


class TempoMap:
    def __init__(self, points: list[TempoPoint], sample_rate: float,
                 time_signature: tuple[int, int] = (4, 4)) -> None:
        pts = sorted(points, key=lambda p: p.beat) or [TempoPoint(0.0, 120.0)]
        self.sample_rate = float(sample_rate)
        self.time_signature = time_signature
        self._beats = [0.0] + [p.beat for p in pts[1:]]
        self._bpm = [p.bpm for p in pts]
        self._seconds = [0.0]
        for k in range(1, len(pts)):
            span = self._beats[k] - self._beats[k - 1]
            self._seconds.append(self._seconds[-1] + span * 60.0 / self._bpm[k - 1])

    def bpm_at(self, beat: float) -> float:
        return self._bpm[max(bisect.bisect_right(self._beats, beat) - 1, 0)]

    def seconds(self, beat: float) -> float:
        k = max(bisect.bisect_right(self._beats, beat) - 1, 0)
        return self._seconds[k] + (beat - self._beats[k]) * 60.0 / self._bpm[k]

    def beat(self, seconds: float) -> float:
        k = max(bisect.bisect_right(self._seconds, seconds) - 1, 0)
        return self._beats[k] + (seconds - self._seconds[k]) * self._bpm[k] / 60.0

    def sample(self, beat: float) -> int:
        """The sample where ``beat`` falls (rounded to the nearest)."""
        return round(self.seconds(beat) * self.sample_rate)

    def samples(self, start_beat: float, length_beats: float) -> int:
        """Length in samples of a span, as the difference of its rounded ends (so adjacent
        spans tile the timeline without gaps or overlaps)."""
        return self.sample(start_beat + length_beats) - self.sample(start_beat)

    def beat_at_sample(self, sample: float) -> float:
        return self.beat(sample / self.sample_rate)

    def position(self, sample: float) -> Position:
        """Bars and beats of a sample position, in the project's time signature (beats are
        quarter notes; a bar of n/d has n * 4/d of them)."""
        num, den = self.time_signature
        quarters_per_bar = num * 4.0 / den
        beats = max(self.beat_at_sample(sample), 0.0)
        bar = int(beats // quarters_per_bar)
        within = beats - bar * quarters_per_bar
        unit = 4.0 / den  # quarter notes per counted beat
        beat = int(within // unit)
        tick = round((within - beat * unit) / unit * 960.0)
        if tick >= 960:
            beat, tick = beat + 1, 0
        if beat >= num:
            bar, beat = bar + 1, 0
        return Position(bar + 1, beat + 1, tick)
