"""``sk-template evaluate``: accuracy of a saved model on an image folder."""

# SPDX-License-Identifier: BSD-3-Clause

import json

from ._common import (
    add_cache_option,
    add_device_option,
    add_loading_options,
    add_storage_options,
    check_shape,
    load_folder,
    load_model_file,
    recorded_pixels,
    shape_text,
)
from ._report import evaluation, format_report

NAME = "evaluate"
HELP = "accuracy overall and per class, and the confusion matrix"


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument(
        "root",
        metavar="ROOT",
        help="the image folder: a path, or a URL such as s3://bucket/prefix",
    )
    p.add_argument("--split", help="the split folder to evaluate on, e.g. valid")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_loading_options(p, recorded=True)
    add_device_option(p)
    add_cache_option(p)
    add_storage_options(p)


def _size_hint(args, meta):
    """What to do about images of several sizes, for a model fitted on images
    of one size without --size (its file says so, or records no options)."""
    shape = meta["image_shape"]
    fitted = f"{shape_text(shape)} images" if shape is not None else "images"
    if meta.get("load_params") is None and shape is not None:
        # Flags stand in for what the file does not record.
        return (
            f"the model {args.model} was fitted on {fitted}: pass --size "
            f"{shape_text(shape[:2])} to resize every image to that size, or "
            "remove the odd files."
        )
    return (
        f"the model {args.model} was fitted on {fitted} without --size, so "
        "every image must have that size: resize or remove the odd files, or "
        "fit a model with --size HxW (and --resize crop for photos) to take "
        "images of any size."
    )


def run(args, console):
    model, meta = load_model_file(args, console)
    image_shape = meta["image_shape"]
    pixels = recorded_pixels(args, meta)
    bunch = load_folder(
        args,
        console,
        args.root,
        split=args.split,
        pixels=pixels,
        size_hint=_size_hint(args, meta) if pixels["size"] is None else None,
    )
    where = f"{args.root}" + (f" (split {args.split!r})" if args.split else "")
    check_shape(model, image_shape, bunch.images.shape[1:], where)
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
