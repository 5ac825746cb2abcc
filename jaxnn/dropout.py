"""Inverted dropout: the mask op with its hand-written rule, and the masks the training loop draws.

The op.  With a 0/1 mask ``m`` (1: the unit is kept) and the rate ``p`` (the probability of dropping a unit),
inverted dropout scales what it keeps so that the expected output is the input::

    y = x · m / (1 − p)            E_m[y] = x · (1 − p) / (1 − p) = x

and the rule (derived in ``docs/derivations.md``; ``g = ∂L/∂y``) is the vector-Jacobian product for every
primal::

    ∂L/∂x = g · m / (1 − p)        ∂L/∂m = g · x / (1 − p)        ∂L/∂p = Σ g · x · m / (1 − p)²

Training reads the first alone: the mask is a random draw and the rate a setting, neither a parameter, so no
gradient flows into them (JAX drops the other two, and XLA never computes them).  The mask is held fixed for
the step: its forward and backward passes see the same ``m``.

Where it runs.  During training only, after the activation of every hidden layer (never after the output
layer): the compiled loop (``jaxnn._loop``) draws the masks of each step from that step's key
(:func:`step_key`: the epoch's key folded with a stream tag and the step's index), so a run is reproducible
and a fit split into calls equals the unsplit fit.  Prediction (``model.apply``, the estimators' ``predict``)
and the validation score of the stopping rule never apply it.  The rates are data (one per hidden layer and
member), not part of the compiled program, so a grid over them compiles once; a rate of 0 keeps every unit.
A run without dropout (every rate 0) does not have the op in its program at all.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn._checks import is_real
from jaxnn.layers import Params, Sequential
from jaxnn.ops import make_op

__all__ = ["DROPOUT_STREAM", "Dropout", "dropout", "dropout_rates", "is_dropout_rate", "keep_mask", "step_key"]

# The stream of dropout keys inside an epoch's key.  Not 0 or 1: with JAX's threefry, fold_in(key, i) is
# split(key)[i], and the epoch's shuffle draws from split(epoch_key); ASCII "drop".
DROPOUT_STREAM = 0x64726F70


def _dropout_forward(x, mask, rate):
    """y = x·m/(1 − p)"""
    return x * mask / (1 - rate)


def _dropout_backward(g, y, x, mask, rate):
    """With g = ∂L/∂y (x's shape), the mask of x's shape and a scalar rate p:
    ∂L/∂x = g·m/(1 − p),   ∂L/∂m = g·x/(1 − p),   ∂L/∂p = Σ g·x·m/(1 − p)².
    """
    keep = 1 - rate
    return g * mask / keep, g * x / keep, jnp.reshape(jnp.sum(g * x * mask) / keep**2, jnp.shape(rate))


dropout = make_op(_dropout_forward, _dropout_backward, name="dropout")
dropout.__doc__ = (
    "Inverted dropout: y = x·m/(1 − p) with a 0/1 mask m of x's shape and a scalar rate p; backward "
    "∂L/∂x = g·m/(1 − p) (∂L/∂m = g·x/(1 − p), ∂L/∂p = Σ g·x·m/(1 − p)², which training never reads)."
)


def keep_mask(key: jax.Array, rate, shape: tuple[int, ...], dtype) -> jax.Array:
    """A 0/1 mask of ``shape`` in ``dtype``: 1 (keep) where a uniform draw ``u ∈ [0, 1)`` is at least ``rate``,
    so with probability ``1 − rate``; a rate of 0 keeps everything.  The draw and the comparison are in float32
    whatever ``dtype`` is, so a float64 (or bfloat16) network drops the units a float32 one drops with that key.

    With JAX's threefry in its partitionable mode (the default) element ``(i, j)`` of a ``(n, units)`` draw
    depends on the key and its flat index alone, so row ``i``'s mask does not change with rows appended after
    it (the padding rows of a population or a sharded batch)."""
    return (jax.random.uniform(key, shape, jnp.float32) >= jnp.asarray(rate).astype(jnp.float32)).astype(dtype)


def step_key(epoch_key: jax.Array, step) -> jax.Array:
    """The key of the masks of step ``step`` of an epoch (its index among the epoch's batches; 0 for a full
    batch): ``fold_in(fold_in(epoch_key, DROPOUT_STREAM), step)``.  Hidden layer ``l`` draws from
    ``fold_in(step_key, l)``."""
    return jax.random.fold_in(jax.random.fold_in(epoch_key, DROPOUT_STREAM), step)


class Dropout(NamedTuple):
    """One step's dropout: its key (:func:`step_key`) and the rates, one per hidden layer ``(n_hidden,)``."""

    key: jax.Array
    rates: jax.Array

    def apply(self, a: jax.Array, index: int, *, custom_rules: bool = True, columns: bool = False) -> jax.Array:
        """Hidden layer ``index``'s activations ``a`` with its mask applied.

        ``a`` is batch-first ``(n, units)``, or with ``columns=True`` the column layout ``(units, n)``; the mask
        is drawn batch-first either way (and transposed), so both layouts drop the same units.  With
        ``custom_rules=False`` the plain forward runs (JAX's autodiff then differentiates it)."""
        shape = (a.shape[1], a.shape[0]) if columns else a.shape
        rate = self.rates[index]
        mask = keep_mask(jax.random.fold_in(self.key, index), rate, shape, a.dtype)
        function = dropout if custom_rules else dropout.forward
        return function(a, mask.T if columns else mask, rate)

    def forward(self, model: Sequential, params: Params, x: jax.Array, *, custom_rules: bool = True) -> jax.Array:
        """``model.apply(params, x)`` (batch-first) with this step's masks after every hidden layer."""
        last = len(model.layers) - 1
        for index, (layer, layer_params) in enumerate(zip(model.layers, params, strict=True)):
            x = layer.apply(layer_params, x, custom_rules=custom_rules)
            if index < last:
                x = self.apply(x, index, custom_rules=custom_rules)
        return x


def is_dropout_rate(value) -> bool:
    """A probability of dropping a unit: a real number in [0, 1) that float32, in which the masks are drawn
    (:func:`keep_mask`), does not round to 1 (0.99999997 would drop every unit: at most 0.99999994)."""
    return is_real(value) and 0 <= value < 1 and np.float32(value) < 1


def dropout_rates(value, n_hidden: int, n_members: int | None = None) -> np.ndarray:
    """Dropout rates, each in ``[0, 1)``: one number for every hidden layer or a sequence of one per hidden
    layer, and for a population (``n_members`` = P) also ``(P, n_hidden)``, one row per member (``(P, 1)``: one
    rate per member for every hidden layer).  Returned as float64 ``(n_hidden,)``, or ``(P, n_hidden)`` for a
    population; a TypeError for what is not numbers, else a ValueError saying what is allowed."""
    array = np.asarray(value) if not isinstance(value, str | bytes) else np.asarray(None)
    if array.dtype.kind not in "iuf":  # bools, text, None, ragged lists
        raise TypeError(f"dropout must be a number in [0, 1) or a sequence of one per hidden layer, got {value!r:.80}")
    array = array.astype(np.float64)
    if array.ndim > (1 if n_members is None else 2):
        raise ValueError(
            f"dropout must be one rate, one per hidden layer ({n_hidden})"
            + ("" if n_members is None else f" or one row per member ({n_members}, {n_hidden})")
            + f"; got shape {array.shape}"
        )
    if not all(map(is_dropout_rate, array.ravel().tolist())):  # NaN fails too
        raise ValueError(
            "dropout rates must be in [0, 1) (the probability of dropping a unit; float32, in which the masks are "
            f"drawn, must not round a rate to 1: at most 0.99999994), got {value!r:.80}"
        )
    if n_hidden == 0 and np.any(array > 0):
        raise ValueError("dropout applies to the hidden layers' outputs, and the model has no hidden layer")
    if array.ndim == 1 and array.shape[0] != n_hidden:
        raise ValueError(
            f"dropout lists {array.shape[0]} rates but the model has {n_hidden} hidden layers; give one rate for "
            "all hidden layers or exactly one per hidden layer"
            + ("" if n_members is None else f", or one row per member: shape {_per_member_shapes(n_members, n_hidden)}")
        )
    if array.ndim == 2 and (array.shape[0] != n_members or array.shape[1] not in (1, n_hidden)):
        also = "" if n_hidden == 1 else f" (or ({n_members}, 1): one rate per member for every hidden layer)"
        raise ValueError(f"dropout per member must have shape ({n_members}, {n_hidden}){also}, got {array.shape}")
    shape = (n_hidden,) if n_members is None else (n_members, n_hidden)
    return np.broadcast_to(array, shape).copy()


def _per_member_shapes(n_members: int, n_hidden: int) -> str:
    return f"({n_members}, 1)" if n_hidden == 1 else f"({n_members}, {n_hidden}) or ({n_members}, 1)"
