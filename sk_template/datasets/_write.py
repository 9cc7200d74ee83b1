"""Write arrays of images back out as an image folder of lossless PNGs."""

import os
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from PIL import Image

from ._atomic import building_dir

__all__ = ["write_image_folder"]

_MIN_FILES_PER_JOB = 1000


def _as_images(X, image_shape):
    X = np.asarray(X)
    if X.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"write_image_folder writes uint8 (or 16-bit grey uint16) pixels "
            f"losslessly; got dtype {X.dtype}. Convert first, e.g. "
            "(X * 255).round().astype(np.uint8) for pixels in [0, 1]."
        )
    if X.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"X has shape {X.shape}: one flattened image per row. Pass "
                "image_shape=(height, width) or (height, width, channels)."
            )
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) != X.shape[1]:
            raise ValueError(
                f"image_shape={image_shape} holds {int(np.prod(image_shape))} "
                f"pixels but X has {X.shape[1]} features per row."
            )
        X = X.reshape(len(X), *image_shape)
    elif image_shape is not None and X.shape[1:] != tuple(image_shape):
        raise ValueError(
            f"X holds images of shape {X.shape[1:]}, not image_shape={image_shape}."
        )
    if X.ndim == 4 and X.shape[3] == 1:
        X = X[..., 0]
    if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[3] not in (2, 3, 4)):
        raise ValueError(
            f"Cannot write images of shape {X.shape[1:]}: expected (height, width) "
            "or (height, width, channels) with 1 to 4 channels."
        )
    if X.dtype == np.uint16 and X.ndim != 3:
        raise ValueError("uint16 pixels are written as 16-bit greyscale only.")
    return X


def _folder_name(label):
    if isinstance(label, np.generic):
        label = label.item()
    name = str(label)
    if (
        not name
        or name.startswith(".")
        or "/" in name
        or os.sep in name
        or (os.altsep and os.altsep in name)
        or "\0" in name
    ):
        raise ValueError(
            f"Label {label!r} cannot be a folder name (empty, hidden, or with a "
            "path separator)."
        )
    return name


def _write_pngs(images, rel_paths, tree):
    for img, rel in zip(images, rel_paths, strict=True):
        Image.fromarray(img).save(os.path.join(tree, rel), format="PNG")


def write_image_folder(
    X,
    y,
    root,
    *,
    image_shape=None,
    split=None,
    index=None,
    overwrite=False,
    n_jobs=None,
):
    """Write images to ``root/[split/]<label>/<index>.png``, losslessly.

    Each image is saved as a PNG named by its row index in ``X``, in the
    folder of its label, so :func:`load_image_folder` reads the same pixels
    back in the same order within each class. The tree is written under a
    temporary sibling name and renamed into place at the end: an interrupted
    write leaves nothing behind.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), (n_samples, h, w) or \
            (n_samples, h, w, c)
        The images, uint8 (grey, grey+alpha, RGB or RGBA by the number of
        channels), or uint16 for 16-bit grey images.
    y : array-like of shape (n_samples,)
        The label of each image; ``str(label)`` names its folder.
    root : str or path-like
        The folder to write.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)``; required when
        ``X`` is 2-D (one flattened image per row).
    split : str, default=None
        Write to ``root/split`` instead of ``root``, leaving any other split
        folders of ``root`` alone.
    index : array-like of int of shape (n_samples,), default=None
        The number each file is named by, e.g. the rows' indices in a larger
        array they were taken from. ``None`` means ``0 .. n_samples - 1``.
    overwrite : bool, default=False
        Replace an existing, non-empty target folder. Without it that is an
        error.
    n_jobs : int, default=None
        Number of joblib workers writing files.

    Returns
    -------
    path : pathlib.Path
        The folder written: ``root`` or ``root/split``.

    See Also
    --------
    load_image_folder : Read such a folder back.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_template.datasets import write_image_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> X = np.arange(3 * 4, dtype=np.uint8).reshape(3, 4)
    >>> path = write_image_folder(X, [0, 1, 0], tmp.name, image_shape=(2, 2),
    ...                           split="train", overwrite=True)
    >>> sorted(p.relative_to(path).as_posix() for p in path.rglob("*.png"))
    ['0/0.png', '0/2.png', '1/1.png']
    >>> tmp.cleanup()
    """
    images = _as_images(X, image_shape)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(images):
        raise ValueError(
            f"y must hold one label per image: got shape {y.shape} for "
            f"{len(images)} images."
        )
    target = Path(os.fspath(root)).expanduser()
    if split is not None:
        target = target / _folder_name(split)
    if target.exists():
        if not target.is_dir():
            raise FileExistsError(f"{str(target)!r} exists and is a file.")
        if any(target.iterdir()) and not overwrite:
            raise FileExistsError(
                f"{str(target)!r} exists and is not empty; pass overwrite=True to "
                "replace it, or choose another folder."
            )
    labels, inverse = np.unique(y, return_inverse=True)
    names = [_folder_name(lab) for lab in labels]
    if len(set(names)) != len(names):
        raise ValueError(f"Two labels share a folder name: {names}.")
    if index is None:
        index = range(len(images))
    else:
        index = np.asarray(index)
        if (
            index.shape != (len(images),)
            or index.dtype.kind not in "iu"
            or len(np.unique(index)) != len(index)
        ):
            raise ValueError(
                "index must hold one distinct int per image; got "
                f"{index.dtype} of shape {index.shape}."
            )
        index = index.tolist()
    rel_paths = [f"{names[k]}/{i}.png" for i, k in zip(index, inverse, strict=True)]

    target.parent.mkdir(parents=True, exist_ok=True)
    with building_dir(target) as tmp:
        for name in names:
            (tmp / name).mkdir()
        n = len(images)
        n_workers = effective_n_jobs(n_jobs) if n_jobs is not None else 1
        if n_workers > 1 and n >= 2 * _MIN_FILES_PER_JOB:
            step = -(-n // (n_workers * 4))
            Parallel(n_jobs=n_jobs)(
                delayed(_write_pngs)(images[a : a + step], rel_paths[a : a + step], tmp)
                for a in range(0, n, step)
            )
        else:
            _write_pngs(images, rel_paths, tmp)
    return target
