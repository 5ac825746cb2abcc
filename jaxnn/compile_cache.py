"""A persistent compilation cache: compiled programs are kept on disk, so a fresh process skips XLA.

JAX compiles every jitted function the first time it sees its shapes.  For a small network that
compile (about half a second for ``fit``'s loop, a few tenths for each initialiser) costs far more than
training itself, and a new Python process pays it again.  JAX's persistent compilation cache stores
the compiled executables on disk; this module switches it on with settings suited to jaxnn:

* the directory is ``$JAXNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnn/xla``, else
  ``~/.cache/jaxnn/xla``, created readable and writable by its owner only (JAX trusts whatever it
  loads from there, so nobody else may write to it);
* every compilation is cached, however short (JAX's own default keeps only those over one second,
  which none of jaxnn's are); entries are small (a few KB to tens of KB each).

``enable_default()`` is what ``import jaxnn`` runs: it turns the cache on unless
``JAXNN_COMPILE_CACHE=0`` is set, or JAX's cache was configured already (a directory chosen or the
cache switched off): that choice stands.  Results do not depend on the cache: a loaded executable is
the one the compiler would have produced.  JAX writes entries in place, not atomically: an entry cut
short (a process killed mid-write) makes JAX warn "Error reading persistent compilation cache entry"
and compile again each time; :func:`clear` (or deleting the directory) ends that.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

__all__ = ["clear", "default_directory", "enable", "enable_default"]

OPT_OUT = "JAXNN_COMPILE_CACHE"  # set to 0 / false / off / no to keep jaxnn from enabling the cache
DIRECTORY = "JAXNN_CACHE_DIR"


def default_directory() -> Path:
    """``$JAXNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnn/xla``, else ``~/.cache/jaxnn/xla``."""
    if os.environ.get(DIRECTORY):
        return Path(os.environ[DIRECTORY]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "jaxnn" / "xla"


def enable(directory: str | os.PathLike | None = None) -> Path:
    """Keep every compiled program in ``directory`` (default: :func:`default_directory`); returns it.

    Raises ``OSError`` when the directory cannot be created.  Takes effect for compilations from
    now on, also in a process that has compiled before.
    """
    path = Path(directory).expanduser() if directory is not None else default_directory()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_enable_compilation_cache", True)
    _jax_cache.reset_cache()  # JAX decides once per process whether to use the cache; let it decide again
    return path


def _opted_out() -> bool:
    return os.environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "off", "no")


def enable_default() -> Path | None:
    """Enable the cache at the default directory unless the user opted out or chose a directory already.

    Returns the directory in use by jaxnn, or None when jaxnn left the setting alone.  A directory
    that cannot be created (read-only home, say) leaves the cache off rather than failing the import.
    """
    if _opted_out() or jax.config.jax_compilation_cache_dir or not jax.config.jax_enable_compilation_cache:
        return None
    try:
        return enable()
    except OSError:
        return None


def clear(directory: str | os.PathLike | None = None) -> None:
    """Delete every cached program in ``directory`` (default: :func:`default_directory`); the cache stays on."""
    path = Path(directory).expanduser() if directory is not None else default_directory()
    if path.is_dir():
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
