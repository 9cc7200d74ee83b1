"""The GPU path measured against the physical limit: the host-to-device copy.

On MNIST shape scaled to ``--rows`` rows (default 1,000,000 x 784 uint8 in
host memory, as a user's numpy array is), side by side in one run:

- the bare host-to-device copy of the same bytes (``torch.from_numpy(X)
  .to("cuda")``, synchronised): no classifier can predict data that starts on
  the host faster than it gets to the GPU;
- ours on the GPU: ``fit`` and ``predict`` from host numpy, and ``predict``
  from a CUDA tensor already on the device;
- ours on the CPU and scikit-learn's ``NearestCentroid`` (fit and predict).

Target: GPU ``predict`` from host numpy within 1.5x of the bare copy time.
The script also checks that GPU and CPU predictions agree.  It needs only
torch, numpy and scikit-learn: run it from the repository root with
``PYTHONPATH=. python benchmarks/bench_gpu.py``.

Sample output: none yet -- no GPU was available where this was written; the
README says so, and says where to paste the table.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.neighbors import NearestCentroid

from sk_template import NearestMeanImageClassifier


def median_time(fn, repeat, sync):
    fn()
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_data(n_rows, seed=0):
    """Ten noisy class prototypes, MNIST-shaped uint8 rows."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(10, 784)).astype(np.int16)
    y = rng.integers(0, 10, size=n_rows)
    X = np.empty((n_rows, 784), dtype=np.uint8)
    step = 100_000
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        noise = rng.integers(-60, 61, size=(stop - start, 784), dtype=np.int16)
        X[start:stop] = np.clip(prototypes[y[start:stop]] + noise, 0, 255)
    return X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--metric", default="euclidean")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available()).")

    def sync():
        torch.cuda.synchronize()

    X, y = make_data(args.rows)
    gpu_name = torch.cuda.get_device_name(0)
    print(
        f"GPU: {gpu_name}; torch {torch.__version__}; {args.rows} x 784 uint8 "
        f"({X.nbytes / 1e6:.0f} MB), metric={args.metric}, repeat={args.repeat}"
    )
    rows = []
    t_copy = median_time(lambda: torch.from_numpy(X).to("cuda"), args.repeat, sync)
    rows.append(("bare host->GPU copy of X", t_copy))

    gpu = NearestMeanImageClassifier(metric=args.metric, device="cuda")
    t_fit = median_time(lambda: gpu.fit(X, y), args.repeat, sync)
    t_pred = median_time(lambda: gpu.predict(X), args.repeat, sync)
    X_cuda = torch.from_numpy(X).to("cuda")
    t_pred_dev = median_time(lambda: gpu.predict(X_cuda), args.repeat, sync)
    rows += [
        ("ours GPU fit (host numpy)", t_fit),
        ("ours GPU predict (host numpy)", t_pred),
        ("ours GPU predict (CUDA tensor)", t_pred_dev),
    ]
    pred_gpu = gpu.predict(X)

    if not args.skip_cpu:
        cpu = NearestMeanImageClassifier(metric=args.metric)
        rows.append(("ours CPU fit", median_time(lambda: cpu.fit(X, y), 1, sync)))
        rows.append(("ours CPU predict", median_time(lambda: cpu.predict(X), 1, sync)))
        agree = float((cpu.predict(X) == pred_gpu).mean())
        if args.metric in ("euclidean", "manhattan"):
            ref = NearestCentroid(metric=args.metric)
            rows.append(
                (
                    "sklearn NearestCentroid fit",
                    median_time(lambda: ref.fit(X, y), 1, sync),
                )
            )
            rows.append(
                (
                    "sklearn NearestCentroid predict",
                    median_time(lambda: ref.predict(X), 1, sync),
                )
            )
    else:
        agree = float("nan")

    print()
    print(f"{'step':<34} {'time (s)':>9} {'/ bare copy':>12}")
    for name, t in rows:
        print(f"{name:<34} {t:>9.4f} {t / t_copy:>11.2f}x")
    print()
    print(f"GPU predict / bare copy: {t_pred / t_copy:.2f} (target <= 1.5)")
    by_name = dict(rows)
    for ref_name in ("ours CPU predict", "sklearn NearestCentroid predict"):
        if ref_name in by_name:
            print(f"{ref_name} / GPU predict: {by_name[ref_name] / t_pred:.1f}x")
    print(f"GPU and CPU predictions agree on {agree:.6f} of rows")


if __name__ == "__main__":
    main()
