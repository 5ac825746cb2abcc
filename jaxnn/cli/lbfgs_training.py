"""Training one run with ``--optimizer lbfgs``: full-batch L-BFGS, what ``solver='lbfgs'`` means in the estimators.

    jaxnn-train --optimizer lbfgs --out runs/iris          # at most 200 iterations
    jaxnn-train --resume runs/iris --epochs 400             # continue, up to 400 iterations in all

What is minimised.  The run's ``--loss`` over the whole training split, ``L(θ) = (1/n) Σ_i l_i`` (jaxnn-train
has no L2 penalty: ``alpha = 0``), from the initial weights every jaxnn-train run draws from ``--seed``, by
:func:`jaxnn.lbfgs.minimize`: scipy's L-BFGS-B step for step in one compiled loop, the code behind the
estimators' ``solver='lbfgs'``.  It stops on scipy's rules with :mod:`jaxnn.lbfgs`'s defaults (checked
after each iteration, in this order):

* ``--epochs`` iterations done in all (``MAX_ITER``); ``--epochs`` is the most iterations, as an MLP's
  ``max_iter`` is for lbfgs, and its default is the same 200;
* more than ``lbfgs.MAX_FUN`` (15000) evaluations of ``L`` and ``∇L`` in this invocation (``MAX_FUN``);
* ``max |∂L/∂θ| ≤ lbfgs.GTOL`` (1e-5, scipy's ``gtol``; the estimators pass their ``tol``, 1e-4 by default,
  here instead) (``CONVERGED_GRADIENT``);
* ``L_old − L_new ≤ lbfgs.FTOL · max(|L_old|, |L_new|, 1)`` (scipy's ``ftol``) (``CONVERGED_REDUCTION``);
* the line search found no acceptable step, even along ``−∇L`` (``LINE_SEARCH_FAILED``, or ``NON_FINITE``
  when the loss was not finite there).

The summary says which (:func:`stop_reason`, with scipy's message); ``metrics.json`` and the checkpoint keep
the :class:`jaxnn.lbfgs.Status` name as ``stopped``.  An lbfgs "epoch" is an iteration throughout:
``history.csv`` has one row per iteration (``L`` after it) and the checkpoint's ``epoch`` counts iterations.

Chunks.  :mod:`jaxnn.lbfgs` runs the minimisation in its own compiled loop, about a fiftieth of ``--epochs``
iterations per call; between calls (its ``callback``, which changes no iterate) the run evaluates the held-out
loss, reports progress, writes a checkpoint every ``--checkpoint-seconds``, and sees Ctrl-C: the minimisation
stops there (status ``STOPPED``), the state reached (the parameters are always the last accepted, finite
ones) is checkpointed and the run exits with status 130.  A second Ctrl-C quits at once and keeps the
checkpoint written before.

Resume.  ``--resume`` continues from the checkpoint's parameters with a fresh L-BFGS memory, as a
``warm_start`` fit of scikit-learn's MLP does: the checkpoint holds the parameters, not the curvature pairs,
so a run resumed in two parts takes other steps than an uninterrupted one (it evaluates ``L`` again at its
start, and its ``MAX_FUN`` budget is per invocation), and it may run on after a run that converged.

Not with lbfgs: several devices or hosts (one device computes: ``--devices N`` with N > 1 and the multi-host
flags are usage errors), ``--checkpoint-every`` (checkpoints follow ``--checkpoint-seconds``), populations
(lists in ``--seed``), ``--lr`` and ``--batch-size`` (:mod:`jaxnn.cli.options` refuses those).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from jaxnn import distributed, lbfgs
from jaxnn.cli.devices import require_one_device
from jaxnn.cli.errors import CliError, Interrupted
from jaxnn.cli.interrupts import CtrlC
from jaxnn.cli.progress import Progress
from jaxnn.cli.training import Run, TrainState, interrupted_message, save_checkpoint, split_scores, with_held_out
from jaxnn.lbfgs import Status

__all__ = ["PROGRESS_CALLS", "check_arguments", "chunk_size", "minimise", "stop_reason", "train"]

_MOST_ITERATIONS = 2**31 - 1  # jaxnn.lbfgs counts in int32; MAX_FUN stops a run long before

_REASONS = {
    Status.CONVERGED_GRADIENT: f"converged: every entry of the loss's gradient is at most gtol = {lbfgs.GTOL:g}",
    Status.CONVERGED_REDUCTION: (
        f"converged: the last iteration lowered the loss by at most ftol = {lbfgs.FTOL:.3g} of its size"
    ),
    Status.MAX_ITER: "the most iterations (--epochs) are done; --resume with a larger --epochs continues",
    Status.MAX_FUN: f"more than {lbfgs.MAX_FUN} evaluations of the loss and its gradient in this run",
    Status.LINE_SEARCH_FAILED: (
        "the line search found no lower loss, even along the gradient (usually as far as float32 rounding allows)"
    ),
    Status.NON_FINITE: "the loss or its gradient is not finite at the start or at every step tried",
    Status.STOPPED: "interrupted (Ctrl-C); --resume continues from the weights reached",
}
PROGRESS_CALLS = 50  # compiled calls per run, about: each ends with the held-out loss, progress and Ctrl-C


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any device starts, what an lbfgs run does not do (its options are checked with the others)."""
    require_one_device(args, "--optimizer lbfgs", " (its full-batch loop is not split across devices)")
    if args.checkpoint_every is not None:
        raise CliError(
            "--checkpoint-every: --optimizer lbfgs checkpoints every --checkpoint-seconds, at its end and on "
            "Ctrl-C; leave --checkpoint-every out"
        )


def stop_reason(status: Status) -> str:
    """Why an L-BFGS minimisation stopped, in words and in scipy's message: ``converged: ... (CONVERGENCE: ...)``."""
    return f"{_REASONS[status]} ({status.message})"


def chunk_size(epochs: int) -> int:
    """Iterations per compiled call: about ``epochs / PROGRESS_CALLS`` (each size is a program of its own)."""
    return max(1, min(lbfgs.CHUNK, math.ceil(epochs / PROGRESS_CALLS)))


def _reached(start: TrainState, result: lbfgs.LbfgsResult, seconds: float) -> TrainState:
    """``start`` advanced by the L-BFGS ``result`` (final or so far)."""
    return start._replace(
        params=distributed.to_host(result.params),
        epoch=start.epoch + result.n_iter,
        history=np.concatenate([start.history, np.asarray(result.loss_curve, start.history.dtype)]),
        seconds=start.seconds + seconds,
        stopped=result.status.name,
    )


def minimise(run: Run, state: TrainState, between: Callable[[TrainState], None] | None = None) -> TrainState:
    """L-BFGS from ``state.params`` for at most the iterations ``run.epochs`` leaves; the state after it.

    ``between(state_so_far)`` runs after each compiled call while the minimisation goes on; raising
    ``StopIteration`` there stops it (status ``STOPPED``)."""
    started = time.perf_counter()

    def callback(result: lbfgs.LbfgsResult) -> None:
        between(_reached(state, result, time.perf_counter() - started))

    result = lbfgs.minimize(
        run.model,
        state.params,
        run.problem.x_train,
        run.targets.train,
        loss=run.head.loss,
        max_iter=min(run.epochs - state.epoch, _MOST_ITERATIONS),
        callback=None if between is None else callback,
        chunk=chunk_size(run.epochs),
    )
    return _reached(state, result, time.perf_counter() - started)


def _with_held_out_once(run: Run, state: TrainState) -> TrainState:
    """The held-out loss at the state's iteration, unless it was evaluated there already."""
    if len(state.held_out_epochs) and state.held_out_epochs[-1] == state.epoch:
        return state
    return with_held_out(run, state)


def train(run: Run, state: TrainState, progress: Progress, ctrl_c: CtrlC) -> TrainState:
    """The minimisation (unless ``run.epochs`` are done) with progress, held-out loss and checkpoints.

    Ctrl-C before or during the minimisation checkpoints the state reached and raises :class:`Interrupted`.
    The returned state has been checkpointed (with ``--out``).
    """
    started, total_before = time.perf_counter(), state.total_seconds
    last_write = started
    held_out = state  # carries the held-out losses evaluated between compiled calls

    def timed(state: TrainState) -> TrainState:
        return state._replace(total_seconds=total_before + time.perf_counter() - started)

    def report(current: TrainState, *, final: bool = False) -> TrainState:
        current = _with_held_out_once(run, current)
        training = split_scores(run, current.params, "train")
        score = training.accuracy if run.problem.task == "classification" else None
        progress.update(current.epoch, training.loss, score, float(current.held_out_losses[-1]), final=final)
        return current

    def with_held_out_so_far(current: TrainState) -> TrainState:
        """``current`` (advanced from the starting state) with the held-out losses evaluated since."""
        return current._replace(held_out_epochs=held_out.held_out_epochs, held_out_losses=held_out.held_out_losses)

    def between(current: TrainState) -> None:
        nonlocal held_out, last_write
        current = held_out = report(with_held_out_so_far(current))
        if ctrl_c.pressed:
            raise StopIteration
        if time.perf_counter() - last_write >= run.checkpoint_seconds:
            save_checkpoint(run, timed(current))
            last_write = time.perf_counter()

    interrupted = ctrl_c.pressed  # before the minimisation: nothing to run
    if state.epoch < run.epochs and not interrupted:
        state = minimise(run, state, between)
        interrupted = state.stopped == Status.STOPPED.name
        state = report(with_held_out_so_far(state), final=True)
    progress.close()
    save_checkpoint(run, timed(state))
    if interrupted and state.epoch < run.epochs:
        raise Interrupted(interrupted_message(run, state.epoch))
    return timed(state)
