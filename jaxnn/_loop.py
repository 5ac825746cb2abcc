"""The compiled training loop: the one place where epochs, batches and steps run.

This is jaxnn's internal contract, used by one module only: ``jaxnn.engine``, the road every front end
takes.  A run is described by a :class:`RunSpec` — a hashable record of everything that selects the
compiled program (model, loss, optimiser, batch size, stopping rule, layout, autodiff switch) — and the
engine compiles :func:`chunk` and calls it with keyword arguments only.  Loop
state travels in named records (:class:`TrainCarry`, :class:`StopCarry`, :class:`LoopState`), never in
tuples read by position.  Nothing here checks user input: the front ends do that, then call in.

**Epochs.**  Epoch ``e`` is counted from the start of training (a fit continued with ``start_epoch=a``
runs epochs ``a, a+1, …``) and shuffles with ``fold_in(key, e)``; so a fit split into calls equals the
unsplit fit bit for bit on the CPU.  The compiled program runs at most ``spec.chunk`` epochs from a
runtime ``start`` to a runtime ``stop`` (XLA cannot see the trip count: with a visible count it inlines
a one-epoch loop and rounds differently); the engine calls it once per chunk.  So a new number of epochs
compiles nothing, and the memory of a run does not grow with the epochs asked for: the per-epoch
history comes back chunk by chunk, and a run that stops early runs no further chunk.

**Shuffling.**  With ``spec.shuffle`` (the default) the rows are visited in a new random order every
epoch; without it in their order.  Either way rows of weight 0 (padding) come after the others, so they
never take the place of a real row in a batch (:func:`epoch_batches`).

**Learning-rate schedules.**  A scheduled optimiser (``jaxnn.optimizers.make(..., schedule=...)``) owns its
schedule: after each epoch (and after the stopping rule has counted it) the loop hands its state to
``jaxnn.optimizers.end_of_epoch``, with whether the stopping rule sees a plateau; ``adaptive`` then lowers the
rate instead of stopping while the rate is above 1e-6, and the loop restarts its count.  The schedule's kind
is part of the optimiser (so of the program); its values live in the optimiser state, so a grid over them
compiles nothing.

**Steps.**  A step whose loss or updated parameters are not finite is not applied and clears
``TrainCarry.ok``; after that nothing changes and the loop ends.  ``n_epochs`` counts the epochs that
finished healthily; the history holds one entry per epoch run (the diverged one, last, is NaN).

**Layouts.**  ``"columns"`` (the engine's choice on the CPU when the input and every layer are at most 32 wide:
``jaxnn.engine.decide_layout``) computes each layer in the seeds' column layout with the bias folded into the
weights — ``Z = W̃·Ã`` with ``W̃ = [Wᵀ | b]`` of shape ``(n_out, n_in + 1)`` and ``Ã = [aᵀ; 1]`` —
which runs small products several times faster on XLA's CPU backend than the batch-first form.
That product is jaxnn's ``dense`` op with ``x = W̃``, ``w = Ã`` and a zero bias, so its hand-written rule
gives ``∂L/∂W̃ = G·Ãᵀ`` (the seeds' ``dW = dZ·Aᵀ``, with ``∂L/∂b`` as its last column).
Elementwise activations do not care about the layout; any other op sees the batch-first view
(:func:`jaxnn.layers.activate`).  With plain gradient descent the loop carries the ``W̃`` themselves
(updating ``W̃`` is the same arithmetic as updating ``W`` and ``b``).  ``"rows"`` is the batch-first
``x @ W + b`` of ``Sequential.apply``.  Parameters, optimiser state and results keep the public layout.

**Dropout.**  With ``spec.dropout`` every training step applies inverted dropout after each hidden layer
(:mod:`jaxnn.dropout`): the step's key is ``jaxnn.dropout.step_key(epoch key, step index)`` and the rates,
one per hidden layer, travel in ``TrainCarry.dropout`` (data, so a grid over them compiles once).  The
validation score and :func:`forward` never apply it.  Without ``spec.dropout`` the program has no mask at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn._builds import PLAIN_BUILDS, FallbackJit
from jaxnn._checks import matching_state, step_arguments, summing_type, unwrapped_integers
from jaxnn._scores import one_number
from jaxnn.donation import DONATED_TWICE, buffers, each_buffer_once
from jaxnn.dropout import Dropout, step_key
from jaxnn.layers import Params, Sequential, activate, dense
from jaxnn.losses import Loss
from jaxnn.optimizers import end_of_epoch, is_gradient_descent, l2_penalty, l2_rate_of, schedule_of

__all__ = [
    "EPOCH_CHUNK",
    "LAYOUTS",
    "Data",
    "FitResult",
    "LoopState",
    "RunSpec",
    "StopCarry",
    "Stopping",
    "TrainCarry",
    "chunk",
    "compiled_programs",
    "epoch_batches",
    "forward",
    "host_array",
    "result_of",
    "step",
    "tree_where",
]

EPOCH_CHUNK = 1024  # epochs per compiled call: the length of the history buffer of one call
LAYOUTS = ("columns", "rows")


class Stopping(NamedTuple):
    """Stop when the monitored value stops improving (scikit-learn's MLP rule).

    Each epoch ends with a value: the training loss, or, with validation data, the validation score.
    An epoch that does not improve on the best so far by at least ``tol`` (loss: ``best − loss < tol``;
    score: ``score − best < tol``) counts as one without improvement; training stops once more than
    ``n_iter_no_change`` such epochs come in a row.  ``n_iter_no_change=math.inf`` (or ``np.inf``) never
    stops early: the epochs are still counted, but training runs every epoch asked for.  A NaN value (a ``score``
    that cannot score these parameters) improves on nothing, so it counts as an epoch without improvement; the
    scores are in ``FitResult.validation_scores``.
    """

    tol: float = 1e-4
    n_iter_no_change: int | float = 10


def _watches_plateaus(stopping: Stopping | None) -> bool:
    """Whether the rule can see a plateau: it exists and its ``n_iter_no_change`` is finite."""
    return stopping is not None and not math.isinf(stopping.n_iter_no_change)


class FitResult(NamedTuple):
    """What a training run returns."""

    params: Params  # the trained parameters (with a validation score: the best-scoring epoch's; the last epoch's
    # while no epoch has scored a finite value)
    opt_state: optax.OptState  # the last healthy epoch's, also where params are the best-scoring epoch's (as
    # scikit-learn's MLP keeps its optimiser's state when it restores the best coefficients)
    history: np.ndarray  # (epochs run,) mean training loss of each epoch; a diverged last epoch is NaN
    diverged: bool  # a step went non-finite; params are the last finite ones
    n_epochs: int  # epochs finished healthily (fewer than asked when stopped early or diverged)
    validation_scores: np.ndarray  # (epochs run,) validation score after each epoch (a diverged last epoch's: of
    # the parameters kept, the last finite ones); NaN without validation
    stopped: bool = False  # the stopping rule ended training (before the epochs asked for, or with the last one)
    no_improvement: int = 0  # the stopping rule's final count of epochs in a row without improvement (0 without)
    validation_losses: np.ndarray | None = None  # (epochs run,) spec.validation_loss after each epoch (else NaN)


class RunSpec(NamedTuple):
    """Everything that selects the compiled program of a run; hashable, so it keys the compile cache.

    ``batch_size`` counts rows per step; one at least the number of rows is full batch.  ``score``
    (with ``stopping``) is a jit-able, hashable ``score(outputs, y_val) -> scalar``, higher is better;
    without it the stopping rule watches the training loss.  ``custom_rules=False`` differentiates the
    plain forwards with JAX's autodiff instead of the hand-written rules (for tests and benchmarks).
    ``shuffle=False`` visits the rows in order.  ``dropout=True`` applies dropout in training steps at the
    rates of ``TrainCarry.dropout``.  ``validation_loss`` (with ``score``) is a jit-able, hashable
    ``validation_loss(outputs, y_val) -> scalar``: after every epoch the run records it, plus the L2 penalty
    the training loss reports, beside the score.
    """

    model: Sequential
    loss: Loss
    optimizer: optax.GradientTransformation
    batch_size: int
    stopping: Stopping | None = None
    score: Callable[[jax.Array, jax.Array], jax.Array] | None = None
    custom_rules: bool = True
    layout: str = "columns"
    chunk: int = EPOCH_CHUNK
    shuffle: bool = True
    dropout: bool = False
    validation_loss: Callable[[jax.Array, jax.Array], jax.Array] | None = None


class Data(NamedTuple):
    """The arrays of a run: training rows, per-sample weights (0 masks a row out) and validation data
    (empty ``(0, 0)`` arrays without it)."""

    x: jax.Array
    y: jax.Array
    weight: jax.Array
    x_val: jax.Array
    y_val: jax.Array


class TrainCarry(NamedTuple):
    """What training updates: the parameters (in the loop's layout), the optimiser state (with a schedule's
    values, when it has one) and whether every step so far was finite; and what it keeps as it is, the dropout
    rates of ``spec.dropout`` (one per hidden layer; None without dropout)."""

    params: Params | list[jax.Array]  # model.init's layout, or the loop's W̃ = [Wᵀ | b] per layer
    opt_state: optax.OptState
    ok: jax.Array
    dropout: jax.Array | None = None


class StopCarry(NamedTuple):
    """The stopping rule's memory: the best value so far, the parameters that gave it (None without a
    validation score, where the last parameters are the result), and the count of epochs in a row without
    enough improvement."""

    best: jax.Array
    best_params: Params | list[jax.Array] | None
    no_improvement: jax.Array


class LoopState(NamedTuple):
    """The epoch loop's state in one compiled call; ``history``, ``scores``, ``validation_losses``: from its start."""

    epoch: jax.Array
    train: TrainCarry
    stop: StopCarry
    history: jax.Array
    scores: jax.Array
    validation_losses: jax.Array


# --------------------------------------------------------------------------------------------------
# Layers in the loop's layout.


def _columns_with_ones(x: jax.Array) -> jax.Array:
    """Ã = [xᵀ; 1]: batch-first ``(n, n_in)`` to the column layout ``(n_in + 1, n)`` with a row of ones."""
    return jnp.concatenate([x.T, jnp.ones((1, x.shape[0]), x.dtype)], axis=0)


def _fold(params: Params) -> list[jax.Array]:
    """Each layer as ``W̃ = [Wᵀ | b]``, ``(n_out, n_in + 1)``."""
    return [jnp.concatenate([layer["W"].T, layer["b"][:, None]], axis=1) for layer in params]


def _unfold(weights) -> Params:
    """The inverse of ``_fold``: each ``W̃`` back to ``{"W": W, "b": b}``."""
    return [{"W": w[:, :-1].T, "b": w[:, -1]} for w in weights]


def _folded_weight_mask(weights) -> list[jax.Array]:
    """Which numbers of each ``W̃ = [Wᵀ | b]`` are weights: every column but the last."""
    return [jnp.arange(w.shape[-1]) < w.shape[-1] - 1 for w in weights]


def _carries_folded(spec: RunSpec, params) -> bool:
    """Whether the loop carries each layer as its ``W̃``: column layout and plain gradient descent (which
    updates every number on its own) on parameters in ``model.init``'s layout."""
    plain_layers = isinstance(params, list) and all(
        isinstance(layer, dict) and set(layer) == {"W", "b"} for layer in params
    )
    return spec.layout == "columns" and plain_layers and is_gradient_descent(spec.optimizer)


def _prepared_inputs(spec: RunSpec, x: jax.Array) -> jax.Array:
    """Inputs in the loop's layout: ``Ã`` for columns, ``x`` itself for rows."""
    return _columns_with_ones(x) if spec.layout == "columns" else x


def _take_rows(spec: RunSpec, inputs: jax.Array, index: jax.Array) -> jax.Array:
    return inputs[:, index] if spec.layout == "columns" else inputs[index]


def _forward_prepared(spec: RunSpec, params, inputs, folded: bool, dropout: Dropout | None = None) -> jax.Array:
    """The model's output, batch-first ``(n, n_outputs)``, from prepared inputs and the carried params (with a
    training step's ``dropout`` after every hidden layer)."""
    if spec.layout == "rows" and dropout is not None:
        return dropout.forward(spec.model, params, inputs, custom_rules=spec.custom_rules)
    if spec.layout == "rows":
        return spec.model.apply(params, inputs, custom_rules=spec.custom_rules)
    weights = params if folded else _fold(params)
    matmul = dense if spec.custom_rules else dense.forward
    a = inputs
    n = a.shape[1]
    no_bias = jnp.zeros((n,), a.dtype)  # the bias is inside W̃
    ones = jnp.ones((1, n), a.dtype)
    last = len(spec.model.layers) - 1
    for index, (layer, w) in enumerate(zip(spec.model.layers, weights, strict=True)):
        a = activate(layer, matmul(w, a, no_bias), custom_rules=spec.custom_rules, columns=True)
        if index < last and dropout is not None:
            a = dropout.apply(a, index, custom_rules=spec.custom_rules, columns=True)
        if index < last:
            a = jnp.concatenate([a, ones], axis=0)
    # The loss sees the batch-first view; the barrier keeps the last product in column layout.
    return jax.lax.optimization_barrier(a).T


def forward(spec: RunSpec, params: Params, x: jax.Array) -> jax.Array:
    """``spec.model.apply(params, x)`` computed the way the loop computes it (same layout, same rounding)."""
    return _forward_prepared(spec, params, _prepared_inputs(spec, x), folded=False)


# --------------------------------------------------------------------------------------------------
# One step, one epoch.


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def tree_where(condition, new, old):
    """The pytree ``new`` where ``condition`` holds, else ``old`` (leaf by leaf, ``jnp.where``)."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def _guarded_step(
    spec: RunSpec, carry: TrainCarry, inputs, y, weight, folded: bool, dropout: Dropout | None = None
) -> tuple[TrainCarry, jax.Array, jax.Array]:
    """One update on one batch; returns the new carry, the batch's loss before the update (the L2 penalty
    included) and that penalty alone.

    A batch whose weights sum to 0 (all padding) changes nothing; a non-finite step is not applied and
    clears ``ok``, after which nothing changes any more.  A NaN weight (``make_train_step`` checks shapes only)
    makes the step non-finite: it is not padding, whose loss would be reported unweighted.  ``dropout``: this
    step's masks (the same for the loss, its gradient and a line search's trial points).
    """
    active = jnp.sum(weight) != 0  # not `> 0`: a NaN sum would pass as padding
    safe_weight = jnp.where(active, weight, jnp.ones_like(weight))
    loss = spec.loss if spec.custom_rules else spec.loss.forward

    def objective(params):
        return loss(_forward_prepared(spec, params, inputs, folded, dropout), y, safe_weight)

    value, grads = jax.value_and_grad(objective)(carry.params)
    extra_args = {}
    if isinstance(spec.optimizer, optax.GradientTransformationExtraArgs):
        # A line search (optax.lbfgs) evaluates the batch's objective at trial points, through the same rules.
        extra_args = {"value": value, "grad": grads, "value_fn": objective}
    if extra_args and l2_rate_of(carry.opt_state) is not None:
        # The L2 penalty whose gradient the chain adds to the direction is part of that objective, value and gradient.
        def penalised(params):
            return objective(params) + _penalty_at(carry.opt_state, params, folded)

        penalty_value, penalty_grads = jax.value_and_grad(_penalty_at, argnums=1)(carry.opt_state, carry.params, folded)
        penalised_grads = jax.tree.map(jnp.add, grads, penalty_grads)
        extra_args = {"value": value + penalty_value, "grad": penalised_grads, "value_fn": penalised}
    if folded:  # plain descent: which numbers of W̃ are weights (its L2 term skips the bias column)
        extra_args["weight_mask"] = _folded_weight_mask(carry.params)
    penalty = _penalty_at(carry.opt_state, carry.params, folded)
    value = value + penalty
    updates, new_opt_state = spec.optimizer.update(grads, carry.opt_state, carry.params, **extra_args)
    new_params = optax.apply_updates(carry.params, updates)
    finite = jnp.isfinite(value) & _all_finite(new_params)
    ok = carry.ok & (finite | ~active)
    apply = ok & active
    new = carry._replace(
        params=tree_where(apply, new_params, carry.params),
        opt_state=tree_where(apply, new_opt_state, carry.opt_state),
        ok=ok,
    )
    return new, value, penalty


def _penalty_at(opt_state, params, folded: bool):
    """The L2 penalty ``½·λ·Σ‖W‖²`` of ``params`` at the L2 rate ``λ`` of ``opt_state`` when the solver adds ``λ·W``
    to the gradient (``alpha``, ``l2``), else 0: added to the losses a run reports, so they are the objective it
    descends (MLP's ``loss_curve_``), and to a line search's objective."""
    l2_rate = l2_rate_of(opt_state)
    if l2_rate is None:
        return 0.0
    return l2_penalty(params, l2_rate, _folded_weight_mask(params) if folded else None)


def epoch_batches(key, weight, batch_size: int, shuffle: bool = True):
    """Shuffled sample indices as ``(n_batches, batch_size)`` and a 0/1 mask for the padded tail.

    Rows of weight 0 (padding) are moved behind the others, so real rows fill the batches first.  With
    ``shuffle=False`` the rows of positive weight come in their order (batch ``k`` holds real rows
    ``k·batch_size …``, as scikit-learn's ``shuffle=False``), then the rows of weight 0; ``key`` is unused.

    The order does not depend on how many rows of weight 0 follow the real ones: row ``i`` gets two
    independent 32-bit sort keys, element ``i`` of ``bits(k₁, (n,))`` and of ``bits(k₂, (n,))``, and
    the rows are sorted by ``(weight == 0, first key, second key)``.  With JAX's threefry in its
    partitionable mode (the default) element ``i`` of a 1-D draw is a hash of the key and ``i`` alone,
    so it does not change with ``n`` (``tests/test_loop.py`` checks this), and the real rows' order is
    a function of the key and their positions only.  Sorting i.i.d. keys gives every order the same
    probability except when two rows tie; with 64 random bits per row a tie among ``n`` rows has
    probability below ``n²/2⁶⁵`` (and is then broken by position).  ``jax.random.permutation`` would
    not do: above 1625 rows it sorts more than once, drawing the later keys by position in the already
    shuffled rows, so appended rows would reorder the real ones.
    """
    n_samples = weight.shape[0]
    n_batches = math.ceil(n_samples / batch_size)
    if shuffle:
        first, second = jax.random.split(key)
        # lexsort sorts by its last key first: padding last, then the two random keys.
        order = jnp.lexsort(
            (
                jax.random.bits(second, (n_samples,), jnp.uint32),  # uint32 also under x64: one order for both dtypes
                jax.random.bits(first, (n_samples,), jnp.uint32),
                weight == 0,
            )
        ).astype(jnp.int32)
    else:
        order = jnp.argsort(weight == 0, stable=True).astype(jnp.int32)
    padding = n_batches * batch_size - n_samples
    index = jnp.concatenate([order, jnp.zeros(padding, order.dtype)]).reshape(n_batches, batch_size)
    mask = (jnp.arange(n_batches * batch_size) < n_samples).reshape(n_batches, batch_size)
    return index, mask


def _run_epoch(spec: RunSpec, carry: TrainCarry, epoch_key, inputs, y, weight, folded: bool):
    """One pass over the data: the new carry and the epoch's loss (NaN once a step went non-finite).

    The epoch's loss is the full-batch one: the batches' losses weighted by their share of the sample weight
    for a mean (``reduction="mean"``), summed for a sum, plus the L2 penalty weighted by the batches' shares
    (each batch reports the penalty at its starting weights)."""
    n_samples = weight.shape[0]
    if spec.batch_size >= n_samples:
        dropout = _dropout(spec, carry, epoch_key, 0)
        carry, value, _ = _guarded_step(spec, carry, inputs, y, weight, folded, dropout)
        return carry, jnp.where(carry.ok, value, jnp.nan)

    index, mask = epoch_batches(epoch_key, weight, spec.batch_size, spec.shuffle)
    # Rows of weight 0 (padding) come last, so only the first ⌈rows of positive weight / batch⌉ batches can
    # change anything: the others are not run (a padded data set costs no more than its real rows).
    n_active = -(-jnp.sum(weight > 0) // spec.batch_size)

    # Summed in float32 at least: in float16 the epoch's Σw·loss passed 65,504 where each batch's loss did not.
    wide = summing_type(y.dtype)
    total_weight = jnp.sum(weight.astype(wide))

    def batch(step, state):
        carry, weighted_sum = state
        idx = index[step]
        w = weight[idx] * mask[step].astype(weight.dtype)
        dropout = _dropout(spec, carry, epoch_key, step.astype(jnp.uint32))
        carry, value, penalty = _guarded_step(spec, carry, _take_rows(spec, inputs, idx), y[idx], w, folded, dropout)
        value, penalty, batch_weight = jnp.asarray(value, wide), jnp.asarray(penalty, wide), jnp.sum(w.astype(wide))
        if spec.loss.reduction == "sum":  # the batch's sum counts whole: times Σw, as the total is divided by it
            share = (value - penalty) * total_weight + penalty * batch_weight
        else:
            share = value * batch_weight
        return carry, weighted_sum + jnp.where(batch_weight > 0, share, 0.0)

    carry, weighted_sum = jax.lax.fori_loop(0, n_active, batch, (carry, jnp.zeros((), wide)))
    return carry, jnp.where(carry.ok, (weighted_sum / total_weight).astype(y.dtype), jnp.nan)


def _epoch_key(key, epoch):
    """Epoch e (counted from the start of training) shuffles with fold_in(key, e)."""
    return jax.random.fold_in(key, epoch)


def _dropout(spec: RunSpec, carry: TrainCarry, epoch_key, step=None) -> Dropout | None:
    """Step ``step``'s :class:`~jaxnn.dropout.Dropout` of the epoch of ``epoch_key`` (None without dropout)."""
    return Dropout(step_key(epoch_key, step), carry.dropout) if spec.dropout else None


# --------------------------------------------------------------------------------------------------
# The chunk of epochs and the result of a run.


def _watch(spec: RunSpec, stop: StopCarry, train: TrainCarry, loss_value, val_outputs, y_val):
    """The stopping rule after one epoch (``val_outputs``: the network's outputs on the validation inputs, with a
    score): the monitored value and the updated :class:`StopCarry`."""
    monitored = loss_value
    if spec.score is not None:
        monitored = one_number(spec.score, "score", val_outputs, y_val)
    # in the loop's dtype: a score of another (float32 of a bfloat16 network, a float64 one under x64, a count of
    # correct rows) would change the best value's type from one epoch to the next, which lax.while_loop refuses
    monitored = monitored.astype(stop.best.dtype)
    # A tol beyond the monitored dtype's range (1e39 in float32) is its largest number, which no finite gain reaches.
    tol = min(spec.stopping.tol, float(jnp.finfo(monitored.dtype).max))
    # The gain as a difference (exact for close values): with best ± tol a tol under half a float32 step of the
    # best rounded away, and a flat plateau counted as improving for ever.
    if spec.score is not None:
        improved_enough = monitored - stop.best >= tol
        better = monitored > stop.best
    else:
        improved_enough = stop.best - monitored >= tol
        better = monitored < stop.best
    # Until a score is finite (better than the initial -inf), the latest epoch's parameters stand in for the best.
    kept = better | jnp.isneginf(stop.best)
    return monitored, StopCarry(
        best=jnp.where(better, monitored, stop.best),
        best_params=None if spec.score is None else tree_where(kept & train.ok, train.params, stop.best_params),
        no_improvement=jnp.where(improved_enough, 0, stop.no_improvement + 1),
    )


def _schedule_step(spec: RunSpec, train: TrainCarry, stop: StopCarry) -> tuple[TrainCarry, StopCarry]:
    """The optimiser's schedule after one epoch (``jaxnn.optimizers.end_of_epoch``); a lowered rate restarts
    the stopping rule's count."""
    if schedule_of(spec.optimizer) == "constant":
        return train, stop
    opt_state, lowered = end_of_epoch(spec.optimizer, train.opt_state, _on_plateau(spec, stop))
    return train._replace(opt_state=opt_state), stop._replace(no_improvement=jnp.where(lowered, 0, stop.no_improvement))


def _on_plateau(spec: RunSpec, stop: StopCarry):
    """More than ``n_iter_no_change`` epochs in a row without improvement (never with an infinite count)."""
    if not _watches_plateaus(spec.stopping):
        return jnp.zeros(jnp.shape(stop.no_improvement), bool)
    # The count is int32: a longer patience (2**40, say) cannot be passed, and as a traced constant it overflowed.
    patience = min(spec.stopping.n_iter_no_change, int(np.iinfo(np.int32).max))
    return stop.no_improvement > patience


_TRACES = {"run_chunk": 0}


def chunk(spec: RunSpec, *, data: Data, key, train: TrainCarry, stop: StopCarry, start, stop_epoch) -> LoopState:
    """Epochs ``start, …, stop_epoch − 1`` (at most ``spec.chunk``) in one ``lax.while_loop``, ending early
    on a non-finite step or when the stopping rule fires.  Params come and go in the public layout.

    Pure and not compiled itself: the engine compiles it as it is for one member, under ``jax.vmap`` for
    several."""
    _TRACES["run_chunk"] += 1  # runs while JAX traces a new program, not on a call of a compiled one
    folded = _carries_folded(spec, train.params)
    to_loop = _fold if folded else (lambda params: params)
    from_loop = _unfold if folded else (lambda params: params)
    inputs = _prepared_inputs(spec, data.x)
    val_inputs = _prepared_inputs(spec, data.x_val) if spec.score is not None else None
    dtype = data.y.dtype

    def running(state: LoopState):
        return (state.epoch < stop_epoch) & state.train.ok & ~_on_plateau(spec, state.stop)

    def one_epoch(state: LoopState) -> LoopState:
        train, value = _run_epoch(spec, state.train, _epoch_key(key, state.epoch), inputs, data.y, data.weight, folded)
        val_outputs = None if val_inputs is None else _forward_prepared(spec, train.params, val_inputs, folded)
        stop_carry, monitored = state.stop, jnp.zeros((), dtype)
        if spec.stopping is not None:
            monitored, stop_carry = _watch(spec, state.stop, train, value, val_outputs, data.y_val)
        position = state.epoch - start
        # A curve the run does not record is not written (no kernel per epoch for it); result_of makes it NaN.
        scores, validation_losses = state.scores, state.validation_losses
        if spec.score is not None:
            scores = scores.at[position].set(monitored)
        if val_outputs is not None and spec.validation_loss is not None:
            val_loss = one_number(spec.validation_loss, "validation_loss", val_outputs, data.y_val)
            val_loss = (val_loss + _penalty_at(train.opt_state, train.params, folded)).astype(dtype)
            validation_losses = validation_losses.at[position].set(val_loss)
        train, stop_carry = _schedule_step(spec, train, stop_carry)
        return LoopState(
            epoch=state.epoch + 1,
            train=train,
            stop=stop_carry,
            history=state.history.at[position].set(value),
            scores=scores,
            validation_losses=validation_losses,
        )

    # Zeros, not NaN, until written: a finite run returns no NaN, so JAX's jax_debug_nans (which checks every
    # compiled program's outputs) stays quiet; result_of puts the NaN of epochs not run on the host.
    empty = jnp.zeros(spec.chunk, dtype)
    first = LoopState(
        epoch=start,
        train=train._replace(params=to_loop(train.params)),
        stop=stop._replace(best_params=None if spec.score is None else to_loop(stop.best_params)),
        history=empty,
        scores=empty,
        validation_losses=empty,
    )
    last = jax.lax.while_loop(running, one_epoch, first)
    return last._replace(
        train=last.train._replace(params=from_loop(last.train.params)),
        stop=last.stop._replace(best_params=None if spec.score is None else from_loop(last.stop.best_params)),
    )


def compiled_programs() -> int:
    """How many epoch-loop programs this process has traced (and so compiled) so far: the count that
    compile-once tests watch."""
    return _TRACES["run_chunk"]


def host_array(array) -> np.ndarray:
    """A host copy of an array, also of a global array spread over several processes: a replicated one is read
    from this process's copy, a split one (a population's members) gathered from every process — a collective,
    which every process reaches at the same point of the run."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        if array.is_fully_replicated:
            return np.asarray(array.addressable_data(0))
        from jax.experimental import multihost_utils  # only multi-process runs get here

        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


def _recorded(buffer, ran_here, width: int, written: bool) -> np.ndarray:
    """A chunk's curve on the host, its first ``width`` epochs: each member's value for the epochs it ran
    (``ran_here``, leading member axis), NaN after them and everywhere for a curve the run does not write."""
    values = host_array(buffer)[..., :width]
    ran = np.arange(width) < np.asarray(ran_here)[..., None]
    return np.where(ran & written, values, np.asarray(np.nan, values.dtype))


def _records_validation_loss(spec: RunSpec) -> bool:
    """Whether :func:`chunk` writes the validation loss: with a score (validation data) and a validation loss."""
    return spec.score is not None and spec.validation_loss is not None


def result_of(spec: RunSpec, chunks: list[tuple[int, LoopState]]) -> FitResult:
    """The :class:`FitResult` of a run from its chunks: ``(first epoch, state after the compiled call)`` in
    order, every leaf with a leading member axis (as :func:`chunk` under ``jax.vmap`` gives them).

    The history of each member is NaN after its own last epoch; ``params`` are the best-scoring ones with a
    validation score, else the last; ``n_epochs`` counts the healthy epochs.
    """
    last = chunks[-1][1]
    ran, histories, scores, val_losses = 0, [], [], []
    for chunk_start, state in chunks:
        ran_here = host_array(state.epoch).astype(np.int64) - chunk_start
        width = int(np.max(ran_here))
        histories.append(_recorded(state.history, ran_here, width, True))
        scores.append(_recorded(state.scores, ran_here, width, spec.score is not None))
        val_losses.append(_recorded(state.validation_losses, ran_here, width, _records_validation_loss(spec)))
        ran = ran + ran_here
    ok = host_array(last.train.ok)
    diverged = ~ok
    plateau = _watches_plateaus(spec.stopping) and host_array(last.stop.no_improvement) > spec.stopping.n_iter_no_change
    return FitResult(
        params=last.stop.best_params if spec.score is not None else last.train.params,
        opt_state=last.train.opt_state,
        history=np.concatenate(histories, axis=-1),
        diverged=diverged,
        n_epochs=ran - diverged,
        validation_scores=np.concatenate(scores, axis=-1),
        stopped=ok & plateau,
        no_improvement=host_array(last.stop.no_improvement).astype(np.int64),
        validation_losses=np.concatenate(val_losses, axis=-1),
    )


# --------------------------------------------------------------------------------------------------
# One step on one batch, for a user's own loop.


def _one_step(spec: RunSpec, params, opt_state, x, y, weight=None):
    """``(params, opt_state, loss_before_update)`` of one guarded step; shapes are checked while tracing,
    so a wrong shape is a clear ValueError and a call with known shapes costs nothing extra."""
    for name, value in (("x", x), ("y", y), ("weight", weight)):
        if value is None and name != "weight":  # else an AttributeError on None.shape
            raise TypeError(f"{name} must be an array of real numbers, got None")
        if value is not None and not hasattr(value, "shape"):  # a list reaches the traced step as a list of numbers
            raise TypeError(
                f"{name} must be an array (the step is compiled for arrays): pass jnp.asarray({name}); "
                f"got {type(value).__name__}"
            )
    spec.model.check(params, x.shape)
    if y.ndim != 2 or y.shape != (x.shape[0], spec.model.n_outputs):
        raise ValueError(
            f"y must have shape {(x.shape[0], spec.model.n_outputs)} (one row per sample, one column per output), "
            f"got {tuple(y.shape)}"
        )
    if weight is None:
        weight = jnp.ones(x.shape[0], x.dtype)
    elif weight.shape != (x.shape[0],):
        raise ValueError(f"weight must have shape ({x.shape[0]},) (one per sample), got {tuple(weight.shape)}")
    shapes = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), params)
    matching_state(
        opt_state,
        jax.eval_shape(spec.optimizer.init, shapes),
        "pass optimizer.init(params), or the opt_state the last step returned",
    )
    carry = TrainCarry(params, opt_state, jnp.bool_(True))
    carry, value, _ = _guarded_step(spec, carry, _prepared_inputs(spec, x), y, weight, folded=False)
    # weights that are not a distribution over the batch (a negative one, or none positive) would train away from
    # the data or divide by 0: the step is not taken, and its loss is NaN (train_step refuses them up front)
    usable = jnp.all(weight >= 0) & (jnp.sum(weight) > 0)
    kept = jax.tree.map(
        lambda new, old: jnp.where(usable, new, old), (carry.params, carry.opt_state), (params, opt_state)
    )
    # a finite loss whose update is not finite (too large a rate) says so too: NaN, not the loss of a step not taken
    reported = jnp.where(carry.ok | ~jnp.isfinite(value), value, jnp.nan)
    return *kept, jnp.where(usable, reported, jnp.nan)


_held_step = FallbackJit(_one_step, PLAIN_BUILDS, shapes_in_key=False, static_argnums=0)
_held_step_in_place = FallbackJit(_one_step, PLAIN_BUILDS, shapes_in_key=False, static_argnums=0, donate_argnums=(1, 2))


def step(spec: RunSpec, *, in_place: bool = False) -> Callable:
    """The compiled ``step(params, opt_state, x, y, weight=None) -> (params, opt_state, loss)`` of ``spec``.

    With ``in_place`` the parameter and optimiser-state buffers are donated (updated in place).  The program is
    one of those jaxnn holds (:class:`jaxnn._builds.FallbackJit`): every step of an equal ``spec`` shares it, one key
    whatever the batch shapes (a step is called per batch: reading them would cost every call).
    """
    compiled = partial(_held_step_in_place if in_place else _held_step, spec)

    def checked_step(params, opt_state, x, y, weight=None):
        x, y, weight = unwrapped_integers(x), unwrapped_integers(y), unwrapped_integers(weight)
        if in_place:
            params, opt_state = each_buffer_once((params, opt_state), (x, y, weight))
        try:
            return compiled(params, opt_state, x, y, weight)
        except jax.errors.JaxRuntimeError as error:  # two objects of one buffer (jax.device_put of a tree copies
            if not in_place or not any(refusal in str(error) for refusal in DONATED_TWICE):  # objects, not buffers)
                raise
            params, opt_state = each_buffer_once((params, opt_state), (x, y, weight), identity=buffers)
            return compiled(params, opt_state, x, y, weight)
        except TypeError as error:  # JAX's "Error interpreting argument to ..." names none
            if "Error interpreting argument" not in str(error):
                raise
            step_arguments(params, opt_state, x=x, y=y, weight=weight)
            raise

    return checked_step
