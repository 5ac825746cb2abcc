"""A user's optax transformation, or score function, as a compile-cache key that is the same for the same update.

jaxnn's compiled training loop (and :func:`jaxnn.make_train_step`'s step) is cached on the optimiser and on
``fit``'s ``score`` and ``validation_loss`` functions, static arguments of ``jax.jit``.  An optax transformation
is a NamedTuple of two closures, and closures compare by identity: ``optax.adam(1e-3)`` built afresh for every
fit, the usual idiom (or a ``lambda`` score written in the call), was a new key every time.  Each fit then
compiled the loop again and JAX's jit cache kept every program (with the transformation) for the process's
life: some 140 ``mmap`` regions and 5 MB per fit on XLA:CPU, so a process that refits a model with a fresh
``optax.adam`` reached Linux's ``vm.max_map_count`` (65,530) after a few hundred fits and crashed.

:func:`by_structure` returns the transformation as a :class:`StructuralTransformation`, and
:func:`function_by_structure` a function as a :class:`StructuralFunction`, which compare equal to another built
by the same code from equal values: the same code objects (and globals), closure contents and defaults that
are equal numbers, strings, dtypes, or tuples, functions and ``functools.partial``s of such.  Two such
transformations compute the same update, so one program serves both.  One that captures any other object (an
array, a list, a schedule or configuration object: it may be mutated between two builds and read when the
update is traced) or whose closures refer to themselves keeps its identity, as before.  The module globals its
functions' code names are part of the key too: numbers, strings, dtypes and tuples by value, functions by their
own key, modules, classes and other callables by identity, and any other object (an array, a list, a
configuration object) leaves the function without a key.  A lambda that reads a global threshold, built afresh
after the threshold changed, is a new program (it was before keys by structure: a new function, a new trace);
an object a global names, mutated in place, is read when the program is compiled, as ``jax.jit`` reads it
(optax's own transformations capture only numbers, strings, dtypes and functions).
"""

from __future__ import annotations

import functools
import types

import numpy as np
import optax

__all__ = [
    "StructuralFunction",
    "StructuralTransformation",
    "by_structure",
    "checked_optimizer",
    "function_by_structure",
]

_MAX_DEPTH = 64  # optax's deepest chains are a dozen closures deep; past this, identity
_GLOBALS_STEP = 8  # a function a global names counts as this many levels: a few such hops, then identity
_GLOBALS_DEPTH = 3 * _GLOBALS_STEP


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
    """The value captures an object other than numbers, strings, dtypes, tuples and functions, refers to itself
    or nests too deep: it has no structural key."""


def _number_key(value):
    """Floats by their bits (``-0.0`` and ``0.0`` differ in an update, NaN equals itself); the type is part of
    the key, since ``1``, ``1.0`` and ``True`` compare equal but trace differently."""
    if isinstance(value, float):
        return (type(value), value.hex())
    if isinstance(value, complex):
        return (type(value), value.real.hex(), value.imag.hex())
    return (type(value), value)


def _function_key(function: types.FunctionType, depth: int):
    cells = tuple(_cell_key(cell, depth) for cell in function.__closure__ or ())
    return (
        _Same(function.__code__),
        _Same(function.__globals__),
        _key(function.__defaults__, depth),
        _key(tuple(sorted((function.__kwdefaults__ or {}).items())), depth),
        cells,
        _globals_key(function, depth),
    )


def _names(code: types.CodeType) -> set[str]:
    """The global (and attribute) names ``code`` and the functions defined in it read."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _globals_key(function: types.FunctionType, depth: int):
    """The values of the module globals ``function``'s code names, each as :func:`_global_key` keys it.  Two
    functions of the same code and closures that read a global rebound between them (a threshold, a helper
    redefined in a notebook) compute different things."""
    scope = function.__globals__
    return tuple((name, _global_key(scope[name], depth)) for name in sorted(_names(function.__code__)) if name in scope)


def _global_key(value, depth: int):
    """A global's key: a number, string, dtype, tuple, function or partial by :func:`_key` (a function past a few
    globals deep by identity: a recursive helper names itself); a module, class or other callable (a jitted
    function, a ufunc, a builtin) by identity; any other object has none (:class:`_NoKey`)."""
    if isinstance(value, types.FunctionType) and depth > _GLOBALS_DEPTH:
        return _Same(value)
    if isinstance(value, types.ModuleType | type) or (
        callable(value) and not isinstance(value, types.FunctionType | functools.partial)
    ):
        return _Same(value)
    return _key(value, depth + _GLOBALS_STEP)


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
    if isinstance(value, functools.partial):
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
        # clone of an estimator whose solver this is) and pickle refuse; a copy computes its key anew
        return (type(self), (self.init, self.update))

    def __hash__(self) -> int:
        # kept: jax.jit hashes the training loop's static spec, this included, on every call
        if "hash" not in self.__dict__:
            self.__dict__["hash"] = hash(self._structural_key())
        return self.__dict__["hash"]


def by_structure(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optimizer`` as a :class:`StructuralTransformation` (the same ``init`` and ``update``), or ``optimizer``
    itself where it has no structural key (a closure that refers to itself) or already is one."""
    if isinstance(optimizer, StructuralTransformation):
        return optimizer
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
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, e.g. optax.adam(0.01); got {optimizer!r}")
    return by_structure(optimizer)


class StructuralFunction:
    """A function that compares and hashes by :func:`function_by_structure`'s key; calling it calls the function."""

    __slots__ = ("_hash", "_key", "function")

    def __init__(self, function):
        self.function = function
        self._key = _key(function)  # raises _NoKey where there is none
        self._hash = hash(self._key)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def __reduce__(self):  # the function only, as StructuralTransformation's
        return (type(self), (self.function,))

    def __eq__(self, other) -> bool:
        if not isinstance(other, StructuralFunction):
            return NotImplemented
        return self is other or (self._hash == other._hash and self._key == other._key)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return repr(self.function)


def function_by_structure(function):
    """``function`` (a ``score`` or ``validation_loss`` of :func:`jaxnn.fit`) as a :class:`StructuralFunction`, or
    ``function`` itself where it is none (``None``, a callable object, a bound method) or has no structural key."""
    if not isinstance(function, types.FunctionType | functools.partial):
        return function
    try:
        return StructuralFunction(function)
    except (_NoKey, RecursionError):
        return function
