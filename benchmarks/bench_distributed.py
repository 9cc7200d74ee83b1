"""MNIST from a folder to predictions on a dask cluster: a local folder vs the
same PNGs on an S3 server, with 1 and 2 workers.

Writes MNIST's 60,000 training images (the real ones, from
``../shared/data/mnist``; random images of MNIST's shape when absent) as a PNG
folder, ``mnist_png/training/<digit>/<n>.png``, starts moto's standalone S3
server on 127.0.0.1 in a process of its own (``python -m moto.server``, the
``cloud`` and ``test`` extras) and uploads the folder to a bucket. Then times
the same work from the local folder and from ``s3://``, on a
``dask.distributed.LocalCluster`` of 1 and of 2 worker processes (one thread
each):

* load: ``image_folder_to_dask`` (the listing, here) and ``dask.persist``:
  every file read and decoded by the workers, the blocks kept there;
* fit: ``fit_dask`` on the persisted blocks;
* predict: ``predict(X).compute()`` on the persisted blocks.

Two anchors: the same work in one process without dask
(``load_image_folder(cache=False)``, ``fit``, ``predict``), and the S3
floor: every object fetched with s3fs alone, 32 requests at a time, nothing
decoded, which is what the server allows and what no loader of those files
beats.

Each cluster is started, and its workers have imported what they need and
run the whole path once on 100 files, before any timing.
Rows are timed interleaved (one run of each per round, ``--repeat``
rounds), and each phase shows its median.

The S3 server is a Python program on the same machine: every request costs
CPU there that a real object store would not take from the workers, so the
S3 rows measure what the loader adds over a local folder under the least
favourable conditions (2 cores shared by the server and the workers), not
what S3 itself would take.

Sample output (2-core Intel Xeon, shared with other jobs, ``--repeat 1``)::

    see the README's table

Usage::

    python benchmarks/bench_distributed.py [--n-images 60000] [--repeat 1]
        [--chunk-size auto] [--workers 1 2] [--root PATH]
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from bench_estimator import cpu_name

from sk_template import NearestMeanImageClassifier, fit_dask
from sk_template.datasets import (
    image_folder_to_dask,
    load_image_folder,
    read_idx,
    write_image_folder,
)

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
KEY = SECRET = "bench"  # moto accepts any credentials unless told otherwise


def make_folder(workdir, n_images):
    """``mnist_png/training`` of the first ``n_images`` MNIST training images."""
    root = Path(workdir) / "mnist_png" / "training"
    if (MNIST / "train-images-idx3-ubyte.gz").exists():
        print(f"Writing MNIST's training images from {MNIST} ...", flush=True)
        images = read_idx(MNIST / "train-images-idx3-ubyte.gz")[:n_images]
        labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz")[:n_images]
    else:
        print(f"{MNIST} not found: writing random 28x28 images instead ...")
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n_images)
    return write_image_folder(images, labels, root, n_jobs=2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3_server():
    """moto's server in its own process; its endpoint and the process."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            return endpoint, server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("moto's S3 server did not start") from None
            time.sleep(0.2)


def upload(root, endpoint, prefix):
    import s3fs

    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=endpoint)
    if not fs.exists("mnist"):
        fs.mkdir("mnist")
    start = time.perf_counter()
    fs.put(str(root), f"mnist/{prefix}", recursive=True)
    n = len(fs.find(f"mnist/{prefix}"))
    print(f"Uploaded {n} objects in {time.perf_counter() - start:.0f} s", flush=True)
    options = {"key": KEY, "secret": SECRET, "endpoint_url": endpoint}
    return f"s3://mnist/{prefix}", options


def _warm_up():
    import s3fs  # noqa: F401
    import torch  # noqa: F401

    import sk_template.datasets  # noqa: F401


def dask_run(url, options, chunk_size):
    """Seconds of load, fit and predict through dask; the predictions."""
    import dask
    import distributed

    times = {}
    start = time.perf_counter()
    X, y = image_folder_to_dask(url, chunk_size=chunk_size, storage_options=options)
    X, y = dask.persist(X, y)
    distributed.wait([X, y])
    times["load"] = time.perf_counter() - start
    start = time.perf_counter()
    model = fit_dask(NearestMeanImageClassifier(), X, y, classes=np.arange(10))
    times["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    predictions = model.predict(X).compute()
    times["predict"] = time.perf_counter() - start
    return times, predictions


def fetch_floor(url, options):
    """Seconds to fetch every object of ``url`` with s3fs alone, 32 requests
    at a time as the loader makes them, and nothing else: what the S3 server
    allows, which no loader reading those files beats."""
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    start = time.perf_counter()
    paths = fs.find(url)
    for a in range(0, len(paths), 256):
        fs.cat_ranges(paths[a : a + 256], 0, None, batch_size=32)
    return {"load": time.perf_counter() - start, "fit": 0.0, "predict": 0.0}, None


def in_process_run(root):
    times = {}
    start = time.perf_counter()
    X, y = load_image_folder(root, cache=False, return_X_y=True, verbose=False)
    times["load"] = time.perf_counter() - start
    start = time.perf_counter()
    model = NearestMeanImageClassifier().fit(X, y)
    times["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    predictions = model.predict(X)
    times["predict"] = time.perf_counter() - start
    return times, predictions


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--chunk-size", default="auto", help="images per block (default: auto)"
    )
    parser.add_argument(
        "--root", help="an MNIST-like folder of class folders to use instead"
    )
    args = parser.parse_args()
    chunk_size = args.chunk_size if args.chunk_size == "auto" else int(args.chunk_size)

    import dask
    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)  # start/stop chatter
    workdir = tempfile.mkdtemp(prefix="bench_distributed_")
    endpoint, server = start_s3_server()
    clusters = {}
    try:
        root = Path(args.root) if args.root else make_folder(workdir, args.n_images)
        n_files = sum(len(files) for _, _, files in os.walk(root))
        url, options = upload(root, endpoint, "training")
        warm = make_folder(Path(workdir) / "warm", 100)
        warm_url, _ = upload(warm, endpoint, "warm")
        for n in args.workers:
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            )
            client = distributed.Client(cluster, set_as_default=False)
            client.run(_warm_up)
            clusters[n] = (cluster, client)
            # Every code path once, on a few files, before any timing.
            with client.as_current(), dask.config.set(scheduler=client):
                dask_run(str(warm), None, 16)
                dask_run(warm_url, options, 16)

        rows = [("in one process, no dask (reference)", None, None)]
        rows.append(("S3 floor: s3fs fetches every object", (url, options), 0))
        for source, where, opts in (
            ("local folder", str(root), None),
            ("S3 (moto, 127.0.0.1)", url, options),
        ):
            rows += [
                (f"{source}, {n} worker(s)", (where, opts), n) for n in args.workers
            ]
        times = {name: {"load": [], "fit": [], "predict": []} for name, _, _ in rows}
        reference = None
        for _ in range(args.repeat):
            for name, target, n in rows:
                if target is None:
                    t, predictions = in_process_run(root)
                elif n == 0:
                    t, predictions = fetch_floor(*target)
                else:
                    client = clusters[n][1]
                    with client.as_current(), dask.config.set(scheduler=client):
                        t, predictions = dask_run(*target, chunk_size)
                if predictions is None:
                    pass
                elif reference is None:
                    reference = predictions
                elif not np.array_equal(predictions, reference):
                    raise AssertionError(
                        f"{name}: other predictions than the reference"
                    )
                for phase, seconds in t.items():
                    times[name][phase].append(seconds)
                print(f"  {name}: {sum(t.values()):.1f} s", flush=True)
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
        server.terminate()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    median = {
        n: {p: statistics.median(v) for p, v in t.items()} for n, t in times.items()
    }
    base = sum(median[rows[0][0]].values())
    print(
        f"\n{n_files} MNIST PNGs (28x28): load + fit + predict; "
        f"{cpu_name()}, {os.cpu_count()} CPUs; median of {args.repeat} run(s)"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'':<{width}}  load s   fit s  predict s  total s  vs reference")
    for name, _, _ in rows:
        m = median[name]
        total = sum(m.values())
        print(
            f"{name:<{width}}  {m['load']:6.1f}  {m['fit']:6.2f}  {m['predict']:9.2f}"
            f"  {total:7.1f}  {base / total:11.2f}x"
        )
    floor = median["S3 floor: s3fs fetches every object"]["load"]
    for n in args.workers:
        local = sum(median[f"local folder, {n} worker(s)"].values())
        s3 = median[f"S3 (moto, 127.0.0.1), {n} worker(s)"]
        print(
            f"{n} worker(s): S3 takes {sum(s3.values()) / local:.1f}x the local "
            f"folder's time; its load {s3['load'] / floor:.2f}x the S3 floor"
        )
    if len(args.workers) > 1:
        a, b = args.workers[0], args.workers[-1]
        for source in ("local folder", "S3 (moto, 127.0.0.1)"):
            ta = sum(median[f"{source}, {a} worker(s)"].values())
            tb = sum(median[f"{source}, {b} worker(s)"].values())
            print(f"{source}: {b} workers are {ta / tb:.2f}x as fast as {a}")


if __name__ == "__main__":
    main()
