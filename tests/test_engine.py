"""The one road: every front end reaches the compiled loop through ``jaxnn.engine.train``, and no jaxnn module but
the engine imports the loop."""

from __future__ import annotations

import ast
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import jaxnn
from jaxnn import engine
from jaxnn.cli import main as cli_main
from jaxnn.data import iris_split, one_hot

PACKAGE = Path(jaxnn.__file__).parent


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_engine_imports_the_loop():
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if {"jaxnn._loop", "jaxnn.population"} & _imports_of(path)
    )
    assert importers == ["engine.py"]


@pytest.fixture
def engine_calls(monkeypatch):
    """The member count of every call of ``jaxnn.engine.train`` made inside a test."""
    calls = []
    real = engine.train

    def spy(spec, members, *args, **kwargs):
        calls.append(len(members.keys))
        return real(spec, members, *args, **kwargs)

    monkeypatch.setattr(engine, "train", spy)
    return calls


SPLIT = iris_split()
X, Y = SPLIT.x_train.astype(np.float32), SPLIT.y_train
MODEL = jaxnn.Sequential((jaxnn.Dense(6, "relu"), jaxnn.Dense(3, "identity")))


def test_fit_is_a_population_of_one_through_the_engine(engine_calls):
    params = MODEL.init(jax.random.key(0), 4)
    jaxnn.fit(MODEL, params, X, one_hot(Y, 3), loss="softmax_cross_entropy", epochs=3)
    assert engine_calls == [1]


def test_fit_many_goes_through_the_engine(engine_calls):
    params = MODEL.init_many(jax.random.split(jax.random.key(0), 3), 4)
    jaxnn.fit_many(MODEL, params, X, one_hot(Y, 3), loss="softmax_cross_entropy", epochs=3, group_size=3)
    assert engine_calls == [3]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_estimators_go_through_the_engine(engine_calls):
    jaxnn.NeuralNetClassifier((4,), solver="sgd", max_iter=3, random_state=0).fit(X, Y)
    jaxnn.NeuralNetClassifier((4,), solver="sgd", max_iter=3, random_state=0, n_ensemble=2).fit(X, Y)
    assert engine_calls == [1, 2]


def test_a_jaxnn_train_run_goes_through_the_engine(engine_calls, tmp_path):
    assert cli_main(["--epochs", "4", "--quiet", "--out", str(tmp_path / "one")]) == 0
    assert cli_main(["--epochs", "4", "--lr", "0.1,0.2", "--quiet", "--out", str(tmp_path / "two")]) == 0
    assert engine_calls and set(engine_calls) == {1, 2}


@pytest.fixture
def chunk_sizes(monkeypatch):
    """What each :func:`jaxnn.engine.run_chunks` call was asked to size its chunks by."""
    sizes = []
    real = engine.run_chunks

    def spy(*args, size, **kwargs):
        sizes.append(size)
        return real(*args, size=size, **kwargs)

    monkeypatch.setattr(engine, "run_chunks", spy)
    return sizes


def test_a_run_in_one_process_is_paced_so_ctrl_c_lands_soon_and_leaves_nothing_queued(chunk_sizes, monkeypatch):
    """Python sees a KeyboardInterrupt only between compiled calls, and a running program cannot be stopped: a
    run is cut into chunks of about a second, not 1,024 epochs whatever an epoch costs, with a stopping rule (every
    estimator's) or without one (whose chunks were all queued at once, and went on computing after Ctrl-C).
    Several processes must run the same chunks, which their own clocks would not give: they keep spec.chunk."""
    params = MODEL.init(jax.random.key(0), n_features=4)
    common = {"loss": "softmax_cross_entropy", "epochs": 3, "learning_rate": 0.1}
    jaxnn.fit(MODEL, params, X, one_hot(Y, 3), stopping=jaxnn.Stopping(tol=1e-4, n_iter_no_change=10), **common)
    jaxnn.fit(MODEL, params, X, one_hot(Y, 3), **common)
    assert [type(size) for size in chunk_sizes] == [engine.Pace, engine.Pace]
    spec = engine.RunSpec(MODEL, jaxnn.get_loss("softmax_cross_entropy"), optax.sgd(0.1), batch_size=0)
    monkeypatch.setattr(engine.jax, "process_count", lambda: 2)
    assert engine._chunk_size(spec, False, 1.0) == spec.chunk
    assert isinstance(engine._chunk_size(spec, True, 1.0), engine.Pace)  # a watched run is one process's
