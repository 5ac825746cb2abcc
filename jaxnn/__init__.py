"""jaxnn: the classic neural network from scratch, with hand-derived backward rules, on JAX.

Public names only; see the modules for the math.
"""

from jaxnn import compile_cache as _compile_cache  # noqa: F401  (jaxnn.compile_cache.enable(); turns nothing on)
from jaxnn.activations import (
    Activation,
    binary_step,
    get_activation,
    identity,
    leaky_relu,
    linear,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from jaxnn.backprop import backward, forward_with_caches, loss_and_grads
from jaxnn.gradcheck import GradcheckError, GradcheckReport, check_vjp
from jaxnn.layers import Dense, Sequential, dense, initialise
from jaxnn.losses import (
    Loss,
    binary_cross_entropy,
    categorical_cross_entropy,
    get_loss,
    make_loss,
    mean_squared_error,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    sum_of_squares,
)
from jaxnn.ops import Op, make_op
from jaxnn.train import FitResult, Stopping, fit, gradient_descent, make_train_step, train_step

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
    "fit",
    "forward_with_caches",
    "get_activation",
    "get_loss",
    "gradient_descent",
    "identity",
    "initialise",
    "leaky_relu",
    "linear",
    "loss_and_grads",
    "make_loss",
    "make_op",
    "make_train_step",
    "mean_squared_error",
    "relu",
    "sigmoid",
    "sigmoid_binary_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "sum_of_squares",
    "tanh",
    "train_step",
]


def __getattr__(name: str):
    """The estimators load scikit-learn (about a second), so they are imported on first use (PEP 562)."""
    if name in ("NeuralNetClassifier", "NeuralNetRegressor"):
        from jaxnn import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'jaxnn' has no attribute {name!r}")
