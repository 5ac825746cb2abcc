"""Many networks in one compiled program: :func:`fit_many` trains a population of P members at once.

Small networks leave a machine's width idle, and what their users do with them is train many: several
seeds (how much does the result depend on the initialisation?), grids of learning rates and penalties,
cross-validation folds.  Here the members share the architecture, the loss, the solver's kind and the
batch size (what selects the compiled program); each member has its own

* initial parameters (a stacked pytree with a leading member axis, e.g. ``model.init_many(keys, n)``),
* learning rate and L2 penalty (``(P,)`` arrays, or one number for all; they live in the optimiser
  state, as in the estimators, so new values compile nothing),
* shuffling key, sample weights ``(P, n)`` — a zero weight is how a member leaves out a fold or draws
  a bootstrap sample — and, where preprocessing differs per fold, inputs ``(P, n, n_features)``,
* stopping rule state (a member that stopped stops changing, the others go on) and divergence flag (a
  diverged member keeps its last finite parameters; the others are unaffected).

The program is the training loop of ``jaxnn._loop`` under ``jax.vmap`` over the members.  Members that
share their inputs share the first layer's matrix product: ``vmap`` turns P products of the same input
with P weight matrices into one product with the stacked weights.  On XLA's CPU backend the deeper
layers' batched products of many tiny matrices run as a loop of small calls: measured on 2 cores with
the seed's iris network (2000 epochs), one fit took 33–40 ms, and per member a population took 24 ms at
P = 4, 27 ms at 8, 54 ms at 16, 97 ms at 64 and 110 ms at 1000 — so on the CPU the members run in
groups of equal size, at most ``CPU_GROUP``, through one compiled program, one group after another
(:func:`default_group_size`); a group of one member runs the unbatched loop, as :func:`jaxnn.fit` does.

Same results: member i equals :func:`jaxnn.fit` run alone with member i's settings (optimiser
``tunable_solver(solver, settings)`` with its rates, key, weights), up to float32 rounding: a batched
product may sum in another order (``tests/test_population.py`` states the bound it checks).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn._checks import is_int, positive_int, prng_key
from jaxnn._loop import Data, FitResult, RunSpec, ScheduleCarry, StopCarry, TrainCarry, chunk, drive
from jaxnn.layers import Params, Sequential
from jaxnn.losses import Loss, get_loss
from jaxnn.optimizers import (
    DEFAULT_SETTINGS,
    LEARNING_RATE_SCHEDULES,
    SolverSettings,
    init_state,
    tunable_solver,
)
from jaxnn.train import (
    Stopping,
    checked_epochs,
    checked_layout,
    checked_model,
    checked_pairing,
    checked_stopping,
    finite_reals,
)

__all__ = ["CPU_GROUP", "default_group_size", "fit_many", "member"]

CPU_GROUP = 8  # members per compiled call on the CPU: iris, 2 cores, per-member time was lowest at 4-8


def member(tree, index: int):
    """Member ``index`` of a population's pytree (params, optimiser state or a FitResult's arrays)."""
    return jax.tree.map(lambda leaf: leaf[index], tree)


def _n_members(params) -> int:
    leaves = jax.tree.leaves(params)
    if not leaves or any(np.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError("params must have a leading member axis on every leaf, as model.init_many(keys, n) makes")
    sizes = {np.shape(leaf)[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(
            "params must have a leading member axis of one size on every leaf, as model.init_many(keys, n) makes; "
            f"got leading sizes {sorted(sizes)}"
        )
    return sizes.pop()


def _member_shapes(params):
    """One member's shapes (all ``model.check`` reads), without an indexing operation per leaf."""
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf)[1:], leaf.dtype), params)


@partial(jax.jit, static_argnums=0)
def _init_states(optimizer, params, rates, penalties):
    """Every member's fresh optimiser state with its rates, as one compiled call (op by op, ``vmap`` of
    ``init_state`` cost several milliseconds per call)."""
    return jax.vmap(partial(init_state, optimizer))(params, rates, penalties)


def _per_member(name: str, value, n_members: int, dtype) -> np.ndarray:
    """A number for every member, or one for all: a ``(P,)`` array of finite values ≥ 0."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = np.full(n_members, float(array))
    if array.shape != (n_members,) or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(
            f"{name} must be one finite number >= 0 or one per member ({n_members}), got shape {np.shape(value)}"
        )
    return array.astype(dtype)


def _data_array(name: str, value, n_members: int, dtype) -> tuple[np.ndarray, int | None]:
    """``value`` as a checked array shared by all members (2-D) or one per member (3-D, member axis
    first); returns it with its member axis (None when shared)."""
    array = np.asarray(value)
    if name.startswith("y") and array.ndim == 1:
        array = array[:, None]
    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be (n_samples, n_columns), or (members, n_samples, n_columns) per member")
    finite_reals(name, array)
    if array.ndim == 3 and array.shape[0] != n_members:
        raise ValueError(f"{name} has {array.shape[0]} members but params has {n_members}")
    return array.astype(dtype), (0 if array.ndim == 3 else None)


def _member_weights(weight, n_members: int, n_samples: int, dtype) -> tuple[np.ndarray, int | None]:
    w = np.ones(n_samples) if weight is None else np.asarray(weight, dtype=float)
    shape_ok = w.shape in ((n_samples,), (n_members, n_samples))
    if not shape_ok or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.all(w.reshape(-1, n_samples).sum(1) > 0):
        raise ValueError(
            f"weight must be ({n_samples},) or ({n_members}, {n_samples}) finite, non-negative numbers with a "
            "positive sum for every member"
        )
    return w.astype(dtype), (0 if w.ndim == 2 else None)


def _member_keys(key, n_members: int) -> jax.Array:
    """One key per member: ``key`` itself when it holds P keys, else the same key for every member."""
    prng_key(key)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    one_key_ndim = 0 if typed else 1
    if key.ndim == one_key_ndim:
        return jnp.broadcast_to(key, (n_members, *key.shape))
    if key.shape[0] != n_members:
        raise ValueError(f"key holds {key.shape[0]} keys but params has {n_members} members; give one or one each")
    return key


@partial(jax.jit, static_argnames=("spec", "axes"))
def _chunk_many(spec: RunSpec, axes: Data, *, data: Data, key, train, stop, start, stop_epoch):
    """:func:`jaxnn._loop.chunk` under ``vmap`` over the members; ``axes`` says which data arrays are shared."""

    def one(data, key, train, stop):
        return chunk(spec, data=data, key=key, train=train, stop=stop, start=start, stop_epoch=stop_epoch)

    return jax.vmap(one, in_axes=(axes, 0, 0, 0))(data, key, train, stop)


@partial(jax.jit, static_argnames=("spec", "axes"))
def _chunk_alone(spec: RunSpec, axes: Data, *, data: Data, key, train, stop, start, stop_epoch):
    """A group of one member through the unbatched :func:`jaxnn._loop.chunk` (on the CPU a ``vmap`` over
    one member ran the iris network 2.5 times slower than :func:`jaxnn.fit`); same inputs and outputs as
    :func:`_chunk_many`."""

    def alone(tree):
        return jax.tree.map(lambda leaf: leaf[0], tree)

    data = Data(*(array if axis is None else array[0] for array, axis in zip(data, axes, strict=True)))
    out = chunk(spec, data=data, key=key[0], train=alone(train), stop=alone(stop), start=start, stop_epoch=stop_epoch)
    return jax.tree.map(lambda leaf: leaf[None], out)


def fit_many(
    model: Sequential,
    params: Params,
    x,
    y,
    *,
    loss: str | Loss,
    epochs: int,
    solver: str | optax.GradientTransformation = "gd",
    learning_rate=0.01,
    l2=0.0,
    settings: SolverSettings = DEFAULT_SETTINGS,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    weight=None,
    opt_state: Any = None,
    start_epoch: int = 0,
    stopping: Stopping | None = None,
    validation: tuple | None = None,
    score=None,
    layout: str | None = None,
    group_size: int | None = None,
    schedule: str = "constant",
    schedule_values: ScheduleCarry | None = None,
    shuffle: bool = True,
) -> FitResult:
    """Train every member of a population for up to ``epochs`` epochs in one compiled program.

    Args:
      model: the architecture all members share.
      params: the members' starting parameters, every leaf with a leading member axis of size P.
      x: ``(n, n_features)`` shared by all members, or ``(P, n, n_features)``; y likewise with outputs.
      loss, epochs, batch_size, stopping, start_epoch, layout: as :func:`jaxnn.fit`, for every member.
      solver: ``"gd"``, ``"sgd"``, ``"adam"`` (``jaxnn.optimizers``; ``settings`` holds momentum and
        Adam's constants) or an optax transformation (which brings its own learning rate).
      learning_rate, l2: one number, or one per member (``(P,)``); ``l2`` adds ``l2·W`` to the gradient of
        every layer's weights (not its biases), as the estimators' ``alpha`` does, and the penalty
        ``½·l2·Σ‖W‖²`` to the loss each epoch reports (scikit-learn's ``loss_``).
      key: one key (every member shuffles alike) or P keys (``jax.random.split(key, P)``); needed for
        minibatches.
      weight: ``(n,)`` or ``(P, n)`` per-sample weights; 0 leaves a sample out of a member's training.
      opt_state: a stacked optimiser state to continue from (default: fresh, with the rates set).
      validation, score: as :func:`jaxnn.fit`; ``x_val``/``y_val`` may also be per member.
      group_size: members per compiled call (default :func:`default_group_size`: all of them on an
        accelerator, a few on the CPU); groups run one after another through the same program.
      schedule, schedule_values: a learning-rate schedule of ``jaxnn.optimizers`` (``"constant"``,
        ``"invscaling"``, ``"adaptive"``; the estimators' ``learning_rate`` for ``sgd``) and, for
        ``invscaling``, its values with one entry per member (a :class:`jaxnn._loop.ScheduleCarry` of
        ``(P,)`` arrays); the rates change in each member's optimiser state between epochs.
      shuffle: False visits each member's rows in order every epoch (the estimators' ``shuffle=False``).

    Returns:
      A :class:`~jaxnn.FitResult` whose leaves have a leading member axis: ``params``, ``opt_state``,
      ``history`` and ``validation_scores`` ``(P, epochs run)`` (NaN after a member's own last epoch),
      ``diverged`` and ``n_epochs`` ``(P,)``.  :func:`member` takes one member out.

    Example:
      >>> keys = jax.random.split(jax.random.key(0), 100)
      >>> params = model.init_many(keys, 4)
      >>> result = fit_many(model, params, x, y, loss="softmax_cross_entropy", epochs=500,
      ...                   learning_rate=jnp.logspace(-3, 0, 100))
    """
    model, loss = checked_model(model), get_loss(loss)
    n_members = _n_members(params)
    epochs, start_epoch = checked_epochs(epochs, start_epoch)
    stopping = checked_stopping(stopping)
    dtype = jax.tree.leaves(params)[0].dtype
    x, x_axis = _data_array("x", x, n_members, dtype)  # axis 0: one array per member; None: shared
    y, y_axis = _data_array("y", y, n_members, dtype)
    (n_samples, n_features), (y_samples, y_columns) = x.shape[-2:], y.shape[-2:]
    if y_samples != n_samples:
        raise ValueError(f"x has {n_samples} samples but y has {y_samples}; they must match")
    model.check(_member_shapes(params), (n_samples, n_features))
    if y_columns != model.n_outputs:
        raise ValueError(f"y has {y_columns} columns but the model's last layer has {model.n_outputs} units")
    weight, weight_axis = _member_weights(weight, n_members, n_samples, dtype)
    if batch_size is None:
        batch_size = n_samples
    elif not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if batch_size < n_samples and key is None:
        raise ValueError("minibatch training shuffles every epoch: pass key=jax.random.key(seed) (or one per member)")
    keys = _member_keys(jax.random.key(0) if key is None else key, n_members)
    checked_pairing(validation, score, stopping)
    if validation is None:
        x_val = y_val = np.zeros((0, 0), dtype)
        val_axes = (None, None)
    else:
        if not isinstance(validation, tuple | list) or len(validation) != 2:
            raise TypeError("validation must be a pair (x_val, y_val)")
        (x_val, x_val_axis), (y_val, y_val_axis) = (
            _data_array("x_val", validation[0], n_members, dtype),
            _data_array("y_val", validation[1], n_members, dtype),
        )
        val_axes = (x_val_axis, y_val_axis)
    if not isinstance(schedule, str) or schedule not in LEARNING_RATE_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(LEARNING_RATE_SCHEDULES)}, got {schedule!r}")
    if schedule == "invscaling" and schedule_values is None:
        raise ValueError("schedule='invscaling' needs schedule_values (a ScheduleCarry of per-member values)")
    optimizer = tunable_solver(solver, settings, varying_rate=schedule != "constant")
    if opt_state is None:
        rates = _per_member("learning_rate", learning_rate, n_members, dtype)
        penalties = _per_member("l2", l2, n_members, dtype)
        opt_state = _init_states(optimizer, params, rates, penalties)
    spec = RunSpec(
        model,
        loss,
        optimizer,
        batch_size=min(int(batch_size), n_samples),
        stopping=stopping,
        score=score,
        layout=checked_layout(layout),
        schedule=schedule,
        shuffle=bool(shuffle),
    )
    axes = Data(x_axis, y_axis, weight_axis, *val_axes)
    data = Data(x, y, weight, x_val, y_val)
    group = n_members if group_size is None else positive_int(group_size, "group_size")
    group = min(group, n_members) if group_size is not None else default_group_size(n_members)
    parts = []
    for first in range(0, n_members, group):
        rows = np.arange(first, first + group) % n_members  # the last group wraps round to keep one shape
        part = _drive_group(spec, axes, data, keys, params, opt_state, schedule_values, rows, start_epoch, epochs)
        wrapped = first + group > n_members
        parts.append(member(part, slice(0, n_members - first)) if wrapped else part)
    return parts[0] if len(parts) == 1 else _concatenate(parts)


def default_group_size(n_members: int) -> int:
    """Members per compiled call: all of them on an accelerator; on XLA's CPU backend, where batched
    products of many tiny matrices run as a loop of small calls and a large population ran slower than
    the same fits one after another (see the module docstring), at most ``CPU_GROUP``, in groups of equal
    size: ``⌈P / ⌈P / CPU_GROUP⌉⌉`` (10 members run as 2 × 5, not 8 + 8 with 6 repeated members)."""
    if jax.default_backend() != "cpu":
        return n_members
    n_groups = -(-n_members // CPU_GROUP)
    return -(-n_members // n_groups)


def _drive_group(
    spec, axes: Data, data: Data, keys, params, opt_state, schedule_values, rows, start_epoch, epochs
) -> FitResult:
    """The members ``rows`` trained by one compiled population program."""
    whole = len(rows) == len(keys) and np.array_equal(rows, np.arange(len(keys)))
    # Members are picked on the host: an eager JAX gather per leaf cost more than a short training run.
    pick = (lambda tree: tree) if whole else partial(jax.tree.map, lambda leaf: np.asarray(leaf)[rows])
    data = Data(*(array if axis is None else array[rows] for array, axis in zip(data, axes, strict=True)))
    params, dtype = pick(params), data.y.dtype
    worst = -np.inf if spec.score is not None else np.inf
    n = len(rows)
    return drive(
        spec,
        partial(_chunk_alone if n == 1 else _chunk_many, spec, axes),
        data=data,
        key=keys if whole else keys[rows],
        train=TrainCarry(
            params, pick(opt_state), np.ones(n, bool), None if schedule_values is None else pick(schedule_values)
        ),
        stop=StopCarry(np.full(n, worst, dtype), params if spec.score is not None else None, np.zeros(n, np.int32)),
        start_epoch=start_epoch,
        epochs=epochs,
    )


def _concatenate(parts: list[FitResult]) -> FitResult:
    """Groups of members back into one population; histories padded with NaN to the longest."""
    width = max(part.history.shape[1] for part in parts)

    def padded(array):
        return np.pad(array, ((0, 0), (0, width - array.shape[1])), constant_values=np.nan)

    def stacked(*leaves):
        return np.concatenate([np.asarray(leaf) for leaf in leaves])

    return FitResult(
        params=jax.tree.map(stacked, *(part.params for part in parts)),
        opt_state=jax.tree.map(stacked, *(part.opt_state for part in parts)),
        history=np.concatenate([padded(part.history) for part in parts]),
        diverged=np.concatenate([part.diverged for part in parts]),
        n_epochs=np.concatenate([part.n_epochs for part in parts]),
        validation_scores=np.concatenate([padded(part.validation_scores) for part in parts]),
        stopped=np.concatenate([part.stopped for part in parts]),
        no_improvement=np.concatenate([part.no_improvement for part in parts]),
    )
