"""The one shape every effect has: ``process(block) -> block``, ``reset()``, ``latency_samples``.

An effect owns preallocated float64 state and an output buffer; ``process``
runs one jitted kernel ``kernel(inp, out, state, params)`` over them and
returns a view of the output buffer (valid until the next call: copy it to keep
it). Blocks are float32, shape (frames, channels); a 1-D block is taken as mono.

Parameters are set by name (``fx.set(cutoff_hz=800)`` or the constructor); the
kernel ramps from the current value to the new one (no zipper noise), per sample
or on a grid of absolute sample positions, so the output does not depend on how
the stream is cut into blocks.

Thread: an effect belongs to one thread at a time. ``set`` only writes target
values into a float64 array that the kernel reads at its next call, so a
control thread may call it while the audio thread runs ``process``: the kernel
sees either the old or the new value of each number, never a torn one.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from dsp.params import Param, ParamError, find

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SAMPLE_RATES = (8000.0, 384000.0)
MAX_CHANNELS = 16


def check_rate_channels(sample_rate: object, channels: object) -> float:
    """The sample rate as float, or ParamError for an unusable rate or channel count."""
    if not isinstance(sample_rate, int | float) or not (
        SAMPLE_RATES[0] <= float(sample_rate) <= SAMPLE_RATES[1]
    ):
        lo, hi = SAMPLE_RATES
        raise ParamError(f"sample_rate: {sample_rate!r} Hz is outside {lo:g}..{hi:g}")
    if not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise ParamError(f"channels: {channels!r} is not 1..{MAX_CHANNELS}")
    return float(sample_rate)


def as_block(block: npt.ArrayLike, channels: int) -> F32:  # RT for float32 (n, channels)
    """The block as C-contiguous float32 (frames, channels); a 1-D block is mono."""
    if (
        type(block) is np.ndarray
        and block.dtype == np.float32
        and block.ndim == 2
        and block.shape[1] == channels
        and block.flags.c_contiguous
    ):
        return block
    arr = np.asarray(block)
    if arr.ndim == 1 and channels == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != channels:
        raise ParamError(f"block: expected shape (frames, {channels}), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


class Effect:
    """Base class: subclasses declare ``PARAMS``, size their state, and run their kernel."""

    PARAMS: ClassVar[tuple[Param, ...]] = ()
    # Musically typical, non-default settings: the shared contract tests
    # (tests/dsp/test_contract.py) run every effect with them.
    EXAMPLE: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        sample_rate: float = 48000.0,
        channels: int = 2,
        *,
        max_block: int = 8192,
        **values: Any,
    ) -> None:
        rate = check_rate_channels(sample_rate, channels)
        if not isinstance(max_block, int) or max_block < 1:
            raise ParamError(f"max_block: {max_block!r} must be a positive integer")
        self.sample_rate = rate
        self.channels = channels
        self.params = np.array([p.default for p in self.PARAMS], dtype=np.float64)
        self._out = np.zeros((max_block, channels), dtype=np.float32)
        self._views: dict[int, F32] = {}
        self.state = self.make_state()
        self.set(**values)
        self.reset()

    # -- for subclasses -------------------------------------------------------------

    def make_state(self) -> F64:
        """Allocate the kernel state (called once, before parameters are set)."""
        return np.zeros(1, dtype=np.float64)

    def on_reset(self) -> None:
        """Clear the state; smoothed values jump to their targets."""
        self.state[:] = 0.0

    def run(self, inp: F32, out: F32) -> None:  # RT
        """Run the kernel over one block (``inp`` and ``out`` have the same shape)."""
        raise NotImplementedError

    # -- the public shape -----------------------------------------------------------

    @property
    def latency_samples(self) -> int:
        """Samples by which the output lags the input (0 for most effects)."""
        return 0

    def set(self, **values: Any) -> None:
        """Set parameters by name; out-of-range numbers are clamped, bad values refused."""
        coerced = [(find(self.PARAMS, name), self.PARAMS[find(self.PARAMS, name)].coerce(v))
                   for name, v in values.items()]
        for index, value in coerced:
            self.params[index] = value

    def get(self, name: str) -> float | str:
        index = find(self.PARAMS, name)
        return self.PARAMS[index].describe(float(self.params[index]))

    def reset(self) -> None:
        self.on_reset()

    def process(self, block: npt.ArrayLike) -> F32:  # RT when block is float32 (n, channels)
        inp = self._as_block(block)
        out = self._output(inp.shape[0])
        if inp.shape[0]:
            self.run(inp, out)
        return out

    def _output(self, n: int) -> F32:  # RT after the first block of this size
        """The output view for ``n`` frames (the first of a size allocates it)."""
        out = self._views.get(n)
        if out is None:
            if n > self._out.shape[0]:
                self._out = np.zeros((n, self.channels), dtype=np.float32)
                self._views.clear()
            out = self._views[n] = self._out[:n]
        return out

    def _as_block(self, block: npt.ArrayLike) -> F32:  # RT for float32 (n, channels) input
        return as_block(block, self.channels)

    def __repr__(self) -> str:
        values = ", ".join(f"{p.name}={self.get(p.name)!r}" for p in self.PARAMS)
        return f"{type(self).__name__}({values})"


def bind_params(fx: Effect) -> F64:
    """The kernel params array ``[params..., sample_rate]``; ``fx.params`` becomes a view of it.

    ``Effect.set`` then writes straight into the array the kernel reads: set()
    copies nothing and allocates no array.
    """
    n = len(fx.PARAMS)
    kp = np.zeros(n + 1, dtype=np.float64)
    kp[:n] = fx.params
    kp[n] = fx.sample_rate
    fx.params = kp[:n]
    return kp
