"""``retoone analyze``, run as a real process on generated tracks written to WAV, FLAC and
OGG files, next to a truncated file, a non-audio file and a missing one."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from dsp.analysis.key import parse_key
from tests.dsp.testset import Track, make_track

RETOONE = Path(sys.executable).with_name("retoone")
TIMEOUT_S = 300.0
# Tracks of the generated set (tests/dsp/testset.py) whose tempo and key are known.
HOUSE, ROCK, HIPHOP = 10, 16, 34  # Bb major 123 BPM, E minor 139 BPM, Bb major 91.7 BPM


def retoone(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETOONE_")}
    env["HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "120"
    return subprocess.run([str(RETOONE), *args], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def tracks() -> dict[int, Track]:
    return {i: make_track(i) for i in (HOUSE, ROCK, HIPHOP)}


@pytest.fixture
def files(tmp_path: Path, tracks: dict[int, Track]) -> dict[str, Path]:
    paths = {
        "wav": tmp_path / "house.wav",
        "flac": tmp_path / "rock.flac",
        "ogg": tmp_path / "hiphop.ogg",
        "truncated": tmp_path / "truncated.wav",
        "junk": tmp_path / "notes.wav",
        "missing": tmp_path / "missing.flac",
    }
    house, rock, hiphop = tracks[HOUSE], tracks[ROCK], tracks[HIPHOP]
    sf.write(paths["wav"], house.audio, int(house.sr), subtype="PCM_16")
    sf.write(paths["flac"], rock.audio, int(rock.sr), subtype="PCM_24")
    sf.write(paths["ogg"], hiphop.audio[: int(30 * hiphop.sr)], int(hiphop.sr), format="OGG")
    whole = paths["wav"].read_bytes()
    paths["truncated"].write_bytes(whole[: len(whole) // 3])  # a download cut short
    paths["junk"].write_text("these are not the samples you are looking for\n" * 20)
    return paths


def check(obj: dict[str, Any], track: Track, seconds: float | None = None) -> None:
    assert set(obj) == {"file", "duration_s", "bpm", "bpm_confidence", "beats", "downbeats",
                        "key", "camelot", "lufs"}
    assert obj["duration_s"] == pytest.approx(seconds or track.duration_s, abs=1e-3)
    assert abs(obj["bpm"] / track.bpm - 1.0) < 0.04, (obj["bpm"], track.bpm)
    assert 0.0 <= obj["bpm_confidence"] <= 1.0
    assert parse_key(obj["key"]) == (track.tonic, track.minor), (obj["key"], track.key)
    beats = np.array(obj["beats"])
    truth = track.beats[track.beats < (seconds or track.duration_s)]
    hits = sum(np.min(np.abs(truth - b)) <= 0.07 for b in beats)
    assert hits >= 0.9 * truth.size and beats.size <= 1.1 * truth.size
    assert set(obj["downbeats"]) <= set(obj["beats"]) and len(obj["downbeats"]) > 5
    assert isinstance(obj["lufs"], float) and -40.0 < obj["lufs"] < 0.0


def test_analyze_json(tmp_path: Path, files: dict[str, Path],
                      tracks: dict[int, Track]) -> None:
    order = ["wav", "truncated", "flac", "junk", "ogg", "missing"]
    run = retoone(tmp_path, "analyze", *(str(files[k]) for k in order), "--json")
    assert run.returncode == 1, run.stderr  # some files failed
    assert "Traceback" not in run.stderr
    out = json.loads(run.stdout)
    assert [o["file"] for o in out] == [str(files[k]) for k in order]
    by = dict(zip(order, out, strict=True))
    check(by["wav"], tracks[HOUSE])
    check(by["flac"], tracks[ROCK])
    check(by["ogg"], tracks[HIPHOP], seconds=30.0)
    assert by["wav"]["camelot"] == "6B" and by["flac"]["camelot"] == "9A"
    for name, words in (("truncated", "truncated"), ("junk", "unreadable"),
                        ("missing", "no such file")):
        assert set(by[name]) == {"file", "error"}, by[name]
        assert words in by[name]["error"], by[name]
    assert "3 of 6 file(s) failed" in " ".join(run.stderr.split())


def test_analyze_table(tmp_path: Path, files: dict[str, Path]) -> None:
    run = retoone(tmp_path, "analyze", str(files["wav"]), str(files["flac"]))
    assert run.returncode == 0, run.stderr
    text = run.stdout
    for expected in ("house.wav", "rock.flac", "Bb major", "6B", "E minor", "9A"):
        assert expected in text, text
    bpms = [float(w) for w in text.split() if w.replace(".", "", 1).isdigit() and "." in w]
    assert any(math.isclose(b, 123.0, abs_tol=0.1) for b in bpms), text
    assert any(math.isclose(b, 139.0, abs_tol=0.1) for b in bpms), text


def test_analyze_table_reports_failures(tmp_path: Path, files: dict[str, Path]) -> None:
    run = retoone(tmp_path, "analyze", str(files["truncated"]), str(files["wav"]))
    assert run.returncode == 1
    said = " ".join(run.stderr.split())
    assert f"{files['truncated']}: truncated:" in said, said
    assert "1 of 2 file(s) failed" in said
    assert "Bb major" in run.stdout
