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
the solver's update (``optax.add_decayed_weights``); ``loss_curve_`` reports ``L`` without the
penalty, and the stopping rule watches that same value.

Model selection without recompiling.  Compiled code is cached on the *static* configuration (layer
sizes, activations, solver, its momentum/betas, ``batch_size``, ``tol``, ``n_iter_no_change``,
``early_stopping``); refitting that configuration reuses it:

* ``max_iter`` is not part of it: the loop runs in chunks of a fixed compiled length, so any
  ``max_iter`` (a grid over it included) runs the same program;
* ``learning_rate_init`` and ``alpha`` are not baked into the compiled code: they live in the optimiser
  state (``optax.inject_hyperparams``; for ``gd``, and ``sgd`` without momentum, a state of two rates that
  keeps the loop's fast path for plain descent), so a grid over them compiles once;
* sample counts are padded with rows of weight 0, which the loss ignores, to one of eight sizes per
  doubling (…, 112, 120, 128, 144, 160, …; see :func:`padded_size`), so the folds of a cross-validation
  share one compiled loop (the final refit on all rows usually needs a second);
* the optimiser objects are cached per solver setting (jaxnn's compiled loop is keyed on their
  identity), and prediction is one cached compiled forward pass (every input of up to 256 rows shares
  one).

A first fit builds two programs (the initial weights and the training loop), prediction one more.
Each ``fit`` and ``predict`` keeps them in jaxnn's persistent compilation cache for the duration of the
call (:func:`jaxnn.compile_cache.scoped`: off with ``JAXNN_COMPILE_CACHE=0``; a cache configured by the
user is left as it is), so a new process loads them instead of compiling them.

Precision.  Like scikit-learn's MLP, the estimators keep the input's floating dtype: float32 input
trains in float32, float64 (and integer) input in float64 (inside ``jax.enable_x64``, for this call
only), and the fitted ``coefs_`` have that dtype.  Both run the same compiled loop, so float64 costs
what float64 arithmetic costs and nothing else: on a CPU about 1.5 times the float32 time per epoch for
a small network such as iris's 4-10-5-3 (wider vectors of float32 numbers per instruction), on GPUs and
TPUs many times more.  Pass float32 input (``X.astype(np.float32)``) when its 7 significant digits are
enough, which they are for training a network.

Divergence.  A step whose loss or weights are not finite stops training (see :func:`jaxnn.train.fit`)
and ``fit`` raises a ``ValueError`` that says so and what to change, leaving the estimator exactly as
it was before the call.  The last finite weights are not kept: by then they are typically huge, and
their predictions overflow.  A fitted estimator never holds NaN weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import numpy as np
import optax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from jaxnn import compile_cache
from jaxnn._checks import MAX_SEED, UINT32_LIMIT, is_int, is_real
from jaxnn._loop import RunSpec, default_layout, run
from jaxnn.activations import ACTIVATIONS
from jaxnn.heads import Head, ValidationScore, classification_head, encode_classes, predictions, regression_head
from jaxnn.layers import INITIALISERS, Dense, Sequential
from jaxnn.losses import LOSSES, Loss
from jaxnn.optimizers import SOLVERS, SolverSettings, init_state, tunable_solver, with_hyperparams
from jaxnn.train import Stopping

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

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
    init: str


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
        _require(solver in SOLVERS, "solver", "'gd', 'sgd', 'adam' or an optax.GradientTransformation", solver)
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
    for name in ("max_iter", "n_iter_no_change"):
        value = getattr(est, name)
        _require(is_int(value) and value > 0, name, "a positive integer", value)
    for name in ("early_stopping", "nesterovs_momentum", "warm_start"):
        value = getattr(est, name)
        _require(isinstance(value, bool | np.bool_), name, "True or False", value)
    _require(
        isinstance(est.init, str) and est.init in INITIALISERS, "init", f"one of {', '.join(INITIALISERS)}", est.init
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
        stopping=Stopping(tol=float(est.tol), n_iter_no_change=int(est.n_iter_no_change)),
        early_stopping=bool(est.early_stopping),
        validation_fraction=float(est.validation_fraction),
        momentum=float(est.momentum),
        nesterovs_momentum=bool(est.nesterovs_momentum),
        beta_1=float(est.beta_1),
        beta_2=float(est.beta_2),
        epsilon=float(est.epsilon),
        init=est.init,
    )


# --------------------------------------------------------------------------------------------------
# The network's head: what the last layer computes, the loss it is trained with, how outputs are read.


OUT_ACTIVATION_NAMES = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity"}  # scikit-learn's


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
    hidden = tuple(
        Dense(units, activation, init=config.init)
        for units, activation in zip(config.hidden_layer_sizes, config.activations, strict=True)
    )
    return Sequential((*hidden, Dense(head.units, head.layer_activation, init=config.init)))


# --------------------------------------------------------------------------------------------------
# Solvers: jaxnn.optimizers' tunable solvers, whose learning rate and L2 rate live in the optimiser state.


def _optimizer_for(config: _Config):
    settings = SolverSettings(
        momentum=config.momentum,
        nesterov=config.nesterovs_momentum,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
    )
    return tunable_solver(config.solver, settings)


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
_start_programs = [
    jax.jit(_draw_start, static_argnums=(0, 2, 3), compiler_options=_QUICK_COMPILE),
    jax.jit(_draw_start, static_argnums=(0, 2, 3), compiler_options={"xla_backend_optimization_level": 0}),
]


def _start(model: Sequential, seed: int, n_features: int, dtype):
    """The initial parameters and the shuffle key of ``seed``, as one compiled call."""
    try:
        return _start_programs[0](model, np.uint32(seed), n_features, dtype)
    except jax.errors.JaxRuntimeError as error:  # an XLA without that option: the plain build
        if "compile option" not in str(error) or len(_start_programs) == 1:
            raise
        del _start_programs[0]
        return _start_programs[0](model, np.uint32(seed), n_features, dtype)


def _as_numpy(tree):
    return jax.tree.map(np.asarray, tree)


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda a: np.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else a, tree)


# --------------------------------------------------------------------------------------------------
# The estimators.


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
        learning_rate_init=0.01,
        max_iter=500,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        init="glorot",
        loss="auto",
        random_state=None,
        warm_start=False,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
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

    # Subclasses say how targets are checked and encoded (and so which head they train) and how to stratify.
    def _validate_targets(self, X, y, *, reset: bool):
        raise NotImplementedError

    def _encode_targets(self, y, weight, *, continuing: bool, incremental: bool, classes=None) -> _Targets:
        raise NotImplementedError

    def _stratify(self, y):
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
        config = _check_params(self)
        if incremental and config.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True; use fit, or set early_stopping=False")
        continuing = self.__sklearn_is_fitted__() and (incremental or self.warm_start)
        X, y = self._validate_targets(X, y, reset=not continuing)
        weight = self._checked_weight(sample_weight, X)
        targets, head, fitted = self._encode_targets(
            y, weight, continuing=continuing, incremental=incremental, classes=classes
        )
        model = _network(config, head)
        if continuing and model != self._model:
            raise ValueError(
                f"warm_start and partial_fit continue the previous network ({_describe(self._model)}), but the "
                f"parameters now ask for {_describe(model)}; refit with warm_start=False to change the network"
            )
        seed = _seed(self.random_state)
        # The compilation cache is on for this call only (jaxnn.compile_cache.scoped: the user's settings win
        # and come back afterwards); float64 input trains in float64, inside enable_x64 for this call only.
        with compile_cache.scoped(), jax.enable_x64(bool(X.dtype == np.float64)):
            result, validation_scores = self._train(
                config, model, head, X, targets, weight, y, seed, continuing=continuing, incremental=incremental
            )
        if bool(result.diverged):
            raise ValueError(
                f"training diverged in epoch {int(result.n_epochs) + 1}: the loss or the weights became infinite "
                f"or NaN (learning_rate_init={config.learning_rate_init:g}). The estimator is left as it was "
                "before this fit. Lower learning_rate_init, or standardise X (sklearn.preprocessing.StandardScaler)"
                f"{self._divergence_advice()}"
            )
        self._store(config, model, head, result, validation_scores, continuing=continuing, incremental=incremental)
        for name, value in fitted.items():
            setattr(self, name, value)
        return self

    @staticmethod
    def _checked_weight(sample_weight, X) -> np.ndarray:
        weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        if not weight.sum() > 0:
            raise ValueError("sample_weight is zero for every sample: at least one weight must be non-zero")
        return weight

    def _train(self, config, model, head, X, targets, weight, y, seed, *, continuing, incremental):
        """Run jaxnn's training loop on padded data; returns its FitResult and the validation scores (or None).

        The arrays were checked by ``validate_data`` and ``_check_sample_weight``, so they go to the loop
        (``jaxnn._loop.run``, the door ``jaxnn.fit`` also uses) without ``fit``'s second round of checks.
        """
        dtype = X.dtype
        params, shuffle_key = _start(model, seed, X.shape[1], dtype)
        if continuing:
            params = [{"W": np.asarray(w, dtype), "b": np.asarray(b, dtype)} for w, b in self._params_pairs()]

        x_train, t_train, w_train = X, targets, weight
        validation = None
        if config.early_stopping:
            x_train, t_train, w_train, validation = self._split_validation(config, X, targets, weight, y, seed)

        n = x_train.shape[0]
        batch = n if config.batch_size is None else min(config.batch_size, n)
        n_padded = padded_size(n)
        if config.batch_size is not None and config.batch_size > n and not _is_auto(self.batch_size):
            warnings.warn(
                f"batch_size={config.batch_size} is larger than the {n} training samples; using {n}", stacklevel=4
            )
        optimizer = _optimizer_for(config)
        batch_weight = float(w_train.sum()) * batch / n
        # Host scalars: jnp conversions would each be a small program to compile in a fresh process.
        learning_rate = np.asarray(config.learning_rate_init, dtype)
        l2_rate = np.asarray(config.alpha / batch_weight, dtype)
        if incremental and continuing:
            opt_state = with_hyperparams(_cast_floats(self._optimizer_state, dtype), learning_rate, l2_rate)
        else:
            opt_state = init_state(optimizer, params, learning_rate, l2_rate)

        start_epoch = len(self.loss_curve_) if continuing else 0
        epochs = 1 if incremental else config.max_iter
        if start_epoch + epochs >= UINT32_LIMIT:
            raise ValueError(
                f"{start_epoch} epochs trained and max_iter={epochs} more pass the 32-bit epoch counter; "
                "refit with warm_start=False or lower max_iter"
            )
        spec = RunSpec(
            model,
            head.loss,
            optimizer,
            batch_size=n_padded if batch >= n else batch,
            stopping=None if incremental else config.stopping,
            score=None if validation is None else ValidationScore(head),
            layout=default_layout(),
        )
        x_val, y_val = (None, None) if validation is None else validation
        result = run(
            spec,
            params=params,
            opt_state=opt_state,
            x=_pad_rows(x_train, n_padded),
            y=_pad_rows(t_train.astype(dtype, copy=False), n_padded),
            weight=_pad_rows(w_train, n_padded),
            key=shuffle_key,
            start_epoch=start_epoch,
            epochs=epochs,
            x_val=x_val,
            y_val=y_val,
        )
        return result, None if validation is None else result.validation_scores

    def _split_validation(self, config, X, targets, weight, y, seed):
        """Hold out ``validation_fraction`` of the data (stratified for classes), as scikit-learn's MLP."""
        x_train, x_val, t_train, t_val, w_train, w_val = train_test_split(
            X,
            targets,
            weight,
            test_size=config.validation_fraction,
            random_state=np.random.RandomState(seed % (2**32)),
            stratify=self._stratify(y),
        )
        if x_val.shape[0] < 2 or not w_val.sum() > 0:
            raise ValueError(
                f"the validation set has {x_val.shape[0]} samples (weight {w_val.sum():g}); early_stopping needs "
                "at least 2 with non-zero weight: increase validation_fraction or use more data"
            )
        if not w_train.sum() > 0:
            raise ValueError("every training sample left after the validation split has weight zero")
        n_val = padded_size(x_val.shape[0])
        val_targets = np.concatenate([t_val, w_val[:, None]], axis=1).astype(X.dtype, copy=False)
        return x_train, t_train, w_train, (_pad_rows(x_val, n_val), _pad_rows(val_targets, n_val))

    def _params_pairs(self):
        return zip(self.coefs_, self.intercepts_, strict=True)

    def _store(self, config, model, head, result, validation_scores, *, continuing, incremental):
        """Copy the FitResult into scikit-learn's attributes (NumPy, so the estimator pickles) and warn."""
        n_epochs = int(result.n_epochs)
        losses = np.asarray(result.history)[:n_epochs].tolist()
        params = _as_numpy(result.params)
        self.coefs_ = [p["W"] for p in params]
        self.intercepts_ = [p["b"] for p in params]
        self._optimizer_state = _as_numpy(result.opt_state)
        self._model = model
        self._head = head
        self.out_activation_ = OUT_ACTIVATION_NAMES[head.output_activation]
        self.n_outputs_ = head.units
        self.n_layers_ = len(config.hidden_layer_sizes) + 2
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
        if not incremental and n_epochs == config.max_iter:
            warnings.warn(
                f"{type(self).__name__}: reached max_iter={config.max_iter} epochs before the "
                f"{'validation score' if config.early_stopping else 'training loss'} stopped improving by tol; "
                "increase max_iter or learning_rate_init",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _report(self, losses, validation_scores, n_epochs):
        """``verbose``: the per-epoch progress, printed once the compiled loop has finished."""
        start = len(self.loss_curve_) - len(losses)
        scores = None if validation_scores is None else np.asarray(validation_scores)[:n_epochs]
        for i, value in enumerate(losses):
            print(f"Iteration {start + i + 1}, loss = {value:.8f}")
            if scores is not None:
                print(f"Validation score: {scores[i]:f}")

    def _forward(self, X) -> np.ndarray:
        """Checked input through the network and its link (probabilities for a classifier)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return _predict_outputs(self._model, self._head, self.coefs_, self.intercepts_, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # sparse X is refused with a TypeError (MLP accepts it)
        return tags


class NeuralNetClassifier(ClassifierMixin, _BaseNeuralNet):
    """A dense neural network classifier with hand-derived backpropagation, trained by one compiled loop.

    For several classes the last layer has one unit per class and is trained with the fused softmax
    cross-entropy (``predict_proba`` is its softmax); for two classes it has one unit trained with the
    fused sigmoid binary cross-entropy.  Labels may be any sortable values (ints, strings, …), one per
    sample (multilabel targets are refused with a ValueError).

    Parameters (scikit-learn ``MLPClassifier`` names where they exist):
      hidden_layer_sizes: units of each hidden layer, e.g. ``(10, 5)``; ``()`` gives no hidden layer.
      activation: the hidden layers' activation, or a list with one per hidden layer: ``'relu'``,
        ``'tanh'``, ``'sigmoid'``/``'logistic'``, ``'identity'``, ``'linear'``, ``'leaky_relu'``,
        ``'binary_step'`` (passes no gradient) or ``'softmax'``.
      solver: ``'gd'`` (full-batch gradient descent, the seeds' training; ignores ``batch_size``),
        ``'sgd'`` (minibatches with ``momentum``/``nesterovs_momentum``), ``'adam'`` (``beta_1``,
        ``beta_2``, ``epsilon``), or any ``optax.GradientTransformation`` (which then brings its own
        learning rate: ``learning_rate_init`` is not applied).
      alpha: L2 penalty ``alpha/(2m)·Σ‖W‖²`` (see the module docstring).
      batch_size: ``'auto'`` = ``min(200, n_samples)``, or an integer.
      learning_rate_init: the step size η.
      max_iter: the most epochs (passes over the data).
      tol, n_iter_no_change: stop once the training loss (or, with ``early_stopping``, the validation
        accuracy) has not improved by ``tol`` for more than ``n_iter_no_change`` epochs in a row.
      early_stopping, validation_fraction: hold out that share of the data, ``train_test_split(X, y,
        test_size=validation_fraction, stratify=y, random_state=np.random.RandomState(random_state))``,
        and keep the weights of the epoch with the best validation accuracy.
      init: weight initialiser: ``'glorot'``, ``'he'``, or the seeds' ``'normal'``, ``'small_normal'``,
        ``'uniform'``.
      loss: ``'auto'`` or a jaxnn loss name/object, e.g. ``'categorical_cross_entropy'`` (softmax as the
        last layer, as in the seeds) or ``'mean_squared_error'`` (on the softmax/sigmoid output).
      random_state: an int in ``[0, 2**32 - 1]`` seeds everything (``jax.random.key(random_state)``): same
        seed, same weights; None or a ``numpy.random.RandomState`` draws the seed.
      warm_start: continue from the current weights on the next ``fit``.
      verbose: print each epoch's loss after training.

    Defaults differ from ``MLPClassifier`` in two places: ``learning_rate_init=0.01`` (not 1e-3) and
    ``max_iter=500`` (not 200), so that small standardised data sets such as iris train to convergence
    out of the box; the stopping rule still ends training early once the loss stops improving.

    Attributes:
      classes_, coefs_ (list of ``(n_in, n_out)`` arrays), intercepts_, loss_ , loss_curve_, best_loss_
      (None with early stopping), validation_scores_, best_validation_score_ (None without),
      n_iter_, n_layers_, n_outputs_, out_activation_, n_features_in_, feature_names_in_.

    Example:
      >>> from sklearn.pipeline import make_pipeline
      >>> from sklearn.preprocessing import StandardScaler
      >>> clf = make_pipeline(StandardScaler(), NeuralNetClassifier((10, 5), random_state=0)).fit(X, y)
    """

    def _validate_targets(self, X, y, *, reset):
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=reset)
        # Integer labels in one column are binary or multiclass: type_of_target (a third of the input checks'
        # time) only for other labels, and once: check_classification_targets would compute it again.
        n_labels = np.unique(y).size if y.ndim == 1 and y.dtype.kind in "iub" else None
        kind = type_of_target(y) if n_labels is None else "binary" if n_labels <= 2 else "multiclass"
        if kind not in ("binary", "multiclass"):
            check_classification_targets(y)  # scikit-learn's own error for continuous and unknown targets
            raise ValueError(f"NeuralNetClassifier takes one label per sample (binary or multiclass), got {kind} y")
        if n_labels is None:
            n_labels = np.unique(y).size
        if kind == "multiclass" and y.shape[0] > 20 and n_labels > round(0.5 * y.shape[0]):
            warnings.warn(  # check_classification_targets' warning
                "The number of unique classes is greater than 50% of the number of samples. `y` could represent a "
                "regression problem, not a classification problem.",
                UserWarning,
                stacklevel=4,
            )
        return X, y

    def _encode_targets(self, y, weight, *, continuing, incremental, classes=None):
        """Labels → one-hot rows (softmax head) or a 0/1 column (sigmoid head)."""
        if continuing:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), known):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the first call's {known.tolist()}"
                )
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
        if known.size < 2:
            raise ValueError(f"y has only one class ({known[0]!r}); a classifier needs samples of at least two classes")
        weighted = np.unique(y[weight > 0])
        if not incremental and weighted.size < 2:
            raise ValueError(
                f"only one class ({weighted[0]!r}) has non-zero sample_weight; a classifier needs at least two "
                "weighted classes to tell apart"
            )
        index = np.searchsorted(known, y)
        head = classification_head(_loss_param(self.loss), known.size)
        targets = encode_classes(index, head)
        return _Targets(targets, head, {"classes_": known})

    def _stratify(self, y):
        return y

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X, y``, continuing from the current weights and optimiser state.

        ``classes`` (every label that will ever appear in ``y``) is required on the first call.
        """
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError("the first call to partial_fit needs classes=: every label that can appear in y")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, ``(n_samples, n_classes)`` in the order of ``classes_``."""
        probabilities = self._forward(X)
        if probabilities.shape[1] == 1:
            return np.hstack([1.0 - probabilities, probabilities])
        return probabilities

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (−inf where a probability underflows to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]


class NeuralNetRegressor(RegressorMixin, _BaseNeuralNet):
    """A dense neural network regressor with hand-derived backpropagation, trained by one compiled loop.

    The last layer is linear (identity) with one unit per target column, trained with the mean squared
    error ``mean_i mean_j (p_ij − y_ij)²`` (scikit-learn's MLP halves it; this doubles the gradient at
    a given learning rate).  Multi-output ``y`` of shape ``(n_samples, n_targets)`` is supported.

    Parameters are those of :class:`NeuralNetClassifier` (``early_stopping`` watches the validation R²);
    ``loss`` is ``'auto'`` (mean squared error), ``'sum_of_squares'`` or a jaxnn ``Loss`` on
    real-valued predictions.  Scale the target (e.g. ``TransformedTargetRegressor`` with a
    ``StandardScaler``) when it is far from unit scale.

    Attributes: coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, n_layers_, n_outputs_, out_activation_ (``'identity'``),
    n_features_in_, feature_names_in_.
    """

    def _validate_targets(self, X, y, *, reset):
        return validate_data(self, X, y, dtype=(np.float64, np.float32), multi_output=True, y_numeric=True, reset=reset)

    def _encode_targets(self, y, weight, *, continuing, incremental, classes=None):
        """Targets as ``(n_samples, n_targets)`` columns; predictions come back in ``y``'s shape."""
        targets = np.asarray(y, dtype=float).reshape(y.shape[0], -1)
        if continuing and targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} target columns but the network was fitted with {self.n_outputs_}"
            )
        fitted = {} if continuing else {"_y_is_1d": y.ndim == 1}
        return _Targets(targets, regression_head(_loss_param(self.loss), targets.shape[1]), fitted)

    def _divergence_advice(self) -> str:
        return (
            "; for a regressor, scale the target y too (sklearn.compose.TransformedTargetRegressor with "
            "transformer=StandardScaler(), or MaxAbsScaler() if y is so large that its variance overflows)"
        )

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``, continuing from the current weights and optimiser state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, ``(n_samples,)`` for a 1-D ``y`` at fit time, else ``(n_samples, n_targets)``."""
        outputs = self._forward(X)
        return outputs[:, 0] if self._y_is_1d else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
