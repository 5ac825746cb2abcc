"""The input checks every module shares: whole numbers, finite reals, seeds, PRNG keys, name look-ups.

Each check returns the value normalised (a Python ``int``/``float``, a JAX array) or raises a
``ValueError``/``TypeError`` whose text starts with ``what`` — the name the user knows the value by —
and says what is allowed.  Booleans are never numbers here (``True`` is not an epoch count), and NumPy
scalars are accepted wherever Python ones are.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MAX_SEED",
    "UINT32_LIMIT",
    "as_real_array",
    "finite_real",
    "int_in_range",
    "is_int",
    "is_real",
    "look_up",
    "positive_int",
    "prng_key",
    "seed_int",
]

T = TypeVar("T")

UINT32_LIMIT = 2**32  # epoch counters and seeds are 32-bit unsigned: values in [0, 2**32)
MAX_SEED = UINT32_LIMIT - 1  # scikit-learn (numpy's RandomState) takes int seeds in [0, 2**32 - 1]


def is_int(value) -> bool:
    """A whole number: a Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_real(value) -> bool:
    """A finite real number: a Python or NumPy int or float, not a bool, not NaN or infinite."""
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
        expected = "a positive number" if positive else "a finite number"
        if minimum is not None:
            expected = f"a finite number >= {minimum:g}"
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


def look_up(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``; a name that is not there is a ValueError listing the known names, in sorted order."""
    if isinstance(name, str) and name in table:
        return table[name]
    known = ", ".join(sorted(table))
    raise ValueError(f"unknown {what} {name!r}; choose one of: {known}")


def as_real_array(value, what: str) -> jax.Array:
    """``value`` as a JAX array of real numbers (float, int and bool dtypes kept), else a TypeError
    "``what`` must be real numbers, got dtype ...".  Lists, NumPy arrays and scalars are converted;
    JAX arrays (tracers included) pass as they are."""
    if not isinstance(value, jax.Array):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):  # ragged lists and the like
            value = np.asarray(None)
    if not any(jnp.issubdtype(value.dtype, kind) for kind in (jnp.floating, jnp.integer, jnp.bool_)):
        raise TypeError(f"{what} must be real numbers, got dtype {value.dtype}")
    return jnp.asarray(value)
