"""Ctrl-C, SIGTERM and SIGHUP for the command: one line on stderr and exit
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), at any moment,
with no output file left half-written.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread
happens to be; the command's handler does the same for SIGTERM (``kill``, a
job scheduler's time limit, ``docker stop``) and SIGHUP (the terminal
closed), whose default would end the process at once and leave a writer's
temporary file behind.  ``KeyboardInterrupt`` unwinds the stack as usual, so
the writers' cleanup (``finally`` and ``except BaseException`` blocks)
removes their temporaries.

Except during an import.  Importing torch runs C++ code that calls back into
Python (``torch._C._c10d_init`` in ``torch.distributed``, for one); a
``KeyboardInterrupt`` raised in such a callback becomes a C++ exception
(``pybind11::error_already_set``) where nothing catches it, and the process
dies of SIGABRT (``terminate called after throwing an instance of
'pybind11::error_already_set'``), as a plain ``python -c "import torch"``
does on a Ctrl-C at that moment; numpy's import turns one into an
``ImportError``.  So while the main thread is importing a module (any
module: the handler looks for the import system's frame on the stack), the
handler only notes the signal, and a watcher thread sends it to the main
thread again once the import is over, where it is raised.
A Ctrl-C during ``import torch`` therefore takes effect when that import
ends, a second or two later at most.

The handler also notes which signal came, and whatever exception then ends
the command is reported as the signal it is (code that catches the
``KeyboardInterrupt`` on its way may turn it into another exception).

This module imports nothing heavy: it is in place before numpy and torch are.
"""

# SPDX-License-Identifier: BSD-3-Clause

import _thread
import contextlib
import signal
import sys
import threading

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
_deferred = None  # the watcher thread of a signal that came during an import
_reported = False  # whether report() has said it
# How often the watcher looks whether the main thread's import is over.
_POLL_S = 0.005


def _importing(frame):
    """Whether ``frame`` (the main thread's, where a handler runs) is inside
    an import: the import system runs every module's code, and creates every
    extension module, through ``importlib._bootstrap._call_with_frames_removed``."""
    while frame is not None:
        code = frame.f_code
        if (
            code.co_name == "_call_with_frames_removed"
            and "importlib" in code.co_filename
        ):
            return True
        frame = frame.f_back
    return False


def _deliver_after_import(signum, stop):
    """Wait until the main thread is not importing, then send ``signum`` to
    it again (its handler, run there, raises), unless ``stop`` is set: the
    command is over and its handlers are being put back."""
    main = threading.main_thread().ident
    while not stop.wait(_POLL_S):
        frame = sys._current_frames().get(main)
        if frame is None:  # the main thread is gone: nothing to interrupt
            return
        if not _importing(frame):
            # A signal, not _thread.interrupt_main: it also ends a system
            # call the main thread is blocked in (a sleep, a read).
            if hasattr(signal, "pthread_kill"):
                signal.pthread_kill(main, signum)
            else:  # pragma: no cover - Windows
                _thread.interrupt_main(signum)
            return


def _stop_deferred():
    """Stop the watcher of a deferred signal, if one runs, and wait for it."""
    if _deferred is not None:
        _deferred.stop.set()
        _deferred.join()


def _on_signal(signum, frame):
    global _seen, _deferred
    if _seen is None:
        _seen = signum
    if _importing(frame):
        if _deferred is None or not _deferred.is_alive():
            stop = threading.Event()
            _deferred = threading.Thread(
                target=_deliver_after_import,
                args=(signum, stop),
                name="sk-template-deferred-signal",
                daemon=True,
            )
            _deferred.stop = stop
            _deferred.start()
        return
    raise KeyboardInterrupt


def interrupted():
    """Whether one of the handled signals came during the command now running."""
    return _seen is not None


def report():
    """Say which signal ended the command on stderr (once per command, however
    many came); return 128 + its number (130 for Ctrl-C, also for a
    ``KeyboardInterrupt`` raised by other means)."""
    global _reported
    signum = _seen if _seen is not None else signal.SIGINT
    text = _SIGNALS.get(signal.Signals(signum).name, "interrupted")
    if not _reported:
        _reported = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            print(f"sk-template: {text}", file=sys.stderr, flush=True)
    return 128 + int(signum)


def _put_back(previous, program):
    """Put the previous handlers back (or, when ``program``, ignore the
    signals); a ``KeyboardInterrupt`` raised meanwhile by a signal still
    handled here does not stop it half-way, and is raised again once it is
    done."""
    pending = None
    while True:
        try:
            for signum, handler in previous.items():
                with contextlib.suppress(ValueError):
                    signal.signal(signum, signal.SIG_IGN if program else handler)
            break
        except KeyboardInterrupt as exc:
            pending = exc
    if pending is not None:
        raise pending


@contextlib.contextmanager
def handling_interrupts(program):
    """Handle the signals while the block runs (see the module docstring).

    A signal the process ignores (``nohup`` ignores SIGHUP, a shell's
    background job SIGINT) stays ignored.  After the block the previous
    handlers are put back, except that when ``program`` says this process is
    the command itself, the signals are then ignored: the command's work is
    over and its status decided, and a signal arriving while the interpreter
    shuts down can neither print a traceback (Ctrl-C) nor turn a finished
    command into a killed one (SIGTERM, SIGHUP).
    """
    global _seen, _reported, _deferred
    _seen, _reported, _deferred = None, False, None
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
        try:
            _stop_deferred()
        finally:
            _put_back(previous, program)
