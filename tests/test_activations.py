"""Activations: forward values against independent references, the rules' conventions, lookup errors.

The rule-vs-autodiff-vs-finite-differences checks of every activation live in ``test_gradcheck.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ACTIVATION_CASES, REFERENCE_FORWARDS, ActivationCase

import jaxnn
from jaxnn.activations import ACTIVATIONS

X = np.linspace(-3.0, 3.0, 13).reshape(1, 13)  # includes 0 (the ReLU kink) and 0.5


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_forward_matches_numpy_reference(case):
    with jax.enable_x64(True):
        y = case.op(jnp.asarray(X), **case.kwargs)
        plain = case.op.forward(jnp.asarray(X), **case.kwargs)
    expected = REFERENCE_FORWARDS[case.name](X, **case.kwargs)
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(y, plain)


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_dtype_and_shape_are_kept(case):
    x = jnp.ones((2, 3), jnp.float32)
    y = case.op(x, **case.kwargs)
    assert y.shape == (2, 3) and y.dtype == jnp.float32
    (dx,) = case.op.vjp(jnp.ones_like(y), x, **case.kwargs)
    assert dx.shape == (2, 3) and dx.dtype == jnp.float32


def _grad_at(op, x, **kwargs):
    return jax.grad(lambda x: op(x, **kwargs).sum())(jnp.asarray(x))


def test_relu_kink_convention_matches_jax_nn_relu():
    x = jnp.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_grad_at(jaxnn.relu, x), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(_grad_at(jaxnn.relu, x), jax.grad(lambda x: jax.nn.relu(x).sum())(x))
    np.testing.assert_array_equal(_grad_at(jaxnn.relu, x, a=0.5), [0.0, 0.0, 0.5])


def test_leaky_relu_at_the_kink_uses_the_left_slope():
    x = jnp.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(_grad_at(jaxnn.leaky_relu, x), [0.01, 0.01, 1.0])
    np.testing.assert_allclose(_grad_at(jaxnn.leaky_relu, x, a=2.0, b=0.2), [0.2, 0.2, 2.0])


def test_binary_step_passes_no_gradient_anywhere():
    x = jnp.array([-1.0, 0.0, 0.3, 0.30001, 2.0])
    np.testing.assert_array_equal(_grad_at(jaxnn.binary_step, x), np.zeros(5))
    np.testing.assert_array_equal(_grad_at(jaxnn.binary_step, x, threshold=0.3), np.zeros(5))
    # The step is strict: the threshold itself maps to 0, as the seed's ``out[X <= thresh] = 0``.
    np.testing.assert_array_equal(jaxnn.binary_step(x, threshold=0.3), [0.0, 0.0, 0.0, 1.0, 1.0])


def test_softmax_rule_is_the_full_jacobian_vector_product():
    """Not an elementwise derivative: ∂L/∂x = Jᵀg with J = diag(s) − s sᵀ, the Jacobian built explicitly."""
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    with jax.enable_x64(True):
        (dx,) = jaxnn.softmax.vjp(jnp.asarray(g), jnp.asarray(x))
    for row in range(2):
        s = np.exp(x[row]) / np.exp(x[row]).sum()
        jacobian = np.diag(s) - np.outer(s, s)
        np.testing.assert_allclose(dx[row], jacobian.T @ g[row], rtol=1e-12, atol=1e-15)
        # An elementwise derivative s(1 − s)·g would differ.
        assert not np.allclose(dx[row], s * (1 - s) * g[row])


def test_softmax_rows_are_distributions_even_for_huge_inputs():
    x = jnp.array([[1e30, 0.0, -1e30], [1e4, 1e4, 0.0], [1.0, 2.0, 3.0]], jnp.float32)
    s = jaxnn.softmax(x)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(s[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s[1], [0.5, 0.5, 0.0])
    (dx,) = jaxnn.softmax.vjp(jnp.ones_like(x), x)
    assert np.all(np.isfinite(dx))


def test_sigmoid_and_tanh_are_finite_for_huge_inputs():
    x = jnp.array([-1e30, -1e4, 0.0, 1e4, 1e30], jnp.float32)
    np.testing.assert_array_equal(jaxnn.sigmoid(x), [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(jaxnn.tanh(x), [-1.0, -1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(_grad_at(jaxnn.sigmoid, x), [0.0, 0.0, 0.25, 0.0, 0.0])
    np.testing.assert_array_equal(_grad_at(jaxnn.tanh, x), [0.0, 0.0, 1.0, 0.0, 0.0])


SATURATING = np.array([-60.0, -30.0, -15.0, -5.0, 0.0, 5.0, 9.0, 12.0, 15.0, 20.0, 30.0, 40.0, 60.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_rule_is_y_times_one_minus_y_as_jax_differentiates_the_sigmoid(dtype):
    """σ'(x) = y·(1 − y) from the output: JAX's derivative of jax.nn.sigmoid, to float rounding, and within one
    spacing of the numbers near 1 of the exact σ'(x) where σ saturates (1 − y keeps few digits there)."""
    exact = np.exp(-np.abs(SATURATING)) / (1.0 + np.exp(-np.abs(SATURATING))) ** 2  # σ'(x), even in x
    with jax.enable_x64(dtype == np.float64):
        x = jnp.asarray(SATURATING, dtype)
        rule = _grad_at(jaxnn.sigmoid, x)
        (vjp,) = jaxnn.sigmoid.vjp(jnp.ones(x.shape, dtype), x)
        autodiff = jax.grad(lambda x: jax.nn.sigmoid(x).sum())(x)
    np.testing.assert_allclose(rule, autodiff, rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_allclose(rule, exact, rtol=0, atol=np.finfo(dtype).eps)
    np.testing.assert_array_equal(vjp, rule)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", [0.0, 0.3, 1.0])
def test_binary_cross_entropy_after_a_sigmoid_leaves_sigma_minus_y(dtype, target):
    """The two rules cancel, as §4.3 derives: ∂l/∂z = σ(z) − y to the rounding of σ(z), wherever the clip lets the
    gradient through.  With σ'(x) taken as σ(x)·σ(−x) (full relative precision) they did not: the float32 gradient
    at z = 15, y = 0 was 0.86 instead of 1, up to 25% off before the clip."""
    eps = np.finfo(dtype).eps
    with jax.enable_x64(dtype == np.float64):
        z = jnp.linspace(-40.0, 40.0, 1601, dtype=dtype)[:, None]
        y = jnp.full(z.shape, target, dtype)
        grad = jax.grad(lambda z: jaxnn.losses.binary_cross_entropy(jaxnn.sigmoid(z), y) * z.shape[0])(z)
        p = jaxnn.sigmoid(z)
        inside = np.asarray((p > dtype(1e-7)) & (p < dtype(1 - 1e-7)))
        at_bound = np.asarray((p == dtype(1e-7)) | (p == dtype(1 - 1e-7)))
    exact = 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64))) - target
    assert inside.sum() > 400  # most of the points are where the clip holds nothing
    np.testing.assert_allclose(np.asarray(grad)[inside], exact[inside], rtol=0, atol=4 * eps)
    # where σ rounds onto a bound itself (a range of z in float32) the clip's slope is ½ (§4.3); past it, 0
    held = np.asarray(p, np.float64)[at_bound] - target
    np.testing.assert_allclose(np.asarray(grad)[at_bound], 0.5 * held, rtol=0, atol=4 * eps)
    np.testing.assert_array_equal(np.asarray(grad)[~inside & ~at_bound], 0.0)


@pytest.mark.parametrize("op", [jaxnn.sigmoid, jaxnn.tanh, jaxnn.softmax, jaxnn.exp], ids=lambda op: op.name)
def test_rules_that_need_only_the_output_never_read_the_input(op):
    """sigmoid, tanh, softmax and exp derive their rule from the output alone, so only it need be kept."""
    x = jnp.array([[-1.0, 0.5, 2.0]])
    g = jnp.array([[0.3, -1.0, 2.0]])
    y = op.forward(x)
    (with_input,) = op.backward(g, y, x)
    (without_input,) = op.backward(g, y, jnp.full_like(x, jnp.nan))
    np.testing.assert_array_equal(with_input, without_input)


def test_get_activation():
    assert jaxnn.get_activation("relu") is jaxnn.relu
    assert jaxnn.get_activation("logistic") is jaxnn.sigmoid
    assert jaxnn.get_activation(jaxnn.tanh) is jaxnn.tanh
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'; choose one of: binary_step, exp, ident") as error:
        jaxnn.get_activation("rleu")
    for name in ACTIVATIONS:
        assert name in str(error.value)
    with pytest.raises(TypeError, match=r"activation must be a name such as 'relu' or an Op, got int"):
        jaxnn.get_activation(3)


def test_public_names_are_the_table_entries():
    for name in ("identity", "linear", "sigmoid", "tanh", "binary_step", "relu", "leaky_relu", "softmax"):
        assert getattr(jaxnn, name) is ACTIVATIONS[name]


# ---------------------------------------------------------------------------------------------
# Bad or unusual input to a call.


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_lists_ints_and_bools_are_read_as_floats(case):
    """Every activation returns floats for integer, boolean and list input (relu used to keep int32,
    sigmoid raised a lax TypeError, and lists failed on ``list > int``)."""
    ints = np.array([[-2, 0, 3]])
    expected = case.op(jnp.asarray(ints, jnp.float32), **case.kwargs)
    for x in (ints, ints.tolist(), jnp.asarray(ints)):
        y = case.op(x, **case.kwargs)
        assert y.dtype == jnp.float32
        np.testing.assert_array_equal(y, expected)
    booleans = case.op(np.array([[True, False, True]]), **case.kwargs)
    assert booleans.dtype == jnp.float32
    np.testing.assert_array_equal(booleans, case.op(jnp.array([[1.0, 0.0, 1.0]]), **case.kwargs))


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_non_real_input_is_a_type_error_naming_the_activation(case):
    needs = rf"activation '{case.op.name}': its input must be real numbers, got dtype"
    with pytest.raises(TypeError, match=rf"{needs} complex64"):
        case.op(jnp.ones((1, 2), jnp.complex64), **case.kwargs)
    with pytest.raises(TypeError, match=rf"{needs} complex128"):
        case.op(np.ones((1, 2), np.complex128), **case.kwargs)
    with pytest.raises(TypeError, match=rf"{needs} <U1"):
        case.op([["a", "b"]], **case.kwargs)
    with pytest.raises(TypeError, match=rf"{needs} object"):
        case.op(None, **case.kwargs)


def test_hyperparameters_must_be_known_finite_python_numbers():
    x = jnp.array([[-1.0, 2.0]])
    with pytest.raises(TypeError, match=r"activation 'relu' has no hyperparameter 'b'; it takes: a"):
        jaxnn.relu(x, b=0.1)
    with pytest.raises(TypeError, match=r"activation 'tanh' has no hyperparameter 'a'; it takes: none"):
        jaxnn.tanh(x, a=2.0)
    with pytest.raises(TypeError, match=r"hyperparameter 'a' of activation 'linear' must be a Python number, got str"):
        jaxnn.linear(x, a="2")
    with pytest.raises(TypeError, match=r"must be a Python number, got ndarray"):
        jaxnn.leaky_relu(x, b=np.array([0.1, 0.2]))  # would broadcast silently into a different function
    with pytest.raises(ValueError, match=r"hyperparameter 'threshold' of activation 'binary_step' must be finite"):
        jaxnn.binary_step(x, threshold=float("nan"))
    np.testing.assert_array_equal(jaxnn.relu(x, a=np.float32(2.0)), [[0.0, 4.0]])  # NumPy scalars are numbers


def test_hyperparameters_passed_by_position_are_a_type_error_naming_the_keywords():
    """The module docstring writes ``leaky_relu(x, a, b)`` as the seeds do; called so, Python's own error said only
    that ``Activation.__call__()`` took 2 positional arguments."""
    x = jnp.array([[-1.0, 2.0]])
    with pytest.raises(TypeError, match=r"activation 'leaky_relu' takes its hyperparameters by keyword, "):
        jaxnn.leaky_relu(x, 0.5, 0.1)
    with pytest.raises(TypeError, match=r"leaky_relu\(x, a=0.5, b=0.1\)"):
        jaxnn.leaky_relu(x, 0.5, 0.1)
    with pytest.raises(TypeError, match=r"activation 'tanh' takes no hyperparameters; got 1 positional argument"):
        jaxnn.tanh(x, 2.0)
    with pytest.raises(TypeError, match=r"activation 'relu' takes 1 hyperparameter \(a\); got 2 positional"):
        jaxnn.relu(x, 2.0, 3.0)
    with pytest.raises(TypeError, match=r"leaky_relu\(x, a=0.5, b=0.2\)"):  # the keywords given are kept
        jaxnn.leaky_relu(x, 0.5, b=0.2)
    with pytest.raises(TypeError, match=r"activation 'leaky_relu': a given by position and by keyword"):
        jaxnn.leaky_relu(x, 0.5, a=0.3)


def test_softmax_needs_a_non_empty_feature_axis():
    with pytest.raises(ValueError, match=r"'softmax' acts along the last \(feature\) axis, which input of shape \(\)"):
        jaxnn.softmax(1.0)
    with pytest.raises(ValueError, match=r"input of shape \(2, 0\) lacks or has empty"):
        jaxnn.softmax(jnp.zeros((2, 0)))
    assert jaxnn.softmax(jnp.zeros((0, 3))).shape == (0, 3)  # no samples is fine


# The facts each activation states about itself, checked against what it computes.


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_the_elementwise_fact_is_true(case):
    """Elementwise ⇔ the Jacobian of one sample's outputs by its inputs is diagonal."""
    assert isinstance(case.op, jaxnn.Activation) and isinstance(case.op.elementwise, bool)
    x = jnp.asarray(np.random.default_rng(0).uniform(-2.0, 2.0, (1, 5)))
    with jax.enable_x64(True):
        jacobian = jax.jacobian(lambda v: case.op.forward(v, **case.kwargs))(x.astype(jnp.float64))[0, :, 0, :]
    off_diagonal = np.asarray(jacobian) * (1.0 - np.eye(5))
    assert np.all(off_diagonal == 0.0) == case.op.elementwise


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_the_kinks_fact_is_true(case):
    """At each declared kink the function jumps or its slope changes; elsewhere on a grid the one-sided
    slopes agree (no undeclared kink)."""
    f = REFERENCE_FORWARDS[case.name]
    h = 1e-4

    def slopes(point):
        x = np.array([[point - h, point, point + h]])
        left, middle, right = f(x, **case.kwargs)[0] if case.op.elementwise else f(x.T, **case.kwargs)[:, 0]
        return (middle - left) / h, (right - middle) / h, right - left

    for kink in case.op.kinks(**case.kwargs):
        left, right, jump = slopes(kink)
        assert abs(left - right) > 1e-3 or abs(jump) > 1e-3, f"{case.id} is smooth at its declared kink {kink}"
    kinks = case.op.kinks(**case.kwargs)
    for point in np.linspace(-2.95, 2.95, 60):
        if all(abs(point - kink) > 10 * h for kink in kinks):
            left, right, _ = slopes(point)
            assert abs(left - right) < 1e-2 * max(1.0, abs(left)), f"{case.id} has an undeclared kink near {point}"


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: c.id)
def test_nan_input_gives_nan_output(case):
    """A NaN input is never turned into a number: relu and binary_step made it 0, so a network fed NaN gave a
    confident finite prediction.  Infinities keep their limits (relu(-inf) = 0)."""
    x = jnp.array([[jnp.nan, 1.0, -1.0]])
    y = np.asarray(case.op(x, **case.kwargs))
    assert np.isnan(y[0, 0]) if case.op.elementwise else np.all(np.isnan(y))
    if case.name in ("relu", "binary_step"):
        np.testing.assert_array_equal(case.op(jnp.array([-jnp.inf, jnp.inf]), **case.kwargs)[:1], [0.0])


@pytest.mark.parametrize(
    "case",
    [
        *ACTIVATION_CASES,
        ActivationCase("relu", {"a": -1.0}),
        ActivationCase("linear", {"a": 0.0}),
        ActivationCase("leaky_relu", {"a": 0.5, "b": -0.2}),
    ],
    ids=lambda c: c.id,
)
def test_the_output_range_fact_is_true_and_tight(case):
    """Every output lies in the stated range, which is no wider than the outputs: a finite end is reached
    (within 1e-3) and an infinite one left behind (beyond ±1e3) on inputs from -1e6 to 1e6; an end stated as
    attained is some output exactly, and one stated as not attained is never met by inputs in [-5, 5]."""
    interval = case.op.output_range(**case.kwargs)
    low, high = interval.low, interval.high

    def outputs(x):
        columns = x[None, :] if case.op.elementwise else np.stack([x, np.zeros_like(x)], 1)  # softmax: rows of 2
        with jax.enable_x64(True):
            return np.asarray(case.op.forward(jnp.asarray(columns), **case.kwargs))

    y = outputs(np.concatenate([-np.logspace(-3, 6, 200), [0.0], np.logspace(-3, 6, 200)]))
    assert np.all((y >= low) & (y <= high)), f"{case.id} outputs {y.min()}..{y.max()} outside {interval}"
    assert (y.min() < -1e3) if np.isinf(low) else (y.min() <= low + 1e-3)
    assert (y.max() > 1e3) if np.isinf(high) else (y.max() >= high - 1e-3)
    moderate = outputs(np.linspace(-5.0, 5.0, 101))
    for end, attained in ((low, interval.low_attained), (high, interval.high_attained)):
        if np.isfinite(end):
            assert np.any(y == end) if attained else not np.any(moderate == end), f"{case.id} at {end}"


def test_numpy_scalar_hyperparameters_keep_the_inputs_dtype_with_x64_on():
    """np.float64(0.1) times a float32 array is float64 with x64 on: float32 weights got float64 gradients."""
    x = jnp.array([[-1.0, 2.0]], jnp.float32)
    with jax.enable_x64(True):
        for op, kwargs in ((jaxnn.leaky_relu, {"b": np.float64(0.1)}), (jaxnn.linear, {"a": np.float64(2.0)})):
            assert op(x, **kwargs).dtype == jnp.float32
            assert jax.grad(lambda v, op=op, kwargs=kwargs: jnp.sum(op(v, **kwargs)))(x).dtype == jnp.float32
        layer = jaxnn.Dense(2, "leaky_relu", {"b": np.float64(0.1)})
        assert all(type(value) is float for _, value in layer.activation_kwargs)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # the threshold, as JAX casts it
def test_a_hyperparameter_beyond_the_inputs_dtype_is_refused_not_a_nan_output():
    """A finite Python number past float32's range became inf in the float32 computation: model.apply returned NaN
    and fit diverged at its first epoch."""
    model = jaxnn.Sequential((jaxnn.Dense(5, "linear", {"a": 1e300}),))
    params = model.init(jax.random.key(0), n_features=4)
    with pytest.raises(ValueError, match=r"hyperparameter 'a'=1e\+300 of activation 'linear' is beyond float32's"):
        model.apply(params, np.ones((2, 4), np.float32))
    with jax.enable_x64(True):  # float64 holds it
        np.testing.assert_array_equal(jaxnn.linear(np.ones(2), a=1e300), [1e300, 1e300])
    # a threshold only compares: past the range, every finite input is below it (or above), as the step says
    np.testing.assert_array_equal(jaxnn.binary_step(np.ones(2, np.float32), threshold=1e39), [0.0, 0.0])
    np.testing.assert_array_equal(jaxnn.binary_step(np.ones(2, np.float32), threshold=-1e39), [1.0, 1.0])
