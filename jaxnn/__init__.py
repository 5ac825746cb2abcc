"""jaxnn: the classic neural network from scratch, with hand-derived backward rules, on JAX.

Public names only; see the modules for the math.  Every name is loaded on first use (PEP 562), so
``import jaxnn`` itself imports neither JAX nor scikit-learn: ``jaxnn-train`` can turn Ctrl-C into a flag
before JAX loads, and a script pays only for the parts it uses.
"""

from __future__ import annotations

import importlib
import importlib.util

_PUBLIC = {
    # jaxnn.activations
    "Activation": "jaxnn.activations",
    "binary_step": "jaxnn.activations",
    "exp": "jaxnn.activations",
    "get_activation": "jaxnn.activations",
    "identity": "jaxnn.activations",
    "leaky_relu": "jaxnn.activations",
    "linear": "jaxnn.activations",
    "relu": "jaxnn.activations",
    "sigmoid": "jaxnn.activations",
    "softmax": "jaxnn.activations",
    "tanh": "jaxnn.activations",
    # jaxnn.backprop
    "backward": "jaxnn.backprop",
    "forward_with_caches": "jaxnn.backprop",
    "loss_and_grads": "jaxnn.backprop",
    # jaxnn.gradcheck
    "GradcheckError": "jaxnn.gradcheck",
    "GradcheckReport": "jaxnn.gradcheck",
    "check_vjp": "jaxnn.gradcheck",
    # jaxnn.layers
    "Dense": "jaxnn.layers",
    "Sequential": "jaxnn.layers",
    "dense": "jaxnn.layers",
    "draw_weights": "jaxnn.layers",
    # jaxnn.losses
    "Loss": "jaxnn.losses",
    "binary_cross_entropy": "jaxnn.losses",
    "categorical_cross_entropy": "jaxnn.losses",
    "get_loss": "jaxnn.losses",
    "half_poisson_deviance": "jaxnn.losses",
    "make_loss": "jaxnn.losses",
    "mean_squared_error": "jaxnn.losses",
    "poisson": "jaxnn.losses",
    "sigmoid_binary_cross_entropy": "jaxnn.losses",
    "softmax_cross_entropy": "jaxnn.losses",
    "squared_error": "jaxnn.losses",
    "sum_of_squares": "jaxnn.losses",
    # jaxnn.ops
    "Op": "jaxnn.ops",
    "make_op": "jaxnn.ops",
    # jaxnn.train
    "FitResult": "jaxnn.train",
    "Stopping": "jaxnn.train",
    "fit": "jaxnn.train",
    "gradient_descent": "jaxnn.train",
    "make_train_step": "jaxnn.train",
    "train_step": "jaxnn.train",
    "fit_many": "jaxnn.train",
    # jaxnn.sklearn (loads scikit-learn, so only when first used)
    "NeuralNetClassifier": "jaxnn.sklearn.estimators",
    "NeuralNetRegressor": "jaxnn.sklearn.estimators",
    "fit_estimators": "jaxnn.sklearn.base",
}

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Dense",
    "FitResult",
    "GradcheckError",
    "GradcheckReport",
    "Loss",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "Op",
    "Sequential",
    "Stopping",
    "backward",
    "binary_cross_entropy",
    "binary_step",
    "categorical_cross_entropy",
    "check_vjp",
    "dense",
    "draw_weights",
    "exp",
    "fit",
    "fit_estimators",
    "fit_many",
    "forward_with_caches",
    "get_activation",
    "get_loss",
    "gradient_descent",
    "half_poisson_deviance",
    "identity",
    "leaky_relu",
    "linear",
    "loss_and_grads",
    "make_loss",
    "make_op",
    "make_train_step",
    "mean_squared_error",
    "poisson",
    "relu",
    "sigmoid",
    "sigmoid_binary_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    "sum_of_squares",
    "tanh",
    "train_step",
]


def __getattr__(name: str):
    """Load a public name, or a submodule such as ``jaxnn.compile_cache``, on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        if name.startswith("_") or importlib.util.find_spec(f"jaxnn.{name}") is None:
            raise AttributeError(f"module 'jaxnn' has no attribute {name!r}")
        return importlib.import_module(f"jaxnn.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
