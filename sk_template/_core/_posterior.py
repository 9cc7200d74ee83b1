"""The estimator's probability model: what a chunk's distances become."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import torch

from ._buffers import Workspace
from ._checks import check_finite_result
from ._devices import accumulator_dtype
from ._reduce import count_compared


class Posterior:
    """The estimator's probability model, evaluated on the device.

    Turns a chunk's distances into what a method of the estimator returns:
    the log posterior of each class up to a constant (``decision_function``),
    probabilities, their log, or labels.  :meth:`predict` is the argmax of
    the probabilities, the first of tied classes as :func:`numpy.argmax`
    picks it, but computes them only for rows whose two most probable
    classes are within rounding of each other.

    Parameters
    ----------
    metric : str
    std : float
        The pooled within-class standard deviation ``s``.
    class_prior : ndarray of shape (n_classes,)
    device : torch.device
    mean_sq_norm : float or None
        Mean squared norm of the training rows (``metric="cosine"`` only).
    """

    def __init__(self, metric, std, class_prior, device, mean_sq_norm):
        self.metric = metric
        self.std = float(std)
        if metric == "manhattan":
            self.factor = -math.sqrt(2.0) / self.std
        elif metric == "cosine":
            self.factor = -mean_sq_norm / self.std**2
        self.dtype = accumulator_dtype(device)
        prior = np.asarray(class_prior, dtype=np.float64)
        self.uniform = bool((prior == prior[0]).all())
        with np.errstate(divide="ignore"):
            log_prior = np.log(prior)
        self.uniform_log_prior = float(log_prior[0])
        # _SCORE_TIE, scaled to float32 where the scores are (MPS).
        self.tie = _SCORE_TIE * (
            torch.finfo(self.dtype).eps / torch.finfo(torch.float64).eps
        )
        self.log_prior = torch.as_tensor(log_prior, dtype=self.dtype).to(device)

    def log_posterior(self, distances):
        """Unnormalised log posterior of each class (may overwrite
        ``distances``)."""
        scores = distances.to(self.dtype)
        if self.metric == "euclidean":
            # -d^2 / (2 s^2), in the order of operations that keeps d / s small.
            scores.div_(self.std).square_().mul_(-0.5)
        else:
            scores.mul_(self.factor)
        scores.add_(self.log_prior)
        # Finite distances whose squares (or quotients by a tiny ``std``)
        # overflow: every class of the row at -inf, and NaN probabilities.
        check_finite_result(
            scores, reduce=torch.amax, dtype=scores.dtype, what="log posteriors"
        )
        return scores

    def decision_function(self, distances):
        """The log posterior; for two classes, the log-odds of the second."""
        scores = self.log_posterior(distances)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def proba(self, distances):
        """Probability of each class."""
        return torch.softmax(self.log_posterior(distances), dim=1)

    def log_proba(self, distances):
        """Log of :meth:`proba`."""
        return torch.log_softmax(self.log_posterior(distances), dim=1)

    def predict(self, distances, workspace=None):
        """Index of the most probable class: the argmax of :meth:`proba`,
        the first of tied ones.

        Without a probability where the two most probable classes are
        further apart than rounding (the softmax then keeps their order):
        the nearest centroid with uniform priors, else the argmax of the log
        posterior.  The rows where they are not, ties included, take the
        argmax of :meth:`proba` itself, so that the two cannot disagree
        (with uniform priors, two distances that differ give the same log
        posterior when ``within_class_std_`` is large enough).
        """
        if workspace is None:
            with Workspace() as own:
                return self.predict(distances, own)
        # Contiguous first: reductions along the rows of a transposed view
        # are slower than the copy.
        if self.uniform:
            values = distances.contiguous()
            best, index = values.min(dim=1)
            limit = self._tie_distance(best)[:, None]
            _, close = count_compared(torch.le, values, limit, 1, workspace)
        else:
            values = self.log_posterior(distances).contiguous()
            best, index = values.max(dim=1)
            # Rows with another score within rounding of their largest.
            limit = best.sub_(self.tie)[:, None]
            _, close = count_compared(torch.ge, values, limit, 1, workspace)
        near = torch.nonzero(close > 1).ravel()
        if near.numel():
            # (log_posterior may have overwritten the distances.)
            scores = self.log_posterior(values[near]) if self.uniform else values[near]
            index[near] = torch.softmax(scores, dim=1).argmax(dim=1)
        return index

    def squared_tie_margin(self, dtype):
        """``(a, b)``: with uniform priors and euclidean distances, a class
        whose squared distance, in ``dtype``, is above ``a * n + b``, ``n``
        the row's smallest, has its distance beyond :meth:`_tie_distance` of
        the nearest, whatever the square roots round to.

        A bound, loose by a relative ``16 eps`` (about 10 eps is needed) to
        cover the roundings of the square roots, of :meth:`_tie_distance` and
        of ``a * n + b`` itself, and by a few of the dtype's smallest normal
        values for subnormal distances.  Rows with no other class within it
        are decided by their smallest squared distance alone (see
        :func:`predict_labels`).
        """
        e, slack = self._slack()
        loose = 1 + 16 * torch.finfo(dtype).eps
        a = loose / (1 - e)
        b = 2 * self.std**2 * slack * a + 4 * torch.finfo(dtype).tiny
        return a, b

    def _slack(self):
        """``(e, slack)``: the relative rounding of a log posterior (a few
        units of its dtype's, taken as 16), and how far below the largest a
        log posterior may be and still tie with it (uniform priors)."""
        e = 16 * torch.finfo(self.dtype).eps / 2
        return e, self.tie + e * abs(self.uniform_log_prior)

    def _tie_distance(self, nearest):
        """Per row, a distance beyond which a class's log posterior is more
        than ``tie`` below the nearest class's, ``nearest`` (uniform
        priors), allowing for the rounding of the log posteriors (see
        :meth:`_slack`)."""
        d = nearest.to(self.dtype)  # what the log posteriors are computed in
        e, slack = self._slack()
        if self.metric == "euclidean":
            # 0.5 (d_k^2 - d^2) / s^2 <= slack + e (0.5 d_k^2 / s^2 + |lp|)
            limit = d.square().add_(2 * self.std**2 * slack).div_(1 - e).sqrt_()
        else:
            # |f| (d_k - d) <= slack + e (|f| d_k + |lp|)
            factor = abs(self.factor)
            limit = d.add(slack / factor if factor > 0 else math.inf).div_(1 - e)
        # Rounded up into the distances' dtype: a bound, never below.
        limit = limit.to(nearest.dtype)
        return torch.nextafter(limit, torch.full_like(limit, math.inf))


# Log posteriors closer than this may be equal once turned into
# probabilities (exp and the division round to 2**-53 relative): such rows
# are decided by the probabilities themselves.
_SCORE_TIE = 2.0**-40
