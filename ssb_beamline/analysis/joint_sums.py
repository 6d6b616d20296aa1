"""Running sums of the joint reference fit, accumulated while a scan runs.

The default normalisation of :func:`~ssb_beamline.analysis.analyse_xanes_stack`
fits every spectrum with ``mu = a + b x + c0 R0 + c1 R1``: a linear least-squares
problem whose right-hand side ``B^T mu`` (and the ``|mu|^2`` of its residual) is a
sum over energies.  A live analysis adds each frame to these sums as it arrives,
so that at the end of the scan only the edge window is left to read: the final
maps then cost a fraction of a full pass over the stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._parallel import default_workers, run_chunks
from .edge_fit import X_SCALE_EV
from .lcf import reference_matrix

__all__ = ["JointFitAccumulator", "JointFitSums", "sums_to_coefficients"]

log = logging.getLogger(__name__)

#: Frames gathered before they are added: each addition reads and writes the
#: (4, P) sums once, so batching divides that traffic by the batch size.
DEFAULT_BATCH = 16
_CHUNK_PIXELS = 1 << 14


@dataclass(frozen=True)
class JointFitSums:
    """Sums over all energies of a stack, for the joint fit of its spectra.

    With the basis ``B[k] = [1, (E_k - center_ev) / X_SCALE_EV, R0(E_k), R1(E_k)]``
    and ``D_k = mu_k - reference_frame``:

    Attributes
    ----------
    energies : ndarray, shape (N,)
        Energies of the stack, eV.
    center_ev : float
        Energy at which the basis' linear term is zero.
    projections : ndarray of float64, shape (4, P)
        ``sum_k B[k] D_k`` per pixel.
    sum_squares : ndarray of float64, shape (P,)
        ``sum_k D_k ** 2`` per pixel.
    reference_frame : ndarray of float32, shape (P,)
        The frame subtracted (the first frame added).
    """

    energies: np.ndarray
    center_ev: float
    projections: np.ndarray
    sum_squares: np.ndarray
    reference_frame: np.ndarray


def joint_basis(energies: np.ndarray, references_at_e: np.ndarray, center_ev: float) -> np.ndarray:
    """``[1, (E - center) / X_SCALE_EV, R0, R1]`` as an (N, 4) float64 matrix."""
    x = (np.asarray(energies, np.float64) - center_ev) / X_SCALE_EV
    return np.stack([np.ones_like(x), x, references_at_e[0], references_at_e[1]], axis=1)


class JointFitAccumulator:
    """Add the frames of a XANES stack, as they are filled in any order, to :class:`JointFitSums`.

    Parameters
    ----------
    stack : ndarray of float32, shape (N, ...)
        The stack the frames are written into (e.g. the live callback's absorbance
        stack); row ``k`` is read once :meth:`add` says it is final.
    energies : ndarray, shape (N,)
        The planned energies of the scan, eV.
    references : object
        The two references (reduced, oxidised), in any form accepted by
        :func:`~ssb_beamline.analysis.reference_matrix`.
    reference_energies : ndarray, optional
        Energies of array references.
    batch : int
        Frames gathered before they are summed.
    workers : int, optional
        Threads for the summation.

    Examples
    --------
    >>> from ssb_beamline.reference_data import ni_k_edge_references
    >>> e = np.linspace(8300.0, 8450.0, 12)
    >>> stack = np.ones((12, 2, 3), np.float32)
    >>> acc = JointFitAccumulator(stack, e, ni_k_edge_references())
    >>> for k in range(12):
    ...     acc.add(k)
    >>> sums = acc.result()
    >>> sums.projections.shape, float(abs(sums.projections).max())
    ((4, 6), 0.0)
    """

    def __init__(
        self,
        stack: np.ndarray,
        energies: np.ndarray,
        references: object,
        *,
        reference_energies: np.ndarray | None = None,
        batch: int = DEFAULT_BATCH,
        workers: int | None = None,
    ) -> None:
        self.energies = np.asarray(energies, np.float64)
        n = self.energies.size
        if not isinstance(stack, np.ndarray) or stack.dtype != np.float32 or stack.shape[0] != n:
            raise ValueError(
                f"stack must be a float32 array with one row per energy ({n}); got "
                f"{getattr(stack, 'dtype', type(stack))} of shape {np.shape(stack)}."
            )
        if not stack.flags.c_contiguous:
            raise ValueError("stack must be C-contiguous (e.g. allocated with np.empty).")
        self._stack = stack.reshape(n, -1)
        refs = reference_matrix(references, self.energies, reference_energies=reference_energies)
        if refs.shape[0] != 2:
            raise ValueError(
                f"the joint fit takes exactly 2 references (reduced, oxidised); got "
                f"{refs.shape[0]}."
            )
        self.center_ev = float(self.energies.mean())
        self._basis = joint_basis(self.energies, refs, self.center_ev)
        self.n_pixels = self._stack.shape[1]
        self.batch = max(1, int(batch))
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._added = np.zeros(n, bool)
        self._pending: list[int] = []
        # written now (not left to np.zeros' lazy pages), so that the first batch
        # does not pay a page fault per 4 kB of the sums
        self._projections = np.empty((4, self.n_pixels), np.float64)
        self._projections.fill(0.0)
        self._sum_squares = np.empty(self.n_pixels, np.float64)
        self._sum_squares.fill(0.0)
        self._reference: np.ndarray | None = None
        self.broken: str | None = None

    def add(self, index: int) -> None:
        """Row ``index`` of the stack is final: add it to the sums (in batches)."""
        if self.broken:
            return
        if self._added[index]:
            self.broken = f"energy index {index} was added twice"
            log.warning("joint-fit sums abandoned (%s); the end pass reads the stack", self.broken)
            return
        self._added[index] = True
        if self._reference is None:
            self._reference = self._stack[index].copy()
        self._pending.append(int(index))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Sum the pending rows."""
        if not self._pending or self.broken:
            return
        rows = np.array(self._pending, np.intp)
        basis_t = np.ascontiguousarray(self._basis[rows].T, dtype=np.float32)  # (4, R)
        self._pending.clear()
        stack, ref = self._stack, self._reference
        proj, ss = self._projections, self._sum_squares

        def work(s: slice) -> None:
            # the batch's rows of this pixel chunk (a copy that stays in cache), minus
            # the reference; float32 products over one batch, float64 across batches
            block = stack[rows, s.start : s.stop]
            np.subtract(block, ref[s], out=block)
            proj[:, s] += basis_t @ block
            ss[s] += np.einsum("ij,ij->j", block, block)

        run_chunks(work, self.n_pixels, _CHUNK_PIXELS, self.workers)

    @property
    def complete(self) -> bool:
        """Every planned energy has been added exactly once."""
        return self.broken is None and bool(self._added.all())

    def result(self) -> JointFitSums | None:
        """The sums, or None unless every energy was added exactly once."""
        self.flush()
        if not self.complete or self._reference is None:
            return None
        return JointFitSums(
            energies=self.energies,
            center_ev=self.center_ev,
            projections=self._projections,
            sum_squares=self._sum_squares,
            reference_frame=self._reference,
        )


def sums_to_coefficients(
    sums: JointFitSums, e: np.ndarray, e0: float, gram: np.ndarray, fit_sl: slice, p: int
) -> np.ndarray:
    """(4, 4) ``M`` with joint-fit coefficients ``c = M @ sums.projections``.

    The sums use the reduced energy ``xs = (E - center) / X_SCALE_EV``; the fit uses
    ``x = (E - e0) / X_SCALE_EV = xs - delta``, so ``B = Bs T`` with ``T[0, 1] = -delta``
    and ``c = G^-1 B^T D = G^-1 T^T (Bs^T D)``.

    Parameters
    ----------
    sums : JointFitSums
        The running sums accumulated frame by frame over the stack (projections (4, P)
        on the reduced basis around ``sums.center_ev``).
    e : numpy.ndarray, shape (N,)
        The stack's energies, eV; must equal ``sums.energies`` exactly.
    e0 : float
        Edge energy of the fit's basis, eV (the reduced energy is taken around it).
    gram : numpy.ndarray, shape (4, 4)
        Gram matrix ``G = B^T B`` of the fit basis over the energies.
    fit_sl : slice
        Energies the fit uses; must be every energy (``slice(0, N)``): the sums cannot
        leave energies out.
    p : int
        Number of pixels of the stack the sums must cover.

    Returns
    -------
    numpy.ndarray, shape (4, 4)
        ``M``: the joint-fit coefficients are ``M @ sums.projections``.

    Raises
    ------
    ValueError
        If ``fit_sl`` leaves energies out, the sums were taken over other energies, or
        they hold another number of pixels than ``p`` (the message says to drop
        ``joint_sums`` or accumulate them over this stack).
    """
    n = e.size
    if fit_sl != slice(0, n):
        raise ValueError(
            "joint_sums cover every energy; they cannot be used with an lcf_range that "
            "leaves energies out. Drop joint_sums or lcf_range."
        )
    if sums.energies.shape != e.shape or not np.array_equal(sums.energies, e):
        raise ValueError(
            "joint_sums were accumulated over other energies than the stack's; "
            "accumulate them over the stack's energies or drop joint_sums."
        )
    if sums.projections.shape != (4, p) or sums.sum_squares.shape != (p,):
        raise ValueError(
            f"joint_sums hold {sums.projections.shape[-1]} pixels, the stack {p}; "
            "accumulate them over this stack or drop joint_sums."
        )
    transform = np.eye(4)
    transform[0, 1] = -(e0 - sums.center_ev) / X_SCALE_EV
    return np.linalg.solve(gram, transform.T)
