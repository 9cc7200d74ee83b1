"""The ``sk-template`` command: fit, evaluate, predict and look at pictures.

Every job composes :mod:`sk_template.datasets` (image folders in, arrays out),
:class:`~sk_template.NearestMeanImageClassifier` and the safe model files of
:func:`~sk_template._persist.save_model`; this module adds argument parsing,
plain-text reports and two pictures: the class means as a labelled grid of
images (:func:`render_means`) and an image's pixel values as a shaded table
(:func:`format_pixels`).

Run ``sk-template --help`` (or ``python -m sk_template --help``).  Results go
to stdout, progress and messages to stderr.  Exit codes: 0 success, 1 a
one-line error about a path, model file or image (``--debug`` adds the
traceback), 2 a usage error.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from .datasets._atomic import write_atomic

PROG = "sk-template"

# Folder names of the training and the held-out split of a tree, in the order
# they are looked for (fastai's mnist_sample: train/valid; mnist_png:
# training/testing).
_TRAIN_SPLITS = ("train", "training")
_TEST_SPLITS = ("valid", "validation", "val", "test", "testing")

# Layout of the picture of the class means, in pixels.
_PAD = 8
_LABEL_HEIGHT = 20
_TILE_TARGET = 112  # default upscaling makes a tile about this wide
_MAX_COLUMNS = 6


# --------------------------------------------------------------------------- helpers
class _Console:
    """Where a command writes: results to stdout, messages to stderr."""

    def __init__(self, quiet=False):
        self.quiet = quiet

    def out(self, text=""):
        print(text, file=sys.stdout, flush=True)

    def status(self, text):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


class _Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def _one_line(exc):
    """The message of ``exc`` on one line."""
    from .datasets import ImageDecodeError

    if isinstance(exc, ImageDecodeError):
        text = f"cannot read image {exc.path}: {exc.reason}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _mode_for(image_shape):
    """The ``mode`` of ``load_image_folder`` that gives images of this shape."""
    if image_shape is None or len(image_shape) == 2:
        return "L"
    return {3: "RGB", 4: "RGBA"}.get(image_shape[2], None)


def _shape_text(shape):
    return "x".join(str(s) for s in shape)


def _label_json(label):
    return label.item() if isinstance(label, np.generic) else label


def _split_layout(root):
    """``(train, test)`` split folder names of ``root``, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    train = next((s for s in _TRAIN_SPLITS if (root / s).is_dir()), None)
    test = next((s for s in _TEST_SPLITS if (root / s).is_dir()), None)
    return (train, test) if train and test else None


def _check_device(device):
    """Fail before any loading when ``--device`` names a device not present."""
    from ._core import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise ValueError(
            re.sub(r"device='([^']*)'", r"--device \1", str(exc))
        ) from None


def _load_folder(args, console, root, *, split=None, mode="L"):
    from .datasets import load_image_folder
    from .datasets._discover import check_root, normalize_extensions, split_folders

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
    with _Timer() as t:
        bunch = load_image_folder(
            root,
            split=split,
            mode=mode,
            cache=not getattr(args, "no_cache", False),
            verbose=not console.quiet,
        )
    console.status(
        f"  {len(bunch.target)} images of {len(bunch.target_names)} classes, "
        f"{_shape_text(bunch.images.shape[1:])} pixels, in {t.seconds:.1f} s"
    )
    return bunch


def _fit(args, console, X, y):
    from ._classifier import NearestMeanImageClassifier

    clf = NearestMeanImageClassifier(metric=args.metric, device=args.device)
    console.status(f"Fitting {clf!r} on {len(y)} images ...")
    with _Timer() as t:
        clf.fit(X, y)
    console.status(f"  done in {t.seconds:.2f} s")
    return clf


def _check_shape(model, image_shape, got, source):
    """Raise a ValueError naming ``source`` when its images do not fit ``model``.

    ``got`` is the shape of one image of ``source``; ``image_shape`` the shape
    the model was fitted on (None when the model file does not record it).
    """
    got = tuple(got)
    n_features = math.prod(got)
    if image_shape is not None:
        if got == tuple(image_shape):
            return
        expected = f"{_shape_text(image_shape)} images"
    elif n_features == model.n_features_in_:
        return
    else:
        expected = f"images of {model.n_features_in_} pixel values"
    raise ValueError(
        f"{source} has {_shape_text(got)} images ({n_features} pixel values), but "
        f"the model was fitted on {expected}."
    )


# --------------------------------------------------------------------------- reports
def evaluation(model, X, y):
    """Accuracy overall and per class, and the confusion matrix.

    Parameters
    ----------
    model : fitted classifier
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        The true labels.

    Returns
    -------
    report : dict
        ``accuracy``, ``n_samples``, ``classes`` (the model's classes, then
        any label of ``y`` the model does not know), ``per_class_n_samples``,
        ``per_class_accuracy`` (None for a class without samples) and
        ``confusion_matrix`` (rows: true class, columns: predicted class), all
        plain Python values ready for :func:`json.dumps`.
    """
    from sklearn.metrics import confusion_matrix

    y = np.asarray(y)
    known = np.asarray(model.classes_)
    if known.dtype.kind == "U" and y.dtype.kind in "iu":
        y = y.astype(str)  # folder names 3, 7 for a model fitted on "3", "7"
    unknown = np.setdiff1d(np.unique(y), known)
    if unknown.size == np.unique(y).size:
        raise ValueError(
            f"none of the labels of the data ({np.unique(y).tolist()!r}) is a class "
            f"of the model ({known.tolist()!r})."
        )
    if unknown.size:
        warnings.warn(
            f"the data has labels the model does not know, {unknown.tolist()!r}: "
            "their images are all counted as errors.",
            UserWarning,
            stacklevel=2,
        )
    y_pred = model.predict(X)
    labels = np.concatenate([known, unknown]) if unknown.size else known
    cm = confusion_matrix(y, y_pred, labels=labels)
    support = cm.sum(axis=1)
    correct = np.diag(cm)
    return {
        "accuracy": float(np.mean(y_pred == y)),
        "n_samples": int(len(y)),
        "classes": [_label_json(c) for c in labels],
        "per_class_n_samples": support.tolist(),
        "per_class_accuracy": [
            float(c / n) if n else None for c, n in zip(correct, support, strict=True)
        ],
        "confusion_matrix": cm.tolist(),
    }


def format_report(report):
    """A plain-text table of an :func:`evaluation` report.

    Examples
    --------
    >>> report = {"accuracy": 0.75, "n_samples": 4, "classes": [3, 7],
    ...           "per_class_n_samples": [2, 2], "per_class_accuracy": [1.0, 0.5],
    ...           "confusion_matrix": [[2, 0], [1, 1]]}
    >>> print(format_report(report))
    Accuracy: 0.7500 (3 of 4 images)
    <BLANKLINE>
    class  images  accuracy
        3       2    1.0000
        7       2    0.5000
    <BLANKLINE>
    Confusion matrix (rows: true class, columns: predicted class)
          3  7
        3 2  0
        7 1  1
    """
    names = [str(c) for c in report["classes"]]
    n, acc = report["n_samples"], report["accuracy"]
    lines = [f"Accuracy: {acc:.4f} ({round(acc * n)} of {n} images)", ""]
    cw = max(5, *(len(s) for s in names))
    lines.append(f"{'class':>{cw}}  images  accuracy")
    for name, count, a in zip(
        names,
        report["per_class_n_samples"],
        report["per_class_accuracy"],
        strict=True,
    ):
        shown = "       -" if a is None else f"{a:8.4f}"
        lines.append(f"{name:>{cw}}  {count:>6}  {shown:>8}")
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class)"]
    cm = report["confusion_matrix"]
    width = max(len(str(v)) for row in cm for v in row)
    width = max(width, *(len(s) for s in names))
    lines.append(" " * (cw + 1) + " ".join(f"{s:>{width}}" for s in names))
    for name, row in zip(names, cm, strict=True):
        lines.append(f"{name:>{cw}} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


# --------------------------------------------------------------------------- pictures
def infer_image_shape(n_features):
    """``(s, s)`` when ``n_features`` is a square number ``s * s``, else None."""
    side = math.isqrt(n_features)
    return (side, side) if side * side == n_features else None


def _means_layout(n_classes, image_shape, scale, columns):
    h, w = image_shape[:2]
    if scale is None:
        scale = max(1, math.ceil(_TILE_TARGET / max(h, w)))
    if columns is None:
        columns = math.ceil(n_classes / math.ceil(n_classes / _MAX_COLUMNS))
    columns = max(1, min(columns, n_classes))
    rows = math.ceil(n_classes / columns)
    tile_w, tile_h = w * scale, h * scale
    size = (
        columns * (tile_w + _PAD) + _PAD,
        rows * (tile_h + _LABEL_HEIGHT + _PAD) + _PAD,
    )
    return scale, columns, size


def means_image_size(n_classes, image_shape, *, scale=None, columns=None):
    """``(width, height)`` in pixels of the picture :func:`render_means` draws.

    Each class gets a tile of ``image_shape`` upscaled ``scale`` times (by
    default about 112 pixels wide) with a 20-pixel label band under it; tiles
    sit ``columns`` to a row (by default at most 6, in rows of equal length as
    far as possible) with 8 pixels between them and around the edge.

    Examples
    --------
    >>> means_image_size(10, (8, 8))
    (608, 288)
    >>> means_image_size(2, (28, 28), scale=1)
    (80, 64)
    """
    return _means_layout(n_classes, image_shape, scale, columns)[2]


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except (TypeError, ValueError, OSError, ImportError):  # no FreeType
        return ImageFont.load_default()


def _fit_text(draw, text, font, width):
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _tile_pixels(centroid, image_shape, cmap):
    """One class mean as uint8 pixels ready for Pillow, or None if undefined."""
    if not np.isfinite(centroid).all():
        return None
    pixels = centroid.reshape(image_shape)
    if pixels.max() <= 1.0 and pixels.min() >= 0.0:
        pixels = pixels * 255.0  # fitted on pixels scaled to [0, 1]
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[2] not in (3, 4):
        pixels = pixels[..., 0]  # grey + alpha: show the grey
    if pixels.ndim == 2 and cmap == "greys":
        pixels = 255 - pixels  # the book's "Greys": 0 is white, 255 is black
    return pixels


def render_means(
    model, image_shape=None, *, scale=None, columns=None, cmap="greys", labels=None
):
    """Draw the class means of a fitted model as a labelled grid of images.

    Each class mean (``model.centroids_``) is the "ideal" image of its class,
    the blurry "ideal 3" of pixel similarity.  Tiles are upscaled with
    nearest-neighbour sampling, so every pixel of an 8x8 digit stays a sharp
    square, and labelled ``ideal <class>``.

    Parameters
    ----------
    model : NearestMeanImageClassifier
        A fitted model.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of one image.
        ``None`` infers a square grey image and fails when ``n_features_in_``
        is not a square number.
    scale : int, default=None
        Upscaling factor; by default tiles are about 112 pixels wide.
    columns : int, default=None
        Tiles per row; by default at most 6.
    cmap : {"greys", "gray"}, default="greys"
        ``"greys"`` draws high pixel values dark on white, as the fastai book's
        ``cmap='Greys'`` does; ``"gray"`` draws them as stored (0 is black).
        Colour images are always drawn as stored.
    labels : list of str, default=None
        Text under each tile; by default ``"ideal <class>"``.

    Returns
    -------
    image : PIL.Image.Image
        An RGB image of size :func:`means_image_size`.  Means of values in
        [0, 1] are scaled to 0..255; a class without samples is a grey tile.
    """
    from PIL import Image, ImageDraw

    centroids = np.asarray(model.centroids_, dtype=np.float64)
    n_classes, n_features = centroids.shape
    if image_shape is None:
        image_shape = infer_image_shape(n_features)
        if image_shape is None:
            raise ValueError(
                f"cannot tell the image shape: the model has {n_features} features, "
                "not a square number. Pass the shape (--shape HxW)."
            )
    image_shape = tuple(int(s) for s in image_shape)
    if math.prod(image_shape) != n_features:
        raise ValueError(
            f"image shape {_shape_text(image_shape)} holds {math.prod(image_shape)} "
            f"pixel values, but the model has {n_features} features."
        )
    if labels is None:
        labels = [f"ideal {c}" for c in model.classes_]
    scale, columns, size = _means_layout(n_classes, image_shape, scale, columns)
    tile_h, tile_w = image_shape[0] * scale, image_shape[1] * scale
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for k in range(n_classes):
        row, col = divmod(k, columns)
        x = _PAD + col * (tile_w + _PAD)
        y = _PAD + row * (tile_h + _LABEL_HEIGHT + _PAD)
        pixels = _tile_pixels(centroids[k], image_shape, cmap)
        if pixels is None:
            draw.rectangle([x, y, x + tile_w - 1, y + tile_h - 1], fill=(200,) * 3)
        else:
            tile = Image.fromarray(pixels).convert("RGB")
            canvas.paste(
                tile.resize((tile_w, tile_h), Image.Resampling.NEAREST), (x, y)
            )
        draw.rectangle(
            [x - 1, y - 1, x + tile_w, y + tile_h], outline=(190, 190, 190), width=1
        )
        text = _fit_text(draw, str(labels[k]), font, tile_w + _PAD - 2)
        draw.text(
            (x + tile_w / 2, y + tile_h + _LABEL_HEIGHT / 2 + 1),
            text,
            fill="black",
            font=font,
            anchor="mm",
        )
    return canvas


def parse_crop(text):
    """Parse ``"r0:r1,c0:c1"`` into two ``(start, stop)`` pairs (None: open end).

    Examples
    --------
    >>> parse_crop("4:15,4:22")
    ((4, 15), (4, 22))
    >>> parse_crop(":10, 3:")
    ((None, 10), (3, None))
    """
    match = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*,\s*(\d*)\s*:\s*(\d*)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"crop must look like r0:r1,c0:c1 (e.g. 4:15,4:22); got {text!r}"
        )
    r0, r1, c0, c1 = (int(g) if g else None for g in match.groups())
    return (r0, r1), (c0, c1)


def _check_crop(crop, shape, path):
    bounds = []
    for (start, stop), size, what in zip(crop, shape, ("rows", "columns"), strict=True):
        start = 0 if start is None else start
        stop = size if stop is None else stop
        if not 0 <= start < stop <= size:
            raise ValueError(
                f"crop {what} {start}:{stop} do not fit {path}, which has {size} "
                f"{what} (0:{size})."
            )
        bounds.append((start, stop))
    return bounds


def _grey_256(level):
    """The xterm-256 colour index nearest to the grey ``level`` (0..255)."""
    ramp = [(0, 16), (255, 231)] + [(8 + 10 * i, 232 + i) for i in range(24)]
    return min(ramp, key=lambda item: abs(item[0] - level))[1]


def format_pixels(pixels, *, row0=0, col0=0, color=None):
    """The pixel values of a grey image as a table, optionally shaded.

    Parameters
    ----------
    pixels : ndarray of shape (rows, columns), uint8
    row0, col0 : int, default=0
        Image coordinates of ``pixels[0, 0]`` (for the row and column headers).
    color : {None, "256", "truecolor"}, default=None
        ``None`` prints plain numbers.  Otherwise each cell gets an ANSI
        background from white (0) to black (255), like pandas'
        ``background_gradient('Greys')`` in the fastai book, with the number
        in black or white, whichever contrasts; ``"truecolor"`` uses 24-bit
        colours, ``"256"`` the xterm-256 grey ramp.

    Returns
    -------
    table : str

    Examples
    --------
    >>> import numpy as np
    >>> print(format_pixels(np.array([[0, 29], [93, 255]], dtype=np.uint8), row0=3))
         0   1
    3    0  29
    4   93 255
    """
    pixels = np.asarray(pixels)
    n_rows, n_cols = pixels.shape
    cw = max(3, len(str(col0 + n_cols - 1)))
    rw = len(str(row0 + n_rows - 1))
    lines = [" " * rw + "".join(f" {c:>{cw}}" for c in range(col0, col0 + n_cols))]
    for i, row in enumerate(pixels.tolist()):
        cells = []
        for v in row:
            cell = f" {v:>{cw}}"
            if color is not None:
                bg = 255 - v
                fg = 0 if bg >= 128 else 255
                if color == "truecolor":
                    code = f"48;2;{bg};{bg};{bg};38;2;{fg};{fg};{fg}"
                else:
                    code = f"48;5;{_grey_256(bg)};38;5;{16 if fg == 0 else 231}"
                cell = f"\x1b[{code}m{cell}"
            cells.append(cell)
        end = "\x1b[0m" if color is not None else ""
        lines.append(f"{row0 + i:>{rw}}" + "".join(cells) + end)
    return "\n".join(lines)


def _color_mode(choice, stream):
    if choice == "never":
        return None
    if choice == "auto":
        if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
            return None
        if not (hasattr(stream, "isatty") and stream.isatty()):
            return None
    colorterm = os.environ.get("COLORTERM", "").lower()
    return "truecolor" if colorterm in ("truecolor", "24bit") else "256"


# --------------------------------------------------------------------------- commands
def _holdout(args, bunch):
    """Stratified train/test split of a Bunch: X, y and filenames of each part."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(bunch.target)),
        test_size=args.test_size,
        stratify=bunch.target,
        random_state=args.random_state,
    )
    return (
        (bunch.data[train], bunch.target[train]),
        (bunch.data[test], bunch.target[test], bunch.filenames[test]),
        f"a stratified {args.test_size:.0%} of it held out",
    )


def _cmd_demo(args, console):
    from ._persist import save_model

    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="sk-template-demo-"))
    else:
        out = Path(args.out).expanduser()
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} is a file, not a folder.")
        out.mkdir(parents=True, exist_ok=True)

    if args.data is None:
        from sklearn.datasets import load_digits

        from .datasets import load_image_folder, write_image_folder

        digits = load_digits()
        images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
        root = out / "digits"
        console.status(
            f"Writing scikit-learn's {len(images)} handwritten digits (8x8 pixels) "
            f"as an image folder to {root} ..."
        )
        write_image_folder(images, digits.target, root, overwrite=True)
        console.status(f"Loading them back from {root} ...")
        # A fresh folder each run: a cache of it would only fill data_home.
        bunch = load_image_folder(root, cache=False, verbose=not console.quiet)
        data, layout = root, None
        source = f"scikit-learn's handwritten digits, written as PNG files to {root}"
        (X_train, y_train), (X_test, y_test, test_files), held_out = _holdout(
            args, bunch
        )
        image_shape = bunch.images.shape[1:]
    else:
        data = Path(args.data)
        source = str(data)
        layout = _split_layout(data)
        if layout is not None:
            train, test = layout
            fit_data = _load_folder(args, console, data, split=train)
            test_data = _load_folder(args, console, data, split=test)
            X_train, y_train = fit_data.data, fit_data.target
            X_test, y_test = test_data.data, test_data.target
            test_files = test_data.filenames
            held_out = f"split {test!r}; fitted on split {train!r}"
            image_shape = fit_data.images.shape[1:]
            _check_features_equal(
                image_shape, test_data.images.shape[1:], f"{data}", train, test
            )
        else:
            bunch = _load_folder(args, console, data)
            (X_train, y_train), (X_test, y_test, test_files), held_out = _holdout(
                args, bunch
            )
            image_shape = bunch.images.shape[1:]

    clf = _fit(args, console, X_train, y_train)
    report = evaluation(clf, X_test, y_test)
    model_path = save_model(clf, out / "model.npz", image_shape=image_shape)
    means_path = write_atomic(
        out / "means.png",
        lambda f: render_means(clf, image_shape).save(f, format="PNG"),
    )

    console.out(f"Data: {source}")
    console.out(
        f"Fitted a nearest-mean classifier (metric={clf.metric!r}) on "
        f"{len(y_train)} images of {len(clf.classes_)} classes, "
        f"{_shape_text(image_shape)} pixels each; tested it on {len(y_test)} "
        f"images ({held_out})."
    )
    console.out()
    console.out(format_report(report))
    console.out()
    console.out(f"Wrote the class means, the 'ideal' images, to {means_path}")
    console.out(f"Wrote the model to {model_path}")
    console.out()
    console.out("Next, try:")
    if layout is not None:
        console.out(f"  {PROG} evaluate {model_path} {data} --split {layout[1]}")
    console.out(f"  {PROG} predict {model_path} {' '.join(test_files[:2])}")
    console.out(f"  {PROG} pixels {test_files[0]}")
    console.out(f"  {PROG} means {model_path} -o means.png")
    return 0


def _check_features_equal(train_shape, test_shape, root, train, test):
    if tuple(test_shape) != tuple(train_shape):
        raise ValueError(
            f"{root}: split {test!r} has images of {_shape_text(test_shape)} "
            f"pixels, split {train!r} of {_shape_text(train_shape)}."
        )


def _cmd_fit(args, console):
    from ._persist import save_model

    _check_device(args.device)
    bunch = _load_folder(args, console, args.root, split=args.split, mode=args.mode)
    clf = _fit(args, console, bunch.data, bunch.target)
    path = save_model(clf, args.output, image_shape=bunch.images.shape[1:])
    console.out(
        f"Fitted on {len(bunch.target)} images of {len(clf.classes_)} classes "
        f"({', '.join(str(c) for c in clf.classes_)}); wrote the model to {path}"
    )
    return 0


def _load_model(args, console):
    from ._persist import load_model

    console.status(f"Loading the model {args.model} ...")
    model, meta = load_model(args.model, return_metadata=True)
    if getattr(args, "device", None) is not None:
        _check_device(args.device)
        model.set_params(device=args.device)
    return model, meta


def _cmd_evaluate(args, console):
    model, meta = _load_model(args, console)
    image_shape = meta["image_shape"]
    mode = _mode_for(image_shape)
    bunch = _load_folder(args, console, args.root, split=args.split, mode=mode)
    where = f"{args.root}" + (f" (split {args.split!r})" if args.split else "")
    _check_shape(model, image_shape, bunch.images.shape[1:], where)
    report = evaluation(model, bunch.data, bunch.target)
    if args.json:
        report = {
            "model": str(args.model),
            "data": str(args.root),
            "split": args.split,
            **report,
        }
        console.out(json.dumps(report, indent=2))
    else:
        console.out(f"Model: {args.model}")
        console.out(f"Data: {where}")
        console.out(format_report(report))
    return 0


def _image_files(inputs):
    """Image files of ``inputs``: files as given, folders searched recursively."""
    from .datasets._discover import IMAGE_EXTENSIONS, natural_key

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = []
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found.extend(
                    os.path.join(dirpath, name)
                    for name in filenames
                    if not name.startswith(".")
                    and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
                )
            if not found:
                raise ValueError(f"no image files in the folder {path}.")
            found.sort(key=lambda p: [natural_key(part) for part in Path(p).parts])
            files.extend(found)
        elif path.exists():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"no such image file or folder: {path}")
    return files


def _cmd_predict(args, console):
    from .datasets._decode import decode_file
    from .datasets._progress import Progress

    model, meta = _load_model(args, console)
    image_shape = meta["image_shape"]
    mode = _mode_for(image_shape)
    files = _image_files(args.inputs)
    progress = Progress(len(files), "Predicting", verbose=not console.quiet)
    batch = 256
    for start in range(0, len(files), batch):
        names = files[start : start + batch]
        rows = []
        for name in names:
            pixels = decode_file(name, mode=mode)
            _check_shape(model, image_shape, pixels.shape, name)
            rows.append(pixels.reshape(-1))
        proba = model.predict_proba(np.stack(rows))
        best = np.argmax(proba, axis=1)
        for name, k, p in zip(names, best, proba, strict=True):
            console.out(f"{name}\t{model.classes_[k]}\t{p[k]:.4f}")
        progress.update(start + len(names))
    progress.close()
    return 0


def _cmd_means(args, console):
    model, meta = _load_model(args, console)
    image_shape = args.shape or meta["image_shape"]
    if image_shape is None and infer_image_shape(model.n_features_in_) is None:
        raise ValueError(
            f"{args.model} does not record the image shape and its "
            f"{model.n_features_in_} features are not a square image; pass "
            "--shape HxW."
        )
    picture = render_means(
        model, image_shape, scale=args.scale, columns=args.columns, cmap=args.cmap
    )
    output = Path(args.output).expanduser()
    write_atomic(output, lambda f: picture.save(f, format="PNG"))
    console.out(
        f"Wrote the means of {len(model.classes_)} classes "
        f"({picture.width}x{picture.height} pixels) to {output}"
    )
    return 0


def _cmd_pixels(args, console):
    from .datasets._decode import decode_file

    pixels = decode_file(args.image, mode="L")
    (r0, r1), (c0, c1) = _check_crop(
        args.crop or ((None, None), (None, None)), pixels.shape, args.image
    )
    color = _color_mode(args.color, sys.stdout)
    console.out(format_pixels(pixels[r0:r1, c0:c1], row0=r0, col0=c0, color=color))
    return 0


def _cmd_fetch_mnist(args, console):
    from .datasets import fetch_mnist, get_data_home

    kwargs = {} if args.base_url is None else {"base_url": args.base_url}
    home = get_data_home(args.data_home)
    console.status(
        f"Fetching MNIST into {home} (downloaded once, then written as PNG files; "
        "this takes a minute) ..."
    )
    path = fetch_mnist(home, layout=args.layout, **kwargs)
    console.out(str(path))
    return 0


# --------------------------------------------------------------------------- parser
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1); got {text!r}")
    return value


def _shape(text):
    try:
        shape = tuple(int(s) for s in re.split(r"[x,]", text.lower()))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"expected HxW or HxWxC (e.g. 28x28); got {text!r}"
        )
    return shape


def build_parser():
    """The :class:`argparse.ArgumentParser` of the ``sk-template`` command."""
    from . import __version__
    from ._core import METRICS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress or status messages on stderr",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "A nearest-mean ('pixel similarity') image classifier: fit it on a "
            "folder of images (root/<class>/<image> or root/<split>/<class>/"
            "<image>), evaluate it, predict, and look at what it learned."
        ),
        epilog=f"Start with: {PROG} demo",
        parents=[common],
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, func, help_text, description=None):
        p = sub.add_parser(
            name, help=help_text, description=description or help_text, parents=[common]
        )
        p.set_defaults(func=func)
        return p

    def model_options(p):
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

    def device_option(p):
        p.add_argument(
            "--device",
            help="run on this device instead of the model's own (cpu, cuda, ...)",
        )

    def cache_option(p):
        p.add_argument(
            "--no-cache",
            action="store_true",
            help="do not read or write the cache of decoded images",
        )

    p = add(
        "demo",
        _cmd_demo,
        "fit, evaluate and draw the class means on data that ships with the install",
        "Write scikit-learn's handwritten digits as an image folder, load it back, "
        "fit on 75% of it (see --test-size), evaluate on the rest, and draw the "
        "class means. With --data, do the same on your own folder tree (its "
        "train/valid or "
        "training/testing splits when it has them).",
    )
    p.add_argument("--data", metavar="ROOT", help="an image folder to use instead")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="the folder to write digits/, model.npz and means.png to, replacing "
        "them (default: a new temporary folder)",
    )
    p.add_argument(
        "--test-size",
        type=_fraction,
        default=0.25,
        help="fraction held out when the data has no splits (default: %(default)s)",
    )
    p.add_argument("--random-state", type=int, default=0, help=argparse.SUPPRESS)
    model_options(p)
    cache_option(p)

    p = add("fit", _cmd_fit, "fit a model on an image folder and save it")
    p.add_argument("root", metavar="ROOT", help="the image folder")
    p.add_argument("--split", help="the split folder to fit on, e.g. train")
    p.add_argument(
        "--mode",
        choices=["L", "RGB", "RGBA"],
        default="L",
        help="pixel format (default: %(default)s, grey)",
    )
    p.add_argument(
        "-o", "--output", metavar="MODEL", required=True, help="model file to write"
    )
    model_options(p)
    cache_option(p)

    p = add(
        "evaluate",
        _cmd_evaluate,
        "accuracy overall and per class, and the confusion matrix",
    )
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument("root", metavar="ROOT", help="the image folder")
    p.add_argument("--split", help="the split folder to evaluate on, e.g. valid")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    device_option(p)
    cache_option(p)

    p = add(
        "predict",
        _cmd_predict,
        "label images: one line per image, path<TAB>label<TAB>probability",
    )
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument(
        "inputs",
        metavar="IMAGE_OR_FOLDER",
        nargs="+",
        help="image files, or folders searched recursively for images",
    )
    device_option(p)

    p = add("means", _cmd_means, "draw the class means as a labelled grid of images")
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument(
        "-o",
        "--output",
        metavar="PNG",
        default="means.png",
        help="picture to write (default: %(default)s)",
    )
    p.add_argument("--scale", type=_positive_int, help="upscaling factor of each mean")
    p.add_argument("--columns", type=_positive_int, help="images per row")
    p.add_argument(
        "--cmap",
        choices=["greys", "gray"],
        default="greys",
        help="greys: ink dark on white, as in the fastai book (default); gray: as "
        "stored",
    )
    p.add_argument(
        "--shape",
        type=_shape,
        help="image shape HxW, for a model file that does not record it",
    )

    p = add(
        "pixels",
        _cmd_pixels,
        "print an image's pixel values as a table, shaded white to black",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument(
        "--crop",
        type=parse_crop,
        metavar="r0:r1,c0:c1",
        help="rows r0 to r1 and columns c0 to c1 only, e.g. 4:15,4:22",
    )
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="shade the cells (default: auto, when stdout is a terminal)",
    )

    p = add(
        "fetch-mnist",
        _cmd_fetch_mnist,
        "download MNIST and write it as an image folder",
    )
    p.add_argument(
        "--data-home",
        metavar="DIR",
        help="where to put it (default: $SK_TEMPLATE_DATA or ~/sk_template_data)",
    )
    p.add_argument(
        "--layout",
        choices=["png", "sample"],
        default="png",
        help="png: mnist_png/{training,testing}/<digit>/ (70,000 images); sample: "
        "fastai's mnist_sample/{train,valid}/{3,7}/ (default: %(default)s)",
    )
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="a mirror holding the four .gz files (file:// works)",
    )
    return parser


# --------------------------------------------------------------------------- main
@contextlib.contextmanager
def _warnings_as_messages(console):
    """Show warnings as one ``sk-template: warning: ...`` line each."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv=None):
    """Run the ``sk-template`` command; return its exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name; ``None`` means
        ``sys.argv[1:]``.

    Returns
    -------
    code : int
        0 on success, 1 after an error about a path, a model file or an image
        (reported on one line of stderr), 2 for a usage error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    console = _Console(quiet=getattr(args, "quiet", False))
    debug = getattr(args, "debug", False)
    from .datasets import ImageDecodeError

    try:
        with _warnings_as_messages(console):
            return args.func(args, console) or 0
    except BrokenPipeError:
        # The reader of stdout went away (``sk-template predict ... | head``):
        # stop quietly, and keep Python from failing again at exit.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OSError, ValueError, ImageDecodeError) as exc:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
