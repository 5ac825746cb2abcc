"""Loss functions with hand-derived backward rules.

Layout: ``pred`` and ``target`` are ``(n_samples, n_outputs)`` (1-D arrays are
read as one output column); ``weight`` is an optional ``(n_samples,)`` vector of
per-sample weights (0 masks a padded row out).

Every loss is built the same way: a per-sample loss ``l_i(p_i, y_i)`` with its
per-sample derivatives ``∂l_i/∂p_i`` and ``∂l_i/∂y_i``, then a reduction over
samples whose rule is shared:

* ``"mean"``:  L = Σ_i w_i l_i / S with S = Σ_i w_i (the plain mean when w = 1).
  Backward, for an incoming scalar cotangent g:
  ∂L/∂p_i = g (w_i/S) ∂l_i/∂p_i,   ∂L/∂y_i = g (w_i/S) ∂l_i/∂y_i,   ∂L/∂w_i = g (l_i − L)/S.
* ``"sum"``:   L = Σ_i w_i l_i.
  Backward: ∂L/∂p_i = g w_i ∂l_i/∂p_i,   ∂L/∂y_i = g w_i ∂l_i/∂y_i,   ∂L/∂w_i = g l_i.

The seeds' ``1/m`` in ``dW = dZ·Aᵀ/m`` lives here, in the mean's ``w_i/S``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn.ops import Op, as_real_array, look_up, make_op

__all__ = [
    "LOSSES",
    "Loss",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "get_loss",
    "make_loss",
    "mean_squared_error",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "sum_of_squares",
]

CLIP_EPS = 1e-7  # the seeds' clip: probabilities are kept in [1e-7, 1 - 1e-7]


class Loss:
    """A loss ``L(pred, target, weight=None) -> scalar`` whose gradient is hand-written.

    Attributes:
      name: the loss's name.
      op: the underlying :class:`~jaxnn.ops.Op` over the primals ``(pred, target, weight)``.
      from_logits: True when ``pred`` is the raw last-layer output (fused losses).
      reduction: ``"mean"`` (weighted mean over samples) or ``"sum"``.

    A call checks its arguments: lists and NumPy arrays are converted, integer or boolean predictions
    are promoted to a float type (the targets' when they are floating), and targets are cast to the
    predictions' dtype.  Non-numeric or complex input is a TypeError; no samples, no outputs, shapes
    that differ, or per-sample weights that are negative, NaN or infinite (or, for a mean, all zero)
    are a ValueError.  Weight values can only be checked when they are concrete (not inside ``jax.jit``).
    """

    def __init__(self, name: str, op: Op, from_logits: bool, reduction: str = "mean"):
        self.name = name
        self.op = op
        self.from_logits = from_logits
        self.reduction = reduction

    def __call__(self, pred, target, weight=None):
        """The loss; under ``jax.grad`` its hand-written rule runs."""
        return self.op(*self._checked(pred, target, weight))

    def forward(self, pred, target, weight=None):
        """The same loss in plain jax.numpy (for autodiff references)."""
        return self.op.forward(*self._checked(pred, target, weight))

    def _checked(self, pred, target, weight):
        pred, target = self._real("predictions", pred), self._real("targets", target)
        if not jnp.issubdtype(pred.dtype, jnp.floating):
            floating = jnp.issubdtype(target.dtype, jnp.floating)
            pred = pred.astype(target.dtype if floating else jnp.result_type(float))
        if pred.ndim == 1 and target.ndim == 1:
            pred, target = pred[:, None], target[:, None]
        if pred.ndim != 2 or pred.shape != target.shape:
            raise ValueError(
                f"{self.name}: predictions have shape {tuple(pred.shape)} but targets have shape "
                f"{tuple(target.shape)}; both must be (n_samples, n_outputs) and equal "
                "(one-hot encode class labels for a multi-class loss)"
            )
        if 0 in pred.shape:
            raise ValueError(
                f"{self.name}: predictions and targets of shape {tuple(pred.shape)} hold no values; "
                "a loss needs at least one sample and one output"
            )
        target = target.astype(pred.dtype)
        if weight is None:
            return pred, target, jnp.ones(pred.shape[0], pred.dtype)
        weight = self._real("sample weights", weight).astype(pred.dtype)
        if weight.shape != (pred.shape[0],):
            raise ValueError(
                f"{self.name}: sample weights have shape {tuple(weight.shape)}, expected ({pred.shape[0]},) "
                "— one weight per sample"
            )
        if not isinstance(weight, jax.core.Tracer):
            self._check_weight_values(np.asarray(weight))
        return pred, target, weight

    def _real(self, what: str, value) -> jax.Array:
        """``value`` as a JAX array of real numbers (float, int or bool), or a TypeError naming it."""
        return as_real_array(value, f"{self.name}: {what}")

    def _check_weight_values(self, weight: np.ndarray) -> None:
        if not np.all(np.isfinite(weight)) or np.any(weight < 0):
            raise ValueError(
                f"{self.name}: sample weights must be finite and non-negative, got "
                f"{'NaN or infinity' if not np.all(np.isfinite(weight)) else 'negative values'}"
            )
        if self.reduction == "mean" and not np.sum(weight) > 0:
            raise ValueError(
                f"{self.name}: the sample weights sum to 0, so the weighted mean is undefined; "
                "give at least one sample a positive weight"
            )

    def __repr__(self) -> str:
        return f"Loss({self.name})"


PerSample = Callable[[jax.Array, jax.Array], jax.Array]
PerSampleGrads = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def make_loss(
    name: str,
    per_sample: PerSample,
    per_sample_grads: PerSampleGrads,
    *,
    reduction: Literal["mean", "sum"] = "mean",
    from_logits: bool = False,
) -> Loss:
    """Build a :class:`Loss` from ``l_i`` and its derivatives (see the module docstring)."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")

    def forward(pred, target, weight):
        losses = per_sample(pred, target)
        total = jnp.sum(weight * losses)
        return total / jnp.sum(weight) if reduction == "mean" else total

    def backward(g, loss, pred, target, weight):
        losses = per_sample(pred, target)
        d_pred, d_target = per_sample_grads(pred, target)
        if reduction == "mean":
            total_weight = jnp.sum(weight)
            scale = g * weight / total_weight
            d_weight = g * (losses - loss) / total_weight
        else:
            scale = g * weight
            d_weight = g * losses
        return scale[:, None] * d_pred, scale[:, None] * d_target, d_weight

    forward.__name__ = name
    return Loss(name, make_op(forward, backward, name=name), from_logits, reduction)


# Sum of squares (seed 001): l_i = Σ_j (p_ij − y_ij)², summed over samples.
def _squares(p, y):
    return jnp.sum((p - y) ** 2, axis=-1)


def _squares_grads(p, y):
    """∂l/∂p = 2(p − y), ∂l/∂y = −2(p − y)."""
    d = 2.0 * (p - y)
    return d, -d


sum_of_squares = make_loss("sum_of_squares", _squares, _squares_grads, reduction="sum")


# Mean squared error: l_i = (1/k) Σ_j (p_ij − y_ij)², averaged over samples.
def _mean_squares(p, y):
    return jnp.mean((p - y) ** 2, axis=-1)


def _mean_squares_grads(p, y):
    """∂l/∂p = 2(p − y)/k, ∂l/∂y = −2(p − y)/k, k = n_outputs."""
    d = 2.0 * (p - y) / p.shape[-1]
    return d, -d


mean_squared_error = make_loss("mean_squared_error", _mean_squares, _mean_squares_grads)


# Binary cross-entropy (seed 001b) on probabilities, clipped like the seed:
# c = clip(p, ε, 1 − ε), l_i = −Σ_j [y log c + (1 − y) log(1 − c)].
def _clipped(p):
    return jnp.clip(p, CLIP_EPS, 1.0 - CLIP_EPS)


def _inside_clip(p):
    """1 where the clip is the identity (its derivative), 0 where it holds p at a bound."""
    return ((p > CLIP_EPS) & (p < 1.0 - CLIP_EPS)).astype(p.dtype)


def _binary_ce(p, y):
    c = _clipped(p)
    return -jnp.sum(y * jnp.log(c) + (1.0 - y) * jnp.log1p(-c), axis=-1)


def _binary_ce_grads(p, y):
    """∂l/∂p = (c − y) / (c(1 − c)) inside the clip, 0 outside; ∂l/∂y = log(1 − c) − log c."""
    c = _clipped(p)
    d_pred = _inside_clip(p) * (c - y) / (c * (1.0 - c))
    return d_pred, jnp.log1p(-c) - jnp.log(c)


binary_cross_entropy = make_loss("binary_cross_entropy", _binary_ce, _binary_ce_grads)


# Categorical cross-entropy with the seed's semantics: rows normalised,
# q = p / Σ_j p_j, c = clip(q, ε, 1 − ε), l_i = −Σ_j y_ij log c_ij.
def _categorical_ce(p, y):
    q = p / jnp.sum(p, axis=-1, keepdims=True)
    return -jnp.sum(y * jnp.log(_clipped(q)), axis=-1)


def _categorical_ce_grads(p, y):
    """Chain rule through the clip and the normalisation.

    u_j = ∂l/∂q_j = −y_j / c_j inside the clip (0 outside);
    q_j = p_j / s with s = Σ_k p_k gives ∂q_j/∂p_i = (δ_ij − q_j)/s, so
    ∂l/∂p_i = (u_i − Σ_j u_j q_j) / s;   ∂l/∂y_j = −log c_j.
    """
    s = jnp.sum(p, axis=-1, keepdims=True)
    q = p / s
    c = _clipped(q)
    u = -_inside_clip(q) * y / c
    d_pred = (u - jnp.sum(u * q, axis=-1, keepdims=True)) / s
    return d_pred, -jnp.log(c)


categorical_cross_entropy = make_loss("categorical_cross_entropy", _categorical_ce, _categorical_ce_grads)


# Softmax and cross-entropy fused, on logits z: l_i = Σ_j y_ij (logsumexp(z_i) − z_ij).
def _logsumexp(z):
    top = jnp.max(z, axis=-1, keepdims=True)
    return top + jnp.log(jnp.sum(jnp.exp(z - top), axis=-1, keepdims=True))


def _softmax_ce(z, y):
    return jnp.sum(y * (_logsumexp(z) - z), axis=-1)


def _softmax_ce_grads(z, y):
    """∂l/∂z = softmax(z)·Σ_j y_j − y (= p − y for one-hot rows); ∂l/∂y = logsumexp(z) − z."""
    lse = _logsumexp(z)
    p = jnp.exp(z - lse)
    return p * jnp.sum(y, axis=-1, keepdims=True) - y, lse - z


softmax_cross_entropy = make_loss("softmax_cross_entropy", _softmax_ce, _softmax_ce_grads, from_logits=True)


# Sigmoid and binary cross-entropy fused, on logits z:
# l_i = Σ_j softplus(z) − y z, with softplus(z) = max(z, 0) + log(1 + e^{−|z|}).
def _sigmoid_bce(z, y):
    softplus = jnp.maximum(z, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(z)))
    return jnp.sum(softplus - y * z, axis=-1)


def _sigmoid_bce_grads(z, y):
    """∂l/∂z = σ(z) − y;  ∂l/∂y = −z."""
    return jax.nn.sigmoid(z) - y, -z


sigmoid_binary_cross_entropy = make_loss(
    "sigmoid_binary_cross_entropy", _sigmoid_bce, _sigmoid_bce_grads, from_logits=True
)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        sum_of_squares,
        mean_squared_error,
        binary_cross_entropy,
        categorical_cross_entropy,
        softmax_cross_entropy,
        sigmoid_binary_cross_entropy,
    )
}


def get_loss(name: str | Loss) -> Loss:
    """Look a loss up by name; an unknown name is a ValueError listing the known ones."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str):
        raise TypeError(f"loss must be a name such as 'categorical_cross_entropy' or a Loss, got {type(name).__name__}")
    return look_up(LOSSES, name, "loss")
