"""``sk-template demo``: fit, evaluate and draw on data that ships with the
install, or on a folder given with ``--data``."""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ..datasets._atomic import write_atomic
from ._common import (
    PROG,
    add_cache_option,
    add_loading_options,
    add_model_options,
    check_features_equal,
    fit_model,
    fraction,
    load_folder,
    pixels_of,
    shape_text,
    split_layout,
)
from ._pictures import render_means
from ._report import evaluation, format_report

NAME = "demo"
HELP = "fit, evaluate and draw the class means on data that ships with the install"
DESCRIPTION = (
    "Write scikit-learn's handwritten digits as an image folder, load it back, fit "
    "on 75% of it (see --test-size), evaluate on the rest, and draw the class "
    "means. With --data, do the same on your own folder tree (its train/valid or "
    "training/testing splits when it has them)."
)


def add_arguments(p):
    p.add_argument("--data", metavar="ROOT", help="an image folder to use instead")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="the folder to write digits/, model.npz and means.png to, replacing "
        "them (default: a new temporary folder)",
    )
    p.add_argument(
        "--test-size",
        type=fraction,
        default=0.25,
        help="fraction held out when the data has no splits (default: %(default)s)",
    )
    p.add_argument("--random-state", type=int, default=0, help=argparse.SUPPRESS)
    add_loading_options(p)
    add_model_options(p)
    add_cache_option(p)


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


def run(args, console):
    from .._persist import save_model

    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="sk-template-demo-"))
    else:
        out = Path(args.out).expanduser()
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {out} is a file, not a folder.")
        out.mkdir(parents=True, exist_ok=True)

    pixels = pixels_of(args)
    if args.data is None:
        from sklearn.datasets import load_digits

        from ..datasets import load_image_folder, write_image_folder

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
        bunch = load_image_folder(
            root, **pixels, cache=False, n_jobs=args.n_jobs, verbose=console.progress
        )
        data, layout = root, None
        source = f"scikit-learn's handwritten digits, written as PNG files to {root}"
        (X_train, y_train), (X_test, y_test, test_files), held_out = _holdout(
            args, bunch
        )
        image_shape = bunch.images.shape[1:]
    else:
        data = Path(args.data)
        source = str(data)
        layout = split_layout(data)
        if layout is not None:
            train, test = layout
            fit_data = load_folder(args, console, data, split=train, pixels=pixels)
            test_data = load_folder(args, console, data, split=test, pixels=pixels)
            X_train, y_train = fit_data.data, fit_data.target
            X_test, y_test = test_data.data, test_data.target
            test_files = test_data.filenames
            held_out = f"split {test!r}; fitted on split {train!r}"
            image_shape = fit_data.images.shape[1:]
            check_features_equal(
                image_shape, test_data.images.shape[1:], f"{data}", train, test
            )
        else:
            bunch = load_folder(args, console, data, pixels=pixels)
            (X_train, y_train), (X_test, y_test, test_files), held_out = _holdout(
                args, bunch
            )
            image_shape = bunch.images.shape[1:]

    clf = fit_model(args, console, X_train, y_train)
    report = evaluation(clf, X_test, y_test)
    model_path = save_model(
        clf, out / "model.npz", image_shape=image_shape, load_params=pixels
    )
    means_path = write_atomic(
        out / "means.png",
        lambda f: render_means(clf, image_shape).save(f, format="PNG"),
    )

    console.out(f"Data: {source}")
    console.out(
        f"Fitted a nearest-mean classifier (metric={clf.metric!r}) on "
        f"{len(y_train)} images of {len(clf.classes_)} classes, "
        f"{shape_text(image_shape)} pixels each; tested it on {len(y_test)} "
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
