"""scikit-learn's callbacks (sklearn.callback, scikit-learn 1.9+) in the estimators, Pipeline and the searches:
their task tree, ProgressBar's output, ScoringMonitor's scores, the pace of the chunks, and a fit that stays
bitwise what it is without callbacks; without sklearn.callback the estimators have no set_callbacks."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import warnings
from collections import Counter

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jaxnn import NeuralNetClassifier, engine, fit_estimators
from jaxnn.model_selection import GridSearchCV

callback = pytest.importorskip("sklearn.callback", reason="scikit-learn before 1.9 has no callbacks")

X, Y = load_iris(return_X_y=True)
X = X.astype(np.float32)


def _network(**changes) -> NeuralNetClassifier:
    """One configuration for the whole module (one compiled loop): only max_iter and alpha change."""
    settings = {"hidden_layer_sizes": (8,), "learning_rate_init": 0.01, "max_iter": 30, "random_state": 0}
    return NeuralNetClassifier(**(settings | changes))


class Recorder:
    """A callback that writes down every task it hears of: (hook, estimator, task name, task id, the id of the
    parent task or None, fitted_estimator's accuracy on X or None).  Propagated to sub-estimators like
    ProgressBar (it has max_propagation_depth)."""

    max_propagation_depth = None

    def __init__(self):
        self.events = []
        self.lifecycle = []

    def setup(self, estimator, context):
        self.lifecycle.append(("setup", type(estimator).__name__))

    def teardown(self, estimator, context):
        self.lifecycle.append(("teardown", type(estimator).__name__))

    def _write(self, hook, estimator, context, fitted_estimator):
        parent = None if context.parent is None else context.parent.task_id
        accuracy = None if fitted_estimator is None else fitted_estimator.score(X, Y)
        self.events.append((hook, type(estimator).__name__, context.task_name, context.task_id, parent, accuracy))

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self._write("begin", estimator, context, fitted_estimator)

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self._write("end", estimator, context, fitted_estimator)

    def ended(self, task_name: str) -> list[tuple]:
        return [event for event in self.events if event[0] == "end" and event[2] == task_name]


@pytest.fixture
def console():
    """The output of rich's global console (ProgressBar's), 200 columns wide, as a log file gets it."""
    rich = pytest.importorskip("rich", reason="ProgressBar needs rich (jaxnn's dev dependencies install it)")
    shared = rich.get_console()
    saved = dict(shared.__dict__)
    buffer = io.StringIO()
    rich.reconfigure(file=buffer, width=200, force_terminal=False, color_system=None)
    yield buffer
    shared.__dict__ = saved


def _bars(text: str) -> dict[str, str]:
    """ProgressBar's last frame: each bar's description → its percentage."""
    bars = {}
    for line in text.splitlines():
        if "%" in line:
            description, _, rest = line.partition("━")
            bars[description.strip()] = rest.strip("━ ").split("%")[0].strip() + "%"
    return bars


def _quiet_fit(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# The pace of the chunks.


def test_chunks_are_sized_by_the_pace_of_the_last_one(monkeypatch):
    assert engine.epochs_within(1.0, None, first=10, longest=1024) == 10  # the first chunk measures the pace
    assert engine.epochs_within(1.0, None, first=10, longest=4) == 4
    assert engine.epochs_within(1.0, 0.003, first=10, longest=1024) == 333  # about a second at that pace
    assert engine.epochs_within(1.0, 2.5, first=10, longest=1024) == 1  # a slow epoch: one per chunk
    assert engine.epochs_within(1.0, 1e-9, first=10, longest=1024) == 1024  # the compiled chunk's buffer
    assert engine.epochs_within(1e300, 1e-300, first=10, longest=1024) == 1024  # no overflow
    assert engine.epochs_within(1.0, 0.0, first=10, longest=1024) == 1024  # nothing measured
    clock = iter([0.0, 0.5, 10.0, 10.0625, 11.0])  # the first chunk (10 epochs) took 0.5 s, the second (20) 1/16 s
    monkeypatch.setattr(engine.time, "perf_counter", lambda: next(clock))
    pace = engine.Pace(1.0, longest=1024)
    assert pace.size() == 10
    pace.ran(10)
    assert pace.size() == 20
    pace.ran(20)
    assert pace.size() == 320


def test_a_fit_with_callbacks_has_a_task_per_epoch_and_the_bits_of_one_without(monkeypatch):
    plain = _quiet_fit(_network(), X, Y)
    monkeypatch.setattr(engine, "CHUNK_SECONDS", 0.0)  # after the first chunk (10 epochs), one epoch per chunk
    recorder = Recorder()
    watched = _quiet_fit(_network().set_callbacks(recorder), X, Y)
    for got, want in zip([*watched.coefs_, *watched.intercepts_], [*plain.coefs_, *plain.intercepts_], strict=True):
        np.testing.assert_array_equal(got, want)
    assert watched.loss_curve_ == plain.loss_curve_
    epochs = recorder.ended("epoch")
    assert [event[3] for event in epochs] == list(range(30))  # one task per epoch, in order, under the fit
    assert {event[4] for event in epochs} == {0}
    # fitted_estimator comes with the last epoch of each chunk: 10, then every epoch after it
    chunk_ends = [event[3] + 1 for event in epochs if event[5] is not None]
    assert chunk_ends == list(range(10, 31))
    fit_begin, fit_end = recorder.events[0], recorder.events[-1]
    assert fit_begin[:4] == ("begin", "NeuralNetClassifier", "fit", 0)
    assert fit_end[:4] == ("end", "NeuralNetClassifier", "fit", 0) and fit_end[5] == plain.score(X, Y)
    assert recorder.lifecycle == [("setup", "NeuralNetClassifier"), ("teardown", "NeuralNetClassifier")]


def test_without_callbacks_the_engine_runs_without_a_hook(monkeypatch):
    hooks = []
    train = engine.train

    def spy(*args, hook=None, **kwargs):
        hooks.append(hook)
        return train(*args, hook=hook, **kwargs)

    monkeypatch.setattr(engine, "train", spy)
    _quiet_fit(_network(), X, Y)
    _quiet_fit(make_pipeline(StandardScaler(), _network()), X, Y)
    _quiet_fit(_network().set_callbacks(Recorder()).set_callbacks(), X, Y)  # set, then cleared
    assert hooks == [None, None, None]
    _quiet_fit(_network().set_callbacks(Recorder()), X, Y)
    assert isinstance(hooks[-1], engine.ChunkHook)


def test_scoring_monitor_scores_the_network_reached_at_each_chunk_end():
    monitor = callback.ScoringMonitor(scoring="accuracy")
    _quiet_fit(_network(max_iter=40).set_callbacks(monitor), X, Y)
    rows = {row["task_id_path"]: row["accuracy"] for row in monitor.get_logs().data}
    assert (0, 9) in rows  # the first chunk's last epoch: 10 epochs
    for path, accuracy in rows.items():  # each score is that of a fit stopped there
        epochs = 40 if len(path) == 1 else path[-1] + 1
        assert accuracy == _quiet_fit(_network(max_iter=epochs), X, Y).score(X, Y), path


# --------------------------------------------------------------------------------------------------
# ProgressBar: a fit, a Pipeline, the searches.


def test_progress_bar_shows_a_fit_a_pipeline_and_a_search(console):
    _quiet_fit(_network().set_callbacks(callback.ProgressBar()), X, Y)
    assert _bars(console.getvalue()) == {"NeuralNetClassifier - fit": "100%"}

    console.seek(0), console.truncate(0)
    pipeline = make_pipeline(StandardScaler(), _network()).set_callbacks(callback.ProgressBar())
    _quiet_fit(pipeline, X, Y)
    assert _bars(console.getvalue()) == {
        "Pipeline - fit": "100%",
        "Pipeline - fit-transform-standardscaler | StandardScaler - fit #0": "100%",
        "Pipeline - fit-final-estimator | NeuralNetClassifier - fit #1": "100%",
    }

    console.seek(0), console.truncate(0)
    search = GridSearchCV(_network(), {"alpha": [1e-4, 1e-2]}, cv=2).set_callbacks(callback.ProgressBar())
    _quiet_fit(search, X, Y)
    evaluation = "GridSearchCV - candidate-split-evaluation | NeuralNetClassifier - fit #"
    assert _bars(console.getvalue()) == {
        "GridSearchCV - fit": "100%",
        "GridSearchCV - search #0": "100%",
        **{f"{evaluation}{index}": "100%" for index in range(4)},
        "GridSearchCV - refit-with-best-params | NeuralNetClassifier - fit #1": "100%",
    }


def test_scikit_learns_search_propagates_to_the_network_as_to_its_own(console):
    from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV

    recorder = Recorder()
    search = SklearnGridSearchCV(_network(max_iter=12), {"alpha": [1e-4, 1e-2]}, cv=2)
    _quiet_fit(search.set_callbacks(callback.ProgressBar(), recorder), X, Y)
    assert len(_bars(console.getvalue())) == 7  # fit, search, 4 evaluations, refit: as above
    assert len(recorder.ended("epoch")) == 5 * 12  # every network's epochs, the refit's included


# --------------------------------------------------------------------------------------------------
# Populations: jaxnn's searches and fit_estimators.


def test_a_jaxnn_search_with_callbacks_trains_its_population_and_builds_scikit_learns_tree(monkeypatch):
    plain = _quiet_fit(GridSearchCV(_network(), {"alpha": [1e-4, 1e-2]}, cv=2), X, Y)
    monkeypatch.setattr(engine, "CHUNK_SECONDS", 0.0)
    recorder = Recorder()
    watched = _quiet_fit(GridSearchCV(_network(), {"alpha": [1e-4, 1e-2]}, cv=2).set_callbacks(recorder), X, Y)
    np.testing.assert_array_equal(watched.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(watched.best_estimator_.coefs_[0], plain.best_estimator_.coefs_[0])
    # the networks' fits, merged into their candidate-split-evaluation tasks (0-3), then the refit's (task 1)
    fits = [event for event in recorder.ended("fit") if event[1] == "NeuralNetClassifier"]
    assert [event[3] for event in fits] == [0, 1, 2, 3, 1]
    assert [event[2] for event in recorder.events if event[1] == "GridSearchCV"] == ["fit", "search", "search", "fit"]
    epochs = recorder.ended("epoch")
    assert len(epochs) == 5 * 30
    population = epochs[: 4 * 30]  # then the refit's
    assert sorted(Counter(event[4] for event in population).items()) == [(index, 30) for index in range(4)]
    # one population: every network hears of a chunk before any hears of the next (alone, they would not mix)
    last_of_first = max(position for position, event in enumerate(population) if event[4] == 0)
    assert {event[4] for event in population[:last_of_first]} == {0, 1, 2, 3}
    assert recorder.lifecycle == [("setup", "GridSearchCV"), ("teardown", "GridSearchCV")]


def test_a_search_over_a_pipeline_of_the_network_alone_builds_scikit_learns_tree():
    """A Pipeline's task tree has its steps: with callbacks, jaxnn's search runs scikit-learn's loop for any
    pipeline, one of the network alone included (whose network otherwise trains in the population)."""
    from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV
    from sklearn.pipeline import Pipeline

    trees = []
    for search_type in (GridSearchCV, SklearnGridSearchCV):
        recorder = Recorder()
        search = search_type(Pipeline([("net", _network(max_iter=5))]), {"net__alpha": [1e-4, 1e-2]}, cv=2)
        _quiet_fit(search.set_callbacks(recorder), X, Y)
        trees.append([event[:5] for event in recorder.events])
    assert ("end", "Pipeline", "fit") in {event[:3] for event in trees[0]}
    assert trees[0] == trees[1]


def test_fit_estimators_with_callbacks_gives_each_estimator_its_tree(monkeypatch):
    monkeypatch.setattr(engine, "CHUNK_SECONDS", 0.0)
    recorders = [Recorder(), Recorder()]
    networks = [_network(alpha=alpha).set_callbacks(r) for alpha, r in zip((1e-4, 1e-2), recorders, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = fit_estimators(networks, [(X, Y), (X, Y)])
        alone = _network(alpha=1e-2).fit(X, Y)
    np.testing.assert_allclose(fitted[1].coefs_[0], alone.coefs_[0], rtol=1e-6, atol=1e-7)
    for recorder in recorders:
        assert [event[3] for event in recorder.ended("epoch")] == list(range(30))
        assert recorder.lifecycle == [("setup", "NeuralNetClassifier"), ("teardown", "NeuralNetClassifier")]


def test_lbfgs_reports_its_iterations_and_an_ensemble_its_members():
    recorder = Recorder()
    lbfgs = _quiet_fit(_network(solver="lbfgs", max_iter=15).set_callbacks(recorder), X, Y)
    plain = _quiet_fit(_network(solver="lbfgs", max_iter=15), X, Y)
    np.testing.assert_array_equal(lbfgs.coefs_[0], plain.coefs_[0])
    assert [event[3] for event in recorder.ended("iteration")] == list(range(lbfgs.n_iter_))
    assert recorder.ended("iteration")[-1][5] == plain.score(X, Y)

    recorder = Recorder()
    ensemble = _quiet_fit(_network(n_ensemble=2, max_iter=12).set_callbacks(recorder), X, Y)
    members = recorder.ended("ensemble-member")
    assert [event[3] for event in members] == [0, 1] and all(event[5] is not None for event in members)
    assert sorted(event[4] for event in recorder.ended("epoch")) == [0] * 12 + [1] * 12
    assert recorder.ended("fit")[-1][5] == ensemble.score(X, Y)


class Probabilities(Recorder):
    """A Recorder that keeps fitted_estimator's predict_proba on X at each task's end, by task name."""

    def __init__(self):
        super().__init__()
        self.predicted, self.seeds = {}, {}

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if fitted_estimator is not None:
            self.predicted.setdefault(context.task_name, []).append(fitted_estimator.predict_proba(X))
            self.seeds.setdefault(context.task_name, []).append(getattr(fitted_estimator, "ensemble_seeds_", None))


@pytest.mark.parametrize("refit", [False, True], ids=["fresh", "refit"])
def test_an_ensemble_members_task_ends_with_that_member_alone(refit):
    """A member's fitted_estimator is a copy holding that member's network and seed: it predicted the whole
    ensemble on a fresh fit (the copy was made once the estimator held the ensemble), and the member on a refit,
    whose ensemble_seeds_ was the first member's."""
    recorder = Probabilities()
    ensemble = _network(n_ensemble=2, max_iter=12)
    if refit:
        _quiet_fit(ensemble, X, Y)
    _quiet_fit(ensemble.set_callbacks(recorder), X, Y)
    for k, predicted in enumerate(recorder.predicted["ensemble-member"]):
        alone = _quiet_fit(_network(max_iter=12, random_state=k), X, Y)
        np.testing.assert_allclose(predicted, alone.predict_proba(X), rtol=1e-6, atol=1e-7)
        assert list(recorder.seeds["ensemble-member"][k]) == [k]  # its own seed, random_state + k
    np.testing.assert_array_equal(recorder.predicted["fit"][-1], ensemble.predict_proba(X))


class Failing(Recorder):
    """A Recorder whose ``on_fit_task_end`` raises at the end of the task named ``task_name``."""

    def __init__(self, task_name: str):
        super().__init__()
        self.task_name = task_name

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        super().on_fit_task_end(estimator, context, fitted_estimator=fitted_estimator)
        if context.task_name == self.task_name:
            raise RuntimeError(f"callback failed at the end of {self.task_name!r}")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_callback_that_raises_at_the_fit_end_leaves_the_estimator_as_it_was(solver):
    network = _quiet_fit(_network(solver=solver, max_iter=5), X, Y)
    before = {name: value for name, value in vars(network).items() if name.endswith("_")}
    coefs = [w.copy() for w in network.coefs_]
    network.set_callbacks(Failing("fit"))
    with pytest.raises(RuntimeError, match="end of 'fit'"):
        _quiet_fit(network.set_params(max_iter=7), X[::2], Y[::2])
    assert {name: value for name, value in vars(network).items() if name.endswith("_")}.keys() == before.keys()
    assert network.n_iter_ == before["n_iter_"] and network.loss_curve_ == before["loss_curve_"]
    for got, want in zip(network.coefs_, coefs, strict=True):
        np.testing.assert_array_equal(got, want)
    # torn down all the same: putting the attributes back deleted the fit's callback context, so teardown was
    # skipped (ProgressBar's monitor thread then kept the process from exiting)
    assert network._skl_callbacks[0].lifecycle == [
        ("setup", "NeuralNetClassifier"),
        ("teardown", "NeuralNetClassifier"),
    ]
    assert not hasattr(network, "_callback_fit_ctx")


def test_a_fit_that_diverges_tears_its_callbacks_down_and_a_progress_bar_lets_the_process_exit():
    recorder = Recorder()
    diverging = _network(solver="sgd", learning_rate_init=1e6, momentum=0.9).set_callbacks(recorder)
    with pytest.raises(ValueError, match="training diverged"):
        _quiet_fit(diverging, X * 1e6, Y)
    assert recorder.lifecycle == [("setup", "NeuralNetClassifier"), ("teardown", "NeuralNetClassifier")]
    pytest.importorskip("rich", reason="ProgressBar needs rich")
    script = textwrap.dedent(
        """
        import numpy as np
        from sklearn.callback import ProgressBar
        from sklearn.datasets import load_iris
        from jaxnn import NeuralNetClassifier

        X, y = load_iris(return_X_y=True)
        network = NeuralNetClassifier((8,), solver="sgd", learning_rate_init=1e6, momentum=0.9, random_state=0)
        try:
            network.set_callbacks(ProgressBar()).fit(X.astype(np.float32) * 1e6, y)
        except ValueError as error:
            print("refused:", "training diverged" in str(error))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "refused: True" in done.stdout, done.stderr


def test_fit_estimators_returns_a_failing_callbacks_error_and_fits_the_others():
    failing = _network(max_iter=5).set_callbacks(Failing("epoch"))
    other = _network(max_iter=5, alpha=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        outcomes = fit_estimators([failing, other], [(X, Y), (X, Y)])
        alone = _network(max_iter=5, alpha=1e-2).fit(X, Y)
    assert isinstance(outcomes[0], RuntimeError) and "end of 'epoch'" in str(outcomes[0])
    assert not hasattr(failing, "coefs_")  # its fit failed: left as it was
    assert [hook for hook, _ in failing._skl_callbacks[0].lifecycle] == ["setup", "teardown"]
    assert outcomes[1] is other
    np.testing.assert_allclose(other.coefs_[0], alone.coefs_[0], rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# Without sklearn.callback.


def test_without_sklearn_callback_nothing_changes(tmp_path):
    script = textwrap.dedent(
        """
        import sys, warnings
        import numpy as np
        import sklearn.base, sklearn.model_selection, sklearn.pipeline  # scikit-learn's own modules: loaded
        sys.modules["sklearn.callback"] = None  # from here on, importing sklearn.callback fails
        from sklearn.datasets import load_iris
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        import jaxnn.sklearn.callbacks
        from jaxnn import NeuralNetClassifier
        from jaxnn.model_selection import GridSearchCV
        warnings.simplefilter("ignore")
        X, y = load_iris(return_X_y=True)
        X = X.astype(np.float32)
        net = NeuralNetClassifier((8,), learning_rate_init=0.01, max_iter=5, random_state=0)
        assert not jaxnn.sklearn.callbacks.AVAILABLE and not hasattr(net, "set_callbacks")
        net.fit(X, y)
        make_pipeline(StandardScaler(), net).fit(X, y)
        search = GridSearchCV(net, {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
        print("fitted", len(net.loss_curve_), search.cv_results_["mean_test_score"].shape)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fitted 5 (2,)"
