"""scikit-learn's MLP semantics for sgd's learning-rate schedules, ``shuffle``, ``n_iter_no_change=inf``,
``t_`` and the ConvergenceWarning (issue #14).

References: each rule re-implemented in NumPy from scikit-learn's ``SGDOptimizer`` (``iteration_ends``,
``trigger_stopping``) and ``_fit_stochastic``, and scikit-learn's ``MLPClassifier`` itself trained from the
same initial weights with ``shuffle=False`` (float64; the two agree to about 1e-14).
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_close
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import jaxnn
from jaxnn import NeuralNetClassifier, _loop, engine, optimizers
from jaxnn.data import one_hot

RNG = np.random.default_rng(0)
X = RNG.normal(size=(21, 3))  # 21 rows: the estimators pad them to 22, so padding meets the batches
LABELS = (X[:, 0] + 0.5 * X[:, 1] ** 2 > 0.3).astype(int)
X32, Y32 = X.astype(np.float32), one_hot(LABELS, 2).astype(np.float32)
MODEL = jaxnn.Sequential((jaxnn.Dense(5, "tanh"), jaxnn.Dense(2, "identity")))
PARAMS = MODEL.init(jax.random.key(1), 3)
LOSS = jaxnn.get_loss("softmax_cross_entropy")
KEY = jax.random.key(2)
SGD = optimizers.tunable_solver("sgd", varying_rate=True)  # momentum 0.9, Nesterov: an inject_hyperparams state
PLAIN = optimizers.SolverSettings(momentum=0.0)  # sgd without momentum: DescentRates, the folded loop
# Shared by several tests, so that each compiles once.
INVSCALING = _loop.RunSpec(MODEL, LOSS, optimizers.make("sgd", PLAIN, schedule="invscaling"), batch_size=8)
ADAPTIVE = _loop.RunSpec(
    MODEL, LOSS, optimizers.make("sgd", PLAIN, schedule="adaptive"), batch_size=8, stopping=jaxnn.Stopping(1e-3, 3)
)


def _loop_run(spec, epochs, *, rate=0.1, power_t=0.5, seen=0.0, params=PARAMS, run=engine.train_one):
    """``epochs`` epochs of ``spec`` on the float32 data from a fresh optimiser state at ``rate``."""
    schedule = optimizers.ScheduleValues(*(np.float32(v) for v in (rate, power_t, seen, len(X32))))
    state = optimizers.init_state(spec.optimizer, params, np.float32(rate), np.float32(0.0), schedule)
    return run(
        spec,
        params=params,
        opt_state=state,
        x=X32,
        y=Y32,
        weight=np.ones(len(X32), np.float32),
        key=KEY,
        start_epoch=0,
        epochs=epochs,
    )


# --------------------------------------------------------------------------------------------------
# The rules in the loop, against NumPy re-implementations.


def test_invscaling_rate_after_each_epoch_is_eta0_over_samples_seen_plus_one_to_the_power_t():
    """scikit-learn's ``iteration_ends``: after epoch k (t = t₀ + k·n samples) ``η = η₀ / (t + 1)^power_t``.
    (Plain descent's state here; the estimators' tests below run it with momentum against scikit-learn.)"""
    rate, power_t, seen = 0.3, 0.25, 42.0
    for k in (1, 2, 5):  # one compiled program: the epochs are runtime
        result = _loop_run(INVSCALING, k, rate=rate, power_t=power_t, seen=seen)
        expected = rate / (seen + k * len(X32) + 1) ** power_t
        np.testing.assert_allclose(optimizers.learning_rate_of(result.opt_state), expected, rtol=1e-6)
        assert result.n_epochs == k


def test_fits_invscaling_counts_the_rows_of_positive_weight_so_weight_0_leaves_a_row_out():
    """fit's t counts the samples trained on: a row of weight 0 is left out (how a fit_many member leaves out a
    fold), so it is not counted (it was: the rate fell as if those rows were trained on).  Per member too."""
    y = one_hot(LABELS, 2)
    weight = np.where(np.arange(len(X)) % 3 == 0, 0.0, 1.0)
    options = dict(loss=LOSS, epochs=4, learning_rate=0.3, schedule="invscaling", power_t=0.5, batch_size=4)
    options |= dict(key=KEY, settings=PLAIN, optimizer="sgd")
    left_out = jaxnn.fit(MODEL, PARAMS, X, y, weight=weight, **options)
    kept = weight > 0
    rate = float(optimizers.learning_rate_of(left_out.opt_state))
    assert rate == pytest.approx(0.3 / (4 * kept.sum() + 1) ** 0.5, rel=1e-6)
    removed = jaxnn.fit(MODEL, PARAMS, X[kept], y[kept], **options)
    assert float(optimizers.learning_rate_of(removed.opt_state)) == pytest.approx(rate, rel=1e-6)
    members = jaxnn.fit_many(
        MODEL, jax.tree.map(lambda a: jnp.stack([a, a]), PARAMS), X, y, weight=np.stack([weight, np.ones(len(X))]),
        **options,
    )  # fmt: skip
    rates = optimizers.learning_rate_of(members.opt_state)
    np.testing.assert_allclose(rates, [rate, 0.3 / (4 * len(X) + 1) ** 0.5], rtol=1e-6)


def _adaptive_reference(losses, rate, tol, n_iter_no_change, max_epochs):
    """scikit-learn's loop for ``learning_rate='adaptive'`` on a given loss curve: ``(epochs run, final rate,
    rate after each epoch)``."""
    best, count, rates = np.inf, 0, []
    for epoch, loss in enumerate(losses[:max_epochs], start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        stop = False
        if count > n_iter_no_change:
            if rate <= 1e-6:
                stop = True
            else:
                rate, count = rate / 5.0, 0
        rates.append(rate)
        if stop:
            return epoch, rate, rates
    return max_epochs, rate, rates


def test_adaptive_divides_the_rate_by_five_on_plateaus_and_stops_at_one_below_1e_minus_6():
    """The rate after each epoch and the epoch training stops at, against the reference rule on the same
    loss curve (a run of k epochs is the first k epochs of the long run)."""
    result = _loop_run(ADAPTIVE, 3000, rate=0.5)
    epochs, rate, rates = _adaptive_reference(result.history, 0.5, 1e-3, 3, 3000)
    assert result.n_epochs == epochs < 3000 and result.stopped
    np.testing.assert_allclose(optimizers.learning_rate_of(result.opt_state), rate, rtol=1e-5)
    assert rate <= 1e-6 < rate * 5
    lowered_at = [e for e in range(2, epochs + 1) if rates[e - 1] < rates[e - 2]]  # epochs whose plateau lowered η
    assert len(lowered_at) >= 2
    for k in (lowered_at[0] - 1, lowered_at[0], lowered_at[1]):  # η after epoch k is rates[k - 1]
        shorter = _loop_run(ADAPTIVE, k, rate=0.5)
        np.testing.assert_allclose(optimizers.learning_rate_of(shorter.opt_state), rates[k - 1], rtol=1e-6)
        assert not shorter.stopped


@pytest.mark.parametrize("stopping", [None, jaxnn.Stopping(1e-3, math.inf)], ids=["no-rule", "inf-rule"])
@pytest.mark.parametrize("front", ["fit", "fit_many"])
def test_fit_refuses_adaptive_without_a_rule_that_sees_plateaus(stopping, front):
    """``adaptive`` lowers the rate where the stopping rule sees a plateau: without a rule that can see one, fit
    and fit_many trained at a constant rate under the name 'adaptive'; now they say what is missing."""
    params = PARAMS if front == "fit" else jax.tree.map(lambda a: a[None], PARAMS)
    why = "there is no stopping rule" if stopping is None else "n_iter_no_change=inf never sees one"
    with pytest.raises(ValueError, match=rf"sees a plateau, and {why}: .* finite n_iter_no_change, or use schedule="):
        getattr(jaxnn, front)(
            MODEL, params, X32, Y32, loss=LOSS, epochs=2, optimizer="sgd", schedule="adaptive", stopping=stopping
        )


def test_schedules_under_vmap_equal_each_member_alone():
    """``jaxnn.engine`` runs the loop's chunk under ``jax.vmap``: per-member rates, powers and plateaus."""
    rates, powers = np.array([0.5, 0.05], np.float32), np.array([0.5, 0.1], np.float32)
    for spec in (INVSCALING, ADAPTIVE):

        def one(data, key, train, stop, start, stop_epoch, spec=spec):
            return _loop.chunk(spec, data=data, key=key, train=train, stop=stop, start=start, stop_epoch=stop_epoch)

        vmapped = jax.jit(jax.vmap(one, in_axes=(None, None, 0, 0, None, None)))
        fields = ("data", "key", "train", "stop", "start", "stop_epoch")
        schedule = optimizers.ScheduleValues(rates, powers, np.zeros(2, np.float32), np.full(2, len(X32), np.float32))
        states = jax.vmap(partial(optimizers.init_state, spec.optimizer, PARAMS))(
            rates, np.zeros(2, np.float32), schedule
        )
        population = engine.drive(
            spec,
            lambda vmapped=vmapped, fields=fields, **kwargs: vmapped(*(kwargs[k] for k in fields)),
            data=_loop.Data(X32, Y32, np.ones(len(X32), np.float32), np.zeros((0, 0), np.float32), np.zeros((0, 0))),
            key=KEY,
            train=_loop.TrainCarry(jax.tree.map(lambda a: jnp.stack([a, a]), PARAMS), states, np.ones(2, bool)),
            stop=_loop.StopCarry(np.full(2, np.inf, np.float32), None, np.zeros(2, np.int32)),
            start_epoch=0,
            epochs=300,
        )
        for i in range(2):
            alone = _loop_run(spec, 300, rate=rates[i], power_t=powers[i])
            assert population.n_epochs[i] == alone.n_epochs and population.stopped[i] == alone.stopped
            assert_trees_close(jax.tree.map(lambda a, i=i: a[i], population.params), alone.params, rtol=2e-5, atol=2e-6)
            np.testing.assert_allclose(
                optimizers.learning_rate_of(jax.tree.map(lambda a, i=i: a[i], population.opt_state)),
                optimizers.learning_rate_of(alone.opt_state),
                rtol=1e-6,
            )
        assert population.n_epochs[0] != population.n_epochs[1] or spec is INVSCALING  # each its own plateaus


def test_shuffle_false_visits_rows_in_order_with_weight_zero_rows_behind():
    batches = jax.jit(_loop.epoch_batches, static_argnums=(2, 3))
    weight = np.array([1, 1, 0, 1, 1, 1, 0, 0], np.float32)  # a zero-weight row inside, padding at the end
    index, mask = batches(KEY, weight, 3, False)
    np.testing.assert_array_equal(index[mask], [0, 1, 3, 4, 5, 2, 6, 7])
    assert index.shape == (3, 3)
    shuffled, _ = batches(KEY, weight, 3, True)
    assert sorted(np.asarray(shuffled[mask])[:5]) == [0, 1, 3, 4, 5]  # shuffled, real rows still first
    assert not np.array_equal(shuffled[mask], index[mask])


def test_infinite_n_iter_no_change_never_stops_early_and_other_floats_are_refused():
    result = jaxnn.fit(
        MODEL, PARAMS, X32, Y32, loss=LOSS, epochs=60, learning_rate=0.1, stopping=jaxnn.Stopping(1e9, math.inf)
    )
    assert result.n_epochs == 60 and not result.stopped
    assert result.no_improvement == 59  # still counted: every epoch after the first (scikit-learn's count)
    for bad in (2.5, 3.0, 0, -np.inf, True):
        with pytest.raises(ValueError, match=r"n_iter_no_change >= 1 \(a positive integer, or math\.inf"):
            jaxnn.fit(MODEL, PARAMS, X32, Y32, loss=LOSS, epochs=1, stopping=jaxnn.Stopping(1e-4, bad))


# --------------------------------------------------------------------------------------------------
# The estimators against scikit-learn's MLPClassifier (float64; shared settings, so that few programs compile).

COMMON = dict(
    hidden_layer_sizes=(5,),
    activation="tanh",
    solver="sgd",
    alpha=0.0,
    batch_size=7,
    shuffle=False,
    learning_rate_init=0.2,
    power_t=0.3,
    warm_start=True,
    random_state=0,
)
RULES = {
    "constant": dict(learning_rate="constant", tol=1e-4, n_iter_no_change=10),
    "invscaling": dict(learning_rate="invscaling", tol=1e-4, n_iter_no_change=10),
    # Every epoch after the first is a plateau epoch: η₀ = 0.2 is divided at epochs 4, 7, …, 25 and, at
    # 0.2 / 5**8 ≤ 1e-6, training stops at epoch 28 (the warm fit after the first epoch continues the
    # count, as MLP's: its 27th epoch).
    "forced": dict(learning_rate="adaptive", tol=1e9, n_iter_no_change=2),
}


def _copy_weights(source, target) -> None:
    target.coefs_ = [w.copy() for w in source.coefs_]
    target.intercepts_ = [b.copy() for b in source.intercepts_]


def _from_same_weights(rule: str, max_iter: int):
    """scikit-learn's and jaxnn's classifiers: one epoch each, then ``max_iter`` more from jaxnn's weights."""
    options = dict(COMMON, **RULES[rule])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = NeuralNetClassifier(max_iter=1, **options).fit(X, LABELS)
        theirs = MLPClassifier(max_iter=1, **options).fit(X, LABELS)
        _copy_weights(ours, theirs)  # the same already (init='mlp'); copied so that only the loops are compared
        theirs.set_params(max_iter=max_iter).fit(X, LABELS)
        ours.set_params(max_iter=max_iter).fit(X, LABELS)
    return ours, theirs


@pytest.mark.parametrize("rule, max_iter", [("constant", 40), ("invscaling", 40), ("forced", 200)])
def test_training_follows_scikit_learn_epoch_by_epoch(rule, max_iter):
    """Same initial weights, in-order batches of 7 (the padded 22nd row stays out), Nesterov momentum: the
    loss curves, the epochs run (adaptive's plateaus and its stop), ``t_`` and the weights agree."""
    ours, theirs = _from_same_weights(rule, max_iter)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_ == 21 * (1 + ours.n_iter_)  # warm start counts on
    assert ours.n_iter_ == (27 if rule == "forced" else max_iter)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)


def test_partial_fit_lowers_the_adaptive_rate_between_calls_as_scikit_learn():
    """partial_fit keeps the plateau count across calls; past n_iter_no_change the next call runs at η/5.
    It never warns."""
    options = dict(COMMON, learning_rate="adaptive", tol=1e9, n_iter_no_change=1, momentum=0.0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = NeuralNetClassifier(**options).partial_fit(X, LABELS, classes=[0, 1])
        theirs = MLPClassifier(**options).partial_fit(X, LABELS, classes=[0, 1])
        _copy_weights(ours, theirs)
        for _ in range(8):  # plateaus after calls 3, 5, 7 and 9: four divisions
            ours.partial_fit(X, LABELS)
            theirs.partial_fit(X, LABELS)
    assert theirs._optimizer.learning_rate == pytest.approx(0.2 / 5**4)
    assert ours.t_ == theirs.t_ == 9 * 21
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    for mine, reference in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)


def test_t_counts_the_training_rows_of_each_epoch_and_a_fresh_fit_starts_again():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = NeuralNetClassifier(**dict(COMMON, **RULES["constant"], max_iter=3)).fit(X, LABELS)
        est.set_params(warm_start=False).fit(X, LABELS)
        assert est.t_ == 3 * 21
        split = dict(COMMON, solver="adam", early_stopping=True, validation_fraction=0.2, max_iter=2)
        ours = NeuralNetClassifier(**split).fit(X, LABELS)
        theirs = MLPClassifier(**split).fit(X, LABELS)
        # adam ignores learning_rate and power_t, as scikit-learn's does: the very same training.
        scheduled = NeuralNetClassifier(**dict(split, learning_rate="invscaling", power_t=0.9)).fit(X, LABELS)
    assert ours.t_ == theirs.t_ == 2 * (21 - 5)  # ceil(0.2 · 21) = 5 rows held out
    for a, b in zip(ours.coefs_, scheduled.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def _continued_from_the_same_weights(shuffle: bool):
    """Classifiers of seeds 0 and 5, continued for 2 epochs from the same weights."""
    options = dict(COMMON, **RULES["constant"], shuffle=shuffle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first, second = (
            NeuralNetClassifier(**dict(options, max_iter=1, random_state=seed)).fit(X, LABELS) for seed in (0, 5)
        )
        _copy_weights(first, second)
        return [est.set_params(max_iter=2).fit(X, LABELS) for est in (first, second)]


def test_shuffle_false_leaves_the_seed_only_the_initial_weights():
    """scikit-learn's ``test_shuffle``: shuffling changes training; without it the batches are the same for
    every seed."""
    in_order = _continued_from_the_same_weights(False)
    np.testing.assert_array_equal(in_order[0].coefs_[0], in_order[1].coefs_[0])
    shuffled = _continued_from_the_same_weights(True)
    assert not np.array_equal(shuffled[0].coefs_[0], shuffled[1].coefs_[0])
    assert not np.array_equal(shuffled[0].coefs_[0], in_order[0].coefs_[0])


def test_a_grid_over_learning_rate_init_and_power_t_compiles_nothing_new():
    options = dict(COMMON, **RULES["invscaling"], max_iter=3, warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        NeuralNetClassifier(**options).fit(X, LABELS)
        before = _loop.compiled_programs()
        fitted = [
            NeuralNetClassifier(**dict(options, learning_rate_init=rate, power_t=power)).fit(X, LABELS)
            for rate in (0.05, 0.5)
            for power in (0.1, 0.9)
        ]
    assert _loop.compiled_programs() == before
    assert not np.array_equal(fitted[0].coefs_[0], fitted[1].coefs_[0])  # power_t did reach the loop


@pytest.mark.parametrize("name, value", [("learning_rate", "optimal"), ("power_t", -0.5), ("shuffle", "yes")])
def test_new_parameters_are_checked(name, value):
    with pytest.raises(ValueError, match=f"{name} must be"):
        NeuralNetClassifier(**{name: value}).fit(X, LABELS)


@pytest.mark.parametrize("value", [2.5, 0, -np.inf, "inf"])
def test_n_iter_no_change_takes_positive_ints_or_inf(value):
    with pytest.raises(ValueError, match=r"n_iter_no_change must be a positive integer, or np\.inf"):
        NeuralNetClassifier(n_iter_no_change=value, learning_rate_init=0.01, max_iter=500).fit(X, LABELS)


# --------------------------------------------------------------------------------------------------
# The ConvergenceWarning.

MAX_ITER_TEXT = r"Stochastic Optimizer: Maximum iterations \({}\) reached and the optimization hasn't converged yet\."
NEVER_STOPS = dict(COMMON, **dict(RULES["constant"], tol=1e9, n_iter_no_change=np.inf))


def test_warm_start_without_convergence_warns_each_fit_as_scikit_learn():
    """scikit-learn's ``test_mlp_warm_start_no_convergence`` (n_iter_no_change=inf, max_iter 10 then 20)."""
    model = NeuralNetClassifier(**dict(NEVER_STOPS, max_iter=10))
    with pytest.warns(ConvergenceWarning, match=MAX_ITER_TEXT.format(10)):
        model.fit(X, LABELS)
    assert model.n_iter_ == 10
    model.set_params(max_iter=20)
    with pytest.warns(ConvergenceWarning, match=MAX_ITER_TEXT.format(20) + " NeuralNetClassifier: reached max_iter"):
        model.fit(X, LABELS)
    assert model.n_iter_ == 20


def test_a_scikit_learn_style_message_filter_silences_the_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.filterwarnings(
            "ignore", message="Stochastic Optimizer: Maximum iterations", category=ConvergenceWarning
        )
        NeuralNetClassifier(**dict(NEVER_STOPS, max_iter=2)).fit(X, LABELS)


def test_no_warning_when_the_stopping_rule_ends_the_last_epoch():
    """scikit-learn stops at epoch 28 without a warning, also with max_iter=28; with max_iter=25 the last
    epoch lowers the rate instead of stopping, and both warn."""
    options = dict(COMMON, **RULES["forced"], warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for max_iter in (28, 40):
            assert NeuralNetClassifier(max_iter=max_iter, **options).fit(X, LABELS).n_iter_ == 28
            assert MLPClassifier(max_iter=max_iter, **options).fit(X, LABELS).n_iter_ == 28
    for estimator in (NeuralNetClassifier, MLPClassifier):
        with pytest.warns(ConvergenceWarning, match=MAX_ITER_TEXT.format(25)):
            estimator(max_iter=25, **options).fit(X, LABELS)
