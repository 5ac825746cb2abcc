"""The optimisers by name: plain gradient descent and the solvers ``gd``, ``sgd`` and ``adam``.

A solver name means the same update in every front end (``jaxnn-train`` and the estimators), with
scikit-learn's MLP defaults for its settings:

* ``gd``: full-batch gradient descent, ``θ ← θ − η·g`` (the seeds' training);
* ``sgd``: minibatches with heavy-ball momentum ``v ← μ·v + g`` and ``θ ← θ − η·v``, or Nesterov's
  form ``θ ← θ − η·(μ·v + g)`` with the ``v`` just updated (``momentum=0.9``, ``nesterov=True``;
  ``momentum=0`` is plain minibatch descent); scikit-learn's ``SGDOptimizer`` keeps ``u = −η·v`` instead
  (``docs/derivations.md``, §5, the update rules);
* ``adam``: minibatches with Adam (``beta_1=0.9``, ``beta_2=0.999``, ``epsilon=1e-8``), ε where scikit-learn's MLP
  adds it (:func:`scale_by_adam`).

Whether a solver uses minibatches is a matter of the batch size, which the front ends choose (each solver's
usual batch and step are here: ``FULL_BATCH_SOLVERS``, ``USUAL_LEARNING_RATES``); the update is this
module's.  :func:`make` is the one constructor the front ends use (``fit``, ``fit_many``, the estimators): a
solver name gives :func:`tunable_solver`'s update, with the learning rate and an L2 rate kept in the
optimiser state (``optax.inject_hyperparams``; for plain descent its own :class:`DescentRates`, which the
training loop can apply to its folded layers), so model selection over them compiles once; a user's optax
transformation is taken as it is.  :func:`solver` is the same update with the rate built in, the form of
``jaxnn-train``'s checkpoints (:func:`fixed_rate_state` converts a tunable state to it).

Learning-rate schedules (scikit-learn's ``learning_rate`` of the MLP's ``sgd``) belong to the optimiser:
:func:`make` with ``schedule=`` wraps the solver so that its state (:class:`ScheduledState`) also holds the
schedule's values, and :func:`end_of_epoch` — the one implementation, which the training loop calls after
every epoch — moves that state on:

* ``constant``: ``η = learning_rate_init`` throughout;
* ``invscaling``: after each epoch ``η = η₀ / (t + 1)^power_t``, ``t`` the samples trained on so far
  (:func:`invscaling_rate`);
* ``adaptive``: ``η`` stays until the stopping rule sees more than ``n_iter_no_change`` epochs in a row
  without improvement; then, instead of stopping, ``η ← η / 5`` and the count starts again, and training
  stops only once that happens with ``η ≤ 1e-6`` (:func:`adaptive_rate`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn._builds import PLAIN_BUILDS, FallbackJit
from jaxnn._checks import finite_real, look_up
from jaxnn.structural_keys import by_structure

__all__ = [
    "ADAPTIVE_DIVISOR",
    "ADAPTIVE_MIN_RATE",
    "DEFAULT_SETTINGS",
    "FULL_BATCH_SOLVERS",
    "LEARNING_RATE_SCHEDULES",
    "SOLVERS",
    "USUAL_LEARNING_RATES",
    "DescentRates",
    "ScheduleValues",
    "ScheduledState",
    "SolverSettings",
    "adaptive_rate",
    "checked_schedule",
    "checked_settings",
    "continued_state",
    "end_of_epoch",
    "fixed_rate_state",
    "gradient_descent",
    "init_state",
    "invscaling_rate",
    "is_gradient_descent",
    "l2_penalty",
    "l2_rate_of",
    "learning_rate_of",
    "make",
    "one_minus_power",
    "scale_by_adam",
    "schedule_of",
    "solver",
    "tunable_solver",
    "weights_not_biases",
    "with_hyperparams",
    "with_learning_rate",
]

SOLVERS = ("gd", "sgd", "adam")
FULL_BATCH_SOLVERS = ("gd",)  # the solvers whose usual batch is all the rows; the others take minibatches
# Each solver's usual step, jaxnn-train's default --lr: the seeds' 0.1 for descent, 0.01 for the adaptive ones.
USUAL_LEARNING_RATES = {"gd": 0.1, "sgd": 0.1, "adam": 0.01}
DEFAULT_LEARNING_RATE = 0.01  # fit's rate when none is given; also a tunable solver's bare init(params)
DEFAULT_POWER_T = 0.5  # invscaling's exponent when none is given (scikit-learn's)
LEARNING_RATE_SCHEDULES = ("constant", "invscaling", "adaptive")  # scikit-learn's names and meanings
ADAPTIVE_DIVISOR = 5.0  # adaptive: η ← η / 5 on a plateau
ADAPTIVE_MIN_RATE = 1e-6  # adaptive: a plateau at η ≤ this stops training


class SolverSettings(NamedTuple):
    """The static settings of a named solver (scikit-learn's MLP defaults); only some apply to each."""

    momentum: float = 0.9  # sgd
    nesterov: bool = True  # sgd
    beta_1: float = 0.9  # adam
    beta_2: float = 0.999  # adam
    epsilon: float = 1e-8  # adam

    def relevant_to(self, name: str) -> SolverSettings:
        """The settings with those that ``name`` ignores set to their defaults (one cache entry per update)."""
        default = SolverSettings()
        if name == "sgd":
            return default._replace(momentum=self.momentum, nesterov=self.nesterov)
        if name == "adam":
            return default._replace(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return default


def checked_settings(settings) -> SolverSettings:
    """``settings`` if it is a :class:`SolverSettings` within scikit-learn's ranges (momentum in [0, 1], betas in
    [0, 1), epsilon > 0, nesterov a bool); else a TypeError or ValueError naming the setting.  Outside them the
    updates grow without bound or divide by zero (``epsilon=0`` made Adam's first step NaN)."""
    if not isinstance(settings, SolverSettings):
        raise TypeError(
            "settings must be a jaxnn.optimizers.SolverSettings, e.g. SolverSettings(momentum=0.5); got "
            f"{type(settings).__name__}"
        )
    for name, high in (("momentum", 1.0), ("beta_1", 1.0), ("beta_2", 1.0)):
        value = finite_real(getattr(settings, name), f"settings.{name}", minimum=0)
        if value > high or (value == high and name != "momentum"):
            interval = "[0, 1]" if name == "momentum" else "[0, 1)"
            raise ValueError(f"settings.{name} must be in {interval}, got {value!r}")
    finite_real(settings.epsilon, "settings.epsilon", positive=True)
    if not isinstance(settings.nesterov, bool | np.bool_):
        raise TypeError(f"settings.nesterov must be True or False, got {settings.nesterov!r:.80}")
    return settings


def gradient_descent(learning_rate: float) -> optax.GradientTransformation:
    """Plain gradient descent as an optax transformation: ``update = −η·g`` (no state).

    Two calls with the same learning rate return equal transformations, so ``fit`` (whose compiled
    loop is cached on the optimiser) compiles once per learning rate, not once per call.
    """
    if isinstance(learning_rate, bool | np.bool_) or not isinstance(learning_rate, numbers.Real):  # NumPy's too
        raise TypeError(f"learning_rate must be a number, got {type(learning_rate).__name__}")
    learning_rate = finite_real(learning_rate, "learning_rate", positive=True)
    return optax.GradientTransformation(_no_state, _DescentUpdate(learning_rate))


def _no_state(params):
    return optax.EmptyState()


@dataclass(frozen=True)
class _DescentUpdate:
    """The update of :func:`gradient_descent`; a frozen dataclass so that it compares by learning rate."""

    learning_rate: float

    def __call__(self, grads, state, params=None, weight_mask=None):  # every number alike: no mask needed
        return jax.tree.map(lambda g: -self.learning_rate * g, grads), state


def is_gradient_descent(optimizer: optax.GradientTransformation) -> bool:
    """Whether ``optimizer`` is plain gradient descent — :func:`gradient_descent`'s, which updates every
    number on its own with one rate, or :func:`tunable_solver`'s plain descent, which also takes the training
    loop's folded layers (see :class:`DescentRates`) — so that the loop may carry the layers folded."""
    update = optimizer.update.solver.update if isinstance(optimizer.update, _ScheduledUpdate) else optimizer.update
    return isinstance(update, _DescentUpdate | _TunableDescentUpdate)


# --------------------------------------------------------------------------------------------------
# Plain descent with runtime rates (tunable_solver's gd): its own small state instead of inject_hyperparams,
# so that the training loop keeps its folded fast path.


class DescentRates(NamedTuple):
    """The state of :func:`tunable_solver`'s plain descent: ``update = −η·(g + λ·W)`` on each layer's
    weights and ``−η·g`` on its bias, with ``η = learning_rate`` and ``λ = l2_rate`` (0-d arrays).

    The update takes parameters (and gradients) in ``model.init``'s layout, a list of ``{"W", "b"}``, or in
    any other layout together with ``weight_mask``: a pytree of the params' structure whose leaves say which
    numbers are weights (a bool, or a bool array that broadcasts against the leaf).  The training loop passes
    one for the layers it carries in its own layout; every number gets the same arithmetic either way.
    """

    learning_rate: jax.Array
    l2_rate: jax.Array


def weights_not_biases(params):
    """The weight mask of ``model.init``'s layout: every layer's ``W`` is weights, its ``b`` is not."""
    return [{"W": True, "b": False} for _ in params]


def _penalised(grads, params, l2_rate, weight_mask):
    """``g + λ·W`` on every weight, ``g`` on every bias (``weight_mask`` says which numbers are weights)."""

    def penalised(g, p, is_weight):
        if isinstance(is_weight, bool):
            return g + l2_rate * p if is_weight else g
        return jnp.where(is_weight, g + l2_rate * p, g)

    return jax.tree.map(penalised, grads, params, weight_mask)


@dataclass(frozen=True)
class _TunableDescentUpdate:
    """The update of :class:`DescentRates` (a dataclass without fields: every instance is equal)."""

    def __call__(self, grads, state: DescentRates, params=None, weight_mask=None):
        if params is None:
            raise ValueError("plain descent with an L2 rate needs the params: call update(grads, state, params)")
        step = -state.learning_rate
        mask = weights_not_biases(params) if weight_mask is None else weight_mask
        return jax.tree.map(lambda u: step * u, _penalised(grads, params, state.l2_rate, mask)), state


def _default_rates(params) -> DescentRates:
    dtype = jax.tree.leaves(params)[0].dtype
    return DescentRates(jnp.asarray(DEFAULT_LEARNING_RATE, dtype), jnp.zeros((), dtype))


_TUNABLE_DESCENT = optax.GradientTransformation(_default_rates, _TunableDescentUpdate())


def _direction(name: str, settings: SolverSettings) -> optax.GradientTransformation:
    """The solver's update direction before the step ``−η`` (the one table of what each name means)."""
    directions = {
        "gd": optax.identity,
        "sgd": lambda: (
            optax.trace(decay=settings.momentum, nesterov=settings.nesterov)
            if settings.momentum > 0
            else optax.identity()
        ),
        "adam": lambda: scale_by_adam(settings.beta_1, settings.beta_2, settings.epsilon),
    }
    return look_up(directions, name, "solver")()


def scale_by_adam(beta_1: float, beta_2: float, epsilon: float) -> optax.GradientTransformation:
    """Adam's direction as scikit-learn's MLP takes it (Kingma & Ba's Algorithm 1 in the paper's faster form):

    ``m ← β₁·m + (1 − β₁)·g``,  ``v ← β₂·v + (1 − β₂)·g²``,  direction ``√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)``

    at step ``t`` (counted from 1).  ε is added to the uncorrected ``√v``; ``optax.scale_by_adam`` adds it
    after (``m̂ / (√v̂ + ε)``), which is this direction with ε replaced by ``ε·√(1 − β₂ᵗ)``: at the defaults 32 times
    smaller at the first step, so weights whose gradients are tiny moved further than MLP's.  The state is optax's
    ``ScaleByAdamState`` (``count``, ``mu``, ``nu``)."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(grads, state, params=None):
        del params
        mu = jax.tree.map(lambda m, g: beta_1 * m + (1 - beta_1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: beta_2 * v + (1 - beta_2) * g**2, state.nu, grads)
        count = optax.safe_increment(state.count)
        t = count.astype(jax.tree.leaves(mu)[0].dtype)
        correction = jnp.sqrt(one_minus_power(beta_2, t)) / one_minus_power(beta_1, t)  # once per step, a scalar

        def direction(m, v):
            return correction.astype(m.dtype) * m / (jnp.sqrt(v) + epsilon)

        return jax.tree.map(direction, mu, nu), optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def one_minus_power(beta: float, t: jax.Array) -> jax.Array:
    """``1 − βᵗ`` in ``t``'s dtype for a Python float ``β`` in ``[0, 1)``, as ``−expm1(t·ln β)`` with ``ln β`` taken in
    float64: a β within float32's spacing of 1 (``1 − 1e-10``) rounds to 1.0 there, and ``1 − βᵗ`` computed in
    float32 was 0 (Adam's correction 0/0: NaN, or no step at all), where scikit-learn's MLP computes it in float64."""
    log_beta = math.log(beta) if beta > 0 else -math.inf  # β = 0: βᵗ = 0 for t ≥ 1
    return -jnp.expm1(t * log_beta)


DEFAULT_SETTINGS = SolverSettings()


def solver(
    name: str, learning_rate: float, settings: SolverSettings = DEFAULT_SETTINGS
) -> optax.GradientTransformation:
    """The named solver with learning rate ``learning_rate`` (a number, or a 0-d array as ``fit`` takes it); cached,
    since the compiled training loop is keyed on the optimiser object.  ``gd`` (and ``sgd`` without momentum) is
    :func:`gradient_descent`."""
    if isinstance(learning_rate, np.ndarray | jax.Array) and np.ndim(learning_rate) == 0:
        learning_rate = learning_rate.item()
    # checked before the cache, which would take True for a cached 1 and cannot hash an array
    return _solver(name, finite_real(learning_rate, "learning_rate", positive=True), settings)


@lru_cache(maxsize=128)
def _solver(name: str, learning_rate: float, settings: SolverSettings) -> optax.GradientTransformation:
    look_up(dict.fromkeys(SOLVERS), name, "solver")
    settings = checked_settings(settings).relevant_to(name)
    if name == "gd" or (name == "sgd" and settings.momentum == 0):
        return gradient_descent(learning_rate)
    return optax.chain(_direction(name, settings), optax.scale(-learning_rate))


def _penalised_steps(learning_rate, l2_rate, *, direction, scale_by_learning_rate):
    """update = −learning_rate · direction(g + l2_rate·W)  (without the scaling for a user's transformation)."""
    parts = [optax.add_decayed_weights(l2_rate, mask=weights_not_biases), direction]
    if scale_by_learning_rate:
        parts.append(optax.scale(-learning_rate))
    return optax.chain(*parts)


def _penalised_steps_rate_first(learning_rate, l2_rate, *, direction):
    """update = direction(−learning_rate · (g + l2_rate·W)): the rate scales each gradient as it enters the
    momentum (scikit-learn's ``SGDOptimizer``: ``u ← μ·u − η·g`` with its scaled velocity ``u``), so a new rate
    applies to new gradients only."""
    return optax.chain(
        optax.add_decayed_weights(l2_rate, mask=weights_not_biases), optax.scale(-learning_rate), direction
    )


def tunable_solver(
    name: str | optax.GradientTransformation, settings: SolverSettings = DEFAULT_SETTINGS, *, varying_rate: bool = False
) -> optax.GradientTransformation:
    """The named solver (or a user's transformation) with an L2 penalty, ``learning_rate`` and ``l2_rate``
    living in the optimiser state: ``update = −η·direction(g + λ·W)`` on every layer's ``W`` (not ``b``).

    Set both with :func:`init_state` / :func:`with_hyperparams`; changing them compiles nothing.  A user's
    transformation brings its own learning rate: only the L2 term is added before it.  Cached per
    setting, since the compiled training loop is keyed on the optimiser object.  Plain descent (``gd``,
    and ``sgd`` without momentum) keeps its rates in a :class:`DescentRates` state: the same arithmetic as
    the ``optax.inject_hyperparams`` chain of the others, bit for bit, but one the training loop can apply
    to its folded layers.

    ``varying_rate=True`` is for a learning-rate schedule: ``sgd`` with momentum then scales each gradient
    by the rate before it enters the momentum: scikit-learn's ``SGDOptimizer``, whose scaled velocity is
    ``u = −η·v`` (the module docstring's ``v``), ``u ← μ·u − η·(g + λ·W)`` and ``θ ← θ + u`` (Nesterov:
    ``θ ← θ + μ·u − η·(g + λ·W)``); with a constant rate that is the same update as ``−η·(μ·v + g)``, but when
    ``η`` changes only new gradients get the new rate.  The other solvers are the same either way.
    """
    named = isinstance(name, str)
    if named and (name == "gd" or (name == "sgd" and settings.momentum == 0)):
        return _TUNABLE_DESCENT
    # One cache entry per distinct update: the rate's place matters only for sgd with momentum.
    return _tunable_chain(name, settings, bool(varying_rate) and named and name == "sgd")


@lru_cache(maxsize=128)
def _tunable_chain(name, settings: SolverSettings, rate_first: bool) -> optax.GradientTransformation:
    named = isinstance(name, str)
    direction = _direction(name, settings.relevant_to(name)) if named else name
    if rate_first:
        return optax.inject_hyperparams(_penalised_steps_rate_first, static_args=("direction",))(
            learning_rate=DEFAULT_LEARNING_RATE, l2_rate=0.0, direction=direction
        )
    return optax.inject_hyperparams(_penalised_steps, static_args=("direction", "scale_by_learning_rate"))(
        learning_rate=DEFAULT_LEARNING_RATE, l2_rate=0.0, direction=direction, scale_by_learning_rate=named
    )


def make(
    optimizer: str | optax.GradientTransformation,
    settings: SolverSettings = DEFAULT_SETTINGS,
    *,
    with_l2: bool = False,
    schedule: str = "constant",
    learning_rate: float | None = None,
) -> optax.GradientTransformation:
    """The optimiser of a training run, for every front end: the one constructor ``fit``, ``fit_many`` and the
    estimators build their optimisers with.

    A solver name (``SOLVERS``, with ``settings``) gives :func:`tunable_solver`'s update, whose learning rate
    and L2 rate live in its state (set them with :func:`init_state`), so new values compile nothing;
    ``schedule`` (``LEARNING_RATE_SCHEDULES``) changes that rate between epochs.  A user's optax
    transformation brings its own learning rate (and its own schedule, e.g. ``optax.exponential_decay``); it
    is used as it is, or, with ``with_l2``, behind :func:`tunable_solver`'s L2 term (whose rate ``λ``, ``fit``'s
    ``l2``, lives in the state).

    A solver's bare ``init(params)`` (optax's way, e.g. for :func:`jaxnn.train_step`) sets ``fit``'s default
    rates, learning rate ``DEFAULT_LEARNING_RATE`` (0.01) and no L2 (a state of learning rate 0 made every step a
    silent no-op), and a schedule's starting rate and ``power_t`` (``DEFAULT_POWER_T``), with no rows per epoch
    to count (``invscaling``'s ``t`` stays 0, so its rate stays 0.01); :func:`init_state` sets others.

    ``learning_rate`` builds a solver's rate into the update instead (:func:`solver`: a state without rates,
    the form ``jaxnn-train``'s checkpoints keep; :func:`fixed_rate_state` converts a tunable state to it).
    """
    checked_settings(settings)
    if isinstance(optimizer, str) and learning_rate is not None:
        if with_l2 or schedule != "constant":
            raise ValueError("a learning rate built into the update takes no L2 rate and no schedule")
        return solver(optimizer, learning_rate, settings)
    if isinstance(optimizer, str):
        if optimizer == "lbfgs":  # the estimators' and jaxnn-train's name: not a step-by-step update here
            raise ValueError(
                "optimizer 'lbfgs' is not one of fit's step-by-step solvers (adam, gd, sgd): full-batch L-BFGS, the "
                "estimators' solver='lbfgs', is jaxnn.lbfgs.minimize(model, params, x, y, loss=...); or pass "
                "optax.lbfgs() as the optimizer"
            )
        look_up(dict.fromkeys(SOLVERS), optimizer, "optimizer")
        look_up(dict.fromkeys(LEARNING_RATE_SCHEDULES), schedule, "learning-rate schedule")
        solver_ = tunable_solver(optimizer, settings, varying_rate=schedule != "constant")
        return solver_ if schedule == "constant" else _scheduled(solver_, schedule)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be a solver name ({', '.join(SOLVERS)}) or an optax.GradientTransformation, e.g. "
            f"optax.adam(0.01); got {optimizer!r:.80}"
        )
    if schedule != "constant":
        raise ValueError(
            f"schedule={schedule!r} changes a named solver's learning rate; an optax transformation brings its own "
            "(e.g. optax.sgd(optax.exponential_decay(...)))"
        )
    # Keyed by what it computes, not by identity: a fresh optax.adam(1e-3) per fit reuses the compiled loop.
    optimizer = by_structure(optimizer)
    return tunable_solver(optimizer, settings) if with_l2 else optimizer


def holds_l2_term(optimizer, opt_state, params) -> bool:
    """Whether ``opt_state`` is the state of the optax transformation ``optimizer`` behind :func:`tunable_solver`'s
    L2 term (``make(optimizer, with_l2=True)``'s, for ``params``: one fitted with ``l2``, or a population member's at
    ``l2`` 0 among members with a penalty) rather than of ``optimizer`` alone; False for a solver name, whose state
    always holds its L2 rate, and for no state."""
    if opt_state is None or not isinstance(optimizer, optax.GradientTransformation):
        return False
    alone = jax.tree.structure(jax.eval_shape(optimizer.init, params))
    wrapped = jax.tree.structure(jax.eval_shape(tunable_solver(by_structure(optimizer)).init, params))
    return jax.tree.structure(opt_state) == wrapped != alone


def with_hyperparams(opt_state, learning_rate: jax.Array, l2_rate: jax.Array):
    """A :func:`tunable_solver` state with this fit's learning rate and L2 rate (optax's documented way)."""
    if isinstance(opt_state, ScheduledState):
        return opt_state._replace(solver=with_hyperparams(opt_state.solver, learning_rate, l2_rate))
    if isinstance(opt_state, DescentRates):
        return DescentRates(learning_rate, l2_rate)
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": learning_rate, "l2_rate": l2_rate})


def learning_rate_of(opt_state) -> jax.Array:
    """The current learning rate ``η`` of a :func:`tunable_solver` state."""
    if isinstance(opt_state, ScheduledState):
        return learning_rate_of(opt_state.solver)
    if isinstance(opt_state, DescentRates):
        return opt_state.learning_rate
    return opt_state.hyperparams["learning_rate"]


def l2_rate_of(opt_state) -> jax.Array | None:
    """The L2 rate ``λ`` of a :func:`tunable_solver` state; None for a state without one (a user's optax
    transformation's)."""
    if isinstance(opt_state, ScheduledState):
        return l2_rate_of(opt_state.solver)
    if isinstance(opt_state, DescentRates):
        return opt_state.l2_rate
    hyperparams = getattr(opt_state, "hyperparams", None)
    if isinstance(hyperparams, Mapping) and "l2_rate" in hyperparams:
        return hyperparams["l2_rate"]
    return None


def l2_penalty(params, l2_rate, weight_mask=None) -> jax.Array:
    """``½·λ·Σ_layers ‖W‖²``, the penalty whose gradient ``λ·W`` the tunable solvers add (biases excluded;
    ``weight_mask`` as :class:`DescentRates` takes it, default :func:`weights_not_biases`).  With ``λ = alpha / m``
    it is scikit-learn's MLP penalty ``alpha/(2m)·Σ‖W‖²``, which MLP adds to the loss it reports."""
    mask = weights_not_biases(params) if weight_mask is None else weight_mask

    def squares(p, is_weight):
        if isinstance(is_weight, bool):
            return jnp.sum(jnp.square(p)) if is_weight else None
        return jnp.sum(jnp.square(p), where=is_weight)

    return 0.5 * l2_rate * sum(value for value in jax.tree.leaves(jax.tree.map(squares, params, mask)))


def with_learning_rate(opt_state, learning_rate):
    """A :func:`tunable_solver` state with its learning rate replaced (in the dtype it had), the L2 rate kept;
    a host state (NumPy leaves) stays on the host."""
    if isinstance(opt_state, ScheduledState):
        return opt_state._replace(solver=with_learning_rate(opt_state.solver, learning_rate))
    old = learning_rate_of(opt_state)
    xp = jnp if isinstance(old, jax.Array) else np  # NumPy keeps float64 outside jax.enable_x64
    learning_rate = xp.asarray(learning_rate, old.dtype)
    if isinstance(opt_state, DescentRates):
        return opt_state._replace(learning_rate=learning_rate)
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": learning_rate})


def invscaling_rate(learning_rate_init, power_t, samples_seen):
    """``invscaling``'s rate after ``t = samples_seen`` training samples: ``η = η₀ / (t + 1)^power_t``.

    scikit-learn's ``SGDOptimizer.iteration_ends``: set at the end of each epoch, with ``t`` counting every
    sample of every epoch so far (the first epoch runs at ``η₀``).  NumPy or JAX numbers alike.
    """
    return learning_rate_init / (samples_seen + 1) ** power_t


def adaptive_rate(learning_rate, plateau, where=jnp.where):
    """``adaptive``'s rule at the end of an epoch: ``(new rate, lowered)``.

    On a ``plateau`` (more than ``n_iter_no_change`` epochs in a row without improvement) with
    ``η > ADAPTIVE_MIN_RATE`` the rate becomes ``η / ADAPTIVE_DIVISOR`` and ``lowered`` is True: training goes
    on and the count of epochs without improvement starts again.  A plateau at ``η ≤ 1e-6`` leaves the rate
    and ends training (scikit-learn's ``SGDOptimizer.trigger_stopping``).  ``where`` is ``jnp.where`` in
    compiled code, ``np.where`` on the host.
    """
    lowered = plateau & (learning_rate > ADAPTIVE_MIN_RATE)
    return where(lowered, learning_rate / ADAPTIVE_DIVISOR, learning_rate), lowered


def checked_schedule(schedule, n_iter_no_change) -> str:
    """``schedule``, checked: one of :data:`LEARNING_RATE_SCHEDULES`.  ``adaptive`` lowers the rate when the
    stopping rule sees a plateau, so it needs a rule that can see one: ``n_iter_no_change`` (the rule's, None
    without a rule) must be finite.  Without one the rate would never change (a ``constant`` schedule under
    another name), so that is a ValueError naming both ways out."""
    if not isinstance(schedule, str) or schedule not in LEARNING_RATE_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(LEARNING_RATE_SCHEDULES)}, got {schedule!r}")
    if schedule == "adaptive" and (n_iter_no_change is None or n_iter_no_change == float("inf")):
        rule = "there is no stopping rule" if n_iter_no_change is None else "n_iter_no_change=inf never sees one"
        raise ValueError(
            f"schedule 'adaptive' lowers the learning rate when the stopping rule sees a plateau, and {rule}: "
            "pass stopping=Stopping(tol, n_iter_no_change) with a finite n_iter_no_change, or use schedule='constant'"
        )
    return schedule


def init_state(optimizer, params, learning_rate, l2_rate, schedule: ScheduleValues | None = None):
    """``optimizer.init(params)`` of a :func:`tunable_solver` (or :func:`make`'s scheduled one, with the
    schedule's ``schedule`` values) with the rates set: for plain descent the rates themselves (nothing to
    compute), else one compiled call."""
    if isinstance(optimizer.update, _ScheduledUpdate):
        if schedule is None:
            raise ValueError("a scheduled optimiser's state needs its ScheduleValues")
        return ScheduledState(init_state(optimizer.update.solver, params, learning_rate, l2_rate), schedule)
    if isinstance(optimizer.update, _TunableDescentUpdate):
        return DescentRates(learning_rate, l2_rate)
    return _init_state_compiled(optimizer, params, learning_rate, l2_rate)


def _init_state_with_rates(optimizer, params, learning_rate, l2_rate):
    return with_hyperparams(optimizer.init(params), learning_rate, l2_rate)


_init_state_compiled = FallbackJit(_init_state_with_rates, PLAIN_BUILDS, static_argnums=0)


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules: part of the optimiser and of its state.


class ScheduleValues(NamedTuple):
    """The runtime values of a learning-rate schedule, in the optimiser state (0-d arrays, or ``(P,)`` for a
    population): ``invscaling`` sets ``η = learning_rate_init / (samples_seen + 1)^power_t`` after each epoch,
    once ``samples_per_epoch`` has been added to ``samples_seen``; ``adaptive`` needs none of them."""

    learning_rate_init: jax.Array
    power_t: jax.Array
    samples_seen: jax.Array  # t: samples trained on before the epoch that runs next
    samples_per_epoch: jax.Array


class ScheduledState(NamedTuple):
    """The state of a solver with a learning-rate schedule: the solver's own state (which holds the current
    rate) and the schedule's values."""

    solver: optax.OptState
    schedule: ScheduleValues


@dataclass(frozen=True)
class _ScheduledUpdate:
    """The update of a scheduled solver: the solver's own (the schedule acts between epochs only)."""

    solver: optax.GradientTransformation
    kind: str

    def __call__(self, grads, state: ScheduledState, params=None, **extra_args):
        updates, solver_state = self.solver.update(grads, state.solver, params, **extra_args)
        return updates, state._replace(solver=solver_state)


@lru_cache(maxsize=128)
def _scheduled(solver_: optax.GradientTransformation, kind: str) -> optax.GradientTransformation:
    def init(params):  # fit's defaults; no rows per epoch to count, so t stays 0 until init_state gives them
        dtype = jax.tree.leaves(params)[0].dtype
        rate, power_t, zero = (jnp.asarray(v, dtype) for v in (DEFAULT_LEARNING_RATE, DEFAULT_POWER_T, 0.0))
        return ScheduledState(solver_.init(params), ScheduleValues(rate, power_t, zero, zero))

    return optax.GradientTransformation(init, _ScheduledUpdate(solver_, kind))


def schedule_of(optimizer: optax.GradientTransformation) -> str:
    """The learning-rate schedule of ``optimizer`` (one of ``LEARNING_RATE_SCHEDULES``)."""
    return optimizer.update.kind if isinstance(optimizer.update, _ScheduledUpdate) else "constant"


def end_of_epoch(optimizer: optax.GradientTransformation, opt_state, plateau, where=jnp.where):
    """The schedule's transition at the end of an epoch: ``(new state, lowered)``.

    ``invscaling``: ``t ← t + samples_per_epoch`` and ``η = η₀ / (t + 1)^power_t`` (:func:`invscaling_rate`).
    ``adaptive``: on a ``plateau`` (more than ``n_iter_no_change`` epochs without improvement) with
    ``η > ADAPTIVE_MIN_RATE``, ``η ← η / ADAPTIVE_DIVISOR`` and ``lowered`` is True, so the caller restarts its
    count (:func:`adaptive_rate`).  A constant rate, or an optimiser without a schedule, is left as it is.
    ``where`` is ``jnp.where`` in compiled code, ``np.where`` on the host.
    """
    kind = schedule_of(optimizer)
    not_lowered = where(plateau, False, False)
    if kind == "invscaling":
        values = opt_state.schedule
        seen = values.samples_seen + values.samples_per_epoch
        rate = invscaling_rate(values.learning_rate_init, values.power_t, seen)
        new = ScheduledState(with_learning_rate(opt_state.solver, rate), values._replace(samples_seen=seen))
        return new, not_lowered
    if kind == "adaptive":
        rate, lowered = adaptive_rate(learning_rate_of(opt_state), plateau, where)
        return with_learning_rate(opt_state, rate), lowered
    return opt_state, not_lowered


def continued_state(opt_state, *, learning_rate, l2_rate, samples):
    """An optimiser state to go on training from (``partial_fit``), with this call's L2 rate: a scheduled state
    keeps its current rate and schedule values, counting ``samples`` rows per epoch from now on; any other
    takes ``learning_rate``."""
    if isinstance(opt_state, ScheduledState):
        values = opt_state.schedule
        solver_state = with_hyperparams(opt_state.solver, learning_rate_of(opt_state.solver), l2_rate)
        samples = np.asarray(samples, np.asarray(values.samples_per_epoch).dtype)
        return ScheduledState(solver_state, values._replace(samples_per_epoch=samples))
    return with_hyperparams(opt_state, learning_rate, l2_rate)


def fixed_rate_state(tunable_state, like):
    """The state :func:`solver` keeps for the same update, from a :func:`tunable_solver` state; ``like`` is
    ``solver(...).init(params)``, whose structure the result has.

    Plain descent keeps its rates only (``solver``'s has no state at all); the others keep the state of the
    chain ``(L2 term, direction, step)`` built in :func:`_penalised_steps`, where ``solver``'s chain is
    ``(direction, step)``: the same update, so the same state less the L2 term's.
    """
    if not jax.tree.leaves(like):
        return like
    inner = getattr(tunable_state, "inner_state", None)
    without_l2 = tuple(inner[1:]) if isinstance(inner, tuple) else None
    if without_l2 is None or jax.tree.structure(without_l2) != jax.tree.structure(like):
        raise ValueError(
            f"{jax.tree.structure(like)} is not the fixed-rate form of the tunable state "
            f"{jax.tree.structure(tunable_state)}"
        )
    return without_l2
