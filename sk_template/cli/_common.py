"""What the commands share: the console, loading folders and models, checks
and argument types."""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

PROG = "sk-template"

# Folder names of the training and the held-out split of a tree, in the order
# they are looked for (fastai's mnist_sample: train/valid; mnist_png:
# training/testing).
_TRAIN_SPLITS = ("train", "training")
_TEST_SPLITS = ("valid", "validation", "val", "test", "testing")


class Console:
    """Where a command writes: results to stdout, messages to stderr."""

    def __init__(self, quiet=False):
        self.quiet = quiet
        # Progress bars: on a terminal only (None), or never with --quiet.
        self.progress = False if quiet else None

    def out(self, text=""):
        print(text, file=sys.stdout, flush=True)

    def status(self, text):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def one_line(exc):
    """The message of ``exc`` on one line."""
    from ..datasets import ImageDecodeError

    if isinstance(exc, ImageDecodeError):
        text = f"cannot read image {exc.path}: {exc.reason}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def mode_for(image_shape):
    """The ``mode`` of ``load_image_folder`` that gives images of this shape."""
    if image_shape is None or len(image_shape) == 2:
        return "L"
    return {3: "RGB", 4: "RGBA"}.get(image_shape[2], None)


def shape_text(shape):
    return "x".join(str(s) for s in shape)


def label_json(label):
    return label.item() if isinstance(label, np.generic) else label


def split_layout(root):
    """``(train, test)`` split folder names of ``root``, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    train = next((s for s in _TRAIN_SPLITS if (root / s).is_dir()), None)
    test = next((s for s in _TEST_SPLITS if (root / s).is_dir()), None)
    return (train, test) if train and test else None


def check_device(device):
    """Fail before any loading when ``--device`` names a device not present."""
    from .._core import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise ValueError(
            re.sub(r"device='([^']*)'", r"--device \1", str(exc))
        ) from None


def load_folder(args, console, root, *, split=None, mode="L"):
    from ..datasets import load_image_folder
    from ..datasets._discover import check_root, normalize_extensions, split_folders

    if split is None:
        splits, class_like = split_folders(check_root(root), normalize_extensions(None))
        if splits and not class_like:
            raise ValueError(
                f"{root} holds split folders ({', '.join(splits)}), each with its "
                f"own class folders: choose one with --split, e.g. --split "
                f"{splits[0]}."
            )
    where = f"{root}" + (f" (split {split!r})" if split else "")
    console.status(f"Loading images from {where} ...")
    with Timer() as t:
        bunch = load_image_folder(
            root,
            split=split,
            mode=mode,
            cache=not getattr(args, "no_cache", False),
            verbose=console.progress,
        )
    console.status(
        f"  {len(bunch.target)} images of {len(bunch.target_names)} classes, "
        f"{shape_text(bunch.images.shape[1:])} pixels, in {t.seconds:.1f} s"
    )
    return bunch


def fit_model(args, console, X, y):
    from .._classifier import NearestMeanImageClassifier

    clf = NearestMeanImageClassifier(metric=args.metric, device=args.device)
    console.status(f"Fitting {clf!r} on {len(y)} images ...")
    with Timer() as t:
        clf.fit(X, y)
    console.status(f"  done in {t.seconds:.2f} s")
    return clf


def check_shape(model, image_shape, got, source):
    """Raise a ValueError naming ``source`` when its images do not fit ``model``.

    ``got`` is the shape of one image of ``source``; ``image_shape`` the shape
    the model was fitted on (None when the model file does not record it).
    """
    got = tuple(got)
    n_features = math.prod(got)
    if image_shape is not None:
        if got == tuple(image_shape):
            return
        expected = f"{shape_text(image_shape)} images"
    elif n_features == model.n_features_in_:
        return
    else:
        expected = f"images of {model.n_features_in_} pixel values"
    raise ValueError(
        f"{source} has {shape_text(got)} images ({n_features} pixel values), but "
        f"the model was fitted on {expected}."
    )


def check_features_equal(train_shape, test_shape, root, train, test):
    if tuple(test_shape) != tuple(train_shape):
        raise ValueError(
            f"{root}: split {test!r} has images of {shape_text(test_shape)} "
            f"pixels, split {train!r} of {shape_text(train_shape)}."
        )


def load_model_file(args, console):
    from .._persist import load_model

    console.status(f"Loading the model {args.model} ...")
    model, meta = load_model(args.model, return_metadata=True)
    if getattr(args, "device", None) is not None:
        check_device(args.device)
        model.set_params(device=args.device)
    return model, meta


# Argument types and options the commands share.
def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1); got {text!r}")
    return value


def image_shape_type(text):
    try:
        shape = tuple(int(s) for s in re.split(r"[x,]", text.lower()))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"expected HxW or HxWxC (e.g. 28x28); got {text!r}"
        )
    return shape


def add_model_options(p):
    """``--metric`` and ``--device`` of the commands that fit a model."""
    from .._core import METRICS

    p.add_argument(
        "--metric",
        choices=METRICS,
        default="euclidean",
        help="distance to the class means (default: %(default)s)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:N, mps or auto (default: %(default)s)",
    )


def add_device_option(p):
    """``--device`` of the commands that load a model."""
    p.add_argument(
        "--device",
        help="run on this device instead of the model's own (cpu, cuda, ...)",
    )


def add_cache_option(p):
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read or write the cache of decoded images",
    )
