"""``fit`` and ``train_step``: learning, reproducibility, resumption, optimisers, divergence, stopping,
padding, and input errors.

Compiled loops are cached on (model, loss, optimizer, epochs, batch_size, ...), so the tests share the
module-level model and optimiser objects and reuse epoch counts where they can.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, assert_trees_equal

import jaxnn
from jaxnn.train import Stopping

MODEL = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, "softmax")))
LOSS = "categorical_cross_entropy"
DESCENT = jaxnn.gradient_descent(0.5)
ADAM = optax.adam(0.05)
KEY = jax.random.key(0)
EPOCHS = 40


def _blobs(n_per_class=10, seed=0):
    """Three Gaussian blobs in the plane, one-hot targets."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    labels = np.repeat(np.arange(3), n_per_class)
    x = centres[labels] + 0.5 * rng.normal(size=(labels.size, 2))
    return x.astype(np.float32), np.eye(3, dtype=np.float32)[labels]


X, Y = _blobs()
PARAMS = MODEL.init(KEY, 2)


def _fit(**kwargs):
    arguments = {"loss": LOSS, "epochs": EPOCHS, "optimizer": DESCENT} | kwargs
    return jaxnn.fit(MODEL, PARAMS, X, Y, **arguments)


def _accuracy(params, x=X, y=Y):
    return float(np.mean(np.argmax(MODEL.apply(params, x), axis=1) == np.argmax(y, axis=1)))


def test_full_batch_decreases_the_loss():
    result = _fit()
    history = np.asarray(result.history)
    assert history.shape == (EPOCHS,) and np.all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0]
    assert not bool(result.diverged) and int(result.n_epochs) == EPOCHS
    assert np.all(np.isnan(result.validation_scores))
    # The history is the loss of the parameters each epoch started from (full batch).
    start_loss = jaxnn.categorical_cross_entropy(MODEL.apply(PARAMS, X), Y)
    np.testing.assert_allclose(history[0], start_loss, rtol=1e-5)
    assert _accuracy(result.params) > _accuracy(PARAMS)


def test_minibatch_decreases_the_loss_and_is_reproducible():
    first = _fit(batch_size=8, key=KEY)
    again = _fit(batch_size=8, key=KEY)
    other_key = _fit(batch_size=8, key=jax.random.key(1))
    assert first.history[-1] < 0.5 * first.history[0]
    assert_trees_equal(first.params, again.params)  # bitwise, same key
    np.testing.assert_array_equal(first.history, again.history)
    assert not np.array_equal(first.params[0]["W"], other_key.params[0]["W"])  # the key does shuffle


def test_fit_in_chunks_equals_one_fit_bitwise():
    """Epoch e shuffles with fold_in(key, e): fit(a + b) == fit(a), then fit(b, start_epoch=a, opt_state=...)."""
    whole = _fit(epochs=6, optimizer=ADAM, batch_size=8, key=KEY)
    head = _fit(epochs=3, optimizer=ADAM, batch_size=8, key=KEY)
    tail = jaxnn.fit(
        MODEL, head.params, X, Y, loss=LOSS, epochs=3, optimizer=ADAM, batch_size=8, key=KEY,
        opt_state=head.opt_state, start_epoch=3,
    )  # fmt: skip
    assert whole.history[-1] < 0.5 * whole.history[0]
    assert_trees_equal(tail.params, whole.params)
    assert_trees_equal(tail.opt_state, whole.opt_state)
    np.testing.assert_array_equal(np.concatenate([head.history, tail.history]), whole.history)


def test_any_optax_transformation_is_accepted():
    """Momentum here; Adam, whose state matters for resuming, in the chunked fit above."""
    momentum = optax.sgd(0.1, momentum=0.9)
    result = _fit(optimizer=momentum)
    assert result.history[-1] < 0.5 * result.history[0]
    assert jax.tree.structure(result.opt_state) == jax.tree.structure(momentum.init(PARAMS))


def test_default_is_plain_gradient_descent():
    """One full-batch epoch with learning_rate η is exactly θ − η·∂L/∂θ (gradient from the explicit backward)."""
    rng = np.random.default_rng(3)
    weight = rng.uniform(0.5, 2.0, X.shape[0])
    with jax.enable_x64(True):
        params = MODEL.init(KEY, 2, jnp.float64)
        for w in (None, weight):
            result = jaxnn.fit(MODEL, params, X, Y, loss=LOSS, epochs=1, learning_rate=0.3, weight=w)
            value, grads = jaxnn.loss_and_grads(MODEL, params, X.astype(np.float64), Y, LOSS, w)
            expected = jax.tree.map(lambda p, g: p - 0.3 * g, params, grads)
            assert_trees_close(result.params, expected, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(result.history[0], value, rtol=1e-12)
            assert result.params[0]["W"].dtype == jnp.float64


def test_divergence_keeps_the_last_finite_params():
    model = jaxnn.Sequential((jaxnn.Dense(3), jaxnn.Dense(1)))
    params = model.init(KEY, 2)
    y = X[:, :1] * 10.0
    huge = jaxnn.gradient_descent(1e3)
    result = jaxnn.fit(model, params, X, y, loss="sum_of_squares", epochs=30, optimizer=huge)
    assert bool(result.diverged)
    n = int(result.n_epochs)
    assert 0 < n < 30
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))
    assert np.all(np.isfinite(result.history[:n])) and np.all(np.isnan(result.history[n:]))
    # The params returned are those after the last finite epoch.
    last_finite = jaxnn.fit(model, params, X, y, loss="sum_of_squares", epochs=n, optimizer=huge)
    assert not bool(last_finite.diverged)
    assert_trees_equal(result.params, last_finite.params)


def test_stopping_ends_early_on_the_training_loss():
    """A tolerance no epoch can beat: the first epoch improves on +inf, then n_iter_no_change + 1 do not."""
    stopping = Stopping(tol=10.0, n_iter_no_change=3)
    result = _fit(stopping=stopping)
    n = int(result.n_epochs)
    assert n == stopping.n_iter_no_change + 2 < EPOCHS
    assert np.all(np.isfinite(result.history[:n])) and np.all(np.isnan(result.history[n:]))
    np.testing.assert_allclose(result.history[:n], _fit().history[:n], rtol=1e-6)  # same trajectory so far
    assert not bool(result.diverged)


def _negative_cross_entropy(predictions, targets):
    return -jaxnn.categorical_cross_entropy.forward(predictions, targets)


def test_stopping_on_a_validation_score_returns_the_best_params():
    """Validation labels that disagree with the training labels get worse as training goes on:
    the best-scoring parameters are an early epoch's, not the last ones."""
    y_val = np.roll(Y, 1, axis=1)
    stopping = Stopping(tol=0.0, n_iter_no_change=2)
    result = _fit(stopping=stopping, validation=(X, y_val), score=_negative_cross_entropy)
    n = int(result.n_epochs)
    scores = np.asarray(result.validation_scores)
    assert n < EPOCHS and np.all(np.isfinite(scores[:n])) and np.all(np.isnan(scores[n:]))
    best_score = float(_negative_cross_entropy(MODEL.apply(result.params, X), jnp.asarray(y_val)))
    np.testing.assert_allclose(best_score, np.max(scores[:n]), rtol=1e-5)
    last = _fit(epochs=n)
    last_score = float(_negative_cross_entropy(MODEL.apply(last.params, X), jnp.asarray(y_val)))
    assert last_score < best_score


def test_zero_weight_padding_rows_change_nothing():
    rng = np.random.default_rng(4)
    x_pad = np.concatenate([X, rng.normal(size=(5, 2)).astype(np.float32) * 10])
    y_pad = np.concatenate([Y, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 5)]])
    weight = np.concatenate([np.ones(X.shape[0]), np.zeros(5)])
    padded = jaxnn.fit(MODEL, PARAMS, x_pad, y_pad, loss=LOSS, epochs=EPOCHS, optimizer=DESCENT, weight=weight)
    plain = _fit()
    assert_trees_close(padded.params, plain.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded.history, plain.history, rtol=1e-5)


def test_train_step():
    step_params, _, value = jaxnn.train_step(
        MODEL, jaxnn.categorical_cross_entropy, DESCENT, PARAMS, DESCENT.init(PARAMS), X, Y
    )
    loss_before, grads = jaxnn.loss_and_grads(MODEL, PARAMS, X, Y, LOSS)
    np.testing.assert_allclose(value, loss_before, rtol=1e-6)
    assert_trees_close(step_params, jax.tree.map(lambda p, g: p - 0.5 * g, PARAMS, grads), rtol=1e-5, atol=1e-6)


def test_train_step_does_not_apply_a_non_finite_step():
    """A NaN target makes the loss NaN; an infinite input makes the weight gradient non-finite
    (tanh keeps the forward finite): neither step is applied."""
    y = Y.copy()
    y[0, 0] = np.nan
    x = X.copy()
    x[0, 0] = np.inf
    values = []
    for x_, y_ in ((X, y), (x, Y)):
        step_params, _, value = jaxnn.train_step(
            MODEL, jaxnn.categorical_cross_entropy, DESCENT, PARAMS, DESCENT.init(PARAMS), x_, y_
        )
        assert_trees_equal(step_params, PARAMS)
        values.append(float(value))
    assert np.isnan(values[0])


NAN_IN_X = np.where(np.arange(60).reshape(30, 2) == 7, np.nan, X)
BAD_INPUTS = {
    "nan-in-x": ({"x": NAN_IN_X}, ValueError, r"x contains NaN or infinity"),
    "fewer-y-rows": ({"y": Y[:-1]}, ValueError, r"x has 30 samples but y has 29; they must match"),
    "wrong-y-columns": ({"y": Y[:, :2]}, ValueError, r"y has 2 columns but the model's last layer has 3 units"),
    "wrong-x-features": ({"x": X[:, :1]}, ValueError, r"layer 0 \(4 units\) expects W of shape \(1, 4\)"),
    "3d-y": ({"y": Y[:, :, None]}, ValueError, r"y must be 2-D \(n_samples, n_columns\), got shape \(30, 3, 1\)"),
    "text-x": ({"x": X.astype(str)}, TypeError, r"x must hold real numbers"),
    "zero-epochs": ({"epochs": 0}, ValueError, r"epochs must be a positive integer, got 0"),
    "minibatch-without-key": ({"batch_size": 8}, ValueError, r"pass key=jax.random.key\(seed\)"),
    "zero-batch-size": ({"batch_size": 0, "key": KEY}, ValueError, r"batch_size must be a positive integer or None"),
    "negative-weight": ({"weight": -np.ones(30)}, ValueError, r"weight must be 30 finite, non-negative numbers"),
    "short-weight": ({"weight": np.ones(29)}, ValueError, r"weight must be 30 finite, non-negative numbers"),
    "zero-learning-rate": ({"optimizer": None, "learning_rate": 0.0}, ValueError, r"learning_rate must be a positive"),
    "validation-without-stopping": (
        {"validation": (X, Y), "score": _negative_cross_entropy},
        ValueError,
        r"pass stopping=Stopping\(...\) too",
    ),
    "validation-without-score": (
        {"validation": (X, Y), "stopping": Stopping()},
        ValueError,
        r"validation data and a score function go together",
    ),
    "unknown-loss": ({"loss": "mse"}, ValueError, r"unknown loss 'mse'"),
}


@pytest.mark.parametrize(("change", "error", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_a_clear_error(change, error, message):
    arguments = {"x": X, "y": Y, "loss": LOSS, "epochs": EPOCHS, "optimizer": DESCENT} | change
    x, y = arguments.pop("x"), arguments.pop("y")
    with pytest.raises(error, match=message):
        jaxnn.fit(MODEL, PARAMS, x, y, **arguments)
