"""Dense layers, the Sequential model and the initialisers.

The dense rule's gradient checks live in ``test_gradcheck.py``; whole-model gradients in
``test_model_gradients.py``.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnn
from jaxnn.layers import INITIALISERS

KEY = jax.random.key(0)


def test_dense_forward_is_x_at_w_plus_b():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    with jax.enable_x64(True):
        z = jaxnn.dense(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    np.testing.assert_allclose(z, x @ w + b, rtol=1e-14)


@pytest.mark.parametrize(
    "shapes",
    [((4, 3), (2, 2), (2,)), ((4, 3), (3, 2), (3,)), ((3,), (3, 2), (2,)), ((4, 3), (3, 2), (1, 2))],
    ids=["x-and-W-differ", "b-and-W-differ", "1-D-x", "2-D-b"],
)
def test_dense_refuses_shapes_that_do_not_chain(shapes):
    # these were JAX's "dot_general requires contracting dimensions..." and "add got incompatible shapes", and a
    # 1-D x came back as one row (1, 2)
    x, w, b = (jnp.ones(shape) for shape in shapes)
    with pytest.raises(ValueError, match=r"dense\(x, W, b\) needs x \(n_samples, n_in\), W \(n_in, n_out\) and b"):
        jaxnn.dense(x, w, b)


def test_seed_column_layout_is_the_transpose():
    """The seeds compute Z = W_seed · A + b_seed with A (n_in, n_samples) and W_seed (n_out, n_in)."""
    rng = np.random.default_rng(1)
    a_seed, w_seed, b_seed = rng.normal(size=(3, 5)), rng.normal(size=(2, 3)), rng.normal(size=(2, 1))
    with jax.enable_x64(True):
        z = jaxnn.dense(jnp.asarray(a_seed.T), jnp.asarray(w_seed.T), jnp.asarray(b_seed[:, 0]))
    np.testing.assert_allclose(z, (w_seed @ a_seed + b_seed).T, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Initialisers: shapes and statistics of a large layer (each tolerance is several standard errors).

N_IN, N_OUT = 400, 500  # 200 000 weights: the sample std is within ~0.2 % of the true one


def _init(name, n_in=N_IN, n_out=N_OUT, key=KEY):
    w, b = jaxnn.draw_weights(name, key, n_in, n_out)
    assert w.shape == (n_in, n_out) and b.shape == (n_out,)
    assert w.dtype == b.dtype == jnp.float32
    return np.asarray(w, np.float64), np.asarray(b, np.float64)


def test_normal_init_is_seed_000():
    w, b = _init("normal")
    assert abs(w.mean()) < 0.002 and w.std() == pytest.approx(0.1, rel=0.02)
    assert abs(b.mean()) < 0.02 and b.std() == pytest.approx(0.1, rel=0.15)


def test_small_normal_init_is_seed_001b():
    w, b = _init("small_normal")
    assert abs(w.mean()) < 2e-4 and w.std() == pytest.approx(0.01, rel=0.02)
    np.testing.assert_array_equal(b, 0.0)


def test_uniform_init_is_seed_001():
    w, b = _init("uniform")
    assert w.min() >= 0.0 and w.max() < 1.0 and b.min() >= 0.0 and b.max() < 1.0
    assert w.mean() == pytest.approx(0.5, abs=0.005)
    assert w.std() == pytest.approx(math.sqrt(1 / 12), rel=0.02)
    assert b.mean() == pytest.approx(0.5, abs=0.05)


def test_he_init():
    w, b = _init("he")
    assert abs(w.mean()) < 0.002 and w.std() == pytest.approx(math.sqrt(2 / N_IN), rel=0.02)
    np.testing.assert_array_equal(b, 0.0)


def test_glorot_init():
    w, b = _init("glorot")
    limit = math.sqrt(6 / (N_IN + N_OUT))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit  # it does reach out to the limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    np.testing.assert_array_equal(b, 0.0)


def test_init_in_float64():
    with jax.enable_x64(True):
        w, b = jaxnn.draw_weights("he", KEY, 3, 2, jnp.float64)
        params = jaxnn.Sequential((jaxnn.Dense(2),)).init(KEY, 3, jnp.float64)
    assert w.dtype == b.dtype == params[0]["W"].dtype == jnp.float64


def test_unknown_initialiser():
    with pytest.raises(ValueError, match=r"unknown initialiser 'xavier'; choose one of: glorot, he, normal"):
        jaxnn.draw_weights("xavier", KEY, 2, 2)
    with pytest.raises(ValueError, match=r"unknown initialiser 'xavier'; choose one of: glorot, he, normal"):
        jaxnn.Dense(2, init="xavier")


@pytest.mark.parametrize("name", sorted(INITIALISERS))
def test_model_init_shapes_and_keys(name):
    model = jaxnn.Sequential(
        (jaxnn.Dense(5, "relu", init=name), jaxnn.Dense(5, "relu", init=name), jaxnn.Dense(2, init=name))
    )
    params = model.init(KEY, 5)
    assert [(p["W"].shape, p["b"].shape) for p in params] == [((5, 5), (5,)), ((5, 5), (5,)), ((5, 2), (2,))]
    again = model.init(KEY, 5)
    for p, q in zip(params, again, strict=True):
        np.testing.assert_array_equal(p["W"], q["W"])
        np.testing.assert_array_equal(p["b"], q["b"])
    other = model.init(jax.random.key(1), 5)
    assert not np.array_equal(params[0]["W"], other[0]["W"])
    # Each layer draws from its own key: two layers of the same shape differ.
    assert not np.array_equal(params[0]["W"], params[1]["W"])


# ---------------------------------------------------------------------------------------------
# Dense and Sequential.


def test_dense_applies_its_activation_with_hyperparameters():
    layer = jaxnn.Dense(2, "linear", {"a": 3.0})
    params = {"W": jnp.array([[1.0, 2.0]]), "b": jnp.array([0.5, -1.0])}
    x = jnp.array([[1.0], [2.0]])
    np.testing.assert_allclose(layer.apply(params, x), 3.0 * (x @ params["W"] + params["b"][None, :]))
    np.testing.assert_allclose(layer.apply(params, x, custom_rules=False), layer.apply(params, x))


def test_dense_is_a_hashable_value():
    first = jaxnn.Dense(3, "leaky_relu", {"b": 0.1, "a": 2.0})
    second = jaxnn.Dense(3, "leaky_relu", {"a": 2.0, "b": 0.1})
    assert first == second and hash(first) == hash(second)
    assert first.activation_kwargs == (("a", 2.0), ("b", 0.1))
    assert jaxnn.Sequential([first]) == jaxnn.Sequential((second,))
    assert hash(jaxnn.Sequential([first])) == hash(jaxnn.Sequential((second,)))
    assert jaxnn.Sequential(first).layers == (first,)


@pytest.mark.parametrize("units", [0, -1, 2.5, True, "3"])
def test_dense_units_must_be_a_positive_integer(units):
    with pytest.raises(ValueError, match=r"Dense units must be a positive integer, got"):
        jaxnn.Dense(units)


def test_dense_unknown_activation():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'; choose one of: .*relu"):
        jaxnn.Dense(3, "rleu")


def test_dense_unknown_activation_hyperparameter():
    with pytest.raises(TypeError, match=r"activation 'relu' has no hyperparameter 'b'; it takes: a"):
        jaxnn.Dense(3, "relu", {"b": 0.1})
    with pytest.raises(TypeError, match=r"activation 'sigmoid' has no hyperparameter 'a'; it takes: none"):
        jaxnn.Dense(3, "sigmoid", {"a": 1.0})
    with pytest.raises(TypeError, match=r"hyperparameter 'a' of activation 'relu' must be a Python number, got str"):
        jaxnn.Dense(3, "relu", {"a": "2"})
    with pytest.raises(TypeError, match=r"must be a Python number, got ArrayImpl"):
        jaxnn.Dense(3, "relu", {"a": jnp.float32(2.0)})
    # NumPy scalars are numbers, and hashable: fine as static hyperparameters.
    layer = jaxnn.Dense(1, "relu", {"a": np.float32(2.0)})
    np.testing.assert_array_equal(layer.apply({"W": jnp.ones((1, 1)), "b": jnp.zeros(1)}, jnp.ones((1, 1))), [[2.0]])


def test_sequential_needs_dense_layers():
    with pytest.raises(TypeError, match="non-empty sequence of Dense layers"):
        jaxnn.Sequential(())
    with pytest.raises(TypeError, match="non-empty sequence of Dense layers"):
        jaxnn.Sequential((jaxnn.Dense(3), "relu"))


def test_init_needs_a_positive_feature_count():
    with pytest.raises(ValueError, match=r"n_features must be a positive integer, got 0"):
        jaxnn.Sequential((jaxnn.Dense(2),)).init(KEY, 0)


MODEL = jaxnn.Sequential((jaxnn.Dense(3, "relu"), jaxnn.Dense(2, "softmax")))
PARAMS = MODEL.init(KEY, 4)


def test_apply_shape_and_n_outputs():
    out = MODEL.apply(PARAMS, jnp.ones((5, 4)))
    assert out.shape == (5, MODEL.n_outputs) == (5, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(MODEL.apply(PARAMS, jnp.ones((5, 4)), custom_rules=False), out, rtol=1e-6)


def test_apply_wrong_feature_count_names_the_layer_and_shapes():
    with pytest.raises(
        ValueError,
        match=r"layer 0 \(3 units\) expects W of shape \(3, 3\) .* got W \(4, 3\) .*its input has 3 features",
    ):
        MODEL.apply(PARAMS, jnp.ones((5, 3)))


def test_an_input_of_another_width_than_the_weights_says_both_ways_to_agree():
    """Weights drawn for 4 features and an input of 3: the message said only which W layer 0 expects, as if the
    weights were wrong; it now also names the input's width as the likely cause."""
    expected = (
        "its input has 3 features (columns), these weights take 4: pass an input of 4 columns, or draw weights "
        "for 3 (model.init(key, 3))"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        MODEL.apply(PARAMS, jnp.ones((5, 3)))
    broken = [{"W": PARAMS[0]["W"], "b": PARAMS[0]["b"][:2]}, PARAMS[1]]  # b is off too: no such advice
    with pytest.raises(ValueError, match=r"got W \(4, 3\) and b \(2,\); its input has 3 features$"):
        MODEL.apply(broken, jnp.ones((5, 3)))
    # weights of another network (7 units where this one has 3), with the right input: the units differ, not x
    other = jaxnn.Sequential((jaxnn.Dense(7, "relu"), jaxnn.Dense(2, "softmax"))).init(KEY, 4)
    expected = "got W (4, 7) and b (7,); its input has 4 features, and these weights are of a layer of 7 units"
    with pytest.raises(ValueError, match=re.escape(expected)):
        MODEL.apply(other, jnp.ones((5, 4)))


def test_apply_to_text_is_a_type_error_naming_the_input():
    with pytest.raises(TypeError, match=r"input must be real numbers, got dtype <U"):
        MODEL.apply(PARAMS, np.full((5, 4), "1.0"))


def test_apply_params_that_do_not_chain():
    other = jaxnn.Sequential((jaxnn.Dense(6, "relu"), jaxnn.Dense(2, "softmax"))).init(KEY, 4)
    mixed = [PARAMS[0], other[1]]
    with pytest.raises(
        ValueError, match=r"layer 1 \(2 units\) expects W of shape \(3, 2\) .* got W \(6, 2\).*layer 0 outputs 3"
    ):
        MODEL.apply(mixed, jnp.ones((5, 4)))


def test_apply_wrong_number_of_param_entries():
    with pytest.raises(ValueError, match=r"the model has 2 layers but params has 1 entries"):
        MODEL.apply(PARAMS[:1], jnp.ones((5, 4)))


@pytest.mark.parametrize("params", [None, PARAMS[0], "params"], ids=["none", "one-layer-dict", "text"])
def test_apply_params_that_are_not_a_list(params):
    # was a ValueError "the model has 2 layers but params has NoneType entries" (dict entries, 6 entries)
    with pytest.raises(TypeError, match=r"params must be a list of one \{'W', 'b'\} dict per layer \(2 here\)"):
        MODEL.apply(params, jnp.ones((5, 4)))


def test_apply_params_not_in_init_layout():
    as_tuples = [(p["W"], p["b"]) for p in PARAMS]
    with pytest.raises(ValueError, match=r"params\[0\] must be a dict with 'W' and 'b' .*got tuple"):
        MODEL.apply(as_tuples, jnp.ones((5, 4)))
    without_b = [PARAMS[0], {"W": PARAMS[1]["W"]}]
    with pytest.raises(ValueError, match=r"params\[1\] must be a dict with 'W' and 'b' .*got a dict without 'b'$"):
        MODEL.apply(without_b, jnp.ones((5, 4)))
    with pytest.raises(ValueError, match=r"got a dict without 'W' and 'b'$"):
        MODEL.apply([{}, PARAMS[1]], jnp.ones((5, 4)))


def test_apply_one_dimensional_input():
    with pytest.raises(ValueError, match=r"input must be 2-D \(n_samples, n_features\), got shape \(4,\)"):
        MODEL.apply(PARAMS, jnp.ones(4))


def test_apply_is_jittable_with_the_model_static():
    apply = jax.jit(MODEL.apply)
    np.testing.assert_allclose(apply(PARAMS, jnp.ones((2, 4))), MODEL.apply(PARAMS, jnp.ones((2, 4))), rtol=1e-6)


def test_init_inside_jit_draws_the_same_numbers():
    model = jaxnn.Sequential((jaxnn.Dense(7, "relu"), jaxnn.Dense(5, init="he"), jaxnn.Dense(3, init="glorot")))
    direct = model.init(KEY, 4)
    traced = jax.jit(lambda key: model.init(key, 4))(KEY)
    for p, q in zip(direct, traced, strict=True):
        for name in ("W", "b"):
            assert p[name].shape == q[name].shape and p[name].dtype == q[name].dtype
            np.testing.assert_allclose(p[name], q[name], rtol=1e-6, atol=1e-9)  # at most the last bit differs


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: MODEL.init(0, 4), TypeError, r"key must be a jax.random key such as jax.random.key\(0\), got 0"),
        (lambda: MODEL.init(jnp.zeros(3, jnp.uint32), 4), TypeError, r"key must be a jax.random key"),
        (lambda: jaxnn.draw_weights("he", KEY, 0, 3), ValueError, r"n_in must be a positive integer, got 0"),
        (lambda: jaxnn.draw_weights("he", KEY, 3, -1), ValueError, r"n_out must be a positive integer, got -1"),
        (
            lambda: jaxnn.Dense(3, "leaky_relu", {"a": math.nan}),
            ValueError,
            r"hyperparameter 'a' of activation 'leaky_relu' must be finite, got nan",
        ),
        # These failed inside JAX or NumPy ("split accepts a single key", "dtype argument to `normal` must be a
        # float", "invalid PRNG key data", "dictionary update sequence element #0 has length 1"):
        (
            lambda: MODEL.init(jax.random.split(KEY, 3), 4),
            ValueError,
            r"key must be one jax.random key, got a batch of shape \(3,\); .*model.init_many\(keys, n_features\)",
        ),
        (lambda: MODEL.init(jax.random.split(jax.random.PRNGKey(0), 3), 4), ValueError, r"shape \(3, 2\)"),
        (lambda: MODEL.init(KEY, 4, jnp.int32), TypeError, r"dtype must be a floating-point type .*int32"),
        (lambda: MODEL.init(KEY, 4, "bogus"), TypeError, r"dtype must be a floating-point type .*got 'bogus'"),
        (lambda: MODEL.init(KEY, 4, jnp.complex64), TypeError, r"dtype must be a floating-point type"),
        (lambda: jaxnn.draw_weights("he", 0, 2, 3), TypeError, r"key must be a jax.random key"),
        (lambda: jaxnn.Dense(3, "leaky_relu", "b"), TypeError, r"activation_kwargs must be a dict of hyperparameters"),
        (lambda: jaxnn.Dense(3, "leaky_relu", 5), TypeError, r"activation_kwargs must be a dict"),
    ],
)
def test_bad_keys_sizes_and_hyperparameters_are_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_old_style_uint32_keys_still_work():
    assert jax.tree.structure(MODEL.init(jax.random.PRNGKey(0), 4)) == jax.tree.structure(MODEL.init(KEY, 4))


@pytest.mark.parametrize("bad", [[[0.1, 0.2, 0.3]], "W", None])
def test_apply_params_that_are_not_arrays_name_the_entry(bad):
    """A list of lists reached ``x @ W`` as "unsupported operand type(s) for @"; a string was reported as shape ()."""
    params = MODEL.init(KEY, 4)
    params[1] = {"W": bad, "b": params[1]["b"]}
    with pytest.raises(TypeError, match=r"params\[1\]\['W'\] must be an array \(as model.init makes\), got"):
        MODEL.apply(params, np.ones((2, 4)))


def test_numpy_unit_counts_are_stored_as_python_ints():
    layer = jaxnn.Dense(np.int64(3))
    assert type(layer.units) is int and layer == jaxnn.Dense(3) and hash(layer) == hash(jaxnn.Dense(3))


def test_a_softmax_over_one_unit_and_float64_without_x64_are_refused():
    # Dense(1, "softmax") always output 1.0: binary_cross_entropy clipped it to a zero gradient and nothing trained
    with pytest.raises(ValueError, match=r"a softmax over one unit is always 1.*activation='sigmoid'"):
        jaxnn.Dense(1, "softmax")
    jaxnn.Dense(2, "softmax")
    # init(dtype=float64) outside jax.enable_x64 gave float32 weights, with JAX's warning on the first call only
    model = jaxnn.Sequential((jaxnn.Dense(2),))
    for dtype in (jnp.float64, np.float64, "float64"):
        with pytest.raises(ValueError, match=r"dtype float64 needs JAX's 64-bit mode, which is off"):
            model.init(jax.random.key(0), 2, dtype)
    with jax.enable_x64(True):
        assert model.init(jax.random.key(0), 2, jnp.float64)[0]["W"].dtype == jnp.float64


def test_integers_beyond_int32_are_read_as_numbers_not_wrapped():
    """Without 64-bit mode JAX holds ints as int32 and wrapped 2**32 + 1 to 1: model.apply, loss_and_grads, the
    losses and the activations read such integers as the floats fit reads them as."""
    assert not jax.config.jax_enable_x64
    model = jaxnn.Sequential((jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "identity")))
    params = model.init(jax.random.key(0), n_features=4)
    big = np.array([[2**32 + 1, 0, 0, 0], [-(2**40), 7, 0, 1]], dtype=np.int64)
    np.testing.assert_array_equal(model.apply(params, big), model.apply(params, big.astype(np.float32)))
    target = np.full((2, 3), 2**33 + 7, dtype=np.int64)
    floats = jaxnn.mean_squared_error(np.zeros((2, 3), np.float32), target.astype(np.float32))
    assert float(jaxnn.mean_squared_error(np.zeros((2, 3), np.float32), target)) == float(floats) > 1e19
    np.testing.assert_array_equal(jaxnn.relu(np.array([2**32 + 5])), [np.float32(2**32 + 5)])
    one_hot = np.eye(3, dtype=np.float32)[[0, 1]]
    loss, grads = jaxnn.loss_and_grads(model, params, big, one_hot, "softmax_cross_entropy")
    loss_f, grads_f = jaxnn.loss_and_grads(model, params, big.astype(np.float32), one_hot, "softmax_cross_entropy")
    assert float(loss) == float(loss_f)
    np.testing.assert_array_equal(grads[0]["W"], grads_f[0]["W"])
    optimizer = jaxnn.optimizers.make("gd", learning_rate=1e-30)
    regression = jaxnn.Sequential((jaxnn.Dense(3, "identity"),))
    start = regression.init(jax.random.key(0), n_features=4)
    steps = [
        jaxnn.train_step(regression, "mean_squared_error", optimizer, start, optimizer.init(start), big, y)[2]
        for y in (target[:2], target[:2].astype(np.float32))
    ]
    assert float(steps[0]) == float(steps[1]) > 1e19
