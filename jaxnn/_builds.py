"""Programs built with XLA options that shorten their compile, and a fallback for an XLA without them.

On the CPU a program that runs once, or briefly, costs more to compile than to run.  XLA takes options per
program (``jax.jit(..., compiler_options=...)``, fields of XLA's ``DebugOptions``) that trade run time for
compile time; an XLA that does not know one refuses to compile with "No such compile option".  jaxlib 0.10's
XLA knows every option used here and so do the openxla sources of later releases, but another jaxlib may
not: :class:`FallbackJit` then drops that build, for good, and the next one in its list runs.  Results are
the same bits whichever build runs (checked where each option is used).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax

__all__ = ["FallbackJit"]


class FallbackJit:
    """``jax.jit(function, compiler_options=options)`` for the first of ``builds`` this XLA accepts.

    ``builds`` lists the options from the most wanted to the least; None is the plain build.  A call runs
    the first build left; one that XLA refuses for an unknown option is removed and the call goes on with
    the next (an error of any other kind is raised as it is).  ``jit_arguments`` (``static_argnums``,
    ``static_argnames``) go to every ``jax.jit``.
    """

    def __init__(self, function: Callable, builds: list[Mapping[str, object] | None], **jit_arguments):
        if not builds:
            raise ValueError("FallbackJit needs at least one build (None for the plain one)")
        self._programs = [
            jax.jit(function, **jit_arguments, **({} if options is None else {"compiler_options": dict(options)}))
            for options in builds
        ]

    @property
    def builds_left(self) -> int:
        """How many builds remain (fewer than given once XLA has refused one)."""
        return len(self._programs)

    def __call__(self, *args, **kwargs):
        while True:
            try:
                return self._programs[0](*args, **kwargs)
            except jax.errors.JaxRuntimeError as error:
                if "compile option" not in str(error) or len(self._programs) == 1:
                    raise
                del self._programs[0]
