"""The live XANES analysis' stack and normalised stack, their pages mapped on a helper thread.

A 100-energy 2048 x 2048 run needs two 1.7 GB float32 arrays: the absorbance
stack (written from the first image on) and the normalised stack (written at the
end). Mapping fresh memory costs ~0.7 s per GiB on the project's VM (see
:func:`ssb_beamline._memory.populated_zeros`), 2.4 s for the two, and it used to
be paid on the callback's thread: the stack when the first detector stream was
described, the normalised stack after the maps. Here both are mapped, one after
the other, on a helper thread started when the first detector stream is
described, while the callback handles the darks and flats (and the images, for
the normalised stack); the callback waits only if it needs an array before it is
ready. The standard library's ``ThreadPoolExecutor`` does the work; this module
only decides when.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ssb_beamline._memory import populated_zeros

__all__ = ["StackBuffers"]


class StackBuffers:
    """A run's zeroed float32 stack (and normalised stack), mapped on a helper thread.

    Parameters
    ----------
    shape : tuple of int
        ``(energies, H, W)`` of the stack.
    normalized : bool
        Also map a normalised stack of the same shape (after the stack).

    Examples
    --------
    >>> buffers = StackBuffers((3, 4, 4), normalized=True)
    >>> stack = buffers.stack()
    >>> stack.shape, stack.dtype.name, bool(stack.any())
    ((3, 4, 4), 'float32', False)
    >>> buffers.normalized((2, 4, 4)).shape  # two rows analysed: the first two
    (2, 4, 4)
    """

    def __init__(self, shape: tuple[int, ...], *, normalized: bool) -> None:
        self.shape = tuple(int(n) for n in shape)
        pool = ThreadPoolExecutor(1, thread_name_prefix="xanes-memory")
        self._stack: Future = pool.submit(populated_zeros, self.shape, np.float32)
        self._normalized: Future | None = None
        if normalized:
            self._normalized = pool.submit(populated_zeros, self.shape, np.float32)
        pool.shutdown(wait=False)  # the thread ends once both are mapped

    def stack(self) -> np.ndarray:
        """The stack, zeroed (waits until it is mapped)."""
        return self._stack.result()

    def normalized(self, shape: tuple[int, ...]) -> np.ndarray:
        """A zeroed float32 array of ``shape`` for the normalised stack.

        The one mapped ahead (once) when ``shape`` is the stack's or fewer energies of
        it, else a new one.
        """
        shape = tuple(int(n) for n in shape)
        ahead, self._normalized = self._normalized, None
        if ahead is not None and shape[1:] == self.shape[1:] and shape[0] <= self.shape[0]:
            return ahead.result()[: shape[0]]
        return populated_zeros(shape, np.float32)
