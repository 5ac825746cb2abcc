"""The explicit, seed-style backward pass: caches, the reversed walk, and the seeds' own formulas.

``loss_and_grads`` against ``jax.grad`` for every activation × loss × depth is in
``test_model_gradients.py``; here the explicit pass is checked against an independent numpy
transcription of the seeds' column-layout backpropagation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnn

MODEL = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, "relu"), jaxnn.Dense(2, "sigmoid")))


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = [
        {"W": rng.normal(size=(n_in, n_out)), "b": 0.3 * rng.normal(size=n_out)}
        for n_in, n_out in ((3, 4), (4, 3), (3, 2))
    ]
    x = rng.normal(size=(5, 3))
    y = rng.integers(0, 2, (5, 2)).astype(float)
    return params, x, y


def test_forward_with_caches_keeps_what_each_layer_needs():
    params, x, _ = _problem()
    with jax.enable_x64(True):
        output, caches = jaxnn.forward_with_caches(MODEL, params, x)
        np.testing.assert_allclose(output, MODEL.apply(params, x), rtol=1e-14)
    assert len(caches) == 3
    np.testing.assert_array_equal(caches[0].a_prev, x)
    for index, (cache, p) in enumerate(zip(caches, params, strict=True)):
        np.testing.assert_allclose(cache.z, np.asarray(cache.a_prev) @ p["W"] + p["b"], rtol=1e-13)
        if index + 1 < len(caches):
            np.testing.assert_array_equal(caches[index + 1].a_prev, cache.a)
    np.testing.assert_allclose(caches[0].a, np.tanh(caches[0].z), rtol=1e-14)
    np.testing.assert_array_equal(caches[1].a, np.maximum(caches[1].z, 0.0))
    np.testing.assert_array_equal(caches[2].a, output)


def _seed_style_backprop(params, x, y):
    """Seed 001b's algorithm in its own column layout, numpy only, for sigmoid/tanh/relu layers and the
    mean binary cross-entropy: cost = −(1/m) Σ [Y log A + (1 − Y) log(1 − A)],
    dA_L = −(Y/A − (1 − Y)/(1 − A)), dZ = dA · g'(Z), dW = (1/m) dZ A_prevᵀ, db = (1/m) Σ dZ, dA_prev = Wᵀ dZ."""
    derivatives = {
        "tanh": lambda z, a: 1 - a**2,
        "relu": lambda z, a: (z > 0).astype(float),
        "sigmoid": lambda z, a: a * (1 - a),
    }
    activations = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z))}
    a, caches = x.T, []  # (n_features, m)
    for layer, p in zip(MODEL.layers, params, strict=True):
        w_seed, b_seed = p["W"].T, p["b"][:, None]
        z = w_seed @ a + b_seed
        caches.append((a, z, w_seed, layer.activation))
        a = activations[layer.activation](z)
    m = x.shape[0]
    big_y = y.T
    cost = -np.sum(big_y * np.log(a) + (1 - big_y) * np.log(1 - a)) / m
    d_a = -(big_y / a - (1 - big_y) / (1 - a))
    grads = [None] * len(params)
    for index in reversed(range(len(params))):
        a_prev, z, w_seed, name = caches[index]
        out = activations[name](z)
        d_z = d_a * derivatives[name](z, out)
        grads[index] = {"W": (d_z @ a_prev.T / m).T, "b": d_z.sum(axis=1) / m}  # back to batch-first
        d_a = w_seed.T @ d_z
    return cost, grads


def test_loss_and_grads_equals_the_seeds_column_layout_backprop():
    """The seeds' 1/m lives in jaxnn's mean loss; the gradients are the seeds' dWᵀ and db."""
    params, x, y = _problem(1)
    expected_cost, expected_grads = _seed_style_backprop(params, x, y)
    with jax.enable_x64(True):
        cost, grads = jaxnn.loss_and_grads(MODEL, params, x, y, "binary_cross_entropy")
    assert float(cost) == pytest.approx(expected_cost, rel=1e-12)
    for got, expected in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got["W"], expected["W"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(got["b"], expected["b"], rtol=1e-10, atol=1e-14)


def test_single_identity_layer_with_sum_of_squares_by_hand():
    """L = Σ (xW + b − y)²: ∂L/∂W = xᵀ · 2(p − y), ∂L/∂b = Σ_rows 2(p − y)."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    params = [{"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}]
    model = jaxnn.Sequential((jaxnn.Dense(2),))
    with jax.enable_x64(True):
        value, (grads,) = jaxnn.loss_and_grads(model, params, x, y, jaxnn.sum_of_squares)
    residual = x @ params[0]["W"] + params[0]["b"] - y
    assert float(value) == pytest.approx(np.sum(residual**2), rel=1e-13)
    np.testing.assert_allclose(grads["W"], x.T @ (2 * residual), rtol=1e-12)
    np.testing.assert_allclose(grads["b"], (2 * residual).sum(axis=0), rtol=1e-12)


def test_backward_from_a_given_output_gradient():
    """``backward`` is the reversed walk alone: from ∂L/∂output = 1 it gives the gradient of Σ output."""
    params, x, _ = _problem(3)
    with jax.enable_x64(True):
        output, caches = jaxnn.forward_with_caches(MODEL, params, x)
        grads = jaxnn.backward(MODEL, params, caches, jnp.ones_like(output))
        reference = jax.grad(lambda p: jnp.sum(MODEL.apply(p, x, custom_rules=False)))(params)
    for got, expected in zip(grads, reference, strict=True):
        np.testing.assert_allclose(got["W"], expected["W"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(got["b"], expected["b"], rtol=1e-10, atol=1e-14)


def test_backward_checks_its_caches_and_output_gradient():
    # these failed with an IndexError, "'NoneType' object is not subscriptable" and JAX's own
    # "mul got incompatible shapes for broadcasting: (5, 3), (5, 2)"
    params, x, _ = _problem(3)
    output, caches = jaxnn.forward_with_caches(MODEL, params, x)
    with pytest.raises(TypeError, match=r"caches must be the list forward_with_caches\(model, params, x\) returned, "):
        jaxnn.backward(MODEL, params, caches[:1], jnp.ones_like(output))
    with pytest.raises(TypeError, match=r"one LayerCache per layer \(3 here\); got NoneType"):
        jaxnn.backward(MODEL, params, None, jnp.ones_like(output))
    with pytest.raises(ValueError, match=r"d_output \(∂L/∂output\) must have the shape of the model's output, "):
        jaxnn.backward(MODEL, params, caches, jnp.ones((5, 3)))
    with pytest.raises(ValueError, match=r"layer 0 \(4 units\) expects W of shape \(3, 4\)"):
        jaxnn.backward(MODEL, params[::-1], caches, jnp.ones_like(output))
    as_list = jaxnn.backward(MODEL, params, caches, np.ones((5, 2)).tolist())  # lists are converted, as for x
    for got, expected in zip(as_list, jaxnn.backward(MODEL, params, caches, jnp.ones_like(output)), strict=True):
        np.testing.assert_array_equal(got["W"], expected["W"])


def test_loss_and_grads_with_sample_weights():
    params, x, y = _problem(4)
    weight = np.array([1.0, 0.0, 2.0, 0.5, 1.0])
    with jax.enable_x64(True):
        value, grads = jaxnn.loss_and_grads(MODEL, params, x, y, "binary_cross_entropy", weight)
        ref_value, reference = jax.value_and_grad(
            lambda p: jaxnn.binary_cross_entropy.forward(MODEL.apply(p, x, custom_rules=False), y, weight)
        )(params)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    for got, expected in zip(grads, reference, strict=True):
        np.testing.assert_allclose(got["W"], expected["W"], rtol=1e-10, atol=1e-14)


def test_gradients_have_their_parameters_dtypes_as_jax_grad_gives_them():
    """float32 weights on float64 input (under x64) got float64 gradients from loss_and_grads, float32 from
    jax.grad."""
    params, x, y = _problem(5)
    params = [{name: value.astype(np.float32) for name, value in layer.items()} for layer in params]
    with jax.enable_x64(True):
        _, grads = jaxnn.loss_and_grads(MODEL, params, x, y, "binary_cross_entropy")
        reference = jax.grad(lambda p: jaxnn.binary_cross_entropy(MODEL.apply(p, x), y))(params)
    for got, expected in zip(grads, reference, strict=True):
        for name in ("W", "b"):
            assert got[name].dtype == expected[name].dtype == np.float32
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7)


def test_loss_and_grads_checks_its_input():
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"predictions have shape \(5, 2\) but targets have shape \(5, 3\)"):
        jaxnn.loss_and_grads(MODEL, params, x, np.ones((5, 3)), "binary_cross_entropy")
    with pytest.raises(ValueError, match=r"layer 0 \(4 units\) expects W of shape \(2, 4\)"):
        jaxnn.loss_and_grads(MODEL, params, x[:, :2], y, "binary_cross_entropy")
    with pytest.raises(ValueError, match=r"unknown loss 'bce'"):
        jaxnn.loss_and_grads(MODEL, params, x, y, "bce")
    # These failed with AttributeError ("'str' object has no attribute 'check'") and inside JAX:
    with pytest.raises(TypeError, match=r"model must be a jaxnn\.Sequential, got str"):
        jaxnn.loss_and_grads("model", params, x, y, "binary_cross_entropy")
    with pytest.raises(TypeError, match="input must be real numbers, got dtype <U"):
        jaxnn.forward_with_caches(MODEL, params, x.astype(str))


@pytest.mark.parametrize(
    ("last", "loss", "message"),
    [
        ("softmax", "softmax_cross_entropy", r"applies softmax to the network's output itself, and the last layer"),
        ("identity", "categorical_cross_entropy", r"needs predictions in \(0, inf\)"),
    ],
)
def test_loss_and_grads_checks_the_model_and_the_loss_as_a_pair_as_fit_does(last, loss, message):
    """It returned the loss and gradients of softmax(softmax(z)) without an error, where fit refused the pair."""
    model = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, last)))
    params = model.init(jax.random.key(0), 2)
    x, y = np.ones((3, 2), np.float32), np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        jaxnn.loss_and_grads(model, params, x, y, loss)
