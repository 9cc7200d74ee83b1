"""Reductions along the classes of a chunk's distances, with the masks they
compare into taken from a :class:`~._buffers.Workspace`."""

# SPDX-License-Identifier: BSD-3-Clause

import torch


def by_class(values):
    """``values`` (rows by classes) as reductions along the classes read them
    fastest, and the dimension of the classes: itself (1) if it is laid out
    row by row, else its transpose (0), as a product for few classes is."""
    return (values, 1) if values.is_contiguous() else (values.T, 0)


def count_compared(compare, values, limit, dim, workspace):
    """``compare(values, limit)`` into a reused mask (returned, shaped as
    ``values``, which must be contiguous) and its number of True values
    along ``dim``.

    A fresh mask per chunk costs more than the comparison (its pages are
    faulted in every time), and summing a bool mask to int32 converts the
    whole of it first: the mask comes from ``workspace`` and is summed as
    bytes.
    """
    mask = workspace.get("mask", values.shape, torch.bool, values.device)
    mask = compare(values, limit, out=mask)
    return mask, mask.view(torch.uint8).sum(dim=dim, dtype=torch.int32)


def rows_within(values, dim, limit, workspace):
    """The mask of the values of ``values`` (laid out as :func:`by_class`
    gives them, the classes along ``dim``) at most their row's ``limit``,
    and the rows with more than one such value."""
    limit = limit[:, None] if dim == 1 else limit[None]
    close, count = count_compared(torch.le, values, limit, dim, workspace)
    return close, torch.nonzero(count > 1).ravel()
