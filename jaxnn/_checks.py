"""The input checks every module shares: numbers, seeds, PRNG keys, name look-ups, and training data.

Each check returns the value normalised (a Python ``int``/``float``, a JAX array) or raises a
``ValueError``/``TypeError`` whose text starts with ``what`` — the name the user knows the value by —
and says what is allowed.  Booleans are never numbers here (``True`` is not an epoch count), and NumPy
scalars are accepted wherever Python ones are.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping, Sequence
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn.platforms import on_host

__all__ = [
    "MAX_SEED",
    "UINT32_LIMIT",
    "as_real_array",
    "batch_size_with_key",
    "data_array",
    "epoch_range",
    "epsilon_fits_dtype",
    "finite_real",
    "finite_reals",
    "finite_weights",
    "fits_dtype",
    "floating_dtype",
    "floating_weights",
    "full_batch_data",
    "int_in_range",
    "is_int",
    "is_real",
    "largest_safe_sum",
    "layer_dicts",
    "look_up",
    "loss_weights_usable",
    "matching_state",
    "member_keys",
    "per_member",
    "positive_int",
    "prng_key",
    "rates_fit_dtype",
    "sample_weights",
    "seed_int",
    "single_key",
    "smallest_kept",
    "smallest_kept_words",
    "state_without_nan",
    "step_values_usable",
    "summing_type",
    "unwrapped_integers",
    "validation_pair",
    "weights_fit_dtype",
    "weights_not_flushed",
]

T = TypeVar("T")

UINT32_LIMIT = 2**32  # epoch counters and seeds are 32-bit unsigned: values in [0, 2**32)
MAX_SEED = UINT32_LIMIT - 1  # scikit-learn (numpy's RandomState) takes int seeds in [0, 2**32 - 1]
TRAINED_IN_PARAMS_DTYPE = "the params' dtype, which it is trained in"  # whose dtype a cast value must fit, and why


def is_int(value) -> bool:
    """A whole number: a Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_real(value) -> bool:
    """A finite real number a float can hold: a Python or NumPy int or float, not a bool, NaN or infinite."""
    if is_int(value):
        return abs(int(value)) <= sys.float_info.max  # an exact comparison; math.isfinite raises beyond it
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) and math.isfinite(value)


def positive_int(value, what: str) -> int:
    """``value`` as an int if it is a whole number ≥ 1; else a ValueError "``what`` must be a positive integer"."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def int_in_range(value, what: str, low: int, high: int) -> int:
    """``value`` as an int if it is a whole number with ``low <= value < high``; else a ValueError."""
    if not is_int(value) or not low <= value < high:
        raise ValueError(f"{what} must be an integer in [{low}, {_power_of_two(high)}), got {value!r}")
    return int(value)


def _power_of_two(n: int) -> str:
    """``2**32`` rather than ``4294967296`` in messages."""
    return f"2**{n.bit_length() - 1}" if n > 1024 and n & (n - 1) == 0 else str(n)


def finite_real(value, what: str, *, minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a float if it is a finite real number (``> 0`` with ``positive``, ``>= minimum`` with a
    minimum); else a ValueError naming ``what`` and the range."""
    ok = is_real(value) and (not positive or value > 0) and (minimum is None or value >= minimum)
    if not ok:
        expected = f"a finite number >= {minimum:g}" if minimum is not None else "a finite number"
        expected = "a positive number" if positive and minimum is None else expected
        raise ValueError(f"{what} must be {expected}, got {value!r}")
    return float(value)


def seed_int(value, what: str = "seed") -> int:
    """A seed: an int in ``[0, 2**32)``."""
    return int_in_range(value, what, 0, UINT32_LIMIT)


def prng_key(value, what: str = "key") -> jax.Array:
    """``value`` if it is a ``jax.random`` key (typed, or the raw ``uint32[2]`` form); else a TypeError."""
    typed = isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key)
    raw = isinstance(value, jax.Array) and value.dtype == jnp.uint32 and value.shape[-1:] == (2,)
    if not (typed or raw):
        raise TypeError(f"{what} must be a jax.random key such as jax.random.key(0), got {value!r:.80}")
    return value


def single_key(key, what: str = "key") -> jax.Array:
    """``key`` if it is one ``jax.random`` key; a batch of keys is a ValueError pointing to ``init_many``."""
    prng_key(key, what)
    if key.ndim != (0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1):
        raise ValueError(
            f"{what} must be one jax.random key, got a batch of shape {tuple(key.shape)}; for one network per key "
            "use model.init_many(keys, n_features)"
        )
    return key


def floating_dtype(dtype) -> jnp.dtype:
    """``dtype`` as a JAX dtype if it is a real floating type (weights are differentiated); else a TypeError.
    A 64-bit type while JAX's 64-bit mode is off is a ValueError: JAX would give 32-bit numbers instead (with a
    warning only the first time a program is traced)."""
    try:
        checked = jnp.dtype(dtype)
    except TypeError:  # 'bogus'
        checked = None
    if checked is None or not jnp.issubdtype(checked, jnp.floating):
        raise TypeError(f"dtype must be a floating-point type such as jnp.float32 or jnp.float64, got {dtype!r}")
    if checked.itemsize == 8 and not jax.config.jax_enable_x64:  # JAX would canonicalise it to 32 bits
        raise ValueError(
            f"dtype {checked} needs JAX's 64-bit mode, which is off: run inside jax.enable_x64(True) (or set "
            "jax.config.update('jax_enable_x64', True)), or ask for float32"
        )
    return checked


def look_up(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``; a name that is not there is a ValueError listing the known names, in sorted order."""
    if isinstance(name, str) and name in table:
        return table[name]
    known = ", ".join(sorted(table))
    raise ValueError(f"unknown {what} {name!r}; choose one of: {known}")


def as_real_array(value, what: str) -> jax.Array:
    """``value`` as a JAX array of real numbers (float, int and bool dtypes kept), else a TypeError
    "``what`` must be real numbers, got dtype ...".  Lists, NumPy arrays and scalars are converted;
    JAX arrays (tracers included) pass as they are.  Integers that JAX's integer type cannot hold (beyond int32
    without 64-bit mode, where JAX would wrap them) become floats, as ``fit`` converts its data."""
    if not isinstance(value, jax.Array):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):  # ragged lists and the like
            value = np.asarray(None)
    if not any(jnp.issubdtype(value.dtype, kind) for kind in (jnp.floating, jnp.integer, jnp.bool_)):
        raise TypeError(f"{what} must be real numbers, got dtype {value.dtype}")
    return jnp.asarray(unwrapped_integers(value))


def unwrapped_integers(value):
    """``value``, but a NumPy integer array JAX would wrap (beyond int32 without 64-bit mode) as default floats."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or not value.size:
        return value
    held = jax.dtypes.canonicalize_dtype(value.dtype)
    if held != value.dtype and (value.min() < np.iinfo(held).min or value.max() > np.iinfo(held).max):
        return value.astype(jnp.result_type(float))
    return value


def step_arguments(params, opt_state, **arrays) -> None:
    """A TypeError naming the first of ``arrays`` (x, y, weight), a ``params`` leaf or ``opt_state`` that a compiled
    step cannot take (a DataFrame, strings, objects), and saying what to pass; returns if all can be taken."""
    for name, value in arrays.items():
        if value is not None and not isinstance(value, jax.Array | np.ndarray | np.generic):
            raise TypeError(
                f"{name} must be an array (the step is compiled for arrays): pass jnp.asarray({name}); "
                f"got {type(value).__name__}"
            )
        if value is not None:
            as_real_array(value, name)
    for leaf in jax.tree.leaves(params):
        as_real_array(leaf, "every leaf of params")
    if any(
        not isinstance(leaf, jax.Array | np.ndarray | np.generic | int | float) for leaf in jax.tree.leaves(opt_state)
    ):
        raise TypeError(
            "opt_state must be optimizer.init(params), or the opt_state the last step returned; "
            f"got {type(opt_state).__name__}"
        )


# --------------------------------------------------------------------------------------------------
# Training data.  ``n_members`` is None for one network (2-D arrays) and P for a population, whose data
# arrays may also be one per member (3-D, the member axis first); an array's "axis" is then 0, else None.


def finite_reals(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` itself if it holds finite real numbers (booleans are 0 and 1, as in scikit-learn; bfloat16, whose
    NumPy kind is 'V', is a float as in ``model.apply``); else a TypeError (not real) or ValueError (NaN, inf)."""
    if array.dtype.kind not in "biuf" and not jnp.issubdtype(array.dtype, jnp.floating):
        hint = (  # pandas' nullable Float32/Int64 columns (pd.NA) and mixed columns convert to objects
            "; for a pandas DataFrame with nullable or mixed columns, fill missing values and pass "
            "df.to_numpy(dtype=float)"
            if array.dtype.kind == "O"
            else ""
        )
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}{hint}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity; clean or impute it before training")
    return array


def layer_dicts(params, what: str = "params"):
    """``params`` in the layout ``model.init`` makes — a list of one ``{"W", "b"}`` dict per layer — when given as
    any sequence of mappings (a tuple, say); a layer with keys beyond ``W`` and ``b`` is a ValueError (training
    carries those two only).  Anything else is returned as it is, for the model's own check to name."""
    if not isinstance(params, Sequence) or isinstance(params, str):
        return params
    for index, layer in enumerate(params):
        if isinstance(layer, Mapping) and set(layer) - {"W", "b"}:
            extra = ", ".join(sorted(map(repr, set(layer) - {"W", "b"})))
            raise ValueError(
                f"{what}[{index}] has keys other than 'W' and 'b' ({extra}); give each layer's weights and biases "
                "only, as model.init makes them"
            )
    return [{"W": layer["W"], "b": layer["b"]} if _has_weights(layer) else layer for layer in params]


def _has_weights(layer) -> bool:
    return isinstance(layer, Mapping) and {"W", "b"} <= set(layer)


def floating_weights(params, what: str = "params") -> set:
    """The dtypes of ``params``' leaves (tracers' too), if all are floating (integer ones' gradients are cut)."""
    dtypes = {np.dtype(getattr(leaf, "dtype", type(leaf))) for leaf in jax.tree.leaves(params)}
    if not all(jnp.issubdtype(dtype, jnp.floating) for dtype in dtypes):
        kinds = ", ".join(sorted(map(str, dtypes)))
        raise TypeError(f"{what} must hold floating-point weights, as model.init makes them; got dtypes {kinds}")
    return dtypes


def finite_weights(params, what: str = "params") -> None:
    """Starting weights of one floating dtype with no NaN or infinity: a step from a NaN weight is NaN, so training
    could never leave it.  A TypeError or ValueError otherwise.  Checked with NumPy on a host copy: a compiled
    check would cost every fresh process a compilation for each network shape."""
    dtypes = floating_weights(params, what)
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
    if len(dtypes) > 1:  # the data is cast to the first leaf's dtype, and updates mix precisions
        raise TypeError(
            f"{what} mix dtypes ({', '.join(sorted(map(str, dtypes)))}); give every weight one floating dtype, e.g. "
            "jax.tree.map(lambda a: a.astype(jnp.float32), params)"
        )
    if np.dtype(dtypes.pop()).itemsize == 8 and not jax.config.jax_enable_x64:  # JAX would make them float32
        raise ValueError(
            f"{what} are float64, which trains as float64 only in JAX's 64-bit mode, which is off: run inside "
            "jax.enable_x64(True), or cast them, e.g. jax.tree.map(lambda a: a.astype(jnp.float32), params)"
        )
    if not all(np.isfinite(leaf).all() for leaf in leaves):
        raise ValueError(
            f"{what} contain NaN or infinity, which training cannot repair; start from finite weights, e.g. "
            "model.init(key, n_features), or the params of a fit that did not diverge"
        )


def state_without_nan(opt_state) -> None:
    """A ValueError when a given optimiser state holds NaN: every step from it is NaN, so the run would end at once as
    diverged.  (An infinity is left alone: it can be legitimate, e.g. optax's reduce_on_plateau starts its best value
    at inf.)  Checked with NumPy on a host copy, as :func:`finite_weights` checks the weights."""
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(opt_state)]
    if any(jnp.issubdtype(leaf.dtype, jnp.inexact) and np.isnan(leaf).any() for leaf in leaves):
        raise ValueError(
            "opt_state contains NaN, which training cannot repair; leave it None to start afresh, or pass the "
            "opt_state of a fit that did not diverge"
        )


def matching_state(opt_state, fresh, hint: str) -> None:
    """A ValueError unless ``opt_state`` has the tree form, leaf shapes and dtypes of ``fresh`` (the state the optimiser
    would start from, traced only: ``jax.eval_shape``); anything else fails deep inside the optimiser, or silently
    resumes another run.  ``hint`` says what to pass instead."""
    given_leaves, given_form = jax.tree.flatten(opt_state)
    fresh_leaves, fresh_form = jax.tree.flatten(fresh)
    if given_form != fresh_form or [np.shape(a) for a in given_leaves] != [a.shape for a in fresh_leaves]:
        raise ValueError(f"opt_state does not match this optimiser's state for these params: {hint}")
    for given, expected in zip(given_leaves, fresh_leaves, strict=True):
        dtype = jax.dtypes.canonicalize_dtype(given.dtype if hasattr(given, "dtype") else np.asarray(given).dtype)
        if dtype != jax.dtypes.canonicalize_dtype(expected.dtype):  # a float16 run's state: JAX's carry-type error
            raise ValueError(
                f"opt_state holds {dtype} where this optimiser's state for these params is {expected.dtype} (the "
                f"state of params of another dtype?): {hint}"
            )


def rectangular(name: str, value) -> np.ndarray:
    """``np.asarray(value)``; a ragged list (rows of different lengths) is a ValueError naming ``name`` (NumPy's
    "setting an array element with a sequence ... inhomogeneous shape" names nothing)."""
    try:
        return np.asarray(value)
    except ValueError as error:
        if "inhomogeneous" not in str(error):
            raise
        raise ValueError(
            f"{name} must be a rectangular array: its rows have different lengths; give every row one value per column"
        ) from None


def data_array(name: str, value, n_members: int | None) -> tuple[np.ndarray, int | None]:
    """``value`` as a checked NumPy array — ``(n_samples, n_columns)``, at least one column for ``x…`` and ``y`` (a
    1-D ``y…`` is one), or for a population also ``(P, n_samples, n_columns)`` — and its member axis (0, or None)."""
    array = rectangular(name, value)
    if array.ndim == 0 and array.dtype == object:  # a scipy.sparse matrix, a dict, None, ...
        raise TypeError(
            f"{name} must be an array of numbers, got {type(value).__name__}; pass a NumPy or JAX array (a "
            "scipy.sparse matrix: its .toarray())"
        )
    if array.dtype.kind in "US":  # text ("abc" is 0-D): what is wrong is its type, not its shape
        finite_reals(name, array)
    if name.startswith("y") and array.ndim == 1:
        array = array[:, None]
    if n_members is None and array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {array.shape}")
    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be (n_samples, n_columns), or (members, n_samples, n_columns) per member")
    if array.shape[-1] == 0 and name.startswith("x"):  # a first layer of W (0, k) trained its biases alone, silently
        raise ValueError(f"{name} has 0 features (shape {array.shape}): a network needs at least one input column")
    if array.shape[-1] == 0 and name == "y":  # y_val goes to the user's score as it is (see jaxnn.fit)
        raise ValueError(f"{name} has 0 columns (shape {array.shape}): give one column per output of the last layer")
    finite_reals(name, array)
    if array.ndim == 3 and array.shape[0] != n_members:
        raise ValueError(f"{name} has {array.shape[0]} members but params has {n_members}")
    return array, (0 if array.ndim == 3 else None)


def fits_dtype(
    name: str,
    array: np.ndarray,
    dtype,
    *,
    scaling: str = "standardise it",
    role: str = TRAINED_IN_PARAMS_DTYPE,
    advice: str | None = None,
) -> np.ndarray:
    """``array`` cast to the training ``dtype`` (``role`` says whose dtype it is and what is done in it), if every
    value stays finite there; else a ValueError saying to scale it down (``scaling`` says how) or ending with
    ``advice``.  A finite float64 value beyond float32's (or float16's) range is infinite in the cast: NaN training."""
    with np.errstate(over="ignore"):
        cast = np.asarray(array, dtype)
    if not np.all(np.isfinite(cast)):
        biggest = float(jnp.finfo(cast.dtype).max)
        raise ValueError(
            f"{name} has values beyond {np.dtype(cast.dtype).name}'s range (largest {biggest:.3g}), {role}: "
            f"{advice or f'scale it down ({scaling}), or train in a wider dtype'}"
        )
    return cast


def weights_fit_dtype(
    weight: np.ndarray,
    dtype,
    *,
    name: str = "weight",
    role: str = TRAINED_IN_PARAMS_DTYPE,
    advice: str | None = None,
    mean: bool = True,
    consequence: str = "training would take no step",
) -> np.ndarray:
    """Per-sample ``weight`` (one row per member, or one row; finite and non-negative) cast to ``dtype`` by
    :func:`fits_dtype`.  Where the weights divide a weighted mean loss Σwᵢlᵢ / Σwᵢ by their sum (``mean``), also:
    no row rounds to all zeros there and no row is flushed (:func:`weights_not_flushed`) — the mean would be 0/0,
    which ``consequence`` puts in the caller's words — and no row's sum passes :func:`largest_safe_sum` (an
    infinite sum makes the mean NaN).  Else a ValueError naming ``name`` and ``role`` (whose dtype it is) and ending
    with ``advice`` (default: which way to rescale ``jaxnn.fit``'s ``weight``).  One check for every road: fit,
    the estimators (after ``class_weight``), L-BFGS and the losses called directly."""
    same_mean = "a weighted mean loss is unchanged by scaling them all"
    cast = fits_dtype(name, weight, dtype, scaling=same_mean, role=role, advice=advice)
    if not mean:
        return cast
    rows = cast.reshape(-1, cast.shape[-1])
    dtype_name = np.dtype(cast.dtype).name
    scale_up = advice or f"scale the weights up towards 1 ({same_mean})"
    if not np.all(np.any(rows > 0, axis=1)):
        raise ValueError(f"{name} rounds to all zeros in {dtype_name}, {role}, so {consequence}: {scale_up}")
    sums = np.sum(rows, axis=1, dtype=np.float64)
    biggest = float(jnp.finfo(cast.dtype).max)
    if not np.all(sums <= largest_safe_sum(cast.dtype, rows.shape[1])):
        raise ValueError(
            f"{name} sums to {float(np.max(sums)):.8g}, beyond {dtype_name}'s range (largest {biggest:.8g}, less "
            f"what adding {rows.shape[1]} numbers in {dtype_name} may round up), {role} (the "
            "weighted mean loss divides by that sum): "
            f"{advice or f'scale the weights down towards 1 ({same_mean})'}"
        )
    weights_not_flushed(name, cast, scale_up, consequence=consequence)
    return cast


def full_batch_data(model, loss, params, x, y, weight) -> tuple:
    """:func:`jaxnn.lbfgs.minimize`'s data checked against its model and loss: ``(params, x, y, weight)``, the
    params as layer dicts of finite weights, ``x``, ``y`` and ``weight`` cast to the params' dtype by
    :func:`fits_dtype` and :func:`weights_fit_dtype` (a plain cast of x = 1e300 to float32 gave infinity and a
    minimisation that ended ``NON_FINITE`` at once, with NumPy's overflow warning only)."""
    given_y_shape = np.shape(y)  # as given: data_array reads a 1-D y as one column
    (x, _), (y, _), params = data_array("x", x, None), data_array("y", y, None), layer_dicts(params)
    model.check(params, x.shape)
    if y.shape != (x.shape[0], model.n_outputs):
        labels = " (class labels? one-hot encode them: jaxnn.data.one_hot(y))" if len(given_y_shape) == 1 else ""
        raise ValueError(
            f"y must have shape {(x.shape[0], model.n_outputs)} (one row per sample of x, one column per output "
            f"of the last layer), got {given_y_shape}{labels}"
        )
    loss.check_targets(y, rows=True)
    positive_int(x.shape[0], "the number of samples in x")  # none failed in a NumPy reshape
    finite_weights(params)
    dtype = np.dtype(jax.tree.leaves(params)[0].dtype)
    weight, _ = sample_weights(weight, x.shape[0], None)
    # Its penalty alpha/(2·Σw)·Σ‖W‖² divides by the weights' sum: rescaling them alone would change it.
    advice = "multiply weight by one constant that brings it towards 1, and alpha by the same constant (the "
    advice += "weighted mean loss is unchanged by it, and the L2 penalty alpha/(2·Σw)·Σ‖W‖² is kept)"
    return params, fits_dtype("x", x, dtype), fits_dtype("y", y, dtype), weights_fit_dtype(weight, dtype, advice=advice)


def largest_safe_sum(dtype, n: int) -> float:
    """The largest sum of ``n`` non-negative numbers of ``dtype`` that jaxnn's sums over samples keep finite: the
    largest number M of the type they are taken in over 1 + n·ε, since a sum may round up by about n·ε of itself
    (a float64 sum just under M passed, and float32's own sum of the same numbers was infinite).  That type is
    ``dtype`` for float32 and float64, and float32 for float16 and bfloat16, whose weighted sums (the losses'
    means, the epoch's loss, L-BFGS's penalty) are taken and divided in float32 before one rounding back."""
    accumulated = summing_type(dtype)
    return float(jnp.finfo(accumulated).max) / (1 + n * float(jnp.finfo(accumulated).eps))


def summing_type(dtype) -> np.dtype:
    """The type a sum over samples of ``dtype`` values is taken in: float32 for float16 and bfloat16 (whose sums
    overflow or lose every small term), else ``dtype`` itself."""
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else jnp.dtype(dtype)


def smallest_kept(dtype) -> float:
    """The smallest positive number of ``dtype`` that compiled programs keep.  XLA (on CPU and GPU) flushes
    subnormal float32 and float64 results and operands to zero, so for those it is the smallest normal number.
    Narrower types are computed in float32: float16's subnormals (from 6e-8) are normal there and kept, but
    bfloat16's (from 9.2e-41) are float32's subnormals and flushed, so bfloat16's is its smallest normal number,
    float32's (1.18e-38): the larger of the type's smallest subnormal and float32's smallest normal number."""
    info = jnp.finfo(dtype)
    if np.dtype(dtype) in (np.float32, np.float64):
        return float(info.smallest_normal)
    return max(float(info.smallest_subnormal), float(jnp.finfo(jnp.float32).smallest_normal))


def smallest_kept_words(dtype) -> str:
    """:func:`smallest_kept` in words, for a message: "float32's smallest normal number (1.18e-38)"."""
    smallest = smallest_kept(dtype)
    normal = "normal number" if smallest == jnp.finfo(dtype).smallest_normal else "number"
    return f"{np.dtype(dtype).name}'s smallest {normal} ({smallest:.3g})"


def weights_not_flushed(
    name: str, weight: np.ndarray, advice: str, *, consequence: str = "training would take no step"
) -> None:
    """A ValueError, ending with ``advice``, when a row of ``weight`` (one per member, or one) has no value at or
    above :func:`smallest_kept`: every batch of such a row would weigh 0 in the compiled program, so no step is
    taken and nothing says so (``consequence``: what it means where the weights serve elsewhere); a flushed one
    beside kept ones weighs 0 too."""
    dtype = np.dtype(weight.dtype)
    smallest = smallest_kept(dtype)
    largest = np.max(weight.reshape(-1, weight.shape[-1]), axis=1)
    if not np.all(largest >= smallest):
        raise ValueError(
            f"the largest value of {name} is {float(np.min(largest)):.3g}, below {smallest_kept_words(dtype)}: "
            f"compiled programs flush such numbers to zero, so {consequence}; {advice}"
        )


def loss_weights_usable(loss: str, weight: np.ndarray, dtype, *, mean: bool) -> None:
    """A ValueError naming ``loss`` unless the per-sample ``weight`` (float64, as given) can weigh a loss computed in
    ``dtype`` (the predictions'): finite and non-negative, with a positive sum for a ``mean``, and then usable in
    ``dtype`` by :func:`weights_fit_dtype`'s rules, fit's own (an infinite weight makes w·l infinite, or NaN where
    l = 0; for a mean, weights rounding or flushed to 0 make it 0/0 and an infinite sum NaN)."""
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError(
            f"{loss}: sample weights must be finite and non-negative, got "
            f"{'NaN or infinity' if not np.all(np.isfinite(weight)) else 'negative values'}"
        )
    if mean and not np.sum(weight) > 0:
        raise ValueError(
            f"{loss}: the sample weights sum to 0, so the weighted mean is undefined; "
            "give at least one sample a positive weight"
        )
    unchanged = "the weighted mean is unchanged by it" if mean else "the weighted sum scales with it"
    weights_fit_dtype(
        weight,
        dtype,
        name=f"{loss}'s weight",
        role=f"the predictions' dtype, which {loss} is computed in",
        advice=f"multiply the weights by one constant that brings them towards 1 ({unchanged})",
        mean=mean,
        consequence="the weighted mean would be 0/0",
    )


def sample_weights(weight, n_samples: int, n_members: int | None) -> tuple[np.ndarray, int | None]:
    """Per-sample weights (default all 1): ``(n_samples,)``, or for a population also one row per member;
    finite, non-negative, with a positive sum (for every member); returned as float64 with its member axis."""
    try:
        if np.iscomplexobj(weight):  # NumPy would keep the real part, with a warning at most
            raise TypeError
        w = np.ones(n_samples) if weight is None else np.asarray(weight, dtype=float)
    except (TypeError, ValueError):  # text, None entries, ragged lists, complex numbers
        raise TypeError(f"weight must be real numbers, one per sample ({n_samples}), got {weight!r:.80}") from None
    shapes = ((n_samples,),) if n_members is None else ((n_samples,), (n_members, n_samples))
    fault = _weight_fault(w, shapes, n_samples)
    if fault is not None:
        if n_members is None:
            raise ValueError(f"weight must be {n_samples} finite, non-negative numbers with a positive sum; {fault}")
        raise ValueError(
            f"weight must be ({n_samples},) or ({n_members}, {n_samples}) finite, non-negative numbers with a "
            f"positive sum for every member; {fault}"
        )
    return w, (0 if w.ndim == 2 else None)


def _weight_fault(w: np.ndarray, shapes: tuple, n_samples: int) -> str | None:
    """What is wrong with the float64 weights ``w`` (a shape not in ``shapes``, a value that is not finite or is
    negative, a member whose weights sum to 0), in a few words; None when nothing is."""
    if w.shape not in shapes:
        return f"got shape {w.shape}"
    if not np.all(np.isfinite(w)):
        return f"got {w[~np.isfinite(w)][0]}"
    if np.any(w < 0):
        return f"got {w.min():g}"
    empty = np.flatnonzero(~(w.reshape(-1, n_samples).sum(1) > 0))
    if empty.size:
        return "they sum to 0" if w.ndim == 1 else f"member {empty[0]}'s weights sum to 0"
    return None


def batch_size_with_key(batch_size, n_samples: int, key, *, shuffle: bool = True, population: bool = False) -> int:
    """The rows per step (None: all of them, full batch); shuffled minibatches need a key."""
    if batch_size is None:
        return n_samples
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if shuffle and batch_size < n_samples and key is None:
        also = " (or one per member)" if population else ""
        raise ValueError(f"minibatch training shuffles every epoch: pass key=jax.random.key(seed){also}")
    return min(int(batch_size), n_samples)


def validation_pair(validation, n_features: int, n_members: int | None):
    """``(x_val, y_val)`` checked against the training features: ``((x_val, axis), (y_val, axis))``."""
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be a pair (x_val, y_val)")
    (x_val, x_axis), (y_val, y_axis) = (
        data_array(name, value, n_members) for name, value in zip(("x_val", "y_val"), validation, strict=True)
    )
    if x_val.shape[-1] != n_features:
        raise ValueError(f"x_val has {x_val.shape[-1]} features but x has {n_features}; they must match")
    if x_val.shape[-2] != y_val.shape[-2] or x_val.shape[-2] == 0:
        labels = n_members is not None and np.shape(validation[1]) == (n_members, x_val.shape[-2])  # read as shared
        raise ValueError(
            f"x_val has {x_val.shape[-2]} samples and y_val {y_val.shape[-2]}; they must match and be at least 1"
            + (f" (labels per member are (members, n_samples, 1): {(n_members, x_val.shape[-2], 1)})" if labels else "")
        )
    if np.ndim(validation[1]) == 1:  # labels go to score as given, (n,): as a column, y_val == argmax broadcast
        y_val = y_val[:, 0]
    return (x_val, x_axis), (y_val, y_axis)


def epoch_range(epochs, start_epoch) -> tuple[int, int]:
    """``(epochs, start_epoch)`` checked: one epoch or more, the last one's index within the 32-bit epoch counter."""
    epochs = positive_int(epochs, "epochs")
    start_epoch = int_in_range(start_epoch, "start_epoch", 0, UINT32_LIMIT)
    if start_epoch + epochs >= UINT32_LIMIT:
        raise ValueError(
            f"start_epoch + epochs = {start_epoch + epochs} passes the 32-bit epoch counter (at most 2**32 - 1); "
            "start a new count (start_epoch=0) or run fewer epochs"
        )
    return epochs, start_epoch


def per_member(name: str, value, n_members: int, *, positive: bool = False) -> np.ndarray:
    """A number for every member, or one for all: a ``(P,)`` float64 array of finite values ≥ 0 (> 0 with
    ``positive``).  What is not numbers — text (even ``"0.1"``), None, a bool or an array of bools (``True``
    is no rate) — is a TypeError; a wrong shape or a value out of range is a ValueError.  ``fit`` and
    ``fit_many`` check ``learning_rate``, ``l2`` and ``power_t`` here alone, so both take the same values."""
    expected = f"{name} must be one number or one per member ({n_members}), got {value!r:.80}"
    bools = isinstance(value, bool | np.bool_) or (
        isinstance(value, list | tuple) and any(isinstance(item, bool | np.bool_) for item in value)
    )
    if bools:  # NumPy would read True as 1.0
        raise TypeError(f"{expected} (a bool is not a number here)")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists and the like
        array = np.asarray(None)
    if array.dtype.kind == "b":
        raise TypeError(f"{expected} (a bool is not a number here)")
    # integers and floats, bfloat16 included (NumPy's kind for it is 'V'); not text, None or objects
    if not (array.dtype.kind in "iu" or jnp.issubdtype(array.dtype, jnp.floating)):
        raise TypeError(expected)
    array = array.astype(float)
    if array.ndim == 0:
        array = np.full(n_members, float(array))
    below = np.any(array <= 0) if positive else np.any(array < 0)
    if array.shape != (n_members,) or not np.all(np.isfinite(array)) or below:
        raise ValueError(
            f"{name} must be one finite number {'> 0' if positive else '>= 0'} or one per member ({n_members}), got "
            + (f"shape {np.shape(value)}" if array.shape != (n_members,) else f"{value!r:.80}")
        )
    return array


def rates_fit_dtype(
    name: str,
    values: np.ndarray,
    dtype,
    *,
    positive: bool = False,
    role: str = TRAINED_IN_PARAMS_DTYPE,
    advice: str = "train in a wider dtype (params cast with .astype)",
    consequence: str = "training would take no step",
) -> np.ndarray:
    """``values`` (:func:`per_member`'s float64 rates) cast to the training ``dtype`` (``role`` says whose it is),
    where the optimiser state keeps them: a ValueError naming ``name`` when one passes the dtype's range (by
    :func:`fits_dtype`: the cast gave infinity, and training diverged at its first step), or, with ``positive``,
    when one lies below :func:`smallest_kept` (it rounds to zero there or the compiled program flushes it): a
    learning rate of 0 trains nothing, silently (``consequence`` says what zero means for another value).  Both
    errors end with "pass a smaller/larger ``name``, or ``advice``" (how to train in a wider dtype), float64's
    with "pass a larger ``name``": there is no wider one."""
    wider = "" if np.dtype(dtype) == np.float64 else f", or {advice}"
    cast = fits_dtype(name, values, dtype, role=role, advice=f"pass a smaller {name}{wider}")
    if not positive:
        return cast
    smallest = smallest_kept(cast.dtype)
    if np.any(cast < smallest):
        raise ValueError(
            f"{name} {float(np.min(values)):.3g} is below {smallest_kept_words(cast.dtype)}, {role}: it rounds or is "
            f"flushed to zero there, so {consequence}; pass a larger {name}{wider}"
        )
    return cast


def epsilon_fits_dtype(name: str, epsilon: float, dtype, **advice) -> None:
    """Adam's ``epsilon`` checked against the params' ``dtype`` by :func:`rates_fit_dtype` (``advice``: its ``role``
    and ``advice``): flushed to 0 there, the step ``m / (√v + ε)`` is 0/0 for a weight whose gradients are all 0."""
    dead_unit = "Adam's step m / (√v + epsilon) is NaN for a weight whose gradients are all 0 (a dead unit)"
    rates_fit_dtype(name, np.float64(epsilon), dtype, positive=True, consequence=dead_unit, **advice)


def member_keys(key, n_members: int) -> jax.Array:
    """One typed key per member: ``key`` itself when it holds P keys, else the same key for every member."""
    prng_key(key)
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):  # the raw uint32 form: JAX's default generator
        key = jax.random.wrap_key_data(key)
    if key.ndim == 0:  # through the host: an eager indexing or broadcast of a key array costs more
        data = np.asarray(jax.random.key_data(key))
        return jax.random.wrap_key_data(np.broadcast_to(data, (n_members, *data.shape)), impl=jax.random.key_impl(key))
    networks = "1 network trains" if n_members == 1 else f"{n_members} networks train (params' members)"
    if key.ndim != 1 or key.shape[0] != n_members:
        held = f"{key.shape[0]} keys" if key.ndim == 1 else f"a {key.ndim}-D array of keys, shape {tuple(key.shape)}"
        raise ValueError(
            f"key holds {held} but {networks}; give one key, or a 1-D array of one key per network "
            f"(jax.random.split(key, {n_members}))"
        )
    return key


def step_values_usable(loss, x, y, weight, *, n_outputs: int, dtype) -> None:
    """One step's ``y`` and ``weight`` checked as ``fit`` checks them where they can be read without waiting for an
    accelerator (:func:`jaxnn.platforms.on_host`) and ``y`` has the step's shape ``(len(x), n_outputs)`` (the step
    names others): ``y`` in ``loss``'s range (``Loss.check_targets``: outside it the loss has no minimum), ``weight``
    non-negative with one positive (negative weights would train away from the data) and usable in the params'
    ``dtype`` (:func:`weights_fit_dtype`); else a ValueError.  NaN in ``y`` passes: the step is not applied."""
    if np.shape(y) != (*np.shape(x)[:1], n_outputs):
        return
    if weight is not None and on_host(weight) and np.ndim(weight) == 1:
        weights_fit_dtype(sample_weights(weight, len(weight), None)[0], dtype)
    if on_host(y):
        y = np.asarray(y, dtype=float)
        loss.check_targets(y)
        loss.check_class_rows(y[np.all(np.isfinite(y), axis=-1)])
