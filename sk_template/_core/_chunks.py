"""Row chunks: how many rows, and each one moved to the device and upcast.

Data moves to the device one chunk at a time in its stored dtype (uint8
stays uint8 until the chunk is on the device) and is upcast there, into a
buffer of the caller's :class:`~._buffers.Workspace`.
"""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import torch

from ._buffers import Workspace
from ._checks import is_tensor

# Elements (rows * features) of one float chunk when ``batch_size="auto"``.
# On a CPU, 2**20 float32 values (4 MiB, 1,280 MNIST rows): the chunk is
# converted, shifted, normed and multiplied in turn, and stays in cache
# between them.  Measured on a 2-core AMD EPYC (one thread, interleaved with
# scikit-learn, cdist and GEMM runs as bench_scaling times them): predicting
# 10,000 MNIST-sized rows took 1.4x-1.5x the bare GEMM in chunks of 1,024
# rows whatever ran before it, while chunks of 2,560 (8 MiB) went from 1.5x
# to 2.6x in some rounds; fit and 1,000 classes were no different.  On other
# devices, 2**21 (8 MiB), big enough to keep a GPU busy.
AUTO_CHUNK_ELEMENTS = {"cpu": 2**20}
AUTO_CHUNK_ELEMENTS_DEFAULT = 2**21

# Elements of one chunk that ``fit`` sums on a CPU: 2**18 float32 values (1
# MiB, 256 MNIST rows), which stay in the L2 cache of most CPUs while the
# chunk is converted, added into its class sums, squared and summed again,
# and at least FIT_MIN_ROWS rows.  Measured on a 2-core Xeon (2 MiB of L2
# a core; one thread, interleaved with a copy of the data, on a loaded
# machine): 60,000 x 784 uint8 rows took 3.7x-4.0x the copy in chunks of
# 128 or 256 rows, 4.1x-4.4x in 384 to 512, 4.6x-5.6x in 1,280; 20,000 x
# 784 rows in 1,000 classes 8.1x in 256 rows, 10x-11x in 512 and 1,280.
FIT_CHUNK_ELEMENTS = {"cpu": 2**18}
FIT_MIN_ROWS = 64

# Distances (rows * classes) of one chunk when ``batch_size="auto"``: 2**22
# values, 16 MiB in float32 and 32 MiB as the float64 copy that the
# probabilities are computed in.  It takes over from the feature budget at 3,277
# classes for MNIST-sized rows on a CPU (1,280 a chunk), later for wider ones.
AUTO_DISTANCE_ELEMENTS = 2**22

# Rows whose squares float32 sums exactly when they are uint8: 256 * 255**2 is
# below 2**24.
BLOCK = 256
# Rows whose uint8 values (shifted: at most 255 in size) float32 sums exactly.
MAX_EXACT_ROWS = 65536

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


def batch_rows(batch_size, n_features, n_classes=0, device=None, fit=False):
    """Rows per chunk for a ``batch_size`` parameter (an int or ``"auto"``).

    ``"auto"`` keeps a chunk near 4 MiB of float32 on a CPU (``device`` None
    or a CPU), 8 MiB on other devices, and, when ``n_classes`` is given, its
    distances to at most ``AUTO_DISTANCE_ELEMENTS`` values, so that memory
    stays bounded however many classes there are.  For ``fit`` on a CPU,
    ``FIT_CHUNK_ELEMENTS``.
    """
    if batch_size == "auto":
        kind = "cpu" if device is None else torch.device(device).type
        budget = AUTO_CHUNK_ELEMENTS.get(kind, AUTO_CHUNK_ELEMENTS_DEFAULT)
        if fit and kind in FIT_CHUNK_ELEMENTS:
            budget = max(FIT_CHUNK_ELEMENTS[kind], FIT_MIN_ROWS * n_features)
        rows = budget // max(1, n_features)
        if n_classes:
            rows = min(rows, AUTO_DISTANCE_ELEMENTS // n_classes)
        if rows >= BLOCK:
            rows -= rows % BLOCK
        return int(max(1, min(MAX_EXACT_ROWS, rows)))
    return int(batch_size)


def iter_chunks(
    X, *, device, dtype, batch_size, shift=None, convert=None, workspace=None
):
    """Yield ``(start, stop, chunk)`` with ``chunk`` a float tensor on ``device``.

    ``X`` is a 2-D numpy array (memory-mapped arrays included) or a tensor on
    any device.  Each slice travels in its stored dtype (uint8 images: a
    quarter of the bytes of float32) and is upcast on ``device`` into one
    buffer of ``workspace`` (one of its own if None): the yielded chunk is
    overwritten by the next one and may be modified in place by the caller.
    From host memory to a CUDA device the next slice is copied while the
    current one is computed on.  With ``shift`` (a tensor of ``n_features``
    values on ``device``), the chunk is ``X[start:stop] - shift``; with
    ``convert``, whatever ``convert(part, chunk)`` writes into the chunk
    from each slice ``part`` (a tensor on ``device``, in its stored dtype).
    """
    if convert is None:

        def convert(part, chunk):
            _upcast(part, chunk, shift)

    n_samples, n_features = X.shape
    rows = min(batch_rows(batch_size, n_features, device=device), n_samples)
    if workspace is None:
        with Workspace() as own:
            yield from iter_chunks(
                X,
                device=device,
                dtype=dtype,
                batch_size=rows,
                convert=convert,
                workspace=own,
            )
        return
    buffer = workspace.get("chunk", (rows, n_features), dtype, device)
    with warnings.catch_warnings():
        # Read-only arrays (memory maps, np.frombuffer) are only ever read.
        warnings.filterwarnings("ignore", message="The given NumPy array is not")
        if is_tensor(X) or device.type != "cuda":
            for start in range(0, n_samples, rows):
                stop = min(start + rows, n_samples)
                chunk = buffer[: stop - start]
                convert(host_tensor(X[start:stop]), chunk)
                yield start, stop, chunk
        else:
            yield from _iter_host_to_cuda(X, buffer, rows, convert)


def _upcast(part, chunk, shift):
    """``chunk[:] = part - shift`` (or a plain copy), converting the dtype.

    Two passes: on a CPU, a subtraction of mixed dtypes is slower than an
    upcasting copy followed by a subtraction in place."""
    chunk.copy_(part)
    if shift is not None:
        chunk.sub_(shift)


def host_tensor(part):
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


def take_rows(X, where):
    """``X[where]`` (``where`` a tensor of row indices) as a tensor, on
    ``X``'s device for a tensor, on the host for an array."""
    if is_tensor(X):
        return X.index_select(0, where.to(X.device))
    return host_tensor(X[where.cpu().numpy()])


def _iter_host_to_cuda(X, buffer, rows, convert):
    """Double-buffered host-to-GPU stream: pinned staging, a copy stream and
    events, so the copy of slice i+1 overlaps the work on slice i."""
    n_samples, n_features = X.shape
    device = buffer.device
    stored = host_tensor(X[:1]).dtype
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
        pinned[slot][: stop - start].copy_(host_tensor(X[start:stop]))
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
        convert(staged[slot][: stop - start], chunk)  # upcast on the GPU
        consumed[slot].record(compute_stream)
        yield start, stop, chunk
