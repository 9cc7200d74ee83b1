"""Exact euclidean ranking: the rows whose nearest centroids rounding could
swap, recomputed in float64 by direct differences.

A fast distance (the float32 expansion ``|x|^2 - 2 x.c + |c|^2``, or the
integer product of :mod:`._integer`) comes with a bound on its error per
row.  Only in a row whose two smallest distances are within twice that
bound can the smallest computed distance belong to another class than the
smallest exact one: if class j comes out nearest while k is, computed
``v_k - v_j`` is at most the two errors, and so is the gap between the two
smallest.  Such rows get the classes within that margin of their smallest
(the only ones that can be nearest) recomputed, and every method then starts
from the same refined values, before any reduction.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import torch

from ._chunks import host_tensor
from ._reduce import by_class, rows_within

# float64 values of the direct differences of one block of refined pairs
# (2 MiB, in buffers kept between calls).
REFINE_ELEMENTS = 2**18


def expansion_error(n_features, dtype):
    """A bound, relative to ``(|x| + |c|)**2`` (euclidean) or ``|x|_1 +
    |c|_1`` per term (manhattan), on the rounding error of the expansions of
    :meth:`Centroids.distances` in ``dtype``: ``gamma_{n + 8} = (n + 8) u /
    (1 - (n + 8) u)``, the bound on a sum of ``n`` terms in any order (a
    matrix product's dot products, row norms), with room for the rounding
    of the shifted rows and centroids and of the few operations after."""
    nu = (n_features + 8) * torch.finfo(dtype).eps / 2
    return nu / (1 - nu) if nu < 0.5 else math.inf


def expansion_margin(centroids, sq_rows):
    """Per row, twice the bound on the error of the float32 expansion's
    squared distances, all shifted: the products' rounding (gamma_n |x|
    |c|), and a few roundings of u (|x| + |c|)^2 (the additions, the
    centroids' rounding, the square root).  The rounding of |x|^2 itself,
    the largest error, is the same for every class of the row."""
    norm = sq_rows.sqrt()
    bound = norm.mul(2 * centroids.c_norm * centroids.tolerance)
    rounding = norm.add_(centroids.c_norm).square_().mul_(6 * centroids.unit)
    return bound.add_(rounding).mul_(2)


def refine(centroids, values, margin, rows, workspace):
    """``values`` (squared euclidean distances of a chunk to every class, in
    any layout), with the rows whose two smallest differ by at most their
    ``margin`` recomputed from ``rows`` (the rows of ``X`` the chunk was
    made from) by direct differences in float64, for the classes within
    ``margin`` of the smallest, then rounded to the dtype of ``values``:
    their order is then float64's, but for values within that dtype's
    rounding of each other, which tie.

    ``margin`` may be overwritten; ``workspace`` lends the masks and the
    float64 blocks.
    """
    if values.shape[1] < 2:
        return values
    # Rows with another value within the margin of their smallest (cheaper
    # than sorting out the two smallest).
    laid, dim = by_class(values)
    limit = laid.amin(dim=dim).add_(margin)
    close, flagged = rows_within(laid, dim, limit, workspace)
    if flagged.numel() == 0:
        return values
    close = close if dim == 1 else close.T
    which, classes = torch.nonzero(close.index_select(0, flagged), as_tuple=True)
    values[flagged[which], classes] = exact_squared(
        centroids, rows, flagged, which, classes, workspace
    ).to(values.dtype)
    return values


def exact_squared(centroids, rows, flagged, which, classes, workspace):
    """Squared distances in float64, by direct differences, of the pairs
    ``(rows[flagged[which]], classes)``."""
    exact = centroids.exact
    rows = host_tensor(rows)
    if rows.device == exact.device:
        source = flagged  # each block gathers its rows from ``rows``
    else:
        # Host rows for a GPU: one gather and one copy, not one per block.
        rows = rows.index_select(0, flagged.to(rows.device))
        rows = rows.to(exact.device)
        source = torch.arange(len(flagged), device=exact.device)
    d = exact.shape[1]
    step = max(2, REFINE_ELEMENTS // d)
    size = min(step, max(2, len(which)))
    out = torch.empty(len(which), dtype=torch.float64, device=exact.device)
    for i in range(0, len(which), step):
        w, k = which[i : i + step], classes[i : i + step]
        # Never one sum alone: torch may split a single sum between threads,
        # and round it otherwise than in a block of several (each summed by
        # one thread); the same pair must come out the same whichever block
        # it is in.
        pw, pk = (w.repeat(2), k.repeat(2)) if len(w) == 1 else (w, k)
        x = workspace.get("refine_rows", (size, d), torch.float64, exact.device)
        c = workspace.get("refine_centroids", (size, d), torch.float64, exact.device)
        x, c = x[: len(pw)], c[: len(pw)]
        x.copy_(rows.index_select(0, source[pw]))
        x.sub_(centroids.exact_shift)
        torch.index_select(exact, 0, pk, out=c)
        out[i : i + len(w)] = x.sub_(c).square_().sum(dim=1)[: len(w)]
    return out
