"""The one home of the XLA options that shorten a compile: named option sets, and a fallback for an XLA
without them.

On the CPU a program that runs once, or briefly, costs more to compile than to run.  XLA takes options per
program (``jax.jit(..., compiler_options=...)``, fields of XLA's ``DebugOptions``) that trade run time for
compile time; an XLA that does not know one refuses to compile with "No such compile option".  jaxlib 0.10's
XLA knows every option used here and so do the openxla sources of later releases, but another jaxlib may
not: :class:`FallbackJit` then drops that build, for good, and the next one in its list runs (once, also when
several threads are refused it at the same time).

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

Every function of jaxnn that compiles a program per network, per batch size or per solver is a
:class:`FallbackJit` (a plain ``jax.jit`` is the build list :data:`PLAIN_BUILDS`), and together they hold about
:data:`HELD_PROGRAMS_LIMIT` compiled programs at most.  ``jax.jit`` keeps each program it compiles for as long
as its function lives (jaxnn's, as long as the process), and XLA's CPU backend maps each program's machine code
into memory in many regions: about 150 for a training loop, 260 for L-BFGS's.  Linux refuses a process more
than ``vm.max_map_count`` regions (65,530 by default), so a process that fitted a few hundred distinct networks
(a search over architectures) crashed.  Now, once one program more than the limit has been compiled, the next
call of any of these functions from outside a trace drops every program they hold (:func:`release_programs`:
JAX frees them); each is compiled again when next needed, or loaded from the persistent compilation cache when
that is on.  The count is of the programs JAX traced: it runs a jitted function's Python only to build a
program it lacks.  So the limit can be passed by the programs being built at that moment (in other threads, or
inside the one being traced), and the program that went past it is built twice when the next call is its own
(one build more per ``HELD_PROGRAMS_LIMIT`` new programs).  JAX's ``clear_cache`` also empties its tracing cache
of every ``jax.jit`` function, the user's too: their compiled programs stay, a new shape traces again.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
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
    "release_programs",
]

FAST_COMPILE_CPU: Mapping[str, object] = MappingProxyType({"xla_cpu_use_fusion_emitters": False})
UNOPTIMISED: Mapping[str, object] = MappingProxyType({"xla_backend_optimization_level": 0})
QUICK_BUILD: Mapping[str, object] = MappingProxyType({**UNOPTIMISED, **FAST_COMPILE_CPU})

PLAIN_BUILDS = (None,)
FAST_COMPILE_CPU_BUILDS = (FAST_COMPILE_CPU, None)
UNOPTIMISED_BUILDS = (UNOPTIMISED, None)
QUICK_BUILDS = (QUICK_BUILD, UNOPTIMISED, None)

HELD_PROGRAMS_LIMIT = 64

_held_lock = threading.Lock()
_held = {"programs": 0, "over": False}  # programs traced since the last release; more than the limit?
_every_jit: weakref.WeakSet = weakref.WeakSet()
_tracing = threading.local()


def release_programs() -> None:
    """Drops every compiled program jaxnn's functions hold (JAX frees them and their memory); each is compiled
    again, or loaded from the persistent compilation cache, when next needed."""
    with _held_lock:
        for jit in list(_every_jit):
            jit.clear_cache()
        _held.update(programs=0, over=False)


def held_programs() -> int:
    """How many programs jaxnn's functions have compiled since they were last released (after one beyond
    :data:`HELD_PROGRAMS_LIMIT`, they are released at the next call of any of them)."""
    return _held["programs"]


def _tracing_depth() -> int:
    """How many of these functions this thread is tracing (one calls another inside its program)."""
    return getattr(_tracing, "depth", 0)


def _counted(function: Callable) -> Callable:
    """``function`` counting each new program: JAX runs a jitted function's Python only to trace a program it
    does not hold (and at every call under ``jax.disable_jit``, which compiles nothing: not counted)."""

    @functools.wraps(function)  # the same name (the persistent cache's key has it) and signature (static args)
    def traced(*args, **kwargs):
        if not jax.config.jax_disable_jit:
            with _held_lock:
                _held["programs"] += 1
                _held["over"] = _held["programs"] > HELD_PROGRAMS_LIMIT
        _tracing.depth = _tracing_depth() + 1
        try:
            return function(*args, **kwargs)
        finally:
            _tracing.depth -= 1

    return traced


class FallbackJit:
    """``jax.jit(function, compiler_options=options)`` for the first of ``builds`` this XLA accepts, holding
    its compiled programs within :data:`HELD_PROGRAMS_LIMIT` (the module's docstring).

    ``builds`` lists the options from the most wanted to the least; None is the plain build.  A call runs
    the first build left; one that XLA refuses for an unknown option is removed and the call goes on with
    the next (an error of any other kind is raised as it is).  ``jit_arguments`` (``static_argnums``,
    ``static_argnames``) go to every ``jax.jit``.
    """

    def __init__(self, function: Callable, builds: Sequence[Mapping[str, object] | None], **jit_arguments):
        if not builds:
            raise ValueError("FallbackJit needs at least one build (None for the plain one)")
        self._builds = list(builds)
        self._lock = threading.Lock()
        counted = _counted(function)
        self._programs = [
            jax.jit(counted, **jit_arguments, **({} if options is None else {"compiler_options": dict(options)}))
            for options in builds
        ]
        _every_jit.add(self)

    @property
    def builds(self) -> tuple[Mapping[str, object] | None, ...]:
        """The options of the builds that remain, the one that runs first."""
        return tuple(self._builds)

    @property
    def builds_left(self) -> int:
        """How many builds remain (fewer than given once XLA has refused one)."""
        return len(self._programs)

    def clear_cache(self) -> None:
        """Drops this function's compiled programs (``jax.jit``'s ``clear_cache`` of each build)."""
        for program in self._programs:
            program.clear_cache()

    def __call__(self, *args, **kwargs):
        # The last new program went beyond the limit: release them all first, unless this call is part of a
        # program being traced (its caller's, which a release would drop mid-trace).
        if _held["over"] and not _tracing_depth():
            release_programs()
        while True:
            program = self._programs[0]
            try:
                return program(*args, **kwargs)
            except jax.errors.JaxRuntimeError as error:
                if "compile option" not in str(error):
                    raise
                with self._lock:  # threads refused at once drop the refused build once, not it and the next
                    if self._programs[0] is program:  # else another thread dropped it: run the next build
                        if len(self._programs) == 1:
                            raise
                        del self._programs[0], self._builds[0]
