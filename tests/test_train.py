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
import scipy.sparse
from helpers import assert_trees_close, assert_trees_equal, compilations

import jaxnn
from jaxnn import _loop
from jaxnn.optimizers import SolverSettings
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


@pytest.mark.parametrize("batch_size", [None, 8])
@pytest.mark.parametrize("optimizer", [DESCENT, ADAM], ids=["gd", "adam"])
@pytest.mark.parametrize("chunks", [(1,) * 6, (5, 1), (1, 5), (2, 3, 1), (4, 2)], ids=str)
def test_any_split_into_chunks_equals_one_fit_bitwise(chunks, optimizer, batch_size):
    """One-epoch chunks included: XLA once inlined a one-iteration loop and rounded Adam differently (2e-8)."""
    whole = _fit(epochs=sum(chunks), optimizer=optimizer, batch_size=batch_size, key=KEY)
    params, opt_state, done, history = PARAMS, None, 0, []
    for epochs in chunks:
        part = jaxnn.fit(
            MODEL, params, X, Y, loss=LOSS, epochs=epochs, optimizer=optimizer, batch_size=batch_size, key=KEY,
            opt_state=opt_state, start_epoch=done,
        )  # fmt: skip
        params, opt_state, done = part.params, part.opt_state, done + epochs
        history.append(part.history)
    assert_trees_equal(params, whole.params)
    assert_trees_equal(opt_state, whole.opt_state)
    np.testing.assert_array_equal(np.concatenate(history), whole.history)


def test_any_optax_transformation_is_accepted():
    """Momentum here; Adam, whose state matters for resuming, in the chunked fit above."""
    momentum = optax.sgd(0.1, momentum=0.9)
    result = _fit(optimizer=momentum)
    assert result.history[-1] < 0.5 * result.history[0]
    assert jax.tree.structure(result.opt_state) == jax.tree.structure(momentum.init(PARAMS))


@pytest.mark.parametrize("l2", [0.0, 0.5])
def test_a_line_search_optimiser_gets_the_objective_and_matches_optax_on_autodiff(l2):
    """optax.lbfgs needs the loss at trial points (``value_fn``, plus ``value`` and ``grad``): fit passes the
    batch's objective through the hand-written rules; optax's own loop on jax.grad of the plain forward is
    the referee (float64, full batch: one epoch is one L-BFGS iteration).  With ``l2`` that objective holds the
    penalty ½·l2·Σ‖W‖² (the line search once tested the loss alone while its direction held l2·W: the fit
    climbed to twice its starting loss and ended far from the minimum)."""
    model = jaxnn.Sequential((jaxnn.Dense(5, "tanh", init="glorot"), jaxnn.Dense(3, "identity", init="glorot")))
    loss = jaxnn.softmax_cross_entropy
    x, y = X.astype(np.float64), Y.astype(np.float64)
    epochs = 12
    with jax.enable_x64(True):
        params = model.init(KEY, 2, jnp.float64)
        result = jaxnn.fit(model, params, x, y, loss=loss, epochs=epochs, optimizer=optax.lbfgs(), l2=l2 or None)

        def objective(p):
            penalty = 0.5 * l2 * sum(jnp.sum(layer["W"] ** 2) for layer in p)
            return loss.forward(model.apply(p, x, custom_rules=False), y, jnp.ones(len(x))) + penalty

        solver = optax.lbfgs()

        @jax.jit
        def iteration(p, state):
            value, grad = jax.value_and_grad(objective)(p)
            updates, state = solver.update(grad, state, p, value=value, grad=grad, value_fn=objective)
            return optax.apply_updates(p, updates), state, value

        expected, state, losses = params, solver.init(params), []
        for _ in range(epochs):
            expected, state, value = iteration(expected, state)
            losses.append(float(value))
    assert result.n_epochs == epochs and losses[-1] < (0.5 if l2 else 0.2) * losses[0]  # the penalty's floor
    np.testing.assert_allclose(np.asarray(result.history), losses, rtol=1e-9)
    assert_trees_close(result.params, expected, rtol=1e-7, atol=1e-10)


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


def test_a_diverged_epochs_validation_score_is_that_of_the_params_kept():
    """fit's docstring: a diverged last epoch's score and validation loss are those of the last finite params (full
    batch: the previous epoch's), not NaN."""
    model = jaxnn.Sequential((jaxnn.Dense(3), jaxnn.Dense(1)))
    params = model.init(KEY, 2)
    y = X[:, :1] * 10.0
    huge = jaxnn.gradient_descent(3.0)  # diverges within a few epochs, with finite scores until then

    def score(outputs, y_val):
        return -jnp.mean(jnp.abs(outputs - y_val))

    def run(epochs):
        return jaxnn.fit(
            model,
            params,
            X,
            y,
            loss="sum_of_squares",
            epochs=epochs,
            optimizer=huge,
            validation=(X, y),
            stopping=Stopping(0.0, 1000),
            score=score,
            validation_loss=lambda o, t: jnp.mean(jnp.abs(o - t)),
        )

    result = run(30)
    n = int(result.n_epochs)
    assert bool(result.diverged) and 0 < n < 30 and result.validation_scores.shape == (n + 1,)
    healthy = run(n)
    assert not bool(healthy.diverged)
    assert np.isfinite(healthy.validation_scores[-1])
    np.testing.assert_array_equal(result.validation_scores[:n], healthy.validation_scores)
    assert result.validation_scores[n] == healthy.validation_scores[-1]
    assert result.validation_losses[n] == healthy.validation_losses[-1]


def test_stopping_ends_early_on_the_training_loss():
    """A tolerance no epoch can beat: the first epoch improves on +inf, then n_iter_no_change + 1 do not."""
    stopping = Stopping(tol=10.0, n_iter_no_change=3)
    result = _fit(stopping=stopping)
    n = int(result.n_epochs)
    assert n == stopping.n_iter_no_change + 2 < EPOCHS
    assert np.all(np.isfinite(result.history[:n])) and np.all(np.isnan(result.history[n:]))
    np.testing.assert_allclose(result.history[:n], _fit().history[:n], rtol=1e-6)  # same trajectory so far
    assert not bool(result.diverged)


def test_a_patience_beyond_the_int32_count_never_stops_like_infinity():
    """n_iter_no_change=2**40 once overflowed while the loop was traced (JAX's OverflowError, naming no argument)."""
    result = _fit(stopping=Stopping(tol=10.0, n_iter_no_change=2**40))
    assert int(result.n_epochs) == EPOCHS and not bool(result.stopped)
    assert_trees_equal(result.params, _fit(stopping=Stopping(tol=10.0, n_iter_no_change=np.inf)).params)


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


def test_a_score_that_is_always_nan_counts_every_epoch_as_one_without_improvement():
    """As ``Stopping`` says: NaN improves on nothing, so ``n_iter_no_change`` NaN epochs in a row and one more end
    the fit; the params are the last epoch's (no epoch scored a finite value) and the scores show why."""
    stopping = Stopping(tol=1e-4, n_iter_no_change=2)
    result = _fit(stopping=stopping, validation=(X, Y), score=lambda p, t: jnp.full((), jnp.nan, p.dtype))
    assert result.stopped and int(result.n_epochs) == stopping.n_iter_no_change + 1 < EPOCHS
    assert np.all(np.isnan(result.validation_scores))
    assert_trees_equal(result.params, _fit(epochs=int(result.n_epochs)).params)


def test_one_dimensional_validation_labels_reach_the_score_as_given():
    """y_val of labels (n,) became a column (n, 1), so argmax(outputs, 1) == y_val broadcast to (n, n) and the
    "accuracy" that chose the stopping epoch and the returned params was another number; fit's docstring says
    y_val goes to score as it is."""
    labels = np.argmax(Y, axis=1)

    def accuracy(outputs, y_val):
        assert y_val.shape == labels.shape  # while tracing
        return jnp.mean(jnp.argmax(outputs, axis=1) == y_val)

    result = _fit(stopping=Stopping(tol=0.0, n_iter_no_change=1000), validation=(X, labels), score=accuracy)
    assert float(result.validation_scores[EPOCHS - 1]) == float(accuracy(MODEL.apply(_fit().params, X), labels))


@pytest.mark.parametrize("tol", [1e-8, 1e-9])
def test_a_tol_finer_than_float32_around_the_best_still_ends_a_plateau(tol):
    """A constant score of 0.5: best + 1e-8 rounded to 0.5 in float32, so every epoch "improved by tol" and the
    run never stopped (and a flat training loss likewise); the gain is a difference now, 0 < tol."""
    stopping = Stopping(tol=tol, n_iter_no_change=2)
    result = _fit(stopping=stopping, validation=(X, Y), score=lambda p, t: jnp.full((), 0.5, p.dtype))
    assert result.stopped and int(result.n_epochs) == stopping.n_iter_no_change + 2 < EPOCHS
    still = _fit(stopping=stopping, optimizer=jaxnn.gradient_descent(1e-30))  # the training loss never moves
    assert still.stopped and int(still.n_epochs) == stopping.n_iter_no_change + 2


def test_zero_weight_padding_rows_change_nothing():
    rng = np.random.default_rng(4)
    x_pad = np.concatenate([X, rng.normal(size=(5, 2)).astype(np.float32) * 10])
    y_pad = np.concatenate([Y, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 5)]])
    weight = np.concatenate([np.ones(X.shape[0]), np.zeros(5)])
    padded = jaxnn.fit(MODEL, PARAMS, x_pad, y_pad, loss=LOSS, epochs=EPOCHS, optimizer=DESCENT, weight=weight)
    plain = _fit()
    assert_trees_close(padded.params, plain.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded.history, plain.history, rtol=1e-5)


# Minibatch shuffling (_loop.epoch_batches) sorts the rows by random keys drawn per row.  Data sets
# of up to 1625 rows and ones above it both matter: jax.random.permutation, used before, sorts once up to
# 1625 rows (3·ln n / ln 2³² ≤ 1) but twice above, and its second sort draws keys by position in the
# already shuffled rows, so appended padding reordered the real rows only there.
BIG_N = 1700


def _rows(n, seed=0):
    """``n`` rows of the three blobs (and their targets), cycling through the 30 of ``X`` with a little noise."""
    rng = np.random.default_rng(seed)
    x = np.resize(X, (n, 2)) + rng.normal(scale=0.1, size=(n, 2)).astype(np.float32)
    return x.astype(np.float32), np.resize(Y, (n, 3))


@pytest.mark.parametrize("n", [1, 7, 1625, 1626, 70_000])
def test_a_one_dimensional_random_draw_does_not_depend_on_its_length(n):
    """What the shuffle relies on: element i of ``bits(key, (n,))`` is the same for every n > i.
    True for JAX's default threefry with ``jax_threefry_partitionable`` on (the default since jax 0.5)."""
    assert jax.config.jax_threefry_partitionable
    key = jax.random.fold_in(KEY, 3)
    longer = np.asarray(jax.random.bits(key, (n + 37,)))
    np.testing.assert_array_equal(jax.random.bits(key, (n,)), longer[:n])
    np.testing.assert_array_equal(jax.jit(jax.random.bits, static_argnums=1)(key, (n,)), longer[:n])


@pytest.mark.parametrize(
    ("weight", "batch_size"),
    [
        (np.ones(10), 4),
        (np.r_[np.ones(10), np.zeros(3)], 4),
        (np.r_[np.ones(10), np.zeros(6)], 4),  # the padding fills a whole batch of its own
        (np.r_[np.ones(3), 0.0, np.full(4, 0.5), 0.0, np.ones(2)], 3),  # zero weights among the real rows
        (np.r_[np.ones(BIG_N), np.zeros(20)], 64),
    ],
    ids=["no-padding", "padding", "padding-batch", "zeros-inside", "big"],
)
def test_each_epoch_visits_every_real_row_once_before_any_padding(weight, batch_size):
    n, real = weight.size, np.flatnonzero(weight)
    for epoch in range(3):
        epoch_key = jax.random.fold_in(KEY, epoch)
        index, mask = jax.device_get(_loop.epoch_batches(epoch_key, jnp.asarray(weight), batch_size))
        assert index.shape == mask.shape == (-(-n // batch_size), batch_size)
        order = index.ravel()[mask.ravel()]
        assert mask.sum() == n and np.all(mask.ravel()[:n])  # the masked slots are the tail of the last batch
        np.testing.assert_array_equal(np.sort(order), np.arange(n))  # a permutation of all rows ...
        np.testing.assert_array_equal(np.sort(order[: real.size]), real)  # ... whose real rows come first
        visits = np.bincount(index.ravel(), weights=weight[index.ravel()] * mask.ravel(), minlength=n)
        np.testing.assert_array_equal(visits, weight)  # each real row weighs in exactly once per epoch


def test_real_rows_are_shuffled_the_same_whatever_padding_follows_them():
    """The order of the real rows is a function of the key and their positions: for n rows it is the
    same with 0, 1, 30 or 5000 rows of weight 0 appended, and differs from epoch to epoch."""
    for n in (10, 1625, BIG_N):
        orders = []
        for extra in (0, 1, 30, 5000):
            weight = jnp.concatenate([jnp.ones(n), jnp.zeros(extra)])
            index, _ = _loop.epoch_batches(KEY, weight, 8)
            orders.append(np.asarray(index).ravel()[:n])
        for order in orders[1:]:
            np.testing.assert_array_equal(order, orders[0])
        next_epoch, _ = _loop.epoch_batches(jax.random.fold_in(KEY, 1), jnp.ones(n), 8)
        assert not np.array_equal(np.asarray(next_epoch).ravel()[:n], orders[0])


def test_every_order_is_equally_likely():
    """4 rows (and 2 rows of padding behind them) under 24 000 keys: each of the 24 orders of the real rows
    comes up about 1000 times (the standard deviation of each count is about 31), the padding always last."""
    keys = jax.random.split(jax.random.key(7), 24_000)
    weight = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    orders = np.asarray(jax.vmap(lambda key: _loop.epoch_batches(key, weight, 3)[0].ravel())(keys))
    assert np.all(np.sort(orders[:, 4:], axis=1) == [4, 5])
    codes = orders[:, :4] @ (4 ** np.arange(4))
    counts = np.unique(codes, return_counts=True)[1]
    assert counts.size == 24 and counts.min() > 850 and counts.max() < 1150


@pytest.mark.parametrize(
    ("n", "extra", "batch_size"),
    [(17, 16, 4), (1625, 1, 100), (BIG_N, 92, 64)],
    ids=["adds-batches", "1625+1", "big-adds-a-batch"],
)
@pytest.mark.parametrize("optimizer", [DESCENT, ADAM], ids=["gd", "adam"])
def test_zero_weight_rows_appended_do_not_change_a_minibatch_fit(n, extra, batch_size, optimizer):
    """Same key, same real rows: padding with rows of weight 0 (as distributed training and the estimators
    do) changes nothing, bitwise on CPU, even where it adds whole batches of padding."""
    x, y = _rows(n)
    rng = np.random.default_rng(n + extra)
    x_pad = np.concatenate([x, 10 * rng.normal(size=(extra, 2)).astype(np.float32)])
    y_pad = np.concatenate([y, np.eye(3, dtype=np.float32)[rng.integers(0, 3, extra)]])
    weight = np.r_[np.ones(n), np.zeros(extra)]
    common = {"loss": LOSS, "epochs": 3, "optimizer": optimizer, "batch_size": batch_size, "key": KEY}
    plain = jaxnn.fit(MODEL, PARAMS, x, y, **common)
    padded = jaxnn.fit(MODEL, PARAMS, x_pad, y_pad, weight=weight, **common)
    assert_trees_equal(padded.params, plain.params)
    assert_trees_equal(padded.opt_state, plain.opt_state)
    np.testing.assert_array_equal(padded.history, plain.history)
    assert not np.array_equal(plain.params[0]["W"], PARAMS[0]["W"])  # it did train


def test_train_step():
    step_params, _, value = jaxnn.train_step(
        MODEL, jaxnn.categorical_cross_entropy, DESCENT, PARAMS, DESCENT.init(PARAMS), X, Y
    )
    loss_before, grads = jaxnn.loss_and_grads(MODEL, PARAMS, X, Y, LOSS)
    np.testing.assert_allclose(value, loss_before, rtol=1e-6)
    assert_trees_close(step_params, jax.tree.map(lambda p, g: p - 0.5 * g, PARAMS, grads), rtol=1e-5, atol=1e-6)


def test_train_step_in_place_equals_the_copying_step_and_takes_names_and_lists():
    copied = jaxnn.train_step(MODEL, LOSS, ADAM, PARAMS, ADAM.init(PARAMS), X, Y)
    params, opt_state = jax.tree.map(jnp.array, (PARAMS, ADAM.init(PARAMS)))  # fresh buffers to donate
    in_place = jaxnn.train_step(MODEL, LOSS, ADAM, params, opt_state, X.tolist(), Y.tolist(), in_place=True)
    assert_trees_equal(in_place, copied)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(params))  # its buffers went to the result


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"model": MODEL.layers[0]}, TypeError, r"model must be a jaxnn.Sequential, got Dense"),
        ({"loss": "mse"}, ValueError, r"unknown loss 'mse'"),
        ({"y": Y[:, :2]}, ValueError, r"y must have shape \(30, 3\)"),
        ({"x": X[:, :1]}, ValueError, r"layer 0 \(4 units\) expects W of shape \(1, 4\)"),
        # These three failed inside JAX or optax, or (another optimiser's state) ran:
        ({"x": X.astype(str)}, TypeError, r"x must hold real numbers, got dtype <U"),
        ({"opt_state": None}, ValueError, r"opt_state does not match .*pass optimizer.init\(params\)"),
        ({"opt_state": ADAM.init(PARAMS)}, ValueError, r"opt_state does not match this optimiser's state"),
        ({"weight": -np.ones(len(X))}, ValueError, r"weight must be 30 finite, non-negative numbers"),
        # An AttributeError on None.shape before:
        ({"x": None}, TypeError, r"x must be an array of real numbers, got None"),
        ({"y": None}, TypeError, r"y must be an array of real numbers, got None"),
        # NumPy's "setting an array element with a sequence", and JAX's "Error interpreting argument", before:
        ({"x": [[1.0, 2.0, 3.0, 4.0]] * 29 + [[1.0]]}, ValueError, r"x must be a rectangular array: its rows have"),
        ({"opt_state": "adam"}, TypeError, r"opt_state must be optimizer.init\(params\), or the opt_state the last"),
    ],
)
def test_train_step_bad_input_is_a_clear_error(change, error, message):
    arguments = {"model": MODEL, "loss": LOSS, "x": X, "y": Y, "opt_state": DESCENT.init(PARAMS)} | change
    with pytest.raises(error, match=message):
        jaxnn.train_step(
            arguments["model"],
            arguments["loss"],
            DESCENT,
            PARAMS,
            arguments["opt_state"],
            arguments["x"],
            arguments["y"],
            arguments.get("weight"),
        )


def test_in_place_must_be_a_bool_since_a_truthy_string_would_donate_the_callers_arrays():
    params = jax.tree.map(jnp.array, PARAMS)
    with pytest.raises(TypeError, match="in_place must be True or False, got 'no'"):
        jaxnn.train_step(MODEL, LOSS, ADAM, params, ADAM.init(params), X, Y, in_place="no")
    with pytest.raises(TypeError, match="in_place must be True or False"):
        jaxnn.make_train_step(MODEL, LOSS, ADAM, in_place=1)
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(params))


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
    assert np.isnan(values[1])  # the loss was finite, the update not: the finite loss came back, saying nothing


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e300 cast to float32
def test_a_step_whose_update_overflows_reports_nan_not_a_stall():
    """A learning rate of 1e300 (infinite in float32) makes the update non-finite while the loss stays finite: the
    step is not applied, and the finite loss that came back made repeated calls a silent stall."""
    descent = jaxnn.optimizers.make("gd", learning_rate=1e300)
    step_params, _, value = jaxnn.train_step(MODEL, LOSS, descent, PARAMS, descent.init(PARAMS), X, Y)
    assert_trees_equal(step_params, PARAMS)
    assert np.isnan(float(value))


def test_a_compiled_step_with_a_nan_weight_reports_nan_not_the_unweighted_loss():
    """make_train_step checks shapes only; a NaN weight's sum is NaN, which once passed as an all-padding batch:
    the step was skipped and the loss came back finite, computed as if every weight were 1."""
    step = jaxnn.make_train_step(MODEL, LOSS, DESCENT)
    weight = np.ones(len(X), np.float32)
    weight[0] = np.nan
    step_params, _, value = step(PARAMS, DESCENT.init(PARAMS), X, Y, weight)
    assert np.isnan(float(value))
    assert_trees_equal(step_params, PARAMS)
    padding_params, _, _ = step(PARAMS, DESCENT.init(PARAMS), X, Y, np.zeros(len(X), np.float32))
    assert_trees_equal(padding_params, PARAMS)  # an all-zero (padding) batch still changes nothing


@pytest.mark.parametrize("in_place", [False, True])
def test_a_compiled_step_takes_no_step_on_weights_that_are_not_a_distribution(in_place):
    """A negative weight was trained on (the loss weighted by it, the parameters moved away from that sample);
    weights summing to 0 took no step but reported the unweighted loss.  Neither changes anything now, and the
    loss is NaN; train_step refuses them outright."""
    step = jaxnn.make_train_step(MODEL, LOSS, ADAM, in_place=in_place)
    negative = np.ones(len(X), np.float32)
    negative[0] = -30.0
    cancelling = np.where(np.arange(len(X)) % 2 == 0, 1.0, -1.0).astype(np.float32)
    for weight in (negative, cancelling, np.zeros(len(X), np.float32)):
        params, state = jax.tree.map(jnp.array, PARAMS), ADAM.init(PARAMS)
        step_params, step_state, value = step(params, state, X, Y, weight)
        assert np.isnan(float(value))
        assert_trees_equal(step_params, PARAMS)
        assert_trees_equal(step_state, ADAM.init(PARAMS))
        with pytest.raises(ValueError, match="weight must be"):
            jaxnn.train_step(MODEL, LOSS, ADAM, PARAMS, ADAM.init(PARAMS), X, Y, weight)
    one_sample = np.zeros(len(X), np.float32)
    one_sample[3] = 1.0  # a distribution: the step is taken
    step_params, _, value = step(jax.tree.map(jnp.array, PARAMS), ADAM.init(PARAMS), X, Y, one_sample)
    assert np.isfinite(float(value)) and not np.array_equal(step_params[0]["W"], PARAMS[0]["W"])


SIGMOID = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, "sigmoid")))
OUT_OF_RANGE_TARGETS = {
    "binary-targets-of-2-and-minus-1": (
        SIGMOID,
        "binary_cross_entropy",
        np.where(Y > 0, 2.0, -1.0),
        r"targets must lie in \[0, 1\]",
    ),
    "categorical-rows-of-two-classes": (MODEL, LOSS, Y + np.roll(Y, 1, axis=1), "a row sums to 2"),
}


@pytest.mark.parametrize("case", OUT_OF_RANGE_TARGETS.values(), ids=OUT_OF_RANGE_TARGETS)
@pytest.mark.parametrize("as_array", [np.asarray, jnp.asarray], ids=["numpy", "jax-on-cpu"])
def test_train_step_refuses_targets_out_of_the_losss_range_as_fit_does(case, as_array):
    """train_step took a step on binary cross-entropy targets of 2 and -1 (the loss has no minimum there) and on
    categorical rows of two classes each, which fit and loss_and_grads refuse; make_train_step still reads no values."""
    model, loss, y, message = case
    params, y = model.init(KEY, 2), as_array(y.astype(np.float32))
    with pytest.raises(ValueError, match=message):
        jaxnn.fit(model, params, X, y, loss=loss, epochs=1)
    with pytest.raises(ValueError, match=message):
        jaxnn.train_step(model, loss, DESCENT, params, DESCENT.init(params), X, y)
    step = jaxnn.make_train_step(model, loss, DESCENT)
    assert np.isfinite(float(step(params, DESCENT.init(params), X, y)[2]))  # not checked: the factory's contract


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e39, r"weight has values beyond float32's range"),
        (3e38, r"weight sums to [\d.]+e\+39, beyond float32's range"),
        (1e-45, r"below float32's smallest normal number"),
    ],
    ids=["beyond-range", "sum-overflows", "subnormal"],
)
def test_train_step_refuses_weights_the_params_dtype_cannot_hold_as_fit_does(value, message):
    """Weights finite in float64 but not usable in float32 params made a silent NaN loss and no step."""
    weight = np.full(len(X), value)
    with pytest.raises(ValueError, match=message):
        jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, weight=weight)
    with pytest.raises(ValueError, match=message):
        jaxnn.train_step(MODEL, LOSS, DESCENT, PARAMS, DESCENT.init(PARAMS), X, Y, weight)


def test_on_host_tells_what_can_be_read_without_waiting_for_an_accelerator():
    assert jaxnn.platforms.on_host(np.ones(3)) and jaxnn.platforms.on_host([1.0, 2.0])
    assert jaxnn.platforms.on_host(jnp.ones(3))  # the test suite runs on the CPU
    seen = []
    jax.jit(lambda a: seen.append(jaxnn.platforms.on_host(a)) or a)(jnp.ones(3))
    assert seen == [False]  # a tracer has no numbers to read


NAN_IN_X = np.where(np.arange(60).reshape(30, 2) == 7, np.nan, X)
BAD_INPUTS = {
    "nan-in-x": ({"x": NAN_IN_X}, ValueError, r"x contains NaN or infinity"),
    "fewer-y-rows": ({"y": Y[:-1]}, ValueError, r"x has 30 samples but y has 29; they must match"),
    "wrong-y-columns": (
        {"y": Y[:, :2]},
        ValueError,
        r"y has 2 columns but the model's last layer has 3 units; one-hot encode class",
    ),
    "wrong-y-columns-regression": (  # was told to one-hot encode class labels
        {"y": Y[:, :2], "loss": "mean_squared_error"},
        ValueError,
        r"y has 2 columns but the model's last layer has 3 units; give the last layer one unit per target column$",
    ),
    "wrong-x-features": ({"x": X[:, :1]}, ValueError, r"layer 0 \(4 units\) expects W of shape \(1, 4\)"),
    "3d-y": ({"y": Y[:, :, None]}, ValueError, r"y must be 2-D \(n_samples, n_columns\), got shape \(30, 3, 1\)"),
    "text-x": ({"x": X.astype(str)}, TypeError, r"x must hold real numbers"),
    "a-string-as-x": ({"x": "abc"}, TypeError, r"x must hold real numbers, got dtype <U3"),  # "must be 2-D" before
    "a-string-as-y": ({"y": "abc"}, TypeError, r"y must hold real numbers, got dtype <U3"),
    "object-x": ({"x": X.astype(object)}, TypeError, r"x must hold real numbers, got dtype object; .*to_numpy"),
    "text-shuffle": ({"shuffle": "no"}, TypeError, r"shuffle must be True or False, got 'no'"),
    "sparse-x": (
        {"x": scipy.sparse.csr_matrix(X)},
        TypeError,
        r"x must be an array of numbers, got csr_matrix.*toarray",
    ),
    "text-weight": ({"weight": ["1"] * 29 + ["a"]}, TypeError, r"weight must be real numbers, one per sample \(30\)"),
    "negative-l2": ({"l2": -1.0}, ValueError, r"l2 must be one finite number >= 0 .*, got -1.0"),
    "text-l2": ({"l2": "a"}, TypeError, r"l2 must be one number or one per member \(1\), got 'a'"),
    "zero-epochs": ({"epochs": 0}, ValueError, r"epochs must be a positive integer, got 0"),
    "minibatch-without-key": ({"batch_size": 8}, ValueError, r"pass key=jax.random.key\(seed\)"),
    "zero-batch-size": ({"batch_size": 0, "key": KEY}, ValueError, r"batch_size must be a positive integer or None"),
    "negative-weight": ({"weight": -np.ones(30)}, ValueError, r"weight must be 30 finite, non-negative numbers"),
    "short-weight": ({"weight": np.ones(29)}, ValueError, r"weight must be 30 finite, non-negative numbers"),
    # finite in float64 but not in the params' float32: the cast gave inf (x, y) or all zeros (weight), and NaN
    "x-beyond-float32": (
        {"x": X.astype(np.float64) * 1e300},
        ValueError,
        r"x has values beyond float32's range .*standardise it",
    ),
    "y_val-beyond-float32": (
        {"validation": (X, Y.astype(np.float64) * 1e300), "score": _negative_cross_entropy, "stopping": Stopping()},
        ValueError,
        r"y_val has values beyond float32's range",
    ),
    "weight-beyond-float32": ({"weight": np.full(30, 1e39)}, ValueError, r"weight has values beyond float32's"),
    "weight-rounds-to-zero": ({"weight": np.full(30, 1e-46)}, ValueError, r"weight rounds to all zeros in float32"),
    # subnormal in float32: numpy keeps 1e-40, the compiled program flushes it to 0 and took no step, silently
    "weight-subnormal": ({"weight": np.full(30, 1e-40)}, ValueError, r"below float32's smallest normal number"),
    # each weight fits float32, their sum (the weighted mean's divisor) does not: the loss came out NaN, silently
    "weight-sum-beyond-float32": (
        {"weight": np.full(30, 1e38)},
        ValueError,
        r"weight sums to 2.9999999e\+39, beyond float32's range .*: scale the weights down towards 1",
    ),
    "zero-learning-rate": (
        {"optimizer": "gd", "learning_rate": 0.0},
        ValueError,
        r"learning_rate must be one finite number > 0 .*, got 0.0",
    ),
    "text-learning-rate": (
        {"optimizer": "gd", "learning_rate": "0.1"},
        TypeError,
        r"learning_rate must be one number or one per member \(1\), got '0.1'",
    ),
    "learning-rate-and-optimizer": (
        {"learning_rate": 0.5},
        ValueError,
        r"learning_rate is a named solver's \('gd', 'sgd', 'adam'\); an optax optimizer has its own learning rate "
        r"\(e.g. optax.adam\(0.1\)\): pass learning_rate or such an optimizer, not both",
    ),
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
    "optimizer-number": ({"optimizer": 3}, TypeError, r"optimizer must be a solver name .* or an optax"),
    "minibatches-without-key": ({"batch_size": 8}, ValueError, r"minibatch training shuffles every epoch: pass key="),
    "optimizer-none": ({"optimizer": None}, TypeError, r"optimizer must be a solver name .*; got None"),  # ran gd
    "settings-beside-optax": (  # momentum 0.5 was ignored in silence
        {"optimizer": optax.adam(0.01), "settings": SolverSettings(momentum=0.5)},
        ValueError,
        r"settings configure a named solver; an optax transformation brings its own",
    ),
    "validation-loss-without-score": (  # said only that validation data needs a score
        {"validation": (X, Y), "stopping": Stopping(), "validation_loss": lambda outputs, y: 0.0},
        ValueError,
        r"validation data and a score function go together: pass both or neither \(validation_loss is watched "
        r"alongside a score, not instead of one\)",
    ),
    "unknown-solver-name": (
        {"optimizer": "adamw"},
        ValueError,
        r"unknown optimizer 'adamw'; choose one of: adam, gd, sgd",
    ),
    "lbfgs-is-not-a-step-solver": (
        {"optimizer": "lbfgs"},
        ValueError,
        r"optimizer 'lbfgs' is not one of fit's step-by-step solvers .* is jaxnn.lbfgs.minimize\(model, params, x, y, "
        r"loss=...\); or pass optax.lbfgs\(\) as the optimizer",
    ),
    "int-key": ({"batch_size": 8, "key": 0}, TypeError, r"key must be a jax.random key"),
    "negative-start-epoch": ({"start_epoch": -1}, ValueError, r"start_epoch must be an integer in \[0, 2\*\*32\)"),
    "fractional-start-epoch": ({"start_epoch": 1.5}, ValueError, r"start_epoch must be an integer"),
    "stopping-without-patience": (
        {"stopping": Stopping(1e-4, 0)},
        ValueError,
        r"stopping needs a finite tol >= 0 and n_iter_no_change >= 1",
    ),
    "stopping-nan-tol": ({"stopping": Stopping(float("nan"), 5)}, ValueError, r"finite tol"),
    "stopping-bool-tol": ({"stopping": Stopping(True, 5)}, ValueError, r"finite tol"),  # once read as tol=1.0
    "empty-validation": (
        {"validation": (X[:0], Y[:0]), "score": _negative_cross_entropy, "stopping": Stopping()},
        ValueError,
        r"x_val has 0 samples and y_val 0; they must match and be at least 1",
    ),
    "ragged-list-x": (  # NumPy's "setting an array element with a sequence" named no argument
        {"x": [[1.0, 2.0, 3.0, 4.0]] * 29 + [[1.0, 2.0]]},
        ValueError,
        r"x must be a rectangular array: its rows have different lengths",
    ),
    "short-validation-targets": (
        {"validation": (X, Y[:-1]), "score": _negative_cross_entropy, "stopping": Stopping()},
        ValueError,
        r"x_val has 30 samples and y_val 29",
    ),
}


@pytest.mark.parametrize(("change", "error", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_a_clear_error(change, error, message):
    arguments = {"x": X, "y": Y, "loss": LOSS, "epochs": EPOCHS, "optimizer": DESCENT} | change
    x, y = arguments.pop("x"), arguments.pop("y")
    with pytest.raises(error, match=message):
        jaxnn.fit(MODEL, PARAMS, x, y, **arguments)


def test_minibatches_in_order_need_no_key():
    """shuffle=False visits the rows in order: no key is drawn from, so none is asked for (it was), and a key
    given changes nothing."""
    arguments = {"loss": LOSS, "epochs": 3, "optimizer": DESCENT, "batch_size": 8, "shuffle": False}
    without = jaxnn.fit(MODEL, PARAMS, X, Y, **arguments)
    with_key = jaxnn.fit(MODEL, PARAMS, X, Y, key=jax.random.key(5), **arguments)
    assert_trees_equal(without.params, with_key.params)
    np.testing.assert_array_equal(without.history, with_key.history)


# Values fit and fit_many (one member) must take or refuse alike, with the same message: each is checked by one
# function for both.  fit took learning_rate=True as a TypeError and fit_many as 1.0; both took l2=True, l2="0.5"
# and, with the constant schedule, any power_t.
SAME_CHECKS = {
    "bool-learning-rate": (
        {"learning_rate": True},
        TypeError,
        r"learning_rate must be one number .*, got True \(a bool",
    ),
    "numpy-bool-learning-rate": ({"learning_rate": np.True_}, TypeError, r"a bool is not a number here"),
    "bool-in-learning-rates": ({"learning_rate": [True]}, TypeError, r"a bool is not a number here"),
    "bool-array-learning-rate": ({"learning_rate": np.array([True])}, TypeError, r"a bool is not a number here"),
    "text-learning-rate": ({"learning_rate": "0.1"}, TypeError, r"learning_rate must be one number .*, got '0.1'$"),
    "negative-learning-rate": ({"learning_rate": -1.0}, ValueError, r"learning_rate must be one finite number > 0"),
    "bool-l2": ({"l2": True}, TypeError, r"l2 must be one number .*, got True \(a bool is not a number here\)"),
    "text-l2": ({"l2": "0.5"}, TypeError, r"l2 must be one number or one per member \(1\), got '0.5'$"),
    "negative-power-t": ({"power_t": -5.0}, ValueError, r"power_t must be one finite number >= 0 .*, got -5.0"),
    "two-power-ts": ({"power_t": [1.0, 2.0]}, ValueError, r"power_t must be .* one per member \(1\), got shape \(2,\)"),
    "bool-power-t": ({"power_t": False}, TypeError, r"power_t must be one number .*, got False \(a bool"),
    "nan-power-t-adaptive": ({"power_t": np.nan, "schedule": "adaptive"}, ValueError, r"power_t must be one finite"),
    # finite in float64 but not in the params' float32, where the optimiser state keeps them: 1e39 became inf (the
    # fit diverged at once, with NumPy's overflow warning), and 1e-40 or 1e-46 zero (the fit trained nothing, silently)
    "learning-rate-beyond-float32": (
        {"learning_rate": 1e39},
        ValueError,
        r"learning_rate has values beyond float32's range .*pass a smaller learning_rate",
    ),
    "learning-rate-subnormal-in-float32": (
        {"learning_rate": 1e-40},
        ValueError,
        r"learning_rate 1e-40 is below float32's smallest normal number .*training would take no step",
    ),
    "learning-rate-rounds-to-zero": ({"learning_rate": [1e-46]}, ValueError, r"below float32's smallest normal"),
    "l2-beyond-float32": ({"l2": 1e39}, ValueError, r"l2 has values beyond float32's range"),
    "power-t-beyond-float32": ({"power_t": 1e39}, ValueError, r"power_t has values beyond float32's range"),
    "adam-epsilon-flushed": (
        {"optimizer": "adam", "settings": SolverSettings(epsilon=1e-40)},
        ValueError,
        r"settings.epsilon 1e-40 is below float32's smallest normal number .*NaN for a weight whose gradients",
    ),
    "numpy-numbers": ({"learning_rate": np.float32(0.2), "l2": np.int64(0), "power_t": np.float64(0.25)}, None, ""),
    "bfloat16-rate": ({"learning_rate": jnp.bfloat16(0.25), "l2": jnp.zeros(1, jnp.bfloat16)}, None, ""),
    "one-per-member": ({"learning_rate": [0.2], "l2": np.array([0.01]), "power_t": (0.5,)}, None, ""),
}


@pytest.mark.parametrize(("change", "error", "message"), SAME_CHECKS.values(), ids=SAME_CHECKS.keys())
def test_fit_and_fit_many_take_and_refuse_the_same_values_with_the_same_message(change, error, message):
    arguments = {"loss": LOSS, "epochs": 2, "optimizer": "sgd"} | change
    calls = {
        "fit": lambda: jaxnn.fit(MODEL, PARAMS, X, Y, **arguments),
        "fit_many": lambda: jaxnn.fit_many(MODEL, jax.tree.map(lambda a: a[None], PARAMS), X, Y, **arguments),
    }
    if error is None:
        fitted = calls["fit"]()
        many = calls["fit_many"]()
        np.testing.assert_allclose(many.params[0]["W"][0], fitted.params[0]["W"], rtol=1e-6, atol=1e-7)
        return
    messages = []
    for call in calls.values():
        with pytest.raises(error, match=message) as caught:
            call()
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (jax.tree.map(lambda a: a * np.nan, PARAMS), ValueError, r"params contain NaN or infinity.*model.init"),
        (jax.tree.map(lambda a: a.at[0].set(np.inf), PARAMS), ValueError, r"params contain NaN or infinity"),
        (jax.tree.map(lambda a: a.astype(np.int32), PARAMS), TypeError, r"params must hold floating-point weights"),
        (None, TypeError, r"params must hold one \{'W', 'b'\} dict per layer, as model.init"),
        # trained with x cast to the first layer's float16 and JAX's "scatter inputs have incompatible types"
        (
            [{"W": PARAMS[0]["W"].astype(jnp.float16), "b": PARAMS[0]["b"]}, PARAMS[1]],
            TypeError,
            r"params mix dtypes \(float16, float32\); give every weight one floating dtype",
        ),
        # NumPy float64 weights trained as float32 in silence while JAX's 64-bit mode was off (init refuses them)
        (
            jax.tree.map(lambda a: np.asarray(a, np.float64), PARAMS),
            ValueError,
            r"params are float64, which trains as float64 only in JAX's 64-bit mode, which is off: .*enable_x64",
        ),
    ],
    ids=["nan", "inf", "int", "none", "mixed-dtypes", "float64-without-x64"],
)
def test_starting_weights_that_are_not_finite_floats_are_refused(params, error, message):
    # NaN starting weights trained into a NaN result with diverged=True; int ones failed inside JAX
    with pytest.raises(error, match=message):
        jaxnn.fit(MODEL, params, X, Y, loss=LOSS, epochs=2, optimizer=DESCENT)


def _refused_on_every_road(model, loss, message):
    """Every road that takes a model and a loss refuses the pair with ``message``, before compiling."""
    params, y = model.init(KEY, 2), np.eye(3, dtype=np.float32)[np.arange(len(X)) % 3]
    calls = [
        lambda: jaxnn.fit(model, params, X, y, loss=loss, epochs=1),
        lambda: jaxnn.fit_many(model, jax.tree.map(lambda a: a[None], params), X, y, loss=loss, epochs=1),
        lambda: jaxnn.make_train_step(model, loss, DESCENT),
        lambda: jaxnn.lbfgs.minimize(model, params, X, y, loss=loss, max_iter=1),
        lambda: jaxnn.loss_and_grads(model, params, X, y, loss),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize(
    ("last", "loss", "instead"),
    [
        ("softmax", "softmax_cross_entropy", "categorical_cross_entropy"),
        ("sigmoid", "sigmoid_binary_cross_entropy", "binary_cross_entropy"),
        ("logistic", "sigmoid_binary_cross_entropy", "binary_cross_entropy"),  # the same activation by its alias
        ("exp", "poisson", "half_poisson_deviance"),
    ],
)
def test_a_loss_on_logits_after_a_layer_that_applies_its_activation_is_refused_everywhere(last, loss, instead):
    """The activation would run twice (a softmax of a softmax trains without an error, to the wrong optimum);
    every road that takes a model and a loss refuses it before compiling, and names both ways out."""
    model = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, last)))
    message = rf"applies .* itself, and the last layer applies .* too: .*activation='identity'.*'{instead}'"
    _refused_on_every_road(model, loss, message)
    logits = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, "identity")))
    jaxnn.make_train_step(logits, loss, DESCENT)  # the pairings meant are accepted
    jaxnn.make_train_step(model, instead, DESCENT)


@pytest.mark.parametrize(
    ("last", "loss"),
    [
        ("identity", "softmax_cross_entropy"),
        ("identity", "log_loss"),
        ("sigmoid", "categorical_cross_entropy"),  # p / Σp = 1 for a row of one
        ("exp", "categorical_cross_entropy"),
    ],
)
def test_a_categorical_loss_over_one_output_unit_is_refused_everywhere(last, loss):
    """One unit gets all the probability whatever it outputs: the loss and its gradient were 0 and nothing trained,
    silently (a softmax layer of one unit was refused already)."""
    model = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(1, last)))
    _refused_on_every_road(model, loss, rf"^loss '{loss}' spreads probability .* one unit per class")
    jaxnn.make_train_step(jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(2, last))), loss, DESCENT)


@pytest.mark.parametrize("batch_size", [None, 256], ids=["full-batch", "minibatch"])
def test_a_float16_mean_loss_over_many_rows_trains_where_its_sum_passes_float16s_range(batch_size):
    """A mean squared error of about 100 over 5,000 rows: Σ w·l (5e5) was summed to infinity in float16 before its
    division, so the full batch stopped at once as diverged (history [nan]) and the minibatch run reported an
    infinite loss every epoch beside diverged=False.  The sums over samples are taken in float32 now."""
    rng = np.random.default_rng(0)
    model = jaxnn.Sequential((jaxnn.Dense(8, "tanh"), jaxnn.Dense(1)))
    x, y = rng.normal(size=(5000, 4)), 10 * rng.normal(size=(5000, 1))
    params = model.init(KEY, 4, dtype=jnp.float16)
    key = None if batch_size is None else KEY
    result = jaxnn.fit(model, params, x, y, loss="mean_squared_error", epochs=3, batch_size=batch_size, key=key)
    assert not result.diverged and result.n_epochs == 3 and result.history.dtype == np.float16
    wide = jaxnn.fit(model, jax.tree.map(lambda a: a.astype(jnp.float32), params), x, y, loss="mean_squared_error",
                     epochs=3, batch_size=batch_size, key=key)  # fmt: skip
    np.testing.assert_allclose(result.history, wide.history, rtol=2e-3)


def test_an_opt_state_of_another_optimiser_or_network_is_refused():
    # it failed inside the optimiser: "DynamicJaxprTracer has no attribute learning_rate"
    first = _fit(optimizer="adam", epochs=2)
    adam_state = first.opt_state
    other_network = jaxnn.Sequential((jaxnn.Dense(5, "tanh"), jaxnn.Dense(3, "softmax")))
    other_state = jaxnn.fit(other_network, other_network.init(KEY, 2), X, Y, loss=LOSS, epochs=2, optimizer="adam")
    message = r"opt_state does not match this optimiser's state for these params"
    for optimizer, state in (("sgd", adam_state), ("adam", {"count": 1}), ("adam", other_state.opt_state)):
        with pytest.raises(ValueError, match=message):
            _fit(optimizer=optimizer, opt_state=state, epochs=3, start_epoch=2)
    resumed = jaxnn.fit(  # its own state still resumes
        MODEL, first.params, X, Y, loss=LOSS, optimizer="adam", opt_state=adam_state, epochs=1, start_epoch=2
    )
    assert_trees_equal(resumed.params, _fit(optimizer="adam", epochs=3).params)


def test_an_opt_state_holding_nan_is_refused_as_nan_weights_are():
    """A NaN state trained on: every step NaN, a run that 'diverged' at epoch 0 with a NaN history.  An infinity is
    a state some optax transformations start from (reduce_on_plateau's best value), so only NaN is refused."""
    first = _fit(optimizer="adam", epochs=2)
    poisoned = jax.tree.map(
        lambda leaf: leaf * jnp.nan if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf, first.opt_state
    )
    with pytest.raises(ValueError, match="opt_state contains NaN, which training cannot repair; leave it None"):
        _fit(optimizer="adam", opt_state=poisoned, epochs=1, start_epoch=2)
    with pytest.raises(ValueError, match="opt_state contains NaN"):
        jaxnn.fit_many(
            MODEL, jaxnn.engine.with_member_axis(first.params), X, Y, loss=LOSS, optimizer="adam",
            opt_state=jaxnn.engine.with_member_axis(poisoned), epochs=1, start_epoch=2,
        )  # fmt: skip
    plateau = optax.contrib.reduce_on_plateau()
    state = plateau.init(first.params)
    assert np.isinf(np.asarray(state.best_value))  # an infinity in a fresh state
    chained = optax.chain(optax.sgd(0.1), plateau)
    resumed = jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=2, optimizer=chained, opt_state=chained.init(PARAMS))
    assert np.isfinite(resumed.history).all() and not resumed.diverged


def test_an_opt_state_of_params_of_another_dtype_is_refused_on_every_road():
    """Shapes alone matched: fit failed in JAX's while-loop carry-type error, or (a float32 state for float16
    params) trained with mixed precisions; train_step kept a float16 state for float32 params."""
    half = jax.tree.map(lambda a: a.astype(jnp.float16), PARAMS)
    settings = SolverSettings(epsilon=1e-3)  # the default 1e-8 rounds to 0 in float16: refused
    half_state = jaxnn.fit(MODEL, half, X, Y, loss=LOSS, epochs=2, optimizer="adam", settings=settings).opt_state
    message = r"opt_state holds float16 where this optimiser's state for these params is float32"
    with pytest.raises(ValueError, match=message):
        _fit(optimizer="adam", opt_state=half_state, epochs=1, start_epoch=2)
    with pytest.raises(ValueError, match=message):
        jaxnn.train_step(MODEL, LOSS, ADAM, PARAMS, ADAM.init(half), X, Y)


def test_a_dense_layer_is_not_a_model():
    with pytest.raises(TypeError, match=r"model must be a jaxnn.Sequential, got Dense"):
        jaxnn.fit(MODEL.layers[0], PARAMS, X, Y, loss=LOSS, epochs=1)


def test_boolean_features_are_zeros_and_ones_as_in_scikit_learn():
    # x > 0 was refused with "x must hold real numbers, got dtype bool", though model.apply took it
    arguments = {"loss": LOSS, "epochs": 3, "optimizer": DESCENT}
    as_bools = jaxnn.fit(MODEL, PARAMS, X > 0, Y, **arguments)
    assert_trees_equal(as_bools.params, jaxnn.fit(MODEL, PARAMS, (X > 0).astype(np.float32), Y, **arguments).params)


def test_bfloat16_data_trains_as_its_float32_values():
    # bfloat16 x or y was refused with "x must hold real numbers, got dtype bfloat16" (NumPy's kind for it is 'V'),
    # though float16 trained and model.apply took bfloat16
    arguments = {"loss": LOSS, "epochs": 3, "optimizer": DESCENT}
    x16, y16 = (np.array(jnp.asarray(a, jnp.bfloat16)) for a in (X, Y))
    as_bfloat16 = jaxnn.fit(MODEL, PARAMS, x16, y16, **arguments)
    as_float32 = jaxnn.fit(MODEL, PARAMS, x16.astype(np.float32), y16.astype(np.float32), **arguments)
    assert_trees_equal(as_bfloat16.params, as_float32.params)
    x16[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or infinity"):
        jaxnn.fit(MODEL, PARAMS, x16, Y, **arguments)


@pytest.mark.parametrize(
    ("change", "name"),
    [({"weight": np.full(30, 1e-39)}, "weight"), ({"learning_rate": 1e-39}, "learning_rate 1e-39")],
    ids=["weight", "learning-rate"],
)
def test_bfloat16_values_that_compiled_programs_flush_are_refused_as_in_float32(change, name):
    """bfloat16's subnormals (from 9.2e-41) are float32's, which XLA flushes: weights of 1e-39 each trained with
    a constant loss and no step, silently, and so did a learning rate of 1e-39 (float32 params refuse both)."""
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), PARAMS)
    arguments = {"loss": LOSS, "epochs": 2, "optimizer": "sgd", "learning_rate": 0.5} | change
    with pytest.raises(ValueError, match=rf"{name}.* below bfloat16's smallest normal number \(1\.18e-38\)"):
        jaxnn.fit(MODEL, params, X, Y, **arguments)


def test_numpy_integers_count_as_integers():
    as_python = _fit(epochs=3, batch_size=8, key=KEY)
    as_numpy = _fit(epochs=np.int64(3), batch_size=np.int32(8), key=KEY)
    assert_trees_equal(as_numpy.params, as_python.params)


@pytest.mark.parametrize(
    ("last", "loss", "on_raw_outputs"),
    [
        ("identity", "categorical_cross_entropy", "softmax_cross_entropy"),
        ("tanh", "binary_cross_entropy", "sigmoid_binary_cross_entropy"),
        ("relu", "binary_cross_entropy", "sigmoid_binary_cross_entropy"),  # outputs above 1 are clipped flat
        ("leaky_relu", "categorical_cross_entropy", "softmax_cross_entropy"),
        ("identity", "half_poisson_deviance", "poisson"),
        ("relu", "categorical_cross_entropy", "softmax_cross_entropy"),  # a row of zeros normalised to 0/0: NaN
        ("binary_step", "categorical_cross_entropy", "softmax_cross_entropy"),
        ("relu", "half_poisson_deviance", "poisson"),  # a mean of 0: log 0
    ],
)
def test_a_loss_on_probabilities_after_a_layer_whose_outputs_leave_its_domain_is_refused(last, loss, on_raw_outputs):
    """Without a softmax, categorical_cross_entropy clipped and normalised raw scores and climbed (iris accuracy
    0.29, no error); binary_cross_entropy clipped them to a zero gradient.  Every road refuses before compiling."""
    model = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, last)))
    message = (
        rf"loss '{loss}' needs predictions in [\[(]0, .*activation '{last}' outputs values in .*'{on_raw_outputs}'"
    )
    _refused_on_every_road(model, loss, message)


@pytest.mark.parametrize(
    ("last", "kwargs", "loss"),
    [
        ("sigmoid", {}, "categorical_cross_entropy"),  # non-negative rows: the loss normalises them
        ("binary_step", {}, "binary_cross_entropy"),
        ("exp", {}, "categorical_cross_entropy"),  # positive outputs: the loss normalises the rows
        ("leaky_relu", {"a": 1.0, "b": -0.5}, "mean_squared_error"),
        ("exp", {}, "half_poisson_deviance"),
        ("tanh", {}, "mean_squared_error"),
    ],
)
def test_a_last_layer_whose_outputs_stay_in_the_losss_domain_is_accepted(last, kwargs, loss):
    model = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, last, kwargs)))
    assert jaxnn.train.checked_model_and_loss(model, loss)[0] is model


def test_a_rate_given_beside_an_opt_state_replaces_the_states_and_none_keeps_it():
    """learning_rate=0.5 and l2=10 beside a resumed state were silently ignored: the state's rates won."""
    first = _fit(optimizer="adam", learning_rate=1e-3, epochs=2)
    resume = {"optimizer": "adam", "epochs": 2, "start_epoch": 2}
    kept = jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, opt_state=first.opt_state, **resume)
    same = jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, opt_state=first.opt_state, learning_rate=1e-3, **resume)
    assert_trees_equal(kept.params, same.params)
    faster = jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, opt_state=first.opt_state, learning_rate=0.5, **resume)
    assert float(jaxnn.optimizers.learning_rate_of(faster.opt_state)) == 0.5
    by_hand = jaxnn.optimizers.with_learning_rate(first.opt_state, 0.5)
    assert_trees_equal(
        faster.params, jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, opt_state=by_hand, **resume).params
    )
    penalised = jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, opt_state=first.opt_state, l2=10.0, **resume)
    assert float(jaxnn.optimizers.l2_rate_of(penalised.opt_state)) == 10.0
    squares = sum(float(np.sum(np.square(layer["W"]))) for layer in first.params)
    np.testing.assert_allclose(penalised.history[0] - kept.history[0], 0.5 * 10.0 * squares, rtol=1e-4)
    with_l2 = _fit(optimizer="adam", l2=0.1, epochs=2)  # l2 left None keeps a state's own penalty
    continued = jaxnn.fit(MODEL, with_l2.params, X, Y, loss=LOSS, opt_state=with_l2.opt_state, **resume)
    assert float(jaxnn.optimizers.l2_rate_of(continued.opt_state)) == pytest.approx(0.1)


def test_a_scheduled_state_refuses_a_learning_rate_it_did_not_start_from():
    arguments = {"optimizer": "sgd", "schedule": "invscaling", "batch_size": 8, "key": KEY}
    first = _fit(learning_rate=0.1, epochs=2, **arguments)
    resume = {"epochs": 2, "start_epoch": 2, "opt_state": first.opt_state} | arguments
    jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, learning_rate=0.1, **resume)  # the same rate: fine
    with pytest.raises(ValueError, match=r"continues a 'invscaling' schedule that started at learning_rate 0.1"):
        jaxnn.fit(MODEL, first.params, X, Y, loss=LOSS, learning_rate=0.5, **resume)


@pytest.mark.parametrize("batch_size", [1, 4, 7, None])
def test_a_sum_losss_epoch_reports_the_full_batch_sum_whatever_the_batch_size(batch_size):
    """Each batch's sum was weighted by its share of the rows: batch 3 reported half the sum, batch 1 a sixth."""
    model = jaxnn.Sequential((jaxnn.Dense(3, "tanh"), jaxnn.Dense(1)))
    params = model.init(KEY, 2)
    y = X[:, :1] - X[:, 1:]
    result = jaxnn.fit(
        model, params, X, y, loss="sum_of_squares", epochs=1, learning_rate=1e-12, l2=0.5, batch_size=batch_size,
        key=KEY,
    )  # fmt: skip
    penalty = 0.25 * sum(float(np.sum(np.square(layer["W"]))) for layer in params)
    expected = float(jaxnn.sum_of_squares(model.apply(params, X), y)) + penalty
    np.testing.assert_allclose(result.history[0], expected, rtol=1e-5)


def test_a_score_that_is_never_finite_returns_the_last_epochs_params_not_the_initial_ones():
    never = jaxnn.fit(
        MODEL, PARAMS, X, Y, loss=LOSS, epochs=5, optimizer=DESCENT, validation=(X, Y),
        score=lambda outputs, y: -jnp.inf * jnp.sum(outputs), stopping=Stopping(n_iter_no_change=100),
    )  # fmt: skip
    assert np.all(np.isneginf(never.validation_scores))
    assert_trees_equal(never.params, _fit(epochs=5).params)


def test_params_as_any_sequence_of_layer_dicts_train_and_other_keys_are_refused():
    as_tuple = jaxnn.fit(MODEL, tuple(PARAMS), X, Y, loss=LOSS, epochs=2, optimizer=DESCENT)
    assert_trees_equal(as_tuple.params, _fit(epochs=2).params)
    extra = [dict(PARAMS[0], mask=np.ones(4)), PARAMS[1]]
    for call in (
        lambda: jaxnn.fit(MODEL, extra, X, Y, loss=LOSS, epochs=1),
        lambda: jaxnn.lbfgs.minimize(MODEL, extra, X, Y, loss=LOSS, max_iter=1),
    ):
        with pytest.raises(ValueError, match=r"params\[0\] has keys other than 'W' and 'b' \('mask'\)"):
            call()


def test_arguments_of_the_wrong_kind_are_named():
    with pytest.raises(TypeError, match=r"mesh must be a jax.sharding.Mesh, .* got str"):
        _fit(mesh="cpu")
    with pytest.raises(TypeError, match=r"score must be a function \(outputs, y_val\) -> scalar"):
        _fit(validation=(X, Y), score=3, stopping=Stopping())
    with pytest.raises(ValueError, match=r"score must return one number .* got an array of shape \(30,\)"):
        _fit(validation=(X, Y), score=lambda outputs, y: outputs[:, 0], stopping=Stopping(), epochs=1)
    with pytest.raises(ValueError, match=r"params contain NaN"):
        jaxnn.lbfgs.minimize(MODEL, jax.tree.map(lambda a: a * np.nan, PARAMS), X, Y, loss=LOSS, max_iter=1)
    step = jaxnn.make_train_step(MODEL, LOSS, DESCENT)
    with pytest.raises(TypeError, match=r"x must be an array \(the step is compiled for arrays\)"):
        step(PARAMS, DESCENT.init(PARAMS), X.tolist(), Y)


@pytest.mark.parametrize(
    "score",
    [lambda outputs, y: (jnp.mean(outputs), 1.0), lambda outputs, y: jnp.mean(outputs) + 1j],
    ids=["tuple", "complex"],
)
def test_a_score_that_is_not_one_real_number_is_named(score):
    """A tuple once failed in JAX's tracer conversion, a complex number in the while loop's carry types."""
    with pytest.raises(TypeError, match=r"score must return one real number \(e.g. jnp.mean"):
        _fit(validation=(X, Y), score=score, stopping=Stopping(), epochs=1)


@pytest.mark.parametrize(
    ("keyword", "function"),
    [
        ("score", lambda outputs, y: float(np.asarray(outputs).sum())),
        ("score", lambda outputs, y: 1.0 if jnp.mean(outputs) > 0 else 0.0),
        ("validation_loss", lambda outputs, y: np.mean((np.asarray(outputs) - y) ** 2)),
    ],
    ids=["numpy score", "python-if score", "numpy validation_loss"],
)
def test_a_function_the_loop_cannot_trace_is_named_with_what_to_do(keyword, function):
    """A score written with NumPy or float() failed with JAX's TracerArrayConversionError, naming the loop's
    internals (one_epoch, while_body) rather than the score."""
    functions = {"score": lambda outputs, y: -jnp.mean((outputs - y) ** 2)} | {keyword: function}
    message = rf"{keyword} runs inside the compiled training loop, on traced arrays, so it must be written with jax"
    with pytest.raises(TypeError, match=message):
        _fit(validation=(X, Y), stopping=Stopping(), epochs=1, **functions)


@pytest.mark.parametrize("keyword", ["score", "validation_loss"])
def test_the_users_own_error_in_a_score_passes_through_with_a_note_naming_it(keyword):
    """An exception of the user's function (here a KeyError) is raised as it is, not hidden, and says whose it was."""

    def broken(outputs, y):
        return {"mse": jnp.mean((outputs - y) ** 2)}["mae"]

    functions = {"score": lambda outputs, y: -jnp.mean((outputs - y) ** 2)} | {keyword: broken}
    with pytest.raises(KeyError, match="mae") as caught:
        _fit(validation=(X, Y), stopping=Stopping(), epochs=1, **functions)
    assert any(f"raised by the {keyword} function given to jaxnn" in note for note in caught.value.__notes__)


def test_an_optax_state_with_an_l2_term_resumes_with_its_own_l2_as_a_named_solvers():
    """A state with an L2 term keeps its L2 rate when l2 is left out, an optax transformation's as a named solver's
    (leaving it out was refused); a population member's state at l2 0, wrapped because other members had a penalty,
    continues alone with fit (it was refused: fit without l2 builds the transformation without the L2 term).  A
    state without the term takes no l2: the term is part of the program."""
    arguments = {"loss": LOSS, "optimizer": ADAM, "l2": 0.01}
    whole = jaxnn.fit(MODEL, PARAMS, X, Y, epochs=4, **arguments)
    head = jaxnn.fit(MODEL, PARAMS, X, Y, epochs=2, **arguments)
    tail = jaxnn.fit(MODEL, head.params, X, Y, epochs=2, start_epoch=2, opt_state=head.opt_state, **arguments)
    assert_trees_equal(tail.params, whole.params)
    own = jaxnn.fit(
        MODEL, head.params, X, Y, loss=LOSS, optimizer=ADAM, epochs=2, start_epoch=2, opt_state=head.opt_state
    )
    assert_trees_equal(own.params, whole.params)
    members = jaxnn.fit_many(MODEL, jax.tree.map(lambda a: np.stack([a, a]), PARAMS), X, Y, loss=LOSS, optimizer=ADAM,
                             epochs=2, l2=np.array([0.0, 0.01]))  # fmt: skip
    first = jaxnn.engine.member
    alone = jaxnn.fit(MODEL, first(members.params, 0), X, Y, loss=LOSS, optimizer=ADAM, epochs=2, start_epoch=2,
                      opt_state=first(members.opt_state, 0), l2=0.0)  # fmt: skip
    plain = jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, optimizer=ADAM, epochs=4)
    assert_trees_close(alone.params, plain.params, rtol=2e-5, atol=2e-6)
    with pytest.raises(ValueError, match=r"of the same model, optimizer, l2 and schedule"):
        jaxnn.fit(MODEL, plain.params, X, Y, loss=LOSS, optimizer=ADAM, epochs=2, opt_state=plain.opt_state, l2=0.01)


NO_FEATURES = [{"W": np.zeros((0, 4), np.float32), "b": PARAMS[0]["b"]}, PARAMS[1]]  # a hand-built first layer


@pytest.mark.parametrize(
    "call",
    [
        lambda x: jaxnn.fit(MODEL, NO_FEATURES, x, Y, loss=LOSS, epochs=2, optimizer=DESCENT),
        lambda x: jaxnn.fit_many(MODEL, jax.tree.map(lambda a: a[None], NO_FEATURES), x, Y, loss=LOSS, epochs=2),
        lambda x: jaxnn.lbfgs.minimize(MODEL, NO_FEATURES, x, Y, loss=LOSS),
    ],
    ids=["fit", "fit_many", "minimize"],
)
def test_x_without_features_is_refused(call):
    """x with 0 columns and a first layer of W (0, 4) trained the biases alone, silently (scikit-learn refuses 0
    features too)."""
    with pytest.raises(ValueError, match=r"^x has 0 features \(shape \(30, 0\)\): a network needs at least one"):
        call(np.zeros((30, 0), np.float32))


def test_y_val_reaches_the_score_as_it_is_whatever_its_columns():
    """y_val's columns are the score's business: here sample weights ride as a last column (as jaxnn's scikit-learn
    estimators pass them), so y_val is not refused for being wider than y."""
    weights = np.linspace(0.5, 1.5, len(Y), dtype=np.float32)[:, None]

    def weighted_score(outputs, y_val):
        return -jnp.sum(y_val[:, -1] * jnp.sum((outputs - y_val[:, :-1]) ** 2, axis=1)) / jnp.sum(y_val[:, -1])

    result = _fit(validation=(X, np.concatenate([Y, weights], axis=1)), score=weighted_score, stopping=Stopping())
    assert np.all(np.isfinite(result.validation_scores[: result.n_epochs]))
    # nor for having no column at all: a score of the outputs alone
    result = _fit(
        validation=(X, np.zeros((len(X), 0))), score=lambda outputs, _: -jnp.sum(outputs**2), stopping=Stopping()
    )
    assert np.all(np.isfinite(result.validation_scores[: result.n_epochs]))


def test_a_finite_fit_gives_jax_debug_nans_and_debug_infs_nothing_to_report():
    """JAX's NaN and inf debuggers check every compiled program's outputs: a finite run returns none (the
    curves' epochs not run, the curves not recorded and the unread best of a run without a stopping rule were
    NaN and inf there, so every fit raised FloatingPointError); the host still reports those as NaN."""
    with jax.debug_nans(True), jax.debug_infs(True):
        plain = _fit(epochs=5)
        stopped = _fit(epochs=5, optimizer="adam", learning_rate=0.05, batch_size=8, key=KEY, stopping=Stopping())
    for result in (plain, stopped):
        assert result.history.shape == (5,) and np.isfinite(result.history).all()
        assert np.isnan(result.validation_scores).all() and np.isnan(result.validation_losses).all()
    assert_trees_equal(plain.params, _fit(epochs=5).params)


def test_a_fresh_optax_transformation_per_call_compiles_nothing_new():
    """A long-running process that builds ``optax.adam(...)`` afresh for every fit (the usual idiom) once compiled
    the loop, and the step, again on every call (they were keyed on the transformation's identity), and JAX kept
    every program: some 140 mmap regions a fit, a crash at vm.max_map_count after a few hundred fits."""
    step_arguments = (PARAMS, optax.adam(0.05).init(PARAMS), X, Y)
    expected = _fit(optimizer=optax.adam(0.05), epochs=3)
    jaxnn.make_train_step(MODEL, LOSS, optax.adam(0.05))(*step_arguments)
    with compilations() as names:
        again = _fit(optimizer=optax.adam(0.05), epochs=3)
        jaxnn.make_train_step(MODEL, LOSS, optax.adam(0.05))(*step_arguments)
    assert names == []
    assert_trees_equal(again.params, expected.params)
    # another rate is another update: its own program, its own result
    other = _fit(optimizer=optax.adam(0.5), epochs=3)
    assert not np.array_equal(np.asarray(other.params[0]["W"]), np.asarray(expected.params[0]["W"]))


def test_a_solver_name_given_to_the_step_factory_says_how_to_build_its_transformation():
    with pytest.raises(TypeError, match=r"for the named solver 'adam': jaxnn.optimizers.make\('adam', learning_rate"):
        jaxnn.make_train_step(MODEL, LOSS, "adam")
    adam = jaxnn.optimizers.make("adam", learning_rate=0.01)  # what the message names works
    params, _, loss = jaxnn.make_train_step(MODEL, LOSS, adam)(PARAMS, adam.init(PARAMS), X, Y)
    assert np.isfinite(float(loss)) and jax.tree.structure(params) == jax.tree.structure(PARAMS)


@pytest.mark.parametrize("optimizer", [optax.lbfgs(), "adam"], ids=["optax-lbfgs", "jaxnn-adam"])
def test_an_in_place_step_takes_a_fresh_state_that_holds_one_array_in_several_places(optimizer):
    # Their init puts one zeros array in several leaves; donating it twice was XLA's INVALID_ARGUMENT
    transformation = jaxnn.optimizers.make(optimizer, learning_rate=0.05) if isinstance(optimizer, str) else optimizer
    state = transformation.init(PARAMS)
    leaves = jax.tree.leaves(state)
    assert len({id(leaf) for leaf in leaves}) < len(leaves)  # the case this test is about
    copied = jaxnn.train_step(MODEL, LOSS, transformation, PARAMS, state, X, Y)
    params = jax.tree.map(jnp.array, PARAMS)
    in_place = jaxnn.train_step(MODEL, LOSS, transformation, params, transformation.init(params), X, Y, in_place=True)
    assert_trees_equal(in_place, copied)
    # jax.device_put of a tree gives each leaf an object of its own over the same buffers: no two ids alike
    params = jax.tree.map(jnp.array, PARAMS)
    state = jax.device_put(transformation.init(params), jax.devices()[0])
    assert len({id(leaf) for leaf in jax.tree.leaves(state)}) == len(jax.tree.leaves(state))
    in_place = jaxnn.train_step(MODEL, LOSS, transformation, params, state, X, Y, in_place=True)
    assert_trees_equal(in_place, copied)


def test_an_in_place_step_whose_batch_is_one_of_its_parameters_reads_the_batch_before_the_update():
    # x was the donated buffer of a weight matrix: XLA's INVALID_ARGUMENT ("previously donated in the same call")
    model = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(4, "identity")))
    params = model.init(KEY, 4)
    x = jnp.array(params[0]["W"])
    copied = jaxnn.train_step(model, "mean_squared_error", ADAM, params, ADAM.init(params), x, x)
    for two_objects in (False, True):  # the batch the same object as the weights, or another over their buffer
        owner = jax.tree.map(jnp.array, params)
        donated = jax.device_put(owner, jax.devices()[0]) if two_objects else owner
        batch = owner[0]["W"]
        assert (donated[0]["W"] is batch) != two_objects
        assert donated[0]["W"].unsafe_buffer_pointer() == batch.unsafe_buffer_pointer()
        state = ADAM.init(donated)
        in_place = jaxnn.train_step(model, "mean_squared_error", ADAM, donated, state, batch, batch, in_place=True)
        assert_trees_equal(in_place, copied)


def _correct_rows(outputs, y):
    return jnp.sum(jnp.argmax(outputs, axis=-1) == jnp.argmax(y, axis=-1))  # an integer


@pytest.mark.parametrize(
    ("params", "score"),
    [
        (PARAMS, _correct_rows),
        (MODEL.init(KEY, 2, dtype="bfloat16"), lambda outputs, y: jnp.mean(outputs[:, 0].astype(jnp.float32))),
    ],
    ids=["an-integer-count", "float32-of-a-bfloat16-network"],
)
def test_a_score_of_another_dtype_is_watched_in_the_loops_dtype(params, score):
    # Its dtype changed the best value's from one epoch to the next: lax.while_loop's carry TypeError
    options = {"loss": LOSS, "epochs": 6, "learning_rate": 0.5, "stopping": Stopping(1e-4, 2), "validation": (X, Y)}
    dtype = jax.tree.leaves(params)[0].dtype
    result = jaxnn.fit(MODEL, params, X, Y, score=score, **options)
    cast = jaxnn.fit(MODEL, params, X, Y, score=lambda outputs, y: score(outputs, y).astype(dtype), **options)
    assert result.validation_scores.dtype == dtype and np.isfinite(result.validation_scores.astype(float)).all()
    assert_trees_equal(result.params, cast.params)  # the same run as with the score cast by hand
    np.testing.assert_array_equal(result.validation_scores, cast.validation_scores)


def test_odd_but_meaningful_arguments_are_taken_or_refused_by_name():
    """Found by fuzzing the core API: each had ended in another exception than a ValueError or TypeError naming the
    argument, or in a silent result."""
    # a Python int tol past int32 failed inside the compiled loop with JAX's OverflowError
    result = jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=3, learning_rate=0.1, stopping=Stopping(tol=2**31))
    assert not result.diverged and 1 <= result.n_epochs <= 3

    class Unhashable:
        __hash__ = None

        def __call__(self, outputs, y):
            return -jnp.mean((outputs - y) ** 2)

    with pytest.raises(TypeError, match=r"score must be hashable \(a function, or an object with __hash__\)"):
        jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=2, validation=(X, Y), score=Unhashable(), stopping=Stopping())
    # a complex weight kept its real part with a ComplexWarning
    with pytest.raises(TypeError, match=r"weight must be real numbers, one per sample \(30\)"):
        jaxnn.fit(MODEL, PARAMS, X, Y, loss=LOSS, epochs=2, weight=np.ones(len(X)) * (1 + 5j))
    # integer params gave gradients cut to whole numbers (0)
    with pytest.raises(TypeError, match=r"params must hold floating-point weights.*int32"):
        jaxnn.loss_and_grads(MODEL, jax.tree.map(lambda leaf: leaf.astype(jnp.int32), PARAMS), X, Y, LOSS)
    # a solver's rate: a 0-d array as fit takes it (it had been "unhashable type"), and True refused even after a
    # solver of rate 1 was cached (True == 1 had hit the cache)
    assert jaxnn.optimizers.make("gd", learning_rate=np.array(0.1)) is jaxnn.optimizers.make("gd", learning_rate=0.1)
    jaxnn.optimizers.make("adam", learning_rate=1)
    with pytest.raises(ValueError, match="learning_rate must be a positive number, got True"):
        jaxnn.optimizers.make("adam", learning_rate=True)
