"""One network's training run: its setup (:class:`RunSetup`: the network its head calls for, the data, the
optimiser), its state and checkpoint, and the step-taking optimisers' (gd, sgd, adam) training of it.

The network.  Hidden ``Dense`` layers of ``--layers`` widths (none for ``--layers none``), then the output layer
that :mod:`jaxnn.heads` chooses for the task and the loss; the targets are encoded and the outputs read back
by the same head, and the optimiser is :func:`jaxnn.optimizers.solver`'s, so every name means what it
means in the estimators.  The initial weights and the shuffle key come from ``--seed`` through
:func:`jaxnn.train.training_keys`, as in the estimators.

Training.  :func:`train` hands :func:`advance` (:func:`jaxnn.fit` on the run's mesh with the run's ``--l2`` as
its ``l2``, at most 1/50 of the run per call) to the chunk runner (:mod:`jaxnn.cli.runner`), which evaluates
the held-out (test-split) loss after each chunk, reports progress, writes checkpoints and sees the stop signals.
Epoch ``e`` always shuffles with ``fold_in(key, e)``, so on CPU a run cut into any chunks — or interrupted and
resumed — ends bitwise equal to an uninterrupted one.

Checkpoints (:func:`save_checkpoint`).  ``checkpoint.npz`` only ever holds a healthy state: a diverged run's
last finite state goes to ``checkpoint-diverged.npz``, so a resumed run that diverges leaves the last healthy
checkpoint in place.

``--optimizer lbfgs`` (:mod:`jaxnn.cli.lbfgs_training`) and population runs (:mod:`jaxnn.cli.population`)
share the network, the state and the checkpoints (lbfgs has no optimiser state: ``opt_state`` is ``()``; an
epoch is an iteration; its :class:`jaxnn.lbfgs.LbfgsState` goes into the checkpoint's extras as
``lbfgs.<field>`` arrays, see :func:`lbfgs_extras`).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import checkpoint, distributed, lbfgs
from jaxnn._builds import PLAIN_BUILDS, FallbackJit
from jaxnn.cli.data import Problem, stratifies
from jaxnn.cli.devices import Runtime, arithmetic_setting
from jaxnn.cli.errors import PROG, CliError, WriteFailed, is_disk_full
from jaxnn.cli.interrupts import StopSignals
from jaxnn.cli.options import LBFGS, show, unit
from jaxnn.cli.progress import Progress
from jaxnn.cli.runner import PROGRESS_UPDATES, ChunkRunner, Hooks, Schedule, next_stop, progress_step
from jaxnn.data import Standardiser, standardise
from jaxnn.heads import Head, class_indices, classification_head, encode_classes, regression_head
from jaxnn.layers import Dense, Params, Sequential
from jaxnn.lbfgs import LbfgsState, Status
from jaxnn.losses import LOSSES, get_loss
from jaxnn.metrics import accuracy
from jaxnn.optimizers import DEFAULT_SETTINGS, SolverSettings, init_state, make
from jaxnn.train import fit, training_keys

# PROGRESS_UPDATES, next_stop and progress_step are the runner's chunking, named here too (as before it moved).
__all__ = [
    "CHECKPOINT_FILE",
    "DIVERGED_FILE",
    "PROGRESS_UPDATES",
    "RunSetup",
    "Scores",
    "Targets",
    "TrainState",
    "advance",
    "build_model",
    "device_memory",
    "evaluate",
    "fresh_state",
    "held_out_epochs_fit",
    "interrupted_message",
    "last_held_out_loss",
    "lbfgs_extras",
    "make_head",
    "make_optimizer",
    "make_targets",
    "memory_needed",
    "next_stop",
    "progress_step",
    "refuse_non_finite_losses",
    "refuse_what_cannot_fit",
    "regression_losses",
    "resumed_state",
    "save_checkpoint",
    "schedule",
    "settled_options",
    "solver_settings",
    "split_scores",
    "stored_lbfgs_state",
    "stored_times",
    "train",
    "tunable_rates",
    "with_held_out",
    "write_or_say_why",
]

CHECKPOINT_FILE = "checkpoint.npz"
DIVERGED_FILE = "checkpoint-diverged.npz"
_STOPPED = tuple(status.name for status in Status if status != Status.RUNNING)  # how an lbfgs run can end


def make_head(options: dict[str, Any], problem: Problem) -> Head:
    """The output head for the problem's task and ``options["loss"]`` (None: the head's default loss)."""
    loss = options["loss"]
    if problem.task == "regression" and loss is not None and get_loss(loss).task != "regression":
        # the library's advice names the Poisson losses, which jaxnn-train refuses (below)
        raise CliError(
            f"--loss {loss}: loss {loss!r} is a classification loss ({get_loss(loss).task}) but the target is "
            f"continuous; use {_or_list(regression_losses())}"
        )
    try:
        if problem.task == "classification":
            return classification_head(loss, len(problem.class_names))
        head = regression_head(loss, 1)
    except ValueError as error:
        raise CliError(f"--loss {loss}: {error}") from None
    if head.output_activation != "identity":
        # jaxnn-train standardises regression targets (some become negative) and reads outputs as they are.
        raise CliError(
            f"--loss {loss}: jaxnn-train fits standardised targets with a linear output; "
            f"use {_or_list(regression_losses())} (or NeuralNetRegressor(loss='poisson') for counts)"
        )
    return head


def regression_losses() -> list[str]:
    """The losses jaxnn-train trains a regression with: those of a linear output (standardised targets can be
    negative, so the Poisson losses' exp output cannot fit them)."""
    return [
        name
        for name, loss in sorted(LOSSES.items())
        if loss.task == "regression" and loss.output_activation == "identity"
    ]


def _or_list(names: list[str]) -> str:
    """``'a', 'b' or 'c'``: quoted names for advice."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def settled_options(options: dict[str, Any], problem: Problem) -> dict[str, Any]:
    """The options with what the data decides: the task, the loss (the head's default) and stratification."""
    settled = {**options, "task": problem.task, "stratify": stratifies(problem.task, options["stratify"])}
    head = make_head(settled, problem)
    return {**settled, "loss": head.loss.name}


def build_model(options: dict[str, Any], head: Head) -> Sequential:
    """Hidden ``Dense`` layers of ``options["layers"]`` widths, then the head's output layer (alone for ``[]``,
    ``--layers none``: a linear model through the head's link, as the estimators' ``hidden_layer_sizes=()``)."""
    hidden = tuple(Dense(units, options["activation"]) for units in options["layers"])
    return Sequential((*hidden, Dense(head.units, head.layer_activation)))


# Copies of the parameters a run holds besides the parameters themselves: the gradient, and the optimiser's state
# (sgd's momentum, Adam's two moments, L-BFGS's memory of 10 curvature pairs and its iterate, gradient, direction).
_STATE_COPIES = {"gd": 1, "sgd": 2, "adam": 3, LBFGS: 25}
_FLOAT_BYTES = 4  # float32


def memory_needed(options: dict[str, Any], problem: Problem, head: Head, members: int = 1) -> tuple[int, int]:
    """``(bytes, weights)``: about the memory a run of ``members`` networks needs, and its parameter count.

    The parameters, the gradient and the optimiser's state, and for the widest pass (the training or test
    split evaluated whole, or a minibatch) every layer's activations and their gradients, in float32.  A rough
    lower bound (XLA's temporaries come on top): what is certainly too large is refused before compiling.
    """
    widths = [problem.x_train.shape[1], *options["layers"], head.units]
    weights = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(widths))
    rows = max(len(problem.y_train), len(problem.y_test), options["batch_size"] or 0)
    copies = 1 + _STATE_COPIES.get(options["optimizer"], 3)
    return members * _FLOAT_BYTES * (copies * weights + 2 * rows * sum(widths[1:])), weights


def device_memory(device, meminfo: str = "/proc/meminfo") -> tuple[int, str]:
    """``(bytes, what)``: the memory of ``device`` (JAX's ``memory_stats``), or where JAX does not say (CPUs) the
    memory available on the host now (Linux's ``MemAvailable``, else the free pages: its total memory let a run
    that the other processes' memory left no room for be killed by the kernel, without a word); ``(0, "")`` when
    neither is known."""
    try:
        stats = device.memory_stats() or {}
    except Exception:  # not every backend implements it
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the {device.platform} device"
    try:
        with open(meminfo, encoding="ascii") as lines:
            kib = next(int(line.split()[1]) for line in lines if line.startswith("MemAvailable:"))
        return kib * 1024, "memory available on this machine"
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"), "memory free on this machine"
    except (AttributeError, ValueError, OSError):
        return 0, ""


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def refuse_what_cannot_fit(
    options: dict[str, Any], problem: Problem, head: Head, runtime: Runtime, members: int = 1
) -> None:
    """Refuse (:class:`CliError`) a network that cannot fit in the first device's memory, before anything is
    allocated or compiled: ``--layers 1000000000`` is one line, not an XLA out-of-memory traceback."""
    needed, weights = memory_needed(options, problem, head, members)
    available, where = device_memory(next(iter(runtime.mesh.devices.flat)))
    if available and needed > available:
        layers = show("layers", options["layers"])
        networks = f"{members} networks of " if members > 1 else ""
        raise CliError(
            f"--layers {layers}: {networks}{weights:,} weights need about {_size(needed)} to train, more than "
            f"the {_size(available)} of {where}; use narrower layers"
            + (" or fewer --lr/--l2/--seed values" if members > 1 else "")
        )


def solver_settings(options: dict[str, Any]) -> SolverSettings:
    """sgd's ``--momentum`` and ``--nesterov``; the defaults (which the other solvers ignore) otherwise."""
    if options["optimizer"] == "sgd":
        return SolverSettings(momentum=options["momentum"], nesterov=options["nesterov"])
    return DEFAULT_SETTINGS


def make_optimizer(options: dict[str, Any]) -> optax.GradientTransformation:
    """The named solver at ``--lr``; sgd with ``--momentum`` and ``--nesterov`` (cached: compiled once per setting).

    Without ``--l2`` the rate is built into the update (:func:`jaxnn.optimizers.solver`, a state without rates:
    the form of every checkpoint written before ``--l2``).  With ``--l2`` above 0 it is the named solver whose
    state holds the learning rate and the L2 rate (:func:`jaxnn.optimizers.tunable_solver`), which
    :func:`jaxnn.fit` trains with given ``optimizer=name, learning_rate=, l2=``: the run is that call."""
    if options["l2"]:
        return make(options["optimizer"], solver_settings(options))
    return make(options["optimizer"], solver_settings(options), learning_rate=options["lr"])


def tunable_rates(options: dict[str, Any]) -> tuple[float, float] | None:
    """``(learning_rate, l2)`` that the optimiser state of an ``--l2`` run holds; None without ``--l2`` (or lbfgs)."""
    return (options["lr"], options["l2"]) if options["l2"] and options["optimizer"] != LBFGS else None


class Targets(NamedTuple):
    """What the network is trained on, and how regression outputs go back to the target's units."""

    train: np.ndarray  # (n, units)
    test: np.ndarray
    scaler: Standardiser | None  # regression: targets were standardised with this
    weight: np.ndarray | None = None  # (n,) the training rows' weights (--class-weight); None: every row 1


def make_targets(problem: Problem, head: Head, class_weight: str | None = None) -> Targets:
    """The encoded targets of both splits; with ``--class-weight balanced`` the training rows' weights,
    ``n_samples / (n_classes · count(class))`` over the training split: the estimators' ``class_weight``
    (:func:`jaxnn.sklearn.class_weights.class_weighted`, scikit-learn's ``compute_class_weight``)."""
    if problem.task == "regression":
        scaler = standardise(problem.y_train[:, None])
        return Targets(scaler(problem.y_train[:, None]), scaler(problem.y_test[:, None]), scaler)
    weight = None
    if class_weight is not None:
        from jaxnn.sklearn.class_weights import class_weighted  # scikit-learn's, for a weighted run only

        ones = np.ones(len(problem.y_train), np.float32)
        weight = class_weighted(class_weight, problem.y_train, ones, incremental=False)
    return Targets(encode_classes(problem.y_train, head), encode_classes(problem.y_test, head), None, weight)


class Scores(NamedTuple):
    """How ``params`` do on one split."""

    loss: float  # the training loss function on the split
    outputs: np.ndarray  # the network's outputs (before the head's link)
    predicted: np.ndarray  # class indices (classification; empty for regression)
    accuracy: float  # NaN for regression


def _scores(model: Sequential, head: Head, params, x, targets, labels):
    """One compiled pass: loss, outputs, and for classification the class read-out and accuracy."""
    outputs = model.apply(params, x)
    loss = head.loss.forward(outputs, targets)
    if head.task != "classification":
        return loss, outputs, jnp.zeros(0, jnp.int32), jnp.float32(jnp.nan)
    predicted = class_indices(outputs, head)
    return loss, outputs, predicted, accuracy(predicted, labels)


_compiled_scores = FallbackJit(_scores, PLAIN_BUILDS, static_argnums=(0, 1))


def evaluate(model: Sequential, head: Head, params, x: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> Scores:
    """:class:`Scores` of ``params`` on ``x`` (``labels``: the class indices, ignored for regression), computed
    on the default device in one compiled call per split shape.

    Standardised test rows far beyond the training rows (1e300 away) overflow float32 in the cast: they give an
    infinite loss and metric, which the run reports in words (numpy's RuntimeWarning named jaxnn's source).
    """
    with np.errstate(over="ignore"):
        x, targets = np.asarray(x, np.float32), np.asarray(targets, np.float32)
    loss, outputs, predicted, score = _compiled_scores(model, head, params, x, targets, np.asarray(labels))
    return Scores(float(loss), np.asarray(outputs), np.asarray(predicted), float(score))


class RunSetup(NamedTuple):
    """A training run's setup: the fixed parts of one network's run (a single run, or a population's member)."""

    options: dict[str, Any]
    problem: Problem
    head: Head
    targets: Targets
    model: Sequential
    optimizer: optax.GradientTransformation | None  # None: lbfgs (jaxnn.lbfgs, no optax state)
    key: jax.Array  # the shuffle key
    runtime: Runtime
    epochs: int
    checkpoint_every: int | None
    checkpoint_seconds: float
    out: Path | None  # None: nothing is written (also in processes other than 0)


class TrainState(NamedTuple):
    """Everything a checkpoint holds besides the key and options; arrays on the host."""

    params: Params
    opt_state: optax.OptState  # () for lbfgs
    epoch: int
    history: np.ndarray  # (epoch,) mean training loss of each epoch
    held_out_epochs: np.ndarray  # (m,) the epochs after which the held-out loss was evaluated
    held_out_losses: np.ndarray  # (m,) the held-out (test-split) loss then
    seconds: float  # time in the training loop (compilation included), over all resumed runs
    total_seconds: float  # the same plus held-out evaluation, progress and checkpoint writing
    diverged: bool
    stopped: str | None = None  # lbfgs: why its last minimisation stopped, a jaxnn.lbfgs.Status name
    lbfgs: LbfgsState | None = None  # lbfgs: the minimisation reached (host arrays); None: a fresh one starts


def fresh_state(
    model: Sequential,
    optimizer: optax.GradientTransformation | None,
    n_features: int,
    seed: int,
    rates: tuple[float, float] | None = None,
):
    """``(state, shuffle_key)`` at epoch 0: the weights from ``training_keys(seed)``, as the estimators draw them.
    Without an ``optimizer`` (lbfgs) the optimiser state is ``()``; ``rates`` (:func:`tunable_rates`) are set in
    the state of an ``--l2`` run's optimiser (:func:`jaxnn.optimizers.init_state`, as :func:`jaxnn.fit` sets them).

    ``model.init`` is called on its own (not inside a larger compiled function), so the weights are the
    very numbers a script calling ``model.init(init_key, n_features)`` gets.
    """
    init_key, shuffle_key = training_keys(seed)
    params = distributed.to_host(model.init(init_key, n_features))
    if optimizer is None:
        opt_state = ()
    elif rates is None:
        opt_state = distributed.to_host(optimizer.init(params))
    else:
        dtype = jax.tree.leaves(params)[0].dtype  # fit keeps the rates in the parameters' dtype
        learning_rate, l2 = (np.asarray(rate, dtype) for rate in rates)
        opt_state = distributed.to_host(init_state(optimizer, params, learning_rate, l2))
    empty = np.zeros(0)
    return TrainState(params, opt_state, 0, np.zeros(0, np.float32), empty.astype(np.int64), empty, 0.0, 0.0, False), (
        shuffle_key
    )


def resumed_state(path: Path, like: TrainState) -> tuple[TrainState, jax.Array, dict]:
    """``(state, shuffle_key, config)`` from the checkpoint at ``path``, shaped like ``like``."""
    saved = checkpoint.load(path, params_like=like.params, opt_state_like=like.opt_state)
    extras = saved.extras or {}
    epochs = extras.get("held_out_epochs", np.zeros(0, np.int64))
    losses = extras.get("held_out_losses", np.zeros(0))
    if epochs.shape != losses.shape or losses.dtype.kind != "f" or not held_out_epochs_fit(epochs, saved.epoch):
        raise checkpoint.CheckpointError(f"{path} is corrupt: its held-out loss curve is malformed")
    seconds, total_seconds = stored_times(path, saved.config)
    diverged = saved.config.get("diverged", False)
    if not isinstance(diverged, bool) or (diverged and path.name == CHECKPOINT_FILE):
        raise checkpoint.CheckpointError(
            f"{path} is corrupt: its diverged flag ({diverged!r}) is not one {PROG} writes "
            f"(false or true, and never true in a {CHECKPOINT_FILE})"
        )
    if not diverged:
        refuse_non_finite_losses(path, saved.history, "its")
    stopped = saved.config.get("stopped")
    if stopped is not None and (saved.config.get("optimizer") != LBFGS or stopped not in _STOPPED):
        raise checkpoint.CheckpointError(f"{path} is corrupt: its stopping status {stopped!r} is not an L-BFGS status")
    minimisation = stored_lbfgs_state(path, extras, saved.params, saved.epoch, healthy=not diverged)
    if minimisation is not None and saved.config.get("optimizer") != LBFGS:
        raise checkpoint.CheckpointError(f"{path} is corrupt: it holds an L-BFGS state but is not an lbfgs run")
    state = TrainState(
        saved.params,
        saved.opt_state,
        saved.epoch,
        saved.history,
        epochs.astype(np.int64),
        losses.astype(float),
        seconds,
        total_seconds,
        diverged,
        stopped,
        minimisation,
    )
    if saved.key.shape != ():  # jaxnn-train saves its run's one key (checkpoint.save of an earlier jaxnn took more)
        raise checkpoint.CheckpointError(f"{path} is corrupt: its RNG key entry holds {saved.key.size} keys, not one")
    return state, saved.key, saved.config


def refuse_non_finite_losses(path: Path, losses: np.ndarray, whose: str) -> None:
    """A :class:`CheckpointError` when the training ``losses`` a checkpoint at ``path`` stores for a run that did
    not diverge (``whose``: "its", or a population's "its members'") hold NaN or an infinity: jaxnn-train records
    a non-finite loss only as a divergence, which ends the run (or the member)."""
    if not np.all(np.isfinite(losses)):
        raise checkpoint.CheckpointError(
            f"{path} is corrupt: {whose} training losses hold NaN or an infinity, which only a diverged run records"
        )


def held_out_epochs_fit(epochs: np.ndarray, epoch: int) -> bool:
    """Whether ``epochs`` can be the epochs of a held-out loss curve stored at ``epoch``: integers, 1-D, rising,
    each from 0 (a population's member that diverged at its first step has a point at its start) to ``epoch``."""
    return (
        epochs.dtype.kind in "iu"
        and epochs.ndim == 1
        and bool(np.all((epochs >= 0) & (epochs <= epoch)))
        and bool(np.all(np.diff(epochs) > 0))
    )


def stored_times(path: Path, config: dict[str, Any]) -> tuple[float, float]:
    """``(seconds, total_seconds)`` stored in the config of the checkpoint at ``path`` (0 where absent, as in a
    checkpoint from an older jaxnn-train); a value that is not a number of seconds is a :class:`CheckpointError`."""
    seconds = config.get("seconds", 0.0)
    times = (seconds, config.get("total_seconds", seconds))
    for name, value in zip(("seconds", "total_seconds"), times, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise checkpoint.CheckpointError(f"{path} is corrupt: its {name} ({value!r}) is not a number of seconds")
    return float(times[0]), float(times[1])


_LBFGS_PREFIX = "lbfgs."  # the checkpoint extras that hold an lbfgs run's LbfgsState


def lbfgs_extras(state: LbfgsState | None) -> dict[str, np.ndarray]:
    """An L-BFGS state as checkpoint extras, one plain array per field: ``lbfgs.theta``, ``lbfgs.memory.s``,
    ``lbfgs.n_iter``, ... (none without a state)."""
    if state is None:
        return {}
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return {
        _LBFGS_PREFIX + jax.tree_util.keystr(path, simple=True, separator="."): np.asarray(leaf)
        for path, leaf in leaves
    }


def stored_lbfgs_state(
    path: Path, extras: dict[str, np.ndarray], params, epoch: int, *, healthy: bool = True
) -> LbfgsState | None:
    """The L-BFGS state of a checkpoint's extras (None in one without: an older checkpoint, or one written
    before the minimisation started), checked against its parameters and ``epoch``; a ``healthy`` run's (not a
    diverged one's, nor one stopped ``NON_FINITE``) also finite where a minimisation keeps it so (a NaN gradient
    or memory pair resumed in silence as a minimisation that stopped early or went elsewhere)."""
    stored = {name: array for name, array in extras.items() if name.startswith(_LBFGS_PREFIX)}
    if not stored:
        return None
    fresh = lbfgs.initial_state(params)
    like = lbfgs_extras(fresh)
    fits = set(stored) == set(like) and all(
        stored[name].shape == array.shape and stored[name].dtype == array.dtype for name, array in like.items()
    )
    if not fits:
        raise checkpoint.CheckpointError(f"{path} is corrupt: its L-BFGS state does not fit the network")
    state = jax.tree.unflatten(jax.tree.structure(fresh), [stored[name] for name in like])
    statuses = [int(status) for status in Status if status != Status.STOPPED]
    sound = (
        np.array_equal(state.theta, fresh.theta)  # the iterate is the saved parameters
        and 0 <= state.n_iter <= epoch
        and 0 <= state.n_fun
        and 0 <= state.memory.count <= state.memory.s.shape[0]
        and int(state.status) in statuses
    )
    memory = state.memory
    sound = sound and (
        not healthy
        or int(state.status) == Status.NON_FINITE  # stopped where the loss or its gradient was not finite
        or (
            all(np.all(np.isfinite(part)) for part in (state.grad, memory.s, memory.y))
            and np.all(memory.rho >= 0)  # 1/sᵀy of accepted pairs (sᵀy > 0; NaN fails too), 0 in empty slots
            and memory.gamma > 0
            and (state.n_fun == 0 or np.isfinite(state.value))  # NaN until the first evaluation
            and (state.n_iter == 0 or np.isfinite(state.previous_value))
        )
    )
    if not sound:
        raise checkpoint.CheckpointError(
            f"{path} is corrupt: its L-BFGS state does not match its parameters and counts"
        )
    return state


def advance(setup: RunSetup, state: TrainState, epochs: int) -> TrainState:
    """``epochs`` more epochs of the run's optimiser from ``state`` (:func:`jaxnn.fit` with the run's mesh, the
    library call of gd, sgd and adam runs; it splits the training rows across the mesh's devices); the epoch
    count stops at a divergence.  With ``--l2`` the call is ``fit(optimizer=name, learning_rate=lr, l2=l2)``
    (:func:`make_optimizer`), whose history holds the penalised loss."""
    options = setup.options
    solver = {"optimizer": setup.optimizer}
    if tunable_rates(options) is not None:
        solver = {
            "optimizer": options["optimizer"],
            "settings": solver_settings(options),
            "learning_rate": options["lr"],
            "l2": options["l2"],
        }
    result = fit(
        setup.model,
        state.params,
        setup.problem.x_train,
        setup.targets.train,
        loss=setup.head.loss,
        weight=setup.targets.weight,
        epochs=epochs,
        opt_state=state.opt_state,
        key=setup.key,
        start_epoch=state.epoch,
        batch_size=setup.options["batch_size"],
        dropout=setup.options["dropout"],
        mesh=setup.runtime.mesh,
        **solver,
    )
    ran = int(result.n_epochs)
    return state._replace(
        params=result.params,
        opt_state=result.opt_state,
        epoch=state.epoch + ran,
        history=np.concatenate([state.history, np.asarray(result.history[:ran], np.float32)]),
        diverged=bool(result.diverged),
    )


def split_scores(setup: RunSetup, params: Params, split: str) -> Scores:
    """:class:`Scores` of ``params`` on the ``"train"`` or ``"test"`` split."""
    problem = setup.problem
    x, labels = (problem.x_train, problem.y_train) if split == "train" else (problem.x_test, problem.y_test)
    if problem.task != "classification":
        labels = np.zeros(0, np.int32)  # no classes to count
    return evaluate(setup.model, setup.head, params, x, getattr(setup.targets, split), labels)


def with_held_out(setup: RunSetup, state: TrainState) -> TrainState:
    """The state with the held-out loss of its parameters appended (at its epoch), unless a point at that epoch
    is there already: a chunk that ran no epoch (a divergence at its first step, or a resumed lbfgs run that
    stopped before its first iteration) left the parameters, and so the held-out loss, as they were."""
    if len(state.held_out_epochs) and state.held_out_epochs[-1] == state.epoch:
        return state
    loss = split_scores(setup, state.params, "test").loss
    return state._replace(
        held_out_epochs=np.append(state.held_out_epochs, state.epoch).astype(np.int64),
        held_out_losses=np.append(state.held_out_losses, loss),
    )


def save_checkpoint(setup: RunSetup, state: TrainState) -> Path | None:
    """Write ``state`` to ``checkpoint.npz`` (``checkpoint-diverged.npz`` after a divergence); None without --out."""
    if setup.out is None:
        return None
    config = {
        **setup.options,
        "epochs": setup.epochs,
        "checkpoint_every": setup.checkpoint_every,
        "seconds": state.seconds,
        "total_seconds": state.total_seconds,
        "diverged": state.diverged,
        "n_features": int(setup.problem.x_train.shape[1]),
        "input_columns": list(setup.problem.feature_names),
        "class_names": list(setup.problem.class_names),
        "data_sha256": setup.problem.fingerprint,
        "arithmetic": arithmetic_setting(),
        **({} if state.stopped is None else {"stopped": state.stopped}),
    }
    path = setup.out / (DIVERGED_FILE if state.diverged else CHECKPOINT_FILE)
    write = partial(_save, setup, state, path, config)
    write_or_say_why(path, unit(setup.options["optimizer"]), state.epoch, write)
    return path


def write_or_say_why(path: Path, what: str, epoch: int, write: Callable[[], None], name: str = "checkpoint") -> None:
    """``write()`` the checkpoint at ``path`` (of ``what``, epoch or iteration, ``epoch``); a write error (a full
    disk, ``--out`` removed, a read-only file system) becomes :class:`WriteFailed`, whose line says why and which
    checkpoint the failed write left (the one written before, if any)."""
    try:
        write()
    except OSError as error:
        try:
            kept = f"the {name} of {what} {checkpoint.read_config(path)['epoch']} is kept"
        except (OSError, checkpoint.CheckpointError):
            kept = "no earlier checkpoint is there"
        if is_disk_full(error):
            then = f"continue with --resume {path.parent}" if kept.endswith("is kept") else "run again"
            raise WriteFailed(
                f"{PROG}: the disk is full: could not write {name} {path} at {what} {epoch}; {kept}: free some "
                f"space, then {then}"
            ) from None
        reason = error.strerror or str(error)
        raise WriteFailed(f"{PROG}: could not write {name} at {what} {epoch} ({reason}); {kept}") from None


def _save(setup: RunSetup, state: TrainState, path: Path, config: dict[str, Any]) -> None:
    checkpoint.save(
        path,
        params=state.params,
        opt_state=state.opt_state,
        key=setup.key,
        epoch=state.epoch,
        history=state.history,
        config=config,
        extras={
            "held_out_epochs": state.held_out_epochs,
            "held_out_losses": state.held_out_losses,
            **lbfgs_extras(state.lbfgs),
        },
    )


def interrupted_message(setup: RunSetup, epoch: int) -> str:
    """The line printed after Ctrl-C once training has started (empty in processes that print nothing)."""
    if not setup.runtime.main:
        return ""
    saved = f"checkpoint in {setup.out}; continue with --resume {setup.out}" if setup.out else "no --out, nothing saved"
    return f"{PROG}: interrupted at {unit(setup.options['optimizer'])} {epoch}; {saved}"


def schedule(setup: RunSetup) -> Schedule:
    """The run's ``--epochs``, ``--checkpoint-every`` and ``--checkpoint-seconds``, for the chunk runner."""
    return Schedule(setup.epochs, setup.checkpoint_every, setup.checkpoint_seconds)


def _progress_values(setup: RunSetup, state: TrainState) -> tuple[float, float | None, float]:
    """The last epoch's mean training loss, the training accuracy (None for regression), the held-out loss."""
    last_loss = float(state.history[-1]) if len(state.history) else math.nan
    score = split_scores(setup, state.params, "train").accuracy if setup.problem.task == "classification" else None
    return last_loss, score, last_held_out_loss(state)


def last_held_out_loss(state: TrainState) -> float:
    """The held-out loss last recorded (:func:`with_held_out`), NaN before the first: progress shows it between
    the epochs where it is evaluated."""
    return float(state.held_out_losses[-1]) if len(state.held_out_losses) else math.nan


def train(setup: RunSetup, state: TrainState, progress: Progress, stop: StopSignals) -> TrainState:
    """Chunks of :func:`advance` up to ``setup.epochs`` (or a divergence), with progress, held-out loss and
    checkpoints (:class:`jaxnn.cli.runner.ChunkRunner`).

    Ctrl-C (in any process) checkpoints the last finished chunk and raises :class:`Interrupted`.  The
    returned state has been checkpointed (with ``--out``).
    """
    hooks = Hooks(
        held_out=partial(with_held_out, setup),
        progress=partial(_progress_values, setup),
        interrupted=lambda state: interrupted_message(setup, state.epoch),
        save=lambda state: save_checkpoint(setup, state),
        finished=lambda state: state.diverged,
    )
    return ChunkRunner(schedule(setup), hooks, progress, stop, setup.runtime).train(state, partial(advance, setup))
