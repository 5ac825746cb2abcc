"""What :func:`jaxnn.fit_estimators` leaves in each estimator: the new network, whole, or the attributes the
estimator had before its fit — never a mix, whether the fit failed or Ctrl-C (a KeyboardInterrupt) stopped the
population midway."""

from __future__ import annotations

__all__ = ["failed", "fit_alone", "put_back", "put_back_unfinished", "records_of"]


def records_of(estimators: list, ours) -> list[dict | None]:
    """The attributes (``vars``) of each estimator ``ours(estimator)`` says jaxnn fits; None for the others,
    whose own ``fit`` answers for them."""
    return [dict(vars(estimator)) if ours(estimator) else None for estimator in estimators]


# What scikit-learn's callback support sets on an estimator as its fit starts and reads after the fit, in a
# ``finally``, to tear the callbacks down (then deletes): a failed fit's put-back keeps them, or its callbacks were
# never torn down (ProgressBar's monitor thread then kept the process from exiting).
CALLBACK_LIFECYCLE = ("_callback_fit_ctx", "_skl_callbacks_to_teardown")


def put_back(estimator, record: dict) -> None:
    """The estimator's attributes become ``record`` (its ``vars`` before a fit) again, in one step, as a fit
    stores its network: a predict in another thread reads the old attributes or these, never a mix.  The fit's
    callback lifecycle (:data:`CALLBACK_LIFECYCLE`) stays for its teardown."""
    lifecycle = {name: vars(estimator)[name] for name in CALLBACK_LIFECYCLE if name in vars(estimator)}
    estimator.__dict__ = {**record, **lifecycle}


def failed(estimator, record: dict, error: Exception) -> Exception:
    """``error``, the outcome of a fit that failed, once the estimator's attributes ``record`` (its ``vars``
    before the fit) are put back: nothing of the failed fit stays, its records of the new ``X`` included."""
    put_back(estimator, record)
    return error


def put_back_unfinished(estimators: list, outcomes: list, records: list) -> None:
    """An exception (a KeyboardInterrupt) ended the population: the estimators whose fit had not ended (outcome
    None) go back to their ``records``; those stored already keep their new network, whole.  Without this, the
    ones set up would keep the new ``X``'s ``n_features_in_`` beside their old network (or none)."""
    done = {id(estimator) for estimator, outcome in zip(estimators, outcomes, strict=True) if outcome is not None}
    for estimator, record in zip(estimators, records, strict=True):
        if record is not None and id(estimator) not in done:  # a repeated estimator: once, by its first fit
            put_back(estimator, record)


def fit_alone(estimator, dataset: tuple):
    """``estimator.fit`` on ``(X, y, sample_weight or None)``: the fitted estimator, or the exception."""
    X, y, sample_weight = dataset
    try:
        return estimator.fit(X, y) if sample_weight is None else estimator.fit(X, y, sample_weight=sample_weight)
    except Exception as error:
        return error
