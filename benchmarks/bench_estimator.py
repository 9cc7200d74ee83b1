"""Fit and predict time of NearestMeanImageClassifier against its references.

On MNIST shape (60,000 x 784 uint8 training images, 10,000 test images; the
real MNIST from ``../shared/data/mnist`` when it is there, else random data of
that shape), side by side in one run:

- ``fit``: ours against ``sklearn.neighbors.NearestCentroid.fit``;
- ``predict`` of 60,000 rows: ours against ``NearestCentroid.predict`` (for
  euclidean and manhattan) and against a plain ``torch.cdist`` argmin
  (``p=2``, ``p=1``, and ``1 - cosine similarity`` by matmul);
- peak memory of ``predict`` on 60,000 uint8 rows above the input itself,
  measured in a fresh subprocess (growth of its anonymous resident memory).

Times are medians of ``--repeat`` runs, ours and the references' interleaved
so that a slow spell of a shared machine hits both; a ratio above 1 means ours
is faster.
NearestCentroid(metric="manhattan") fits medians, not means: it is the
reference for speed only.

Sample output (2-core AMD EPYC, torch 2.13 CPU, scikit-learn 1.9)::

    data: real MNIST (60000 x 784 train, 10000 test), repeat=7, threads=2
    metric     step     ours (s)   reference              ref (s)   ratio
    euclidean  fit        0.0112   NearestCentroid.fit     0.1404   12.5x
    ...

The Manhattan kernel is compiled on first use (``--compile 1``, the
default here: the runs after the warm-up are a process's steady state);
``--compile auto`` is what a program gets by default (see the README).

Usage::

    python benchmarks/bench_estimator.py [--repeat 7] [--random] [--device cpu]
                                         [--compile {1,auto,0}]
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestCentroid

from sk_template import NearestMeanImageClassifier

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
METRICS = ("euclidean", "manhattan", "cosine")


def load_data(use_random):
    if not use_random and MNIST.is_dir():
        from sk_template.datasets import read_idx

        def part(prefix):
            X = read_idx(MNIST / f"{prefix}-images-idx3-ubyte.gz")
            y = read_idx(MNIST / f"{prefix}-labels-idx1-ubyte.gz")
            return X.reshape(len(X), -1), y

        return "real MNIST", *part("train"), *part("t10k")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(70_000, 784), dtype=np.uint8)
    y = rng.integers(0, 10, size=70_000)
    return "random uint8", X[:60_000], y[:60_000], X[60_000:], y[60_000:]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_times(fns, repeat):
    """Median time of each function, the runs interleaved (a, b, c, a, b, c,
    ...) so that a slow spell of a shared machine hits them all alike."""
    for fn in fns:
        fn()  # warm up: allocators, thread pools, lazy device caches
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, record in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [float(np.median(record)) for record in times]


def cdist_argmin(X, centroids, metric):
    """The plain torch baseline: upcast everything, one cdist, argmin."""
    Xt = torch.from_numpy(X).float()
    C = torch.tensor(centroids, dtype=torch.float32)
    if metric == "cosine":
        Xn = torch.nn.functional.normalize(Xt, dim=1)
        Cn = torch.nn.functional.normalize(C, dim=1)
        return (1 - Xn @ Cn.T).argmin(1)
    return torch.cdist(Xt, C, p=2 if metric == "euclidean" else 1).argmin(1)


# Run in a fresh interpreter: ``setup`` (which warms every code path), then
# ``work`` three times while a thread samples the anonymous resident memory
# (RssAnon: what the process allocated) every 2 ms; prints the peak growth.
# Memory that setup freed but the C allocator kept would be reused unseen, so
# it goes back to the system first (glibc's malloc_trim, where there is one).
PEAK_SCRIPT = """
import ctypes, sys, threading, time

def rss_anon_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024

{setup}
try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
except (OSError, AttributeError):
    pass
base, peak, done = rss_anon_mb(), [0.0], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_anon_mb())
        time.sleep(0.002)

thread = threading.Thread(target=sample)
thread.start()
for _ in range(3):
    {work}
done.set()
thread.join()
print(max(peak[0], rss_anon_mb()) - base)
"""


def peak_growth_mb(setup, work, *args):
    """Peak memory growth (MB) of ``work`` after ``setup``, in a fresh process
    whose ``sys.argv[1:]`` are ``args``."""
    code = PEAK_SCRIPT.format(setup=setup, work=work)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def peak_memory_mb(metric, device, n_rows=60_000):
    """Peak growth of the process's memory while predicting n_rows uint8 rows."""
    setup = f"""
import numpy as np
from sk_template import NearestMeanImageClassifier

rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=({n_rows}, 784), dtype=np.uint8)
y = np.arange({n_rows}) % 10
clf = NearestMeanImageClassifier(metric={metric!r}, device={device!r})
clf.fit(X[:2000], y[:2000]).predict(X[:100])  # warm every code path first
"""
    return peak_growth_mb(setup, "clf.predict(X)")


def bench_metric(metric, args, X_train, y_train, X_test, y_test):
    """Table rows ``(metric, step, ours, reference name, reference)``."""
    ours = NearestMeanImageClassifier(metric=metric, device=args.device)
    ours.fit(X_train, y_train)
    centroids = ours.centroids_
    name = {"euclidean": "cdist(p=2)", "manhattan": "cdist(p=1)"}.get(
        metric, "1-cos matmul"
    )
    fits = [lambda: ours.fit(X_train, y_train)]
    predicts = [
        lambda: ours.predict(X_train),
        lambda: cdist_argmin(X_train, centroids, metric),
    ]
    if metric in ("euclidean", "manhattan"):
        ref = NearestCentroid(metric=metric).fit(X_train, y_train)
        fits.append(lambda: ref.fit(X_train, y_train))
        predicts.append(lambda: ref.predict(X_train))
    t_fit, *r_fit = median_times(fits, args.repeat)
    t_pred, c_pred, *r_pred = median_times(predicts, args.repeat)
    rows = []
    if r_fit:
        rows.append((metric, "fit", t_fit, "NearestCentroid.fit", r_fit[0]))
        rows.append((metric, "predict", t_pred, "NearestCentroid.predict", r_pred[0]))
    else:
        rows.append((metric, "fit", t_fit, "(no sklearn reference)", None))
    rows.append((metric, "predict", t_pred, f"torch {name} argmin", c_pred))
    rows.append((metric, "accuracy", ours.score(X_test, y_test), "(test set)", None))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--random", action="store_true", help="use random data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--compile",
        default="1",
        choices=["1", "auto", "0"],
        help="SK_TEMPLATE_COMPILE for the run (default 1: compile on first use)",
    )
    args = parser.parse_args(argv)
    os.environ["SK_TEMPLATE_COMPILE"] = args.compile
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")

    source, X_train, y_train, X_test, y_test = load_data(args.random)
    print(
        f"data: {source} ({len(X_train)} x {X_train.shape[1]} train, "
        f"{len(X_test)} test), repeat={args.repeat}, "
        f"threads={torch.get_num_threads()}, device={args.device}"
    )
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__} "
        f"(kernels: {torch.backends.cpu.get_cpu_capability()}); "
        f"SK_TEMPLATE_COMPILE={args.compile}"
    )
    rows = []
    for metric in METRICS:
        rows += bench_metric(metric, args, X_train, y_train, X_test, y_test)

    print()
    print(
        f"{'metric':<10} {'step':<9} {'ours (s)':>9}   {'reference':<27} "
        f"{'ref (s)':>8}  {'ratio':>6}"
    )
    for metric, step, ours_t, ref_name, ref_t in rows:
        if ref_t is None:
            print(f"{metric:<10} {step:<9} {ours_t:>9.4f}   {ref_name:<27}")
            continue
        print(
            f"{metric:<10} {step:<9} {ours_t:>9.4f}   {ref_name:<27} "
            f"{ref_t:>8.4f}  {ref_t / ours_t:>5.1f}x"
        )
    print()
    print("peak memory of predict(60,000 uint8 rows) above the input:")
    for metric in METRICS:
        print(f"  {metric:<10} {peak_memory_mb(metric, args.device):6.1f} MB")


if __name__ == "__main__":
    main()
