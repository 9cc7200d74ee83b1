"""Ctrl-C at random moments, many times, under load: every run of
``sk-template fit`` must end with status 0 (it finished first) or 130 and the
one line ``sk-template: interrupted``, never a traceback or another signal.

Run as a script (not collected by pytest)::

    python tests/stress/ctrl_c.py --tries 1000 --load 2

``--load N`` keeps N CPU-bound processes running beside the command, as a
busy machine would.  Prints a table of outcomes and exits 1 on any other
outcome, with its stderr.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=200)
    parser.add_argument("--load", type=int, default=2, help="CPU burners beside")
    parser.add_argument("--min-delay", type=float, default=0.05)
    parser.add_argument("--max-delay", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

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
    outcomes, bad = collections.Counter(), []
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tree = _tree(tmp)
            env["SK_TEMPLATE_DATA"] = str(Path(tmp) / "home")
            for i in range(args.tries):
                model = Path(tmp) / "out" / f"m{i}.npz"
                model.parent.mkdir(exist_ok=True)
                delay = rng.uniform(args.min_delay, args.max_delay)
                child = subprocess.Popen(
                    [sys.executable, "-c", SCRIPT, "fit", str(tree), "-o", str(model)]
                    + ["-q", "--no-cache"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                    text=True,
                )
                time.sleep(delay)
                child.send_signal(signal.SIGINT)
                _, err = child.communicate(timeout=300)
                rc = child.returncode
                good = (rc == 0 and err == "") or (
                    rc == 130 and err == "sk-template: interrupted\n"
                )
                outcomes[rc if good else f"{rc} (bad)"] += 1
                leftovers = [p.name for p in model.parent.iterdir() if p.name[0] == "."]
                if not good or leftovers:
                    bad.append((i, round(delay, 3), rc, err[-2000:], leftovers))
                    print(f"try {i}, delay {delay:.3f} s: rc {rc}\n{err}", flush=True)
                if (i + 1) % 100 == 0:
                    print(f"{i + 1} tries: {dict(outcomes)}", flush=True)
    finally:
        stop.set()
        for b in burners:
            b.join()
    print(
        f"{args.tries} tries in {time.monotonic() - started:.0f} s, load {args.load}, "
        f"delays {args.min_delay}-{args.max_delay} s: {dict(outcomes)}; "
        f"{len(bad)} bad"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
