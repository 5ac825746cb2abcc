"""The estimators' hyper-parameter checks: one declarative table of what each parameter allows, checked in one
place, which turns an estimator's parameters into its checked :class:`Config`.

In the style of scikit-learn's ``_parameter_constraints``: :data:`PARAMETER_CONSTRAINTS` maps a parameter (or,
for a rule across parameters, a tuple of them) to the rules its value must pass, in the order they are
checked; :func:`check_params` runs the table and normalises the values.  Parameters are checked at fit time,
never in ``__init__``, so ``clone`` and ``set_params`` stay plain.  A failed rule is scikit-learn's
``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``, what ``MLPClassifier`` raises for a bad
hyper-parameter) that names the parameter and says what is allowed: ``"<name> must be <expected>, got <value>"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import optax
from sklearn.utils import check_random_state

from jaxnn._checks import MAX_SEED, is_int, is_real
from jaxnn.activations import ACTIVATIONS
from jaxnn.dropout import is_dropout_rate
from jaxnn.heads import SCORINGS
from jaxnn.losses import LOSSES, Loss
from jaxnn.optimizers import LEARNING_RATE_SCHEDULES, SOLVERS
from jaxnn.sklearn.class_weights import has_non_negative_weights, is_class_weight
from jaxnn.sklearn.initial_weights import ESTIMATOR_INITIALISERS, mlp_init_factor
from jaxnn.sklearn.internals import InvalidParameterError
from jaxnn.train import Stopping, is_n_iter_no_change

__all__ = [
    "AUTO_BATCH_SIZE",
    "PARAMETER_CONSTRAINTS",
    "Config",
    "Rule",
    "check_params",
    "is_auto",
    "is_lbfgs",
    "loss_param",
    "seed",
]

AUTO_BATCH_SIZE = 200  # scikit-learn's batch_size="auto": min(200, n_samples)


class Config(NamedTuple):
    """The estimator's hyper-parameters, checked and normalised."""

    hidden_layer_sizes: tuple[int, ...]
    activations: tuple[str, ...]  # one per hidden layer
    solver: str | optax.GradientTransformation
    alpha: float
    batch_size: int | None  # None: the whole data set in one batch
    learning_rate_init: float
    max_iter: int
    stopping: Stopping
    early_stopping: bool
    validation_fraction: float
    momentum: float
    nesterovs_momentum: bool
    beta_1: float
    beta_2: float
    epsilon: float
    init: str  # MLP_INIT or a name in jaxnn.layers.INITIALISERS
    n_ensemble: int  # networks trained from seeds (seed + k) mod 2**32, k < n_ensemble; predictions averaged
    schedule: str = "constant"  # learning_rate for solver='sgd'; the other solvers ignore it (scikit-learn's adam)
    power_t: float = 0.5
    shuffle: bool = True
    init_factor: float = 6.0  # init='mlp': the factor of its bound (jaxnn.sklearn.initial_weights.mlp_init_factor)
    dropout: tuple[float, ...] = ()  # one rate per hidden layer (all 0: no dropout)
    scoring: str | None = None  # early stopping's metric (None: score()), checked against the task at fit


class Rule(NamedTuple):
    """A test the values of a table entry's parameters must pass, and what the error says when they do not.

    ``expected`` completes ``"<name> must be <expected>, got <value>"`` for the entry's (first) parameter; a
    callable builds the whole message from the values instead (rules across parameters).
    """

    test: Callable[..., bool]
    expected: str | Callable[..., str]


def is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


def is_lbfgs(solver) -> bool:
    return isinstance(solver, str) and solver == "lbfgs"


def _layer_sizes(value):
    """``hidden_layer_sizes`` as a sequence (an int is one layer)."""
    return (value,) if is_int(value) else value


def _activation_names(value, hidden) -> Sequence:
    """``activation`` as one name per hidden layer (a single name is every layer's)."""
    return (value,) * len(_layer_sizes(hidden)) if isinstance(value, str) else value


def _is_layer_sizes(value) -> bool:
    sizes = _layer_sizes(value)
    if isinstance(sizes, str | bytes) or (isinstance(sizes, np.ndarray) and sizes.ndim != 1):  # '' meant no layers
        return False
    return isinstance(sizes, Sequence | np.ndarray) and all(is_int(s) and s > 0 for s in sizes)


def _is_activation_list(value, hidden) -> bool:
    names = _activation_names(value, hidden)
    return isinstance(names, Sequence) and all(isinstance(a, str) and a in ACTIVATIONS for a in names)


def _has_one_activation_per_layer(value, hidden) -> bool:
    return len(_activation_names(value, hidden)) == len(_layer_sizes(hidden))


def _activation_count_message(value, hidden) -> str:
    return (
        f"activation lists {len(_activation_names(value, hidden))} names but hidden_layer_sizes has "
        f"{len(_layer_sizes(hidden))} layers; give one name for all hidden layers or exactly one per hidden layer"
    )


def _dropout_rates(value, hidden) -> Sequence:
    """``dropout`` as one rate per hidden layer (a single number is every layer's)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return (value,) * len(_layer_sizes(hidden)) if is_real(value) else value


def _is_dropout(value, hidden) -> bool:
    rates = _dropout_rates(value, hidden)
    return isinstance(rates, Sequence | np.ndarray) and all(map(is_dropout_rate, rates))


def _has_one_rate_per_layer(value, hidden) -> bool:
    """One rate per hidden layer, or one for all of them, which there must be if it drops anything."""
    if not len(_layer_sizes(hidden)):  # len: a NumPy array of sizes has no truth value
        return all(rate == 0 for rate in _dropout_rates(value, (1,)))
    return len(_dropout_rates(value, hidden)) == len(_layer_sizes(hidden))


def _dropout_count_message(value, hidden) -> str:
    if not len(_layer_sizes(hidden)):
        return "dropout applies to the hidden layers' outputs, but hidden_layer_sizes=() has none; set dropout=0"
    return (
        f"dropout lists {len(_dropout_rates(value, hidden))} rates but hidden_layer_sizes has "
        f"{len(_layer_sizes(hidden))} layers; give one rate for all hidden layers or exactly one per hidden layer"
    )


POSITIVE = Rule(lambda v: is_real(v) and v > 0, "a finite positive number (not a bool)")
NON_NEGATIVE = Rule(lambda v: is_real(v) and v >= 0, "a finite non-negative number (not a bool)")
FRACTION = Rule(lambda v: is_real(v) and 0 <= v < 1, "a number in [0, 1) (not a bool)")
POSITIVE_INT = Rule(lambda v: is_int(v) and v > 0, "a positive integer")
BOOLEAN = Rule(lambda v: isinstance(v, bool | np.bool_), "True or False")

# Parameter (or parameters) -> rules, checked in this order; the first failing rule is the error.
PARAMETER_CONSTRAINTS: dict[str | tuple[str, ...], tuple[Rule, ...]] = {
    "hidden_layer_sizes": (Rule(_is_layer_sizes, "a positive integer or a sequence of them, e.g. (100,) or (10, 5)"),),
    "solver": (
        Rule(
            lambda v: (
                isinstance(v, optax.GradientTransformation) or (isinstance(v, str) and v in SOLVERS) or is_lbfgs(v)
            ),
            ", ".join(repr(name) for name in ("lbfgs", *SOLVERS)) + " or an optax.GradientTransformation",
        ),
    ),
    "learning_rate_init": (POSITIVE,),
    "epsilon": (POSITIVE,),
    "alpha": (NON_NEGATIVE,),
    "tol": (NON_NEGATIVE,),
    "momentum": (NON_NEGATIVE, Rule(lambda v: v <= 1, "in [0, 1]")),
    "beta_1": (FRACTION,),
    "beta_2": (FRACTION,),
    "validation_fraction": (FRACTION,),
    "n_iter_no_change": (Rule(is_n_iter_no_change, "a positive integer, or np.inf to never stop early"),),
    "learning_rate": (
        Rule(
            lambda v: isinstance(v, str) and v in LEARNING_RATE_SCHEDULES,
            "'constant', 'invscaling' or 'adaptive'",
        ),
    ),
    "power_t": (NON_NEGATIVE,),
    "max_iter": (POSITIVE_INT,),
    "n_ensemble": (POSITIVE_INT,),
    "max_fun": (POSITIVE_INT,),
    "early_stopping": (BOOLEAN,),
    "nesterovs_momentum": (BOOLEAN,),
    "warm_start": (BOOLEAN,),
    "verbose": (  # scikit-learn's "verbose" constraint
        Rule(lambda v: isinstance(v, bool | np.bool_) or (is_int(v) and v >= 0), "True, False or an integer >= 0"),
    ),
    "shuffle": (BOOLEAN,),
    "init": (
        Rule(
            lambda v: isinstance(v, str) and v in ESTIMATOR_INITIALISERS,
            f"one of {', '.join(map(repr, ESTIMATOR_INITIALISERS))}",
        ),
    ),
    "scoring": (
        Rule(
            lambda v: v is None or (isinstance(v, str) and any(v in names for names in SCORINGS.values())),
            "None or one of " + ", ".join(repr(name) for names in SCORINGS.values() for name in names),
        ),
    ),
    "class_weight": (  # NeuralNetClassifier's only
        Rule(is_class_weight, "None, 'balanced', a dict {label: weight} or, for multilabel y, a list of such dicts"),
        Rule(has_non_negative_weights, "a dict (or list of dicts) of finite weights >= 0, e.g. {0: 1.0, 1: 5.0}"),
    ),
    ("early_stopping", "validation_fraction"): (
        Rule(
            lambda early, fraction: not (early and fraction <= 0),
            lambda early, fraction: "early_stopping=True needs validation_fraction > 0 (the share of data held out)",
        ),
    ),
    ("activation", "hidden_layer_sizes"): (
        Rule(
            _is_activation_list,
            f"one of {', '.join(sorted(ACTIVATIONS))}, or a list of them (one per hidden layer)",
        ),
        Rule(
            lambda v, hidden: len(_activation_names(v, hidden)) == len(_layer_sizes(hidden)), _activation_count_message
        ),
    ),
    ("dropout", "hidden_layer_sizes"): (
        Rule(
            _is_dropout,
            "a number in [0, 1) (the probability of dropping a hidden unit; at most 0.99999994, which float32 "
            "does not round to 1), or a list of one per hidden layer",
        ),
        Rule(_has_one_rate_per_layer, _dropout_count_message),
    ),
    ("dropout", "solver"): (  # L-BFGS minimises one deterministic full-batch objective
        Rule(
            lambda v, solver: not is_lbfgs(solver) or all(rate == 0 for rate in _dropout_rates(v, (1,))),
            lambda v, solver: (
                "solver='lbfgs' minimises the full-batch loss without dropout; set dropout=0 or use a "
                "solver that takes steps ('adam', 'sgd', 'gd')"
            ),
        ),
    ),
    ("n_ensemble", "solver"): (  # the same: one objective, one minimisation
        Rule(
            lambda v, solver: not is_lbfgs(solver) or v == 1,
            lambda v, solver: (
                f"solver='lbfgs' trains one network, but n_ensemble={v}; set n_ensemble=1 or use a solver that "
                "takes steps ('adam', 'sgd', 'gd')"
            ),
        ),
    ),
    # Checked for every solver, as MLP checks it (solver='gd' trains on the full batch and does not read it)
    "batch_size": (Rule(lambda v: is_auto(v) or (is_int(v) and v > 0), "'auto' or a positive integer"),),
}


def _check(names: tuple[str, ...], rule: Rule, values: tuple) -> None:
    """Nothing when ``values`` pass ``rule``, else the rule's message as an ``InvalidParameterError``."""
    if not rule.test(*values):
        if callable(rule.expected):
            raise InvalidParameterError(rule.expected(*values))
        raise InvalidParameterError(f"{names[0]} must be {rule.expected}, got {values[0]!r:.80}")


def check_params(est) -> Config:
    """Every hyper-parameter of ``est`` checked against :data:`PARAMETER_CONSTRAINTS`, then normalised."""
    for key, rules in PARAMETER_CONSTRAINTS.items():
        names = (key,) if isinstance(key, str) else key
        if not all(hasattr(est, name) for name in names):  # a parameter of one estimator only (class_weight)
            continue
        values = tuple(getattr(est, name) for name in names)
        for rule in rules:
            _check(names, rule, values)
    solver = est.solver
    return Config(
        hidden_layer_sizes=tuple(int(s) for s in _layer_sizes(est.hidden_layer_sizes)),
        # logistic is sigmoid: one network, one compiled loop
        activations=tuple(
            "sigmoid" if name == "logistic" else name
            for name in _activation_names(est.activation, est.hidden_layer_sizes)
        ),
        solver=solver,
        alpha=float(est.alpha),
        batch_size=None if solver == "gd" else AUTO_BATCH_SIZE if is_auto(est.batch_size) else int(est.batch_size),
        learning_rate_init=float(est.learning_rate_init),
        max_iter=int(est.max_iter),
        stopping=Stopping(tol=float(est.tol), n_iter_no_change=_n_iter_no_change(est.n_iter_no_change)),
        early_stopping=bool(est.early_stopping),
        validation_fraction=float(est.validation_fraction),
        momentum=float(est.momentum),
        nesterovs_momentum=bool(est.nesterovs_momentum),
        beta_1=float(est.beta_1),
        beta_2=float(est.beta_2),
        epsilon=float(est.epsilon),
        init=est.init,
        n_ensemble=int(est.n_ensemble),
        schedule=est.learning_rate if solver == "sgd" else "constant",
        power_t=float(est.power_t),
        shuffle=bool(est.shuffle),
        init_factor=mlp_init_factor(est.activation),
        dropout=tuple(float(rate) for rate in _dropout_rates(est.dropout, est.hidden_layer_sizes)),
        scoring=est.scoring,
    )


def _n_iter_no_change(value) -> int | float:
    """An int, or ``math.inf`` (one compiled program for every spelling of infinity)."""
    return int(value) if is_int(value) else float(value)


RANDOM_STATE = Rule(
    lambda v: v is None or isinstance(v, np.random.RandomState) or (is_int(v) and 0 <= v <= MAX_SEED),
    f"an int in the range [0, {MAX_SEED}], a numpy.random.RandomState instance or None",
)


def seed(random_state) -> int:
    """An int ``random_state`` is the seed itself; None or a RandomState draws one (as scikit-learn).  Checked
    against :data:`RANDOM_STATE` where it is drawn, after the data."""
    _check(("random_state",), RANDOM_STATE, (random_state,))
    if is_int(random_state):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def loss_param(value: Any) -> str | Loss | None:
    """The ``loss`` parameter: None for ``'auto'`` (scikit-learn's loss for the targets,
    ``jaxnn.heads.scikit_learn_loss``), else a known loss name or a loss object
    (whether it fits the targets is checked when they are encoded); anything else is an
    ``InvalidParameterError``."""
    if is_auto(value):
        return None
    known = ", ".join(sorted(LOSSES))
    if not isinstance(value, str | Loss):
        raise InvalidParameterError(f"loss must be 'auto', one of {known}, or a jaxnn Loss; got {value!r}")
    if isinstance(value, str) and value not in LOSSES:
        raise InvalidParameterError(f"unknown loss {value!r}; choose 'auto' or one of: {known}")
    return value
