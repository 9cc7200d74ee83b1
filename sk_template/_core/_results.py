"""Per-chunk results collected on the host."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch


class HostResults:
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
