"""Load image folders side by side with the loops users write: MNIST and photos.

Two sections (``--section mnist``, ``--section photos``; both by default).

MNIST: full MNIST as PNG folders, the source document's loop vs ours.

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

Photos: 5,000 JPEGs of 500x375 in 10 class folders, built once (about a
minute) into ``--photos-dir`` from the two photos that ship with
scikit-learn (``load_sample_images``: random crops, colour shifts, quality
90), loaded as 64x64 RGB by:

* the plain Pillow loop: ``open``, ``convert("RGB")``, ``resize((64, 64),
  BILINEAR)``, ``np.asarray``, stacked;
* the same loop with ``Image.draft("RGB", (64, 64))`` first (libjpeg decodes
  at 1/4 scale);
* ``load_image_folder(mode="RGB", size=(64, 64), cache=False)`` with
  ``n_jobs=1`` and ``--n-jobs``, and with ``n_jobs=1`` and Pillow's JPEG
  decoder only (when simplejpeg is installed, to show what it adds);
* ``load_image_folder`` from its cache.

Rows are timed interleaved (one run of every row per round, ``--repeat``
rounds) and each shows its median, so a slow spell of a shared machine hits
every row alike.

Usage::

    python benchmarks/bench_load.py [--section photos] [--root PATH]
        [--photos-dir DIR] [--repeat 5] [--n-jobs 2]

Sample output (2-core AMD EPYC, pyspng installed, no torchvision, nothing
else running)::

    Loading 70000 PNG files (28x28, mode L) in 2 splits, 20 class folders
    AMD EPYC, 2 CPUs; median of 5 runs
    method                                       seconds  vs Pillow loop
    -------------------------------------------  -------  --------------
    source document's Pillow loop                  4.617            1.0x
    torchvision ImageFolder                            -  not installed
    ours, cold, cache off, n_jobs=1                1.422            3.2x
    ours, cold, cache off, n_jobs=2                0.991            4.7x
    ours, cold, writing a fresh cache, n_jobs=2    1.283            3.6x
    ours, from cache                               0.258           17.9x
    ours, from cache, mmap=True                    0.257           18.0x
    ours, cold, n_jobs=2, first call in a new process (workers start up): 2.31 s

and of the photo section (same machine, simplejpeg installed, nothing else
running)::

    Loading 5000 JPEG photos (500x375) in 10 class folders as 64x64 RGB
    AMD EPYC, 2 CPUs; interleaved, median of 7 runs
    decoders: Pillow 13.0.0 (libjpeg-turbo, libjpeg API 6.2), simplejpeg 1.9.0
    method                                            seconds  vs plain loop
    ------------------------------------------------  -------  -------------
    plain Pillow loop                                   9.069           1.0x
    Pillow loop with Image.draft                        4.170           2.2x
    ours, cold, cache off, n_jobs=1                     3.796           2.4x
    ours, cold, cache off, n_jobs=2                     2.085           4.3x
    ours, cold, n_jobs=1, Pillow's JPEG decoder only    4.330           2.1x
    ours, from cache                                    0.043         212.5x
    target, n_jobs=1: 2x the plain loop, no slower than the draft loop: met
    target, n_jobs=2: 3.5x the plain loop: met
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_estimator import cpu_name
from PIL import Image

from sk_template.datasets import (
    _decode,
    fetch_mnist,
    load_image_folder,
    write_image_folder,
)
from sk_template.datasets._atomic import building_dir

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
PHOTOS_DIR = Path(tempfile.gettempdir()) / "sk_template_bench_photos_v1"
PHOTO_SHAPE = (375, 500)  # height, width of every photo
PHOTO_SIZE = (64, 64)  # what every loader makes of them


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


def stat_every_file(dirs):
    """The floor of a cached load that notices any changed file: list each
    class folder and stat every entry in it (what the fingerprint needs)."""
    n = 0
    for d in dirs:
        with os.scandir(d) as it:
            for entry in it:
                entry.stat()
                n += 1
    return n


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


def interleaved(rows, repeat):
    """Median seconds of each ``(name, fn)`` row, timed one row after another
    in each of ``repeat`` rounds (rows whose fn is None are left out)."""
    times = {name: [] for name, fn in rows if fn is not None}
    for _ in range(repeat):
        for name, fn in rows:
            if fn is not None:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(rows, seconds, baseline_name, baseline_label):
    width = max(len(name) for name, _ in rows)
    print(f"{'method':<{width}}  seconds  vs {baseline_label}")
    print(f"{'-' * width}  -------  {'-' * (3 + len(baseline_label))}")
    baseline = seconds[baseline_name]
    for name, fn in rows:
        if fn is None:
            print(f"{name:<{width}}  {'-':>7}  {'not installed':>13}")
            continue
        ratio = f"{baseline / seconds[name]:.1f}x"
        print(
            f"{name:<{width}}  {seconds[name]:7.3f}  {ratio:>{3 + len(baseline_label)}}"
        )


def mnist_section(args):
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

        rows = [
            ("source document's Pillow loop", lambda: pillow_loop(root, splits)),
            ("floor: scandir + stat of every file", lambda: stat_every_file(dirs)),
        ]
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
        seconds = interleaved(rows, args.repeat)
        print(
            f"\nLoading {n_files} PNG files ({shape}, mode L) in "
            f"{len([s for s in splits if s])} splits, {len(dirs)} class folders"
        )
        print(f"{cpu_name()}, {os.cpu_count()} CPUs; median of {args.repeat} runs")
        print_table(rows, seconds, rows[0][0], "Pillow loop")
        print(
            f"ours, cold, n_jobs={n}, first call in a new process (workers start "
            f"up): {first_parallel:.2f} s"
        )
        floor = seconds["floor: scandir + stat of every file"]
        for name in ("ours, from cache", "ours, from cache, mmap=True"):
            print(f"{name}: {seconds[name] / floor:.2f}x the stat floor")
        shutil.rmtree(cache_home)
    finally:
        if workdir:
            shutil.rmtree(workdir)


# -------------------------------------------------------------------- photos
def _write_photos(folder, start, stop, n_classes, seed):
    """Photos ``start..stop-1``: random crops of scikit-learn's sample photos,
    colour-shifted by class (a tint per class) and by photo (gain, offset)."""
    from sklearn.datasets import load_sample_images

    sources = load_sample_images().images  # two 427x640 RGB photos
    h, w = PHOTO_SHAPE
    tints = np.random.default_rng(seed).uniform(-40, 40, size=(n_classes, 3))
    for k in range(start, stop):
        rng = np.random.default_rng([seed, k])
        src = sources[k % len(sources)]
        top = rng.integers(0, src.shape[0] - h + 1)
        left = rng.integers(0, src.shape[1] - w + 1)
        crop = src[top : top + h, left : left + w].astype(np.float32)
        label = k % n_classes
        crop = crop * rng.uniform(0.8, 1.2, 3) + rng.uniform(-15, 15, 3) + tints[label]
        pixels = np.clip(crop, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(
            Path(folder, f"class{label}", f"{k}.jpg"), quality=90
        )


def make_photos(folder, n_photos, n_jobs, n_classes=10, seed=0):
    """Write ``folder/class{0..9}/{k}.jpg`` once; later runs reuse it.

    The folder is reused only when its completion marker, written last,
    names the same photos: a folder left half-made (by an older version, or
    by hand) is rebuilt.
    """
    from joblib import Parallel, delayed

    folder = Path(folder)
    made = f"{n_photos} photos, {n_classes} classes, seed {seed}\n"
    marker = folder / PHOTOS_MARKER
    if marker.is_file() and marker.read_text() == made:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    print(f"Writing {n_photos} photos to {folder} (once) ...", flush=True)
    with building_dir(folder) as tmp:
        for c in range(n_classes):
            (tmp / f"class{c}").mkdir()
        bounds = np.linspace(0, n_photos, 8 * max(n_jobs, 1) + 1).astype(int)
        Parallel(n_jobs=n_jobs)(
            delayed(_write_photos)(tmp, a, b, n_classes, seed)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            if b > a
        )
        (tmp / PHOTOS_MARKER).write_text(made)  # last: the folder is whole
    return folder


# Written last into a photo folder made by make_photos (not an image: the
# loaders ignore it).
PHOTOS_MARKER = "complete.txt"


def photo_files(folder):
    return [
        sorted(d.iterdir(), key=lambda p: int(p.stem))
        for d in sorted(Path(folder).iterdir())
        if d.is_dir()
    ]


def plain_photo_loop(files, draft=False):
    """What users write: open, (draft,) convert("RGB"), resize, np.asarray."""
    h, w = PHOTO_SIZE
    stacks = []
    for class_files in files:
        images = []
        for path in class_files:
            im = Image.open(path)
            if draft:
                im.draft("RGB", (w, h))
            im = im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
            images.append(np.asarray(im))
        stacks.append(np.stack(images))
    return stacks


def ours_photos(folder, **kwargs):
    return load_image_folder(
        folder, mode="RGB", size=PHOTO_SIZE, verbose=False, **kwargs
    )


def ours_photos_pillow_only(folder):
    use = _decode.USE_SIMPLEJPEG
    _decode.USE_SIMPLEJPEG = False
    try:
        return ours_photos(folder, cache=False, n_jobs=1)
    finally:
        _decode.USE_SIMPLEJPEG = use


def decoders():
    from PIL import features

    turbo = "libjpeg-turbo" if features.check_feature("libjpeg_turbo") else "libjpeg"
    jpeg = f"{turbo}, libjpeg API {features.version('jpg')}"
    parts = [f"Pillow {Image.__version__} ({jpeg})"]
    if _decode._simplejpeg is not None:
        parts.append(f"simplejpeg {_decode._simplejpeg.__version__}")
    else:
        parts.append("no simplejpeg")
    return ", ".join(parts)


def photo_section(args):
    folder = make_photos(args.photos_dir, args.n_photos, args.n_jobs)
    files = photo_files(folder)
    n_files = sum(map(len, files))
    plain_photo_loop(files, draft=True)  # warm the file cache; not timed
    cache_home = tempfile.mkdtemp(prefix="bench_cache_")
    n = args.n_jobs
    try:
        ours_photos(folder, data_home=cache_home, n_jobs=n)  # cache, workers up
        simplejpeg = _decode._simplejpeg is not None and _decode.USE_SIMPLEJPEG
        rows = [
            ("plain Pillow loop", lambda: plain_photo_loop(files)),
            ("Pillow loop with Image.draft", lambda: plain_photo_loop(files, True)),
            (
                "ours, cold, cache off, n_jobs=1",
                lambda: ours_photos(folder, cache=False, n_jobs=1),
            ),
            (
                f"ours, cold, cache off, n_jobs={n}",
                lambda: ours_photos(folder, cache=False, n_jobs=n),
            ),
            (
                "ours, cold, n_jobs=1, Pillow's JPEG decoder only",
                (lambda: ours_photos_pillow_only(folder)) if simplejpeg else None,
            ),
            (
                "ours, from cache",
                lambda: ours_photos(folder, data_home=cache_home),
            ),
        ]
        seconds = interleaved(rows, args.repeat)
    finally:
        shutil.rmtree(cache_home)
    h, w = PHOTO_SHAPE
    print(
        f"\nLoading {n_files} JPEG photos ({w}x{h}) in {len(files)} class folders "
        f"as {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} RGB"
    )
    runs = f"interleaved, median of {args.repeat} runs"
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; {runs}")
    print(f"decoders: {decoders()}")
    print_table(rows, seconds, rows[0][0], "plain loop")
    plain, draft = seconds[rows[0][0]], seconds[rows[1][0]]
    one, many = seconds[rows[2][0]], seconds[rows[3][0]]
    met_one = plain / one >= 2 and one <= draft
    met_many = plain / many >= 3.5
    print(
        "target, n_jobs=1: 2x the plain loop, no slower than the draft loop: "
        f"{'met' if met_one else 'NOT met'}"
    )
    print(
        f"target, n_jobs={n}: 3.5x the plain loop: {'met' if met_many else 'NOT met'}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--section",
        choices=["mnist", "photos", "all"],
        default="all",
        help="which table to print (default: both)",
    )
    parser.add_argument("--root", help="an existing MNIST-like folder tree to load")
    parser.add_argument(
        "--photos-dir",
        type=Path,
        default=PHOTOS_DIR,
        help="where the photo folder is built once and reused (default: %(default)s)",
    )
    parser.add_argument(
        "--n-photos", type=int, default=5000, help="photos to build (default: 5000)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per row")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers for ours")
    args = parser.parse_args()
    if args.section in ("mnist", "all"):
        mnist_section(args)
    if args.section in ("photos", "all"):
        photo_section(args)


if __name__ == "__main__":
    main()
