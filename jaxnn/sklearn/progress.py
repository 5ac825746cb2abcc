"""``verbose`` output of the estimators' fits, in scikit-learn MLP's words: one line per epoch (its loss, and the
validation score with ``early_stopping``), printed once the compiled loop has finished, then MLP's line for a fit
that the stopping rule ended."""

from __future__ import annotations

__all__ = ["print_progress", "print_stop"]


def print_progress(losses, scores, *, first_epoch: int) -> None:
    """MLP's ``Iteration k, loss = …`` line per epoch (and ``Validation score: …`` when ``scores``)."""
    for i, value in enumerate(losses):
        print(f"Iteration {first_epoch + i}, loss = {value:.8f}")
        if scores is not None:
            print(f"Validation score: {scores[i]:f}")


def print_stop(config) -> None:
    """MLP's line for a fit that stopped because the validation score (``early_stopping``) or the training loss
    did not improve by ``tol`` for ``n_iter_no_change`` epochs; sgd's ``learning_rate='adaptive'`` stops once the
    rate is too small to lower again, in MLP's words for that case."""
    watched = "Validation score" if config.early_stopping else "Training loss"
    adaptive = config.solver == "sgd" and config.schedule == "adaptive"
    print(
        f"{watched} did not improve more than tol={config.stopping.tol:f} for {config.stopping.n_iter_no_change} "
        f"consecutive epochs.{' Learning rate too small.' if adaptive else ''} Stopping."
    )
