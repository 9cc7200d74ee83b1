"""``sk-template fetch-mnist``: download MNIST as an image folder."""

# SPDX-License-Identifier: BSD-3-Clause

from ._common import positive_float

NAME = "fetch-mnist"
HELP = "download MNIST and write it as an image folder"


def add_arguments(p):
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
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="time allowed for each file's whole download from one mirror "
        "(default: %(default)g)",
    )


def run(args, console):
    from ..datasets import fetch_mnist, get_data_home

    kwargs = {} if args.base_url is None else {"base_url": args.base_url}
    home = get_data_home(args.data_home)
    console.status(
        f"Fetching MNIST into {home} (downloaded once, then written as PNG files; "
        "this takes a minute) ..."
    )
    path = fetch_mnist(home, layout=args.layout, timeout=args.timeout, **kwargs)
    console.out(str(path))
    return 0
