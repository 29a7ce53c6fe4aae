"""The project's JSON form: load (with validation), dump, read from a file.

``load_project(data)`` returns the project and a list of ``Problem`` (path, message). What
cannot be understood as a project at all (not an object, an unknown ``version``, a bad
sample rate, duplicate ids) raises ``ProjectError`` naming the field. A bad *part* is left
out or disabled and reported, so one broken effect does not take a session down:

* an unknown effect type, or an effect whose parameters cannot be used: the effect is
  dropped from its chain;
* a bad parameter value (NaN, a string where a number belongs): that parameter keeps its
  default;
* a bad fader value (NaN gain, pan outside -1..1): clamped, or the default when not a number;
* a clip with a negative or zero length, an unknown asset, or non-finite times: the clip is
  dropped (an asset that is named but whose file is missing stays: it plays as silence and
  the engine counts it);
* a send to a bus that does not exist, or one that would make a loop of buses: dropped;
* an automation lane whose target does not exist: dropped.

``strict=True`` raises on the first problem instead. Paths look like
``tracks[2].chain[0].params.threshold_db``. The format is docs/project.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsp.params import ParamError
from engine.effects import UnknownEffect, effect_type
from engine.model import (
    INSTRUMENT_KINDS,
    SCHEMA_VERSION,
    TRACK_KINDS,
    AudioClip,
    AutomationLane,
    Breakpoint,
    Bus,
    ControlChange,
    EffectSpec,
    Instrument,
    Loop,
    MidiClip,
    Note,
    Project,
    Send,
    Strip,
    TempoPoint,
    Track,
)

SAMPLE_RATES = (44100, 48000, 96000)
MAX_BEAT = 1e6


class ProjectError(ValueError):
    """JSON that is not a project; ``path`` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class _Reader:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        if self.strict:
            raise ProjectError(path, message)
        self.problems.append(Problem(path, message))

    def number(self, obj: dict[str, Any], key: str, path: str, default: float,
               lo: float = -math.inf, hi: float = math.inf) -> float:
        value = obj.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            self.problem(f"{path}.{key}", f"{value!r} is not a finite number; using {default}")
            return default
        if not lo <= value <= hi:
            clamped = min(max(float(value), lo), hi)
            self.problem(f"{path}.{key}", f"{value!r} is outside {lo:g}..{hi:g}; "
                                          f"using {clamped:g}")
            return clamped
        return float(value)

    def flag(self, obj: dict[str, Any], key: str, path: str, default: bool = False) -> bool:
        value = obj.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{path}.{key}", f"{value!r} is not true or false; using {default}")
            return default
        return value

    def text(self, obj: dict[str, Any], key: str, path: str, default: str = "") -> str:
        value = obj.get(key, default)
        if not isinstance(value, str):
            self.problem(f"{path}.{key}", f"{value!r} is not a string")
            return default
        return value

    def items(self, obj: dict[str, Any], key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
        """The objects of a list field, with their paths (non-objects reported, skipped)."""
        value = obj.get(key, [])
        if not isinstance(value, list):
            self.problem(f"{path}.{key}", "is not a list")
            return []
        out = []
        for k, item in enumerate(value):
            p = f"{path}.{key}[{k}]" if path else f"{key}[{k}]"
            if isinstance(item, dict):
                out.append((p, item))
            else:
                self.problem(p, f"{item!r} is not an object")
        return out


def _ident(obj: dict[str, Any], path: str) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or not value or len(value) > 128:
        raise ProjectError(f"{path}.id", f"{value!r} is not an id (a non-empty string)")
    return value


def _effect(r: _Reader, obj: dict[str, Any], path: str) -> EffectSpec | None:
    eid = _ident(obj, path)
    try:
        kind = effect_type(obj.get("type"))
    except UnknownEffect as exc:
        r.problem(f"{path}.type", f"{exc}; the effect is left out")
        return None
    raw = obj.get("params", {})
    params: dict[str, float | str] = {}
    if not isinstance(raw, dict):
        r.problem(f"{path}.params", "is not an object; using the defaults")
        raw = {}
    specs = {p.name: p for p in kind.cls.PARAMS}
    for name, value in raw.items():
        p = specs.get(name)
        if p is None:
            r.problem(f"{path}.params.{name}", f"{kind.name} has no parameter {name!r}; "
                                               f"known: {', '.join(specs)}")
            continue
        try:
            coerced = p.coerce(value)
        except ParamError as exc:
            r.problem(f"{path}.params.{name}", f"{exc}; using the default")
            continue
        if isinstance(value, int | float) and not isinstance(value, bool) and coerced != value:
            r.problem(f"{path}.params.{name}", f"{value!r} is outside {p.lo:g}..{p.hi:g}; "
                                               f"using {coerced:g}")
        params[name] = p.describe(coerced)
    return EffectSpec(eid, kind.name, params, r.flag(obj, "enabled", path, True))


def _strip_fields(r: _Reader, obj: dict[str, Any], path: str, strip: Strip) -> None:
    strip.name = r.text(obj, "name", path)
    strip.gain_db = r.number(obj, "gain_db", path, 0.0, -100.0, 24.0)
    strip.pan = r.number(obj, "pan", path, 0.0, -1.0, 1.0)
    strip.mute = r.flag(obj, "mute", path)
    ids: set[str] = set()
    for p, item in r.items(obj, "chain", path):
        fx = _effect(r, item, p)
        if fx is None:
            continue
        if fx.id in ids:
            raise ProjectError(f"{p}.id", f"{fx.id!r} appears twice in this chain")
        ids.add(fx.id)
        strip.chain.append(fx)
    for p, item in r.items(obj, "sends", path):
        bus = item.get("bus")
        if not isinstance(bus, str):
            r.problem(f"{p}.bus", f"{bus!r} is not a bus id; the send is left out")
            continue
        strip.sends.append(Send(bus, r.number(item, "level_db", p, 0.0, -100.0, 24.0),
                                r.flag(item, "pre_fader", p)))
    for p, item in r.items(obj, "automation", path):
        target = item.get("target")
        if not isinstance(target, str):
            r.problem(f"{p}.target", f"{target!r} is not a target; the lane is left out")
            continue
        lane = AutomationLane(target)
        for pp, point in r.items(item, "points", p):
            beat = r.number(point, "beat", pp, math.nan)
            value = r.number(point, "value", pp, math.nan)
            if math.isnan(beat) or math.isnan(value) or beat < 0:
                r.problem(pp, "a point needs a beat >= 0 and a value; left out")
                continue
            lane.points.append(Breakpoint(beat, value, r.number(point, "curve", pp, 0.0,
                                                                -8.0, 8.0)))
        strip.automation.append(lane)


def _audio_clip(r: _Reader, obj: dict[str, Any], path: str,
                assets: dict[str, str]) -> AudioClip | None:
    cid = _ident(obj, path)
    asset = obj.get("asset")
    if not isinstance(asset, str) or asset not in assets:
        r.problem(f"{path}.asset", f"{asset!r} is not one of the project's assets; "
                                   "the clip is left out")
        return None
    start = r.number(obj, "start", path, math.nan)
    length = r.number(obj, "length", path, math.nan)
    if math.isnan(start) or start < 0 or start > MAX_BEAT:
        r.problem(f"{path}.start", f"{obj.get('start')!r} is not a beat in 0..{MAX_BEAT:g}; "
                                   "the clip is left out")
        return None
    if math.isnan(length) or length <= 0 or length > MAX_BEAT:
        r.problem(f"{path}.length", f"{obj.get('length')!r} is not a length in beats > 0; "
                                    "the clip is left out")
        return None
    return AudioClip(cid, asset, start, length,
                     offset_s=r.number(obj, "offset_s", path, 0.0, 0.0, 86400.0),
                     gain_db=r.number(obj, "gain_db", path, 0.0, -100.0, 24.0),
                     fade_in_s=r.number(obj, "fade_in_s", path, 0.0, 0.0, 600.0),
                     fade_out_s=r.number(obj, "fade_out_s", path, 0.0, 0.0, 600.0))


def _midi_clip(r: _Reader, obj: dict[str, Any], path: str) -> MidiClip | None:
    cid = _ident(obj, path)
    start = r.number(obj, "start", path, math.nan)
    length = r.number(obj, "length", path, math.nan)
    if math.isnan(start) or start < 0 or math.isnan(length) or length <= 0:
        r.problem(path, "a MIDI clip needs start >= 0 and length > 0 (beats); left out")
        return None
    clip = MidiClip(cid, start, length)
    for p, n in r.items(obj, "notes", path):
        pitch = n.get("pitch")
        vel = n.get("velocity", 100)
        nstart = r.number(n, "start", p, math.nan)
        nlen = r.number(n, "length", p, math.nan)
        if (not isinstance(pitch, int) or isinstance(pitch, bool) or not 0 <= pitch <= 127
                or not isinstance(vel, int) or isinstance(vel, bool) or not 1 <= vel <= 127
                or math.isnan(nstart) or nstart < 0 or math.isnan(nlen) or nlen <= 0):
            r.problem(p, "a note needs pitch 0..127, velocity 1..127, start >= 0 and "
                         "length > 0; left out")
            continue
        clip.notes.append(Note(pitch, nstart, nlen, vel))
    for p, c in r.items(obj, "controls", path):
        beat = r.number(c, "beat", p, math.nan)
        ctl, val = c.get("controller"), c.get("value")
        if (math.isnan(beat) or beat < 0 or not isinstance(ctl, int) or not 0 <= ctl <= 127
                or not isinstance(val, int) or not 0 <= val <= 127):
            r.problem(p, "a control change needs beat >= 0, controller and value 0..127")
            continue
        clip.controls.append(ControlChange(beat, ctl, val))
    return clip


def _track(r: _Reader, obj: dict[str, Any], path: str, assets: dict[str, str]) -> Track:
    track = Track(id=_ident(obj, path))
    kind = obj.get("kind", "audio")
    if kind not in TRACK_KINDS:
        raise ProjectError(f"{path}.kind", f"{kind!r} is not one of {', '.join(TRACK_KINDS)}")
    track.kind = kind
    _strip_fields(r, obj, path, track)
    track.color = r.text(obj, "color", path)
    track.solo = r.flag(obj, "solo", path)
    for p, item in r.items(obj, "clips", path):
        clip = _audio_clip(r, item, p, assets)
        if clip is not None:
            track.clips.append(clip)
    for p, item in r.items(obj, "midi", path):
        midi = _midi_clip(r, item, p)
        if midi is not None:
            track.midi.append(midi)
    inst = obj.get("instrument")
    if isinstance(inst, dict):
        ikind = inst.get("kind", "synth")
        if ikind not in INSTRUMENT_KINDS:
            r.problem(f"{path}.instrument.kind", f"{ikind!r} is not one of "
                                                 f"{', '.join(INSTRUMENT_KINDS)}; using synth")
            ikind = "synth"
        params = inst.get("params", {})
        asset = inst.get("asset")
        track.instrument = Instrument(
            ikind, dict(params) if isinstance(params, dict) else {},
            asset if isinstance(asset, str) else None,
            int(r.number(inst, "root", f"{path}.instrument", 60.0, 0.0, 127.0)))
    elif inst is not None:
        r.problem(f"{path}.instrument", "is not an object; left out")
    port = obj.get("input")
    track.input = port if isinstance(port, str) else None
    return track


def load_project(data: object, *, strict: bool = False) -> tuple[Project, list[Problem]]:
    """A Project from its JSON form (see the module doc for what is reported or raised)."""
    if not isinstance(data, dict):
        raise ProjectError("", "a project is a JSON object")
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise ProjectError("version", f"{version!r} is not a project version this engine "
                                      f"reads (it reads {SCHEMA_VERSION})")
    r = _Reader(strict)
    sr = data.get("sample_rate", 48000)
    if sr not in SAMPLE_RATES or isinstance(sr, bool):
        raise ProjectError("sample_rate", f"{sr!r} is not one of {SAMPLE_RATES}")
    project = Project(name=r.text(data, "name", ""), sample_rate=int(sr))
    tempo = [TempoPoint(r.number(t, "beat", p, 0.0, 0.0, MAX_BEAT),
                        r.number(t, "bpm", p, 120.0, 20.0, 400.0))
             for p, t in r.items(data, "tempo", "")]
    project.tempo = sorted(tempo, key=lambda t: t.beat) or [TempoPoint(0.0, 120.0)]
    sig = data.get("time_signature", [4, 4])
    if (not isinstance(sig, list) or len(sig) != 2 or not all(isinstance(v, int) for v in sig)
            or not 1 <= sig[0] <= 32 or sig[1] not in (1, 2, 4, 8, 16, 32)):
        r.problem("time_signature", f"{sig!r} is not [beats, note value]; using 4/4")
        sig = [4, 4]
    project.time_signature = (sig[0], sig[1])
    loop = data.get("loop", {})
    if isinstance(loop, dict):
        start = r.number(loop, "start", "loop", 0.0, 0.0, MAX_BEAT)
        end = r.number(loop, "end", "loop", 16.0, 0.0, MAX_BEAT)
        enabled = r.flag(loop, "enabled", "loop")
        if end <= start:
            r.problem("loop", f"end {end:g} is not after start {start:g}; loop off")
            enabled, end = False, start + 4.0
        project.loop = Loop(enabled, start, end)
    assets = data.get("assets", {})
    if not isinstance(assets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in assets.items()):
        raise ProjectError("assets", "is not an object of asset id -> file path")
    project.assets = dict(assets)
    seen: set[str] = {"master"}
    for p, item in r.items(data, "tracks", ""):
        track = _track(r, item, p, project.assets)
        if track.id in seen:
            raise ProjectError(f"{p}.id", f"{track.id!r} is used twice")
        seen.add(track.id)
        project.tracks.append(track)
    for p, item in r.items(data, "buses", ""):
        bus = Bus(id=_ident(item, p))
        if bus.id in seen:
            raise ProjectError(f"{p}.id", f"{bus.id!r} is used twice")
        seen.add(bus.id)
        _strip_fields(r, item, p, bus)
        project.buses.append(bus)
    master = data.get("master", {})
    if isinstance(master, dict):
        _strip_fields(r, master, "master", project.master)
        project.master.sends.clear()  # the master sends nowhere
    _check_routing(r, project)
    _check_automation(r, project)
    return project, r.problems


def _check_routing(r: _Reader, project: Project) -> None:
    buses = {b.id for b in project.buses}
    strips: list[tuple[str, Strip]] = [
        *((f"tracks[{k}]", t) for k, t in enumerate(project.tracks)),
        *((f"buses[{k}]", b) for k, b in enumerate(project.buses))]
    for path, strip in strips:
        kept = []
        for k, send in enumerate(strip.sends):
            if send.bus not in buses or send.bus == strip.id:
                r.problem(f"{path}.sends[{k}].bus", f"{send.bus!r} is not a bus; left out")
            elif _reaches(project, send.bus, strip.id):
                r.problem(f"{path}.sends[{k}].bus", f"{send.bus!r} would feed back into "
                                                    f"{strip.id!r}; left out")
            else:
                kept.append(send)
        strip.sends = kept


def _reaches(project: Project, start: str, target: str) -> bool:
    """Whether signal from bus ``start`` reaches ``target`` through bus sends."""
    todo, seen = [start], set()
    while todo:
        sid = todo.pop()
        if sid == target:
            return True
        if sid in seen:
            continue
        seen.add(sid)
        bus = next((b for b in project.buses if b.id == sid), None)
        if bus is not None:
            todo.extend(s.bus for s in bus.sends)
    return False


def _check_automation(r: _Reader, project: Project) -> None:
    for path, strip in [*((f"tracks[{k}]", t) for k, t in enumerate(project.tracks)),
                        *((f"buses[{k}]", b) for k, b in enumerate(project.buses)),
                        ("master", project.master)]:
        kept = []
        for k, lane in enumerate(strip.automation):
            if lane.target in ("gain_db", "pan"):
                kept.append(lane)
                continue
            effect_id, _, name = lane.target.partition(".")
            spec = next((e for e in strip.chain if e.id == effect_id), None)
            if spec is None or name not in {p.name for p in effect_type(spec.type).cls.PARAMS}:
                r.problem(f"{path}.automation[{k}].target",
                          f"{lane.target!r} names no parameter of this strip; left out")
                continue
            kept.append(lane)
        strip.automation = kept


def _strip_json(strip: Strip) -> dict[str, Any]:
    return {
        "id": strip.id, "name": strip.name, "gain_db": strip.gain_db, "pan": strip.pan,
        "mute": strip.mute,
        "chain": [{"id": e.id, "type": e.type, "params": dict(e.params), "enabled": e.enabled}
                  for e in strip.chain],
        "sends": [{"bus": s.bus, "level_db": s.level_db, "pre_fader": s.pre_fader}
                  for s in strip.sends],
        "automation": [{"target": a.target,
                        "points": [{"beat": p.beat, "value": p.value, "curve": p.curve}
                                   for p in a.points]} for a in strip.automation],
    }


def dump_project(project: Project) -> dict[str, Any]:
    """The JSON form (``load_project(dump_project(p))`` gives ``p`` back)."""
    tracks = []
    for t in project.tracks:
        d = _strip_json(t)
        d.update({
            "kind": t.kind, "color": t.color, "solo": t.solo,
            "clips": [{"id": c.id, "asset": c.asset, "start": c.start, "length": c.length,
                       "offset_s": c.offset_s, "gain_db": c.gain_db, "fade_in_s": c.fade_in_s,
                       "fade_out_s": c.fade_out_s} for c in t.clips],
            "midi": [{"id": m.id, "start": m.start, "length": m.length,
                      "notes": [{"pitch": n.pitch, "start": n.start, "length": n.length,
                                 "velocity": n.velocity} for n in m.notes],
                      "controls": [{"beat": c.beat, "controller": c.controller,
                                    "value": c.value} for c in m.controls]} for m in t.midi],
        })
        if t.instrument is not None:
            d["instrument"] = {"kind": t.instrument.kind, "params": dict(t.instrument.params),
                               "asset": t.instrument.asset, "root": t.instrument.root}
        if t.input is not None:
            d["input"] = t.input
        tracks.append(d)
    master = _strip_json(project.master)
    del master["sends"]
    return {
        "version": SCHEMA_VERSION, "name": project.name, "sample_rate": project.sample_rate,
        "tempo": [{"beat": t.beat, "bpm": t.bpm} for t in project.tempo],
        "time_signature": list(project.time_signature),
        "loop": {"enabled": project.loop.enabled, "start": project.loop.start,
                 "end": project.loop.end},
        "assets": dict(project.assets), "tracks": tracks,
        "buses": [_strip_json(b) for b in project.buses], "master": master,
    }


def read_project(path: str | Path, *, strict: bool = False) -> tuple[Project, list[Problem]]:
    """Load a project file; asset paths are taken relative to the file's folder."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProjectError("", f"cannot read {p}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError("", f"{p} is not JSON: {exc}") from None
    project, problems = load_project(data, strict=strict)
    project.assets = {k: str((p.parent / v).resolve()) for k, v in project.assets.items()}
    return project, problems
