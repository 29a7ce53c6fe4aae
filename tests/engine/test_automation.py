"""Automation lanes: what is heard follows the breakpoints within one block."""

from __future__ import annotations

import itertools
import math

import numpy as np

from engine.model import AutomationLane, Breakpoint
from tests.engine.helpers import BEAT, dc, engine, fx, project, render, track

BLOCK = 128


def lane_value(points: list[tuple[float, float, float]], sample: float) -> float:
    """The lane's value at a sample (beats at 120 bpm, 48 kHz): linear or curved segments."""
    beat = sample / BEAT
    if beat <= points[0][0]:
        return points[0][1]
    for (b0, v0, c0), (b1, v1, _) in itertools.pairwise(points):
        if beat < b1:
            u = (beat - b0) / (b1 - b0)
            return v0 + (v1 - v0) * (u ** (2.0 ** c0) if c0 else u)
    return points[-1][1]


def check_follows(heard: np.ndarray, points: list[tuple[float, float, float]],
                  tol: float) -> None:
    """Each block's last sample lies within the lane's range over one block either side."""
    for end in range(BLOCK, heard.size, BLOCK):
        t = end - 1
        window = [lane_value(points, s) for s in range(t - BLOCK, t + BLOCK + 1, 8)]
        assert min(window) - tol <= heard[t] <= max(window) + tol, (
            t, heard[t], min(window), max(window))


def test_fader_automation_follows_its_breakpoints_within_one_block() -> None:
    points = [(0.0, -40.0, 0.0), (2.0, 0.0, 0.0), (3.0, -20.0, 1.5), (4.0, -6.0, 0.0)]
    t = track("t", "a", length=6.0)
    t.automation.append(AutomationLane("gain_db", [Breakpoint(*p) for p in points]))
    y = render(engine(project(t), {"a": dc(3.0, 0.5)}), 2.5)[:, 0]
    heard_db = 20 * np.log10(np.maximum(y, 1e-12) / (0.5 * math.cos(math.pi / 4)))
    check_follows(heard_db, points, tol=0.25)


def test_effect_parameter_automation_reaches_the_kernel() -> None:
    """A gain effect's gain_db automated in steps: the output level moves to each step."""
    points = [(0.0, 0.0, 0.0), (1.0, -12.0, 0.0), (2.0, -12.0, 0.0), (2.5, 6.0, 0.0)]
    t = track("t", "a", length=6.0, chain=[fx("g", "gain")])
    t.automation.append(AutomationLane("g.gain_db", [Breakpoint(*p) for p in points]))
    y = render(engine(project(t), {"a": dc(3.0, 0.25)}), 1.5)[:, 0]
    heard_db = 20 * np.log10(np.maximum(y, 1e-12) / (0.25 * math.cos(math.pi / 4)))
    check_follows(heard_db, points, tol=0.25)
    assert heard_db[int(1.6 * BEAT)] < -11.5 and heard_db[-1] > 5.5
