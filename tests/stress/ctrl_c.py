"""Ctrl-C at random moments, many times, under load: every run of
``sk-template fit`` must end with status 0 (it finished first) or 130 and the
one line ``sk-template: interrupted``, never a traceback or another signal,
and leave no temporary file beside the model.

Run as a script (not collected by pytest)::

    python tests/stress/ctrl_c.py --tries 1000 --load 2

Each try starts the command as its console script does, in a process group
of its own, and sends SIGINT to the whole group, as a terminal's Ctrl-C
does.  The delay is drawn uniformly between 0 and 1.2 times the time an
uninterrupted run takes (measured first), so that the signals land during
the imports of numpy and torch, the loading, the fit, the write and the
interpreter's shutdown alike.

It is counted from the moment the command's signal handler is in place
(``sk_template.cli.main`` installs it; seen from ``/proc/<pid>/status``,
where SIGTERM turns up among the caught signals): before that, the
interpreter is starting and running the console script's first import
(about 30 ms), and a Ctrl-C gets Python's own default (the process dies of
SIGINT, or prints a ``KeyboardInterrupt`` traceback), which no package can
change.  ``--from-start`` counts from the process's start instead and
reports the tries that landed in that window on a line of their own.

``--load N`` keeps N CPU-bound processes running beside the command, as a
busy machine would.  Prints a table of outcomes (and the stderr of every bad
one, with the Python stack that faulthandler prints on a fatal signal) and
exits 1 on any bad outcome.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import collections
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the console script runs.
SCRIPT = "import sys\nfrom sk_template.cli import main\nsys.exit(main())\n"
# Bit of SIGTERM in /proc/<pid>/status's SigCgt: the command's handler.
_HANDLER_BIT = 1 << (signal.SIGTERM - 1)


def _burn(stop):
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1000003


def _tree(folder):
    import numpy as np

    from sk_template.datasets import write_image_folder

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(400, 16, 16), dtype=np.uint8)
    return write_image_folder(images, np.arange(400) % 4, Path(folder) / "pics")


def _default_signals():
    # A shell's background job starts with SIGINT ignored (nohup: SIGHUP),
    # and the command rightly leaves an ignored signal ignored: give it the
    # default, as in a terminal.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _start(argv, env):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,  # its own process group, as a terminal job
        preexec_fn=_default_signals,
    )


def _handler_in_place(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & _HANDLER_BIT)
    except OSError:
        pass
    return False


def _wait_for_handler(child, deadline=120):
    """Seconds from now until ``child``'s handler is in place (or it ended)."""
    start = time.monotonic()
    while child.poll() is None and not _handler_in_place(child.pid):
        if time.monotonic() - start > deadline:
            break
        time.sleep(0.0005)
    return time.monotonic() - start


def _sleep_watching(child, seconds):
    """Sleep ``seconds``, looking all the while whether ``child``'s handler
    is in place; return whether it ever was."""
    end = time.monotonic() + seconds
    seen = False
    while time.monotonic() < end:
        seen = seen or _handler_in_place(child.pid)
        time.sleep(0.0005)
    return seen or _handler_in_place(child.pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=200)
    parser.add_argument("--load", type=int, default=2, help="CPU burners beside")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--signal",
        default="INT",
        choices=["INT", "TERM", "HUP"],
        help="the signal sent (default INT, a Ctrl-C)",
    )
    parser.add_argument(
        "--min-delay", type=float, default=0.0, help="the shortest delay in seconds"
    )
    parser.add_argument(
        "--max-delay",
        type=float,
        default=None,
        help="the longest delay in seconds (default: 1.2 times a whole run)",
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="count the delay from the process's start, not from the handler",
    )
    args = parser.parse_args()

    sig = getattr(signal, "SIG" + args.signal)
    said = {"INT": "interrupted", "TERM": "terminated (SIGTERM)"}.get(
        args.signal, "hung up (SIGHUP)"
    )
    rng = random.Random(args.seed)
    stop = multiprocessing.Event()
    burners = [
        multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
        for _ in range(args.load)
    ]
    for b in burners:
        b.start()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    # A fatal signal (SIGABRT, SIGSEGV) then prints the Python stack it hit.
    env["PYTHONFAULTHANDLER"] = "1"
    outcomes, bad, early = collections.Counter(), [], collections.Counter()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tree = _tree(tmp)
            env["SK_TEMPLATE_DATA"] = str(Path(tmp) / "home")
            out = Path(tmp) / "out"
            out.mkdir()
            argv = ["fit", str(tree), "-q", "--no-cache", "-o"]
            # One run to the end: how long the delays may be.
            t0 = time.monotonic()
            child = _start([*argv, str(out / "whole.npz")], env)
            to_handler = _wait_for_handler(child)
            _, err = child.communicate(timeout=600)
            whole = time.monotonic() - t0
            if child.returncode != 0:
                raise SystemExit(f"an uninterrupted run failed:\n{err}")
            span = 1.2 * (whole if args.from_start else whole - to_handler)
            if args.max_delay is not None:
                span = args.max_delay
            print(
                f"an uninterrupted run: {whole:.2f} s, its handler in place after "
                f"{to_handler:.3f} s; delays {args.min_delay}-{span:.2f} s from the "
                + ("process's start" if args.from_start else "handler"),
                flush=True,
            )
            for i in range(args.tries):
                model = out / f"m{i}.npz"
                delay = rng.uniform(args.min_delay, span)
                child = _start([*argv, str(model)], env)
                if args.from_start:
                    # Whether the handler was ever in place before the signal.
                    handled = _sleep_watching(child, delay)
                else:
                    _wait_for_handler(child)
                    handled = True
                    time.sleep(delay)
                try:
                    os.killpg(child.pid, sig)
                except ProcessLookupError:  # it had finished
                    pass
                _, err = child.communicate(timeout=600)
                rc = child.returncode
                good = (rc == 0 and err == "") or (
                    rc == 128 + sig and err == f"sk-template: {said}\n"
                )
                leftovers = [p.name for p in out.iterdir() if p.name[0] == "."]
                if not handled and child.returncode != 0:
                    # Python's start-up, before any sk_template code ran.
                    early[rc if good else f"{rc} (Python's default)"] += 1
                    continue
                outcomes[rc if good else f"{rc} (bad)"] += 1
                if not good or leftovers:
                    bad.append((i, round(delay, 3), rc, err[-3000:], leftovers))
                    print(
                        f"try {i}, delay {delay:.3f} s: rc {rc}, leftovers "
                        f"{leftovers}\n{err}",
                        flush=True,
                    )
                if (i + 1) % 100 == 0:
                    print(f"{i + 1} tries: {dict(outcomes)}", flush=True)
    finally:
        stop.set()
        for b in burners:
            b.join()
    print(
        f"{args.tries} tries of SIG{args.signal} in "
        f"{time.monotonic() - started:.0f} s, load {args.load}: "
        f"{dict(outcomes)}; {len(bad)} bad"
    )
    if early:
        print(f"before the handler was in place (Python's start-up): {dict(early)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
