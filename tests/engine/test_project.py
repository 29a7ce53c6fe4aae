"""The project's JSON form: round trips, and bad input rejected or disabled with the field
named, never a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.engine import Engine
from engine.model import SCHEMA_VERSION
from engine.project import ProjectError, dump_project, load_project, read_project
from engine.runner import render_offline


def good() -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION, "name": "demo", "sample_rate": 48000,
        "tempo": [{"beat": 0, "bpm": 124}], "time_signature": [4, 4],
        "loop": {"enabled": True, "start": 0, "end": 8},
        "assets": {"drums": "drums.wav"},
        "tracks": [
            {"id": "t1", "name": "Drums", "kind": "audio", "gain_db": -3, "pan": 0.1,
             "chain": [{"id": "eq", "type": "eq", "params": {"b0_gain_db": 2.5}},
                       {"id": "c", "type": "compressor", "params": {"detector": "rms"}}],
             "sends": [{"bus": "verb", "level_db": -12, "pre_fader": False}],
             "clips": [{"id": "c1", "asset": "drums", "start": 0, "length": 8,
                        "fade_in_s": 0.01}],
             "automation": [{"target": "c.threshold_db",
                             "points": [{"beat": 0, "value": -20}, {"beat": 4, "value": -10,
                                                                   "curve": 1}]}]},
            {"id": "t2", "kind": "instrument", "instrument": {"kind": "synth",
                                                              "params": {"cutoff_hz": 900}},
             "midi": [{"id": "m", "start": 0, "length": 4,
                       "notes": [{"pitch": 60, "start": 0, "length": 1, "velocity": 90}],
                       "controls": [{"beat": 1, "controller": 1, "value": 64}]}]},
        ],
        "buses": [{"id": "verb", "chain": [{"id": "r", "type": "reverb"}]}],
        "master": {"gain_db": -1, "chain": [{"id": "lim", "type": "limiter"}]},
    }


def test_a_project_round_trips_through_json() -> None:
    project, problems = load_project(good())
    assert problems == []
    data = dump_project(project)
    again, problems = load_project(json.loads(json.dumps(data)))
    assert problems == [] and dump_project(again) == data
    assert data["tracks"][0]["chain"][1]["params"] == {"detector": "rms"}


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.pop("version"), "version"),
    (lambda d: d.update(sample_rate=12345), "sample_rate"),
    (lambda d: d["tracks"][1].update(id="t1"), "tracks[1].id"),
    (lambda d: d["buses"][0].update(id="t2"), "buses[0].id"),
    (lambda d: d["tracks"][0].update(kind="video"), "tracks[0].kind"),
    (lambda d: d["tracks"][0].update(id=""), "tracks[0].id"),
    (lambda d: d.update(assets=[1, 2]), "assets"),
])
def test_what_is_not_a_project_is_rejected_naming_the_field(mutate: Any, path: str) -> None:
    data = good()
    mutate(data)
    with pytest.raises(ProjectError) as err:
        load_project(data)
    assert err.value.path == path
    assert path in str(err.value)


@pytest.mark.parametrize(("mutate", "path", "check"), [
    (lambda d: d["tracks"][0]["chain"].append({"id": "x", "type": "flux-capacitor"}),
     "tracks[0].chain[2].type", lambda p: [e.id for e in p.tracks[0].chain] == ["eq", "c"]),
    (lambda d: d["tracks"][0].update(gain_db=math.nan), "tracks[0].gain_db",
     lambda p: p.tracks[0].gain_db == 0.0),
    (lambda d: d["tracks"][0].update(pan=7), "tracks[0].pan", lambda p: p.tracks[0].pan == 1.0),
    (lambda d: d["tracks"][0]["chain"][0]["params"].update(b0_gain_db="loud"),
     "tracks[0].chain[0].params.b0_gain_db",
     lambda p: "b0_gain_db" not in p.tracks[0].chain[0].params),
    (lambda d: d["tracks"][0]["chain"][0]["params"].update(b0_freq_hz=math.inf),
     "tracks[0].chain[0].params.b0_freq_hz",
     lambda p: "b0_freq_hz" not in p.tracks[0].chain[0].params),
    (lambda d: d["tracks"][0]["clips"][0].update(length=-2), "tracks[0].clips[0].length",
     lambda p: p.tracks[0].clips == []),
    (lambda d: d["tracks"][0]["clips"][0].update(asset="nope"), "tracks[0].clips[0].asset",
     lambda p: p.tracks[0].clips == []),
    (lambda d: d["tracks"][0]["sends"][0].update(bus="nowhere"), "tracks[0].sends[0].bus",
     lambda p: p.tracks[0].sends == []),
    (lambda d: d["buses"].append({"id": "b2", "sends": [{"bus": "verb"}]}) or d["buses"][0]
     .update(sends=[{"bus": "b2"}]), "buses[0].sends[0].bus",
     lambda p: p.buses[0].sends == []),
    (lambda d: d["tracks"][0]["automation"][0].update(target="nope.x"),
     "tracks[0].automation[0].target", lambda p: p.tracks[0].automation == []),
    (lambda d: d["tracks"][1]["midi"][0]["notes"][0].update(pitch=300),
     "tracks[1].midi[0].notes[0]", lambda p: p.tracks[1].midi[0].notes == []),
    (lambda d: d["loop"].update(end=-1), "loop.end", lambda p: True),
])
def test_a_bad_part_is_left_out_and_reported_and_the_rest_plays(
        mutate: Any, path: str, check: Any) -> None:
    data = good()
    mutate(data)
    project, problems = load_project(data)
    assert any(p.path == path for p in problems), problems
    assert check(project)
    with pytest.raises(ProjectError) as err:
        load_project(data, strict=True)
    assert err.value.path == path or any(p.path == err.value.path for p in problems)
    engine = Engine(project, clip_data={"drums": np.zeros((48000, 2), dtype=np.float32)})
    engine.play()
    y = render_offline(engine, 4800, 128)
    assert np.isfinite(y).all()


def test_read_project_resolves_assets_and_reports_bad_files(tmp_path: Path) -> None:
    f = tmp_path / "song.json"
    f.write_text(json.dumps(good()))
    project, _ = read_project(f)
    assert project.assets["drums"] == str(tmp_path / "drums.wav")
    f.write_text("{not json")
    with pytest.raises(ProjectError, match="not JSON"):
        read_project(f)
    with pytest.raises(ProjectError, match="cannot read"):
        read_project(tmp_path / "missing.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                             max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["tracks", "buses", "master", "loop", "tempo", "time_signature",
                              "name", "assets"]),
       value=json_values, track_field=st.sampled_from(
           ["chain", "sends", "clips", "midi", "automation", "gain_db", "instrument", "kind"]))
def test_any_json_either_loads_or_raises_project_error(field: str, value: Any,
                                                       track_field: str) -> None:
    data = good()
    data[field] = value
    data2 = good()
    data2["tracks"][0][track_field] = value
    for d in (data, data2):
        try:
            project, _ = load_project(d)
        except ProjectError:
            continue
        Engine(project)  # and what loads, compiles
