"""Training: a jitted gradient-descent step and a ``fit`` whose epochs run in one compiled loop.

Gradients come from ``jax.value_and_grad`` of the model and loss; since every
jaxnn op is a ``jax.custom_vjp``, that runs the hand-written rules.  Any
``optax.GradientTransformation`` is accepted; the default is plain gradient
descent, ``θ ← θ − η·∂L/∂θ``.

A step whose loss, gradients or updated parameters are not finite is not
applied: the parameters stay at the last finite values, the rest of the
history is NaN and ``FitResult.diverged`` is True.  Nothing NaN is kept.

Inside the compiled step the data are in the seeds' column layout.  The public
API is batch-first (``x`` is ``(n_samples, n_features)``, ``W`` is
``(n_in, n_out)``), but on XLA's CPU backend small matrix products whose
output is ``(n_out, n_samples)`` run several times faster than the same
products written batch-first.  So the step computes each layer as the seeds
do, ``Z = W̃·Ã`` with the bias folded into the product: ``W̃ = [Wᵀ | b]`` is
``(n_out, n_in + 1)`` and ``Ã`` is the layer's input ``(n_in, n_samples)``
with a row of ones appended.  That product is jaxnn's ``dense`` op with
``x = W̃``, ``w = Ã`` and a zero bias, so its hand-written rule gives
``∂L/∂W̃ = G·Ãᵀ`` (the seeds' ``dW = dZ·Aᵀ``, with ``∂L/∂b`` as its last
column) and ``∂L/∂Ã = W̃ᵀ·G``.  Elementwise activations do not care about the
layout; softmax, the losses and any other op are applied to the batch-first
view ``Zᵀ``.  Parameters, optimiser state and results keep the public layout
(inside ``fit``'s loop, plain gradient descent carries the ``W̃`` themselves).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import activations
from jaxnn.activations import get_activation
from jaxnn.layers import Params, Sequential, dense
from jaxnn.losses import Loss, get_loss
from jaxnn.ops import positive_int

__all__ = ["FitResult", "Stopping", "fit", "gradient_descent", "train_step"]


DEFAULT_LEARNING_RATE = 0.01  # fit's plain gradient descent when neither learning_rate nor optimizer is given


def gradient_descent(learning_rate: float) -> optax.GradientTransformation:
    """Plain gradient descent as an optax transformation: ``update = −η·g`` (no state).

    Two calls with the same learning rate return equal transformations, so ``fit`` (whose compiled
    loop is cached on the optimiser) compiles once per learning rate, not once per call.
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate must be a number, got {type(learning_rate).__name__}")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    return optax.GradientTransformation(_no_state, _DescentUpdate(float(learning_rate)))


def _no_state(params):
    return optax.EmptyState()


@dataclass(frozen=True)
class _DescentUpdate:
    """The update of :func:`gradient_descent`; a frozen dataclass so that it compares by learning rate."""

    learning_rate: float

    def __call__(self, grads, state, params=None):
        return jax.tree.map(lambda g: -self.learning_rate * g, grads), state


class Stopping(NamedTuple):
    """Stop when the monitored value stops improving (scikit-learn's MLP rule).

    Each epoch ends with a value: the training loss, or, when ``fit`` gets
    ``validation`` data, the validation score.  An epoch that does not improve
    on the best so far by more than ``tol`` (loss: ``> best − tol``; score:
    ``< best + tol``) counts as one without improvement; training stops once
    more than ``n_iter_no_change`` such epochs come in a row.
    """

    tol: float = 1e-4
    n_iter_no_change: int = 10


class FitResult(NamedTuple):
    """What :func:`fit` returns."""

    params: Params  # the trained parameters (with validation data: those of the best-scoring epoch)
    opt_state: optax.OptState
    history: jax.Array  # (epochs,) mean training loss of each epoch; NaN for epochs not run
    diverged: jax.Array  # bool: a step went non-finite; params are the last finite ones
    n_epochs: jax.Array  # int: epochs actually run (fewer than asked when stopped early or diverged)
    validation_scores: jax.Array  # (epochs,) validation score after each epoch; NaN without validation data


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _select(condition, new, old):
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


# Layer-by-layer in the seeds' column layout (see the module docstring).
_ELEMENTWISE = frozenset(
    {activations.identity, activations.linear, activations.sigmoid, activations.tanh}
    | {activations.binary_step, activations.relu, activations.leaky_relu}
)


def _columns_with_ones(x: jax.Array) -> jax.Array:
    """Ã = [xᵀ; 1]: batch-first ``(n, n_in)`` to the column layout ``(n_in + 1, n)`` with a row of ones."""
    return jnp.concatenate([x.T, jnp.ones((1, x.shape[0]), x.dtype)], axis=0)


def _folded_weights(layer_params) -> jax.Array:
    """W̃ = [Wᵀ | b], ``(n_out, n_in + 1)``: the layer as one matrix acting on ``Ã``."""
    return jnp.concatenate([layer_params["W"].T, layer_params["b"][:, None]], axis=1)


def _activate(layer, z: jax.Array, custom_rules: bool) -> jax.Array:
    """The layer's activation on pre-activations ``z`` of shape ``(n_out, n)``.

    An op that acts along the feature axis (softmax, or any activation not known to be elementwise)
    sees the batch-first view ``zᵀ``; the optimisation barrier keeps XLA from folding that transpose
    into the matrix product, which would make the product batch-first again.
    """
    act = get_activation(layer.activation)
    fn = act if custom_rules else act.forward
    kwargs = dict(layer.activation_kwargs)
    if act in _ELEMENTWISE:
        return fn(z, **kwargs)
    return fn(jax.lax.optimization_barrier(z).T, **kwargs).T


def _forward_columns(model, weights, x_columns, custom_rules: bool = True) -> jax.Array:
    """``model.apply(params, x)ᵀ`` in column layout, from the layers' ``W̃`` and ``_columns_with_ones(x)``."""
    matmul = dense if custom_rules else dense.forward
    a = x_columns
    n = a.shape[1]
    no_bias = jnp.zeros((n,), a.dtype)  # the bias is inside W̃
    ones = jnp.ones((1, n), a.dtype)
    last = len(model.layers) - 1
    for index, (layer, w) in enumerate(zip(model.layers, weights, strict=True)):
        a = _activate(layer, matmul(w, a, no_bias), custom_rules)
        if index < last:
            a = jnp.concatenate([a, ones], axis=0)
    return a


def _fold(params) -> list[jax.Array]:
    return [_folded_weights(layer_params) for layer_params in params]


def _unfold(weights) -> Params:
    """The inverse of ``_fold``: each ``W̃ = [Wᵀ | b]`` back to ``{"W": W, "b": b}``."""
    return [{"W": w[:, :-1].T, "b": w[:, -1]} for w in weights]


def _carries_folded(optimizer, params) -> bool:
    """Whether a loop may carry each layer as its ``W̃`` instead of ``{"W", "b"}``.

    Plain gradient descent updates every number on its own (``θ ← θ − η·g``), so updating ``W̃`` is the
    same arithmetic as updating ``W`` and ``b``, without building ``W̃`` and taking its gradient apart
    again every step.  Any other optimiser sees the parameters in their public layout.
    """
    plain_layers = isinstance(params, list) and all(
        isinstance(layer, dict) and set(layer) == {"W", "b"} for layer in params
    )
    return plain_layers and isinstance(optimizer.update, _DescentUpdate)


def _loss_and_grads(model, loss, params, x_columns, y, weight, custom_rules: bool = True, folded: bool = False):
    """``(L, ∂L/∂params)`` for one batch; the gradients run the hand-written rules unless ``custom_rules=False``.

    ``params`` are the layers' ``W̃`` when ``folded``.  ``custom_rules=False`` differentiates the plain
    forwards with JAX's autodiff instead; it exists so that benchmarks can compare the two on exactly
    the same compiled loop.
    """
    loss_fn = loss if custom_rules else loss.forward

    def objective(p):
        weights = p if folded else _fold(p)
        # The loss sees the batch-first view; the barrier keeps the last product in column layout.
        output = jax.lax.optimization_barrier(_forward_columns(model, weights, x_columns, custom_rules))
        return loss_fn(output.T, y, weight)

    return jax.value_and_grad(objective)(params)


def _step(model, loss, optimizer, params, opt_state, ok, x_columns, y, weight, custom_rules=True, folded=False):
    """One guarded update on one batch; returns ``(params, opt_state, ok, batch_loss)``.

    ``x_columns`` is the batch in column layout (``_columns_with_ones``); ``y`` and ``weight`` are
    batch-first; ``params`` are the layers' ``W̃`` when ``folded`` (see ``_carries_folded``).  A batch
    whose weights sum to 0 (all padding) changes nothing; a non-finite step is not applied and clears
    ``ok``, after which nothing changes any more.
    """
    active = jnp.sum(weight) > 0
    safe_weight = jnp.where(active, weight, jnp.ones_like(weight))
    value, grads = _loss_and_grads(model, loss, params, x_columns, y, safe_weight, custom_rules, folded)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    finite = jnp.isfinite(value) & _all_finite(new_params)
    ok = ok & (finite | ~active)
    apply = ok & active
    return _select(apply, new_params, params), _select(apply, new_opt_state, opt_state), ok, value


def _train_step(model: Sequential, loss: Loss, optimizer, params, opt_state, x, y, weight):
    params, opt_state, _, value = _step(
        model, loss, optimizer, params, opt_state, jnp.bool_(True), _columns_with_ones(x), y, weight
    )
    return params, opt_state, value


_train_step_compiled = jax.jit(_train_step, static_argnums=(0, 1, 2))
# With the params and optimiser state donated: XLA writes the update into their buffers instead of
# allocating new ones each step.
_train_step_in_place = jax.jit(_train_step, static_argnums=(0, 1, 2), donate_argnums=(3, 4))


def train_step(
    model: Sequential, loss: str | Loss, optimizer, params, opt_state, x, y, weight=None, *, in_place: bool = False
):
    """One update on one batch: returns ``(params, opt_state, loss_before_update)``.

    A non-finite step is not applied (the old params and state come back with the non-finite loss).
    With ``in_place=True`` the update is written into the buffers of ``params`` and ``opt_state``
    (buffer donation: no new parameter arrays each step); the arrays passed in are invalid afterwards,
    so keep only what this call returns.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a jaxnn.Sequential, got {type(model).__name__}")
    loss = get_loss(loss)
    x, y = jnp.asarray(x), jnp.asarray(y)
    model.check(params, x.shape)
    if y.ndim != 2 or y.shape != (x.shape[0], model.n_outputs):
        raise ValueError(
            f"y must have shape {(x.shape[0], model.n_outputs)} (one row per sample, one column per output), "
            f"got {tuple(y.shape)}"
        )
    weight = jnp.ones(x.shape[0], x.dtype) if weight is None else jnp.asarray(weight)
    step = _train_step_in_place if in_place else _train_step_compiled
    return step(model, loss, optimizer, params, opt_state, x, y, weight)


def _epoch_batches(key, weight, batch_size: int):
    """Shuffled sample indices as ``(n_batches, batch_size)`` and a 0/1 mask for the padded tail.

    Rows of weight 0 (padding) are moved behind the others, so real rows fill the batches first.

    The order does not depend on how many rows of weight 0 follow the real ones: row ``i`` gets two
    independent 32-bit sort keys, element ``i`` of ``bits(k₁, (n,))`` and of ``bits(k₂, (n,))``, and
    the rows are sorted by ``(weight == 0, first key, second key)``.  With JAX's threefry in its
    partitionable mode (the default) element ``i`` of a 1-D draw is a hash of the key and ``i`` alone,
    so it does not change with ``n`` (``tests/test_train.py`` checks this), and the real rows' order is
    a function of the key and their positions only.  Sorting i.i.d. keys gives every order the same
    probability except when two rows tie; with 64 random bits per row a tie among ``n`` rows has
    probability below ``n²/2⁶⁵`` (and is then broken by position).  ``jax.random.permutation`` would
    not do: above 1625 rows it sorts more than once, drawing the later keys by position in the already
    shuffled rows, so appended rows would reorder the real ones.
    """
    n_samples = weight.shape[0]
    n_batches = math.ceil(n_samples / batch_size)
    first, second = jax.random.split(key)
    # lexsort sorts by its last key first: padding last, then the two random keys.
    order = jnp.lexsort(
        (jax.random.bits(second, (n_samples,)), jax.random.bits(first, (n_samples,)), weight == 0)
    ).astype(jnp.int32)
    padding = n_batches * batch_size - n_samples
    index = jnp.concatenate([order, jnp.zeros(padding, order.dtype)]).reshape(n_batches, batch_size)
    mask = (jnp.arange(n_batches * batch_size) < n_samples).reshape(n_batches, batch_size)
    return index, mask


def _run_epoch(model, loss, optimizer, batch_size, rules, carry, epoch_key, x_columns, y, weight):
    """One pass over the data: returns the new ``(params, opt_state, ok)`` and the epoch's mean loss.

    ``rules`` is ``(custom_rules, folded)``, passed on to ``_step``.
    """
    params, opt_state, ok = carry
    n_samples = weight.shape[0]
    if batch_size >= n_samples:
        params, opt_state, ok, value = _step(
            model, loss, optimizer, params, opt_state, ok, x_columns, y, weight, *rules
        )
        return (params, opt_state, ok), jnp.where(ok, value, jnp.nan)

    index, mask = _epoch_batches(epoch_key, weight, batch_size)

    def batch(carry, index_and_mask):
        idx, m = index_and_mask
        w = weight[idx] * m
        params, opt_state, ok, value = _step(model, loss, optimizer, *carry, x_columns[:, idx], y[idx], w, *rules)
        return (params, opt_state, ok), jnp.where(jnp.sum(w) > 0, value * jnp.sum(w), 0.0)

    carry, weighted = jax.lax.scan(batch, (params, opt_state, ok), (index, mask.astype(y.dtype)))
    return carry, jnp.where(carry[2], jnp.sum(weighted) / jnp.sum(weight), jnp.nan)


def _epoch_key(key, epoch):
    """Epoch e (counted from the start of training) shuffles with fold_in(key, e): a fit split into chunks
    sees the same order as the whole fit."""
    return jax.random.fold_in(key, epoch)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _fit_epochs(
    model, loss, optimizer, epochs, batch_size, custom_rules, params, opt_state, x, y, weight, key, start_epoch
):
    """All epochs in one loop; ``x`` is batch-first and turned into column layout once, here.

    The loop runs from ``start_epoch`` (a runtime value) to ``start_epoch + epochs``, so XLA cannot
    see its trip count.  With a visible count XLA inlines a one-epoch loop into the surrounding code
    and rounds it differently (Adam's update differed by 2e-8), which broke the promise that a fit
    split into chunks equals the unsplit fit bit for bit.
    """
    x_columns = _columns_with_ones(x)
    folded = _carries_folded(optimizer, params)
    rules = (custom_rules, folded)

    def epoch(index, state):
        carry, history = state
        epoch_key = _epoch_key(key, index)
        carry, value = _run_epoch(model, loss, optimizer, batch_size, rules, carry, epoch_key, x_columns, y, weight)
        return carry, history.at[index - start_epoch].set(value)

    start = (_fold(params) if folded else params, opt_state, jnp.bool_(True))
    history = jnp.zeros(epochs, dtype=jax.tree.leaves(params)[0].dtype)
    (params, opt_state, ok), history = jax.lax.fori_loop(start_epoch, start_epoch + epochs, epoch, (start, history))
    params = _unfold(params) if folded else params
    n_epochs = jnp.where(ok, epochs, jnp.sum(jnp.isfinite(history)))
    return FitResult(params, opt_state, history, ~ok, n_epochs, jnp.full(epochs, jnp.nan, history.dtype))


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5, 6, 7))
def _fit_until_stop(
    model,
    loss,
    optimizer,
    epochs,
    batch_size,
    custom_rules,
    stopping,
    score,
    params,
    opt_state,
    x,
    y,
    weight,
    key,
    start_epoch,
    x_val,
    y_val,
):
    """Like ``_fit_epochs`` but a ``lax.while_loop`` that ends when ``stopping`` says so."""
    x_columns = _columns_with_ones(x)
    nan_buffer = jnp.full(epochs, jnp.nan, x.dtype)
    higher_is_better = score is not None
    x_val_columns = _columns_with_ones(x_val) if higher_is_better else None
    folded = _carries_folded(optimizer, params)
    rules = (custom_rules, folded)

    def running(state):
        epoch, (_, _, ok), _, _, no_improvement, *_ = state
        return (epoch < epochs) & ok & (no_improvement <= stopping.n_iter_no_change)

    def one_epoch(state):
        epoch, carry, best, best_params, no_improvement, history, scores = state
        epoch_key = _epoch_key(key, start_epoch + epoch)
        carry, value = _run_epoch(model, loss, optimizer, batch_size, rules, carry, epoch_key, x_columns, y, weight)
        if higher_is_better:
            weights = carry[0] if folded else _fold(carry[0])
            monitored = score(_forward_columns(model, weights, x_val_columns).T, y_val)
            improved_enough = monitored >= best + stopping.tol
            better = monitored > best
        else:
            monitored = value
            improved_enough = monitored <= best - stopping.tol
            better = monitored < best
        no_improvement = jnp.where(improved_enough, 0, no_improvement + 1)
        best_params = _select(better & carry[2], carry[0], best_params)
        return (
            epoch + 1,
            carry,
            jnp.where(better, monitored, best),
            best_params,
            no_improvement,
            history.at[epoch].set(value),
            scores.at[epoch].set(monitored if higher_is_better else jnp.nan),
        )

    start_best = jnp.asarray(-jnp.inf if higher_is_better else jnp.inf, x.dtype)
    start_params = _fold(params) if folded else params
    state = (0, (start_params, opt_state, jnp.bool_(True)), start_best, start_params, 0, nan_buffer, nan_buffer)
    n_epochs, (params, opt_state, ok), _, best_params, _, history, scores = jax.lax.while_loop(
        running, one_epoch, state
    )
    if higher_is_better:
        params = best_params
    params = _unfold(params) if folded else params
    return FitResult(params, opt_state, history, ~ok, n_epochs - (~ok).astype(int), scores)


@functools.cache
def _default_key() -> jax.Array:
    """The key of a full-batch fit, which never shuffles: made once, not on every call."""
    return jax.random.key(0)


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
    learning_rate: float | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    weight=None,
    opt_state: optax.OptState | None = None,
    start_epoch: int = 0,
    stopping: Stopping | None = None,
    validation: tuple | None = None,
    score: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> FitResult:
    """Train ``params`` for up to ``epochs`` epochs, all inside one compiled loop.

    Without ``stopping`` the epochs run in one ``lax.fori_loop``; with it, in one ``lax.while_loop``
    that ends as soon as the stopping rule says so.

    Args:
      model, params: the model and its starting parameters (not modified).
      x: ``(n_samples, n_features)``; y: ``(n_samples, n_outputs)`` (one-hot for classes).
      loss: a loss name or :class:`~jaxnn.losses.Loss`.
      epochs: number of passes over the data.
      optimizer: any optax transformation (it carries its own learning rate); default
        ``gradient_descent(learning_rate)``.
      learning_rate: the step of the default plain gradient descent (0.01 when not given); an error
        together with ``optimizer``, whose own rate would silently win.
      batch_size: None for full batch; otherwise minibatches reshuffled every epoch from ``key``
        (the last batch is padded and masked out of the loss).
      key: a ``jax.random`` key, needed for minibatches.
      weight: optional per-sample weights ``(n_samples,)``.
      opt_state: resume from this optimiser state (default: ``optimizer.init(params)``).
      start_epoch: the index of the first epoch, for a fit continued in chunks: epoch ``e`` always
        shuffles with ``jax.random.fold_in(key, e)``, so ``fit(epochs=a+b)`` equals ``fit(epochs=a)``
        followed by ``fit(epochs=b, start_epoch=a, opt_state=...)`` bitwise on CPU.
      stopping: a :class:`Stopping` rule (tol, n_iter_no_change), or None to run every epoch.
      validation: ``(x_val, y_val)``; with ``stopping`` and ``score``, the rule watches
        ``score(model.apply(params, x_val), y_val)`` (higher is better) instead of the training
        loss, and the best-scoring epoch's parameters are returned.
      score: a jit-able ``score(predictions, y_val) -> scalar``; pass the same function object
        each time (it is part of the compiled function's cache key).

    Returns:
      A :class:`FitResult` with the trained params, the optimiser state, the per-epoch loss history
      and the divergence flag.  Same inputs and key give bitwise-identical results on CPU.

    Example:
      >>> model = Sequential((Dense(10, "relu"), Dense(3, "softmax")))
      >>> params = model.init(jax.random.key(0), 4)
      >>> result = fit(model, params, x, one_hot_y, loss="categorical_cross_entropy", epochs=500)
    """
    loss = get_loss(loss)
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a jaxnn.Sequential, got {type(model).__name__}")
    epochs = positive_int(epochs, "epochs")
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, numbers.Integral) or not 0 <= start_epoch < 2**32:
        raise ValueError(f"start_epoch must be an integer in [0, 2**32), got {start_epoch!r}")
    if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, e.g. optax.adam(0.01); got {optimizer!r}")
    if key is not None and not (
        isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32)
    ):
        raise TypeError(f"key must be a jax.random key such as jax.random.key(0), got {type(key).__name__}")
    if stopping is not None:
        if not isinstance(stopping, Stopping):
            raise TypeError(f"stopping must be a jaxnn.Stopping(tol, n_iter_no_change), got {type(stopping).__name__}")
        if not (np.isfinite(stopping.tol) and stopping.tol >= 0) or not (
            isinstance(stopping.n_iter_no_change, numbers.Integral) and stopping.n_iter_no_change >= 1
        ):
            raise ValueError(f"stopping needs a finite tol >= 0 and n_iter_no_change >= 1, got {stopping}")
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    batch_size = int(batch_size)
    if batch_size < x.shape[0] and key is None:
        raise ValueError("minibatch training shuffles every epoch: pass key=jax.random.key(seed)")
    if key is None:
        key = _default_key()
    if optimizer is None:
        optimizer = gradient_descent(DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate)
    elif learning_rate is not None:
        raise ValueError(
            "pass learning_rate (for plain gradient descent) or optimizer (which has its own learning rate), "
            "not both"
        )
    if opt_state is None:
        opt_state = optimizer.init(params)
    batch_size = min(batch_size, x.shape[0])
    # NumPy arrays go to the compiled function as they are: its dispatch copies them to the device faster
    # than jnp.asarray would, which matters when fit is called many times (model selection).
    data = (np.asarray(x, dtype), np.asarray(y, dtype), np.asarray(weight, dtype))
    start = np.asarray(start_epoch, np.uint32)
    if (validation is None) != (score is None):
        raise ValueError("validation data and a score function go together: pass both or neither")
    if validation is not None and stopping is None:
        raise ValueError("validation data is used by the stopping rule: pass stopping=Stopping(...) too")
    if stopping is None:
        return _fit_epochs(model, loss, optimizer, epochs, batch_size, True, params, opt_state, *data, key, start)
    if validation is None:
        x_val = y_val = np.zeros((0, 0), dtype)
    else:
        if not isinstance(validation, tuple | list) or len(validation) != 2:
            raise TypeError("validation must be a pair (x_val, y_val)")
        x_val, y_val = _as_2d("x_val", validation[0]), _as_2d("y_val", validation[1])
        if x_val.shape[1] != x.shape[1]:
            raise ValueError(f"x_val has {x_val.shape[1]} features but x has {x.shape[1]}; they must match")
        if x_val.shape[0] != y_val.shape[0] or x_val.shape[0] == 0:
            raise ValueError(
                f"x_val has {x_val.shape[0]} samples and y_val {y_val.shape[0]}; they must match and be at least 1"
            )
        x_val, y_val = np.asarray(x_val, dtype), np.asarray(y_val, dtype)
    static = (model, loss, optimizer, epochs, batch_size, True, stopping, score)
    return _fit_until_stop(*static, params, opt_state, *data, key, start, x_val, y_val)
