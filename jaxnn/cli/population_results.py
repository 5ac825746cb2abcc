"""A population run's results: the best member, its checkpoint and files, ``population.csv`` and the summary.

The best member.  ``jaxnn-train`` holds out one set, the test split, and chooses on it: the best member
has the highest test accuracy (classification) or test R² (regression); ties go to the lower test loss,
then to the lower index.  A member that diverged, or whose test metrics are not finite numbers, is never
the best.  Its test score has been used to choose it, so it is an optimistic estimate of how the chosen
setting does on new data (hold out more data, or cross-validate, for an unbiased one).

Files.  ``checkpoint.npz`` is the best member's, exactly as its single run's (its own ``--lr`` and
``--l2`` and ``--seed``, its split's fingerprint, its optimiser state in the single run's form), so ``--resume
DIR/checkpoint.npz`` continues it as a single run (``population.npz``, every member's state, is
:mod:`jaxnn.cli.population_checkpoint`'s).  ``metrics.json``, ``history.csv`` and ``confusion.png`` are the best
member's; ``metrics.json`` adds a ``population`` entry.  ``population.csv`` lists every member and
``loss.png`` draws every member's training loss, the best one's thick.

Without a best member (every member diverged, or none has finite test metrics) the run fails (exit status 1):
``population.csv`` and ``metrics.json`` (:func:`no_best_metrics`: what happened, ``best`` null) are written, and
the best member's other files (:data:`BEST_MEMBER_FILES`) that an earlier run left, as the run a resumed
population continues, are removed: they describe a network that this run no longer holds as the best.  Its
``checkpoint.npz``, the last healthy checkpoint, stays, as a single run that diverges keeps it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxnn.cli import options as cli_options
from jaxnn.cli.errors import EXIT_FAILED, EXIT_OK, PROG
from jaxnn.cli.population_checkpoint import POPULATION_CHECKPOINT
from jaxnn.cli.report import (
    CONFUSION_PLOT,
    HISTORY_FILE,
    LOSS_PLOT,
    METRICS_FILE,
    PopulationCurves,
    json_safe,
    metrics_of,
    non_finite_metrics,
    shown,
    summary,
    write_results,
    write_text,
)
from jaxnn.cli.training import CHECKPOINT_FILE, RunSetup, TrainState, save_checkpoint

__all__ = [
    "BEST_MEMBER_FILES",
    "POPULATION_FILE",
    "best_member",
    "finish",
    "member_flags",
    "no_best_metrics",
    "population_csv",
    "save_best",
]

POPULATION_FILE = "population.csv"
BEST_MEMBER_FILES = (HISTORY_FILE, LOSS_PLOT, CONFUSION_PLOT)  # the best member's, besides its checkpoint


def _score_name(task: str) -> str:
    return "test_accuracy" if task == "classification" else "test_r2"


def best_member(metrics: list[dict[str, Any]]) -> int | None:
    """The index of the best member by its metrics (see the module docstring), or None when none qualifies."""
    score = _score_name(metrics[0]["task"])
    eligible = [i for i, values in enumerate(metrics) if not values["diverged"] and not non_finite_metrics(values)]
    if not eligible:
        return None
    return min(eligible, key=lambda i: (-metrics[i][score], metrics[i]["test_loss"], i))


def population_csv(setups: list[RunSetup], metrics: list[dict[str, Any]], best: int | None) -> str:
    """``population.csv``: one row per member — its index, --lr, --l2 and --seed, the epochs it ran, whether it
    diverged, its final losses and test metrics, and whether it is the best."""
    task_columns = (
        ("train_accuracy", "test_accuracy") if metrics[0]["task"] == "classification" else ("test_rmse", "test_r2")
    )
    columns = ("member", "lr", "l2", "seed", "epochs", "diverged", "train_loss", "test_loss", *task_columns, "best")
    lines = [",".join(columns)]
    for index, (setup, values) in enumerate(zip(setups, metrics, strict=True)):
        numbers = [repr(float(values[name])) for name in ("train_loss", "test_loss", *task_columns)]
        cells = [str(index), *(repr(setup.options[name]) for name in ("lr", "l2")), str(setup.options["seed"])]
        cells.append(str(values["epochs"]))
        cells += [str(values["diverged"]).lower(), *numbers, str(index == best).lower()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _exact(value: float) -> str:
    """``value`` as short as it reads back exactly: ``0.1``, ``1``, ``0.0012345678`` (not ``0.00123457``)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def member_flags(options: dict[str, Any]) -> str:
    """A member's own values as flags: ``--lr 0.1 --seed 3``, with ``--l2 0.001`` between them for a penalty."""
    penalty = f" --l2 {_exact(options['l2'])}" if options["l2"] else ""
    return f"--lr {_exact(options['lr'])}{penalty} --seed {options['seed']}"


def _member_label(setups: list[RunSetup], index: int) -> str:
    """``member 3: lr 0.1, seed 0``; with ``l2 …`` where any member has a penalty (so a best member without one
    says ``l2 0`` in a run that lists ``--l2 0,0.001``)."""
    options = setups[index].options
    penalty = f", l2 {_exact(options['l2'])}" if any(setup.options["l2"] for setup in setups) else ""
    return f"member {index}: lr {_exact(options['lr'])}{penalty}, seed {options['seed']}"


def _headline(setups: list[RunSetup], options: dict[str, Any], metrics: list[dict], best: int | None) -> str:
    """The population's line of the summary."""
    listed = " x ".join(
        f"{cli_options.flag(name)} {cli_options.show(name, options[name])}"
        for name in cli_options.listed_options(options)
    )
    line = f"population of {len(setups)} networks ({listed}) trained together"
    diverged = sum(values["diverged"] for values in metrics)
    if diverged:
        line += f", {diverged} diverged"
    if best is not None:
        score = "test accuracy" if metrics[0]["task"] == "classification" else "test R^2"
        line += f"; best by {score}: {_member_label(setups, best)}"
    return line + (f" (every member in {POPULATION_FILE})" if setups[0].out is not None else "")


def _no_best_line(out: Path | None) -> str:
    """The closing line when no member qualifies as the best; it names ``checkpoint.npz`` where an earlier
    checkpoint (before every member diverged, or a resumed population's) left the best member of that moment."""
    line = f"{PROG}: no member of the population finished with finite test metrics (a diverged member does not count)"
    if out is not None and (out / CHECKPOINT_FILE).is_file():
        line += (
            f", so there is no best network now; {out / CHECKPOINT_FILE} keeps the best member of the last healthy "
            "checkpoint"
        )
    else:
        line += ", so there is no best network and no checkpoint"
    return line + "; try smaller --lr (or --l2) values"


def no_best_metrics(
    setups: list[RunSetup], options: dict[str, Any], metrics: list[dict[str, Any]], kept: str | None
) -> dict[str, Any]:
    """``metrics.json`` of a population without a best member (every member diverged, or none has finite test
    metrics): what the members share (the data, the loss, the times, the devices, the run's options with its
    lists), ``diverged`` (whether every member did), no test metrics, and the ``population`` entry with ``best``
    null, the count of members that ``diverged`` and ``checkpoint``: ``kept``, the name of the best member's
    checkpoint an earlier, healthy moment left (None: there is none)."""
    shared = ("dataset", "task", "loss", "seconds", "total_seconds", "devices", "platform", "processes")
    first = metrics[0]
    listed = cli_options.listed_options(options)
    return {
        **{name: first[name] for name in shared},
        "diverged": all(values["diverged"] for values in metrics),
        **{name: first[name] for name in ("n_train", "n_test", "input_columns")},
        "options": {**setups[0].options, **{name: list(options[name]) for name in listed}},
        "population": {
            "members": len(setups),
            "best": None,
            "chosen_by": _score_name(first["task"]),
            **{name: list(options[name]) for name in listed},
            "file": POPULATION_FILE,
            "diverged": sum(values["diverged"] for values in metrics),
            "checkpoint": kept,
        },
    }


def save_best(
    setups: list[RunSetup], states: list[TrainState], as_single_run: Callable[[RunSetup, TrainState], TrainState]
) -> int | None:
    """The best member's ``checkpoint.npz`` now, as its single run writes it (``--resume`` continues it): the
    population's checkpoint between chunks and when a stop signal ends the run.  Returns the member's index, or
    None (nothing written) when no member has finite test metrics."""
    best = best_member([metrics_of(setup, state)[0] for setup, state in zip(setups, states, strict=True)])
    if best is not None:
        save_checkpoint(setups[best], as_single_run(setups[best], states[best]))
    return best


def finish(
    setups: list[RunSetup],
    states: list[TrainState],
    options: dict[str, Any],
    as_single_run: Callable[[RunSetup, TrainState], TrainState],
) -> int:
    """Metrics of every member, the best one's files and checkpoint (its state ``as_single_run`` keeps it),
    population.csv and the summary; the exit status."""
    evaluated = [metrics_of(setup, state) for setup, state in zip(setups, states, strict=True)]
    metrics = [values for values, _ in evaluated]
    best = best_member(metrics)
    out = setups[0].out
    headline = _headline(setups, options, metrics, best)
    if best is None:
        if out is not None:
            write_text(out / POPULATION_FILE, population_csv(setups, metrics, best))
            kept = CHECKPOINT_FILE if (out / CHECKPOINT_FILE).is_file() else None
            values = no_best_metrics(setups, options, metrics, kept)
            write_text(out / METRICS_FILE, json.dumps(json_safe(values), indent=2, allow_nan=False) + "\n")
            for name in BEST_MEMBER_FILES:  # an earlier run's best member's (a resumed population's): not this run's
                (out / name).unlink(missing_ok=True)
        wrote = f"\nwrote {out}: {POPULATION_CHECKPOINT} {METRICS_FILE} {POPULATION_FILE}" if out else ""
        print(shown(headline + wrote), flush=True)
        print(_no_best_line(out), file=sys.stderr)
        return EXIT_FAILED
    setup, (values, predicted) = setups[best], evaluated[best]
    state = as_single_run(setup, states[best])
    values = {
        **values,
        "population": {
            "members": len(setups),
            "best": best,
            "chosen_by": _score_name(values["task"]),
            **{name: list(options[name]) for name in cli_options.listed_options(options)},
            "file": POPULATION_FILE,
        },
    }
    written = []
    if out is not None:
        save_checkpoint(setup, state)
        curves = PopulationCurves([member_state.history for member_state in states], best, _member_label(setups, best))
        written = [POPULATION_CHECKPOINT, CHECKPOINT_FILE, *write_results(setup, state, values, predicted, curves)]
        write_text(out / POPULATION_FILE, population_csv(setups, metrics, best))
        written.append(POPULATION_FILE)
    print(headline + "\n" + summary(setup, state, values, written), flush=True)
    return EXIT_OK
