"""The estimators' door to jaxnn's training engine: a checked fit becomes one planned run per network
(:class:`Plan`), and the runs train alone or, when they share a compiled configuration, together as one
population.

The engine's door.  This is the only module of the scikit-learn layer that calls the training engine
(:func:`jaxnn.engine.train`, and its L-BFGS solver ``jaxnn.lbfgs``): :func:`run_alone`,
:func:`train_population` and :func:`run_lbfgs`; the rest of :mod:`jaxnn.sklearn` sees plans and results.

Model selection without recompiling.  Compiled code is cached on the *static* configuration (layer sizes,
activations, solver, its momentum/betas, ``batch_size``, ``tol``, ``n_iter_no_change``, ``early_stopping``);
refitting that configuration reuses it:

* ``max_iter`` is not part of it: the loop runs in chunks of a fixed compiled length, so any ``max_iter`` (a
  grid over it included) runs the same program;
* ``learning_rate_init`` and ``alpha`` are not baked into the compiled code: they live in the optimiser state
  (``optax.inject_hyperparams``; for ``gd``, and ``sgd`` without momentum, a state of two rates that keeps the
  loop's fast path for plain descent), so a grid over them compiles once; so is ``power_t`` (the kind of
  ``learning_rate`` and ``shuffle`` are part of the configuration);
* the ``dropout`` rates are data too (one per hidden layer and network), so a grid over rates above 0 compiles
  once; whether there is dropout at all is part of the configuration (``dropout=0`` has no mask in its loop);
* sample counts are padded with rows of weight 0, which the loss ignores, to one of eight sizes per doubling
  (…, 112, 120, 128, 144, 160, …; see :func:`padded_size`), so the folds of a cross-validation share one
  compiled loop (the final refit on all rows usually needs a second);
* the optimiser objects are cached per solver setting (jaxnn's compiled loop is keyed on their identity).

Many fits as one population.  Runs that share the static configuration (and ``max_iter``, input width and
float type) train as one :func:`jaxnn.engine.train` population: per member its seed's weights and
shuffle key, learning rate, ``alpha``, dropout rates, data (padded with rows of weight 0 to the members' largest
padded size) and validation split.  Each member ends as its run alone would, up to float rounding.

Callbacks.  A run may come with a *watch* (:data:`jaxnn.sklearn.callbacks.Watch`, the fit's scikit-learn
callbacks): it hears ``(epochs trained in this run, its weights then)`` after every compiled chunk, through the
engine's one hook (:class:`jaxnn.engine.ChunkHook`; L-BFGS's ``callback``).  Runs without one train as before.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from sklearn.model_selection import train_test_split

from jaxnn import engine, lbfgs
from jaxnn._checks import UINT32_LIMIT, epsilon_fits_dtype, fits_dtype, rates_fit_dtype, weights_not_flushed
from jaxnn.engine import CPU_GROUP, FitResult, RunSpec, decide_layout, member, stacked
from jaxnn.heads import Head, ValidationLoss, ValidationScore, checked_scoring
from jaxnn.layers import Dense, Sequential
from jaxnn.optimizers import ScheduleValues, SolverSettings, continued_state, init_state, make, schedule_of
from jaxnn.sklearn.class_weights import TRAINED_IN, scale_weights
from jaxnn.sklearn.constraints import Config
from jaxnn.sklearn.initial_weights import MLP_INIT, as_numpy, cast_floats, initial_weights, mlp_random_state
from jaxnn.sklearn.targets import Targets

__all__ = [
    "DEVICE_ALIGNMENT",
    "POPULATION_BYTES",
    "TRAINING_ROWS",
    "Plan",
    "Previous",
    "Setup",
    "Watch",
    "ensemble_seeds",
    "l2_rate_in_dtype",
    "lbfgs_warning",
    "network",
    "pad_rows",
    "padded_size",
    "plan_runs",
    "precision",
    "rates_in_dtype",
    "run_alone",
    "run_lbfgs",
    "train_plans",
    "train_population",
    "training_rows",
]

POPULATION_BYTES = 2**30  # per-member training data stacked for one population call, at most (then several)


class Setup(NamedTuple):
    """One fit's checked inputs, before any JAX work."""

    config: Config
    X: np.ndarray
    y: np.ndarray  # as validated
    weight: np.ndarray
    targets: Targets
    model: Sequential
    seed: int  # random_state's seed (ensemble members: see ensemble_seeds)
    continuing: bool  # warm_start or partial_fit on a fitted estimator
    incremental: bool  # partial_fit
    stratify: np.ndarray | None = None  # what the early-stopping split stratifies on (None: a plain split)


class Previous(NamedTuple):
    """What a continued fit (``warm_start``, ``partial_fit``) starts from: the fitted estimator's state."""

    params: list  # [{"W": …, "b": …}] per layer
    optimizer_state: Any  # None: the last fit took no steps (lbfgs); a fresh state starts
    samples_seen: int  # t_
    epochs: int  # len(loss_curve_): the epoch the loop continues from
    watched: tuple[float, int] | None  # a warm_start fit: the stopping rule's best value and count so far


class Plan(NamedTuple):
    """One network's training run, ready for jaxnn's loop; the arrays are unpadded."""

    spec: RunSpec  # the run alone: a full batch has batch_size = its padded row count
    solver: str | optax.GradientTransformation  # solver and settings: what its optimiser is built from
    settings: SolverSettings
    full_batch: bool
    params: Any
    opt_state: Any
    key: jax.Array  # the shuffle key
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None  # x_val, and y_val with the weights as a last column
    start_epoch: int
    epochs: int
    alone: bool  # a continued fit runs by itself
    watched: tuple[float, int] | None = None  # a warm_start fit: the stopping rule's best value and count so far
    dropout: np.ndarray | None = None  # (n_hidden,) rates, with spec.dropout


# --------------------------------------------------------------------------------------------------
# Padding: sample counts are rounded up so that nearby sizes share compiled code.


TRAINING_ROWS = 16  # training data (and validation data) of up to this many rows share one padded size


def padded_size(n: int, *, minimum: int = TRAINING_ROWS) -> int:
    """The rows ``n`` samples are padded to: ``minimum``, or above it the smallest of eight sizes per
    doubling (…, 112, 120, 128, 144, 160, …, 256, 288, …) that holds them.

    Above ``minimum`` at most one row in eight is padding, and k-fold splits of one data set (sizes
    differing by one) mostly land on the same size.  Training pads little (``minimum=16``): every epoch
    computes on the padding rows too (iris's 112 rows padded to 256 took 45 % longer per epoch), while a
    new size costs one compilation.  Predictions pad their own way (``jaxnn.sklearn.prediction.prediction_rows``).
    """
    if n <= minimum:
        return minimum
    step = max(1, 1 << ((n - 1).bit_length() - 4))
    return -(-n // step) * step


# XLA's CPU client computes on a host buffer aligned to this many bytes in place when it is placed on the
# device; NumPy aligns its allocations to 16 bytes, and such a buffer is copied once more.
DEVICE_ALIGNMENT = 64


def pad_rows(array: np.ndarray, n_rows: int) -> np.ndarray:
    """``array`` with zero rows appended up to ``n_rows``, in a new buffer aligned to :data:`DEVICE_ALIGNMENT`
    bytes, so that placing it on the CPU device copies nothing (the numbers are in ``benchmarks/README.md``).
    Nothing may write to the result once it is placed: the device array shares its memory."""
    padding = n_rows - array.shape[0]
    if padding == 0:
        return array
    padded = _aligned_empty((n_rows, *array.shape[1:]), array.dtype)
    padded[: array.shape[0]] = array
    padded[array.shape[0] :] = 0
    return padded


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data start at a multiple of :data:`DEVICE_ALIGNMENT` bytes."""
    n_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    raw = np.empty(n_bytes + DEVICE_ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % DEVICE_ALIGNMENT
    return raw[start : start + n_bytes].view(dtype).reshape(shape)


def precision(dtype):
    """float64 data train in float64, inside ``jax.enable_x64`` for this call only."""
    return jax.enable_x64(bool(dtype == np.float64))


# --------------------------------------------------------------------------------------------------
# Planning: one run per network.


def network(config: Config, head: Head) -> Sequential:
    """The network of ``config``: its hidden layers, then the last layer ``head`` asks for."""
    # init='mlp' weights are drawn with NumPy, never by model.init: its layers carry Glorot, the nearest
    # of jaxnn's initialisers (uniform weights, bound √(6/(n_in + n_out)), zero biases).
    init = "glorot" if config.init == MLP_INIT else config.init
    hidden = tuple(
        Dense(units, activation, init=init)
        for units, activation in zip(config.hidden_layer_sizes, config.activations, strict=True)
    )
    return Sequential((*hidden, Dense(head.units, head.layer_activation, init=init)))


def ensemble_seeds(seed: int, n_ensemble: int) -> list[int]:
    """Member k's seed, ``(seed + k) mod 2**32``: member 0 is the network a single fit trains, and member k
    the network ``random_state=seed + k`` trains alone (``jax.random.key`` streams of different seeds are
    independent)."""
    return [(seed + k) % UINT32_LIMIT for k in range(n_ensemble)]


def _solver_settings(config: Config) -> SolverSettings:
    return SolverSettings(
        momentum=config.momentum,
        nesterov=config.nesterovs_momentum,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
    )


def optimizer_for(config: Config):
    """The named solver with its schedule (``jaxnn.optimizers.make``); its learning rate, L2 rate and the
    schedule's values live in the optimiser state."""
    # alpha is always an L2 rate
    return make(config.solver, _solver_settings(config), with_l2=True, schedule=config.schedule)


def training_rows(config: Config, n_samples: int) -> int:
    """The rows an epoch trains on: all, or those ``train_test_split`` leaves after holding out
    ``ceil(validation_fraction · n)`` for early stopping."""
    if not config.early_stopping:
        return n_samples
    return n_samples - int(np.ceil(config.validation_fraction * n_samples))


X_DTYPE_ADVICE = "pass X as float64 (X.astype(np.float64))"


def rates_in_dtype(config: Config, batch_weight: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(learning_rate_init, l2_rate)`` as ``dtype`` scalars (X's dtype, which the optimiser state keeps them in;
    ``l2_rate`` is ``alpha / batch_weight``, a batch's sample weight), after checking the numbers training reads in
    that dtype with :func:`jaxnn._checks.rates_fit_dtype`, as ``jaxnn.fit`` does: a ValueError naming the parameter
    when ``learning_rate_init`` (sgd, adam), the L2 rate or ``power_t`` (sgd's invscaling) passes the dtype's range
    (in float32 1e39 became infinity: divergence in the first epoch), when ``learning_rate_init`` is flushed to zero
    there (1e-40 trained nothing, silently), or when adam's ``epsilon`` is (1e-40: ``m / (√v + 0)`` is NaN for a
    weight whose gradients are all 0, where scikit-learn's MLP trains).  The L2 rate's error names alpha over the
    batch's weight, since small sample weights take an alpha well inside the range beyond it."""
    check = partial(rates_fit_dtype, dtype=dtype, role=TRAINED_IN, advice=X_DTYPE_ADVICE)
    learning_rate = check("learning_rate_init", np.float64(config.learning_rate_init), positive=True)
    l2 = l2_rate_in_dtype(config.alpha, dtype, batch_weight, "a batch's sample weight")
    if config.schedule == "invscaling":
        check("power_t", np.float64(config.power_t))
    if config.solver == "adam":
        epsilon_fits_dtype("epsilon", config.epsilon, dtype, role=TRAINED_IN, advice=X_DTYPE_ADVICE)
    return learning_rate, l2


def l2_rate_in_dtype(alpha: float, dtype, weight: float = 1.0, whose: str | None = None) -> np.ndarray:
    """``alpha / weight`` as a ``dtype`` scalar (``whose`` names the weight: a batch's sample weight for the
    minibatch solvers' L2 rate, their sum for lbfgs's penalty ``alpha/(2·Σw)·Σ‖W‖²``; None: ``alpha`` itself), or a
    ValueError naming the numbers when it passes the dtype's range (small sample weights take an alpha well inside
    the range beyond it), saying to pass a smaller alpha or, below float64, float64 X."""
    smaller = "pass a smaller alpha" + ("" if np.dtype(dtype) == np.float64 else f", or {X_DTYPE_ADVICE}")
    name = "alpha" if whose is None else f"alpha over {whose} ({alpha:.3g} / {weight:.3g})"
    return fits_dtype(name, np.float64(alpha / weight), dtype, role=TRAINED_IN, advice=smaller)


def _schedule_values(config: Config, samples_seen: int, samples_per_epoch: int, dtype) -> ScheduleValues | None:
    """The values of sgd's learning-rate schedule for the optimiser state (None for a constant rate): data,
    not part of the compiled program, so a grid over ``learning_rate_init`` and ``power_t`` compiles once."""
    if config.schedule == "constant":
        return None
    values = (config.learning_rate_init, config.power_t, samples_seen, samples_per_epoch)
    return ScheduleValues(*(np.asarray(value, dtype) for value in values))


def plan_runs(setup: Setup, previous: Previous | None) -> list[Plan]:
    """The training runs of a fit: one per network, ``n_ensemble`` of them (see :func:`ensemble_seeds`);
    ``previous``: what a continued fit starts from (None for a fresh one)."""
    return [_plan(setup, seed, previous) for seed in ensemble_seeds(setup.seed, setup.config.n_ensemble)]


def _plan(setup: Setup, seed: int, previous: Previous | None) -> Plan:
    """The run of the network of ``seed``: its initial weights and shuffle key, its share of the data (the
    early-stopping split depends on the seed), its optimiser state and the spec of the compiled loop.

    The data stay unpadded: :func:`run_alone` pads them (rows of weight 0, see :func:`padded_size`), a
    population pads every member to the largest of its members' padded sizes.
    """
    config, X, head = setup.config, setup.X, setup.targets.head
    dtype = X.dtype
    params, shuffle_key = initial_weights(config.init, config.init_factor, setup.model, seed, X.shape[1], dtype)
    if setup.continuing:
        params = [{"W": np.asarray(p["W"], dtype), "b": np.asarray(p["b"], dtype)} for p in previous.params]

    x_train, t_train, w_train = X, setup.targets.matrix, setup.weight
    validation = None
    if config.early_stopping:
        # MLP's random state at its split: the one that drew its initial weights (the same for every init)
        draws = mlp_random_state(setup.model, seed, X.shape[1], after_init=not setup.continuing)
        x_train, t_train, w_train, validation = _split_validation(config, X, t_train, w_train, setup.stratify, draws)
        # the weights as a whole were checked in X's dtype; the rows kept for training may hold no normal one
        kept = "the sample weights of the rows early_stopping trains on (validation_fraction of the rows are held out)"
        largest = "the largest weight among the rows kept for training, not of all rows: that may be held out"
        advice = scale_weights(dtype, largest=largest)
        weights_not_flushed(kept, np.asarray(w_train, dtype), advice)
    n = x_train.shape[0]
    batch = n if config.batch_size is None else min(config.batch_size, n)
    optimizer = optimizer_for(config)
    batch_weight = float(w_train.sum()) * batch / n
    # Host scalars: jnp conversions would each be a small program to compile in a fresh process.
    learning_rate, l2_rate = rates_in_dtype(config, batch_weight, dtype)
    samples_seen = previous.samples_seen if setup.continuing else 0
    opt_state = init_state(optimizer, params, learning_rate, l2_rate, _schedule_values(config, samples_seen, n, dtype))
    # A network fitted by lbfgs has no step-taking optimiser state: partial_fit starts a fresh one (as MLP).
    # partial_fit continues the optimiser as scikit-learn does: a schedule's rate and values are the state's own
    # (this call's rows counted from here), a constant rate is ``learning_rate_init`` as it is now set.  Settings
    # changed since (set_params) take effect; a state they cannot continue (another solver or schedule, momentum
    # switched on or off) is replaced by the fresh one.
    if setup.incremental and setup.continuing and previous.optimizer_state is not None:
        carried = cast_floats(previous.optimizer_state, dtype)
        if jax.tree.structure(carried) == jax.tree.structure(opt_state):
            opt_state = continued_state(carried, learning_rate=learning_rate, l2_rate=l2_rate, samples=n)
    spec = RunSpec(
        setup.model,
        head.loss,
        optimizer,
        batch_size=padded_size(n) if batch >= n else batch,
        stopping=None if setup.incremental else config.stopping,
        score=None if validation is None else ValidationScore(head, checked_scoring(config.scoring, head)),
        validation_loss=None if validation is None else ValidationLoss(head.loss),
        layout=decide_layout(None, setup.model, setup.X.shape[1]),
        shuffle=config.shuffle or batch >= n,  # a full batch has no order: one program either way
        dropout=any(rate > 0 for rate in config.dropout),
    )
    return Plan(
        spec=spec,
        solver=config.solver,
        settings=_solver_settings(config),
        full_batch=batch >= n,
        params=params,
        opt_state=opt_state,
        key=shuffle_key,
        x=x_train,
        y=t_train.astype(dtype, copy=False),
        weight=w_train,
        validation=validation,
        start_epoch=previous.epochs if setup.continuing else 0,
        epochs=1 if setup.incremental else config.max_iter,
        alone=setup.continuing or setup.incremental,
        watched=previous.watched if setup.continuing and not setup.incremental else None,
        dropout=np.asarray(config.dropout, dtype) if spec.dropout else None,
    )


def _split_validation(config: Config, X, targets, weight, stratify, draws: np.random.RandomState):
    """Hold out ``validation_fraction`` of the data (stratified for classes) with ``draws``, as scikit-learn's
    MLP; the validation targets carry the sample weights as a last column (for ``ValidationScore``)."""
    try:
        x_train, x_val, t_train, t_val, w_train, w_val = train_test_split(
            X,
            targets,
            weight,
            test_size=config.validation_fraction,
            random_state=draws,
            stratify=stratify,
        )
    except ValueError as error:  # scikit-learn's message (MLP's too) speaks of test_size and groups: say whose
        held_out = "a stratified " if stratify is not None else ""
        too_few = "least populated" in str(error)  # no validation_fraction helps a class of one sample
        raise ValueError(
            f"{error} jaxnn: early_stopping=True holds out {held_out}validation_fraction="
            f"{config.validation_fraction:g} of the {X.shape[0]} samples for validation (the test_size above)"
            + ("; every class needs at least 2 samples" if too_few else "")
            + (". Give more samples of each class" if too_few else ". Give more samples, change validation_fraction")
            + ", or set early_stopping=False"
        ) from error
    if x_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' or the size of your dataset. "
            f"It has {x_val.shape[0]} samples; early_stopping needs at least 2"
        )
    if not w_val.sum() > 0:  # MLP's scorer's message, then what it is about
        raise ValueError(
            "Sample weights must contain at least one non-zero number. jaxnn: every one of the "
            f"{x_val.shape[0]} samples early_stopping=True held out for validation (validation_fraction="
            f"{config.validation_fraction:g}) has weight 0; give them weight, change validation_fraction, or set "
            "early_stopping=False"
        )
    if not w_train.sum() > 0:
        raise ValueError("every training sample left after the validation split has weight zero")
    val_targets = np.concatenate([t_val, w_val[:, None]], axis=1).astype(X.dtype, copy=False)
    return x_train, t_train, w_train, (x_val, val_targets)


# --------------------------------------------------------------------------------------------------
# Training: runs of one compiled configuration together, the others alone.


def _population_key(plan: Plan):
    """What runs must share to train as one population: the compiled configuration (the spec, but for the
    row count of a full batch, which padding to a common size makes equal), dtype, input width and epochs.

    None for a run that goes alone: a continued fit, or a spec that would not be rebuilt from the
    solver and its settings (then member i would not be run i)."""
    spec = plan.spec
    rebuilt = spec._replace(
        optimizer=make(plan.solver, plan.settings, with_l2=True, schedule=schedule_of(spec.optimizer))
    )
    if plan.alone or rebuilt != spec:
        return None
    static = spec._replace(batch_size=0) if plan.full_batch else spec
    return static, plan.x.dtype, plan.x.shape[1], plan.start_epoch, plan.epochs


Watch = Callable[[int, Callable[[], Any]], None]  # what a run reports to: jaxnn.sklearn.callbacks.Watch


def train_plans(plans: list[Plan], watches: list[Watch | None] | None = None) -> list[FitResult | Exception]:
    """Each plan's FitResult (or the exception its run raised), in order: plans of one population key train
    together, the others alone.  ``watches[i]`` (None: nothing) hears plan i's progress between chunks."""
    watches = [None] * len(plans) if watches is None else watches
    groups: dict = {}
    for index, plan in enumerate(plans):
        key = _population_key(plan)
        groups.setdefault(("alone", index) if key is None else key, []).append(index)
    results: list = [None] * len(plans)
    for indices in groups.values():
        group, heard = [plans[i] for i in indices], [watches[i] for i in indices]
        with precision(group[0].x.dtype):
            trained = _train_together(group, heard) if len(group) > 1 else [_run_captured(group[0], heard[0])]
        for index, result in zip(indices, trained, strict=True):
            results[index] = result
    return results


def _train_together(plans: list[Plan], watches: list[Watch | None]) -> list[FitResult | Exception]:
    """Plans of one population key as populations of at most ``_members_per_call`` members; a population
    the device cannot run (e.g. out of memory) runs its members one by one."""
    size = _members_per_call(plans)
    results = []
    for first in range(0, len(plans), size):
        part, heard = plans[first : first + size], watches[first : first + size]
        if len(part) == 1:
            results.append(_run_captured(part[0], heard[0]))
            continue
        try:
            results.extend(train_population(part, heard))
        except jax.errors.JaxRuntimeError:
            results.extend(_run_captured(plan, watch) for plan, watch in zip(part, heard, strict=True))
    return results


def _members_per_call(plans: list[Plan]) -> int:
    """All members, unless their stacked training data pass ``POPULATION_BYTES``: then as many as fit, in
    whole groups of ``CPU_GROUP`` (the CPU's compiled group size, so no new program is built)."""
    rows = max(padded_size(plan.x.shape[0]) for plan in plans)
    first = plans[0]
    per_member = rows * (first.x.shape[1] + first.y.shape[1] + 1) * first.x.dtype.itemsize
    fitting = POPULATION_BYTES // per_member
    if fitting >= len(plans):
        return len(plans)
    return max(CPU_GROUP, fitting // CPU_GROUP * CPU_GROUP)


def _run_captured(plan: Plan, watch: Watch | None = None) -> FitResult | Exception:
    try:
        return run_alone(plan, watch)
    except Exception as error:  # its fit raises it (fit) or returns it (fit_estimators)
        return error


def _chunk_hook(plans: list[Plan], watches: list[Watch | None] | None) -> engine.ChunkHook | None:
    """The engine's hook that tells each watched plan its epochs and weights after every chunk; None when no
    plan is watched (the run is then exactly what it is without callbacks)."""
    if watches is None or all(watch is None for watch in watches):
        return None

    def seen(members, epochs, result) -> None:
        so_far = cache(result)  # one transfer for all the members of the chunk
        for position, (index, epoch) in enumerate(zip(members, epochs, strict=True)):
            if watches[index] is not None:
                weights = partial(_member_params, so_far, position)
                watches[index](int(epoch) - plans[index].start_epoch, weights)

    return engine.ChunkHook(seen, seconds=engine.CHUNK_SECONDS)


def _member_params(result: Callable[[], FitResult], position: int):
    return as_numpy(member(result(), position).params)


def run_alone(plan: Plan, watch: Watch | None = None) -> FitResult:
    """The run by itself, a population of one, on data padded to :func:`padded_size` rows (the engine's door
    ``jaxnn.fit`` uses; the arrays were checked by ``validate_data``, so not a second time)."""
    rows = padded_size(plan.x.shape[0])
    best, no_improvement = plan.watched or (None, 0)
    x_val = y_val = None
    if plan.validation is not None:
        val_rows = padded_size(plan.validation[0].shape[0])
        x_val, y_val = (pad_rows(array, val_rows) for array in plan.validation)
    return engine.train_one(
        plan.spec,
        params=plan.params,
        opt_state=plan.opt_state,
        x=pad_rows(plan.x, rows),
        y=pad_rows(plan.y, rows),
        weight=pad_rows(plan.weight, rows),
        key=plan.key,
        start_epoch=plan.start_epoch,
        epochs=plan.epochs,
        x_val=x_val,
        y_val=y_val,
        best=best,
        no_improvement=no_improvement,
        dropout=plan.dropout,
        hook=_chunk_hook([plan], None if watch is None else [watch]),
    )


def _shared_or_stacked(arrays: list[np.ndarray]) -> np.ndarray:
    """The members' arrays: one array when all are equal (an ensemble's inputs: the members then share the
    first layer's product and its memory), else stacked along a leading member axis."""
    first = arrays[0]
    if all(array is first or np.array_equal(array, first) for array in arrays[1:]):
        return first
    return np.stack(arrays)


def train_population(plans: list[Plan], watches: list[Watch | None] | None = None) -> list[FitResult]:
    """Runs of one population key trained as one population by :func:`jaxnn.engine.train`.

    Member i is run i alone up to float rounding (a batched product may add in another order): its rows are
    padded with rows of weight 0 up to the largest padded row count of the members, which changes nothing
    — a padding row adds 0 to the loss and its gradient, a batch of padding only is skipped, and an epoch's
    minibatches put the padding behind the real rows, whose order does not depend on how much padding
    follows (``jaxnn._loop.epoch_batches``).  Its weights, learning rate, L2 rate, shuffle key, dropout
    rates, data and validation data are its own.
    """
    first = plans[0]
    rows = max(padded_size(plan.x.shape[0]) for plan in plans)

    def members(field: str, n_rows: int, index: int | None = None) -> np.ndarray:
        """The members' arrays padded to ``n_rows`` and stacked; only the inputs are shared when equal (a
        member axis on every other array keeps the compiled program independent of such coincidences)."""
        arrays = [getattr(plan, field) if index is None else getattr(plan, field)[index] for plan in plans]
        padded = [pad_rows(array, n_rows) for array in arrays]
        return _shared_or_stacked(padded) if field == "x" else np.stack(padded)

    x_val = y_val = np.zeros((0, 0), first.x.dtype)
    if first.validation is not None:
        val_rows = max(padded_size(plan.validation[0].shape[0]) for plan in plans)
        x_val, y_val = members("validation", val_rows, 0), members("validation", val_rows, 1)
    keys = np.stack([np.asarray(jax.random.key_data(plan.key)) for plan in plans])
    x = members("x", rows)
    spec = first.spec._replace(batch_size=rows if first.full_batch else min(first.spec.batch_size, rows))
    population = engine.train(
        spec,
        engine.Members(
            params=stacked([plan.params for plan in plans]),
            opt_state=stacked([plan.opt_state for plan in plans]),
            keys=jax.random.wrap_key_data(keys),
            dropout=np.stack([plan.dropout for plan in plans]) if spec.dropout else None,
        ),
        engine.Data(x, members("y", rows), members("weight", rows), x_val, y_val),
        axes=engine.Data(None if x.ndim == 2 else 0, 0, 0, *((None, None) if first.validation is None else (0, 0))),
        start_epoch=first.start_epoch,
        epochs=first.epochs,
        mesh=engine.estimators_mesh(),  # several devices (of this process, or of every one): members split across them
        hook=_chunk_hook(plans, watches),
    )
    population = as_numpy(population)
    return [member(population, i) for i in range(len(plans))]


# --------------------------------------------------------------------------------------------------
# solver='lbfgs': scikit-learn's full-batch L-BFGS, its own compiled loop.


LBFGS_LIMIT = 2**31 - 1  # the most iterations / evaluations jaxnn.lbfgs counts (int32)


def run_lbfgs(setup: Setup, params, *, max_fun: int, watch: Watch | None = None) -> lbfgs.LbfgsResult:
    """L-BFGS from ``params`` on the fit's data padded to :func:`padded_size` rows (:func:`jaxnn.lbfgs.run`):
    the full-batch objective, penalty included, for at most ``max_iter`` iterations and ``max_fun``
    evaluations, until ``max |∂L/∂θ| ≤ tol`` or scipy's relative reduction test stops it.  A limit of 2**31 or
    more (scikit-learn accepts any positive integer) means no limit: it is clamped to the largest count the
    compiled loop holds, which no run reaches.  ``watch`` hears the iterations done and the weights after each
    compiled call of about a second (:class:`jaxnn.engine.Pace`), the last included."""
    config, X = setup.config, setup.X
    rows = padded_size(X.shape[0])
    # the objective takes alpha in X's dtype and divides it by Σw there: both must stay finite (1e39 in float32
    # ended the minimisation at its start, "not finite at the starting weights")
    l2_rate_in_dtype(config.alpha, X.dtype)
    l2_rate_in_dtype(config.alpha, X.dtype, float(np.sum(setup.weight)), "the sample weights' sum")
    spec = lbfgs.LbfgsSpec(setup.model, setup.targets.head.loss, layout=decide_layout(None, setup.model, X.shape[1]))

    def heard(result: lbfgs.LbfgsResult) -> None:
        watch(result.n_iter, lambda: as_numpy(result.params))

    result = lbfgs.run(
        spec,
        params=params,
        x=pad_rows(X, rows),
        y=pad_rows(setup.targets.matrix.astype(X.dtype, copy=False), rows),
        weight=pad_rows(setup.weight, rows),
        alpha=config.alpha,
        max_iter=min(config.max_iter, LBFGS_LIMIT),
        max_fun=min(max_fun, LBFGS_LIMIT),
        gtol=config.stopping.tol,
        callback=None if watch is None else heard,
        # calls of about a second, watched or not: Ctrl-C, which Python sees between compiled calls, lands soon
        pace=engine.Pace(engine.CHUNK_SECONDS, longest=spec.chunk),
    )
    if watch is not None:
        heard(result)  # the last call (the callback hears the calls after which the minimisation goes on)
    return result


def lbfgs_warning(result: lbfgs.LbfgsResult, max_iter: int) -> str | None:
    """The ConvergenceWarning text of an L-BFGS run that stopped on a limit (scikit-learn's), else None."""
    return lbfgs.convergence_message(result, max_iter)
