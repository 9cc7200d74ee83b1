"""The PyTorch arithmetic behind :class:`~sk_template.NearestMeanImageClassifier`.

Two jobs, both streamed over row chunks so memory stays bounded whatever the
number of rows:

* :func:`class_stats` -- per-class weighted sums, weights and squared norms
  (float64 accumulators).  ``fit``, ``partial_fit``, ``sample_weight`` and
  merging results computed on several workers are all this one sum.
* :func:`pairwise_distances` and :func:`predict_labels` -- distances from
  every row to every centroid, and what the estimator's methods make of them
  (:class:`Posterior`: labels, probabilities), reduced on the device chunk
  by chunk so that only what a method returns comes back to the host.

Data moves to the device one chunk at a time in its stored dtype (uint8
stays uint8 until the chunk is on the device) and is upcast there.  Nothing
here knows about scikit-learn.  One module per job:

``_devices``
    devices, and the dtypes computed on them.
``_checks``
    checks of tensors and of computed results.
``_buffers``
    the scratch memory every computation takes (one pool, kept between
    calls, lent through a :class:`Workspace`).
``_chunks``
    row chunks: their size, the copy to the device and the upcast.
``_stats``
    fitting: class sums, medians, shrunken centroids.
``_distances``
    :class:`Centroids` prepared on a device and the distances to them.
``_manhattan``
    Manhattan distances.
``_refine``
    exact euclidean ranking: rows rounding could reorder, in float64.
``_reduce``
    reductions along the classes (masks, counts).
``_posterior``
    the probability model.
``_predict``
    prediction over all chunks.
``_results``
    per-chunk results collected on the host.
"""

# SPDX-License-Identifier: BSD-3-Clause

from ._checks import check_finite_result, check_materialized, check_tensor, is_tensor
from ._chunks import batch_rows, iter_chunks
from ._devices import compute_dtype, device_available, resolve_device
from ._distances import METRICS, Centroids
from ._posterior import Posterior
from ._predict import pairwise_distances, predict_labels
from ._stats import ClassStats, class_medians, class_stats, shrink_centroids

__all__ = [
    "METRICS",
    "Centroids",
    "ClassStats",
    "Posterior",
    "batch_rows",
    "check_finite_result",
    "check_materialized",
    "check_tensor",
    "class_medians",
    "class_stats",
    "compute_dtype",
    "device_available",
    "is_tensor",
    "iter_chunks",
    "pairwise_distances",
    "predict_labels",
    "resolve_device",
    "shrink_centroids",
]
