"""``sk-template fit``: fit a model on an image folder and save it."""

# SPDX-License-Identifier: BSD-3-Clause

from ._common import (
    add_cache_option,
    add_loading_options,
    add_model_options,
    add_storage_options,
    check_device,
    fit_model,
    load_folder,
    pixels_of,
)

NAME = "fit"
HELP = "fit a model on an image folder and save it"


def add_arguments(p):
    p.add_argument(
        "root",
        metavar="ROOT",
        help="the image folder: a path, or a URL such as s3://bucket/prefix",
    )
    p.add_argument("--split", help="the split folder to fit on, e.g. train")
    p.add_argument(
        "-o", "--output", metavar="MODEL", required=True, help="model file to write"
    )
    add_loading_options(p)
    add_model_options(p)
    add_cache_option(p)
    add_storage_options(p)


def run(args, console):
    from .._persist import save_model
    from ..datasets._atomic import check_writable

    check_device(args.device)
    check_writable(args.output)  # before the load and fit, not after
    pixels = pixels_of(args)
    bunch = load_folder(args, console, args.root, split=args.split, pixels=pixels)
    clf = fit_model(args, console, bunch.data, bunch.target)
    path = save_model(
        clf, args.output, image_shape=bunch.images.shape[1:], load_params=pixels
    )
    console.out(
        f"Fitted on {len(bunch.target)} images of {len(clf.classes_)} classes "
        f"({', '.join(str(c) for c in clf.classes_)}); wrote the model to {path}"
    )
    return 0
