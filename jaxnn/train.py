"""Training: a jitted gradient-descent step and a ``fit`` whose epochs run in one ``lax.scan``.

Gradients come from ``jax.value_and_grad`` of the model and loss; since every
jaxnn op is a ``jax.custom_vjp``, that runs the hand-written rules.  Any
``optax.GradientTransformation`` is accepted; the default is plain gradient
descent, ``θ ← θ − η·∂L/∂θ``.

A step whose loss, gradients or updated parameters are not finite is not
applied: the parameters stay at the last finite values, the rest of the
history is NaN and ``FitResult.diverged`` is True.  Nothing NaN is kept.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn.layers import Params, Sequential
from jaxnn.losses import Loss, get_loss

__all__ = ["FitResult", "fit", "gradient_descent", "train_step"]


def gradient_descent(learning_rate: float) -> optax.GradientTransformation:
    """Plain gradient descent as an optax transformation: ``update = −η·g`` (no state)."""
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")

    def init(params):
        return optax.EmptyState()

    def update(grads, state, params=None):
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return optax.GradientTransformation(init, update)


class FitResult(NamedTuple):
    """What :func:`fit` returns."""

    params: Params
    opt_state: optax.OptState
    history: jax.Array  # (epochs,) mean training loss of each epoch, NaN once diverged
    diverged: jax.Array  # bool scalar: a step went non-finite and training stopped there


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _step(model, loss, optimizer, params, opt_state, ok, x, y, weight):
    """One guarded update on one batch; returns the new carry and the batch loss."""
    value, grads = jax.value_and_grad(lambda p: loss(model.apply(p, x), y, weight))(params)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    ok = ok & jnp.isfinite(value) & _all_finite(new_params)
    keep = partial(jax.tree.map, lambda new, old: jnp.where(ok, new, old))
    return keep(new_params, params), keep(new_opt_state, opt_state), ok, value


@partial(jax.jit, static_argnums=(0, 1, 2))
def train_step(model: Sequential, loss: Loss, optimizer, params, opt_state, x, y, weight=None):
    """One update on one batch: returns ``(params, opt_state, loss_before_update)``.

    A non-finite step is not applied (the old params and state come back with a NaN loss).
    """
    if weight is None:
        weight = jnp.ones(x.shape[0], x.dtype)
    params, opt_state, _, value = _step(model, loss, optimizer, params, opt_state, jnp.bool_(True), x, y, weight)
    return params, opt_state, value


def _epoch_batches(key, n_samples: int, batch_size: int):
    """Shuffled sample indices in ``(n_batches, batch_size)`` with a 0/1 mask for the padded tail."""
    n_batches = math.ceil(n_samples / batch_size)
    order = jax.random.permutation(key, n_samples)
    padding = n_batches * batch_size - n_samples
    index = jnp.concatenate([order, jnp.zeros(padding, order.dtype)]).reshape(n_batches, batch_size)
    mask = (jnp.arange(n_batches * batch_size) < n_samples).reshape(n_batches, batch_size)
    return index, mask


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _fit_scan(model, loss, optimizer, epochs, batch_size, params, opt_state, x, y, weight, key, start_epoch):
    n_samples = x.shape[0]

    def full_batch_epoch(carry, _):
        params, opt_state, ok = carry
        params, opt_state, ok, value = _step(model, loss, optimizer, params, opt_state, ok, x, y, weight)
        return (params, opt_state, ok), jnp.where(ok, value, jnp.nan)

    def minibatch_epoch(carry, epoch_key):
        index, mask = _epoch_batches(epoch_key, n_samples, batch_size)

        def batch(carry, batch_index_mask):
            params, opt_state, ok = carry
            idx, m = batch_index_mask
            w = weight[idx] * m
            params, opt_state, ok, value = _step(model, loss, optimizer, params, opt_state, ok, x[idx], y[idx], w)
            return (params, opt_state, ok), (value * jnp.sum(w), jnp.sum(w))

        carry, (weighted, totals) = jax.lax.scan(batch, carry, (index, mask.astype(x.dtype)))
        return carry, jnp.where(carry[2], jnp.sum(weighted) / jnp.sum(totals), jnp.nan)

    if batch_size >= n_samples:
        carry, history = jax.lax.scan(full_batch_epoch, (params, opt_state, jnp.bool_(True)), None, length=epochs)
    else:
        # Epoch e shuffles with fold_in(key, e): a fit split into chunks (start_epoch > 0) sees the same order.
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, start_epoch + jnp.arange(epochs))
        carry, history = jax.lax.scan(minibatch_epoch, (params, opt_state, jnp.bool_(True)), keys)
    params, opt_state, ok = carry
    return FitResult(params, opt_state, history, ~ok)


def _as_2d(name: str, array) -> jax.Array:
    array = np.asarray(array)
    if array.ndim == 1 and name == "y":
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity; clean or impute it before training")
    return array


def fit(
    model: Sequential,
    params: Params,
    x,
    y,
    *,
    loss: str | Loss,
    epochs: int,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 0.01,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    weight=None,
    opt_state: optax.OptState | None = None,
    start_epoch: int = 0,
) -> FitResult:
    """Train ``params`` for ``epochs`` epochs, all inside one compiled ``lax.scan``.

    Args:
      model, params: the model and its starting parameters (not modified).
      x: ``(n_samples, n_features)``; y: ``(n_samples, n_outputs)`` (one-hot for classes).
      loss: a loss name or :class:`~jaxnn.losses.Loss`.
      epochs: number of passes over the data.
      optimizer: any optax transformation; default ``gradient_descent(learning_rate)``.
      batch_size: None for full batch; otherwise minibatches reshuffled every epoch from ``key``
        (the last batch is padded and masked out of the loss).
      key: a ``jax.random`` key, needed for minibatches.
      weight: optional per-sample weights ``(n_samples,)``.
      opt_state: resume from this optimiser state (default: ``optimizer.init(params)``).
      start_epoch: the index of the first epoch, for a fit continued in chunks: epoch ``e`` always
        shuffles with ``jax.random.fold_in(key, e)``, so ``fit(epochs=a+b)`` equals ``fit(epochs=a)``
        followed by ``fit(epochs=b, start_epoch=a, opt_state=...)`` bitwise on CPU.

    Returns:
      A :class:`FitResult` with the trained params, the optimiser state, the per-epoch loss history
      and the divergence flag.  Same inputs and key give bitwise-identical results on CPU.

    Example:
      >>> model = Sequential((Dense(10, "relu"), Dense(3, "softmax")))
      >>> params = model.init(jax.random.key(0), 4)
      >>> result = fit(model, params, x, one_hot_y, loss="categorical_cross_entropy", epochs=500)
    """
    loss = get_loss(loss)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    x, y = _as_2d("x", x), _as_2d("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}; they must match")
    if x.shape[0] == 0:
        raise ValueError("x is empty: fit needs at least one sample")
    model.check(params, x.shape)
    if y.shape[1] != model.n_outputs:
        raise ValueError(
            f"y has {y.shape[1]} columns but the model's last layer has {model.n_outputs} units; "
            "one-hot encode class labels or change the last layer"
        )
    dtype = jax.tree.leaves(params)[0].dtype
    weight = np.ones(x.shape[0]) if weight is None else np.asarray(weight, dtype=float)
    if weight.shape != (x.shape[0],) or not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
        raise ValueError(f"weight must be {x.shape[0]} finite, non-negative numbers with a positive sum")
    if batch_size is None:
        batch_size = x.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if batch_size < x.shape[0] and key is None:
        raise ValueError("minibatch training shuffles every epoch: pass key=jax.random.key(seed)")
    if key is None:
        key = jax.random.key(0)
    optimizer = gradient_descent(learning_rate) if optimizer is None else optimizer
    if opt_state is None:
        opt_state = optimizer.init(params)
    return _fit_scan(
        model,
        loss,
        optimizer,
        epochs,
        min(batch_size, x.shape[0]),
        params,
        opt_state,
        jnp.asarray(x, dtype),
        jnp.asarray(y, dtype),
        jnp.asarray(weight, dtype),
        key,
        jnp.asarray(start_epoch, jnp.uint32),
    )
