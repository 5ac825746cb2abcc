"""The results of a run: test metrics, ``metrics.json``, ``history.csv``, the plots and the closing summary.

Accuracy and R² come from :mod:`jaxnn.metrics` (R² of a constant target is 1 for an exact prediction and 0
otherwise, as scikit-learn's ``r2_score``), class predictions from the head (:func:`jaxnn.heads.class_indices`).
Regression errors are computed in the standardised units the network was trained in and scaled back, so a
target of magnitude 1e200 still has a finite RMSE.  A test metric that is nevertheless not a finite number
is reported by :func:`non_finite_metrics`, and ``jaxnn-train`` then exits with status 1.

For ``--optimizer lbfgs`` an epoch is an iteration: the summary and loss.png say "iterations", the counts in
the files keep their names, and the summary and ``metrics.json`` (``stopped``) say why L-BFGS stopped.

The plots show the user's text literally: class names and the file name are never read as matplotlib's math
text (``$5-$10`` stays ``$5-$10``), and bytes of a file name that are not UTF-8 are shown as ``\\xff``, on the
plots and in the summary (:func:`shown`).  The plots come after every other file, and one that cannot be drawn
is a one-line warning, not a failed run.
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxnn import checkpoint
from jaxnn.cli.errors import PROG, shown
from jaxnn.cli.lbfgs_training import stop_reason
from jaxnn.cli.options import LBFGS, unit
from jaxnn.cli.training import RunSetup, TrainState, split_scores
from jaxnn.lbfgs import Status
from jaxnn.metrics import r2_score

__all__ = [
    "CONFUSION_PLOT",
    "HISTORY_FILE",
    "LOSS_PLOT",
    "METRICS_FILE",
    "PopulationCurves",
    "describe",
    "history_csv",
    "json_safe",
    "metrics_of",
    "non_finite_metrics",
    "shown",
    "summary",
    "write_plots",
    "write_results",
    "write_text",
]

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
LOSS_PLOT = "loss.png"
CONFUSION_PLOT = "confusion.png"

_CHECKED = ("test_accuracy", "train_accuracy", "test_rmse", "test_r2", "test_loss", "train_loss")
_SHOWN_COLUMNS = 8  # input columns named in the summary (metrics.json lists them all)


def _r2_in_target_units(targets: np.ndarray, predicted: np.ndarray) -> float:
    """R² (:func:`jaxnn.metrics.r2_score`, scikit-learn's) of the test ``predicted`` values, both they and the
    ``targets`` in the target's own units; NaN where a prediction is not a finite number (a diverged network's:
    r2_score refuses them, and the run fails).

    Not in the standardised units training uses: a training row far from the test rows (1e20 away) moves the
    training mean so far that the test targets, standardised, were one float64 value: a "constant" test column,
    scored 0 however far off the predictions were.
    """
    if not np.all(np.isfinite(predicted)):
        return float("nan")
    return float(r2_score(targets, predicted))


def metrics_of(setup: RunSetup, state: TrainState) -> tuple[dict[str, Any], np.ndarray]:
    """The numbers of metrics.json (losses on the training objective's scale, and task metrics) and the
    test predictions (class indices, or values in the target's units)."""
    problem = setup.problem
    train, test = split_scores(setup, state.params, "train"), split_scores(setup, state.params, "test")
    outputs = test.outputs
    metrics: dict[str, Any] = {"dataset": problem.name, "task": problem.task}
    if problem.task == "classification":
        predicted = test.predicted
        # exact ratios of counts in float64 (440/450 is 0.9777777777777777, not float32's 0.9777777791023254)
        metrics["test_accuracy"] = _share(test.predicted, problem.y_test)
        metrics["train_accuracy"] = _share(train.predicted, problem.y_train)
    else:
        scale, mean = setup.targets.scaler.scale[0], setup.targets.scaler.mean[0]
        errors = outputs[:, 0].astype(float) - setup.targets.test[:, 0]  # in standardised units
        with np.errstate(over="ignore", invalid="ignore"):
            predicted = outputs[:, 0] * scale + mean
            metrics["test_rmse"] = float(np.sqrt(np.mean(errors**2)) * scale)
        metrics["test_r2"] = _r2_in_target_units(problem.y_test, predicted)
    metrics |= {
        "test_loss": test.loss,
        "train_loss": train.loss,
        "loss": setup.options["loss"],
        "epochs": state.epoch,
        "diverged": state.diverged,
        "seconds": round(state.seconds, 3),
        "total_seconds": round(state.total_seconds, 3),
        "devices": setup.runtime.mesh.size,
        "platform": setup.runtime.platform,
        "processes": setup.runtime.processes,
        "n_train": len(problem.y_train),
        "n_test": len(problem.y_test),
        "input_columns": list(problem.feature_names),
        "options": setup.options,
    }
    if state.stopped is not None:
        metrics["stopped"] = state.stopped
    return metrics, predicted


def _share(predicted: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``labels`` that ``predicted`` gets right, as the float64 ratio of the two counts."""
    if len(labels) == 0:
        return math.nan
    return int(np.count_nonzero(np.asarray(predicted) == np.asarray(labels))) / len(labels)


def non_finite_metrics(metrics: dict[str, Any]) -> list[str]:
    """The test and training metrics that are NaN or infinite, by name."""
    return [name for name in _CHECKED if name in metrics and not math.isfinite(metrics[name])]


def json_safe(value):
    """NaN and infinities (a diverged run's losses) as null: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def history_csv(state: TrainState) -> str:
    """``epoch,train_loss,test_loss``: every epoch's mean training loss, and the held-out loss where it was
    evaluated (empty elsewhere)."""
    held_out = dict(zip(state.held_out_epochs.tolist(), state.held_out_losses.tolist(), strict=True))
    lines = ["epoch,train_loss,test_loss"]
    for epoch, loss in enumerate(state.history.tolist(), start=1):
        lines.append(f"{epoch},{loss!r},{held_out[epoch]!r}" if epoch in held_out else f"{epoch},{loss!r},")
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file, fsync, rename)."""
    checkpoint.write_atomically(path, lambda file: file.write(text.encode()))


def _save_figure(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    checkpoint.write_atomically(path, lambda file: file.write(buffer.getvalue()))


def _confusion_counts(true: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (true, predicted), 1)
    return counts


class PopulationCurves(NamedTuple):
    """A population run's training curves, for its loss.png: every member's, and which one is best."""

    histories: list[np.ndarray]  # each member's mean training loss per epoch
    best: int  # the best member's index
    best_label: str  # how the legend names it: "member 4: lr 0.1, seed 1"


def _loss_figure(figure, state: TrainState, setup: RunSetup) -> None:
    """One run: its training loss and its held-out loss."""
    history = state.history
    axes = figure.subplots()
    lbfgs = setup.options["optimizer"] == LBFGS
    label = "training (full batch, after each iteration)" if lbfgs else "training (mean over each epoch)"
    axes.plot(np.arange(1, len(history) + 1), history, label=label)
    held_out = np.isfinite(state.held_out_losses)
    axes.plot(
        state.held_out_epochs[held_out], state.held_out_losses[held_out], marker=".", label="held out (test split)"
    )
    axes.set(xlabel=unit(setup.options["optimizer"]), ylabel=f"loss ({setup.options['loss']})")
    axes.set_title(shown(f"{setup.problem.name}: loss"), parse_math=False)
    axes.legend()
    if np.all(history > 0) and np.all(state.held_out_losses[held_out] > 0):
        axes.set_yscale("log")


def _population_loss_figure(figure, state: TrainState, setup: RunSetup, curves: PopulationCurves) -> None:
    """A population: every member's training loss thin and faint, the best member's thick and labelled,
    with its held-out loss."""
    axes = figure.subplots()
    first_other = 1 if curves.best == 0 else 0
    for index, history in enumerate(curves.histories):
        if index != curves.best:
            faint = {"label": "the other members (training)"} if index == first_other else {}
            axes.plot(np.arange(1, len(history) + 1), history, color="tab:gray", linewidth=0.7, alpha=0.4, **faint)
    best = curves.histories[curves.best]
    axes.plot(np.arange(1, len(best) + 1), best, color="tab:blue", linewidth=2.5, label=f"best, {curves.best_label}")
    held_out = np.isfinite(state.held_out_losses)
    axes.plot(
        state.held_out_epochs[held_out],
        state.held_out_losses[held_out],
        color="tab:orange",
        marker=".",
        label="best, held out (test split)",
    )
    axes.set(xlabel="epoch", ylabel=f"loss ({setup.options['loss']})")
    axes.set_title(shown(f"{setup.problem.name}: loss of {len(curves.histories)} networks"), parse_math=False)
    axes.legend()
    finite = [history[np.isfinite(history)] for history in curves.histories]
    if all(np.all(values > 0) for values in finite) and np.all(state.held_out_losses[held_out] > 0):
        axes.set_yscale("log")


LABELLED_CLASSES = 30  # up to this many classes confusion.png writes each count and names every class


def _confusion_figure(counts: np.ndarray, class_names, name: str):
    """The confusion matrix: with at most :data:`LABELLED_CLASSES` classes every cell's count and every class's
    name; beyond, a heat map of a fixed size without cell labels (k² texts would take minutes and a picture
    of tens of thousands of pixels), class names only at a few ticks, and a colour bar for the counts."""
    from matplotlib.figure import Figure

    k = len(class_names)
    labelled = k <= LABELLED_CLASSES
    size = max(4.0, 0.5 * k + 2) if labelled else 8.0
    figure = Figure(figsize=(size, size), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues", interpolation="nearest")
    if labelled:
        for (row, column), count in np.ndenumerate(counts):
            light = count > counts.max() / 2
            axes.text(column, row, str(count), ha="center", va="center", color="white" if light else "black")
        ticks = np.arange(k)
    else:
        figure.colorbar(image, ax=axes, shrink=0.8, label="test rows")
        ticks = np.unique(np.linspace(0, k - 1, 11).round().astype(int))
    labels = [shown(class_names[index]) for index in ticks]
    axes.set_xticks(ticks, labels, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center", parse_math=False)
    axes.set_yticks(ticks, labels, parse_math=False)
    accuracy_text = f"{np.trace(counts) / counts.sum():.3f}" if counts.sum() else "n/a"
    title = f"{name}: test accuracy {accuracy_text}" + ("" if labelled else f" ({k} classes)")
    axes.set(xlabel="predicted", ylabel="true")
    axes.set_title(shown(title), parse_math=False)
    return figure


def write_plots(
    out: Path, state: TrainState, setup: RunSetup, predicted: np.ndarray, population: PopulationCurves | None = None
) -> list[str]:
    """loss.png (training and held-out loss; with ``population``, every member's training loss and the
    best one's held-out loss), and confusion.png for classification; [] with a note when matplotlib is
    missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"{PROG}: plots skipped: matplotlib is not installed (pip install 'jaxnn[plots]')", file=sys.stderr)
        return []
    problem = setup.problem

    def loss_figure():
        figure = Figure(figsize=(6, 4), layout="constrained")
        if population is None:
            _loss_figure(figure, state, setup)
        else:
            _population_loss_figure(figure, state, setup, population)
        return figure

    written = _drawn(out / LOSS_PLOT, loss_figure)
    if problem.task == "classification":
        counts = _confusion_counts(problem.y_test, predicted, len(problem.class_names))
        written += _drawn(out / CONFUSION_PLOT, lambda: _confusion_figure(counts, problem.class_names, problem.name))
    return written


def _drawn(path: Path, draw) -> list[str]:
    """Save the figure ``draw()`` returns at ``path``: ``[its name]``, or [] after a one-line warning when
    matplotlib cannot draw it (the run's other files are written; a write error, a full disk, goes on)."""
    try:
        _save_figure(draw(), path)
    except OSError:
        raise
    except Exception as error:  # matplotlib's errors have no common class
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        reason = reason if len(reason) <= 200 else reason[:200] + "..."
        print(f"{PROG}: warning: {path.name} was not drawn ({reason}); every other file was written", file=sys.stderr)
        return []
    return [path.name]


def write_results(
    setup: RunSetup,
    state: TrainState,
    metrics: dict[str, Any],
    predicted: np.ndarray,
    population: PopulationCurves | None = None,
) -> list[str]:
    """metrics.json, history.csv and the plots into ``setup.out``; returns the names written.  A population
    run passes its best member's run and ``population``, the curves loss.png draws."""
    write_text(setup.out / METRICS_FILE, json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n")
    write_text(setup.out / HISTORY_FILE, history_csv(state))
    return [METRICS_FILE, HISTORY_FILE, *write_plots(setup.out, state, setup, predicted, population)]


def number(value: float) -> str:
    """A loss or error with four significant digits, however large or small: 0.04471, 1.2e-05, 3.185e+37."""
    return f"{value:.4g}"


def r_squared(value: float) -> str:
    """R² with four decimals in its usual range (0.9876, -0.0312), else four significant digits (-3.185e+37)."""
    return f"{value:.4f}" if math.isfinite(value) and abs(value) < 1000 else f"{value:.4g}"


def describe(setup: RunSetup) -> str:
    """``iris: 4-10 relu-5 relu-3 identity, softmax_cross_entropy, gd lr 0.1, full batch`` (lbfgs: no lr; ``gd lr
    0.1 l2 0.001`` with ``--l2``; then ``, balanced class weights`` with ``--class-weight balanced``)."""
    layers = "-".join(f"{layer.units} {layer.activation}" for layer in setup.model.layers)
    options = setup.options
    batch = options["batch_size"]
    rows = len(setup.problem.x_train)
    batch_text = "full batch" if batch is None else f"batch {batch}"
    if batch is not None and batch >= rows:  # as fit reads it: every row in one step
        batch_text = f"full batch (--batch-size {batch} >= the {rows} training rows)"
    if options.get("dropout"):
        batch_text += f", dropout {options['dropout']:g}"
    optimizer = options["optimizer"] if options["lr"] is None else f"{options['optimizer']} lr {options['lr']:g}"
    if options["optimizer"] == "sgd" and options["momentum"]:
        optimizer += f" momentum {options['momentum']:g}{' nesterov' if options['nesterov'] else ''}"
    if options.get("l2"):
        optimizer += f" l2 {options['l2']:g}"
    weights = ", balanced class weights" if options.get("class_weight") == "balanced" else ""
    return (
        f"{setup.problem.name}: {setup.problem.x_train.shape[1]}-{layers}, {options['loss']}, {optimizer}, "
        f"{batch_text}{weights}"
    )


def _columns(names: tuple[str, ...]) -> str:
    """The input columns' names, the first few; a name holding a comma is quoted (``'b,c'``), which would read as two
    columns."""
    shown = ", ".join(repr(name) if "," in name else name for name in names[:_SHOWN_COLUMNS])
    more = f" and {len(names) - _SHOWN_COLUMNS} more (all in metrics.json)" if len(names) > _SHOWN_COLUMNS else ""
    return f"inputs ({len(names)}): {shown}{more}"


def summary(setup: RunSetup, state: TrainState, metrics: dict[str, Any], written: list[str]) -> str:
    """The closing lines: the network, the inputs, the time, the results and the files written."""
    size = setup.runtime.mesh.size
    devices = f"{size} {setup.runtime.platform} device{'s' if size > 1 else ''}"
    hosts = f" on {setup.runtime.processes} hosts" if setup.runtime.processes > 1 else ""
    other = max(0.0, state.total_seconds - state.seconds)
    timing = (
        f"{state.epoch} {unit(setup.options['optimizer'])}s on {devices}{hosts} in {state.total_seconds:.1f} s "
        f"(training {state.seconds:.1f} s; held-out loss, progress and checkpoints {other:.1f} s)"
    )
    lines = [describe(setup), _columns(setup.problem.feature_names), timing]
    if state.stopped is not None:
        lines.append(f"L-BFGS stopped: {stop_reason(Status[state.stopped])}")
    if setup.problem.task == "classification":
        correct = round(metrics["test_accuracy"] * metrics["n_test"])
        result = f"test accuracy {metrics['test_accuracy']:.4f} ({correct} of {metrics['n_test']})"
    else:
        result = f"test RMSE {number(metrics['test_rmse'])}, test R^2 {r_squared(metrics['test_r2'])}"
    lines.append(f"train loss {number(metrics['train_loss'])}, test loss {number(metrics['test_loss'])}, {result}")
    if written:
        lines.append(f"wrote {setup.out}: {' '.join(written)}")
    return shown("\n".join(lines))
