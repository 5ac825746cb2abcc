"""Every private scikit-learn name jaxnn uses, behind a public name of this module: the one place to mend when
scikit-learn renames or removes one.

jaxnn's searches (:mod:`jaxnn.sklearn.model_selection`) reuse the building blocks of scikit-learn's
``BaseSearchCV.fit`` and ``_fit_and_score`` so that scores, warnings, errors and ``cv_results_`` come from
scikit-learn's own code, and the estimators check ``sample_weight`` as scikit-learn's estimators do.  Those
blocks are private: the same from 1.7 to 1.9 (the versions pyproject.toml allows), but free to change in any
release.  No other jaxnn module names them; :data:`INTERNALS` lists them all, and
``tests/test_sklearn_internals.py`` checks each against the installed scikit-learn, failing with the version
and the missing name.  Where scikit-learn offers a public extension point it is used instead (``validate_data``,
``check_is_fitted``, ``available_if``, ``clone``, ``check_cv``, ``ParameterGrid``, …, imported where used).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.base import _fit_context
from sklearn.metrics._scorer import _MultimetricScorer
from sklearn.model_selection._validation import _insert_error_scores, _score, _warn_or_raise_about_fit_failures
from sklearn.utils._param_validation import InvalidParameterError  # a bad hyper-parameter: ValueError and TypeError
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.validation import _check_method_params, _check_sample_weight, _num_samples

__all__ = [
    "INTERNALS",
    "NO_IMPROVEMENT_COUNT",
    "Internal",
    "InvalidParameterError",
    "callback_lifecycle",
    "callbacks_in_use",
    "callbacks_of",
    "check_method_params",
    "check_refit_for_multimetric",
    "check_sample_weight",
    "fit_context",
    "format_results",
    "get_scorers",
    "init_callback_context",
    "insert_error_scores",
    "is_multimetric",
    "num_samples",
    "routed_fit_params",
    "runs_own_search",
    "safe_split",
    "score",
    "scorers_of",
    "select_best_index",
    "set_checked_cv",
    "set_label_binarizer",
    "set_stopping_state",
    "warn_or_raise_about_fit_failures",
]


class Internal(NamedTuple):
    """One private scikit-learn name and where it lives.

    ``kind``: ``'import'`` (a module attribute of ``owner``), ``'method'`` (of the class ``owner``, a dotted
    path) or ``'instance'`` (an attribute that the code of the module ``owner`` sets on instances).  ``since``:
    the first scikit-learn version that has it, for a name jaxnn does without before (None: every version
    allowed).  ``used_by``: this module's public name that wraps it.
    """

    owner: str
    name: str
    kind: str
    used_by: str
    since: str | None = None


_SEARCH = "sklearn.model_selection._search.BaseSearchCV"
_CALLBACKS = "1.9"  # sklearn.callback: estimators' callbacks, which follow every task of scikit-learn's own loop

INTERNALS = (
    Internal("sklearn.base", "_fit_context", "import", "fit_context"),
    Internal("sklearn.metrics._scorer", "_MultimetricScorer", "import", "is_multimetric"),
    Internal("sklearn.metrics._scorer", "_scorers", "instance", "scorers_of"),
    Internal("sklearn.model_selection._validation", "_insert_error_scores", "import", "insert_error_scores"),
    Internal("sklearn.model_selection._validation", "_score", "import", "score"),
    Internal(
        "sklearn.model_selection._validation",
        "_warn_or_raise_about_fit_failures",
        "import",
        "warn_or_raise_about_fit_failures",
    ),
    Internal("sklearn.utils.metaestimators", "_safe_split", "import", "safe_split"),
    Internal("sklearn.utils.validation", "_check_method_params", "import", "check_method_params"),
    Internal("sklearn.utils.validation", "_check_sample_weight", "import", "check_sample_weight"),
    Internal("sklearn.utils.validation", "_num_samples", "import", "num_samples"),
    Internal("sklearn.utils._param_validation", "InvalidParameterError", "import", "InvalidParameterError"),
    Internal(_SEARCH, "_get_scorers", "method", "get_scorers"),
    Internal(_SEARCH, "_get_routed_params_for_fit", "method", "routed_fit_params"),
    Internal(_SEARCH, "_format_results", "method", "format_results"),
    Internal(_SEARCH, "_check_refit_for_multimetric", "method", "check_refit_for_multimetric"),
    Internal(_SEARCH, "_select_best_index", "method", "select_best_index"),
    Internal(_SEARCH, "_run_search", "method", "runs_own_search"),
    Internal("sklearn.model_selection._search", "_checked_cv_orig", "instance", "set_checked_cv"),
    Internal("sklearn.neural_network._multilayer_perceptron", "_label_binarizer", "instance", "set_label_binarizer"),
    Internal(
        "sklearn.neural_network._multilayer_perceptron", "_no_improvement_count", "instance", "set_stopping_state"
    ),
    Internal("sklearn.neural_network._multilayer_perceptron", "_best_coefs", "instance", "set_stopping_state"),
    Internal("sklearn.neural_network._multilayer_perceptron", "_best_intercepts", "instance", "set_stopping_state"),
    Internal("sklearn.callback._callback_support", "_skl_callbacks", "instance", "callbacks_in_use", _CALLBACKS),
    Internal("sklearn.callback._callback_context", "_parent_callback_ctx", "instance", "callbacks_in_use", _CALLBACKS),
    Internal(
        "sklearn.callback._callback_support.CallbackSupportMixin",
        "_init_callback_context",
        "method",
        "init_callback_context",
        _CALLBACKS,
    ),
    Internal(
        "sklearn.callback._callback_support", "callback_management_context", "import", "callback_lifecycle", _CALLBACKS
    ),
)


# MLP's count of epochs without improvement, which jaxnn's estimators keep under MLP's name (scikit-learn's
# test_mlp.py reads it) and set_stopping_state gives an exported MLP.
NO_IMPROVEMENT_COUNT = "_no_improvement_count"

# --------------------------------------------------------------------------------------------------
# Functions and classes, under public names.

fit_context = _fit_context  # decorator of fit: checks the parameters (_parameter_constraints), sets the config
check_sample_weight = _check_sample_weight  # sample_weight as a checked 1-D array (ones for None)
check_method_params = _check_method_params  # fit parameters indexed like X (all rows, or those of a fold)
safe_split = _safe_split  # the rows of a fold (a precomputed kernel's rows and columns)
num_samples = _num_samples
score = _score  # _fit_and_score's scoring of one fold, single and multi-metric, with error_score
insert_error_scores = _insert_error_scores  # a callable scoring's failed fits: error_score in each metric
warn_or_raise_about_fit_failures = _warn_or_raise_about_fit_failures  # FitFailedWarning, or all failed: raise


def is_multimetric(scorer) -> bool:
    """Whether ``scorer`` is a search's several metrics (a list, tuple, dict or callable returning a dict)."""
    return isinstance(scorer, _MultimetricScorer)


def scorers_of(scorer):
    """A multi-metric scorer's ``{name: scorer}`` (what ``scorer_`` holds), else ``scorer`` itself."""
    return scorer._scorers if isinstance(scorer, _MultimetricScorer) else scorer


# --------------------------------------------------------------------------------------------------
# BaseSearchCV's internals: the steps of its fit, called on the search (so a subclass's override still runs).


def get_scorers(search):
    """``(scorers, refit_metric)`` of the search's ``scoring`` and ``refit``."""
    return search._get_scorers()


def routed_fit_params(search, params: dict):
    """The fit parameters routed to the splitter, the estimator and the scorer (a ``Bunch``)."""
    return search._get_routed_params_for_fit(params)


def set_checked_cv(search, cv) -> None:
    """Keep the checked ``cv`` where ``BaseSearchCV`` keeps it (its ``_run_search`` hooks read it there)."""
    search._checked_cv_orig = cv


def format_results(search, candidates: list[dict], n_splits: int, out: list[dict]) -> dict:
    """``cv_results_`` from the per-task results of ``_fit_and_score``."""
    return search._format_results(candidates, n_splits, out)


def check_refit_for_multimetric(search, scores: dict) -> None:
    """The ``refit`` check of a callable ``scoring`` that returned several metrics."""
    search._check_refit_for_multimetric(scores)


def select_best_index(search, refit, refit_metric, results: dict) -> int:
    """``best_index_``: the best candidate by ``refit_metric``, or ``refit(results)`` for a callable."""
    return search._select_best_index(refit, refit_metric, results)


def runs_own_search(search, sklearn_class: type) -> bool:
    """Whether the class of ``search`` schedules its own candidates (overrides ``sklearn_class``'s
    ``_run_search``)."""
    return type(search)._run_search is not sklearn_class._run_search


# --------------------------------------------------------------------------------------------------
# MLPClassifier's internals: what jaxnn.sklearn.bridge sets on the MLPClassifier it exports.


def sparse_label_input(mlp) -> bool:
    """Whether a fitted ``MLPClassifier``'s ``LabelBinarizer`` was fitted on a ``scipy.sparse`` ``y`` (then its
    ``predict`` returns a sparse matrix); False when it has none."""
    return bool(getattr(getattr(mlp, "_label_binarizer", None), "sparse_input_", False))


def set_label_binarizer(mlp, binarizer) -> None:
    """Give a fitted ``MLPClassifier`` the ``LabelBinarizer`` (fitted on its classes) that its ``predict`` reads
    to turn outputs back into labels."""
    mlp._label_binarizer = binarizer


def set_stopping_state(mlp, network) -> None:
    """Give a fitted MLP the stopping rule's state its own ``warm_start`` fit and ``partial_fit`` read besides its
    public records: ``network``'s count of epochs without improvement and the best weights so far, its current
    ``coefs_``/``intercepts_`` (an early-stopped fit ends at its best ones).  Without them a continued fit whose
    first epoch does not improve by ``tol`` raises an AttributeError inside MLP."""
    mlp._no_improvement_count = int(getattr(network, NO_IMPROVEMENT_COUNT, 0))
    mlp._best_coefs = [np.array(w) for w in mlp.coefs_]
    mlp._best_intercepts = [np.array(b) for b in mlp.intercepts_]


def callbacks_in_use(search) -> bool:
    """Whether scikit-learn (1.9+) callbacks are set on the search or reach it from a meta-estimator.

    The attribute names are those of ``sklearn.callback.CallbackSupportMixin`` and ``CallbackContext``
    (absent before 1.9, where no callback can be in use).
    """
    return bool(getattr(search, "_skl_callbacks", None)) or hasattr(search, "_parent_callback_ctx")


def callbacks_of(estimator) -> list:
    """The callbacks set on ``estimator`` (``set_callbacks``, or propagated to it by a meta-estimator)."""
    return list(getattr(estimator, "_skl_callbacks", []))


def init_callback_context(estimator, **task):
    """The root ``CallbackContext`` of ``estimator``'s fit, its callbacks set up (``CallbackSupportMixin``'s step
    at the start of a fit; ``task``: ``max_subtasks=``, ...); merged into a meta-estimator's task tree when one
    propagated its context."""
    return estimator._init_callback_context(**task)


def callback_lifecycle(estimator):
    """The context manager that tears ``estimator``'s callbacks down after its fit (what ``with_callbacks`` wraps a
    fit method in), for fits that are not a method call: :func:`jaxnn.fit_estimators`'s."""
    from sklearn.callback._callback_support import callback_management_context  # scikit-learn 1.9+

    return callback_management_context(estimator)
