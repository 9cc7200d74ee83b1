"""Fuzz ``read_idx``, the IDX reader of ``fetch_mnist``, with mutated IDX
files, plain and gzipped (see ``_harness.py``).

Documented error: ``ValueError`` (not an IDX file, a corrupt gzip stream,
truncated, longer than its header says, or a gzip stream that would expand
past the reader's bound).  What it returns must be an array of the header's
shape and type, in native byte order.

Usage, from tests/fuzz::

    python fuzz_idx.py -max_total_time=600 new/ corpus/idx
"""

# SPDX-License-Identifier: BSD-3-Clause

import atexit
import gzip
import os
import random
import shutil
import sys
import zlib
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402
import numpy as np  # noqa: E402, F401  (uninstrumented: see the other harnesses)

with atheris.instrument_imports(include=["sk_template", "gzip"]):
    from sk_template.datasets import _idx, read_idx

PATH = _harness.scratch_file("data-idx")
atexit.register(shutil.rmtree, os.path.dirname(PATH), True)
SEEDS = Path(__file__).resolve().parent / "corpus" / "idx"


def test_one_input(data):
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        array = read_idx(PATH)
    except ValueError:
        return
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as exc:
        raise AssertionError(f"read a corrupt gzip stream: {exc}") from None
    ndim = raw[3]
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = _idx._IDX_TYPES[raw[2]]
    if array.shape != shape or array.dtype != dtype.newbyteorder("="):
        raise AssertionError(
            f"header {shape} {dtype}, read {array.shape} {array.dtype}"
        )
    if not array.dtype.isnative:
        raise AssertionError(f"not in native byte order: {array.dtype}")


def _inflated(inner, rng):
    """``inner`` with a header of large sizes and as many zero bytes as they
    say, up to 64 MiB: compressed, a small input that expands a thousandfold."""
    if len(inner) < 4:
        return inner
    ndim = min(inner[3], 4) or 1
    sizes = [rng.choice([1, 28, 255, 4096, 65536, 2**24, 2**31]) for _ in range(ndim)]
    header = bytes([0, 0, inner[2], ndim]) + b"".join(
        s.to_bytes(4, "big") for s in sizes
    )
    itemsize = _idx._IDX_TYPES.get(inner[2], _idx._IDX_TYPES[8]).itemsize
    count = itemsize
    for s in sizes:
        count *= s
    return header + bytes(min(count + rng.choice([-1, 0, 0, 1]), 2**26))


def mutate(data, max_size, seed):
    """The bytes, or, for a gzipped file, the data inside the gzip stream
    (half the time: the fuzzer then gets past the CRC; one time in eight,
    with large sizes and the zeros they need)."""
    rng = random.Random(seed)
    if data[:2] == b"\x1f\x8b" and rng.random() < 0.5:
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return atheris.Mutate(data, max_size)
        inner = atheris.Mutate(inner, max_size)
        if rng.random() < 0.25:
            inner = _inflated(inner, rng)
        out = gzip.compress(inner, compresslevel=1, mtime=0)
        return out if len(out) <= max_size else atheris.Mutate(data, max_size)
    return atheris.Mutate(data, max_size)


if __name__ == "__main__":
    _harness.run(
        test_one_input,
        warm_up=next(SEEDS.iterdir()).read_bytes(),
        max_len=256 * 1024,
        custom_mutator=mutate,
    )
