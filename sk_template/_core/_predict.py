"""Prediction: every chunk's distances, reduced on the device to what a
method returns, gathered on the host."""

# SPDX-License-Identifier: BSD-3-Clause

import torch

from ._buffers import Workspace
from ._checks import check_finite_result
from ._chunks import AUTO_DISTANCE_ELEMENTS, iter_chunks, take_rows
from ._reduce import by_class, rows_within
from ._refine import expansion_margin, refine
from ._results import HostResults


def pairwise_distances(X, centroids, *, batch_size, reduce=None):
    """Distances from every row of ``X`` to every prepared centroid.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
    centroids : Centroids
    batch_size : int or "auto"
    reduce : callable, default=None
        Applied on the device to the distances of each chunk, a tensor of
        shape ``(rows, n_classes)`` in the compute dtype (such as a method of
        :class:`Posterior`); it returns a tensor with one row per row of the
        chunk.  Only what it returns comes back to the host: with it, what is
        kept for all of ``X`` is one label per row, say, however many rows
        and classes there are.

    Returns
    -------
    out : ndarray
        The distances, of shape (n_samples, n_classes) and float64, or the
        results of ``reduce`` stacked (floating point as float64).
    """
    plan = centroids.plan(X, batch_size)

    def per_chunk(start, stop, chunk, workspace):
        distances = plan.distances(chunk, workspace, rows=X[start:stop])
        return distances if reduce is None else reduce(distances)

    return _map_chunks(X, centroids.device, plan, per_chunk)


def predict_labels(X, centroids, posterior, *, batch_size):
    """Index of the predicted class of every row of ``X``: what
    ``pairwise_distances(X, centroids, reduce=posterior.predict)`` returns,
    label for label, computed with less.

    For euclidean distances with uniform priors (the estimator's defaults),
    each chunk's squared distances are read once for their smallest, its
    index, and whether any other class is within the margin of both the
    refinement (float32 rounding, see :mod:`._refine`) and
    :meth:`Posterior.predict` (a tie of probabilities) of it.  The rows where
    one is (on MNIST, a few in 10,000; on random data, 1 in 50) are set
    aside, and go through those two as :func:`pairwise_distances` would take
    them, many chunks' worth at a time (both work row by row).  The others
    are decided by their smallest squared distance, as both would decide
    them, without square roots, a second comparison, or a copy of the
    distances into rows.  Measured on a 2-core AMD EPYC (one thread, 10,000
    MNIST-shaped rows by 10 classes), that work took as long as the product
    itself.  uint8 rows on a CPU take the integer products of
    :mod:`._integer` instead, read the same way.
    """
    if not (
        centroids.metric == "euclidean"
        and posterior.uniform
        and not centroids.has_missing
    ):
        return pairwise_distances(
            X, centroids, batch_size=batch_size, reduce=posterior.predict
        )
    a, b = posterior.squared_tie_margin(centroids.dtype)
    doubts = _Doubts(X, centroids, posterior)
    plan = centroids.plan(X, batch_size)
    refined = centroids.exact is not None

    def per_chunk(start, stop, chunk, workspace):
        if plan.integer is not None:
            return _integer_labels(plan.integer, chunk, start, a, b, doubts, workspace)
        d2, sq_rows = centroids.squared(chunk)
        laid, dim = by_class(d2)
        nearest, index = laid.min(dim=dim)
        check_finite_result(
            nearest[:, None], reduce=torch.amin, dtype=d2.dtype, what="distances"
        )
        limit = nearest.mul(a).add_(b)
        margin = None
        if refined:
            # At or above the limit of the refinement, which adds the same
            # float32 values to the smallest.
            margin = expansion_margin(centroids, sq_rows)
            limit.add_(margin)
        _, doubt = rows_within(laid, dim, limit, workspace)
        if doubt.numel():
            if margin is not None:
                margin = margin.index_select(0, doubt)
            doubts.add(doubt + start, d2.index_select(0, doubt), margin)
        return index

    index = _map_chunks(X, centroids.device, plan, per_chunk)
    doubts.resolve(index)
    return index


def _integer_labels(digits, x8, start, a, b, doubts, workspace):
    """The labels of an int8 chunk (see :mod:`._integer`): each row's
    nearest class by the first two digits, the third for rows where another
    class is within their margin, and the rows within the margin of all
    three (or a tie of probabilities) set aside in ``doubts``."""
    e = digits.partial(x8)
    nearest, index = e.min(dim=1)
    limit = digits.limit(nearest, digits.error_two, a, b)
    _, flagged = rows_within(e, 1, limit, workspace)
    if flagged.numel():
        x8 = x8.index_select(0, flagged)
        e = digits.complete(e.index_select(0, flagged), x8)
        nearest, index[flagged] = e.min(dim=1)
        sq_rows = digits.squared_norms(x8, workspace)  # a closer tie margin
        limit = digits.limit(nearest, digits.error_three, a, b, sq_rows)
        _, doubt = rows_within(e, 1, limit, workspace)
        if doubt.numel():
            sq_rows = sq_rows.index_select(0, doubt)
            d2, margin = digits.squared(e.index_select(0, doubt), sq_rows)
            doubts.add(flagged[doubt] + start, d2, margin)
    return index


class _Doubts:
    """The rows :func:`predict_labels` sets aside, with their squared
    distances (and refinement margins), resolved into labels many chunks at
    a time: a resolution costs a few dozen small operations however few rows
    it has.  What is kept at once, with the rows of ``X`` a resolution reads
    again, is bounded as a chunk's distances are, whatever share of the rows
    is in doubt."""

    def __init__(self, X, centroids, posterior):
        self.X, self.centroids, self.posterior = X, centroids, posterior
        self.parts = []
        self.size = 0
        self.labels = []

    def add(self, where, values, margin):
        """Set aside the rows ``where`` of ``X``, with their squared
        distances ``values`` (rows by classes) and, if they are refined, the
        margins of :func:`~._refine.refine`."""
        self.parts.append((where, values, margin))
        # Their distances, and the rows the refinement reads again from X.
        self.size += values.numel()
        if margin is not None:
            self.size += len(where) * self.X.shape[1]
        if self.size >= AUTO_DISTANCE_ELEMENTS:
            self._flush()

    def _flush(self):
        if not self.parts:
            return
        where, values, margins = zip(*self.parts, strict=True)
        where, values = torch.cat(where), torch.cat(values)
        self.parts, self.size = [], 0
        with Workspace() as workspace:
            if self.centroids.exact is not None:
                rows = take_rows(self.X, where)
                values = refine(
                    self.centroids, values, torch.cat(margins), rows, workspace
                )
            labels = self.posterior.predict(values.sqrt_(), workspace)
        self.labels.append((where.cpu().numpy(), labels.cpu().numpy()))

    def resolve(self, index):
        """Write the labels of the rows set aside into ``index``, the
        host array of all labels."""
        self._flush()
        for where, labels in self.labels:
            index[where] = labels


def _map_chunks(X, device, plan, per_chunk):
    """``per_chunk(start, stop, chunk, workspace)`` for each chunk of ``X``
    that ``plan`` (a :class:`~._distances.Plan`) reads (rows
    ``start:stop``, see :func:`iter_chunks`; ``workspace``, the call's),
    gathered on the host."""
    results = HostResults(X.shape[0])
    with Workspace() as workspace:
        for start, stop, chunk in iter_chunks(
            X, device=device, batch_size=plan.rows, workspace=workspace, **plan.chunks
        ):
            results.put(start, stop, per_chunk(start, stop, chunk, workspace))
    return results.array()
