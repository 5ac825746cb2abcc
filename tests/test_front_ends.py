"""One meaning per name: ``jaxnn-train`` and the scikit-learn estimators build the same network for a loss
name and make the same update for a solver name (each built the way that front end builds it)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxnn import NeuralNetClassifier, fit
from jaxnn.cli import training
from jaxnn.cli.data import Problem
from jaxnn.cli.errors import CliError
from jaxnn.data import iris_split
from jaxnn.losses import LOSSES
from jaxnn.optimizers import SOLVERS
from jaxnn.train import training_keys

SPLIT = iris_split()
X = SPLIT.x_train.astype(np.float32)


def _problem(labels: np.ndarray) -> Problem:
    names = tuple(str(c) for c in np.unique(labels))
    return Problem("iris", "classification", X, X[:5], labels, labels[:5], names, ("a", "b", "c", "d"), "", ())


def _cli_options(**options) -> dict:
    defaults = {"layers": [6], "activation": "relu", "loss": None, "optimizer": "gd", "lr": 0.05}
    return {**defaults, "momentum": 0.9, "nesterov": True, "l2": 0.0, **options}


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("loss", [None, *LOSSES])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_loss_name_builds_the_same_network_in_both_front_ends(loss, n_classes):
    labels = SPLIT.y_train % n_classes
    options = _cli_options(loss=loss)
    estimator = NeuralNetClassifier(
        (6,), loss="auto" if loss is None else loss, solver="gd", max_iter=1, learning_rate_init=0.01
    )
    try:
        head = training.make_head(options, _problem(labels))
    except CliError as cli_error:  # both front ends must refuse the same combinations
        with pytest.raises(ValueError):
            estimator.fit(X, labels)
        assert "is for two classes" in str(cli_error) or "classification loss" in str(cli_error)
        return
    estimator.fit(X, labels)
    network = training.build_model(options, head)
    assert estimator.n_outputs_ == network.layers[-1].units == head.units
    assert network.layers[-1].activation == head.layer_activation
    assert {"logistic": "sigmoid"}.get(estimator.out_activation_, estimator.out_activation_) == head.output_activation


@pytest.mark.parametrize("name", SOLVERS)
def test_a_solver_name_makes_the_same_update_in_both_front_ends(name):
    """One full-batch epoch from the same initial weights: the estimator's solver against the CLI's."""
    labels, seed, lr = SPLIT.y_train, 3, 0.05
    estimator = NeuralNetClassifier(
        (6,),
        solver=name,
        learning_rate_init=lr,
        alpha=0.0,
        batch_size=len(X),
        max_iter=1,
        init="normal",
        random_state=seed,
        tol=0.0,
    )
    estimator.fit(X, labels)  # one epoch of one full batch: one update
    options = _cli_options(optimizer=name, lr=lr)
    head = training.make_head(options, _problem(labels))
    model = training.build_model(options, head)
    params = model.init(training_keys(seed)[0], X.shape[1])
    targets = training.make_targets(_problem(labels), head).train
    cli = fit(model, params, X, targets, loss=head.loss, epochs=1, optimizer=training.make_optimizer(options))
    for coef, layer in zip(estimator.coefs_, cli.params, strict=True):
        np.testing.assert_allclose(coef, layer["W"], rtol=1e-5, atol=1e-6)
    for intercept, layer in zip(estimator.intercepts_, cli.params, strict=True):
        np.testing.assert_allclose(intercept, layer["b"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(estimator.coefs_[0], params[0]["W"])  # it did move
