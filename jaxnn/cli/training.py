"""Training one run: the network its head calls for, then epochs in chunks with progress, held-out loss,
checkpoints and Ctrl-C.

The network.  Hidden ``Dense`` layers of ``--layers`` widths, then the output layer that
:mod:`jaxnn.heads` chooses for the task and the loss; the targets are encoded and the outputs read back
by the same head, and the optimiser is :func:`jaxnn.optimizers.solver`'s, so every name means what it
means in the estimators.  The initial weights and the shuffle key come from ``--seed`` through
:func:`jaxnn.train.training_keys`, as in the estimators.

Chunks.  :func:`train` calls :func:`jaxnn.fit` (with the run's mesh) for about 1/50 of the run at a time
(:func:`progress_step`).  Epoch ``e`` always shuffles with ``fold_in(key, e)``, so on CPU a run cut into
any chunks — or interrupted and resumed — ends bitwise equal to an uninterrupted one.  After each chunk:
the held-out (test-split) loss is evaluated (one forward pass), progress is reported, a checkpoint is
written when one is due, and Ctrl-C is checked.

Checkpoints are due every ``--checkpoint-seconds`` (the first chunk boundary at least that long after the
last write), every ``--checkpoint-every`` epochs when given, at the end, and on Ctrl-C.  ``checkpoint.npz``
only ever holds a healthy state: a diverged run's last finite state goes to ``checkpoint-diverged.npz``, so
a resumed run that diverges leaves the last healthy checkpoint in place.

``--optimizer lbfgs`` shares the network, the state and the checkpoints but trains in
:mod:`jaxnn.cli.lbfgs_training` (no optimiser state: ``opt_state`` is ``()``; an epoch is an iteration).
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import checkpoint, distributed
from jaxnn.cli.data import Problem, stratifies
from jaxnn.cli.devices import Runtime, any_process
from jaxnn.cli.errors import PROG, CliError, Interrupted
from jaxnn.cli.interrupts import CtrlC
from jaxnn.cli.options import LBFGS, unit
from jaxnn.cli.progress import Progress
from jaxnn.data import Standardiser, standardise
from jaxnn.heads import Head, class_indices, classification_head, encode_classes, regression_head
from jaxnn.layers import Dense, Sequential
from jaxnn.lbfgs import Status
from jaxnn.metrics import accuracy
from jaxnn.optimizers import SolverSettings, solver
from jaxnn.train import fit, training_keys

__all__ = [
    "CHECKPOINT_FILE",
    "DIVERGED_FILE",
    "PROGRESS_UPDATES",
    "Run",
    "Scores",
    "Targets",
    "TrainState",
    "build_model",
    "evaluate",
    "fresh_state",
    "interrupted_message",
    "make_head",
    "make_optimizer",
    "make_targets",
    "next_stop",
    "progress_step",
    "resumed_state",
    "run_chunk",
    "save_checkpoint",
    "settled_options",
    "split_scores",
    "train",
    "with_held_out",
]

CHECKPOINT_FILE = "checkpoint.npz"
DIVERGED_FILE = "checkpoint-diverged.npz"
PROGRESS_UPDATES = 50  # about this many chunks (progress updates, held-out evaluations) per run
_STOPPED = tuple(status.name for status in Status if status != Status.RUNNING)  # how an lbfgs run can end


def make_head(options: dict[str, Any], problem: Problem) -> Head:
    """The output head for the problem's task and ``options["loss"]`` (None: the head's default loss)."""
    try:
        if problem.task == "classification":
            return classification_head(options["loss"], len(problem.class_names))
        head = regression_head(options["loss"], 1)
    except ValueError as error:
        raise CliError(f"--loss {options['loss']}: {error}") from None
    if head.output_activation != "identity":
        # jaxnn-train standardises regression targets (some become negative) and reads outputs as they are.
        raise CliError(
            f"--loss {options['loss']}: jaxnn-train fits standardised targets with a linear output; "
            "use squared_error, mean_squared_error or sum_of_squares (or NeuralNetRegressor(loss='poisson') for counts)"
        )
    return head


def settled_options(options: dict[str, Any], problem: Problem) -> dict[str, Any]:
    """The options with what the data decides: the task, the loss (the head's default) and stratification."""
    settled = {**options, "task": problem.task, "stratify": stratifies(problem.task, options["stratify"])}
    head = make_head(settled, problem)
    return {**settled, "loss": head.loss.name}


def build_model(options: dict[str, Any], head: Head) -> Sequential:
    """Hidden ``Dense`` layers of ``options["layers"]`` widths, then the head's output layer."""
    hidden = tuple(Dense(units, options["activation"]) for units in options["layers"])
    return Sequential((*hidden, Dense(head.units, head.layer_activation)))


def make_optimizer(options: dict[str, Any]) -> optax.GradientTransformation:
    """The named solver at ``--lr``; sgd with ``--momentum`` and ``--nesterov`` (cached: compiled once per setting)."""
    if options["optimizer"] == "sgd":
        return solver("sgd", options["lr"], SolverSettings(momentum=options["momentum"], nesterov=options["nesterov"]))
    return solver(options["optimizer"], options["lr"])


class Targets(NamedTuple):
    """What the network is trained on, and how regression outputs go back to the target's units."""

    train: np.ndarray  # (n, units)
    test: np.ndarray
    scaler: Standardiser | None  # regression: targets were standardised with this


def make_targets(problem: Problem, head: Head) -> Targets:
    if problem.task == "regression":
        scaler = standardise(problem.y_train[:, None])
        return Targets(scaler(problem.y_train[:, None]), scaler(problem.y_test[:, None]), scaler)
    return Targets(encode_classes(problem.y_train, head), encode_classes(problem.y_test, head), None)


class Scores(NamedTuple):
    """How ``params`` do on one split."""

    loss: float  # the training loss function on the split
    outputs: np.ndarray  # the network's outputs (before the head's link)
    predicted: np.ndarray  # class indices (classification; empty for regression)
    accuracy: float  # NaN for regression


@partial(jax.jit, static_argnums=(0, 1))
def _scores(model: Sequential, head: Head, params, x, targets, labels):
    """One compiled pass: loss, outputs, and for classification the class read-out and accuracy."""
    outputs = model.apply(params, x)
    loss = head.loss.forward(outputs, targets)
    if head.task != "classification":
        return loss, outputs, jnp.zeros(0, jnp.int32), jnp.float32(jnp.nan)
    predicted = class_indices(outputs, head)
    return loss, outputs, predicted, accuracy(predicted, labels)


def evaluate(model: Sequential, head: Head, params, x: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> Scores:
    """:class:`Scores` of ``params`` on ``x`` (``labels``: the class indices, ignored for regression), computed
    on the default device in one compiled call per split shape."""
    loss, outputs, predicted, score = _scores(
        model, head, params, np.asarray(x, np.float32), np.asarray(targets, np.float32), np.asarray(labels)
    )
    return Scores(float(loss), np.asarray(outputs), np.asarray(predicted), float(score))


class Run(NamedTuple):
    """The fixed parts of one invocation."""

    options: dict[str, Any]
    problem: Problem
    head: Head
    targets: Targets
    model: Sequential
    optimizer: optax.GradientTransformation | None  # None: lbfgs (jaxnn.lbfgs, no optax state)
    key: jax.Array  # the shuffle key
    runtime: Runtime
    data: distributed.ShardedData | None  # None: a population member (fit_many trains it) or an lbfgs run
    epochs: int
    checkpoint_every: int | None
    checkpoint_seconds: float
    out: Path | None  # None: nothing is written (also in processes other than 0)


class TrainState(NamedTuple):
    """Everything a checkpoint holds besides the key and options; arrays on the host."""

    params: Any
    opt_state: Any
    epoch: int
    history: np.ndarray  # (epoch,) mean training loss of each epoch
    held_out_epochs: np.ndarray  # (m,) the epochs after which the held-out loss was evaluated
    held_out_losses: np.ndarray  # (m,) the held-out (test-split) loss then
    seconds: float  # time in the training loop (compilation included), over all resumed runs
    total_seconds: float  # the same plus held-out evaluation, progress and checkpoint writing
    diverged: bool
    stopped: str | None = None  # lbfgs: why its last minimisation stopped, a jaxnn.lbfgs.Status name


def fresh_state(model: Sequential, optimizer: optax.GradientTransformation | None, n_features: int, seed: int):
    """``(state, shuffle_key)`` at epoch 0: the weights from ``training_keys(seed)``, as the estimators draw them.
    Without an ``optimizer`` (lbfgs) the optimiser state is ``()``.

    ``model.init`` is called on its own (not inside a larger compiled function), so the weights are the
    very numbers a script calling ``model.init(init_key, n_features)`` gets.
    """
    init_key, shuffle_key = training_keys(seed)
    params = distributed.to_host(model.init(init_key, n_features))
    opt_state = () if optimizer is None else distributed.to_host(optimizer.init(params))
    empty = np.zeros(0)
    return TrainState(params, opt_state, 0, np.zeros(0, np.float32), empty.astype(np.int64), empty, 0.0, 0.0, False), (
        shuffle_key
    )


def resumed_state(path: Path, like: TrainState) -> tuple[TrainState, jax.Array, dict]:
    """``(state, shuffle_key, config)`` from the checkpoint at ``path``, shaped like ``like``."""
    saved = checkpoint.load(path, params_like=like.params, opt_state_like=like.opt_state)
    extras = saved.extras or {}
    epochs = extras.get("held_out_epochs", np.zeros(0, np.int64)).astype(np.int64)
    losses = extras.get("held_out_losses", np.zeros(0)).astype(float)
    if epochs.shape != losses.shape or epochs.ndim != 1:
        raise checkpoint.CheckpointError(f"{path} is corrupt: its held-out loss curve is malformed")
    seconds = saved.config.get("seconds", 0.0)
    stopped = saved.config.get("stopped")
    if stopped is not None and (saved.config.get("optimizer") != LBFGS or stopped not in _STOPPED):
        raise checkpoint.CheckpointError(f"{path} is corrupt: its stopping status {stopped!r} is not an L-BFGS status")
    state = TrainState(
        saved.params,
        saved.opt_state,
        saved.epoch,
        saved.history,
        epochs,
        losses,
        seconds,
        saved.config.get("total_seconds", seconds),
        saved.config.get("diverged", False),
        stopped,
    )
    return state, saved.key, saved.config


def progress_step(epochs: int, checkpoint_every: int | None) -> int:
    """Epochs per chunk: about ``epochs / PROGRESS_UPDATES``; with ``checkpoint_every``, the largest of its
    divisors up to that, so that every such checkpoint falls on a chunk boundary."""
    target = max(1, math.ceil(epochs / PROGRESS_UPDATES))
    if checkpoint_every is None:
        return target
    return max(d for d in range(1, min(target, checkpoint_every) + 1) if checkpoint_every % d == 0)


def next_stop(done: int, epochs: int, step: int) -> int:
    """The next chunk boundary: a multiple of ``step``, or the last epoch."""
    return min(epochs, (done // step + 1) * step)


def run_chunk(run: Run, state: TrainState, epochs: int) -> TrainState:
    """``epochs`` more epochs from ``state``; stops counting at a divergence."""
    started = time.perf_counter()
    result = fit(
        run.model,
        state.params,
        run.problem.x_train,
        run.targets.train,
        loss=run.head.loss,
        epochs=epochs,
        optimizer=run.optimizer,
        opt_state=state.opt_state,
        key=run.key,
        start_epoch=state.epoch,
        batch_size=run.options["batch_size"],
        mesh=run.runtime.mesh,
    )
    ran = int(result.n_epochs)
    return state._replace(
        params=result.params,
        opt_state=result.opt_state,
        epoch=state.epoch + ran,
        history=np.concatenate([state.history, np.asarray(result.history[:ran], np.float32)]),
        seconds=state.seconds + time.perf_counter() - started,
        diverged=bool(result.diverged),
    )


def split_scores(run: Run, params, split: str) -> Scores:
    """:class:`Scores` of ``params`` on the ``"train"`` or ``"test"`` split."""
    problem = run.problem
    x, labels = (problem.x_train, problem.y_train) if split == "train" else (problem.x_test, problem.y_test)
    if problem.task != "classification":
        labels = np.zeros(0, np.int32)  # no classes to count
    return evaluate(run.model, run.head, params, x, getattr(run.targets, split), labels)


def with_held_out(run: Run, state: TrainState) -> TrainState:
    """The state with the held-out loss of its parameters appended (at its epoch)."""
    loss = split_scores(run, state.params, "test").loss
    return state._replace(
        held_out_epochs=np.append(state.held_out_epochs, state.epoch).astype(np.int64),
        held_out_losses=np.append(state.held_out_losses, loss),
    )


def _training_accuracy(run: Run, params) -> float | None:
    """Accuracy on the training split (None for regression), for the progress report."""
    if run.problem.task != "classification":
        return None
    return split_scores(run, params, "train").accuracy


def save_checkpoint(run: Run, state: TrainState) -> Path | None:
    """Write ``state`` to ``checkpoint.npz`` (``checkpoint-diverged.npz`` after a divergence); None without --out."""
    if run.out is None:
        return None
    config = {
        **run.options,
        "epochs": run.epochs,
        "seconds": state.seconds,
        "total_seconds": state.total_seconds,
        "diverged": state.diverged,
        "n_features": int(run.problem.x_train.shape[1]),
        "input_columns": list(run.problem.feature_names),
        "class_names": list(run.problem.class_names),
        "data_sha256": run.problem.fingerprint,
        **({} if state.stopped is None else {"stopped": state.stopped}),
    }
    path = run.out / (DIVERGED_FILE if state.diverged else CHECKPOINT_FILE)
    checkpoint.save(
        path,
        params=state.params,
        opt_state=state.opt_state,
        key=run.key,
        epoch=state.epoch,
        history=state.history,
        config=config,
        extras={"held_out_epochs": state.held_out_epochs, "held_out_losses": state.held_out_losses},
    )
    return path


def interrupted_message(run: Run, epoch: int) -> str:
    """The line printed after Ctrl-C once training has started (empty in processes that print nothing)."""
    if not run.runtime.main:
        return ""
    saved = f"checkpoint in {run.out}; continue with --resume {run.out}" if run.out else "no --out, nothing saved"
    return f"{PROG}: interrupted at {unit(run.options['optimizer'])} {epoch}; {saved}"


def train(run: Run, state: TrainState, progress: Progress, ctrl_c: CtrlC) -> TrainState:
    """Chunks of epochs up to ``run.epochs`` (or a divergence), with progress, held-out loss and checkpoints.

    Ctrl-C (in any process) checkpoints the last finished chunk and raises :class:`Interrupted`.  The
    returned state has been checkpointed (with ``--out``).
    """
    step = progress_step(run.epochs, run.checkpoint_every)
    started = last_write = time.perf_counter()
    total_before = state.total_seconds
    written_at = None  # the epoch of the last checkpoint written by this invocation

    def timed(state: TrainState) -> TrainState:
        return state._replace(total_seconds=total_before + time.perf_counter() - started)

    def write(state: TrainState) -> TrainState:
        nonlocal last_write, written_at
        save_checkpoint(run, timed(state))
        last_write, written_at = time.perf_counter(), state.epoch
        return timed(state)

    while state.epoch < run.epochs and not state.diverged:
        if any_process(ctrl_c.pressed, run.runtime):
            break
        state = run_chunk(run, state, next_stop(state.epoch, run.epochs, step) - state.epoch)
        state = with_held_out(run, state)
        last_loss = float(state.history[-1]) if len(state.history) else math.nan
        progress.update(state.epoch, last_loss, _training_accuracy(run, state.params), float(state.held_out_losses[-1]))
        due = (
            state.diverged
            or state.epoch == run.epochs
            or (run.checkpoint_every is not None and state.epoch % run.checkpoint_every == 0)
            or time.perf_counter() - last_write >= run.checkpoint_seconds
        )
        if due:
            state = write(state)
    progress.close()
    if ctrl_c.pressed or (state.epoch < run.epochs and not state.diverged):
        if written_at != state.epoch:
            state = write(state)
        raise Interrupted(interrupted_message(run, state.epoch))
    if written_at != state.epoch:  # nothing left to run (a resumed run at its end): still record the options
        state = write(state)
    return timed(state)
