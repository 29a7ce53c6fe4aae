"""Retoone's DSP kernels (see docs/dsp.md).

numba's on-disk cache (``cache=True``) is keyed by each function's own source
file: when a kernel changes, kernels in *other* files that inline it keep their
stale compiled code. So the cache lives in a directory named by a hash of every
source file in this package: any change to dsp/ starts a fresh cache. Set
``NUMBA_CACHE_DIR`` to choose the place yourself (then you own its freshness).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba


def _source_hash() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "retoone", "numba", _source_hash())


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()  # type: ignore[attr-defined]
