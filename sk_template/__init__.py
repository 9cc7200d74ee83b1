"""sk_template: a fast, honest nearest-mean image classifier for scikit-learn.

Public names
------------
NearestMeanImageClassifier
    The estimator.
ClassMeansDisplay
    Its class means drawn with matplotlib (the ``plot`` extra).
fit_blocks, fit_dask
    Fitting on data split across joblib or dask workers.
save_model, load_model
    Model files that cannot run code when loaded.
datasets
    Image folders into ``X`` / ``y`` arrays (``sk_template.datasets``).

Names are imported on first use, so ``import sk_template.datasets`` (and
each joblib worker that decodes images) does not pay for importing torch.
"""

# SPDX-License-Identifier: BSD-3-Clause

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ClassMeansDisplay": "._display",
    "NearestMeanImageClassifier": "._classifier",
    "fit_blocks": "._parallel",
    "fit_dask": "._parallel",
    "load_model": "._persist",
    "save_model": "._persist",
}

__all__ = [
    "ClassMeansDisplay",
    "NearestMeanImageClassifier",
    "__version__",
    "fit_blocks",
    "fit_dask",
    "load_model",
    "save_model",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name == "datasets":
        return importlib.import_module(".datasets", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*__all__, "datasets"])
