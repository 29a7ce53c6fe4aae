"""Bit-level float helpers and a log2/exp2 without libm calls, for hot audio loops.

libm's log and exp are half the cost of a compressor; these polynomial versions
(log2 within 5e-8, exp2 within 1e-8 relative) inline into the kernels. The
bit casts give a vectorisable peak (compare IEEE bits of |x| as integers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


def _bitcast(src: Any, dst: Any, dst_ir: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], dst_ir)

    return dst(src), codegen


@intrinsic
def _f32_bits(typingctx: Any, x: Any) -> Any:
    return _bitcast(types.float32, types.int32, ir.IntType(32))


@intrinsic
def _bits_f32(typingctx: Any, b: Any) -> Any:
    return _bitcast(types.int32, types.float32, ir.FloatType())


@intrinsic
def _f64_bits(typingctx: Any, x: Any) -> Any:
    return _bitcast(types.float64, types.int64, ir.IntType(64))


@intrinsic
def _bits_f64(typingctx: Any, b: Any) -> Any:
    return _bitcast(types.int64, types.float64, ir.DoubleType())


@njit(cache=True, nogil=True, inline="always")
def f32_bits(x: np.float32) -> int:  # RT
    """The IEEE bits of a float32 sample as an int32."""
    return _f32_bits(x)  # type: ignore[call-arg]


@njit(cache=True, nogil=True, inline="always")
def bits_f32(b: int) -> float:  # RT
    """The float32 whose IEEE bits are the int32 ``b``, widened to float."""
    return float(_bits_f32(np.int32(b)))  # type: ignore[call-arg]


_MANTISSA = (1 << 52) - 1
_ONE_BITS = 1023 << 52
_SQRT2 = math.sqrt(2.0)
_L1 = 2.0 / math.log(2.0)
_L3, _L5, _L7 = _L1 / 3.0, _L1 / 5.0, _L1 / 7.0
_LN2 = math.log(2.0)
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7 = (_LN2**n / math.factorial(n) for n in range(8))


@njit(cache=True, nogil=True, inline="always")
def fast_log2(x: float) -> float:  # RT
    """log2(x) within 5e-8 for x >= 1e-300 (smaller x reads as 1e-300): no libm call."""
    bits: int = _f64_bits(max(x, 1e-300))  # type: ignore[call-arg]
    e = (bits >> 52) - 1023
    m: float = _bits_f64((bits & _MANTISSA) | _ONE_BITS)
    if m > _SQRT2:
        m *= 0.5
        e += 1
    t = (m - 1.0) / (m + 1.0)  # |t| <= 0.1716: the atanh series converges fast
    t2 = t * t
    return e + t * (_L1 + t2 * (_L3 + t2 * (_L5 + t2 * _L7)))


@njit(cache=True, nogil=True, inline="always")
def fast_exp2(y: float) -> float:  # RT
    """2**y within 1e-8 relative for -1000 <= y <= 1000 (clamped there): no libm call."""
    y = min(max(y, -1000.0), 1000.0)
    n = math.floor(y + 0.5)
    r = y - n  # in [-0.5, 0.5): 2**r by its Taylor series in r ln 2 (exact 1 at r = 0)
    p = _E0 + r * (_E1 + r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * (_E6 + r * _E7))))))
    scale: float = _bits_f64((int(n) + 1023) << 52)  # type: ignore[call-arg]  # 2**n
    return p * scale
