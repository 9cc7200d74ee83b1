"""The class means of a fitted model as images: the pixels, labels and grid
that the CLI's ``means`` picture and :class:`ClassMeansDisplay` both draw, so
the two cannot drift apart."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np

# Grey of a tile whose class has no samples (an undefined mean).
EMPTY_GREY = 200
# Default most tiles in a row.
MAX_COLUMNS = 6


def infer_image_shape(n_features):
    """``(s, s)`` when ``n_features`` is a square number ``s * s``, else None."""
    side = math.isqrt(n_features)
    return (side, side) if side * side == n_features else None


def check_image_shape(image_shape, n_features, hint="pass image_shape=(h, w)"):
    """``image_shape`` as a tuple of ints that holds ``n_features`` values.

    ``None`` infers a square grey image; ``hint`` says how to pass a shape
    when that fails.
    """
    if image_shape is None:
        image_shape = infer_image_shape(n_features)
        if image_shape is None:
            raise ValueError(
                f"cannot tell the image shape: the model has {n_features} features, "
                f"not a square number. Pass the shape ({hint})."
            )
    image_shape = tuple(int(s) for s in image_shape)
    n_values = math.prod(image_shape)
    if n_values != n_features:
        shape = "x".join(map(str, image_shape))
        raise ValueError(
            f"image shape {shape} holds {n_values} pixel values, but the model has "
            f"{n_features} features."
        )
    return image_shape


def mean_labels(classes):
    """The caption of each class mean: ``"ideal <class>"``."""
    return [f"ideal {c}" for c in classes]


def grid_columns(n_tiles, columns=None):
    """Tiles per row: ``columns``, or at most 6 in rows as even as possible."""
    if columns is None:
        columns = math.ceil(n_tiles / math.ceil(n_tiles / MAX_COLUMNS))
    return max(1, min(int(columns), n_tiles))


def to_0_255(means):
    """Means as float pixel values on the 0..255 scale, one scale for all.

    A model fitted on pixels scaled to [0, 1] (``dtype="float32"``, or
    ``X / 255``) has every mean in [0, 1]; those are scaled up.  The scale is
    decided once for all the means of a model, not per class: a class of
    nearly blank images of a 0..255 model (every mean value at most 1) stays
    nearly black, and the classes' tiles stay comparable.
    """
    means = np.asarray(means, dtype=np.float64)
    finite = means[np.isfinite(means)]
    if finite.size and finite.max() <= 1.0 and finite.min() >= 0.0:
        return means * 255.0
    return means


def mean_pixels(means, image_shape, cmap="greys"):
    """The class means of a model as the uint8 pixels to draw, one per mean.

    Parameters
    ----------
    means : ndarray of shape (n_classes, n_features)
        All the means of a model: the grey scale is decided for all of them
        together (see :func:`to_0_255`).
    image_shape : tuple of int
        ``(h, w)`` or ``(h, w, channels)``.
    cmap : {"greys", "gray"}, default="greys"
        ``"greys"`` turns a grey image's values around (0 white, 255 black), as
        the fastai book's ``cmap='Greys'`` does; ``"gray"`` keeps them (0 is
        black). Colour images are always drawn as stored.

    Returns
    -------
    tiles : list of ndarray of shape (h, w) or (h, w, 3), uint8
        To be drawn as a grey image with 0 black and 255 white, or as RGB.
        Values are rounded and clipped to 0..255, an alpha channel is dropped
        and grey + alpha shows the grey. An undefined mean (a class without
        samples: NaN) is a flat grey tile.
    """
    return [_tile(mean, image_shape, cmap) for mean in to_0_255(means)]


def _tile(mean, image_shape, cmap):
    if not np.isfinite(mean).all():
        return np.full(tuple(image_shape[:2]), EMPTY_GREY, dtype=np.uint8)
    pixels = mean.reshape(image_shape)
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if pixels.ndim == 3:
        pixels = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., 0]
    if pixels.ndim == 2 and cmap == "greys":
        pixels = 255 - pixels
    return pixels


def difference_pixels(means, a, b, image_shape):
    """``means[a] - means[b]`` on the model's 0..255 scale, as an ``(h, w)``
    float image.

    Colour differences are averaged over the channels.
    """
    scaled = to_0_255(means)  # the scale of the whole model
    diff = scaled[a] - scaled[b]
    if not np.all(np.isfinite(diff)):
        diff = np.where(np.isfinite(diff), diff, 0.0)
    diff = diff.reshape(image_shape)
    if diff.ndim == 3:
        diff = diff[..., : min(diff.shape[2], 3)].mean(axis=2)
    return diff
