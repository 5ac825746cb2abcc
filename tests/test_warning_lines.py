"""The estimators' warnings name the user's line — the line that called ``fit``, ``partial_fit``, a search or
``fit_estimators`` — whatever road leads from it to the warning (``jaxnn._warnings`` computes the level)."""

from __future__ import annotations

import inspect
import os
import threading
import warnings

import numpy as np
import pytest
from sklearn import model_selection as sklearn_model_selection
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import column_or_1d

from jaxnn import NeuralNetClassifier, NeuralNetRegressor, fit_estimators
from jaxnn._warnings import warn
from jaxnn.model_selection import GridSearchCV
from jaxnn.sklearn.targets import COLUMN_Y_WARNING


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(x).astype(np.float32), y


def short(**params):
    """A network that stops at max_iter, so that every fit warns (ConvergenceWarning)."""
    return NeuralNetClassifier(
        (5,), solver="sgd", max_iter=3, tol=0.0, random_state=0, learning_rate_init=0.01
    ).set_params(**params)


def places(caught, category=ConvergenceWarning) -> set[tuple[str, int]]:
    return {(w.filename, w.lineno) for w in caught if issubclass(w.category, category)}


def test_a_plain_fit_warns_at_the_line_that_called_fit(iris):
    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        short().fit(x, y)
    assert places(caught) == {(__file__, line)}


def test_lbfgs_and_an_ensemble_warn_at_the_line_that_called_fit(iris):
    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        short(solver="lbfgs", max_iter=2).fit(x, y)
        short(n_ensemble=2).fit(x, y)
    assert places(caught) == {(__file__, line), (__file__, line + 1)} and len(caught) == 2


def test_partial_fit_warns_at_the_line_that_called_partial_fit(iris):
    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        short(batch_size=1000).partial_fit(x, y, classes=[0, 1, 2])
    assert places(caught, UserWarning) == {(__file__, line)}
    assert "batch_size=1000 is larger than the 150 training samples" in str(caught[0].message)


def test_the_many_classes_warning_names_the_line_that_called_fit():
    x = np.random.RandomState(0).normal(size=(30, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        short(max_iter=1).fit(x, np.arange(30))
    assert places(caught, UserWarning) == {(__file__, line)}


def test_fit_estimators_warns_at_the_line_that_called_it(iris):
    x, y = iris
    estimators = [short(learning_rate_init=rate) for rate in (0.01, 0.02, 0.03)] + [short(solver="lbfgs", max_iter=2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        fit_estimators(estimators, [(x, y)] * len(estimators))
    assert places(caught) == {(__file__, line)} and len(caught) == 4


@pytest.mark.parametrize("search", [GridSearchCV, sklearn_model_selection.GridSearchCV], ids=["jaxnn", "sklearn"])
def test_a_search_warns_at_the_line_that_called_its_fit(iris, search):
    """jaxnn's search (candidates × folds as one population, then the refit) and scikit-learn's own (its
    loop through joblib, each fit alone) both name the line of ``search.fit``."""
    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        search(short(), {"learning_rate_init": [0.01, 0.02]}, cv=2).fit(x, y)
    assert places(caught) == {(__file__, line)} and len(caught) == 2 * 2 + 1


def test_a_pipeline_in_cross_validation_warns_at_the_line_that_called_it(iris):
    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        cross_val_score(make_pipeline(StandardScaler(), short()), x, y, cv=2)
    assert places(caught) == {(__file__, line)} and len(caught) == 2


def test_a_regressor_warns_at_the_line_that_called_fit(iris):
    x, _ = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = NeuralNetRegressor((3,), solver="sgd", max_iter=2, tol=0.0, random_state=0, learning_rate_init=0.01)
        line = inspect.currentframe().f_lineno + 1
        net.set_params(loss="auto").fit(x, x[:, 0])
    assert places(caught) == {(__file__, line)}


def test_warn_called_from_user_code_names_that_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        warn("a message", RuntimeWarning)
    assert places(caught, RuntimeWarning) == {(__file__, line)}


def test_a_column_y_warns_at_the_line_that_called_fit(iris):
    """scikit-learn's DataConversionWarning for a column ``y`` (MLP's, which names scikit-learn's file) names the
    user's line, as jaxnn's own warnings do; an ``error`` filter still turns it into an exception."""
    from sklearn.exceptions import DataConversionWarning

    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        short().fit(x, y.reshape(-1, 1))
        short().partial_fit(x, y.reshape(-1, 1), classes=[0, 1, 2])
        NeuralNetRegressor((3,), max_iter=2).fit(x, x[:, :1])
    assert places(caught, DataConversionWarning) == {(__file__, line), (__file__, line + 1), (__file__, line + 2)}
    with pytest.warns(DataConversionWarning) as sklearns:
        column_or_1d(y.reshape(-1, 1), warn=True)
    # jaxnn raises scikit-learn's own words
    words = [str(w.message) for w in caught if issubclass(w.category, DataConversionWarning)]
    assert len(words) == 3 and set(words) == {COLUMN_Y_WARNING} == {str(w.message) for w in sklearns}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        with pytest.raises(DataConversionWarning, match="A column-vector y was passed"):
            short().fit(x, y.reshape(-1, 1))


def test_a_fit_with_no_user_frame_names_the_scikit_learn_line_that_called_it(iris):
    """A search's fit in a worker (joblib's loky process, a thread): the stack holds scikit-learn's frames under the
    standard library's machinery (threading, multiprocessing, runpy), and no line of the user's.  The warning named
    the machinery (multiprocessing/process.py: ``self._target(*self._args, **self._kwargs)``); it names the
    scikit-learn line that called the estimator, as MLP's warnings name scikit-learn's file."""
    import sklearn

    x, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worker = threading.Thread(target=cross_val_score, args=(short(), x, y), kwargs={"cv": 2})
        worker.start()
        worker.join()
    sklearn_files = os.path.dirname(sklearn.__file__) + os.sep
    assert len(caught) == 2 and all(w.filename.startswith(sklearn_files) for w in caught), places(caught)
