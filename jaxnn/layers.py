"""Dense layers, the sequential model and the weight initialisers.

Layout.  jaxnn is batch-first like scikit-learn: ``x`` is ``(n_samples, n_in)``,
``W`` is ``(n_in, n_out)``, ``b`` is ``(n_out,)`` and a layer computes
``z = x @ W + b``.  The seeds write the same layer in column layout,
``Z = W_seed · A + b_seed`` with ``A`` of shape ``(n_in, n_samples)`` and
``W_seed`` of shape ``(n_out, n_in)``; the two are transposes of each other:
``W = W_seedᵀ``, ``x = Aᵀ``, ``z = Zᵀ``, ``b = b_seed[:, 0]``.

A model is data, not code: :class:`Dense` and :class:`Sequential` are frozen,
hashable descriptions (so compiled functions can be cached on them), and the
parameters are a separate pytree, ``[{"W": ..., "b": ...}, ...]`` one dict per
layer.  ``Sequential.init(key, n_features)`` makes the parameters and
``Sequential.apply(params, x)`` is the pure forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from jaxnn._builds import UNOPTIMISED_BUILDS, FallbackJit
from jaxnn._checks import as_real_array, floating_dtype, look_up, positive_int, prng_key, single_key
from jaxnn.activations import get_activation, is_elementwise
from jaxnn.ops import Op, make_op

__all__ = ["INITIALISERS", "Dense", "LeafShape", "Sequential", "activate", "dense", "draw_weights"]

Params = list[dict[str, jax.Array]]


def _dense_forward(x, w, b):
    """z = x @ W + b"""
    _check_dense_shapes(x, w, b)
    return x @ w + b[None, :]


def _check_dense_shapes(x, w, b) -> None:
    """A ValueError unless ``x`` is ``(n, n_in)``, ``W`` ``(n_in, n_out)`` and ``b`` ``(n_out,)``: JAX's own
    errors named dot_general or broadcasting, and a 1-D ``x`` came back silently as one row ``(1, n_out)``.
    Shapes are static, so the check runs while JAX traces and never in the compiled program."""
    shapes = tuple(tuple(jnp.shape(a)) for a in (x, w, b))
    if len(shapes[0]) != 2 or len(shapes[1]) != 2 or shapes[2] != shapes[1][1:] or shapes[0][1] != shapes[1][0]:
        raise ValueError(
            f"dense(x, W, b) needs x (n_samples, n_in), W (n_in, n_out) and b (n_out,); got x {shapes[0]}, "
            f"W {shapes[1]} and b {shapes[2]}"
        )


def _dense_backward(g, z, x, w, b):
    """With g = ∂L/∂z of shape (n, n_out):
    ∂L/∂x = g Wᵀ,   ∂L/∂W = xᵀ g,   ∂L/∂b = Σ_samples g.
    (The seeds' dW = dZ·Aᵀ/m is the transpose of xᵀg; here the 1/m belongs to the loss.)
    """
    return g @ w.T, x.T @ g, jnp.sum(g, axis=0)


dense = make_op(_dense_forward, _dense_backward, name="dense")
dense.__doc__ = "Dense: z = x @ W + b; backward ∂L/∂x = g·Wᵀ, ∂L/∂W = xᵀ·g, ∂L/∂b = Σ_rows g."


# Initialisers: (key, n_in, n_out, dtype) -> (W, b).
def _seed_normal(key, n_in, n_out, dtype):
    """Seed 000: W, b ~ N(0, 1) × 0.1."""
    kw, kb = jax.random.split(key)
    return 0.1 * jax.random.normal(kw, (n_in, n_out), dtype), 0.1 * jax.random.normal(kb, (n_out,), dtype)


def _seed_small_normal(key, n_in, n_out, dtype):
    """Seed 001b: W ~ N(0, 1) × 0.01, b = 0."""
    return 0.01 * jax.random.normal(key, (n_in, n_out), dtype), jnp.zeros((n_out,), dtype)


def _seed_uniform(key, n_in, n_out, dtype):
    """Seed 001: W ~ U[0, 1) (the seed has no bias; here b ~ U[0, 1) too)."""
    kw, kb = jax.random.split(key)
    return jax.random.uniform(kw, (n_in, n_out), dtype), jax.random.uniform(kb, (n_out,), dtype)


def _he(key, n_in, n_out, dtype):
    """He (Kaiming) normal for ReLU-like layers: W ~ N(0, 2/n_in), b = 0."""
    return math.sqrt(2.0 / n_in) * jax.random.normal(key, (n_in, n_out), dtype), jnp.zeros((n_out,), dtype)


def _glorot(key, n_in, n_out, dtype):
    """Glorot (Xavier) uniform: W ~ U[−r, r], r = √(6/(n_in + n_out)), b = 0."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    w = jax.random.uniform(key, (n_in, n_out), dtype, minval=-limit, maxval=limit)
    return w, jnp.zeros((n_out,), dtype)


INITIALISERS = {
    "normal": _seed_normal,
    "small_normal": _seed_small_normal,
    "uniform": _seed_uniform,
    "he": _he,
    "glorot": _glorot,
}


def draw_weights(name: str, key: jax.Array, n_in: int, n_out: int, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Draw ``(W, b)`` for one layer with the named initialiser (:data:`INITIALISERS`) from an explicit key."""
    scheme = look_up(INITIALISERS, name, "initialiser")
    single_key(key)
    return scheme(key, positive_int(n_in, "n_in"), positive_int(n_out, "n_out"), floating_dtype(dtype))


@dataclass(frozen=True)
class Dense:
    """A fully connected layer followed by an activation.

    Args:
      units: the number of outputs.
      activation: an activation name (see ``jaxnn.activations.ACTIVATIONS``).
      activation_kwargs: its hyperparameters, e.g. ``{"a": 1.0, "b": 0.1}`` for leaky ReLU.
      init: the weight initialiser (``"normal"``, ``"small_normal"``, ``"uniform"``, ``"he"``, ``"glorot"``).
    """

    units: int
    activation: str = "identity"
    activation_kwargs: Mapping[str, float] | tuple = field(default=())
    init: str = "normal"

    def __post_init__(self):
        object.__setattr__(self, "units", positive_int(self.units, "Dense units"))
        activation = get_activation(self.activation)
        if self.units == 1 and activation is get_activation("softmax"):
            raise ValueError(
                "a softmax over one unit is always 1, so nothing trains through it: use activation='sigmoid' for "
                "one output (a probability), or give the layer one unit per class"
            )
        kwargs = self.activation_kwargs
        if isinstance(kwargs, Mapping):
            kwargs = tuple(sorted(kwargs.items()))
        if isinstance(kwargs, str) or not all(isinstance(pair, tuple) and len(pair) == 2 for pair in _items(kwargs)):
            raise TypeError(
                "activation_kwargs must be a dict of hyperparameters, e.g. {'b': 0.1} for leaky_relu; got "
                f"{self.activation_kwargs!r:.80}"
            )
        kwargs = tuple(kwargs)
        check = getattr(activation, "check_hyperparameters", None)  # every named activation has one
        if check is not None:  # kept as Python floats: a NumPy scalar would set the dtype of the output
            kwargs = tuple(sorted(check(dict(kwargs)).items()))
        object.__setattr__(self, "activation_kwargs", kwargs)
        look_up(INITIALISERS, self.init, "initialiser")

    @property
    def activation_op(self) -> Op:
        """The activation as an op (its forward, its rule and, for a named one, its facts)."""
        return get_activation(self.activation)

    def apply(self, layer_params: Mapping[str, jax.Array], x: jax.Array, *, custom_rules: bool = True) -> jax.Array:
        """``activation(x @ W + b)``; with ``custom_rules=False`` the plain forwards (autodiff reference)."""
        matmul = dense if custom_rules else dense.forward
        return activate(self, matmul(x, layer_params["W"], layer_params["b"]), custom_rules=custom_rules)


def _items(value) -> tuple:
    """``value`` as a tuple if it is iterable, else ``(None,)`` (which no check accepts)."""
    try:
        return tuple(value)
    except TypeError:
        return (None,)


def activate(layer: Dense, z: jax.Array, *, custom_rules: bool = True, columns: bool = False) -> jax.Array:
    """The layer's activation applied to its pre-activations ``z``: the one activation dispatch of every
    forward path (``Dense.apply``, the explicit backprop's forward and the training loop's).

    ``z`` is batch-first ``(n, n_out)``, or with ``columns=True`` the seeds' column layout ``(n_out, n)``.
    An activation that is not elementwise (softmax) acts along the feature axis, so in column layout it
    sees the batch-first view ``zᵀ``; the optimisation barrier keeps XLA from folding that transpose
    into the matrix product before it, which would make the product batch-first again.  With
    ``custom_rules=False`` the plain forward runs (JAX's autodiff then differentiates it).
    """
    op = layer.activation_op
    function = op if custom_rules else op.forward
    kwargs = dict(layer.activation_kwargs)
    if columns and not is_elementwise(op):
        return function(jax.lax.optimization_barrier(z).T, **kwargs).T
    return function(z, **kwargs)


@dataclass(frozen=True)
class Sequential:
    """Layers applied one after another: ``Sequential((Dense(10, "relu"), Dense(3, "softmax")))``."""

    layers: tuple[Dense, ...]

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, Dense):
            layers = (layers,)
        layers = tuple(layers) if isinstance(layers, Sequence) else layers
        if not isinstance(layers, tuple) or not layers or not all(isinstance(layer, Dense) for layer in layers):
            raise TypeError("Sequential needs a non-empty sequence of Dense layers")
        object.__setattr__(self, "layers", layers)

    def init(self, key: jax.Array, n_features: int, dtype=jnp.float32) -> Params:
        """Parameters for input of ``n_features`` columns: one ``{"W", "b"}`` dict per layer.

        Layer ``i`` draws from the ``i``-th key of ``jax.random.split(key, n_layers)`` with its
        initialiser, in one compiled program: the same key gives the same bits on each call.  The same draws
        made another way — inside the caller's ``jax.jit`` (they join its program), one layer at a time with
        :func:`draw_weights`, or under ``jax.disable_jit()`` — are equal up to the last bit (XLA may round the
        scaling of a normal draw differently in each program).
        """
        n_features, dtype = positive_int(n_features, "n_features"), floating_dtype(dtype)
        single_key(key)
        if isinstance(key, jax.core.Tracer):  # inside the caller's jit: the draws join the caller's program
            return _draw_parameters(self, key, n_features, dtype)
        return _draw_parameters_compiled(self, key, n_features, dtype)

    def init_many(self, keys: jax.Array, n_features: int, dtype=jnp.float32) -> Params:
        """Parameters of a population: member ``i`` drawn as ``init(keys[i], n_features)`` does, every leaf
        with a leading member axis (``W`` of layer 0 is ``(P, n_features, units)``), in one compiled program.

        The draws equal ``init``'s up to the last bit (XLA may fuse a normal draw's scaling differently).
        """
        n_features, dtype = positive_int(n_features, "n_features"), floating_dtype(dtype)
        prng_key(keys, "keys")
        if keys.ndim != (1 if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else 2) or keys.shape[0] < 1:
            raise ValueError(
                "keys must hold one key per member, e.g. jax.random.split(jax.random.key(0), 10); "
                f"got shape {tuple(keys.shape)}"
            )
        return _draw_many_compiled(self, keys, n_features, dtype)

    def check(self, params: Params, x_shape: tuple[int, ...]) -> None:
        """Raise a ValueError naming the layer and the shapes if ``params`` and ``x`` don't chain (a TypeError if
        ``params`` is not a sequence of layers)."""
        if len(x_shape) != 2:
            raise ValueError(f"input must be 2-D (n_samples, n_features), got shape {tuple(x_shape)}")
        if not isinstance(params, Sequence) or isinstance(params, str | bytes):
            one_layer = isinstance(params, Mapping) and len(self.layers) == 1
            raise TypeError(
                f"params must be a list of one {{'W', 'b'}} dict per layer ({len(self.layers)} here), as "
                f"model.init(key, n_features) makes; got {type(params).__name__}"
                + (" (wrap one layer's dict in a list)" if one_layer else "")
            )
        if len(params) != len(self.layers):
            raise ValueError(f"the model has {len(self.layers)} layers but params has {len(params)} entries")
        n_in = x_shape[1]
        for index, (layer, p) in enumerate(zip(self.layers, params, strict=True)):
            if not isinstance(p, Mapping) or not {"W", "b"} <= set(p):
                missing = " and ".join(repr(k) for k in ("W", "b") if k not in p) if isinstance(p, Mapping) else ""
                got = f"a dict without {missing}" if missing else type(p).__name__
                raise ValueError(
                    f"params[{index}] must be a dict with 'W' and 'b' (the layout model.init makes), got {got}"
                )
            for name in ("W", "b"):
                if not hasattr(p[name], "shape"):  # a list reached x @ W as a TypeError; a string had "shape ()"
                    got = type(p[name]).__name__
                    raise TypeError(f"params[{index}]['{name}'] must be an array (as model.init makes), got {got}")
            w_shape = tuple(p["W"].shape)
            b_shape = tuple(p["b"].shape)
            if w_shape != (n_in, layer.units) or b_shape != (layer.units,):
                raise ValueError(
                    f"layer {index} ({layer.units} units) expects W of shape {(n_in, layer.units)} and b of "
                    f"shape {(layer.units,)}, got W {w_shape} and b {b_shape}"
                    + (
                        f"; layer {index - 1} outputs {n_in}"
                        if index
                        else _first_layer_hint(n_in, layer.units, w_shape, b_shape)
                    )
                )
            n_in = layer.units

    def apply(self, params: Params, x: jax.Array, *, custom_rules: bool = True) -> jax.Array:
        """The forward pass, pure and jit-able. ``custom_rules=False`` runs plain forwards only."""
        x = as_real_array(x, "input")
        self.check(params, x.shape)
        for layer, layer_params in zip(self.layers, params, strict=True):
            x = layer.apply(layer_params, x, custom_rules=custom_rules)
        return x

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units


def _first_layer_hint(n_features: int, units: int, w_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> str:
    """What follows the first layer's shape message: when only W's input width is off (weights drawn for
    another width), the input is the likely culprit, and both ways to agree are named; when W and b agree with
    each other on another number of units, the weights are another network's."""
    if len(w_shape) != 2 or w_shape[1:] != b_shape:  # W and b do not agree: no guess at the cause
        return f"; its input has {n_features} features"
    if b_shape == (units,):
        return (
            f"; its input has {n_features} features (columns), these weights take {w_shape[0]}: pass an input "
            f"of {w_shape[0]} columns, or draw weights for {n_features} (model.init(key, {n_features}))"
        )
    return (
        f"; its input has {n_features} features, and these weights are of a layer of {w_shape[1]} units "
        "(another network's?): draw them with this model's init"
    )


class LeafShape:
    """A weight's shape alone, after its first ``leading_axes`` axes (a population's member axis): all
    :meth:`Sequential.check` reads, without indexing the array."""

    __slots__ = ("shape",)

    def __init__(self, leaf, leading_axes: int = 0):
        self.shape = jnp.shape(leaf)[leading_axes:]


def _draw_parameters(model: Sequential, key: jax.Array, n_features: int, dtype) -> Params:
    """Every layer's ``(W, b)`` from its own split of ``key``."""
    keys = jax.random.split(key, len(model.layers))
    params = []
    n_in = n_features
    for layer, layer_key in zip(model.layers, keys, strict=True):
        w, b = draw_weights(layer.init, layer_key, n_in, layer.units, dtype)
        params.append({"W": w, "b": b})
        n_in = layer.units
    return params


# All draws in one compiled program: run eagerly, each random draw is a program of its own, which a fresh
# process compiles (or loads from the persistent cache) one by one.  Built without XLA's backend
# optimisations (jaxnn._builds.UNOPTIMISED_BUILDS): it runs once per model, and LLVM's passes took longer
# than they could ever save (the numbers are in benchmarks/README.md).  The draws can differ in the last
# bit from an optimised build (XLA folds the scale into the normal draw differently).
_draw_parameters_compiled = FallbackJit(_draw_parameters, UNOPTIMISED_BUILDS, static_argnums=(0, 2, 3))


def _draw_many(model: Sequential, keys: jax.Array, n_features: int, dtype) -> Params:
    return jax.vmap(lambda key: _draw_parameters(model, key, n_features, dtype))(keys)


_draw_many_compiled = FallbackJit(_draw_many, UNOPTIMISED_BUILDS, static_argnums=(0, 2, 3))
