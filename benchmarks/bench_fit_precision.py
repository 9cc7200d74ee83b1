"""Fit time and precision of NearestMeanImageClassifier by input dtype and weights.

On MNIST shape (the real MNIST from ``../shared/data/mnist`` when it is
there, else random data of that shape), for uint8 images, the same images as
float32 and float64 (divided by 255), and each of those with random integer
``sample_weight``: ours against ``sklearn.neighbors.NearestCentroid.fit`` on
the same array (scikit-learn's has no ``sample_weight``: weighted rows are
timed against its unweighted fit, and checked against float64 means), times
interleaved, medians of ``--repeat`` runs (a ratio above 1: ours is faster).

Precision columns, against the exact model computed in float64 from the
float64 values of the same data (``np.average`` for the centroids, squared
deviations from them for the pooled spread):

- ``centroid err``: the largest error of ``centroids_``, relative to the
  data's range;
- ``std err``: the relative error of ``within_class_std_``;
- ``far std err``: the same, with the classes moved apart (each class's rows
  offset by 1,000 times its label, the spread within a class unchanged),
  where a scatter computed from rounded squares cancels into noise.

Sample output (2-core AMD EPYC, torch 2.13 CPU, ``--repeat 5``, two other
CPU-heavy jobs on the machine: ratios, not seconds, are what carries over)::

    data: real MNIST (60000 x 784), repeat=5, threads=2
    input           ours (s)  sklearn (s)  ratio  centroid err  std err  far std err
    uint8             0.0253       0.3311  13.1x       0.0e+00  1.1e-16      8.0e-15
    ...

Usage::

    python benchmarks/bench_fit_precision.py [--repeat 5] [--random]
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestCentroid

from sk_template import NearestMeanImageClassifier

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def load(use_random):
    if not use_random and MNIST.is_dir():
        from sk_template.datasets import read_idx

        X = read_idx(MNIST / "train-images-idx3-ubyte.gz")
        y = read_idx(MNIST / "train-labels-idx1-ubyte.gz")
        return X.reshape(len(X), -1), y, "real MNIST"
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, (60_000, 784), dtype=np.uint8),
        rng.integers(0, 10, 60_000),
        "random uint8",
    )


def exact_model(X, y, w):
    """Centroids and pooled within-class std in float64, two passes."""
    X = X.astype(np.float64)
    classes = np.unique(y)
    centroids = np.stack(
        [np.average(X[y == c], axis=0, weights=w[y == c]) for c in classes]
    )
    deviation = X - centroids[np.searchsorted(classes, y)]
    scatter = (w[:, None] * deviation**2).sum()
    return centroids, np.sqrt(scatter / (X.shape[1] * w.sum()))


def timed(fn, times):
    """Run ``fn`` and append how long it took to ``times``."""
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--random", action="store_true", help="random data")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # NearestCentroid warns about MNIST's constant border pixels.
    warnings.filterwarnings("ignore", message="self.within_class_std_dev_")
    X8, y, what = load(args.random)
    rng = np.random.default_rng(1)
    weights = rng.integers(1, 5, len(y)).astype(np.float64)
    inputs = {
        "uint8": X8,
        "float32": (X8 / np.float32(255)).astype(np.float32),
        "float64": X8 / 255.0,
    }
    print(
        f"data: {what} ({X8.shape[0]} x {X8.shape[1]}), repeat={args.repeat}, "
        f"threads={torch.get_num_threads()}"
    )
    head = ("input", "ours (s)", "sklearn (s)", "ratio", "centroid err", "std err")
    print(f"{head[0]:<16}{head[1]:>9}{head[2]:>13}{head[3]:>7}", end="")
    print(f"{head[4]:>14}{head[5]:>9}{'far std err':>13}")
    for name, X in inputs.items():
        for weighted in (False, True):
            w = weights if weighted else np.ones(len(y))
            sw = weights if weighted else None
            ours, ref = [], []
            for _ in range(args.repeat):
                timed(
                    lambda X=X, sw=sw: NearestMeanImageClassifier().fit(
                        X, y, sample_weight=sw
                    ),
                    ours,
                )
                timed(lambda X=X: NearestCentroid().fit(X, y), ref)
            clf = NearestMeanImageClassifier().fit(X, y, sample_weight=sw)
            centroids, std = exact_model(X, y, w)
            span = float(X.max()) - float(X.min())
            c_err = np.abs(clf.centroids_ - centroids).max() / span
            s_err = abs(clf.within_class_std_ - std) / std
            # The classes far apart: the spread within them is the same.
            Xf = X.astype(np.float64) + 1000 * span * y[:, None]
            if X.dtype != np.uint8:
                Xf = Xf.astype(X.dtype)
                _, std_far = exact_model(Xf, y, w)
                far = NearestMeanImageClassifier().fit(Xf, y, sample_weight=sw)
                far_err = f"{abs(far.within_class_std_ - std_far) / std_far:13.1e}"
            else:
                far_err = f"{'':>13}"
            t_ours, t_ref = np.median(ours), np.median(ref)
            label = name + (" weighted" if weighted else "")
            print(
                f"{label:<16}{t_ours:9.4f}{t_ref:13.4f}{t_ref / t_ours:6.1f}x"
                f"{c_err:14.1e}{s_err:9.1e}{far_err}"
            )


if __name__ == "__main__":
    main()
