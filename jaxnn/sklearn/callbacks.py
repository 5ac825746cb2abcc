"""scikit-learn's callbacks (``sklearn.callback``, scikit-learn 1.9+) in the estimators and the searches.

Where the installed scikit-learn has ``sklearn.callback``, the estimators are ``CallbackSupportMixin``s:
``set_callbacks(ProgressBar(), ScoringMonitor(...))`` on an estimator, or on a ``Pipeline`` or a search around
it (auto-propagated callbacks such as ``ProgressBar`` reach the network as they reach scikit-learn's own
estimators), follows the task tree of its fit, as ``LogisticRegression``'s follows its L-BFGS iterations:

* a fit is one task, and each epoch of training one subtask (``'epoch'``; an L-BFGS iteration with
  ``solver='lbfgs'``: ``'iteration'``), at most ``max_iter`` of them; an ensemble's fit has one subtask per
  member (``'ensemble-member'``), each with its epochs;
* the compiled loop runs the epochs chunk by chunk, and the callbacks run between chunks: each epoch's
  ``on_fit_task_begin`` and ``on_fit_task_end`` come once its chunk is done, so a chunk's epochs end together.
  Chunks then take about a second each (:class:`jaxnn.engine.Pace`: the first chunk is timed and later ones
  sized by the pace measured), so a ``ProgressBar`` moves at least about once a second.  The chunk's end is a
  runtime value, so this compiles nothing, and on the CPU the fit ends with the very bits it ends with
  without callbacks;
* the last epoch of each chunk (and the fit itself) comes with a ``fitted_estimator``: a copy of the estimator
  holding the weights reached (the best-scoring ones with ``early_stopping``), so ``ScoringMonitor`` scores
  the network at each chunk's end; the other epochs' ``fitted_estimator`` is None (their weights were never
  on the host), which ``ScoringMonitor`` skips; an ensemble member's task ends with a copy holding that member
  alone, the fit's with the whole ensemble;
* a callback's request to stop (``on_fit_task_end`` returning True) is not acted on, as in
  ``LogisticRegression`` (scikit-learn 1.9); ``partial_fit`` runs no callbacks;
* a callback that raises fails the fit, which leaves the estimator as it was (also when it raises at the fit's
  own end, once the estimator held its result: :meth:`FitTasks.end` puts the attributes back).

Without callbacks (none set, none propagated) a fit runs exactly as before: no hook, the same chunks.  Without
``sklearn.callback`` (scikit-learn before 1.9) nothing here takes part: the estimators have no
``set_callbacks``, and everything else works unchanged.

Many estimators at once (:func:`jaxnn.fit_estimators`) keep each estimator's task tree: every network reports its
own epochs from the population's chunks, and a callback that raises fails its own estimator's fit only
(:class:`Guarded`: its error is that estimator's outcome; the population trains on).  jaxnn's searches over a
network (not a ``Pipeline``) with callbacks train their candidates × folds as a population and build
scikit-learn's search tree around them (:class:`SearchTasks`: ``fit`` → ``search`` →
``candidate-split-evaluation`` (the network's fit) and ``refit-with-best-params``); a search over a ``Pipeline``
with callbacks runs scikit-learn's own loop, whose tree has the pipeline's steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from jaxnn.sklearn.constraints import is_lbfgs
from jaxnn.sklearn.internals import callback_lifecycle, callbacks_in_use, callbacks_of, init_callback_context
from jaxnn.sklearn.training import Setup, ensemble_seeds

try:
    from sklearn.callback import CallbackSupportMixin as CallbackSupport
    from sklearn.callback import with_callbacks
except ImportError:  # scikit-learn before 1.9: no callbacks
    AVAILABLE = False

    class CallbackSupport:  # type: ignore[no-redef]
        """Without ``sklearn.callback``: nothing (no ``set_callbacks``)."""

    def with_callbacks(method):  # type: ignore[no-redef]
        """Without ``sklearn.callback``: the method as it is."""
        return method

else:
    AVAILABLE = True

__all__ = [
    "AVAILABLE",
    "CallbackSupport",
    "FitTasks",
    "Guarded",
    "NetworkTasks",
    "SearchTasks",
    "Watch",
    "fit_tasks",
    "fitted_attributes",
    "lifecycle",
    "watches",
    "with_callbacks",
]

Watch = Callable[[int, Callable[[], Any]], None]  # (epochs this fit has trained, the weights then: asked lazily)


class NetworkTasks:
    """One network's epochs (or L-BFGS iterations) as the subtasks of ``context``, reported by :meth:`reached`."""

    def __init__(self, fit: FitTasks, context, most: int, member: int = 0):
        self.fit, self.context, self.most, self.member = fit, context, most, member  # member: of an ensemble
        self.done = 0  # epochs reported so far

    def reached(self, epochs: int, params: Callable[[], Any] | None = None) -> None:
        """The network has trained ``epochs`` epochs of this fit: a task for each one not reported yet, the last
        with ``fitted_estimator`` at ``params()`` (the weights then)."""
        last = min(epochs, self.most)
        estimator, arguments = self.fit.estimator, self.fit.arguments
        while self.done < last:
            self.done += 1
            task = self.context.subcontext(task_name=self.fit.unit)
            task.call_on_fit_task_begin(estimator=estimator, **arguments)
            fitted = None
            if self.done == last and params is not None:
                fitted = lambda: self.fit.fitted([params()], self.member)  # noqa: E731 (asked for only by callbacks that use it)
            task.call_on_fit_task_end(estimator=estimator, **arguments, reconstruction_attributes=fitted)


class FitTasks:
    """The task tree of one estimator's fit: its root (merged into a meta-estimator's tree when one propagated
    its context), one :class:`NetworkTasks` per network (the root's own epochs, or an ensemble member's task).

    ``fitted(networks, member=0)``: the attributes that make a copy of the estimator predict with the networks'
    weights (``[params]``, or an ensemble's list; ``member``: the first one's place in the ensemble, which its
    seed follows), for ``fitted_estimator``.
    """

    def __init__(self, estimator, X, y, sample_weight, *, networks: int, steps: int, unit: str, fitted):
        self.estimator, self.unit, self.fitted = estimator, unit, fitted
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.arguments = {"X": X, "y": y, "metadata": metadata}
        self.watched = bool(callbacks_of(estimator))
        self.root = init_callback_context(estimator, max_subtasks=steps if networks == 1 else networks)
        self.before = dict(vars(estimator))  # the estimator before this fit, put back if a callback fails at its end
        self.root.call_on_fit_task_begin(estimator=estimator, **self.arguments)
        contexts = [self.root]
        if networks > 1:
            contexts = [
                self.root.subcontext(task_name="ensemble-member", max_subtasks=steps).call_on_fit_task_begin(
                    estimator=estimator, **self.arguments
                )
                for _ in range(networks)
            ]
        self.networks = [NetworkTasks(self, context, steps, member) for member, context in enumerate(contexts)]

    def watches(self) -> list[Watch | None]:
        """What each network's training run reports to (None: no callback to call, so no hook)."""
        return [network.reached if self.watched else None for network in self.networks]

    def end(self, params: list) -> None:
        """The fit is done (the estimator holds its result): the networks' final weights ``params`` end an
        ensemble's member tasks, then the fit's task ends.  A callback that raises here fails the fit: the
        estimator's attributes go back to what they were before it (its ``vars`` when the fit began), and the
        error propagates."""
        estimator, arguments = self.estimator, self.arguments
        try:
            if len(self.networks) > 1:
                for network, weights in zip(self.networks, params, strict=True):
                    network.context.call_on_fit_task_end(
                        estimator=estimator,
                        **arguments,
                        reconstruction_attributes=lambda w=weights, k=network.member: self.fitted([w], k),
                    )
            self.root.call_on_fit_task_end(estimator=estimator, **arguments, reconstruction_attributes={})
        except BaseException:
            estimator.__dict__ = dict(self.before)  # in one step, as a fit stores its network (a predict may read)
            raise


class Guarded:
    """One estimator's watches (one per network) inside a population that trains other estimators too
    (:func:`jaxnn.fit_estimators`): a callback that raises silences this estimator's watches, and its error
    becomes the estimator's outcome (:meth:`results`) instead of stopping every network of the population.

    ``watches``: what each of the estimator's networks reports to (None: nothing), as :func:`watches` gives."""

    def __init__(self, watches: list[Watch | None]):
        self.error: Exception | None = None
        self.watches: list[Watch | None] = [None if watch is None else partial(self._heard, watch) for watch in watches]

    def _heard(self, watch: Watch, epochs: int, params: Callable[[], Any]) -> None:
        if self.error is None:
            try:
                watch(epochs, params)
            except Exception as error:  # this estimator's fit fails; the population's others train on
                self.error = error

    def results(self, results: list) -> list:
        """The estimator's training results, or its callback's error in their place (which its fit raises)."""
        return results if self.error is None else [self.error] * len(results)


def fit_tasks(estimator, setup: Setup, sample_weight, described: dict) -> FitTasks | None:
    """The :class:`FitTasks` of ``estimator``'s fit of ``setup``, or None where no callback takes part (none set on
    it or propagated to it, or no ``sklearn.callback``): a task per epoch (L-BFGS: iteration), at most
    ``max_iter``.  ``described``: the attributes that describe the fitted network (``_model``, ``n_outputs_``, …)."""
    if not AVAILABLE or not callbacks_in_use(estimator):
        return None
    config = setup.config
    return FitTasks(
        estimator,
        setup.X,
        setup.y,
        sample_weight,
        networks=config.n_ensemble,
        steps=config.max_iter,
        unit="iteration" if is_lbfgs(config.solver) else "epoch",
        # stale when asked (the copy is of the estimator then): an ensemble's member tasks end once it holds the
        # whole ensemble, whose attributes the member's copy must not keep
        fitted=lambda networks, member=0: fitted_attributes(
            setup, described, networks, stale=hasattr(estimator, "ensemble_coefs_"), member=member
        ),
    )


def fitted_attributes(setup: Setup, described: dict, networks: list, *, stale: bool, member: int = 0) -> dict:
    """The attributes that make a copy of the estimator predict with ``networks`` (each a list of ``{"W", "b"}``
    per layer; several: an ensemble), for a callback's ``fitted_estimator``.  A copy that still holds a previous
    fit's ensemble (``stale``) gets these networks as its ensemble, which is what it predicts with."""
    layers = range(len(networks[0]))
    fitted = {**described, **setup.targets.fitted}
    if len(networks) == 1:
        fitted |= {"coefs_": [p["W"] for p in networks[0]], "intercepts_": [p["b"] for p in networks[0]]}
    if len(networks) > 1 or stale:
        fitted |= {
            "ensemble_seeds_": np.asarray(ensemble_seeds(setup.seed, member + len(networks))[member:], dtype=np.int64),
            "ensemble_coefs_": [np.stack([n[layer]["W"] for n in networks]) for layer in layers],
            "ensemble_intercepts_": [np.stack([n[layer]["b"] for n in networks]) for layer in layers],
        }
    return fitted


def watches(tasks: FitTasks | None) -> list[Watch | None] | None:
    """Per network, what its training reports to; None without tasks."""
    return None if tasks is None else tasks.watches()


def lifecycle(estimator):
    """The context that tears ``estimator``'s callbacks down after a fit that is not its ``fit`` method (in
    :func:`jaxnn.fit_estimators`); nothing without ``sklearn.callback``."""
    return callback_lifecycle(estimator) if AVAILABLE else contextlib.nullcontext()


class SearchTasks:
    """A jaxnn search's task tree when it trains its candidates × folds as a population, as scikit-learn's
    ``BaseSearchCV.fit`` builds it: ``fit`` → ``search`` (one ``candidate-split-evaluation`` per candidate ×
    fold, its network's fit merged into it) and ``refit-with-best-params``.  Every method does nothing when no
    callback takes part."""

    def __init__(self, search, X, y, params: dict, *, n_fits: int):
        self.search = search
        self.on = AVAILABLE and callbacks_in_use(search)
        weight = params.get("sample_weight")
        self.metadata = None if weight is None else {"sample_weight": weight}
        self.evaluations: list = []
        if not self.on:
            return
        refits = search.refit is not False
        self.root = init_callback_context(search, max_subtasks=1 + refits)
        self.root.call_on_fit_task_begin(estimator=search, X=X, y=y, metadata=self.metadata)
        self.searching = self.root.subcontext(task_name="search", max_subtasks=n_fits, sequential_subtasks=False)
        self.searching.call_on_fit_task_begin(estimator=search)
        self.evaluations = [
            self.searching.subcontext(task_name="candidate-split-evaluation", task_id=index) for index in range(n_fits)
        ]

    @contextlib.contextmanager
    def evaluating(self, index: int, estimator, X_train, y_train, fit_params: dict):
        """Fit ``index`` (candidate-major) of ``estimator`` inside: its task begins, the search's callbacks reach
        the estimator, and the task ends afterwards (as in ``_fit_and_score``)."""
        if not self.on:
            yield
            return
        context = self.evaluations[index]
        weight = fit_params.get("sample_weight")
        task = {"X": X_train, "y": y_train, "metadata": None if weight is None else {"sample_weight": weight}}
        try:
            with context.propagate_callback_context(estimator):
                context.call_on_fit_task_begin(estimator=self.search, **task)
                yield
        finally:
            context.call_on_fit_task_end(estimator=self.search, **task)

    def searched(self) -> None:
        """Every candidate × fold is fitted."""
        if self.on:
            self.searching.call_on_fit_task_end(estimator=self.search)

    @contextlib.contextmanager
    def refitting(self, estimator, X, y):
        """The refit of ``best_estimator_`` inside: its task, the callbacks propagated to it."""
        if not self.on:
            yield
            return
        context = self.root.subcontext(task_name="refit-with-best-params")
        with context.propagate_callback_context(estimator):
            context.call_on_fit_task_begin(estimator=self.search, X=X, y=y, metadata=self.metadata)
            yield
        context.call_on_fit_task_end(estimator=self.search, X=X, y=y, metadata=self.metadata)

    def end(self, X, y) -> None:
        """The search is done."""
        if self.on:
            self.root.call_on_fit_task_end(estimator=self.search, X=X, y=y, metadata=self.metadata)
