"""Kernels compiled with :func:`torch.compile` on a CPU, where it pays.

Some distances have no single fast torch operator: the Manhattan distance
of every row to every centroid is, in eager torch, a tile of minima written
to memory and read back (``_manhattan``), several times slower than a loop
that keeps a tile of rows and centroids in registers.  Inductor, PyTorch's
compiler, generates that loop from a few lines of torch, for the ISA of the
machine it runs on (AVX-512, AVX2, NEON), through the C++ compiler it finds.
The eager path stays: it is what runs on a GPU, without a compiler, or when
the compile fails, and the compiled kernel is checked against it.

Compiling costs seconds, once per process: about 20-30 s the first time on
a machine (a 2-core Xeon), 2-6 s once inductor's cache on disk holds the
kernel.  A user predicting 100 rows must not wait for that, so the
``SK_TEMPLATE_COMPILE`` environment variable says when it happens:

``auto`` (the default)
    a call runs eagerly while the eager time of this process, this call's
    included (estimated from the eager speed measured so far), stays under
    :data:`COMPILE_AFTER_SECONDS`, about what the first compile costs; past
    it the kernel is compiled, and every later call uses it.  So at most
    that much is spent in the slow path before paying for the compile (the
    rent-or-buy rule), one large call compiles at once, and a long-running
    process ends at the compiled speed.
``1`` (or ``always``)
    compile on first use (a service that predicts all day; a benchmark).
``0`` (or ``never``)
    eager only.

A compile that fails (no C++ compiler, an unsupported Python) warns once
and leaves the eager path in place for the rest of the process.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os
import threading
import warnings

import torch

ENV = "SK_TEMPLATE_COMPILE"

_MODES = {
    "": "auto",
    "auto": "auto",
    "1": "always",
    "always": "always",
    "true": "always",
    "yes": "always",
    "on": "always",
    "0": "never",
    "never": "never",
    "false": "never",
    "no": "never",
    "off": "never",
}

# Seconds the eager path may spend in a process before "auto" compiles: about
# what a compile costs the first time on a machine.
COMPILE_AFTER_SECONDS = 20.0
# The eager path's speed (units of work a second) assumed before it has run.
EAGER_SPEED = 4e9
# Compiles of one kernel a process may make (see CompiledKernel._run).
RECOMPILES = 32


def compile_mode():
    """``"auto"``, ``"always"`` or ``"never"``, from ``SK_TEMPLATE_COMPILE``."""
    value = os.environ.get(ENV, "auto")
    try:
        return _MODES[value.strip().lower()]
    except KeyError:
        raise ValueError(
            f"{ENV}={value!r} is not a compile mode. Use 'auto' (the default: "
            "compile once the eager path has run long enough to pay for it), "
            "'1' (compile on first use) or '0' (never compile)."
        ) from None


class CompiledKernel:
    """``fn`` (a function of CPU tensors) and, once it pays, its compiled
    version.

    Call :meth:`get` for the function to use on ``device`` for some work:
    the compiled one, or None for the eager path, whose time and work the
    caller reports with :meth:`ran_eager` (see the module's docstring for
    when compiling pays).

    Parameters
    ----------
    fn : callable
        Torch code with no graph break, compiled with dynamic shapes (one
        compile serves every shape).
    what : str
        What it computes, for the warning if it cannot be compiled.
    """

    def __init__(self, fn, what):
        self.fn = fn
        self.what = what
        self.eager_seconds = 0.0
        self.eager_work = 0
        self.failed = False
        self._compiled = None
        self._called = False
        self._lock = threading.Lock()

    def get(self, device, work):
        """The compiled function to call on tensors of ``device`` for
        ``work`` (in the units :meth:`ran_eager` counts), or None."""
        if device.type != "cpu" or self.failed:
            return None
        mode = compile_mode()
        if mode == "never":
            return None
        if mode == "auto" and self._compiled is None:
            speed = EAGER_SPEED
            if self.eager_seconds > 0:
                speed = self.eager_work / self.eager_seconds
            if self.eager_seconds + work / speed < COMPILE_AFTER_SECONDS:
                return None
        with self._lock:
            if self._compiled is None:
                self._compiled = torch.compile(self.fn, dynamic=True, fullgraph=True)
        return self._call

    def _call(self, *args):
        """The compiled function's result, or None if it failed (now or
        before: the caller takes its eager path, and a warning says why,
        once)."""
        if self.failed:
            return None
        try:
            if not self._called:
                # The first call compiles, importing torch modules that warn
                # about torch's own deprecated APIs: not the user's business.
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", category=DeprecationWarning, module=r"torch\."
                    )
                    out = self._run(*args)
                self._called = True
                return out
            return self._run(*args)
        except Exception as exc:  # noqa: BLE001 (any failure to compile)
            self.failed = True
            warnings.warn(
                f"torch.compile could not build the kernel of {self.what} "
                f"({type(exc).__name__}: {str(exc).strip()[:300]}); the slower "
                f"eager path is used from now on in this process. Without a "
                f"C++ compiler, install one (g++ or clang) for the fast "
                f"kernel; set {ENV}=0 not to try compiling.",
                RuntimeWarning,
                stacklevel=2,
            )
            return None

    def _run(self, *args):
        import torch._dynamo

        # One compile serves every shape, but dynamo compiles again for a
        # new number of threads, float64 rows, more than 4,096 features, or
        # a dimension of 1: room for RECOMPILES of them in a process (its
        # default, 8, is shared by every function compiled from the same
        # code).  Past the limit it would run ``fn`` eagerly without a word,
        # tile temporaries and all: an error instead, and the eager path.
        with torch._dynamo.config.patch(
            recompile_limit=RECOMPILES, fail_on_recompile_limit_hit=True
        ):
            return self._compiled(*args)

    def ran_eager(self, seconds, work):
        """Count ``seconds`` spent on ``work`` in the eager path instead."""
        self.eager_seconds += seconds
        self.eager_work += work
