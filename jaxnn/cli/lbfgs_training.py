"""Training one run with ``--optimizer lbfgs``: full-batch L-BFGS, what ``solver='lbfgs'`` means in the estimators.

    jaxnn-train --optimizer lbfgs --epochs 20 --out runs/iris   # at most 20 iterations
    jaxnn-train --resume runs/iris --epochs 40                   # continue, up to 40 iterations in all

What is minimised.  The run's ``--loss`` over the whole training split, ``L(θ) = (1/n) Σ_i l_i`` (with
``--class-weight balanced``, ``Σ_i w_i l_i / Σ_i w_i``), plus ``--l2``'s penalty ``½·l2·Σ‖W‖²`` (the objective
:func:`jaxnn.fit` descends with ``l2``): :mod:`jaxnn.lbfgs`'s ``alpha/(2Σw)·Σ‖W‖²`` with ``alpha = l2·Σw``
(:func:`alpha`), scikit-learn's ``alpha``, from the initial weights every jaxnn-train run draws from
``--seed``, by :func:`jaxnn.lbfgs.run` (what :func:`jaxnn.lbfgs.minimize` runs after its checks): scipy's
L-BFGS-B step for step in one compiled loop, the code behind the estimators' ``solver='lbfgs'``.  It stops on
scipy's rules with :mod:`jaxnn.lbfgs`'s defaults (checked after each iteration, in this order):

* ``--epochs`` iterations done in all (``MAX_ITER``); ``--epochs`` is the most iterations, as an MLP's
  ``max_iter`` is for lbfgs, and its default is the same 200;
* more than ``lbfgs.MAX_FUN`` (15000) evaluations of ``L`` and ``∇L`` in all (``MAX_FUN``);
* ``max |∂L/∂θ| ≤ lbfgs.GTOL`` (1e-5, scipy's ``gtol``; the estimators pass their ``tol``, 1e-4 by default,
  here instead) (``CONVERGED_GRADIENT``);
* ``L_old − L_new ≤ lbfgs.FTOL · max(|L_old|, |L_new|, 1)`` (scipy's ``ftol``) (``CONVERGED_REDUCTION``);
* the line search found no acceptable step, even along ``−∇L`` (``LINE_SEARCH_FAILED``, or ``NON_FINITE``
  when the loss was not finite there).

The summary says which (:func:`stop_reason`, with scipy's message); ``metrics.json`` and the checkpoint keep
the :class:`jaxnn.lbfgs.Status` name as ``stopped``.  An lbfgs "epoch" is an iteration throughout:
``history.csv`` has one row per iteration (``L`` after it) and the checkpoint's ``epoch`` counts iterations.

Chunks.  The chunk runner (:class:`jaxnn.cli.runner.ChunkRunner`) calls :func:`advance` for at most a fiftieth of
``--epochs`` iterations at a time, as it does for every mode; the run's state carries the whole
:class:`jaxnn.lbfgs.LbfgsState` (iterate, gradient, curvature memory, counts, status), and each call continues
the one minimisation from it (:func:`jaxnn.lbfgs.run`), so the iterates are those of one uninterrupted call.
Between calls the runner evaluates the held-out loss, reports progress, writes a checkpoint every
``--checkpoint-seconds``, and sees Ctrl-C: the state reached is checkpointed and the run exits with status 130.
A second Ctrl-C quits at once and keeps the checkpoint written before.

Resume.  The checkpoint holds the L-BFGS state as plain arrays beside the parameters (the extras
``lbfgs.theta``, ``lbfgs.memory.s``, ...: :func:`jaxnn.cli.training.lbfgs_extras`), so ``--resume`` continues
the minimisation exactly: a run interrupted, or killed after a checkpoint, and resumed ends with the bits of an
uninterrupted one (on the CPU), its ``MAX_FUN`` budget the whole minimisation's.  A checkpoint written while
the minimisation runs has no stopping status and resumes as any other; one that stopped on ``--epochs`` goes on
under a larger ``--epochs``; one that stopped otherwise (converged, a failed line search) stays stopped, as
the uninterrupted run would.  A checkpoint without the L-BFGS state (written by an older jaxnn-train, or before
the first iteration) continues from its parameters with a fresh memory, as a ``warm_start`` fit of
scikit-learn's MLP does.

Not with lbfgs: several devices or hosts (one device computes: ``--devices N`` with N > 1 and the multi-host
flags are usage errors), ``--checkpoint-every`` (checkpoints follow ``--checkpoint-seconds``), populations
(lists in ``--seed`` or ``--l2``), ``--lr`` and ``--batch-size``: :mod:`jaxnn.cli.refusals` says so for each.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from jaxnn import distributed, lbfgs
from jaxnn.cli.errors import CliError
from jaxnn.cli.interrupts import StopSignals
from jaxnn.cli.progress import Progress
from jaxnn.cli.runner import PROGRESS_UPDATES, ChunkRunner, Hooks
from jaxnn.cli.training import (
    RunSetup,
    TrainState,
    interrupted_message,
    last_held_out_loss,
    save_checkpoint,
    schedule,
    split_scores,
    with_held_out,
)
from jaxnn.engine import decide_layout
from jaxnn.lbfgs import Status

__all__ = [
    "PROGRESS_CALLS",
    "advance",
    "alpha",
    "ended",
    "refuse_an_overflowing_penalty",
    "row_weights",
    "stop_reason",
    "train",
]

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
    """Why an L-BFGS minimisation stopped, in words and in scipy's message: ``converged: ... (CONVERGENCE: ...)``
    (a failed line search's ``'ABNORMAL: '`` without its separator: ``(ABNORMAL)``)."""
    return f"{_REASONS[status]} ({status.message.rstrip(': ')})"


def ended(state: TrainState) -> bool:
    """Whether the run's minimisation has stopped on its own (converged, a failed line search, ``MAX_FUN``):
    then no ``--epochs`` continues it.  One that stopped on ``--epochs`` goes on under a larger one, and a
    fresh minimisation (no L-BFGS state yet) always starts."""
    if state.lbfgs is None:
        return False
    return Status(int(state.lbfgs.status)) not in (Status.RUNNING, Status.MAX_ITER)


def row_weights(setup: RunSetup, dtype) -> np.ndarray:
    """The training rows' weights as the minimisation gets them, in ``dtype``: ``--class-weight balanced``'s, else
    every row 1 (no padding rows: the split is used as it is, on one device)."""
    weight = setup.targets.weight
    return np.ones(len(setup.problem.x_train), dtype) if weight is None else np.asarray(weight, dtype)


def alpha(l2: float, weight: np.ndarray) -> float:
    """:mod:`jaxnn.lbfgs`'s ``alpha`` for ``--l2`` ``l2`` over rows weighing ``weight``: ``l2·Σw``, with ``Σw`` the
    sum of the very weights the objective divides ``alpha`` by, so its penalty ``alpha/(2Σw)·Σ‖W‖²`` is
    :func:`jaxnn.fit`'s ``½·l2·Σ‖W‖²`` (up to float32 rounding of ``alpha`` and ``Σw``)."""
    return float(l2) * float(np.sum(weight, dtype=np.float64))


def refuse_an_overflowing_penalty(setup: RunSetup, params) -> None:
    """A :class:`CliError` when :func:`alpha` of ``--l2`` over the training rows is beyond the range of the
    minimisation's dtype (the parameters'): it would start from an infinite objective and stop at once."""
    dtype = jax.tree.leaves(params)[0].dtype
    l2 = setup.options["l2"]
    penalty = alpha(l2, row_weights(setup, np.float64))
    if penalty > float(np.finfo(dtype).max):
        raise CliError(
            f"--l2 {l2:g}: lbfgs's penalty alpha = l2 · the training rows' weight ({penalty:.3g}) is beyond "
            f"{np.dtype(dtype).name}'s range; give a smaller --l2"
        )


def advance(setup: RunSetup, state: TrainState, iterations: int) -> TrainState:
    """At most ``iterations`` more iterations of the run's minimisation (:func:`jaxnn.lbfgs.run`, the library
    call of lbfgs runs), from ``state.lbfgs`` or, without one, a fresh minimisation from ``state.params``; the
    state after them.  ``--epochs`` is the minimisation's ``max_iter``, counted from the run's iteration where
    it started (0, unless it resumed a checkpoint without an L-BFGS state)."""
    dtype = np.dtype(jax.tree.leaves(state.params)[0].dtype)  # the network's: the minimisation runs in it
    done = 0 if state.lbfgs is None else int(state.lbfgs.n_iter)
    started = state.epoch - done  # the run's iteration where this minimisation started
    weight = row_weights(setup, dtype)
    layout = decide_layout(None, setup.model, setup.problem.x_train.shape[1])
    result = lbfgs.run(
        lbfgs.LbfgsSpec(setup.model, setup.head.loss, layout=layout),
        params=state.params if state.lbfgs is None else None,
        state=state.lbfgs,
        x=np.asarray(setup.problem.x_train, dtype),
        y=np.asarray(setup.targets.train, dtype),
        weight=weight,
        alpha=alpha(setup.options["l2"], weight),
        max_iter=min(setup.epochs - started, _MOST_ITERATIONS),
        pause_after=iterations,
    )
    return state._replace(
        params=distributed.to_host(result.params),
        epoch=started + result.n_iter,
        history=np.concatenate([state.history, np.asarray(result.loss_curve, state.history.dtype)]),
        stopped=None if result.status == Status.RUNNING else result.status.name,
        lbfgs=distributed.to_host(result.state),
    )


def _progress_values(setup: RunSetup, state: TrainState) -> tuple[float, float | None, float]:
    """The full-batch training loss and accuracy (None for regression) at the parameters, the held-out loss."""
    training = split_scores(setup, state.params, "train")
    score = training.accuracy if setup.problem.task == "classification" else None
    return training.loss, score, last_held_out_loss(state)


def train(setup: RunSetup, state: TrainState, progress: Progress, stop: StopSignals) -> TrainState:
    """The minimisation (unless ``setup.epochs`` are done or it :func:`ended`) in chunks of :func:`advance`, with
    progress, held-out loss and checkpoints (:class:`jaxnn.cli.runner.ChunkRunner`).

    Ctrl-C before or during the minimisation checkpoints the state reached and raises :class:`Interrupted`.
    The returned state has been checkpointed (with ``--out``).
    """
    hooks = Hooks(
        held_out=partial(with_held_out, setup),
        progress=partial(_progress_values, setup),
        interrupted=lambda state: interrupted_message(setup, state.epoch),
        save=lambda state: save_checkpoint(setup, state),
        finished=ended,
    )
    runner = ChunkRunner(schedule(setup)._replace(longest_chunk=lbfgs.CHUNK), hooks, progress, stop, setup.runtime)
    return runner.train(state, partial(advance, setup))
