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

Each loss also states what it is for (:class:`Loss`): its ``task`` (``"regression"``, ``"binary"`` or
``"categorical"``), whether it takes logits, and the activation that turns the network's raw output
into what the loss compares with the targets (``output_activation``).  The output heads of the
estimators and of ``jaxnn-train`` (``jaxnn.heads``) are built from these facts alone, so adding a loss
means writing it here, registering it in ``LOSSES`` and documenting it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn._checks import as_real_array, largest_safe_sum, look_up, loss_weights_usable, summing_type
from jaxnn.activations import REALS, Interval
from jaxnn.loss_checks import class_rows_usable, outputs_usable, predictions_usable, target_values_usable
from jaxnn.ops import Op, cotangent_problem, make_op

__all__ = [
    "LOSSES",
    "Loss",
    "binary_cross_entropy",
    "binary_log_loss",
    "categorical_cross_entropy",
    "get_loss",
    "half_poisson_deviance",
    "log_loss",
    "make_loss",
    "mean_squared_error",
    "poisson",
    "scikit_learn_squared_error",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "squared_error",
    "sum_of_squares",
]

CLIP_EPS = 1e-7  # the seeds' clip: probabilities are kept in [1e-7, 1 - 1e-7]
TASKS = ("regression", "binary", "categorical")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "softmax", "exp")


class Loss:
    """A loss ``L(pred, target, weight=None) -> scalar`` whose gradient is hand-written.

    Attributes:
      name: the loss's name.
      op: the underlying :class:`~jaxnn.ops.Op` over the primals ``(pred, target, weight)``.
      task: ``"regression"`` (real-valued targets), ``"binary"`` (0/1 targets, one column per label)
        or ``"categorical"`` (one-hot rows, one class per sample).
      from_logits: True when ``pred`` is the raw last-layer output (fused losses).
      output_activation: the activation name that maps the network's raw output to the quantity the
        loss is about: ``"softmax"`` (class probabilities), ``"sigmoid"`` (a probability per column),
        ``"exp"`` (a positive mean, e.g. of counts) or ``"identity"``.  A loss on logits (for ``exp``: on
        the log of the mean) applies it inside itself; any other loss expects the last layer to apply it.
      reduction: ``"mean"`` (weighted mean over samples) or ``"sum"``.
      nonnegative_targets: True when the targets must be ``>= 0`` (counts, for the Poisson losses); a call
        with concrete negative targets is then a ValueError.
      reported_per_sample: None, or a per-sample ``r_i(pred, target)`` whose reduction is the value the loss
        reports while its gradient stays the op's: the value is ``stop_gradient(R) + (L − stop_gradient(L))``, ``R``
        exactly for a finite ``L``, so ``jax.grad`` (and autodiff of :meth:`forward`) differentiates ``L`` alone.
        For scikit-learn's losses: the log-loss, whose value clips the probabilities and whose gradient is ``p − y``
        regardless (:data:`log_loss`), and the estimators' squared error, which reports the mean over k targets and
        steps on their sum (:data:`scikit_learn_squared_error`).  :meth:`differentiated` is ``L``.

    A call checks its arguments: lists and NumPy arrays are converted, integer or boolean predictions
    are promoted to a float type (the targets' when they are floating), and targets are cast to the
    predictions' dtype.  Non-numeric or complex input is a TypeError; no samples, no outputs, shapes
    that differ, or per-sample weights that are negative, NaN or infinite (or, for a mean, all zero)
    are a ValueError, and so are targets outside ``[0, 1]`` for a binary or categorical loss (:meth:`check_targets`),
    predictions that cannot be probabilities for a loss on probabilities (a row of zeros included: it has no
    normalisation) and negative means for a loss on a mean.  Values can only be
    checked when they are concrete (not inside ``jax.jit``, ``jax.grad`` or ``jax.vmap``).
    """

    def __init__(
        self,
        name: str,
        op: Op,
        *,
        task: str,
        from_logits: bool,
        output_activation: str,
        reduction: str,
        nonnegative_targets: bool = False,
        reported_per_sample: PerSample | None = None,
    ):
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {', '.join(OUTPUT_ACTIVATIONS)}, got {output_activation!r}"
            )
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.name = name
        self.op = op
        self.task = task
        self.from_logits = from_logits
        self.output_activation = output_activation
        self.reduction = reduction
        self.nonnegative_targets = bool(nonnegative_targets)
        self.reported_per_sample = reported_per_sample

    @property
    def last_layer_activation(self) -> str:
        """The activation the network's last layer applies for this loss: ``identity`` for a loss on
        logits (the loss applies ``output_activation`` itself), else ``output_activation``."""
        return "identity" if self.from_logits else self.output_activation

    @property
    def prediction_domain(self) -> Interval:
        """The :class:`~jaxnn.activations.Interval` a last layer's outputs must lie in for this loss (the check of a
        network's last activation against it): ``[0, 1]`` for probabilities per column (``output_activation``
        sigmoid; the clip takes 0 and 1), ``(0, inf)`` for class probabilities (softmax: the loss normalises each
        row, which a row of zeros cannot be) and for a positive mean (exp: its log is taken), every real number for
        a loss on logits or on real values.  A direct call checks the values themselves and takes the zeros an
        underflowed softmax or exp gives, short of a row of zeros (:meth:`checked_arguments`)."""
        if self.from_logits or self.output_activation == "identity":
            return REALS
        if self.output_activation == "sigmoid":
            return Interval(0.0, 1.0)
        return Interval(0.0, math.inf, False, False)

    def __call__(self, pred, target, weight=None):
        """The loss; under ``jax.grad`` its hand-written rule runs."""
        arguments = self.checked_arguments(pred, target, weight)
        return self.reported(self.op(*arguments), *arguments)

    def forward(self, pred, target, weight=None):
        """The same loss in plain jax.numpy (for autodiff references)."""
        arguments = self.checked_arguments(pred, target, weight)
        return self.reported(self.op.forward(*arguments), *arguments)

    def differentiated(self, pred, target, weight=None):
        """The function whose gradient the loss's rule computes, in plain jax.numpy: the reported value itself unless
        ``reported_per_sample`` reports another (the referee for finite differences of a loss that does)."""
        return self.op.forward(*self.checked_arguments(pred, target, weight))

    def reported(self, value, pred, target, weight):
        """``value`` (the op's, on checked arguments) as this loss reports it: itself, or with
        ``reported_per_sample`` the reduction ``R`` of those values in its place,
        ``stop_gradient(R) + (value − stop_gradient(value))``: exactly ``R`` for a finite ``value`` (``x − x`` is
        0), its gradient ``value``'s.  (``value + stop_gradient(R − value)`` rounds ``R`` to ``value``'s ulp: on
        unscaled data a float32 fused loss of 1e9 reported a clipped log-loss of 13 as 0.)"""
        if self.reported_per_sample is None:
            return value
        reported = _reduced(self.reported_per_sample(pred, target), weight, self.reduction)
        return jax.lax.stop_gradient(reported) + (value - jax.lax.stop_gradient(value))

    def checked_arguments(self, pred, target, weight=None):
        """``(pred, target, weight)`` as the op takes them, checked and converted (see the class docstring)."""
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
        if not isinstance(target, jax.core.Tracer):
            self.check_targets(target)
        if not isinstance(pred, jax.core.Tracer):
            predictions_usable(self, pred)
        if weight is None:
            if self.reduction == "mean" and not pred.shape[0] <= largest_safe_sum(pred.dtype, pred.shape[0]):
                raise ValueError(
                    f"{self.name}: the mean over {pred.shape[0]} samples divides by their count, beyond "
                    f"{jnp.dtype(pred.dtype).name}'s range (the predictions' dtype); compute the loss in float32"
                )
            return pred, target, jnp.ones(pred.shape[0], pred.dtype)
        with np.errstate(over="ignore"):  # a weight beyond float32's range is named below, not by NumPy's warning
            real = self._real("sample weights", weight)
        if real.shape != (pred.shape[0],):
            raise ValueError(
                f"{self.name}: sample weights have shape {tuple(real.shape)}, expected ({pred.shape[0]},) "
                "— one weight per sample"
            )
        if not isinstance(weight, jax.core.Tracer):  # the values as given, before the cast to pred's dtype
            loss_weights_usable(self.name, np.asarray(weight, np.float64), pred.dtype, mean=self.reduction == "mean")
        return pred, target, real.astype(pred.dtype)

    def _real(self, what: str, value) -> jax.Array:
        """``value`` as a JAX array of real numbers (float, int or bool), or a TypeError naming it."""
        return as_real_array(value, f"{self.name}: {what}")

    def check_targets(self, target, *, rows: bool = False) -> None:
        """A ValueError if concrete targets lie outside what this loss is defined on: ``[0, 1]`` (labels, one-hot
        rows or probabilities) for a binary or categorical loss, ``>= 0`` for counts; outside, the loss has no
        minimum, so training would chase it.  ``jaxnn.fit`` and ``jaxnn.lbfgs.minimize`` call it on their ``y``,
        with ``rows``: a categorical loss's targets must then also be one class per row, rows summing to 1
        (:meth:`check_class_rows`)."""
        target_values_usable(self, target)
        if rows:
            class_rows_usable(self, target)

    def check_class_rows(self, target) -> None:
        """For a categorical loss, a ValueError unless every row of ``target`` is one class (one-hot, or
        probabilities summing to 1): :func:`jaxnn.loss_checks.class_rows_usable`."""
        class_rows_usable(self, target)

    def check_outputs(self, n_outputs: int) -> None:
        """For a categorical loss, a ValueError when the network has one output (the loss is then always 0):
        :func:`jaxnn.loss_checks.outputs_usable`."""
        outputs_usable(self, n_outputs)

    def __reduce__(self):
        """A registered loss pickles as its name, another loss this module defines (the estimators' squared error) as
        its global (so estimators holding one pickle); others as usual."""
        if LOSSES.get(self.name) is self:
            return get_loss, (self.name,)
        if globals().get(self.name) is self:
            return self.name  # pickle stores the global of that name in the module that holds it: jaxnn.losses
        return super().__reduce__()

    def __repr__(self) -> str:
        return f"Loss({self.name})"


PerSample = Callable[[jax.Array, jax.Array], jax.Array]
PerSampleGrads = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def _reduced(losses, weight, reduction: str):
    """The per-sample ``losses`` reduced over samples: ``Σ_i w_i l_i / Σ_i w_i`` (``"mean"``) or ``Σ_i w_i l_i``.

    The sums are taken in float32 at least (:func:`jaxnn._checks.summing_type`) and the result given in the
    losses' dtype: in float16 a mean of 100 over 5,000 samples summed to infinity first (its largest is 65,504)."""
    wide = summing_type(losses.dtype)
    total = jnp.sum(weight.astype(wide) * losses.astype(wide))
    return (total / jnp.sum(weight.astype(wide)) if reduction == "mean" else total).astype(losses.dtype)


def _per_sample_losses(name: str, per_sample: PerSample, pred, target, weight) -> jax.Array:
    """``per_sample(pred, target)`` if it has one loss per sample, the shape of ``weight``; else a ValueError.  A
    scalar (a sum or mean over the samples) was broadcast against the weights, so the loss came out silently
    wrong.  Shapes are static: the check runs while JAX traces, never in the compiled program."""
    losses = per_sample(pred, target)
    if jnp.shape(losses) != jnp.shape(weight):
        raise ValueError(
            f"loss {name!r}: per_sample(pred, target) must return one loss per sample, shape {jnp.shape(weight)}, "
            f"got shape {jnp.shape(losses)}; reduce over the outputs only (e.g. jnp.sum(..., axis=-1)), not the samples"
        )
    return losses


def _per_sample_grads(name: str, per_sample_grads: PerSampleGrads, pred, target) -> tuple[jax.Array, jax.Array]:
    """``per_sample_grads(pred, target)`` if it is a pair of arrays shaped like ``pred`` and ``target`` (a tuple or a
    list), floating-point; else a TypeError naming the loss (a wrong pair failed in unpacking, or was broadcast into
    another shape)."""
    grads = per_sample_grads(pred, target)
    problem = cotangent_problem(tuple(grads) if isinstance(grads, list) else grads, (pred, target), ("pred", "target"))
    if problem is not None:
        raise TypeError(
            f"loss {name!r}: per_sample_grads(pred, target) must return a pair (∂l/∂pred, ∂l/∂target) with the "
            f"shapes of pred and target, {(jnp.shape(pred), jnp.shape(target))}, floating-point; got {problem}"
        )
    return tuple(grads)


def make_loss(
    name: str,
    per_sample: PerSample,
    per_sample_grads: PerSampleGrads,
    *,
    task: Literal["regression", "binary", "categorical"],
    output_activation: Literal["identity", "sigmoid", "softmax", "exp"],
    from_logits: bool = False,
    reduction: Literal["mean", "sum"] = "mean",
    nonnegative_targets: bool = False,
    reported_per_sample: PerSample | None = None,
) -> Loss:
    """Build a :class:`Loss` from ``l_i`` and its derivatives (see the module docstring), reporting the reduction of
    ``reported_per_sample`` in its value's place when given (:class:`Loss`).

    ``task`` and ``output_activation`` are required: they are what the estimators and ``jaxnn-train``
    read to build the output layer, encode the targets and read predictions back.  ``from_logits`` and
    ``nonnegative_targets`` are True or False (a TypeError otherwise).  ``per_sample`` must return one loss per
    sample and ``per_sample_grads`` a floating-point pair shaped like ``(pred, target)``; either is checked, once
    per shape, while JAX traces the loss (a ValueError or TypeError naming the loss).
    """
    if not callable(per_sample) or not callable(per_sample_grads):  # they would fail only at the first call
        raise TypeError("make_loss needs two callables: per_sample(pred, target) and per_sample_grads(pred, target)")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r:.80}")
    for flag, value in (("from_logits", from_logits), ("nonnegative_targets", nonnegative_targets)):
        if not isinstance(value, bool | np.bool_):  # a truthy "no" would have meant True
            raise TypeError(f"{flag} must be True or False, got {value!r:.80}")

    def forward(pred, target, weight):
        return _reduced(_per_sample_losses(name, per_sample, pred, target, weight), weight, reduction)

    def backward(g, loss, pred, target, weight):
        losses = _per_sample_losses(name, per_sample, pred, target, weight)
        d_pred, d_target = _per_sample_grads(name, per_sample_grads, pred, target)
        if reduction == "mean":  # divided in float32 at least, as the forward sums (a float16 Σw passes 65,504)
            wide = summing_type(weight.dtype)
            total_weight = jnp.sum(weight.astype(wide))
            g_wide = jnp.asarray(g).astype(wide)
            scale = (g_wide * weight.astype(wide) / total_weight).astype(weight.dtype)
            d_weight = (g_wide * (losses - loss).astype(wide) / total_weight).astype(weight.dtype)
        else:
            scale = g * weight
            d_weight = g * losses
        return scale[:, None] * d_pred, scale[:, None] * d_target, d_weight

    forward.__name__ = name
    op = make_op(forward, backward, name=name)
    loss = Loss(
        name,
        op,
        task=task,
        from_logits=from_logits,
        output_activation=output_activation,
        reduction=reduction,
        nonnegative_targets=nonnegative_targets,
        reported_per_sample=reported_per_sample,
    )
    loss.__doc__ = _rule_doc(loss, per_sample, per_sample_grads)
    return loss


def _rule_doc(loss: Loss, per_sample: PerSample, per_sample_grads: PerSampleGrads) -> str:
    """A loss's own docstring, its math from one source: the reduction, then the docstrings of ``l_i`` and its rule."""
    reduction = "Σ_i w_i l_i (summed)" if loss.reduction == "sum" else "Σ_i w_i l_i / Σ_i w_i (a weighted mean)"
    reported = loss.reported_per_sample and f"\n\nIts value reports instead: {inspect.getdoc(loss.reported_per_sample)}"
    return (
        f"The loss {loss.name!r}: L = {reduction} over samples (w = 1 without weights), where\n\n"
        f"{inspect.getdoc(per_sample) or 'l_i: undocumented'}\n\nIts hand-written rule per sample (scaled by w_i, "
        f"or w_i/Σw for the mean):\n\n{inspect.getdoc(per_sample_grads) or 'undocumented'}{reported or ''}"
    )


def _squares(p, y):
    """Sum of squares (seed 001): l_i = Σ_j (p_ij − y_ij)², summed over samples."""
    return jnp.sum((p - y) ** 2, axis=-1)


def _squares_grads(p, y):
    """∂l/∂p = 2(p − y), ∂l/∂y = −2(p − y)."""
    d = 2.0 * (p - y)
    return d, -d


sum_of_squares = make_loss(
    "sum_of_squares", _squares, _squares_grads, task="regression", output_activation="identity", reduction="sum"
)


def _mean_squares(p, y):
    """Mean squared error: l_i = (1/k) Σ_j (p_ij − y_ij)², k = n_outputs, averaged over samples."""
    return jnp.mean((p - y) ** 2, axis=-1)


def _mean_squares_grads(p, y):
    """∂l/∂p = 2(p − y)/k, ∂l/∂y = −2(p − y)/k, k = n_outputs."""
    d = 2.0 * (p - y) / p.shape[-1]
    return d, -d


mean_squared_error = make_loss(
    "mean_squared_error", _mean_squares, _mean_squares_grads, task="regression", output_activation="identity"
)


def _half_mean_squares(p, y):
    """Squared error as scikit-learn's MLPRegressor reports it (its squared_loss): l_i = ½·(1/k) Σ_j (p_ij − y_ij)²,
    averaged over samples: half the mean squared error."""
    return 0.5 * jnp.mean((p - y) ** 2, axis=-1)


def _half_mean_squares_grads(p, y):
    """∂l/∂p = (p − y)/k, ∂l/∂y = −(p − y)/k, k = n_outputs."""
    d = (p - y) / p.shape[-1]
    return d, -d


squared_error = make_loss(
    "squared_error", _half_mean_squares, _half_mean_squares_grads, task="regression", output_activation="identity"
)


def _half_squares(p, y):
    """l_i = ½·Σ_j (p_ij − y_ij)², averaged over samples: the squared error scikit-learn's MLPRegressor descends
    (its backward pass starts from p − y for every target)."""
    return 0.5 * jnp.sum((p - y) ** 2, axis=-1)


def _half_squares_grads(p, y):
    """∂l/∂p = p − y, ∂l/∂y = −(p − y)."""
    d = p - y
    return d, -d


# The estimators' squared error, scikit-learn MLPRegressor's pair (jaxnn.heads.scikit_learn_loss): it reports
# squared_error's value, half the mean over all n·k entries, and steps on the gradient of ½·Σ_j, the sum over the k
# targets (k times the mean's; with one target they agree).  Not in LOSSES: once k > 1 its value is not what its rule
# differentiates, and every loss a name looks up has the gradient of its value (log_loss's clip aside).
scikit_learn_squared_error = make_loss(
    "scikit_learn_squared_error",
    _half_squares,
    _half_squares_grads,
    task="regression",
    output_activation="identity",
    reported_per_sample=_half_mean_squares,
)


def _xlogx(y):
    """y·log y, 0 at y = 0 (its limit); the inner where keeps log's input positive so that autodiff of this
    plain forward gives log y + 1 for y > 0 instead of NaN."""
    positive = y > 0
    return jnp.where(positive, y * jnp.log(jnp.where(positive, y, 1.0)), 0.0)


def _y_log_mu(y, mu):
    """y·log μ, 0 where y = 0 (with 0·log 0 = 0, as y log(y/μ) takes it): an exp output that underflowed to μ = 0
    on a zero count is a perfect fit (loss 0), not 0·(−∞) = NaN."""
    positive = y > 0
    return jnp.where(positive, y * jnp.log(jnp.where(positive, mu, 1.0)), 0.0)


def _poisson_on_mean(mu, y):
    """Half Poisson deviance (scikit-learn's poisson_loss), for counts y ≥ 0 with a positive mean μ:
    l_i = Σ_j [y log(y/μ) − y + μ], 0 where μ = y, with 0·log 0 = 0 (so 0 at μ = y = 0)."""
    return jnp.sum(_xlogx(y) - _y_log_mu(y, mu) - y + mu, axis=-1)


def _poisson_on_mean_grads(mu, y):
    """∂l/∂μ = 1 − y/μ, with y/μ = 0 where y = 0 (so 1 at μ = y = 0, not NaN);  ∂l/∂y = log y − log μ (−∞ at
    y = 0, where y log y has a vertical tangent; NaN at μ = y = 0, where the loss, +∞ for every y > 0, has no
    derivative in y)."""
    return 1.0 - y / jnp.where(y > 0, mu, 1.0), jnp.log(y) - jnp.log(mu)


half_poisson_deviance = make_loss(
    "half_poisson_deviance",
    _poisson_on_mean,
    _poisson_on_mean_grads,
    task="regression",
    output_activation="exp",
    nonnegative_targets=True,
)


def _poisson(z, y):
    """Poisson on the log link, fused (scikit-learn's MLPRegressor(loss='poisson')): the network outputs z = log μ
    and μ = e^z, so l_i = Σ_j [y log y − y z − y + e^z], the half deviance with log μ = z."""
    return jnp.sum(_xlogx(y) - y * z - y + jnp.exp(z), axis=-1)


def _poisson_grads(z, y):
    """∂l/∂z = e^z − y = μ − y (the canonical link's p − y);  ∂l/∂y = log y − z (−∞ at y = 0)."""
    return jnp.exp(z) - y, jnp.log(y) - z


poisson = make_loss(
    "poisson",
    _poisson,
    _poisson_grads,
    task="regression",
    output_activation="exp",
    from_logits=True,
    nonnegative_targets=True,
)


def _clipped(p):
    """c = clip(p, ε, 1 − ε) with the seeds' ε = 1e-7."""
    return jnp.clip(p, CLIP_EPS, 1.0 - CLIP_EPS)


def _clip_slope(p):
    """The clip's derivative: 1 strictly inside (ε, 1 − ε), 0 outside, and ½ at a bound itself, the mean of its
    one-sided slopes (what a central finite difference gives there, and JAX's autodiff of ``jnp.clip``, whose
    min and max split a tie evenly)."""
    inside = (p > CLIP_EPS) & (p < 1.0 - CLIP_EPS)
    at_bound = (p == CLIP_EPS) | (p == 1.0 - CLIP_EPS)
    return jnp.where(inside, 1.0, jnp.where(at_bound, 0.5, 0.0)).astype(p.dtype)


def _binary_ce(p, y):
    """Binary cross-entropy (seed 001b) on probabilities, clipped like the seed:
    c = clip(p, ε, 1 − ε), l_i = −Σ_j [y log c + (1 − y) log(1 − c)]."""
    c = _clipped(p)
    return -jnp.sum(y * jnp.log(c) + (1.0 - y) * jnp.log1p(-c), axis=-1)


def _binary_ce_grads(p, y):
    """∂l/∂p = clip′(p) · (c − y) / (c(1 − c)) (clip′: 1 inside the clip, 0 outside, ½ at a bound);
    ∂l/∂y = log(1 − c) − log c."""
    c = _clipped(p)
    d_pred = _clip_slope(p) * (c - y) / (c * (1.0 - c))
    return d_pred, jnp.log1p(-c) - jnp.log(c)


binary_cross_entropy = make_loss(
    "binary_cross_entropy", _binary_ce, _binary_ce_grads, task="binary", output_activation="sigmoid"
)


def _categorical_ce(p, y):
    """Categorical cross-entropy with the seed's semantics: rows normalised,
    q = p / Σ_j p_j, c = clip(q, ε, 1 − ε), l_i = −Σ_j y_ij log c_ij."""
    q = p / jnp.sum(p, axis=-1, keepdims=True)
    return -jnp.sum(y * jnp.log(_clipped(q)), axis=-1)


def _categorical_ce_grads(p, y):
    """Chain rule through the clip and the normalisation.

    u_j = ∂l/∂q_j = −clip′(q_j) · y_j / c_j (clip′: 1 inside the clip, 0 outside, ½ at a bound);
    q_j = p_j / s with s = Σ_k p_k gives ∂q_j/∂p_i = (δ_ij − q_j)/s, so
    ∂l/∂p_i = (u_i − Σ_j u_j q_j) / s;   ∂l/∂y_j = −log c_j.
    """
    s = jnp.sum(p, axis=-1, keepdims=True)
    q = p / s
    c = _clipped(q)
    u = -_clip_slope(q) * y / c
    d_pred = (u - jnp.sum(u * q, axis=-1, keepdims=True)) / s
    return d_pred, -jnp.log(c)


categorical_cross_entropy = make_loss(
    "categorical_cross_entropy",
    _categorical_ce,
    _categorical_ce_grads,
    task="categorical",
    output_activation="softmax",
)


def _shifted(z):
    """s = z − z_max with z_max = max_k z_k along the last axis: softmax(z) = softmax(s) and lse(z) − z_j =
    lse(s) − s_j.  The shift is held constant for autodiff of the plain forward (its derivative cancels exactly)."""
    return z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))


def _logsumexp(s):
    """log Σ_k e^{s_k} along the last axis, for shifted logits s (max 0): in [0, log k] (k entries), as exact as its
    terms.  Not z_max + lse(z − z_max), which rounds the lse to z_max's ulp (1 at |z| = 10⁷ in float32: three equal
    logits' loss, log 3 ≈ 1.10, came out 1)."""
    return jnp.log(jnp.sum(jnp.exp(s), axis=-1, keepdims=True))


def _softmax_ce(z, y):
    """Softmax and cross-entropy fused, on logits z: l_i = Σ_j y_ij (lse(z_i) − z_ij) = Σ_j y_ij (lse(s_i) − s_ij),
    s = z − max z (:func:`_shifted`)."""
    s = _shifted(z)
    return jnp.sum(y * (_logsumexp(s) - s), axis=-1)


def _softmax_ce_grads(z, y):
    """∂l/∂z = softmax(z)·Σ_j y_j − y (= p − y for one-hot rows), p = e^{s − lse(s)};  ∂l/∂y = lse(z) − z =
    lse(s) − s."""
    s = _shifted(z)
    lse = _logsumexp(s)
    p = jnp.exp(s - lse)
    return p * jnp.sum(y, axis=-1, keepdims=True) - y, lse - s


softmax_cross_entropy = make_loss(
    "softmax_cross_entropy",
    _softmax_ce,
    _softmax_ce_grads,
    task="categorical",
    output_activation="softmax",
    from_logits=True,
)


def _sigmoid_bce(z, y):
    """Sigmoid and binary cross-entropy fused, on logits z: l_i = Σ_j [softplus(z) − y z], with
    softplus(z) = max(z, 0) + log(1 + e^{−|z|}), summed as (max(z, 0) − y z) + log(1 + e^{−|z|}): for a confident
    right answer (y = 1, z = 20) the first term is exactly 0 and the loss keeps its last term, 2·10⁻⁹, which
    softplus(z) − y z rounds away in float32."""
    nonnegative = z >= 0
    # |z| and max(z, 0) − y z, each written with the z >= 0 branch at z = 0, so that autodiff of this plain forward
    # gives the derivative σ(0) − y = ½ − y there (jnp.abs and jnp.maximum have no one derivative at 0).
    magnitude = jnp.where(nonnegative, z, -z)
    linear_part = jnp.where(nonnegative, (1.0 - y) * z, -y * z)
    return jnp.sum(linear_part + jnp.log1p(jnp.exp(-magnitude)), axis=-1)


def _sigmoid_bce_grads(z, y):
    """∂l/∂z = σ(z) − y, computed as (1 − y)·σ(z) − y·σ(−z) (equal, as 1 − σ(z) = σ(−z)): for a confident right
    answer (y = 1, z ≫ 0) σ(z) − y cancels to 0 once σ(z) rounds to 1, while −σ(−z) keeps every digit;  ∂l/∂y = −z."""
    return (1.0 - y) * jax.nn.sigmoid(z) - y * jax.nn.sigmoid(-z), -z


sigmoid_binary_cross_entropy = make_loss(
    "sigmoid_binary_cross_entropy",
    _sigmoid_bce,
    _sigmoid_bce_grads,
    task="binary",
    output_activation="sigmoid",
    from_logits=True,
)


# scikit-learn's MLP log-losses: the fused losses' gradients (MLP's p − y) and MLP's reported value, which clips each
# probability to [ε, 1 − ε] (ε the dtype's machine epsilon), so one confidently wrong sample adds at most −log ε
# (36.04 in float64, 15.94 in float32).  The value is what the stopping rule, loss_curve_ and L-BFGS's line search
# read, so it is computed as MLP computes it, from the probabilities (in log space it would be more exact, and differ).
def _clipped_to_machine_epsilon(p):
    """clip(p, ε, 1 − ε), ε the machine epsilon of p's dtype (scikit-learn's clip)."""
    epsilon = jnp.finfo(p.dtype).eps
    return jnp.clip(p, epsilon, 1 - epsilon)


def _log_loss_as_reported(z, y):
    """r_i = −Σ_j y_ij log(clip(p_ij, ε, 1 − ε)), p_i = softmax(z_i)  (scikit-learn's ``log_loss``)."""
    e = jnp.exp(z - jnp.max(z, axis=-1, keepdims=True))
    return -jnp.sum(y * jnp.log(_clipped_to_machine_epsilon(e / jnp.sum(e, axis=-1, keepdims=True))), axis=-1)


def _binary_log_loss_as_reported(z, y):
    """r_i = −Σ_j [y log c + (1 − y) log(1 − c)], c = clip(σ(z), ε, 1 − ε)  (scikit-learn's ``binary_log_loss``)."""
    c = _clipped_to_machine_epsilon(jax.nn.sigmoid(z))
    return -jnp.sum(y * jnp.log(c) + (1.0 - y) * jnp.log(1.0 - c), axis=-1)


def _as_reported(name: str, fused: Loss, reported_per_sample: PerSample) -> Loss:
    """``fused`` (its op, hence its checked rule, and its facts) reporting ``reported_per_sample``'s value."""
    loss = Loss(
        name,
        fused.op,
        task=fused.task,
        from_logits=fused.from_logits,
        output_activation=fused.output_activation,
        reduction=fused.reduction,
        reported_per_sample=reported_per_sample,
    )
    reports = f"{fused.name}'s op and rule, reporting scikit-learn's value (docs/derivations.md, §4.6b)"
    loss.__doc__ = f"The loss {name!r}: {reports}:\n\n{inspect.getdoc(reported_per_sample)}\n\n{fused.__doc__}"
    return loss


log_loss = _as_reported("log_loss", softmax_cross_entropy, _log_loss_as_reported)
binary_log_loss = _as_reported("binary_log_loss", sigmoid_binary_cross_entropy, _binary_log_loss_as_reported)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        sum_of_squares,
        mean_squared_error,
        squared_error,
        half_poisson_deviance,
        poisson,
        binary_cross_entropy,
        categorical_cross_entropy,
        softmax_cross_entropy,
        sigmoid_binary_cross_entropy,
        log_loss,
        binary_log_loss,
    )
}


def get_loss(name: str | Loss) -> Loss:
    """Look a loss up by name; an unknown name is a ValueError listing the known ones."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str):
        raise TypeError(f"loss must be a name such as 'categorical_cross_entropy' or a Loss, got {type(name).__name__}")
    return look_up(LOSSES, name, "loss")
