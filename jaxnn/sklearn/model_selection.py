"""Drop-in :class:`GridSearchCV` and :class:`RandomizedSearchCV` that train jaxnn networks as populations.

They are scikit-learn's own classes (subclasses of ``sklearn.model_selection.GridSearchCV`` and
``RandomizedSearchCV``): the same constructor arguments, the same fitted attributes (``cv_results_``,
``best_index_``, ``best_params_``, ``best_score_``, ``best_estimator_``, ``refit_time_``, ``n_splits_``,
``scorer_``, ``multimetric_``), the same ``predict``/``score``/… delegation.  Only how the candidates ×
folds are trained changes, and only where jaxnn can train them together:

* When the estimator is a :class:`~jaxnn.NeuralNetClassifier`/:class:`~jaxnn.NeuralNetRegressor`, alone or
  as the last step of a ``Pipeline``, every candidate × fold is built as scikit-learn builds it
  (``clone(estimator).set_params(**candidate)``, the fold's rows from ``cv.split``), the steps before the
  network (if any) are fitted on the training fold (``fit_transform``, as ``Pipeline.fit`` does; once per
  fold for all the candidates that set only the network's parameters, which share those fitted steps), and all
  the networks are trained by one call of :func:`jaxnn.fit_estimators`, which trains networks
  that share a compiled configuration as one population (a grid over ``learning_rate_init`` × ``alpha`` is
  one population; a grid over ``hidden_layer_sizes`` is one population per architecture).  Each network
  ends up as its own ``fit`` would have left it (weights equal up to float rounding), so the scores are
  scikit-learn's search's up to float32 rounding, which a long or nearly diverging fit can magnify (float64
  input: float64 rounding).
* Scoring (single and multi-metric ``scoring``), ``return_train_score``, ``error_score`` (a number:
  ``FitFailedWarning`` and that score; ``'raise'``: the first failed fit's own exception in scikit-learn's
  order, raised once the population has trained), ``refit`` (``True``, a metric name, a callable or
  ``False``) and ``cv_results_`` are scikit-learn's own code (``BaseSearchCV._format_results``,
  ``_select_best_index``, ``_score``, ``_warn_or_raise_about_fit_failures``, through
  :mod:`jaxnn.sklearn.internals`).  The refit of
  ``best_estimator_`` is a plain lone ``fit``.
* ``fit_time`` in ``cv_results_`` is the fold's own preprocessing time plus an equal share of the
  population training time (the ``fit_estimators`` call's wall time divided by the number of networks it
  trained); ``score_time`` is measured per fold as scikit-learn does.
* ``n_jobs`` and ``pre_dispatch`` are accepted and ignored on this path (the population is the
  parallelism); ``verbose > 0`` prints scikit-learn's one-line summary, not the per-fit ``[CV] END`` lines
  that scikit-learn's ``verbose >= 2`` adds.

Everything else runs scikit-learn's own loop unchanged (``super().fit``): another estimator, no ``y``, fit
parameters other than the network's ``sample_weight`` (for a ``Pipeline``: ``<last step>__sample_weight``
and any parameter of the earlier steps), fit parameters with metadata routing enabled (``groups`` is fine:
it goes to the splitter), a verbose ``Pipeline`` or one with ``transform_input``, a ``Pipeline`` with
scikit-learn callbacks (its task tree has the pipeline's steps), and subclasses that override ``_run_search``.
A network with callbacks (``set_callbacks`` on the search, scikit-learn 1.9+) trains as a population, in
scikit-learn's task tree (:class:`jaxnn.sklearn.callbacks.SearchTasks`): each candidate × fold's network reports
its epochs between the population's compiled chunks.  Candidates that swap the network step for another estimator are
fitted one by one beside the population.

Example:
  >>> from sklearn.pipeline import make_pipeline
  >>> from sklearn.preprocessing import StandardScaler
  >>> from jaxnn import NeuralNetClassifier
  >>> from jaxnn.model_selection import GridSearchCV
  >>> pipe = make_pipeline(StandardScaler(), NeuralNetClassifier((10,), max_iter=200, random_state=0))
  >>> grid = {"neuralnetclassifier__learning_rate_init": [0.003, 0.01, 0.03],
  ...         "neuralnetclassifier__alpha": [1e-4, 1e-2]}
  >>> search = GridSearchCV(pipe, grid, cv=5).fit(X, y)  # 30 networks, trained as one population
"""

from __future__ import annotations

import time
import traceback
import warnings
from contextlib import ExitStack
from itertools import product
from typing import Any, NamedTuple

from sklearn import get_config
from sklearn import model_selection as sklearn_model_selection
from sklearn.base import clone, is_classifier
from sklearn.model_selection import ParameterGrid, ParameterSampler, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import indexable

# scikit-learn's building blocks of BaseSearchCV.fit and _fit_and_score (private: through the adapter, so that
# scores, warnings, errors and cv_results_ come from scikit-learn's own code).  tests/test_model_selection.py
# runs scikit-learn's own search tests against the classes below.
from jaxnn.sklearn.base import fit_estimators
from jaxnn.sklearn.callbacks import SearchTasks
from jaxnn.sklearn.estimators import NeuralNetClassifier, NeuralNetRegressor
from jaxnn.sklearn.internals import (
    callbacks_in_use,
    check_method_params,
    check_refit_for_multimetric,
    fit_context,
    format_results,
    get_scorers,
    insert_error_scores,
    is_multimetric,
    num_samples,
    routed_fit_params,
    runs_own_search,
    safe_split,
    score,
    scorers_of,
    select_best_index,
    set_checked_cv,
    warn_or_raise_about_fit_failures,
)

__all__ = ["GridSearchCV", "RandomizedSearchCV"]

_NETWORK_TYPES = (NeuralNetClassifier, NeuralNetRegressor)
_WEIGHT = "sample_weight"
# ParameterSampler's warning when a RandomizedSearchCV's grid holds fewer candidates than n_iter (a regex)
SMALL_SPACE_WARNING = r"The total space of parameters \d+ is smaller than n_iter"


# --------------------------------------------------------------------------------------------------
# Which candidates train in the population, and how.


class _Layout(NamedTuple):
    """Where the jaxnn network sits in a candidate's estimator and which fit parameters go where.

    ``in_pipeline`` says whether the estimator is a ``Pipeline`` whose last step is the network (False: the
    estimator is the network); ``preprocessing_steps`` is the number of ``Pipeline`` steps before the network
    (0 when the estimator is the network, or a pipeline of the network alone); ``weight_param`` is the fit
    parameter that carries the network's ``sample_weight``.
    """

    in_pipeline: bool
    preprocessing_steps: int
    weight_param: str


def _is_network(estimator) -> bool:
    # Exact types: a subclass may override fit, which the population would bypass.
    return type(estimator) in _NETWORK_TYPES


def _population_layout(estimator, fit_param_names) -> _Layout | None:
    """The :class:`_Layout` of ``estimator`` if its fits can join a population, else None.

    A jaxnn network qualifies with no fit parameter but ``sample_weight``; a plain ``Pipeline`` (not
    verbose, no ``transform_input``) whose last step is a jaxnn network qualifies with any fit parameter
    of its earlier steps (``step__param``) and the network's ``<last>__sample_weight``.
    """
    names = set(fit_param_names)
    if _is_network(estimator):
        return _Layout(False, 0, _WEIGHT) if names <= {_WEIGHT} else None
    if type(estimator) is not Pipeline or estimator.verbose or getattr(estimator, "transform_input", None):
        return None
    try:
        *preprocessing, (last_name, last) = estimator.steps
        preprocessing_names = {name for name, _ in preprocessing}
    except (TypeError, ValueError):  # malformed steps: Pipeline.fit, in scikit-learn's loop, says what is wrong
        return None
    if not _is_network(last):
        return None
    weight_param = f"{last_name}__{_WEIGHT}"
    if not all(name == weight_param or name.partition("__")[0] in preprocessing_names for name in names):
        return None
    return _Layout(True, len(preprocessing), weight_param)


class _FittedPreprocessing(NamedTuple):
    """The steps before the network, fitted on a training fold, and what they made of its rows."""

    steps: list[tuple[str, Any]]  # the Pipeline's (name, fitted transformer) pairs
    output: Any  # their fit_transform of the fold's X: the network's input


class _Member(NamedTuple):
    """One candidate × fold whose network joins the population."""

    fit_index: int  # its place in the candidate-major list of fits
    network: NeuralNetClassifier | NeuralNetRegressor
    fit_args: tuple  # (X, y) or (X, y, sample_weight) for the network's fit
    preprocessing_seconds: float  # building it and fitting the steps before the network


def _network_data(
    estimator, layout: _Layout, X_train, y_train, fold_params: dict, fitted: _FittedPreprocessing | None = None
) -> tuple[NeuralNetClassifier | NeuralNetRegressor, tuple, _FittedPreprocessing | None]:
    """Fit the steps before the network on the training fold (as ``Pipeline.fit`` does), or take them already
    ``fitted``; returns the network (the estimator, or the pipeline's last step), the arguments of its ``fit``
    — ``(X, y)`` or ``(X, y, sample_weight)`` — and the fitted steps before it (None without any)."""
    params = dict(fold_params)
    weight = params.pop(layout.weight_param, None)
    if not layout.in_pipeline:
        network, inputs = estimator, X_train
    elif layout.preprocessing_steps == 0:  # Pipeline.fit fits its only step on X as it is
        network, inputs = estimator.steps[-1][1], X_train
    else:
        if fitted is None:
            # The steps before the network, then the network's place as 'passthrough', so that Pipeline checks
            # them as the intermediate steps they are (a step without transform is Pipeline's TypeError, not an
            # AttributeError of a pipeline ending in it).  It shares the step objects with the pipeline.
            preprocessing = estimator[: layout.preprocessing_steps + 1]
            preprocessing.steps[-1] = (preprocessing.steps[-1][0], "passthrough")
            output = preprocessing.fit_transform(X_train, y_train, **params)
            # Read the steps after fitting: with memory, fit_transform replaces them by fitted clones.
            fitted = _FittedPreprocessing(preprocessing.steps[:-1], output)
        steps, inputs = fitted
        # With Pipeline(memory=...), fitting clones the steps: put the fitted ones into the pipeline.
        estimator.steps = [*steps, *estimator.steps[layout.preprocessing_steps :]]
        network = estimator.steps[-1][1]
    return network, (inputs, y_train) if weight is None else (inputs, y_train, weight), fitted


def _leaves_preprocessing_alone(candidate: dict, estimator, layout: _Layout) -> bool:
    """Whether ``candidate`` sets only parameters of the network step, so that the steps before it are the
    base pipeline's for every such candidate and, fitted once per fold, serve them all."""
    preprocessing_names = {name for name, _ in estimator.steps[: layout.preprocessing_steps]}
    return all("__" in key and key.partition("__")[0] not in preprocessing_names for key in candidate)


class _Fitted(NamedTuple):
    """One candidate × fold after training: the estimator, the exception its fit raised (or None), seconds."""

    estimator: Any
    error: BaseException | None
    fit_time: float


def _fit_candidates(base_estimator, X, y, candidates, layouts, splits, fit_params, tasks: SearchTasks) -> list[_Fitted]:
    """Fit every candidate on every training fold, candidate-major (scikit-learn's order).

    Candidates with a :class:`_Layout` train their networks in one :func:`fit_estimators` call; the others
    are fitted one by one, as ``_fit_and_score`` fits them.  Each fit is the task ``tasks`` gives it.
    """
    fitted: list[_Fitted] = []
    members: list[_Member] = []
    preprocessing_by_fold: dict[int, _FittedPreprocessing] = {}  # the base pipeline's, fitted on each fold
    with ExitStack() as evaluations:  # the population's tasks end once it has trained
        for (params, layout), (fold, (train, _)) in product(zip(candidates, layouts, strict=True), enumerate(splits)):
            estimator = clone(base_estimator).set_params(**clone(params, safe=False))
            fold_params = check_method_params(X, params=fit_params, indices=train)
            X_train, y_train = safe_split(estimator, X, y, train)
            start = time.perf_counter()
            try:
                if layout is None:
                    with tasks.evaluating(len(fitted), estimator, X_train, y_train, fold_params):
                        estimator.fit(X_train, y_train, **fold_params)
                else:
                    shared = layout.preprocessing_steps > 0 and _leaves_preprocessing_alone(params, estimator, layout)
                    reused = preprocessing_by_fold.get(fold) if shared else None
                    network, data, steps = _network_data(estimator, layout, X_train, y_train, fold_params, reused)
                    if shared:
                        preprocessing_by_fold[fold] = steps
                    evaluations.enter_context(tasks.evaluating(len(fitted), network, X_train, y_train, fold_params))
                    members.append(_Member(len(fitted), network, data, time.perf_counter() - start))
            except Exception as error:  # scikit-learn's error_score decides, in _score_fitted
                fitted.append(_Fitted(estimator, error, time.perf_counter() - start))
            else:
                fitted.append(_Fitted(estimator, None, time.perf_counter() - start))
        if members:
            start = time.perf_counter()
            outcomes = fit_estimators([m.network for m in members], [m.fit_args for m in members])
            share = (time.perf_counter() - start) / len(members)
            for member, outcome in zip(members, outcomes, strict=True):
                error = outcome if isinstance(outcome, BaseException) else None
                fitted[member.fit_index] = _Fitted(
                    fitted[member.fit_index].estimator, error, member.preprocessing_seconds + share
                )
    return fitted


def _score_fitted(fitted: _Fitted, X, y, test, train, *, scorer, score_params, return_train_score, error_score) -> dict:
    """One ``_fit_and_score`` result for a trained candidate × fold: scikit-learn's keys, scorer and rules."""
    estimator = fitted.estimator
    X_test, y_test = safe_split(estimator, X, y, test, train)
    result = {"fit_error": None, "n_test_samples": num_samples(X_test), "fit_time": fitted.fit_time}
    if fitted.error is not None:
        if error_score == "raise":
            raise fitted.error
        failed = {name: error_score for name in scorers_of(scorer)} if is_multimetric(scorer) else None
        result["fit_error"] = "".join(traceback.format_exception(fitted.error))
        result["test_scores"] = error_score if failed is None else failed
        if return_train_score:
            result["train_scores"] = error_score if failed is None else dict(failed)
        result["score_time"] = 0.0
        return result
    test_params = check_method_params(X, params=score_params, indices=test)
    start = time.perf_counter()
    result["test_scores"] = score(estimator, X_test, y_test, scorer, test_params, error_score)
    result["score_time"] = time.perf_counter() - start
    if return_train_score:
        X_train, y_train = safe_split(estimator, X, y, train)
        train_params = check_method_params(X, params=score_params, indices=train)
        result["train_scores"] = score(estimator, X_train, y_train, scorer, train_params, error_score)
    return result


# --------------------------------------------------------------------------------------------------
# The searches.


class _ReplayedSplits:
    """A splitter that gives back splits already drawn from the user's ``cv`` and the count its
    ``get_n_splits`` reported, so that scikit-learn's loop sees the very splits the population path saw:
    a splitter that yields only once, or warns on each ``split``, is not drawn a second time."""

    def __init__(self, splits: list, n_splits: int):
        self.splits, self.n_splits = splits, n_splits

    def split(self, X=None, y=None, groups=None):
        """The splits drawn before, in their order (the arguments are ignored)."""
        yield from self.splits

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """The count the user's splitter reported."""
        return self.n_splits


class _PopulationSearchMixin:
    """``fit`` for a scikit-learn search: jaxnn candidates train as populations, the rest as scikit-learn does.

    The class using it lists its candidates in ``_population_candidates`` (None: run scikit-learn's loop).
    """

    def _population_candidates(self) -> list[dict] | None:
        raise NotImplementedError

    @fit_context(prefer_skip_nested_validation=False)  # the search's parameters are checked, as sklearn does
    def fit(self, X, y=None, **params):
        """Run fit with all sets of parameters (see scikit-learn's ``BaseSearchCV.fit``).

        jaxnn candidates (a network, or a ``Pipeline`` ending in one) × folds train as populations through
        :func:`jaxnn.fit_estimators`; any other search runs scikit-learn's own loop.
        """
        fit_names = [name for name in params if name != "groups"]
        routing = get_config().get("enable_metadata_routing", False)
        layout = _population_layout(self.estimator, fit_names)
        if (
            y is None
            or layout is None
            or (routing and fit_names)
            or (layout.in_pipeline and callbacks_in_use(self))  # a pipeline's task tree: scikit-learn's
        ):
            return super().fit(X, y, **params)
        # Drawn once, here (a RandomizedSearchCV's random_state may be a RandomState that each draw advances).
        candidates = self._population_candidates()
        if not candidates:
            return super().fit(X, y, **params)
        base_estimator = clone(self.estimator)
        # A candidate may replace the network step by another estimator: that one is fitted on its own.
        layouts = [
            _population_layout(clone(base_estimator).set_params(**clone(candidate, safe=False)), fit_names)
            for candidate in candidates
        ]
        return self._fit_population(X, y, params, candidates, layouts)

    def _sklearn_fit_over(self, splitter: _ReplayedSplits, X, y, params):
        """scikit-learn's own ``fit`` with ``cv`` set to ``splitter`` for its duration (``cv`` is restored
        after): for an empty or inconsistent ``cv``, scikit-learn's own error about the splits drawn."""
        cv = self.cv
        self.cv = splitter
        try:
            with warnings.catch_warnings():  # the candidates were drawn once already, and the space's warning shown
                warnings.filterwarnings("ignore", SMALL_SPACE_WARNING, UserWarning)
                return super().fit(X, y, **params)
        finally:
            self.cv = cv

    def _fit_population(self, X, y, params, candidates, layouts):
        """``BaseSearchCV.fit`` with the candidates × folds trained by :func:`_fit_candidates`."""
        scorers, refit_metric = get_scorers(self)
        X, y = indexable(X, y)
        params = check_method_params(X, params=params)
        routed_params = routed_fit_params(self, params)
        checked_cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        set_checked_cv(self, checked_cv)
        split_params = routed_params.splitter.split
        n_splits = checked_cv.get_n_splits(X, y, **split_params)
        splits = list(checked_cv.split(X, y, **split_params))
        if not splits or len(splits) != n_splits:
            return self._sklearn_fit_over(_ReplayedSplits(splits, n_splits), X, y, params)
        self.n_splits_ = n_splits
        if self.verbose > 0:
            print(
                f"Fitting {n_splits} folds for each of {len(candidates)} candidates, totalling "
                f"{n_splits * len(candidates)} fits"
            )
        base_estimator = clone(self.estimator)
        tasks = SearchTasks(self, X, y, params, n_fits=n_splits * len(candidates))
        fit_params = routed_params.estimator.fit
        fitted = _fit_candidates(base_estimator, X, y, candidates, layouts, splits, fit_params, tasks)
        scoring = {
            "scorer": scorers,
            "score_params": routed_params.scorer.score,
            "return_train_score": self.return_train_score,
            "error_score": self.error_score,
        }
        out = [
            _score_fitted(one_fit, X, y, test, train, **scoring)
            for one_fit, (train, test) in zip(fitted, splits * len(candidates), strict=True)
        ]
        warn_or_raise_about_fit_failures(out, self.error_score)
        if callable(self.scoring):
            insert_error_scores(out, self.error_score)
        results = format_results(self, candidates, n_splits, out)
        tasks.searched()

        # From here on, BaseSearchCV.fit's own steps after the search.
        self.multimetric_ = isinstance(out[0]["test_scores"], dict)
        if callable(self.scoring) and self.multimetric_:
            check_refit_for_multimetric(self, out[0]["test_scores"])
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            self.best_index_ = select_best_index(self, self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(base_estimator).set_params(**clone(self.best_params_, safe=False))
            with tasks.refitting(self.best_estimator_, X, y):
                start = time.time()
                self.best_estimator_.fit(X, y, **routed_params.estimator.fit)
                self.refit_time_ = time.time() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.scorer_ = scorers_of(scorers)
        self.cv_results_ = results
        tasks.end(X, y)
        return self


class GridSearchCV(_PopulationSearchMixin, sklearn_model_selection.GridSearchCV):
    """scikit-learn's ``GridSearchCV`` whose jaxnn candidates × folds train as populations.

    Same parameters, attributes and results as ``sklearn.model_selection.GridSearchCV`` (see its
    documentation); how the networks train is described in :mod:`jaxnn.model_selection`.
    """

    def _population_candidates(self) -> list[dict] | None:
        if runs_own_search(self, sklearn_model_selection.GridSearchCV):
            return None  # a subclass schedules its own candidates: scikit-learn's loop runs them
        return list(ParameterGrid(self.param_grid))


class RandomizedSearchCV(_PopulationSearchMixin, sklearn_model_selection.RandomizedSearchCV):
    """scikit-learn's ``RandomizedSearchCV`` whose jaxnn candidates × folds train as populations.

    Same parameters, attributes and results as ``sklearn.model_selection.RandomizedSearchCV`` (the same
    candidates for the same ``random_state``: they are drawn by scikit-learn's ``ParameterSampler``); how the
    networks train is described in :mod:`jaxnn.model_selection`.
    """

    def _population_candidates(self) -> list[dict] | None:
        if runs_own_search(self, sklearn_model_selection.RandomizedSearchCV):
            return None
        return list(ParameterSampler(self.param_distributions, self.n_iter, random_state=self.random_state))
