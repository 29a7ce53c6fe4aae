"""Everything ``render_block`` needs, in one object (a numba StructRef).

Passing numpy arrays to a jitted function costs a runtime allocation per array per call;
passing typed lists costs none, but unboxing each list costs about 0.65 us, and the block
took twelve: 8 us of every block, a tenth of an 8-track session's budget. One StructRef
holding the twelve lists unboxes in about 0.7 us.
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.experimental import structref

FIELDS = ["f1", "f2", "f3", "i1", "i2", "io", "states", "params", "clips", "inputs",
          "input_idx", "w1"]


@structref.register
class BlockArgsType(types.StructRef):
    def preprocess_fields(self, fields: Any) -> Any:
        return tuple((name, types.unliteral(typ))  # type: ignore[no-untyped-call]
                     for name, typ in fields)


class BlockArgs(structref.StructRefProxy):
    """The typed lists of one graph's ``render_block`` call (engine.render names the slots
    in each). Made on the control side when a graph is bound."""

    def __new__(cls, *lists: Any) -> BlockArgs:
        return structref.StructRefProxy.__new__(  # type: ignore[no-any-return,no-untyped-call]
            cls, *lists)


structref.define_proxy(BlockArgs, BlockArgsType, FIELDS)  # type: ignore[no-untyped-call]
