"""``sk-template means``: draw the class means of a saved model."""

# SPDX-License-Identifier: BSD-3-Clause

from pathlib import Path

from ..datasets._atomic import check_writable, write_atomic
from ._common import image_shape_type, load_model_file, positive_int
from ._pictures import infer_image_shape, render_means

NAME = "means"
HELP = "draw the class means as a labelled grid of images"


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument(
        "-o",
        "--output",
        metavar="PNG",
        default="means.png",
        help="picture to write (default: %(default)s)",
    )
    p.add_argument("--scale", type=positive_int, help="upscaling factor of each mean")
    p.add_argument("--columns", type=positive_int, help="images per row")
    p.add_argument(
        "--cmap",
        choices=["greys", "gray"],
        default="greys",
        help="greys: ink dark on white, as in the fastai book (default); gray: as "
        "stored",
    )
    p.add_argument(
        "--shape",
        type=image_shape_type,
        help="image shape HxW, for a model file that does not record it",
    )


def run(args, console):
    output = Path(args.output).expanduser()
    check_writable(output)
    model, meta = load_model_file(args, console)
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
    write_atomic(output, lambda f: picture.save(f, format="PNG"))
    console.out(
        f"Wrote the means of {len(model.classes_)} classes "
        f"({picture.width}x{picture.height} pixels) to {output}"
    )
    return 0
