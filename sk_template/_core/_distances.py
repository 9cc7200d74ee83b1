"""Centroids prepared on a device, and the distances of a chunk to them."""

# SPDX-License-Identifier: BSD-3-Clause

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import check_finite_result
from ._chunks import batch_rows
from ._integer import (
    IntegerCentroids,
    int_mm_is_exact,
    integer_centroids,
    integer_distances,
    integer_rows,
)
from ._manhattan import (
    compiled_kernel,
    compiled_manhattan,
    eager_manhattan,
    tile_centroids,
)
from ._refine import expansion_error, expansion_margin, refine

METRICS = ("euclidean", "manhattan", "cosine")

# Classes from which the products of rows and centroids are computed as
# (rows, d) @ (d, n_classes); measured on a 2-core AMD EPYC: 1.7x faster than
# the other orientation at 100 classes, 0.6x at 10.
MANY_CLASSES = 64


@dataclass
class Plan:
    """How one call goes through ``X``: rows per chunk, what
    :func:`~._chunks.iter_chunks` makes of them (``chunks``: its ``dtype``
    and ``shift`` or ``convert``), and ``distances(chunk, workspace,
    rows)``, the distances of each (``rows``, the rows of ``X`` it was made
    from).  ``integer``: the :class:`~._integer.IntegerCentroids` when the
    chunks are int8 rows."""

    rows: int
    chunks: dict
    distances: object
    integer: IntegerCentroids = field(default=None)


class Centroids:
    """Centroids prepared on a device for one metric and dtype.

    Classes with a NaN centroid (no sample seen yet) get an infinite distance.
    Rebuilt lazily by the estimator; never pickled.
    """

    def __init__(self, centroids, metric, device, dtype):
        if metric not in METRICS:
            raise ValueError(f"Unknown metric {metric!r}; expected one of {METRICS}.")
        centroids = np.asarray(centroids, dtype=np.float64)
        self.metric = metric
        self.device = device
        self.dtype = dtype
        missing = np.isnan(centroids).any(axis=1)
        centroids = np.where(missing[:, None], 0.0, centroids)
        self.missing = torch.as_tensor(missing, device=device)
        self.has_missing = bool(missing.any())
        self.exact = None
        self._values = centroids
        self._integer = None
        if metric in ("euclidean", "manhattan"):
            # Work relative to the centroids' mean: distances do not change,
            # the numbers get smaller, and the expansions below lose less to
            # rounding.  The shift is a value of ``dtype``, so that rows and
            # centroids are shifted by the same numbers.
            shift = centroids.mean(axis=0)
            shift = torch.as_tensor(shift).to(dtype).double().numpy()
            shifted = centroids - shift
            self.shift = torch.as_tensor(shift, dtype=dtype).to(device)
            self.C = torch.as_tensor(shifted, dtype=dtype).to(device)
            # The centroids' term of each expansion: |c|^2 or sum c.
            term = shifted**2 if metric == "euclidean" else shifted
            self.c_term = torch.as_tensor(term.sum(axis=1), dtype=dtype).to(device)
            if metric == "manhattan":
                self.C_tiled = tile_centroids(self.C)  # the compiled kernel's
            if (
                metric == "euclidean"
                and dtype != torch.float64
                and device.type != "mps"
            ):
                # Rows whose nearest centroids the expansion cannot tell apart
                # are recomputed from these (see _refine).
                self.exact = torch.as_tensor(shifted, device=device)
                self.exact_shift = torch.as_tensor(shift, device=device)
                self.c_norm = float(np.linalg.norm(shifted, axis=1).max())
                self.tolerance = expansion_error(centroids.shape[1], dtype)
                self.unit = torch.finfo(dtype).eps / 2
        else:  # cosine
            self.shift = None
            norms = np.linalg.norm(centroids, axis=1, keepdims=True)
            unit = centroids / np.where(norms > 0, norms, 1.0)
            self.C = torch.as_tensor(unit, dtype=dtype).to(device)

    def integer(self):
        """These centroids as int8 digits for uint8 rows (see
        :mod:`._integer`), or None where that path does not apply: not
        euclidean, not on a CPU, no float64 recomputation, centroids outside
        [0, 255], or no exact ``torch._int_mm`` here."""
        if self._integer is None:
            self._integer = False
            if (
                self.metric == "euclidean"
                and self.device.type == "cpu"
                and self.exact is not None
                and int_mm_is_exact()
            ):
                try:
                    self._integer = IntegerCentroids(self._values)
                except ValueError:
                    pass
        return self._integer or None

    def plan(self, X, batch_size):
        """The :class:`Plan` of a call on ``X`` with ``batch_size``: int8
        rows for uint8 images on a CPU (euclidean, see :mod:`._integer`),
        the compiled Manhattan kernel where it pays (see :mod:`._compile`),
        else float chunks shifted by :attr:`shift` and :meth:`distances`."""
        n_rows, n_features = X.shape
        n_classes = self.C.shape[0]
        digits = integer_centroids(X, self)
        if digits is not None:
            return Plan(
                integer_rows(batch_size, n_features, n_classes),
                {"dtype": torch.int8, "convert": IntegerCentroids.to_signed},
                functools.partial(integer_distances, digits, self),
                digits,
            )
        rows = batch_rows(batch_size, n_features, n_classes, self.device)
        chunks = {"dtype": self.dtype, "shift": self.shift}
        if self.metric == "manhattan":
            kernel = compiled_kernel(self.device, n_rows * n_classes * n_features)
            if kernel is not None:
                compiled = functools.partial(self._compiled_manhattan, kernel)
                return Plan(rows, chunks, compiled)
        return Plan(rows, chunks, self.distances)

    def _compiled_manhattan(self, kernel, chunk, workspace, rows=None):
        """Manhattan distances of a chunk by the compiled ``kernel``, or by
        the eager path if it fails."""
        out = compiled_manhattan(kernel, chunk, self.C_tiled, workspace)
        if out is None:
            return self.distances(chunk, workspace)
        out = out[:, : self.C.shape[0]]  # the padding classes dropped
        return self._finish(out if out.is_contiguous() else out.contiguous())

    def distances(self, chunk, workspace, rows=None):
        """Distances from each row of ``chunk`` to each centroid.

        ``chunk`` holds the rows minus :attr:`shift` (as
        :func:`~._chunks.iter_chunks` gives them) and may be overwritten;
        ``workspace`` lends the scratch tensors.  ``rows``, the rows of
        ``X`` the chunk was made from, lets the rows whose nearest centroid
        float32 cannot tell be recomputed from them in float64 (see
        :mod:`._refine`).
        """
        if self.metric == "euclidean":
            d2, sq_rows = self.squared(chunk)
            if self.exact is not None and rows is not None:
                margin = expansion_margin(self, sq_rows)
                d2 = refine(self, d2, margin, rows, workspace)
            out = d2.sqrt_()
        elif self.metric == "manhattan":
            out = eager_manhattan(chunk, self.C, self.c_term, workspace)
        else:  # cosine
            norms = torch.linalg.vector_norm(chunk, dim=1, keepdim=True)
            # An infinite norm would make every distance 1.
            check_finite_result(
                norms, reduce=torch.amax, dtype=chunk.dtype, what="row norms"
            )
            chunk.div_(norms.clamp_min_(torch.finfo(chunk.dtype).tiny))
            out = self.products(chunk).neg_().add_(1).clamp_(0, 2)
        return self._finish(out)

    def _finish(self, out):
        """Distances checked for overflow, and infinite to missing classes."""
        if self.metric != "cosine":
            # Before the missing classes are infinite: some class is present.
            check_finite_result(
                out, reduce=torch.amin, dtype=out.dtype, what="distances"
            )
        if self.has_missing:
            out.masked_fill_(self.missing, math.inf)
        return out

    def squared(self, chunk):
        """Squared euclidean distances of a chunk, as the expansion gives
        them (not refined, missing classes not yet infinite), and the rows'
        squared norms.  The distances are laid out as :meth:`products`
        gives them: transposed for few classes."""
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2.
        cross = self.products(chunk)
        sq_rows = torch.linalg.vector_norm(chunk, dim=1).square_()
        # c_term - 2 x.c in one pass: -2 x.c is exact, so this is the
        # same single rounding as a multiplication and an addition.
        d2 = torch.add(self.c_term, cross, alpha=-2, out=cross)
        return d2.add_(sq_rows[:, None]).clamp_min_(0), sq_rows

    def products(self, chunk):
        """``x . c`` for every row and class, of shape (rows, n_classes).

        For fewer than ``MANY_CLASSES`` (64) classes, (n_classes, d) @
        (d, rows) is the faster product; from 64 on, (rows, d) @ (d,
        n_classes) is as fast and lays its result out row by row, as the
        reductions along classes that follow read it (an argmin along a
        transposed result is several times slower).  The two orientations
        may round differently; the rows whose ranking that could change are
        refined (see :mod:`._refine`).
        """
        if self.C.shape[0] < MANY_CLASSES:
            return torch.mm(self.C, chunk.T).T
        return torch.mm(chunk, self.C.T)
