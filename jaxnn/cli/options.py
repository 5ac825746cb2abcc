"""The command line of ``jaxnn-train``, generated from the option declarations: the parser, a fresh run's
options, a resumed run's options, and the refusals.

Each option is declared once, in :data:`jaxnn.cli.option_table.OPTIONS`.  From that table:
:func:`build_parser` builds the argparse parser (each flag's type parses the text, then checks the value with
the declaration's ``valid``); :func:`with_defaults` completes a fresh run's options; :func:`stored_options`
checks the options read from a checkpoint (JSON values, typed: ``"0.1"`` is not a learning rate) with the
same ``valid`` and fills in the ``legacy`` value of an option added since; :func:`agreeing_with` makes a
resumed run's options the checkpoint's; :func:`refuse` says what a kind of run has no use for
(:mod:`jaxnn.cli.refusals`).

:data:`MEMBER_OPTIONS` (the listable ``--lr``, ``--l2`` and ``--seed``) take comma-separated lists: several values make
a population run, one network per combination (:func:`population_members`); one value is a single run.

The optimisers (:data:`OPTIMIZERS`) are the estimators' solvers by the same names: ``gd``, ``sgd`` and ``adam``
take steps of ``--lr`` (:mod:`jaxnn.optimizers`), and ``lbfgs`` is full-batch L-BFGS (:mod:`jaxnn.lbfgs`), whose
line search picks every step: it has no ``--lr`` (stored as None), always uses the full batch, and its
``--epochs`` is the most iterations (:func:`unit`).
"""

from __future__ import annotations

import argparse
import difflib
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaxnn import __version__ as jaxnn_version
from jaxnn.cli.errors import EXIT_USAGE, PROG, CliError, shown
from jaxnn.cli.option_table import (
    DATASETS,
    DEFAULT_BATCH,
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    GROUPS,
    LBFGS,
    MAX_EPOCHS,
    NO_HIDDEN_LAYER,
    OPTIMIZERS,
    OPTIONS,
    REQUIRED,
    TASKS,
    Option,
    as_given,
)
from jaxnn.cli.refusals import REFUSALS, RUN_KINDS, RefusalContext
from jaxnn.platforms import PLATFORMS

__all__ = [
    "DATASETS",
    "DEFAULT_BATCH",
    "DEFAULT_CHECKPOINT_SECONDS",
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "EPOCHS",
    "LBFGS",
    "MAX_EPOCHS",
    "MEMBER_OPTIONS",
    "OPTIMIZERS",
    "OPTIONS",
    "PLATFORMS",
    "RUN_OPTIONS",
    "TASKS",
    "Option",
    "agreeing_with",
    "build_parser",
    "check_value",
    "checked_total_epochs",
    "checkpoint_every",
    "default",
    "flag",
    "given_options",
    "listed_options",
    "population_members",
    "refuse",
    "refuse_arguments",
    "show",
    "stored_options",
    "unit",
    "with_defaults",
]

# The run options: a checkpoint stores them and a resumed run must agree (in the table's order).
RUN_OPTIONS: dict[str, Option] = {name: option for name, option in OPTIONS.items() if option.stored and option.agrees}
# The rest a checkpoint stores and --resume checks, but may change (--epochs: a resumed run may ask for more).
_STORED_ONLY: dict[str, Option] = {
    name: option for name, option in OPTIONS.items() if option.stored and not option.agrees
}
EPOCHS = OPTIONS["epochs"]
# Options that may list several values (comma-separated): a population run trains every combination.
MEMBER_OPTIONS = tuple(name for name, option in OPTIONS.items() if option.listable)


def flag(name: str) -> str:
    """``batch_size`` → ``--batch-size``."""
    return "--" + name.replace("_", "-")


def unit(optimizer: str) -> str:
    """What ``--epochs`` counts for ``optimizer``: ``"iteration"`` for lbfgs, ``"epoch"`` for the others."""
    return "iteration" if optimizer == LBFGS else "epoch"


def check_value(option: Option, value) -> bool:
    """Whether ``value`` is valid for ``option`` (None only where the option is nullable)."""
    return (value is None and option.nullable) or (value is not None and option.valid(value))


def show(name: str, value) -> str:
    """An option's value as the command line writes it."""
    if value is None:
        return OPTIONS[name].none_as or "(not set)"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) if value else NO_HIDDEN_LAYER  # only --layers is ever empty
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def default(name: str, given: dict[str, Any]) -> Any:
    """The declared default of ``name`` for a run given ``given`` (which holds its ``optimizer``)."""
    value = OPTIONS[name].default
    return value(given) if callable(value) else value


# --------------------------------------------------------------------------------------------------
# The parser.


def _argument(option: Option) -> Callable[[str], Any]:
    """An argparse ``type=`` function built from ``option``: parse the text, then check the value."""

    def parse(text: str):
        if option.choices and text not in option.choices:
            what = option.name.replace("_", " ")  # class_weight: the flag's words, not the estimators' parameter
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose {', '.join(option.choices)}")
        if text in (option.none_as, option.absent_as):  # stays a word: None would read as "not given"
            return text
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
    """An argparse ``type=`` for a listable option: comma-separated values, each checked as ``option`` checks
    one, none empty and none twice; a tuple (of one value for a single run)."""
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
        repeated = _repeated(values)
        if repeated:
            raise argparse.ArgumentTypeError(f"{text!r} lists {', '.join(repeated)} more than once")
        return tuple(values)

    return parse


def _repeated(values: list) -> list[str]:
    """The values of a list that name one value twice, as text.  Numbers are compared as float32, in which the
    networks train: ``0.1`` and ``0.1000000001`` would be one learning rate, two members training alike."""
    groups: dict[Any, list] = {}
    for value in values:
        key = float(np.float32(value)) if isinstance(value, float) else value
        groups.setdefault(key, []).append(value)
    repeated = []
    for key in sorted(key for key, group in groups.items() if len(group) > 1):
        written = list(dict.fromkeys(groups[key]))
        same = "" if len(written) == 1 else f" ({' and '.join(map(str, written))} are one number in float32)"
        repeated.append(f"{written[0]}{same}")
    return repeated


def _settings(option: Option) -> dict[str, Any]:
    """``add_argument``'s keywords for ``option``."""
    if option.action is not None:
        return {"action": option.action, "help": option.help}
    kind = option.argument or (_list_argument(option) if option.listable else _argument(option))
    settings = {"type": kind, "metavar": option.metavar, "help": option.help, "action": _GivenOnce}
    if not option.stored and option.default is not None:
        settings["default"] = option.default
    return settings


# What other tools (scikit-learn's MLP, most training scripts) call jaxnn-train's options.
OTHER_NAMES = {
    "--hidden": "--layers",
    "--hidden-layers": "--layers",
    "--hidden-layer-sizes": "--layers",
    "--hidden_layer_sizes": "--layers",
    "--solver": "--optimizer",
    "--learning-rate-init": "--lr",
    "--learning_rate_init": "--lr",
    "--max-iter": "--epochs",
    "--max_iter": "--epochs",
    "--random-state": "--seed",
    "--random_state": "--seed",
    "--batch_size": "--batch-size",
    "--test_size": "--test-size",
    "--class_weight": "--class-weight",
}


# Options other tools have in another sense, with what to use instead.
NO_SUCH_OPTION = {
    **dict.fromkeys(
        ("--weight-decay", "--weight_decay"),
        "jaxnn-train's weight decay is --l2: l2·W added to each weight's gradient (the biases are not decayed)",
    ),
    **dict.fromkeys(
        ("--learning-rate", "--learning_rate"),
        "jaxnn-train's step size is --lr (scikit-learn's learning_rate_init); scikit-learn's learning_rate, a "
        "schedule ('invscaling', 'adaptive'), has no jaxnn-train option: --lr stays constant (the estimators and "
        "jaxnn.fit take a schedule)",
    ),
    "--alpha": "jaxnn-train's L2 penalty is --l2, jaxnn.fit's l2: scikit-learn's alpha divided by the rows of one "
    "step (alpha / n_samples for a full batch, alpha / batch_size for minibatches)",
}


def unknown_option_hint(message: str, known: list[str]) -> str:
    """For argparse's ``unrecognized arguments: …`` message, the option meant by the first unknown one that is
    another tool's name for it (``--solver``: ``--optimizer``) or a near spelling of one (``--optimiser``); else
    nothing."""
    words = message.removeprefix("unrecognized arguments: ").split() if message.startswith("unrecognized") else []
    for name in (word.split("=")[0] for word in words if word.startswith("--")):
        if name in OTHER_NAMES:
            return f"; jaxnn-train's name for {name} is {OTHER_NAMES[name]}"
        if name in NO_SUCH_OPTION:
            return f"; {NO_SUCH_OPTION[name]}"
        close = difflib.get_close_matches(name, [*known, *OTHER_NAMES, *NO_SUCH_OPTION], n=1, cutoff=0.8)
        if close and close[0] in NO_SUCH_OPTION:
            return f"; {NO_SUCH_OPTION[close[0]]}"
        if close:
            return f"; did you mean {OTHER_NAMES.get(close[0], close[0])}?"
    return ""


class _GivenOnce(argparse.Action):
    """Stores an option's value, as argparse's default action does, but refuses the option given twice: argparse
    keeps the last, so ``--lr 0.1 --lr 0.2`` trained at 0.2 alone where a population (``--lr 0.1,0.2``) may have
    been meant.  The options given so far are the parser's ``given``, which each parse starts empty."""

    def __call__(self, parser, namespace, values, option_string=None):
        if self.dest in parser.given:
            listed = (
                ", or its values as one comma-separated list to train a population"
                if self.dest in MEMBER_OPTIONS
                else ""
            )
            parser.error(f"argument {self.option_strings[0]}: given twice; give it once{listed}")
        parser.given.add(self.dest)
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) naming the fix, and an option given twice is one."""

    given: set[str]

    def parse_known_args(self, args=None, namespace=None):
        self.given = set()
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        hint = unknown_option_hint(message, [name for action in self._actions for name in action.option_strings])
        # a path's bytes that are not UTF-8 as \xff, as in the summary (stderr would write the surrogate as \udcff)
        self.exit(EXIT_USAGE, shown(f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n"))


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxnn-train`` argument parser, one argument per declared option (run options default to None:
    "not given")."""
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
            "\nexit status: 0 done, 1 training diverged, a test metric is not finite, a file could not be written\n"
            "or the output was closed early, 2 bad input (or --out in use), 130/143/129 stopped by\n"
            "Ctrl-C/SIGTERM/SIGHUP (checkpoint written once training has started)"
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {jaxnn_version}")
    for group, title in GROUPS.items():
        arguments = parser.add_argument_group(title)
        for option in OPTIONS.values():
            if option.group == group:
                arguments.add_argument(option.flag, **_settings(option))
    return parser


# --------------------------------------------------------------------------------------------------
# The options of a run: given, fresh, stored, resumed.


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, normalised as a checkpoint stores them.

    A listable flag given one value holds that value; given several, it holds their tuple (a population run:
    :func:`population_members`).  ``--batch-size full`` holds None; ``--task auto`` is as if not given.
    """
    given = {}
    for name, option in RUN_OPTIONS.items():
        value = getattr(args, name)
        if value is None or value == option.absent_as:
            continue
        if option.listable and len(value) == 1:
            value = value[0]
        given[name] = None if value == option.none_as else value
    return given


def refuse(values: dict[str, Any], refusals: tuple[str, ...], context: RefusalContext = None) -> None:
    """Raise :class:`CliError` with the first of ``refusals`` (in :data:`REFUSALS`'s order) that picks one of
    ``values`` (options by name) among the options declared ``refused_by`` it; ``context``: see :class:`Refusal`."""
    for name, refusal in REFUSALS.items():
        if name not in refusals:
            continue
        picked = [
            (option, show(option, values[option]))
            for option in OPTIONS
            if option in values and name in OPTIONS[option].refused_by and refusal.picks(values[option])
        ]
        if picked:
            raise CliError(refusal.says(picked, context))


def _refuse_without_hidden_layer(given: dict[str, Any]) -> None:
    """What a network with no hidden layer (``--layers none``) has no use for: an activation, dropout."""
    refuse(given, ("no hidden activation", "no hidden dropout"))


def _refuse_for_optimizer(given: dict[str, Any], optimizer: str) -> None:
    """The run options ``optimizer`` has no use for: sgd's momentum elsewhere, steps and lists with lbfgs."""
    refusals = ("sgd momentum",) if optimizer != "sgd" else ()
    refuse(given, refusals + (("lbfgs steps", "lbfgs dropout", "lbfgs lists") if optimizer == LBFGS else ()), optimizer)


def refuse_arguments(args: argparse.Namespace, kind: str) -> None:
    """Refuse, before any device starts, what a kind of run (``lbfgs`` or ``population``) does not do."""
    values = {name: getattr(args, name) for name in OPTIONS}
    one_device = ("one device",) if kind == LBFGS else ()  # a population's members are split across devices
    refuse(values, (*one_device, "one host", "checkpoint every"), RUN_KINDS[kind])


def with_defaults(given: dict[str, Any]) -> dict[str, Any]:
    """A fresh run's options: what was given, the rest the declared defaults.

    The task, the loss and stratification depend on the data and are settled later (None here).
    """
    if "dataset" in given and "csv" in given:
        raise CliError("--dataset and --csv both name the data; give one of them")
    if ("csv" in given) != ("target" in given):
        raise CliError("--csv and --target go together: name the file and the column to predict")
    settled = {**given, "optimizer": given.get("optimizer", default("optimizer", given))}
    _refuse_for_optimizer(given, settled["optimizer"])
    if given.get("layers") == []:
        _refuse_without_hidden_layer(given)
    return {name: settled[name] if name in settled else default(name, settled) for name in RUN_OPTIONS}


def checkpoint_every(given: int | None, stored: dict[str, Any] | None) -> int | None:
    """The run's ``--checkpoint-every``: as ``given``, else a resumed checkpoint's (checked by
    :func:`stored_options`), so that ``--resume DIR`` alone keeps the cadence, and the held-out loss's epochs, of the
    run it continues."""
    return given if given is not None or stored is None else stored.get("checkpoint_every")


def checked_total_epochs(given: int | None, options: dict[str, Any], stored: dict[str, Any] | None, done: int) -> int:
    """The run's ``--epochs``, the total counting a resumed run's: as ``given``, else the checkpoint's (``stored``)
    total, else the optimiser's default; fewer than the ``done`` epochs a checkpoint has is a :class:`CliError` that
    says the bound to train on (``done + 1``: ``done`` itself is allowed, and trains no further)."""
    epochs = given or (stored["epochs"] if stored else default("epochs", options))
    if done > epochs:
        what = unit(options["optimizer"])
        raise CliError(
            f"--epochs {epochs} is fewer than the {done} {what}s the checkpoint has already done; --epochs is the "
            f"total, counting those: give --epochs {done + 1} or more to train on"
        )
    return epochs


def listed_options(options: dict[str, Any]) -> list[str]:
    """The :data:`MEMBER_OPTIONS` that hold several values (empty for a single run)."""
    return [name for name in MEMBER_OPTIONS if isinstance(options.get(name), tuple)]


def population_members(options: dict[str, Any]) -> list[dict[str, Any]]:
    """One single run's options per member of a population: every combination of the listed values.

    Member ``i`` is the ``i``-th of ``itertools.product(lrs, l2s, seeds)``: the learning rate varies slowest, the
    seed fastest.
    Options without lists give one member, ``options`` itself.
    """
    listed = listed_options(options)
    combinations = itertools.product(*(options[name] for name in listed))
    return [{**options, **dict(zip(listed, values, strict=True))} for values in combinations]


def stored_options(stored: dict[str, Any], path: Path) -> dict[str, Any]:
    """The run options and ``epochs`` of a checkpoint's config, each checked against its declaration.

    The file is not trusted: every value must be one the command line could have produced, of the right
    JSON type.  Options added to jaxnn-train after the checkpoint was written get their ``legacy`` value.  A
    population's checkpoint holds a list for a listed option (two or more distinct values, each checked): a tuple
    here, as the command line gives it.
    """
    checked = {**RUN_OPTIONS, **_STORED_ONLY}
    missing = [name for name, option in checked.items() if option.legacy is REQUIRED and name not in stored]
    if missing:
        raise CliError(f"{path} was not written by {PROG}: its config lacks {', '.join(missing)}")
    options = {}
    for name, option in checked.items():
        value = stored[name] if name in stored else option.legacy(stored)
        if option.listable and isinstance(value, list):  # a population's checkpoint: several distinct values
            if len(value) < 2 or len(set(value)) < len(value) or not all(check_value(option, v) for v in value):
                raise CliError(f"{path} holds an invalid {option.flag} list ({value!r}); was it written by {PROG}?")
            options[name] = tuple(value)
            continue
        if not check_value(option, value):
            raise CliError(f"{path} holds an invalid {option.flag} ({value!r}); was it written by {PROG}?")
        options[name] = value
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
    if lbfgs and options["dropout"] > 0:
        raise CliError(f"{path} holds an invalid --dropout for --optimizer lbfgs (it has no dropout)")
    if options["layers"] == [] and options["dropout"] > 0:
        raise CliError(f"{path} holds an invalid --dropout for --layers none (no hidden layer to drop units of)")
    return options


def agreeing_with(stored: dict[str, Any], given: dict[str, Any], path: Path) -> dict[str, Any]:
    """A resumed run's options: the checkpoint's; any given again must be the same.

    ``--csv`` may name another path: the data's fingerprint decides later whether it is the same data.
    """
    options = stored_options(stored, path)
    if options["optimizer"] == LBFGS and given.get("optimizer", LBFGS) == LBFGS:
        _refuse_for_optimizer(given, LBFGS)
    if options["layers"] == [] and given.get("layers", []) == []:
        _refuse_without_hidden_layer(given)
    if "csv" in given and options["csv"] is None:
        raise CliError(
            f"--csv {as_given(given['csv'])}: {path} was trained on the {options['dataset']} dataset, not on a CSV "
            "file; leave --csv out to continue that run, or start a new run in another --out"
        )
    for name, value in given.items():
        if name == "csv" or OPTIONS[name].same(options[name], value):
            continue
        raise CliError(
            f"{flag(name)} {show(name, value)} differs from {show(name, options[name])} in {path}; "
            f"leave {flag(name)} out to continue that run, or start a new run in another --out"
        )
    run = {name: options[name] for name in RUN_OPTIONS}
    if "csv" in given:
        run["csv"] = given["csv"]
    return run
