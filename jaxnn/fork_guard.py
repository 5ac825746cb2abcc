"""A clear error, instead of a hang, when JAX is used in a process forked after JAX had started.

JAX is multithreaded: a child made by ``os.fork()`` once the parent has initialised JAX's backends inherits
its locks but not its threads, and its first compilation or computation waits forever.  This is what
joblib's ``"multiprocessing"`` backend (and ``multiprocessing``'s ``"fork"`` start method) does, e.g.
``cross_val_score(..., n_jobs=2)`` inside ``parallel_backend("multiprocessing")`` after a first ``fit``.
joblib's default ``"loky"`` backend (fresh worker processes) and ``"threading"`` work.

:func:`check` is called by the estimators before any JAX work; in such a child it raises a RuntimeError
that names the fix.  The fork is seen by an ``os.register_at_fork`` hook installed when this module is
imported (the estimators import it, so it is in place before any fork that could copy one).
"""

from __future__ import annotations

import os

__all__ = ["ForkedAfterJaxError", "check", "mark_used"]

_used_in: int | None = None  # the pid of the process in which jaxnn first used JAX
_forked_after_start = False  # this process is a fork of one in which JAX had started


class ForkedAfterJaxError(RuntimeError):
    """JAX was about to run in a process forked from one in which JAX had already started."""


def mark_used() -> None:
    """Note that JAX is (about to be) in use in this process."""
    global _used_in
    if _used_in is None:
        _used_in = os.getpid()


def check() -> None:
    """Raise :class:`ForkedAfterJaxError` when this process was forked after JAX had started; else note
    that JAX is in use here (:func:`mark_used`)."""
    if _forked_after_start:
        raise ForkedAfterJaxError(
            f"this process (pid {os.getpid()}) was forked (os.fork: joblib's 'multiprocessing' backend, or "
            "multiprocessing's 'fork' start method) from one in which JAX had already started; JAX would hang "
            "here. Use joblib's default 'loky' backend or the 'threading' backend (e.g. "
            "parallel_backend('loky')), or multiprocessing with the 'spawn' or 'forkserver' start method"
        )
    mark_used()


def _jax_started() -> bool:
    if _used_in is not None:
        return True
    try:  # JAX may have been used without jaxnn; this name is JAX's own (not public), so guarded
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except Exception:
        return False


def _after_fork_in_child() -> None:
    global _forked_after_start
    _forked_after_start = _forked_after_start or _jax_started()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
