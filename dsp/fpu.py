"""Flush denormals to zero inside kernels (x86 MXCSR FTZ|DAZ), and restore afterwards.

Recursive filters decaying into silence produce denormal floats, which x86 cores
process 30-100x slower. Every public kernel brackets its work with::

    saved = ftz_begin()   # RT
    ...
    ftz_end(saved)        # RT

which sets flush-to-zero and denormals-are-zero for the calling thread only for
the duration of the kernel. On other architectures both are no-ops and kernels
rely on their explicit flushing of tiny state values (``flush_tiny``).
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
FTZ_DAZ = 0x8040
TINY = 1e-30


def _mxcsr_call(builder: Any, name: str, ptr: Any) -> None:
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    fn = builder.module.declare_intrinsic(name, fnty=fnty)
    builder.call(fn, [builder.bitcast(ptr, ir.IntType(8).as_pointer())])


@intrinsic
def _read_mxcsr(typingctx: Any) -> Any:
    sig = types.uint32()

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        # In the entry block: an alloca at the call site would grow the stack on every
        # iteration when the call is inlined into a loop.
        ptr = cgutils.alloca_once(builder, ir.IntType(32))  # type: ignore[no-untyped-call]
        if _X86:
            _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
        else:
            builder.store(ir.Constant(ir.IntType(32), 0), ptr)
        return builder.load(ptr)

    return sig, codegen


@intrinsic
def _write_mxcsr(typingctx: Any, value: Any) -> Any:
    sig = types.void(types.uint32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        if _X86:
            ptr = cgutils.alloca_once(builder, ir.IntType(32))  # type: ignore[no-untyped-call]
            builder.store(args[0], ptr)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def ftz_begin() -> int:  # RT
    """Turn on flush-to-zero for this thread; return the previous state for ``ftz_end``."""
    saved: int = _read_mxcsr()  # type: ignore[call-arg]
    _write_mxcsr(np.uint32(saved | FTZ_DAZ))
    return saved


@njit(cache=True, nogil=True, inline="always")
def ftz_end(saved: int) -> None:  # RT
    _write_mxcsr(np.uint32(saved))  # type: ignore[call-arg]


@njit(cache=True, nogil=True, inline="always")
def flush_tiny(x: float) -> float:  # RT
    """Zero for values too small to matter (portable denormal guard for filter state)."""
    return 0.0 if -TINY < x < TINY else x


SAMPLE_LIMIT = 64.0  # +36 dBFS: anything louder is a broken input, not music


@njit(cache=True, nogil=True, inline="always")
def clean(x: float) -> float:  # RT
    """An input sample made safe: NaN becomes 0, infinities and absurd values are clamped.

    Written as selects, not branches: in a loop over samples LLVM vectorises selects (about
    8x faster here than the same tests as ``if``s, which it leaves as branches)."""
    v = float(x)
    v = v if v == v else 0.0
    v = SAMPLE_LIMIT if v > SAMPLE_LIMIT else v
    return -SAMPLE_LIMIT if v < -SAMPLE_LIMIT else v
