"""sk_template: a fast, honest nearest-mean image classifier for scikit-learn.

Public names
------------
NearestMeanImageClassifier
    The estimator (``sk_template._classifier``).
datasets
    Image folders into ``X`` / ``y`` arrays (``sk_template.datasets``).
"""

# SPDX-License-Identifier: BSD-3-Clause

from ._classifier import NearestMeanImageClassifier
from ._parallel import fit_blocks, fit_dask
from ._persist import load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "NearestMeanImageClassifier",
    "__version__",
    "fit_blocks",
    "fit_dask",
    "load_model",
    "save_model",
]
