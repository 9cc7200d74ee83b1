"""``sk-template pixels``: an image's pixel values as a shaded table."""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import os
import re
import sys

from ._pictures import format_pixels

NAME = "pixels"
HELP = "print an image's pixel values as a table, shaded white to black"


def add_arguments(p):
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


def run(args, console):
    from ..datasets._decode import decode_file

    pixels = decode_file(args.image, mode="L")
    (r0, r1), (c0, c1) = _check_crop(
        args.crop or ((None, None), (None, None)), pixels.shape, args.image
    )
    color = _color_mode(args.color, sys.stdout)
    console.out(format_pixels(pixels[r0:r1, c0:c1], row0=r0, col0=c0, color=color))
    return 0
