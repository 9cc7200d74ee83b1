"""How fit and predict scale with classes and features, against references.

Five cases of random uint8 data (fixed seed): MNIST shape, CIFAR shape, 100
classes, 1,000 classes, and 64 x 64 x 3 images in 200 classes.  Each row times
ours interleaved with its references (medians of ``--repeat`` runs, so that a
slow spell of a shared machine hits them all alike):

- scikit-learn's ``NearestCentroid`` (``fit`` or ``predict``), given float32
  input; a ratio above 1 means ours is faster;
- ``torch.cdist`` + ``argmin`` on float32 input (``predict`` rows);
- a floor no implementation can beat: a copy of the uint8 training array for
  ``fit``, a bare float32 ``torch.mm`` of the test rows by the centroids for
  euclidean ``predict`` (the distances' GEMM alone, on data already converted,
  in whichever of its two orientations is faster);
  ``ours/floor`` is how many times the floor ours takes.

The conversions to float32 are not timed: the references get their input
ready-made, ours starts from uint8.  NearestCentroid(metric="manhattan") fits
medians: it is there as a speed reference.  With ``--memory``, each predict
row also gets the peak memory ``predict`` adds above its input (in a fresh
process).

Targets on a 2-core CPU: every ``predict`` at least 2x scikit-learn and 1.5x
``cdist``; euclidean ``predict`` within 2x the GEMM floor; every ``fit`` at
least 5x scikit-learn and, on MNIST shape, within 4x the copy floor.

Sample output (2-core AMD EPYC, ``--memory --threads 1 --repeat 9``, nothing
else running; see the README for what it meets)::

    machine: AMD EPYC, 2 cores, torch threads 1; torch 2.13.0+cpu, scikit-learn 1.9.1; ours on cpu, repeat=9
    mnist: 60,000 x 784, 10 classes; 10,000
    cifar: 50,000 x 3,072, 10 classes; 10,000
    cifar100: 20,000 x 3,072, 100 classes; 10,000
    classes1000: 20,000 x 784, 1,000 classes; 5,000
    wide200: 20,000 x 12,288, 200 classes; 5,000

    case         step                ours (s)  sklearn  ours vs    cdist  ours vs    floor   ours/  peak MB
                                                   (s)  sklearn      (s)    cdist      (s)   floor
    mnist        fit                   0.0210   0.2520    12.0x                     0.0063    3.3x
    mnist        predict euclidean     0.0117   0.0276     2.4x   0.0516     4.4x   0.0069    1.7x      6.6
    cifar        predict euclidean     0.0399   0.0939     2.4x   0.2671     6.7x   0.0250    1.6x      9.8
    cifar100     fit                   0.0433   0.3468     8.0x                     0.0085    5.1x
    classes1000  fit                   0.0185   0.1374     7.4x                     0.0023    8.2x
    classes1000  predict euclidean     0.1070   0.1097     1.0x   0.1116     1.0x   0.0810    1.3x     23.1
    wide200      fit                   0.1813   2.5148    13.9x                     0.0270    6.7x
    wide200      predict manhattan     3.0217   7.6189     2.5x  10.7745     3.6x                       6.0

Usage::

    python benchmarks/bench_scaling.py [--repeat 5] [--quick] [--case NAME ...]
                                       [--device cpu] [--memory] [--threads N]
"""  # noqa: E501 (the sample table is as wide as the script prints it)

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import os
import warnings

import joblib
import numpy as np
import sklearn
import torch
from bench_estimator import cpu_name, median_times, peak_growth_mb
from sklearn.neighbors import NearestCentroid

from sk_template import NearestMeanImageClassifier

# name: (train rows, features, classes, test rows, steps)
CASES = {
    "mnist": (60_000, 784, 10, 10_000, ("fit", "euclidean")),
    "cifar": (50_000, 3_072, 10, 10_000, ("euclidean",)),
    "cifar100": (20_000, 3_072, 100, 10_000, ("fit",)),
    "classes1000": (20_000, 784, 1_000, 5_000, ("fit", "euclidean")),
    "wide200": (20_000, 12_288, 200, 5_000, ("fit", "manhattan")),
}


def make_data(n_train, n_features, n_classes, n_test, seed=0):
    """Random uint8 rows; every class has n_train // n_classes rows or one more."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_train + n_test, n_features), dtype=np.uint8)
    y = rng.permutation(np.arange(n_train) % n_classes)
    return X[:n_train], y, X[n_train:]


def describe(name):
    n_train, n_features, n_classes, n_test, _ = CASES[name]
    return f"{name}: {n_train:,} x {n_features:,}, {n_classes:,} classes; {n_test:,}"


def synchronizer(device):
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def timed(fns, repeat, sync):
    """median_times of ``fns``, each run waited for on the device."""

    def waited(fn):
        def run():
            fn()
            sync()

        return run

    return median_times([waited(fn) for fn in fns], repeat)


def bench_fit(args, X, y):
    ours = NearestMeanImageClassifier(device=args.device)
    ref = NearestCentroid()
    X32 = X.astype(np.float32)
    t_ours, t_ref, t_floor = timed(
        [lambda: ours.fit(X, y), lambda: ref.fit(X32, y), X.copy],
        args.repeat,
        synchronizer(args.device),
    )
    return {"ours": t_ours, "sklearn": t_ref, "floor": t_floor}


def cdist_argmin(Xt, C, metric):
    return torch.cdist(Xt, C, p=2.0 if metric == "euclidean" else 1.0).argmin(1)


def bench_predict(args, metric, X, y, X_test):
    ours = NearestMeanImageClassifier(metric=metric, device=args.device).fit(X, y)
    ref = NearestCentroid(metric=metric).fit(X.astype(np.float32), y)
    X32 = X_test.astype(np.float32)
    Xt = torch.from_numpy(X32).to(args.device)
    C = torch.tensor(ours.centroids_, dtype=torch.float32, device=args.device)
    fns = [
        lambda: ours.predict(X_test),
        lambda: ref.predict(X32),
        lambda: cdist_argmin(Xt, C, metric),
    ]
    if metric == "euclidean":
        # Both orientations of the GEMM: which is faster depends on the shape
        # (ours picks one by the number of classes), and the floor is the
        # faster of the two.
        fns.append(lambda: torch.mm(Xt, C.T))
        fns.append(lambda: torch.mm(C, Xt.T))
    times = timed(fns, args.repeat, synchronizer(args.device))
    if metric == "euclidean":
        times = [*times[:3], min(times[3:])]
    row = dict(zip(("ours", "sklearn", "cdist", "floor"), times, strict=False))
    if args.memory:
        row["memory"] = peak_memory_mb(args, ours, X_test)
    return row


MEMORY_SETUP = """
import joblib
import numpy as np

clf = joblib.load(sys.argv[1])
X_test = np.load(sys.argv[2])
clf.predict(X_test[:100])  # warm every code path first
"""


def peak_memory_mb(args, ours, X_test):
    """Peak growth of a fresh process's anonymous memory while ``ours``
    predicts ``X_test`` (both already in its memory)."""
    model = os.path.join(args.tmp, "bench_scaling_model.joblib")
    data = os.path.join(args.tmp, "bench_scaling_X_test.npy")
    joblib.dump(ours, model)
    np.save(data, X_test)
    try:
        return peak_growth_mb(MEMORY_SETUP, "clf.predict(X_test)", model, data)
    finally:
        os.remove(model)
        os.remove(data)


def ratio(numerator, denominator):
    return f"{numerator / denominator:.1f}x"


def print_table(rows, memory):
    head = (
        f"{'case':<12} {'step':<18} {'ours (s)':>9} {'sklearn':>8} {'ours vs':>8} "
        f"{'cdist':>8} {'ours vs':>8} {'floor':>8} {'ours/':>7}"
    )
    sub = f"{'':<12} {'':<18} {'':>9} {'(s)':>8} {'sklearn':>8} {'(s)':>8} {'cdist':>8}"
    sub += f" {'(s)':>8} {'floor':>7}"
    if memory:
        head += f" {'peak MB':>8}"
    print(head)
    print(sub)
    for name, step, t in rows:
        line = (
            f"{name:<12} {step:<18} {t['ours']:>9.4f} {t['sklearn']:>8.4f} "
            f"{ratio(t['sklearn'], t['ours']):>8}"
        )
        if "cdist" in t:
            line += f" {t['cdist']:>8.4f} {ratio(t['cdist'], t['ours']):>8}"
        else:
            line += f" {'':>8} {'':>8}"
        if "floor" in t:
            line += f" {t['floor']:>8.4f} {ratio(t['ours'], t['floor']):>7}"
        elif memory:
            line += f" {'':>8} {'':>7}"
        if "memory" in t:
            line += f" {t['memory']:>8.1f}"
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="3 runs per row (about 2 minutes)"
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=sorted(CASES),
        help="run only this case (repeat the flag for several)",
    )
    parser.add_argument("--device", default="cpu", help="where ours runs")
    parser.add_argument(
        "--memory", action="store_true", help="add predict's peak memory (MB)"
    )
    parser.add_argument("--tmp", default="/tmp", help="scratch folder for --memory")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeat = 3
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")
    device = torch.device(args.device)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}; torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}; ours on {device}, repeat={args.repeat}"
    )
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    rows = []
    for name in args.case or list(CASES):
        n_train, n_features, n_classes, n_test, steps = CASES[name]
        print(describe(name), flush=True)
        X, y, X_test = make_data(n_train, n_features, n_classes, n_test)
        for step in steps:
            if step == "fit":
                rows.append((name, "fit", bench_fit(args, X, y)))
            else:
                row = bench_predict(args, step, X, y, X_test)
                rows.append((name, f"predict {step}", row))
        del X, y, X_test
    print()
    print_table(rows, args.memory)


if __name__ == "__main__":
    main()
