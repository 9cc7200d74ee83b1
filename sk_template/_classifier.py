"""Nearest-mean ("pixel similarity") classification with a PyTorch core."""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import math
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._core import (
    METRICS,
    Centroids,
    ClassStats,
    Posterior,
    check_materialized,
    check_tensor,
    class_medians,
    class_stats,
    compute_dtype,
    device_available,
    is_tensor,
    pairwise_distances,
    predict_labels,
    resolve_device,
    shrink_centroids,
)
from ._dask import dask_dispatch, is_dask_array
from ._dask import score as dask_score

# Centroids prepared on a device, per estimator.  Kept outside the estimator's
# __dict__ so that it is never pickled, cloned or compared.
_DEVICE_CACHE = weakref.WeakKeyDictionary()


def check_weights(sample_weight, X):
    """``sample_weight`` as float64, checked against ``X``: one per row, none
    negative, not all zero.  None stays None (every row counts once)."""
    if sample_weight is None:
        return None
    if is_tensor(sample_weight):
        check_materialized(sample_weight, name="sample_weight")
    sample_weight = _check_sample_weight(
        _host_labels(sample_weight), X, dtype=np.float64, ensure_non_negative=True
    )
    with np.errstate(over="ignore"):
        total = sample_weight.sum()
    if not np.isfinite(total):
        raise ValueError(
            "sample_weight sums to more than the largest float64 "
            f"({np.finfo(np.float64).max:.3g}; its largest weight is "
            f"{sample_weight.max():.3g}): the class weights and means would be "
            "infinite. Weights are relative: divide them all by their largest."
        )
    return sample_weight


def runnable_device(device, model="This model", stacklevel=3):
    """``device`` where this machine has it, else ``"cpu"`` with a warning
    (a model fitted on a GPU, loaded on a machine without one)."""
    if device_available(device):
        return device
    warnings.warn(
        f"{model} was fitted with device={device!r}, which is not available here; "
        "it will run on the CPU (device='cpu').",
        UserWarning,
        stacklevel=stacklevel,
    )
    return "cpu"


def _host_labels(y, name="y"):
    """``y`` with a tensor brought to the host as a numpy array."""
    if not is_tensor(y):
        return y
    check_materialized(y, name=name)
    return y.detach().cpu().numpy()


def _count_labels(y):
    """The number of distinct labels in ``y``; None where ``y`` is not labels
    yet (the full validation then says what is wrong with it)."""
    try:
        return np.unique(column_or_1d(_host_labels(y))).size
    except (TypeError, ValueError):
        return None


def stats_out_of_range(stats):
    """Which of the class statistics float64 could not hold, or None:
    ``(field, "overflow")`` for sums (of the weights, the rows, their
    squares) past its largest value, ``("sq_sums", "underflow")`` for squares
    of non-zero differences that underflowed to zero.  Either way the fitted
    centroids, spread and probabilities would be NaN, infinite or wrong
    without a word (a fit on ``X * 1e200``, or on ``X * 1e-300``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        for field, value in (
            ("weights", stats.weights.sum()),
            ("sums", stats.sums),
            ("sq_sums", stats.sq_sums),
        ):
            if not np.isfinite(value).all():
                return field, "overflow"
    # A feature whose deviations from the reference row sum to non-zero has
    # a positive sum of squared deviations: zero means they underflowed.
    if ((stats.sq_sums == 0) & (stats.sums != 0).any(axis=0)).any():
        return "sq_sums", "underflow"
    return None


def _check_stats_in_range(stats):
    """Refuse a fit whose statistics are out of float64's range (see
    :func:`stats_out_of_range`), saying what to do about X."""
    out = stats_out_of_range(stats)
    if out is None:
        return
    if out[1] == "overflow":
        raise ValueError(
            "The sums of X (or of its squares) overflow float64: X has values "
            "too large in magnitude for the class means and the within-class "
            "spread to be computed. Scale X down (for example divide it by "
            "its largest absolute value) before fitting, and scale the data "
            "you predict on the same way."
        )
    raise ValueError(
        "The squares of X's values underflow float64 (a feature varies, yet "
        "its squared deviations sum to 0): X has values too small in magnitude "
        "for the within-class spread to be computed. Scale X up (for example "
        "divide it by its largest absolute value) before fitting, and scale "
        "the data you predict on the same way."
    )


def _warn_weightless(classes, weights):
    """Warn about classes in ``y`` whose every row has zero weight: they
    have no mean, and the model never predicts them."""
    empty = (weights <= 0) & (weights.sum() > 0)
    if empty.any():
        warnings.warn(
            f"Classes {classes[empty].tolist()!r} are in y but every one of "
            "their samples has zero sample_weight: they have no mean (a row of "
            "NaN in centroids_) and will never be predicted. Give them a "
            "positive weight, or drop their rows from the data.",
            UserWarning,
            stacklevel=4,
        )


def _read_only(array):
    """A read-only copy of ``array``: the device copies of the centroids are
    rebuilt when ``centroids_`` is replaced, and an edit in place would go
    unseen by them."""
    array = np.array(array)
    array.flags.writeable = False
    return array


def label_indices(y, classes):
    """Index of each label of ``y`` in the sorted ``classes``; a clear error
    for a label that is not one of them."""
    index = np.searchsorted(classes, y)
    index[index == classes.size] = 0
    unknown = classes[index] != y
    if unknown.any():
        raise ValueError(
            f"y contains labels {np.unique(y[unknown]).tolist()!r} that are not "
            f"in classes={classes.tolist()!r}."
        )
    return index


class NearestMeanImageClassifier(
    ClassNamePrefixFeaturesOutMixin, ClassifierMixin, TransformerMixin, BaseEstimator
):
    """Nearest-mean classifier for images, with its distance core in PyTorch.

    Each class is summarised by the mean of its training images (its
    *centroid*, the "ideal 3" of pixel similarity); a new image gets the label
    of the nearest centroid.  Fitting is a single pass that sums the rows of
    each class, so it also learns incrementally (:meth:`partial_fit`) and from
    data split across workers.  Distances run in PyTorch on the CPU or a GPU,
    streamed in row chunks so memory stays bounded for any number of rows.

    Parameters
    ----------
    metric : {"euclidean", "manhattan", "cosine"}, default="euclidean"
        Distance between an image and a centroid.  ``"euclidean"`` ranks
        classes as a root-mean-squared pixel difference does; ``"manhattan"``
        as the mean absolute pixel difference.

    centroid : {"mean", "median"}, default="mean"
        How a class is summarised.  ``"mean"`` (every metric) is a sum and a
        count, so it also learns incrementally and across workers.
        ``"median"`` is the feature-wise median, scikit-learn's
        ``NearestCentroid(metric="manhattan")`` centroid: it needs all the
        rows of a class at once, so :meth:`partial_fit` is not available.

    shrink_threshold : float, default=None
        Nearest shrunken centroids, exactly as
        :class:`sklearn.neighbors.NearestCentroid`: each centroid's
        standardized offset from the overall mean is soft-thresholded by this
        amount.  Data with no variance within the classes at all (every row
        equal to its class's centroid) cannot be shrunk: a ``ValueError``, as
        scikit-learn raises.

    priors : {"uniform", "empirical"} or array-like of shape (n_classes,), \
            default="uniform"
        Class prior probabilities, added to the log likelihoods of the
        probability model (see Notes).  ``"empirical"`` uses the class
        proportions of the training data.  An array that does not sum to 1 is
        normalised with a warning.  With the default, :meth:`predict` is the
        nearest centroid.

    device : str or torch.device, default="cpu"
        Where the arithmetic runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"``, ``"auto"`` (CUDA, then MPS, else CPU) or a
        :class:`torch.device`.  A device that is not present is a
        ``ValueError`` at fit.  The fitted model holds numpy arrays only: a
        model fitted on a GPU loads and predicts on a machine without one (it
        falls back to the CPU with a warning).

    batch_size : int or "auto", default="auto"
        Rows per chunk.  ``"auto"`` picks about 4 MiB of float32 per chunk
        on a CPU (1 MiB to fit, which stays in cache; 16 MiB of the uint8
        rows whose euclidean distances are integer products; 8 MiB on a
        GPU), and at most 2**22 distances (16 MiB in float32, 32 MiB as the
        float64 the probabilities are computed in; fewer rows for many
        classes).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.

    centroids_ : ndarray of shape (n_classes, n_features), float64
        The mean of each class.  A class declared to :meth:`partial_fit` but
        not seen yet has a row of NaN and is never predicted.

    class_count_ : ndarray of shape (n_classes,), float64
        Total sample weight of each class (the number of rows, without
        ``sample_weight``).

    class_prior_ : ndarray of shape (n_classes,)
        The class priors.

    within_class_std_dev_ : ndarray of shape (n_features,)
        Pooled within-class standard deviation of each feature (about the
        unshrunk centroids), as in scikit-learn's ``NearestCentroid``.

    within_class_std_ : float
        Pooled within-class standard deviation over all features, the scale
        of the probability model (see Notes).

    deviations_ : ndarray of shape (n_classes, n_features)
        Standardized offsets of the centroids from the overall mean, after
        shrinking (see ``shrink_threshold``).

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.neighbors.NearestCentroid : The same rule in scikit-learn, with
        median centroids for the Manhattan metric.

    Notes
    -----
    **Probabilities.**  :meth:`predict_proba` is a softmax of the log
    likelihoods of a generative model in which each class is an isotropic
    distribution around its centroid with the pooled within-class variance
    ``within_class_std_ ** 2`` per feature, estimated at fit from the same
    sums as the centroids:

    - ``"euclidean"``: Gaussian, ``log p(x | k) = -d_k**2 / (2 s**2)``;
    - ``"manhattan"``: Laplace of the same variance,
      ``log p(x | k) = -sqrt(2) d_k / s``;
    - ``"cosine"``: Gaussian offset from the ray through the centroid, for
      small angles ``log p(x | k) = -m d_k / s**2`` with ``m`` the mean
      squared norm of the training rows.

    ``log(class_prior_)`` is added to each class's log likelihood.  The log
    likelihood decreases with the distance, so with uniform priors the most
    probable class is always the nearest centroid; whatever the priors,
    :meth:`predict` is the argmax of :meth:`predict_proba`.  Pixels are
    far from independent, so these probabilities are sharp (over-confident);
    wrap the estimator in :class:`sklearn.calibration.CalibratedClassifierCV`
    where calibrated probabilities matter.

    **Chunking.**  ``X`` goes to the device ``batch_size`` rows at a time in
    its stored dtype and is upcast there: uint8 images are never copied whole
    into floating point.  Fitting sums each chunk's rows per class, and their
    squares, in float64 (float32 on MPS), except unweighted 8-bit integers
    and bool, whose sums float32 holds exactly; the chunk sums are
    accumulated in float64.  For integer images every sum is exact, so
    :meth:`partial_fit`, ``batch_size``, fitting across workers and integer
    ``sample_weight`` (against repeated rows) give bit for bit the model
    :meth:`fit` gives; for float input they agree to float64 rounding.
    Predicting computes bool, 8-bit integers, float16, bfloat16 and float32
    in float32, the rest (float64, and 16-, 32- and 64-bit integers) in
    float64.  Each chunk's distances are turned there into what the method
    returns (labels, probabilities, scores) and only that comes back to the
    host.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_template import NearestMeanImageClassifier
    >>> X = np.array([[0, 0], [0, 10], [250, 250], [240, 255]], dtype=np.uint8)
    >>> y = np.array([3, 3, 7, 7])
    >>> clf = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    >>> clf.centroids_
    array([[  0. ,   5. ],
           [245. , 252.5]])
    >>> clf.predict(np.array([[10, 20], [200, 230]], dtype=np.uint8))
    array([3, 7])
    """

    _parameter_constraints: dict = {
        "metric": [StrOptions(set(METRICS))],
        "centroid": [StrOptions({"mean", "median"})],
        "shrink_threshold": [Interval(Real, 0, None, closed="neither"), None],
        "priors": ["array-like", StrOptions({"uniform", "empirical"})],
        "device": [str, torch.device],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    def __init__(
        self,
        metric="euclidean",
        *,
        centroid="mean",
        shrink_threshold=None,
        priors="uniform",
        device="cpu",
        batch_size="auto",
    ):
        self.metric = metric
        self.centroid = centroid
        self.shrink_threshold = shrink_threshold
        self.priors = priors
        self.device = device
        self.batch_size = batch_size

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the class means.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Training images, one flattened image per row.  Any real dtype;
            uint8 stays uint8 until a chunk is on the device.

        y : array-like of shape (n_samples,)
            Class labels (ints, strings, ...).

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.  An integer weight counts a row that many
            times; a zero weight drops it.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        n_labels = None if isinstance(self.priors, str) else _count_labels(y)
        if n_labels:
            # A wrong number of priors is refused before X is read.
            self._check_priors(n_labels)
        with self._restored_on_error():
            X, y = self._validate_X_y(X, y, reset=True)
            # np.unique without return_inverse hashes instead of sorting every
            # label.
            classes = np.unique(y)
            if classes.size < 2:
                raise ValueError(
                    "NearestMeanImageClassifier needs samples of at least 2 "
                    f"classes in the data; got 1 class: {classes[0]!r}."
                )
            y_index = label_indices(y, classes)
            sample_weight = check_weights(sample_weight, X)
            stats = self._class_stats(X, y_index, classes.size, sample_weight)
            _warn_weightless(classes, stats.weights)
            medians = None
            if self.centroid == "median":
                medians = class_medians(X, y_index, classes.size, sample_weight)
            return self._set_state(classes, stats, medians)

    @contextlib.contextmanager
    def _restored_on_error(self):
        """Undo what ``validate_data(reset=True)`` set when a fit fails after
        it: a failed fit leaves the estimator as it was (fitted or not)."""
        names = ("n_features_in_", "feature_names_in_")
        saved = {name: vars(self)[name] for name in names if name in vars(self)}
        try:
            yield
        except BaseException:
            for name in names:
                vars(self).pop(name, None)
            vars(self).update(saved)
            raise

    def _check_incremental(self):
        if self.centroid != "mean":
            raise AttributeError(
                "partial_fit is not available with centroid='median': a median "
                "cannot be updated one batch at a time. Use centroid='mean', or "
                "fit on all the data at once."
            )
        return True

    @available_if(_check_incremental)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the class means with one batch of samples.

        Calling ``partial_fit`` on the parts of a data set, in any order and
        split, gives the model :meth:`fit` gives on the whole (to float
        rounding).

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            A batch of training images.

        y : array-like of shape (n_samples,)
            Their labels; each must be one of ``classes``.

        classes : array-like of shape (n_classes,), default=None
            Every label the model will know.  Required on the first call,
            and when given later it must be the same set.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, as in :meth:`fit`.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        # Fitted state is set only once a call succeeds, all of it at once.
        first_call = not hasattr(self, "_stats")
        if first_call and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit: the "
                "model has to know every label before it has seen them all."
            )
        if classes is not None:
            classes = np.unique(column_or_1d(np.asarray(classes)))
            if first_call:
                check_classification_targets(classes)
                if classes.size < 2:
                    raise ValueError(
                        "NearestMeanImageClassifier needs at least 2 classes; "
                        f"got classes={classes.tolist()!r}."
                    )
            elif not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes.tolist()!r} is not the same as the "
                    f"classes of the previous calls, {self.classes_.tolist()!r}."
                )
        if not first_call:
            classes = self.classes_
        if not isinstance(self.priors, str):
            self._check_priors(classes.size)  # before X is read
        with self._restored_on_error():
            X, y = self._validate_X_y(X, y, reset=first_call)
            y_index = label_indices(y, classes)
            sample_weight = check_weights(sample_weight, X)
            stats = self._class_stats(X, y_index, classes.size, sample_weight)
            if not first_call:
                stats = self._fitted_stats() + stats
            return self._set_state(classes, stats)

    def _class_stats(self, X, y_index, n_classes, sample_weight):
        return class_stats(
            X,
            y_index,
            n_classes,
            sample_weight,
            device=resolve_device(self.device),
            batch_size=self.batch_size,
        )

    def _fitted_stats(self):
        """The class statistics of the fit, as a :class:`ClassStats`."""
        return ClassStats(**self._stats)

    def _set_state(self, classes, stats, medians=None):
        """Set every fitted attribute from the labels and class statistics.

        Every value is computed first and the attributes are set together at
        the end, so an error leaves the estimator as it was.

        Parameters
        ----------
        classes : ndarray of shape (n_classes,)
            The sorted labels.
        stats : ClassStats
            Sums of the data (see :mod:`sk_template._core`).
        medians : tuple of ndarray, default=None
            ``(medians, scatter)`` from :func:`class_medians` when
            ``centroid="median"``.
        """
        if not (stats.weights > 0).any():
            raise ValueError(
                "sample_weight is zero for every sample: there is nothing to "
                "average. Pass at least one positive weight."
            )
        _check_stats_in_range(stats)
        n_classes, n_features = stats.sums.shape
        total = stats.weights.sum()
        if medians is None:
            centers, scatter = stats.means(), stats.within_class_scatter()
        else:
            centers, scatter = medians
        if self.shrink_threshold and not (scatter > 0).any():
            # Shrinking divides by the within-class spread: with none there
            # is nothing to shrink by (every ``ms`` is 0, and
            # shrink_centroids keeps the offsets it cannot standardize), so
            # shrink_threshold would silently do nothing.
            raise ValueError(
                "All features have zero variance within the classes (every row "
                "equals its class's centroid), and shrink_threshold divides by it. "
                "Fit on data that varies within a class, or set "
                "shrink_threshold=None. (scikit-learn's NearestCentroid raises "
                "this error when the data is constant, and returns NaN centroids "
                "otherwise.)"
            )
        class_prior = self._class_prior(stats.weights)
        dof = total - n_classes if total > n_classes else total
        within_class_std_dev = np.sqrt(scatter / dof)
        deviations, centroids = shrink_centroids(
            centers,
            stats.overall_mean(),
            within_class_std_dev,
            stats.weights,
            self.shrink_threshold,
        )
        variance = scatter.sum() / (n_features * total)
        if variance <= 0:
            # Every row equals its class centre: keep probabilities defined.
            variance = np.finfo(np.float64).eps * max(
                1.0, float(np.nanmean(centers**2))
            )
        vars(self).update(
            classes_=classes,
            # Plain numpy arrays, not the ClassStats object: pickles and skops
            # files then name no sk_template type but the estimator itself.
            _stats=dict(vars(stats)),
            _medians=medians,
            class_count_=stats.weights.copy(),
            class_prior_=class_prior,
            within_class_std_dev_=within_class_std_dev,
            deviations_=deviations,
            centroids_=_read_only(centroids),
            within_class_std_=math.sqrt(variance),
        )
        return self

    def _class_prior(self, weights):
        n_classes = weights.size
        if isinstance(self.priors, str):
            if self.priors == "uniform":
                return np.full(n_classes, 1.0 / n_classes)
            return weights / weights.sum()
        prior = self._check_priors(n_classes)
        if not np.isclose(prior.sum(), 1.0):
            warnings.warn(
                "The priors do not sum to 1. Normalizing such that it sums to one.",
                UserWarning,
                stacklevel=4,
            )
            prior = prior / prior.sum()
        return prior

    def _check_priors(self, n_classes):
        """An array ``priors`` as float64, checked against ``n_classes``."""
        prior = column_or_1d(np.asarray(self.priors, dtype=np.float64))
        if prior.size != n_classes:
            raise ValueError(
                f"priors has {prior.size} entries but there are {n_classes} "
                "classes; pass one prior per class, in the order of classes_."
            )
        if not np.isfinite(prior).all():
            raise ValueError(
                f"priors must be finite; got {prior.tolist()!r}. Pass one "
                "non-negative number per class."
            )
        if (prior < 0).any():
            raise ValueError("priors must be non-negative.")
        if prior.sum() <= 0:
            raise ValueError(
                "priors are all zero: no class could ever be predicted. Pass "
                "at least one positive prior."
            )
        return prior

    # --------------------------------------------------------------- validation
    def _validate_X(self, X, *, reset):
        if is_tensor(X):
            X = X.detach()
            if X.device.type == "cpu":
                if X.dtype == torch.bfloat16:  # numpy has no bfloat16
                    X = X.float()
                X = X.resolve_conj().resolve_neg().numpy()
            else:
                validate_data(self, X, skip_check_array=True, reset=reset)
                return check_tensor(X)
        # dtype="numeric": every real dtype is kept (uint8 images stay uint8),
        # object arrays become float64.
        return validate_data(self, X, reset=reset, dtype="numeric")

    def _validate_X_y(self, X, y, *, reset):
        y = _host_labels(y)
        if y is None:
            raise ValueError(
                "requires y to be passed, but the target y is None. "
                f"{type(self).__name__} is a classifier: pass the labels."
            )
        X = self._validate_X(X, reset=reset)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        return X, y

    # --------------------------------------------------------------- prediction
    def _device(self):
        return resolve_device(self.device)

    def _prepared_centroids(self, X):
        device = self._device()
        dtype = compute_dtype(X, device)
        # Keyed by the centroids array itself (read-only, so only replacing it
        # changes it), the metric, device and dtype.
        source, prepared = _DEVICE_CACHE.get(self, (None, {}))
        if source is not self.centroids_:
            source, prepared = self.centroids_, {}
            _DEVICE_CACHE[self] = (source, prepared)
        key = (self.metric, str(device), dtype)
        if key not in prepared:
            prepared[key] = Centroids(self.centroids_, self.metric, device, dtype)
        return prepared[key]

    def _map_distances(self, X, method=None):
        """Distances of ``X`` to the centroids, or what the ``method`` of
        :class:`~sk_template._core.Posterior` makes of them, chunk by chunk on
        the device."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        centroids = self._prepared_centroids(X)
        if method == "predict":  # the same labels, with less work
            return predict_labels(
                X, centroids, self._posterior(), batch_size=self.batch_size
            )
        reduce = None if method is None else getattr(self._posterior(), method)
        return pairwise_distances(
            X, centroids, batch_size=self.batch_size, reduce=reduce
        )

    @dask_dispatch
    def transform(self, X):
        """Distance from each sample to each class centroid.

        Parameters
        ----------
        X : {array-like, torch.Tensor, dask.array.Array} of shape \
                (n_samples, n_features)
            Images, one flattened image per row. Given a dask array, the
            result is a dask array computed lazily, one task per block of
            rows (see :ref:`distributed`).

        Returns
        -------
        distances : ndarray of shape (n_samples, n_classes)
            ``distances[i, k]`` is the ``metric`` distance from ``X[i]`` to
            ``centroids_[k]`` (infinite for a class with no samples yet).
        """
        return self._map_distances(X)

    def _posterior(self):
        """The probability model (see Notes) on the device."""
        cosine = self.metric == "cosine"
        return Posterior(
            self.metric,
            self.within_class_std_,
            # The fitted priors, not the parameter: set_params after fit
            # changes nothing until the next fit.
            self.class_prior_,
            self._device(),
            mean_sq_norm=self._fitted_stats().mean_sq_norm() if cosine else None,
        )

    @dask_dispatch
    def decision_function(self, X):
        """Log posterior of each class, up to a constant per sample.

        These are the log posteriors of the probability model in the Notes
        (for ``"euclidean"``, ``-d_k**2 / (2 * within_class_std_**2) +
        log(class_prior_[k])``), not the values of scikit-learn's
        ``NearestCentroid.decision_function``, which is the discriminant
        ``-sum_j ((x_j - c_kj) / s_j)**2 + 2 log(prior_k)`` with one standard
        deviation ``s_j`` per feature (``within_class_std_dev_``, over
        ``n - n_classes`` rows).  The two are scaled differently, and unless
        every ``s_j`` is the same they are not even proportional: when they
        are, and the priors are uniform, ours is ``n / (2 (n - n_classes))``
        times scikit-learn's, up to a constant per sample (0.75 on
        scikit-learn's toy data, 6 rows of 2 classes).  Compare the decisions
        (:meth:`predict`), not the values.

        Parameters
        ----------
        X : {array-like, torch.Tensor, dask.array.Array} of shape \
                (n_samples, n_features)
            Images, one flattened image per row. Given a dask array, the
            result is a dask array computed lazily, one task per block of
            rows (see :ref:`distributed`).

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Larger is more probable (with uniform priors: nearer).  For two
            classes, the log-odds of ``classes_[1]`` over ``classes_[0]``, as
            scikit-learn's binary classifiers return.
        """
        return self._map_distances(X, "decision_function")

    @dask_dispatch
    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, torch.Tensor, dask.array.Array} of shape \
                (n_samples, n_features)
            Images, one flattened image per row. Given a dask array, the
            result is a dask array computed lazily, one task per block of
            rows (see :ref:`distributed`).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._map_distances(X, "log_proba")

    @dask_dispatch
    def predict_proba(self, X):
        """Probability of each class under the model described in Notes.

        Parameters
        ----------
        X : {array-like, torch.Tensor, dask.array.Array} of shape \
                (n_samples, n_features)
            Images, one flattened image per row. Given a dask array, the
            result is a dask array computed lazily, one task per block of
            rows (see :ref:`distributed`).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; the largest entry is the class :meth:`predict`
            returns (with uniform priors, the nearest centroid).
        """
        return self._map_distances(X, "proba")

    @dask_dispatch
    def predict(self, X):
        """Label of the most probable class: with uniform priors, the nearest
        centroid.

        Only one label per row is kept, however many rows ``X`` has.

        Parameters
        ----------
        X : {array-like, torch.Tensor, dask.array.Array} of shape \
                (n_samples, n_features)
            Images, one flattened image per row. Given a dask array, the
            result is a dask array computed lazily, one task per block of
            rows (see :ref:`distributed`).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``classes_[argmax(predict_proba(X), axis=1)]``.
        """
        index = self._map_distances(X, "predict")
        return self.classes_[index]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``X`` and ``y``.

        Parameters
        ----------
        X : {array-like, torch.Tensor, dask.array.Array} of shape \
                (n_samples, n_features)
            Images, one flattened image per row. A dask array is scored block
            by block where its blocks are.
        y : array-like of shape (n_samples,)
            True labels (a dask array chunked like the rows of ``X``, or any
            array when ``X``'s chunk sizes are known).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            The fraction (weighted by ``sample_weight``) of rows whose
            :meth:`predict` is ``y``.
        """
        if is_dask_array(X):
            return dask_score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight=sample_weight)

    # ---------------------------------------------------------------- plumbing
    @property
    def _n_features_out(self):
        return self.classes_.size

    def __setstate__(self, state):
        # pickle, joblib and skops.io.load all restore the state through here.
        state = dict(state)
        if isinstance(state.get("_stats"), ClassStats):
            # A pickle from before the fitted state was plain numpy arrays.
            state["_stats"] = dict(vars(state["_stats"]))
        if "centroids_" in state:
            state["centroids_"] = _read_only(state["centroids_"])
        super().__setstate__(state)
        if "classes_" in state:
            self.device = runnable_device(state.get("device", "cpu"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
