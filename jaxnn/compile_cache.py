"""A persistent compilation cache: compiled programs are kept on disk, so a fresh process skips XLA.

JAX compiles every jitted function the first time it sees its shapes.  For a small network that
compile costs far more than training itself (``benchmarks/README.md`` has the numbers), and a new Python
process pays it again.  JAX's persistent compilation cache stores
the compiled executables on disk; this module switches it on with settings suited to jaxnn:

* the directory is ``$JAXNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnn/xla``, else
  ``~/.cache/jaxnn/xla``, created readable and writable by its owner only (JAX trusts whatever it
  loads from there, so nobody else may write to it);
* every compilation is cached, however short (JAX's own default keeps only those over one second,
  which none of jaxnn's are); entries are small (a few KB to tens of KB each);
* the directory is bounded: ``$JAXNN_CACHE_MAX_BYTES`` bytes (default 256 MiB, ``-1`` for no bound),
  the least recently used entries are deleted beyond it (JAX's ``jax_compilation_cache_max_size``; the
  bookkeeping takes a file lock, hence the ``filelock`` dependency).

Importing jaxnn changes no JAX setting.  The cache is turned on by:

* :func:`enable` — the explicit switch: on for the rest of the process, whatever the environment says;
* :func:`enable_default` — what jaxnn's own entry points (``jaxnn-train``) call: the same, unless
  ``JAXNN_COMPILE_CACHE=0`` is set or JAX's cache was configured already (a directory chosen, or the
  cache switched off): that choice stands;
* :func:`scoped` — a ``with`` block with :func:`enable_default`'s rules, after which every setting it
  changed is put back (for library calls such as an estimator's ``fit`` inside someone else's program).

What JAX allows (0.10–0.11; ``jax.experimental.compilation_cache`` and the ``jax_compilation_cache_*``
options are spelled the same in both) and what not:

* There is no per-``jit`` switch: the cache is consulted for every compilation in the process, and the
  settings are read at compile time.  A scope is therefore a span of time, not a set of functions:
  inside :func:`scoped`, compilations by other threads (or by the user's code called from inside the
  block) are cached in jaxnn's directory too.
* JAX's own context managers for these options (``jax._src.config``) are private and thread-local, but
  the cache object is a process global that JAX creates once from the settings of the first
  compilation that looks it up; a thread-local setting would not keep it out of other threads.  So
  :func:`scoped` sets the options process-wide with ``jax.config.update``, restores them on exit and
  calls JAX's public ``reset_cache()`` so that later compilations look the (now absent) cache up anew.
  Concurrent and nested scopes share one activation: the settings come back when the last one ends.
* ``enable`` / ``scoped`` take effect for compilations from then on, also in a process that has
  compiled before; programs already compiled in memory are not written out.

Results do not depend on the cache: a loaded executable is the one the compiler would have produced.
JAX writes entries in place, not atomically: an entry cut short (a process killed mid-write) makes JAX
warn "Error reading persistent compilation cache entry" and compile again each time; :func:`clear`
(or deleting the directory) ends that.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

from jaxnn._checks import is_int
from jaxnn._warnings import warn

__all__ = [
    "DEFAULT_MAX_BYTES",
    "clear",
    "default_directory",
    "default_max_bytes",
    "enable",
    "enable_default",
    "scoped",
]

OPT_OUT = "JAXNN_COMPILE_CACHE"  # set to 0 / false / off / no to keep jaxnn from enabling the cache
DIRECTORY = "JAXNN_CACHE_DIR"
MAX_BYTES = "JAXNN_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 256 * 2**20  # jaxnn's entries are KBs each: thousands of programs fit

# The JAX options jaxnn sets (and a scope restores).
_OPTIONS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_compilation_cache_max_size",
    "jax_enable_compilation_cache",
)
# JAX's LRU bookkeeping (jax/_src/lru_cache.py): "<key>-cache" holds an entry, "<key>-atime" its last use.
_CACHE_SUFFIX, _ATIME_SUFFIX = "-cache", "-atime"

_lock = threading.RLock()
_process_wide: Path | None = None  # the directory enable() / enable_default() configured
_scope_path: Path | None = None  # the directory the active scopes configured
_scope_depth = 0  # scopes currently inside their block
_scope_saved: dict | None = None  # the settings to put back when the last scope ends (None: keep them)
_adopted: set[Path] = set()  # directories whose older entries have been given LRU timestamps
_warned = False


def default_directory() -> Path:
    """``$JAXNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnn/xla``, else ``~/.cache/jaxnn/xla``."""
    if os.environ.get(DIRECTORY):
        return Path(os.environ[DIRECTORY]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "jaxnn" / "xla"


def default_max_bytes() -> int:
    """``$JAXNN_CACHE_MAX_BYTES`` (a whole number of bytes, or -1 for no bound), else 256 MiB.

    A value that is not such a number is a ValueError naming the variable."""
    text = os.environ.get(MAX_BYTES, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return _checked_max_bytes(int(text))
    except ValueError:
        raise ValueError(
            f"{MAX_BYTES} must be a whole number of bytes >= 1 (or -1 for no bound), got {text!r}"
        ) from None


def _checked_max_bytes(value) -> int:
    if not is_int(value) or not (value >= 1 or value == -1):
        raise ValueError(f"max_bytes must be a whole number of bytes >= 1 (or -1 for no bound), got {value!r}")
    return value


def enable(directory: str | os.PathLike | None = None, *, max_bytes: int | None = None) -> Path:
    """Keep every compiled program in ``directory`` (default: :func:`default_directory`), for the rest of
    the process; returns the directory.

    ``max_bytes`` bounds the directory (default: :func:`default_max_bytes`; ``-1``: no bound); the least
    recently used entries go first.  Raises ``OSError`` when the directory cannot be created, and
    ``RuntimeError`` when a bound is asked for but the ``filelock`` package JAX needs for it is missing.
    Ignores ``JAXNN_COMPILE_CACHE``: this is the explicit switch.
    """
    global _process_wide, _scope_saved
    with _lock:
        path = _configure(directory, max_bytes)
        _process_wide = path
        _scope_saved = None  # an active scope must not switch it off again when it ends
        return path


def enable_default() -> Path | None:
    """Enable the cache (as :func:`enable` with the defaults) unless the user opted out with
    ``JAXNN_COMPILE_CACHE=0`` or configured JAX's cache already; the entry points call this.

    Returns the directory jaxnn's compilations use, or None when jaxnn leaves JAX's settings alone.
    Cheap when the cache is already on.  A directory that cannot be created (a read-only home, say)
    leaves the cache off rather than failing the caller; a malformed ``JAXNN_CACHE_MAX_BYTES`` is a
    ValueError.
    """
    global _process_wide, _scope_saved
    with _lock:
        if _opted_out():
            return None
        ours = _ours()
        if ours is not None:  # on already (possibly only in a scope: now it stays on)
            _process_wide, _scope_saved = ours, None
            return ours
        if _user_configured():
            return None
        max_bytes = default_max_bytes()
        try:
            return enable(max_bytes=max_bytes)
        except OSError:
            return None
        except RuntimeError as error:
            _warn_once(error)
            return None


@contextlib.contextmanager
def scoped(directory: str | os.PathLike | None = None, *, max_bytes: int | None = None) -> Iterator[Path | None]:
    """Within the ``with`` block, cache compilations (the rules of :func:`enable_default`); afterwards
    JAX's settings are what they were.

    Yields the directory in use, or None when the cache stays as the user has it (opted out, or JAX's
    cache configured by the user).  Inside a block that found the cache already on (by :func:`enable`,
    :func:`enable_default` or an enclosing scope) nothing changes and nothing is put back.  The settings
    are process-wide while any scope is open (see the module docstring): nested and concurrent scopes
    are fine, and the settings are restored when the last of them ends.
    """
    global _scope_depth, _scope_path, _scope_saved
    entered = False
    with _lock:
        path = None
        if not _opted_out():
            path = _ours()
            if path is not None:
                if _scope_depth > 0 and path == _scope_path:
                    _scope_depth += 1
                    entered = True
            elif not _user_configured():
                max_bytes = default_max_bytes() if max_bytes is None else max_bytes
                saved = {name: getattr(jax.config, name) for name in _OPTIONS}
                try:
                    path = _configure(directory, max_bytes)
                except (OSError, RuntimeError) as error:
                    _restore(saved)
                    if isinstance(error, RuntimeError):
                        _warn_once(error)
                    path = None
                else:
                    _scope_path, _scope_saved, _scope_depth = path, saved, 1
                    entered = True
    try:
        yield path
    finally:
        if entered:
            with _lock:
                _scope_depth -= 1
                if _scope_depth == 0:
                    saved, _scope_saved, _scope_path = _scope_saved, None, None
                    if saved is not None:
                        _restore(saved)


def clear(directory: str | os.PathLike | None = None) -> None:
    """Delete every cached program in ``directory`` (default: :func:`default_directory`); the cache stays on."""
    path = Path(directory).expanduser() if directory is not None else default_directory()
    if path.is_dir():
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


# ---------------------------------------------------------------------------------------------------


def _configure(directory, max_bytes: int | None) -> Path:
    """Point JAX's cache at ``directory`` with jaxnn's settings (process-wide); returns the directory."""
    path = Path(directory).expanduser() if directory is not None else default_directory()
    max_bytes = default_max_bytes() if max_bytes is None else _checked_max_bytes(max_bytes)
    if max_bytes != -1 and importlib.util.find_spec("filelock") is None:
        raise RuntimeError(
            "bounding the compilation cache needs the 'filelock' package (pip install filelock); "
            f"or set {MAX_BYTES}=-1 for an unbounded cache"
        )
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if max_bytes != -1:
        _adopt_unbounded_entries(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    jax.config.update("jax_enable_compilation_cache", True)
    _jax_cache.reset_cache()  # JAX decides once per process whether and where to cache; let it decide again
    return path


def _restore(saved: dict) -> None:
    for name, value in saved.items():
        if getattr(jax.config, name) != value:
            jax.config.update(name, value)
    _jax_cache.reset_cache()  # drop the cache object JAX made for the scope's directory


def _adopt_unbounded_entries(path: Path) -> None:
    """Give entries written without a bound (older jaxnn, or ``-1``) the last-use stamp JAX's eviction
    reads; without one, every later write fails with a warning (FileNotFoundError for ``<key>-atime``).
    The stamp is the entry's modification time, so they are evicted oldest first.  Once per directory."""
    resolved = path.resolve()
    if resolved in _adopted:
        return
    import filelock

    try:
        with filelock.FileLock(str(path / ".lockfile"), timeout=10):  # the lock JAX's LRU cache takes
            for entry in path.glob(f"*{_CACHE_SUFFIX}"):
                stamp = entry.with_name(entry.name[: -len(_CACHE_SUFFIX)] + _ATIME_SUFFIX)
                if not stamp.exists():
                    stamp.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))
    except (filelock.Timeout, OSError):
        return  # try again next time; JAX itself still works, only evictions may warn
    _adopted.add(resolved)


def _ours() -> Path | None:
    """The directory jaxnn configured, if JAX's settings still point at it."""
    current = jax.config.jax_compilation_cache_dir
    for path in (_scope_path, _process_wide):
        if path is not None and current == str(path) and jax.config.jax_enable_compilation_cache:
            return path
    return None


def _user_configured() -> bool:
    return bool(jax.config.jax_compilation_cache_dir) or not jax.config.jax_enable_compilation_cache


def _opted_out() -> bool:
    return os.environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "off", "no")


def _warn_once(error: Exception) -> None:
    global _warned
    if not _warned:
        _warned = True
        warn(f"jaxnn's compilation cache stays off: {error}", RuntimeWarning)  # names the user's line
