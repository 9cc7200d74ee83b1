"""What the fuzz harnesses share: the definition of a finding, and the runner.

Each harness (``fuzz_*.py`` beside this file) is a script run with atheris
(the ``fuzz`` extra: ``pip install -e ".[fuzz]"``), given libFuzzer's flags
and corpus folders, from this folder::

    python fuzz_model_file.py -max_total_time=600 new/ corpus/model_file

libFuzzer adds the inputs that reach new code to the first folder (keep the
committed seed corpus second, so it is not written to), and stops on the
first finding, writing the input that caused it beside ``-artifact_prefix``
(default: the current folder); run the harness on that file alone to see it
again.  pytest does not collect this folder (see ``tests/conftest.py``).

A finding is

* any exception other than the reader's documented error types (the harness
  catches those; anything else propagates and libFuzzer reports it with its
  traceback);
* an input that takes more than 2 s (``-timeout=2``);
* an input under 1 MB (``-max_len``, which each harness sets lower) after
  which the process's peak resident memory is more than 300 MB above what it
  was after start-up: checked after every input from ``ru_maxrss``, the peak
  the kernel keeps (so an allocation freed at once counts too), and by
  libFuzzer's own ``-rss_limit_mb`` as a backstop.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os
import resource
import sys
import tempfile

import atheris

MEMORY_LIMIT_MB = 300
TIMEOUT_S = 2


class MemoryFinding(AssertionError):
    """An input made the process's peak memory grow past the limit."""


def _peak_mb():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(test_one_input, *, warm_up, max_len, custom_mutator=None):
    """Fuzz ``test_one_input`` (bytes -> None) with libFuzzer's flags from the
    command line, plus this module's limits unless they are given there.

    ``warm_up`` is a valid input, run once before the memory baseline is
    taken: torch's and numpy's first calls allocate what later calls reuse.
    """
    test_one_input(warm_up)
    baseline = _peak_mb()
    limit = baseline + MEMORY_LIMIT_MB

    def checked(data):
        test_one_input(data)
        peak = _peak_mb()
        if peak > limit:
            raise MemoryFinding(
                f"peak resident memory {peak:.0f} MB after an input of "
                f"{len(data)} bytes: more than {MEMORY_LIMIT_MB} MB above the "
                f"{baseline:.0f} MB after start-up"
            )

    argv = list(sys.argv)
    given = {arg.split("=")[0] for arg in argv[1:] if arg.startswith("-")}
    defaults = {
        "-timeout": TIMEOUT_S,
        "-rss_limit_mb": int(limit) + 1,
        "-max_len": max_len,
    }
    argv += [f"{flag}={value}" for flag, value in defaults.items() if flag not in given]
    kwargs = {} if custom_mutator is None else {"custom_mutator": custom_mutator}
    atheris.Setup(argv, checked, **kwargs)
    atheris.Fuzz()


def scratch_file(name):
    """A path for the harness's input file, in memory where there is a tmpfs."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return os.path.join(tempfile.mkdtemp(prefix="sk-fuzz-", dir=folder), name)
