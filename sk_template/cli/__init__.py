"""The ``sk-template`` command: fit, evaluate, predict and look at pictures.

Every job composes :mod:`sk_template.datasets` (image folders in, arrays out),
:class:`~sk_template.NearestMeanImageClassifier` and the safe model files of
:func:`~sk_template._persist.save_model`; this package adds argument parsing,
plain-text reports and two pictures: the class means as a labelled grid of
images (:func:`render_means`) and an image's pixel values as a shaded table
(:func:`format_pixels`).

One module per job: ``_main`` (the parser and the command's body), ``_signals``
(Ctrl-C), ``_common`` (what the commands share), ``_report``, ``_pictures`` and
``_output``, and one module per subcommand (``_demo``, ``_fit``,
``_evaluate``, ``_predict``, ``_means``, ``_pixels``, ``_fetch_mnist``).

Run ``sk-template --help`` (or ``python -m sk_template --help``).  Results go
to stdout, progress and messages to stderr.  Exit codes: 0 success, 1 a
one-line error about a path, model file or image (``--debug`` adds the
traceback), 2 a usage error, 130 interrupted (Ctrl-C, at any moment: the one
line ``sk-template: interrupted``, and no output file left half-written), 143
terminated by SIGTERM and 129 by SIGHUP, likewise.

This module imports nothing heavy: :func:`main`, which the console script
calls, catches Ctrl-C before numpy and torch are imported, and the other
public names are imported on first use.
"""

# SPDX-License-Identifier: BSD-3-Clause

import importlib
import sys

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

_LAZY = {
    "build_parser": "._main",
    "evaluation": "._report",
    "format_pixels": "._pictures",
    "format_report": "._report",
    "infer_image_shape": "._pictures",
    "means_image_size": "._pictures",
    "render_means": "._pictures",
}


def main(argv=None):
    """Run the ``sk-template`` command; return its exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name; ``None`` means
        ``sys.argv[1:]``, and that this process is the command: once the
        command is done, Ctrl-C, SIGTERM and SIGHUP are ignored so that they
        cannot disturb the exit.

    Returns
    -------
    code : int
        0 on success, 1 after an error about a path, a model file or an image
        (reported on one line of stderr), 2 for a usage error, 130 when
        interrupted (Ctrl-C, reported as ``sk-template: interrupted``), also
        while the command is still importing its libraries; 143 (SIGTERM) and
        129 (SIGHUP) likewise.
    """
    try:
        from ._signals import handling_interrupts, interrupted, report
    except KeyboardInterrupt:  # before the command's handler is in place
        print("sk-template: interrupted", file=sys.stderr, flush=True)
        return 130
    try:
        with handling_interrupts(program=argv is None):
            try:
                from ._main import main as run

                code = run(argv)
            except KeyboardInterrupt:
                return report()
            except BaseException:
                if interrupted():  # the interrupt, turned into another exception
                    return report()
                raise
            # A signal that came during the last import, and was waiting
            # for it to end, ends the command (see _signals).
            return report() if interrupted() else code
    except KeyboardInterrupt:
        # A signal while the handlers were being put back.
        return report()


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
