"""Both ways between jaxnn's estimators and scikit-learn's ``MLPClassifier``/``MLPRegressor``: ``to_sklearn()``
exports a fitted network as a fitted MLP, ``from_sklearn(mlp)`` imports a fitted MLP as a fitted jaxnn
estimator (which ``warm_start=True`` or ``partial_fit`` then trains on).

The two share the network: dense layers ``W`` ``(n_in, n_out)`` and ``b``, one hidden activation, and an output
activation fixed by the task (softmax, logistic, identity or exp).  So an exported MLP predicts what the jaxnn
estimator predicts, to float rounding, and the other way round.  What MLP cannot hold is a ``ValueError`` naming
it: a hidden activation MLP lacks (``'softmax'``, ``'binary_step'``, ``'leaky_relu'``, or different activations
per layer), a loss MLP lacks (MLP's are the log-loss for classes, ``'squared_error'`` and ``'poisson'`` for
regression; the Loss object ``jaxnn.squared_error`` on several targets steps on their mean, MLP on their sum), a
solver MLP lacks (``'gd'``, an optax transformation: ``set_params(solver='sgd')`` first keeps the weights), and an
ensemble (``n_ensemble > 1``: not one network).  jaxnn's training-only parameters that MLP does not have (``init``,
``class_weight``, ``dropout``) shape the weights but not the predictions and are not exported.

An exported MLP predicts, scores, refits and continues with its own ``warm_start``/``partial_fit``: the export
carries the stopping rule's state MLP reads (its count of epochs without improvement and best weights), but not
the optimiser's (Adam's moments, momentum), so MLP continues from a fresh optimiser as its own ``warm_start`` fit
does (its ``partial_fit`` would keep its optimiser).  An imported network continues with a fresh optimiser state
(MLP's ``warm_start`` fit also starts a fresh optimiser) and MLP's count of epochs without improvement, so its
``warm_start`` fit stops where MLP's own would (an MLP that stopped on ``n_iter_no_change`` trains one more epoch,
not ``n_iter_no_change`` + 1); its ``loss_curve_``, ``best_loss_``, ``n_iter_`` and ``t_`` are MLP's, and its
``coefs_`` and ``intercepts_`` read-only copies of MLP's, as a fit leaves them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.base import is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

from jaxnn.heads import (
    CLASSIFICATION,
    Head,
    classification_head,
    multilabel_head,
    regression_head,
    scikit_learn_loss,
    single_class_head,
)
from jaxnn.losses import Loss, squared_error
from jaxnn.sklearn.constraints import check_params
from jaxnn.sklearn.internals import NO_IMPROVEMENT_COUNT, set_label_binarizer, set_stopping_state, sparse_label_input
from jaxnn.sklearn.prediction import read_only
from jaxnn.sklearn.targets import regression_loss
from jaxnn.sklearn.training import network

__all__ = ["MLP_ACTIVATIONS", "MLP_CLASSIFIER_LOSSES", "MLP_REGRESSOR_LOSSES", "MLPBridge"]

# jaxnn's hidden activation -> MLP's name for it ('linear' with its default slope is the identity)
MLP_ACTIVATIONS = {
    "identity": "identity",
    "linear": "identity",
    "sigmoid": "logistic",
    "logistic": "logistic",
    "tanh": "tanh",
    "relu": "relu",
}
# jaxnn's classification losses that are MLP's log-loss (fused with the output activation or not)
MLP_CLASSIFIER_LOSSES = (
    "auto",
    "log_loss",
    "binary_log_loss",
    "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "categorical_cross_entropy",
    "binary_cross_entropy",
)
# jaxnn's regression loss -> MLPRegressor's loss
MLP_REGRESSOR_LOSSES = {
    "auto": "squared_error",
    "squared_error": "squared_error",
    "scikit_learn_squared_error": "squared_error",
    "poisson": "poisson",
    "half_poisson_deviance": "poisson",
}
_MLP_SOLVERS = ("lbfgs", "sgd", "adam")
_FITTED_RECORDS = (
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "t_",
)


def _copy(value):
    return list(value) if isinstance(value, list) else value


def _mlp_activation(activation, n_hidden: int) -> str:
    names = [activation] * max(n_hidden, 1) if isinstance(activation, str) else list(activation)
    unknown = sorted({name for name in names if name not in MLP_ACTIVATIONS})
    if unknown:
        raise ValueError(
            f"scikit-learn's MLP has no hidden activation {', '.join(map(repr, unknown))}; it takes "
            "'identity', 'logistic', 'tanh' or 'relu', so this network cannot be exported"
        )
    mapped = {MLP_ACTIVATIONS[name] for name in names}
    if len(mapped) > 1:
        raise ValueError(
            f"scikit-learn's MLP has one activation for every hidden layer, but activation={list(names)!r}; "
            "this network cannot be exported"
        )
    return mapped.pop()


def _read_only_copy(array) -> np.ndarray:
    return read_only(np.array(array))


def _loss_name(loss) -> str:
    return loss.name if isinstance(loss, Loss) else loss


class MLPBridge:
    """``to_sklearn`` and ``from_sklearn`` for :class:`~jaxnn.sklearn.base.NeuralNetBase`'s subclasses."""

    def to_sklearn(self):
        """This fitted network as a fitted ``MLPClassifier`` (or ``MLPRegressor``) that predicts what it predicts,
        to float rounding: hyper-parameters mapped to MLP's, weights and fitted attributes copied.  (One exception:
        fitted on a single class, this estimator's ``predict_proba`` is one column of ones and MLP's two columns
        read from its sigmoid; ``predict`` agrees.)

        Raises ``ValueError`` for what MLP cannot hold (see :mod:`jaxnn.sklearn.bridge`).

        Example:
          >>> clf = NeuralNetClassifier((10,), random_state=0).fit(X, y)
          >>> mlp = clf.to_sklearn()
          >>> (mlp.predict(X) == clf.predict(X)).all()
        """
        check_is_fitted(self)
        if hasattr(self, "ensemble_coefs_"):
            raise ValueError(
                "this estimator is an ensemble of several networks (n_ensemble > 1) and scikit-learn's MLP holds "
                "one; refit with n_ensemble=1 to export it"
            )
        classifier = is_classifier(self)
        mlp_class = MLPClassifier if classifier else MLPRegressor
        mlp_names = mlp_class().get_params(deep=False)
        params = {name: value for name, value in self.get_params(deep=False).items() if name in mlp_names}
        hidden = self._model.layers[:-1]  # the fitted network's, not a later set_params's
        params["hidden_layer_sizes"] = tuple(layer.units for layer in hidden)
        params["activation"] = _mlp_activation([layer.activation for layer in hidden] or self.activation, len(hidden))
        if not (isinstance(self.solver, str) and self.solver in _MLP_SOLVERS):
            raise ValueError(
                f"scikit-learn's MLP has no solver {self.solver!r} (it has 'lbfgs', 'sgd' and 'adam'); "
                "set_params(solver='sgd') or 'adam' first (the fitted weights stay as they are) to export"
            )
        loss = _loss_name(self.loss)
        if classifier and loss not in MLP_CLASSIFIER_LOSSES:
            raise ValueError(
                f"scikit-learn's MLPClassifier has no loss {loss!r}: it trains with the log-loss ('auto', "
                "'softmax_cross_entropy', 'sigmoid_binary_cross_entropy' and their unfused forms here)"
            )
        if not classifier:
            if loss not in MLP_REGRESSOR_LOSSES:
                raise ValueError(
                    f"scikit-learn's MLPRegressor has no loss {loss!r}: it takes 'squared_error' and 'poisson'"
                )
            if self.loss is squared_error and self.n_outputs_ > 1:  # the Loss object: not MLP's step on k targets
                raise ValueError(
                    f"scikit-learn's MLPRegressor steps on the squared error summed over the {self.n_outputs_} "
                    "targets, and this network trains with jaxnn.squared_error, on the gradient of their mean; "
                    "set_params(loss='squared_error') first (the fitted weights stay as they are) to export"
                )
            params["loss"] = MLP_REGRESSOR_LOSSES[loss]
        mlp = mlp_class(**params)
        mlp.coefs_ = [np.array(w) for w in self.coefs_]
        mlp.intercepts_ = [np.array(b) for b in self.intercepts_]
        mlp.n_layers_ = self.n_layers_
        mlp.n_outputs_ = self.n_outputs_
        mlp.out_activation_ = self.out_activation_
        mlp.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            mlp.feature_names_in_ = self.feature_names_in_.copy()
        for name in _FITTED_RECORDS:
            if hasattr(self, name):
                setattr(mlp, name, _copy(getattr(self, name)))
        if classifier:
            mlp.classes_ = self.classes_.copy()
            labels = np.eye(self.classes_.size, dtype=int) if self._head.multilabel else self.classes_
            sparse = getattr(self, "_sparse_labels", False)  # MLP's predict then returns a sparse matrix too
            binarizer = LabelBinarizer().fit(scipy.sparse.csr_matrix(labels) if sparse else labels)
            set_label_binarizer(mlp, binarizer)
        set_stopping_state(mlp, self)
        return mlp

    @classmethod
    def from_sklearn(cls, mlp):
        """A fitted estimator of this class holding the network of a fitted ``MLPClassifier`` (for
        :class:`NeuralNetClassifier`) or ``MLPRegressor``: MLP's hyper-parameters (jaxnn's defaults for
        ``init``, ``n_ensemble``, ``class_weight``, ``dropout``), weights and fitted records.  It predicts what ``mlp``
        predicts, to float rounding (one exception: fitted on a single class, MLP's ``predict_proba`` gives two
        columns read from its sigmoid, this estimator's one column of ones, as its own single-class fits do;
        ``predict`` agrees), and ``warm_start=True`` (or ``partial_fit``) continues MLP's training.

        Example:
          >>> clf = NeuralNetClassifier.from_sklearn(MLPClassifier((10,)).fit(X, y))
          >>> clf.set_params(warm_start=True).fit(X, y)  # more epochs, in jaxnn
        """
        classifier = is_classifier(cls())
        mlp_class = MLPClassifier if classifier else MLPRegressor
        if not isinstance(mlp, mlp_class):
            raise TypeError(
                f"{cls.__name__}.from_sklearn takes a fitted {mlp_class.__name__}, got {type(mlp).__name__}"
            )
        check_is_fitted(mlp)
        names = cls().get_params(deep=False)
        estimator = cls(**{name: value for name, value in mlp.get_params(deep=False).items() if name in names})
        if classifier and mlp.out_activation_ == "softmax" and mlp.classes_.size == 2:
            estimator.loss = "log_loss"  # two softmax outputs, which loss='auto' would not continue (one sigmoid)
        config = check_params(estimator)
        head = estimator._mlp_head(mlp)
        weights = {"coefs_": [_read_only_copy(w) for w in mlp.coefs_]}
        weights["intercepts_"] = [_read_only_copy(b) for b in mlp.intercepts_]
        estimator._publish_network(config, network(config, head), head, weights, forget=())
        estimator.n_features_in_ = mlp.n_features_in_
        if hasattr(mlp, "feature_names_in_"):
            estimator.feature_names_in_ = mlp.feature_names_in_.copy()
        estimator.loss_curve_ = list(getattr(mlp, "loss_curve_", []))  # MLP's lbfgs records none
        estimator.loss_ = mlp.loss_
        estimator.n_iter_ = mlp.n_iter_
        estimator.t_ = mlp.t_
        estimator.best_loss_ = getattr(mlp, "best_loss_", min(estimator.loss_curve_, default=mlp.loss_))
        estimator.validation_scores_ = _copy(getattr(mlp, "validation_scores_", None))
        estimator.validation_loss_curve_ = None  # MLP records no validation loss
        estimator.best_validation_score_ = getattr(mlp, "best_validation_score_", None)
        # the stopping rule's count MLP's continued fit would read (MLP's lbfgs keeps none)
        setattr(estimator, NO_IMPROVEMENT_COUNT, int(getattr(mlp, NO_IMPROVEMENT_COUNT, 0)))
        if classifier:
            estimator.classes_ = mlp.classes_.copy()
            estimator._sparse_labels = sparse_label_input(mlp)
        else:
            estimator._y_is_1d = mlp.n_outputs_ == 1  # MLPRegressor predicts one column as a 1-D array
        return estimator

    def _mlp_head(self, mlp) -> Head:
        """The jaxnn head of a fitted MLP's output layer (MLP's loss: the log-loss, squared error or Poisson)."""
        if not is_classifier(self):
            return regression_head(regression_loss(mlp.loss), mlp.n_outputs_)
        n_classes = mlp.classes_.size
        if mlp.out_activation_ == "softmax":  # two classes too: the export of a categorical loss ('log_loss' here)
            return classification_head("log_loss", n_classes)
        loss = scikit_learn_loss(CLASSIFICATION, 2)
        if mlp.n_outputs_ > 1:  # logistic outputs, one per label
            return multilabel_head(loss, mlp.n_outputs_)
        return single_class_head(loss) if n_classes == 1 else classification_head(loss, n_classes)
