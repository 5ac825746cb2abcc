"""Whole models: ``jax.grad`` through the hand-written rules against two referees.

For every activation (with its hyperparameter variants) × every loss at depths 1 and 2, and each activation and
each loss at depth 3 (``_configurations``; batch size 1 included), the gradient of
``loss(model.apply(params, x), y)`` — which runs the custom rules — must equal

* ``jax.grad`` of the plain forward, ``loss.forward(model.apply(params, x, custom_rules=False), y)``
  (JAX's own autodiff), and
* ``jaxnn.loss_and_grads``, the explicit seed-style backward pass,

in float64 (rtol 1e-10) and float32 (rtol 1e-5); a sample is also checked against float64 finite
differences.  Everything runs eagerly on tiny, shared shapes, so the compiled primitives are reused
across configurations instead of compiling one program per configuration.
"""

from __future__ import annotations

import contextlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    ACTIVATION_CASES,
    ATOL,
    HYPOTHESIS,
    KINK_MARGIN,
    LOSS_NAMES,
    OUTPUT_ACTIVATION_FOR_LOSS,
    RTOL,
    ActivationCase,
    assert_trees_close,
    model_targets,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import jaxnn
from jaxnn.losses import LOSSES, scikit_learn_squared_error

N_FEATURES, N_HIDDEN, N_OUTPUTS = 2, 3, 3
CLIP_MARGIN = 1e-3  # probabilities fed to the cross-entropies stay in (1e-3, 1 − 1e-3)


def build_model(case: ActivationCase, loss_name: str, depth: int, n_hidden: int = N_HIDDEN, n_outputs: int = N_OUTPUTS):
    """``depth − 1`` hidden layers with the case's activation, then an output layer.

    The output layer uses the case's activation too, unless the loss needs probabilities
    (sigmoid for binary, softmax for categorical cross-entropy), or applies the case's activation itself (a
    loss on logits after a layer applying it is refused everywhere): then it is the identity.
    """
    hidden = [jaxnn.Dense(n_hidden, case.name, case.kwargs) for _ in range(depth - 1)]
    output_name = OUTPUT_ACTIVATION_FOR_LOSS.get(loss_name)
    loss = LOSSES[loss_name]
    if loss.from_logits and jaxnn.get_activation(case.name) is jaxnn.get_activation(loss.output_activation):
        output_name = "identity"
    output = (
        jaxnn.Dense(n_outputs, case.name, case.kwargs) if output_name is None else jaxnn.Dense(n_outputs, output_name)
    )
    return jaxnn.Sequential((*hidden, output))


def random_params(model: jaxnn.Sequential, rng: np.random.Generator, n_features: int, dtype):
    """W ~ N(0, 0.8²/n_in) and b ~ N(0, 0.3²): sizeable gradients, yet outputs that stay clear of the clips."""
    params, n_in = [], n_features
    for layer in model.layers:
        params.append(
            {
                "W": jnp.asarray(0.8 / np.sqrt(n_in) * rng.normal(size=(n_in, layer.units)), dtype),
                "b": jnp.asarray(0.3 * rng.normal(size=layer.units), dtype),
            }
        )
        n_in = layer.units
    return params


def problem(
    case, loss_name, depth, batch, dtype, seed=0, n_features=N_FEATURES, n_hidden=N_HIDDEN, n_outputs=N_OUTPUTS
):
    rng = np.random.default_rng(seed)
    model = build_model(case, loss_name, depth, n_hidden, n_outputs)
    params = random_params(model, rng, n_features, dtype)
    x = jnp.asarray(rng.normal(size=(batch, n_features)), dtype)
    y = model_targets(loss_name, rng, batch, n_outputs, dtype)
    return model, params, x, y


def custom_grads(model, loss, params, x, y):
    return jax.value_and_grad(lambda p: loss(model.apply(p, x), y))(params)


def plain_grads(model, loss, params, x, y):
    return jax.value_and_grad(lambda p: loss.forward(model.apply(p, x, custom_rules=False), y))(params)


def clear_of_clips(loss_name, model, params, x) -> bool:
    """Whether the probabilities a cross-entropy clips sit clear of the bounds [1e-7, 1 − 1e-7].

    At a bound the rule's derivative (0: the clip holds) and autodiff's (½ at a tie of ``jnp.clip``)
    are two conventions for a kink, so comparing them there tests nothing.
    """
    if loss_name not in OUTPUT_ACTIVATION_FOR_LOSS or LOSSES[loss_name].task == "regression":  # exp: a mean, no clip
        return True
    p = np.asarray(model.apply(params, x, custom_rules=False), np.float64)
    if loss_name == "categorical_cross_entropy":
        p = p / p.sum(axis=-1, keepdims=True)
    return bool(np.all((p > CLIP_MARGIN) & (p < 1 - CLIP_MARGIN)))


def assert_valid_for_loss(loss_name, model, params, x):
    assert clear_of_clips(loss_name, model, params, x), "outputs too close to the clip bounds: choose another seed"


def assert_three_ways_agree(loss, dtype, model, params, x, y, compute=None):
    """Values and gradients from ``three_ways`` (or its jitted twin, ``compute``) agree to the dtype's tolerance."""
    assert_valid_for_loss(loss.name, model, params, x)
    rtol, atol = RTOL[np.dtype(dtype)], ATOL[np.dtype(dtype)]
    (value, hand), (plain_value, reference), (explicit_value, explicit) = (compute or three_ways)(
        model, loss, params, x, y
    )
    np.testing.assert_allclose(value, plain_value, rtol=rtol, atol=atol)
    np.testing.assert_allclose(explicit_value, plain_value, rtol=rtol, atol=atol)
    assert_trees_close(hand, reference, rtol, atol, what="jax.grad (custom rules) vs jax.grad (plain forward)")
    assert_trees_close(explicit, reference, rtol, atol, what="loss_and_grads vs jax.grad (plain forward)")


def three_ways(model, loss, params, x, y):
    """``(value, grads)`` through the custom rules, through the plain forward, and from ``loss_and_grads``."""
    return (
        custom_grads(model, loss, params, x, y),
        plain_grads(model, loss, params, x, y),
        jaxnn.loss_and_grads(model, params, x, y, loss),
    )


# For shapes seen once (hypothesis), one compiled program is ~10× cheaper than compiling every primitive eagerly.
three_ways_jitted = jax.jit(three_ways, static_argnums=(0, 1))


def _configurations():
    """Every activation case × loss at depths 1 and 2, and every activation case at depth 3 (two hidden
    layers of it: the chain of its rule through a hidden layer) with the losses taken in turn, so that each
    loss also meets depth 3.  Depth-1 models of the probability losses contain only the output activation,
    so those run once rather than once per case."""
    for loss_index, loss_name in enumerate(LOSS_NAMES):
        for depth in (1, 2):
            batch = (1, 4)[(depth + loss_index) % 2]
            for case in ACTIVATION_CASES:
                output_name = OUTPUT_ACTIVATION_FOR_LOSS.get(loss_name)
                if depth == 1 and output_name is not None and case != ActivationCase(output_name, {}):
                    continue
                yield pytest.param(case, loss_name, depth, batch, id=f"{case.id}-{loss_name}-depth{depth}-batch{batch}")
    n_deep = max(len(ACTIVATION_CASES), len(LOSS_NAMES))
    for i in range(n_deep):
        case, loss_name = ACTIVATION_CASES[i % len(ACTIVATION_CASES)], LOSS_NAMES[i % len(LOSS_NAMES)]
        batch = (1, 4)[i % 2]
        yield pytest.param(case, loss_name, 3, batch, id=f"{case.id}-{loss_name}-depth3-batch{batch}")


CONFIGURATIONS = list(_configurations())


@pytest.mark.parametrize(("case", "loss_name", "depth", "batch"), CONFIGURATIONS)
def test_model_gradients_three_ways(case, loss_name, depth, batch):
    loss = LOSSES[loss_name]
    with jax.enable_x64(True):
        assert_three_ways_agree(loss, np.float64, *problem(case, loss_name, depth, batch, jnp.float64))
    assert_three_ways_agree(loss, np.float32, *problem(case, loss_name, depth, batch, jnp.float32))


def test_configurations_cover_every_activation_loss_and_depth():
    seen = {(p.values[0].id, p.values[1], p.values[2]) for p in CONFIGURATIONS}
    for case in ACTIVATION_CASES:
        for loss_name in LOSS_NAMES:
            assert (case.id, loss_name, 2) in seen
    assert {(case_id, depth) for case_id, _, depth in seen} >= {(case.id, 3) for case in ACTIVATION_CASES}
    assert {(loss_name, depth) for _, loss_name, depth in seen} >= {(name, 3) for name in LOSS_NAMES}
    assert {p.values[3] for p in CONFIGURATIONS} == {1, 4}


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_categorical_cross_entropy_after_sigmoid(depth):
    """Seed 000's loss normalises each row itself, so any positive output is valid.  Sigmoid outputs
    exercise the normalisation's rule, which a softmax output (rows already summing to 1) leaves idle."""
    model = jaxnn.Sequential((*[jaxnn.Dense(N_HIDDEN, "tanh")] * (depth - 1), jaxnn.Dense(N_OUTPUTS, "sigmoid")))
    loss = LOSSES["categorical_cross_entropy"]
    for dtype in (jnp.float64, jnp.float32):
        with jax.enable_x64(dtype == jnp.float64):
            rng = np.random.default_rng(depth)
            params = random_params(model, rng, N_FEATURES, dtype)
            x = jnp.asarray(rng.normal(size=(4, N_FEATURES)), dtype)
            y = model_targets(loss.name, rng, 4, N_OUTPUTS, dtype)
            assert_three_ways_agree(loss, np.dtype(dtype), model, params, x, y)


# ---------------------------------------------------------------------------------------------
# Finite differences for a sample of models: every activation once, every loss once.


def _assert_away_from_kinks_and_clips(model, params, x, loss_name):
    """Finite differences are meaningful only if no pre-activation sits near a kink and no probability near a clip."""
    _, caches = jaxnn.forward_with_caches(model, params, x)
    for index, (layer, cache) in enumerate(zip(model.layers, caches, strict=True)):
        kinks = ActivationCase(layer.activation, dict(layer.activation_kwargs)).kinks
        for kink in kinks:
            assert np.min(np.abs(np.asarray(cache.z) - kink)) > KINK_MARGIN, f"layer {index}: choose another seed"
    assert_valid_for_loss(loss_name, model, params, x)


FD_SAMPLE = [(case, "mean_squared_error", 2) for case in ACTIVATION_CASES] + [
    (ActivationCase("tanh", {}), loss_name, 3) for loss_name in LOSS_NAMES
]


@pytest.mark.parametrize(("case", "loss_name", "depth"), FD_SAMPLE, ids=lambda v: getattr(v, "id", str(v)))
def test_model_gradients_vs_finite_differences(case, loss_name, depth):
    """check_vjp on the flattened parameter vector: as referee the plain forward into the function the loss's rule
    differentiates (``Loss.differentiated``); as the rule, the custom-rule gradient and the explicit seed-style
    backward pass (``jaxnn.loss_and_grads``)."""
    _check_against_finite_differences(LOSSES[loss_name], case, loss_name, depth)


def test_the_estimators_squared_error_through_a_network_vs_finite_differences():
    """scikit_learn_squared_error is not in LOSSES (so not in FD_SAMPLE): on 3 outputs its value is the mean over them
    and its rule that of their sum, which the finite differences of ``differentiated`` referee."""
    _check_against_finite_differences(scikit_learn_squared_error, ActivationCase("tanh", {}), "squared_error", 3)


def _check_against_finite_differences(loss, case, loss_name, depth):
    """The network of ``problem(case, loss_name, depth)`` trained with ``loss``: both backward passes against
    central differences."""
    with jax.enable_x64(True):
        model, params, x, y = problem(case, loss_name, depth, batch=4, dtype=jnp.float64, seed=1)
        _assert_away_from_kinks_and_clips(model, params, x, loss_name)
        theta, unravel = ravel_pytree(params)

        def plain_loss(theta):
            return loss.differentiated(model.apply(unravel(theta), x, custom_rules=False), y)

        def hand_vjp(g, theta):
            grads = jax.grad(lambda p: loss(model.apply(p, x), y))(unravel(theta))
            return (g * ravel_pytree(grads)[0],)

        def seed_style_vjp(g, theta):
            _, grads = jaxnn.loss_and_grads(model, unravel(theta), x, y, loss)
            return (g * ravel_pytree(grads)[0],)

        jaxnn.check_vjp(plain_loss, hand_vjp, theta)
        jaxnn.check_vjp(plain_loss, seed_style_vjp, theta)


# ---------------------------------------------------------------------------------------------
# Hypothesis: random shapes and configurations, float64.


@settings(HYPOTHESIS, max_examples=15)  # one jitted program per example: cheap enough for more examples
@given(
    case=st.sampled_from(ACTIVATION_CASES),
    loss_name=st.sampled_from(LOSS_NAMES),
    depth=st.integers(1, 3),
    batch=st.integers(1, 6),
    n_features=st.integers(1, 5),
    n_hidden=st.integers(1, 4),
    n_outputs=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_model_gradients_hypothesis(case, loss_name, depth, batch, n_features, n_hidden, n_outputs, seed):
    assume(loss_name != "categorical_cross_entropy" or n_outputs > 1)  # one class: q = 1, always clipped
    # a softmax over one unit is refused (always 1): a softmax case needs two units in every layer it is in
    assume(case.name != "softmax" or (n_outputs > 1 and (depth == 1 or n_hidden > 1)))
    with jax.enable_x64(True):
        model, params, x, y = problem(case, loss_name, depth, batch, jnp.float64, seed, n_features, n_hidden, n_outputs)
        assume(clear_of_clips(loss_name, model, params, x))
        assert_three_ways_agree(LOSSES[loss_name], np.float64, model, params, x, y, compute=three_ways_jitted)


# ---------------------------------------------------------------------------------------------
# jax.grad really runs the hand-written rules.


@contextlib.contextmanager
def rules_run(ops):
    """Record, in order, the names of those of ``ops`` whose hand-written backward runs.

    The rules are Python functions that JAX calls while it traces the backward pass (under ``jit`` as
    well), so a profile hook on their code objects sees every call: behaviour, not jaxpr text, and the
    same whichever way JAX implements ``custom_vjp`` (``jax_custom_vjp3`` names no op in its jaxprs).
    """
    names = {}
    for op in ops:
        names.setdefault(op.backward.__code__, op.name)
    calls = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in names:
            calls.append(names[frame.f_code])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def test_jax_grad_runs_a_hand_written_rule_for_every_op_of_the_forward():
    model = jaxnn.Sequential((jaxnn.Dense(6, "relu"), jaxnn.Dense(4, "softmax")))
    loss = jaxnn.categorical_cross_entropy
    ops = [jaxnn.layers.dense, jaxnn.relu, jaxnn.softmax, loss.op]
    params = model.init(jax.random.key(0), 5)
    # Eagerly and under jit, each on shapes of its own so that no trace is reused.
    for batch, grad in ((7, jax.grad), (9, lambda f: jax.jit(jax.grad(f)))):
        x, y = jnp.ones((batch, 5)), jnp.full((batch, 4), 0.25)
        with rules_run(ops) as calls:
            grads = grad(lambda p: loss(model.apply(p, x), y))(params)  # noqa: B023 (called at once)
        # The backward pass walks the forward (dense, relu, dense, softmax, the loss) in reverse.
        assert calls == ["categorical_cross_entropy", "softmax", "dense", "relu", "dense"]
        with rules_run(ops) as calls:
            autodiff = jax.grad(lambda p: loss.forward(model.apply(p, x, custom_rules=False), y))(params)  # noqa: B023
        assert calls == []  # the plain forwards carry no rule: JAX differentiates them itself
        assert_trees_close(grads, autodiff, rtol=1e-5, atol=1e-6)


def test_an_altered_rule_changes_jax_grad_but_not_the_forward():
    """A tanh whose rule is twice the true derivative: same forward, and jax.grad doubles exactly."""
    tanh = jaxnn.get_activation("tanh")
    doubled = jaxnn.make_op(tanh.forward, lambda g, y, x: (2.0 * g * (1.0 - y * y),), name="tanh_doubled_rule")
    honest = jaxnn.Sequential((jaxnn.Dense(3, "tanh"),))
    altered = jaxnn.Sequential((jaxnn.Dense(3, doubled),))
    params = honest.init(jax.random.key(1), 2)
    x = jnp.asarray(np.random.default_rng(7).normal(size=(5, 2)), jnp.float32)
    y = jnp.zeros((5, 3))

    np.testing.assert_array_equal(honest.apply(params, x), altered.apply(params, x))
    honest_grads = jax.grad(lambda p: jaxnn.sum_of_squares(honest.apply(p, x), y))(params)
    altered_grads = jax.grad(lambda p: jaxnn.sum_of_squares(altered.apply(p, x), y))(params)
    assert_trees_close(altered_grads, jax.tree.map(lambda g: 2.0 * g, honest_grads), rtol=1e-6, atol=0.0)
    # The explicit backward runs the same (altered) rule.
    assert_trees_close(jaxnn.loss_and_grads(altered, params, x, y, "sum_of_squares")[1], altered_grads, 1e-6, 1e-7)


def test_an_altered_loss_rule_changes_jax_grad():
    """The loss's rule runs too: a sum of squares whose per-sample derivative is scaled by 3."""
    tripled = jaxnn.make_loss(
        "squares_tripled_rule",
        lambda p, y: jnp.sum((p - y) ** 2, axis=-1),
        lambda p, y: (6.0 * (p - y), -6.0 * (p - y)),
        task="regression",
        output_activation="identity",
        reduction="sum",
    )
    model = jaxnn.Sequential((jaxnn.Dense(2, "identity"),))
    params = model.init(jax.random.key(2), 3)
    x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
    np.testing.assert_allclose(tripled(model.apply(params, x), y), jaxnn.sum_of_squares(model.apply(params, x), y))
    honest = jax.grad(lambda p: jaxnn.sum_of_squares(model.apply(p, x), y))(params)
    altered = jax.grad(lambda p: tripled(model.apply(p, x), y))(params)
    assert_trees_close(altered, jax.tree.map(lambda g: 3.0 * g, honest), rtol=1e-6, atol=0.0)
