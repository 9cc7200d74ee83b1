"""Load full MNIST as PNG folders, side by side: the source document's loop vs ours.

Builds ``mnist_png/{training,testing}/{0..9}/*.png`` (70,000 files) from the
IDX files in ``../shared/data/mnist`` into a temporary folder (random images of
MNIST's shape when that folder is absent), or uses ``--root``, then times:

* the source document's Pillow loop, per class folder:
  ``np.stack([np.array(Image.open(p)) for p in sorted(files)])``;
* torchvision's ``ImageFolder`` iterated to arrays, when torchvision is installed;
* ``load_image_folder`` cold (cache off) with one process and with ``--n-jobs``;
* ``load_image_folder`` cold, writing a fresh cache;
* ``load_image_folder`` from its cache, in memory and with ``mmap=True``.

Every row loads every split. The files are read once before timing, so all rows
see a warm operating-system file cache. Rows are medians of ``--repeat`` runs
in one process, so joblib's workers are already running for the parallel rows;
the first parallel load of a new process, worker start-up included, is timed
in a subprocess and printed below the table.

Usage::

    python benchmarks/bench_load.py [--root PATH] [--repeat 5] [--n-jobs 2]

Sample output (2-core AMD EPYC, pyspng installed, no torchvision; another
session's tests were running on the same machine)::

    Loading 70000 PNG files (28x28, mode L) in 2 splits, 20 class folders
    AMD EPYC, 2 CPUs; median of 5 runs
    method                                       seconds  vs Pillow loop
    -------------------------------------------  -------  -------------
    source document's Pillow loop                  2.640           1.0x
    torchvision ImageFolder                            -  not installed
    ours, cold, cache off, n_jobs=1                0.801           3.3x
    ours, cold, cache off, n_jobs=2                0.556           4.8x
    ours, cold, writing a fresh cache, n_jobs=2    0.786           3.4x
    ours, from cache                               0.203          13.0x
    ours, from cache, mmap=True                    0.188          14.0x
    ours, cold, n_jobs=2, first call in a new process (workers start up): 2.23 s
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sk_template.datasets import fetch_mnist, load_image_folder, write_image_folder

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def make_tree(workdir, n_jobs):
    """Write mnist_png under ``workdir``: real MNIST if present, else random."""
    if (MNIST / "train-images-idx3-ubyte.gz").exists():
        print(f"Writing mnist_png from {MNIST} ...", flush=True)
        return fetch_mnist(workdir, base_url=MNIST.as_uri(), n_jobs=n_jobs)
    print(f"{MNIST} not found: writing random 28x28 images instead ...", flush=True)
    rng = np.random.default_rng(0)
    root = Path(workdir) / "mnist_png"
    for split, n in (("training", 60_000), ("testing", 10_000)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        write_image_folder(
            images, rng.integers(0, 10, n), root, split=split, n_jobs=n_jobs
        )
    return root


def find_splits(root):
    """Split folder names of ``root``, or ``[None]`` for a root/<class>/ layout."""
    splits = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        children = list(os.scandir(entry.path))
        if any(c.is_file() for c in children if not c.name.startswith(".")):
            return [None]  # a class folder: root is the class layout
        if any(c.is_dir() for c in children):
            splits.append(entry.name)
    return splits or [None]


def class_dirs(root, splits):
    dirs = []
    for split in splits:
        base = Path(root, split) if split else Path(root)
        dirs.extend(sorted(p for p in base.iterdir() if p.is_dir()))
    return dirs


def pillow_loop(root, splits):
    """The source document's loop: one stack per class folder."""
    stacks = []
    for folder in class_dirs(root, splits):
        files = sorted(folder.iterdir())
        stacks.append(np.stack([np.array(Image.open(p)) for p in files]))
    return stacks


def torchvision_loop(root, splits):
    from torchvision.datasets import ImageFolder

    out = []
    for split in splits:
        ds = ImageFolder(
            os.path.join(root, split) if split else root,
            loader=lambda p: Image.open(p).convert("L"),
        )
        out.append(np.stack([np.asarray(img) for img, _ in ds]))
    return out


def ours(root, splits, **kwargs):
    return [load_image_folder(root, split=s, verbose=False, **kwargs) for s in splits]


def ours_fresh_cache(root, splits, n_jobs):
    home = tempfile.mkdtemp(prefix="bench_cache_")
    try:
        return ours(root, splits, data_home=home, n_jobs=n_jobs)
    finally:
        shutil.rmtree(home)


def first_call_in_a_new_process(root, splits, n_jobs):
    """Seconds of a cold parallel load in a new interpreter (after its imports)."""
    code = (
        "import sys, time\n"
        "from sk_template.datasets import load_image_folder\n"
        "start = time.perf_counter()\n"
        f"for split in {splits!r}:\n"
        f"    load_image_folder({str(root)!r}, split=split, cache=False,"
        f" n_jobs={n_jobs}, verbose=False)\n"
        "print(time.perf_counter() - start)\n"
    )
    paths = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    return float(done.stdout.strip().splitlines()[-1])


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="an existing image folder tree to load")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers for ours")
    args = parser.parse_args()

    workdir = None
    if args.root:
        root = Path(args.root)
    else:
        workdir = tempfile.mkdtemp(prefix="bench_load_")
        root = make_tree(workdir, args.n_jobs)
    try:
        splits = find_splits(root)
        dirs = class_dirs(root, splits)
        n_files = sum(len(os.listdir(d)) for d in dirs)
        first = ours(root, splits[:1], cache=False, n_jobs=1)[0]
        shape = "x".join(map(str, first.images.shape[1:]))

        pillow_loop(root, splits)  # warm the file cache; not timed
        cache_home = tempfile.mkdtemp(prefix="bench_cache_")
        n = args.n_jobs
        first_parallel = first_call_in_a_new_process(root, splits, n)
        ours(root, splits, data_home=cache_home)  # fill the cache

        rows = [("source document's Pillow loop", lambda: pillow_loop(root, splits))]
        try:
            import torchvision  # noqa: F401

            rows.append(
                ("torchvision ImageFolder", lambda: torchvision_loop(root, splits))
            )
        except ImportError:
            rows.append(("torchvision ImageFolder", None))
        rows += [
            (
                "ours, cold, cache off, n_jobs=1",
                lambda: ours(root, splits, cache=False, n_jobs=1),
            ),
            (
                f"ours, cold, cache off, n_jobs={n}",
                lambda: ours(root, splits, cache=False, n_jobs=n),
            ),
            (
                f"ours, cold, writing a fresh cache, n_jobs={n}",
                lambda: ours_fresh_cache(root, splits, n),
            ),
            ("ours, from cache", lambda: ours(root, splits, data_home=cache_home)),
            (
                "ours, from cache, mmap=True",
                lambda: ours(root, splits, data_home=cache_home, mmap=True),
            ),
        ]

        print(
            f"\nLoading {n_files} PNG files ({shape}, mode L) in "
            f"{len([s for s in splits if s])} splits, {len(dirs)} class folders"
        )
        print(f"{cpu_name()}, {os.cpu_count()} CPUs; median of {args.repeat} runs")
        width = max(len(name) for name, _ in rows)
        print(f"{'method':<{width}}  seconds  vs Pillow loop")
        print(f"{'-' * width}  -------  -------------")
        baseline = None
        for name, fn in rows:
            if fn is None:
                print(f"{name:<{width}}  {'-':>7}  {'not installed':>13}")
                continue
            seconds = timed(fn, args.repeat)
            baseline = baseline or seconds
            print(f"{name:<{width}}  {seconds:7.3f}  {baseline / seconds:12.1f}x")
        print(
            f"ours, cold, n_jobs={n}, first call in a new process (workers start "
            f"up): {first_parallel:.2f} s"
        )
        shutil.rmtree(cache_home)
    finally:
        if workdir:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
