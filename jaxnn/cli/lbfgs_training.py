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

One compiled minimisation.  :mod:`jaxnn.lbfgs` runs the whole minimisation in its own compiled loop and
returns only at the end, so progress is reported once, at the end, where the held-out loss is evaluated,
and Ctrl-C during the minimisation takes effect when it returns: the result (the parameters are always the
last accepted, finite ones) is checkpointed and the run exits with status 130.  A second Ctrl-C quits at once
and keeps the checkpoint written before.

Resume.  ``--resume`` continues from the checkpoint's parameters with a fresh L-BFGS memory, as a
``warm_start`` fit of scikit-learn's MLP does: the checkpoint holds the parameters, not the curvature pairs,
so a run resumed in two parts takes other steps than an uninterrupted one (it evaluates ``L`` again at its
start, and its ``MAX_FUN`` budget is per invocation), and it may run on after a run that converged.

Not with lbfgs: several devices or hosts (one device computes: ``--devices N`` with N > 1 and the multi-host
flags are usage errors), ``--checkpoint-every`` (there are no chunk boundaries to write at), populations
(lists in ``--seed``), ``--lr`` and ``--batch-size`` (:mod:`jaxnn.cli.options` refuses those).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jaxnn import distributed, lbfgs
from jaxnn.cli import options as cli_options
from jaxnn.cli.errors import CliError, Interrupted
from jaxnn.cli.interrupts import CtrlC
from jaxnn.cli.progress import Progress
from jaxnn.cli.training import Run, TrainState, interrupted_message, save_checkpoint, split_scores, with_held_out
from jaxnn.lbfgs import Status

__all__ = ["HOST_FLAGS", "check_arguments", "minimise", "stop_reason", "train"]

HOST_FLAGS = ("coordinator", "multi_host", "num_processes", "process_id")
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
}


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any device starts, what an lbfgs run does not do (its options are checked with the others)."""
    if args.devices is not None and args.devices > 1:
        raise CliError(
            f"--devices {args.devices}: --optimizer lbfgs trains on one device (its full-batch loop is not split "
            "across devices); leave --devices out"
        )
    hosts = [cli_options.flag(name) for name in HOST_FLAGS if getattr(args, name) not in (None, False)]
    if hosts:
        raise CliError(f"{hosts[0]}: --optimizer lbfgs runs on one host; leave out the multi-host flags")
    if args.checkpoint_every is not None:
        raise CliError(
            "--checkpoint-every: --optimizer lbfgs minimises in one compiled call and checkpoints at its end "
            "(and on Ctrl-C); leave --checkpoint-every out"
        )


def stop_reason(status: Status) -> str:
    """Why an L-BFGS minimisation stopped, in words and in scipy's message: ``converged: ... (CONVERGENCE: ...)``."""
    return f"{_REASONS[status]} ({status.message})"


def minimise(run: Run, state: TrainState) -> TrainState:
    """L-BFGS from ``state.params`` for at most the iterations ``run.epochs`` leaves; the state after it."""
    started = time.perf_counter()
    result = lbfgs.minimize(
        run.model,
        state.params,
        run.problem.x_train,
        run.targets.train,
        loss=run.head.loss,
        max_iter=min(run.epochs - state.epoch, _MOST_ITERATIONS),
    )
    return state._replace(
        params=distributed.to_host(result.params),
        epoch=state.epoch + result.n_iter,
        history=np.concatenate([state.history, np.asarray(result.loss_curve, state.history.dtype)]),
        seconds=state.seconds + time.perf_counter() - started,
        stopped=result.status.name,
    )


def train(run: Run, state: TrainState, progress: Progress, ctrl_c: CtrlC) -> TrainState:
    """The minimisation (unless ``run.epochs`` are done), the held-out loss, progress and the checkpoint.

    Ctrl-C before the minimisation starts checkpoints ``state`` and raises :class:`Interrupted`; pressed
    during it, it is left for the caller to see (the run is complete and checkpointed by then).
    """
    started, total_before = time.perf_counter(), state.total_seconds
    interrupted = ctrl_c.pressed
    if state.epoch < run.epochs and not interrupted:
        state = with_held_out(run, minimise(run, state))
        training = split_scores(run, state.params, "train")
        score = training.accuracy if run.problem.task == "classification" else None
        progress.update(state.epoch, training.loss, score, float(state.held_out_losses[-1]), final=True)
    progress.close()
    state = state._replace(total_seconds=total_before + time.perf_counter() - started)
    save_checkpoint(run, state)
    if interrupted and state.epoch < run.epochs:
        raise Interrupted(interrupted_message(run, state.epoch))
    return state._replace(total_seconds=total_before + time.perf_counter() - started)
