"""Manhattan distances of a chunk to every centroid.

Two paths to the same sums.  The compiled kernel (see :mod:`._compile`)
keeps a tile of 8 rows by 2 centroids in registers and reads each vector of
a row or a centroid once per tile: on a 2-core Xeon with AVX-512 it is
2-3x faster than faiss's ``IndexFlat(METRIC_L1)`` and 5-10x the eager path.
The eager path, a tile of minima in memory, is what runs on a GPU, without
a C++ compiler, and until compiling pays.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
import time

import torch

from ._compile import CompiledKernel

# Elements of one tile of minima (rows x classes x features) for the Manhattan
# metric.  Measured on a 2-core AMD EPYC (one thread, medians): a tile of
# 2**20 float32 (4 MiB) of about as many rows as classes was fastest of 2**18
# to 2**21 on 2,560 x 784 rows by 10 and by 1,000 classes and on 170 x 12,288
# rows by 200 classes: 1.2x-1.8x the speed of one class at a time over the
# whole chunk, and 2x-3x torch.cdist(p=1), whose kernel computes sum |x - c|
# pair by pair.  On a GPU, where a kernel launch costs more than the traffic
# of a bigger tile, tiles are 16 times larger.
TILE_ELEMENTS = {"cpu": 2**20}
TILE_ELEMENTS_DEFAULT = 2**24


def tile_elements(device):
    return TILE_ELEMENTS.get(device.type, TILE_ELEMENTS_DEFAULT)


# The register tile of the compiled kernel.  Measured on a 2-core Xeon
# (AVX-512, one thread, interleaved, against faiss's IndexFlat(METRIC_L1)):
# 8 x 2 took 0.31x-0.65x faiss's time on 2,000 x 784 by 16 classes, 1,000 x
# 784 by 1,000 and 200 x 12,288 by 200; 4 x 4 0.35x-0.68x; 2 x 8 0.51x-0.64x;
# one row by one class (what inductor makes of the plain expression, as
# faiss loops) 1.0x-1.8x.
ROW_TILE, CLASS_TILE = 8, 2


def _tiled_abs_sums(x, c):
    """``sum_j |x[i, j] - c[k, j]|`` of shape (rows, classes), for rows a
    multiple of ``ROW_TILE`` and classes of ``CLASS_TILE``.

    Written as ``ROW_TILE * CLASS_TILE`` sums over interleaved rows and
    classes, which inductor fuses into one loop over the features with as
    many accumulators: the register tile.  Each accumulator sums its pair's
    terms in vector lanes, so a distance's rounding is that of a sum of
    positive terms in some order, within ``n u`` of its value (the
    documented bound of the expansion in :func:`manhattan` is wider).
    """
    n, d = x.shape
    k = c.shape[0]
    xs = x.view(n // ROW_TILE, ROW_TILE, 1, d)
    cs = c.view(1, k // CLASS_TILE, CLASS_TILE, d)
    rows = [
        torch.stack(
            [(xs[:, r] - cs[:, :, s]).abs().sum(dim=-1) for s in range(CLASS_TILE)],
            dim=2,
        )
        for r in range(ROW_TILE)
    ]
    return torch.stack(rows, dim=1).view(n, k)


KERNEL = CompiledKernel(_tiled_abs_sums, "the Manhattan distances")


def tile_centroids(C):
    """``C`` with its last row repeated up to a multiple of ``CLASS_TILE``
    rows, as the compiled kernel takes it."""
    extra = -len(C) % CLASS_TILE
    return torch.cat([C, C[-1:].expand(extra, -1)]) if extra else C


def compiled_kernel(device, work):
    """The compiled kernel to use for a call of ``work`` (rows * classes *
    features) on ``device``, or None for the eager path (see
    :mod:`._compile`)."""
    return KERNEL.get(device, work)


def compiled_manhattan(kernel, chunk, C_tiled, workspace):
    """Distances by the compiled ``kernel`` from the rows of ``chunk`` to
    ``C_tiled`` (:func:`tile_centroids` of the centroids, shifted as the
    rows are: data far from zero keeps its precision), of shape (rows,
    n_classes and the padding); None if the kernel failed."""
    n, d = chunk.shape
    x = chunk
    padded = -(-n // ROW_TILE) * ROW_TILE
    if padded != n:  # the last chunk: its rows copied into a whole tile
        x = workspace.get("manhattan_rows", (padded, d), chunk.dtype, chunk.device)
        x[:n] = chunk
        x[n:] = 0
    out = kernel(x, C_tiled)
    return None if out is None else out[:n]


def eager_manhattan(chunk, C, c_term, workspace):
    """``sum |x - c| = sum x + sum c - 2 sum min(x, c)`` for rows and
    centroids ``C`` shifted alike (``c_term``, the sums of the centroids):
    two passes over the chunk per class instead of three.  Within ``3
    gamma_n (|x|_1 + |c|_1)`` of the exact distance.  Its time and work
    count towards compiling (see :mod:`._compile`)."""
    start = time.perf_counter()
    low = sum_of_minima(chunk, C, workspace)
    out = low.mul_(-2).add_(chunk.sum(dim=1)[:, None])
    out = out.add_(c_term).clamp_min_(0)
    if chunk.device.type == "cpu":
        KERNEL.ran_eager(time.perf_counter() - start, out.numel() * chunk.shape[1])
    return out


def sum_of_minima(chunk, C, workspace):
    """``out[i, k] = sum_j min(chunk[i, j], C[k, j])``, of shape (rows, classes).

    Computed a tile of rows by a tile of classes at a time, each tile of
    minima at most :func:`tile_elements` values: a few kernels per chunk
    however many classes there are, and each sum equal, bit for bit, to the
    sum of ``torch.minimum(chunk, C[k])`` over its rows.
    """
    rows, n_features = chunk.shape
    n_classes = C.shape[0]
    pairs = max(1, tile_elements(chunk.device) // n_features)
    classes = max(1, min(n_classes, math.isqrt(pairs)))
    row_step = max(1, min(rows, pairs // classes))
    scratch = workspace.get(
        "minima", row_step * classes * n_features, chunk.dtype, chunk.device
    )
    out = torch.empty((rows, n_classes), dtype=chunk.dtype, device=chunk.device)
    for i in range(0, rows, row_step):
        x = chunk[i : i + row_step, None, :]
        for k in range(0, n_classes, classes):
            c = C[k : k + classes]
            low = scratch[: len(x) * len(c) * n_features].view(
                len(x), len(c), n_features
            )
            torch.minimum(x, c, out=low)
            torch.sum(low, dim=2, out=out[i : i + row_step, k : k + classes])
    return out
