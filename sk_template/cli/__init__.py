"""The ``sk-template`` command: fit, evaluate, predict and look at pictures.

Every job composes :mod:`sk_template.datasets` (image folders in, arrays out),
:class:`~sk_template.NearestMeanImageClassifier` and the safe model files of
:func:`~sk_template._persist.save_model`; this package adds argument parsing,
plain-text reports and two pictures: the class means as a labelled grid of
images (:func:`render_means`) and an image's pixel values as a shaded table
(:func:`format_pixels`).

One module per job: ``_main`` (the parser and :func:`main`), ``_common``
(what the commands share), ``_report`` and ``_pictures``, and one module per
subcommand (``_demo``, ``_fit``, ``_evaluate``, ``_predict``, ``_means``,
``_pixels``, ``_fetch_mnist``).

Run ``sk-template --help`` (or ``python -m sk_template --help``).  Results go
to stdout, progress and messages to stderr.  Exit codes: 0 success, 1 a
one-line error about a path, model file or image (``--debug`` adds the
traceback), 2 a usage error.
"""

# SPDX-License-Identifier: BSD-3-Clause

from ._main import build_parser, main
from ._pictures import format_pixels, infer_image_shape, means_image_size, render_means
from ._report import evaluation, format_report

__all__ = [
    "build_parser",
    "evaluation",
    "format_pixels",
    "format_report",
    "infer_image_shape",
    "main",
    "means_image_size",
    "render_means",
]
