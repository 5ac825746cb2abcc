"""``make_op`` / ``Op``: a plain forward plus a hand-written backward, wired through ``jax.custom_vjp``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnn


def _cube_forward(x):
    return x**3


def _cube_backward(g, y, x):
    return (3.0 * x**2 * g,)


cube = jaxnn.make_op(_cube_forward, _cube_backward, name="cube")


def test_jax_grad_runs_the_rule():
    x = jnp.arange(-2.0, 3.0)
    np.testing.assert_allclose(jax.grad(lambda x: cube(x).sum())(x), 3.0 * x**2)
    np.testing.assert_allclose(cube(x), x**3)


def test_a_wrong_rule_is_what_jax_grad_returns():
    """The forward is the cube's; the rule is deliberately not its derivative: jax.grad follows the rule."""
    fake = jaxnn.make_op(_cube_forward, lambda g, y, x: (jnp.full_like(x, 7.0) * g,), name="fake")
    x = jnp.arange(1.0, 4.0)
    np.testing.assert_array_equal(fake(x), cube(x))
    np.testing.assert_array_equal(jax.grad(lambda x: fake(x).sum())(x), jnp.full(3, 7.0))


def test_rule_receives_the_forward_output():
    """``backward(g, output, *primals)``: the output handed to the rule is the forward's."""
    seen = {}

    def backward(g, y, x):
        seen["output"] = y
        return (g,)

    op = jaxnn.make_op(lambda x: 2.0 * x, backward, name="double")
    jax.grad(lambda x: op(x).sum())(jnp.arange(3.0))
    np.testing.assert_array_equal(seen["output"], 2.0 * jnp.arange(3.0))


def test_vjp_is_backward_in_check_vjp_form():
    x, g = jnp.linspace(-1.0, 1.0, 4), jnp.arange(4.0)
    (vjp,) = cube.vjp(g, x)
    (direct,) = cube.backward(g, cube.forward(x), x)
    np.testing.assert_array_equal(vjp, direct)


def test_name_and_repr():
    """The name users see: the attribute, the repr, and the errors a rule's mistakes raise, eagerly and
    under jit (JAX's jaxprs no longer show it under its next custom_vjp implementation, jax_custom_vjp3)."""
    assert cube.name == "cube"
    assert repr(cube) == "Op(cube)"
    assert jaxnn.make_op(_cube_forward, _cube_backward).name == "_cube_forward"
    misshapen = jaxnn.make_op(_cube_forward, lambda g, y, x: (jnp.sum(g * x),), name="misshapen_cube")
    for grad in (jax.grad, lambda f: jax.jit(jax.grad(f))):
        with pytest.raises(TypeError, match=r"backward rule of op 'misshapen_cube' must return .*; got shape"):
            grad(lambda x: misshapen(x).sum())(jnp.ones(3))


def test_make_op_needs_two_callables():
    with pytest.raises(TypeError, match="two callables"):
        jaxnn.make_op(_cube_forward, None)
    with pytest.raises(TypeError, match="two callables"):
        jaxnn.make_op("cube", _cube_backward)


def test_hyperparameters_are_static_python_numbers():
    scale = jaxnn.make_op(lambda x, a=1.0: a * x, lambda g, y, x, a=1.0: (a * g,), name="scale")
    x = jnp.arange(3.0)
    np.testing.assert_array_equal(scale(x, a=2.0), 2.0 * x)
    np.testing.assert_array_equal(jax.grad(lambda x: scale(x, a=-3.0).sum())(x), jnp.full(3, -3.0))
    # Different hyperparameters under one jit: each is its own static configuration.
    both = jax.jit(lambda x: (scale(x, a=2.0), scale(x, a=5.0)))(x)
    np.testing.assert_array_equal(both[0], 2.0 * x)
    np.testing.assert_array_equal(both[1], 5.0 * x)
    with pytest.raises(TypeError, match=r"hyperparameter 'a' must be a Python number, got an array"):
        scale(x, a=jnp.float32(2.0))
    with pytest.raises(TypeError, match=r"hyperparameter 'a' must be a Python number"):
        jax.jit(lambda x, a: scale(x, a=a))(x, 2.0)


def test_rule_returning_a_bare_array_is_a_clear_type_error():
    bare = jaxnn.make_op(_cube_forward, lambda g, y, x: 3.0 * x**2 * g, name="bare")
    with pytest.raises(
        TypeError, match=r"backward rule of op 'bare' must return a tuple with one cotangent per primal"
    ):
        jax.grad(lambda x: bare(x).sum())(jnp.ones(3))


def test_rule_returning_the_wrong_number_of_cotangents_says_how_many():
    """The message gives the length that came back, not just "got tuple"."""
    two = jaxnn.make_op(_cube_forward, lambda g, y, x: (g, g), name="two_cotangents")
    with pytest.raises(
        TypeError,
        match=r"op 'two_cotangents' must return a tuple with one cotangent per primal "
        r"\(1\).*; got a tuple of 2",
    ):
        jax.grad(lambda x: two(x).sum())(jnp.ones(3))


def test_rule_returning_an_integer_cotangent_is_refused():
    """An integer cotangent for a float primal used to be accepted (jax.grad then returned int32)."""
    rounded = jaxnn.make_op(_cube_forward, lambda g, y, x: ((3 * x**2 * g).astype(jnp.int32),), name="rounded")
    with pytest.raises(TypeError, match=r"op 'rounded' must return .*; got dtype int32 for primal 0, which is float32"):
        jax.grad(lambda x: rounded(x).sum())(jnp.ones(3))


@pytest.mark.parametrize(
    "rule",
    [lambda g, x: 3.0 * x**2 * g, lambda g, x: (g, g), lambda g, x: ((3 * x**2 * g)[None],)],
    ids=["bare-array", "two-cotangents", "misshapen"],
)
def test_make_op_and_check_vjp_refuse_a_rule_in_the_same_words(rule):
    """One contract for a rule's result, stated and described by one function wherever it is checked."""
    op = jaxnn.make_op(_cube_forward, lambda g, y, x: rule(g, x), name="cube")
    with pytest.raises(TypeError) as through_grad:
        jax.grad(lambda x: op(x).sum())(jnp.ones(3))
    with pytest.raises(jaxnn.GradcheckError) as through_check:
        jaxnn.check_vjp(_cube_forward, rule, jnp.ones(3))
    assert str(through_grad.value) == "the backward rule of op 'cube' " + str(through_check.value).removeprefix(
        "backward "
    )


def test_ops_compose_with_jit_and_vmap():
    x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
    per_row = jax.vmap(jax.grad(lambda row: cube(row).sum()))(x)
    np.testing.assert_allclose(per_row, 3.0 * x**2)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda x: cube(x).sum()))(x), 3.0 * x**2)


def test_two_primals():
    """A rule returns one cotangent per primal, in order."""
    times = jaxnn.make_op(lambda x, y: x * y, lambda g, out, x, y: (g * y, g * x), name="times")
    x, y = jnp.array([1.0, 2.0]), jnp.array([3.0, 5.0])
    dx, dy = jax.grad(lambda x, y: times(x, y).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(dx, y)
    np.testing.assert_array_equal(dy, x)


def test_a_cotangent_in_another_float_type_comes_back_in_its_primals_dtype():
    """A rule computing in float16 (or float64 under x64) made jax.grad of a float32 input float16 (float64)."""
    square = jaxnn.make_op(lambda a: a * a, lambda g, y, a: ((2 * a * g).astype(jnp.float16),), name="square")
    x = jnp.array([0.5, 1.5], jnp.float32)
    assert jax.grad(lambda v: jnp.sum(square(v)))(x).dtype == jnp.float32
    with jax.enable_x64(True):
        wide = jaxnn.make_op(lambda a: a * a, lambda g, y, a: ((2 * a * g).astype(jnp.float64),), name="wide")
        assert jax.grad(lambda v: jnp.sum(wide(v)))(x).dtype == jnp.float32


def test_a_rule_or_forward_with_the_wrong_signature_names_the_op_and_the_signature_it_needs():
    """Python's own "<lambda>() takes 2 positional arguments but 3 were given" named neither the op nor what it
    must take (a rule that leaves out the output y is the usual slip)."""
    x = jnp.linspace(-1.0, 1.0, 3)
    no_y = jaxnn.make_op(lambda x: x**3, lambda g, x: (3 * x**2 * g,), name="no_y")
    for call in (lambda: jax.grad(lambda x: no_y(x).sum())(x), lambda: no_y.vjp(jnp.ones(3), x)):
        with pytest.raises(TypeError, match=r"op 'no_y' must take \(cotangent, output, \*primals, \*\*hyper\)"):
            call()
    scale = jaxnn.make_op(lambda x, *, a: a * x, lambda g, y, x, *, a: (a * g,), name="scale")
    with pytest.raises(TypeError, match=r"op 'scale' was called with 2 primal\(s\).*by keyword \(op\(x, a=2.0\)\)"):
        scale(x, 2.0)
    positional = jaxnn.make_op(lambda x, a: a * x, lambda g, y, x, a: (a * g,), name="positional")
    with pytest.raises(TypeError, match=r"got a tuple of 1 \(an argument passed by position is a primal"):
        jax.grad(lambda x: positional(x, 2.0).sum())(x)
    with pytest.raises(TypeError, match=r"backward must take \(cotangent, \*primals\).*pass op.vjp"):
        jaxnn.check_vjp(no_y.forward, scale.backward, x)
    with pytest.raises(TypeError, match=r"forward must take the 1 primal\(s\)"):
        jaxnn.check_vjp(lambda x, y: x * y, lambda g, x: (g,), x)


def test_a_none_cotangent_for_an_array_primal_is_named_as_none():
    """A rule returning None for an integer argument (JAX's zero cotangent) was refused with "got shape () for
    primal 1, which has shape (3,)": None has no shape, and the message did not say what came back."""
    power = jaxnn.make_op(lambda x, n: x**n, lambda g, y, x, n: (g * n * x ** (n - 1), None), name="power")
    with pytest.raises(TypeError, match=r"got None for primal 1, which has shape \(3,\) .*jnp\.zeros_like"):
        jax.grad(lambda x: power(x, jnp.array([1, 2, 3])).sum())(jnp.ones(3))
