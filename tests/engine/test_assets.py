"""engine.assets: decoding and resampling off the audio thread, sharing, damaged files."""

from __future__ import annotations

import os
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

import engine.assets as assets_module
from engine.assets import Asset, AssetCache, AssetError, Decoded, decode_audio

RATE = 48000
Array = npt.NDArray[np.float64]

HAVE_MP3 = "MP3" in sf.available_formats()
NO_MP3 = "this libsndfile cannot write MP3 (needs libsndfile >= 1.1 with LAME/mpg123)"


@pytest.fixture
def cache() -> Iterator[AssetCache]:
    with AssetCache(RATE) as c:
        yield c


def tone(rate: int, seconds: float, freq: float, amp: float) -> Array:
    t = np.arange(round(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def write(path: Path, data: Array, rate: int, subtype: str | None = None) -> Path:
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".aiff": "AIFF"}
    sf.write(path, data, rate, format=fmt[path.suffix], subtype=subtype)
    return path


def noise(rate: int, seconds: float, channels: int = 1, seed: int = 1) -> Array:
    """Band-limited-ish noise: compresses badly, so lossy files have many pages/frames."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((round(rate * seconds), channels)) * 0.2
    return np.clip(x, -0.9, 0.9)


def decoded(cache: AssetCache, path: Path) -> Asset:
    asset = cache.request(path)
    assert asset.wait(60), f"{path} not decoded in time"
    return asset


def data_of(asset: Asset) -> npt.NDArray[np.float32]:
    assert asset.error is None, asset.error
    assert asset.data is not None
    return asset.data


def peak_hz(x: npt.NDArray[np.floating], rate: int) -> float:
    """The frequency of the strongest spectral peak, interpolated between bins."""
    pad = 8
    spec = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x)), n=pad * len(x)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-30)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + delta) * rate / (pad * len(x)))


def level_db(x: npt.NDArray[np.floating]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def middle_periods(x: npt.NDArray[np.float32], freq: int = 1000) -> npt.NDArray[np.float32]:
    """A whole number of periods of ``freq`` from the middle of ``x`` (at RATE)."""
    period = RATE // freq
    n = (len(x) // 2) // period * period
    start = len(x) // 4
    return x[start:start + n]


# ---------------------------------------------------------------------------------------
# Decoding formats
# ---------------------------------------------------------------------------------------

LOSSLESS = [
    pytest.param(".wav", 44100, "PCM_16", id="wav-44k1-pcm16"),
    pytest.param(".wav", 22050, "FLOAT", id="wav-22k05-float"),
    pytest.param(".flac", 48000, "PCM_24", id="flac-48k"),
    pytest.param(".flac", 96000, "PCM_24", id="flac-96k"),
    pytest.param(".aiff", 44100, "PCM_24", id="aiff-44k1"),
]


@pytest.mark.parametrize(("suffix", "rate", "subtype"), LOSSLESS)
def test_lossless_mono_keeps_length_frequency_and_level(
        cache: AssetCache, tmp_path: Path, suffix: str, rate: int, subtype: str) -> None:
    seconds = 1.7
    path = write(tmp_path / f"tone{suffix}", tone(rate, seconds, 1000.0, 0.5), rate, subtype)
    asset = decoded(cache, path)
    data = data_of(asset)

    assert data.dtype == np.float32 and data.ndim == 2 and data.shape[1] == 2
    assert data.flags.c_contiguous and not data.flags.writeable
    assert abs(asset.frames - round(seconds * RATE)) <= 2
    assert asset.duration_s == pytest.approx(seconds, abs=2 / RATE)
    assert asset.sample_rate == RATE and asset.source_sample_rate == rate
    assert asset.source_channels == 1 and asset.warning is None
    assert np.array_equal(data[:, 0], data[:, 1]), "mono must be duplicated exactly"
    mid = middle_periods(data[:, 0])
    assert abs(peak_hz(mid, RATE) - 1000.0) < 1.0
    assert abs(level_db(mid) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1


def test_stereo_flac_keeps_channels_apart(cache: AssetCache, tmp_path: Path) -> None:
    rate = 48000
    left = tone(rate, 2.0, 1000.0, 0.5)
    right = tone(rate, 2.0, 3000.0, 0.1)
    path = write(tmp_path / "st.flac", np.stack([left, right], axis=1), rate, "PCM_24")
    data = data_of(decoded(cache, path))

    assert len(data) == 2 * RATE
    # Same rate: no resampling, the samples come back to 24-bit precision.
    assert np.max(np.abs(data[:, 0] - left)) < 1e-6
    assert np.max(np.abs(data[:, 1] - right)) < 1e-6
    assert abs(peak_hz(middle_periods(data[:, 0]), RATE) - 1000.0) < 1.0
    assert abs(peak_hz(middle_periods(data[:, 1]), RATE) - 3000.0) < 1.0
    assert abs(level_db(middle_periods(data[:, 1])) - 20 * np.log10(0.1 / np.sqrt(2))) < 0.1


def test_stereo_resampled_channels_stay_apart(cache: AssetCache, tmp_path: Path) -> None:
    rate = 44100
    left = tone(rate, 1.0, 1000.0, 0.5)
    path = write(tmp_path / "left-only.wav", np.stack([left, 0 * left], axis=1), rate, "FLOAT")
    data = data_of(decoded(cache, path))
    assert np.max(np.abs(data[:, 1])) == 0.0
    assert abs(level_db(middle_periods(data[:, 0])) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1


def test_more_than_two_channels_keep_the_first_two(cache: AssetCache, tmp_path: Path) -> None:
    rate = 48000
    chans = [tone(rate, 0.5, f, 0.2) for f in (500.0, 1500.0, 2500.0, 3500.0)]
    path = write(tmp_path / "quad.wav", np.stack(chans, axis=1), rate, "FLOAT")
    asset = decoded(cache, path)
    data = data_of(asset)
    assert asset.source_channels == 4
    assert np.max(np.abs(data[:, 0] - chans[0])) < 1e-7
    assert np.max(np.abs(data[:, 1] - chans[1])) < 1e-7


@pytest.mark.parametrize(("suffix", "subtype"), [
    pytest.param(".ogg", "VORBIS", id="ogg-vorbis"),
    pytest.param(".mp3", "MPEG_LAYER_III", id="mp3",
                 marks=pytest.mark.skipif(not HAVE_MP3, reason=NO_MP3)),
])
def test_lossy_formats_keep_length_and_frequency(
        cache: AssetCache, tmp_path: Path, suffix: str, subtype: str) -> None:
    rate, seconds = 44100, 2.0
    path = write(tmp_path / f"tone{suffix}", tone(rate, seconds, 1000.0, 0.5), rate, subtype)
    asset = decoded(cache, path)
    data = data_of(asset)
    assert asset.warning is None
    assert abs(asset.frames - round(seconds * RATE)) <= 4
    assert np.array_equal(data[:, 0], data[:, 1])
    mid = middle_periods(data[:, 0])
    assert abs(peak_hz(mid, RATE) - 1000.0) < 1.0
    # Lossy codecs do not promise the level to 0.1 dB; a 1 kHz tone keeps it to 0.5 dB.
    assert abs(level_db(mid) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.5


def test_long_file_is_decoded_in_blocks_with_bounded_memory(tmp_path: Path) -> None:
    rate, seconds = 44100, 40.0
    path = write(tmp_path / "long.flac", tone(rate, seconds, 1000.0, 0.5), rate, "PCM_24")
    out_bytes = round(seconds * RATE) * 2 * 4
    assert out_bytes > 8 * assets_module.BLOCK_FRAMES * 2 * 4  # many blocks

    tracemalloc.start()
    try:
        result = decode_audio(path, RATE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output plus a few blocks; reading the file whole would need 2-4 times as much.
    assert peak < out_bytes + 6_000_000, f"peak {peak} for {out_bytes} bytes of output"

    data = result.data
    assert len(data) == round(seconds * RATE)
    # The resampler is delay-compensated and continuous across block boundaries: the
    # output is the same sine sampled at 48 kHz (edges aside, where the tone starts/stops).
    n = np.arange(len(data))
    ideal = 0.5 * np.sin(2 * np.pi * 1000.0 * n / RATE)
    assert np.max(np.abs(data[2000:-2000, 0] - ideal[2000:-2000])) < 1e-4


def test_non_finite_samples_become_silence(cache: AssetCache, tmp_path: Path) -> None:
    x = tone(48000, 0.1, 1000.0, 0.5)
    x[100], x[200], x[300] = np.nan, np.inf, -np.inf
    data = data_of(decoded(cache, write(tmp_path / "nan.wav", x, 48000, "FLOAT")))
    assert np.isfinite(data).all()
    assert data[100, 0] == 0.0 and data[200, 1] == 0.0


# ---------------------------------------------------------------------------------------
# Damaged and bad files
# ---------------------------------------------------------------------------------------


def cut(path: Path, fraction: float) -> Path:
    raw = path.read_bytes()
    out = path.with_name(f"cut-{path.name}")
    out.write_bytes(raw[:int(len(raw) * fraction)])
    return out


@pytest.mark.parametrize(("suffix", "rate", "subtype", "exact"), [
    pytest.param(".wav", 44100, "PCM_16", True, id="wav"),
    pytest.param(".wav", 48000, "PCM_24", True, id="wav-48k"),
    pytest.param(".aiff", 48000, "PCM_16", True, id="aiff"),
    pytest.param(".flac", 48000, "PCM_16", True, id="flac"),
    pytest.param(".ogg", 48000, "VORBIS", False, id="ogg"),
    pytest.param(".mp3", 48000, "MPEG_LAYER_III", False, id="mp3",
                 marks=pytest.mark.skipif(not HAVE_MP3, reason=NO_MP3)),
])
def test_truncated_file_decodes_what_is_there_with_a_warning(
        cache: AssetCache, tmp_path: Path, suffix: str, rate: int, subtype: str,
        exact: bool) -> None:
    """The policy: a file cut short is decoded as far as it goes; ``warning`` says so."""
    full = noise(rate, 4.0)
    path = cut(write(tmp_path / f"n{suffix}", full, rate, subtype), 0.5)
    asset = decoded(cache, path)
    data = data_of(asset)

    assert asset.warning is not None
    assert str(path) in asset.warning and "truncated" in asset.warning
    assert 0.5 * RATE < asset.frames < 3.5 * RATE
    if exact and rate == RATE:  # what was decoded is the start of the original
        reference = sf.read(tmp_path / f"n{suffix}", dtype="float32")[0]
        assert np.array_equal(data[:, 0], reference[:len(data)])


def test_ogg_with_a_corrupt_last_page_decodes_up_to_it(cache: AssetCache,
                                                      tmp_path: Path) -> None:
    path = write(tmp_path / "c.ogg", noise(48000, 6.0), 48000, "VORBIS")
    raw = bytearray(path.read_bytes())
    last_page = raw.rfind(b"OggS")
    raw[last_page + 40] ^= 0xFF  # its CRC no longer holds
    path.write_bytes(raw)
    asset = decoded(cache, path)
    assert asset.error is None and asset.data is not None
    assert asset.warning is not None and "intact page" in asset.warning
    assert 4 * RATE < asset.frames < 6 * RATE


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_corrupted_files_never_raise_anything_but_asset_error(tmp_path: Path,
                                                              suffix: str) -> None:
    if suffix == ".mp3" and not HAVE_MP3:
        pytest.skip(NO_MP3)
    raw = write(tmp_path / f"src{suffix}", noise(22050, 1.0, 2), 22050).read_bytes()
    rng = np.random.default_rng(7)
    target = tmp_path / f"fuzz{suffix}"
    for trial in range(25):
        damaged = bytearray(raw)
        for _ in range(int(rng.integers(1, 12))):
            where = int(rng.integers(0, 300 if trial % 2 else len(damaged)))
            damaged[where] = int(rng.integers(0, 256))
        if trial % 3 == 0:
            damaged = damaged[:int(rng.integers(1, len(damaged)))]
        target.write_bytes(damaged)
        try:
            result = decode_audio(target, RATE)
        except AssetError as e:
            assert str(target) in str(e)
        else:
            assert result.data.shape[1] == 2 and np.isfinite(result.data).all()


def test_file_with_only_a_header_is_an_error(cache: AssetCache, tmp_path: Path) -> None:
    path = write(tmp_path / "h.wav", noise(48000, 1.0), 48000, "PCM_16")
    header_only = path.with_name("header-only.wav")
    header_only.write_bytes(path.read_bytes()[:44])
    asset = decoded(cache, header_only)
    assert asset.data is None and asset.frames == 0
    assert asset.error is not None
    assert str(header_only) in asset.error and "truncated" in asset.error


def test_flac_cut_inside_its_header_is_an_error(cache: AssetCache, tmp_path: Path) -> None:
    full = write(tmp_path / "f.flac", noise(48000, 1.0), 48000, "PCM_16")
    path = tmp_path / "header-cut.flac"
    path.write_bytes(full.read_bytes()[:30])
    asset = decoded(cache, path)
    assert asset.error is not None and str(path) in asset.error
    assert "damaged or truncated" in asset.error


def make_text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("This is not audio, just a text file renamed .wav\n" * 20)
    return path


def make_empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.flac"
    path.write_bytes(b"")
    return path


def make_missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.wav"


def make_directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.wav"
    path.mkdir()
    return path


def make_random(tmp_path: Path) -> Path:
    path = tmp_path / "random.mp3"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, np.uint8).tobytes())
    return path


@pytest.mark.parametrize(("make", "expected"), [
    (make_missing, "file not found"),
    (make_text, "not audio"),
    (make_empty, "empty file"),
    (make_directory, "is a directory"),
    (make_random, "not audio"),
])
def test_bad_files_give_clear_errors(cache: AssetCache, tmp_path: Path,
                                     make: Callable[[Path], Path], expected: str) -> None:
    path = make(tmp_path)
    asset = decoded(cache, path)
    assert asset.ready and asset.data is None and asset.frames == 0
    assert asset.duration_s == 0.0
    assert asset.error is not None
    assert str(path) in asset.error, asset.error
    assert expected in asset.error, asset.error
    with pytest.raises(AssetError, match=expected):
        decode_audio(path, RATE)


def test_unreadable_file_gives_a_clear_error(cache: AssetCache, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    path = write(tmp_path / "locked.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    path.chmod(0)
    asset = decoded(cache, path)
    assert asset.error is not None and "permission denied" in asset.error


# ---------------------------------------------------------------------------------------
# Sharing, callbacks, threads
# ---------------------------------------------------------------------------------------


class GatedDecode:
    """Replaces decode_audio: counts calls and holds each decode until ``release``."""

    def __init__(self) -> None:
        self.calls: list[Path] = []
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self._real = decode_audio

    def __call__(self, path: Path, sample_rate: int, **kwargs: object) -> Decoded:
        self.calls.append(path)
        self.started.release()
        assert self.gate.wait(30)
        return self._real(path, sample_rate)

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedDecode]:
    gate = GatedDecode()
    monkeypatch.setattr(assets_module, "decode_audio", gate)
    yield gate
    gate.release()


def test_requests_for_one_file_share_one_decode(cache: AssetCache, tmp_path: Path,
                                                gated: GatedDecode) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "a.wav", tone(48000, 0.2, 1000.0, 0.5), 48000)
    first = cache.request(path)
    assert not first.ready and first.data is None and first.frames == 0  # returned at once
    second = cache.request(str(tmp_path / "sub" / ".." / "a.wav"))
    os.symlink(path, tmp_path / "link.wav")
    third = cache.request(tmp_path / "link.wav")
    gated.release()
    assert first.wait(30)
    assert second is first and third is first
    assert len(gated.calls) == 1
    assert cache.request(path) is first  # still cached once decoded
    assert len(gated.calls) == 1


def test_a_changed_file_is_decoded_again(cache: AssetCache, tmp_path: Path) -> None:
    path = write(tmp_path / "c.wav", tone(48000, 0.5, 1000.0, 0.5), 48000)
    old = decoded(cache, path)
    write(path, tone(48000, 0.25, 1000.0, 0.5), 48000)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    new = decoded(cache, path)
    assert new is not old
    assert old.frames == 24000 and new.frames == 12000  # the old asset stays valid


def test_discard_forgets_the_cached_asset(cache: AssetCache, tmp_path: Path) -> None:
    path = write(tmp_path / "d.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    first = decoded(cache, path)
    cache.discard(path)
    second = decoded(cache, path)
    assert second is not first and second.frames == first.frames


def test_on_ready_fires_exactly_once(cache: AssetCache, tmp_path: Path,
                                     gated: GatedDecode) -> None:
    path = write(tmp_path / "r.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    calls: list[tuple[str, Asset, str]] = []
    lock = threading.Lock()

    def record(tag: str) -> Callable[[Asset], None]:
        def callback(asset: Asset) -> None:
            with lock:
                calls.append((tag, asset, threading.current_thread().name))
        return callback

    asset = cache.request(path)
    assert gated.started.acquire(timeout=30)  # the worker is decoding now
    asset.on_ready(record("early"))
    cache.request(path).on_ready(record("second request"))
    gated.release()
    assert asset.wait(30)
    asset.on_ready(record("late"))
    cache.close()  # waits for the workers; nothing fires twice

    tags = sorted(tag for tag, _, _ in calls)
    assert tags == ["early", "late", "second request"]
    assert all(a is asset for _, a, _ in calls)
    threads = {tag: name for tag, _, name in calls}
    assert threads["early"].startswith("asset-decode")
    assert threads["late"] == threading.current_thread().name


def test_on_ready_fires_once_for_a_failed_decode(cache: AssetCache, tmp_path: Path) -> None:
    fired: list[str | None] = []
    done = threading.Event()

    def callback(asset: Asset) -> None:
        fired.append(asset.error)
        done.set()

    cache.request(tmp_path / "nowhere.wav").on_ready(callback)
    assert done.wait(30)
    cache.close()
    assert len(fired) == 1 and fired[0] is not None and "not found" in fired[0]


def test_a_failing_callback_does_not_stop_the_others(
        cache: AssetCache, tmp_path: Path, gated: GatedDecode,
        caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "e.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    seen = threading.Event()

    def broken(asset: Asset) -> None:
        raise RuntimeError("callback bug")

    asset = cache.request(path)
    asset.on_ready(broken)
    asset.on_ready(lambda a: seen.set())
    gated.release()
    assert seen.wait(30)
    assert asset.error is None and asset.frames == 4800
    assert "callback" in caplog.text


def test_close_cancels_queued_decodes(tmp_path: Path, gated: GatedDecode) -> None:
    a_path = write(tmp_path / "a.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    b_path = write(tmp_path / "b.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    cache = AssetCache(RATE, workers=1)
    running = cache.request(a_path)
    assert gated.started.acquire(timeout=30)
    queued = cache.request(b_path)
    write(b_path, tone(48000, 0.2, 1000.0, 0.5), 48000)  # b changes: a second decode queued
    os.utime(b_path, ns=(0, b_path.stat().st_mtime_ns + 1_000_000_000))
    replacement = cache.request(b_path)
    assert replacement is not queued
    closer = threading.Thread(target=cache.close)
    closer.start()
    assert cache._closing.wait(30)  # close() has begun: nothing new may start decoding
    gated.release()
    closer.join(30)
    assert not closer.is_alive()
    assert running.ready and running.error is None
    for asset in (queued, replacement):  # nobody waits forever, not even on a replaced one
        assert asset.ready and asset.error is not None and "closed" in asset.error
    assert len(gated.calls) == 1
    with pytest.raises(RuntimeError, match="closed"):
        cache.request(a_path)
    cache.close()  # idempotent


def test_close_stops_a_running_decode_at_the_next_block(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    path = write(tmp_path / "x.wav", tone(48000, 0.1, 1000.0, 0.5), 48000)
    with pytest.raises(AssetError, match="cancelled"):
        decode_audio(path, RATE, cancel=cancel)


def test_implausible_sample_rates_are_refused(cache: AssetCache, tmp_path: Path) -> None:
    path = write(tmp_path / "slow.wav", tone(200, 1.0, 10.0, 0.5), 200)
    asset = decoded(cache, path)
    assert asset.error is not None and "200 Hz" in asset.error


def test_files_longer_than_the_limit_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "long.wav", tone(8000, 3.0, 100.0, 0.5), 8000)
    with AssetCache(RATE, max_duration_s=2.0) as cache:
        asset = decoded(cache, path)
    assert asset.error is not None and "too long" in asset.error


def test_many_threads_requesting_at_once_share_decodes(cache: AssetCache,
                                                       tmp_path: Path) -> None:
    paths = [write(tmp_path / f"t{i}.wav", tone(48000, 0.05, 1000.0, 0.5), 48000)
             for i in range(4)]
    results: list[list[Asset]] = [[] for _ in range(8)]

    def worker(k: int) -> None:
        for _ in range(5):
            for p in paths:
                results[k].append(cache.request(p))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_path: dict[Path, set[int]] = {}
    for row in results:
        for asset in row:
            by_path.setdefault(asset.path, set()).add(id(asset))
    assert len(by_path) == 4 and all(len(ids) == 1 for ids in by_path.values())
    for row in results:
        for asset in row:
            assert asset.wait(30) and asset.frames == 2400


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        AssetCache(0)
    with pytest.raises(ValueError, match="workers"):
        AssetCache(48000, workers=0)
