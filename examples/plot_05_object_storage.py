"""
From a bucket to predictions on a dask cluster
==============================================

Image folders can live anywhere fsspec reaches: ``s3://bucket/prefix``,
``gs://bucket/prefix``, ``memory://name``, ``file://...``, or a plain path.
:func:`~sk_template.datasets.load_image_folder` reads them all the same way
(the same classes, order, bad-file rules and cache), and
:func:`~sk_template.datasets.image_folder_to_dask` turns one into dask arrays
whose blocks are decoded on the workers of a cluster; the estimator's methods
then run there too, one task per block.

So that this example runs anywhere (and offline, when the documentation is
built), the "bucket" is fsspec's in-memory file system and the cluster's two
workers are threads of this process. With S3, the same code takes
``"s3://my-bucket/digits"`` and ``storage_options={"profile": "me"}`` (or
credentials from the environment), after ``pip install "sk_template[cloud]"``.
"""

# %%
# A folder in the bucket
# ----------------------
# scikit-learn's 1,797 handwritten digits, written as PNG files
# ``digits/<label>/<index>.png`` and copied into ``memory://digits``, with a
# file that is not an image at all, as buckets often have.
import tempfile
from pathlib import Path

import fsspec
import numpy as np
from sklearn.datasets import load_digits

from sk_template.datasets import list_classes, load_image_folder, write_image_folder

work = Path(tempfile.mkdtemp(prefix="sk_template_example_"))
digits = load_digits()
images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
local = write_image_folder(images, digits.target, work / "digits")

bucket = fsspec.filesystem("memory")
bucket.put(str(local), "/digits", recursive=True)
bucket.pipe_file("/digits/3/broken.png", b"not a PNG at all")
print(len(bucket.find("/digits")), "objects in memory://digits")

# %%
# Loading it
# ----------
# ``load_image_folder`` lists the folder once and reads the files with bounded
# concurrency. The broken file is left out with one warning
# (``on_error="skip"``), and the result is what the same folder on disk gives.
import warnings

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bunch = load_image_folder("memory://digits", on_error="skip", cache=False)
print(caught[0].message)
print(bunch.data.shape, bunch.filenames[0])
same = load_image_folder(local, cache=False)
print("the same pixels as the local folder:", np.array_equal(bunch.data, same.data))

# %%
# A dask array straight from the folder
# -------------------------------------
# ``image_folder_to_dask`` lists the folder and decodes its first image here
# (for the image size), and nothing else: each block of ``chunk_size`` rows
# decodes its own files when it is computed, on whichever worker runs it.
from dask.distributed import Client, LocalCluster

from sk_template.datasets import image_folder_to_dask

cluster = LocalCluster(
    n_workers=2,
    threads_per_worker=1,
    processes=False,  # threads: they see this process's memory:// folder
    dashboard_address=":0",  # any free port, never a fixed one
)
client = Client(cluster)
X, y = image_folder_to_dask("memory://digits", chunk_size=400, on_error="skip")
print(X)

# %%
# Skipped files make the blocks' lengths known only once they are computed
# (the chunk sizes are NaN until then). Decoding once and keeping the blocks
# on the workers with ``persist``, as one would before fitting and
# predicting, makes them cheap to learn.
import dask

X, y = dask.persist(X, y)
X.compute_chunk_sizes()
y.compute_chunk_sizes()
print("blocks of", X.chunks[0], "rows")

# %%
# Fit and predict where the blocks are
# ------------------------------------
# :func:`~sk_template.fit_dask` sums each block's classes on its worker; only
# the sums travel. ``predict`` on a dask array returns a dask array at once:
# one task per block, with the fitted model sent to each worker once.
from sklearn.metrics import accuracy_score

from sk_template import NearestMeanImageClassifier, fit_dask

classes = list_classes("memory://digits")
clf = fit_dask(NearestMeanImageClassifier(), X, y, classes=classes)
y_pred = clf.predict(X)
print(y_pred)
y_true, y_pred = dask.compute(y, y_pred)
print(f"accuracy on the cluster: {accuracy_score(y_true, y_pred):.4f}")
print(f"score, block by block:   {clf.score(X, y):.4f}")

in_memory = NearestMeanImageClassifier().fit(bunch.data, bunch.target)
print(
    "the model fit gives in memory:", np.allclose(clf.centroids_, in_memory.centroids_)
)

client.close()
cluster.close()

# %%
import shutil

shutil.rmtree(work)  # the example's temporary files
bucket.rm("/digits", recursive=True)
