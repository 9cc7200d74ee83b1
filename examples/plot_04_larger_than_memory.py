"""
Larger than memory: batches, memory maps and dask
=================================================

A nearest-mean model is a sum and a weight per class, so it can learn from
data that never fits in memory at once: batch by batch with ``partial_fit``,
from a memory-mapped array, or block by block on the workers of a dask
cluster. Every route gives the model that ``fit`` gives on all the data in
memory. This example checks that on scikit-learn's digits, small enough to
fit in memory so that the answers can be compared; the same code runs on
folders of millions of files.
"""

# %%
# The data, as an image folder
# ----------------------------
# :func:`~sk_template.datasets.write_image_folder` writes the 1,797 digits as
# PNG files, ``digits/<label>/<index>.png``.
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from sk_template import NearestMeanImageClassifier
from sk_template.datasets import (
    iter_image_folder,
    list_classes,
    load_image_folder,
    write_image_folder,
)

work = Path(tempfile.mkdtemp(prefix="sk_template_example_"))
digits = load_digits()
images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
write_image_folder(images, digits.target, work / "digits")

X, y = load_image_folder(work / "digits", return_X_y=True, cache=False)
in_memory = NearestMeanImageClassifier().fit(X, y)  # the reference

# %%
# Batch by batch from the folders
# -------------------------------
# :func:`~sk_template.datasets.iter_image_folder` decodes the files a batch
# at a time and never holds more; ``partial_fit`` adds each batch into the
# class sums. The classes must be known up front:
# :func:`~sk_template.datasets.list_classes` reads them off the folder names.
classes = list_classes(work / "digits")
streamed = NearestMeanImageClassifier()
for X_batch, y_batch in iter_image_folder(work / "digits", batch_size=256):
    streamed.partial_fit(X_batch, y_batch, classes=classes)
print("partial_fit over batches == fit:", end=" ")
print(np.allclose(streamed.centroids_, in_memory.centroids_))

# %%
# From a memory map
# -----------------
# ``fit`` and ``predict`` read ``X`` in chunks of ``batch_size`` rows, so a
# memory-mapped ``.npy`` file works as an array in memory does, and only a
# chunk at a time is ever read. (``load_image_folder(..., mmap=True)``
# returns its cache of decoded pixels this way.)
np.save(work / "X.npy", X)
X_map = np.load(work / "X.npy", mmap_mode="r")
mapped = NearestMeanImageClassifier(batch_size=200).fit(X_map, y)
print("fit on a memory map == fit:", end=" ")
print(np.allclose(mapped.centroids_, in_memory.centroids_))
print("same predictions:", np.array_equal(mapped.predict(X_map), in_memory.predict(X)))

# %%
# On a dask cluster
# -----------------
# :func:`~sk_template.fit_dask` sums each block of a :mod:`dask.array` on the
# worker that holds it; only the sums travel back. A local cluster of two
# workers stands in for a real one here (in this process, so that the script
# runs as it is; ``LocalCluster()`` alone starts worker processes, which
# needs the script's code under ``if __name__ == "__main__":``). With a real
# cluster, pass its scheduler's address to ``Client`` and let each worker read
# its own blocks (``da.from_array`` over a memory map,
# ``dask.array.from_zarr``...).
import dask.array as da
from dask.distributed import Client, LocalCluster

from sk_template import fit_dask

cluster = LocalCluster(
    n_workers=2,
    threads_per_worker=1,
    processes=False,
    dashboard_address=None,  # no web dashboard for this example
)
client = Client(cluster)
X_dask = da.from_array(X_map, chunks=(300, -1))  # 6 blocks of 300 rows
y_dask = da.from_array(y, chunks=300)
on_cluster = fit_dask(NearestMeanImageClassifier(), X_dask, y_dask)
print(f"fit_dask on {len(client.scheduler_info()['workers'])} workers == fit:", end=" ")
print(np.allclose(on_cluster.centroids_, in_memory.centroids_))

# %%
# :func:`~sk_template.fit_blocks` does the same for any list of blocks on any
# joblib backend; here, dask's. Each block is a function that loads its rows
# where it runs, so only a file name travels to the worker.
import functools

from joblib import parallel_config

from sk_template import fit_blocks


def load_block(path, start, stop):
    X_all = np.load(path, mmap_mode="r")
    return np.asarray(X_all[start:stop]), y[start:stop]


blocks = [
    functools.partial(load_block, work / "X.npy", start, start + 300)
    for start in range(0, len(y), 300)
]
with parallel_config(backend="dask"):
    from_blocks = fit_blocks(NearestMeanImageClassifier(), blocks, classes=classes)
print("fit_blocks on the dask backend == fit:", end=" ")
print(np.allclose(from_blocks.centroids_, in_memory.centroids_))

client.close()
cluster.close()

# %%
import shutil

shutil.rmtree(work)  # the example's temporary files
