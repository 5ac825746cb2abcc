"""The two scikit-learn estimators, :class:`NeuralNetClassifier` and :class:`NeuralNetRegressor`: what each
takes as targets, and how it predicts.

They follow the contract of scikit-learn's ``MLPClassifier``/``MLPRegressor`` (same parameter and attribute
names where those exist), so they drop into ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.
Underneath, the network is a :class:`~jaxnn.layers.Sequential` of :class:`~jaxnn.layers.Dense` layers and
training is jaxnn's compiled training loop: every epoch runs inside compiled code and the gradients are
jaxnn's hand-written backward rules.  Their fit is :class:`jaxnn.sklearn.base.NeuralNetBase`'s; many of them
fit at once with :func:`jaxnn.fit_estimators`, and :mod:`jaxnn.model_selection`'s searches train their
candidates × folds that way.

What training minimises.  With per-sample weights ``w`` (all 1 by default) and ``n`` samples::

    L(θ) = Σ_i w_i l_i / Σ_i w_i        l_i: the loss of sample i (see ``loss``)

and ``alpha > 0`` adds scikit-learn's L2 penalty ``alpha/(2m)·Σ_layers ‖W‖²`` on the weights (not the
biases), where ``m`` is the weight of one batch (``Σw`` for a full batch, ``Σw·batch_size/n`` for
minibatches).  The penalty enters as its gradient ``(alpha/m)·W``, added to the loss gradient before
the solver's update (``optax.add_decayed_weights``); ``loss_curve_`` reports ``L`` plus the penalty at
each batch's starting weights (``jaxnn.optimizers.l2_penalty``), scikit-learn's ``loss_``, and the
stopping rule watches that same value.  With minibatches an epoch's entry is the mean of its batches'
values (penalty included) weighted by each batch's ``Σw``.
``solver='lbfgs'`` minimises the full-batch ``L`` plus the penalty as one objective, with scikit-learn's
full-batch L-BFGS (:mod:`jaxnn.lbfgs`: scipy's L-BFGS-B step for step, in one compiled loop); there
``loss_``, ``loss_curve_`` (one entry per iteration) and the stopping tests include the penalty, as
scikit-learn's ``loss_`` does for lbfgs.

Minibatches differ from scikit-learn's MLP in two ways (full batches do not): MLP's ``m`` is each batch's own
``Σw``, which differs from the fixed ``Σw·batch_size/n`` on a short last batch (``n`` not a multiple of
``batch_size``) and on every batch under uneven ``sample_weight`` or ``class_weight``, so with ``alpha > 0``
the steps differ there; and MLP's epoch loss weights each batch by its row count, not its ``Σw``, so under
uneven weights ``loss_curve_`` differs from MLP's even with ``alpha=0`` (the steps do not).

Precision.  Like scikit-learn's MLP, the estimators keep the input's floating dtype: float32 input trains in
float32, float64 (and integer) input in float64 (inside ``jax.enable_x64``, for this call only), and the fitted
``coefs_`` have that dtype.  Both start from the same initial weights, minibatches and dropout masks, so they fit
the same model up to rounding, as scikit-learn's MLP does.  Both run the same compiled loop, so float64 costs what
float64 arithmetic costs and nothing else: on a CPU somewhat more than float32 per epoch (a vector instruction holds
half as many float64 numbers; ``benchmarks/README.md`` has the factor), on GPUs and TPUs many times more.  Pass
float32 input (``X.astype(np.float32)``) when its 7 significant digits are enough, which they are for training a
network.

Divergence.  A step whose loss or weights are not finite stops training (see :func:`jaxnn.train.fit`) and
``fit`` raises a ``ValueError`` that says so and what to change, leaving the estimator exactly as it was before
the call.  The last finite weights are not kept: by then they are typically huge, and their predictions
overflow.  The exception is ``early_stopping=True`` after at least one healthy epoch: the weights of the
best-scoring epoch are kept (as scikit-learn's MLP keeps them), with a ``ConvergenceWarning`` that says
training diverged.  A fitted estimator never holds NaN weights.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if

from jaxnn._checks import is_int
from jaxnn.sklearn.base import NeuralNetBase
from jaxnn.sklearn.bridge import MLPBridge
from jaxnn.sklearn.class_weights import BALANCED_WITHOUT_PARTIAL_FIT, CLASS_WEIGHTED, class_weighted, training_weights
from jaxnn.sklearn.features import HiddenFeatures
from jaxnn.sklearn.targets import (
    check_classes,
    check_weighted_classes,
    class_probabilities,
    class_targets,
    classifier_data,
    indicator_predictions,
    needs_nonnegative_targets,
    regression_targets,
    regressor_data,
)
from jaxnn.sklearn.training import Setup

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

SOLVERS_WITHOUT_PARTIAL_FIT = ("lbfgs",)  # scikit-learn's MLP: partial_fit only for the solvers that take steps


def _has_partial_fit(estimator) -> bool:
    """``partial_fit`` exists unless the solver takes no steps, ``n_ensemble > 1`` (partial_fit continues one
    network) or ``class_weight='balanced'`` (one call's labels are not the classes' frequencies): scikit-learn's
    ``available_if`` rule, an ``AttributeError`` that says why, so ``hasattr`` is False (and scikit-learn's
    estimator checks leave ``partial_fit`` out, as for ``'lbfgs'``)."""
    solver, n_ensemble = estimator.solver, estimator.n_ensemble
    if isinstance(getattr(estimator, "class_weight", None), str) and estimator.class_weight == "balanced":
        raise AttributeError(BALANCED_WITHOUT_PARTIAL_FIT)
    if isinstance(solver, str) and solver in SOLVERS_WITHOUT_PARTIAL_FIT:
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {solver} is not stochastic; use fit, or a "
            "solver that takes steps ('sgd', 'adam', 'gd')"
        )
    if is_int(n_ensemble) and n_ensemble > 1:
        raise AttributeError(
            f"partial_fit trains one network, but n_ensemble={n_ensemble}; use fit (which trains the members "
            "together) or set n_ensemble=1"
        )
    if hasattr(estimator, "ensemble_coefs_"):  # n_ensemble set back to 1 after fitting an ensemble
        raise AttributeError(
            "partial_fit continues one fitted network, but this estimator holds a fitted ensemble; fit it again "
            "(with n_ensemble=1) first"
        )
    return True


class NeuralNetClassifier(ClassifierMixin, HiddenFeatures, MLPBridge, NeuralNetBase):
    """A dense neural network classifier with hand-derived backpropagation, trained by one compiled loop.

    For several classes the last layer has one unit per class and is trained with the fused softmax
    cross-entropy (``predict_proba`` is its softmax); for two classes it has one unit trained with the
    fused sigmoid binary cross-entropy.  Labels may be any sortable values (ints, strings, …), one per
    sample; a single class is fitted too and always predicted (``predict_proba`` is a column of ones).  A
    multilabel indicator matrix ``y`` of shape ``(n_samples, L)`` gets L sigmoid outputs trained with the
    binary cross-entropy summed over labels (scikit-learn's): ``classes_`` is ``arange(L)``, ``predict``
    returns the indicator matrix of the labels whose ``predict_proba`` exceeds ½ (a CSR matrix when ``y`` was a
    ``scipy.sparse`` matrix, as MLP's), and early stopping does not stratify.

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
        test_size=validation_fraction, random_state=...)`` with MLP's random state (``RandomState(random_state)``
        past the draws of the initial weights, or without them when ``warm_start`` continues), so an int
        ``random_state`` holds out MLP's rows; stratified as MLP's (only for two classes), and keep
        the weights of the epoch with the best validation accuracy.
      init: the initial weights.  ``'mlp'`` (default): scikit-learn MLP's, drawn exactly as it draws them
        (layer by layer ``W`` then ``b`` ~ U[−r, r], ``r = √(6/(n_in + n_out))``, or ``√(2/…)`` for logistic
        hidden units, from ``numpy.random.RandomState(seed)``), so an int ``random_state`` starts from the
        very weights ``MLPClassifier(random_state=…)`` starts from.  Or one of jaxnn's initialisers, drawn
        with ``jax.random``: ``'glorot'``, ``'he'``, or the seeds' ``'normal'``, ``'small_normal'``,
        ``'uniform'``.
      loss: ``'auto'`` (MLP's log-loss: ``'log_loss'``, or ``'binary_log_loss'`` for two classes, one class and
        multilabel targets) or a jaxnn loss name/object, e.g. ``'categorical_cross_entropy'`` (softmax as the
        last layer, as in the seeds) or ``'mean_squared_error'`` (on the softmax/sigmoid output).
      random_state: an int in ``[0, 2**32 - 1]`` seeds everything: the initial weights (see ``init``), the
        shuffling (a key split from ``jax.random.key(random_state)``: ``jaxnn.train.training_keys``) and the
        early-stopping split; same seed, same result.
        None or a ``numpy.random.RandomState`` draws the seed from it.
      warm_start: continue from the current weights on the next ``fit``.
      verbose: print each epoch's loss after training.
      n_ensemble: train this many networks as one population and average their class probabilities.
        Member k uses the seed ``(s + k) mod 2**32``, ``s`` the seed of ``random_state``: member 0 is the
        network ``n_ensemble=1`` trains, member k the one ``random_state=s + k`` trains alone (its
        early-stopping split included).  An ensemble is not continued: ``partial_fit`` is not there (an
        AttributeError, as for ``'lbfgs'``), and ``fit`` with ``warm_start=True`` on a fitted ensemble raises a
        ValueError.
      class_weight: ``None``, ``'balanced'`` or a dict ``{label: weight}`` (a list of dicts, one per label,
        for multilabel ``y``): multiplied into ``sample_weight`` as ``LogisticRegression`` does (see
        :mod:`jaxnn.sklearn.class_weights`); with ``'balanced'`` there is no ``partial_fit`` (an AttributeError
        whose cause says what to pass instead).
      dropout: inverted dropout during training (scikit-learn issue #6175, :mod:`jaxnn.dropout`): a rate in
        ``[0, 1)`` for every hidden layer, or a list of one per hidden layer.  Each training step drops each
        hidden unit with that probability and scales the kept ones by ``1/(1 − rate)``, with masks drawn from
        ``random_state``; ``predict``, ``predict_proba``, ``transform`` and the early-stopping score never drop
        anything.  The rates are data, not part of the compiled loop, so a grid over them (above 0) is one
        population.  ``0`` (the default) trains exactly as without dropout; ``solver='lbfgs'`` needs 0.
      scoring: what early stopping (``early_stopping=True``) watches on the validation split, by scikit-learn's
        scorer names (scikit-learn issue #24411): None (the default) is ``score()``, as MLP (so are ``'accuracy'``
        and a regressor's ``'r2'``); a classifier also takes ``'balanced_accuracy'`` and ``'neg_log_loss'``, a
        regressor ``'neg_mean_squared_error'`` and ``'neg_mean_absolute_error'`` (``jaxnn.heads.SCORINGS``); the
        metric runs inside the compiled loop.
        ``validation_scores_`` and ``best_validation_score_`` then hold it.  Another name is a ValueError.

    Every default is ``MLPClassifier``'s (``learning_rate_init=0.001``, ``max_iter=200``, …), so swapping the
    import changes nothing; ``init``, ``loss``, ``n_ensemble``, ``dropout`` and ``scoring`` are jaxnn's own.  Small
    data sets such as iris may need ``learning_rate_init=0.01`` or more ``max_iter`` to converge.

    Attributes:
      classes_, coefs_ (list of ``(n_in, n_out)`` arrays), intercepts_, loss_ , loss_curve_, best_loss_
      (None with early stopping), validation_scores_, best_validation_score_ (None without),
      validation_loss_curve_ (jaxnn's addition, scikit-learn issue #18507; None without early stopping: the
      loss of the validation split after each epoch, with the L2 penalty that ``loss_curve_`` includes, so the
      two curves compare), n_iter_, t_ (training samples seen: rows × epochs, counted on by ``warm_start`` and
      ``partial_fit``), n_layers_, n_outputs_, out_activation_, n_features_in_, feature_names_in_.

    With ``n_ensemble = K > 1`` there is no single network, so the attributes of one (coefs_, intercepts_, loss_,
    loss_curve_, best_loss_, validation_scores_, validation_loss_curve_, best_validation_score_, n_iter_, t_) are not
    set; instead:
    ensemble_seeds_ ``(K,)``; ensemble_coefs_ and ensemble_intercepts_, per layer ``(K, n_in, n_out)`` and ``(K,
    n_out)``; ensemble_n_iter_ ``(K,)``; ensemble_loss_curves_ and, with early stopping, ensemble_validation_scores_
    and ensemble_validation_loss_curves_ (else None), one list per member. ``predict_members(X)`` gives each member's
    probabilities, ``(K, n_samples, n_classes)``: the spread around ``predict_proba``.

    Beyond MLP: ``transform(X)`` gives the last hidden layer's activations and ``hidden_activations(X)`` every
    hidden layer's, so a fitted network is a feature extractor in a ``Pipeline`` (:mod:`jaxnn.sklearn.features`;
    not there for ``n_ensemble > 1`` or ``hidden_layer_sizes=()``, which have no single set of hidden features);
    ``to_sklearn()`` exports the fitted network as a fitted ``MLPClassifier`` and ``from_sklearn(mlp)`` imports one
    (:mod:`jaxnn.sklearn.bridge`).

    Example:
      >>> from sklearn.pipeline import make_pipeline
      >>> from sklearn.preprocessing import StandardScaler
      >>> clf = make_pipeline(StandardScaler(), NeuralNetClassifier((10, 5), random_state=0)).fit(X, y)
    """

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
        class_weight=None,
        dropout=0.0,
        scoring=None,
    ):
        # Every parameter by name, as scikit-learn's estimators declare them (get_params reads the signature).
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            init=init,
            loss=loss,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            n_ensemble=n_ensemble,
            dropout=dropout,
            scoring=scoring,
        )
        self.class_weight = class_weight

    def _validate_targets(self, X, y, *, reset, incremental):
        return classifier_data(self, X, y, reset=reset, incremental=incremental)

    def _setup(self, X, y, sample_weight, *, incremental, classes=None):
        """The base class's checks, and whether ``predict`` will return a sparse matrix (``_sparse_labels``, set
        with the fitted attributes): as MLP's ``LabelBinarizer``, a fit that starts over records whether ``y`` is a
        ``scipy.sparse`` multilabel indicator matrix; ``warm_start`` and ``partial_fit`` keep that record."""
        setup = super()._setup(X, y, sample_weight, incremental=incremental, classes=classes)
        if setup.continuing:
            sparse = getattr(self, "_sparse_labels", False)
        else:
            sparse = scipy.sparse.issparse(y) and setup.targets.head.multilabel
        fitted = {**setup.targets.fitted, "_sparse_labels": bool(sparse)}
        return setup._replace(targets=setup.targets._replace(fitted=fitted))

    def _sample_weights(self, y, weight, dtype, *, incremental, classes=None):
        """``sample_weight`` times ``class_weight``'s weight of each sample's class (scikit-learn's meaning), in
        float64, then in the training ``dtype``, where a fit's weights must leave two classes weighted."""
        known = self.classes_ if classes is None and hasattr(self, "classes_") and incremental else classes
        weighted = class_weighted(self.class_weight, y, weight, incremental=incremental, classes=known)
        weighted = training_weights(weighted, dtype, what=self._weights_name())
        if not incremental:
            check_weighted_classes(y, weighted, self._weights_name())
        return weighted

    def _weights_name(self) -> str:
        return "sample_weight" if self.class_weight is None else CLASS_WEIGHTED

    def _encode_targets(self, y, *, continuing, incremental, classes=None):
        """Labels → one-hot rows or a 0/1 column; a multilabel indicator matrix → its 0/1 columns (see
        :func:`jaxnn.sklearn.targets.class_targets`)."""
        fitted = (self._head, self.classes_) if continuing else None
        return class_targets(y, self.loss, fitted=fitted, incremental=incremental, classes=classes)

    def _stratify(self, y, targets):
        """As scikit-learn's MLP: stratified only when its binarized targets are one column (two classes, or a
        one-label indicator matrix), on that boolean column (so a class too rare to split is named by its
        indicator, e.g. ``'True'``); several classes or labels are split at random, unstratified."""
        if y.ndim == 2:
            return np.asarray(y, dtype=bool) if y.shape[1] == 1 else None
        labels = np.unique(y)
        return (y == labels[-1]).reshape(-1, 1) if len(labels) <= 2 else None

    @available_if(_has_partial_fit)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X, y``, continuing from the current weights and optimiser state.

        ``classes`` (every label that will ever appear in ``y``) is required on the first call, as MLP requires
        it; for a multilabel indicator matrix ``y`` its columns are the labels and the values given in
        ``classes`` are not read.  Not available with ``solver='lbfgs'``.
        """
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError(  # MLP's message first
                "classes must be passed on the first call to partial_fit. jaxnn: the first call to partial_fit "
                "needs classes=: every label that can appear in y"
            )
        if classes is not None and (isinstance(classes, str | bytes) or np.ndim(classes) == 0):
            raise ValueError(  # MLP's message first (a string or a number would be taken as one label)
                f"Expected array-like (array or non-string sequence), got {classes!r:.80}. jaxnn: classes= must "
                "list every label that can appear in y, e.g. classes=[0, 1, 2] or classes=['a', 'b']"
            )
        if classes is not None:
            check_classes(classes)  # before y, as MLP checks them
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, ``(n_samples, n_classes)`` in the order of ``classes_``; an ensemble's are
        the mean of its members'."""
        return class_probabilities(self._mean_outputs(X), self._head)

    def predict_members(self, X):
        """Each network's class probabilities, ``(n_ensemble, n_samples, n_classes)``: the spread behind an
        ensemble's ``predict_proba`` (their mean); ``(1, n_samples, n_classes)`` for a single network."""
        return np.stack([class_probabilities(outputs, self._head) for outputs in self._member_outputs(X)])

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``: −inf where a probability underflows to 0, which here includes the
        subnormal ones (below about 1e-308 in float64, 1e-38 in float32) that XLA's compiled forward pass
        flushes to 0 and NumPy would keep (MLP's gives about −710 there)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample; for multilabel targets the indicator matrix of the labels
        whose probability exceeds ½, a CSR matrix (as MLP's) when the fit that learnt the labels had a
        ``scipy.sparse`` ``y`` (:func:`jaxnn.sklearn.targets.indicator_predictions`)."""
        probabilities = self.predict_proba(X)
        if self._head.multilabel:
            return indicator_predictions(probabilities, sparse=getattr(self, "_sparse_labels", False))
        return self.classes_[np.argmax(probabilities, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NeuralNetRegressor(RegressorMixin, HiddenFeatures, MLPBridge, NeuralNetBase):
    """A dense neural network regressor with hand-derived backpropagation, trained by one compiled loop.

    The last layer is linear (identity) with one unit per target column, trained by default with
    scikit-learn's ``loss='squared_error'``: as MLPRegressor, it reports half the mean squared error
    ``½·mean_i mean_j (p_ij − y_ij)²`` (``loss_curve_``) and steps on the gradient of ``½·mean_i Σ_j (p_ij − y_ij)²``,
    summed over the targets (``jaxnn.losses.scikit_learn_squared_error``; the Loss object ``jaxnn.squared_error``
    steps on the mean's).  Multi-output ``y`` of shape ``(n_samples, n_targets)``
    is supported; a column ``y`` of shape ``(n_samples, 1)`` is raveled with a DataConversionWarning.

    Parameters are those of :class:`NeuralNetClassifier` but ``class_weight`` (``dropout`` and ``scoring``
    included), with MLPRegressor's defaults (``early_stopping`` watches the validation R² of the predictions).
    ``loss``: ``'squared_error'`` (the default, and what ``'auto'`` means: MLP's loss, above); ``'poisson'`` (for counts
    ``y >= 0``: the output is ``exp`` of the last layer, ``out_activation_ = 'exp'``, trained with the half
    Poisson deviance ``mean_i Σ_j [y log(y/μ) − y + μ]``, fused with the exp); ``'mean_squared_error'``,
    ``'sum_of_squares'`` or any jaxnn regression ``Loss``.  Scale the target (e.g. ``TransformedTargetRegressor``
    with a ``StandardScaler``) when it is far from unit scale.

    Attributes: coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_, validation_loss_curve_ (as
    the classifier's), best_validation_score_, n_iter_, t_, n_layers_, n_outputs_, out_activation_ (``'identity'``,
    ``'exp'``), n_features_in_, feature_names_in_. With ``n_ensemble = K > 1`` (``predict`` averages the members'
    predictions) the ensemble_* attributes of :class:`NeuralNetClassifier` replace the single network's, and
    ``predict_members(X)`` gives each member's predictions, ``(K, n_samples)`` (or ``(K, n_samples, n_targets)``).
    ``transform``, ``hidden_activations``, ``to_sklearn`` and ``from_sklearn`` are the classifier's (an
    ``MLPRegressor`` both ways).
    """

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
        loss="squared_error",
        random_state=None,
        warm_start=False,
        verbose=False,
        n_ensemble=1,
        dropout=0.0,
        scoring=None,
    ):
        # Every parameter by name, as scikit-learn's estimators declare them; MLPRegressor's default loss.
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            init=init,
            loss=loss,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            n_ensemble=n_ensemble,
            dropout=dropout,
            scoring=scoring,
        )

    def _validate_targets(self, X, y, *, reset, incremental):
        return regressor_data(self, X, y, reset=reset)

    def _encode_targets(self, y, *, continuing, incremental, classes=None):
        """Targets as ``(n_samples, n_targets)`` columns; predictions come back in ``y``'s shape."""
        targets = regression_targets(y, self.loss, fitted=self._head if continuing else None)
        return targets if continuing else targets._replace(fitted={"_y_is_1d": y.ndim == 1})

    def _divergence_advice(self, setup: Setup) -> str:
        """Scale y too; and where y, or its squared error, does not fit the training dtype, say so first, with the
        remedies that work at that size: float64 X where y fits float64's squares, a scaled y where the predictions
        (in X's dtype) can hold y again, MaxAbsScaler where StandardScaler's variance of y overflows."""
        targets, dtype = setup.targets.matrix, setup.X.dtype
        largest = float(np.max(np.abs(targets))) if targets.size else 0.0
        squared = setup.targets.head.loss.name in (
            "squared_error",
            "scikit_learn_squared_error",
            "mean_squared_error",
            "sum_of_squares",
        )
        scalers = "transformer=StandardScaler(), or MaxAbsScaler() if y is so large that its variance overflows"
        if largest > np.finfo(dtype).max:  # float32 X: y itself is beyond the dtype the network predicts in
            squares_overflow_float64 = squared and largest > math.sqrt(np.finfo(np.float64).max)
            return (
                f"; y reaches {largest:.3g}, beyond {dtype}'s range (X's dtype, which the network trains and predicts "
                "in, so a scaled y cannot be predicted back in it either): pass X as float64"
                + (
                    ", and scale the target y, whose square overflows float64 too (sklearn.compose."
                    "TransformedTargetRegressor with transformer=MaxAbsScaler())"
                    if squares_overflow_float64
                    else ""
                )
            )
        if not (squared and largest > math.sqrt(np.finfo(dtype).max)):
            return (
                f"; for a regressor, scale the target y too (sklearn.compose.TransformedTargetRegressor with {scalers})"
            )
        if dtype == np.float32:
            return (
                f"; y reaches {largest:.3g}, whose square overflows float32 (X's dtype, which the network trains in), "
                "so even the loss at the starting weights is infinite: pass X as float64, or scale the target y "
                f"(sklearn.compose.TransformedTargetRegressor with {scalers})"
            )
        return (
            f"; y reaches {largest:.3g}, whose square overflows {dtype}: even the loss at the starting weights is "
            f"infinite; scale the target y (sklearn.compose.TransformedTargetRegressor with {scalers})"
        )

    @available_if(_has_partial_fit)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``, continuing from the current weights and optimiser state (not available
        with ``solver='lbfgs'``)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, ``(n_samples,)`` for a 1-D ``y`` at fit time, else ``(n_samples, n_targets)``; an
        ensemble's are the mean of its members'."""
        outputs = self._mean_outputs(X)
        return outputs[:, 0] if self._y_is_1d else outputs

    def predict_members(self, X):
        """Each network's predictions, ``(n_ensemble, n_samples)`` for a 1-D ``y`` at fit time, else
        ``(n_ensemble, n_samples, n_targets)``: the spread behind an ensemble's ``predict`` (their mean)."""
        outputs = self._member_outputs(X)
        return outputs[:, :, 0] if self._y_is_1d else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = needs_nonnegative_targets(self.loss)  # loss='poisson' refuses y < 0
        return tags
