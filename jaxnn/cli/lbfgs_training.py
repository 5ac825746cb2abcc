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
iterations per call (:func:`advance`); between calls (its ``callback``, which changes no iterate) the chunk
runner (:meth:`jaxnn.cli.runner.ChunkRunner.train_within`) evaluates the held-out loss, reports progress,
writes a checkpoint every ``--checkpoint-seconds``, and sees Ctrl-C: the minimisation stops there (status
``STOPPED``), the state reached (the parameters are always the last accepted, finite ones) is checkpointed and
the run exits with status 130.  A second Ctrl-C quits at once and keeps the checkpoint written before.  A
checkpoint written while the minimisation runs has no stopping status, so it resumes as any other.

Resume.  ``--resume`` continues from the checkpoint's parameters with a fresh L-BFGS memory, as a
``warm_start`` fit of scikit-learn's MLP does: the checkpoint holds the parameters, not the curvature pairs,
so a run resumed in two parts takes other steps than an uninterrupted one (it evaluates ``L`` again at its
start, and its ``MAX_FUN`` budget is per invocation), and it may run on after a run that converged.

Not with lbfgs: several devices or hosts (one device computes: ``--devices N`` with N > 1 and the multi-host
flags are usage errors), ``--checkpoint-every`` (checkpoints follow ``--checkpoint-seconds``), populations
(lists in ``--seed``), ``--lr`` and ``--batch-size``: :mod:`jaxnn.cli.refusals` says so for each.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from jaxnn import distributed, lbfgs
from jaxnn.cli.interrupts import CtrlC
from jaxnn.cli.progress import Progress
from jaxnn.cli.runner import PROGRESS_UPDATES, Between, ChunkRunner, Hooks
from jaxnn.cli.training import (
    Run,
    TrainState,
    interrupted_message,
    save_checkpoint,
    schedule,
    split_scores,
    with_held_out,
)
from jaxnn.lbfgs import Status

__all__ = ["PROGRESS_CALLS", "advance", "stop_reason", "train"]

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
PROGRESS_CALLS = (
    PROGRESS_UPDATES  # compiled calls per run, about: each ends with the held-out loss, progress and Ctrl-C
)


def stop_reason(status: Status) -> str:
    """Why an L-BFGS minimisation stopped, in words and in scipy's message: ``converged: ... (CONVERGENCE: ...)``."""
    return f"{_REASONS[status]} ({status.message})"


def _reached(start: TrainState, latest: TrainState, result: lbfgs.LbfgsResult) -> TrainState:
    """``latest`` (what the runner last returned) at the iterate of ``result``, the minimisation from ``start``
    so far (no stopping status while it runs: a checkpoint written then resumes as any other)."""
    return latest._replace(
        params=distributed.to_host(result.params),
        epoch=start.epoch + result.n_iter,
        history=np.concatenate([start.history, np.asarray(result.loss_curve, start.history.dtype)]),
        stopped=None if result.status == Status.RUNNING else result.status.name,
    )


def advance(run: Run, state: TrainState, chunk: int, between: Between) -> TrainState:
    """L-BFGS from ``state.params`` (:func:`jaxnn.lbfgs.minimize`, the library call of lbfgs runs) for at most
    the iterations ``run.epochs`` leaves, in compiled calls of ``chunk`` iterations; the state after it.

    ``between`` (the chunk runner's) gets the state after each compiled call while the minimisation goes on
    and returns it with the held-out loss recorded, and whether to go on; if not, the minimisation stops there
    (status ``STOPPED``).  Its memory of curvature pairs lives inside this one call."""
    latest = state

    def callback(result: lbfgs.LbfgsResult) -> None:
        nonlocal latest
        latest, go_on = between(_reached(state, latest, result))
        if not go_on:
            raise StopIteration

    result = lbfgs.minimize(
        run.model,
        state.params,
        run.problem.x_train,
        run.targets.train,
        loss=run.head.loss,
        max_iter=min(run.epochs - state.epoch, _MOST_ITERATIONS),
        callback=callback,
        chunk=chunk,
    )
    return _reached(state, latest, result)


def _with_held_out_once(run: Run, state: TrainState) -> TrainState:
    """The held-out loss at the state's iteration, unless it was evaluated there already (a resumed run
    that stops before its first iteration)."""
    if len(state.held_out_epochs) and state.held_out_epochs[-1] == state.epoch:
        return state
    return with_held_out(run, state)


def _progress_values(run: Run, state: TrainState) -> tuple[float, float | None, float]:
    """The full-batch training loss and accuracy (None for regression) at the parameters, the held-out loss."""
    training = split_scores(run, state.params, "train")
    score = training.accuracy if run.problem.task == "classification" else None
    return training.loss, score, float(state.held_out_losses[-1])


def train(run: Run, state: TrainState, progress: Progress, ctrl_c: CtrlC) -> TrainState:
    """The minimisation (unless ``run.epochs`` are done) with progress, held-out loss and checkpoints
    (:meth:`jaxnn.cli.runner.ChunkRunner.train_within`).

    Ctrl-C before or during the minimisation checkpoints the state reached and raises :class:`Interrupted`.
    The returned state has been checkpointed (with ``--out``).
    """
    hooks = Hooks(
        held_out=partial(_with_held_out_once, run),
        progress=partial(_progress_values, run),
        interrupted=lambda state: interrupted_message(run, state.epoch),
        save=lambda state: save_checkpoint(run, state),
    )
    runner = ChunkRunner(schedule(run)._replace(longest_chunk=lbfgs.CHUNK), hooks, progress, ctrl_c, run.runtime)
    return runner.train_within(state, partial(advance, run))
