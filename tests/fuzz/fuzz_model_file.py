"""Fuzz ``load_model`` with mutated model files (see ``_harness.py``).

Documented errors: ``ValueError`` (not a model file, corrupt, truncated,
numbers a model cannot predict with, a newer format), which the harness
catches.  A file that loads must predict: ``predict``, ``predict_proba`` and
``transform`` on a few rows of the right width give finite probabilities
summing to 1, or a documented ``ValueError`` (an overflow).

Half the mutations are libFuzzer's on the raw bytes; the other half open the
archive, mutate one member's bytes (its ``.npy`` header or its numbers) and
write the archive back with valid CRCs, stored or deflated, so that the
fuzzer reaches the checks past the zip layer.

Usage, from tests/fuzz::

    python fuzz_model_file.py -max_total_time=600 new/ corpus/model_file
"""

# SPDX-License-Identifier: BSD-3-Clause

import atexit
import io
import os
import random
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402

# The libraries first, uninstrumented: coverage guides the fuzzer through
# sk_template's own code (instrumenting numpy, torch and scikit-learn too
# would take minutes at start-up and slow every input).
import numpy as np  # noqa: E402
import sklearn.base  # noqa: E402, F401
import torch  # noqa: E402

with atheris.instrument_imports(include=["sk_template"]):
    import sk_template._classifier  # noqa: F401
    import sk_template._core  # noqa: F401
    from sk_template import load_model

torch.set_num_threads(1)
# Warnings are not findings: a device this machine lacks, X without the
# feature names the model was fitted with.
warnings.simplefilter("ignore")
PATH = _harness.scratch_file("model.npz")
atexit.register(shutil.rmtree, os.path.dirname(PATH), True)
SEEDS = Path(__file__).resolve().parent / "corpus" / "model_file"


def test_one_input(data):
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        model = load_model(PATH)
    except ValueError:
        return
    X = np.zeros((3, model.n_features_in_))
    X[1] = 1
    X[2] = np.arange(model.n_features_in_) % 7
    try:
        proba = model.predict_proba(X)
        model.predict(X)
        model.transform(X)
    except ValueError as exc:
        if "overflow" not in str(exc):
            raise
        return
    if not (np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1)):
        raise AssertionError(f"a loaded model predicts probabilities {proba!r}")


def mutate(data, max_size, seed):
    """Raw bytes half the time; otherwise one member of the archive."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return atheris.Mutate(data, max_size)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    except Exception:  # not an archive (any more): mutate the bytes
        return atheris.Mutate(data, max_size)
    if not members:
        return atheris.Mutate(data, max_size)
    i = rng.randrange(len(members))
    name, body = members[i]
    members[i] = (name, atheris.Mutate(body, max(len(body) * 2, 64)))
    out = io.BytesIO()
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, body in members:
            zf.writestr(name, body)
    result = out.getvalue()
    return result if len(result) <= max_size else atheris.Mutate(data, max_size)


if __name__ == "__main__":
    _harness.run(
        test_one_input,
        warm_up=next(SEEDS.iterdir()).read_bytes(),
        max_len=256 * 1024,
        custom_mutator=mutate,
    )
