"""scikit-learn estimators on top of jaxnn: :class:`NeuralNetClassifier` and :class:`NeuralNetRegressor`.

They follow the contract of scikit-learn's ``MLPClassifier``/``MLPRegressor`` (same parameter and
attribute names where those exist), so they drop into ``Pipeline``, ``cross_val_score`` and
``GridSearchCV``.  Underneath, the network is a :class:`~jaxnn.layers.Sequential` of
:class:`~jaxnn.layers.Dense` layers and training is jaxnn's compiled training loop (``jaxnn._loop``, the
loop :func:`jaxnn.train.fit` runs; the estimators call it directly, since scikit-learn's ``validate_data``
has checked the data already): every epoch runs inside compiled code and the gradients are jaxnn's
hand-written backward rules.

What training minimises.  With per-sample weights ``w`` (all 1 by default) and ``n`` samples::

    L(θ) = Σ_i w_i l_i / Σ_i w_i        l_i: the loss of sample i (see ``loss``)

and ``alpha > 0`` adds scikit-learn's L2 penalty ``alpha/(2m)·Σ_layers ‖W‖²`` on the weights (not the
biases), where ``m`` is the weight of one batch (``Σw`` for a full batch, ``Σw·batch_size/n`` for
minibatches).  The penalty enters as its gradient ``(alpha/m)·W``, added to the loss gradient before
the solver's update (``optax.add_decayed_weights``); ``loss_curve_`` reports ``L`` plus the penalty at
each batch's starting weights (``jaxnn.optimizers.l2_penalty``), scikit-learn's ``loss_``, and the
stopping rule watches that same value.
``solver='lbfgs'`` minimises the full-batch ``L`` plus the penalty as one objective, with scikit-learn's
full-batch L-BFGS (:mod:`jaxnn.lbfgs`: scipy's L-BFGS-B step for step, in one compiled loop); there
``loss_``, ``loss_curve_`` (one entry per iteration) and the stopping tests include the penalty, as
scikit-learn's ``loss_`` does for lbfgs.

Model selection without recompiling.  Compiled code is cached on the *static* configuration (layer
sizes, activations, solver, its momentum/betas, ``batch_size``, ``tol``, ``n_iter_no_change``,
``early_stopping``); refitting that configuration reuses it:

* ``max_iter`` is not part of it: the loop runs in chunks of a fixed compiled length, so any
  ``max_iter`` (a grid over it included) runs the same program;
* ``learning_rate_init`` and ``alpha`` are not baked into the compiled code: they live in the optimiser
  state (``optax.inject_hyperparams``; for ``gd``, and ``sgd`` without momentum, a state of two rates that
  keeps the loop's fast path for plain descent), so a grid over them compiles once; so is ``power_t``
  (the kind of ``learning_rate`` and ``shuffle`` are part of the configuration);
* sample counts are padded with rows of weight 0, which the loss ignores, to one of eight sizes per
  doubling (…, 112, 120, 128, 144, 160, …; see :func:`padded_size`), so the folds of a cross-validation
  share one compiled loop (the final refit on all rows usually needs a second);
* the optimiser objects are cached per solver setting (jaxnn's compiled loop is keyed on their
  identity), and prediction is one cached compiled forward pass (every input of up to 256 rows shares
  one).

Many fits as one population.  :func:`fit_estimators` fits a list of estimators, each on its own data, and
trains those that share the static configuration (and ``max_iter``, input width and float type) as one
:func:`jaxnn.population.fit_many` population: per member its seed's weights and shuffle key, learning rate,
``alpha``, data (padded with rows of weight 0 to the members' largest padded size) and validation split.
A grid search's candidates × folds so run as one program, and each estimator ends as its own ``fit``
leaves it, up to float rounding.  ``n_ensemble=K`` trains K networks from derived seeds the same way and
averages their predictions.

Initial weights.  ``init='mlp'`` (the default) draws scikit-learn MLP's with NumPy, in its order and
with its bound, so an int ``random_state`` starts from MLP's very network; jaxnn's own initialisers
(``'glorot'``, ``'he'``, …) draw with ``jax.random`` in one small compiled program.  A first fit builds
the training loop (and the shuffle key's small program, shared by every network), prediction one more.
Each ``fit`` and ``predict`` keeps them in jaxnn's persistent compilation cache for the duration of the
call (:func:`jaxnn.compile_cache.scoped`: off with ``JAXNN_COMPILE_CACHE=0``; a cache configured by the
user is left as it is), so a new process loads them instead of compiling them.

Precision.  Like scikit-learn's MLP, the estimators keep the input's floating dtype: float32 input
trains in float32, float64 (and integer) input in float64 (inside ``jax.enable_x64``, for this call
only), and the fitted ``coefs_`` have that dtype.  Both start from the same initial weights (drawn in
float64 by NumPy for ``init='mlp'``, in float32 by ``jax.random`` for the others, then cast) and
minibatches, so they fit the same model up to rounding, as scikit-learn's MLP does.  Sparse ``X`` is
trained on as a dense copy of at most ``DENSE_COPY_LIMIT_BYTES`` (1 GiB); a larger one is a ValueError.
Both run the same compiled loop, so float64 costs what float64 arithmetic costs and nothing else: on a CPU
about 1.5 times the float32 time per epoch for a small network such as iris's 4-10-5-3 (wider vectors of
float32 numbers per instruction), on GPUs and TPUs many times more. Pass float32 input
(``X.astype(np.float32)``) when its 7 significant digits are enough, which they are for training a
network.

Divergence.  A step whose loss or weights are not finite stops training (see :func:`jaxnn.train.fit`)
and ``fit`` raises a ``ValueError`` that says so and what to change, leaving the estimator exactly as
it was before the call.  The last finite weights are not kept: by then they are typically huge, and
their predictions overflow.  The exception is ``early_stopping=True`` after at least one healthy epoch:
the weights of the best-scoring epoch are kept (as scikit-learn's MLP keeps them), with a
``ConvergenceWarning`` that says training diverged.  A fitted estimator never holds NaN weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from jaxnn import compile_cache, engine, lbfgs
from jaxnn._builds import FallbackJit
from jaxnn._checks import MAX_SEED, UINT32_LIMIT, is_int, is_real
from jaxnn.activations import ACTIVATIONS
from jaxnn.engine import CPU_GROUP, FitResult, RunSpec, ScheduleCarry, decide_layout, member, stacked
from jaxnn.heads import (
    Head,
    ValidationScore,
    classification_head,
    encode_classes,
    multilabel_head,
    predictions,
    regression_head,
    single_class_head,
)
from jaxnn.layers import INITIALISERS, Dense, Sequential
from jaxnn.losses import LOSSES, Loss
from jaxnn.optimizers import (
    LEARNING_RATE_SCHEDULES,
    SOLVERS,
    SolverSettings,
    adaptive_rate,
    init_state,
    invscaling_rate,
    learning_rate_of,
    tunable_solver,
    with_hyperparams,
    with_learning_rate,
)
from jaxnn.train import Stopping, is_n_iter_no_change

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor", "fit_estimators"]

AUTO_BATCH_SIZE = 200  # scikit-learn's batch_size="auto": min(200, n_samples)


# --------------------------------------------------------------------------------------------------
# Hyper-parameters: checked at fit time (never in __init__, so clone and set_params stay plain).


class _Config(NamedTuple):
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
    init_factor: float = 6.0  # init='mlp': the factor of its bound (_mlp_init_factor)


MLP_INIT = "mlp"  # the estimators' default init: scikit-learn MLP's weights, drawn as it draws them
ESTIMATOR_INITIALISERS = (MLP_INIT, *INITIALISERS)


def _mlp_init_factor(activation) -> float:
    """MLP's bound factor: 2 for logistic hidden units, else 6 (a list of activations: 2 if all are logistic)."""
    names = [activation] if isinstance(activation, str) else list(activation)
    return 2.0 if names and all(name in ("logistic", "sigmoid") for name in names) else 6.0


def _require(ok: bool, name: str, expected: str, value) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _hidden_layer_sizes(value) -> tuple[int, ...]:
    sizes = (value,) if is_int(value) else value
    ok = isinstance(sizes, Sequence | np.ndarray) and all(is_int(s) and s > 0 for s in sizes)
    _require(ok, "hidden_layer_sizes", "a positive integer or a sequence of them, e.g. (100,) or (10, 5)", value)
    return tuple(int(s) for s in sizes)


def _hidden_activations(value, n_hidden: int) -> tuple[str, ...]:
    names = (value,) * n_hidden if isinstance(value, str) else value
    known = ", ".join(sorted(ACTIVATIONS))
    ok = isinstance(names, Sequence) and all(isinstance(a, str) and a in ACTIVATIONS for a in names)
    _require(ok, "activation", f"one of {known}, or a list of them (one per hidden layer)", value)
    if len(names) != n_hidden:
        raise ValueError(
            f"activation lists {len(names)} names but hidden_layer_sizes has {n_hidden} layers; "
            "give one name for all hidden layers or exactly one per hidden layer"
        )
    return tuple("sigmoid" if name == "logistic" else name for name in names)  # one network, one compiled loop


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


def _batch_size(value) -> int | None:
    if _is_auto(value):
        return AUTO_BATCH_SIZE
    _require(is_int(value) and value > 0, "batch_size", "'auto' or a positive integer", value)
    return int(value)


def _check_params(est) -> _Config:
    """Every hyper-parameter checked once, with a message that names it and says what is allowed."""
    hidden = _hidden_layer_sizes(est.hidden_layer_sizes)
    solver = est.solver
    if not isinstance(solver, optax.GradientTransformation):
        _require(
            solver in SOLVERS or _is_lbfgs(solver),
            "solver",
            "'lbfgs', 'gd', 'sgd', 'adam' or an optax.GradientTransformation",
            solver,
        )
    for name in ("learning_rate_init", "epsilon"):
        value = getattr(est, name)
        _require(is_real(value) and value > 0, name, "a positive number", value)
    for name in ("alpha", "tol", "momentum"):
        value = getattr(est, name)
        _require(is_real(value) and value >= 0, name, "a non-negative number", value)
    _require(est.momentum <= 1, "momentum", "in [0, 1]", est.momentum)
    for name in ("beta_1", "beta_2", "validation_fraction"):
        value = getattr(est, name)
        _require(is_real(value) and 0 <= value < 1, name, "a number in [0, 1)", value)
    _require(
        is_n_iter_no_change(est.n_iter_no_change),
        "n_iter_no_change",
        "a positive integer, or np.inf to never stop early",
        est.n_iter_no_change,
    )
    _require(
        isinstance(est.learning_rate, str) and est.learning_rate in LEARNING_RATE_SCHEDULES,
        "learning_rate",
        "'constant', 'invscaling' or 'adaptive'",
        est.learning_rate,
    )
    _require(is_real(est.power_t) and est.power_t >= 0, "power_t", "a non-negative number", est.power_t)
    for name in ("max_iter", "n_ensemble", "max_fun"):
        value = getattr(est, name)
        _require(is_int(value) and value > 0, name, "a positive integer", value)
    for name in ("early_stopping", "nesterovs_momentum", "warm_start", "shuffle"):
        value = getattr(est, name)
        _require(isinstance(value, bool | np.bool_), name, "True or False", value)
    _require(
        isinstance(est.init, str) and est.init in ESTIMATOR_INITIALISERS,
        "init",
        f"one of {', '.join(map(repr, ESTIMATOR_INITIALISERS))}",
        est.init,
    )
    if est.early_stopping and est.validation_fraction <= 0:
        raise ValueError("early_stopping=True needs validation_fraction > 0 (the share of data held out)")
    return _Config(
        hidden_layer_sizes=hidden,
        activations=_hidden_activations(est.activation, len(hidden)),
        solver=solver,
        alpha=float(est.alpha),
        batch_size=None if solver == "gd" else _batch_size(est.batch_size),
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
        init_factor=_mlp_init_factor(est.activation),
    )


# --------------------------------------------------------------------------------------------------
# The network's head: what the last layer computes, the loss it is trained with, how outputs are read.


OUT_ACTIVATION_NAMES = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity", "exp": "exp"}  # sklearn's


def _loss_param(value) -> str | Loss | None:
    """The ``loss`` parameter: None for ``'auto'`` (the head's default), else a loss name or object."""
    if _is_auto(value):
        return None
    if not isinstance(value, str | Loss):
        known = ", ".join(sorted(LOSSES))
        raise ValueError(f"loss must be 'auto', one of {known}, or a jaxnn Loss; got {value!r}")
    return value


class _Targets(NamedTuple):
    """Targets encoded for training, the head that fits them, and fitted attributes to set on success."""

    matrix: np.ndarray  # (n_samples, head.units)
    head: Head
    fitted: dict


def _describe(model: Sequential) -> str:
    """A network in a few words for error messages, e.g. ``10 relu → 5 relu → 3 identity (glorot)``."""
    return " → ".join(f"{layer.units} {layer.activation}" for layer in model.layers) + f" ({model.layers[0].init})"


def _network(config: _Config, head: Head) -> Sequential:
    # init='mlp' weights are drawn here with NumPy, never by model.init: its layers carry Glorot, the nearest
    # of jaxnn's initialisers (uniform weights, bound √(6/(n_in + n_out)), zero biases).
    init = "glorot" if config.init == MLP_INIT else config.init
    hidden = tuple(
        Dense(units, activation, init=init)
        for units, activation in zip(config.hidden_layer_sizes, config.activations, strict=True)
    )
    return Sequential((*hidden, Dense(head.units, head.layer_activation, init=init)))


# --------------------------------------------------------------------------------------------------
# Solvers: jaxnn.optimizers' tunable solvers, whose learning rate and L2 rate live in the optimiser state.


def _solver_settings(config: _Config) -> SolverSettings:
    return SolverSettings(
        momentum=config.momentum,
        nesterov=config.nesterovs_momentum,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
    )


def _optimizer_for(config: _Config):
    return tunable_solver(config.solver, _solver_settings(config), varying_rate=config.schedule != "constant")


def _n_iter_no_change(value) -> int | float:
    """An int, or ``math.inf`` (one compiled program for every spelling of infinity)."""
    return int(value) if is_int(value) else float(value)


def _training_rows(config: _Config, n_samples: int) -> int:
    """The rows an epoch trains on: all, or those ``train_test_split`` leaves after holding out
    ``ceil(validation_fraction · n)`` for early stopping."""
    if not config.early_stopping:
        return n_samples
    return n_samples - int(np.ceil(config.validation_fraction * n_samples))


def _schedule_values(config: _Config, samples_seen: int, samples_per_epoch: int, dtype) -> ScheduleCarry | None:
    """The runtime values of sgd's learning-rate schedule (None for a constant rate): data, not part of the
    compiled program, so a grid over ``learning_rate_init`` and ``power_t`` compiles once."""
    if config.schedule == "constant":
        return None
    values = (config.learning_rate_init, config.power_t, samples_seen, samples_per_epoch)
    return ScheduleCarry(*(np.asarray(value, dtype) for value in values))


def _continued_rate(config: _Config, previous_state, samples_seen: int, dtype) -> np.ndarray:
    """The learning rate a ``partial_fit`` continues with.  scikit-learn keeps its optimiser between calls:
    ``invscaling`` is at ``η₀ / (t + 1)^power_t`` for the ``t`` samples seen, ``adaptive`` at the rate the
    last call left; a constant rate is ``learning_rate_init`` (as it is now set)."""
    if config.schedule == "invscaling":
        return np.asarray(invscaling_rate(config.learning_rate_init, config.power_t, samples_seen), dtype)
    if config.schedule == "adaptive":
        return np.asarray(learning_rate_of(previous_state), dtype)
    return np.asarray(config.learning_rate_init, dtype)


# --------------------------------------------------------------------------------------------------
# Padding: sample counts are rounded up so that nearby sizes share compiled code.


TRAINING_ROWS = 16  # training data (and validation data) of up to this many rows share one padded size
PREDICTION_ROWS = 256  # predictions on up to this many rows share one padded size


def padded_size(n: int, *, minimum: int = TRAINING_ROWS) -> int:
    """The rows ``n`` samples are padded to: ``minimum``, or above it the smallest of eight sizes per
    doubling (…, 112, 120, 128, 144, 160, …, 256, 288, …) that holds them.

    Above ``minimum`` at most one row in eight is padding, and k-fold splits of one data set (sizes
    differing by one) mostly land on the same size.  Training pads little (``minimum=16``): every epoch
    computes on the padding rows too (iris's 112 rows padded to 256 took 45 % longer per epoch), while a
    new size costs one compilation.  Predictions run once, so they pad to at least ``PREDICTION_ROWS``:
    every small prediction (cross-validation folds, scoring) shares one compiled forward pass.
    """
    if n <= minimum:
        return minimum
    step = max(1, 1 << ((n - 1).bit_length() - 4))
    return -(-n // step) * step


def _pad_rows(array: np.ndarray, n_rows: int) -> np.ndarray:
    """``array`` with zero rows appended up to ``n_rows``."""
    padding = n_rows - array.shape[0]
    if padding == 0:
        return array
    return np.concatenate([array, np.zeros((padding, *array.shape[1:]), array.dtype)])


@partial(jax.jit, static_argnums=(0, 1))
def _outputs(model: Sequential, head: Head, params, x):
    """The network's predictions: the forward pass followed by the head's link."""
    return predictions(model.apply(params, x), head)


def _predict_outputs(model: Sequential, head: Head, coefs, intercepts, x: np.ndarray) -> np.ndarray:
    params = [{"W": w, "b": b} for w, b in zip(coefs, intercepts, strict=True)]
    with compile_cache.scoped(), jax.enable_x64(bool(x.dtype == np.float64)):
        out = _outputs(model, head, params, _pad_rows(x, padded_size(x.shape[0], minimum=PREDICTION_ROWS)))
        return np.asarray(out)[: x.shape[0]]


# --------------------------------------------------------------------------------------------------
# Randomness: one integer seed gives the jax keys (initial weights, shuffling) and the validation split.


def _seed(random_state) -> int:
    """An int ``random_state`` is the seed itself; None or a RandomState draws one (as scikit-learn)."""
    if is_int(random_state):
        _require(
            0 <= random_state <= MAX_SEED,
            "random_state",
            f"an int in the range [0, {MAX_SEED}], a numpy.random.RandomState instance or None",
            random_state,
        )
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _draw_start(model: Sequential, seed, n_features: int, dtype):
    """``init_key, shuffle_key = training_keys(seed)`` and ``model.init(init_key, n_features, dtype)``.

    ``seed`` is a ``uint32`` scalar: ``jax.random.key`` of it is the key ``training_keys`` makes from the
    Python int (the same bits).
    """
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    return model.init(init_key, n_features, dtype), shuffle_key


# One program where a fresh process used to compile (or load) four: the seed's key, its split, the unstacking
# of the two keys, and the draws.  It runs once per fit, so its compile time is what
# counts: like model.init's own program it is built without LLVM's optimisations, and also without XLA's
# fusion emitters (a third of the compile time of the iris network's draws; the weights are the same bits as
# model.init's, which tests/test_estimators.py checks for every initialiser, both float types and many seeds).
_QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
_QUICK_BUILDS = [_QUICK_COMPILE, {"xla_backend_optimization_level": 0}]  # the second for an XLA without the first's
_start_program = FallbackJit(_draw_start, _QUICK_BUILDS, static_argnums=(0, 2, 3))


def _start(model: Sequential, seed: int, n_features: int, dtype):
    """The initial parameters (``model.init``) and the shuffle key of ``seed``, as one compiled call."""
    return _start_program(model, np.uint32(seed), n_features, dtype)


def _draw_shuffle_key(seed):
    """``training_keys(seed)[1]``, the shuffle key, without drawing weights (``seed`` a ``uint32`` scalar)."""
    return jax.random.split(jax.random.key(seed))[1]


_shuffle_key_program = FallbackJit(_draw_shuffle_key, _QUICK_BUILDS)


def _mlp_initial_weights(model: Sequential, factor: float, seed: int, n_features: int, dtype):
    """scikit-learn MLP's initial weights for ``random_state=seed``, drawn exactly as its ``_init_coef``.

    Layer by layer, first ``W`` of shape ``(n_in, n_out)`` and then ``b`` of shape ``(n_out,)``, all
    ``~ U[−r, r]`` with Glorot and Bengio's bound ``r = √(factor / (n_in + n_out))`` (``factor`` 6, or 2
    for logistic hidden units: :func:`_mlp_init_factor`), from one ``numpy.random.RandomState(seed)`` in
    float64, then cast to the data's dtype.  So ``random_state=seed`` starts from the very numbers
    ``MLPClassifier``/``MLPRegressor(random_state=seed)`` start from.
    """
    draws = np.random.RandomState(seed)
    params, n_in = [], n_features
    for layer in model.layers:
        bound = np.sqrt(factor / (n_in + layer.units))
        weights = draws.uniform(-bound, bound, (n_in, layer.units))
        biases = draws.uniform(-bound, bound, layer.units)
        params.append({"W": weights.astype(dtype), "b": biases.astype(dtype)})
        n_in = layer.units
    return params


def _as_numpy(tree):
    return jax.tree.map(np.asarray, tree)


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda a: np.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else a, tree)


# --------------------------------------------------------------------------------------------------
# Training runs.  A fit is checked (_Setup), becomes one run per network (_Plan), and its runs train alone, or
# together with runs of the same compiled configuration as one population (jaxnn.population.fit_many).


class _Setup(NamedTuple):
    """One fit's checked inputs, before any JAX work."""

    config: _Config
    X: np.ndarray
    y: np.ndarray  # as validated: the early-stopping split stratifies on it
    weight: np.ndarray
    targets: _Targets
    model: Sequential
    seed: int  # random_state's seed (ensemble members: see _ensemble_seeds)
    continuing: bool  # warm_start or partial_fit on a fitted estimator
    incremental: bool  # partial_fit


class _Plan(NamedTuple):
    """One network's training run, ready for jaxnn's loop; the arrays are unpadded."""

    spec: RunSpec  # the run alone: a full batch has batch_size = its padded row count
    solver: str | optax.GradientTransformation  # solver and settings: what fit_many builds its optimiser from
    settings: SolverSettings
    full_batch: bool
    params: Any
    opt_state: Any
    key: jax.Array  # the shuffle key
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None  # x_val, and y_val with the weights as a last column
    start_epoch: int
    epochs: int
    alone: bool  # a continued fit runs by itself
    schedule: ScheduleCarry | None = None  # the learning-rate schedule's values (sgd's invscaling, adaptive)
    watched: tuple[float, int] | None = None  # a warm_start fit: the stopping rule's best value and count so far


SINGLE_NETWORK_ATTRIBUTES = (
    "coefs_",
    "intercepts_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "t_",
    "_optimizer_state",
)
ENSEMBLE_ATTRIBUTES = (
    "ensemble_seeds_",
    "ensemble_coefs_",
    "ensemble_intercepts_",
    "ensemble_n_iter_",
    "ensemble_loss_curves_",
    "ensemble_validation_scores_",
)
POPULATION_BYTES = 2**30  # per-member training data stacked for one population call, at most (then several)


def _ensemble_seeds(seed: int, n_ensemble: int) -> list[int]:
    """Member k's seed, ``(seed + k) mod 2**32``: member 0 is the network a single fit trains, and member k
    the network ``random_state=seed + k`` trains alone (``jax.random.key`` streams of different seeds are
    independent)."""
    return [(seed + k) % UINT32_LIMIT for k in range(n_ensemble)]


def _precision(dtype):
    """float64 data train in float64, inside ``jax.enable_x64`` for this call only."""
    return jax.enable_x64(bool(dtype == np.float64))


def _print_progress(losses, scores, *, first_epoch: int) -> None:
    for i, value in enumerate(losses):
        print(f"Iteration {first_epoch + i}, loss = {value:.8f}")
        if scores is not None:
            print(f"Validation score: {scores[i]:f}")


def _population_key(plan: _Plan):
    """What runs must share to train as one population: the compiled configuration (the spec, but for the
    row count of a full batch, which padding to a common size makes equal), dtype, input width and epochs.

    None for a run that goes alone: a continued fit, or a spec that ``fit_many`` would not rebuild from the
    solver and its settings (then member i would not be run i)."""
    spec = plan.spec
    rebuilt = RunSpec(
        spec.model,
        spec.loss,
        tunable_solver(plan.solver, plan.settings, varying_rate=spec.schedule != "constant"),
        spec.batch_size,
        stopping=spec.stopping,
        score=spec.score,
        layout=spec.layout,
        schedule=spec.schedule,
        shuffle=spec.shuffle,
    )
    if plan.alone or rebuilt != spec:
        return None
    static = spec._replace(batch_size=0) if plan.full_batch else spec
    return static, plan.x.dtype, plan.x.shape[1], plan.start_epoch, plan.epochs


def _train_plans(plans: list[_Plan]) -> list[FitResult | Exception]:
    """Each plan's FitResult (or the exception its run raised), in order: plans of one population key train
    together, the others alone."""
    groups: dict = {}
    for index, plan in enumerate(plans):
        key = _population_key(plan)
        groups.setdefault(("alone", index) if key is None else key, []).append(index)
    results: list = [None] * len(plans)
    for indices in groups.values():
        group = [plans[i] for i in indices]
        with _precision(group[0].x.dtype):
            trained = _train_together(group) if len(group) > 1 else [_run_captured(group[0])]
        for index, result in zip(indices, trained, strict=True):
            results[index] = result
    return results


def _train_together(plans: list[_Plan]) -> list[FitResult | Exception]:
    """Plans of one population key as populations of at most ``_members_per_call`` members; a population
    the device cannot run (e.g. out of memory) runs its members one by one."""
    size = _members_per_call(plans)
    results = []
    for first in range(0, len(plans), size):
        part = plans[first : first + size]
        if len(part) == 1:
            results.append(_run_captured(part[0]))
            continue
        try:
            results.extend(_train_population(part))
        except jax.errors.JaxRuntimeError:
            results.extend(_run_captured(plan) for plan in part)
    return results


def _members_per_call(plans: list[_Plan]) -> int:
    """All members, unless their stacked training data pass ``POPULATION_BYTES``: then as many as fit, in
    whole groups of ``CPU_GROUP`` (the CPU's compiled group size, so no new program is built)."""
    rows = max(padded_size(plan.x.shape[0]) for plan in plans)
    first = plans[0]
    per_member = rows * (first.x.shape[1] + first.y.shape[1] + 1) * first.x.dtype.itemsize
    fitting = POPULATION_BYTES // per_member
    if fitting >= len(plans):
        return len(plans)
    return max(CPU_GROUP, fitting // CPU_GROUP * CPU_GROUP)


def _run_captured(plan: _Plan) -> FitResult | Exception:
    try:
        return _run_alone(plan)
    except Exception as error:  # its fit raises it (fit) or returns it (fit_estimators)
        return error


def _run_alone(plan: _Plan) -> FitResult:
    """The run by itself on data padded to :func:`padded_size` rows (``jaxnn._loop.run``, the door
    ``jaxnn.fit`` uses; the arrays were checked by ``validate_data``, so not a second time)."""
    rows = padded_size(plan.x.shape[0])
    best, no_improvement = plan.watched or (None, 0)
    x_val = y_val = None
    if plan.validation is not None:
        val_rows = padded_size(plan.validation[0].shape[0])
        x_val, y_val = (_pad_rows(array, val_rows) for array in plan.validation)
    return engine.train_one(
        plan.spec,
        params=plan.params,
        opt_state=plan.opt_state,
        x=_pad_rows(plan.x, rows),
        y=_pad_rows(plan.y, rows),
        weight=_pad_rows(plan.weight, rows),
        key=plan.key,
        start_epoch=plan.start_epoch,
        epochs=plan.epochs,
        x_val=x_val,
        y_val=y_val,
        schedule=plan.schedule,
        best=best,
        no_improvement=no_improvement,
    )


def _shared_or_stacked(arrays: list[np.ndarray]) -> np.ndarray:
    """The members' arrays: one array when all are equal (an ensemble's inputs: the members then share the
    first layer's product and its memory), else stacked along a leading member axis."""
    first = arrays[0]
    if all(array is first or np.array_equal(array, first) for array in arrays[1:]):
        return first
    return np.stack(arrays)


def _train_population(plans: list[_Plan]) -> list[FitResult]:
    """Runs of one population key trained as one population by :func:`jaxnn.population.fit_many`.

    Member i is run i alone up to float rounding (a batched product may add in another order): its rows are
    padded with rows of weight 0 up to the largest padded row count of the members, which changes nothing
    — a padding row adds 0 to the loss and its gradient, a batch of padding only is skipped, and an epoch's
    minibatches put the padding behind the real rows, whose order does not depend on how much padding
    follows (``jaxnn._loop.epoch_batches``).  Its weights, learning rate, L2 rate, shuffle key, data and
    validation data are its own.
    """
    first = plans[0]
    rows = max(padded_size(plan.x.shape[0]) for plan in plans)

    def members(field: str, n_rows: int, index: int | None = None) -> np.ndarray:
        """The members' arrays padded to ``n_rows`` and stacked; only the inputs are shared when equal (a
        member axis on every other array keeps the compiled program independent of such coincidences)."""
        arrays = [getattr(plan, field) if index is None else getattr(plan, field)[index] for plan in plans]
        padded = [_pad_rows(array, n_rows) for array in arrays]
        return _shared_or_stacked(padded) if field == "x" else np.stack(padded)

    x_val = y_val = np.zeros((0, 0), first.x.dtype)
    if first.validation is not None:
        val_rows = max(padded_size(plan.validation[0].shape[0]) for plan in plans)
        x_val, y_val = members("validation", val_rows, 0), members("validation", val_rows, 1)
    keys = np.stack([np.asarray(jax.random.key_data(plan.key)) for plan in plans])
    x = members("x", rows)
    spec = first.spec._replace(batch_size=rows if first.full_batch else min(first.spec.batch_size, rows))
    population = engine.train(
        spec,
        engine.Members(
            params=stacked([plan.params for plan in plans]),
            opt_state=stacked([plan.opt_state for plan in plans]),
            keys=jax.random.wrap_key_data(keys),
            schedule=None if first.schedule is None else stacked([plan.schedule for plan in plans]),
        ),
        engine.Data(x, members("y", rows), members("weight", rows), x_val, y_val),
        axes=engine.Data(None if x.ndim == 2 else 0, 0, 0, *((None, None) if first.validation is None else (0, 0))),
        start_epoch=first.start_epoch,
        epochs=first.epochs,
    )
    population = _as_numpy(population)
    return [member(population, i) for i in range(len(plans))]


# --------------------------------------------------------------------------------------------------
# What scikit-learn's MLP also takes: sparse X, multilabel y, a single class, counts for loss='poisson'.


SPARSE_FORMATS = ("csr", "csc")  # validate_data converts every other scipy.sparse matrix or array to CSR
DENSE_COPY_LIMIT_BYTES = 2**30  # a sparse X is trained on (and predicted from) as a dense copy of at most 1 GiB
SOLVERS_WITHOUT_PARTIAL_FIT = ("lbfgs",)  # scikit-learn's MLP: partial_fit only for the solvers that take steps


def _densified(X):
    """A sparse ``X`` as the dense array the compiled network multiplies (dense ``X`` is returned as it is).

    The whole copy is made at once when it takes at most ``DENSE_COPY_LIMIT_BYTES`` (1 GiB); a larger one is
    a ValueError that says what to do, rather than an allocation that may exhaust the memory.
    """
    if not scipy.sparse.issparse(X):
        return X
    n_bytes = X.shape[0] * X.shape[1] * X.dtype.itemsize
    if n_bytes > DENSE_COPY_LIMIT_BYTES:
        raise ValueError(
            f"sparse X of shape {X.shape} ({X.dtype}) would take {n_bytes / 2**30:.1f} GiB as the dense array the "
            f"network trains and predicts on, more than the {DENSE_COPY_LIMIT_BYTES / 2**30:g} GiB allowed; "
            "reduce the features first (e.g. sklearn.decomposition.TruncatedSVD or feature selection), pass "
            "float32 data, or predict on fewer rows at a time"
        )
    return X.toarray()


def _class_head(loss, n_classes: int) -> Head:
    """The head of ``n_classes`` classes; a single class gets scikit-learn's one-output head."""
    return single_class_head(loss) if n_classes == 1 else classification_head(loss, n_classes)


def _multilabel_targets(y: np.ndarray, loss, previous: Head | None) -> _Targets:
    """A multilabel indicator matrix ``y`` (n_samples, L) as targets of L sigmoid outputs; ``classes_`` is
    ``arange(L)``, as scikit-learn's ``LabelBinarizer`` sets it.  ``previous``: the head of a fit this one
    continues (warm_start, partial_fit)."""
    n_labels = y.shape[1]
    if previous is not None and not (previous.multilabel and previous.units == n_labels):
        before = f"{previous.units} labels" if previous.multilabel else "one label per sample"
        raise ValueError(
            f"y is a multilabel indicator matrix of {n_labels} labels but the network was fitted for {before}; "
            "refit from scratch (warm_start=False) to change the targets"
        )
    head = multilabel_head(loss, n_labels)
    return _Targets(np.asarray(y, dtype=float), head, {"classes_": np.arange(n_labels)})


def _same_classes_for_warm_start(known: np.ndarray, y: np.ndarray) -> None:
    """A warm-started ``fit`` must see exactly the classes of the fit it continues (scikit-learn's rule and
    message, with jaxnn's advice after it)."""
    labels = np.unique(y)
    if set(labels.tolist()) != set(known.tolist()):
        raise ValueError(
            "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
            f"Previously got {known}, `y` has {labels}; refit with warm_start=False to change the classes"
        )


def _check_counts(y: np.ndarray, head: Head, loss_param) -> None:
    """A loss for counts (``poisson``) needs ``y >= 0``."""
    if head.loss.nonnegative_targets and np.any(y < 0):
        raise ValueError(
            f"loss={loss_param!r} models counts and needs y >= 0, but y has negative values (the smallest is "
            f"{np.min(y):g}); use loss='squared_error' for targets of any sign"
        )


def _initial_weights(config: _Config, model: Sequential, seed: int, n_features: int, dtype, *, with_key=True):
    """The initial weights of ``seed`` and, ``with_key``, its shuffle key (else None).

    ``init='mlp'`` draws scikit-learn's MLP weights with NumPy (:func:`_mlp_initial_weights`); jaxnn's
    initialisers draw with ``model.init`` in float32 whatever the data's float type, then cast.  Either
    way float32 and float64 data start from the same network (up to rounding) and fit the same model,
    as scikit-learn's MLP does (it draws in float64 and casts)."""
    if config.init == MLP_INIT:
        params = _mlp_initial_weights(model, config.init_factor, seed, n_features, dtype)
        return params, _shuffle_key_program(np.uint32(seed)) if with_key else None
    params, shuffle_key = _start(model, seed, n_features, np.dtype(np.float32))
    if np.dtype(dtype) != np.float32:
        params = _cast_floats(_as_numpy(params), dtype)
    return params, shuffle_key if with_key else None


def _has_partial_fit(estimator) -> bool:
    """``partial_fit`` exists unless the solver takes no steps (scikit-learn's ``available_if`` rule)."""
    solver = estimator.solver
    if isinstance(solver, str) and solver in SOLVERS_WITHOUT_PARTIAL_FIT:
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {solver} is not stochastic; use fit, or a "
            "solver that takes steps ('sgd', 'adam', 'gd')"
        )
    return True


def _is_lbfgs(solver) -> bool:
    return isinstance(solver, str) and solver == "lbfgs"


# --------------------------------------------------------------------------------------------------
# The estimators.


def _best_epoch_kept(config: _Config, result) -> bool:
    """Whether a diverged run still has trained weights to keep: with ``early_stopping`` those of the
    best-scoring healthy epoch (as scikit-learn's MLP, which then keeps ``_best_coefs``); without it, or
    when the very first epoch diverged, there are none and the fit fails."""
    return config.early_stopping and int(result.n_epochs) >= 1


class _BaseNeuralNet(BaseEstimator):
    """What the classifier and the regressor share: parameters, training, attributes."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.01,
        power_t=0.5,
        max_iter=500,
        shuffle=True,
        tol=1e-4,
        n_iter_no_change=10,
        max_fun=15000,
        early_stopping=False,
        validation_fraction=0.1,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        init="mlp",
        loss="auto",
        random_state=None,
        warm_start=False,
        verbose=False,
        n_ensemble=1,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.init = init
        self.loss = loss
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.n_ensemble = n_ensemble

    # Subclasses say how targets are checked and encoded (and so which head they train) and how to stratify.
    def _validate_targets(self, X, y, *, reset: bool):
        raise NotImplementedError

    def _encode_targets(self, y, weight, *, continuing: bool, incremental: bool, classes=None) -> _Targets:
        raise NotImplementedError

    def _stratify(self, y, targets):
        """What the early-stopping split stratifies on (None: a plain random split)."""
        return None

    def _divergence_advice(self) -> str:
        """What the divergence message adds after its advice on learning_rate_init and X."""
        return ""

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_model")

    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n_samples, n_features) and targets ``y``; returns ``self``.

        ``sample_weight`` (n_samples,) weighs each sample's loss.  Trains for at most ``max_iter``
        epochs, fewer when the stopping rule (``tol``, ``n_iter_no_change``) fires.  With
        ``warm_start=True`` a fitted estimator continues from its current weights.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, *, incremental: bool, classes=None):
        setup = self._setup(X, y, sample_weight, incremental=incremental, classes=classes)
        if _is_lbfgs(setup.config.solver):
            return self._fit_lbfgs(setup)
        # The compilation cache is on for this call only (jaxnn.compile_cache.scoped: the user's settings win
        # and come back afterwards); float64 input trains in float64, inside enable_x64 for this call only.
        with compile_cache.scoped(), _precision(setup.X.dtype):
            results = _train_plans(self._plans(setup))
        return self._finish(setup, results)

    def _fit_lbfgs(self, setup: _Setup) -> _BaseNeuralNet:
        """``solver='lbfgs'``: scikit-learn's full-batch L-BFGS (:mod:`jaxnn.lbfgs`, one compiled loop) instead
        of the epoch loop.  It minimises the full-batch objective, penalty included, from the initial (or, with
        ``warm_start``, the current) weights: at most ``max_iter`` iterations and ``max_fun`` evaluations, until
        ``max |∂L/∂θ| ≤ tol`` or the relative reduction of ``L`` falls to scipy's ``ftol``.  Like scikit-learn's
        MLP it ignores ``early_stopping`` (and ``batch_size``, the learning rates, momentum and betas)."""
        config = setup.config
        if config.n_ensemble > 1:
            raise ValueError(
                f"solver='lbfgs' trains one network, but n_ensemble={config.n_ensemble}; set n_ensemble=1 or use a "
                "solver that takes steps ('adam', 'sgd', 'gd')"
            )
        X, dtype = setup.X, setup.X.dtype
        rows = padded_size(X.shape[0])
        spec = lbfgs.LbfgsSpec(setup.model, setup.targets.head.loss, layout=decide_layout())
        with compile_cache.scoped(), _precision(dtype):
            if setup.continuing:
                params = [{"W": np.asarray(w, dtype), "b": np.asarray(b, dtype)} for w, b in self._params_pairs()]
            else:
                params, _ = _initial_weights(config, setup.model, setup.seed, X.shape[1], dtype, with_key=False)
            result = lbfgs.run(
                spec,
                params=params,
                x=_pad_rows(X, rows),
                y=_pad_rows(setup.targets.matrix.astype(dtype, copy=False), rows),
                weight=_pad_rows(setup.weight, rows),
                alpha=config.alpha,
                max_iter=config.max_iter,
                max_fun=int(self.max_fun),
                gtol=config.stopping.tol,
            )
        if result.diverged:
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need to "
                "be preprocessed. jaxnn: the loss or its gradient is infinite or NaN at the starting weights of "
                "L-BFGS. The estimator is left as it was before this fit. Standardise X "
                f"(sklearn.preprocessing.StandardScaler){self._divergence_advice()}"
            )
        self._store_lbfgs(setup, result)
        for name, value in setup.targets.fitted.items():
            setattr(self, name, value)
        message = lbfgs.convergence_message(result, config.max_iter)
        if message is not None:
            warnings.warn(message, ConvergenceWarning, stacklevel=4)  # the caller of fit: ← _fit ← fit
        return self

    def _store_lbfgs(self, setup: _Setup, result: lbfgs.LbfgsResult) -> None:
        """scikit-learn's attributes of an L-BFGS fit: ``n_iter_`` its iterations, ``loss_`` the objective at the
        result (scipy's ``fun``, penalty included); ``loss_curve_`` (jaxnn's addition: scikit-learn records none
        for lbfgs) gains the objective after each iteration; ``t_`` counts no samples (scikit-learn's lbfgs
        leaves it at 0); no validation scores."""
        self._forget((*ENSEMBLE_ATTRIBUTES, "_optimizer_state"))
        params = _as_numpy(result.params)
        self.coefs_ = [p["W"] for p in params]
        self.intercepts_ = [p["b"] for p in params]
        self._store_network(setup.config, setup.model, setup.targets.head)
        losses = result.loss_curve.tolist()
        previous = self.loss_curve_ if setup.continuing else []
        self.n_iter_ = result.n_iter
        self.loss_ = result.loss
        self.loss_curve_ = [*previous, *losses]
        self.best_loss_ = min(self.loss_curve_, default=result.loss)
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self.t_ = getattr(self, "t_", 0) if setup.continuing else 0
        if self.verbose:
            _print_progress(losses, None, first_epoch=len(previous) + 1)

    def _setup(self, X, y, sample_weight, *, incremental: bool, classes=None) -> _Setup:
        """Every check of a fit, before any JAX work: hyper-parameters, data, targets, network and seed."""
        config = _check_params(self)
        if incremental and config.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True; use fit, or set early_stopping=False")
        if incremental and config.n_ensemble > 1:
            raise ValueError(
                f"partial_fit trains one network, but n_ensemble={config.n_ensemble}; use fit (which trains the "
                "members together) or set n_ensemble=1"
            )
        continuing = self.__sklearn_is_fitted__() and (incremental or self.warm_start)
        if continuing and (config.n_ensemble > 1 or hasattr(self, "ensemble_coefs_")):
            raise ValueError(
                "warm_start and partial_fit continue the training of one network, but this is an ensemble "
                "(n_ensemble > 1 now or in the last fit); refit from scratch with warm_start=False"
            )
        X, y = self._validate_targets(X, y, reset=not continuing)
        weight = self._checked_weight(sample_weight, X)
        targets = self._encode_targets(y, weight, continuing=continuing, incremental=incremental, classes=classes)
        model = _network(config, targets.head)
        if continuing and model != self._model:
            raise ValueError(
                f"warm_start and partial_fit continue the previous network ({_describe(self._model)}), but the "
                f"parameters now ask for {_describe(model)}; refit with warm_start=False to change the network"
            )
        return _Setup(config, X, y, weight, targets, model, _seed(self.random_state), continuing, incremental)

    @staticmethod
    def _checked_weight(sample_weight, X) -> np.ndarray:
        weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        if not weight.sum() > 0:
            raise ValueError("sample_weight is zero for every sample: at least one weight must be non-zero")
        return weight

    def _plans(self, setup: _Setup) -> list[_Plan]:
        """The training runs of a fit: one per network, ``n_ensemble`` of them (see :func:`_ensemble_seeds`)."""
        config = setup.config
        plans = [self._plan(setup, seed) for seed in _ensemble_seeds(setup.seed, config.n_ensemble)]
        n = plans[0].x.shape[0]
        if config.batch_size is not None and config.batch_size > n and not _is_auto(self.batch_size):
            warnings.warn(
                f"batch_size={config.batch_size} is larger than the {n} training samples; using {n}", stacklevel=4
            )
        if plans[0].start_epoch + plans[0].epochs >= UINT32_LIMIT:
            raise ValueError(
                f"{plans[0].start_epoch} epochs trained and max_iter={plans[0].epochs} more pass the 32-bit epoch "
                "counter; refit with warm_start=False or lower max_iter"
            )
        return plans

    def _plan(self, setup: _Setup, seed: int) -> _Plan:
        """The run of the network of ``seed``: its initial weights and shuffle key, its share of the data (the
        early-stopping split depends on the seed), its optimiser state and the spec of the compiled loop.

        The data stay unpadded: :func:`_run_alone` pads them (rows of weight 0, see :func:`padded_size`), a
        population pads every member to the largest of its members' padded sizes.
        """
        config, X, head = setup.config, setup.X, setup.targets.head
        dtype = X.dtype
        params, shuffle_key = _initial_weights(config, setup.model, seed, X.shape[1], dtype)
        if setup.continuing:
            params = [{"W": np.asarray(w, dtype), "b": np.asarray(b, dtype)} for w, b in self._params_pairs()]

        x_train, t_train, w_train = X, setup.targets.matrix, setup.weight
        validation = None
        if config.early_stopping:
            x_train, t_train, w_train, validation = self._split_validation(config, X, t_train, w_train, setup.y, seed)

        n = x_train.shape[0]
        batch = n if config.batch_size is None else min(config.batch_size, n)
        optimizer = _optimizer_for(config)
        batch_weight = float(w_train.sum()) * batch / n
        # Host scalars: jnp conversions would each be a small program to compile in a fresh process.
        learning_rate = np.asarray(config.learning_rate_init, dtype)
        l2_rate = np.asarray(config.alpha / batch_weight, dtype)
        samples_seen = getattr(self, "t_", 0) if setup.continuing else 0
        # A network fitted by lbfgs has no step-taking optimiser state: partial_fit starts a fresh one (as MLP).
        if setup.incremental and setup.continuing and hasattr(self, "_optimizer_state"):
            previous = _cast_floats(self._optimizer_state, dtype)
            learning_rate = _continued_rate(config, previous, samples_seen, dtype)
            opt_state = with_hyperparams(previous, learning_rate, l2_rate)
        else:
            opt_state = init_state(optimizer, params, learning_rate, l2_rate)
        spec = RunSpec(
            setup.model,
            head.loss,
            optimizer,
            batch_size=padded_size(n) if batch >= n else batch,
            stopping=None if setup.incremental else config.stopping,
            score=None if validation is None else ValidationScore(head),
            layout=decide_layout(),
            schedule=config.schedule,
            shuffle=config.shuffle or batch >= n,  # a full batch has no order: one program either way
        )
        return _Plan(
            spec=spec,
            solver=config.solver,
            settings=_solver_settings(config),
            full_batch=batch >= n,
            params=params,
            opt_state=opt_state,
            key=shuffle_key,
            x=x_train,
            y=t_train.astype(dtype, copy=False),
            weight=w_train,
            validation=validation,
            start_epoch=len(self.loss_curve_) if setup.continuing else 0,
            epochs=1 if setup.incremental else config.max_iter,
            alone=setup.continuing or setup.incremental,
            schedule=_schedule_values(config, samples_seen, n, dtype),
            watched=self._watched_so_far(config) if setup.continuing and not setup.incremental else None,
        )

    def _watched_so_far(self, config: _Config) -> tuple[float, int] | None:
        """What a ``warm_start`` fit's stopping rule continues, as MLP's: the best training loss (with
        ``early_stopping``, validation score, whose weights are the current ones) and the count of epochs
        without improvement the last fit ended with; None when the last fit watched the other value.

        A count past ``n_iter_no_change`` (the last fit stopped on it) enters as ``n_iter_no_change``: MLP
        checks the count only after an epoch, so it trains one more and stops unless that one improves,
        and so does the loop from that count."""
        best = self.best_validation_score_ if config.early_stopping else self.best_loss_
        if best is None or not np.isfinite(best):
            return None
        count = getattr(self, "_no_improvement_count", 0)
        return float(best), int(min(count, config.stopping.n_iter_no_change))

    def _split_validation(self, config, X, targets, weight, y, seed):
        """Hold out ``validation_fraction`` of the data (stratified for classes), as scikit-learn's MLP; the
        validation targets carry the sample weights as a last column (for ``ValidationScore``)."""
        x_train, x_val, t_train, t_val, w_train, w_val = train_test_split(
            X,
            targets,
            weight,
            test_size=config.validation_fraction,
            random_state=np.random.RandomState(seed % (2**32)),
            stratify=self._stratify(y, targets),
        )
        if x_val.shape[0] < 2 or not w_val.sum() > 0:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset. "
                f"It has {x_val.shape[0]} samples (weight {w_val.sum():g}); early_stopping needs at least 2 with "
                "non-zero weight"
            )
        if not w_train.sum() > 0:
            raise ValueError("every training sample left after the validation split has weight zero")
        val_targets = np.concatenate([t_val, w_val[:, None]], axis=1).astype(X.dtype, copy=False)
        return x_train, t_train, w_train, (x_val, val_targets)

    def _finish(self, setup: _Setup, results: list) -> _BaseNeuralNet:
        """Store the trained networks in the fitted attributes and return ``self``; a run that failed or
        diverged is raised instead, and the estimator is left as it was."""
        for result in results:
            if isinstance(result, Exception):
                raise result
        config = setup.config
        seeds = _ensemble_seeds(setup.seed, config.n_ensemble)
        for seed, result in zip(seeds, results, strict=True):
            if bool(result.diverged) and _best_epoch_kept(config, result):
                warnings.warn(
                    f"{type(self).__name__}: training diverged in epoch {int(result.n_epochs) + 1} (the loss or the "
                    "weights became infinite or NaN); early_stopping keeps the weights of the epoch with the best "
                    "validation score. Lower learning_rate_init, or standardise X",
                    ConvergenceWarning,
                    stacklevel=4,
                )
            elif bool(result.diverged):
                which = f" (ensemble member of seed {seed})" if config.n_ensemble > 1 else ""
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data may contain large values and "
                    f"need to be preprocessed. jaxnn: training diverged in epoch {int(result.n_epochs) + 1}{which}: "
                    "the loss or the weights became "
                    f"infinite or NaN (learning_rate_init={config.learning_rate_init:g}). The estimator is left as "
                    "it was before this fit. Lower learning_rate_init, or standardise X "
                    f"(sklearn.preprocessing.StandardScaler){self._divergence_advice()}"
                )
        model, head = setup.model, setup.targets.head
        if config.n_ensemble == 1:
            validation_scores = results[0].validation_scores if config.early_stopping else None
            self._store(
                config,
                model,
                head,
                results[0],
                validation_scores,
                continuing=setup.continuing,
                incremental=setup.incremental,
            )
            self._store_schedule(setup, results[0])
        else:
            self._store_ensemble(config, model, head, results, seeds)
        for name, value in setup.targets.fitted.items():
            setattr(self, name, value)
        return self

    def _params_pairs(self):
        return zip(self.coefs_, self.intercepts_, strict=True)

    def _forget(self, names: tuple[str, ...]) -> None:
        """Remove fitted attributes a previous fit left that do not describe this one."""
        for name in names:
            self.__dict__.pop(name, None)

    def _store_network(self, config, model, head) -> None:
        """The attributes that describe the network (every ensemble member's alike)."""
        self._model = model
        self._head = head
        self.out_activation_ = OUT_ACTIVATION_NAMES[head.output_activation]
        self.n_outputs_ = head.units
        self.n_layers_ = len(config.hidden_layer_sizes) + 2

    def _store(self, config, model, head, result, validation_scores, *, continuing, incremental):
        """Copy the FitResult into scikit-learn's attributes (NumPy, so the estimator pickles) and warn."""
        self._forget(ENSEMBLE_ATTRIBUTES)
        n_epochs = int(result.n_epochs)
        losses = np.asarray(result.history)[:n_epochs].tolist()
        params = _as_numpy(result.params)
        self.coefs_ = [p["W"] for p in params]
        self.intercepts_ = [p["b"] for p in params]
        self._optimizer_state = _as_numpy(result.opt_state)
        self._store_network(config, model, head)
        self.n_iter_ = n_epochs
        if not continuing:
            self.loss_curve_ = []
            self.best_loss_ = None if config.early_stopping else np.inf
            self.validation_scores_ = [] if config.early_stopping else None
            self.best_validation_score_ = -np.inf if config.early_stopping else None
        self.loss_curve_ = [*self.loss_curve_, *losses]
        if losses:
            self.loss_ = losses[-1]
        if self.best_loss_ is not None and losses:
            self.best_loss_ = min(self.best_loss_, *losses)
        if validation_scores is not None:
            scores = [float(v) for v in np.asarray(validation_scores)[:n_epochs]]
            self.validation_scores_ = [*(self.validation_scores_ or []), *scores]
            self.best_validation_score_ = max(self.validation_scores_, default=-np.inf)
        if self.verbose:
            self._report(losses, validation_scores, n_epochs)
        if not incremental and n_epochs == config.max_iter and not result.stopped:
            self._warn_not_converged(config)

    def _store_schedule(self, setup: _Setup, result) -> None:
        """``t_``, the samples trained on so far (scikit-learn's: every training row once per epoch, counted on
        through ``warm_start`` and ``partial_fit``), and ``partial_fit``'s count of calls in a row without
        improvement by ``tol``, continuing the count a ``fit`` ended with: with ``learning_rate='adaptive'`` a
        count past ``n_iter_no_change`` divides the rate by 5 for the next call (scikit-learn's ``partial_fit``;
        within a ``fit`` the training loop keeps the count itself, starting at 0)."""
        config = setup.config
        seen = getattr(self, "t_", 0) if setup.continuing else 0
        self.t_ = seen + int(result.n_epochs) * _training_rows(config, setup.X.shape[0])
        if not setup.incremental:
            self._no_improvement_count = int(result.no_improvement)
            return
        count = getattr(self, "_no_improvement_count", 0) if setup.continuing else 0
        best_before = min(self.loss_curve_[:-1], default=np.inf)
        count = count + 1 if self.loss_curve_[-1] > best_before - config.stopping.tol else 0
        if config.schedule == "adaptive":
            plateau = count > config.stopping.n_iter_no_change
            rate, lowered = adaptive_rate(learning_rate_of(self._optimizer_state), plateau, where=np.where)
            if lowered:
                self._optimizer_state = _as_numpy(with_learning_rate(self._optimizer_state, rate))
                count = 0
        self._no_improvement_count = count

    def _store_ensemble(self, config, model, head, results, seeds) -> None:
        """An ensemble's attributes: each member's weights along a leading member axis, its epochs and curves;
        the single-network attributes (``coefs_``, ``loss_curve_``, ``n_iter_``, …) are not set."""
        self._forget(SINGLE_NETWORK_ATTRIBUTES)
        self._store_network(config, model, head)
        params = [_as_numpy(result.params) for result in results]
        n_epochs = [int(result.n_epochs) for result in results]
        self.ensemble_seeds_ = np.asarray(seeds, dtype=np.int64)
        self.ensemble_coefs_ = [np.stack([p[layer]["W"] for p in params]) for layer in range(len(params[0]))]
        self.ensemble_intercepts_ = [np.stack([p[layer]["b"] for p in params]) for layer in range(len(params[0]))]
        self.ensemble_n_iter_ = np.asarray(n_epochs)
        self.ensemble_loss_curves_ = [
            np.asarray(result.history)[:n].tolist() for result, n in zip(results, n_epochs, strict=True)
        ]
        self.ensemble_validation_scores_ = None
        if config.early_stopping:
            self.ensemble_validation_scores_ = [
                [float(v) for v in np.asarray(result.validation_scores)[:n]]
                for result, n in zip(results, n_epochs, strict=True)
            ]
        if self.verbose:
            for k, seed in enumerate(seeds):
                print(f"Ensemble member {k} (seed {seed}):")
                scores = None if self.ensemble_validation_scores_ is None else self.ensemble_validation_scores_[k]
                _print_progress(self.ensemble_loss_curves_[k], scores, first_epoch=1)
        reached = sum(n == config.max_iter and not result.stopped for n, result in zip(n_epochs, results, strict=True))
        if reached:
            self._warn_not_converged(config, detail=f" ({reached} of the {config.n_ensemble} ensemble members)")

    def _warn_not_converged(self, config, *, detail: str = "") -> None:
        """The ConvergenceWarning of a fit that ran all ``max_iter`` epochs (``detail``: which members did)."""
        warnings.warn(
            # scikit-learn's text first, so that filters and pytest.warns(match=...) written for MLP match
            f"Stochastic Optimizer: Maximum iterations ({config.max_iter}) reached and the optimization hasn't "
            f"converged yet. {type(self).__name__}: reached max_iter={config.max_iter} epochs before the "
            f"{'validation score' if config.early_stopping else 'training loss'} stopped improving by tol; "
            f"increase max_iter or learning_rate_init{detail}",
            ConvergenceWarning,
            stacklevel=6,  # the caller of fit: _warn_not_converged ← _store ← _finish ← _fit ← fit
        )

    def _report(self, losses, validation_scores, n_epochs):
        """``verbose``: the per-epoch progress, printed once the compiled loop has finished."""
        scores = None if validation_scores is None else np.asarray(validation_scores)[:n_epochs]
        _print_progress(losses, scores, first_epoch=len(self.loss_curve_) - len(losses) + 1)

    def _member_outputs(self, X) -> np.ndarray:
        """Checked input through each network and its link: ``(n_members, n_samples, n_outputs)``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=SPARSE_FORMATS, dtype=(np.float64, np.float32), reset=False)
        X = _densified(X)
        if hasattr(self, "ensemble_coefs_"):
            members = [
                ([w[k] for w in self.ensemble_coefs_], [b[k] for b in self.ensemble_intercepts_])
                for k in range(len(self.ensemble_seeds_))
            ]
        else:
            members = [(self.coefs_, self.intercepts_)]
        return np.stack([_predict_outputs(self._model, self._head, w, b, X) for w, b in members])

    def _forward(self, X) -> np.ndarray:
        """Checked input through the network and its link (probabilities for a classifier); an ensemble's
        members' outputs averaged."""
        outputs = self._member_outputs(X)
        return outputs[0] if outputs.shape[0] == 1 else outputs.mean(axis=0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified whole, up to DENSE_COPY_LIMIT_BYTES
        return tags


def _class_probabilities(outputs: np.ndarray, head: Head) -> np.ndarray:
    """The head's outputs as one probability per class (per label for multilabel targets): a sigmoid's
    column ``p`` of two classes becomes ``[1 − p, p]``; a single class has probability 1."""
    if head.n_classes == 1:
        return np.ones_like(outputs)
    if outputs.shape[1] == 1:
        return np.hstack([1.0 - outputs, outputs])
    return outputs


class NeuralNetClassifier(ClassifierMixin, _BaseNeuralNet):
    """A dense neural network classifier with hand-derived backpropagation, trained by one compiled loop.

    For several classes the last layer has one unit per class and is trained with the fused softmax
    cross-entropy (``predict_proba`` is its softmax); for two classes it has one unit trained with the
    fused sigmoid binary cross-entropy.  Labels may be any sortable values (ints, strings, …), one per
    sample; a single class is fitted too and always predicted (``predict_proba`` is a column of ones).  A
    multilabel indicator matrix ``y`` of shape ``(n_samples, L)`` gets L sigmoid outputs trained with the
    binary cross-entropy summed over labels (scikit-learn's): ``classes_`` is ``arange(L)``, ``predict``
    returns the indicator matrix of the labels whose ``predict_proba`` exceeds ½, and early stopping
    does not stratify.

    Parameters (scikit-learn ``MLPClassifier`` names where they exist):
      hidden_layer_sizes: units of each hidden layer, e.g. ``(10, 5)``; ``()`` gives no hidden layer.
      activation: the hidden layers' activation, or a list with one per hidden layer: ``'relu'``,
        ``'tanh'``, ``'sigmoid'``/``'logistic'``, ``'identity'``, ``'linear'``, ``'leaky_relu'``,
        ``'binary_step'`` (passes no gradient) or ``'softmax'``.
      solver: ``'lbfgs'`` (full-batch L-BFGS as scikit-learn's, one compiled loop: see :mod:`jaxnn.lbfgs`;
        stops on ``max_iter`` iterations, ``max_fun`` evaluations, ``max |gradient| ≤ tol`` or scipy's relative
        reduction test; ignores ``batch_size``, ``early_stopping`` and the learning rates; no ``partial_fit``),
        ``'gd'`` (full-batch gradient descent, the seeds' training; ignores ``batch_size``),
        ``'sgd'`` (minibatches with ``momentum``/``nesterovs_momentum``), ``'adam'`` (``beta_1``,
        ``beta_2``, ``epsilon``), or any ``optax.GradientTransformation`` (which then brings its own
        learning rate: ``learning_rate_init`` is not applied).
      alpha: L2 penalty ``alpha/(2m)·Σ‖W‖²`` (see the module docstring).
      batch_size: ``'auto'`` = ``min(200, n_samples)``, or an integer.
      learning_rate: ``solver='sgd'``'s schedule, as scikit-learn's (the other solvers ignore it):
        ``'constant'`` (η = ``learning_rate_init``), ``'invscaling'`` (after each epoch
        ``η = learning_rate_init / (t + 1)^power_t``, ``t`` the samples trained on, ``t_``) or ``'adaptive'``
        (where the stopping rule would stop, η is divided by 5 and training goes on, until it would stop at
        η ≤ 1e-6).  With a schedule, momentum accumulates the steps ``−η·g`` (scikit-learn's velocity).
      learning_rate_init: the step size η (the first one of a schedule).
      power_t: the exponent of ``'invscaling'``.
      max_iter: the most epochs (passes over the data); for ``'lbfgs'`` the most iterations.
      max_fun: ``'lbfgs'`` only: the most loss-and-gradient evaluations (scipy's ``maxfun``; checked between
        iterations, so the last line search may pass it).
      shuffle: reshuffle the rows every epoch (minibatch solvers); False visits them in order.
      tol, n_iter_no_change: stop once the training loss (or, with ``early_stopping``, the validation
        accuracy) has not improved by ``tol`` for more than ``n_iter_no_change`` epochs in a row;
        ``n_iter_no_change=np.inf`` never stops early.  A fit that runs all ``max_iter`` epochs without the
        rule stopping it warns with scikit-learn's ``ConvergenceWarning`` text ("Stochastic Optimizer:
        Maximum iterations (…) reached …"); ``partial_fit`` never warns.
      early_stopping, validation_fraction: hold out that share of the data, ``train_test_split(X, y,
        test_size=validation_fraction, stratify=y, random_state=np.random.RandomState(random_state))``,
        and keep the weights of the epoch with the best validation accuracy.
      init: the initial weights.  ``'mlp'`` (default): scikit-learn MLP's, drawn exactly as it draws them
        (layer by layer ``W`` then ``b`` ~ U[−r, r], ``r = √(6/(n_in + n_out))``, or ``√(2/…)`` for logistic
        hidden units, from ``numpy.random.RandomState(seed)``), so an int ``random_state`` starts from the
        very weights ``MLPClassifier(random_state=…)`` starts from.  Or one of jaxnn's initialisers, drawn
        with ``jax.random``: ``'glorot'``, ``'he'``, or the seeds' ``'normal'``, ``'small_normal'``,
        ``'uniform'``.
      loss: ``'auto'`` or a jaxnn loss name/object, e.g. ``'categorical_cross_entropy'`` (softmax as the
        last layer, as in the seeds) or ``'mean_squared_error'`` (on the softmax/sigmoid output).
      random_state: an int in ``[0, 2**32 - 1]`` seeds everything: the initial weights (see ``init``), the
        shuffling (``jax.random.key(random_state)``) and the early-stopping split; same seed, same result.
        None or a ``numpy.random.RandomState`` draws the seed from it.
      warm_start: continue from the current weights on the next ``fit``.
      verbose: print each epoch's loss after training.
      n_ensemble: train this many networks as one population and average their class probabilities.
        Member k uses the seed ``(s + k) mod 2**32``, ``s`` the seed of ``random_state``: member 0 is the
        network ``n_ensemble=1`` trains, member k the one ``random_state=s + k`` trains alone (its
        early-stopping split included).  An ensemble is not continued: ``partial_fit``, and ``fit`` with
        ``warm_start=True`` on a fitted ensemble, raise a ValueError.

    Defaults differ from ``MLPClassifier`` in two places: ``learning_rate_init=0.01`` (not 1e-3) and
    ``max_iter=500`` (not 200), so that small standardised data sets such as iris train to convergence
    out of the box; the stopping rule still ends training early once the loss stops improving.

    Attributes:
      classes_, coefs_ (list of ``(n_in, n_out)`` arrays), intercepts_, loss_ , loss_curve_, best_loss_
      (None with early stopping), validation_scores_, best_validation_score_ (None without),
      n_iter_, t_ (training samples seen: rows × epochs, counted on by ``warm_start`` and
      ``partial_fit``), n_layers_, n_outputs_, out_activation_, n_features_in_, feature_names_in_.

    With ``n_ensemble = K > 1`` there is no single network, so the attributes of one (coefs_, intercepts_,
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, n_iter_, t_) are not set;
    instead: ensemble_seeds_ ``(K,)``; ensemble_coefs_ and ensemble_intercepts_, per layer ``(K, n_in,
    n_out)`` and ``(K, n_out)``; ensemble_n_iter_ ``(K,)``; ensemble_loss_curves_ and, with early
    stopping, ensemble_validation_scores_ (else None), one list per member.  ``predict_members(X)`` gives
    each member's probabilities, ``(K, n_samples, n_classes)``: the spread around ``predict_proba``.

    Example:
      >>> from sklearn.pipeline import make_pipeline
      >>> from sklearn.preprocessing import StandardScaler
      >>> clf = make_pipeline(StandardScaler(), NeuralNetClassifier((10, 5), random_state=0)).fit(X, y)
    """

    def _validate_targets(self, X, y, *, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=SPARSE_FORMATS, multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        X = _densified(X)
        y = y.toarray() if scipy.sparse.issparse(y) else y  # a sparse multilabel indicator matrix
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # Integer labels in one column are binary or multiclass: type_of_target (a third of the input checks'
        # time) only for other labels, and once: check_classification_targets would compute it again.
        n_labels = np.unique(y).size if y.ndim == 1 and y.dtype.kind in "iub" else None
        kind = type_of_target(y) if n_labels is None else "binary" if n_labels <= 2 else "multiclass"
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            check_classification_targets(y)  # scikit-learn's own error for continuous and unknown targets
            raise ValueError(
                "NeuralNetClassifier takes one label per sample (binary or multiclass) or a multilabel indicator "
                f"matrix of 0/1, got {kind} y"
            )
        if n_labels is None:
            n_labels = np.unique(y).size
        if kind == "multiclass" and y.shape[0] > 20 and n_labels > round(0.5 * y.shape[0]):
            warnings.warn(  # check_classification_targets' warning
                "The number of unique classes is greater than 50% of the number of samples. `y` could represent a "
                "regression problem, not a classification problem.",
                UserWarning,
                stacklevel=5,
            )
        return X, y

    def _encode_targets(self, y, weight, *, continuing, incremental, classes=None):
        """Labels → one-hot rows (softmax head) or a 0/1 column (sigmoid head, for two classes or a single
        one); a multilabel indicator matrix → its 0/1 columns (one sigmoid per label; ``classes`` is not read)."""
        if y.ndim == 2:
            return _multilabel_targets(y, _loss_param(self.loss), self._head if continuing else None)
        if continuing:
            known = self.classes_
            if self._head.multilabel:
                raise ValueError(
                    f"the network was fitted for a multilabel indicator matrix of {known.size} labels but y has one "
                    "label per sample; refit from scratch (warm_start=False) to change the targets"
                )
            if classes is not None and not np.array_equal(np.unique(classes), known):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the first call's {known.tolist()}"
                )
            if not incremental:
                _same_classes_for_warm_start(known, y)
        else:
            known = np.unique(y if classes is None else np.asarray(classes))
        derived = classes is None and not continuing  # the classes are y's own labels: none can be unknown
        unknown = known[:0] if derived else np.setdiff1d(y, known)
        if unknown.size and not continuing:  # a first partial_fit whose classes= misses some labels
            raise ValueError(
                f"y holds labels {unknown.tolist()} that are not in classes={known.tolist()}; classes= must list "
                "every label that can appear in y"
            )
        if unknown.size:
            raise ValueError(
                f"y has labels {unknown.tolist()} that are not among the classes {known.tolist()} the network "
                "was built for; refit from scratch (warm_start=False) to change the classes"
            )
        weighted = np.unique(y[weight > 0])
        if not incremental and known.size > 1 and weighted.size < 2:
            raise ValueError(
                f"only one class ({weighted[0]!r}) has non-zero sample_weight; a classifier needs at least two "
                "weighted classes to tell apart"
            )
        index = np.searchsorted(known, y)
        head = _class_head(_loss_param(self.loss), known.size)
        targets = encode_classes(index, head)
        return _Targets(targets, head, {"classes_": known})

    def _stratify(self, y, targets):
        """scikit-learn's MLP stratifies on the binarized targets (so a class too rare to split is named by its
        indicator, e.g. ``'True'``); multilabel targets are not stratified."""
        return None if y.ndim == 2 else targets.astype(bool)

    @available_if(_has_partial_fit)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X, y``, continuing from the current weights and optimiser state.

        ``classes`` (every label that will ever appear in ``y``) is required on the first call; for a
        multilabel indicator matrix ``y`` its columns are the labels and ``classes`` is not read.  Not
        available with ``solver='lbfgs'``.
        """
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError("the first call to partial_fit needs classes=: every label that can appear in y")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, ``(n_samples, n_classes)`` in the order of ``classes_``; an ensemble's are
        the mean of its members'."""
        return _class_probabilities(self._forward(X), self._head)

    def predict_members(self, X):
        """Each network's class probabilities, ``(n_ensemble, n_samples, n_classes)``: the spread behind an
        ensemble's ``predict_proba`` (their mean); ``(1, n_samples, n_classes)`` for a single network."""
        return np.stack([_class_probabilities(outputs, self._head) for outputs in self._member_outputs(X)])

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (−inf where a probability underflows to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample; for multilabel targets the indicator matrix of the labels
        whose probability exceeds ½."""
        probabilities = self.predict_proba(X)
        if self._head.multilabel:
            return (probabilities > 0.5).astype(int)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NeuralNetRegressor(RegressorMixin, _BaseNeuralNet):
    """A dense neural network regressor with hand-derived backpropagation, trained by one compiled loop.

    The last layer is linear (identity) with one unit per target column, trained by default
    (``loss='auto'``) with the mean squared error ``mean_i mean_j (p_ij − y_ij)²``, twice scikit-learn's
    ``squared_error`` (so twice its gradient at a given learning rate).  Multi-output ``y`` of shape
    ``(n_samples, n_targets)`` is supported.

    Parameters are those of :class:`NeuralNetClassifier` (``early_stopping`` watches the validation R² of
    the predictions).  ``loss``: ``'auto'`` (mean squared error); scikit-learn's ``'squared_error'``
    (``½·mean_i mean_j (p_ij − y_ij)²``, MLP's loss and ``loss_curve_`` values) and ``'poisson'`` (for
    counts ``y >= 0``: the output is ``exp`` of the last layer, ``out_activation_ = 'exp'``, trained with
    the half Poisson deviance ``mean_i Σ_j [y log(y/μ) − y + μ]``, fused with the exp); ``'sum_of_squares'``
    or any jaxnn regression ``Loss``.  Scale the target (e.g. ``TransformedTargetRegressor`` with a
    ``StandardScaler``) when it is far from unit scale.

    Attributes: coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_layers_, n_outputs_, out_activation_ (``'identity'``, ``'exp'``),
    n_features_in_, feature_names_in_.  With ``n_ensemble = K > 1`` (``predict`` averages the members'
    predictions) the ensemble_* attributes of :class:`NeuralNetClassifier` replace the single network's,
    and ``predict_members(X)`` gives each member's predictions, ``(K, n_samples)`` (or ``(K, n_samples,
    n_targets)``).
    """

    def _validate_targets(self, X, y, *, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=SPARSE_FORMATS,
            dtype=(np.float64, np.float32),
            multi_output=True,
            y_numeric=True,
            reset=reset,
        )
        return _densified(X), y

    def _encode_targets(self, y, weight, *, continuing, incremental, classes=None):
        """Targets as ``(n_samples, n_targets)`` columns; predictions come back in ``y``'s shape."""
        targets = np.asarray(y, dtype=float).reshape(y.shape[0], -1)
        if continuing and targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} target columns but the network was fitted with {self.n_outputs_}"
            )
        fitted = {} if continuing else {"_y_is_1d": y.ndim == 1}
        head = regression_head(_loss_param(self.loss), targets.shape[1])
        _check_counts(targets, head, self.loss)
        return _Targets(targets, head, fitted)

    def _divergence_advice(self) -> str:
        return (
            "; for a regressor, scale the target y too (sklearn.compose.TransformedTargetRegressor with "
            "transformer=StandardScaler(), or MaxAbsScaler() if y is so large that its variance overflows)"
        )

    @available_if(_has_partial_fit)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``, continuing from the current weights and optimiser state (not available
        with ``solver='lbfgs'``)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, ``(n_samples,)`` for a 1-D ``y`` at fit time, else ``(n_samples, n_targets)``; an
        ensemble's are the mean of its members'."""
        outputs = self._forward(X)
        return outputs[:, 0] if self._y_is_1d else outputs

    def predict_members(self, X):
        """Each network's predictions, ``(n_ensemble, n_samples)`` for a 1-D ``y`` at fit time, else
        ``(n_ensemble, n_samples, n_targets)``: the spread behind an ensemble's ``predict`` (their mean)."""
        outputs = self._member_outputs(X)
        return outputs[:, :, 0] if self._y_is_1d else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


# --------------------------------------------------------------------------------------------------
# Many estimators at once.


def fit_estimators(estimators, datasets) -> list:
    """Fit ``estimators[i]`` on ``datasets[i]`` for every i, training estimators that share a compiled
    configuration as one population; returns, per estimator, itself or the exception its fit raised.

    ``datasets[i]`` is ``(X, y)`` or ``(X, y, sample_weight)``.  Result i is ``estimators[i]``, fitted in
    place as ``estimators[i].fit(*datasets[i])`` fits it — same attributes, warnings and errors, the weights
    equal up to float rounding (a batched product may add in another order) — or the ``Exception`` that
    call raises, returned rather than raised so that a caller can apply scikit-learn's ``error_score``.

    Estimators whose networks compile to the same training loop — same layer sizes, activations, loss,
    solver and its static settings, batch size, ``tol``/``n_iter_no_change``, ``early_stopping``,
    ``max_iter``, input width and float type — train as one :func:`jaxnn.population.fit_many` population,
    whatever their ``random_state``, ``learning_rate_init``, ``alpha``, ``power_t``, data and sample counts (each member
    padded with rows of weight 0 to a common size).  So a grid search over learning rates and penalties
    (all folds, all candidates) is one compiled program, and new values compile nothing; a grid over
    ``hidden_layer_sizes`` is one population per architecture.  Estimators with ``n_ensemble > 1`` bring
    all their members.  A ``warm_start`` fit that continues a fitted network, ``solver='lbfgs'``, an
    estimator that is not a jaxnn estimator, and a repeated estimator (from its second occurrence on, in
    order) are fitted alone.

    Example:
      >>> candidates = [NeuralNetClassifier((10,), learning_rate_init=lr, random_state=0) for lr in (1e-3, 1e-2)]
      >>> fitted = fit_estimators(candidates, [(X, y)] * len(candidates))
    """
    estimators = list(estimators)
    datasets = [_dataset(index, dataset) for index, dataset in enumerate(datasets)]
    if len(estimators) != len(datasets):
        raise ValueError(
            f"fit_estimators got {len(estimators)} estimators but {len(datasets)} data sets; give one (X, y) or "
            "(X, y, sample_weight) per estimator"
        )
    outcomes: list = [None] * len(estimators)
    setups: dict[int, _Setup] = {}
    alone, seen = [], set()
    for index, (estimator, (X, y, sample_weight)) in enumerate(zip(estimators, datasets, strict=True)):
        if not isinstance(estimator, _BaseNeuralNet) or id(estimator) in seen:
            alone.append(index)
            continue
        seen.add(id(estimator))
        try:
            setup = estimator._setup(X, y, sample_weight, incremental=False)
            if _is_lbfgs(setup.config.solver):  # its own compiled loop (jaxnn.lbfgs), one network at a time
                outcomes[index] = estimator._fit_lbfgs(setup)
            else:
                setups[index] = setup
        except Exception as error:  # returned where the lone fit raises it
            outcomes[index] = error
    plans: dict[int, list[_Plan]] = {}
    with compile_cache.scoped():
        for index, setup in list(setups.items()):
            try:
                with _precision(setup.X.dtype):
                    plans[index] = estimators[index]._plans(setup)
            except Exception as error:
                outcomes[index] = error
                del setups[index]
        results = iter(_train_plans([plan for planned in plans.values() for plan in planned]))
    for index, planned in plans.items():  # results come in the order of the plans
        own = [next(results) for _ in planned]
        try:
            outcomes[index] = estimators[index]._finish(setups[index], own)
        except Exception as error:
            outcomes[index] = error
    for index in alone:
        outcomes[index] = _fit_alone(estimators[index], datasets[index])
    return outcomes


def _fit_alone(estimator, dataset: tuple):
    """``estimator.fit`` on ``(X, y, sample_weight or None)``: the fitted estimator, or the exception."""
    X, y, sample_weight = dataset
    try:
        return estimator.fit(X, y) if sample_weight is None else estimator.fit(X, y, sample_weight=sample_weight)
    except Exception as error:
        return error


def _dataset(index: int, dataset) -> tuple:
    """``(X, y, sample_weight or None)`` from ``(X, y)`` or ``(X, y, sample_weight)``."""
    if not isinstance(dataset, tuple | list) or len(dataset) not in (2, 3):
        raise TypeError(
            f"datasets[{index}] must be a tuple (X, y) or (X, y, sample_weight), got {type(dataset).__name__}"
            + (f" of length {len(dataset)}" if isinstance(dataset, tuple | list) else "")
        )
    return (*dataset, None) if len(dataset) == 2 else tuple(dataset)
