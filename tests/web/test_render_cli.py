"""``retoone render`` and ``retoone play``, run as real processes on a project with real audio
files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RETOONE = Path(sys.executable).parent / "retoone"
SR = 48000


def retoone(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETOONE_")}
    env["COLUMNS"] = "120"
    return subprocess.run([str(RETOONE), *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def write_project(tmp_path: Path) -> Path:
    t = np.arange(SR) / SR
    sf.write(tmp_path / "tone.flac", 0.5 * np.sin(2 * np.pi * 440 * t), SR)  # mono
    sf.write(tmp_path / "low.wav", np.stack([0.25 * np.sin(2 * np.pi * 110 * t)] * 2, axis=1),
             SR, subtype="FLOAT")
    project = {
        "version": 1, "sample_rate": SR, "tempo": [{"beat": 0, "bpm": 120}],
        "assets": {"tone": "tone.flac", "low": "low.wav", "gone": "missing.wav"},
        "tracks": [
            {"id": "a", "name": "Tone lead", "clips": [
                {"id": "c1", "asset": "tone", "start": 0, "length": 2}]},
            {"id": "b", "name": "Low/bass", "pan": -0.5, "clips": [
                {"id": "c2", "asset": "low", "start": 1, "length": 2},
                {"id": "c3", "asset": "gone", "start": 3, "length": 1}],
             "chain": [{"id": "x", "type": "no-such-effect"}]},
        ],
    }
    path = tmp_path / "song.json"
    path.write_text(json.dumps(project))
    return path


def test_render_writes_the_mix_and_one_stem_per_track(tmp_path: Path) -> None:
    song = write_project(tmp_path)
    out = tmp_path / "out" / "mix.flac"
    run = retoone(tmp_path, "render", str(song), "-o", str(out), "--stems",
                  str(tmp_path / "stems"), "--tail", "0.5")
    assert run.returncode == 0, run.stderr
    assert "tracks[1].chain[0].type" in run.stderr  # the unknown effect, reported
    assert "missing.wav" in run.stderr  # the missing file, reported; its clip is silent
    mix, sr = sf.read(out, dtype="float32")
    assert sr == SR and mix.shape == (round(2.5 * SR), 2)  # 4 beats at 120 + 0.5 s
    stems = sorted((tmp_path / "stems").iterdir())
    assert [p.name for p in stems] == ["01-Tone_lead.flac", "02-Low_bass.flac"]
    a, _ = sf.read(stems[0], dtype="float32")
    b, _ = sf.read(stems[1], dtype="float32")
    assert np.allclose(a + b, mix, atol=2e-4)  # no buses, no master chain: stems sum to it
    centre = math.cos(math.pi / 4)
    assert np.abs(a[:SR, 0]).max() == pytest.approx(0.5 * centre, rel=1e-3)
    assert not b[:SR // 2].any() and np.abs(b[SR // 2:SR, 0]).max() > 0.2  # starts at beat 1


def test_render_reports_a_bad_project(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 7}))
    run = retoone(tmp_path, "render", str(bad), "-o", str(tmp_path / "x.wav"))
    assert run.returncode == 1
    assert "version" in run.stderr
    assert not (tmp_path / "x.wav").exists()


def test_play_runs_a_project_headless_and_reports_its_blocks(tmp_path: Path) -> None:
    song = write_project(tmp_path)
    run = retoone(tmp_path, "play", str(song), "--seconds", "1.5")
    assert run.returncode == 0, run.stderr
    played = [line[line.index("played"):] for line in run.stderr.splitlines()
              if "played" in line]
    assert played, run.stderr
    blocks = int(played[0].split(":")[1].split()[0])
    assert blocks >= 1.2 * SR / 128  # about 1.5 s of 128-frame blocks went by in real time
    assert "xruns" in played[0]
