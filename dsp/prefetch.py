"""Software prefetch: ask the CPU to start loading a cache line that a kernel will read soon.

Delay lines are megabytes long and each block reads them where it wrote a second ago, long
out of every cache; with many tracks the hardware prefetchers lose track of that many
streams. A kernel that knows where its next block will read (``prefetch_range``) hides the
memory latency behind the other tracks' work. On a CPU without the instruction LLVM drops it.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from dsp.effect import F64

LINE = 8  # float64 values per 64-byte cache line


def _prefetch_codegen(write: int) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty,  # type: ignore[no-untyped-call]
                                            "llvm.prefetch.p0")
        builder.call(fn, [i8p, i32(write), i32(3), i32(1)])  # locality: keep in all levels
        return context.get_dummy_value()

    return codegen


@intrinsic
def _prefetch_read(typingctx: Any, arr: Any, index: Any) -> Any:
    return types.void(arr, types.intp), _prefetch_codegen(0)


@njit(cache=True, nogil=True, inline="always")
def prefetch_range(arr: F64, lo: int, count: int) -> None:  # RT
    """Prefetch ``arr[lo:lo + count]`` (clipped to the array; any 1-D array type) for
    reading. Steps of LINE elements: one per line for float64, two for float32."""
    hi = min(lo + count, arr.shape[0])
    for j in range(max(lo, 0), hi, LINE):
        _prefetch_read(arr, j)  # type: ignore[call-arg]
