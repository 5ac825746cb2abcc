"""How an op is made: a plain forward plus a backward rule derived by hand.

The contract, stated once:

* ``forward(*primals, **hyper) -> output`` is written in plain ``jax.numpy``.
* ``backward(cotangent, output, *primals, **hyper) -> tuple`` returns a tuple with one
  cotangent per primal: the vector-Jacobian product ``cotangentᵀ · ∂output/∂primal``, of
  its primal's shape, floating-point where the primal is.  It is derived by hand; it never
  calls ``jax.grad``, ``jax.vjp`` or ``jax.jacobian``.  A result that breaks this is refused
  with one description (:func:`cotangent_problem`) by ``make_op``, :func:`jaxnn.check_vjp`
  and :func:`jaxnn.losses.make_loss` (its ``per_sample_grads`` pair).
* ``hyper`` are keyword-only Python numbers (a slope, a threshold). They are
  static: they select the function, they are not differentiated.

``make_op`` wires the pair through ``jax.custom_vjp``, so ``jax.grad`` of any
program built from ops runs the hand-written rules.  The forward's output is
saved for the backward pass together with the primals; XLA drops whatever a
rule does not read, so a rule that only needs its output (sigmoid, tanh, softmax, exp)
keeps only that alive.

Example, a user's own op ``f(x) = x³`` with ``f'(x) = 3x²``::

    cube = make_op(lambda x: x**3, lambda g, y, x: (3 * x**2 * g,), name="cube")
    jax.grad(lambda x: cube(x).sum())(jnp.arange(3.0))   # runs the rule above
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

__all__ = [
    "COTANGENT_CONTRACT",
    "Op",
    "backward_contract",
    "call_by_contract",
    "cotangent_problem",
    "forward_contract",
    "make_op",
]


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
        return call_by_contract(
            self.forward,
            primals,
            hyper,
            lambda: forward_contract(self.name, self.forward, primals, hyper),
            call=lambda *args, **kwargs: self._with_rule(_freeze(kwargs), *args),
        )

    def vjp(self, cotangent: Any, *primals: Any, **hyper: float) -> tuple:
        """The hand-written rule in ``check_vjp``'s form ``backward(cotangent, *primals)``."""
        output = call_by_contract(
            self.forward, primals, hyper, lambda: forward_contract(self.name, self.forward, primals, hyper)
        )
        return call_by_contract(
            self.backward, (cotangent, output, *primals), hyper, lambda: backward_contract(self.name, primals, hyper)
        )

    def __repr__(self) -> str:
        return f"Op({self.name})"


def make_op(forward: Callable[..., Any], backward: Callable[..., tuple], *, name: str | None = None) -> Op:
    """Make an op from a plain forward and a hand-derived backward (see the module docstring)."""
    if not callable(forward) or not callable(backward):
        raise TypeError("make_op needs two callables: forward(*primals) and backward(cotangent, output, *primals)")
    if name is not None and not (isinstance(name, str) and name):  # Python's own: "__name__ must be set to a string"
        raise TypeError(f"name must be a non-empty string (it appears in messages and jaxprs), got {name!r:.80}")
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
        cotangents = call_by_contract(
            backward, (cotangent, output, *primals), dict(hyper), lambda: backward_contract(name, primals, dict(hyper))
        )
        return _checked_cotangents(name, cotangents, primals)

    with_rule.__name__ = name
    rule = jax.custom_vjp(with_rule, nondiff_argnums=(0,))
    rule.defvjp(with_rule_fwd, with_rule_bwd)
    return rule


def _checked_cotangents(name: str, cotangents, primals: tuple) -> tuple:
    """The rule's cotangents, each floating one in its primal's dtype (JAX's contract for a cotangent: a rule that
    computes in another float type, e.g. float64 from a NumPy scalar under x64, would otherwise change the
    gradient's dtype); a TypeError naming the op and what came back where :func:`cotangent_problem` finds one
    (JAX's own message names neither)."""
    problem = cotangent_problem(cotangents, primals)
    if problem is not None:
        hint = ""
        if isinstance(cotangents, tuple | list) and len(cotangents) < len(primals):
            hint = " (an argument passed by position is a primal: pass a hyperparameter by keyword, op(x, a=2.0))"
        raise TypeError(
            f"the backward rule of op {name!r} {COTANGENT_CONTRACT.format(n=len(primals))}; got {problem}{hint}"
        )
    return tuple(_in_dtype_of(primal, cotangent) for cotangent, primal in zip(cotangents, primals, strict=True))


COTANGENT_CONTRACT = (
    "must return a tuple with one cotangent per primal ({n}), each of its primal's shape, "
    "floating-point where the primal is (e.g. multiply by g)"
)
"""The contract of a backward rule's result, as every refusal of one states it (``{n}``: the number of primals)."""


def cotangent_problem(cotangents, primals: tuple, names: tuple[str, ...] | None = None) -> str | None:
    """What breaks the contract of a backward rule's result, in words that follow "got", or None if nothing does.

    The contract (``jax.custom_vjp``'s, so a rule checked against it works through ``jax.grad``): a tuple of one
    cotangent per primal, each with its primal's shape, and of a floating dtype where the primal is floating (a
    cotangent of an integer type is no gradient).  ``names`` name the primals in the answer (default
    ``primal 0``, ``primal 1``, …).  Shapes and dtypes are static, so under ``jax.jit`` this runs while tracing.
    """
    names = names or tuple(f"primal {index}" for index in range(len(primals)))
    if not isinstance(cotangents, tuple) or len(cotangents) != len(primals):
        if isinstance(cotangents, tuple | list):
            return f"a {type(cotangents).__name__} of {len(cotangents)}"
        return "one array" if isinstance(cotangents, jax.Array | np.ndarray) else type(cotangents).__name__
    for name, cotangent, primal in zip(names, cotangents, primals, strict=True):
        expected = jnp.shape(primal)
        if cotangent is None:  # JAX's "no gradient": taken for a scalar, as before; an array's is named
            if expected == ():
                continue
            return (
                f"None for {name}, which has shape {expected} (where it has no gradient, return jnp.zeros_like of it)"
            )
        shape = jnp.shape(cotangent)
        if shape != expected:
            return f"shape {shape} for {name}, which has shape {expected}"
        dtype, primal_dtype = jnp.result_type(cotangent), jnp.result_type(primal)
        if jnp.issubdtype(primal_dtype, jnp.floating) and not jnp.issubdtype(dtype, jnp.floating):
            return f"dtype {dtype} for {name}, which is {primal_dtype}"
    return None


def call_by_contract(
    function: Callable, args: tuple, kwargs: dict, contract: Callable[[], str], call: Callable | None = None
) -> Any:
    """``function(*args, **kwargs)`` (or ``call(*args, **kwargs)``, a call that runs ``function`` on them: traced,
    under a custom rule); where ``function``'s signature cannot take those arguments, a TypeError saying
    ``contract()`` (what it must take) and Python's words.  Python's alone ("<lambda>() takes 2 positional arguments
    but 3 were given") named neither the op nor the signature it needs.  A TypeError raised inside ``function``
    propagates as it is: the signature is inspected only after a failure, so a call that works costs nothing."""
    try:
        return (call or function)(*args, **kwargs)
    except TypeError as error:
        if _binds(function, args, kwargs):
            raise
        raise TypeError(f"{contract()}; Python said: {error}") from error


def _binds(function: Callable, args: tuple, kwargs: dict) -> bool:
    """Whether ``function``'s signature takes ``args`` and ``kwargs`` (True where it has none to inspect)."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): nothing to say beyond Python's own error
        return True
    return True


def forward_contract(name: str, forward: Callable, primals: tuple, hyper: dict) -> str:
    """Why ``forward`` of op ``name`` could not be called with these primals and hyperparameters."""
    given = f"{len(primals)} primal(s)" + (f" and hyperparameters {sorted(hyper)}" if hyper else "")
    return (
        f"op {name!r} was called with {given}, which its forward{_signature_of(forward)} cannot take; primals are "
        "passed by position and hyperparameters by keyword (op(x, a=2.0))"
    )


def backward_contract(name: str, primals: tuple, hyper: dict) -> str:
    """Why the backward rule of op ``name`` could not be called: the signature every rule must have."""
    extra = f", {', '.join(f'{key}=…' for key in sorted(hyper))}" if hyper else ""
    return (
        f"the backward rule of op {name!r} must take (cotangent, output, *primals, **hyper), here "
        f"(g, y, {len(primals)} primal(s){extra}): the output y comes second even where the rule does not read it"
    )


def _signature_of(function: Callable) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return ""


def _in_dtype_of(primal, cotangent):
    """A floating primal's cotangent in the primal's dtype; any other as it came."""
    dtype = jnp.result_type(primal)
    if jnp.issubdtype(dtype, jnp.floating) and jnp.result_type(cotangent) != dtype:
        return jnp.asarray(cotangent).astype(dtype)
    return cotangent
