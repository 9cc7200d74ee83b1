"""Scratch tensors: one pool of host buffers kept between calls, and the
:class:`Workspace` through which every computation takes its scratch.

A fresh buffer of more than a few hundred KiB is a fresh allocation that the
C allocator often takes from (or gives back to) the system: every page is
then faulted in again on first write.  Measured on a 2-core AMD EPYC, an
8 MiB float32 chunk buffer took 3 ms to fill the first time and 0.14 ms
after, and predicting 10,000 MNIST-sized rows takes 10 ms in all; a fresh
(2,560 x 1,000) bool mask per chunk added 13 ms to a 42 ms product.  So
chunks, masks, tiles and the float64 blocks of the refinement all come from
here, and a few buffers of each dtype are kept for the next call, as BLAS
libraries keep theirs.  Not on GPUs, whose caching allocator already does
this.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
import threading

import torch


class BufferPool:
    """Flat host buffers kept from one call to the next.

    A buffer is held by one :class:`Workspace` at a time (concurrent calls
    from several threads, or a call inside another, get new ones).  At most
    ``keep_count`` buffers of each dtype, of at most ``keep_bytes`` each,
    are kept.
    """

    def __init__(self, keep_bytes, keep_count=4):
        self.keep_bytes = keep_bytes
        self.keep_count = keep_count
        self._free = {}
        self._lock = threading.Lock()

    def take(self, numel, dtype, device):
        """A flat tensor of at least ``numel`` values: a kept one if one is
        large enough, else a new one."""
        if device.type == "cpu":
            with self._lock:
                free = self._free.get(dtype, ())
                best = None
                for i, kept in enumerate(free):  # by position: tensors compare
                    if kept.numel() >= numel and (  # by value
                        best is None or kept.numel() < free[best].numel()
                    ):
                        best = i
                if best is not None:
                    return free.pop(best)
        return torch.empty(numel, dtype=dtype, device=device)

    def give_back(self, buffer):
        """Keep ``buffer`` for a later :meth:`take` if there is room, never
        waiting: a buffer may come back from a generator that the garbage
        collector closes while this thread holds the lock (in :meth:`take`),
        and waiting would hang it."""
        if buffer.device.type != "cpu":
            return
        if buffer.numel() * buffer.element_size() > self.keep_bytes:
            return
        if not self._lock.acquire(blocking=False):
            return  # dropped: the next call allocates a new one
        try:
            free = self._free.setdefault(buffer.dtype, [])
            free.append(buffer)
            if len(free) > self.keep_count:
                smallest = min(range(len(free)), key=lambda i: free[i].numel())
                del free[smallest]
        finally:
            self._lock.release()


# Kept: the auto chunks (4 MiB of float32, 8 MiB of float64 on a CPU), masks,
# Manhattan tiles, the refinement's blocks (2 MiB) and explicit chunks up to
# 16 MiB; at most 64 MiB per dtype.
POOL = BufferPool(keep_bytes=16 * 2**20)


class Workspace:
    """The scratch tensors of one computation, by name.

    :meth:`get` takes a buffer from the pool the first time a name is asked
    for (or when a larger one, or another dtype, is), and the same memory
    the next times; :meth:`close` (or the end of a ``with`` block) gives
    them all back.  A workspace belongs to one thread.

    Parameters
    ----------
    pool : BufferPool, default=None
        Where buffers come from and go back to (the module's :data:`POOL`).
    """

    def __init__(self, pool=None):
        self.pool = POOL if pool is None else pool
        self._held = {}

    def get(self, name, shape, dtype, device):
        """A tensor of ``shape`` (a tuple, or an int for a flat one), of
        ``dtype`` on ``device``; its values are whatever was there."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        numel = math.prod(shape)
        held = self._held.get(name)
        if held is None or not (
            held.dtype == dtype
            and _same_device(held.device, device)
            and held.numel() >= numel
        ):
            if held is not None:
                self.pool.give_back(held)
            held = self._held[name] = self.pool.take(numel, dtype, device)
        return held[:numel].view(shape)

    def close(self):
        """Give every buffer back to the pool."""
        held, self._held = self._held, {}
        for buffer in held.values():
            self.pool.give_back(buffer)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _same_device(have, want):
    """Whether a tensor on ``have`` is on ``want`` ("cuda" is any CUDA
    device's index the tensor has)."""
    return have.type == want.type and want.index in (None, have.index)
