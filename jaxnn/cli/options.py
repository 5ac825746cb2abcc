"""The command line of ``jaxnn-train``: the argument parser, the defaults, and the typed table of run options.

A *run option* defines a training run (data, model, optimiser, split); a checkpoint stores them all and a
resumed run must agree with it.  :data:`RUN_OPTIONS` describes each once — its flag, how text becomes a
value, which typed values are valid, and the value to assume for a checkpoint written before the option
existed — and serves twice: argparse parses and checks the command line with it, and :func:`stored_options`
checks the options read from a checkpoint (JSON values, typed: ``"0.1"`` is not a learning rate) with it.

:data:`MEMBER_OPTIONS` (``--lr``, ``--seed``) also take comma-separated lists: several values make a
population run, one network per combination (:func:`population_members`); one value is a single run.

The optimisers (:data:`OPTIMIZERS`) are the estimators' solvers by the same names: ``gd``, ``sgd`` and ``adam``
take steps of ``--lr`` (:mod:`jaxnn.optimizers`), and ``lbfgs`` is full-batch L-BFGS (:mod:`jaxnn.lbfgs`), whose
line search picks every step: it has no ``--lr`` (stored as None), always uses the full batch, and its
``--epochs`` is the most iterations (:func:`unit`).
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from jaxnn._checks import MAX_SEED, is_int, is_real
from jaxnn.activations import ACTIVATIONS
from jaxnn.cli.errors import EXIT_USAGE, PROG, CliError
from jaxnn.losses import LOSSES
from jaxnn.optimizers import SOLVERS, SolverSettings
from jaxnn.platforms import PLATFORMS

__all__ = [
    "DATASETS",
    "DEFAULT_BATCH",
    "DEFAULT_CHECKPOINT_SECONDS",
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "LBFGS",
    "MAX_EPOCHS",
    "MEMBER_OPTIONS",
    "OPTIMIZERS",
    "PLATFORMS",
    "RUN_OPTIONS",
    "TASKS",
    "Option",
    "agreeing_with",
    "build_parser",
    "flag",
    "given_options",
    "listed_options",
    "population_members",
    "show",
    "stored_options",
    "unit",
    "with_defaults",
]

DATASETS = ("iris", "wine", "breast_cancer", "digits")
TASKS = ("auto", "classification", "regression")
MAX_EPOCHS = 2**32 - 1  # the epoch counter inside the compiled loop is a uint32
DEFAULT_CHECKPOINT_SECONDS = 10.0

LBFGS = "lbfgs"  # full-batch L-BFGS (jaxnn.lbfgs), the estimators' solver='lbfgs'
OPTIMIZERS = (*SOLVERS, LBFGS)

# Defaults that depend on the optimiser: full-batch gradient descent is the seeds' recipe.  For lbfgs an
# "epoch" is an iteration, and 200 is the estimators' (and scikit-learn's MLP's) max_iter.
DEFAULT_LR = {"gd": 0.1, "sgd": 0.1, "adam": 0.01, LBFGS: None}  # None: no learning rate
DEFAULT_EPOCHS = {"gd": 2000, "sgd": 200, "adam": 200, LBFGS: 200}
DEFAULT_BATCH = {"gd": None, "sgd": 32, "adam": 32, LBFGS: None}  # None: full batch
SGD_DEFAULTS = SolverSettings()  # momentum 0.9, Nesterov: scikit-learn's, and the estimators'

_REQUIRED = object()  # an option every checkpoint must hold


class Option(NamedTuple):
    """One run option.

    Attributes:
      flag: the command-line flag, ``--lr``.
      parse: text from the command line to a value (raises ValueError when the text is not one).
      valid: whether a typed value (from the command line or a checkpoint) is allowed.
      what: what a valid value is, for messages: ``"a positive number"``.
      choices: the allowed names of a choice option (``valid`` checks membership).
      nullable: None is a valid stored value ("not set": full batch, no momentum for adam, ...).
      legacy: for checkpoints written before the option existed, ``legacy(stored_options)`` is assumed;
        ``_REQUIRED`` when every checkpoint holds it.
    """

    flag: str
    parse: Callable[[str], Any]
    valid: Callable[[Any], bool]
    what: str
    choices: tuple[str, ...] = ()
    nullable: bool = False
    legacy: Any = _REQUIRED


def _choice(choices: Sequence[str], what: str, **extra) -> Option:
    return Option("", str, lambda value: value in choices, what, tuple(choices), **extra)


def _is_positive_int(value) -> bool:
    return is_int(value) and value >= 1


def _is_positive_real(value) -> bool:
    return is_real(value) and value > 0


def _layers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def _batch_size(text: str) -> int | None:
    return None if text == "full" else int(text)


def _boolean(text: str) -> bool:
    return {"true": True, "false": False}[text.lower()]


def _legacy_momentum(stored: dict) -> float | None:
    """Before --momentum existed, sgd was plain minibatch descent."""
    return 0.0 if stored.get("optimizer") == "sgd" else None


def _legacy_nesterov(stored: dict) -> bool | None:
    return False if stored.get("optimizer") == "sgd" else None


_OPTIONS: dict[str, Option] = {
    "dataset": _choice(DATASETS, "a bundled dataset", nullable=True),
    "csv": Option("", str, lambda value: isinstance(value, str) and value != "", "a file path", nullable=True),
    "target": Option("", str, lambda value: isinstance(value, str) and value != "", "a column name", nullable=True),
    "task": _choice(TASKS[1:], "classification or regression"),
    "layers": Option(
        "",
        _layers,
        lambda value: isinstance(value, list) and len(value) > 0 and all(_is_positive_int(unit) for unit in value),
        "a comma-separated list of positive layer widths, like 10,5",
    ),
    "activation": _choice(sorted(ACTIVATIONS), "an activation"),
    "loss": _choice(sorted(LOSSES), "a loss"),
    "optimizer": _choice(OPTIMIZERS, "an optimizer"),
    "lr": Option("", float, _is_positive_real, "a positive number", nullable=True),  # None: lbfgs
    "momentum": Option(
        "",
        float,
        lambda value: is_real(value) and 0 <= value <= 1,
        "a number from 0 to 1",
        nullable=True,
        legacy=_legacy_momentum,
    ),
    "nesterov": Option(
        "", _boolean, lambda value: isinstance(value, bool), "true or false", nullable=True, legacy=_legacy_nesterov
    ),
    "batch_size": Option("", _batch_size, _is_positive_int, "a positive whole number or 'full'", nullable=True),
    "seed": Option(
        "", int, lambda value: is_int(value) and 0 <= value <= MAX_SEED, "a whole number from 0 to 2**32 - 1"
    ),
    "test_size": Option(
        "", float, lambda value: is_real(value) and 0 < value < 1, "a fraction between 0 and 1, like 0.25"
    ),
    "stratify": Option("", _boolean, lambda value: isinstance(value, bool), "true or false", legacy=lambda _: False),
}
RUN_OPTIONS: dict[str, Option] = {
    name: option._replace(flag="--" + name.replace("_", "-")) for name, option in _OPTIONS.items()
}
# Options that may list several values (comma-separated): a population run trains every combination.
MEMBER_OPTIONS = ("lr", "seed")
EPOCHS = Option(
    "--epochs",
    int,
    lambda value: is_int(value) and 1 <= value <= MAX_EPOCHS,
    "a whole number from 1 to 2**32 - 1 (a 32-bit epoch count)",
)


def flag(name: str) -> str:
    """``batch_size`` → ``--batch-size``."""
    return "--" + name.replace("_", "-")


def unit(optimizer: str) -> str:
    """What ``--epochs`` counts for ``optimizer``: ``"iteration"`` for lbfgs, ``"epoch"`` for the others."""
    return "iteration" if optimizer == LBFGS else "epoch"


def check_value(option: Option, value) -> bool:
    """Whether ``value`` is valid for ``option`` (None only where the option is nullable)."""
    return (value is None and option.nullable) or (value is not None and option.valid(value))


def _argument(option: Option, noun: str | None = None):
    """An argparse ``type=`` function built from ``option``: parse the text, then check the value."""

    def parse(text: str):
        if option.choices and text not in option.choices:
            raise argparse.ArgumentTypeError(f"unknown {noun} {text!r}; choose {', '.join(option.choices)}")
        try:
            value = option.parse(text)
        except (ValueError, KeyError):
            value = _INVALID
        if value is _INVALID or not check_value(option, value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {option.what}")
        return value

    return parse


_INVALID = object()


def _list_argument(option: Option) -> Callable[[str], tuple]:
    """An argparse ``type=`` for a :data:`MEMBER_OPTIONS` flag: comma-separated values, each checked as
    ``option`` checks one, none empty and none twice; a tuple (of one value for a single run)."""
    one = _argument(option)

    def parse(text: str) -> tuple:
        items = text.split(",")
        if len(items) == 1:
            return (one(text),)
        if any(item.strip() == "" for item in items):
            raise argparse.ArgumentTypeError(
                f"{text!r} has an empty item; list values separated by single commas, like 0.01,0.1"
            )
        values = []
        for item in items:
            try:
                values.append(one(item.strip()))
            except argparse.ArgumentTypeError:
                raise argparse.ArgumentTypeError(f"{item.strip()!r} in {text!r} is not {option.what}") from None
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{text!r} lists {', '.join(map(str, repeated))} more than once")
        return tuple(values)

    return parse


def _batch_size_argument(text: str) -> int | str:
    """``"full"`` stays a word here (None would read as "not given"); :func:`given_options` makes it None."""
    return "full" if text == "full" else _argument(RUN_OPTIONS["batch_size"])(text)


def _positive_int_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _epochs_argument(text: str) -> int:
    _positive_int_argument(text)
    return _argument(EPOCHS)(text)


def _seconds_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds, 0 or more")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) naming the fix."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxnn-train`` argument parser (run options default to None: "not given")."""
    parser = _Parser(
        prog=PROG,
        description="Train a dense neural network (hand-written backprop on JAX) and evaluate it on a test split.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  jaxnn-train                                   iris, a 4-10-5-3 network, 2000 epochs of gd\n"
            "  jaxnn-train --dataset digits --layers 64,32 --optimizer adam --out runs/digits\n"
            "  jaxnn-train --csv data.csv --target label --layers 32,16 --out runs/mine\n"
            "  jaxnn-train --resume runs/digits --epochs 400  continue up to 400 epochs in all\n"
            "\nexit status: 0 done, 1 training diverged or a test metric is not finite, 2 bad input,\n"
            "130 interrupted by Ctrl-C (checkpoint written once training has started)"
        ),
    )
    table = RUN_OPTIONS
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        type=_argument(table["dataset"], "dataset"),
        metavar="NAME",
        help=f"a dataset bundled with scikit-learn, no download: {', '.join(DATASETS)} (default: iris)",
    )
    data.add_argument("--csv", metavar="PATH", help="train on a CSV file with a header row instead (needs --target)")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict; every other column is an input")
    data.add_argument(
        "--task",
        type=_argument(_choice(TASKS, ""), "task"),
        metavar="KIND",
        help="classification or regression (default auto: text or at most 20 distinct whole numbers "
        "in the target column mean classification)",
    )
    data.add_argument(
        "--test-size",
        type=_argument(table["test_size"]),
        metavar="FRACTION",
        help="share of rows held out for testing (default 0.25)",
    )
    data.add_argument(
        "--stratify",
        action=argparse.BooleanOptionalAction,
        help="keep each class's share in both parts of the split (default: on for classification; "
        "--no-stratify splits by shuffling only, as the seeds did)",
    )
    data.add_argument(
        "--seed",
        type=_list_argument(table["seed"]),
        metavar="N",
        help="seeds the split, the initial weights and the shuffles (default 42); a list such as 0,1,2 "
        "trains a population, one network per seed (and per --lr)",
    )

    model = parser.add_argument_group("model and training")
    model.add_argument(
        "--layers",
        type=_argument(table["layers"]),
        metavar="W1,W2",
        help="hidden layer widths (default 10,5); the output layer is added",
    )
    model.add_argument(
        "--activation",
        type=_argument(table["activation"], "activation"),
        metavar="NAME",
        help=f"hidden-layer activation: {', '.join(sorted(ACTIVATIONS))} (default relu)",
    )
    model.add_argument(
        "--loss",
        type=_argument(table["loss"], "loss"),
        metavar="NAME",
        help=f"{', '.join(sorted(LOSSES))} (default softmax_cross_entropy for more than two classes, "
        "sigmoid_binary_cross_entropy for two, mean_squared_error for regression); it also picks the output layer",
    )
    model.add_argument(
        "--optimizer",
        type=_argument(table["optimizer"], "optimizer"),
        metavar="NAME",
        help="gd: gradient descent on the full batch (default); sgd: minibatches of 32 with momentum "
        "(see --momentum); adam: Adam on minibatches of 32; lbfgs: full-batch L-BFGS, which stops when it "
        "converges (no --lr or --batch-size; one device)",
    )
    model.add_argument(
        "--lr",
        type=_list_argument(table["lr"]),
        metavar="RATE",
        help="learning rate (default 0.1 for gd and sgd, 0.01 for adam; lbfgs has none); a list such as "
        "0.01,0.1,1 trains a population, one network per rate (and per --seed), and keeps the best on the test split",
    )
    model.add_argument(
        "--momentum",
        type=_argument(table["momentum"]),
        metavar="M",
        help=f"sgd only: momentum (default {SGD_DEFAULTS.momentum:g}; 0 is plain minibatch gradient descent)",
    )
    model.add_argument(
        "--nesterov",
        action=argparse.BooleanOptionalAction,
        help="sgd only: Nesterov's form of momentum (default: on)",
    )
    model.add_argument(
        "--epochs",
        type=_epochs_argument,
        metavar="N",
        help="total epochs, counting those of a resumed run (default 2000 for gd, 200 for sgd and adam); "
        "for lbfgs the most iterations (default 200)",
    )
    model.add_argument(
        "--batch-size",
        type=_batch_size_argument,
        metavar="N",
        help="rows per step, or 'full' (default: full for gd and lbfgs, 32 for sgd and adam)",
    )

    files = parser.add_argument_group("output and checkpoints")
    files.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write metrics.json, history.csv, loss.png, confusion.png and checkpoint.npz here",
    )
    files.add_argument(
        "--checkpoint-seconds",
        type=_seconds_argument,
        default=DEFAULT_CHECKPOINT_SECONDS,
        metavar="S",
        help="write a checkpoint when S seconds have passed since the last one "
        f"(default {DEFAULT_CHECKPOINT_SECONDS:g}; also at the end, on Ctrl-C and on divergence; needs --out)",
    )
    files.add_argument(
        "--checkpoint-every",
        type=_positive_int_argument,
        metavar="N",
        help="also write a checkpoint every N epochs (default: by time only)",
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
        type=_argument(_choice(PLATFORMS, ""), "platform"),
        metavar="NAME",
        help="cpu, gpu or tpu (default: the best JAX finds)",
    )
    hardware.add_argument(
        "--devices",
        type=_positive_int_argument,
        metavar="N",
        help="use the first N devices (default: all; the training rows are split across them)",
    )
    hardware.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="several hosts: the address of process 0, where JAX's coordinator listens",
    )
    hardware.add_argument(
        "--num-processes", type=_positive_int_argument, metavar="N", help="several hosts: how many processes"
    )
    hardware.add_argument(
        "--process-id", type=int, metavar="I", help="several hosts: this process's rank, 0 .. N-1 (0 writes the files)"
    )
    hardware.add_argument(
        "--multi-host",
        action="store_true",
        help="several hosts, found by JAX itself (TPU pods, Slurm, Open MPI) without --coordinator",
    )
    return parser


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, normalised as a checkpoint stores them.

    A :data:`MEMBER_OPTIONS` flag given one value holds that value; given several, it holds their tuple
    (a population run: :func:`population_members`).
    """
    given = {name: getattr(args, name) for name in RUN_OPTIONS if getattr(args, name) is not None}
    for name in MEMBER_OPTIONS:
        if name in given and len(given[name]) == 1:
            given[name] = given[name][0]
    if given.get("task") == "auto":
        del given["task"]
    if given.get("batch_size") == "full":
        given["batch_size"] = None
    if "csv" in given:
        given["csv"] = str(Path(given["csv"]).resolve())
    return given


def with_defaults(given: dict[str, Any]) -> dict[str, Any]:
    """A fresh run's options: what was given, the rest from the defaults.

    The task, the loss and stratification depend on the data and are settled later (None here).
    """
    if "dataset" in given and "csv" in given:
        raise CliError("--dataset and --csv both name the data; give one of them")
    if ("csv" in given) != ("target" in given):
        raise CliError("--csv and --target go together: name the file and the column to predict")
    optimizer = given.get("optimizer", "gd")
    _check_momentum(optimizer, given)
    if optimizer == LBFGS:
        _check_lbfgs(given)
    sgd = optimizer == "sgd"
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
        "momentum": SGD_DEFAULTS.momentum if sgd else None,
        "nesterov": SGD_DEFAULTS.nesterov if sgd else None,
        "batch_size": DEFAULT_BATCH[optimizer],
        "seed": 42,
        "test_size": 0.25,
        "stratify": None,
    }
    return {**defaults, **given}


def _check_momentum(optimizer: str, given: dict[str, Any]) -> None:
    momentum_given = [flag(name) for name in ("momentum", "nesterov") if name in given]
    if optimizer != "sgd" and momentum_given:
        raise CliError(f"{' and '.join(momentum_given)} set sgd's momentum; --optimizer {optimizer} has none")


def _check_lbfgs(given: dict[str, Any]) -> None:
    """Refuse the given options that lbfgs has no use for: a learning rate, minibatches, several seeds."""
    unused = [name for name in ("lr", "batch_size") if given.get(name) is not None]  # --batch-size full is None
    if unused:
        shown = " and ".join(f"{flag(name)} {show(name, given[name])}" for name in unused)
        raise CliError(
            f"{shown} {'do' if len(unused) > 1 else 'does'} not apply to --optimizer lbfgs: full-batch L-BFGS "
            f"uses the whole training split and its line search picks every step; leave "
            f"{' and '.join(map(flag, unused))} out"
        )
    if isinstance(given.get("seed"), tuple):
        raise CliError(
            f"--seed {show('seed', given['seed'])} lists several values, which trains a population; "
            "--optimizer lbfgs trains one network at a time: give one --seed"
        )


def listed_options(options: dict[str, Any]) -> list[str]:
    """The :data:`MEMBER_OPTIONS` that hold several values (empty for a single run)."""
    return [name for name in MEMBER_OPTIONS if isinstance(options.get(name), tuple)]


def population_members(options: dict[str, Any]) -> list[dict[str, Any]]:
    """One single run's options per member of a population: every combination of the listed values.

    Member ``i`` is the ``i``-th of ``itertools.product(lrs, seeds)``: the learning rate varies slowest.
    Options without lists give one member, ``options`` itself.
    """
    lists = [options[name] if isinstance(options[name], tuple) else (options[name],) for name in MEMBER_OPTIONS]
    return [{**options, **dict(zip(MEMBER_OPTIONS, values, strict=True))} for values in itertools.product(*lists)]


def stored_options(stored: dict[str, Any], path: Path) -> dict[str, Any]:
    """The run options and ``epochs`` of a checkpoint's config, each checked against :data:`RUN_OPTIONS`.

    The file is not trusted: every value must be one the command line could have produced, of the right
    JSON type.  Options added to jaxnn-train after the checkpoint was written get their ``legacy`` value.
    """
    required = [name for name, option in RUN_OPTIONS.items() if option.legacy is _REQUIRED and name not in stored]
    if required or "epochs" not in stored:
        missing = ", ".join([*required, *([] if "epochs" in stored else ["epochs"])])
        raise CliError(f"{path} was not written by {PROG}: its config lacks {missing}")
    options = {}
    for name, option in RUN_OPTIONS.items():
        value = stored[name] if name in stored else option.legacy(stored)
        if not check_value(option, value):
            raise CliError(f"{path} holds an invalid {option.flag} ({value!r}); was it written by {PROG}?")
        options[name] = value
    if not check_value(EPOCHS, stored["epochs"]):
        raise CliError(f"{path} holds an invalid --epochs ({stored['epochs']!r}); was it written by {PROG}?")
    if (options["dataset"] is None) == (options["csv"] is None) or (options["csv"] is None) != (
        options["target"] is None
    ):
        raise CliError(f"{path} holds an invalid --dataset/--csv (a run sets exactly one); was it written by {PROG}?")
    if (options["optimizer"] == "sgd") != (options["momentum"] is not None) or (options["momentum"] is None) != (
        options["nesterov"] is None
    ):
        raise CliError(f"{path} holds an invalid --momentum/--nesterov for --optimizer {options['optimizer']}")
    lbfgs = options["optimizer"] == LBFGS
    if lbfgs != (options["lr"] is None) or (lbfgs and options["batch_size"] is not None):
        raise CliError(f"{path} holds an invalid --lr/--batch-size for --optimizer {options['optimizer']}")
    return {**options, "epochs": stored["epochs"]}


def agreeing_with(stored: dict[str, Any], given: dict[str, Any], path: Path) -> dict[str, Any]:
    """A resumed run's options: the checkpoint's; any given again must be the same.

    ``--csv`` may name another path: the data's fingerprint decides later whether it is the same data.
    """
    options = stored_options(stored, path)
    if options["optimizer"] == LBFGS and given.get("optimizer", LBFGS) == LBFGS:
        _check_momentum(LBFGS, given)
        _check_lbfgs(given)
    for name, value in given.items():
        if name == "csv" or options[name] == value:
            continue
        raise CliError(
            f"{flag(name)} {show(name, value)} differs from {show(name, options[name])} in {path}; "
            f"leave {flag(name)} out to continue that run, or start a new run in another --out"
        )
    run = {name: options[name] for name in RUN_OPTIONS}
    if "csv" in given:
        run["csv"] = given["csv"]
    return run


def show(name: str, value) -> str:
    """An option's value as the command line writes it."""
    if value is None:
        return "full" if name == "batch_size" else "(not set)"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
