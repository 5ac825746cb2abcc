"""Dropout (``jaxnn.dropout``): a wrong rule is caught, its masks keep the mean, it changes training and never
prediction, ``dropout=0`` is the program without it, and it works in the loop's layouts, in populations, in the
searches and in ``jaxnn-train``.

The rule itself is checked with every other op's in ``tests/test_gradcheck.py`` (fixed points in both dtypes and
hypothesis shapes, the mask held fixed).  Everything here trains one small network, so that the few compiled
programs it needs are shared between the tests.
"""

from __future__ import annotations

import math
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cli_support import metrics, train
from helpers import assert_trees_close, assert_trees_equal

import jaxnn
from jaxnn import checkpoint, engine
from jaxnn.cli import options
from jaxnn.cli.errors import CliError
from jaxnn.dropout import Dropout, dropout, keep_mask
from jaxnn.model_selection import GridSearchCV
from jaxnn.sklearn import model_selection

# The estimators here train 6 epochs on purpose; MLP's convergence warning says nothing about dropout.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 3)).astype(np.float32)
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
Y = np.eye(3, dtype=np.float32)[LABELS]
MODEL = jaxnn.Sequential((jaxnn.Dense(6, "tanh"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3)))
PARAMS = MODEL.init(jax.random.key(0), 3)
KEY = jax.random.key(1)
# Three minibatches per epoch: the steps draw their masks from their own keys.
FIT = {"loss": "softmax_cross_entropy", "epochs": 6, "batch_size": 8, "learning_rate": 0.2, "key": KEY}
NET = {"solver": "sgd", "max_iter": 6, "random_state": 0, "learning_rate_init": 0.1, "batch_size": 8}


def _numpy_forward(params, x):
    """The network written out in NumPy: tanh, relu, identity; nothing dropped, nothing scaled."""
    (w0, b0), (w1, b1), (w2, b2) = ((np.asarray(p["W"], np.float64), np.asarray(p["b"], np.float64)) for p in params)
    return np.maximum(np.tanh(x @ w0 + b0) @ w1 + b1, 0.0) @ w2 + b2


@pytest.fixture(scope="module")
def plain():
    return jaxnn.fit(MODEL, PARAMS, X, Y, **FIT)


@pytest.fixture(scope="module")
def dropped():
    return jaxnn.fit(MODEL, PARAMS, X, Y, dropout=0.5, **FIT)


# --------------------------------------------------------------------------------------------------
# The rule and the masks.


WRONG_RULES = {
    "forgets the scale 1/(1 - p)": lambda g, x, m, p: g * m,
    "ignores the mask": lambda g, x, m, p: g / (1 - p),
    "scales by 1 - p": lambda g, x, m, p: g * m * (1 - p),
    "flips the mask": lambda g, x, m, p: g * (1 - m) / (1 - p),
}


@pytest.mark.parametrize("wrong", WRONG_RULES.values(), ids=WRONG_RULES.keys())
def test_a_wrong_dropout_rule_is_caught_by_both_referees(wrong):
    """With the mask held fixed (x the only primal), the rule passes and a wrong one is caught by autodiff of the
    plain forward; where the forward is itself an op with the wrong rule (so autodiff only replays it), the
    finite differences still catch it."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.uniform(-2.0, 2.0, (4, 3)))
        m = jnp.asarray((rng.uniform(size=(4, 3)) >= 0.4).astype(float)).at[0, 0].set(0.0).at[0, 1].set(1.0)
        p = jnp.asarray(0.4)
        jaxnn.check_vjp(lambda x: dropout.forward(x, m, p), lambda g, x: dropout.vjp(g, x, m, p)[:1], x)  # the rule
        with pytest.raises(jaxnn.GradcheckError, match=r"disagrees with jax\.vjp"):
            jaxnn.check_vjp(lambda x: dropout.forward(x, m, p), lambda g, x: (wrong(g, x, m, p),), x)
        fake = jaxnn.make_op(
            dropout.forward, lambda g, y, x, m, p: (wrong(g, x, m, p), *dropout.backward(g, y, x, m, p)[1:])
        )
        with pytest.raises(jaxnn.GradcheckError, match="disagrees with finite differences"):
            jaxnn.check_vjp(lambda x: fake(x, m, p), lambda g, x: fake.vjp(g, x, m, p)[:1], x)
        # The real rule is what jax.grad runs: a dropped unit passes nothing, a kept one 1/(1 - p).
        np.testing.assert_array_equal(jax.grad(lambda x: dropout(x, m, p).sum())(x), m / (1 - p))


def _loss_and_grads(params, custom_rules: bool):
    """The loss of one training step's forward (masks from one step key) and its gradient: through the
    hand-written rules, or JAX's autodiff of the plain forwards."""
    step = Dropout(jax.random.key(2), jnp.asarray([0.5, 0.3], jnp.float32))
    loss = jaxnn.get_loss("softmax_cross_entropy")
    objective = loss if custom_rules else loss.forward
    return jax.value_and_grad(lambda p: objective(step.forward(MODEL, p, X, custom_rules=custom_rules), Y))(params)


def _both_ways(params):
    return _loss_and_grads(params, True), _loss_and_grads(params, False)


def test_a_network_with_dropout_runs_the_rule_and_a_wrong_one_changes_its_gradient(monkeypatch):
    """``jax.grad`` through a network with dropout (the rules) equals autodiff of its plain forwards with the
    same masks, until the dropout rule is replaced by a wrong one (so the rule is what runs)."""
    (value, hand), (plain_value, reference) = jax.jit(_both_ways)(PARAMS)
    np.testing.assert_allclose(value, plain_value, rtol=1e-6)
    assert_trees_close(hand, reference, rtol=1e-5, atol=1e-6, what="rules vs autodiff")
    unscaled = jaxnn.make_op(dropout.forward, lambda g, y, x, m, p: (g * m, g * x, jnp.zeros_like(p)), name="unscaled")
    monkeypatch.setattr(jaxnn.dropout, "dropout", unscaled)
    _, wrong = jax.jit(lambda params: _loss_and_grads(params, True))(PARAMS)  # traced anew, with the wrong rule
    assert not np.allclose(wrong[0]["W"], reference[0]["W"], rtol=1e-3)


def test_the_column_layout_trains_as_the_row_layout_with_the_same_masks(dropped):
    rows = jaxnn.fit(MODEL, PARAMS, X, Y, dropout=0.5, layout="rows", **FIT)
    assert_trees_close(rows.params, dropped.params, rtol=1e-4, atol=1e-5)  # tests/test_loop.py's layout bound
    np.testing.assert_allclose(rows.history, dropped.history, rtol=1e-5)


def test_the_mean_of_dropout_over_many_masks_is_its_input():
    """E[x·m/(1 − p)] = x: over 20000 masks the mean of every element is within 5 standard errors of x, and the
    share of dropped units within 5 of p (fixed keys: the same draws every run)."""
    x = jnp.asarray(np.random.default_rng(4).uniform(0.5, 2.0, (4, 5)), jnp.float32)
    rate, n_masks = 0.3, 20000
    keys = jax.random.split(jax.random.key(5), n_masks)
    draw = jax.jit(jax.vmap(lambda key: Dropout(key, jnp.asarray([rate])).apply(x, 0)))
    outputs = np.asarray(draw(keys), np.float64)
    standard_error = np.asarray(x) * math.sqrt(rate / (1 - rate)) / math.sqrt(n_masks)
    assert np.all(np.abs(outputs.mean(axis=0) - np.asarray(x)) < 5 * standard_error)
    dropped = np.mean(outputs == 0)
    assert abs(dropped - rate) < 5 * math.sqrt(rate * (1 - rate) / outputs.size)
    kept = outputs[outputs != 0]
    np.testing.assert_allclose(kept / np.broadcast_to(np.asarray(x), outputs.shape)[outputs != 0], 1 / (1 - rate))


def test_masks_are_the_same_in_both_layouts_and_rate_0_keeps_everything():
    x = jnp.asarray(np.random.default_rng(6).normal(size=(7, 4)), jnp.float32)
    step = Dropout(jax.random.key(8), jnp.asarray([0.0, 0.6], jnp.float32))
    np.testing.assert_array_equal(step.apply(x, 0), x)
    np.testing.assert_array_equal(step.apply(x.T, 1, columns=True), step.apply(x, 1).T)
    # A row's mask depends on its position only: rows appended after it (padding) leave it as it is.
    np.testing.assert_array_equal(
        keep_mask(KEY, 0.5, (9, 4), jnp.float32)[:7], keep_mask(KEY, 0.5, (7, 4), jnp.float32)
    )


# --------------------------------------------------------------------------------------------------
# Training and prediction.


def test_dropout_0_is_the_program_without_dropout(plain):
    """``dropout=0`` (in any spelling) runs the very program of a fit without the keyword: no mask in it, so
    bitwise the same training, and nothing new compiled."""
    programs = engine.compiled_programs()
    for zero in (0, 0.0, [0.0, 0.0], np.zeros(2)):
        result = jaxnn.fit(MODEL, PARAMS, X, Y, dropout=zero, **FIT)
        assert_trees_equal(result.params, plain.params)
        np.testing.assert_array_equal(result.history, plain.history)
    assert engine.compiled_programs() == programs


def test_dropout_changes_training_but_never_prediction(plain, dropped):
    assert not np.allclose(dropped.history, plain.history)
    assert not np.allclose(dropped.params[0]["W"], plain.params[0]["W"])
    first, second = MODEL.apply(dropped.params, X), MODEL.apply(dropped.params, X)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, _numpy_forward(dropped.params, X), rtol=1e-5, atol=1e-6)
    spec = engine.RunSpec(MODEL, jaxnn.get_loss("softmax_cross_entropy"), optax.sgd(0.1), batch_size=8, dropout=True)
    np.testing.assert_allclose(engine.forward(spec, dropped.params, X), first, rtol=1e-5, atol=1e-6)


def test_a_run_with_dropout_is_reproducible_and_split_fits_equal_the_unsplit_fit(dropped):
    again = jaxnn.fit(MODEL, PARAMS, X, Y, dropout=0.5, **FIT)
    assert_trees_equal(again.params, dropped.params)
    first = jaxnn.fit(MODEL, PARAMS, X, Y, dropout=0.5, **(FIT | {"epochs": 2}))
    rest = jaxnn.fit(
        MODEL, first.params, X, Y, dropout=0.5, start_epoch=2, opt_state=first.opt_state, **(FIT | {"epochs": 4})
    )
    assert_trees_equal(rest.params, dropped.params)
    np.testing.assert_array_equal(np.concatenate([first.history, rest.history]), dropped.history)


def _negative_mse(outputs, y):
    return -jnp.mean((outputs - y) ** 2)


def test_the_validation_score_of_the_stopping_rule_never_drops():
    """With validation data the loop keeps the best-scoring epoch's parameters; their score, recomputed by the
    plain forward, is the best score the loop recorded (a score with dropout would be another number)."""
    result = jaxnn.fit(
        MODEL, PARAMS, X[:16], Y[:16], dropout=0.6, stopping=jaxnn.Stopping(0.0, math.inf),
        validation=(X[16:], Y[16:]), score=_negative_mse, **FIT,
    )  # fmt: skip
    assert np.all(np.isfinite(result.validation_scores))
    recomputed = _negative_mse(_numpy_forward(result.params, X[16:]), Y[16:])
    np.testing.assert_allclose(np.max(result.validation_scores), recomputed, rtol=1e-5)


def test_estimators_train_with_dropout_and_predict_without_it():
    x, labels = X[:16], LABELS[:16]  # the row count of the searches' folds below: their lone fits share this program
    dropping = jaxnn.NeuralNetClassifier((6, 5), dropout=[0.5, 0.2], **NET).fit(x, labels)
    other_rates = jaxnn.NeuralNetClassifier((6, 5), dropout=[0.1, 0.4], **NET).fit(x, labels)  # the same program
    assert not np.allclose(dropping.loss_curve_, other_rates.loss_curve_)  # the rates reach the loop
    probabilities = dropping.predict_proba(X)
    np.testing.assert_array_equal(dropping.predict_proba(X), probabilities)
    hidden = np.maximum(X @ dropping.coefs_[0] + dropping.intercepts_[0], 0.0)
    np.testing.assert_allclose(
        dropping.transform(X),
        np.maximum(hidden @ dropping.coefs_[1] + dropping.intercepts_[1], 0),
        rtol=1e-5,
        atol=1e-6,
    )
    logits = dropping.transform(X) @ dropping.coefs_[2] + dropping.intercepts_[2]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dropping.predict(X), np.argmax(probabilities, axis=1))
    assert dropping.get_params()["dropout"] == [0.5, 0.2] and jaxnn.NeuralNetClassifier().dropout == 0.0


def test_float32_and_float64_input_drop_the_same_units_and_fit_the_same_model():
    """The masks were drawn in the data's dtype, so float32 and float64 input trained different models (weights
    0.02 apart after one epoch at rate 0.3), against the README's 'both fit the same model'."""
    fitted = [
        jaxnn.NeuralNetClassifier((6, 5), dropout=0.3, **NET).fit(X.astype(dtype), LABELS)
        for dtype in (np.float32, np.float64)
    ]
    assert fitted[1].coefs_[0].dtype == np.float64
    for single, double in zip(fitted[0].coefs_, fitted[1].coefs_, strict=True):
        np.testing.assert_allclose(single, double, rtol=1e-4, atol=1e-5)
    for dtype in (jnp.float32, jnp.bfloat16):  # the draw is float32 whatever the mask's dtype
        mask = keep_mask(jax.random.key(0), 0.3, (40, 7), dtype)
        np.testing.assert_array_equal(
            np.asarray(mask, np.float32), keep_mask(jax.random.key(0), 0.3, (40, 7), jnp.float32)
        )
        assert mask.dtype == dtype


# --------------------------------------------------------------------------------------------------
# Populations and searches.


def test_a_population_with_rates_per_member_equals_the_fits_alone():
    """Members at their own rates (one at 0, which the population's program runs with masks of ones) end as
    their fits alone do, to the populations' bound (tests/test_population.py)."""
    rates = np.asarray([[0.5, 0.5], [0.4, 0.0], [0.0, 0.0]])
    keys = jax.random.split(KEY, 3)
    params = engine.stacked([jax.tree.map(lambda leaf, s=s: s * np.asarray(leaf), PARAMS) for s in (1.0, -1.0, 2.0)])
    population = jaxnn.fit_many(MODEL, params, X, Y, dropout=rates, **(FIT | {"key": keys}))
    for i in range(3):
        alone = jaxnn.fit(MODEL, engine.member(params, i), X, Y, dropout=rates[i], **(FIT | {"key": keys[i]}))
        assert_trees_close(engine.member(population.params, i), alone.params, rtol=2e-5, atol=2e-6)
    # (P, 1): one rate per member for every hidden layer, the same program as (P, n_hidden).
    one_each = jaxnn.fit_many(MODEL, params, X, Y, dropout=[[0.5], [0.4], [0.0]], **(FIT | {"key": keys}))
    spelled_out = jaxnn.fit_many(MODEL, params, X, Y, dropout=[[0.5, 0.5], [0.4, 0.4], [0, 0]], **(FIT | {"key": keys}))
    assert_trees_equal(one_each.params, spelled_out.params)


def test_a_grid_search_over_dropout_is_one_population_compiled_once():
    calls = []
    real = model_selection.fit_estimators

    def spy(estimators, datasets):
        before = engine.compiled_programs()
        outcomes = real(estimators, datasets)
        calls.append((len(estimators), engine.compiled_programs() - before))
        return outcomes

    grid = {"dropout": [0.2, 0.5, [0.4, 0.1]]}
    with mock.patch.object(model_selection, "fit_estimators", spy):
        search = GridSearchCV(jaxnn.NeuralNetClassifier((6, 5), **NET), grid, cv=3, refit=False).fit(X, LABELS)
    assert len(calls) == 1 and calls[0][0] == 3 * 3  # every candidate × fold in one population ...
    assert calls[0][1] <= 1  # ... of one compiled program (none when an earlier test built it)
    assert search.best_params_["dropout"] in grid["dropout"]
    # Members end as their fits alone (five members on 16 rows each: the search's program again).
    rates = [*grid["dropout"], 0.3, [0.1, 0.6]]
    datasets = [(np.roll(X, 3 * k, axis=0)[:16], np.roll(LABELS, 3 * k)[:16]) for k in range(5)]
    programs = engine.compiled_programs()
    fitted = jaxnn.fit_estimators([jaxnn.NeuralNetClassifier((6, 5), dropout=r, **NET) for r in rates], datasets)
    assert engine.compiled_programs() == programs
    for k in (1, 2):
        alone = jaxnn.NeuralNetClassifier((6, 5), dropout=rates[k], **NET).fit(*datasets[k])
        for ours, theirs in zip(fitted[k].coefs_, alone.coefs_, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)


# --------------------------------------------------------------------------------------------------
# Bad values, and jaxnn-train.


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (1.0, ValueError, r"dropout rates must be in \[0, 1\)"),
        (-0.1, ValueError, r"dropout rates must be in \[0, 1\)"),
        (math.nan, ValueError, r"dropout rates must be in \[0, 1\)"),
        # below 1, but 1 in float32, in which the masks are drawn: every unit dropped, 0/0 in the scaling
        (0.99999999, ValueError, r"must not round a rate to 1: at most 0\.99999994\), got 0\.99999999$"),
        ([0.2, 1 - 1e-10], ValueError, r"must not round a rate to 1"),
        ([0.2], ValueError, "dropout lists 1 rates but the model has 2 hidden layers"),
        ([[0.2, 0.2]], ValueError, r"one rate, one per hidden layer \(2\); got shape \(1, 2\)"),
        ("0.5", TypeError, "dropout must be a number in"),
        (True, TypeError, "dropout must be a number in"),
        (None, TypeError, "dropout must be a number in"),
    ],
)
def test_fit_refuses_bad_dropout_values(value, error, message):
    with pytest.raises(error, match=message):
        jaxnn.fit(MODEL, PARAMS, X, Y, dropout=value, **FIT)


def test_fit_needs_a_key_and_hidden_layers_for_dropout_and_fit_many_one_row_per_member():
    with pytest.raises(ValueError, match=r"dropout draws new masks every step: pass key=jax.random.key\(seed\)"):
        jaxnn.fit(MODEL, PARAMS, X, Y, dropout=0.2, **(FIT | {"key": None, "batch_size": None}))
    flat = jaxnn.Sequential((jaxnn.Dense(3),))
    with pytest.raises(ValueError, match="the model has no hidden layer"):
        jaxnn.fit(flat, [{"W": np.zeros((3, 3), np.float32), "b": np.zeros(3, np.float32)}], X, Y, dropout=0.2, **FIT)
    params = engine.stacked([PARAMS, PARAMS])
    with pytest.raises(ValueError, match=r"dropout per member must have shape \(2, 2\) \(or \(2, 1\)"):
        jaxnn.fit_many(MODEL, params, X, Y, dropout=np.zeros((3, 2)), **FIT)
    # one hidden layer: (P, 1) is the only shape, said once (it was "(2, 1) (or (2, 1): one rate per member ...)")
    one_hidden = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3)))
    pair = engine.stacked([one_hidden.init(jax.random.key(0), X.shape[1])] * 2)
    with pytest.raises(ValueError, match=r"^dropout per member must have shape \(2, 1\), got \(2, 2\)$"):
        jaxnn.fit_many(one_hidden, pair, X, Y, dropout=np.zeros((2, 2)), **FIT)
    # a rate per member given flat, (P,): the per-member shapes are named too (only the per-layer one was)
    with pytest.raises(
        ValueError,
        match=r"lists 2 rates but the model has 1 hidden .*, or one row per member: shape \(2, 1\)$",
    ):
        jaxnn.fit_many(one_hidden, pair, X, Y, dropout=np.array([0.1, 0.3]), **FIT)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\) \(the probability of dropping a hidden unit;"),
        ({"dropout": "high"}, r"dropout must be a number in \[0, 1\)"),
        ({"dropout": [0.1, 0.99999999]}, r"at most 0\.99999994, which float32 does not round to 1"),
        ({"dropout": [0.1, 0.2, 0.3]}, "dropout lists 3 rates but hidden_layer_sizes has 2 layers"),
        ({"dropout": 0.2, "hidden_layer_sizes": ()}, r"hidden_layer_sizes=\(\) has none; set dropout=0"),
        ({"dropout": 0.2, "solver": "lbfgs"}, "solver='lbfgs' minimises the full-batch loss without dropout"),
    ],
)
def test_estimators_refuse_bad_dropout_values(settings, message):
    with pytest.raises(ValueError, match=message):
        jaxnn.NeuralNetClassifier(**({"hidden_layer_sizes": (6, 5)} | NET | settings)).fit(X, LABELS)


def test_jaxnn_train_records_dropout_and_a_resumed_run_keeps_it(tmp_path, capsys):
    """The rate is a run option: in the summary line, metrics.json and the checkpoint, which a resumed run (that
    does not repeat --dropout) continues with; giving another rate on --resume is refused."""
    assert train("--epochs", "3", "--dropout", "0.3", "--quiet", "--out", tmp_path) == 0
    assert "gd lr 0.1, full batch, dropout 0.3" in capsys.readouterr().out
    assert metrics(tmp_path)["options"]["dropout"] == 0.3
    assert train("--resume", tmp_path, "--epochs", "5", "--quiet") == 0
    assert "full batch, dropout 0.3" in capsys.readouterr().out
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["dropout"] == 0.3
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["epoch"] == 5
    with pytest.raises(SystemExit):
        train("--resume", tmp_path, "--epochs", "6", "--dropout", "0.1")
    assert "--dropout 0.1 differs from 0.3" in capsys.readouterr().err
    stored = checkpoint.read_config(tmp_path / "checkpoint.npz")
    path = tmp_path / "checkpoint.npz"
    assert options.stored_options({k: v for k, v in stored.items() if k != "dropout"}, path)["dropout"] == 0.0  # older
    for tampered, named in (
        ({"dropout": 1.5}, r"invalid --dropout \(1.5\)"),
        ({"dropout": "0.3"}, "invalid --dropout"),
    ):
        with pytest.raises(CliError, match=named):
            options.stored_options(stored | tampered, path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dropout", "1"), "argument --dropout: '1' is not a fraction from 0 up to but not including 1"),
        (("--dropout", "x"), "argument --dropout: 'x'"),
        (
            ("--dropout", "0.99999999"),
            "'0.99999999' is not a fraction from 0 up to but not including 1, like 0.2 (at "
            "most 0.99999994: float32 rounds nearer values to 1)",
        ),
        (("--optimizer", "lbfgs", "--dropout", "0.2"), "--dropout 0.2 does not apply to --optimizer lbfgs"),
    ],
)
def test_jaxnn_train_refuses_bad_dropout_values(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train("--epochs", "2", *args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
