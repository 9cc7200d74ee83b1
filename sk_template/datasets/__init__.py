"""Image folders and MNIST as the ``X`` / ``y`` arrays scikit-learn takes.

* :func:`load_image_folder` turns ``root/[split/]<class>/<image>`` into a
  :class:`~sklearn.utils.Bunch` (``data``, ``target``, ``images``, ...), with a
  fast decoder, an on-disk cache and clear errors on bad files;
  :func:`iter_image_folder` streams the same in batches and
  :func:`list_classes` lists the classes.
* :func:`fetch_mnist` downloads MNIST and writes it as PNG folders (the
  ``mnist_png`` and fastai ``mnist_sample`` layouts).
* :func:`image_folder_to_dask` makes dask arrays of a folder, decoded block
  by block on the workers of a cluster.
* :func:`read_idx`, :func:`write_idx` and :func:`write_image_folder` convert
  between the IDX files, arrays and image folders.

Folders may be paths or URLs of any fsspec file system (``s3://bucket/prefix``,
``gs://...``, ``memory://...``), with ``storage_options``.
"""

from ._dask import image_folder_to_dask
from ._errors import CacheWarning, ImageDecodeError, SkippedImagesWarning
from ._folder import iter_image_folder, list_classes, load_image_folder
from ._home import get_data_home
from ._idx import read_idx, write_idx
from ._mnist import fetch_mnist
from ._write import write_image_folder

__all__ = [
    "CacheWarning",
    "ImageDecodeError",
    "SkippedImagesWarning",
    "fetch_mnist",
    "get_data_home",
    "image_folder_to_dask",
    "iter_image_folder",
    "list_classes",
    "load_image_folder",
    "read_idx",
    "write_idx",
    "write_image_folder",
]
