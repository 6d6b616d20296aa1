"""A non-temporal (streaming) store for the numba kernels: write without reading first.

A plain store to memory that is not in the cache first reads the cache line it
lands in (a "read for ownership"), so a kernel that writes a 16 MB float32 frame
moves 32 MB.  The per-frame absorbance pass writes each frame once and reads it
only much later (the joint-fit sums, the maps at the end of the run), so its
stores bypass the cache: x86 ``movnt`` stores go through write-combining
buffers straight to memory.  That cuts the pass's memory traffic by about a
third (14 -> 10 bytes per pixel), which is what it is bound by on a shared node.

numba has no API for this, so :func:`store_nt` is an ``@intrinsic`` that emits
an ordinary LLVM store tagged ``!nontemporal`` (LLVM's documented hint); on
targets without such stores LLVM emits a plain store, so the result is the same
everywhere.  The kernels are ``nogil`` and return before any other thread reads
what they wrote (the thread pool's hand-off is a full memory barrier), so the
weaker ordering of streaming stores is never observable.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["store_nt"]


@intrinsic
def store_nt(typingctx, arr, index, value):
    """``arr[index] = value`` as a non-temporal store (1-D array, no bounds check).

    Use only inside ``@njit`` kernels, for output written once and not read
    again soon.  ``value`` must have the array's dtype.
    """
    if not isinstance(arr, types.Array) or arr.ndim != 1 or arr.dtype != value:
        return None
    if not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [idx], wraparound=False, boundscheck=False
        )
        store = builder.store(args[2], ptr)
        hint = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        store.set_metadata("nontemporal", hint)
        return context.get_dummy_value()

    return types.void(arr, index, value), codegen
