"""Fitting: per-class weighted sums, weights and squared sums (float64
accumulators), medians, and shrunken centroids.

``fit``, ``partial_fit``, ``sample_weight`` and merging results computed on
several workers are all one sum, :func:`class_stats`, streamed over row
chunks so that memory stays bounded whatever the number of rows.
"""

# SPDX-License-Identifier: BSD-3-Clause

from dataclasses import dataclass

import numpy as np
import torch

from ._buffers import Workspace
from ._checks import is_tensor
from ._chunks import BLOCK, MAX_EXACT_ROWS, batch_rows, iter_chunks
from ._devices import accumulator_dtype


@dataclass
class ClassStats:
    """Sufficient statistics of a nearest-mean model: sums.

    Sums are taken of ``x - shift``, a fixed reference row (the first row
    seen, for floating-point data; zeros for integers, which are summed
    exactly): the numbers stay small, so sums of squares keep their precision
    for data far from zero.

    Attributes
    ----------
    sums : ndarray of shape (n_classes, n_features), float64
        Weighted sum of ``x - shift`` over the rows of each class.
    weights : ndarray of shape (n_classes,), float64
        Total sample weight of each class (the count, for unit weights).
    sq_sums : ndarray of shape (n_features,), float64
        Weighted sum of ``(x - shift) ** 2`` over all rows.
    shift : ndarray of shape (n_features,), float64
        The reference row.

    Statistics of disjoint parts of a data set add up to the statistics of the
    whole, whatever their shifts: ``stats(A) + stats(B) == stats(A ∪ B)``.
    That is what ``partial_fit`` and fitting on several workers rest on.
    """

    sums: np.ndarray
    weights: np.ndarray
    sq_sums: np.ndarray
    shift: np.ndarray

    def rebased(self, shift):
        """The same statistics about another reference row."""
        delta = self.shift - shift  # x - shift == (x - self.shift) + delta
        # Past float64's range the result is infinite, and the estimator
        # refuses it with a ValueError (not a RuntimeWarning first).
        with np.errstate(over="ignore", invalid="ignore"):
            return self._rebased(shift, delta)

    def _rebased(self, shift, delta):
        return ClassStats(
            self.sums + self.weights[:, None] * delta,
            self.weights,
            self.sq_sums
            + 2 * delta * self.sums.sum(axis=0)
            + self.weights.sum() * delta**2,
            np.asarray(shift, dtype=np.float64),
        )

    def __add__(self, other):
        if self.sums.shape != other.sums.shape:
            raise ValueError(
                "Cannot merge class statistics of shapes "
                f"{self.sums.shape} and {other.sums.shape}."
            )
        if not np.array_equal(self.shift, other.shift):
            other = other.rebased(self.shift)
        return ClassStats(
            self.sums + other.sums,
            self.weights + other.weights,
            self.sq_sums + other.sq_sums,
            self.shift,
        )

    def means(self):
        """Class means; rows of classes with zero weight are NaN."""
        # (sum of x) / weight: for integer data exactly what np.mean gives.
        # In place: with many classes each temporary is megabytes of fresh
        # pages (see within_class_scatter).
        means = self.weights[:, None] * self.shift
        means += self.sums
        with np.errstate(invalid="ignore", divide="ignore"):
            means /= self.weights[:, None]
        means[self.weights <= 0] = np.nan
        return means

    def overall_mean(self):
        """Weighted mean of all rows."""
        total = self.weights.sum()
        return (self.sums.sum(axis=0) + total * self.shift) / total

    def mean_sq_norm(self):
        """Weighted mean of the squared Euclidean norm of the rows."""
        raw = self.rebased(np.zeros_like(self.shift))
        return raw.sq_sums.sum() / self.weights.sum()

    def within_class_scatter(self):
        """Per feature, the weighted sum of squares about the class means."""
        seen = self.weights > 0
        sums, weights = self.sums, self.weights
        if not seen.all():
            sums, weights = sums[seen], weights[seen]
        # One temporary, computed in place: (1,000 x 784) float64 arrays are
        # 6 MiB of fresh pages each, and three of them took longer than
        # summing the classes of 20,000 images.
        # (sum / weight) * sum, not sum**2 / weight: the square of a large
        # weighted sum overflows where the scatter itself does not.
        between = sums / weights[:, None]
        between *= sums
        return np.maximum(self.sq_sums - between.sum(axis=0), 0.0)


def _reference_row(X):
    """The shift the sums of ``X`` are taken about.

    Floating-point data gets its first row, so data far from zero keeps its
    precision; integers (images) are summed exactly as they are, so they get
    zeros and save a pass.
    """
    row = X[0]
    if is_tensor(row):
        floating = row.is_floating_point()
        row = row.detach().cpu().double().numpy()
    else:
        floating = np.dtype(row.dtype).kind == "f"
    # A copy: a view of a read-only X (a memory map, a pandas frame) would
    # make torch warn when it wraps the shift, and pin X in the fitted state.
    row = np.array(row, dtype=np.float64)
    return row if floating else np.zeros_like(row)


def class_stats(X, y, n_classes, sample_weight=None, *, device, batch_size):
    """Per-class weighted sums and weights, and per-feature squared sums.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    sample_weight : ndarray of shape (n_samples,) or None
        Non-negative weights; None means one per row.
    device : torch.device
    batch_size : int or "auto"

    Returns
    -------
    stats : ClassStats
    """
    n_features = X.shape[1]
    acc = accumulator_dtype(device)
    # Chunks are summed in float32 only where its sums are exact (unweighted
    # 8-bit images), else in the float64 accumulator itself: a weight, the
    # square of a float32 value and a sum of float32 rows all need more bits
    # than float32 has, and the within-class scatter (sq_sums less the
    # between-class part) cancels their rounding into garbage when the
    # classes lie far apart relative to their spread.
    exact = sample_weight is None and _sums_exactly(X)
    dtype = torch.float32 if exact else acc
    shift = _reference_row(X)
    shift_t = torch.as_tensor(shift, dtype=dtype).to(device) if shift.any() else None
    weights = torch.zeros(n_classes, dtype=acc, device=device)
    sq_sums = torch.zeros(n_features, dtype=acc, device=device)
    rows = batch_rows(batch_size, n_features, device=device, fit=True)
    rows = min(rows, MAX_EXACT_ROWS, X.shape[0])
    sums = _ClassSums(
        n_classes, n_features, dtype=dtype, acc=acc, device=device, exact=exact
    )
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if sample_weight is None:
        ones = torch.ones(rows, dtype=acc, device=device)
    else:
        # A copy (one float per row): the weights may be a read-only array.
        sample_weight = torch.tensor(np.asarray(sample_weight, dtype=np.float64))
    with Workspace() as workspace:
        for start, stop, chunk in iter_chunks(
            X,
            device=device,
            dtype=dtype,
            batch_size=rows,
            shift=shift_t,
            workspace=workspace,
        ):
            yc = y[start:stop].to(device)
            if sample_weight is None:
                weights.index_add_(0, yc, ones[: stop - start])
                sums.add(yc, chunk)
                squares = chunk.mul_(chunk)  # the chunk is not needed any more
            else:
                squares = workspace.get("squares", chunk.shape, dtype, device)
                torch.mul(chunk, chunk, out=squares)
                wc = sample_weight[start:stop].to(device, acc)
                weights.index_add_(0, yc, wc)
                wc = wc[:, None]
                chunk.mul_(wc)
                squares.mul_(wc)
                sums.add(yc, chunk)
            sq_sums.add_(_row_sum(squares, acc, exact))
    return ClassStats(
        sums.total().cpu().double().numpy(),
        weights.cpu().double().numpy(),
        sq_sums.cpu().double().numpy(),
        shift,
    )


def _sums_exactly(X):
    """Whether float32 sums of up to ``MAX_EXACT_ROWS`` rows of ``X``, and
    of ``BLOCK`` of their squares, are exact: integers of at most 8 bits
    (images)."""
    if is_tensor(X):
        return X.dtype in (torch.uint8, torch.int8, torch.bool)
    dt = np.dtype(X.dtype)
    return dt.kind in "uib" and dt.itemsize == 1


class _ClassSums:
    """Per-class sums of rows, at a cost per chunk that grows with the chunk.

    Rows are added into a partial sum (one ``index_add_``), which is added
    into the float64 total:

    * ``exact=True`` (8-bit integers, unweighted, in float32): every partial
      sum is an integer below 2**24, exact in float32, so partial sums are
      carried over ``MAX_EXACT_ROWS`` rows and the whole ``(n_classes,
      n_features)`` partial is added to the total once per 65,536 rows.
    * otherwise (rows in the accumulator dtype) each chunk's partial sum goes
      into the total -- only the rows of the classes the chunk holds (at most
      one per row of the chunk): summing by chunks rounds less than adding
      every row to a running total.
    """

    def __init__(self, n_classes, n_features, *, dtype, acc, device, exact):
        self.sums = torch.zeros((n_classes, n_features), dtype=acc, device=device)
        self.part = torch.zeros((n_classes, n_features), dtype=dtype, device=device)
        self.exact = exact
        self.pending = 0  # rows in self.part

    def add(self, y, rows):
        """Add ``rows`` (a tensor) to the sums of their classes ``y``."""
        if self.exact:
            if self.pending + len(rows) > MAX_EXACT_ROWS:
                self._flush_all()
            self.part.index_add_(0, y, rows)
            self.pending += len(rows)
            return
        self.part.index_add_(0, y, rows)
        present = torch.unique(y)
        self.sums.index_add_(0, present, self.part[present].to(self.sums.dtype))
        self.part.index_fill_(0, present, 0)

    def _flush_all(self):
        if self.pending:
            self.sums.add_(self.part)
            self.part.zero_()
            self.pending = 0

    def total(self):
        """The sums of every row added so far, in the accumulator dtype."""
        self._flush_all()
        return self.sums


def class_medians(X, y, n_classes, sample_weight=None):
    """Feature-wise (weighted) median of each class, and the scatter about it.

    The median needs every row of a class at once, so ``X`` is read class by
    class on the host.  Without weights it is :func:`numpy.median`, exactly as
    :class:`sklearn.neighbors.NearestCentroid` computes it; integer weights
    give the median of the repeated rows.

    Returns
    -------
    medians : ndarray of shape (n_classes, n_features)
        NaN rows for classes with no weight.
    scatter : ndarray of shape (n_features,)
        Weighted sum of squares of the rows about their class median.
    """
    if is_tensor(X):
        X = X.detach().cpu().numpy()
    medians = np.full((n_classes, X.shape[1]), np.nan)
    scatter = np.zeros(X.shape[1])
    for k in range(n_classes):
        rows = np.flatnonzero(y == k)
        w = None if sample_weight is None else sample_weight[rows]
        if w is not None:
            rows, w = rows[w > 0], w[w > 0]
        if rows.size == 0:
            continue
        Xk = np.asarray(X[rows], dtype=np.float64)
        medians[k] = np.median(Xk, axis=0) if w is None else _weighted_median(Xk, w)
        deviation = (Xk - medians[k]) ** 2
        scatter += deviation.sum(axis=0) if w is None else w @ deviation
    return medians, scatter


def _weighted_median(X, w):
    """Column-wise weighted median; the median of repeated rows for integer
    weights (the mean of the two middle values when the total is even)."""
    order = np.argsort(X, axis=0, kind="stable")
    values = np.take_along_axis(X, order, axis=0)
    cum = np.cumsum(w[order], axis=0)
    half = cum[-1] / 2
    low = (cum < half).sum(axis=0)  # first index with cum >= half
    high = (cum <= half).sum(axis=0)  # first index with cum > half
    high = np.minimum(high, len(X) - 1)
    cols = np.arange(X.shape[1])
    return (values[low, cols] + values[high, cols]) / 2


def shrink_centroids(centroids, overall_mean, within_std, weights, threshold):
    """Nearest shrunken centroids (Tibshirani et al., 2002), as scikit-learn.

    Each centroid's offset ``o`` from the overall mean is standardized by
    ``ms = m_k * (s_j + median(s))`` and soft thresholded by ``threshold``;
    features whose offsets all shrink to zero stop telling the classes apart.
    The shrunk offset is ``ms * sign(o) * max(|o| / ms - t, 0) = sign(o) *
    max(|o| - t * ms, 0)``, so where ``ms`` is zero (a feature without
    within-class spread when more than half of the features have none, or a
    class that holds all the weight) the offset is kept as it is: the limit
    as ``ms`` goes to zero, where scikit-learn computes NaN.

    Returns
    -------
    deviations : ndarray of shape (n_classes, n_features)
        Standardized offsets ``o / ms`` after shrinking; 0 where ``ms`` is
        zero (no finite standardized offset), NaN for classes with no weight.
    centroids : ndarray of shape (n_classes, n_features)
        The shrunken centroids.
    """
    total = weights.sum()
    # In place where it can be (see ClassStats.within_class_scatter).
    deviations = centroids - overall_mean  # the offsets, then standardized
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.sqrt(1.0 / weights - 1.0 / total)
        ms = m[:, None] * (within_std + np.median(within_std))
        deviations /= ms
    unscaled = ms == 0
    if unscaled.any():
        unscaled &= ~np.isnan(centroids)
        deviations[unscaled] = 0.0
    if threshold:
        deviations = np.sign(deviations) * np.clip(
            np.abs(deviations) - threshold, 0, None
        )
        # scikit-learn's arithmetic where ms > 0; the limit, the unshrunk
        # offset, where it is zero.
        centroids = np.where(unscaled, centroids, overall_mean + ms * deviations)
    return deviations, centroids


def _row_sum(t, dtype, exact=False):
    """Sum of the rows of ``t``: partial sums of ``BLOCK`` rows in ``t``'s
    dtype (exact for the squares of uint8 images in float32), their total in
    ``dtype``.  Much faster than upcasting every element.  The rows left over
    are summed in ``dtype`` too, or, when ``exact`` says that ``t`` holds the
    squares of 8-bit integers, in ``t``'s dtype: the same exact sum, ten times
    faster (wide images make chunks of fewer than ``BLOCK`` rows)."""
    n, d = t.shape
    full = n - n % BLOCK
    total = t[:full].view(-1, BLOCK, d).sum(dim=1).sum(dim=0, dtype=dtype)
    if full < n:
        rest = t[full:]
        total += rest.sum(dim=0) if exact else rest.sum(dim=0, dtype=dtype)
    return total
