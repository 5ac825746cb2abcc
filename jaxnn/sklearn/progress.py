"""``verbose`` output of the estimators' fits, in scikit-learn MLP's words: one line per epoch (its loss, and the
validation score with ``early_stopping``), printed once the compiled loop has finished, then MLP's line for a fit
that the stopping rule ended."""

from __future__ import annotations

__all__ = ["print_progress", "print_stop"]


def print_progress(losses, scores) -> None:
    """MLP's ``Iteration k, loss = …`` line per epoch of this fit (and ``Validation score: …`` when ``scores``).

    ``k`` counts from 1 in every call, as MLP's does: a ``warm_start`` fit or a ``partial_fit`` that continues
    another numbers its own epochs, as ``n_iter_`` counts them."""
    for i, value in enumerate(losses):
        print(f"Iteration {i + 1}, loss = {value:.8f}")
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
