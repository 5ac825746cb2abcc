"""The estimators' fit, shared by the classifier and the regressor: parameters, data and network checked, runs
planned and trained, results stored as scikit-learn's fitted attributes — one estimator at a time (``fit``,
``partial_fit``) or many at once (:func:`fit_estimators`).

The steps of a fit: :func:`jaxnn.sklearn.constraints.check_params` checks the hyper-parameters, the subclass
checks and encodes the data (:mod:`jaxnn.sklearn.targets`), :mod:`jaxnn.sklearn.training` plans one run per
network and trains them (the only door to jaxnn's training engine), and the results become the fitted
attributes.  A first fit builds the training loop (and the shuffle key's small program, shared by every
network), prediction one more: one cached compiled forward pass (every input of up to 256 rows shares one).
``fit`` and the first prediction turn jaxnn's persistent compilation cache on for the process
(:func:`jaxnn.compile_cache.enable_default`: off with ``JAXNN_COMPILE_CACHE=0``; a cache configured by the user
is left as it is), so a new process loads them instead of compiling them.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from jaxnn import compile_cache, fork_guard
from jaxnn._checks import UINT32_LIMIT
from jaxnn._warnings import warn
from jaxnn.heads import Head
from jaxnn.layers import Sequential
from jaxnn.optimizers import end_of_epoch, learning_rate_of
from jaxnn.sklearn.callbacks import CallbackSupport, FitTasks, Guarded, fit_tasks, lifecycle, watches, with_callbacks
from jaxnn.sklearn.class_weights import checked_sample_weight, huge_weights, training_weights, unchecked_non_finite
from jaxnn.sklearn.constraints import Config, check_params, is_auto, is_lbfgs, seed
from jaxnn.sklearn.fit_datasets import checked_datasets
from jaxnn.sklearn.fit_outcomes import failed, fit_alone, put_back, put_back_unfinished, records_of
from jaxnn.sklearn.initial_weights import as_numpy, initial_weights
from jaxnn.sklearn.internals import NO_IMPROVEMENT_COUNT
from jaxnn.sklearn.pickling import PickledSolver, pickled_state, restored_state
from jaxnn.sklearn.prediction import Predictor, checked_input, read_only
from jaxnn.sklearn.progress import adaptive_lines, is_adaptive, print_call_plateau, print_progress, print_stop
from jaxnn.sklearn.targets import OUT_ACTIVATION_NAMES, Targets
from jaxnn.sklearn.training import (
    Plan,
    Previous,
    Setup,
    ensemble_seeds,
    lbfgs_warning,
    network,
    optimizer_for,
    plan_runs,
    precision,
    run_lbfgs,
    train_plans,
    training_rows,
)

__all__ = ["NeuralNetBase", "fit_estimators"]

SINGLE_NETWORK_ATTRIBUTES = (
    "coefs_",
    "intercepts_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "validation_loss_curve_",
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
    "ensemble_validation_loss_curves_",
)


def _layer_sizes(model: Sequential) -> str:
    """A network's layer sizes for error messages, e.g. ``10 → 5 → 3``."""
    return " → ".join(str(layer.units) for layer in model.layers)


def _network_attributes(config: Config, model: Sequential, head: Head) -> dict:
    """The attributes that describe a fitted network (every ensemble member's alike)."""
    return {
        "_model": model,
        "_head": head,
        "_predictor": Predictor(model, head),
        "out_activation_": OUT_ACTIVATION_NAMES[head.output_activation],
        "n_outputs_": head.units,
        "n_layers_": len(config.hidden_layer_sizes) + 2,
    }


def _rate(config: Config) -> str:
    """The step size to lower: an optax solver brings its own (learning_rate_init is not read)."""
    named = isinstance(config.solver, str)
    return f"learning_rate_init (now {config.learning_rate_init:g})" if named else "the optax solver's learning rate"


def _best_epoch_kept(config: Config, result) -> bool:
    """Whether a diverged run still has trained weights to keep: with ``early_stopping`` those of the
    best-scoring healthy epoch (as scikit-learn's MLP, which then keeps ``_best_coefs``); without it, or
    when the very first epoch diverged, there are none and the fit fails."""
    return config.early_stopping and int(result.n_epochs) >= 1


# Pickles made before the class moved to jaxnn.sklearn.pickling name it here.
_PickledSolver = PickledSolver


class NeuralNetBase(CallbackSupport, BaseEstimator):
    """What the classifier and the regressor share: parameters, training, attributes; scikit-learn's callbacks
    where it has them (:mod:`jaxnn.sklearn.callbacks`)."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
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
        dropout=0.0,
        scoring=None,
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
        self.dropout = dropout
        self.scoring = scoring

    # Subclasses say how targets are checked and encoded (and so which head they train) and how to stratify.
    def _validate_targets(self, X, y, *, reset: bool, incremental: bool):
        raise NotImplementedError

    def _encode_targets(self, y, weight, *, continuing: bool, incremental: bool, classes=None) -> Targets:
        raise NotImplementedError

    def _stratify(self, y, targets):
        """What the early-stopping split stratifies on (None: a plain random split)."""
        return None

    def _sample_weights(self, y, weight, dtype, *, incremental: bool, classes=None) -> np.ndarray:
        """The weights training uses: the checked ``sample_weight`` (float64) in the training ``dtype`` (the
        classifier multiplies in ``class_weight`` first)."""
        return training_weights(weight, dtype)

    def _weights_name(self) -> str:
        """What the training weights are called in messages (the classifier's may be ``class_weight``'s product)."""
        return "sample_weight"

    def _huge_weights(self, setup: Setup) -> str:
        """What a divergence message adds when the training weights were huge, or the data not finite."""
        return huge_weights(setup.weight, self._weights_name()) + unchecked_non_finite(setup.X, setup.targets.matrix)

    def _divergence_advice(self, setup: Setup) -> str:
        """What the divergence message adds after its advice on learning_rate_init and X."""
        return ""

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_model")

    def __getstate__(self):
        """Pickling (:mod:`jaxnn.sklearn.pickling`): jaxnn's version recorded, an optax solver cloudpickled."""
        return pickled_state(self, dict(super().__getstate__()))  # a copy: it may be __dict__ itself

    def __setstate__(self, state):
        super().__setstate__(restored_state(self, state))  # warns when another jaxnn version pickled it
        if "_model" in state:
            self._predictor = Predictor(self._model, self._head)

    @with_callbacks
    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n_samples, n_features) and targets ``y``; returns ``self``.

        ``sample_weight`` (n_samples,) weighs each sample's loss.  Trains for at most ``max_iter``
        epochs, fewer when the stopping rule (``tol``, ``n_iter_no_change``) fires.  With
        ``warm_start=True`` a fitted estimator continues from its current weights.  Callbacks set with
        ``set_callbacks`` (scikit-learn 1.9+) run between compiled chunks (:mod:`jaxnn.sklearn.callbacks`).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, *, incremental: bool, classes=None):
        """A fit; one that fails or is interrupted (Ctrl-C) leaves the estimator as it was, every attribute
        (its records of the fitted ``X`` included): never the new weights beside the old ``n_iter_`` or ``t_``."""
        before = dict(self.__dict__)
        try:
            return self._fit_checked(X, y, sample_weight, incremental=incremental, classes=classes)
        except BaseException:
            # Storing a fit's attributes is many steps (and prints with verbose, or warns): any of them may be
            # where a KeyboardInterrupt or a warning turned error lands.  Put back all, in one step.
            put_back(self, before)
            raise

    def _fit_checked(self, X, y, sample_weight, *, incremental: bool, classes=None):
        setup = self._setup(X, y, sample_weight, incremental=incremental, classes=classes)
        tasks = None if incremental else self._tasks(setup, sample_weight)
        if is_lbfgs(setup.config.solver):
            return self._fit_lbfgs(setup, tasks)
        # float64 input trains in float64, inside enable_x64 for this call only.
        compile_cache.enable_default()
        with precision(setup.X.dtype):
            results = train_plans(self._plans(setup), watches(tasks))
        return self._finish(setup, results, tasks)

    def _tasks(self, setup: Setup, sample_weight) -> FitTasks | None:
        """The callbacks' task tree of this fit; None without callbacks (:mod:`jaxnn.sklearn.callbacks`)."""
        described = _network_attributes(setup.config, setup.model, setup.targets.head)
        return fit_tasks(self, setup, sample_weight, described)

    def _fit_lbfgs(self, setup: Setup, tasks: FitTasks | None = None) -> NeuralNetBase:
        """``solver='lbfgs'``: scikit-learn's full-batch L-BFGS (:mod:`jaxnn.lbfgs`, one compiled loop) instead
        of the epoch loop.  It minimises the full-batch objective, penalty included, from the initial (or, with
        ``warm_start``, the current) weights: at most ``max_iter`` iterations and ``max_fun`` evaluations, until
        ``max |∂L/∂θ| ≤ tol`` or the relative reduction of ``L`` falls to scipy's ``ftol``.  Like scikit-learn's
        MLP it ignores ``early_stopping`` (and ``batch_size``, the learning rates, momentum and betas)."""
        config = setup.config  # one network: n_ensemble > 1 is refused with the parameters (constraints)
        X, dtype = setup.X, setup.X.dtype
        compile_cache.enable_default()
        with precision(dtype):
            if setup.continuing:
                params = [{"W": np.asarray(w, dtype), "b": np.asarray(b, dtype)} for w, b in self._params_pairs()]
            else:
                params, _ = initial_weights(
                    config.init, config.init_factor, setup.model, setup.seed, X.shape[1], dtype, with_key=False
                )
            watch = None if tasks is None else tasks.watches()[0]
            result = run_lbfgs(setup, params, max_fun=int(self.max_fun), watch=watch)
        if result.diverged:
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need to "
                "be preprocessed. jaxnn: the loss or its gradient is infinite or NaN at the starting weights of "
                "L-BFGS. The estimator is left as it was before this fit. Standardise X "
                f"(sklearn.preprocessing.StandardScaler){self._divergence_advice(setup)}{self._huge_weights(setup)}"
            )
        self._store_lbfgs(setup, result)
        for name, value in setup.targets.fitted.items():
            setattr(self, name, value)
        message = lbfgs_warning(result, config.max_iter)
        if message is not None:
            warn(message, ConvergenceWarning)
        if tasks is not None:
            tasks.end([self._params_list()])
        return self

    def _store_lbfgs(self, setup: Setup, result) -> None:
        """scikit-learn's attributes of an L-BFGS fit: ``n_iter_`` its iterations, ``loss_`` the reported loss at the
        result (MLP's ``fun`` for scipy, penalty included); ``loss_curve_`` (jaxnn's addition: none in scikit-learn's
        lbfgs) gains it after each iteration, np.float64 values as ``best_loss_``; ``t_`` counts no samples
        (scikit-learn's lbfgs leaves it at 0); no validation scores."""
        params = as_numpy(result.params)
        network = {"coefs_": [p["W"] for p in params], "intercepts_": [p["b"] for p in params]}
        self._publish_network(
            setup.config, setup.model, setup.targets.head, network, forget=(*ENSEMBLE_ATTRIBUTES, "_optimizer_state")
        )
        losses = list(np.asarray(result.loss_curve, dtype=np.float64))  # np.float64 values, as the other solvers'
        previous = self.loss_curve_ if setup.continuing else []
        self.n_iter_ = result.n_iter
        self.loss_ = np.float64(result.loss)  # MLP's type
        self.loss_curve_ = [*previous, *losses]
        self.best_loss_ = np.float64(min(self.loss_curve_, default=result.loss))
        self.validation_scores_ = self.validation_loss_curve_ = None
        self.best_validation_score_ = None
        self.t_ = getattr(self, "t_", 0) if setup.continuing else 0
        if self.verbose:
            print_progress(losses, None)

    def _setup(self, X, y, sample_weight, *, incremental: bool, classes=None) -> Setup:
        """Every check of a fit, before any JAX work: hyper-parameters, data, targets, network and seed."""
        fork_guard.check()  # a clear error where JAX would hang (a fork of a process that used JAX)
        config = check_params(self)
        if incremental and config.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True; use fit, or set early_stopping=False")
        continuing = self.__sklearn_is_fitted__() and (incremental or self.warm_start)
        if continuing and (config.n_ensemble > 1 or hasattr(self, "ensemble_coefs_")):
            raise ValueError(
                "warm_start and partial_fit continue the training of one network, but this is an ensemble "
                "(n_ensemble > 1 now or in the last fit); refit from scratch with warm_start=False"
            )
        X, y = self._validate_targets(X, y, reset=not continuing, incremental=incremental)
        weight = checked_sample_weight(sample_weight, X)
        targets = self._encode_targets(y, continuing=continuing, incremental=incremental, classes=classes)
        weight = self._sample_weights(y, weight, X.dtype, incremental=incremental, classes=classes)
        model = network(config, targets.head)
        # A new activation continues from the weights, as MLP's does; new layer sizes cannot (MLP keeps the old ones)
        if continuing and _layer_sizes(model) != _layer_sizes(self._model):
            raise ValueError(
                f"warm_start and partial_fit continue the previous network (layers {_layer_sizes(self._model)}), but "
                f"the parameters now ask for layers {_layer_sizes(model)}; refit with warm_start=False to change them"
            )
        stratify = self._stratify(y, targets.matrix) if config.early_stopping else None
        return Setup(config, X, y, weight, targets, model, seed(self.random_state), continuing, incremental, stratify)

    def _plans(self, setup: Setup) -> list[Plan]:
        """The training runs of a fit: one per network (see :func:`jaxnn.sklearn.training.plan_runs`)."""
        config = setup.config
        plans = plan_runs(setup, self._previous(setup) if setup.continuing else None)
        n = plans[0].x.shape[0]
        if config.batch_size is not None and config.batch_size > n and not is_auto(self.batch_size):
            warn(  # MLP's message first
                "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped. jaxnn: "
                f"batch_size={config.batch_size} is larger than the {n} training samples; using {n}"
            )
        done = plans[0].start_epoch
        if done + plans[0].epochs >= UINT32_LIMIT:
            after, fix = (
                (f" after the {done} trained", "refit with warm_start=False or lower") if done else ("", "lower")
            )
            raise ValueError(
                f"max_iter={plans[0].epochs} epochs{after} pass the 32-bit epoch counter (fewer than 2**32 in all); "
                f"{fix} max_iter"
            )
        return plans

    def _previous(self, setup: Setup) -> Previous:
        """The fitted state a continued fit starts from."""
        return Previous(
            params=self._params_list(),
            optimizer_state=getattr(self, "_optimizer_state", None),
            samples_seen=getattr(self, "t_", 0),
            epochs=len(self.loss_curve_),
            watched=None if setup.incremental else self._watched_so_far(setup.config),
        )

    def _watched_so_far(self, config: Config) -> tuple[float, int] | None:
        """What a ``warm_start`` fit's stopping rule continues, as MLP's: the best training loss (with
        ``early_stopping``, validation score, whose weights are the current ones) and the count of epochs
        without improvement the last fit ended with; None when the last fit watched the other value.

        A count past ``n_iter_no_change`` (the last fit stopped on it) enters as ``n_iter_no_change``: MLP
        checks the count only after an epoch, so it trains one more and stops unless that one improves,
        and so does the loop from that count."""
        best = self.best_validation_score_ if config.early_stopping else self.best_loss_
        if best is None or not np.isfinite(best):
            return None
        count = getattr(self, NO_IMPROVEMENT_COUNT, 0)
        return float(best), int(min(count, config.stopping.n_iter_no_change))

    def _finish(self, setup: Setup, results: list, tasks: FitTasks | None = None) -> NeuralNetBase:
        """Store the trained networks in the fitted attributes and return ``self``; a run that failed or
        diverged is raised instead, and the estimator is left as it was.  ``tasks``: the callbacks' task tree,
        ended here."""
        for result in results:
            if isinstance(result, Exception):
                raise result
        config = setup.config
        seeds = ensemble_seeds(setup.seed, config.n_ensemble)
        for network_seed, result in zip(seeds, results, strict=True):
            if bool(result.diverged) and _best_epoch_kept(config, result):
                warn(
                    f"{type(self).__name__}: training diverged in epoch {int(result.n_epochs) + 1} (the loss or the "
                    "weights became infinite or NaN); early_stopping keeps the weights of the epoch with the best "
                    f"validation score. Lower {_rate(config)}, or standardise X{self._huge_weights(setup)}",
                    ConvergenceWarning,
                )
            elif bool(result.diverged):
                which = f" (ensemble member of seed {network_seed})" if config.n_ensemble > 1 else ""
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data may contain large values and "
                    f"need to be preprocessed. jaxnn: training diverged in epoch {int(result.n_epochs) + 1}{which}: "
                    "the loss or the weights became infinite or NaN. The estimator is left as it was before this "
                    f"fit. Lower {_rate(config)}, or standardise X "
                    f"(sklearn.preprocessing.StandardScaler){self._divergence_advice(setup)}{self._huge_weights(setup)}"
                )
        model, head = setup.model, setup.targets.head
        if config.n_ensemble == 1:
            carried = self._watched_so_far(config) if setup.continuing and not setup.incremental else None
            best_before = self._store(setup, results[0])  # changes what _watched_so_far reads
            self._store_schedule(setup, results[0], best_before, carried)
        else:
            self._store_ensemble(config, model, head, results, seeds)
        for name, value in setup.targets.fitted.items():
            setattr(self, name, value)
        if tasks is not None:
            tasks.end([as_numpy(result.params) for result in results])
        return self

    def _params_pairs(self):
        return zip(self.coefs_, self.intercepts_, strict=True)

    def _params_list(self) -> list[dict]:
        return [{"W": w, "b": b} for w, b in self._params_pairs()]

    def _publish_network(self, config, model, head, weights: dict, *, forget: tuple[str, ...]) -> None:
        """Store a fit's network (``weights``: its weight attributes, with :func:`_network_attributes`) and remove
        the attributes ``forget`` names, in one step: the instance's ``__dict__`` is replaced by a new one (a single
        reference swap), so a ``predict`` in another thread, which reads the network from one ``__dict__``
        (:meth:`_member_outputs`), sees the old network or the new one, never the new weights with the old model or
        a layer count that does not match (a ValueError from inside jaxnn) or an ensemble half forgotten."""
        state = {name: value for name, value in self.__dict__.items() if name not in forget}
        state.update(weights)
        state.update(_network_attributes(config, model, head))
        self.__dict__ = state

    def _store(self, setup: Setup, result) -> float | None:
        """Copy the FitResult into scikit-learn's attributes (NumPy, so the estimator pickles; ``loss_``,
        ``best_loss_`` and ``loss_curve_``'s values ``np.float64``, ``validation_scores_``' Python floats: MLP's types)
        and warn; with early stopping the validation scores and (jaxnn's addition) the validation loss of each epoch.
        Returns ``best_loss_`` as it stood before this fit's epochs (inf where the stopping rule starts afresh)."""
        config, continuing, incremental = setup.config, setup.continuing, setup.incremental
        watched = self._watched_so_far(config) if continuing and not incremental else None  # as the fit's plan
        n_epochs = int(result.n_epochs)
        losses = list(np.asarray(result.history, dtype=np.float64)[:n_epochs])  # np.float64 values, as MLP's
        params = as_numpy(result.params)
        network = {
            "coefs_": [p["W"] for p in params],
            "intercepts_": [p["b"] for p in params],
            "_optimizer_state": as_numpy(result.opt_state),
        }
        self._publish_network(config, setup.model, setup.targets.head, network, forget=ENSEMBLE_ATTRIBUTES)
        self.n_iter_ = n_epochs
        if not continuing:
            self.loss_curve_ = []
        if not continuing or config.early_stopping != (getattr(self, "validation_scores_", None) is not None):
            # A fresh stopping rule's attributes, also where early_stopping was switched: a fresh fit's (MLP's).
            self.best_loss_ = None if config.early_stopping else np.inf
            self.validation_scores_ = [] if config.early_stopping else None
            self.validation_loss_curve_ = [] if config.early_stopping else None
            self.best_validation_score_ = -np.inf if config.early_stopping else None
        self.loss_curve_ = [*self.loss_curve_, *losses]
        if losses:
            self.loss_ = losses[-1]
        best_before = self.best_loss_
        if self.best_loss_ is not None and losses:
            self.best_loss_ = np.float64(min(self.best_loss_, *losses))
        validation_scores = result.validation_scores if config.early_stopping else None
        if validation_scores is not None:
            # Epochs of an earlier fit without a recorded validation loss (an MLP's, converted) count as NaN.
            before = [*(getattr(self, "validation_loss_curve_", None) or [])]
            before += [np.nan] * (len(self.validation_scores_ or []) - len(before))
            scores = [float(v) for v in np.asarray(validation_scores)[:n_epochs]]
            self.validation_scores_ = [*(self.validation_scores_ or []), *scores]
            self.best_validation_score_ = max(self.validation_scores_, default=-np.inf)
            self.validation_loss_curve_ = [*before, *(float(v) for v in result.validation_losses[:n_epochs])]
        if self.verbose:
            monitored = result.history if validation_scores is None else validation_scores
            drops = {} if incremental else adaptive_lines(config, np.asarray(monitored)[:n_epochs], watched=watched)
            self._report(losses, validation_scores, n_epochs, drops, stopped_by=config if result.stopped else None)
        if not incremental and n_epochs == config.max_iter and not result.stopped:
            self._warn_not_converged(config)
        return best_before

    def _store_schedule(self, setup: Setup, result, best_before: float | None, carried=None) -> None:
        """``t_``, the samples trained on so far (scikit-learn's: every training row once per epoch, counted on
        through ``warm_start`` and ``partial_fit``), and ``partial_fit``'s count of calls in a row without
        improvement by ``tol``, continuing the count a ``fit`` ended with: with ``learning_rate='adaptive'`` a
        count past ``n_iter_no_change`` divides the rate by 5 for the next call (scikit-learn's ``partial_fit``;
        within a ``fit`` the training loop keeps the count itself, starting at 0).  ``best_before``: the best
        training loss before this call (inf after a switch of ``early_stopping``: the count starts afresh).
        ``carried``: what a ``warm_start`` fit's loop continued from (:meth:`_watched_so_far`; None: afresh); where
        no epoch improved, MLP's count goes on from the count the last fit ended with, which the loop enters
        capped at ``n_iter_no_change``."""
        config = setup.config
        seen = getattr(self, "t_", 0) if setup.continuing else 0
        self.t_ = seen + int(result.n_epochs) * training_rows(config, setup.X.shape[0])
        if not setup.incremental:
            count, n_epochs = int(result.no_improvement), int(result.n_epochs)
            if carried is not None and count == carried[1] + n_epochs:  # no epoch improved nor lowered the rate
                count = getattr(self, NO_IMPROVEMENT_COUNT, 0) + n_epochs
            setattr(self, NO_IMPROVEMENT_COUNT, count)
            return
        count = getattr(self, NO_IMPROVEMENT_COUNT, 0) if setup.continuing else 0
        count = count + 1 if self.loss_curve_[-1] > best_before - config.stopping.tol else 0
        plateau, lowered = count > config.stopping.n_iter_no_change, False
        if is_adaptive(config):  # one epoch per call: the plateau is counted here, between calls
            state, lowered = end_of_epoch(optimizer_for(config), self._optimizer_state, plateau, where=np.where)
            if lowered:
                self._optimizer_state = as_numpy(state)
                count = 0
        if self.verbose and plateau:
            print_call_plateau(config, learning_rate_of(self._optimizer_state) if lowered else None)
        setattr(self, NO_IMPROVEMENT_COUNT, count)

    def _store_ensemble(self, config, model, head, results, seeds) -> None:
        """An ensemble's attributes: each member's weights along a leading member axis, its epochs and curves;
        the single-network attributes (``coefs_``, ``loss_curve_``, ``n_iter_``, …) are not set."""
        params = [as_numpy(result.params) for result in results]
        n_epochs = [int(result.n_epochs) for result in results]
        network = {
            "ensemble_coefs_": [
                read_only(np.stack([p[layer]["W"] for p in params])) for layer in range(len(params[0]))
            ],
            "ensemble_intercepts_": [
                read_only(np.stack([p[layer]["b"] for p in params])) for layer in range(len(params[0]))
            ],
        }
        self._publish_network(config, model, head, network, forget=SINGLE_NETWORK_ATTRIBUTES)
        self.ensemble_seeds_ = np.asarray(seeds, dtype=np.int64)
        self.ensemble_n_iter_ = np.asarray(n_epochs)
        self.ensemble_loss_curves_ = [
            np.asarray(result.history)[:n].tolist() for result, n in zip(results, n_epochs, strict=True)
        ]
        self.ensemble_validation_scores_ = self.ensemble_validation_loss_curves_ = None
        if config.early_stopping:
            self.ensemble_validation_scores_ = [
                [float(v) for v in np.asarray(result.validation_scores)[:n]]
                for result, n in zip(results, n_epochs, strict=True)
            ]
            self.ensemble_validation_loss_curves_ = [
                [float(v) for v in np.asarray(result.validation_losses)[:n]]
                for result, n in zip(results, n_epochs, strict=True)
            ]
        if self.verbose:
            for k, member_seed in enumerate(seeds):
                print(f"Ensemble member {k} (seed {member_seed}):")
                scores = None if self.ensemble_validation_scores_ is None else self.ensemble_validation_scores_[k]
                monitored = np.asarray(results[k].history if scores is None else results[k].validation_scores)
                print_progress(self.ensemble_loss_curves_[k], scores, adaptive_lines(config, monitored[: n_epochs[k]]))
        reached = sum(n == config.max_iter and not result.stopped for n, result in zip(n_epochs, results, strict=True))
        if reached:
            self._warn_not_converged(config, detail=f" ({reached} of the {config.n_ensemble} ensemble members)")

    def _warn_not_converged(self, config, *, detail: str = "") -> None:
        """The ConvergenceWarning of a fit that ran all ``max_iter`` epochs (``detail``: which members did)."""
        warn(
            # scikit-learn's text first, so that filters and pytest.warns(match=...) written for MLP match
            f"Stochastic Optimizer: Maximum iterations ({config.max_iter}) reached and the optimization hasn't "
            f"converged yet. {type(self).__name__}: reached max_iter={config.max_iter} epochs before the "
            f"{'validation score' if config.early_stopping else 'training loss'} stopped improving by tol; "
            f"increase max_iter or learning_rate_init{detail}",
            ConvergenceWarning,
        )

    def _report(self, losses, validation_scores, n_epochs, drops, *, stopped_by):
        """``verbose``: the per-epoch progress, printed once the compiled loop has finished, with ``drops``
        (:func:`~jaxnn.sklearn.progress.adaptive_lines`), then MLP's line for a fit the stopping rule of
        ``stopped_by`` (the fit's Config) ended; None: the fit was not stopped."""
        scores = None if validation_scores is None else np.asarray(validation_scores)[:n_epochs]
        print_progress(losses, scores, drops)
        if stopped_by is not None:
            print_stop(stopped_by)

    def _member_outputs(self, X) -> np.ndarray:
        """Checked input through each network and its link: ``(n_members, n_samples, n_outputs)``."""
        check_is_fitted(self)
        X = checked_input(self, X)
        state = self.__dict__  # one fit's network: a fit replaces the dict whole (_publish_network)
        if "ensemble_coefs_" in state:
            return state["_predictor"](state["ensemble_coefs_"], state["ensemble_intercepts_"], X, ensemble=True)
        return state["_predictor"](state["coefs_"], state["intercepts_"], X, ensemble=False)

    def _mean_outputs(self, X) -> np.ndarray:
        """Checked input through the network and its link: ``(n_samples, n_outputs)`` probabilities for a
        classifier, predictions for a regressor; an ensemble's members' outputs averaged."""
        outputs = self._member_outputs(X)
        return outputs[0] if outputs.shape[0] == 1 else outputs.mean(axis=0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified whole, up to DENSE_COPY_LIMIT_BYTES
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
    ``max_iter``, input width and float type — train as one :func:`jaxnn.engine.train` population,
    whatever their ``random_state``, ``learning_rate_init``, ``alpha``, ``power_t``, ``dropout`` rates (above 0),
    data and sample counts (each member padded with rows of weight 0 to a common size).  So a grid search over
    learning rates and penalties (all folds, all candidates) is one compiled program, and new values compile
    nothing; a grid over ``hidden_layer_sizes`` is one population per architecture.  Estimators with
    ``n_ensemble > 1`` bring all their members.  A ``warm_start`` fit that continues a fitted network,
    ``solver='lbfgs'``, an estimator that is not a jaxnn estimator, and a repeated estimator (from its second
    occurrence on, in order) are fitted alone.

    Example: ``fit_estimators([NeuralNetClassifier(learning_rate_init=lr) for lr in (1e-3, 1e-2)], [(X, y)] * 2)``.
    """
    if isinstance(estimators, BaseEstimator | str) or not hasattr(estimators, "__iter__"):
        raise TypeError(
            f"fit_estimators takes a list of estimators, got {type(estimators).__name__}; for one estimator "
            "pass [estimator] and [(X, y)]"
        )
    estimators = list(estimators)
    not_estimators = [
        type(estimator).__name__ for estimator in estimators if not callable(getattr(estimator, "fit", None))
    ]
    if not_estimators:
        raise TypeError(f"fit_estimators takes estimators (objects with a fit method), got {not_estimators[0]}")
    datasets = checked_datasets(datasets)
    if len(estimators) != len(datasets):
        raise ValueError(
            f"fit_estimators got {len(estimators)} estimators but {len(datasets)} data sets; give one (X, y) or "
            "(X, y, sample_weight) per estimator"
        )
    outcomes: list = [None] * len(estimators)
    records = records_of(estimators, lambda estimator: isinstance(estimator, NeuralNetBase))  # put back on failure
    try:
        _fit_population(estimators, datasets, outcomes, records)
    except BaseException:  # Ctrl-C: no estimator is left with half a fit
        put_back_unfinished(estimators, outcomes, records)
        raise
    for index, outcome in enumerate(outcomes):
        if outcome is None:  # not a jaxnn estimator, or a repeated one: its own fit
            outcomes[index] = fit_alone(estimators[index], datasets[index])
    return outcomes


def _fit_population(estimators: list, datasets: list, outcomes: list, records: list) -> None:
    """:func:`fit_estimators`' population: each jaxnn estimator's fit (from the first occurrence of each) set up,
    trained with the others that share its compiled configuration, and stored; ``outcomes[i]`` becomes the
    estimator or the exception its fit raised, and stays None for those left to fit alone."""
    setups: dict[int, Setup] = {}
    tasks: dict[int, FitTasks | None] = {}  # scikit-learn's callbacks: each fit's task tree
    seen = set()
    with ExitStack() as callbacks:  # each estimator's callbacks are torn down at the end, as after its fit
        for index, (estimator, (X, y, sample_weight)) in enumerate(zip(estimators, datasets, strict=True)):
            if not isinstance(estimator, NeuralNetBase) or id(estimator) in seen:
                continue  # fitted alone, afterwards
            seen.add(id(estimator))
            try:
                setup = estimator._setup(X, y, sample_weight, incremental=False)
                callbacks.enter_context(lifecycle(estimator))
                tasks[index] = estimator._tasks(setup, sample_weight)
                if is_lbfgs(setup.config.solver):  # its own compiled loop (jaxnn.lbfgs), one network at a time
                    outcomes[index] = estimator._fit_lbfgs(setup, tasks[index])
                else:
                    setups[index] = setup
            except Exception as error:  # returned where the lone fit raises it
                outcomes[index] = failed(estimator, records[index], error)
        plans: dict[int, list[Plan]] = {}
        compile_cache.enable_default()
        for index, setup in list(setups.items()):
            try:
                with precision(setup.X.dtype):
                    plans[index] = estimators[index]._plans(setup)
            except Exception as error:
                outcomes[index] = failed(estimators[index], records[index], error)
                del setups[index]
        guards = {index: Guarded(watches(tasks[index]) or [None] * len(own)) for index, own in plans.items()}
        heard = [watch for guard in guards.values() for watch in guard.watches]
        results = iter(train_plans([plan for planned in plans.values() for plan in planned], heard))
        for index, planned in plans.items():  # results come in the order of the plans
            own = [next(results) for _ in planned]
            try:
                outcomes[index] = estimators[index]._finish(setups[index], guards[index].results(own), tasks[index])
            except Exception as error:
                outcomes[index] = failed(estimators[index], records[index], error)
