"""``verbose`` output of the estimators' fits, in scikit-learn MLP's words: one line per epoch (its loss, and the
validation score with ``early_stopping``), printed once the compiled loop has finished, MLP's line after each
epoch where sgd's ``learning_rate='adaptive'`` lowered the rate (the loop does not record them: they are found
again on the host by :func:`rate_drops`), then MLP's line for a fit that the stopping rule ended; and for a
``partial_fit`` call that ended on a plateau, MLP's line for it (:func:`print_call_plateau`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jaxnn.optimizers import adaptive_rate

__all__ = [
    "adaptive_lines",
    "is_adaptive",
    "plateau_message",
    "print_call_plateau",
    "print_progress",
    "print_stop",
    "rate_drop_line",
    "rate_drops",
]


def print_progress(losses, scores, after: Mapping[int, str] | None = None) -> None:
    """MLP's ``Iteration k, loss = …`` line per epoch of this fit (and ``Validation score: …`` when ``scores``),
    then ``after[i]``, when there is one, after the lines of epoch ``i`` (counted from 0).

    ``k`` counts from 1 in every call, as MLP's does: a ``warm_start`` fit or a ``partial_fit`` that continues
    another numbers its own epochs, as ``n_iter_`` counts them."""
    after = after or {}
    for i, value in enumerate(losses):
        print(f"Iteration {i + 1}, loss = {value:.8f}")
        if scores is not None:
            print(f"Validation score: {scores[i]:f}")
        if i in after:
            print(after[i])


def plateau_message(config, *, early_stopping: bool) -> str:
    """MLP's sentence for more than ``n_iter_no_change`` epochs without improvement by ``tol``: of the validation
    score with ``early_stopping`` (which ``partial_fit`` does not use), else of the training loss."""
    watched = "Validation score" if early_stopping else "Training loss"
    stopping = config.stopping
    return (
        f"{watched} did not improve more than tol={stopping.tol:f} for {stopping.n_iter_no_change} consecutive epochs."
    )


def print_stop(config, *, early_stopping: bool | None = None) -> None:
    """MLP's line for a fit that stopped because the validation score (``early_stopping``, by default the
    config's) or the training loss did not improve by ``tol`` for ``n_iter_no_change`` epochs; sgd's
    ``learning_rate='adaptive'`` stops once the rate is too small to lower again, in MLP's words for that case."""
    early_stopping = config.early_stopping if early_stopping is None else early_stopping
    too_small = " Learning rate too small." if is_adaptive(config) else ""
    print(f"{plateau_message(config, early_stopping=early_stopping)}{too_small} Stopping.")


def print_call_plateau(config, lowered_to=None) -> None:
    """MLP's line for a ``partial_fit`` call that ended on a plateau (more than ``n_iter_no_change`` calls without
    improving the training loss by ``tol``; ``partial_fit`` never uses ``early_stopping``): ``adaptive`` lowered
    the rate to ``lowered_to``, else (None) MLP's "… Stopping." line, after which its next call trains on."""
    if lowered_to is not None:
        print(rate_drop_line(config, lowered_to, early_stopping=False))
    else:
        print_stop(config, early_stopping=False)


def is_adaptive(config) -> bool:
    """Whether the fit's rate is sgd's ``learning_rate='adaptive'``."""
    return config.schedule == "adaptive"  # Config keeps learning_rate for sgd only


def rate_drop_line(config, rate, *, early_stopping: bool) -> str:
    """MLP's line for a plateau on which ``adaptive`` lowered the rate to ``rate``."""
    return f"{plateau_message(config, early_stopping=early_stopping)} Setting learning rate to {float(rate):f}"


def adaptive_lines(config, monitored, *, watched: tuple[float, int] | None = None) -> dict[int, str]:
    """The line MLP prints after each epoch of a ``fit`` where ``learning_rate='adaptive'`` lowered the rate,
    by the epoch's index in this fit (none for another schedule): ``monitored`` is the value the stopping rule
    watched per epoch (the training loss, or the validation score with ``early_stopping``) as the loop computed
    it, in its float type; ``watched`` the best value and count a ``warm_start`` fit continued (None: a fresh
    rule).  A fit's rate starts at ``learning_rate_init``, also a ``warm_start`` one's (MLP's)."""
    if not is_adaptive(config):
        return {}
    monitored = np.asarray(monitored)
    best, count = watched or (None, 0)
    drops = rate_drops(
        monitored,
        maximize=config.early_stopping,
        tol=config.stopping.tol,
        n_iter_no_change=config.stopping.n_iter_no_change,
        rate=monitored.dtype.type(config.learning_rate_init),
        best=best,
        count=count,
    )
    return {i: rate_drop_line(config, rate, early_stopping=config.early_stopping) for i, rate in drops.items()}


def rate_drops(
    monitored: Sequence[float],
    *,
    maximize: bool,
    tol: float,
    n_iter_no_change: float,
    rate: float,
    best: float | None = None,
    count: int = 0,
) -> dict[int, float]:
    """The epochs (index in ``monitored``) where ``learning_rate='adaptive'`` lowered the rate, and the rate it
    became: MLP's rule (``_update_no_improvement_count`` then ``SGDOptimizer.trigger_stopping``), replayed.

    With ``v_i`` the value of epoch ``i`` (a loss; a score when ``maximize``, read with the signs flipped),
    ``b`` the best value before it (``+∞`` at the start, or ``best``) and ``c`` the count (``count`` at start)::

        c ← 0 if v_i ≤ b − tol else c + 1        b ← min(b, v_i)
        if c > n_iter_no_change and η > 1e-6:    η ← η / 5,  c ← 0   (a drop at epoch i, to η)

    (``c > n_iter_no_change`` with ``η ≤ 1e-6`` ends training: no later epoch.)  A NaN value counts as an epoch
    without improvement and leaves ``b``, as in jaxnn's loop.  The arithmetic is in the values' own float type
    (NumPy's rules for a float32 array and a Python float keep float32), so that it is the loop's, comparisons
    included."""
    sign = -1 if maximize else 1
    signed = np.asarray(monitored) * sign
    best = signed.dtype.type(np.inf if best is None else best * sign)
    drops = {}
    for i, value in enumerate(signed):
        count = 0 if value <= best - tol else count + 1
        best = value if value < best else best
        rate, lowered = adaptive_rate(rate, count > n_iter_no_change, where=np.where)
        if lowered:
            drops[i], count = rate[()], 0
    return drops
