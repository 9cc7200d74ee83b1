"""Euclidean distances of uint8 rows (images) by exact integer products.

A uint8 row ``x`` less 128 is an int8 row ``x'``, exactly.  A centroid
``c`` with values in [0, 255], less 128, is written in three int8 digits
and a remainder::

    c' = c - 128 = (65536 h + 256 m + l) / 65536 + r,    |r| <= 2**-17

so that ``x' . c'`` is three int8 matrix products, exact in int32 (torch's
``_int_mm``: oneDNN's VNNI / AMX kernels on x86), plus ``x' . r``, at most
``2**-17 |x'|_1``.  With ``e = |c'|^2 - 2 x' . c'`` the squared distance is
``|x'|^2 + e``, and ``|x'|^2`` is the same for every class of a row, so
``e`` alone ranks the classes.

Against the float32 expansion of :mod:`._distances` this reads a quarter of
the bytes (uint8 rows are never upcast), multiplies 3-9x faster than a
float32 GEMM on a 2-core Xeon with AVX-512, and is far more precise: the
error of ``e`` is a few units of float32 rounding of ``e`` itself, not
``n u |x| |c|``, so fewer rows need the float64 recomputation of
:mod:`._refine`.

``predict`` takes the first two digits (``h``, ``m``: two thirds of the
work), which place every class within ``2**-8 |l|_1 + d / 512`` of its
exact ``e``.  Rows with another class within that margin of their nearest
(on random data, 2-15 in 100; on MNIST, a few in 10,000) get the third
digit, and those still within the margin of three digits, or of a tie of
probabilities, the float64 recomputation and the probabilities, as the
float path's doubtful rows do.  Every other method computes all three
digits for every row: the same values, bit for bit, so ``predict`` stays
the argmax of ``predict_proba``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import functools
import math

import numpy as np
import torch

from ._checks import is_tensor
from ._refine import refine

# Features whose int8 products int32 holds: |x' . h| <= 128 * 128 * d < 2**31.
MAX_FEATURES = 2**17 - 1

# Rows of one chunk when ``batch_size="auto"``: 16 MiB of int8 rows, and at
# most 2**20 products of rows by classes (8 MiB of int32 for the first two
# digits).  Measured on a 2-core Xeon (one thread, interleaved, predicting
# with the default priors): 10,000 x 784 rows by 10 classes took 14.4 ms in
# chunks of 640 rows, 9.2 in 1,280, 7.2 in 5,120 and in 10,000; 5,000 x 784
# by 1,000 classes 59 ms in chunks of 256, 43 in 1,024, 53 in 2,048, 78 in
# 4,096; 5,000 x 12,288 by 200 classes 204 ms in chunks of 256, 118 in
# 512, 99 in 1,024, 104 in 2,048, 158 in 5,000.
AUTO_CHUNK_BYTES = 2**24
AUTO_PRODUCTS = 2**20

_UNIT = torch.finfo(torch.float32).eps / 2
_128 = torch.tensor(128, dtype=torch.uint8)


def integer_rows(batch_size, n_features, n_classes):
    """Rows per int8 chunk for a ``batch_size`` parameter."""
    if batch_size != "auto":
        return int(batch_size)
    rows = min(AUTO_CHUNK_BYTES // n_features, AUTO_PRODUCTS // n_classes)
    return max(1, rows)


def integer_centroids(X, centroids):
    """The :class:`IntegerCentroids` the rows of ``X`` take to ``centroids``
    (a prepared :class:`~._distances.Centroids`), or None: only uint8 rows
    on a CPU do (see :meth:`~._distances.Centroids.integer` for the rest)."""
    if X.shape[1] > MAX_FEATURES:
        return None
    if is_tensor(X):
        if X.dtype != torch.uint8 or X.device.type != "cpu":
            return None
    elif np.dtype(X.dtype) != np.uint8:
        return None
    return centroids.integer()


@functools.cache
def int_mm_is_exact():
    """Whether ``torch._int_mm`` exists on this CPU and sums exactly: a
    product whose sums reach 2**30 (saturating 16-bit intermediates, as some
    int8 kernels use, would not)."""
    try:
        a = torch.full((3, 65536), -128, dtype=torch.int8)
        b = torch.full((65536, 5), -128, dtype=torch.int8)
        b[::2, 1] = 127
        out = torch._int_mm(a, b)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    expected = a[:1].double() @ b.double()
    return bool((out.double() == expected).all())


class IntegerCentroids:
    """Centroids as int8 digits (see the module's docstring), or refused.

    Parameters
    ----------
    centroids : ndarray of shape (n_classes, n_features)
        float64, with no NaN.
    """

    def __init__(self, centroids):
        shifted = centroids - 128.0
        q = np.rint(shifted * 65536.0).astype(np.int64)
        low = ((q + 128) & 255) - 128
        q = (q - low) >> 8
        mid = ((q + 128) & 255) - 128
        high = (q - mid) >> 8
        if high.min() < -128 or high.max() > 127:  # values outside [0, 255]
            raise ValueError("centroids outside [0, 255]")
        n_features = centroids.shape[1]
        digits = [torch.from_numpy(v.T.astype(np.int8)) for v in (high, mid, low)]
        # (d, 2K): the first two digits, in one product; (d, K): the third.
        self.Q2 = torch.cat(digits[:2], dim=1).contiguous()
        self.Q3 = digits[2].contiguous()
        sq = (shifted**2).sum(axis=1)
        self.sq_centroids = torch.from_numpy(sq).float()
        # Float32 rounding of e (at most 6 roundings of the sizes its terms
        # can have: |H| <= 128 |h|_1, |M| <= 128 |m|_1, |L| <= 128 |l|_1),
        # and the digits left out: the third (2**-15 |L|) and r.
        size = (
            sq
            + 256 * np.abs(high).sum(axis=1)
            + np.abs(mid).sum(axis=1)
            + np.abs(low).sum(axis=1) / 256
        )
        rounding = 6 * _UNIT * float(size.max())
        remainder = n_features / 512  # 2 |x' . r| <= 2**-16 * 128 d
        self.error_two = float(np.abs(low).sum(axis=1).max()) / 256 + remainder
        self.error_two += rounding
        self.error_three = remainder + rounding
        # |x'|^2 <= 128**2 d: the squared distance a tie margin scales with.
        self.max_sq_row = 16384.0 * n_features

    # ------------------------------------------------------------------ rows
    @staticmethod
    def to_signed(part, chunk):
        """``chunk[:] = part - 128`` for uint8 ``part``, int8 ``chunk``: the
        uint8 difference wraps around to the two's complement of the int8
        one.  (A uint8 tensor operand: twice the speed of a Python int's,
        and of ``bitwise_xor``.)"""
        torch.sub(part, _128, out=chunk.view(torch.uint8))

    @staticmethod
    def squared_norms(x8, workspace):
        """``|x'|^2`` of each row of an int8 chunk, exactly, as float64.

        Squares are at most 2**14, so float32 sums up to 1,024 of them
        exactly in any order (whatever threads split a row into): blocks of
        1,024 features in float32, their totals in float64; a few rows at a
        time, in a buffer of at most 2**20 values."""
        rows, d = x8.shape
        total = torch.empty(rows, dtype=torch.float64)
        step = max(1, 2**20 // d)
        full = d - d % 1024
        for i in range(0, rows, step):
            part = x8[i : i + step]
            squares = workspace.get("squares", part.shape, torch.float32, x8.device)
            squares.copy_(part).square_()
            total[i : i + step] = squares[:, full:].sum(dim=1)
            if full:
                blocks = squares[:, :full].view(len(part), -1, 1024).sum(dim=2)
                total[i : i + step] += blocks.sum(dim=1, dtype=torch.float64)
        return total

    # --------------------------------------------------------- the products
    def partial(self, x8):
        """``e`` of every row and class from the first two digits, float32,
        of shape (rows, n_classes)."""
        n_classes = self.Q3.shape[1]
        products = torch._int_mm(x8, self.Q2)
        e = torch.add(self.sq_centroids, products[:, :n_classes], alpha=-2)
        return e.sub_(products[:, n_classes:], alpha=2.0**-7)

    def complete(self, e, x8):
        """``e`` (from :meth:`partial`, of the rows ``x8``) with the third
        digit's products added, in place."""
        return e.sub_(torch._int_mm(x8, self.Q3), alpha=2.0**-15)

    def full(self, x8):
        """``e`` of every row and class from all three digits."""
        return self.complete(self.partial(x8), x8)

    # ------------------------------------------------------------- margins
    def limit(self, nearest, error, a, b, sq_rows=None):
        """Per row, a value of ``e`` above which a class is neither nearer
        than the row's nearest (``nearest``, its computed ``e``) nor tied with
        it in probability, however ``e`` and the squared distances round:
        ``a`` and ``b`` from :meth:`Posterior.squared_tie_margin`, ``error``
        the bound on each class's ``e``, ``sq_rows`` the rows' ``|x'|^2``
        (float64) if known.

        A class nearer, or tied, has ``|x'|^2 + e_k <= a (|x'|^2 + e) + b``
        in exact terms, so ``e_k <= e + (a - 1) |e| + (a - 1) |x'|^2 + b``,
        with ``|x'|^2`` at most :attr:`max_sq_row`; computed, each side is
        off by ``error``, the squared distances the other methods compute by
        a float32 rounding more, and this limit by the float32 roundings of
        its own computation: ``8 u`` of everything covers them.
        """
        base = b + 2.001 * error
        scale = (a - 1) + 8 * _UNIT
        if sq_rows is None:
            base += (a - 1) * self.max_sq_row
            constant = base + 8 * _UNIT * (self.max_sq_row + base)
        else:
            constant = sq_rows.mul(scale).add_(base * (1 + 8 * _UNIT)).float()
        return nearest.abs().mul_(scale).add_(constant).add_(nearest)

    def squared(self, e, sq_rows):
        """Squared distances in float32 from ``e`` (all three digits) and the
        rows' exact squared norms, and twice the bound on their error per
        row, the margin of :func:`~._refine.refine`."""
        d2 = torch.add(e, sq_rows.float()[:, None]).clamp_min_(0)
        nearest = e.amin(dim=1).double().abs_()
        margin = 2 * self.error_three + 8 * _UNIT * (sq_rows + nearest)
        return d2, margin.float()


def integer_distances(digits, centroids, x8, workspace, rows):
    """Euclidean distances of an int8 chunk ``x8`` made from ``rows`` of
    ``X``, as :meth:`~._distances.Centroids.distances` gives them for a
    float chunk: all three digits, the rows' exact squared norms, and the
    rows rounding could reorder recomputed in float64."""
    e = digits.full(x8)
    d2, margin = digits.squared(e, digits.squared_norms(x8, workspace))
    out = refine(centroids, d2, margin, rows, workspace).sqrt_()
    if centroids.has_missing:
        out.masked_fill_(centroids.missing, math.inf)
    return out
