"""A dependency-free progress bar on stderr that only shows up for slow loads."""

import sys
import time

# Seconds a task must run before the bar appears; tests lower it.
DELAY = 1.0
_REDRAW = 0.1
_WIDTH = 30


class Progress:
    """Count ``total`` items, drawing a bar once ``DELAY`` seconds have passed.

    Nothing is written when ``verbose`` is false or the task ends before the
    delay, so quick loads and test runs stay quiet.
    """

    def __init__(self, total, desc, *, verbose=True, stream=None):
        self.total = max(int(total), 1)
        self.desc = desc
        self.verbose = bool(verbose)
        self.stream = stream
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._shown = False
        self.done = 0

    def update(self, done):
        """Record that ``done`` items (a running total) are finished."""
        self.done = done
        if not self.verbose:
            return
        now = time.perf_counter()
        if now - self.start < DELAY or now - self._last_draw < _REDRAW:
            return
        self._draw(now)

    def _draw(self, now):
        stream = self.stream if self.stream is not None else sys.stderr
        frac = min(self.done / self.total, 1.0)
        filled = int(round(frac * _WIDTH))
        bar = "#" * filled + "-" * (_WIDTH - filled)
        stream.write(
            f"\r{self.desc}: [{bar}] {frac:4.0%} {self.done}/{self.total}"
            f" [{now - self.start:.1f}s]"
        )
        stream.flush()
        self._last_draw = now
        self._shown = True

    def close(self):
        """Draw the final state and end the line, if the bar was ever shown."""
        if self._shown:
            self._draw(time.perf_counter())
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write("\n")
            stream.flush()
