"""Pictures of what a model learned: the class means as a labelled grid of
images, and an image's pixel values as a shaded table."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np

# The pixels, captions and tile order are shared with ClassMeansDisplay.
from .._mean_images import (
    check_image_shape,
    grid_columns,
    infer_image_shape,
    mean_labels,
    mean_pixels,
)

__all__ = ["format_pixels", "infer_image_shape", "means_image_size", "render_means"]

# Layout of the picture of the class means, in pixels.
_PAD = 8
_LABEL_HEIGHT = 20
_TILE_TARGET = 112  # default upscaling makes a tile about this wide


def _means_layout(n_classes, image_shape, scale, columns):
    h, w = image_shape[:2]
    if scale is None:
        scale = max(1, math.ceil(_TILE_TARGET / max(h, w)))
    columns = grid_columns(n_classes, columns)
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
        An RGB image of size :func:`means_image_size`.  A model whose means
        all lie in [0, 1] is scaled to 0..255 (all classes alike, so that
        their tiles are comparable); a class without samples is a grey tile.
    """
    from PIL import Image, ImageDraw

    centroids = np.asarray(model.centroids_, dtype=np.float64)
    n_classes, n_features = centroids.shape
    image_shape = check_image_shape(image_shape, n_features, hint="--shape HxW")
    if labels is None:
        labels = mean_labels(model.classes_)
    scale, columns, size = _means_layout(n_classes, image_shape, scale, columns)
    tile_h, tile_w = image_shape[0] * scale, image_shape[1] * scale
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    tiles = mean_pixels(centroids, image_shape, cmap)  # one grey scale for all
    for k in range(n_classes):
        row, col = divmod(k, columns)
        x = _PAD + col * (tile_w + _PAD)
        y = _PAD + row * (tile_h + _LABEL_HEIGHT + _PAD)
        tile = Image.fromarray(tiles[k])
        tile = tile.convert("RGB").resize((tile_w, tile_h), Image.Resampling.NEAREST)
        canvas.paste(tile, (x, y))
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
