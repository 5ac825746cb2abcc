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
    adam, reference = optimizers.solver("adam", lr), optax.adam(lr)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
        _steps(adam, adam.init(PARAMS)),
        _steps(reference, reference.init(PARAMS)),
    )
    assert optimizers.is_gradient_descent(optimizers.solver("sgd", lr, SolverSettings(momentum=0.0)))


def test_the_l2_rate_decays_weights_not_biases():
    tunable = optimizers.tunable_solver("gd")
    state = optimizers.init_state(tunable, PARAMS, jnp.float32(0.1), jnp.float32(0.5))
    zero = jax.tree.map(jnp.zeros_like, GRADS)
    updates, _ = tunable.update(zero, state, PARAMS)
    np.testing.assert_allclose(updates[0]["W"], -0.1 * 0.5 * PARAMS[0]["W"], rtol=1e-6)
    np.testing.assert_array_equal(updates[0]["b"], jnp.zeros(2))


def test_solvers_are_cached_and_names_checked():
    assert optimizers.solver("adam", 0.01) is optimizers.solver("adam", 0.01)
    assert optimizers.solver("gd", 0.01) == jaxnn.gradient_descent(0.01)
    with pytest.raises(ValueError, match="unknown solver 'lbfgs'; choose one of: adam, gd, sgd"):
        optimizers.solver("lbfgs", 0.01)
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        optimizers.solver("adam", -1.0)
