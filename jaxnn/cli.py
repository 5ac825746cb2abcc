"""``jaxnn-train``: train a dense network on a bundled dataset or a CSV file, from the shell.

    jaxnn-train                                        # the seed's iris network: 4-10-5-3, 2000 epochs of gd
    jaxnn-train --dataset digits --layers 64,32 --optimizer adam --out runs/digits
    jaxnn-train --csv houses.csv --target price --out runs/houses
    jaxnn-train --resume runs/digits --epochs 400       # continue that run up to 400 epochs in all

The run: load the data, split it as ``train_test_split(test_size, random_state=seed)`` does,
standardise the inputs on the training split, train with :func:`jaxnn.distributed.fit_sharded`
in chunks of epochs (data split over every device, parameters replicated), report progress after
each chunk, write a checkpoint every ``--checkpoint-every`` epochs and at the end, then evaluate on
the test split and write ``metrics.json``, ``history.csv`` and the plots into ``--out``.

Classification or regression.  The bundled datasets are classification.  A CSV target column is
classification when it holds text, or whole numbers with at most 20 distinct values; otherwise it
is regression (``--task`` overrides).  The last layer follows from the loss: softmax for
categorical cross-entropy (and squared-error losses on classes), sigmoid for binary
cross-entropy, identity (logits) for the fused losses and for regression.  Regression targets are
standardised on the training split like the inputs; the test RMSE is reported in the target's units.

Resuming.  ``--epochs`` is the total.  A resumed run takes every training option from the
checkpoint; an option given again must agree with it.  Epoch ``e`` always shuffles with
``fold_in(key, e)``, so on CPU a resumed run ends bitwise equal to an uninterrupted one.

Exit status: 0 done, 1 training diverged, 2 bad input (one line on stderr), 130 interrupted
(after writing a checkpoint).  See docs/cli.md for the files and multi-host runs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxnn import checkpoint, distributed
from jaxnn.activations import ACTIVATIONS
from jaxnn.data import Standardiser, load_iris, one_hot, shuffle_split, standardise
from jaxnn.layers import Dense, Sequential
from jaxnn.losses import LOSSES, Loss, get_loss
from jaxnn.train import gradient_descent

__all__ = ["build_parser", "main"]

PROG = "jaxnn-train"
DATASETS = ("iris", "wine", "breast_cancer", "digits")
OPTIMIZERS = ("gd", "sgd", "adam")
PLATFORMS = ("cpu", "gpu", "tpu")
TASKS = ("auto", "classification", "regression")
CHECKPOINT_FILE = "checkpoint.npz"
MAX_AUTO_CLASSES = 20  # a whole-number CSV target with more distinct values is read as regression
PROGRESS_UPDATES = 50  # about this many progress updates (chunks) per run
LOG_LINES = 10  # without a terminal: about this many progress lines per run

# Defaults that depend on the optimiser: full-batch gradient descent is the seeds' recipe.
DEFAULT_LR = {"gd": 0.1, "sgd": 0.1, "adam": 0.01}
DEFAULT_EPOCHS = {"gd": 2000, "sgd": 200, "adam": 200}
DEFAULT_BATCH = {"gd": None, "sgd": 32, "adam": 32}  # None: full batch

# The options that define a training run; a checkpoint stores them and a resumed run must agree.
RUN_OPTIONS = (
    "dataset",
    "csv",
    "target",
    "task",
    "layers",
    "activation",
    "loss",
    "optimizer",
    "lr",
    "batch_size",
    "seed",
    "test_size",
)
CLASSIFICATION_ONLY_LOSSES = (
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
)
BINARY_LOSSES = ("binary_cross_entropy", "sigmoid_binary_cross_entropy")
CLASS_OUTPUT = {
    "categorical_cross_entropy": "softmax",
    "softmax_cross_entropy": "identity",
    "binary_cross_entropy": "sigmoid",
    "sigmoid_binary_cross_entropy": "identity",
    "mean_squared_error": "softmax",
    "sum_of_squares": "softmax",
}
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """Bad input, said in the user's words; ``main`` prints it as one line and exits with status 2."""


# ---------------------------------------------------------------------------------------------
# The command line


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) naming the fix."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_of(names: Sequence[str], what: str):
    def parse(value: str) -> str:
        if value not in names:
            raise argparse.ArgumentTypeError(f"unknown {what} {value!r}; choose {', '.join(names)}")
        return value

    return parse


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


MAX_EPOCHS = 2**32 - 1  # the epoch counter inside the compiled loop is a uint32


def _epochs(value: str) -> int:
    number = _positive_int(value)
    if number > MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to 2**32 - 1 (a 32-bit epoch count)")
    return number


def _seed(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number < 2**32:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 0 to 2**32 - 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def _fraction(value: str) -> float:
    number = _positive_float(value)
    if number >= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a fraction between 0 and 1, like 0.25")
    return number


def _layers(value: str) -> list[int]:
    try:
        units = [int(part) for part in value.split(",")]
    except ValueError:
        units = []
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of positive layer widths, like 10,5")
    return units


def _batch_size(value: str) -> int | str:
    return "full" if value == "full" else _positive_int(value)


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxnn-train`` argument parser (training options default to None: "not given")."""
    parser = _Parser(
        prog=PROG,
        description="Train a dense neural network (hand-written backprop on JAX) and evaluate it on a test split.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  jaxnn-train                                   the seed's iris network (4-10-5-3)\n"
            "  jaxnn-train --dataset digits --optimizer adam --out runs/digits\n"
            "  jaxnn-train --csv data.csv --target label --layers 32,16 --out runs/mine\n"
            "  jaxnn-train --resume runs/digits --epochs 400  continue up to 400 epochs in all\n"
            "\nexit status: 0 done, 1 training diverged, 2 bad input, 130 interrupted (checkpoint written)"
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        type=_one_of(DATASETS, "dataset"),
        metavar="NAME",
        help=f"a dataset bundled with scikit-learn, no download: {', '.join(DATASETS)} (default: iris)",
    )
    data.add_argument("--csv", metavar="PATH", help="train on a CSV file with a header row instead (needs --target)")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict; every other column is an input")
    data.add_argument(
        "--task",
        type=_one_of(TASKS, "task"),
        metavar="KIND",
        help="classification or regression (default auto: text or at most 20 distinct whole numbers "
        "in the target column mean classification)",
    )
    data.add_argument(
        "--test-size", type=_fraction, metavar="FRACTION", help="share of rows held out for testing (default 0.25)"
    )
    data.add_argument(
        "--seed", type=_seed, metavar="N", help="seeds the split, the initial weights and the shuffles (default 42)"
    )

    model = parser.add_argument_group("model and training")
    model.add_argument(
        "--layers", type=_layers, metavar="W1,W2", help="hidden layer widths (default 10,5); the output layer is added"
    )
    model.add_argument(
        "--activation",
        type=_one_of(sorted(ACTIVATIONS), "activation"),
        metavar="NAME",
        help=f"hidden-layer activation: {', '.join(sorted(ACTIVATIONS))} (default relu)",
    )
    model.add_argument(
        "--loss",
        type=_one_of(sorted(LOSSES), "loss"),
        metavar="NAME",
        help=f"{', '.join(sorted(LOSSES))} (default categorical_cross_entropy for classes, "
        "mean_squared_error for regression); it also picks the output activation",
    )
    model.add_argument(
        "--optimizer",
        type=_one_of(OPTIMIZERS, "optimizer"),
        metavar="NAME",
        help="gd: gradient descent on the full batch (default); sgd: the same update on shuffled "
        "minibatches of 32; adam: optax.adam on minibatches of 32",
    )
    model.add_argument(
        "--lr", type=_positive_float, metavar="RATE", help="learning rate (default 0.1 for gd and sgd, 0.01 for adam)"
    )
    model.add_argument(
        "--epochs",
        type=_epochs,
        metavar="N",
        help="total epochs, counting those of a resumed run (default 2000 for gd, 200 for sgd and adam)",
    )
    model.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="N",
        help="rows per step, or 'full' (default: full for gd, 32 for sgd and adam)",
    )

    files = parser.add_argument_group("output and checkpoints")
    files.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write metrics.json, history.csv, loss.png, confusion.png and checkpoint.npz here",
    )
    files.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=100,
        metavar="N",
        help="write a checkpoint every N epochs and at the end (default 100; needs --out)",
    )
    files.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run checkpointed in DIR up to --epochs (files go to DIR unless --out says otherwise)",
    )
    files.add_argument("--overwrite", action="store_true", help="start afresh even if --out already holds a checkpoint")
    files.add_argument("--quiet", action="store_true", help="no progress, only the closing summary")

    hardware = parser.add_argument_group("devices and hosts")
    hardware.add_argument(
        "--platform",
        type=_one_of(PLATFORMS, "platform"),
        metavar="NAME",
        help="cpu, gpu or tpu (default: the best JAX finds)",
    )
    hardware.add_argument(
        "--devices",
        type=_positive_int,
        metavar="N",
        help="use the first N devices (default: all; the training rows are split across them)",
    )
    hardware.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="several hosts: the address of process 0, where JAX's coordinator listens",
    )
    hardware.add_argument("--num-processes", type=_positive_int, metavar="N", help="several hosts: how many processes")
    hardware.add_argument(
        "--process-id", type=int, metavar="I", help="several hosts: this process's rank, 0 .. N-1 (0 writes the files)"
    )
    hardware.add_argument(
        "--multi-host",
        action="store_true",
        help="several hosts, found by JAX itself (TPU pods, Slurm, Open MPI) without --coordinator",
    )
    return parser


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, normalised as a checkpoint stores them."""
    given = {name: getattr(args, name) for name in RUN_OPTIONS if getattr(args, name) is not None}
    if given.get("task") == "auto":
        del given["task"]
    if given.get("batch_size") == "full":
        given["batch_size"] = None
    if "csv" in given:
        given["csv"] = str(Path(given["csv"]).resolve())
    return given


def _with_defaults(given: dict[str, Any]) -> dict[str, Any]:
    """A fresh run's options: what was given, the rest from the defaults (task and loss come with the data)."""
    if "dataset" in given and "csv" in given:
        raise CliError("--dataset and --csv both name the data; give one of them")
    if ("csv" in given) != ("target" in given):
        raise CliError("--csv and --target go together: name the file and the column to predict")
    optimizer = given.get("optimizer", "gd")
    defaults = {
        "dataset": None if "csv" in given else "iris",
        "csv": None,
        "target": None,
        "task": None,
        "layers": [10, 5],
        "activation": "relu",
        "loss": None,
        "optimizer": optimizer,
        "lr": DEFAULT_LR[optimizer],
        "batch_size": DEFAULT_BATCH[optimizer],
        "seed": 42,
        "test_size": 0.25,
    }
    return {**defaults, **given}


def _agreeing_with(stored: dict[str, Any], given: dict[str, Any], path: Path) -> dict[str, Any]:
    """A resumed run's options: the checkpoint's; any given again must be the same."""
    missing = [name for name in (*RUN_OPTIONS, "epochs") if name not in stored]
    if missing:
        raise CliError(f"{path} was not written by {PROG}: its config lacks {', '.join(missing)}")
    checks = {
        "dataset": _one_of(DATASETS, "dataset"),
        "task": _one_of(TASKS, "task"),
        "layers": _layers,
        "activation": _one_of(sorted(ACTIVATIONS), "activation"),
        "loss": _one_of(sorted(LOSSES), "loss"),
        "optimizer": _one_of(OPTIMIZERS, "optimizer"),
        "lr": _positive_float,
        "batch_size": _batch_size,
        "seed": _seed,
        "test_size": _fraction,
        "epochs": _epochs,
    }
    for name, check in checks.items():  # the file is not trusted: its options pass the checks flags pass
        value = stored[name]
        if value is None and name in ("dataset", "task", "loss", "batch_size"):
            continue
        text = ",".join(map(str, value)) if name == "layers" and isinstance(value, list) else str(value)
        try:
            valid = check(text) == value and type(check(text)) is type(value)
        except argparse.ArgumentTypeError:
            valid = False
        if name == "batch_size" and value == "full":  # a run stores full batch as None
            valid = False
        if not valid:
            raise CliError(f"{path} holds an invalid {_flag(name)} ({value!r}); was it written by {PROG}?")
    if not all(isinstance(stored[name], str | None) for name in ("csv", "target")):
        raise CliError(f"{path} holds an invalid --csv or --target; was it written by {PROG}?")
    if (stored["dataset"] is None) == (stored["csv"] is None):
        raise CliError(f"{path} holds an invalid --dataset/--csv (a run sets exactly one); was it written by {PROG}?")
    for name, value in given.items():
        if stored.get(name) != value:
            raise CliError(
                f"{_flag(name)} {_show(name, value)} differs from {_show(name, stored.get(name))} in {path}; "
                f"leave {_flag(name)} out to continue that run, or start a new run in another --out"
            )
    return {name: stored.get(name) for name in RUN_OPTIONS}


def _show(name: str, value) -> str:
    if value is None:
        return "full" if name == "batch_size" else "(not set)"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


# ---------------------------------------------------------------------------------------------
# Data


class Problem(NamedTuple):
    """The prepared data: inputs standardised on the training split, targets as labels or values."""

    name: str
    task: str  # "classification" or "regression"
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray  # class indices 0..k-1, or target values in their own units
    y_test: np.ndarray
    class_names: tuple[str, ...]  # empty for regression
    fingerprint: str  # sha256 of the split data, to notice changed data on resume


def _load_bundled(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Iris from jaxnn's own copy (no scikit-learn import), the others from scikit-learn."""
    if name == "iris":
        iris = load_iris()
        return iris.x, iris.y, iris.class_names
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    return bunch.data.astype(float), bunch.target.astype(int), tuple(str(label) for label in bunch.target_names)


def _read_csv(path: Path, target: str) -> tuple[np.ndarray, list[str], list[int]]:
    """Numeric input columns, the raw target cells and their line numbers; a CliError names any bad cell."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = [
                (number, row) for number, row in enumerate(csv.reader(file), start=1) if any(c.strip() for c in row)
            ]
    except OSError as error:
        raise CliError(f"cannot read --csv {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise CliError(f"--csv {path} is not a readable UTF-8 CSV file ({error})") from None
    if len(rows) < 2:
        raise CliError(f"--csv {path} needs a header row and at least one data row")
    header = [name.strip() for name in rows[0][1]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise CliError(f"--csv {path} has repeated column names ({', '.join(map(repr, repeated))}); rename them")
    if target not in header:
        raise CliError(f"--target column {target!r} is not in {path}; its columns are: {', '.join(header)}")
    target_index = header.index(target)
    if len(header) < 2:
        raise CliError(f"--csv {path} has only the target column; it needs at least one input column")
    inputs, targets, lines = [], [], []
    for number, row in rows[1:]:
        if len(row) != len(header):
            raise CliError(f"{path} line {number} has {len(row)} cells but the header has {len(header)}")
        cells = [cell.strip() for cell in row]
        inputs.append([_number(cell, path, number, header[i]) for i, cell in enumerate(cells) if i != target_index])
        label = cells[target_index]
        if not label or not math.isfinite(_as_float(label)):
            raise CliError(f"{path} line {number}, target column {target!r} holds {label!r}; fill in or drop the row")
        targets.append(label)
        lines.append(number)
    return np.asarray(inputs, dtype=float), targets, lines


def _as_float(cell: str) -> float:
    """The cell's number (NaN, inf or 1e400 included); 0.0 for text, which may be a class label."""
    try:
        return float(cell)
    except ValueError:
        return 0.0


def _number(cell: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        what = "is empty" if not cell else f"holds {cell!r}, which is not a finite number"
        raise CliError(
            f"{path} line {line}, column {column!r} {what}; input columns must be numbers (fill in or drop such cells)"
        )
    return value


def _as_numbers(cells: list[str]) -> np.ndarray | None:
    try:
        values = np.asarray([float(cell) for cell in cells])
    except ValueError:
        return None
    return values if np.all(np.isfinite(values)) else None


def _csv_targets(cells: list[str], lines: list[int], task: str | None, path: Path, column: str):
    """``(task, targets, class_names)``: class indices with their names, or float values."""
    numbers = _as_numbers(cells)
    if task is None:
        whole = numbers is not None and np.all(numbers == np.round(numbers))
        few = numbers is not None and len(np.unique(numbers)) <= MAX_AUTO_CLASSES
        task = "classification" if numbers is None or (whole and few) else "regression"
    if task == "regression":
        if numbers is None:
            bad = next(i for i, cell in enumerate(cells) if _as_numbers([cell]) is None)
            raise CliError(
                f"{path} line {lines[bad]}, target column {column!r} holds {cells[bad]!r}; "
                "regression needs numbers there (or use --task classification)"
            )
        return task, numbers, ()
    if numbers is not None:
        values, labels = np.unique(numbers, return_inverse=True)
        names = tuple(f"{value:g}" for value in values)
    else:
        names_array, labels = np.unique(np.asarray(cells), return_inverse=True)
        names = tuple(str(name) for name in names_array)
    return task, labels.astype(int), names


def _fingerprint(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def load_problem(options: dict[str, Any]) -> Problem:
    """Load, split and standardise the data that ``options`` names; the task is resolved here."""
    if options["csv"] is not None:
        path = Path(options["csv"])
        x, cells, lines = _read_csv(path, options["target"])
        task, y, class_names = _csv_targets(cells, lines, options["task"], path, options["target"])
        name = path.name
    else:
        if options["task"] == "regression":
            raise CliError(f"the {options['dataset']} dataset is classification; leave --task out")
        x, y, class_names = _load_bundled(options["dataset"])
        task, name = "classification", options["dataset"]
    if task == "classification" and len(class_names) < 2:
        raise CliError(f"the target of {name} has only one class ({class_names[0]!r}); classification needs two")
    try:
        train, test = shuffle_split(len(x), options["test_size"], options["seed"])
    except ValueError as error:
        raise CliError(
            f"cannot split the {len(x)} rows of {name} with --test-size {options['test_size']}: {error}"
        ) from None
    x_train, x_test, y_train, y_test = x[train], x[test], y[train], y[test]
    scaler = standardise(x_train)
    return Problem(
        name,
        task,
        scaler(x_train),
        scaler(x_test),
        y_train,
        y_test,
        class_names,
        _fingerprint(x_train, y_train, x_test, y_test),
    )


# ---------------------------------------------------------------------------------------------
# Model, targets and metrics


def _resolve_loss(options: dict[str, Any], task: str) -> dict[str, Any]:
    loss = options["loss"] or ("categorical_cross_entropy" if task == "classification" else "mean_squared_error")
    if task == "regression" and loss in CLASSIFICATION_ONLY_LOSSES:
        raise CliError(f"--loss {loss} needs class labels but the target is continuous; use mean_squared_error")
    return {**options, "task": task, "loss": loss}


def n_outputs(problem: Problem, loss_name: str) -> int:
    """1 for regression and for a binary loss on two classes (one probability); else one per class."""
    if problem.task == "regression" or (loss_name in BINARY_LOSSES and len(problem.class_names) == 2):
        return 1
    return len(problem.class_names)


def build_model(options: dict[str, Any], problem: Problem) -> Sequential:
    """Hidden ``Dense`` layers of ``options["layers"]`` widths, then the output layer the loss needs."""
    output = "identity" if problem.task == "regression" else CLASS_OUTPUT[options["loss"]]
    hidden = tuple(Dense(units, options["activation"]) for units in options["layers"])
    return Sequential((*hidden, Dense(n_outputs(problem, options["loss"]), output)))


@cache
def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    """gd and sgd are the same update, ``θ ← θ − η·g``; they differ in the default batch size.

    Cached: the compiled training loop is keyed on the optimiser object, so runs with the same
    optimiser in one process (resumes, tests) reuse it instead of compiling again.
    """
    return optax.adam(learning_rate) if name == "adam" else gradient_descent(learning_rate)


class Targets(NamedTuple):
    """What the network is trained on, and how to read its outputs back."""

    train: np.ndarray  # (n, n_outputs)
    test: np.ndarray
    scaler: Standardiser | None  # regression: targets were standardised with this


def make_targets(problem: Problem, width: int) -> Targets:
    if problem.task == "regression":
        scaler = standardise(problem.y_train[:, None])
        return Targets(scaler(problem.y_train[:, None]), scaler(problem.y_test[:, None]), scaler)
    if width == 1:
        return Targets(problem.y_train[:, None].astype(float), problem.y_test[:, None].astype(float), None)
    k = len(problem.class_names)
    return Targets(one_hot(problem.y_train, k), one_hot(problem.y_test, k), None)


@partial(jax.jit, static_argnums=(0, 1))
def _evaluate(model: Sequential, loss: Loss, params, x, targets):
    outputs = model.apply(params, x)
    return loss.forward(outputs, targets), outputs


def predict_classes(outputs: np.ndarray, loss: Loss) -> np.ndarray:
    """Argmax over the outputs; one output column is a probability (or a logit) thresholded at ½ (or 0)."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > (0.0 if loss.from_logits else 0.5)).astype(int)
    return np.argmax(outputs, axis=1)


def evaluate(model: Sequential, loss: Loss, params, x: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """``(loss, outputs)`` of ``params`` on ``x``, computed on the default device."""
    value, outputs = _evaluate(model, loss, params, np.asarray(x, np.float32), np.asarray(targets, np.float32))
    return float(value), np.asarray(outputs)


# ---------------------------------------------------------------------------------------------
# Devices and hosts


class Runtime(NamedTuple):
    mesh: jax.sharding.Mesh
    platform: str
    processes: int
    main: bool  # process 0: prints and writes files


def start_runtime(args: argparse.Namespace) -> Runtime:
    """Pick the platform, join the other hosts if asked, and lay the devices out as one mesh."""
    if args.platform:
        jax.config.update("jax_platforms", args.platform)
    cluster = args.coordinator is not None or args.multi_host
    if not cluster and (args.num_processes is not None or args.process_id is not None):
        raise CliError("--num-processes and --process-id describe several hosts: give --coordinator too")
    try:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id, auto=args.multi_host)
    except (RuntimeError, ValueError) as error:
        raise CliError(f"could not join the multi-host run: {_first_line(error)}") from None
    try:
        devices = jax.devices(args.platform) if args.platform else jax.devices()
    except RuntimeError as error:
        hint = {"gpu": "pip install -U 'jax[cuda12]'", "tpu": "pip install -U 'jax[tpu]'"}.get(args.platform)
        install = f"; install JAX for it: {hint}" if hint else ""
        raise CliError(
            f"--platform {args.platform}: JAX finds no {args.platform} device here{install} "
            f"(JAX says: {_first_line(error)})"
        ) from None
    if args.devices is not None:
        if jax.process_count() > 1:
            raise CliError("--devices works on one host; several hosts always use all their devices")
        if args.devices > len(devices):
            count = f"{len(devices)} {devices[0].platform} device" + (" is" if len(devices) == 1 else "s are")
            raise CliError(f"--devices {args.devices}: only {count} here")
        devices = devices[: args.devices]
    return Runtime(
        distributed.make_mesh(devices), devices[0].platform, jax.process_count(), distributed.is_main_process()
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ---------------------------------------------------------------------------------------------
# Training


class TrainState(NamedTuple):
    """Everything a checkpoint holds besides the key and options; arrays on the host."""

    params: Any
    opt_state: Any
    epoch: int
    history: np.ndarray  # (epoch,) mean training loss per epoch
    seconds: float  # training time so far, over all resumed runs
    diverged: bool


def progress_step(epochs: int, checkpoint_every: int) -> int:
    """Epochs per chunk: the largest divisor of ``checkpoint_every`` near ``epochs / PROGRESS_UPDATES``.

    Dividing ``checkpoint_every`` keeps every checkpoint on a chunk boundary with one chunk length
    (one compiled program) for the whole run.
    """
    target = max(1, math.ceil(epochs / PROGRESS_UPDATES))
    return max(d for d in range(1, min(target, checkpoint_every) + 1) if checkpoint_every % d == 0)


def next_stop(done: int, epochs: int, step: int) -> int:
    """The next chunk boundary: a multiple of ``step``, or the last epoch."""
    return min(epochs, (done // step + 1) * step)


class Progress:
    """Silent progress; the base of the bar and the log lines."""

    def update(self, epoch: int, loss: float, score: float | None) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar(Progress):
    def __init__(self, tqdm, epochs: int, start: int, name: str):
        self.bar = tqdm(total=epochs, initial=start, desc=name, unit="epoch", dynamic_ncols=True, file=sys.stderr)

    def update(self, epoch, loss, score):
        postfix = {"loss": f"{loss:.4f}"} | ({"acc": f"{score:.3f}"} if score is not None else {})
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self):
        self.bar.close()


class _Lines(Progress):
    """About LOG_LINES plain lines on stdout: for logs, pipes and CI, where a bar would be noise."""

    def __init__(self, epochs: int, start: int):
        self.epochs, self.every = epochs, max(1, math.ceil(epochs / LOG_LINES))
        self.last = start // self.every

    def update(self, epoch, loss, score):
        if epoch // self.every > self.last or epoch == self.epochs:
            self.last = epoch // self.every
            width = len(str(self.epochs))
            accuracy_text = f"  accuracy {score:.4f}" if score is not None else ""
            print(f"epoch {epoch:{width}d}/{self.epochs}  loss {loss:.4f}{accuracy_text}", flush=True)


def make_progress(quiet: bool, epochs: int, start: int, name: str) -> Progress:
    """A tqdm bar on a terminal, log lines otherwise (or without tqdm), nothing with --quiet."""
    if quiet:
        return Progress()
    if sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Lines(epochs, start)
        return _Bar(tqdm, epochs, start, name)
    return _Lines(epochs, start)


class Run(NamedTuple):
    """The fixed parts of one invocation."""

    options: dict[str, Any]
    problem: Problem
    targets: Targets
    model: Sequential
    loss: Loss
    optimizer: optax.GradientTransformation
    key: jax.Array  # the shuffle key
    runtime: Runtime
    data: distributed.ShardedData
    epochs: int
    checkpoint_every: int
    out: Path | None  # None: nothing is written (also in processes other than 0)


def run_chunk(run: Run, state: TrainState, epochs: int) -> TrainState:
    """``epochs`` more epochs from ``state``; stops counting at a divergence."""
    started = time.perf_counter()
    result = distributed.fit_sharded(
        run.runtime.mesh,
        run.model,
        run.loss,
        run.optimizer,
        state.params,
        state.opt_state,
        run.data,
        key=run.key,
        epochs=epochs,
        start_epoch=state.epoch,
        batch_size=run.options["batch_size"],
    )
    ran = int(result.n_epochs)
    return TrainState(
        result.params,
        result.opt_state,
        state.epoch + ran,
        np.concatenate([state.history, result.history[:ran]]),
        state.seconds + time.perf_counter() - started,
        bool(result.diverged),
    )


def save_checkpoint(run: Run, state: TrainState) -> None:
    if run.out is None:
        return
    config = {
        **run.options,
        "epochs": run.epochs,
        "seconds": state.seconds,
        "diverged": state.diverged,
        "n_features": int(run.problem.x_train.shape[1]),
        "class_names": list(run.problem.class_names),
        "data_sha256": run.problem.fingerprint,
    }
    checkpoint.save(
        run.out / CHECKPOINT_FILE,
        params=state.params,
        opt_state=state.opt_state,
        key=run.key,
        epoch=state.epoch,
        history=state.history,
        config=config,
    )


def training_accuracy(run: Run, params) -> float | None:
    """Accuracy on the training split (None for regression), for the progress report."""
    if run.problem.task != "classification":
        return None
    _, outputs = evaluate(run.model, run.loss, params, run.problem.x_train, run.targets.train)
    return float(np.mean(predict_classes(outputs, run.loss) == run.problem.y_train))


class _Interrupted(Exception):
    """Ctrl-C during training, after the state it carries was checkpointed."""

    def __init__(self, state: TrainState):
        super().__init__(state.epoch)
        self.state = state


def train(run: Run, state: TrainState, progress: Progress) -> TrainState:
    """Chunks of epochs up to ``run.epochs`` (or a divergence), with progress and checkpoints.

    Ctrl-C checkpoints the last finished chunk and raises :class:`_Interrupted`.
    """
    step = progress_step(run.epochs, run.checkpoint_every)
    ctrl_c = _CtrlC()
    try:
        with ctrl_c:
            while state.epoch < run.epochs and not state.diverged and not ctrl_c.pressed:
                state = run_chunk(run, state, next_stop(state.epoch, run.epochs, step) - state.epoch)
                last_loss = float(state.history[-1]) if len(state.history) else math.nan
                progress.update(state.epoch, last_loss, training_accuracy(run, state.params))
                if state.epoch % run.checkpoint_every == 0 or state.epoch == run.epochs or state.diverged:
                    save_checkpoint(run, state)
    except KeyboardInterrupt:
        ctrl_c.pressed = True
    progress.close()
    if ctrl_c.pressed:
        save_checkpoint(run, state)
        raise _Interrupted(state)
    return state


class _CtrlC:
    """Turns the first Ctrl-C into a flag checked between chunks.

    A KeyboardInterrupt raised inside JAX can be swallowed by its internal ``except:`` clauses
    (training would then go on), and one raised mid-write would cut a checkpoint short; a flag
    avoids both.  A second Ctrl-C raises KeyboardInterrupt as usual.  Outside the main thread,
    where Python allows no signal handler, Ctrl-C is a plain KeyboardInterrupt.
    """

    def __init__(self):
        self.pressed = False
        self._previous = None

    def _handle(self, signum, frame):
        self.pressed = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle) or signal.default_int_handler
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ---------------------------------------------------------------------------------------------
# Results


def metrics_of(run: Run, state: TrainState) -> tuple[dict[str, Any], np.ndarray]:
    """The numbers of metrics.json (losses on the training objective's scale, and task metrics) and
    the test predictions (class indices, or values in the target's units)."""
    train_loss, train_outputs = evaluate(run.model, run.loss, state.params, run.problem.x_train, run.targets.train)
    test_loss, outputs = evaluate(run.model, run.loss, state.params, run.problem.x_test, run.targets.test)
    metrics: dict[str, Any] = {"dataset": run.problem.name, "task": run.problem.task}
    if run.problem.task == "classification":
        predicted = predict_classes(outputs, run.loss)
        metrics["test_accuracy"] = float(np.mean(predicted == run.problem.y_test))
        metrics["train_accuracy"] = float(np.mean(predict_classes(train_outputs, run.loss) == run.problem.y_train))
    else:
        scaler = run.targets.scaler
        predicted = outputs[:, 0] * scaler.scale[0] + scaler.mean[0]
        errors = predicted - run.problem.y_test
        spread = np.sum((run.problem.y_test - run.problem.y_test.mean()) ** 2)
        metrics["test_rmse"] = float(np.sqrt(np.mean(errors**2)))
        metrics["test_r2"] = float(1 - np.sum(errors**2) / spread) if spread > 0 else math.nan
    metrics |= {
        "test_loss": test_loss,
        "train_loss": train_loss,
        "loss": run.options["loss"],
        "epochs": state.epoch,
        "diverged": state.diverged,
        "seconds": round(state.seconds, 3),
        "devices": run.runtime.mesh.size,
        "platform": run.runtime.platform,
        "processes": run.runtime.processes,
        "n_train": len(run.problem.y_train),
        "n_test": len(run.problem.y_test),
        "options": run.options,
    }
    return metrics, predicted


def _write_text(path: Path, text: str) -> None:
    checkpoint.write_atomically(path, lambda file: file.write(text.encode()))


def _json_safe(value):
    """NaN and infinities (a diverged run's losses, R² of a constant target) as null: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def history_csv(history: np.ndarray) -> str:
    lines = ["epoch,train_loss"] + [f"{epoch},{loss!r}" for epoch, loss in enumerate(history.tolist(), start=1)]
    return "\n".join(lines) + "\n"


def write_plots(out: Path, history: np.ndarray, problem: Problem, predicted: np.ndarray) -> list[str]:
    """loss.png, and confusion.png for classification; [] with a note when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"{PROG}: plots skipped: matplotlib is not installed (pip install 'jaxnn[plots]')", file=sys.stderr)
        return []
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    axes.plot(np.arange(1, len(history) + 1), history)
    axes.set(xlabel="epoch", ylabel="mean training loss", title=f"{problem.name}: training loss")
    if np.all(history > 0):
        axes.set_yscale("log")
    _save_figure(figure, out / "loss.png")
    written = ["loss.png"]
    if problem.task == "classification":
        from sklearn.metrics import confusion_matrix

        k = len(problem.class_names)
        counts = confusion_matrix(problem.y_test, predicted, labels=np.arange(k))
        size = max(4.0, 0.5 * k + 2)
        figure = Figure(figsize=(size, size), layout="constrained")
        axes = figure.subplots()
        axes.imshow(counts, cmap="Blues")
        for (row, column), count in np.ndenumerate(counts):
            light = count > counts.max() / 2
            axes.text(column, row, str(count), ha="center", va="center", color="white" if light else "black")
        axes.set_xticks(
            np.arange(k), problem.class_names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center"
        )
        axes.set_yticks(np.arange(k), problem.class_names)
        accuracy_text = f"{np.trace(counts) / counts.sum():.3f}" if counts.sum() else "n/a"
        axes.set(xlabel="predicted", ylabel="true", title=f"{problem.name}: test accuracy {accuracy_text}")
        _save_figure(figure, out / "confusion.png")
        written.append("confusion.png")
    return written


def _save_figure(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    checkpoint.write_atomically(path, lambda file: file.write(buffer.getvalue()))


def write_results(run: Run, state: TrainState, metrics: dict[str, Any], predicted: np.ndarray) -> list[str]:
    """metrics.json, history.csv and the plots into ``run.out``; returns the names written."""
    _write_text(run.out / "metrics.json", json.dumps(_json_safe(metrics), indent=2, allow_nan=False) + "\n")
    _write_text(run.out / "history.csv", history_csv(state.history))
    return ["metrics.json", "history.csv", *write_plots(run.out, state.history, run.problem, predicted)]


def describe(run: Run) -> str:
    """``iris: 4-10 relu-5 relu-3 softmax, categorical_cross_entropy, gd lr 0.1, full batch``."""
    layers = "-".join(f"{layer.units} {layer.activation}" for layer in run.model.layers)
    batch = run.options["batch_size"]
    batch_text = "full batch" if batch is None else f"batch {batch}"
    return (
        f"{run.problem.name}: {run.problem.x_train.shape[1]}-{layers}, {run.options['loss']}, "
        f"{run.options['optimizer']} lr {run.options['lr']:g}, {batch_text}"
    )


def summary(run: Run, state: TrainState, metrics: dict[str, Any], written: list[str]) -> str:
    devices = f"{run.runtime.mesh.size} {run.runtime.platform} device{'s' if run.runtime.mesh.size > 1 else ''}"
    hosts = f" on {run.runtime.processes} hosts" if run.runtime.processes > 1 else ""
    lines = [describe(run), f"{state.epoch} epochs on {devices}{hosts} in {state.seconds:.1f} s"]
    if run.problem.task == "classification":
        correct = round(metrics["test_accuracy"] * metrics["n_test"])
        result = f"test accuracy {metrics['test_accuracy']:.4f} ({correct} of {metrics['n_test']})"
    else:
        result = f"test RMSE {metrics['test_rmse']:.4g}, test R^2 {metrics['test_r2']:.4f}"
    lines.append(f"train loss {metrics['train_loss']:.4f}, test loss {metrics['test_loss']:.4f}, {result}")
    if written:
        lines.append(f"wrote {run.out}: {' '.join(written)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Putting it together


def _initial(model: Sequential, optimizer: optax.GradientTransformation, n_features: int, seed: int):
    """Initial parameters, optimiser state and the shuffle key from one seed, split as the estimators do.

    ``model.init`` is called on its own (not inside a larger compiled function), so the weights are
    the very numbers a script calling ``model.init(init_key, n_features)`` gets.
    """
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = model.init(init_key, n_features)
    return params, optimizer.init(params), shuffle_key


def _starting_point(run: Run, params, opt_state, resume: Path | None) -> tuple[Run, TrainState]:
    """A fresh state from the initial parameters, or the checkpoint in ``resume`` with its key."""
    if resume is None:
        return run, TrainState(params, opt_state, 0, np.zeros(0, np.float32), 0.0, False)
    path = resume / CHECKPOINT_FILE
    saved = checkpoint.load(path, params_like=params, opt_state_like=opt_state)
    if saved.config.get("data_sha256") != run.problem.fingerprint:
        raise CliError(f"the data differs from the data {path} was trained on (was the CSV file changed?)")
    seconds, diverged = saved.config.get("seconds", 0.0), saved.config.get("diverged", False)
    return run._replace(key=saved.key), TrainState(
        saved.params, saved.opt_state, saved.epoch, saved.history, seconds, diverged
    )


def prepare(args: argparse.Namespace) -> tuple[Run, TrainState]:
    """Options, data, devices, model and the starting state (fresh or from the checkpoint)."""
    given = _given_options(args)
    stored = None
    if args.resume is not None:
        stored = checkpoint.read_config(args.resume / CHECKPOINT_FILE)
        options = _agreeing_with(stored, given, args.resume / CHECKPOINT_FILE)
    else:
        options = _with_defaults(given)
    problem = load_problem(options)
    options = _resolve_loss(options, problem.task)
    epochs = args.epochs or (stored["epochs"] if stored else DEFAULT_EPOCHS[options["optimizer"]])
    if stored and stored["epoch"] > epochs:
        raise CliError(f"--epochs {epochs} is fewer than the {stored['epoch']} epochs the checkpoint has already done")
    out = args.out if args.out is not None else args.resume
    continuing_in_place = args.resume is not None and out.resolve() == args.resume.resolve()
    if out is not None and not continuing_in_place and (out / CHECKPOINT_FILE).exists() and not args.overwrite:
        raise CliError(
            f"{out} already holds a checkpoint; continue it with --resume {out}, "
            "or start afresh with --overwrite or another --out"
        )
    runtime = start_runtime(args)
    if out is not None and runtime.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CliError(f"cannot create --out {out}: {error.strerror or error}") from None
    model = build_model(options, problem)
    optimizer = make_optimizer(options["optimizer"], options["lr"])
    params, opt_state, key = _initial(model, optimizer, problem.x_train.shape[1], options["seed"])
    targets = make_targets(problem, model.n_outputs)
    run = Run(
        options,
        problem,
        targets,
        model,
        get_loss(options["loss"]),
        optimizer,
        key,
        runtime,
        distributed.shard_rows(runtime.mesh, problem.x_train, targets.train),
        epochs,
        args.checkpoint_every,
        out if runtime.main else None,
    )
    return _starting_point(run, distributed.to_host(params), distributed.to_host(opt_state), args.resume)


def _run(args: argparse.Namespace) -> int:
    run, state = prepare(args)
    quiet = args.quiet or not run.runtime.main
    if not quiet and state.epoch:
        print(f"resuming {args.resume / CHECKPOINT_FILE} at epoch {state.epoch} of {run.epochs}", flush=True)
    try:
        state = train(run, state, make_progress(quiet, run.epochs, state.epoch, run.problem.name))
    except _Interrupted as interrupted:
        if run.runtime.main:
            saved = (
                f"checkpoint in {run.out}; continue with --resume {run.out}" if run.out else "no --out, nothing saved"
            )
            print(f"{PROG}: interrupted at epoch {interrupted.state.epoch}; {saved}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if run.runtime.main:
        metrics, predicted = metrics_of(run, state)
        written = [CHECKPOINT_FILE, *write_results(run, state, metrics, predicted)] if run.out else []
        print(summary(run, state, metrics, written), flush=True)
    if state.diverged:
        if run.runtime.main:
            print(
                f"{PROG}: training diverged after epoch {state.epoch} (the loss became NaN or infinite); "
                "the last finite parameters were kept; try a smaller --lr",
                file=sys.stderr,
            )
        return EXIT_DIVERGED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jaxnn-train`` with ``argv`` (default: the command line); returns the exit status.

    Bad input ends in ``SystemExit(2)`` after one line on stderr, as argparse does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (CliError, checkpoint.CheckpointError) as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
