"""The estimators' prediction path: input checked in microseconds, one compiled forward pass per shape.

A fitted estimator holds a :class:`Predictor` for its network (``model`` and ``head``).  Each call

1. checks ``X`` (:func:`checked_input`): a plain ``float32``/``float64`` NumPy matrix of the fitted width, all
   finite, at least as wide a float as the weights, on an estimator fitted without feature names, is taken as
   it is — exactly what scikit-learn's ``validate_data`` would accept unchanged, decided from its type, shape
   and one sum; anything else (lists, DataFrames, sparse matrices, other dtypes, a non-finite sum) goes through
   ``validate_data`` and gets its conversions, warnings and errors, then the dtype MLP computes in (float32
   input on a float64 network computes in float64, as MLP's product with float64 weights does);
2. pads the rows to a bucket (:func:`prediction_rows`): 1, 8, 64 or 256 rows, above that one of eight sizes
   per doubling, so a served model predicting one row at a time computes one row, and the few sizes keep
   compilations few; more rows than one chunk's (:func:`chunk_rows`: the input and every layer's outputs of a
   chunk take at most :data:`CHUNK_BYTES`) are predicted a chunk at a time, so memory stays bounded however
   many rows come: the whole chunks of every long input share one program, and the rows left over are padded
   to their own bucket, as a short input's are;
3. runs the forward pass compiled for that bucket and dtype (:func:`compiled_outputs`), built once (ahead
   of time, with jaxnn's persistent compilation cache on) and kept among the programs jaxnn holds
   (``jaxnn._builds``): a call toggles no process-wide
   setting.  float64 input computes in float64 (``jax.enable_x64``, a setting of this thread, for the call),
   float32 in float32.

The weights are placed on the device once per dtype and reused while the estimator's ``coefs_`` and
``intercepts_`` hold the same read-only arrays (those a fit stores are read-only); arrays a user assigned that
can be written to are placed on every call, so an edit in place is never missed.  ``transform`` and
``hidden_activations`` (``jaxnn.sklearn.features``) take the same checks and compiled road.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import numpy as np

from jaxnn import compile_cache, fork_guard
from jaxnn._builds import held_programs_of
from jaxnn.heads import Head, predictions
from jaxnn.layers import LeafShape, Sequential
from jaxnn.sklearn.targets import SPARSE_FORMATS, densified, numeric_data
from jaxnn.sklearn.training import pad_rows, padded_size

__all__ = [
    "CHUNK_BYTES",
    "Predictor",
    "check_weights",
    "checked_input",
    "chunk_rows",
    "compiled_outputs",
    "computation_dtype",
    "placed",
    "prediction_rows",
    "read_only",
    "weights_dtype",
]

SMALL_BUCKETS = (1, 8, 64, 256)
# The most bytes one chunk's input and layer outputs take (a million rows through a layer of 4,096 units would
# otherwise take 32 GB at once in float64).
CHUNK_BYTES = 1 << 28


def prediction_rows(n: int) -> int:
    """The rows ``n`` samples are padded to: the smallest of 1, 8, 64, 256 that holds them, above 256 the
    training data's sizes (``padded_size``: eight per doubling, at most one row in eight is padding)."""
    for bucket in SMALL_BUCKETS:
        if n <= bucket:
            return bucket
    return padded_size(n, minimum=SMALL_BUCKETS[-1])


def chunk_rows(shapes: tuple, itemsize: int) -> int:
    """The rows predicted at once for weights of ``shapes`` (``(W's shape, W's dtype, b's shape, b's dtype)`` per
    layer, an ensemble's with a leading member axis) and numbers of ``itemsize`` bytes: the largest power of two
    (at least 256) whose input and outputs of every layer take at most :data:`CHUNK_BYTES`."""
    numbers_per_row = shapes[0][0][-2] + sum(math.prod(w_shape[:-2]) * w_shape[-1] for w_shape, *_ in shapes)
    fits = max(SMALL_BUCKETS[-1], CHUNK_BYTES // (numbers_per_row * itemsize))
    return 1 << (fits.bit_length() - 1)


def checked_input(estimator, X):
    """``X`` as the network reads it: a dense ``float32``/``float64`` matrix with ``estimator.n_features_in_``
    columns, of the dtype MLP's forward pass computes in (:func:`computation_dtype`).  The fast path takes a
    NumPy matrix that needs nothing; everything else goes through ``validate_data`` with MLP's ``predict``
    options (``dtype='numeric'``: text is refused, as MLP refuses it) and its conversions, warnings and errors."""
    weights = weights_dtype(estimator)
    if (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float32, np.float64)
        and np.promote_types(X.dtype, weights) == X.dtype
        and X.shape[0] > 0
        and X.shape[1] == estimator.n_features_in_
        and not hasattr(estimator, "feature_names_in_")
        and _sums_to_a_finite_number(X)
    ):
        return X
    X = densified(numeric_data(estimator, X, accept_sparse=SPARSE_FORMATS, reset=False))
    return X.astype(computation_dtype(X.dtype, weights), copy=False)


def weights_dtype(estimator) -> np.dtype:
    """The dtype of a fitted estimator's weights (its first layer's, an ensemble's included)."""
    coefs = estimator.ensemble_coefs_ if hasattr(estimator, "ensemble_coefs_") else estimator.coefs_
    return np.asarray(coefs[0]).dtype


def computation_dtype(data: np.dtype, weights: np.dtype) -> np.dtype:
    """The dtype MLP's forward pass has for input of dtype ``data`` on weights of dtype ``weights``: NumPy's
    promotion of the two (float32 input on float64 weights computes in float64, int8 or bool input on float32
    weights in float32), as float32 or float64 (float64 for anything wider: the network computes in no other)."""
    promoted = np.promote_types(data, weights)
    return promoted if promoted in (np.float32, np.float64) else np.dtype(np.float64)


def _network_predictions(model: Sequential, head: Head, params, x):
    return predictions(model.apply(params, x), head)


def _member_predictions(model: Sequential, head: Head, params, x):
    return jax.vmap(partial(_network_predictions, model, head), in_axes=(0, None))(params, x)


def compiled_outputs(forward, static: tuple, X: np.ndarray, place):
    """``forward(*static, params, X)`` (a module-level function; ``static`` hashable: the network, its head)
    compiled for ``X``'s row bucket and dtype, with the weights ``place(dtype)`` puts on the device, a chunk of
    :func:`chunk_rows` at a time; its outputs (a pytree of arrays with the rows second to last) as writeable NumPy
    arrays, padding rows cut off.

    float64 ``X`` computes in float64 (``jax.enable_x64``, this thread's setting, for the call)."""
    fork_guard.check()
    with jax.enable_x64(bool(X.dtype == np.float64)):
        params = place(X.dtype)
        shapes = tuple((p["W"].shape, p["W"].dtype, p["b"].shape, p["b"].dtype) for p in params)
        # a chunk holds at least 256 rows: fewer (a served model's one row) need no count of the layers' widths
        chunk = len(X) if len(X) <= SMALL_BUCKETS[-1] else chunk_rows(shapes, X.dtype.itemsize)
        parts = [
            _outputs(forward, static, params, shapes, X[start : start + chunk]) for start in range(0, len(X), chunk)
        ]
    return parts[0] if len(parts) == 1 else jax.tree.map(lambda *part: np.concatenate(part, axis=-2), *parts)


def _outputs(forward, static: tuple, params, shapes: tuple, X: np.ndarray):
    """:func:`compiled_outputs` of at most one chunk of rows, padded to its bucket and cut back."""
    n = X.shape[0]
    rows = prediction_rows(n)
    if jax.config.jax_disable_jit:  # the user's jax.disable_jit(): an ahead-of-time compiled program is refused
        outputs = forward(*static, params, pad_rows(X, rows))
    else:
        outputs = _program(forward, static, rows, X.dtype.name, shapes)(params, pad_rows(X, rows))
    return jax.tree.map(lambda output: np.array(output)[..., :n, :], outputs)  # copies, writeable as MLP's outputs


def _sums_to_a_finite_number(X: np.ndarray) -> bool:
    """Whether ``X`` is finite, by one sum (a finite ``X`` that sums past its type's range, or ±inf together, is
    checked element by element after: ``validate_data``, which warns as MLP does).  Overflow and invalid results are
    not warned about here, as in scikit-learn's own sum: they raised under ``np.errstate(all='raise')``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(X.sum()))


def placed(coefs, intercepts, dtype) -> list[dict]:
    """The weights on the device, cast on the host to the input's dtype (what the product would promote or
    canonicalise them to), so that placing them compiles nothing."""
    return [
        {"W": jax.device_put(np.asarray(w, dtype)), "b": jax.device_put(np.asarray(b, dtype))}
        for w, b in zip(coefs, intercepts, strict=True)
    ]


def read_only(array: np.ndarray) -> np.ndarray:
    """``array`` made read-only and given back as a view of it, which no ``setflags`` can make writeable again (an
    array that owns its memory can be), so the prediction path keeps its weights placed (:func:`sealed`)."""
    array.setflags(write=False)
    return array.view()


def sealed(array: np.ndarray) -> bool:
    """Whether ``array``'s numbers cannot change behind the estimator's back: read-only, not the owner of its memory
    (an owner's ``setflags(write=True)`` succeeds), and read-only down to that owner (a read-only view of a
    writeable array changes with it), the owner an array or a read-only buffer (JAX's, on the CPU)."""
    if array.flags.writeable or array.flags.owndata:
        return False
    base = array.base
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or (isinstance(base, memoryview) and base.readonly) or isinstance(base, bytes)


class Predictor:
    """The forward pass of one fitted network, or of an ensemble's members at once, with its weights placed."""

    def __init__(self, model: Sequential, head: Head):
        self.model = model
        self.head = head
        self._placed: dict[str, tuple] = {}

    def __call__(self, coefs, intercepts, X: np.ndarray, *, ensemble: bool) -> np.ndarray:
        """``(n_members, n_samples, n_outputs)``: the network's outputs through the head's link.  ``coefs`` and
        ``intercepts`` are the estimator's (with a leading member axis on every array for an ensemble)."""
        forward = _member_predictions if ensemble else _network_predictions
        place = partial(self._params, coefs, intercepts, X.shape[1], ensemble)
        out = compiled_outputs(forward, (self.model, self.head), X, place)
        return out if ensemble else out[None]

    def _params(self, coefs, intercepts, n_features: int, ensemble: bool, dtype):
        """:func:`placed` weights for ``dtype``'s computation, placed once for :func:`sealed` arrays, and checked
        against the network whenever they are placed (a user may assign ``coefs_`` of other shapes)."""
        arrays = (*coefs, *intercepts)
        identity = tuple(map(id, arrays))
        cached = self._placed.get(dtype.name)
        if cached is not None and cached[0] == identity:
            return cached[1]
        check_weights(self.model, coefs, intercepts, n_features, ensemble)
        params = placed(coefs, intercepts, dtype)
        if all(sealed(array) for array in arrays):
            self._placed[dtype.name] = (identity, params, arrays)  # holding the arrays keeps their ids theirs
        return params


def check_weights(model: Sequential, coefs, intercepts, n_features: int, ensemble: bool) -> None:
    """A ValueError naming the layer and the shapes when ``coefs`` and ``intercepts`` (an estimator's, perhaps
    assigned by its user) do not chain through ``model`` from ``n_features`` inputs (an ensemble's arrays: after
    their member axis, which they all share)."""
    prefix = "ensemble_" if ensemble else ""
    name = f"{prefix}coefs_ and {prefix}intercepts_"
    if len(coefs) != len(model.layers) or len(intercepts) != len(model.layers):
        raise ValueError(
            f"{name} do not fit the network: {prefix}coefs_ holds {len(coefs)} layers and {prefix}intercepts_ "
            f"{len(intercepts)}, for a network of {len(model.layers)}; assign weights of the shapes the fit gave"
        )
    members = {np.shape(array)[:1] for array in (*coefs, *intercepts)}
    if ensemble and len(members) != 1:
        raise ValueError(
            f"{name} do not fit the network: their arrays hold {sorted(m[0] if m else 0 for m in members)} members "
            "on their first axis, which must be one number; assign weights of the shapes the fit gave"
        )
    member_axis = 1 if ensemble else 0
    layers = [
        {"W": LeafShape(w, member_axis), "b": LeafShape(b, member_axis)} for w, b in zip(coefs, intercepts, strict=True)
    ]
    try:
        model.check(layers, (0, n_features))
    except ValueError as error:
        raise ValueError(f"{name} do not fit the network: {error}; assign weights of the shapes the fit gave") from None


def _program(forward, static: tuple, rows: int, dtype_name: str, shapes: tuple):
    """:func:`_compiled`'s program, one key among those jaxnn holds (:func:`jaxnn._builds.held_programs_of`; a
    key per row bucket, so that the limit bounds programs: a network meets many buckets): shared by every
    estimator with that network."""
    programs = held_programs_of((_program, forward, static, rows, dtype_name, shapes))
    program = programs.get(rows)
    if program is None:  # two threads may both compile it: the first one stored is kept
        program = programs.setdefault(rows, _compiled(forward, static, rows, dtype_name, shapes))
    return program


def _compiled(forward, static: tuple, rows: int, dtype_name: str, shapes: tuple):
    """``forward`` for ``rows`` rows of ``dtype_name`` and weights of ``shapes``, compiled, with jaxnn's
    persistent compilation cache on (:func:`jaxnn.compile_cache.enable_default`)."""
    params = [
        {"W": jax.ShapeDtypeStruct(w_shape, w_dtype), "b": jax.ShapeDtypeStruct(b_shape, b_dtype)}
        for w_shape, w_dtype, b_shape, b_dtype in shapes
    ]
    x = jax.ShapeDtypeStruct((rows, shapes[0][0][-2]), dtype_name)
    compile_cache.enable_default()
    return jax.jit(partial(forward, *static)).lower(params, x).compile()
