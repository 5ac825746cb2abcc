"""Activation functions, each a forward with its hand-derived backward rule.

All act elementwise except softmax, which acts along the last (feature) axis.
In every rule ``g`` is the incoming cotangent ``∂L/∂y`` and the rule returns
``∂L/∂x``.  Elementwise rules are ``∂L/∂x = g · f'(x)``; softmax's is a vector–Jacobian product
over each row, ``gᵀJ``, computed in O(k) without the k×k Jacobian.

Kinks: where the derivative does not exist (ReLU and leaky ReLU at 0) the rule
uses the one-sided slope of the ``x <= 0`` branch, the left one: 0 for ReLU, as ``jax.nn.relu``,
and b for leaky ReLU (``jax.nn.leaky_relu`` takes the right slope there).  Binary step's derivative is 0
wherever it exists and does not exist at its jump; its rule returns 0 there too, so no gradient flows through it.

Hyperparameters follow the seeds: ``linear(x, a)``, ``relu(x, a)`` (``a·x`` for
``x > 0``), ``leaky_relu(x, a, b)`` (``a·x`` for ``x > 0``, ``b·x`` otherwise),
``binary_step(x, threshold)``, each passed by keyword (``leaky_relu(x, a=1.0, b=0.1)``).

Calling an activation checks its input first: lists and NumPy arrays are converted, integer and
boolean inputs are promoted to JAX's default float type (so every activation returns floats and
can be differentiated), and anything else that is not real numbers is a TypeError naming the
activation.  Hyperparameters must be finite real numbers the activation knows; they are used as Python
floats, so a NumPy scalar does not change the dtype of the output (``np.float64(0.1)`` times a float32 array
would be float64 with ``jax_enable_x64`` on).

Each activation also states three facts about itself (:class:`Activation`): whether it is elementwise,
where its kinks are and what values it can output.  Adding an activation means writing its forward and rule
here, registering it in ``ACTIVATIONS`` with the facts (they are required arguments), a test case and a line
in the docs; the training layout, the estimators, the CLI and the gradient checks read the rest from the
object.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnn._checks import as_real_array, look_up
from jaxnn.ops import Op

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Interval",
    "binary_step",
    "exp",
    "get_activation",
    "identity",
    "is_elementwise",
    "leaky_relu",
    "linear",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]


class Activation(Op):
    """An activation: an :class:`~jaxnn.ops.Op` of one input that also states the facts about itself that
    the rest of jaxnn reads instead of keeping its own lists.

    Attributes:
      elementwise: True when ``y_i`` depends on ``x_i`` alone (every activation but softmax).  The
        training loop's column layout applies elementwise activations as they are and hands any other
        one the batch-first view; tests use it to pick the right reference.
      kinks(**hyper): the points where the activation is not differentiable, for those hyperparameters
        (finite-difference checks sample away from them).
      output_range(**hyper): the :class:`Interval` of the values it outputs for finite inputs, in exact
        arithmetic (an end is attained when some input gives it: ReLU's 0, not the sigmoid's; hyperparameters not
        given take the forward's defaults); a loss on probabilities refuses a last layer whose outputs can leave
        its domain (:func:`jaxnn.train.checked_model_and_loss`).

    A call checks its input and its hyperparameters before the op runs.
    """

    def __init__(self, forward, backward, name: str, *, elementwise: bool, kinks, outputs):
        super().__init__(forward, backward, name)
        parameters = list(inspect.signature(forward).parameters.values())[1:]
        self._hyperparameters = tuple(p.name for p in parameters)
        self._defaults = {p.name: p.default for p in parameters}
        self.elementwise = bool(elementwise)
        self._kinks = kinks
        self._outputs = outputs

    def __call__(self, x, *positional, **hyper):
        """Apply the activation; under ``jax.grad`` the hand-written backward runs.  Hyperparameters are passed by
        keyword; any passed by position are a TypeError saying how to pass them."""
        if positional:
            raise TypeError(self._positional_problem(positional, hyper))
        x, hyper = self._checked_input(x), self.check_hyperparameters(hyper)
        for key, value in hyper.items():  # computed in x's dtype: a factor of 1e300 is inf in float32, outputs NaN
            if key != "threshold" and abs(value) > float(jnp.finfo(x.dtype).max):  # a threshold only compares
                raise ValueError(
                    f"hyperparameter {key!r}={value!r} of activation {self.name!r} is beyond {x.dtype}'s range (the "
                    "input's dtype, which it is computed in); give a smaller value, or float64 input (jax.enable_x64)"
                )
        return super().__call__(x, **hyper)

    def _positional_problem(self, positional: tuple, keywords: dict) -> str:
        """Why ``activation(x, *positional, **keywords)`` is refused, with the keyword call it meant where there is
        one (a hyperparameter given both ways is named instead)."""
        names = self._hyperparameters
        got = f"got {len(positional)} positional argument{'s' if len(positional) != 1 else ''} after x"
        if not names:
            return f"activation {self.name!r} takes no hyperparameters; {got}"
        if len(positional) > len(names):
            plural = "s" if len(names) != 1 else ""
            return f"activation {self.name!r} takes {len(names)} hyperparameter{plural} ({', '.join(names)}); {got}"
        meant = dict(zip(names, positional, strict=False))
        both = [name for name in meant if name in keywords]
        if both:
            return f"activation {self.name!r}: {', '.join(both)} given by position and by keyword; {got}"
        call = ", ".join(f"{name}={value!r}" for name, value in {**meant, **keywords}.items())
        return f"activation {self.name!r} takes its hyperparameters by keyword, {self.name}(x, {call}); {got}"

    def kinks(self, **hyper) -> tuple[float, ...]:
        """Where the activation is not differentiable, for these hyperparameters (``()`` when smooth)."""
        return tuple(float(point) for point in self._kinks(**self.check_hyperparameters(hyper)))

    def output_range(self, **hyper) -> Interval:
        """The :class:`Interval` of the values it outputs for finite inputs, for these hyperparameters."""
        return self._outputs(**(self._defaults | self.check_hyperparameters(hyper)))

    def _checked_input(self, x):
        x = as_real_array(x, f"activation {self.name!r}: its input")
        if not jnp.issubdtype(x.dtype, jnp.floating):  # ints and bools: every activation returns floats
            x = x.astype(jnp.result_type(float))
        if not self.elementwise and (x.ndim == 0 or x.shape[-1] == 0):
            raise ValueError(
                f"activation {self.name!r} acts along the last (feature) axis, which input of shape "
                f"{tuple(x.shape)} lacks or has empty; pass (n_samples, n_features) with n_features >= 1"
            )
        return x

    def check_hyperparameters(self, hyper: dict) -> dict:
        """``hyper`` with its values as Python floats, if every entry is a hyperparameter this activation takes
        with a finite real number (NumPy scalars included); else a TypeError (unknown name, not a number) or
        ValueError (not finite) naming it."""
        takes = ", ".join(self._hyperparameters) or "none"
        for key, value in hyper.items():
            if key not in self._hyperparameters:
                raise TypeError(f"activation {self.name!r} has no hyperparameter {key!r}; it takes: {takes}")
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"hyperparameter {key!r} of activation {self.name!r} must be a Python number, "
                    f"got {type(value).__name__}; hyperparameters are static and are not differentiated"
                )
            if not math.isfinite(value):
                raise ValueError(f"hyperparameter {key!r} of activation {self.name!r} must be finite, got {value!r}")
        return {key: float(value) for key, value in hyper.items()}


def _activation(forward, backward, *, name: str, elementwise: bool, kinks, outputs) -> Activation:
    """An activation with its facts; all are required so that a new activation cannot leave one out."""
    return Activation(forward, backward, name, elementwise=elementwise, kinks=kinks, outputs=outputs)


def _smooth(**hyper) -> tuple[float, ...]:
    return ()


def _kink_at_zero(**hyper) -> tuple[float, ...]:
    return (0.0,)


class Interval(NamedTuple):
    """The real numbers from ``low`` to ``high`` (``±inf``: unbounded), each end included when ``attained``."""

    low: float
    high: float
    low_attained: bool = True
    high_attained: bool = True

    def within(self, other: Interval) -> bool:
        """Whether every number of this interval lies in ``other``."""
        low_ok = self.low > other.low or (self.low == other.low and (other.low_attained or not self.low_attained))
        high_ok = self.high < other.high or (
            self.high == other.high and (other.high_attained or not self.high_attained)
        )
        return low_ok and high_ok

    def union(self, other: Interval) -> Interval:
        """The smallest interval holding both (an end attained if the interval giving it attains it)."""
        low, high = min(self.low, other.low), max(self.high, other.high)
        return Interval(
            low,
            high,
            any(part.low_attained for part in (self, other) if part.low == low),
            any(part.high_attained for part in (self, other) if part.high == high),
        )

    def __str__(self) -> str:
        return f"{'[' if self.low_attained else '('}{self.low:g}, {self.high:g}{']' if self.high_attained else ')'}"


REALS = Interval(-math.inf, math.inf, False, False)
OPEN_UNIT = Interval(0.0, 1.0, False, False)  # sigmoid, softmax: 0 and 1 only in the limit


def _any_real(**hyper) -> Interval:
    return REALS


def _open_unit_interval(**hyper) -> Interval:
    return OPEN_UNIT


def _ray(slope: float, x_positive: bool) -> Interval:
    """The values of ``slope·x`` over ``x > 0`` (``x_positive``: 0 itself is not reached) or over ``x <= 0``
    (0 is, at ``x = 0``)."""
    direction = slope if x_positive else -slope
    zero = not x_positive
    if direction > 0:
        return Interval(0.0, math.inf, zero, False)
    if direction < 0:
        return Interval(-math.inf, 0.0, False, zero)
    return Interval(0.0, 0.0)


def _piecewise_linear_outputs(a: float, b: float) -> Interval:
    """The outputs of ``a·x`` for ``x > 0`` and ``b·x`` for ``x <= 0``: the union of the two rays."""
    return _ray(a, True).union(_ray(b, False))


def is_elementwise(op: Op) -> bool:
    """Whether ``op`` is known to act elementwise; an op that does not say so is treated as acting along
    the feature axis (the safe assumption)."""
    return isinstance(op, Activation) and op.elementwise


def _identity_forward(x):
    """y = x"""
    return x


def _identity_backward(g, y, x):
    """∂L/∂x = g"""
    return (g,)


identity = _activation(
    _identity_forward, _identity_backward, name="identity", elementwise=True, kinks=_smooth, outputs=_any_real
)
identity.__doc__ = "Identity: y = x; backward ∂L/∂x = g."


def _linear_forward(x, a=1.0):
    """y = a·x"""
    return a * x


def _linear_backward(g, y, x, a=1.0):
    """∂L/∂x = a·g"""
    return (a * g,)


linear = _activation(
    _linear_forward,
    _linear_backward,
    name="linear",
    elementwise=True,
    kinks=_smooth,
    outputs=lambda a: _piecewise_linear_outputs(a, a),
)
linear.__doc__ = "Linear: y = a·x (default a = 1); backward ∂L/∂x = a·g."


def _sigmoid_forward(x):
    """y = 1 / (1 + e^{-x}) (XLA's logistic, which neither overflows nor loses tiny values)."""
    return jax.nn.sigmoid(x)


def _sigmoid_backward(g, y, x):
    """σ'(x) = σ(x)(1 − σ(x)) = y(1 − y), so ∂L/∂x = g·y·(1 − y), from the output alone.

    Where σ saturates, 1 − y keeps few digits (in float32 y·(1 − y) is 17% off at x = 15, and 0 from x ≈ 17, where
    y rounds to 1): an error below the dtype's machine epsilon, and the one the next rule expects.  A loss on
    the probabilities divides by the same rounded 1 − y (binary cross-entropy's (c − y)/(c(1 − c))), so the chain
    cancels to σ(z) − y; the fully precise σ(x)·σ(−x) does not cancel against it (binary cross-entropy's float32
    gradient after a sigmoid was 14% off at z = 15, y = 0).  JAX's derivative of jax.nn.sigmoid computes the same."""
    return (g * y * (1 - y),)


sigmoid = _activation(
    _sigmoid_forward, _sigmoid_backward, name="sigmoid", elementwise=True, kinks=_smooth, outputs=_open_unit_interval
)
sigmoid.__doc__ = "Sigmoid: y = 1/(1+e^{-x}); backward ∂L/∂x = g·y·(1−y)."


def _tanh_forward(x):
    """y = tanh(x)"""
    return jnp.tanh(x)


def _tanh_backward(g, y, x):
    """tanh'(x) = 1 − tanh²(x), so ∂L/∂x = g·(1 − y²)."""
    return (g * (1.0 - y * y),)


tanh = _activation(
    _tanh_forward,
    _tanh_backward,
    name="tanh",
    elementwise=True,
    kinks=_smooth,
    outputs=lambda: Interval(-1.0, 1.0, False, False),
)
tanh.__doc__ = "Tanh: y = tanh(x); backward ∂L/∂x = g·(1−y²)."


def _binary_step_forward(x, threshold=0.0):
    """y = 1 if x > threshold else 0 (NaN stays NaN: neither comparison holds)"""
    return jnp.where(x > threshold, 1.0, jnp.where(x <= threshold, 0.0, x)).astype(x.dtype)


def _binary_step_backward(g, y, x, threshold=0.0):
    """The step is flat on both sides of its jump (and undefined at it): ∂L/∂x = 0."""
    return (jnp.zeros_like(g),)


binary_step = _activation(
    _binary_step_forward,
    _binary_step_backward,
    name="binary_step",
    elementwise=True,
    kinks=lambda threshold=0.0: (threshold,),
    outputs=lambda threshold=0.0: Interval(0.0, 1.0),
)
binary_step.__doc__ = (
    "Binary step: y = 1 if x > threshold else 0; backward ∂L/∂x = 0 (no gradient flows through a step)."
)


def _relu_forward(x, a=1.0):
    """y = a·x for x > 0, else 0 (NaN stays NaN, as in jax.nn.relu: the test is x <= 0)"""
    return jnp.where(x <= 0, 0.0, a * x).astype(x.dtype)


def _relu_backward(g, y, x, a=1.0):
    """∂L/∂x = a·g where x > 0, else 0 (0 at the kink, as jax.nn.relu)."""
    return (jnp.where(x > 0, a * g, 0.0).astype(g.dtype),)


relu = _activation(
    _relu_forward,
    _relu_backward,
    name="relu",
    elementwise=True,
    kinks=_kink_at_zero,
    outputs=lambda a: _piecewise_linear_outputs(a, 0.0),
)
relu.__doc__ = "ReLU: y = a·x for x > 0 else 0 (default a = 1); backward ∂L/∂x = a·g where x > 0, else 0."


def _leaky_relu_forward(x, a=1.0, b=0.01):
    """y = a·x for x > 0, b·x otherwise"""
    return jnp.where(x > 0, a * x, b * x)


def _leaky_relu_backward(g, y, x, a=1.0, b=0.01):
    """∂L/∂x = a·g where x > 0, b·g otherwise (the x ≤ 0 slope at the kink)."""
    return (jnp.where(x > 0, a * g, b * g),)


leaky_relu = _activation(
    _leaky_relu_forward,
    _leaky_relu_backward,
    name="leaky_relu",
    elementwise=True,
    kinks=_kink_at_zero,
    outputs=_piecewise_linear_outputs,
)
leaky_relu.__doc__ = (
    "Leaky ReLU: y = a·x for x > 0, b·x otherwise (defaults a = 1, b = 0.01); "
    "backward ∂L/∂x = a·g where x > 0, else b·g."
)


def _exp_forward(x):
    """y = e^x (overflows to inf past x ≈ 88.7 in float32, 709.8 in float64)."""
    return jnp.exp(x)


def _exp_backward(g, y, x):
    """(e^x)' = e^x, so ∂L/∂x = g·y: the rule needs only the output."""
    return (g * y,)


exp = _activation(
    _exp_forward,
    _exp_backward,
    name="exp",
    elementwise=True,
    kinks=_smooth,
    outputs=lambda: Interval(0.0, math.inf, False, False),
)
exp.__doc__ = "Exponential: y = e^x, the inverse of the log link (scikit-learn's Poisson output); backward ∂L/∂x = g·y."


def _softmax_forward(x):
    """y_j = e^{x_j} / Σ_k e^{x_k} along the last axis, shifted by max(x) so e^{·} never overflows."""
    shifted = x - jnp.max(x, axis=-1, keepdims=True)
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _softmax_backward(g, y, x):
    """Jacobian ∂y_j/∂x_i = y_j(δ_ij − y_i), so ∂L/∂x_i = Σ_j g_j y_j(δ_ij − y_i) = y_i(g_i − Σ_j g_j y_j)."""
    return (y * (g - jnp.sum(g * y, axis=-1, keepdims=True)),)


softmax = _activation(
    _softmax_forward, _softmax_backward, name="softmax", elementwise=False, kinks=_smooth, outputs=_open_unit_interval
)
softmax.__doc__ = "Softmax over the last axis: y = e^x/Σe^x; backward ∂L/∂x = y·(g − Σ g·y)."


ACTIVATIONS: dict[str, Op] = {
    "identity": identity,
    "linear": linear,
    "sigmoid": sigmoid,
    "logistic": sigmoid,
    "tanh": tanh,
    "binary_step": binary_step,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "softmax": softmax,
    "exp": exp,
}


def get_activation(name: str) -> Op:
    """Look an activation up by name; an unknown name is a ValueError listing the known ones."""
    if isinstance(name, Op):
        return name
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name such as 'relu' or an Op, got {type(name).__name__}")
    return look_up(ACTIVATIONS, name, "activation")
