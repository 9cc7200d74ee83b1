"""Progress bars for slow jobs, drawn by tqdm (a widget in a notebook).

``verbose`` decides where a bar may appear:

* ``None`` (the default of the loaders and the CLI): on a terminal or in a
  notebook, never in a log file or a pipe;
* ``True``: always, even into a log or a pipe;
* ``False``: never.

A bar appears only once a job has run for ``DELAY`` seconds, so quick loads
stay quiet.
"""

# SPDX-License-Identifier: BSD-3-Clause

# Seconds a job must run before its bar appears; tests lower it.
DELAY = 1.0


class Progress:
    """Count ``total`` items under the label ``desc``.

    A thin adapter over ``tqdm.auto.tqdm``: ``update`` takes a running total
    (the number of items finished so far), and ``verbose`` maps to tqdm's
    ``disable`` as the module docstring says. ``stream`` defaults to stderr.
    """

    def __init__(self, total, desc, *, verbose=None, stream=None):
        self.done = 0
        self._bar = None
        if verbose is False:
            return
        # Imported here: the datasets package (and every joblib worker that
        # decodes images) does not pay for it until a bar is wanted.
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=max(int(total), 0),
            desc=desc,
            unit="image",
            file=stream,
            delay=DELAY,
            # None: tqdm's "off unless the stream is a terminal"; a notebook's
            # widget treats it as on.
            disable=None if verbose is None else False,
            dynamic_ncols=True,
        )

    def update(self, done):
        """Record that ``done`` items (a running total) are finished."""
        if self._bar is not None and done > self.done:
            self._bar.update(done - self.done)
        self.done = done

    def close(self):
        """End the bar; it stays on screen only if it was ever shown."""
        if self._bar is not None:
            self._bar.close()
