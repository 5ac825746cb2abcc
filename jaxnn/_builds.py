"""The one home of the XLA options that shorten a compile: named option sets, and a fallback for an XLA
without them.

On the CPU a program that runs once, or briefly, costs more to compile than to run.  XLA takes options per
program (``jax.jit(..., compiler_options=...)``, fields of XLA's ``DebugOptions``) that trade run time for
compile time; an XLA that does not know one refuses to compile with "No such compile option".  jaxlib 0.10's
XLA knows every option used here; jaxlib 0.11's and 0.12's have no ``xla_cpu_use_fusion_emitters`` (their fusion
emitters are the only ones), so there :data:`FAST_COMPILE_CPU` and :data:`QUICK_BUILD` are refused.
:class:`FallbackJit` then drops that build, for good, and the next one in its list runs (once, also when several
threads are refused it at the same time); the refused option's name is kept for the process, and every other build
that names it is skipped without a try (a try traces and lowers the whole program before XLA refuses it).

This module is the one place jaxnn names such options; a module builds its programs with
``FallbackJit(function, <one of the build lists below>)``.  The option sets (read-only mappings):

* :data:`FAST_COMPILE_CPU` -- XLA:CPU without its MLIR fusion emitters (the older elemental emitter): the
  same kernels compile faster and run slower (they vectorise less well; the numbers are in
  ``benchmarks/README.md``).  Its elementwise bits are the fusion emitters', but a reduction fused with what
  feeds it can round differently in its last bit (a softmax cross-entropy's weighted mean, at some inputs).
  For a program compiled per process and run for a while (the L-BFGS loop without a persistent cache).
  Other backends ignore it.
* :data:`UNOPTIMISED` -- XLA's backend (LLVM) optimisations off: a shorter compile, a slower run, and
  numbers that can differ in the last bit from an optimised build (XLA folds a scaling into a random
  draw differently).  For a program that runs once (drawing initial weights).
* :data:`QUICK_BUILD` -- both: the shortest compile, for a program that runs once per fit.

The build lists, most wanted first, each ending in a build every XLA accepts (None is the plain build):
:data:`FAST_COMPILE_CPU_BUILDS`, :data:`UNOPTIMISED_BUILDS` and :data:`QUICK_BUILDS` (which falls back
to :data:`UNOPTIMISED` first).  Where each option is used the tests check what it changes: the initial weights'
bits (against ``model.init``), and an L-BFGS run, which agrees with the plain build's to rounding.

Every function of jaxnn that compiles a program per network, per batch size or per solver is a :class:`FallbackJit`
(a plain ``jax.jit`` is the build list :data:`PLAIN_BUILDS`), which keeps one ``jax.jit`` per value of its static
arguments and shapes of the others, a program each (JAX may compile a few for other shardings or weak types);
together they keep those of the :data:`HELD_PROGRAMS_LIMIT` most recently used keys, and JAX frees the programs of
the others. ``jax.jit`` keeps each program it compiles for as long as its function lives (jaxnn's, as long as the
process), and XLA's CPU backend maps each program's machine code into memory in many regions: about 150 for a
training loop, 260 for L-BFGS's. Linux refuses a process more than ``vm.max_map_count`` regions (65,530 by default),
so a process that fitted a few hundred distinct networks (a search over architectures) crashed. A network pushed out
is compiled again when next needed, or loaded from the persistent compilation cache when that is on; a search that
cycles over fewer networks than the limit compiles each once. The estimators' prediction, compiled ahead of time per
row count, keeps its programs in the same set (:func:`held_programs_of`, one key per network, input dtype and row
bucket).
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from types import MappingProxyType

import jax

__all__ = [
    "FAST_COMPILE_CPU",
    "FAST_COMPILE_CPU_BUILDS",
    "HELD_PROGRAMS_LIMIT",
    "PLAIN_BUILDS",
    "QUICK_BUILD",
    "QUICK_BUILDS",
    "UNOPTIMISED",
    "UNOPTIMISED_BUILDS",
    "FallbackJit",
    "held_programs",
    "held_programs_of",
    "release_programs",
]

FAST_COMPILE_CPU: Mapping[str, object] = MappingProxyType({"xla_cpu_use_fusion_emitters": False})
UNOPTIMISED: Mapping[str, object] = MappingProxyType({"xla_backend_optimization_level": 0})
QUICK_BUILD: Mapping[str, object] = MappingProxyType({**UNOPTIMISED, **FAST_COMPILE_CPU})

PLAIN_BUILDS = (None,)
FAST_COMPILE_CPU_BUILDS = (FAST_COMPILE_CPU, None)
UNOPTIMISED_BUILDS = (UNOPTIMISED, None)
QUICK_BUILDS = (QUICK_BUILD, UNOPTIMISED, None)

HELD_PROGRAMS_LIMIT = 100

_REFUSAL = re.compile(r"No such compile option: '([^']+)'")
# The options this process's XLA refused (a frozenset replaced whole, so reading it needs no lock).
_refused_options: frozenset[str] = frozenset()
_refused_lock = threading.Lock()

_held_lock = threading.Lock()
# (FallbackJit, its static arguments) -> that call's jax.jit per build, the least recently used first
_held: OrderedDict = OrderedDict()


def release_programs() -> None:
    """Drops every compiled program jaxnn's functions hold (JAX frees them and their memory); each is compiled
    again, or loaded from the persistent compilation cache, when next needed."""
    with _held_lock:
        _held.clear()


def held_programs() -> int:
    """How many keys (a function's static arguments and argument shapes: a network, solver, batch size, data size)
    jaxnn holds programs for now: at most :data:`HELD_PROGRAMS_LIMIT`."""
    return len(_held)


def held_programs_of(key: Hashable) -> dict:
    """The dict of programs held for ``key`` (made empty when absent), now the most recently used key.

    The caller fills it (a compiled program per build, or per row count) and reads it without a lock (one
    dict operation is atomic in CPython).  An unhashable key gets a fresh dict that is not held."""
    with _held_lock:
        try:
            programs = _held.get(key)
        except TypeError:  # an unhashable static argument: jax.jit raises its own error, which names it
            return {}
        if programs is None:
            programs = _held[key] = {}
            while len(_held) > HELD_PROGRAMS_LIMIT:
                _held.popitem(last=False)  # the least recently used: JAX frees its programs with it
        else:
            _held.move_to_end(key)
        return programs


def _record_refusal(message: str) -> None:
    """Keeps the option named in XLA's refusal, so that builds naming it are skipped from now on."""
    global _refused_options
    found = _REFUSAL.search(message)
    if found:
        with _refused_lock:  # two refusals at once both keep their option
            _refused_options = _refused_options | {found.group(1)}


def _static_arguments(function: Callable, jit_arguments: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``function``'s parameter names in order, and the names of its static ones (given by position or name)."""
    parameters = tuple(inspect.signature(function).parameters)
    positions = jit_arguments.get("static_argnums", ())
    names = jit_arguments.get("static_argnames", ())
    positions = (positions,) if isinstance(positions, int) else tuple(positions)
    names = (names,) if isinstance(names, str) else tuple(names)
    return parameters, tuple(sorted(set(names) | {parameters[i] for i in positions}))


class FallbackJit:
    """``jax.jit(function, compiler_options=options)`` for the first of ``builds`` this XLA accepts, one
    ``jax.jit`` per value of the static arguments and shapes of the others, held with every other FallbackJit's
    in one least-recently-used set of :data:`HELD_PROGRAMS_LIMIT` (the module's docstring).

    ``builds`` lists the options from the most wanted to the least; None is the plain build.  A call runs
    the first build left; one that XLA refuses for an unknown option is removed and the call goes on with
    the next (an error of any other kind is raised as it is), and from then on a build naming that option, of
    any FallbackJit, is removed untried (unless it is the last).  ``jit_arguments`` (``static_argnums``,
    ``static_argnames``, ``donate_argnums``) go to every ``jax.jit``.

    A key holds one program when it has the shapes and dtypes of the arguments (``shapes_in_key``, the default):
    the limit then bounds programs, whatever the variety of data sizes a network meets.  Without them a key's
    ``jax.jit`` compiles one program per shape it is called with; that saves reading them on every call, for a
    function called per batch whose shapes are few (the step factory's).
    """

    def __init__(
        self,
        function: Callable,
        builds: Sequence[Mapping[str, object] | None],
        *,
        shapes_in_key: bool = True,
        **jit_arguments,
    ):
        if not builds:
            raise ValueError("FallbackJit needs at least one build (None for the plain one)")
        self._function = function
        self._jit_arguments = jit_arguments
        self._all_builds = tuple(builds)
        self._left = list(range(len(builds)))  # indices of the builds XLA has not refused
        self._lock = threading.Lock()
        parameters, self._static_names = _static_arguments(function, jit_arguments)
        self._static_positions = tuple(i for i, name in enumerate(parameters) if name in self._static_names)
        self._shapes_in_key = shapes_in_key

    @property
    def builds(self) -> tuple[Mapping[str, object] | None, ...]:
        """The options of the builds that remain, the one that runs first."""
        return tuple(self._all_builds[i] for i in self._left)

    @property
    def builds_left(self) -> int:
        """How many builds remain (fewer than given once XLA has refused one)."""
        return len(self._left)

    def __call__(self, *args, **kwargs):
        if jax.config.jax_disable_jit:  # nothing compiles: nothing to hold (nor to push out of the set)
            return self._function(*args, **kwargs)
        builds = held_programs_of(self._static_key(args, kwargs))
        while True:
            index = self._left[0]
            options = self._all_builds[index]
            if options is not None and _refused_options and not _refused_options.isdisjoint(options):
                if self._drop(index):  # a build of an option XLA refused another program: not tried
                    continue
            program = builds.get(index)
            if program is None:
                program = builds.setdefault(index, self._jit(options))
            try:
                return program(*args, **kwargs)
            except jax.errors.JaxRuntimeError as error:
                if "compile option" not in str(error):
                    raise
                _record_refusal(str(error))
                if not self._drop(index):
                    raise

    def _drop(self, index: int) -> bool:
        """Drops build ``index`` if it is still the first; False (nothing dropped) when it is the last one left."""
        with self._lock:  # threads refused at once drop the refused build once, not it and the next
            if self._left[0] == index:  # else another thread dropped it: the next build runs
                if len(self._left) == 1:
                    return False
                del self._left[0]
            return True

    def _static_key(self, args: tuple, kwargs: dict) -> tuple:
        """The static arguments of a call, as passed, and (``shapes_in_key``) the structure, shapes and dtypes of
        the others: what selects its ``jax.jit``."""
        positional = tuple([args[i] for i in self._static_positions if i < len(args)])
        named = tuple([(name, kwargs[name]) for name in self._static_names if name in kwargs]) if kwargs else ()
        if not self._shapes_in_key:
            return self, positional, named
        dynamic = (
            [arg for i, arg in enumerate(args) if i not in self._static_positions],
            {name: value for name, value in kwargs.items() if name not in self._static_names},
        )
        leaves, structure = jax.tree.flatten(dynamic)
        shapes = tuple([(leaf.shape, leaf.dtype) if hasattr(leaf, "dtype") else type(leaf) for leaf in leaves])
        return self, positional, named, structure, shapes

    def _jit(self, options: Mapping[str, object] | None):
        """A ``jax.jit`` of a function object of its own: JAX keys its caches on the function, so the programs
        go when this object does.  The same name (the persistent cache's key has it) and signature."""
        fresh = functools.wraps(self._function)(lambda *args, **kwargs: self._function(*args, **kwargs))
        compiler = {} if options is None else {"compiler_options": dict(options)}
        return jax.jit(fresh, **self._jit_arguments, **compiler)
