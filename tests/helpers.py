"""Shared test utilities: the table of every op's test cases, valid inputs per loss, tree comparisons.

The tables here are what the gradient-check suite loops over, so a new activation or loss that is
added to ``jaxnn.activations.ACTIVATIONS`` or ``jaxnn.losses.LOSSES`` without a case here fails
``test_gradcheck.py::test_every_library_op_has_a_case``.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, settings

import jaxnn

# Hypothesis: modest example counts, no deadline (JAX compiles on first use of a shape), and a
# derandomised search so CI runs the very same examples every time.
HYPOTHESIS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Tolerances of the rule vs autodiff comparisons, by dtype (the bounds).
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
ATOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}

# How far a finite-difference point must stay from a kink or a clip bound (the step is 1e-6).
KINK_MARGIN = 1e-3


class ActivationCase(NamedTuple):
    """One activation with fixed hyperparameters."""

    name: str
    kwargs: dict

    @property
    def op(self) -> jaxnn.Op:
        return jaxnn.get_activation(self.name)

    @property
    def kinks(self) -> tuple[float, ...]:
        """Points where the activation is not differentiable (finite differences must avoid them), as the
        activation itself declares them."""
        return self.op.kinks(**self.kwargs)

    @property
    def id(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"{self.name}({extra})" if extra else self.name


ACTIVATION_CASES = (
    ActivationCase("identity", {}),
    ActivationCase("linear", {}),
    ActivationCase("linear", {"a": -2.5}),
    ActivationCase("sigmoid", {}),
    ActivationCase("tanh", {}),
    ActivationCase("binary_step", {}),
    ActivationCase("binary_step", {"threshold": 0.3}),
    ActivationCase("relu", {}),
    ActivationCase("relu", {"a": 0.5}),
    ActivationCase("leaky_relu", {}),
    ActivationCase("leaky_relu", {"a": 2.0, "b": 0.2}),
    ActivationCase("softmax", {}),
    ActivationCase("exp", {}),
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Each activation's forward written independently in NumPy (tests/test_activations.py compares them).
REFERENCE_FORWARDS = {
    "identity": lambda x: x,
    "linear": lambda x, a=1.0: a * x,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "binary_step": lambda x, threshold=0.0: (x > threshold).astype(float),
    "relu": lambda x, a=1.0: a * np.maximum(x, 0.0),
    "leaky_relu": lambda x, a=1.0, b=0.01: np.where(x > 0, a * x, b * x),
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
    "exp": np.exp,
}

LOSS_NAMES = tuple(jaxnn.losses.LOSSES)

# The activation each loss's last layer needs to give it valid predictions, from the loss's own facts
# (absent: any real number is valid).
OUTPUT_ACTIVATION_FOR_LOSS = {
    name: loss.last_layer_activation
    for name, loss in jaxnn.losses.LOSSES.items()
    if loss.last_layer_activation != "identity"
}


def away_from_kinks(x: np.ndarray, kinks, margin: float = KINK_MARGIN) -> np.ndarray:
    """Move every entry closer than ``margin`` to a kink to ``kink ± margin`` (the side it was on)."""
    x = np.array(x, dtype=np.float64)
    for kink in kinks:
        close = np.abs(x - kink) < margin
        x[close] = kink + np.where(x[close] >= kink, margin, -margin)
    return x


def activation_input(case: ActivationCase, rng: np.random.Generator, shape, dtype) -> jax.Array:
    """Random inputs in [-3, 3], kept away from the case's kinks."""
    return jnp.asarray(away_from_kinks(rng.uniform(-3.0, 3.0, shape), case.kinks), dtype)


def loss_inputs(name: str, rng: np.random.Generator, n: int, k: int, dtype) -> tuple[jax.Array, jax.Array]:
    """A valid ``(pred, target)`` pair of shape ``(n, k)`` for the named loss, away from its clip bounds,
    chosen from the facts the loss states (so a new loss needs no entry here):

    * regression: any reals for both; positive means in [0.2, 3] for a loss on ``exp`` outputs (not on
      logits), and targets in [0.1, 3] for a loss that declares ``nonnegative_targets`` (counts; 0 is left
      out because the derivative in y is −∞ there);
    * on logits: any reals, with targets as below;
    * binary on probabilities (sigmoid output): probabilities in [0.05, 0.95]; targets in [0, 1];
    * categorical on probabilities (softmax output): positive, unnormalised rows; normalised targets.
    """
    loss = jaxnn.get_loss(name)
    if loss.task == "regression":
        positive_pred = loss.output_activation == "exp" and not loss.from_logits
        pred = rng.uniform(0.2, 3.0, (n, k)) if positive_pred else rng.normal(size=(n, k))
        target = rng.uniform(0.1, 3.0, (n, k)) if loss.nonnegative_targets else rng.normal(size=(n, k))
        return jnp.asarray(pred, dtype), jnp.asarray(target, dtype)
    target = normalised_rows(rng, n, k) if loss.task == "categorical" else rng.uniform(0.0, 1.0, (n, k))
    if loss.from_logits:
        pred = 2.0 * rng.normal(size=(n, k))
    elif loss.task == "binary":
        pred = rng.uniform(0.05, 0.95, (n, k))
    else:
        pred = rng.uniform(0.1, 1.0, (n, k))
    return jnp.asarray(pred, dtype), jnp.asarray(target, dtype)


def normalised_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Non-negative rows summing to 1 (soft class probabilities)."""
    rows = rng.uniform(0.05, 1.0, (n, k))
    return rows / rows.sum(axis=1, keepdims=True)


def model_targets(name: str, rng: np.random.Generator, n: int, k: int, dtype) -> jax.Array:
    """Targets a model's output is trained against: one-hot rows for the categorical losses."""
    if jaxnn.get_loss(name).task == "categorical":
        return jnp.asarray(np.eye(k)[rng.integers(0, k, n)], dtype)
    return loss_inputs(name, rng, n, k, dtype)[1]


def sample_weights(rng: np.random.Generator, n: int, dtype) -> jax.Array:
    """Positive per-sample weights, not all equal."""
    return jnp.asarray(rng.uniform(0.2, 2.0, n), dtype)


def assert_trees_close(actual, desired, rtol: float, atol: float, what: str = "") -> None:
    """``np.testing.assert_allclose`` leaf by leaf, naming the leaf's path on failure."""
    actual_leaves, actual_tree = jax.tree_util.tree_flatten_with_path(actual)
    desired_leaves, desired_tree = jax.tree_util.tree_flatten_with_path(desired)
    assert actual_tree == desired_tree, f"{what}: tree structures differ: {actual_tree} vs {desired_tree}"
    for (path, a), (_, d) in zip(actual_leaves, desired_leaves, strict=True):
        assert np.shape(a) == np.shape(d), f"{what}{jax.tree_util.keystr(path)}: shapes {np.shape(a)} vs {np.shape(d)}"
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(d, np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=f"{what}{jax.tree_util.keystr(path)}",
        )


def assert_trees_equal(actual, desired) -> None:
    """Bitwise equality of two pytrees of arrays."""
    assert jax.tree.structure(actual) == jax.tree.structure(desired)
    for a, d in zip(jax.tree.leaves(actual), jax.tree.leaves(desired), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(d))


def xla_accepts(options) -> bool:
    """Whether this XLA compiles with the compiler options ``options`` (a tiny program tells): jaxlib 0.10's takes
    every option of ``jaxnn._builds``, jaxlib 0.11's and 0.12's refuse ``xla_cpu_use_fusion_emitters``."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options))(np.zeros(2, np.float32))
    except jax.errors.JaxRuntimeError as error:
        if "compile option" not in str(error):
            raise
        return False
    return True


@contextlib.contextmanager
def compilations():
    """Collect the names of the programs built inside the block (lowered to XLA, then compiled or, with the
    persistent compilation cache the estimators switch on, loaded from it: either way a new program)."""
    names = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            names.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def fitted_with_held_out(estimator, X, y, monkeypatch):
    """``estimator.fit(X, y)`` (ConvergenceWarnings silenced) and the rows its early stopping held out: ``(estimator,
    X_val, encoded validation targets)``, seen by a spy on the split, which runs as it is."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    from jaxnn.sklearn import training

    held_out = {}

    def spy(X, targets, weight, **options):
        parts = train_test_split(X, targets, weight, **options)
        held_out["X"], held_out["targets"] = parts[1], parts[3]
        return parts

    monkeypatch.setattr(training, "train_test_split", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return estimator, held_out["X"], held_out["targets"]


def arrays_only_digest(arrays: dict[str, np.ndarray]) -> str:
    """The checksum of a checkpoint written before jaxnn covered its metadata: every array's name, dtype, shape and
    bytes in name order (each array as ``np.ascontiguousarray`` makes it, 0-d ones 1-d).  Such a file still loads,
    so a test can write one with any config, as an older jaxnn would have."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode() + array.tobytes())
    return digest.hexdigest()
