"""``sk-template evaluate``: accuracy of a saved model on an image folder."""

# SPDX-License-Identifier: BSD-3-Clause

import json

from ._common import (
    add_cache_option,
    add_device_option,
    add_loading_options,
    check_shape,
    load_folder,
    load_model_file,
    recorded_pixels,
)
from ._report import evaluation, format_report

NAME = "evaluate"
HELP = "accuracy overall and per class, and the confusion matrix"


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument("root", metavar="ROOT", help="the image folder")
    p.add_argument("--split", help="the split folder to evaluate on, e.g. valid")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_loading_options(p, recorded=True)
    add_device_option(p)
    add_cache_option(p)


def run(args, console):
    model, meta = load_model_file(args, console)
    image_shape = meta["image_shape"]
    pixels = recorded_pixels(args, meta)
    bunch = load_folder(args, console, args.root, split=args.split, pixels=pixels)
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
