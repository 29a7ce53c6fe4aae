"""Audio assets: files decoded and resampled off the audio thread, shared by every clip.

The audio thread never touches a file. A clip asks the ``AssetCache`` for its file with
``request(path)``, which returns an ``Asset`` at once; a worker thread decodes the file with
``soundfile`` (libsndfile: WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 and the rest of what
libsndfile reads), resamples it with ``soxr`` to the cache's sample rate and publishes the
result. Until ``asset.ready`` is true the engine plays silence for the clip and counts it as
late data (design.md, real-time rules). ``ready`` is a lock-free flag read, safe on the audio
thread; everything else here runs on control or worker threads.

What a decoded asset holds
    ``data`` is float32, C-contiguous, shape ``(frames, 2)``, at the cache's sample rate and
    read-only (one decode is shared by every clip that plays the file); engine/decode.py
    says how files are decoded, resampled and checked for damage, in bounded memory.

Errors and damaged files
    An asset that cannot be decoded finishes with ``data = None`` and ``error`` set to the
    message of the ``AssetError`` (it names the file and says what is wrong). Decoding
    problems are never raised into the caller or the engine. A truncated or damaged file
    that still holds audio gives a usable asset (``error is None``) with ``warning`` set.

Sharing and threads
    Requests for the same file share one ``Asset`` (and one decode) when the resolved path,
    size and modification time match; if the file changed on disk, the next request decodes
    it again (the old ``Asset`` stays valid for whoever holds it, and the cache keeps only
    the newest per path). ``request`` stats the file (it never reads it), so call it from a
    control thread, not the audio thread. All methods of ``AssetCache`` and ``Asset`` are
    thread-safe. ``on_ready`` callbacks run on the worker thread that finished the decode, or
    at once on the caller's thread if the asset is already finished; each registered
    callback runs exactly once. An exception in a callback on a worker thread is logged and
    does not affect the decode or other callbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from engine.decode import (
    BLOCK_FRAMES,
    DEFAULT_MAX_DURATION_S,
    MAX_SOURCE_RATE,
    MIN_SOURCE_RATE,
    RESAMPLE_QUALITY,
    AssetError,
    AudioArray,
    Decoded,
    StrPath,
    decode_audio,
)

# The decoding moved to engine/decode.py; its public names are importable from here too.
__all__ = [
    "BLOCK_FRAMES", "DEFAULT_MAX_DURATION_S", "MAX_SOURCE_RATE", "MIN_SOURCE_RATE",
    "RESAMPLE_QUALITY", "Asset", "AssetCache", "AssetError", "AudioArray", "Decoded",
    "StrPath", "decode_audio",
]

log = logging.getLogger(__name__)

_Signature = tuple[int, int] | None  # (size, mtime_ns), None if the file could not be stat'ed


class Asset:
    """One audio file, decoding or decoded. Created by ``AssetCache.request``.

    Until ``ready``: ``data`` is None and ``frames`` 0. When ready, either ``data`` holds the
    audio (``error`` None, ``warning`` possibly set) or ``error`` says why there is none.
    Every property may be read from any thread; ``ready`` is a lock-free flag read (audio
    thread safe), and the other fields are written before it turns true.
    """

    def __init__(self, path: Path, sample_rate: int, signature: _Signature = None) -> None:
        self._path = path
        self._sample_rate = sample_rate
        self._signature = signature
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._callbacks: list[Callable[[Asset], None]] = []
        self._data: AudioArray | None = None
        self._error: str | None = None
        self._warning: str | None = None
        self._source_rate = 0
        self._source_channels = 0
        self._source_format = ""

    def __repr__(self) -> str:
        state = ("decoding" if not self.ready else f"error={self._error!r}" if self._error
                 else f"{self.frames} frames")
        return f"Asset({str(self._path)!r}, {state})"

    @property
    def path(self) -> Path:
        """The resolved path of the file."""
        return self._path

    @property
    def sample_rate(self) -> int:
        """The rate of ``data`` (the cache's rate), not the file's."""
        return self._sample_rate

    @property
    def ready(self) -> bool:
        """True once the decode finished, successfully or not. # RT (lock-free read)"""
        return self._done.is_set()

    @property
    def data(self) -> AudioArray | None:
        """Read-only float32 (frames, 2) at ``sample_rate``; None until ready or on error."""
        return self._data

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def warning(self) -> str | None:
        """Set when a damaged or truncated file was decoded as far as it goes."""
        return self._warning

    @property
    def frames(self) -> int:
        return 0 if self._data is None else len(self._data)

    @property
    def duration_s(self) -> float:
        return self.frames / self._sample_rate

    @property
    def source_sample_rate(self) -> int:
        return self._source_rate

    @property
    def source_channels(self) -> int:
        return self._source_channels

    @property
    def source_format(self) -> str:
        """libsndfile's major format name: ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``..."""
        return self._source_format

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ready (or ``timeout`` seconds); return ``ready``. Never on the audio
        thread: for tests and offline rendering."""
        return self._done.wait(timeout)

    def on_ready(self, callback: Callable[[Asset], None]) -> None:
        """Call ``callback(asset)`` once when the decode finishes or fails: on the worker
        thread, or at once on this thread if it already has (its exceptions then propagate
        to this caller)."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def _finish(self, decoded: Decoded | None = None, error: str | None = None) -> bool:
        """Publish the outcome (first call wins) and run the callbacks. Worker threads."""
        with self._lock:
            if self._done.is_set():
                return False
            if decoded is not None:
                self._data = decoded.data
                self._warning = decoded.warning
                self._source_rate = decoded.source_sample_rate
                self._source_channels = decoded.source_channels
                self._source_format = decoded.source_format
            else:
                self._error = error or f"{self._path}: not decoded"
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("on_ready callback for %s failed", self._path)
        return True


class AssetCache:
    """Decodes audio files on ``workers`` threads, resampled to ``sample_rate``; one decode
    per file (resolved path, size, mtime). Thread-safe; see the module docstring."""

    def __init__(self, sample_rate: int, workers: int = 2, *,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._sample_rate = sample_rate
        self._max_duration_s = max_duration_s
        self._lock = threading.Lock()
        self._assets: dict[Path, Asset] = {}
        self._pending: set[Asset] = set()  # submitted, not finished (also ones replaced)
        self._closing = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asset-decode")

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def __enter__(self) -> AssetCache:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def request(self, path: StrPath) -> Asset:
        """The asset for ``path``, decoding (in the background) unless it is already decoded
        or decoding. Returns at once; stats the file, so control threads only. Raises
        ``RuntimeError`` after ``close``."""
        resolved = _resolve(path)
        signature = _signature(resolved)
        with self._lock:
            if self._closing.is_set():
                raise RuntimeError("AssetCache is closed")
            asset = self._assets.get(resolved)
            if asset is not None and asset._signature == signature:
                return asset
            asset = Asset(resolved, self._sample_rate, signature)
            self._assets[resolved] = asset
            self._pending.add(asset)
            self._pool.submit(self._decode, asset)
        return asset

    def discard(self, path: StrPath) -> None:
        """Forget the cached asset for ``path`` (holders keep theirs); the next request
        decodes again."""
        with self._lock:
            self._assets.pop(_resolve(path), None)

    def close(self) -> None:
        """Stop the workers: queued decodes are cancelled, a running one stops at its next
        block; every unfinished asset finishes with an error. Idempotent. Not from an
        ``on_ready`` callback (it waits for the workers)."""
        with self._lock:
            self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            assets, self._pending = list(self._pending), set()
        for asset in assets:
            asset._finish(error=f"{asset.path}: not decoded: the asset cache was closed")

    def _decode(self, asset: Asset) -> None:
        """Worker threads."""
        try:
            self._decode_now(asset)
        finally:
            with self._lock:
                self._pending.discard(asset)

    def _decode_now(self, asset: Asset) -> None:
        if self._closing.is_set():
            asset._finish(error=f"{asset.path}: not decoded: the asset cache was closed")
            return
        try:
            decoded = decode_audio(asset.path, self._sample_rate, cancel=self._closing,
                                   max_duration_s=self._max_duration_s)
        except AssetError as e:
            asset._finish(error=str(e))
        except MemoryError:
            asset._finish(error=f"{asset.path}: not enough memory to decode it")
        except Exception as e:
            log.exception("decoding %s failed", asset.path)
            asset._finish(error=f"{asset.path}: unexpected error while decoding: {e!r}")
        else:
            asset._finish(decoded)


def _resolve(path: StrPath) -> Path:
    p = Path(path).expanduser()
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return p.absolute()


def _signature(path: Path) -> _Signature:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
