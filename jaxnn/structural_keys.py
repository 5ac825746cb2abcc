"""A user's optax transformation as a compile-cache key that is the same for the same update.

jaxnn's compiled training loop (and :func:`jaxnn.make_train_step`'s step) is cached on the optimiser, a static
argument of ``jax.jit``.  An optax transformation is a NamedTuple of two closures, and closures compare by
identity: ``optax.adam(1e-3)`` built afresh for every fit, the usual idiom, was a new key every time.  Each fit
then compiled the loop again and JAX's jit cache kept every program (with the transformation) for the process's
life: some 140 ``mmap`` regions and 5 MB per fit on XLA:CPU, so a process that refits a model with a fresh
``optax.adam`` reached Linux's ``vm.max_map_count`` (65,530) after a few hundred fits and crashed.

:func:`by_structure` returns the transformation as a :class:`StructuralTransformation`, which compares equal to
another built by optax's own code from equal values: every function in it (its ``init`` and ``update``, and the
functions they capture: inner transformations, schedules) is optax's or JAX's (:data:`LIBRARIES`), of the same
code, and every value those functions capture or take as a default is an equal number, string or dtype, or a
tuple, such a function or a ``functools.partial`` of such.  Library code reads no global a user rebinds, so two
such transformations compute the same update and one program serves both.  A transformation with any function
of the user's own (a hand-written update, a ``lambda`` schedule: its code may read a global, a class or a module
that changed between two builds) or any other captured object (an array, a list, a configuration object: it may
be mutated) keeps its identity, one compile per new object, as before.
"""

from __future__ import annotations

import functools
import threading
import types
from collections import OrderedDict

import numpy as np
import optax

__all__ = ["LIBRARIES", "StructuralTransformation", "by_structure", "checked_optimizer"]

LIBRARIES = ("optax", "jax")  # whose functions a key may hold: their globals are modules no user rebinds
_MAX_DEPTH = 64  # optax's deepest chains are a dozen closures deep; past this, identity


class _Same:
    """A code object or a module's globals compared by identity inside a key (held, so its id stays its own)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


class _NoKey(Exception):
    """The value holds a function that is not a library's, an object other than numbers, strings, dtypes, tuples
    and partials, refers to itself or nests too deep: it has no structural key."""


def _number_key(value):
    """Floats by their bits (``-0.0`` and ``0.0`` differ in an update, NaN equals itself); the type is part of
    the key, since ``1``, ``1.0`` and ``True`` compare equal but trace differently."""
    if isinstance(value, float):
        return (type(value), value.hex())
    if isinstance(value, complex):
        return (type(value), value.real.hex(), value.imag.hex())
    return (type(value), value)


def _function_key(function: types.FunctionType, depth: int):
    """A library function's code, globals, defaults and closure contents; a user's function has no key."""
    if (function.__module__ or "").split(".")[0] not in LIBRARIES:
        raise _NoKey
    cells = tuple(_cell_key(cell, depth) for cell in function.__closure__ or ())
    return (
        _Same(function.__code__),
        _Same(function.__globals__),
        _key(function.__defaults__, depth),
        _key(tuple(sorted((function.__kwdefaults__ or {}).items())), depth),
        cells,
    )


def _cell_key(cell, depth: int):
    try:
        contents = cell.cell_contents
    except ValueError:  # an empty cell (a name assigned later in the enclosing function)
        return (_Same(_NoKey),)
    return _key(contents, depth)


def _key(value, depth: int = 0):
    """The structural key of ``value`` (see the module docstring)."""
    if depth > _MAX_DEPTH:
        raise _NoKey
    depth += 1
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return _number_key(value)
    if isinstance(value, np.dtype):
        # the dtype itself: its ``str`` is ``|V8`` for every structured dtype of 8 bytes, whatever its fields
        return (np.dtype, value)
    if isinstance(value, tuple):
        return (type(value), tuple(_key(item, depth) for item in value))
    if isinstance(value, types.FunctionType):
        return (types.FunctionType, _function_key(value, depth))
    if type(value) is functools.partial:  # a subclass may call differently
        keywords = tuple(sorted(value.keywords.items()))
        return (functools.partial, _key(value.func, depth), _key(value.args, depth), _key(keywords, depth))
    # Anything else (an array, a list, a schedule object, a class): it may be mutated between two builds and
    # read when the update is traced, which a shared program would not see; so no structural key.
    raise _NoKey


class StructuralTransformation(optax.GradientTransformationExtraArgs):
    """An optax transformation that compares and hashes by :func:`by_structure`'s key, not by identity."""

    # no __slots__: the key is computed once and kept in the instance's dict
    def _structural_key(self):
        key = self.__dict__.get("key")
        if key is None:
            key = self.__dict__["key"] = _key((self.init, self.update))
        return key

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, StructuralTransformation):
            return NotImplemented
        return self._structural_key() == other._structural_key()

    def __ne__(self, other) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __reduce__(self):
        # its two functions only: the kept key holds code objects and module globals, which deepcopy (sklearn's
        # clone of an estimator whose solver this is) and pickle refuse; a copy works its key out anew
        return (type(self), (self.init, self.update))

    def __hash__(self) -> int:
        # kept: jax.jit hashes the training loop's static spec, this included, on every call
        if "hash" not in self.__dict__:
            self.__dict__["hash"] = hash(self._structural_key())
        return self.__dict__["hash"]


# The last transformations by_structure was given, by identity (an equal one may be another object, and callers
# tell a user's transformation from jaxnn's by identity): train_step works a key out once, not on every call.
_WRAPPED_LIMIT = 64
_wrapped_lock = threading.Lock()
_wrapped_by_id: OrderedDict = OrderedDict()  # id(transformation) -> (transformation, by_structure's result)


def by_structure(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optimizer`` as a :class:`StructuralTransformation` (the same ``init`` and ``update``), or ``optimizer``
    itself where it already is one or has no structural key (a function of the user's, a captured array)."""
    if isinstance(optimizer, StructuralTransformation):
        return optimizer
    with _wrapped_lock:
        held = _wrapped_by_id.get(id(optimizer))
        if held is not None and held[0] is optimizer:
            _wrapped_by_id.move_to_end(id(optimizer))
            return held[1]
    wrapped = _wrapped(optimizer)
    with _wrapped_lock:
        _wrapped_by_id[id(optimizer)] = (optimizer, wrapped)  # held, so that its id stays its own
        _wrapped_by_id.move_to_end(id(optimizer))
        while len(_wrapped_by_id) > _WRAPPED_LIMIT:
            _wrapped_by_id.popitem(last=False)
    return wrapped


def _wrapped(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    # A plain GradientTransformation's update takes no extra arguments: optax's wrapper drops those it is given.
    with_extras = optax.with_extra_args_support(optimizer)
    wrapped = StructuralTransformation(with_extras.init, with_extras.update)
    try:
        hash(wrapped)
    except (_NoKey, RecursionError):
        return optimizer
    return wrapped


def checked_optimizer(optimizer) -> optax.GradientTransformation:
    """A user's ``optimizer`` for :func:`jaxnn.make_train_step`, keyed by :func:`by_structure` (a fresh
    ``optax.adam(1e-3)`` per call finds the step compiled for an earlier one); a TypeError unless it is an optax
    transformation."""
    if isinstance(optimizer, str):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation; for the named solver {optimizer!r}: "
            f"jaxnn.optimizers.make({optimizer!r}, learning_rate=0.01)"
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, e.g. optax.adam(0.01); got {optimizer!r}")
    return by_structure(optimizer)
