"""ClassMeansDisplay: the class means of a fitted model drawn with matplotlib,
in scikit-learn's ``Display`` idiom (``from_estimator``, then ``plot``)."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np

from ._mean_images import (
    check_image_shape,
    difference_pixels,
    grid_columns,
    mean_labels,
    mean_pixels,
)

__all__ = ["ClassMeansDisplay"]

_TILE_INCHES = 1.6  # width of one tile in a new figure
_FRAME = (190 / 255,) * 3  # the CLI's light grey frame around each tile


def _pyplot(caller):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} draws with matplotlib, which is not installed. Install the "
            "'plot' extra (pip install \"sk_template[plot]\", or from a clone: pip "
            'install -e ".[plot]"), or matplotlib itself.'
        ) from exc
    return plt


class ClassMeansDisplay:
    """The class means of a nearest-mean classifier, drawn as images.

    Each class mean is the "ideal" image of its class: the blurry average 3
    that pixel similarity compares every image with. The display draws one
    tile per class, captioned ``ideal <class>``, in the order of the classes,
    with the same pixels, grey scale and tile order as the picture that
    ``sk-template means`` writes; optionally followed by tiles of differences
    between two means ("where a 3 differs from a 7").

    Create it with :meth:`from_estimator`. All parameters are stored as
    attributes. Needs matplotlib (the ``plot`` extra).

    Parameters
    ----------
    means : array-like of shape (n_classes, n_features)
        One mean image per row, flattened, on the 0..255 scale or (when every
        value of every mean is in [0, 1]) on the [0, 1] scale.  The scale is
        decided for all the means together, not per class, so that the tiles
        of the classes are comparable: a nearly blank class stays nearly
        blank.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of one image.
        ``None`` means a square grey image.
    display_labels : array-like of shape (n_classes,), default=None
        The class of each row; ``None`` numbers them from 0.

    Attributes
    ----------
    images_ : ndarray of shape (n_tiles,), dtype=object
        The matplotlib ``AxesImage`` of each tile: the means first, then the
        differences.
    axes_ : ndarray of shape (n_rows, n_columns), dtype=object
        The matplotlib ``Axes`` of the grid; those without a tile are hidden.
    bounding_ax_ : matplotlib Axes or None
        The single ``Axes`` passed as ``ax`` (or made), whose area the grid
        fills; ``None`` when ``ax`` was an array of ``Axes``.
    figure_ : matplotlib Figure
        The figure holding the grid.

    See Also
    --------
    ClassMeansDisplay.from_estimator : Draw the means of a fitted estimator.
    sklearn.metrics.ConfusionMatrixDisplay : The confusion matrix, which works
        with :class:`NearestMeanImageClassifier` as with any classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_template import ClassMeansDisplay, NearestMeanImageClassifier
    >>> X, y = load_digits(return_X_y=True)  # 8x8 images, pixels 0..16
    >>> clf = NearestMeanImageClassifier().fit(X * 255 / 16, y)
    >>> disp = ClassMeansDisplay.from_estimator(
    ...     clf, image_shape=(8, 8), differences=[(3, 7)]
    ... )
    >>> disp.axes_.shape, len(disp.images_)
    ((2, 6), 11)
    >>> disp.axes_[0, 3].get_xlabel()
    'ideal 3'
    """

    def __init__(self, means, *, image_shape=None, display_labels=None):
        self.means = means
        self.image_shape = image_shape
        self.display_labels = display_labels

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        image_shape=None,
        differences=None,
        columns=None,
        cmap="greys",
        ax=None,
    ):
        """Draw the class means of a fitted estimator.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`NearestMeanImageClassifier`, or any fitted
            estimator with ``centroids_`` and ``classes_`` (such as
            :class:`sklearn.neighbors.NearestCentroid`).
        image_shape : tuple of int, default=None
            ``(height, width)`` or ``(height, width, channels)`` of one image;
            ``None`` means a square grey image.
        differences : list of (class, class) pairs, default=None
            Also draw ``mean of a - mean of b`` for each pair ``(a, b)``: red
            where ``a`` is higher (has more ink, in MNIST), blue where ``b``
            is, white where they agree; captioned ``a - b``.
        columns : int, default=None
            Tiles per row; by default at most 6, in rows as even as possible.
        cmap : {"greys", "gray"}, default="greys"
            ``"greys"`` draws high pixel values dark on white, as the fastai
            book does; ``"gray"`` draws them as stored (0 is black). Colour
            images are drawn as stored.
        ax : matplotlib Axes or array-like of Axes, default=None
            A single ``Axes`` whose area the grid of tiles fills, or one
            ``Axes`` per tile (at least as many as tiles). ``None`` makes a new
            figure.

        Returns
        -------
        display : ClassMeansDisplay
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
        if not (hasattr(estimator, "centroids_") and hasattr(estimator, "classes_")):
            raise TypeError(
                "ClassMeansDisplay.from_estimator needs an estimator with class "
                "means (centroids_ and classes_), such as NearestMeanImageClassifier; "
                f"got {type(estimator).__name__}. For a Pipeline, pass its last step "
                "(pipe[-1]) if the steps before it do not change the pixels."
            )
        display = cls(
            estimator.centroids_,
            image_shape=image_shape,
            display_labels=estimator.classes_,
        )
        return display.plot(differences=differences, columns=columns, cmap=cmap, ax=ax)

    def plot(self, *, differences=None, columns=None, cmap="greys", ax=None):
        """Draw the means (and differences) into a grid of tiles.

        Parameters
        ----------
        differences : list of (class, class) pairs, default=None
            See :meth:`from_estimator`.
        columns : int, default=None
            Tiles per row; by default at most 6, in rows as even as possible.
        cmap : {"greys", "gray"}, default="greys"
            See :meth:`from_estimator`.
        ax : matplotlib Axes or array-like of Axes, default=None
            See :meth:`from_estimator`.

        Returns
        -------
        display : ClassMeansDisplay
            ``self``, with ``images_``, ``axes_``, ``bounding_ax_`` and
            ``figure_`` set.
        """
        plt = _pyplot("ClassMeansDisplay")
        if cmap not in ("greys", "gray"):
            raise ValueError(f"cmap must be 'greys' or 'gray'; got {cmap!r}.")
        means = np.asarray(self.means, dtype=np.float64)
        if means.ndim != 2:
            raise ValueError(
                f"means must be 2-D (n_classes, n_features); got shape {means.shape}."
            )
        n_classes, n_features = means.shape
        image_shape = check_image_shape(self.image_shape, n_features)
        labels = (
            np.arange(n_classes)
            if self.display_labels is None
            else np.asarray(self.display_labels)
        )
        tiles = list(
            zip(mean_pixels(means, image_shape, cmap), mean_labels(labels), strict=True)
        )
        for a, b in differences or ():
            ia, ib = self._index(labels, a), self._index(labels, b)
            diff = difference_pixels(means, ia, ib, image_shape)
            tiles.append((diff, f"{a} - {b}"))
        n_tiles = len(tiles)
        n_cols = grid_columns(n_tiles, columns)
        axes = self._axes(plt, ax, n_tiles, n_cols, image_shape)

        images = np.empty(n_tiles, dtype=object)
        for k, ax_k in enumerate(axes.flat):
            if k >= n_tiles:
                ax_k.set_axis_off()
                continue
            pixels, text = tiles[k]
            if k < n_classes:
                # Grey as 0 black .. 255 white, the CLI's mapping; RGB as is.
                images[k] = ax_k.imshow(
                    pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest"
                )
            else:
                limit = max(float(np.abs(pixels).max()), 1e-12)
                images[k] = ax_k.imshow(
                    pixels,
                    cmap="RdBu_r",
                    vmin=-limit,
                    vmax=limit,
                    interpolation="nearest",
                )
            ax_k.set_xticks([])
            ax_k.set_yticks([])
            for spine in ax_k.spines.values():
                spine.set_edgecolor(_FRAME)
            ax_k.set_xlabel(text)
        self.images_ = images
        self.axes_ = axes
        self.figure_ = axes.flat[0].figure
        return self

    @staticmethod
    def _index(labels, label):
        found = np.flatnonzero(labels == label)
        if len(found) != 1:
            raise ValueError(
                f"differences names the class {label!r}, which is not one of the "
                f"classes {labels.tolist()}."
            )
        return int(found[0])

    def _axes(self, plt, ax, n_tiles, n_cols, image_shape):
        """The grid of Axes to draw in; sets ``bounding_ax_``."""
        n_rows = math.ceil(n_tiles / n_cols)
        if isinstance(ax, np.ndarray | list | tuple):
            axes = np.asarray(ax, dtype=object)
            if axes.size < n_tiles:
                raise ValueError(
                    f"ax holds {axes.size} Axes, but there are {n_tiles} tiles to "
                    "draw; pass at least one Axes per tile, or a single Axes."
                )
            self.bounding_ax_ = None
            return axes.reshape(1, -1) if axes.ndim == 1 else axes
        if ax is None:
            h, w = image_shape[:2]
            width = _TILE_INCHES * n_cols
            height = (_TILE_INCHES * h / w + 0.35) * n_rows
            _, ax = plt.subplots(figsize=(width, height), layout="constrained")
        from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec

        ax.set_axis_off()
        self.bounding_ax_ = ax
        spec = ax.get_subplotspec()
        if spec is not None:
            grid = GridSpecFromSubplotSpec(n_rows, n_cols, subplot_spec=spec)
        else:
            # An Axes placed by hand (figure.add_axes) has no subplot spec:
            # the grid fills its rectangle instead.
            box = ax.get_position()
            grid = GridSpec(
                n_rows,
                n_cols,
                figure=ax.figure,
                left=box.x0,
                right=box.x1,
                bottom=box.y0,
                top=box.y1,
            )
        axes = np.empty((n_rows, n_cols), dtype=object)
        for i in range(n_rows):
            for j in range(n_cols):
                axes[i, j] = ax.figure.add_subplot(grid[i, j])
        return axes
