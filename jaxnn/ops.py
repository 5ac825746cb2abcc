"""How an op is made: a plain forward plus a backward rule derived by hand.

The contract, stated once:

* ``forward(*primals, **hyper) -> output`` is written in plain ``jax.numpy``.
* ``backward(cotangent, output, *primals, **hyper) -> tuple`` returns one
  cotangent per primal: the vector-Jacobian product ``cotangentᵀ · ∂output/∂primal``.
  It is derived by hand; it never calls ``jax.grad``, ``jax.vjp`` or ``jax.jacobian``.
* ``hyper`` are keyword-only Python numbers (a slope, a threshold). They are
  static: they select the function, they are not differentiated.

``make_op`` wires the pair through ``jax.custom_vjp``, so ``jax.grad`` of any
program built from ops runs the hand-written rules.  The forward's output is
saved for the backward pass together with the primals; XLA drops whatever a
rule does not read, so a rule that only needs its output (sigmoid, softmax)
keeps only that alive.

Example, a user's own op ``f(x) = x³`` with ``f'(x) = 3x²``::

    cube = make_op(lambda x: x**3, lambda g, y, x: (3 * x**2 * g,), name="cube")
    jax.grad(lambda x: cube(x).sum())(jnp.arange(3.0))   # runs the rule above
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

__all__ = ["Op", "as_real_array", "look_up", "make_op", "positive_int"]

T = TypeVar("T")


class Op:
    """A differentiable function whose gradient is a hand-written rule.

    Attributes:
      name: a short name used in error messages and jaxprs.
      forward: the plain forward, ``forward(*primals, **hyper)``.
      backward: the rule, ``backward(cotangent, output, *primals, **hyper)``.
    """

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., tuple], name: str):
        self.forward = forward
        self.backward = backward
        self.name = name
        self._with_rule = _custom_vjp(forward, backward, name)

    def __call__(self, *primals: Any, **hyper: float) -> Any:
        """Apply the op; under ``jax.grad`` the hand-written backward runs."""
        return self._with_rule(_freeze(hyper), *primals)

    def vjp(self, cotangent: Any, *primals: Any, **hyper: float) -> tuple:
        """The hand-written rule in ``check_vjp``'s form ``backward(cotangent, *primals)``."""
        output = self.forward(*primals, **hyper)
        return self.backward(cotangent, output, *primals, **hyper)

    def __repr__(self) -> str:
        return f"Op({self.name})"


def make_op(forward: Callable[..., Any], backward: Callable[..., tuple], *, name: str | None = None) -> Op:
    """Make an op from a plain forward and a hand-derived backward (see the module docstring)."""
    if not callable(forward) or not callable(backward):
        raise TypeError("make_op needs two callables: forward(*primals) and backward(cotangent, output, *primals)")
    return Op(forward, backward, name or getattr(forward, "__name__", "op"))


def _freeze(hyper: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """Hyperparameters become a sorted, hashable tuple so jax can treat them as static."""
    for key, value in hyper.items():
        if isinstance(value, jax.Array | jax.core.Tracer):
            raise TypeError(
                f"hyperparameter {key!r} must be a Python number, got an array; "
                "hyperparameters are static and are not differentiated"
            )
    return tuple(sorted(hyper.items()))


def _custom_vjp(forward: Callable, backward: Callable, name: str) -> Callable:
    def with_rule(hyper, *primals):
        return forward(*primals, **dict(hyper))

    def with_rule_fwd(hyper, *primals):
        output = forward(*primals, **dict(hyper))
        return output, (output, primals)

    def with_rule_bwd(hyper, saved, cotangent):
        output, primals = saved
        cotangents = backward(cotangent, output, *primals, **dict(hyper))
        if not isinstance(cotangents, tuple) or len(cotangents) != len(primals):
            raise TypeError(
                f"the backward rule of op {name!r} must return a tuple with one cotangent "
                f"per primal ({len(primals)}), got {type(cotangents).__name__}"
            )
        return cotangents

    with_rule.__name__ = name
    rule = jax.custom_vjp(with_rule, nondiff_argnums=(0,))
    rule.defvjp(with_rule_fwd, with_rule_bwd)
    return rule


def look_up(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``; a name that is not there is a ValueError listing the known names, in sorted order."""
    if isinstance(name, str) and name in table:
        return table[name]
    known = ", ".join(sorted(table))
    raise ValueError(f"unknown {what} {name!r}; choose one of: {known}")


def as_real_array(value, what: str) -> jax.Array:
    """``value`` as a JAX array of real numbers (float, int and bool dtypes kept), else a TypeError
    "``{what}`` must be real numbers, got dtype ...".  Lists, NumPy arrays and scalars are converted;
    JAX arrays (tracers included) pass as they are."""
    if not isinstance(value, jax.Array):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):  # ragged lists and the like
            value = np.asarray(None)
    if not any(jnp.issubdtype(value.dtype, kind) for kind in (jnp.floating, jnp.integer, jnp.bool_)):
        raise TypeError(f"{what} must be real numbers, got dtype {value.dtype}")
    return jnp.asarray(value)


def positive_int(value, what: str) -> int:
    """``value`` as an int if it is a whole number ≥ 1 (Python or NumPy integer, not a bool); else a
    ValueError "``{what}`` must be a positive integer"."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)
