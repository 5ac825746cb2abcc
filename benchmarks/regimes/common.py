"""Holds what every regime shares: the run's sizes (``FULL``, ``QUICK``), targets, which competitors run."""

from __future__ import annotations

from dataclasses import dataclass

TORCH_MISSING = "PyTorch is not installed: skipped (pip install torch==2.13.0 to include it)"


@dataclass(frozen=True)
class Config:
    """Everything that sizes the run; ``FULL`` for ``make bench``, ``QUICK`` for the test suite."""

    epochs: int  # regimes a and b: epochs of the iris fit
    repeats: int  # regime a: timed rounds after the warm-up (medians are reported)
    fresh_process_runs: int  # regime b: fresh processes per competitor
    first_fit_solvers: tuple[str, ...]  # regime b: the solvers whose first fit in a fresh process is timed
    selection_epochs: int  # regime c: max_iter of every fit
    selection_repeats: int  # regime c: timed rounds after the first call
    step_sizes: tuple[int, ...]  # regime d: layer sizes, input first
    step_batch: int
    step_rounds: int  # regime d: timed rounds
    steps_per_round: int  # regime d: steps back to back in each round (the time per step is their mean)
    population_sizes: tuple[int, ...]  # regime f: members P of each population
    population_epochs: int
    population_repeats: int  # regime f: timed rounds after the warm-up (medians are reported)
    sequential_run_all_up_to: int  # regime f: beyond this P the sequential time is scaled from this many fits
    search_max_iter: int  # regime f: max_iter of every fit of the wine search
    search_folds: int
    search_learning_rates: tuple[float, ...]
    search_alphas: tuple[float, ...]
    search_warm_runs: int  # regime f: runs after the first (cold) one in the same process
    medium_rows: int  # regime g: training rows (and a fifth as many validation rows)
    medium_epochs: int  # regime g: epochs of the long fit (the short one runs 1)
    medium_rounds: int  # regime g: timed rounds of both fits
    prediction_calls: int  # regime h: calls back to back per timing
    prediction_rounds: int  # regime h: rounds alternating the libraries


FULL = Config(
    epochs=2000,
    repeats=15,
    fresh_process_runs=3,
    first_fit_solvers=("gd", "sgd", "adam", "lbfgs"),
    selection_epochs=2000,
    selection_repeats=3,
    step_sizes=(784, 512, 512, 10),
    step_batch=1024,
    step_rounds=7,
    steps_per_round=5,
    population_sizes=(1, 10, 100, 1000),
    population_epochs=2000,
    population_repeats=3,
    sequential_run_all_up_to=100,
    search_max_iter=200,
    search_folds=5,
    search_learning_rates=(1e-3, 3e-3, 1e-2, 3e-2),
    search_alphas=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    search_warm_runs=2,
    medium_rows=25000,
    medium_epochs=8,
    medium_rounds=5,
    prediction_calls=300,
    prediction_rounds=5,
)
QUICK = Config(
    epochs=20,
    repeats=2,
    fresh_process_runs=1,
    first_fit_solvers=("adam",),
    selection_epochs=10,
    selection_repeats=1,
    step_sizes=(32, 16, 16, 10),
    step_batch=64,
    step_rounds=2,
    steps_per_round=2,
    population_sizes=(1, 2),
    population_epochs=20,
    population_repeats=1,
    sequential_run_all_up_to=1,  # P = 2 takes the scaled estimate
    search_max_iter=5,
    search_folds=2,
    search_learning_rates=(1e-2, 3e-2),
    search_alphas=(1e-4,),
    search_warm_runs=1,
    medium_rows=600,
    medium_epochs=2,
    medium_rounds=1,
    prediction_calls=5,
    prediction_rounds=1,
)
SKIPPED: dict[str, str] = {}  # competitor -> why it is left out of this run


def ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def target(regime: str, claim: str, measured, threshold: float, higher_is_better: bool = True) -> dict:
    """One target with its measured value and whether it is met (None when it could not be measured)."""
    met = None if measured is None else (measured >= threshold if higher_is_better else measured <= threshold)
    return {"regime": regime, "target": claim, "measured": measured, "threshold": threshold, "met": met}


def torch_available() -> bool:
    """PyTorch is importable and not left out on the command line (else the reason goes to ``SKIPPED``)."""
    if "PyTorch" in SKIPPED:
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        SKIPPED["PyTorch"] = TORCH_MISSING
        return False
    return True


def competitor_names(names) -> list[str]:
    return [name for name in names if name != "PyTorch" or torch_available()]


def skipped(competitors: dict, names) -> dict:
    """``competitors`` with a ``{"skipped": why}`` entry for every name that did not run."""
    return {**competitors, **{name: {"skipped": SKIPPED[name]} for name in names if name not in competitors}}
