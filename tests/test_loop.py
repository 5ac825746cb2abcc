"""The training loop's contract (``jaxnn._loop``): chunks, compile-once, bounded memory, epoch bounds,
layouts, and the step factory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, assert_trees_equal

import jaxnn
from jaxnn import _loop, engine
from jaxnn.data import one_hot

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8).astype(int)
Y = one_hot(LABELS, 3).astype(np.float32)
MODEL = jaxnn.Sequential((jaxnn.Dense(6, "tanh"), jaxnn.Dense(3, "identity")))
PARAMS = MODEL.init(jax.random.key(3), 3)
LOSS = jaxnn.get_loss("softmax_cross_entropy")
KEY = jax.random.key(7)


def _run(spec, epochs, start_epoch=0, params=PARAMS, opt_state=None, **data):
    return engine.train_one(
        spec,
        params=params,
        opt_state=spec.optimizer.init(params) if opt_state is None else opt_state,
        x=jnp.asarray(X),
        y=jnp.asarray(Y),
        weight=jnp.ones(len(X)),
        key=KEY,
        start_epoch=start_epoch,
        epochs=epochs,
        **data,
    )


SPECS = {
    "gd-full": _loop.RunSpec(MODEL, LOSS, jaxnn.gradient_descent(0.3), batch_size=len(X)),
    "adam-minibatch": _loop.RunSpec(MODEL, LOSS, optax.adam(0.02), batch_size=8),
    "sgd-rows": _loop.RunSpec(MODEL, LOSS, optax.sgd(0.1, momentum=0.9), batch_size=16, layout="rows"),
}


@pytest.mark.parametrize("name", SPECS)
def test_chunk_boundaries_do_not_change_the_result(name):
    """The driver calls the compiled loop once per chunk; where the chunks end changes no bit."""
    spec = SPECS[name]
    whole = _run(spec, 23)
    for chunk in (1, 4, 7):
        chunked = _run(spec._replace(chunk=chunk), 23)
        assert_trees_equal(chunked.params, whole.params)
        assert_trees_equal(chunked.opt_state, whole.opt_state)
        np.testing.assert_array_equal(chunked.history, whole.history)
        assert chunked.n_epochs == whole.n_epochs == 23 and not chunked.diverged


def test_stopping_rule_carries_over_chunk_boundaries():
    stopping = jaxnn.Stopping(tol=1e-3, n_iter_no_change=3)
    spec = SPECS["adam-minibatch"]._replace(stopping=stopping)
    whole = _run(spec, 5000)
    assert 3 < whole.n_epochs < 5000  # it stopped early
    for chunk in (2, 5):
        chunked = _run(spec._replace(chunk=chunk), 5000)
        assert chunked.n_epochs == whole.n_epochs
        assert_trees_equal(chunked.params, whole.params)
        np.testing.assert_array_equal(chunked.history, whole.history)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"batch_size": 8, "key": KEY, "optimizer": optax.adam(0.01)},
        {"stopping": jaxnn.Stopping(1e-4, 5)},
    ],
    ids=["full-batch", "minibatch", "stopping"],
)
def test_a_new_number_of_epochs_compiles_nothing(options):
    if "optimizer" not in options:
        options = {**options, "learning_rate": 0.05}
    results = {}
    for epochs in (5, 1):  # the first call may compile
        results[epochs] = jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=epochs, **options)
    before = _loop.compiled_programs()
    for epochs in (2, 17, 1500, 3001):
        results[epochs] = jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=epochs, **options)
    assert _loop.compiled_programs() == before
    assert len(results[3001].history) == results[3001].n_epochs <= 3001
    np.testing.assert_array_equal(results[17].history[:5], results[5].history)  # same run, longer


def test_memory_does_not_grow_with_the_epochs_asked_for():
    """A run that stops early returns (and allocates) the history of the epochs it ran, not of max epochs:
    asking for a billion epochs would otherwise need gigabytes."""
    result = jaxnn.fit(
        MODEL, PARAMS, X, Y, loss=LOSS, epochs=10**9, learning_rate=0.3, stopping=jaxnn.Stopping(1e-3, 2)
    )
    assert result.n_epochs < 5000 and result.history.shape == (result.n_epochs,)
    assert result.validation_scores.shape == (result.n_epochs,)


def test_the_epoch_counter_bound_covers_start_epoch_plus_epochs():
    """``start_epoch + epochs`` past 2**32 used to wrap the counter: no epoch ran but n_epochs said 20."""
    with pytest.raises(ValueError, match=r"start_epoch \+ epochs = 4294967306 passes the 32-bit epoch counter"):
        jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=20, start_epoch=2**32 - 10)
    last = jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=10, start_epoch=2**32 - 11, learning_rate=0.1)
    assert last.n_epochs == 10 and len(last.history) == 10 and np.all(np.isfinite(last.history))


def test_a_diverged_run_ends_its_history_with_the_epoch_that_went_non_finite():
    result = jaxnn.fit(MODEL, PARAMS, X * 1e3, Y, loss="mean_squared_error", epochs=500, learning_rate=1e6)
    assert result.diverged
    assert len(result.history) == result.n_epochs + 1
    assert np.all(np.isfinite(result.history[:-1])) and np.isnan(result.history[-1])
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))


@pytest.mark.parametrize("optimizer", [jaxnn.gradient_descent(0.2), optax.adam(0.01)], ids=["gd", "adam"])
def test_the_row_and_column_layouts_compute_the_same_training(optimizer):
    columns, rows = (
        jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=30, optimizer=optimizer, layout=layout)
        for layout in ("columns", "rows")
    )
    assert_trees_close(rows.params, columns.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rows.history, columns.history, rtol=1e-5)
    with pytest.raises(ValueError, match="layout must be one of 'columns', 'rows'"):
        jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, layout="diagonal")


def _network(widths):
    return jaxnn.Sequential((*tuple(jaxnn.Dense(units, "relu") for units in widths), jaxnn.Dense(3, "softmax")))


@pytest.mark.parametrize(
    ("n_features", "hidden", "layout"),
    [
        (4, (10, 5), "columns"),  # the seed's iris network: columns won at widths 4 and 16 of the sweep
        (16, (16, 16), "columns"),
        (32, (32, 32), "columns"),  # the threshold: the widest layer the sweep saw columns win
        (64, (64, 64), "rows"),  # from width 64 columns lost (Adam and minibatches most)
        (4, (100,), "rows"),  # scikit-learn's default hidden layer
        (784, (256, 128), "rows"),  # issue 20's medium table: columns lost 2.2× there
        (784, (8,), "rows"),  # wide inputs alone: their minibatches are gathered as columns
    ],
)
def test_the_layout_is_chosen_by_the_widest_layer_at_the_measured_points(n_features, hidden, layout):
    """engine.decide_layout on XLA's CPU backend at points of benchmarks/layout_sweep.py's sweep (the table in
    benchmarks/README.md); accelerators always take rows, and a layout given by name wins."""
    model = _network(hidden)
    assert engine.decide_layout(None, model, n_features, backend="cpu") == layout
    assert engine.decide_layout(None, model, n_features, backend="gpu") == "rows"
    assert engine.decide_layout("columns", model, n_features, backend="gpu") == "columns"


def test_fit_asks_for_the_layout_with_the_network_and_its_input_width(monkeypatch):
    asked = []
    original = engine.decide_layout

    def spy(layout, model, n_features=None, backend=None):
        asked.append((layout, tuple(layer.units for layer in model.layers), n_features))
        return original(layout, model, n_features, backend)

    monkeypatch.setattr(engine, "decide_layout", spy)
    jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1)
    assert asked[-1] == (None, tuple(layer.units for layer in MODEL.layers), X.shape[1])


def test_loop_forward_equals_model_apply():
    for layout in _loop.LAYOUTS:
        spec = SPECS["gd-full"]._replace(layout=layout)
        np.testing.assert_allclose(_loop.forward(spec, PARAMS, X), MODEL.apply(PARAMS, X), rtol=1e-5, atol=1e-6)


# The step factory.


@pytest.mark.parametrize("layout", _loop.LAYOUTS)
def test_make_train_step_is_the_public_step(layout):
    optimizer = optax.adam(0.01)
    step = jaxnn.make_train_step(MODEL, "softmax_cross_entropy", optimizer, layout=layout)
    params, state = PARAMS, optimizer.init(PARAMS)
    for _ in range(3):
        params, state, value = step(params, state, X, Y)
    public = jaxnn.train_step(MODEL, LOSS, optimizer, PARAMS, optimizer.init(PARAMS), X, Y)
    reference_loss = LOSS(MODEL.apply(PARAMS, X), Y)
    first = jaxnn.make_train_step(MODEL, LOSS, optimizer, layout=layout)(PARAMS, optimizer.init(PARAMS), X, Y)
    np.testing.assert_allclose(first[2], reference_loss, rtol=1e-5)
    np.testing.assert_allclose(public[2], reference_loss, rtol=1e-5)
    assert float(value) < float(reference_loss)


def test_make_train_step_checks_its_arguments_once_and_shapes_when_they_change():
    with pytest.raises(TypeError, match=r"model must be a jaxnn\.Sequential"):
        jaxnn.make_train_step("mlp", LOSS, optax.sgd(0.1))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        jaxnn.make_train_step(MODEL, "hinge", optax.sgd(0.1))
    with pytest.raises(TypeError, match=r"optimizer must be an optax\.GradientTransformation"):
        jaxnn.make_train_step(MODEL, LOSS, "adam")
    step = jaxnn.make_train_step(MODEL, LOSS, optax.sgd(0.1))
    state = optax.sgd(0.1).init(PARAMS)
    with pytest.raises(ValueError, match=r"y must have shape \(40, 3\)"):
        step(PARAMS, state, X, Y[:, :2])
    with pytest.raises(ValueError, match=r"layer 0 \(6 units\) expects W of shape \(2, 6\)"):
        step(PARAMS, state, X[:, :2], Y)
    with pytest.raises(ValueError, match=r"weight must have shape \(40,\)"):
        step(PARAMS, state, X, Y, np.ones(3, np.float32))
    # These failed inside JAX ("Error interpreting argument to functools.partial(...)"), naming no argument:
    import pandas as pd

    with pytest.raises(TypeError, match=r"x must be an array .*pass jnp\.asarray\(x\); got DataFrame"):
        step(PARAMS, state, pd.DataFrame(np.asarray(X)), Y)
    with pytest.raises(TypeError, match=r"y must be real numbers, got dtype <U"):
        step(PARAMS, state, X, np.asarray(Y).astype(str))


def test_an_estimator_with_a_huge_max_iter_that_stops_early_needs_little_memory():
    """Issue: ``NeuralNetClassifier((10,), max_iter=10**8)`` on iris stopped after ~236 epochs but peaked at
    1.9 GB (a full-length history was allocated).  Now the memory does not depend on max_iter."""
    import subprocess
    import sys

    code = (
        "from jaxnn import NeuralNetClassifier\n"
        "from jaxnn.data import load_iris\n"
        "iris = load_iris()\n"
        "clf = NeuralNetClassifier((10,), max_iter=10**8, random_state=0).fit(iris.x, iris.y)\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(clf.n_iter_, len(clf.loss_curve_), int(peak) // 1024)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    n_iter, curve, peak_mb = map(int, output.stdout.split())
    assert n_iter == curve < 10_000
    assert peak_mb < 800, f"peak memory {peak_mb} MiB"  # import jax + scikit-learn is ~300 MiB; was 1,900
