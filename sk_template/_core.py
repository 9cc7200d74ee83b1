"""The PyTorch arithmetic behind :class:`~sk_template.NearestMeanImageClassifier`.

Two jobs, both streamed over row chunks so memory stays bounded whatever the
number of rows:

* :func:`class_stats` -- per-class weighted sums, weights and squared norms
  (float64 accumulators).  ``fit``, ``partial_fit``, ``sample_weight`` and
  merging results computed on several workers are all this one sum.
* :func:`pairwise_distances` -- distances from every row to every centroid.

Data moves to the device one chunk at a time in its stored dtype (uint8 stays
uint8 until the chunk is on the device) and is upcast there.  Nothing here
knows about scikit-learn.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

METRICS = ("euclidean", "manhattan", "cosine")

# Elements (rows * features) of one float chunk when ``batch_size="auto"``:
# 2**21 float32 values = 8 MiB, which keeps a chunk in cache on a CPU and is
# big enough to keep a GPU busy.
_AUTO_CHUNK_ELEMENTS = 2**21

# numpy dtypes torch can wrap without a copy and upcast on the device.
_TORCH_NATIVE = {
    np.dtype(t)
    for t in (
        np.uint8,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.float16,
        np.float32,
        np.float64,
        np.bool_,
    )
}


# --------------------------------------------------------------------------- devices
def resolve_device(device):
    """Turn a ``device`` parameter into an available :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (CUDA, then
        MPS, else CPU) or a :class:`torch.device`.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If the string is not a device name or the device is not present.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch knows. Use 'cpu', 'cuda', "
            "'cuda:N', 'mps', 'auto' or a torch.device."
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine (torch.cuda.is_available() is False). Use "
                "device='cpu' or device='auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but this machine has only "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device={device!r} was requested but MPS is not available on "
                "this machine. Use device='cpu' or device='auto'."
            )
        return dev
    raise ValueError(
        f"device={device!r} is not supported; use 'cpu', 'cuda', 'cuda:N', 'mps' "
        "or 'auto'."
    )


def device_available(device):
    """Return whether :func:`resolve_device` would accept ``device``."""
    try:
        resolve_device(device)
    except ValueError:
        return False
    return True


def _mps_available():
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def _accumulator_dtype(device):
    # MPS has no float64; everywhere else sums are accumulated in float64.
    return torch.float32 if device.type == "mps" else torch.float64


# torch dtypes whose every value float32 holds exactly.
_FLOAT32_EXACT = {
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.float16,
    torch.bfloat16,
    torch.float32,
}


def compute_dtype(X, device):
    """The float dtype ``X`` is computed in on ``device``.

    float32 for dtypes it holds exactly (uint8 images above all: half the
    work and memory of float64), float64 for the rest (float64, 32- and 64-bit
    integers), as scikit-learn keeps float64 precision.  MPS has only float32.
    """
    if device.type == "mps":
        return torch.float32
    if is_tensor(X):
        exact = X.dtype in _FLOAT32_EXACT
    else:
        dt = np.dtype(X.dtype)
        exact = (
            dt.kind == "b"
            or (dt.kind in "ui" and dt.itemsize <= 2)
            or (dt.kind == "f" and dt.itemsize <= 4)
        )
    return torch.float32 if exact else torch.float64


# --------------------------------------------------------------------------- tensors
def is_tensor(X):
    """Return whether ``X`` is a :class:`torch.Tensor`."""
    return isinstance(X, torch.Tensor)


def check_tensor(X, *, name="X"):
    """Validate a 2-D tensor that stays on its device (no copy to the host).

    Checks what :func:`sklearn.utils.check_array` would: two dimensions, at
    least one row and one column, a real dtype and finite values.
    """
    if X.is_complex():
        raise ValueError(f"Complex data not supported; {name} has dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {X.ndim}D tensor instead for {name} with "
            f"shape {tuple(X.shape)}. Reshape your data with X.reshape(-1, 1) if "
            "it has a single feature or X.reshape(1, -1) if it is a single sample."
        )
    n_samples, n_features = X.shape
    if n_samples < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            "minimum of 1 is required."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a "
            "minimum of 1 is required."
        )
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        kind = "NaN" if bool(torch.isnan(X).any()) else "infinity"
        raise ValueError(f"Input {name} contains {kind}.")
    return X


def batch_rows(batch_size, n_features):
    """Rows per chunk for a ``batch_size`` parameter (an int or ``"auto"``)."""
    if batch_size == "auto":
        rows = _AUTO_CHUNK_ELEMENTS // max(1, n_features)
        if rows >= _BLOCK:
            rows -= rows % _BLOCK
        return int(max(1, min(_MAX_EXACT_ROWS, rows)))
    return int(batch_size)


# Rows whose squares float32 sums exactly when they are uint8: 256 * 255**2 is
# below 2**24.
_BLOCK = 256
# Rows whose uint8 values (shifted: at most 255 in size) float32 sums exactly.
_MAX_EXACT_ROWS = 65536


def _row_sum(t, dtype):
    """Sum of the rows of ``t``: partial sums of ``_BLOCK`` rows in ``t``'s
    dtype (exact for the squares of uint8 images in float32), their total in
    ``dtype``.  Much faster than upcasting every element."""
    n, d = t.shape
    full = n - n % _BLOCK
    total = t[:full].view(-1, _BLOCK, d).sum(dim=1).sum(dim=0, dtype=dtype)
    if full < n:
        total += t[full:].sum(dim=0, dtype=dtype)
    return total


def iter_chunks(X, *, device, dtype, batch_size, shift=None):
    """Yield ``(start, stop, chunk)`` with ``chunk`` a float tensor on ``device``.

    ``X`` is a 2-D numpy array (memory-mapped arrays included) or a tensor on
    any device.  Each slice travels in its stored dtype (uint8 images: a
    quarter of the bytes of float32) and is upcast on ``device`` into one
    reused buffer: the yielded chunk is overwritten by the next one and may be
    modified in place by the caller.  From host memory to a CUDA device the
    next slice is copied while the current one is computed on.  With
    ``shift`` (a tensor of ``n_features`` values on ``device``), the chunk is
    ``X[start:stop] - shift``.
    """
    n_samples, n_features = X.shape
    rows = min(batch_rows(batch_size, n_features), n_samples)
    buffer = torch.empty((rows, n_features), dtype=dtype, device=device)
    with warnings.catch_warnings():
        # Read-only arrays (memory maps, np.frombuffer) are only ever read.
        warnings.filterwarnings("ignore", message="The given NumPy array is not")
        if is_tensor(X) or device.type != "cuda":
            for start in range(0, n_samples, rows):
                stop = min(start + rows, n_samples)
                chunk = buffer[: stop - start]
                _upcast(_host_tensor(X[start:stop]), chunk, shift)
                yield start, stop, chunk
        else:
            yield from _iter_host_to_cuda(X, buffer, rows, shift)


def _upcast(part, chunk, shift):
    """``chunk[:] = part - shift`` (or a plain copy), converting the dtype.

    Two passes: on a CPU, a subtraction of mixed dtypes is slower than an
    upcasting copy followed by a subtraction in place."""
    chunk.copy_(part)
    if shift is not None:
        chunk.sub_(shift)


def _host_tensor(part):
    """A slice as a tensor, without a copy where torch can wrap its dtype."""
    if is_tensor(part):
        return part
    if not part.dtype.isnative:
        part = part.astype(part.dtype.newbyteorder("="))
    if part.dtype not in _TORCH_NATIVE:
        # Unsigned integers torch does not compute with: widen them exactly.
        wider = {1: np.int16, 2: np.int32, 4: np.int64}.get(part.dtype.itemsize)
        part = part.astype(wider if part.dtype.kind == "u" and wider else np.float64)
    return torch.from_numpy(part)


def _iter_host_to_cuda(X, buffer, rows, shift):
    """Double-buffered host-to-GPU stream: pinned staging, a copy stream and
    events, so the copy of slice i+1 overlaps the work on slice i."""
    n_samples, n_features = X.shape
    device = buffer.device
    stored = _host_tensor(X[:1]).dtype
    copy_stream = torch.cuda.Stream(device=device)
    pinned = [
        torch.empty((rows, n_features), dtype=stored, pin_memory=True) for _ in range(2)
    ]
    staged = [
        torch.empty((rows, n_features), dtype=stored, device=device) for _ in range(2)
    ]
    for tensor in staged:  # written on the copy stream
        tensor.record_stream(copy_stream)
    # Blocking events: waiting on one sleeps instead of spinning a core.
    copied = [torch.cuda.Event(blocking=True) for _ in range(2)]
    consumed = [torch.cuda.Event(blocking=True) for _ in range(2)]
    compute_stream = torch.cuda.current_stream(device)
    starts = list(range(0, n_samples, rows))

    def send(i):
        slot, start = i % 2, starts[i]
        stop = min(start + rows, n_samples)
        # The DMA that last read this pinned slot must be over before it is
        # refilled (an event never recorded counts as over).
        copied[slot].synchronize()
        pinned[slot][: stop - start].copy_(_host_tensor(X[start:stop]))
        with torch.cuda.stream(copy_stream):
            # ... and the compute stream must be done with this staged slot.
            copy_stream.wait_event(consumed[slot])
            staged[slot][: stop - start].copy_(
                pinned[slot][: stop - start], non_blocking=True
            )
            copied[slot].record(copy_stream)

    send(0)
    for i, start in enumerate(starts):
        if i + 1 < len(starts):
            send(i + 1)
        slot, stop = i % 2, min(start + rows, n_samples)
        compute_stream.wait_event(copied[slot])
        chunk = buffer[: stop - start]
        _upcast(staged[slot][: stop - start], chunk, shift)  # upcast on the GPU
        consumed[slot].record(compute_stream)
        yield start, stop, chunk


# --------------------------------------------------------------------------- fitting
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
        with np.errstate(invalid="ignore", divide="ignore"):
            # (sum of x) / weight: for integer data exactly what np.mean gives.
            means = (self.sums + self.weights[:, None] * self.shift) / self.weights[
                :, None
            ]
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
        between = (self.sums[seen] ** 2 / self.weights[seen, None]).sum(axis=0)
        return np.maximum(self.sq_sums - between, 0.0)


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
    acc = _accumulator_dtype(device)
    dtype = compute_dtype(X, device)
    shift = _reference_row(X)
    shift_t = torch.as_tensor(shift, dtype=dtype).to(device) if shift.any() else None
    sums = torch.zeros((n_classes, n_features), dtype=acc, device=device)
    part = torch.empty((n_classes, n_features), dtype=dtype, device=device)
    weights = torch.zeros(n_classes, dtype=acc, device=device)
    sq_sums = torch.zeros(n_features, dtype=acc, device=device)
    # A chunk's class sums are taken in the compute dtype: exact in float32
    # for uint8 images as long as a chunk has at most 65,536 rows.
    rows = min(batch_rows(batch_size, n_features), _MAX_EXACT_ROWS, X.shape[0])
    square_buffer = torch.empty((rows, n_features), dtype=dtype, device=device)
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if sample_weight is not None:
        # A copy (one float per row): the weights may be a read-only array.
        sample_weight = torch.tensor(np.asarray(sample_weight, dtype=np.float64))
    for start, stop, chunk in iter_chunks(
        X, device=device, dtype=dtype, batch_size=rows, shift=shift_t
    ):
        yc = y[start:stop].to(device)
        squares = torch.mul(chunk, chunk, out=square_buffer[: stop - start])
        if sample_weight is None:
            weights.index_add_(0, yc, torch.ones_like(yc, dtype=acc))
        else:
            wc = sample_weight[start:stop].to(device, acc)
            weights.index_add_(0, yc, wc)
            wc = wc.to(dtype)[:, None]
            chunk.mul_(wc)
            squares.mul_(wc)
        sq_sums.add_(_row_sum(squares, acc))
        part.zero_().index_add_(0, yc, chunk)
        sums.add_(part)
    return ClassStats(
        sums.cpu().double().numpy(),
        weights.cpu().double().numpy(),
        sq_sums.cpu().double().numpy(),
        shift,
    )


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

    Each centroid's standardized offset from the overall mean is soft
    thresholded by ``threshold``; features whose offsets all shrink to zero
    stop telling the classes apart.

    Returns
    -------
    deviations : ndarray of shape (n_classes, n_features)
        Standardized offsets after shrinking.
    centroids : ndarray of shape (n_classes, n_features)
        The shrunken centroids.
    """
    total = weights.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.sqrt(1.0 / weights - 1.0 / total)
        ms = m[:, None] * (within_std + np.median(within_std))
        deviations = (centroids - overall_mean) / ms
    # A class that holds all the weight seen so far (m == 0) is the overall
    # mean: nothing to shrink.  Classes with no weight stay NaN.
    deviations[(ms == 0) & ~np.isnan(centroids)] = 0.0
    if threshold:
        deviations = np.sign(deviations) * np.clip(
            np.abs(deviations) - threshold, 0, None
        )
        centroids = overall_mean + ms * deviations
    return deviations, centroids


# --------------------------------------------------------------------------- distances
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
        if metric in ("euclidean", "manhattan"):
            # Work relative to the centroids' mean: distances do not change,
            # the numbers get smaller, and the expansions below lose less to
            # rounding.
            shift = centroids.mean(axis=0)
            shifted = centroids - shift
            self.shift = torch.as_tensor(shift, dtype=dtype).to(device)
            self.C = torch.as_tensor(shifted, dtype=dtype).to(device)
            # The centroids' term of each expansion: |c|^2 or sum c.
            term = shifted**2 if metric == "euclidean" else shifted
            self.c_term = torch.as_tensor(term.sum(axis=1), dtype=dtype).to(device)
        else:  # cosine
            self.shift = None
            norms = np.linalg.norm(centroids, axis=1, keepdims=True)
            unit = centroids / np.where(norms > 0, norms, 1.0)
            self.C = torch.as_tensor(unit, dtype=dtype).to(device)

    def distances(self, chunk, scratch=None):
        """Distances from each row of ``chunk`` to each centroid.

        ``chunk`` holds the rows minus :attr:`shift` (as :func:`iter_chunks`
        gives them) and may be overwritten; ``scratch``, a tensor with at
        least as many rows, saves an allocation per chunk for the Manhattan
        metric.
        """
        C = self.C
        if self.metric == "euclidean":
            # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; (n_classes, d) @ (d, rows) is
            # the fast orientation for few classes.
            cross = torch.mm(C, chunk.T).T
            sq_rows = torch.linalg.vector_norm(chunk, dim=1).square_()
            d2 = cross.mul_(-2).add_(self.c_term).add_(sq_rows[:, None])
            out = d2.clamp_min_(0).sqrt_()
        elif self.metric == "manhattan":
            # sum |x - c| = sum x + sum c - 2 sum min(x, c): two passes over
            # the chunk per class instead of three.
            by_class = torch.empty(
                (C.shape[0], chunk.shape[0]), dtype=chunk.dtype, device=chunk.device
            )
            low = torch.empty_like(chunk) if scratch is None else scratch[: len(chunk)]
            for k in range(C.shape[0]):
                torch.minimum(chunk, C[k], out=low)
                torch.sum(low, dim=1, out=by_class[k])
            out = by_class.T.mul_(-2).add_(chunk.sum(dim=1)[:, None])
            out = out.add_(self.c_term).clamp_min_(0)
        else:  # cosine
            norms = torch.linalg.vector_norm(chunk, dim=1, keepdim=True)
            chunk.div_(norms.clamp_min_(torch.finfo(chunk.dtype).tiny))
            out = torch.mm(C, chunk.T).T.neg_().add_(1).clamp_(0, 2)
        if self.has_missing:
            out[:, self.missing] = math.inf
        return out


def pairwise_distances(X, centroids, *, batch_size, reduce=None):
    """Distances from every row of ``X`` to every prepared centroid.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
    centroids : Centroids
    batch_size : int or "auto"
    reduce : callable, default=None
        Applied to the float64 distances of each chunk, shape
        ``(rows, n_classes)``; its results are stacked.  With it, what is
        kept for all of ``X`` is only what ``reduce`` returns (one label per
        row, say), however many rows there are.

    Returns
    -------
    out : ndarray
        The distances, of shape (n_samples, n_classes), or the stacked
        results of ``reduce``.
    """
    out, scratch = None, None
    if centroids.metric == "manhattan":
        rows = min(batch_rows(batch_size, X.shape[1]), X.shape[0])
        scratch = torch.empty(
            (rows, X.shape[1]), dtype=centroids.dtype, device=centroids.device
        )
    for start, stop, chunk in iter_chunks(
        X,
        device=centroids.device,
        dtype=centroids.dtype,
        batch_size=batch_size,
        shift=centroids.shift,
    ):
        distances = centroids.distances(chunk, scratch).cpu().numpy()
        distances = distances.astype(np.float64)
        result = distances if reduce is None else reduce(distances)
        if out is None:
            out = np.empty((X.shape[0],) + result.shape[1:], dtype=result.dtype)
        out[start:stop] = result
    return out
