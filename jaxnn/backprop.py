"""The explicit, seed-style backward pass over a :class:`~jaxnn.layers.Sequential`.

This is backpropagation written out the way the seeds teach it, with no
``jax.grad`` anywhere: the forward pass keeps, for every layer, its input
``a_prev``, its pre-activation ``z`` and its output ``a``; the backward pass
starts from the loss rule's ``∂L/∂a_L`` and walks the layers in reverse:

    ∂L/∂z   = activation rule (∂L/∂a, a, z)
    ∂L/∂W   = a_prevᵀ · ∂L/∂z
    ∂L/∂b   = Σ_rows ∂L/∂z
    ∂L/∂a_prev = ∂L/∂z · Wᵀ        (handed to the layer before)

It uses the very same rule functions that ``jax.grad`` runs through
``jax.custom_vjp``, so ``loss_and_grads`` must agree with ``jax.grad`` of the
model (the test suite checks both against autodiff of the plain forward).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnn._checks import as_real_array, floating_weights
from jaxnn.layers import Params, Sequential, activate, dense
from jaxnn.losses import Loss

__all__ = ["LayerCache", "backward", "forward_with_caches", "loss_and_grads"]


class LayerCache(NamedTuple):
    """What one layer's backward needs from its forward."""

    a_prev: jax.Array  # the layer's input
    z: jax.Array  # a_prev @ W + b, the pre-activation
    a: jax.Array  # activation(z)


def forward_with_caches(model: Sequential, params: Params, x: jax.Array) -> tuple[jax.Array, list[LayerCache]]:
    """Run the plain forward pass, keeping each layer's cache."""
    if not isinstance(model, Sequential):  # else "'str' object has no attribute 'check'"
        raise TypeError(f"model must be a jaxnn.Sequential, got {type(model).__name__}")
    a = as_real_array(x, "input")  # as model.apply reads it (text failed inside JAX)
    model.check(params, a.shape)
    caches = []
    for layer, p in zip(model.layers, params, strict=True):
        z = dense.forward(a, p["W"], p["b"])
        out = activate(layer, z, custom_rules=False)
        caches.append(LayerCache(a_prev=a, z=z, a=out))
        a = out
    return a, caches


def backward(model: Sequential, params: Params, caches: list[LayerCache], d_output: jax.Array) -> Params:
    """Walk the layers in reverse from ``∂L/∂output``; return ``∂L/∂params`` in the params' layout and dtypes.

    ``caches`` are what :func:`forward_with_caches` returned for these params, and ``d_output`` has the shape of
    the output it returned; anything else is a TypeError or ValueError saying so (shapes are static, so this
    costs nothing inside ``jax.jit``)."""
    g = _checked_walk(model, params, caches, d_output)
    grads: Params = [{} for _ in model.layers]
    for index in reversed(range(len(model.layers))):
        layer, p, cache = model.layers[index], params[index], caches[index]
        (dz,) = layer.activation_op.backward(g, cache.a, cache.z, **dict(layer.activation_kwargs))
        g, d_w, d_b = dense.backward(dz, cache.z, cache.a_prev, p["W"], p["b"])
        # each gradient in its parameter's dtype, as jax.grad gives it (float64 input promotes float32 weights)
        grads[index] = {"W": d_w.astype(jnp.result_type(p["W"])), "b": d_b.astype(jnp.result_type(p["b"]))}
    return grads


def _checked_walk(model: Sequential, params: Params, caches, d_output) -> jax.Array:
    """``d_output`` as an array, once ``model``, ``params``, ``caches`` and it fit together (they failed with an
    IndexError, a TypeError on ``None``, or JAX's broadcasting error, which names none of them)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a jaxnn.Sequential, got {type(model).__name__}")
    n_layers = len(model.layers)
    if (
        not isinstance(caches, list | tuple)
        or len(caches) != n_layers
        or not all(isinstance(cache, LayerCache) for cache in caches)
    ):
        got = f"{len(caches)} entries" if isinstance(caches, list | tuple) else type(caches).__name__
        raise TypeError(
            f"caches must be the list forward_with_caches(model, params, x) returned, one LayerCache per layer "
            f"({n_layers} here); got {got}"
        )
    model.check(params, jnp.shape(caches[0].a_prev))
    d_output = as_real_array(d_output, "d_output")
    if d_output.shape != jnp.shape(caches[-1].a):
        raise ValueError(
            f"d_output (∂L/∂output) must have the shape of the model's output, {jnp.shape(caches[-1].a)}, got "
            f"{d_output.shape}"
        )
    return d_output


def loss_and_grads(
    model: Sequential, params: Params, x: jax.Array, y: jax.Array, loss: str | Loss, weight: jax.Array | None = None
) -> tuple[jax.Array, Params]:
    """Forward with caches, the loss, then the reversed walk: returns ``(L, ∂L/∂params)``.  The model and the loss
    are checked as a pair as ``jaxnn.fit`` checks them (:func:`jaxnn.train.checked_model_and_loss`): a loss on
    logits after a layer that applies its activation, or a loss on probabilities after a layer whose outputs
    leave its domain, is a ValueError."""
    from jaxnn.train import checked_model_and_loss  # the training modules; imported here, only when called

    model, loss = checked_model_and_loss(model, loss)
    floating_weights(params)  # integer weights' gradients were cut to whole numbers
    output, caches = forward_with_caches(model, params, x)
    pred, target, weight = loss.checked_arguments(output, y, weight)
    value = loss.op.forward(pred, target, weight)
    d_pred, _, _ = loss.op.backward(jnp.ones((), value.dtype), value, pred, target, weight)
    return loss.reported(value, pred, target, weight), backward(model, params, caches, d_pred.reshape(output.shape))
