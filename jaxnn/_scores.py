"""What the compiled training loop takes from the user's ``score`` and ``validation_loss`` functions: each is called
on the loop's traced arrays, once, while JAX traces the loop, and must give one real number.  Mistakes are named
there, in the user's words, rather than in JAX's (a tracer conversion, a shape mismatch deep in the loop)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["one_number"]

_TRACER_ERRORS = (
    jax.errors.TracerArrayConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def one_number(function, name: str, *args) -> jax.Array:
    """``function(*args)`` (the user's ``name`` function, on traced arrays) as a 0-d array.  A function that needs
    concrete values (NumPy, ``float()``, a Python ``if`` on a value) is a TypeError saying so, not JAX's tracer
    error; a result that is not one real number is a TypeError (a tuple, text, a complex number) or a ValueError
    (an array of several numbers).  Any other exception it raises passes through with a note naming ``name``."""
    try:
        value = function(*args)
    except _TRACER_ERRORS as error:
        raise TypeError(
            f"{name} runs inside the compiled training loop, on traced arrays, so it must be written with jax.numpy "
            f"(no NumPy calls, float() or Python if on the values); JAX's {type(error).__name__} came from it"
        ) from error
    except Exception as error:  # the user's own mistake, raised as it is, with a note saying whose function it was
        error.add_note(f"(raised by the {name} function given to jaxnn, called on the validation outputs and targets)")
        raise
    dtype = np.asarray(value).dtype if isinstance(value, float | int) else getattr(value, "dtype", None)
    if dtype is None or (dtype.kind not in "biuf" and not jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(f"{name} must return one real number (e.g. jnp.mean(...)), got {value!r:.80}")
    shape = jnp.shape(value)
    if shape != () and shape != (1,):
        raise ValueError(
            f"{name} must return one number for the whole validation set (e.g. a mean over its samples), "
            f"got an array of shape {shape}"
        )
    return jnp.reshape(value, ())
