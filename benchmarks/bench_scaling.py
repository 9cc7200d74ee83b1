"""How fit and predict scale with classes and features, against references.

Random uint8 data (fixed seed) in the shapes of MNIST, CIFAR, 100 and 1,000
classes, and 64 x 64 x 3 images in 200 and 1,000 classes.  Each row times
ours interleaved with its references, at each ``--threads`` count (medians
of ``--repeat`` runs, so that a slow spell of a shared machine hits them
all alike), given float32 input where ours starts from uint8 (their
conversions are not timed):

- faiss-cpu's exhaustive ``search`` (``IndexFlatL2``, ``IndexFlat`` with
  ``METRIC_L1``), when faiss is installed (the ``benchmark`` extra);
- scikit-learn's ``NearestCentroid`` (``fit``, euclidean ``predict``);
- ``torch.cdist`` + ``argmin``;
- a floor: for ``fit`` a copy of the uint8 training array; for euclidean
  ``predict`` the bare float32 GEMM of the test rows by the centroids (the
  faster of its two orientations); for Manhattan ``predict`` the fused loop
  alone (our compiled kernel, or the eager path without a compiler, on
  float32 rows already converted).  ``ours/floor`` is how many floors ours
  takes.  Two more floors explain what a target missed is up against: a
  read of the uint8 test rows (what memory bandwidth allows), and for
  euclidean ``predict`` of uint8 rows the int8 products alone (what ours
  multiplies instead of the float32 GEMM).

Targets, printed for each row as met (``ok``) or not: ``predict`` at least
faiss (``>=1x``), 2x ``NearestCentroid`` (euclidean) and 1.5x ``cdist``,
euclidean ``predict`` within 2x the GEMM, predict's peak memory (with
``--memory``) within 64 MB; ``fit`` at least 5x ``NearestCentroid`` and, on
MNIST shape, within 4x the copy.  Below the table, each target missed is
set against its floor.

The Manhattan kernel is compiled on first use (``SK_TEMPLATE_COMPILE=1``;
the first call, compile included, is timed and printed), so the rows show
the speed of a process that predicts more than once; ``--no-compile`` shows
the eager path.

Sample output (2-core Intel Xeon with AVX-512, shared with other work;
``--repeat 5``, see the README for the whole table)::

    machine: Intel(R) Xeon(R) Processor, 2 cores, load 3.1 2.9 2.7; torch 2.13.0+cpu (kernels: AVX512), scikit-learn 1.9.1, faiss 1.15.1 (AVX512_SPR); ours on cpu, repeat=5
    ...

Usage::

    python benchmarks/bench_scaling.py [--repeat 5] [--quick] [--case NAME ...]
                                       [--threads 1 2] [--device cpu] [--memory]
                                       [--no-compile]
"""  # noqa: E501 (the sample lines are as wide as the script prints them)

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
from threadpoolctl import threadpool_limits

from sk_template import NearestMeanImageClassifier

try:
    import faiss
except ImportError:  # the benchmark extra is not installed
    faiss = None

# name: (train rows, features, classes, test rows, steps)
CASES = {
    "mnist": (60_000, 784, 10, 10_000, ("fit", "euclidean", "manhattan")),
    "cifar": (50_000, 3_072, 10, 10_000, ("euclidean", "manhattan")),
    "cifar100": (20_000, 3_072, 100, 10_000, ("fit", "euclidean", "manhattan")),
    "classes1000": (20_000, 784, 1_000, 5_000, ("fit", "euclidean", "manhattan")),
    "wide200": (20_000, 12_288, 200, 5_000, ("fit", "euclidean", "manhattan")),
    "wide1000": (20_000, 12_288, 1_000, 1_000, ("euclidean", "manhattan")),
}

# Targets: at least these ratios (reference time / ours), at most these
# multiples of the floor, and of memory.
TARGETS = {
    "faiss": 1.0,
    "sklearn predict": 2.0,
    "cdist": 1.5,
    "gemm": 2.0,
    "sklearn fit": 5.0,
    "copy": 4.0,
    "memory MB": 64.0,
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


def machine(args):
    """The machine line: CPU, ISA of torch's kernels and faiss's, versions."""
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    line = (
        f"machine: {cpu_name()}, {os.cpu_count()} cores, load {load}; torch "
        f"{torch.__version__} (kernels: {torch.backends.cpu.get_cpu_capability()}), "
        f"scikit-learn {sklearn.__version__}, "
    )
    if faiss is None:
        line += "faiss not installed"
    else:
        line += f"faiss {faiss.__version__} ({faiss_isa()})"
    return line + f"; ours on {args.device}, repeat={args.repeat}"


def faiss_isa():
    """The SIMD level faiss runs with: its dynamic dispatch's, or the build
    its loader picked (swigfaiss_avx512, _avx2, ...)."""
    config = getattr(faiss, "SIMDConfig", None)
    if config is not None:
        return config.get_level_name()
    module = type(faiss.IndexFlatL2(1)).__module__
    return module.rsplit("_", 1)[-1] if "_" in module else "generic"


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
    return {"ours": t_ours, "sklearn": t_ref, "floor": t_floor, "floor kind": "copy"}


def cdist_argmin(Xt, C, metric):
    return torch.cdist(Xt, C, p=2.0 if metric == "euclidean" else 1.0).argmin(1)


def faiss_index(metric, centroids):
    C = np.ascontiguousarray(centroids, dtype=np.float32)
    if metric == "euclidean":
        index = faiss.IndexFlatL2(C.shape[1])
    else:
        index = faiss.IndexFlat(C.shape[1], faiss.METRIC_L1)
    index.add(C)
    return index


def fused_loop(ours, X_test):
    """The Manhattan kernel alone on the test rows, converted and shifted
    beforehand: the compiled kernel, or the eager path without it."""
    from sk_template._core import _manhattan
    from sk_template._core._buffers import Workspace

    prepared = ours._prepared_centroids(X_test)
    x = torch.from_numpy(X_test).to(prepared.dtype).sub_(prepared.shift)
    kernel = _manhattan.compiled_kernel(prepared.device, float("inf"))
    workspace = Workspace()
    if kernel is None:
        return lambda: prepared.distances(x, workspace)
    x = torch.cat([x, x[: -len(x) % _manhattan.ROW_TILE]])
    return lambda: kernel(x, prepared.C_tiled)


def int8_products(ours, X_test):
    """The int8 products of the test rows by the centroids' first two digits
    alone (see sk_template/_core/_integer.py), or None where uint8 rows do
    not take that path."""
    digits = ours._prepared_centroids(X_test).integer()
    if digits is None:
        return None
    x8 = (torch.from_numpy(X_test).to(torch.int16) - 128).to(torch.int8)
    return lambda: torch._int_mm(x8, digits.Q2)


def bench_predict(args, metric, X, y, X_test):
    ours = NearestMeanImageClassifier(metric=metric, device=args.device).fit(X, y)
    X32 = X_test.astype(np.float32)
    Xt = torch.from_numpy(X32).to(args.device)
    C = torch.tensor(ours.centroids_, dtype=torch.float32, device=args.device)
    names = ["ours", "cdist"]
    fns = [lambda: ours.predict(X_test), lambda: cdist_argmin(Xt, C, metric)]
    if faiss is not None:
        index = faiss_index(metric, ours.centroids_)
        names.append("faiss")
        fns.append(lambda: index.search(X32, 1))
    names.append("read")
    fns.append(X_test.max)
    if metric == "euclidean":
        ref = NearestCentroid().fit(X.astype(np.float32), y)
        names += ["sklearn", "gemm", "gemm"]
        # Both orientations of the GEMM: which is faster depends on the shape,
        # and the floor is the faster of the two.
        fns += [
            lambda: ref.predict(X32),
            lambda: torch.mm(Xt, C.T),
            lambda: torch.mm(C, Xt.T),
        ]
        products = int8_products(ours, X_test) if args.device == "cpu" else None
        if products is not None:
            names.append("int8")
            fns.append(products)
    else:
        names.append("kernel")
        fns.append(fused_loop(ours, X_test))
    times = timed(fns, args.repeat, synchronizer(args.device))
    row = {}
    for name, seconds in zip(names, times, strict=True):
        row[name] = min(seconds, row.get(name, np.inf))
    row["floor kind"] = "gemm" if metric == "euclidean" else "kernel"
    row["floor"] = row[row["floor kind"]]
    # What a missed target is set against: ours's own inner loop.
    row["inner kind"] = "int8" if "int8" in row else row["floor kind"]
    if args.memory:
        row["memory"] = peak_memory_mb(args, ours, X_test)
    return row


MEMORY_SETUP = """
import joblib
import numpy as np

clf = joblib.load(sys.argv[1])
X_test = np.load(sys.argv[2])
clf.predict(X_test[:100])  # warm every code path first (and compile)
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


def verdicts(name, step, t):
    """``(target, value, met)`` for each target of a row."""
    out = []
    if step == "fit":
        out.append(("sklearn fit", t["sklearn"] / t["ours"], None))
        if name == "mnist":
            out.append(("copy", t["ours"] / t["floor"], None))
    else:
        if "faiss" in t:
            out.append(("faiss", t["faiss"] / t["ours"], None))
        if "sklearn" in t:
            out.append(("sklearn predict", t["sklearn"] / t["ours"], None))
        out.append(("cdist", t["cdist"] / t["ours"], None))
        if t["floor kind"] == "gemm":
            out.append(("gemm", t["ours"] / t["floor"], None))
        if "memory" in t:
            out.append(("memory MB", t["memory"], None))
    result = []
    for target, value, _ in out:
        limit = TARGETS[target]
        at_most = target in ("gemm", "copy", "memory MB")
        result.append((target, value, value <= limit if at_most else value >= limit))
    return result


INNER = {
    "int8": "the int8 products",
    "kernel": "the fused loop's sums",
    "gemm": "the float32 GEMM's products",
}


def seconds(t, key):
    return f"{t[key]:>8.4f}" if key in t else f"{'':>8}"


def ratio(t, key):
    return f"{t[key] / t['ours']:>6.1f}x" if key in t else f"{'':>7}"


def print_table(rows, memory):
    head = (
        f"{'case':<12} {'step':<18} {'thr':>3} {'ours (s)':>9} {'faiss':>8} "
        f"{'vs':>7} {'sklearn':>8} {'vs':>7} {'cdist':>8} {'vs':>7} "
        f"{'floor':>8} {'ours/':>6}"
    )
    if memory:
        head += f" {'peak MB':>8}"
    print(head + "  targets")
    for name, step, threads, t in rows:
        line = (
            f"{name:<12} {step:<18} {threads:>3} {t['ours']:>9.4f} "
            f"{seconds(t, 'faiss')} {ratio(t, 'faiss')} "
            f"{seconds(t, 'sklearn')} {ratio(t, 'sklearn')} "
            f"{seconds(t, 'cdist')} {ratio(t, 'cdist')} "
            f"{t['floor']:>8.4f} {t['ours'] / t['floor']:>5.1f}x"
        )
        if memory:
            line += f" {t['memory']:>8.1f}" if "memory" in t else f" {'':>8}"
        missed = [target for target, _, met in verdicts(name, step, t) if not met]
        line += "  " + ("ok" if not missed else "missed: " + ", ".join(missed))
        print(line)


def explain(rows):
    """A line for each target missed: how close, and the floor against it."""
    lines = []
    for name, step, threads, t in rows:
        for target, value, met in verdicts(name, step, t):
            if met:
                continue
            where = f"{name} {step} ({threads} thread{'s' * (threads > 1)})"
            limit = TARGETS[target]
            if target in ("gemm", "copy"):
                lines.append(f"{where}: {value:.2f}x the {target}, target {limit:g}x.")
            elif target == "memory MB":
                lines.append(f"{where}: {value:.1f} MB, target {limit:g} MB.")
            elif step == "fit":
                lines.append(f"{where}: {value:.2f}x sklearn, target {limit:g}x.")
            else:
                reference = target.split()[0]
                inner = t[t["inner kind"]]
                lines.append(
                    f"{where}: {value:.2f}x {reference} (target {limit:g}x); "
                    f"{INNER[t['inner kind']]} alone take {inner / t[reference]:.2f}x "
                    f"{reference}'s time (so ours could be {t[reference] / inner:.2f}x "
                    f"at best), and a read of the uint8 rows "
                    f"{t['read'] / t[reference]:.2f}x."
                )
    return lines


LATENCY_SCRIPT = """
import sys, time
import numpy as np
from sk_template import NearestMeanImageClassifier

rng = np.random.default_rng(0)
X = rng.integers(0, 256, (1_000, 784), dtype=np.uint8)
model = NearestMeanImageClassifier(metric="manhattan").fit(X, np.arange(1_000) % 10)
start = time.perf_counter()
model.predict(X[:100])
print(time.perf_counter() - start)
"""


def compile_latency(tmp):
    """Seconds of a fresh process's first Manhattan predict of 100 rows:
    compiling with an empty inductor cache (the first time on a machine),
    with inductor's cache as it is (warm once any process compiled), and
    with compiling off."""
    import subprocess
    import sys
    import tempfile

    def first_call(**env):
        out = subprocess.run(
            [sys.executable, "-c", LATENCY_SCRIPT],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.split()[-1])

    with tempfile.TemporaryDirectory(dir=tmp) as empty:
        cold = first_call(SK_TEMPLATE_COMPILE="1", TORCHINDUCTOR_CACHE_DIR=empty)
    warm = first_call(SK_TEMPLATE_COMPILE="1")
    eager = first_call(SK_TEMPLATE_COMPILE="0")
    return cold, warm, eager


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 runs per row")
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
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="thread counts to time each row at (default: 1 2)",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="the eager Manhattan path (SK_TEMPLATE_COMPILE=0)",
    )
    args = parser.parse_args(argv)
    os.environ["SK_TEMPLATE_COMPILE"] = "0" if args.no_compile else "1"
    if args.quick:
        args.repeat = 3
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")
    device = torch.device(args.device)
    print(machine(args))
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    if not args.no_compile:
        cold, warm, eager = compile_latency(args.tmp)
        print(
            "first Manhattan predict of 100 rows in a fresh process: "
            f"{cold:.1f} s compiling its kernel the first time on this machine, "
            f"{warm:.1f} s from inductor's cache, {eager:.2f} s eager",
            flush=True,
        )
    rows = []
    for name in args.case or list(CASES):
        n_train, n_features, n_classes, n_test, steps = CASES[name]
        print(describe(name), flush=True)
        X, y, X_test = make_data(n_train, n_features, n_classes, n_test)
        for threads in args.threads:
            torch.set_num_threads(threads)
            if faiss is not None:
                faiss.omp_set_num_threads(threads)
            with threadpool_limits(threads):
                for step in steps:
                    if step == "fit":
                        row = bench_fit(args, X, y)
                    else:
                        row = bench_predict(args, step, X, y, X_test)
                        step = f"predict {step}"
                    rows.append((name, step, threads, row))
        del X, y, X_test
    print()
    print_table(rows, args.memory)
    lines = explain(rows)
    if lines:
        print()
        print("Targets missed, against their floors:")
        for line in lines:
            print(f"  {line}")
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"\nload at the end: {load}")


if __name__ == "__main__":
    main()
