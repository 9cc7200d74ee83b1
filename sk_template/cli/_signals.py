"""Ctrl-C, SIGTERM and SIGHUP for the command: one line on stderr and exit
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), at any moment,
with no output file left half-written.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread
happens to be; the command's handler does the same for SIGTERM (``kill``, a
job scheduler's time limit, ``docker stop``) and SIGHUP (the terminal
closed), whose default would end the process at once and leave a writer's
temporary file behind.  Code that catches the ``KeyboardInterrupt`` on its
way (a C extension importing a module, a library retrying) may turn it into
another exception: numpy's import reports an ``ImportError``.  So the handler
also notes which signal came, and whatever exception then ends the command is
reported as the signal it is.  ``KeyboardInterrupt`` still unwinds the stack
as usual, so the writers' cleanup (``finally`` and ``except BaseException``
blocks) removes their temporaries.

This module imports nothing heavy: it is in place before numpy and torch are.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import signal
import sys

# The signals handled, and what the command says when one ends it.
_SIGNALS = {
    name: text
    for name, text in (
        ("SIGINT", "interrupted"),
        ("SIGTERM", "terminated (SIGTERM)"),
        ("SIGHUP", "hung up (SIGHUP)"),
    )
    if hasattr(signal, name)
}
_seen = None  # the number of the signal that came, if one did


def _on_signal(signum, frame):
    global _seen
    if _seen is None:
        _seen = signum
    raise KeyboardInterrupt


def interrupted():
    """Whether one of the handled signals came during the command now running."""
    return _seen is not None


def report():
    """Say which signal ended the command on stderr; return 128 + its number
    (130 for Ctrl-C, also for a ``KeyboardInterrupt`` raised by other means)."""
    signum = _seen if _seen is not None else signal.SIGINT
    text = _SIGNALS.get(signal.Signals(signum).name, "interrupted")
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"sk-template: {text}", file=sys.stderr, flush=True)
    return 128 + int(signum)


@contextlib.contextmanager
def handling_interrupts(program):
    """Handle the signals while the block runs (see the module docstring).

    A signal the process ignores (``nohup`` ignores SIGHUP, a shell's
    background job SIGINT) stays ignored.  After the block the previous
    handlers are put back, except that when ``program`` says this process is
    the command itself, SIGINT is then ignored, so that a Ctrl-C arriving
    while the interpreter shuts down cannot print a traceback (SIGTERM's and
    SIGHUP's defaults end the process silently).
    """
    global _seen
    _seen = None
    previous = {}
    try:
        for name in _SIGNALS:
            signum = getattr(signal, name)
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _on_signal)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError):
                quiet = program and signum == signal.SIGINT
                signal.signal(signum, signal.SIG_IGN if quiet else handler)
