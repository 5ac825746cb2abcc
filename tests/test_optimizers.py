"""Named solvers (``jaxnn.optimizers``): one meaning per name, with the learning rate built in or kept
in the optimiser state (the estimators' compile-once form)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnn
from jaxnn import optimizers
from jaxnn.optimizers import SolverSettings

PARAMS = [{"W": jnp.array([[0.5, -1.0], [2.0, 0.25]]), "b": jnp.array([0.1, -0.2])}]
GRADS = [{"W": jnp.array([[0.3, 0.1], [-0.2, 0.4]]), "b": jnp.array([0.05, -0.5])}]
SETTINGS = SolverSettings(momentum=0.8, nesterov=False, beta_1=0.85, beta_2=0.99, epsilon=1e-6)


def _steps(optimizer, state, n=3):
    params = PARAMS
    for _ in range(n):
        updates, state = optimizer.update(GRADS, state, params)
        params = optax.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("name", optimizers.SOLVERS)
def test_a_solver_name_means_the_same_update_in_both_forms(name):
    """``solver`` (the CLI's form) and ``tunable_solver`` with the rate in its state (the estimators')."""
    plain = optimizers.solver(name, 0.1, SETTINGS)
    tunable = optimizers.tunable_solver(name, SETTINGS)
    state = optimizers.init_state(tunable, PARAMS, jnp.float32(0.1), jnp.float32(0.0))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        _steps(plain, plain.init(PARAMS)),
        _steps(tunable, state),
    )


@pytest.mark.parametrize("settings", [SETTINGS, SolverSettings(momentum=0.0)], ids=["momentum", "no momentum"])
@pytest.mark.parametrize("name", optimizers.SOLVERS)
@pytest.mark.parametrize("schedule", ["constant", "invscaling"])
def test_a_named_solvers_bare_init_sets_fits_default_rates(name, settings, schedule):
    """``make(name).init(params)``, optax's way (for train_step), once made a state of learning rate 0: every step
    a silent no-op.  It now steps as fit's default rate, 0.01, with no L2."""
    optimizer = optimizers.make(name, settings, schedule=schedule)
    state = optimizer.init(PARAMS)
    assert optimizers.learning_rate_of(state) == np.float32(optimizers.DEFAULT_LEARNING_RATE) == np.float32(0.01)
    assert float(optimizers.l2_rate_of(state)) == 0.0
    plain = optimizers.solver(name, optimizers.DEFAULT_LEARNING_RATE, settings)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        _steps(plain, plain.init(PARAMS)),
        _steps(optimizer, state),
    )
    # the schedule's own values: its starting rate and power_t, no rows to count (an epoch's end then set rate 0)
    after_epoch, _ = optimizers.end_of_epoch(optimizer, state, False)
    assert optimizers.learning_rate_of(after_epoch) == np.float32(0.01)
    if schedule == "invscaling":
        assert [float(v) for v in state.schedule] == [np.float32(0.01), 0.5, 0.0, 0.0]


def _mlp_adam(lr, epsilon, beta_1=0.9, beta_2=0.999):
    """scikit-learn's AdamOptimizer, over ``_steps``'s steps: ``θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)·m/(√v + ε)``."""
    params = jax.tree.map(np.asarray, PARAMS)
    m, v = jax.tree.map(np.zeros_like, params), jax.tree.map(np.zeros_like, params)
    for t in range(1, 4):
        g = jax.tree.map(np.asarray, GRADS)
        m = jax.tree.map(lambda m, g: beta_1 * m + (1 - beta_1) * g, m, g)
        v = jax.tree.map(lambda v, g: beta_2 * v + (1 - beta_2) * g**2, v, g)
        rate = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        params = jax.tree.map(lambda p, m, v, rate=rate: p - rate * m / (np.sqrt(v) + epsilon), params, m, v)
    return params


def test_the_names_are_the_textbook_updates():
    lr, g, w = 0.1, GRADS[0]["W"], PARAMS[0]["W"]
    gd = _steps(optimizers.solver("gd", lr), optax.EmptyState(), n=1)
    np.testing.assert_allclose(gd[0]["W"], w - lr * g, rtol=1e-6)
    sgd = optimizers.solver("sgd", lr, SolverSettings(momentum=0.9, nesterov=True))
    expected = optax.sgd(lr, momentum=0.9, nesterov=True)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
        _steps(sgd, sgd.init(PARAMS)),
        _steps(expected, expected.init(PARAMS)),
    )
    adam = optimizers.solver("adam", lr, SolverSettings(epsilon=0.1))  # a large ε, to tell its place
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), _steps(adam, adam.init(PARAMS)), _mlp_adam(lr, 0.1)
    )
    assert optimizers.is_gradient_descent(optimizers.solver("sgd", lr, SolverSettings(momentum=0.0)))


def test_the_l2_rate_decays_weights_not_biases():
    tunable = optimizers.tunable_solver("gd")
    state = optimizers.init_state(tunable, PARAMS, jnp.float32(0.1), jnp.float32(0.5))
    zero = jax.tree.map(jnp.zeros_like, GRADS)
    updates, _ = tunable.update(zero, state, PARAMS)
    np.testing.assert_allclose(updates[0]["W"], -0.1 * 0.5 * PARAMS[0]["W"], rtol=1e-6)
    np.testing.assert_array_equal(updates[0]["b"], jnp.zeros(2))


@pytest.mark.parametrize(
    "optimizer",
    [
        optimizers.tunable_solver("gd"),  # plain descent: the rates in a DescentRates state
        optimizers.tunable_solver("sgd", SolverSettings(momentum=0.8, nesterov=False)),  # optax's chain
        optimizers.make(optax.sgd(1.0), with_l2=True),  # a user's transformation behind the L2 term
    ],
    ids=["gd", "sgd momentum", "user's optax"],
)
def test_the_l2_term_the_solvers_add_is_the_gradient_of_l2_penalty(optimizer):
    """The first step from zero data gradients at rate 1 is ``−∇Ω(W, b)`` for ``Ω = ½·λ·Σ‖W‖²``: checked as a
    backward rule against ``jax.vjp`` of :func:`jaxnn.optimizers.l2_penalty` and against finite differences."""
    l2_rate = 0.3

    def penalty(w, b):
        return optimizers.l2_penalty([{"W": w, "b": b}], l2_rate)

    def penalty_vjp(cotangent, w, b):
        params = [{"W": w, "b": b}]
        state = optimizers.init_state(optimizer, params, jnp.asarray(1.0, w.dtype), jnp.asarray(l2_rate, w.dtype))
        updates, _ = optimizer.update(jax.tree.map(jnp.zeros_like, params), state, params)
        return -cotangent * updates[0]["W"], -cotangent * updates[0]["b"]

    with jax.enable_x64(True):
        w = jax.random.normal(jax.random.key(0), (3, 4), jnp.float64)
        jaxnn.check_vjp(penalty, penalty_vjp, w, jnp.array([0.5, -1.0, 2.0, 0.1]))


def test_solvers_are_cached_and_names_checked():
    assert optimizers.solver("adam", 0.01) is optimizers.solver("adam", 0.01)
    assert optimizers.solver("gd", 0.01) == jaxnn.gradient_descent(0.01)
    with pytest.raises(ValueError, match="unknown solver 'lbfgs'; choose one of: adam, gd, sgd"):
        optimizers.solver("lbfgs", 0.01)
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        optimizers.solver("adam", -1.0)


def _sklearn_momentum_steps(rates, momentum, nesterov):
    """scikit-learn's ``SGDOptimizer`` on PARAMS/GRADS, one rate per step: ``v ← μ·v − η·g``; the update is
    ``v`` or, with Nesterov, ``μ·v − η·g``."""
    params = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in PARAMS]
    velocity = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in params]
    for rate in rates:
        for p, v, g in zip(params, velocity, GRADS, strict=True):
            for k in p:
                v[k] = momentum * v[k] - rate * np.asarray(g[k])
                p[k] = p[k] + (momentum * v[k] - rate * np.asarray(g[k]) if nesterov else v[k])
    return params


@pytest.mark.parametrize("nesterov", [True, False])
def test_a_varying_rate_scales_each_gradient_as_it_enters_the_momentum_as_scikit_learn(nesterov):
    """With a schedule the rate of step k applies to gradient k only (scikit-learn's velocity); with a fixed
    rate that is the same update as optax's ``−η·(μ·v + g)``."""
    settings = SolverSettings(momentum=0.8, nesterov=nesterov)
    varying, fixed = (optimizers.tunable_solver("sgd", settings, varying_rate=v) for v in (True, False))
    rates = [0.1, 0.02, 0.004]
    state = optimizers.init_state(varying, PARAMS, jnp.float32(rates[0]), jnp.float32(0.0))
    params = PARAMS
    for rate in rates:
        state = optimizers.with_learning_rate(state, rate)
        np.testing.assert_allclose(optimizers.learning_rate_of(state), rate, rtol=1e-7)
        updates, state = varying.update(GRADS, state, params)
        params = optax.apply_updates(params, updates)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        params,
        _sklearn_momentum_steps(rates, 0.8, nesterov),
    )
    same_rate = [optimizers.init_state(o, PARAMS, jnp.float32(0.1), jnp.float32(0.0)) for o in (varying, fixed)]
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        _steps(varying, same_rate[0]),
        _steps(fixed, same_rate[1]),
    )


def test_the_rate_matters_for_the_momentum_of_sgd_only():
    for name in ("gd", "adam"):
        assert optimizers.tunable_solver(name, varying_rate=True) is optimizers.tunable_solver(name)
    assert optimizers.tunable_solver("sgd", varying_rate=True) is not optimizers.tunable_solver("sgd")
    plain = SolverSettings(momentum=0.0)
    assert optimizers.tunable_solver("sgd", plain, varying_rate=True) is optimizers.tunable_solver("sgd", plain)


def test_schedule_rules_by_hand():
    assert optimizers.invscaling_rate(0.5, 0.5, 99) == pytest.approx(0.05)
    rate, lowered = optimizers.adaptive_rate(np.float64(1e-3), np.bool_(True), where=np.where)
    assert rate == pytest.approx(2e-4) and lowered
    rate, lowered = optimizers.adaptive_rate(np.float64(1e-6), np.bool_(True), where=np.where)
    assert rate == 1e-6 and not lowered  # at 1e-6 a plateau stops training instead
    rate, lowered = optimizers.adaptive_rate(np.float64(1e-3), np.bool_(False), where=np.where)
    assert rate == 1e-3 and not lowered


@pytest.mark.parametrize(
    "settings, error, match",
    [
        (SolverSettings(momentum=1.5), ValueError, r"settings.momentum must be in \[0, 1\], got 1.5"),
        (SolverSettings(momentum=float("nan")), ValueError, "settings.momentum must be a finite number"),
        (SolverSettings(beta_1=1.0), ValueError, r"settings.beta_1 must be in \[0, 1\)"),
        (SolverSettings(beta_2=2.0), ValueError, r"settings.beta_2 must be in \[0, 1\)"),
        (SolverSettings(epsilon=0.0), ValueError, "settings.epsilon must be a positive number"),  # Adam's step: NaN
        (SolverSettings(nesterov="no"), TypeError, "settings.nesterov must be True or False"),
        ({"momentum": 0.5}, TypeError, "settings must be a jaxnn.optimizers.SolverSettings"),  # AttributeError
    ],
)
def test_solver_settings_outside_their_ranges_are_refused_by_every_constructor(settings, error, match):
    """They were taken as they were: momentum 1.5 and epsilon 0 trained (to NaN), a dict raised AttributeError."""
    for name in ("sgd", "adam"):
        with pytest.raises(error, match=match):
            optimizers.make(name, settings)
        if isinstance(settings, SolverSettings):  # solver is cached: a dict is unhashable before it is seen
            with pytest.raises(error, match=match):
                optimizers.solver(name, 0.1, settings)
    model = jaxnn.Sequential((jaxnn.Dense(2),))
    params = model.init(jax.random.key(0), 2)
    with pytest.raises(error, match=match):
        jaxnn.fit(
            model,
            params,
            np.ones((2, 2)),
            np.ones((2, 2)),
            loss="mean_squared_error",
            epochs=1,
            optimizer="adam",
            settings=settings,
        )


def test_gradient_descent_takes_numpy_numbers_as_every_other_rate_does():
    """np.float32(0.1) was "learning_rate must be a number, got float32"; fit took it."""
    assert jaxnn.gradient_descent(np.float32(0.5)) == jaxnn.gradient_descent(0.5)
    assert jaxnn.gradient_descent(np.int64(1)) == jaxnn.gradient_descent(1.0)
    with pytest.raises(TypeError, match="learning_rate must be a number, got bool"):
        jaxnn.gradient_descent(np.True_)


def test_a_user_transformation_is_keyed_by_what_it_computes():
    """``structural_keys.by_structure``: the same code with equal values is one key (the compiled loop is reused for a
    fresh ``optax.adam(1e-3)``); another value, another key; an array (which may differ by content) is itself only;
    and a transformation without a finite key keeps its identity."""
    from jaxnn.structural_keys import by_structure

    assert by_structure(optax.adam(1e-3)) == by_structure(optax.adam(1e-3))
    assert hash(by_structure(optax.adam(1e-3))) == hash(by_structure(optax.adam(1e-3)))
    assert by_structure(optax.adam(1e-3)) != by_structure(optax.adam(2e-3))
    assert by_structure(optax.sgd(0.1)) != by_structure(optax.sgd(0.1, momentum=0.9))
    assert by_structure(optax.sgd(0.0)) != by_structure(optax.sgd(-0.0))
    assert by_structure(optax.sgd(1)) != by_structure(optax.sgd(1.0))
    assert by_structure(optax.sgd(jnp.float32(0.1))) != by_structure(optax.sgd(jnp.float32(0.1)))

    def update(updates, state, params=None):
        return update and updates, state  # refers to itself: a cycle

    looped = optax.GradientTransformation(lambda params: (), update)
    assert by_structure(looped) is looped
    # the usual builds share a key: chains, schedules, line searches
    for build in (
        lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3)),
        lambda: optax.sgd(optax.exponential_decay(0.1, 10, 0.5)),
        lambda: optax.lbfgs(),
    ):
        assert by_structure(build()) == by_structure(build())
    assert by_structure(optax.sgd(optax.exponential_decay(0.1, 10, 0.5))) != by_structure(
        optax.sgd(optax.exponential_decay(0.1, 10, 0.25))
    )

    class Settings:
        rate = 0.1

    def scaled_by(settings):  # reads the object when the update is traced
        return optax.GradientTransformation(
            lambda params: optax.EmptyState(),
            lambda updates, state, params=None: (jax.tree.map(lambda g: -settings.rate * g, updates), state),
        )

    settings = Settings()
    first = scaled_by(settings)
    settings.rate = 0.5  # a second build from the same object, changed: it must not share the first's program
    assert by_structure(first) is first and by_structure(scaled_by(settings)) != by_structure(first)


RATE = 0.1  # read by the user's transformations of the test below


class Settings:  # a class whose attribute a user's update reads
    rate = 0.1


def test_a_transformation_with_a_function_of_the_users_keeps_its_identity():
    """Only optax's (and JAX's) own code is keyed by structure: a user's function may read a global, a class or a
    module that changes between two builds, and a fresh build must then not share the first's compiled program.
    Each of these shared a key in a first version (a global threshold, a class attribute, a helper a few globals
    deep, a partial subclass that calls differently).  Structured dtypes of one size are not one key either."""
    import functools

    from jaxnn.structural_keys import _key, by_structure

    global RATE

    def reading(rate):  # the update reads ``rate()`` when it is traced
        return optax.chain(
            optax.clip(1.0),
            optax.GradientTransformation(
                lambda params: optax.EmptyState(),
                lambda updates, state, params=None: (jax.tree.map(lambda g: -rate() * g, updates), state),
            ),
        )

    for read in (lambda: RATE, lambda: Settings.rate, functools.partial(float, 0.5)):
        built = reading(read)
        assert by_structure(built) is built  # no key: compared by identity, as every transformation was
    assert by_structure(optax.chain(optax.clip(1.0), optax.sgd(0.1))) == by_structure(
        optax.chain(optax.clip(1.0), optax.sgd(0.1))
    )

    class Doubled(functools.partial):
        def __call__(self, *args, **kwargs):
            return 2 * super().__call__(*args, **kwargs)

    decay = optax.exponential_decay(0.1, 10, 0.5)
    assert by_structure(optax.sgd(Doubled(decay))) != by_structure(optax.sgd(functools.partial(decay)))
    assert by_structure(optax.sgd(functools.partial(decay))) == by_structure(optax.sgd(functools.partial(decay)))
    assert _key(np.dtype([("a", "f4")])) != _key(np.dtype([("b", "i4")]))
    assert _key(np.dtype("f4")) == _key(np.dtype(np.float32))


def test_a_transformation_is_wrapped_once_and_a_plain_one_of_the_same_functions_on_its_own():
    """``train_step`` looks its optimiser up on every call: the same transformation gets the same wrapper (its key
    worked out once); a plain ``GradientTransformation`` of an ``ExtraArgs`` one's functions compares equal to it
    as a tuple, yet its update is wrapped to drop extra arguments: another key."""
    from jaxnn.structural_keys import by_structure

    adam = optax.adam(1e-3)
    assert by_structure(adam) is by_structure(adam)
    # one without a key is itself, also after an equal one: fit tells a user's transformation by identity (a
    # jaxnn-train gd run, then sgd without momentum, an equal gradient_descent(0.1), failed inside fit)
    first, second = jaxnn.gradient_descent(0.1), jaxnn.gradient_descent(0.1)
    assert first == second and first is not second
    assert by_structure(first) is first and by_structure(second) is second
    assert isinstance(adam, optax.GradientTransformationExtraArgs)
    plain = optax.GradientTransformation(adam.init, adam.update)
    assert plain == adam and by_structure(plain) != by_structure(adam)


def test_a_keyed_transformation_copies_after_it_is_hashed():
    """``copy.deepcopy`` (sklearn's ``clone`` of an estimator whose solver is one) of a keyed transformation once
    hashed raised "cannot pickle 'module' object": its kept key holds the module's globals."""
    import copy

    from sklearn.base import clone

    from jaxnn.structural_keys import by_structure

    keyed = by_structure(optax.adam(1e-3))
    hash(keyed)
    assert copy.deepcopy(keyed) == keyed and copy.copy(keyed) == keyed
    assert clone(jaxnn.NeuralNetRegressor(solver=keyed)).solver == keyed
