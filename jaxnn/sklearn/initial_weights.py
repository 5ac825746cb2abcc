"""The estimators' initial weights: scikit-learn MLP's own draws for ``init='mlp'``, jaxnn's initialisers in one
quickly built compiled program otherwise, and each network's shuffle key.

``init='mlp'`` (the default) draws scikit-learn MLP's weights with NumPy, in its order and with its bound, so an
int ``random_state`` starts from MLP's very network; jaxnn's own initialisers (``'glorot'``, ``'he'``, …) draw
with ``jax.random`` in one small compiled program, in float32 whatever the data's float type, then cast.
Either way float32 and float64 data start from the same network (up to rounding) and fit the same model, as
scikit-learn's MLP does (it draws in float64 and casts).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxnn._builds import QUICK_BUILDS, FallbackJit
from jaxnn.layers import INITIALISERS, Sequential

__all__ = [
    "ESTIMATOR_INITIALISERS",
    "MLP_INIT",
    "as_numpy",
    "cast_floats",
    "initial_weights",
    "mlp_init_factor",
    "mlp_initial_weights",
    "mlp_random_state",
    "start",
]

MLP_INIT = "mlp"  # the estimators' default init: scikit-learn MLP's weights, drawn as it draws them
ESTIMATOR_INITIALISERS = (MLP_INIT, *INITIALISERS)


def mlp_init_factor(activation) -> float:
    """MLP's bound factor: 2 for logistic hidden units, else 6 (a list of activations: 2 if all are logistic)."""
    names = [activation] if isinstance(activation, str) else list(activation)
    return 2.0 if names and all(name in ("logistic", "sigmoid") for name in names) else 6.0


def mlp_initial_weights(model: Sequential, factor: float, seed: int, n_features: int, dtype):
    """scikit-learn MLP's initial weights for ``random_state=seed``, drawn exactly as its ``_init_coef``.

    Layer by layer, first ``W`` of shape ``(n_in, n_out)`` and then ``b`` of shape ``(n_out,)``, all
    ``~ U[−r, r]`` with Glorot and Bengio's bound ``r = √(factor / (n_in + n_out))`` (``factor`` 6, or 2
    for logistic hidden units: :func:`mlp_init_factor`), from one ``numpy.random.RandomState(seed)`` in
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


def mlp_random_state(model: Sequential, seed: int, n_features: int, *, after_init: bool) -> np.random.RandomState:
    """The ``numpy.random.RandomState`` that scikit-learn's MLP, given ``random_state=seed``, takes its
    early-stopping split from: ``RandomState(seed)`` past the draws of its initial weights when the fit starts
    a new network (``after_init``: one double per weight and bias, as :func:`mlp_initial_weights` draws them),
    ``RandomState(seed)`` itself when it continues one (``warm_start``: MLP draws no weights then)."""
    draws = np.random.RandomState(seed)
    if after_init:
        n_in = n_features
        for layer in model.layers:  # layer by layer, so that no more than one layer's draws are held at once
            draws.random_sample(n_in * layer.units + layer.units)
            n_in = layer.units
    return draws


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
_start_program = FallbackJit(_draw_start, QUICK_BUILDS, static_argnums=(0, 2, 3))


def start(model: Sequential, seed: int, n_features: int, dtype):
    """The initial parameters (``model.init``) and the shuffle key of ``seed``, as one compiled call."""
    return _start_program(model, np.uint32(seed), n_features, dtype)


def _draw_shuffle_key(seed):
    """``training_keys(seed)[1]``, the shuffle key, without drawing weights (``seed`` a ``uint32`` scalar)."""
    return jax.random.split(jax.random.key(seed))[1]


_shuffle_key_program = FallbackJit(_draw_shuffle_key, QUICK_BUILDS)


def as_numpy(tree):
    """Every leaf of ``tree`` as a host NumPy array."""
    return jax.tree.map(np.asarray, tree)


def cast_floats(tree, dtype):
    """The floating leaves of ``tree`` cast to ``dtype`` (host arrays); other leaves as they are."""
    return jax.tree.map(lambda a: np.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else a, tree)


def initial_weights(
    init: str, init_factor: float, model: Sequential, seed: int, n_features: int, dtype, *, with_key=True
):
    """The initial weights of ``seed`` and, ``with_key``, its shuffle key (else None).

    ``init='mlp'`` draws scikit-learn's MLP weights with NumPy (:func:`mlp_initial_weights`, bound factor
    ``init_factor``); jaxnn's initialisers draw with ``model.init`` in float32 whatever the data's float type,
    then cast."""
    if init == MLP_INIT:
        params = mlp_initial_weights(model, init_factor, seed, n_features, dtype)
        return params, _shuffle_key_program(np.uint32(seed)) if with_key else None
    params, shuffle_key = start(model, seed, n_features, np.dtype(np.float32))
    if np.dtype(dtype) != np.float32:
        params = cast_floats(as_numpy(params), dtype)
    return params, shuffle_key if with_key else None
