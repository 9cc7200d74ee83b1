"""Fitting and predicting on a memory-mapped array of a few GB stays small."""

# SPDX-License-Identifier: BSD-3-Clause

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sk_template import NearestMeanImageClassifier

N_FEATURES = 784
BASE_ROWS = 1_000
REPEATS = 4_000  # 4,000,000 rows x 784 uint8 = 3.1 GB on disk

# Runs in a fresh interpreter so that nothing else in the test session counts.
# A sampling thread records the peak of the process's anonymous memory
# (RssAnon: what it allocated).  The pages of the memory map itself are page
# cache backed by the file, which the kernel reclaims as it needs.
SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time
    import numpy as np
    from sk_template import NearestMeanImageClassifier

    def rss_anon_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024

    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2], mmap_mode="r")
    clf = NearestMeanImageClassifier(metric=sys.argv[3])
    clf.fit(X[:2000], y[:2000]).predict(X[:100])  # warm every code path
    baseline, peak, done = rss_anon_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    clf.fit(X, y)
    pred = clf.predict(X)
    done.set()
    sampler.join()
    np.save(sys.argv[4], clf.centroids_)
    print(json.dumps({
        "extra_mb": peak[0] - baseline,
        "n_rows": len(X),
        "agree": float((pred == y).mean()),
        "pred_head": pred[:1000].tolist(),
    }))
    """
)


@pytest.fixture(scope="module")
def big_memmap(tmp_path_factory):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the process's memory")
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    # Ten well separated classes, so predictions are checkable.
    labels = rng.integers(0, 10, size=BASE_ROWS).astype(np.uint8)
    centers = rng.integers(0, 256, size=(10, N_FEATURES))
    base = np.clip(
        centers[labels] + rng.integers(-40, 41, size=(BASE_ROWS, N_FEATURES)), 0, 255
    )
    base = base.astype(np.uint8)
    X_path, y_path = root / "X.npy", root / "y.npy"
    X = np.lib.format.open_memmap(
        X_path, mode="w+", dtype=np.uint8, shape=(BASE_ROWS * REPEATS, N_FEATURES)
    )
    step = 100 * BASE_ROWS
    block = np.tile(base, (100, 1))
    for start in range(0, len(X), step):
        X[start : start + step] = block
    X.flush()
    del X
    np.save(y_path, np.tile(labels, REPEATS))
    return X_path, y_path, base, labels


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_fit_predict_on_3_gb_memory_map_stays_small(big_memmap, tmp_path, metric):
    X_path, y_path, base, labels = big_memmap
    out = tmp_path / "centroids.npy"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(X_path), str(y_path), metric, str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_rows"] == BASE_ROWS * REPEATS
    # 3.1 GB went through; the process grew by a few tens of MB (the labels
    # it returns, 4 MB, and one chunk at a time).
    assert report["extra_mb"] < 300, report["extra_mb"]
    # Right answers: the centroids are the class means of the repeated block,
    # and predictions equal those on the block itself.
    reference = NearestMeanImageClassifier(metric=metric).fit(base, labels)
    assert_allclose(np.load(out), reference.centroids_, rtol=1e-9)
    assert report["pred_head"] == reference.predict(base).tolist()
    assert report["agree"] == pytest.approx((reference.predict(base) == labels).mean())
