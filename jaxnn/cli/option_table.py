"""Every ``jaxnn-train`` option, declared once: its flag, how text becomes a value, which values are valid, its
default, its help, whether a checkpoint stores it, whether it may list values, and what refuses it.

:mod:`jaxnn.cli.options` generates everything else from :data:`OPTIONS`: the argument parser, a fresh run's
options, a resumed run's (a checkpoint's, checked with the same ``valid``), and the refusals (their sentences
are in :mod:`jaxnn.cli.refusals`; ``refused_by`` names them).

A *run option* (``stored`` and ``agrees``) defines a training run (data, model, optimiser, split); a
checkpoint stores them all and a resumed run must agree with it.  ``--epochs`` is stored too, but a resumed
run may ask for more, and so is ``--checkpoint-every`` (kept unless given again).  The other flags (output,
checkpoints, devices) belong to one invocation.  The table's order is the order of ``--help`` within each group,
of a checkpoint's config and of the checks.
"""

from __future__ import annotations

import argparse
import decimal
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxnn._checks import MAX_SEED, is_int, is_real
from jaxnn.activations import ACTIVATIONS, get_activation
from jaxnn.cli.csv_cells import plain_number
from jaxnn.distributed import is_host_port
from jaxnn.dropout import is_dropout_rate
from jaxnn.losses import LOSSES
from jaxnn.optimizers import FULL_BATCH_SOLVERS, SOLVERS, USUAL_LEARNING_RATES, SolverSettings
from jaxnn.platforms import PLATFORMS

__all__ = [
    "DATASETS",
    "DEFAULT_BATCH",
    "DEFAULT_CHECKPOINT_SECONDS",
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "GROUPS",
    "LBFGS",
    "MAX_EPOCHS",
    "NO_HIDDEN_LAYER",
    "OPTIMIZERS",
    "OPTIONS",
    "REQUIRED",
    "SGD_DEFAULTS",
    "TASKS",
    "GivenPath",
    "Option",
    "as_given",
]

DATASETS = ("iris", "wine", "breast_cancer", "digits")
TASKS = ("auto", "classification", "regression")
MAX_EPOCHS = 2**32 - 1  # the epoch counter inside the compiled loop is a uint32
DEFAULT_CHECKPOINT_SECONDS = 10.0

LBFGS = "lbfgs"  # full-batch L-BFGS (jaxnn.lbfgs), the estimators' solver='lbfgs'
OPTIMIZERS = (*SOLVERS, LBFGS)

# Defaults that depend on the optimiser: full-batch gradient descent is the seeds' recipe.  For lbfgs an
# "epoch" is an iteration, and 200 is the estimators' (and scikit-learn's MLP's) max_iter.
DEFAULT_LR = {**USUAL_LEARNING_RATES, LBFGS: None}  # None: no learning rate
DEFAULT_EPOCHS = {**{name: 2000 if name in FULL_BATCH_SOLVERS else 200 for name in SOLVERS}, LBFGS: 200}
DEFAULT_BATCH = {**{name: None if name in FULL_BATCH_SOLVERS else 32 for name in SOLVERS}, LBFGS: None}  # None: all
SGD_DEFAULTS = SolverSettings()  # momentum 0.9, Nesterov: scikit-learn's, and the estimators'

REQUIRED = object()  # the legacy of an option every checkpoint holds
GROUPS = {
    "data": "data",
    "model": "model and training",
    "files": "output and checkpoints",
    "hosts": "devices and hosts",
}


class Option(NamedTuple):
    """One option of ``jaxnn-train``, named as argparse's ``dest`` (``batch_size`` is ``--batch-size``).

    Attributes:
      name, group, help, metavar: the flag, its section of ``--help`` (:data:`GROUPS`) and its help.
      parse: text from the command line to a value (raises ValueError or KeyError when the text is not one).
      valid: whether a typed value (from the command line or a checkpoint) is allowed.
      what: what a valid value is, for messages: ``"a positive number"``.
      choices: the names the command line accepts (``valid`` decides which a checkpoint may hold).
      nullable: None is a valid value ("not set": full batch, no momentum for adam, ...).
      none_as: the word the command line writes None as (``--batch-size full``).
      absent_as: the word that asks for the default, as if the option were not given (``--task auto``).
      argument: the argparse ``type`` where the checked ``parse`` does not fit (plain text, a path, epochs).
      action: argparse's ``action`` for a switch (``store_true``, ``BooleanOptionalAction``: no ``parse``).
      default: the value when the option is not given: a value, or a function of the given options (their
        ``optimizer`` settled); None for the run options the data settles (task, loss, stratify).  A stored
        option's flag defaults to None, "not given", as a resumed run takes the checkpoint's value.
      stored: a checkpoint's config holds it, checked with ``valid`` on ``--resume``.
      agrees: a run option: given again on ``--resume``, it must equal the checkpoint's value.
      legacy: for checkpoints written before the option existed, ``legacy(stored_config)`` is assumed;
        :data:`REQUIRED` when every checkpoint holds it.
      listable: takes comma-separated values; several train a population, one network per combination.
      refused_by: the refusals that apply to it (:data:`jaxnn.cli.refusals.REFUSALS`).
      same: whether a value given on ``--resume`` agrees with the checkpoint's: equality, unless two names mean
        one thing (``--activation logistic`` and ``sigmoid``).
    """

    name: str
    group: str
    help: str
    metavar: str | None = None
    parse: Callable[[str], Any] = str
    valid: Callable[[Any], bool] = lambda value: True
    what: str = ""
    choices: tuple[str, ...] = ()
    nullable: bool = False
    none_as: str | None = None
    absent_as: str | None = None
    argument: Callable[[str], Any] | None = None
    action: str | type[argparse.Action] | None = None
    default: Any = None
    stored: bool = False
    agrees: bool = False
    legacy: Any = REQUIRED
    listable: bool = False
    refused_by: tuple[str, ...] = ()
    same: Callable[[Any, Any], bool] = operator.eq

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _is_positive_int(value) -> bool:
    return is_int(value) and value >= 1


def _is_positive_real(value) -> bool:
    return is_real(value) and value > 0


_FLOAT32 = np.finfo(np.float32)


def _shown_inward(bound: float, rounding: str) -> str:
    """``bound`` to 8 significant digits, rounded towards the inside of the range it ends, so that the number a
    message shows is one the option accepts (float32's maximum rounded to nearest, ``3.4028235e+38``, lies above
    it)."""
    with decimal.localcontext() as context:
        context.prec, context.rounding = 8, rounding
        return f"{+decimal.Decimal(bound):e}"


_RATE_RANGE = (
    f"from {_shown_inward(float(_FLOAT32.tiny), decimal.ROUND_CEILING)}"
    f" to {_shown_inward(float(_FLOAT32.max), decimal.ROUND_FLOOR)} (float32's range)"
)


def _is_float32_rate(value) -> bool:
    """A positive number that float32, in which the network trains, holds as a normal number: beyond its range a
    learning rate is infinite there (the first step diverges) or 0 (XLA flushes subnormals: the network never moves)."""
    return _is_positive_real(value) and float(_FLOAT32.tiny) <= value <= float(_FLOAT32.max)


def _is_text(value) -> bool:
    return isinstance(value, str) and value != ""


def _is_bool(value) -> bool:
    return isinstance(value, bool)


_PLAIN_WHOLE = re.compile(r"[+-]?[0-9]+")


def _whole(text: str) -> int:
    """A whole number as a user types it: ASCII digits, perhaps signed, perhaps with spaces around.

    Python's ``int`` also reads ``1_0`` (as 10) and other scripts' digits; a ValueError refuses those here.
    """
    if not _PLAIN_WHOLE.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a plainly written whole number")
    return int(text)


def _number(text: str) -> float:
    """A number as a user types it, with spaces around allowed: a plain number as a CSV cell holds one
    (:func:`jaxnn.cli.csv_cells.plain_number`: ASCII digits with a point and an exponent where wanted, ``0.1``,
    ``.5``, ``1e-3``, perhaps signed; NaN and infinities read as such, and each option's ``valid`` refuses them).

    Python's ``float`` also reads ``1_0`` (as 10) and other scripts' digits; a ValueError refuses those here.
    """
    value = plain_number(text.strip())
    if value is None:
        raise ValueError(f"{text!r} is not a plainly written number")
    return value


NO_HIDDEN_LAYER = "none"  # --layers none: the output layer alone (stored as [])


def _layers(text: str) -> list[int]:
    """Hidden layer widths, ``10,5``; ``none`` (the word as written, spaces around allowed) is no hidden layer,
    ``[]``: the estimators' ``hidden_layer_sizes=()``."""
    if text.strip() == NO_HIDDEN_LAYER:
        return []
    return [_whole(part) for part in text.split(",")]


def _is_widths(value) -> bool:
    """A list of positive widths, or the empty list of ``--layers none``."""
    return isinstance(value, list) and all(_is_positive_int(unit) for unit in value)


def _is_l2(value) -> bool:
    """0, or a penalty in float32's normal range (the optimiser state holds it in float32: 1e-50 would be 0)."""
    return is_real(value) and (value == 0 or _is_float32_rate(value))


def _penalty(text: str) -> float:
    """``--l2``'s number, ``-0`` as 0."""
    return _number(text) + 0.0


def _not_empty(text: str, advice: str) -> str:
    """``text``, unless it is empty: an empty path is no file (``Path("")`` would be the current directory)."""
    if text == "":
        raise argparse.ArgumentTypeError(f"'' is an empty path; {advice}")
    return text


class GivenPath(str):
    """A file path from the command line: its value is the absolute path (what is read, compared and stored), and
    ``given`` the text the user typed, which messages show (:func:`as_given`)."""

    given: str

    def __new__(cls, path: str, given: str | None = None):
        """``path`` (absolute), typed as ``given`` (default: ``path`` itself)."""
        self = super().__new__(cls, path)
        self.given = path if given is None else given
        return self


def as_given(path: str | Path) -> str:
    """How messages name ``path``: as the user typed it when it is a :class:`GivenPath`, else as it is."""
    return getattr(path, "given", str(path))


def _resolved(text: str) -> GivenPath:
    """A file path as a checkpoint stores it: absolute, so a resumed run finds it from anywhere; messages show it
    as typed (a :class:`GivenPath`).

    Not resolved through links: ``/dev/stdin`` (or a shell's ``<(...)``, ``/dev/fd/63``) stays that name and is
    read as the pipe it is (resolving it names ``/proc/self/fd/0``'s target, which cannot be opened).  An empty
    path is refused.
    """
    return GivenPath(str(Path(_not_empty(text, "name the CSV file")).absolute()), text)


def _column(text: str) -> str:
    """A ``--target`` column name as the CSV header's names are read: without surrounding spaces (so the checkpoint
    stores ``label`` for ``--target " label"``, and a resumed run given ``--target label`` agrees)."""
    return text.strip()


def _directory(text: str) -> Path:
    """``--out``'s directory; an empty path is refused rather than read as the current directory."""
    return Path(_not_empty(text, "name a directory (--out . for the current one)"))


def _run(text: str) -> Path:
    """``--resume``'s run directory or checkpoint; an empty path is refused."""
    return Path(_not_empty(text, "name the directory of the run to continue, or its checkpoint"))


def _epochs_argument(text: str) -> int:
    """Epochs from the command line: a positive whole number first, then one the uint32 counter holds."""
    try:
        value = _whole(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    if value > MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"{text!r} is not {OPTIONS['epochs'].what}")
    return value


def _coordinator(text: str) -> str:
    """``HOST:PORT`` with a host and a port from 1 to 65535 (``[::1]:1234`` for an IPv6 address)."""
    if not is_host_port(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT with a port from 1 to 65535, like host0:1234")
    return text


def _choice(name: str, group: str, help: str, choices, what: str, **extra) -> Option:
    choices = tuple(choices)
    return Option(name, group, help, "NAME", valid=lambda value: value in choices, what=what, choices=choices, **extra)


def _for_sgd(value):
    """A default that only sgd has (its momentum); None for the other optimisers."""
    return lambda given: value if given["optimizer"] == "sgd" else None


def _legacy_for_sgd(value):
    """Before --momentum and --nesterov existed, sgd was plain minibatch descent."""
    return lambda stored: value if stored.get("optimizer") == "sgd" else None


# fmt: off
_RUN = {"stored": True, "agrees": True}
_HOSTS = {"group": "hosts", "refused_by": ("one host",)}

OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        _choice(
            "dataset", "data",
            f"a dataset bundled with scikit-learn, no download: {', '.join(DATASETS)} (default: iris)",
            DATASETS, "a bundled dataset", nullable=True, default=lambda given: None if "csv" in given else "iris",
            **_RUN,
        ),
        Option(
            "csv", "data", "train on a CSV file with a header row instead (needs --target)", "PATH",
            valid=_is_text, what="a file path", nullable=True, argument=_resolved, **_RUN,
        ),
        Option(
            "target", "data", "the CSV column to predict; every other column is an input", "COLUMN",
            valid=_is_text, what="a column name", nullable=True, argument=_column, **_RUN,
        ),
        Option(
            "task", "data", "classification or regression (default auto: text or at most 20 distinct whole numbers "
            "in the target column mean classification)", "KIND",
            valid=lambda value: value in TASKS[1:], what="classification or regression", choices=TASKS,
            absent_as="auto", **_RUN,
        ),
        Option(
            "layers", "model", "hidden layer widths (default 10,5), or 'none' for no hidden layer (logistic, softmax "
            "or linear regression); the output layer is added", "W1,W2",
            parse=_layers, valid=_is_widths,
            what="a comma-separated list of positive layer widths, like 10,5, or 'none' for no hidden layer",
            default=[10, 5], **_RUN,
        ),
        _choice(
            "activation", "model", f"hidden-layer activation: {', '.join(sorted(ACTIVATIONS))} (default relu; "
            "not with --layers none)",
            sorted(ACTIVATIONS), "an activation", default="relu", refused_by=("no hidden activation",),
            same=lambda stored, given: get_activation(stored) is get_activation(given), **_RUN,
        ),
        _choice(
            "loss", "model", f"{', '.join(sorted(LOSSES))} (default softmax_cross_entropy for more than two classes, "
            "sigmoid_binary_cross_entropy for two, squared_error for regression); it also picks the output layer",
            sorted(LOSSES), "a loss", **_RUN,
        ),
        _choice(
            "optimizer", "model", "gd: gradient descent on the full batch (default); sgd: minibatches of 32 with "
            "momentum (see --momentum); adam: Adam on minibatches of 32; lbfgs: full-batch L-BFGS, which stops when it "
            "converges (no --lr or --batch-size; one device)",
            OPTIMIZERS, "an optimizer", default="gd", **_RUN,
        ),
        Option(
            "lr", "model", "learning rate (default 0.1 for gd and sgd, 0.01 for adam; lbfgs has none); a list such as "
            "0.01,0.1,1 trains a population, one network per rate (and per --l2 and --seed), and keeps the best on "
            "the test split", "RATE",
            parse=_number, valid=_is_float32_rate, what=f"a positive number {_RATE_RANGE}",
            nullable=True,  # None: lbfgs
            default=lambda given: DEFAULT_LR[given["optimizer"]], listable=True,
            refused_by=("lbfgs steps", "lbfgs lists", "resume lists"), **_RUN,
        ),
        Option(
            "momentum", "model", f"sgd only: momentum (default {SGD_DEFAULTS.momentum:g}; 0 is plain minibatch "
            "gradient descent)", "M",
            parse=_number, valid=lambda value: is_real(value) and 0 <= value <= 1, what="a number from 0 to 1",
            nullable=True, default=_for_sgd(SGD_DEFAULTS.momentum), legacy=_legacy_for_sgd(0.0),
            refused_by=("sgd momentum",), **_RUN,
        ),
        Option(
            "nesterov", "model", "sgd only: Nesterov's form of momentum (default: on)",
            valid=_is_bool, what="true or false", nullable=True, action=argparse.BooleanOptionalAction,
            default=_for_sgd(SGD_DEFAULTS.nesterov), legacy=_legacy_for_sgd(False), refused_by=("sgd momentum",),
            **_RUN,
        ),
        Option(
            "l2", "model", "L2 penalty on the weights, not the biases (default 0: none), jaxnn.fit's l2: adds l2·W to "
            "each weight's gradient and l2/2 · the sum of the squared weights to the training loss (scikit-learn's "
            "alpha = l2 · the rows of one step: n_samples for a full batch, batch_size for minibatches); lbfgs "
            "minimises the same objective; a list such as 0,0.001,0.01 trains a population, one network per penalty "
            "(and per --lr and --seed)",
            "RATE", parse=_penalty, valid=_is_l2, what=f"0 (no penalty) or a positive number {_RATE_RANGE}",
            default=0.0, legacy=lambda stored: 0.0, listable=True, refused_by=("lbfgs lists", "resume lists"), **_RUN,
        ),
        Option(
            "epochs", "model", "total epochs, counting those of a resumed run (default 2000 for gd, 200 for sgd and "
            "adam); for lbfgs the most iterations (default 200)", "N",
            parse=_whole, valid=lambda value: is_int(value) and 1 <= value <= MAX_EPOCHS,
            what="a whole number from 1 to 2**32 - 1 (a 32-bit epoch count)", argument=_epochs_argument,
            default=lambda given: DEFAULT_EPOCHS[given["optimizer"]], stored=True,
        ),
        Option(
            "batch_size", "model", "rows per step, or 'full' (default: full for gd and lbfgs, 32 for sgd and adam)",
            "N", parse=_whole, valid=_is_positive_int, what="a positive whole number or 'full'", nullable=True,
            none_as="full", default=lambda given: DEFAULT_BATCH[given["optimizer"]], refused_by=("lbfgs steps",),
            **_RUN,
        ),
        _choice(
            "class_weight", "model", "classification only: 'balanced' weighs each training row n_samples / "
            "(n_classes · the rows of its class) over the training split, scikit-learn's class_weight='balanced' "
            "(default: every row weighs 1)",
            ("balanced",), "balanced", nullable=True, legacy=lambda stored: None,
            refused_by=("classification only",), **_RUN,
        ),
        Option(
            "dropout", "model", "inverted dropout during training: the probability of dropping each hidden unit in "
            "each step, from 0 (the default: no dropout) up to but not including 1; the test split and the saved "
            "network predict without it (not with lbfgs)", "RATE",
            parse=_number, valid=is_dropout_rate,
            what="a fraction from 0 up to but not including 1, like 0.2 (at most 0.99999994: float32 rounds nearer "
            "values to 1)",
            default=0.0, legacy=lambda stored: 0.0, refused_by=("lbfgs dropout", "no hidden dropout"), **_RUN,
        ),
        Option(
            "seed", "data", "seeds the split, the initial weights and the shuffles (default 42); a list such as 0,1,2 "
            "trains a population, one network per seed (and per --lr and --l2)", "N",
            parse=_whole, valid=lambda value: is_int(value) and 0 <= value <= MAX_SEED,
            what="a whole number from 0 to 2**32 - 1", default=42, listable=True,
            refused_by=("lbfgs lists", "resume lists"), **_RUN,
        ),
        Option(
            "test_size", "data", "share of rows held out for testing (default 0.25)", "FRACTION",
            parse=_number, valid=lambda value: is_real(value) and 0 < value < 1,
            what="a fraction between 0 and 1, like 0.25", default=0.25, **_RUN,
        ),
        Option(
            "stratify", "data", "keep each class's share in both parts of the split (default: on for classification; "
            "--no-stratify splits by shuffling only, as the seeds did)",
            valid=_is_bool, what="true or false", action=argparse.BooleanOptionalAction,
            legacy=lambda stored: False, **_RUN,
        ),
        Option(
            "out", "files", "write metrics.json, history.csv, loss.png, confusion.png and checkpoint.npz here (a "
            "population run: also population.csv and population.npz)", "DIR",
            argument=_directory,
        ),
        Option(
            "checkpoint_seconds", "files", "write a checkpoint when S seconds have passed since the last one "
            f"(default {DEFAULT_CHECKPOINT_SECONDS:g}; also at the end, on a stop signal and on divergence); chunks of "
            "epochs take at most about S/2, so without --out it sets how soon Ctrl-C, SIGTERM and SIGHUP take effect",
            "S", parse=_number, valid=lambda value: math.isfinite(value) and value >= 0,
            what="a number of seconds, 0 or more", default=DEFAULT_CHECKPOINT_SECONDS,
        ),
        Option(
            "checkpoint_every", "files",
            "also write a checkpoint every N epochs (default: by time only; not with lbfgs or lists); a resumed run "
            "keeps the checkpoint's unless given", "N",
            parse=_whole, valid=_is_positive_int, what="a positive whole number", nullable=True, stored=True,
            legacy=lambda stored: None, refused_by=("checkpoint every",),
        ),
        Option(
            "resume", "files", "continue the run checkpointed in DIR up to --epochs, a population whole (files go to "
            "DIR unless --out says otherwise); DIR/checkpoint.npz: that network alone (a population's best member, "
            "with its own --out)", "DIR", argument=_run,
        ),
        Option(
            "overwrite", "files", "start afresh even if --out already holds a run: once the new run has passed its "
            "checks and starts training, the files jaxnn-train wrote there are removed (other files stay)",
            action="store_true",
        ),
        Option("quiet", "files", "no progress, only the closing summary", action="store_true"),
        _choice(
            "platform", "hosts", "cpu, gpu or tpu (default: the best JAX finds)", PLATFORMS, "a platform",
        ),
        Option(
            "devices", "hosts", "use the first N devices (default: all; the training rows are split across them)", "N",
            parse=_whole, valid=_is_positive_int, what="a positive whole number", refused_by=("one device",),
        ),
        Option(
            "coordinator", help="several hosts: the address of process 0, where JAX's coordinator listens",
            metavar="HOST:PORT", argument=_coordinator, **_HOSTS,
        ),
        Option(
            "multi_host", help="several hosts, found by JAX itself (TPU pods, Slurm, Open MPI) without --coordinator",
            action="store_true", **_HOSTS,
        ),
        Option(
            "num_processes", help="several hosts: how many processes", metavar="N", parse=_whole,
            valid=_is_positive_int, what="a positive whole number", **_HOSTS,
        ),
        Option(
            "process_id", help="several hosts: this process's rank, 0 .. N-1 (0 writes the files)", metavar="I",
            parse=_whole, valid=lambda value: is_int(value) and value >= 0, what="a whole number, 0 or more",
            **_HOSTS,
        ),
    )
}
# fmt: on
