"""Ctrl-C for the command: ``sk-template: interrupted`` and exit 130, at any
moment.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread
happens to be, and code that catches it there (a C extension importing a
module, a library retrying) may turn it into another exception: numpy's
import reports an ``ImportError``.  So the command's handler also notes that
the signal came, and whatever exception then ends the command is reported as
the interrupt it is.  ``KeyboardInterrupt`` still unwinds the stack as usual,
so the writers' cleanup (``finally`` and ``except BaseException`` blocks)
removes their temporaries.

This module imports nothing heavy: it is in place before numpy and torch are.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import signal
import sys

_seen = False


def _on_sigint(signum, frame):
    global _seen
    _seen = True
    raise KeyboardInterrupt


def interrupted():
    """Whether Ctrl-C came during the command now running."""
    return _seen


def report():
    """Say so on stderr, once; return the exit code 130."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print("sk-template: interrupted", file=sys.stderr, flush=True)
    return 130


@contextlib.contextmanager
def handling_interrupts(program):
    """Note Ctrl-C while the block runs (see the module docstring).

    ``program`` says this process is the command itself: after the block,
    SIGINT is then ignored, so that one arriving while the interpreter shuts
    down cannot print a traceback; otherwise the previous handler is put back.
    """
    global _seen
    _seen = False
    previous = None
    try:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            previous = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, signal.SIG_IGN if program else previous)
