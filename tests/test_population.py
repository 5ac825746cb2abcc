"""``jaxnn.fit_many``: every member equals ``fit`` run alone with its settings, members are
independent (stopping, divergence), and a population compiles once per architecture and member count.

The bound: member i against ``fit`` alone agrees to rtol 2e-5 / atol 2e-6 in float32 after 40 epochs (a
batched product may add in another order, so the last bits differ and grow slowly with the epochs).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_close

import jaxnn
from jaxnn import _loop, optimizers
from jaxnn.data import iris_split, one_hot
from jaxnn.engine import CPU_GROUP, default_group_size, member
from jaxnn.train import fit_many

SPLIT = iris_split()
X, Y = SPLIT.x_train.astype(np.float32), one_hot(SPLIT.y_train, 3).astype(np.float32)
MODEL = jaxnn.Sequential((jaxnn.Dense(8, "relu"), jaxnn.Dense(3, "identity")))
LOSS = "softmax_cross_entropy"
P = 4
KEYS = jax.random.split(jax.random.key(0), P)
PARAMS = MODEL.init_many(KEYS, 4)
RATES = np.array([0.02, 0.1, 0.3, 0.05], np.float32)
PENALTIES = np.array([0.0, 0.01, 0.0, 0.1], np.float32)
TOLERANCE = {"rtol": 2e-5, "atol": 2e-6}


def _alone(i, solver, *, epochs, **options):
    """Member i trained by itself with ``jaxnn.fit`` and the same solver, rates and data."""
    optimizer = optimizers.tunable_solver(solver)
    params = member(PARAMS, i)
    state = optimizers.init_state(optimizer, params, jnp.float32(RATES[i]), jnp.float32(PENALTIES[i]))
    weight = options.pop("weights", None)
    return jaxnn.fit(
        MODEL,
        params,
        X,
        Y,
        loss=LOSS,
        epochs=epochs,
        optimizer=optimizer,
        opt_state=state,
        weight=None if weight is None else weight[i],
        **options,
    )


def test_init_many_draws_each_member_as_init_does():
    for i in range(P):
        assert_trees_close(member(PARAMS, i), MODEL.init(KEYS[i], 4), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="keys must hold one key per member"):
        MODEL.init_many(jax.random.key(0), 4)


@pytest.mark.parametrize(
    ("solver", "options"),
    [
        ("gd", {}),
        ("adam", {"batch_size": 16}),
        ("sgd", {"batch_size": 32, "weights": True}),
    ],
    ids=["gd-full-batch", "adam-minibatch", "sgd-weighted"],
)
def test_every_member_equals_fit_alone(solver, options):
    options = dict(options)
    keys = jax.random.split(jax.random.key(5), P)
    if "weights" in options:  # each member leaves out another quarter of the rows (a fold)
        options["weights"] = np.ones((P, len(X)), np.float32)
        for i in range(P):
            options["weights"][i, i::P] = 0.0
    population = fit_many(
        MODEL,
        PARAMS,
        X,
        Y,
        loss=LOSS,
        epochs=40,
        optimizer=solver,
        learning_rate=RATES,
        l2=PENALTIES,
        key=keys if "batch_size" in options else None,
        weight=options.get("weights"),
        batch_size=options.get("batch_size"),
    )
    assert population.history.shape == (P, 40) and population.n_epochs.tolist() == [40] * P
    for i in range(P):
        extra = {"batch_size": options["batch_size"], "key": keys[i]} if "batch_size" in options else {}
        alone = _alone(i, solver, epochs=40, weights=options.get("weights"), **extra)
        assert_trees_close(member(population.params, i), alone.params, what=f"member {i}", **TOLERANCE)
        np.testing.assert_allclose(population.history[i], alone.history, rtol=2e-5)


def test_members_stop_on_their_own_and_the_others_go_on():
    stopping = jaxnn.Stopping(tol=1e-3, n_iter_no_change=5)
    population = fit_many(
        MODEL, PARAMS, X, Y, loss=LOSS, epochs=3000, learning_rate=RATES, l2=PENALTIES, stopping=stopping
    )
    n = population.n_epochs
    assert len(set(n.tolist())) > 1 and population.history.shape == (P, n.max())
    for i in range(P):
        alone = _alone(i, "gd", epochs=3000, stopping=stopping)
        assert n[i] == alone.n_epochs
        np.testing.assert_allclose(population.history[i, : n[i]], alone.history, rtol=2e-5)
        assert np.all(np.isnan(population.history[i, n[i] :]))
        assert_trees_close(member(population.params, i), alone.params, **TOLERANCE)


def test_a_diverged_member_keeps_its_last_finite_parameters_and_spares_the_others():
    rates = np.array([0.01, 1e9, 0.01, 0.01], np.float32)
    scaled = X * 10.0
    population = fit_many(MODEL, PARAMS, scaled, Y, loss="mean_squared_error", epochs=30, learning_rate=rates)
    assert population.diverged.tolist() == [False, True, False, False]
    assert population.n_epochs[1] < 30 and np.isnan(population.history[1, population.n_epochs[1]])
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(population.params))
    healthy = fit_many(
        MODEL, PARAMS, scaled, Y, loss="mean_squared_error", epochs=30, learning_rate=np.full(P, 0.01, np.float32)
    )
    for i in (0, 2, 3):
        np.testing.assert_array_equal(population.history[i], healthy.history[i])


def test_per_member_inputs_train_each_member_on_its_own_data():
    shifted = np.stack([X + i for i in range(P)])
    population = fit_many(MODEL, PARAMS, shifted, Y, loss=LOSS, epochs=10, learning_rate=0.1)
    for i in range(P):
        alone = fit_many(
            MODEL,
            jax.tree.map(lambda leaf, i=i: leaf[i : i + 1], PARAMS),
            shifted[i],
            Y,
            loss=LOSS,
            epochs=10,
            learning_rate=0.1,
        )
        np.testing.assert_allclose(population.history[i], alone.history[0], rtol=2e-5)


def test_new_rates_folds_and_data_of_the_same_shape_compile_nothing():
    run = {"loss": LOSS, "epochs": 20}
    fit_many(MODEL, PARAMS, X, Y, learning_rate=RATES, **run)
    before = _loop.compiled_programs()
    fit_many(MODEL, PARAMS, X + 1.0, Y, learning_rate=RATES[::-1].copy(), l2=0.5, epochs=35, loss=LOSS)
    fit_many(MODEL, PARAMS, X, Y, learning_rate=0.2, weight=np.ones((P, len(X)), np.float32), **run)
    assert _loop.compiled_programs() == before + 1  # per-member weights are a new program; then no more
    fit_many(MODEL, PARAMS, X, Y, learning_rate=0.3, weight=np.full((P, len(X)), 2.0, np.float32), **run)
    assert _loop.compiled_programs() == before + 1


def test_bad_population_input_is_a_clear_error():
    with pytest.raises(ValueError, match="leading member axis"):
        fit_many(MODEL, MODEL.init(jax.random.key(0), 4), X, Y, loss=LOSS, epochs=1)  # one network, not P
    no_member = jax.tree.map(lambda leaf: leaf[:0], PARAMS)  # was a ZeroDivisionError in the grouping
    with pytest.raises(ValueError, match=r"params hold no member \(a leading member axis of size 0\)"):
        fit_many(MODEL, no_member, X, Y, loss=LOSS, epochs=1, learning_rate=np.zeros(0))
    with pytest.raises(ValueError, match=r"learning_rate must be one finite number > 0 or one per member \(4\)"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, learning_rate=[0.1, 0.2])
    for zero in (0.0, [0.1, 0.0, 0.2, 0.3]):  # a step of 0 trains nothing: refused, as by fit and the estimators
        with pytest.raises(ValueError, match=r"learning_rate must be one finite number > 0 or one per member"):
            fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, learning_rate=zero)
    with pytest.raises(ValueError, match=r"learning_rate must be .* one per member \(4\), got \[0.1, nan, 0.1, 0.1\]"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, learning_rate=[0.1, np.nan, 0.1, 0.1])
    with pytest.raises(ValueError, match="x has 3 members but params has 4"):
        fit_many(MODEL, PARAMS, np.stack([X] * 3), Y, loss=LOSS, epochs=1)
    with pytest.raises(ValueError, match=r"weight must be \(112,\) or \(4, 112\) .* member 0's weights sum to 0"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, weight=np.zeros((P, len(X))))
    one_masked = np.ones((P, len(X)))
    one_masked[2] = 0.0  # a fold mask that leaves member 2 no training row
    with pytest.raises(ValueError, match=r"member 2's weights sum to 0"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, weight=one_masked)
    with pytest.raises(ValueError, match=r"weight must be \(112,\) or \(4, 112\) .*; got shape \(2, 112\)"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, weight=np.ones((2, len(X))))
    with pytest.raises(ValueError, match=r"start_epoch \+ epochs = 4294967306 passes the 32-bit epoch counter"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=20, start_epoch=2**32 - 10)
    with pytest.raises(
        ValueError, match=re.escape("key holds 3 keys but 4 networks train (params' members); give one")
    ):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, batch_size=8, key=jax.random.split(jax.random.key(0), 3))
    # a 2-D batch of keys reached jax.random.fold_in ("fold_in accepts a single key ... Use jax.vmap")
    for keys in (
        jax.random.split(jax.random.key(0), 4).reshape(4, 1),
        jax.random.split(jax.random.key(0), 4).reshape(2, 2),
    ):
        with pytest.raises(ValueError, match=re.escape(f"key holds a 2-D array of keys, shape {keys.shape} but 4")):
            fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, batch_size=8, key=keys)
    with pytest.raises(ValueError, match=re.escape("key holds a 2-D array of keys, shape (1, 1) but 1 network trains")):
        jaxnn.fit(
            MODEL, member(PARAMS, 0), X, Y, loss=LOSS, epochs=1, batch_size=8, key=jax.random.key(0).reshape(1, 1)
        )
    with pytest.raises(ValueError, match="schedule must be one of constant, invscaling, adaptive, got 'cosine'"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, optimizer="sgd", schedule="cosine")
    with pytest.raises(ValueError, match=r"power_t must be one finite number >= 0 or one per member \(4\)"):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, optimizer="sgd", schedule="invscaling", power_t=-1.0)
    # power_t is checked whatever the schedule (the constant one, which never reads it, took -5 and lists)
    for power_t in (-5.0, [0.5, 0.5], np.full(P, np.inf)):
        with pytest.raises(ValueError, match=r"power_t must be one finite number >= 0 or one per member \(4\)"):
            fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, optimizer="sgd", power_t=power_t)
    three = jax.tree.map(lambda a: a[:3], fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1).opt_state)
    with pytest.raises(ValueError, match=re.escape("optimizer, l2 and schedule (stacked: 4 members)")):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, opt_state=three)  # said nothing of members
    # labels per member given as (P, n): a 2-D y_val is shared (n, columns), so say how labels per member are given
    x_val, labels = np.stack([X[:10]] * P), np.zeros((P, 10), int)
    score, stopping = (lambda out, y: -jnp.mean(out)), jaxnn.Stopping()
    with pytest.raises(ValueError, match=re.escape("y_val 4; they must match and be at least 1 (labels per member")):
        fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, validation=(x_val, labels), score=score, stopping=stopping)
    for value in (True, [True, False, True, False]):  # numpy would read True as 1.0
        with pytest.raises(TypeError, match=r"must be one number or one per member \(4\), .*a bool is not a number"):
            fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, learning_rate=value)
        with pytest.raises(TypeError, match=r"must be one number or one per member \(4\), .*a bool is not a number"):
            fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=1, l2=value)


def test_groups_of_members_give_the_same_population():
    """Members run in groups through one program (on the CPU by default); the last group wraps round."""
    whole = fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=15, learning_rate=RATES, group_size=P)
    for group_size in (1, 3):
        grouped = fit_many(MODEL, PARAMS, X, Y, loss=LOSS, epochs=15, learning_rate=RATES, group_size=group_size)
        assert grouped.history.shape == whole.history.shape and grouped.n_epochs.tolist() == [15] * P
        assert_trees_close(grouped.params, whole.params, **TOLERANCE)
        np.testing.assert_allclose(grouped.history, whole.history, rtol=2e-5)


def test_cpu_groups_are_balanced_and_at_most_cpu_group():
    if jax.default_backend() != "cpu":
        pytest.skip("the group size is the CPU's")
    for n_members in range(1, 60):
        size = default_group_size(n_members)
        n_groups = -(-n_members // size)
        assert 1 <= size <= CPU_GROUP and n_groups == -(-n_members // CPU_GROUP)
        assert n_groups * size - n_members < n_groups  # fewer repeated members than groups
