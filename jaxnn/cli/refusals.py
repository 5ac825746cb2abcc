"""The refusals of ``jaxnn-train``: what a kind of run says, in one line, about a given option it has no use for.

An option names the refusals that apply to it in its declaration (``refused_by`` in
:mod:`jaxnn.cli.option_table`); :func:`jaxnn.cli.options.refuse` checks them, in the order of
:data:`REFUSALS`.  The run options' refusals (``sgd momentum``, ``lbfgs steps``, ``lbfgs dropout``,
``lbfgs lists``) depend on the optimiser, ``no hidden activation`` and ``no hidden dropout`` on ``--layers
none``, ``classification only`` on the task the data settles, ``resume lists`` on ``--resume``, and the others
on the two kinds of run that train on one device (:data:`RUN_KINDS`: lbfgs and population runs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jaxnn.cli.option_table import LBFGS, OPTIONS

__all__ = ["REFUSALS", "RUN_KINDS", "Refusal", "RefusalContext", "RunKind"]


class RunKind(NamedTuple):
    """A kind of run that trains on one device, as its refusals name it."""

    what: str  # how a refusal names the run
    advice: str  # after the way out of a one-device refusal
    checkpoints: str  # why --checkpoint-every does not apply


RUN_KINDS = {
    LBFGS: RunKind(
        "--optimizer lbfgs",
        " (its full-batch loop is not split across devices)",
        "checkpoints every --checkpoint-seconds, at its end and on Ctrl-C",
    ),
    "population": RunKind(
        "a population run (several --lr, --l2 or --seed values)",
        ", or train the values one run at a time",
        "checkpoints every member every --checkpoint-seconds, at its end and on Ctrl-C",
    ),
}

Picked = list[tuple[str, str]]  # the refused options given: (name, the value as the command line writes it)
RefusalContext = str | RunKind | None  # the run's optimiser or task, its kind of one-device run, or nothing


class Refusal(NamedTuple):
    """Which given values a refusal refuses, and its line about them (``context``: the run's optimiser for
    the run options' refusals (None for the ``no hidden`` ones), its task for ``classification only``, its
    :class:`RunKind` for the one-device ones, None for ``resume lists``)."""

    picks: Callable[[Any], bool]  # of an option's value, whatever its type
    says: Callable[[Picked, RefusalContext], str]


def _is_given(value) -> bool:
    return value is not None  # --no-nesterov is False: given


def _is_set(value) -> bool:
    return value is not None and value is not False  # a switch left off is False: not given


def _is_list(value) -> bool:
    return isinstance(value, tuple)


def _flags(picked: Picked) -> str:
    return " and ".join(OPTIONS[name].flag for name, _ in picked)


def _shown(picked: Picked) -> str:
    return " and ".join(f"{OPTIONS[name].flag} {value}" for name, value in picked)


def _no_momentum(picked: Picked, optimizer: str) -> str:
    return f"{_flags(picked)} set{'s' if len(picked) == 1 else ''} sgd's momentum; --optimizer {optimizer} has none"


def _no_steps(picked: Picked, optimizer: str) -> str:
    return (
        f"{_shown(picked)} {'do' if len(picked) > 1 else 'does'} not apply to --optimizer lbfgs: full-batch L-BFGS "
        f"uses the whole training split and its line search picks every step; leave {_flags(picked)} out"
    )


def _no_dropout(picked: Picked, optimizer: str) -> str:
    return (
        f"{_shown(picked)} does not apply to --optimizer lbfgs: full-batch L-BFGS minimises one deterministic "
        f"objective; leave {_flags(picked)} out or use gd, sgd or adam"
    )


def _no_hidden_layer(picked: Picked, context: None) -> str:
    return (
        f"{_shown(picked)} {'apply' if len(picked) > 1 else 'applies'} to hidden layers, and --layers none has "
        f"none (the inputs feed the output layer); leave {_flags(picked)} out"
    )


def _one_network(picked: Picked, optimizer: str) -> str:
    flag = OPTIONS[picked[0][0]].flag
    return (
        f"{_shown(picked[:1])} lists several values, which trains a population; --optimizer lbfgs trains one "
        f"network at a time: give one {flag}"
    )


def _classes_only(picked: Picked, task: str) -> str:
    return f"{_shown(picked)} weighs the classes of a classification run, but this run is {task}; leave it out"


def _resumed_lists(picked: Picked, context: None) -> str:
    return (
        f"{_shown(picked)} list{'' if len(picked) > 1 else 's'} several values, which trains a population: a "
        "fresh run starts one, and --resume continues the run its checkpoint holds, here one network (give one "
        "value, or none)"
    )


def _one_device(picked: Picked, kind: RunKind) -> str:
    flag = OPTIONS[picked[0][0]].flag
    return f"{_shown(picked[:1])}: {kind.what} trains on one device; leave {flag} out{kind.advice}"


def _one_host(picked: Picked, kind: RunKind) -> str:
    return f"{_flags(picked[:1])}: {kind.what} runs on one host; leave out the multi-host flags{kind.advice}"


def _by_time(picked: Picked, kind: RunKind) -> str:
    return f"{_flags(picked[:1])}: {kind.what} {kind.checkpoints}; leave {_flags(picked[:1])} out"


REFUSALS: dict[str, Refusal] = {
    # run options, by the optimiser (of a fresh run, or of a resumed lbfgs run)
    "sgd momentum": Refusal(_is_given, _no_momentum),
    "lbfgs steps": Refusal(_is_given, _no_steps),  # --batch-size full is None: accepted
    "lbfgs dropout": Refusal(lambda value: value is not None and value > 0, _no_dropout),  # --dropout 0: accepted
    "lbfgs lists": Refusal(_is_list, _one_network),
    # run options, with no hidden layer (--layers none)
    "no hidden activation": Refusal(_is_given, _no_hidden_layer),
    "no hidden dropout": Refusal(lambda value: value is not None and value > 0, _no_hidden_layer),  # 0: accepted
    # run options, by the task (settled by the data)
    "classification only": Refusal(_is_given, _classes_only),
    # run options that list several values, with --resume
    "resume lists": Refusal(_is_list, _resumed_lists),
    # the options of one invocation, by the kind of run
    "one device": Refusal(lambda value: value is not None and value > 1, _one_device),
    "one host": Refusal(_is_set, _one_host),
    "checkpoint every": Refusal(_is_given, _by_time),
}
