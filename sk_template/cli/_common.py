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


def unreadable(exc):
    """An ImageDecodeError as the commands that take ``--on-error`` say it."""
    return ValueError(
        f"cannot read image {exc.path}: {exc.reason}. Fix or delete the file, or "
        "pass --on-error skip to leave unreadable files out with a warning."
    )


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


def load_folder(args, console, root, *, pixels, split=None, size_hint=None):
    """Load ``root`` with the ``pixels`` options (``mode``, ``size``,
    ``resize``) and the flags ``--on-error``, ``--n-jobs``, ``--no-cache``.

    ``size_hint``: what to say, instead of "pass --size", when the images
    are not all of one size (evaluate, whose model fixes the size).
    """
    from ..datasets import ImageDecodeError, load_image_folder
    from ..datasets._batches import ImageSizeMismatch
    from ..datasets._discover import SplitRequired

    where = f"{root}" + (f" (split {split!r})" if split else "")
    console.status(f"Loading images from {where} ...")
    with Timer() as t:
        try:
            bunch = load_image_folder(
                root,
                split=split,
                **pixels,
                on_error=args.on_error,
                n_jobs=args.n_jobs,
                cache=not getattr(args, "no_cache", False),
                verbose=console.progress,
                storage_options=getattr(args, "storage_options", None),
            )
        except SplitRequired as exc:
            raise ValueError(
                f"{root} holds split folders ({', '.join(exc.splits)}), each with "
                f"its own class folders: choose one with --split, e.g. --split "
                f"{exc.splits[0]}."
            ) from None
        except ImageDecodeError as exc:
            raise unreadable(exc) from exc
        except ImageSizeMismatch as exc:
            if size_hint is None:
                raise
            path, got = exc.mismatched[0]
            more = len(exc.mismatched) - 1
            raise ValueError(
                f"The images in {where} do not all have the same size: "
                f"{exc.reference} is {shape_text(exc.shape)}, {path} is "
                f"{shape_text(got)}"
                + (f" (and {more} more differ)" if more else "")
                + f"; {size_hint}"
            ) from None
        except MemoryError as exc:
            raise MemoryError(_memory_hint(str(exc))) from None
    console.status(
        f"  {len(bunch.target)} images of {len(bunch.target_names)} classes, "
        f"{shape_text(bunch.images.shape[1:])} pixels, in {t.seconds:.1f} s"
    )
    return bunch


def _memory_hint(message):
    """The loader's MemoryError in the command's terms: --size, not size=."""
    message = message.replace(
        "Pass size=(height, width) to", "Pass --size HxW (e.g. --size 32x32) to"
    )
    return re.sub(r", or load fewer at a time \(.*?\)\.", ".", message)


def fit_model(args, console, X, y):
    from .._classifier import NearestMeanImageClassifier

    clf = NearestMeanImageClassifier(
        metric=args.metric,
        centroid=args.centroid,
        shrink_threshold=args.shrink_threshold,
        priors=args.priors,
        device=args.device,
    )
    console.status(f"Fitting {clf!r} on {len(y)} images ...")
    with Timer() as t:
        try:
            clf.fit(X, y)
        except ValueError as exc:
            if str(exc).startswith("priors "):  # in the command's terms
                raise ValueError(f"--{exc}") from None
            raise
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
        f"the model was fitted on {expected}. To use images of any size, fit the "
        "model with --size HxW (and --resize crop for photos)."
    )


def check_features_equal(train_shape, test_shape, root, train, test):
    if tuple(test_shape) != tuple(train_shape):
        raise ValueError(
            f"{root}: split {test!r} has images of {shape_text(test_shape)} "
            f"pixels, split {train!r} of {shape_text(train_shape)}."
        )


def _given_pixels(args, size=None):
    """The ``--mode``, ``--size`` and ``--resize`` flags as given (None: not
    given); ``--resize`` without ``--size`` (or ``size``, the size in force)
    is refused: it would do nothing."""
    if args.resize is not None and args.size is None and size is None:
        raise ValueError(
            f"--resize {args.resize} says how --size fits images of another "
            "aspect ratio, and there is no --size: add --size HxW (e.g. --size "
            "64x64), or leave --resize out."
        )
    return {"mode": args.mode, "size": args.size, "resize": args.resize}


def pixels_of(args):
    """The ``mode``, ``size`` and ``resize`` flags of fit and demo, as a dict."""
    given = _given_pixels(args)
    return {**given, "resize": given["resize"] or "stretch"}


def _flag_text(key, value):
    if key == "size":
        return "no --size" if value is None else f"--size {shape_text(value)}"
    return f"--{key} {value}"


def recorded_pixels(args, meta):
    """How evaluate and predict load images for a model: as its file records.

    The flags ``--mode``, ``--size`` and ``--resize`` may repeat what the file
    records, or stand in for a file that records nothing (older files, or
    files saved from Python without ``load_params``); a flag that contradicts
    the record is an error, not a silent change of the pixels.
    """
    recorded = meta.get("load_params")
    given = _given_pixels(args, size=recorded and recorded["size"])
    if recorded is None:
        return {
            "mode": given["mode"] or mode_for(meta["image_shape"]),
            "size": given["size"],
            "resize": given["resize"] or "stretch",
        }
    for key, value in given.items():
        if value is not None and value != recorded[key]:
            raise ValueError(
                f"{args.model} was fitted on images loaded with "
                f"{_flag_text(key, recorded[key])}, not with "
                f"{_flag_text(key, value)}; "
                f"leave --{key} out to load the images the same way, or fit a new "
                "model."
            )
    return recorded


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


def size_type(text):
    """``HxW`` (e.g. ``64x64``) as ``(height, width)``."""
    try:
        size = tuple(int(s) for s in re.split(r"[x,]", text.lower()))
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"expected HxW, the height and width in pixels (e.g. 64x64); got {text!r}"
        )
    return size


def n_jobs_type(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes, or -1 for all cores; got {text!r}"
        )
    return value


def priors_type(text):
    """``uniform``, ``empirical``, or one number per class: ``0.2,0.8``."""
    if text in ("uniform", "empirical"):
        return text
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(
            "expected uniform, empirical, or one non-negative number per class in "
            f"class order, comma-separated (e.g. 0.3,0.7); got {text!r}"
        )
    return values


def storage_options_type(text):
    """A JSON object of fsspec options: ``{"anon": true}``."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            "expected a JSON object of options for the file system of the URLs, "
            'e.g. \'{"anon": true}\' or \'{"endpoint_url": '
            f'"http://127.0.0.1:9000"}}\'; got {text!r}'
        )
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


# sk_template._core.METRICS written out, so that building the parser does not
# import torch (seconds) for commands that never fit; a test keeps them equal.
METRICS = ("euclidean", "manhattan", "cosine")


def add_model_options(p):
    """The estimator's options, and ``--device``, of the commands that fit."""
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="euclidean",
        help="distance to the class means (default: %(default)s)",
    )
    p.add_argument(
        "--centroid",
        choices=["mean", "median"],
        default="mean",
        help="each class's centre: its mean or its per-pixel median "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--shrink-threshold",
        type=positive_float,
        metavar="T",
        help="shrink the class means towards the overall mean by T "
        "(scikit-learn's nearest shrunken centroid; default: no shrinking)",
    )
    p.add_argument(
        "--priors",
        type=priors_type,
        default="uniform",
        metavar="PRIORS",
        help="class priors of the probabilities: uniform, empirical (the class "
        "frequencies) or one number per class in class order, e.g. 0.3,0.7 "
        "(default: %(default)s)",
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


def add_loading_options(p, *, recorded=False):
    """How images are decoded: what ``load_image_folder`` takes.

    With ``recorded`` (evaluate, predict), ``--mode``, ``--size`` and
    ``--resize`` default to what the model file records.
    """
    same = " (default: as the model was fitted)" if recorded else ""
    p.add_argument(
        "--mode",
        choices=["L", "RGB", "RGBA"],
        default=None if recorded else "L",
        help="pixel format: L (grey), RGB or RGBA" + (same or " (default: L)"),
    )
    p.add_argument(
        "--size",
        type=size_type,
        metavar="HxW",
        help="resize every image to H rows by W columns, e.g. 64x64; needed "
        "when the images are not all of one size" + (same or ""),
    )
    p.add_argument(
        "--resize",
        choices=["stretch", "crop"],
        default=None,  # "stretch" where --size is given (see pixels_of)
        help="how --size treats another aspect ratio: stretch it, or keep it, "
        "scaling the shorter side and cropping the centre (for photos)"
        + (same or " (default: stretch)"),
    )
    p.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="raise: stop at an unreadable image file with an error; skip: leave "
        "it out with a warning (default: %(default)s)",
    )
    p.add_argument(
        "--n-jobs",
        type=n_jobs_type,
        metavar="N",
        help="processes decoding images; -1: one per core (default: 1)",
    )


def add_storage_options(p):
    """``--storage-options``, for folders and images given as URLs."""
    p.add_argument(
        "--storage-options",
        type=storage_options_type,
        metavar="JSON",
        help="options for the file system of URLs (s3://bucket/prefix, gs://..., "
        "memory://...), as a JSON object passed to fsspec, e.g. "
        '\'{"anon": true}\' or \'{"endpoint_url": "http://127.0.0.1:9000"}\' '
        "(credentials are best left to the environment: AWS_ACCESS_KEY_ID, ...)",
    )


def add_cache_option(p):
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read or write the cache of decoded images",
    )
