"""The PyTorch arithmetic behind :class:`~sk_template.NearestMeanImageClassifier`.

Two jobs, both streamed over row chunks so memory stays bounded whatever the
number of rows:

* :func:`class_stats` -- per-class weighted sums, weights and squared norms
  (float64 accumulators).  ``fit``, ``partial_fit``, ``sample_weight`` and
  merging results computed on several workers are all this one sum.
* :func:`pairwise_distances` -- distances from every row to every centroid,
  and what the estimator's methods make of them (:class:`Posterior`: labels,
  probabilities), reduced on the device chunk by chunk so that only what a
  method returns comes back to the host.

Data moves to the device one chunk at a time in its stored dtype (uint8 stays
uint8 until the chunk is on the device) and is upcast there.  Nothing here
knows about scikit-learn.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import math
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import torch

METRICS = ("euclidean", "manhattan", "cosine")

# Elements (rows * features) of one float chunk when ``batch_size="auto"``.
# On a CPU, 2**20 float32 values (4 MiB, 1,280 MNIST rows): the chunk is
# converted, shifted, normed and multiplied in turn, and stays in cache
# between them.  Measured on a 2-core AMD EPYC (one thread, interleaved with
# scikit-learn, cdist and GEMM runs as bench_scaling times them): predicting
# 10,000 MNIST-sized rows took 1.4x-1.5x the bare GEMM in chunks of 1,024
# rows whatever ran before it, while chunks of 2,560 (8 MiB) went from 1.5x
# to 2.6x in some rounds; fit and 1,000 classes were no different.  On other
# devices, 2**21 (8 MiB), big enough to keep a GPU busy.
_AUTO_CHUNK_ELEMENTS = {"cpu": 2**20}
_AUTO_CHUNK_ELEMENTS_DEFAULT = 2**21

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


# torch dtypes computed in float32: float32 holds every value exactly, and
# for the integers (8 bits at most) every square and every sum of up to
# ``_MAX_EXACT_ROWS`` of them too.
_IN_FLOAT32 = {
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.float16,
    torch.bfloat16,
    torch.float32,
}


def compute_dtype(X, device):
    """The float dtype distances from ``X`` are computed in on ``device``
    (fitting sums in float64 unless float32 is exact: see :func:`class_stats`).

    float32 for 8-bit integers and bool (uint8 images above all: half the
    work and memory of float64), float16 and float32; float64 for the rest
    (float64, and 16-, 32- and 64-bit integers, whose squares float32 cannot
    sum exactly: 255**2 * 256 rows is below 2**24, 65535**2 is not), as
    scikit-learn keeps float64 precision.  MPS has only float32.
    """
    if device.type == "mps":
        return torch.float32
    if is_tensor(X):
        in_float32 = X.dtype in _IN_FLOAT32
    else:
        dt = np.dtype(X.dtype)
        in_float32 = (
            dt.kind == "b"
            or (dt.kind in "ui" and dt.itemsize == 1)
            or (dt.kind == "f" and dt.itemsize <= 4)
        )
    return torch.float32 if in_float32 else torch.float64


# --------------------------------------------------------------------------- tensors
def is_tensor(X):
    """Return whether ``X`` is a :class:`torch.Tensor`."""
    return isinstance(X, torch.Tensor)


def check_materialized(X, *, name="X"):
    """Refuse a tensor on the ``meta`` device: it has a shape but no values,
    and torch's own error (from ``Tensor.item()``) does not say which input
    it was."""
    if X.device.type == "meta":
        raise ValueError(
            f"{name} is a tensor on the 'meta' device, which holds a shape and "
            "a dtype but no values. Pass the data itself: create or load the "
            f"tensor on a real device (for example {name}.to_empty(device='cpu') "
            "followed by filling it, or the original tensor)."
        )


def check_finite_result(values, *, reduce, dtype, what):
    """Raise a ValueError naming the overflow when a row of ``values`` has a
    non-finite ``reduce`` (``torch.amin`` of distances, ``torch.amax`` of
    log posteriors): computed from finite inputs, it means that a square or
    a sum went past the largest ``dtype`` value, and every value derived from
    it (probabilities above all) would be NaN or meaningless.

    One reduction along the classes per chunk, and one synchronisation.
    """
    if values.numel() and not bool(torch.isfinite(reduce(values, dim=1)).all()):
        name = str(dtype).removeprefix("torch.")
        raise ValueError(
            f"The {what} overflow {name} for some rows of X: their values are "
            f"too large in magnitude for {name} arithmetic (squares and sums "
            f"go past {torch.finfo(dtype).max:.3g}), so distances and "
            "probabilities cannot be computed. X is probably on another scale "
            "than the training data: scale it the same way (for example divide "
            "both by their largest value)"
            + (", or pass it as float64." if dtype != torch.float64 else ".")
        )


def check_tensor(X, *, name="X"):
    """Validate a 2-D tensor that stays on its device (no copy to the host).

    Checks what :func:`sklearn.utils.check_array` would: two dimensions, at
    least one row and one column, a real dtype and finite values; and that
    it has values at all (not on the ``meta`` device).
    """
    check_materialized(X, name=name)
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


def batch_rows(batch_size, n_features, n_classes=0, device=None):
    """Rows per chunk for a ``batch_size`` parameter (an int or ``"auto"``).

    ``"auto"`` keeps a chunk near 4 MiB of float32 on a CPU (``device`` None
    or a CPU), 8 MiB on other devices, and, when ``n_classes`` is given, its
    distances to at most ``_AUTO_DISTANCE_ELEMENTS`` values, so that memory
    stays bounded however many classes there are.
    """
    if batch_size == "auto":
        kind = "cpu" if device is None else torch.device(device).type
        budget = _AUTO_CHUNK_ELEMENTS.get(kind, _AUTO_CHUNK_ELEMENTS_DEFAULT)
        rows = budget // max(1, n_features)
        if n_classes:
            rows = min(rows, _AUTO_DISTANCE_ELEMENTS // n_classes)
        if rows >= _BLOCK:
            rows -= rows % _BLOCK
        return int(max(1, min(_MAX_EXACT_ROWS, rows)))
    return int(batch_size)


# Distances (rows * classes) of one chunk when ``batch_size="auto"``: 2**22
# values, 16 MiB in float32 and 32 MiB as the float64 copy that the
# probabilities are computed in.  It takes over from the feature budget at 3,277
# classes for MNIST-sized rows on a CPU (1,280 a chunk), later for wider ones.
_AUTO_DISTANCE_ELEMENTS = 2**22

# Rows whose squares float32 sums exactly when they are uint8: 256 * 255**2 is
# below 2**24.
_BLOCK = 256
# Rows whose uint8 values (shifted: at most 255 in size) float32 sums exactly.
_MAX_EXACT_ROWS = 65536


def _row_sum(t, dtype, exact=False):
    """Sum of the rows of ``t``: partial sums of ``_BLOCK`` rows in ``t``'s
    dtype (exact for the squares of uint8 images in float32), their total in
    ``dtype``.  Much faster than upcasting every element.  The rows left over
    are summed in ``dtype`` too, or, when ``exact`` says that ``t`` holds the
    squares of 8-bit integers, in ``t``'s dtype: the same exact sum, ten times
    faster (wide images make chunks of fewer than ``_BLOCK`` rows)."""
    n, d = t.shape
    full = n - n % _BLOCK
    total = t[:full].view(-1, _BLOCK, d).sum(dim=1).sum(dim=0, dtype=dtype)
    if full < n:
        rest = t[full:]
        total += rest.sum(dim=0) if exact else rest.sum(dim=0, dtype=dtype)
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
    rows = min(batch_rows(batch_size, n_features, device=device), n_samples)
    with _BUFFERS.take(rows * n_features, dtype, device) as buffer:
        yield from _iter_into(X, buffer.view(rows, n_features), shift)


def _iter_into(X, buffer, shift):
    """:func:`iter_chunks` into ``buffer``, of shape (rows, n_features)."""
    n_samples = X.shape[0]
    rows, device = buffer.shape[0], buffer.device
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


class _BufferPool:
    """Scratch buffers of host memory, kept from one call to the next.

    A fresh buffer of more than a few hundred KiB is a fresh allocation that
    the C allocator often takes from (or gives back to) the system: every
    page is then faulted in again on first write.  Measured on a 2-core AMD
    EPYC, an 8 MiB float32 chunk buffer took 3 ms to fill the first time and
    0.14 ms after, and predicting 10,000 MNIST-sized rows takes 10 ms in all.
    So a few buffers of each dtype, up to ``keep_bytes`` each, are kept for
    the next call, as BLAS libraries keep theirs.  A buffer is taken by one
    caller at a time (concurrent calls from several threads, or a call inside
    another, get new ones).  Not on GPUs, whose caching allocator already
    does this.
    """

    def __init__(self, keep_bytes, keep_count=4):
        self.keep_bytes = keep_bytes
        self.keep_count = keep_count
        self._free = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def take(self, numel, dtype, device):
        """A flat tensor of ``numel`` values, given back when the block ends."""
        if device.type != "cpu":
            yield torch.empty(numel, dtype=dtype, device=device)
            return
        buffer = self._take(numel, dtype)
        if buffer is None:
            buffer = torch.empty(numel, dtype=dtype, device=device)
        try:
            yield buffer[:numel]
        finally:
            self._give_back(buffer, dtype)

    def _take(self, numel, dtype):
        with self._lock:
            free = self._free.get(dtype, ())
            best = None
            for i, kept in enumerate(free):  # by position: tensors compare by value
                if kept.numel() >= numel and (
                    best is None or kept.numel() < free[best].numel()
                ):
                    best = i
            return None if best is None else free.pop(best)

    def _give_back(self, buffer, dtype):
        """Keep ``buffer`` if there is room, never waiting: a buffer may come
        back from a generator that the garbage collector closes while this
        thread holds the lock (in ``_take``), and waiting would hang it."""
        if buffer.numel() * buffer.element_size() > self.keep_bytes:
            return
        if not self._lock.acquire(blocking=False):
            return  # dropped: the next call allocates a new one
        try:
            free = self._free.setdefault(dtype, [])
            free.append(buffer)
            if len(free) > self.keep_count:
                smallest = min(range(len(free)), key=lambda i: free[i].numel())
                del free[smallest]
        finally:
            self._lock.release()


# Kept: the auto chunks (4 MiB of float32, 8 MiB of float64 on a CPU),
# _refine's blocks (2 MiB) and explicit chunks up to 16 MiB; at most 64 MiB
# per dtype.
_BUFFERS = _BufferPool(keep_bytes=16 * 2**20)


def _upcast(part, chunk, shift):
    """``chunk[:] = part - shift`` (or a plain copy), converting the dtype.

    Two passes: on a CPU, a subtraction of mixed dtypes is slower than an
    upcasting copy followed by a subtraction in place."""
    chunk.copy_(part)
    if shift is not None:
        chunk.sub_(shift)


def _host_tensor(part):
    """A slice as a tensor, without a copy where torch can wrap its dtype and
    strides (a slice of a reversed array, ``X[::-1]``, is copied: torch has no
    negative strides)."""
    if is_tensor(part):
        return part
    if any(step < 0 for step in part.strides):
        part = np.ascontiguousarray(part)
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
    acc = _accumulator_dtype(device)
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
    rows = batch_rows(batch_size, n_features, device=device)
    rows = min(rows, _MAX_EXACT_ROWS, X.shape[0])
    sums = _ClassSums(
        n_classes, n_features, dtype=dtype, acc=acc, device=device, exact=exact
    )
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if sample_weight is None:
        ones = torch.ones(rows, dtype=acc, device=device)
    else:
        # A copy (one float per row): the weights may be a read-only array.
        sample_weight = torch.tensor(np.asarray(sample_weight, dtype=np.float64))
        square_buffer = torch.empty((rows, n_features), dtype=dtype, device=device)
    for start, stop, chunk in iter_chunks(
        X, device=device, dtype=dtype, batch_size=rows, shift=shift_t
    ):
        yc = y[start:stop].to(device)
        if sample_weight is None:
            weights.index_add_(0, yc, ones[: stop - start])
            sums.add(yc, chunk)
            squares = chunk.mul_(chunk)  # the chunk is not needed any more
        else:
            squares = torch.mul(chunk, chunk, out=square_buffer[: stop - start])
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
    """Whether float32 sums of up to ``_MAX_EXACT_ROWS`` rows of ``X``, and
    of ``_BLOCK`` of their squares, are exact: integers of at most 8 bits
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
      carried over ``_MAX_EXACT_ROWS`` rows and the whole ``(n_classes,
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
            if self.pending + len(rows) > _MAX_EXACT_ROWS:
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
        self.exact = None
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
                self.tolerance = _expansion_error(centroids.shape[1], dtype)
                self.unit = torch.finfo(dtype).eps / 2
        else:  # cosine
            self.shift = None
            norms = np.linalg.norm(centroids, axis=1, keepdims=True)
            unit = centroids / np.where(norms > 0, norms, 1.0)
            self.C = torch.as_tensor(unit, dtype=dtype).to(device)

    def distances(self, chunk, scratch=None, rows=None, masks=None):
        """Distances from each row of ``chunk`` to each centroid.

        ``chunk`` holds the rows minus :attr:`shift` (as :func:`iter_chunks`
        gives them) and may be overwritten; ``scratch``, a flat tensor of at
        least :meth:`scratch_size` values, saves an allocation per chunk for
        the Manhattan metric.  ``rows``, the rows of ``X`` the chunk was
        made from, lets the rows whose nearest centroid float32 cannot tell
        be recomputed from them in float64 (see :meth:`_refine`), with
        ``masks``, a :class:`_Masks` for its comparisons (one per call, not
        shared between threads).
        """
        if self.metric == "euclidean":
            d2, sq_rows = self.squared(chunk)
            if self.exact is not None and rows is not None:
                bound = self._error_bound(sq_rows)
                d2 = self._refine(d2, bound, rows, masks or _Masks())
            out = d2.sqrt_()
        elif self.metric == "manhattan":
            # sum |x - c| = sum x + sum c - 2 sum min(x, c): two passes over
            # the chunk per class instead of three.  Not refined: the bound
            # on float32 sums of n terms, n u (|x|_1 + |c|_1), is wider than
            # the gaps between classes on wide images (random 64x64x3 data
            # flagged nearly every row, and predict took 14x as long).
            low = _sum_of_minima(chunk, self.C, scratch)
            out = low.mul_(-2).add_(chunk.sum(dim=1)[:, None])
            out = out.add_(self.c_term).clamp_min_(0)
        else:  # cosine
            norms = torch.linalg.vector_norm(chunk, dim=1, keepdim=True)
            # An infinite norm would make every distance 1.
            check_finite_result(
                norms, reduce=torch.amax, dtype=chunk.dtype, what="row norms"
            )
            chunk.div_(norms.clamp_min_(torch.finfo(chunk.dtype).tiny))
            out = self._products(chunk).neg_().add_(1).clamp_(0, 2)
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
        squared norms.  The distances are laid out as :meth:`_products`
        gives them: transposed for few classes."""
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2.
        cross = self._products(chunk)
        sq_rows = torch.linalg.vector_norm(chunk, dim=1).square_()
        # c_term - 2 x.c in one pass: -2 x.c is exact, so this is the
        # same single rounding as a multiplication and an addition.
        d2 = torch.add(self.c_term, cross, alpha=-2, out=cross)
        return d2.add_(sq_rows[:, None]).clamp_min_(0), sq_rows

    def _error_bound(self, sq_rows):
        """Per row, with ``tolerance``, what can reorder two classes (see
        :meth:`_refine`), all shifted: the products' rounding (gamma_n |x|
        |c|), and a few roundings of u (|x| + |c|)^2 (the additions, the
        centroids' rounding, the square root).  The rounding of |x|^2 itself,
        the largest error, is the same for every class of the row."""
        norm = sq_rows.sqrt()
        bound = norm.mul(2 * self.c_norm)
        rounding = norm.add_(self.c_norm).square_().mul_(6 * self.unit)
        return bound.add_(rounding, alpha=1 / self.tolerance)

    def _refine(self, values, bound, rows, masks):
        """``values`` (squared euclidean distances of a chunk),
        with the rows whose two smallest differ by no more than twice their
        error bound ``tolerance * bound`` recomputed from ``rows`` by
        direct differences in float64 (for the classes within that bound of
        the smallest, the only ones that can be nearest), then rounded to the
        dtype of ``values``: their order is then float64's, but for values
        within that dtype's rounding of each other, which tie.

        Only in such a row can the smallest computed value belong to another
        class than the smallest exact one: if class j comes out nearest while
        k is, then computed ``v_k - v_j`` is at most the two errors, and so
        is the gap between the two smallest.  Every method then starts from
        the same refined values, before any reduction.
        """
        if values.shape[1] < 2:
            return values
        # Rows with another value within the bound of their smallest (cheaper
        # than sorting out the two smallest).
        by_class, dim = _by_class(values)
        limit = by_class.amin(dim=dim).add_(bound.mul_(2 * self.tolerance))
        close, flagged = _rows_within(by_class, dim, limit, masks)
        if flagged.numel() == 0:
            return values
        # Only the classes within the bound of a flagged row's smallest can
        # be its nearest: those (row, class) pairs are recomputed, by direct
        # differences, and stored back in the chunk's dtype (rounded as a
        # float32 distance computed directly would be).
        close = close if dim == 1 else close.T
        which, classes = torch.nonzero(close.index_select(0, flagged), as_tuple=True)
        rows = _host_tensor(rows)
        if rows.device == self.exact.device:
            source = flagged  # each block gathers its rows from ``rows``
        else:
            # Host rows for a GPU: one gather and one copy, not one per block.
            rows = rows.index_select(0, flagged.to(rows.device))
            rows = rows.to(self.exact.device)
            source = torch.arange(len(flagged), device=self.exact.device)
        d = self.exact.shape[1]
        step = max(2, _REFINE_ELEMENTS // d)
        size = min(step, max(2, len(which))) * d
        with (
            _BUFFERS.take(size, torch.float64, self.exact.device) as x_buffer,
            _BUFFERS.take(size, torch.float64, self.exact.device) as c_buffer,
        ):
            for i in range(0, len(which), step):
                w, k = which[i : i + step], classes[i : i + step]
                # Never one sum alone: torch may split a single sum between
                # threads, and round it otherwise than in a block of several
                # (each summed by one thread); the same pair must come out
                # the same whichever block it is in.
                pw, pk = (w.repeat(2), k.repeat(2)) if len(w) == 1 else (w, k)
                x = x_buffer[: len(pw) * d].view(len(pw), d)
                c = c_buffer[: len(pw) * d].view(len(pw), d)
                x.copy_(rows.index_select(0, source[pw]))
                x.sub_(self.exact_shift)
                torch.index_select(self.exact, 0, pk, out=c)
                part = x.sub_(c).square_().sum(dim=1)
                values[flagged[w], k] = part[: len(w)].to(values.dtype)
        return values

    def _products(self, chunk):
        """``x . c`` for every row and class, of shape (rows, n_classes).

        For fewer than ``_MANY_CLASSES`` (64) classes, (n_classes, d) @
        (d, rows) is the faster product; from 64 on, (rows, d) @ (d,
        n_classes) is as fast and lays its result out row by row, as the
        reductions along classes that follow read it (an argmin along a
        transposed result is several times slower).  The two orientations
        may round differently; the rows whose ranking that could change are
        refined (see :meth:`_refine`).
        """
        if self.C.shape[0] < _MANY_CLASSES:
            return torch.mm(self.C, chunk.T).T
        return torch.mm(chunk, self.C.T)

    def scratch_size(self):
        """Values of the ``scratch`` tensor :meth:`distances` uses (0: none)."""
        return _tile_elements(self.device) if self.metric == "manhattan" else 0


def _by_class(values):
    """``values`` (rows by classes) as reductions along the classes read them
    fastest, and the dimension of the classes: itself (1) if it is laid out
    row by row, else its transpose (0), as a product for few classes is."""
    return (values, 1) if values.is_contiguous() else (values.T, 0)


def _rows_within(by_class, dim, limit, masks):
    """The mask of the values of ``by_class`` (see :func:`_by_class`) at most
    their row's ``limit``, and the rows with more than one such value, with
    ``masks`` (a :class:`_Masks`)."""
    limit = limit[:, None] if dim == 1 else limit[None]
    close, count = masks.count(torch.le, by_class, limit, dim)
    return close, torch.nonzero(count > 1).ravel()


class _Masks:
    """One bool tensor, reused by the comparisons of every chunk.

    A fresh (rows, classes) mask per chunk costs more than the comparison:
    the new allocation's pages are faulted in every time, and summing a
    bool mask to int32 converts the whole of it first.  Measured on a
    2-core AMD EPYC, a 2,560 x 1,000 chunk: a fresh mask summed as bool
    added 13 ms to a 42 ms product; this buffer, summed as bytes, 1.7 ms.
    """

    def __init__(self):
        self._buffer = None

    def count(self, compare, values, limit, dim):
        """``compare(values, limit)`` into the buffer (returned, shaped as
        ``values``, which must be contiguous) and its number of True values
        along ``dim``."""
        n = values.numel()
        buffer = self._buffer
        if buffer is None or buffer.numel() < n or buffer.device != values.device:
            buffer = self._buffer = torch.empty(
                n, dtype=torch.bool, device=values.device
            )
        mask = compare(values, limit, out=buffer[:n].view(values.shape))
        # Summed as bytes: a bool sum to int32 converts the whole mask first.
        return mask, mask.view(torch.uint8).sum(dim=dim, dtype=torch.int32)


# float64 values of the direct differences of one block of refined pairs
# (2 MiB, in buffers kept between calls).
_REFINE_ELEMENTS = 2**18


def _expansion_error(n_features, dtype):
    """A bound, relative to ``(|x| + |c|)**2`` (euclidean) or ``|x|_1 +
    |c|_1`` per term (manhattan), on the rounding error of the expansions of
    :meth:`Centroids.distances` in ``dtype``: ``gamma_{n + 8} = (n + 8) u /
    (1 - (n + 8) u)``, the bound on a sum of ``n`` terms in any order (a
    matrix product's dot products, row norms), with room for the rounding
    of the shifted rows and centroids and of the few operations after."""
    nu = (n_features + 8) * torch.finfo(dtype).eps / 2
    return nu / (1 - nu) if nu < 0.5 else math.inf


# Classes from which the products of rows and centroids are computed as
# (rows, d) @ (d, n_classes); measured on a 2-core AMD EPYC: 1.7x faster than
# the other orientation at 100 classes, 0.6x at 10.
_MANY_CLASSES = 64

# Elements of one tile of minima (rows x classes x features) for the Manhattan
# metric.  Measured on a 2-core AMD EPYC (one thread, medians): a tile of
# 2**20 float32 (4 MiB) of about as many rows as classes was fastest of 2**18
# to 2**21 on 2,560 x 784 rows by 10 and by 1,000 classes and on 170 x 12,288
# rows by 200 classes: 1.2x-1.8x the speed of one class at a time over the
# whole chunk, and 2x-3x torch.cdist(p=1), whose kernel computes sum |x - c|
# pair by pair.  On a GPU, where a kernel launch costs more than the traffic
# of a bigger tile, tiles are 16 times larger.
_TILE_ELEMENTS = {"cpu": 2**20}
_TILE_ELEMENTS_DEFAULT = 2**24


def _tile_elements(device):
    return _TILE_ELEMENTS.get(device.type, _TILE_ELEMENTS_DEFAULT)


def _sum_of_minima(chunk, C, scratch=None):
    """``out[i, k] = sum_j min(chunk[i, j], C[k, j])``, of shape (rows, classes).

    Computed a tile of rows by a tile of classes at a time, each tile of
    minima at most ``_tile_elements`` values: a few kernels per chunk however
    many classes there are, and each sum equal, bit for bit, to the sum of
    ``torch.minimum(chunk, C[k])`` over its rows.
    """
    rows, n_features = chunk.shape
    n_classes = C.shape[0]
    pairs = max(1, _tile_elements(chunk.device) // n_features)
    classes = max(1, min(n_classes, math.isqrt(pairs)))
    row_step = max(1, min(rows, pairs // classes))
    size = row_step * classes * n_features
    if scratch is None or scratch.numel() < size:
        scratch = torch.empty(size, dtype=chunk.dtype, device=chunk.device)
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


class Posterior:
    """The estimator's probability model, evaluated on the device.

    Turns a chunk's distances into what a method of the estimator returns:
    the log posterior of each class up to a constant (``decision_function``),
    probabilities, their log, or labels.  :meth:`predict` is the argmax of
    the probabilities, the first of tied classes as :func:`numpy.argmax`
    picks it, but computes them only for rows whose two most probable
    classes are within rounding of each other.

    Parameters
    ----------
    metric : str
    std : float
        The pooled within-class standard deviation ``s``.
    class_prior : ndarray of shape (n_classes,)
    device : torch.device
    mean_sq_norm : float or None
        Mean squared norm of the training rows (``metric="cosine"`` only).
    """

    def __init__(self, metric, std, class_prior, device, mean_sq_norm):
        self.metric = metric
        self.std = float(std)
        if metric == "manhattan":
            self.factor = -math.sqrt(2.0) / self.std
        elif metric == "cosine":
            self.factor = -mean_sq_norm / self.std**2
        self.dtype = _accumulator_dtype(device)
        prior = np.asarray(class_prior, dtype=np.float64)
        self.uniform = bool((prior == prior[0]).all())
        with np.errstate(divide="ignore"):
            log_prior = np.log(prior)
        self.uniform_log_prior = float(log_prior[0])
        # _SCORE_TIE, scaled to float32 where the scores are (MPS).
        self.tie = _SCORE_TIE * (
            torch.finfo(self.dtype).eps / torch.finfo(torch.float64).eps
        )
        self.log_prior = torch.as_tensor(log_prior, dtype=self.dtype).to(device)
        self._masks = _Masks()

    def log_posterior(self, distances):
        """Unnormalised log posterior of each class (may overwrite
        ``distances``)."""
        scores = distances.to(self.dtype)
        if self.metric == "euclidean":
            # -d^2 / (2 s^2), in the order of operations that keeps d / s small.
            scores.div_(self.std).square_().mul_(-0.5)
        else:
            scores.mul_(self.factor)
        scores.add_(self.log_prior)
        # Finite distances whose squares (or quotients by a tiny ``std``)
        # overflow: every class of the row at -inf, and NaN probabilities.
        check_finite_result(
            scores, reduce=torch.amax, dtype=scores.dtype, what="log posteriors"
        )
        return scores

    def decision_function(self, distances):
        """The log posterior; for two classes, the log-odds of the second."""
        scores = self.log_posterior(distances)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def proba(self, distances):
        """Probability of each class."""
        return torch.softmax(self.log_posterior(distances), dim=1)

    def log_proba(self, distances):
        """Log of :meth:`proba`."""
        return torch.log_softmax(self.log_posterior(distances), dim=1)

    def predict(self, distances):
        """Index of the most probable class: the argmax of :meth:`proba`,
        the first of tied ones.

        Without a probability where the two most probable classes are
        further apart than rounding (the softmax then keeps their order):
        the nearest centroid with uniform priors, else the argmax of the log
        posterior.  The rows where they are not, ties included, take the
        argmax of :meth:`proba` itself, so that the two cannot disagree
        (with uniform priors, two distances that differ give the same log
        posterior when ``within_class_std_`` is large enough).
        """
        # Contiguous first: reductions along the rows of a transposed view
        # are slower than the copy.
        if self.uniform:
            values = distances.contiguous()
            best, index = values.min(dim=1)
            limit = self._tie_distance(best)[:, None]
            _, close = self._masks.count(torch.le, values, limit, 1)
        else:
            values = self.log_posterior(distances).contiguous()
            best, index = values.max(dim=1)
            # Rows with another score within rounding of their largest.
            limit = best.sub_(self.tie)[:, None]
            _, close = self._masks.count(torch.ge, values, limit, 1)
        near = torch.nonzero(close > 1).ravel()
        if near.numel():
            # (log_posterior may have overwritten the distances.)
            scores = self.log_posterior(values[near]) if self.uniform else values[near]
            index[near] = torch.softmax(scores, dim=1).argmax(dim=1)
        return index

    def squared_tie_margin(self, dtype):
        """``(a, b)``: with uniform priors and euclidean distances, a class
        whose squared distance, in ``dtype``, is above ``a * n + b``, ``n``
        the row's smallest, has its distance beyond :meth:`_tie_distance` of
        the nearest, whatever the square roots round to.

        A bound, loose by a relative ``16 eps`` (about 10 eps is needed) to
        cover the roundings of the square roots, of :meth:`_tie_distance` and
        of ``a * n + b`` itself, and by a few of the dtype's smallest normal
        values for subnormal distances.  Rows with no other class within it
        are decided by their smallest squared distance alone (see
        :func:`predict_labels`).
        """
        e, slack = self._slack()
        loose = 1 + 16 * torch.finfo(dtype).eps
        a = loose / (1 - e)
        b = 2 * self.std**2 * slack * a + 4 * torch.finfo(dtype).tiny
        return a, b

    def _slack(self):
        """``(e, slack)``: the relative rounding of a log posterior (a few
        units of its dtype's, taken as 16), and how far below the largest a
        log posterior may be and still tie with it (uniform priors)."""
        e = 16 * torch.finfo(self.dtype).eps / 2
        return e, self.tie + e * abs(self.uniform_log_prior)

    def _tie_distance(self, nearest):
        """Per row, a distance beyond which a class's log posterior is more
        than ``tie`` below the nearest class's, ``nearest`` (uniform
        priors), allowing for the rounding of the log posteriors (see
        :meth:`_slack`)."""
        d = nearest.to(self.dtype)  # what the log posteriors are computed in
        e, slack = self._slack()
        if self.metric == "euclidean":
            # 0.5 (d_k^2 - d^2) / s^2 <= slack + e (0.5 d_k^2 / s^2 + |lp|)
            limit = d.square().add_(2 * self.std**2 * slack).div_(1 - e).sqrt_()
        else:
            # |f| (d_k - d) <= slack + e (|f| d_k + |lp|)
            factor = abs(self.factor)
            limit = d.add(slack / factor if factor > 0 else math.inf).div_(1 - e)
        # Rounded up into the distances' dtype: a bound, never below.
        limit = limit.to(nearest.dtype)
        return torch.nextafter(limit, torch.full_like(limit, math.inf))


# Log posteriors closer than this may be equal once turned into
# probabilities (exp and the division round to 2**-53 relative): such rows
# are decided by the probabilities themselves.
_SCORE_TIE = 2.0**-40


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
    scratch = None
    if centroids.scratch_size():
        scratch = torch.empty(
            centroids.scratch_size(), dtype=centroids.dtype, device=centroids.device
        )

    def per_chunk(start, stop, chunk, masks):
        rows = X[start:stop]
        distances = centroids.distances(chunk, scratch, rows=rows, masks=masks)
        return distances if reduce is None else reduce(distances)

    return _map_chunks(X, centroids, batch_size, per_chunk)


def predict_labels(X, centroids, posterior, *, batch_size):
    """Index of the predicted class of every row of ``X``: what
    ``pairwise_distances(X, centroids, reduce=posterior.predict)`` returns,
    label for label, computed with less.

    For euclidean distances with uniform priors (the estimator's defaults),
    each chunk's squared distances are read once for their smallest, its
    index, and whether any other class is within the margin of both
    :meth:`Centroids._refine` (float32 rounding) and :meth:`Posterior.predict`
    (a tie of probabilities) of it.  The rows where one is (on MNIST, a few in
    10,000; on random data, 1 in 50) are set aside, and go through those two
    methods as :func:`pairwise_distances` would take them, many chunks' worth
    at a time (both work row by row).  The others are decided by their
    smallest squared distance, as both methods would decide them, without
    square roots, a second comparison, or a copy of the distances into rows.
    Measured on a 2-core AMD EPYC (one thread, 10,000 MNIST-shaped rows by
    10 classes), that work took as long as the product itself.
    """
    if not (
        centroids.metric == "euclidean"
        and posterior.uniform
        and not centroids.has_missing
    ):
        return pairwise_distances(
            X, centroids, batch_size=batch_size, reduce=posterior.predict
        )
    refine = centroids.exact is not None
    a, b = posterior.squared_tie_margin(centroids.dtype)
    doubts = _Doubts(X, centroids, posterior)

    def per_chunk(start, stop, chunk, masks):
        d2, sq_rows = centroids.squared(chunk)
        by_class, dim = _by_class(d2)
        nearest, index = by_class.min(dim=dim)
        check_finite_result(
            nearest[:, None], reduce=torch.amin, dtype=d2.dtype, what="distances"
        )
        limit = nearest.mul(a).add_(b)
        bound = None
        if refine:
            # At or above the limit of _refine, which adds the same float32
            # values to the smallest.
            bound = centroids._error_bound(sq_rows)
            limit.add_(bound.mul(2 * centroids.tolerance))
        _, doubt = _rows_within(by_class, dim, limit, masks)
        if doubt.numel():
            doubts.add(start, doubt, d2, bound)
        return index

    index = _map_chunks(X, centroids, batch_size, per_chunk)
    doubts.resolve(index)
    return index


class _Doubts:
    """The rows :func:`predict_labels` sets aside, with their squared
    distances (and error bounds), resolved into labels many chunks at a time:
    a resolution costs a few dozen small operations however few rows it has.
    What is kept at once, with the rows of ``X`` a resolution reads again,
    is bounded as a chunk's distances are, whatever share of the rows is in
    doubt."""

    def __init__(self, X, centroids, posterior):
        self.X, self.centroids, self.posterior = X, centroids, posterior
        self.parts = []
        self.size = 0
        self.labels = []

    def add(self, start, doubt, d2, bound):
        values = d2.index_select(0, doubt)
        if bound is not None:
            bound = bound.index_select(0, doubt)
        self.parts.append((doubt + start, values, bound))
        # Their distances, and the rows _refine reads again from X.
        self.size += values.numel()
        if bound is not None:
            self.size += len(doubt) * self.X.shape[1]
        if self.size >= _AUTO_DISTANCE_ELEMENTS:
            self._flush()

    def _flush(self):
        if not self.parts:
            return
        where, values, bounds = zip(*self.parts, strict=True)
        where, values = torch.cat(where), torch.cat(values)
        self.parts, self.size = [], 0
        if self.centroids.exact is not None:
            rows = _take_rows(self.X, where)
            values = self.centroids._refine(values, torch.cat(bounds), rows, _Masks())
        labels = self.posterior.predict(values.sqrt_())
        self.labels.append((where.cpu().numpy(), labels.cpu().numpy()))

    def resolve(self, index):
        """Write the labels of the rows set aside into ``index``, the
        host array of all labels."""
        self._flush()
        for where, labels in self.labels:
            index[where] = labels


def _take_rows(X, where):
    """``X[where]`` (``where`` a tensor of row indices) as a tensor, on
    ``X``'s device for a tensor, on the host for an array."""
    if is_tensor(X):
        return X.index_select(0, where.to(X.device))
    return _host_tensor(X[where.cpu().numpy()])


def _map_chunks(X, centroids, batch_size, per_chunk):
    """``per_chunk(start, stop, chunk, masks)`` for each chunk of ``X``
    (rows ``start:stop``, shifted and upcast, see :func:`iter_chunks`;
    ``masks``, a :class:`_Masks` for the call), gathered on the host."""
    n_samples, n_features = X.shape
    rows = batch_rows(batch_size, n_features, centroids.C.shape[0], centroids.device)
    results = _HostResults(n_samples)
    masks = _Masks()
    for start, stop, chunk in iter_chunks(
        X,
        device=centroids.device,
        dtype=centroids.dtype,
        batch_size=rows,
        shift=centroids.shift,
    ):
        results.put(start, stop, per_chunk(start, stop, chunk, masks))
    return results.array()


class _HostResults:
    """Per-chunk results gathered into one numpy array on the host.

    From a CUDA device each chunk's result is copied without blocking into
    pinned memory and collected one chunk later, so the device computes the
    next chunk while the previous result travels.
    """

    def __init__(self, n_samples):
        self.n_samples = n_samples
        self.out = None
        self.pending = None

    def put(self, start, stop, result):
        if self.out is None:
            dtype = np.float64 if result.is_floating_point() else np.int64
            shape = (self.n_samples,) + tuple(result.shape[1:])
            self.out = np.empty(shape, dtype=dtype)
        if result.device.type != "cuda":
            self.out[start:stop] = result.cpu().numpy()
            return
        host = torch.empty(result.shape, dtype=result.dtype, pin_memory=True)
        host.copy_(result, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(torch.cuda.current_stream(result.device))
        self._collect()
        self.pending = (start, stop, host, copied)

    def _collect(self):
        if self.pending is not None:
            start, stop, host, copied = self.pending
            copied.synchronize()
            self.out[start:stop] = host.numpy()
            self.pending = None

    def array(self):
        self._collect()
        return self.out
