"""Shared test set-up."""

# SPDX-License-Identifier: BSD-3-Clause

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Scripts, not tests: the fuzz harnesses (they need atheris, the ``fuzz``
# extra) and the stress scripts are run by hand and by CI, not collected,
# not even for doctests.
collect_ignore_glob = ["fuzz/*", "stress/*"]

# Property tests (test_properties.py): small and reproducible by default, so
# that CI is deterministic; ``--hypothesis-profile=long`` searches far more,
# from fresh random seeds.
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=3000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci")

# The real MNIST (four gzipped IDX files), beside the project root.
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True, scope="session")
def _private_data_home(tmp_path_factory):
    """Keep caches and downloads of the whole run out of ~/sk_template_data.

    Subprocesses the tests start inherit the variable too.
    """
    previous = os.environ.get("SK_TEMPLATE_DATA")
    os.environ["SK_TEMPLATE_DATA"] = str(tmp_path_factory.mktemp("sk_template_data"))
    yield
    if previous is None:
        del os.environ["SK_TEMPLATE_DATA"]
    else:
        os.environ["SK_TEMPLATE_DATA"] = previous


@pytest.fixture
def quiet_local_home(tmp_path, monkeypatch):
    """Keep this test's caches inside tmp_path, and progress bars off (see
    test_progress); the data home it uses."""
    from sk_template.datasets import _progress

    home = tmp_path / "home"
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(home))
    monkeypatch.setattr(_progress, "DELAY", float("inf"))
    return home


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST as ``((X_train, y_train), (X_test, y_test))``, uint8 rows of
    784 pixels; the test is skipped when ../shared/data/mnist is absent."""
    if not MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {MNIST}")
    from sk_template.datasets import read_idx

    def load(prefix):
        images = read_idx(MNIST / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(MNIST / f"{prefix}-labels-idx1-ubyte.gz")
        return images.reshape(len(images), -1), labels

    return load("train"), load("t10k")


@pytest.fixture
def mnist_mirror(tmp_path, monkeypatch):
    """A folder of four small MNIST-like IDX files (3s, 7s and a 1), with
    ``fetch_mnist``'s checksum table set to theirs for the test."""
    import gzip
    import hashlib

    import numpy as np

    from sk_template.datasets import _mnist, write_idx

    rng = np.random.default_rng(5)
    folder = tmp_path / "mirror"
    folder.mkdir()
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 4, 4), np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([3, 7, 3, 7, 1, 3], np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 4, 4), np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([7, 3], np.uint8),
    }
    table = {}
    for name, array in arrays.items():
        data = gzip.decompress(write_idx(folder / name, array).read_bytes())
        table[name] = hashlib.md5(data).hexdigest()
    monkeypatch.setattr(_mnist, "MNIST_MD5", table)
    return folder


class _Unblocker:
    """Opens the write end of a FIFO whenever a reader waits on it, so that a
    load that wrongly opens the FIFO fails this test instead of hanging it."""

    def __init__(self, fifo):
        self.fifo, self.opened = fifo, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:  # succeeds only while a reader has the FIFO open
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
                self.opened += 1
            except OSError:
                time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture
def fifo_unblocker():
    """``fifo_unblocker(path)``: a context in which a read that wrongly opens
    the FIFO ``path`` fails (reading nothing) instead of hanging the test run;
    its ``opened`` counts such opens."""
    return _Unblocker
