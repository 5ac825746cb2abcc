"""jaxnn.model_selection: GridSearchCV and RandomizedSearchCV give scikit-learn's results, training jaxnn
candidates × folds as populations; every other search is scikit-learn's own (its test module runs here)."""

import ast
import contextlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import warnings
from unittest import mock

import numpy as np
import pytest
from helpers import compilations
from scipy.stats import loguniform
from sklearn import model_selection as sklearn_model_selection
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from jaxnn import NeuralNetClassifier
from jaxnn.model_selection import GridSearchCV, RandomizedSearchCV
from jaxnn.sklearn import model_selection

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose

# Scores of a population member may differ from its lone fit by float32 rounding (fit_estimators' members
# agree with their lone fits to rtol 2e-5 on the weights); a score is a mean over a fold of such outputs.
RTOL, ATOL = 1e-4, 1e-5
SKLEARN_SEARCH = {
    GridSearchCV: sklearn_model_selection.GridSearchCV,
    RandomizedSearchCV: sklearn_model_selection.RandomizedSearchCV,
}


@pytest.fixture(scope="module")
def iris():
    """Iris in float32 (the networks train in the input's dtype), raw and standardised."""
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    return x, StandardScaler().fit_transform(x), y


def network(**params):
    """The small classifier the tests share, so that its compiled programs are shared too."""
    return NeuralNetClassifier((5,), solver="sgd", max_iter=25, random_state=0, learning_rate_init=0.01).set_params(
        **params
    )


@contextlib.contextmanager
def population_calls():
    """The number of estimators in each call of fit_estimators that the searches make inside the block."""
    sizes = []
    real = model_selection.fit_estimators

    def spy(estimators, datasets):
        sizes.append(len(estimators))
        return real(estimators, datasets)

    with mock.patch.object(model_selection, "fit_estimators", spy):
        yield sizes


def both(search_type, estimator, space, x, y, **kwargs):
    """The jaxnn search and scikit-learn's, fitted alike; plus the sizes of the populations jaxnn's trained."""
    fit_params = kwargs.pop("fit_params", {})
    with population_calls() as sizes:
        ours = search_type(estimator, space, **kwargs).fit(x, y, **fit_params)
    theirs = SKLEARN_SEARCH[search_type](estimator, space, **kwargs).fit(x, y, **fit_params)
    return ours, theirs, sizes


def assert_same_search(ours, theirs, x):
    """Same cv_results_ (keys, candidates, scores, ranks), same best_* attributes, same refitted model."""
    assert sorted(ours.cv_results_) == sorted(theirs.cv_results_)
    for key, value in theirs.cv_results_.items():
        mine = ours.cv_results_[key]
        if key.endswith("_time"):
            assert np.shape(mine) == np.shape(value) and np.all(np.isfinite(mine)), key
        elif key == "params" or key.startswith("param_"):
            assert list(mine) == list(value), key
        elif key.startswith("rank_"):
            np.testing.assert_array_equal(mine, value, err_msg=key)
        else:
            np.testing.assert_allclose(mine, value, rtol=RTOL, atol=ATOL, err_msg=key)
    for name in ("best_index_", "best_params_", "multimetric_", "n_splits_"):
        assert hasattr(ours, name) == hasattr(theirs, name), name
        if hasattr(theirs, name):
            assert getattr(ours, name) == getattr(theirs, name), name
    assert hasattr(ours, "best_score_") == hasattr(theirs, "best_score_")
    if hasattr(theirs, "best_score_"):
        np.testing.assert_allclose(ours.best_score_, theirs.best_score_, rtol=RTOL, atol=ATOL)
    assert type(ours.scorer_) is type(theirs.scorer_)
    if isinstance(theirs.scorer_, dict):
        assert sorted(ours.scorer_) == sorted(theirs.scorer_)
    assert hasattr(ours, "best_estimator_") == hasattr(theirs, "best_estimator_")
    assert hasattr(ours, "refit_time_") == hasattr(theirs, "refit_time_")
    if hasattr(theirs, "best_estimator_"):
        assert type(ours.best_estimator_) is type(theirs.best_estimator_)
        predict = "predict_proba" if hasattr(theirs, "predict_proba") else "predict"
        np.testing.assert_allclose(getattr(ours, predict)(x), getattr(theirs, predict)(x), rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------------------------------
# The population path gives scikit-learn's results.


@pytest.mark.parametrize("in_pipeline", [False, True], ids=["alone", "pipeline"])
def test_a_grid_over_learning_rate_and_alpha_is_one_population_with_sklearns_results(iris, in_pipeline):
    raw, scaled, y = iris
    if in_pipeline:
        estimator, x, prefix = make_pipeline(StandardScaler(), network()), raw, "neuralnetclassifier__"
    else:
        estimator, x, prefix = network(), scaled, ""
    grid = {f"{prefix}learning_rate_init": [0.01, 0.1], f"{prefix}alpha": [1e-4, 0.1]}
    scoring = {"accuracy": "accuracy", "log_loss": "neg_log_loss"}
    ours, theirs, sizes = both(
        GridSearchCV, estimator, grid, x, y, cv=3, scoring=scoring, refit="log_loss", return_train_score=True
    )
    assert sizes == [4 * 3]  # every candidate × fold in one call of fit_estimators
    assert "split2_train_log_loss" in ours.cv_results_ and ours.multimetric_
    assert_same_search(ours, theirs, x)


def test_a_grid_over_hidden_layer_sizes_matches_sklearn_and_prints_its_summary(iris, capsys):
    raw, _, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("net", network())])
    grid = {"net__hidden_layer_sizes": [(5,), (3,)]}
    ours, theirs, sizes = both(GridSearchCV, pipe, grid, raw, y, cv=3, verbose=1)
    assert sizes == [2 * 3]  # one call; fit_estimators groups the members by architecture
    assert_same_search(ours, theirs, raw)
    assert capsys.readouterr().out.count("Fitting 3 folds for each of 2 candidates, totalling 6 fits") == 2


def test_a_randomized_search_draws_sklearns_candidates_and_matches_its_results(iris):
    _, scaled, y = iris
    space = {"learning_rate_init": loguniform(1e-3, 0.3), "alpha": loguniform(1e-5, 1.0)}
    ours, theirs, sizes = both(RandomizedSearchCV, network(), space, scaled, y, n_iter=4, cv=3, random_state=0)
    assert sizes == [4 * 3]
    assert_same_search(ours, theirs, scaled)


@pytest.mark.parametrize(
    "refit", [False, lambda results: int(np.argmax(results["rank_test_log_loss"]))], ids=["false", "callable"]
)
def test_refit_false_and_a_refit_callable_behave_as_in_sklearn(iris, refit):
    _, scaled, y = iris
    grid = {"learning_rate_init": [0.01, 0.1], "alpha": [1e-4, 0.1]}
    scoring = {"accuracy": "accuracy", "log_loss": "neg_log_loss"}
    ours, theirs, _ = both(GridSearchCV, network(), grid, scaled, y, cv=3, scoring=scoring, refit=refit)
    assert_same_search(ours, theirs, scaled)
    if refit is False:
        assert not hasattr(ours, "best_index_") and not hasattr(ours, "best_estimator_")
    else:  # the callable picks the worst candidate: best_index_ is its choice, and no best_score_
        assert ours.best_index_ == refit(ours.cv_results_) and not hasattr(ours, "best_score_")
        assert ours.best_estimator_.get_params()["alpha"] == ours.best_params_["alpha"]


def test_a_diverging_candidate_gets_error_score_and_a_fit_failed_warning_as_in_sklearn(iris):
    _, scaled, y = iris
    grid = {"alpha": [1e-4, 1e9]}  # the penalty's step multiplies the weights by about -1e5 each epoch
    estimator = network(learning_rate_init=0.1)
    with pytest.warns(FitFailedWarning, match="3 fits failed") as caught:
        ours, theirs, sizes = both(GridSearchCV, estimator, grid, scaled, y, cv=3, return_train_score=True)
    assert sizes == [2 * 3]
    assert sum(issubclass(w.category, FitFailedWarning) for w in caught) == 2  # once per search
    assert "training diverged" in str(next(w.message for w in caught if issubclass(w.category, FitFailedWarning)))
    results = ours.cv_results_
    assert np.isnan(results["mean_test_score"][1]) and np.isnan(results["mean_train_score"][1])
    assert np.isfinite(results["mean_test_score"][0]) and ours.best_index_ == 0
    assert_same_search(ours, theirs, scaled)


def test_error_score_raise_raises_the_fits_own_error(iris):
    _, scaled, y = iris
    search = GridSearchCV(network(), {"alpha": [1e-4, 1e9]}, cv=3, error_score="raise")
    with pytest.raises(ValueError, match="training diverged"):
        search.fit(scaled, y)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_a_step_before_the_network_that_cannot_transform_fails_with_pipelines_own_error_as_in_sklearn(iris):
    """The steps before the network used to be fitted as a pipeline of their own, which then ended in the bad step:
    an AttributeError ('no attribute fit_transform') where scikit-learn's search raises Pipeline's TypeError."""
    raw, _, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("net", network())])
    grid = {"scale": [StandardScaler(), LogisticRegression()]}
    message = "All intermediate steps should be transformers"
    for search in (GridSearchCV, sklearn_model_selection.GridSearchCV):
        with pytest.raises(TypeError, match=message):
            search(pipe, grid, cv=3, error_score="raise").fit(raw, y)
    with pytest.warns(FitFailedWarning, match=message):
        ours, theirs, sizes = both(GridSearchCV, pipe, grid, raw, y, cv=3)
    assert sizes == [3]  # the StandardScaler candidate's folds; the others failed before training
    assert_same_search(ours, theirs, raw)


def test_sample_weight_and_groups_reach_the_networks_the_steps_and_the_splitter_as_in_sklearn(iris):
    raw, scaled, y = iris
    weight = np.random.default_rng(0).uniform(0.5, 2.0, size=y.size)
    groups = np.arange(y.size) % 3  # folds of the same size as the other tests': no new compiled program
    grid = {"learning_rate_init": [0.01, 0.1]}
    ours, theirs, sizes = both(
        GridSearchCV,
        network(),
        grid,
        scaled,
        y,
        cv=GroupKFold(3),
        fit_params={"sample_weight": weight, "groups": groups},
    )
    assert sizes == [2 * 3]
    assert_same_search(ours, theirs, scaled)
    pipe = make_pipeline(StandardScaler(), network())
    fit_params = {"standardscaler__sample_weight": weight, "neuralnetclassifier__sample_weight": weight}
    grid = {"neuralnetclassifier__learning_rate_init": [0.01, 0.1]}
    ours, theirs, sizes = both(GridSearchCV, pipe, grid, raw, y, cv=3, fit_params=fit_params)
    assert sizes == [2 * 3]
    assert_same_search(ours, theirs, raw)


def test_candidates_that_swap_the_network_for_another_estimator_are_fitted_on_their_own(iris):
    raw, _, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("model", network())])
    grid = [{"model__learning_rate_init": [0.01, 0.1]}, {"model": [LogisticRegression()]}]
    ours, theirs, sizes = both(GridSearchCV, pipe, grid, raw, y, cv=3)
    assert sizes == [2 * 3]  # the two network candidates; LogisticRegression's three fits ran alone
    assert_same_search(ours, theirs, raw)


def test_other_estimators_and_options_run_sklearns_own_loop(iris):
    raw, scaled, y = iris
    ours, theirs, sizes = both(GridSearchCV, LogisticRegression(), {"C": [0.1, 1.0]}, scaled, y, cv=3)
    assert sizes == []
    assert_same_search(ours, theirs, scaled)
    verbose_pipe = make_pipeline(StandardScaler(), network(), verbose=True)
    with population_calls() as sizes:
        GridSearchCV(verbose_pipe, {"neuralnetclassifier__alpha": [1e-4]}, cv=3).fit(raw, y)
    assert sizes == []


class OneShotSplitter:
    """A user's splitter that yields its two splits on the first ``split`` call only, and claims three."""

    def __init__(self):
        self.used = False

    def split(self, X, y=None, groups=None):
        if not self.used:
            self.used = True
            yield from ((np.arange(50, 150), np.arange(50)), (np.arange(100), np.arange(100, 150)))

    def get_n_splits(self, X=None, y=None, groups=None):
        return 3


def test_an_inconsistent_splitter_gets_sklearns_error_about_the_splits_it_yielded_once(iris):
    _, scaled, y = iris
    grid = {"alpha": [1e-4]}
    with pytest.raises(ValueError, match="Expected 3 splits, got 2") as theirs:
        SKLEARN_SEARCH[GridSearchCV](network(), grid, cv=OneShotSplitter()).fit(scaled, y)
    splitter = OneShotSplitter()
    search = GridSearchCV(network(), grid, cv=splitter)
    with pytest.raises(ValueError) as ours:
        search.fit(scaled, y)  # the splits are not drawn again: a second draw would give none
    assert str(ours.value) == str(theirs.value) and search.cv is splitter


def test_a_second_search_over_new_grid_values_compiles_nothing(iris):
    _, scaled, y = iris
    search = GridSearchCV(network(), {"learning_rate_init": [0.02, 0.2], "alpha": [1e-3, 0.3]}, cv=3)
    search.fit(scaled, y).predict(scaled)
    with compilations() as compiled:
        search.set_params(param_grid={"learning_rate_init": [0.005, 0.05], "alpha": [1e-5, 0.03]})
        search.fit(scaled, y).predict(scaled)
    assert compiled == []


def test_a_pipeline_with_memory_puts_its_fitted_steps_before_the_network_as_in_sklearn(iris, tmp_path):
    """With ``memory``, ``Pipeline`` fits clones of the steps before its last: the candidates' pipelines must
    hold those (the unfitted originals made every score NaN), both where the steps are fitted once per fold
    for candidates that leave them alone and where a candidate sets them.  Two steps before the network, as
    a pipeline of one step fits that step itself."""
    raw, _, y = iris
    steps = [("centre", StandardScaler(with_std=False)), ("scale", StandardScaler()), ("net", network())]
    pipe = Pipeline(steps, memory=str(tmp_path))
    grid = [{"net__alpha": [1e-4, 0.1]}, {"centre__with_mean": [False]}]
    ours, theirs, sizes = both(GridSearchCV, pipe, grid, raw, y, cv=3)
    assert sizes == [3 * 3]
    assert np.all(np.isfinite(ours.cv_results_["mean_test_score"]))
    assert_same_search(ours, theirs, raw)


@pytest.mark.parametrize(
    ("before", "weighted"),
    [([], False), ([], True), ([("skip", "passthrough")], True), ([("skip", None)], True)],
    ids=["alone", "alone-weighted", "passthrough-weighted", "none-weighted"],
)
def test_a_pipeline_with_no_steps_before_the_network_trains_it_as_one_population_as_in_sklearn(iris, before, weighted):
    """The network of ``Pipeline([("net", net)])`` (or after steps that pass X through) trains in the
    population with its ``net__sample_weight``; the pipeline itself was handed to ``fit_estimators``
    (fitted alone, and ``Pipeline.fit`` refused ``sample_weight``)."""
    _, scaled, y = iris
    weight = np.random.default_rng(1).uniform(0.5, 2.0, size=y.size)
    pipe = Pipeline([*before, ("net", network())])
    grid = {"net__alpha": [1e-4, 0.1]}
    fit_params = {"net__sample_weight": weight} if weighted else {}
    with mock.patch.object(model_selection, "fit_estimators", wraps=model_selection.fit_estimators) as spy:
        ours = GridSearchCV(pipe, grid, cv=3).fit(scaled, y, **fit_params)
    ((networks, datasets),) = [call.args for call in spy.call_args_list]
    assert [type(one) for one in networks] == [NeuralNetClassifier] * (2 * 3)
    assert all(len(data) == (3 if weighted else 2) for data in datasets)
    theirs = sklearn_model_selection.GridSearchCV(pipe, grid, cv=3).fit(scaled, y, **fit_params)
    assert_same_search(ours, theirs, scaled)


# --------------------------------------------------------------------------------------------------
# scikit-learn's own search tests, with jaxnn's classes in place of scikit-learn's.


def with_jaxnn_searches(source: str) -> str:
    """``source`` with ``GridSearchCV``/``RandomizedSearchCV`` rebound to jaxnn's right after its imports
    (before any decorator or test uses them), and a check that the rebinding took."""
    body = ast.parse(source).body
    end = 0
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            end = node.end_lineno
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):  # the module docstring
            break
    lines = source.splitlines(keepends=True)
    swap = (
        "from jaxnn.model_selection import GridSearchCV, RandomizedSearchCV  # jaxnn's tests swapped these in\n"
        "assert GridSearchCV.__module__ == RandomizedSearchCV.__module__ == 'jaxnn.sklearn.model_selection'\n"
    )
    return "".join([*lines[:end], swap, *lines[end:]])


def test_sklearns_search_tests_pass_with_jaxnn_searches(tmp_path):
    """All of ``sklearn/model_selection/tests/test_search.py`` (141 tests, 30 skipped for missing array
    libraries, in 1.9.1; about 30 s of CPU) in a subprocess, with sklearn's conftest as a plugin for its
    fixtures.  None is excluded: they use scikit-learn's estimators, so they exercise the fallback to
    scikit-learn's loop, which must behave exactly as scikit-learn's class does."""
    spec = importlib.util.find_spec("sklearn.model_selection.tests.test_search")
    if spec is None or importlib.util.find_spec("sklearn.conftest") is None:
        pytest.skip("this scikit-learn installation ships without its tests")
    module = tmp_path / "test_sklearn_search_with_jaxnn.py"
    module.write_text(with_jaxnn_searches(pathlib.Path(spec.origin).read_text()))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider", module.name]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


class CountingScaler(StandardScaler):
    """A StandardScaler that counts its fits (the class attribute, shared by its clones)."""

    fits = 0

    def fit(self, X, y=None, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


@pytest.mark.parametrize(
    ("grid", "expected_fits"),
    [
        ({"net__learning_rate_init": [0.01, 0.03], "net__alpha": [1e-4, 1e-2]}, 3),  # once per fold
        ({"net__learning_rate_init": [0.01, 0.03], "scale__with_std": [True, False]}, 4 * 3),  # per candidate
    ],
)
def test_steps_before_the_network_are_fitted_once_per_fold_when_the_grid_leaves_them_alone(iris, grid, expected_fits):
    x, _, y = iris
    pipe = Pipeline([("scale", CountingScaler()), ("net", network())])
    CountingScaler.fits = 0
    ours = GridSearchCV(pipe, grid, cv=3, refit=False).fit(x, y)
    assert CountingScaler.fits == expected_fits
    theirs = sklearn_model_selection.GridSearchCV(pipe, grid, cv=3, refit=False).fit(x, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], atol=1e-5)


def test_an_empty_cv_in_a_randomized_search_warns_of_a_small_space_once_then_fails_as_sklearn():
    """The candidates are drawn once, then scikit-learn's own loop raises its error about the splits; it drew them
    again, so ParameterSampler's warning that the space is smaller than n_iter was shown twice."""
    X, y = load_iris(return_X_y=True)
    search = RandomizedSearchCV(NeuralNetClassifier(max_iter=5), {"alpha": [1e-4, 1e-3]}, n_iter=5, cv=[])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="No fits were performed"):
            search.fit(X, y)
    small_space = [w for w in caught if str(w.message).startswith("The total space of parameters 2 is smaller")]
    assert len(small_space) == 1
