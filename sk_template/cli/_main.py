"""The ``sk-template`` parser and ``main``: one subcommand per module, errors
as one line, exit codes."""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import contextlib
import os
import sys
import traceback
import warnings

from . import (
    _demo,
    _evaluate,
    _fetch_mnist,
    _fit,
    _means,
    _pixels,
    _predict,
)
from ._common import PROG, Console, one_line
from ._signals import interrupted, report

# The subcommands, in the order ``--help`` lists them: each module has NAME,
# HELP, optionally DESCRIPTION, add_arguments(parser) and run(args, console).
COMMANDS = (_demo, _fit, _evaluate, _predict, _means, _pixels, _fetch_mnist)


def build_parser():
    """The :class:`argparse.ArgumentParser` of the ``sk-template`` command."""
    from .. import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress or status messages on stderr",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "A nearest-mean ('pixel similarity') image classifier: fit it on a "
            "folder of images (root/<class>/<image> or root/<split>/<class>/"
            "<image>), evaluate it, predict, and look at what it learned."
        ),
        epilog=f"Start with: {PROG} demo",
        parents=[common],
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        p = sub.add_parser(
            command.NAME,
            help=command.HELP,
            description=getattr(command, "DESCRIPTION", command.HELP),
            parents=[common],
        )
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


@contextlib.contextmanager
def _warnings_as_messages(console):
    """Show warnings as one ``sk-template: warning: ...`` line each."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv=None):
    """Run the ``sk-template`` command; return its exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name; ``None`` means
        ``sys.argv[1:]``.

    Returns
    -------
    code : int
        0 on success, 1 after an error about a path, a model file or an image
        (reported on one line of stderr), 2 for a usage error, 130 when
        interrupted, 143 when terminated (SIGTERM), 129 on SIGHUP.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    console = Console(quiet=getattr(args, "quiet", False))
    debug = getattr(args, "debug", False)
    from ..datasets import ImageDecodeError

    try:
        with _warnings_as_messages(console):
            return args.func(args, console) or 0
    except KeyboardInterrupt:
        return report()
    except BrokenPipeError as exc:
        if interrupted():
            return report()
        if exc.filename is not None:  # an output file's reader, not stdout's
            print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr, flush=True)
            return 1
        # The reader of stdout went away (``sk-template predict ... | head``):
        # stop quietly, and keep Python from failing again at exit.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except MemoryError as exc:  # one line, naming the flag that helps
        text = one_line(exc) if str(exc) else "out of memory (MemoryError)"
        if "--size" not in text:
            text += (
                "; pass --size HxW (e.g. --size 64x64) to resize the images "
                "to fewer pixels as they are decoded"
            )
        print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)
        return 1
    except (OSError, ValueError, ImageDecodeError) as exc:
        if interrupted():  # Ctrl-C, turned into another error on its way
            return report()
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
