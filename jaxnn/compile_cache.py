"""A persistent compilation cache: compiled programs are kept on disk, so a fresh process skips XLA.

JAX compiles every jitted function the first time it sees its shapes.  For a small network that
compile costs far more than training itself (``benchmarks/README.md`` has the numbers), and a new Python
process pays it again.  JAX's persistent compilation cache stores
the compiled executables on disk; this module switches it on with settings suited to jaxnn:

* the directory is ``$JAXNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxnn/xla``, else
  ``~/.cache/jaxnn/xla``, created readable and writable by its owner only (JAX trusts whatever it
  loads from there, so nobody else may write to it); an existing directory that its group or others may write
  to, or that another user owns, is refused like one that cannot be written (its permissions are left as they are);
* every compilation is cached, however short (JAX's own default keeps only those over one second,
  which none of jaxnn's are); entries are small (a few KB to tens of KB each);
* the entries are bounded: ``$JAXNN_CACHE_MAX_BYTES`` bytes in all (default 256 MiB, ``-1`` for no bound).  When
  a process turns the cache on, jaxnn deletes the least recently used entries beyond the bound (last use: the
  later of an entry's access and modification times, as the file system keeps them; under Linux's default
  ``relatime`` the access time moves on an entry's first read after a write and then at most once a day); a
  process adds its own programs on top until a process next turns the cache on.  JAX's own bound
  (``jax_compilation_cache_max_size``) is left off: JAX keeps it on every write by listing the whole directory
  and reading a stamp file per entry, so each compilation cost more the fuller the cache was
  (benchmarks/README.md, "The compilation cache's bound").  A process of an older jaxnn that still uses JAX's
  bound on the same directory at the same time warns that it cannot write (the new entries have no stamp) until
  it is restarted.

Importing jaxnn changes no JAX setting.  The cache is turned on by:

* :func:`enable` — the explicit switch: on for the rest of the process, whatever the environment says;
* :func:`enable_default` — what jaxnn's own entry points call (``jaxnn-train``, an estimator's ``fit``, the
  first prediction of a network shape): the same, unless ``JAXNN_COMPILE_CACHE=0`` is set or JAX's cache was
  configured already (a directory chosen, the cache switched off, or its minimum compile time or size bound
  changed from JAX's defaults, by ``jax.config.update`` or JAX's environment variables): that choice stands.  A
  directory that
  cannot be created or written (a read-only home on a cluster node) leaves the cache off, with one warning per
  process.

Once on, the cache stays on for the rest of the process.  JAX's cache settings are process-wide (there is no
per-``jit`` switch, and JAX builds its cache object once, from the settings of the first compilation that looks
it up), so turning them on for a call and back off afterwards would race every other thread: a setting the user
made meanwhile would be undone, and other threads' compilations would go in and out of the cache.  So jaxnn sets
them once, never restores them, and never overrides a setting it did not make: after a user's
``jax.config.update`` of the cache options, :func:`enable_default` leaves JAX alone (JAX applies a change made
after its first compilation once its ``reset_cache()`` is called, as without jaxnn).  ``enable`` takes effect for
compilations from then on, also in a process that has compiled before; programs already compiled in memory are
not written out.

What JAX allows (0.10–0.12; ``jax.experimental.compilation_cache`` and the ``jax_compilation_cache_*`` options
are spelled the same): the settings are read at compile time, and JAX's public ``reset_cache()`` makes the next
compilation look the cache up anew, which :func:`enable` calls.

Results do not depend on the cache: a loaded executable is the one the compiler would have produced.
JAX writes entries in place, not atomically: an entry cut short (a process killed mid-write, a full disk) makes JAX
warn "Error reading persistent compilation cache entry" and compile again each time, as JAX never rewrites an entry
that exists.  So when a process turns the cache on, jaxnn also deletes the entries that are cut short among those
written since a process last looked at them all (the modification time of the directory's ``.jaxnn-checked``
file), and every empty one; an entry damaged otherwise, say by hand, stays: :func:`clear`, or deleting the
directory, ends that.  A file system with less than 1 MiB free (:data:`MIN_FREE_BYTES`) leaves the cache off, as an
unwritable one does.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
import tempfile
import threading
import time
import zlib
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

from jaxnn._checks import is_int
from jaxnn._warnings import warn

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MIN_FREE_BYTES",
    "clear",
    "default_directory",
    "default_max_bytes",
    "enable",
    "enable_default",
]

OPT_OUT = "JAXNN_COMPILE_CACHE"  # set to 0 / false / off / no to keep jaxnn from enabling the cache
DIRECTORY = "JAXNN_CACHE_DIR"
MAX_BYTES = "JAXNN_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 256 * 2**20  # jaxnn's entries are KBs each: thousands of programs fit
MIN_FREE_BYTES = 2**20  # less free space than this leaves the cache off: a few dozen entries would fill it
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # a zstd frame's first bytes; JAX writes zlib streams without zstandard

# JAX's file names (jax/_src/lru_cache.py): "<key>-cache" holds an entry; "<key>-atime" (its last use) and
# ".lockfile" are written only under JAX's own bound, which older jaxnn versions set.
_CACHE_SUFFIX, _ATIME_SUFFIX = "-cache", "-atime"
_CHECKED = ".jaxnn-checked"  # its modification time: when a process last looked for entries cut short
_CLOCK_SLACK_NS = 2 * 10**9  # entries written up to this long before that are looked at again
_WRITE_TEST = ".jaxnn-write-test-"  # enable's probe file, deleted at once
_XLA_CACHE = "xla_gpu_"  # XLA's caches that JAX puts in the same directory (autotuning results, kernels)

_lock = threading.Lock()
_process_wide: Path | None = None  # the directory enable() / enable_default() configured
_warned = False
# JAX's defaults (0.10-0.12) of the cache options jaxnn sets besides the directory; any other value, unless jaxnn
# set it, is the user's.
_JAX_DEFAULTS = {"jax_persistent_cache_min_compile_time_secs": 1.0, "jax_compilation_cache_max_size": -1}
_set_by_jaxnn: dict[str, object] = {}  # what _apply last gave those options


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
    """``value`` as an int: a TypeError for anything but a whole number (a bool, a float such as 5.0, text such
    as ``"5"``), a ValueError for one that is neither >= 1 nor -1."""
    if not is_int(value):
        raise TypeError(
            f"max_bytes must be a whole number of bytes (an int >= 1, or -1 for no bound), got {value!r:.80} of type "
            f"{type(value).__name__}"
        )
    if not (value >= 1 or value == -1):
        raise ValueError(f"max_bytes must be a whole number of bytes >= 1 (or -1 for no bound), got {value!r}")
    return int(value)


def enable(directory: str | os.PathLike | None = None, *, max_bytes: int | None = None) -> Path:
    """Keep every compiled program in ``directory`` (default: :func:`default_directory`), for the rest of
    the process; returns the directory.

    ``max_bytes`` bounds the entries (default: :func:`default_max_bytes`; ``-1``: no bound): the least
    recently used beyond it are deleted now, with the entries cut short (see the module docstring).  A TypeError
    for a ``max_bytes`` that is not an int, a ValueError for one below 1 other than -1.  Raises ``OSError`` when
    the directory cannot be created or written (``PermissionError`` also when someone else may write to it, see the
    module docstring).  Ignores ``JAXNN_COMPILE_CACHE``: this is the explicit switch.
    """
    global _process_wide
    with _lock:
        path = _usable_directory(directory, max_bytes)
        _apply(path)
        _process_wide = path
        return path


def enable_default() -> Path | None:
    """Enable the cache (as :func:`enable` with the defaults), once per process, unless the user opted out with
    ``JAXNN_COMPILE_CACHE=0`` or configured JAX's cache (see the module docstring): that choice stands.  jaxnn's
    entry points call this.

    Returns the directory jaxnn's compilations use, or None when jaxnn leaves JAX's settings alone.  Cheap when
    the cache is on already.  A directory that cannot be created or written (a read-only home, say) leaves the
    cache off with one warning per process; a malformed ``JAXNN_CACHE_MAX_BYTES`` is a ValueError.
    """
    global _process_wide
    with _lock:
        if _opted_out():
            return None
        ours = _ours()
        if ours is not None or _user_configured():
            return ours
        try:
            path = _usable_directory(None, default_max_bytes())
        except OSError as error:
            _warn_once(error)
            return None
        if _user_configured():  # set by another thread while the directory was prepared: the user's choice wins
            return None
        _apply(path)
        _process_wide = path
        return path


def clear(directory: str | os.PathLike | None = None) -> None:
    """Delete every cached program in ``directory`` (default: :func:`default_directory`); the cache stays on.

    Only a compilation cache is emptied: a directory holding anything else (another file, a folder) is a
    ValueError naming it, and nothing is deleted, so a mistyped path cannot wipe a user's files."""
    path = _cache_path(directory)
    if not path.is_dir():
        return
    entries = list(path.iterdir())
    foreign = sorted(entry.name for entry in entries if not _is_cache_entry(entry))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ValueError(
            f"{path} is not a compilation cache (it holds {shown}); clear empties a cache directory only: pass the "
            "cache's directory, or delete this one yourself"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _is_cache_entry(entry: Path) -> bool:
    """A file JAX's cache (``<key>-cache``, ``<key>-atime``, its ``.lockfile``) or jaxnn (``.jaxnn-checked``,
    :func:`enable`'s write test) made, or one of XLA's own caches that JAX keeps beside its entries on GPUs
    (``jax_persistent_cache_enable_xla_caches``: the folder ``xla_gpu_per_fusion_autotune_cache_dir``, the file
    ``xla_gpu_kernel_cache_file``)."""
    name = entry.name
    if name.startswith(_XLA_CACHE):
        return True
    made_by_jax = name.endswith((_CACHE_SUFFIX, _ATIME_SUFFIX)) or name == ".lockfile"
    made_by_jaxnn = name == _CHECKED or name.startswith(_WRITE_TEST)
    return (made_by_jax or made_by_jaxnn) and (entry.is_file() or entry.is_symlink())


def _cache_path(directory) -> Path:
    """``directory`` as an absolute path (default: :func:`default_directory`); an empty one would mean the working
    directory, so it is a ValueError, and what is not a path a TypeError.  A relative path is taken from the
    working directory now: JAX reads its setting at every compilation, so after a ``chdir`` a relative one named
    a directory that was never checked, which JAX created with the umask's permissions."""
    if directory is None:
        return default_directory().absolute()
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(f"directory must be a path (str or os.PathLike) or None, got {type(directory).__name__}")
    if not os.fspath(directory):
        raise ValueError("directory must name a directory, got ''; leave it None for the default cache directory")
    return Path(directory).expanduser().absolute()


# ---------------------------------------------------------------------------------------------------


def _usable_directory(directory, max_bytes: int | None) -> Path:
    """``directory`` (default: :func:`default_directory`) created owner-only, shown to take a file, and held to
    ``max_bytes`` (:func:`_tidy`); changes no JAX setting.  ``OSError`` when the directory cannot be created or
    written."""
    path = _cache_path(directory)
    max_bytes = default_max_bytes() if max_bytes is None else _checked_max_bytes(max_bytes)
    try:  # an existing directory may still refuse files (read-only mount, another user's): JAX would warn per write
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _refuse_shared(path)
        handle, probe = tempfile.mkstemp(dir=path, prefix=_WRITE_TEST)
        os.close(handle)
        os.unlink(probe)
        try:  # first: on a full disk, deleting cut-short entries and applying the bound is what frees it
            _tidy(path, max_bytes)
        except OSError:  # the directory cannot be listed (deleted meanwhile, say): JAX works all the same
            pass
        _refuse_full(path)
    except PermissionError as error:
        if error.filename is None:  # _refuse_shared's own message, complete already
            raise
        raise PermissionError(error.errno, f"the cache directory {path} cannot be written ({error.strerror})") from None
    except OSError as error:
        reason = (
            "it is a file, not a directory"
            if path.is_file()
            else "it is a symbolic link to nothing"
            if path.is_symlink() and not path.exists()
            else error.strerror
        )
        raise OSError(error.errno, f"the cache directory {path} cannot be written ({reason})") from None
    return path


def _refuse_shared(path: Path) -> None:
    """A ``PermissionError`` when someone other than this process's user may write to ``path`` (POSIX): it is
    writable by its group or by others, or owned by another user.  JAX runs whatever it loads from the cache, so
    such a directory would let them run code in this process.  jaxnn does not change the permissions of a
    directory it did not make; the message says what to do."""
    if os.name != "posix":
        return
    status = path.stat()
    if status.st_mode & 0o022:
        who = (
            "its group and others"
            if status.st_mode & 0o022 == 0o022
            else "its group"
            if status.st_mode & 0o020
            else "others"
        )
        problem = f"is writable by {who} (mode {status.st_mode & 0o777:o})"
    elif status.st_uid != os.getuid():
        problem = f"belongs to another user (uid {status.st_uid})"
    else:
        return
    raise PermissionError(
        errno.EACCES,
        f"the cache directory {path} {problem}; JAX runs the programs it loads from there, so only you may write to "
        f"it: run chmod 700 on a directory of your own, or point {DIRECTORY} at another one",
    )


def _refuse_full(path: Path) -> None:
    """An ``OSError`` (ENOSPC) when the file system of ``path`` has less than :data:`MIN_FREE_BYTES` free.  An empty
    file still fits on a full disk, so the write test passes; JAX would then warn at every compilation, and each
    entry it began would stay behind cut short (a -cache file JAX warns about reading in every later process)."""
    try:
        status = os.statvfs(path)
    except (AttributeError, OSError):  # no statvfs (Windows), or the file system does not say: JAX will find out
        return
    free = status.f_bavail * status.f_frsize
    if free < MIN_FREE_BYTES:
        raise OSError(
            errno.ENOSPC, f"No space left on device: {free // 1024} KiB free, {MIN_FREE_BYTES // 2**20} MiB needed"
        )


def _apply(path: Path) -> None:
    """Point JAX's cache at ``path`` with jaxnn's settings (process-wide): every compilation cached, JAX's own
    bound off (:func:`_tidy` bounds the directory)."""
    jax.config.update("jax_compilation_cache_dir", str(path))
    _set_by_jaxnn.update(jax_persistent_cache_min_compile_time_secs=0.0, jax_compilation_cache_max_size=-1)
    for name, value in _set_by_jaxnn.items():
        jax.config.update(name, value)
    jax.config.update("jax_enable_compilation_cache", True)
    _jax_cache.reset_cache()  # JAX decides once per process whether and where to cache; let it decide again


def _tidy(path: Path, max_bytes: int) -> None:
    """Delete the entries of ``path`` that are cut short (empty, or written since a process last looked and not
    whole), then the least recently used ones until the rest take at most ``max_bytes`` (``-1``: no bound).

    One pass over the directory (JAX's own bound made such a pass on every write); ``.jaxnn-checked`` then records
    when the pass began.  Other processes use the directory meanwhile, and JAX's reads and writes take no lock
    without JAX's bound: an entry another process is still writing reads as cut short and is deleted (its writer's
    bytes go nowhere; a later process compiles it again), and a process that reads an entry just as this one
    deletes it gets JAX's warning "Error reading persistent compilation cache entry" and compiles the program (an
    error, where ``jax_raise_persistent_cache_errors`` is set)."""
    started = time.time_ns()
    checked = path / _CHECKED
    kept, first_unchecked = _whole_entries(path, since=_last_look(checked, started))
    try:  # not past an entry it could not check: an environment that can must still look at it
        _mark_look(checked, started if first_unchecked is None else min(started, first_unchecked))
    except OSError:  # the next process reads these entries again: slower, not wrong
        pass
    if max_bytes != -1:
        _evict_least_recent(path, kept, max_bytes)


def _whole_entries(path: Path, since: int) -> tuple[list[tuple[int, int, str]], int | None]:
    """``(last use in ns, size, key)`` of each whole entry of ``path``, and when the first entry written from
    ``since`` on that could not be checked was written (None: every one was); entries cut short (empty, or written
    from ``since`` on and not whole) are deleted on the way.  An entry deleted meanwhile, or that cannot be read or
    deleted, is left out (and left for the next process).  A zstd entry where no zstd decoder is installed is kept
    unchecked (another environment with one wrote it, and can read it)."""
    kept, first_unchecked = [], None
    with os.scandir(path) as listing:
        for item in listing:
            if not item.name.endswith(_CACHE_SUFFIX) or not item.is_file(follow_symlinks=False):
                continue
            key = item.name[: -len(_CACHE_SUFFIX)]
            try:
                status = item.stat(follow_symlinks=False)
                whole = True if status.st_size == 0 or status.st_mtime_ns < since else _whole_file(item.path)
                if status.st_size == 0 or whole is False:
                    _delete_entry(path, key)
                    continue
            except OSError:
                continue
            if whole is None:
                first_unchecked = min(status.st_mtime_ns, first_unchecked or status.st_mtime_ns)
            kept.append((max(status.st_atime_ns, status.st_mtime_ns), status.st_size, key))
    return kept, first_unchecked


def _evict_least_recent(path: Path, entries: list[tuple[int, int, str]], max_bytes: int) -> None:
    """Delete the least recently used of ``entries`` (as :func:`_whole_entries` gives them) until the rest take at
    most ``max_bytes``."""
    total = sum(size for _, size, _ in entries)
    for _, size, key in sorted(entries):
        if total <= max_bytes:
            break
        try:
            _delete_entry(path, key)
        except OSError:  # open in another process on Windows, say: it stays, the next one goes
            continue
        total -= size


def _last_look(checked: Path, now: int) -> int:
    """The time (ns) from which entries are read for :func:`_tidy`: when the last whole pass began, less
    :data:`_CLOCK_SLACK_NS`; 0 (every entry) when none did, or when ``checked`` is not a plain file or is dated
    after ``now`` (a clock set back since: entries written in between would never be read)."""
    try:
        looked = checked.stat(follow_symlinks=False)
    except FileNotFoundError:
        return 0
    if not stat.S_ISREG(looked.st_mode) or looked.st_mtime_ns > now:
        return 0
    return looked.st_mtime_ns - _CLOCK_SLACK_NS


def _mark_look(checked: Path, started: int) -> None:
    """Date ``checked`` ``started``, creating it as a plain file (a symbolic link there is replaced, not followed)."""
    if checked.is_symlink():
        checked.unlink()
    handle = os.open(checked, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(handle)
    os.utime(checked, ns=(started, started))


def _read_unseen(file: str, limit: int = -1) -> bytes:
    """The bytes of ``file`` (its first ``limit``), read without marking it used where the system allows
    (``O_NOATIME``, for the owner): the bound orders entries by their last use, and looking at an entry is not a
    use."""
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        handle = os.open(file, flags)
    except PermissionError:  # O_NOATIME on a file of another owner
        handle = os.open(file, os.O_RDONLY)
    with os.fdopen(handle, "rb") as opened:
        return opened.read(limit)


def _delete_entry(path: Path, key: str) -> None:
    """Delete the entry ``key`` and its stamp, if an older jaxnn's bound left one."""
    for suffix in (_CACHE_SUFFIX, _ATIME_SUFFIX):
        (path / f"{key}{suffix}").unlink(missing_ok=True)


def _whole_file(file: str) -> bool | None:
    """Whether the entry ``file`` decompresses as JAX reads its entries (a zstd frame with :func:`_zstd_decoder`'s
    decoder, anything else as a zlib stream): one cut short by a full disk or a killed process does not.  None for a
    zstd entry where no zstd decoder is installed (read no further than its first bytes): it cannot be told here."""
    zstd = _zstd_decoder()
    if zstd is None and _read_unseen(file, len(_ZSTD_MAGIC)) == _ZSTD_MAGIC:
        return None
    data = _read_unseen(file)
    try:
        (zstd if data.startswith(_ZSTD_MAGIC) else zlib.decompress)(data)
    except Exception:  # whatever the decoder raises on a damaged stream (zlib.error, ZstdError, MemoryError, ...)
        return False
    return True


@functools.cache
def _zstd_decoder():
    """The zstd decoder JAX uses: Python 3.14's ``compression.zstd``, else the ``zstandard`` package; None
    without either."""
    try:
        from compression import zstd

        return zstd.decompress
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        return None
    return lambda data: zstandard.ZstdDecompressor().decompress(data)  # a decompressor serves one thread at a time


def _ours() -> Path | None:
    """The directory jaxnn configured, if JAX's settings still point at it."""
    current = jax.config.jax_compilation_cache_dir
    if _process_wide is not None and current == str(_process_wide) and jax.config.jax_enable_compilation_cache:
        return _process_wide
    return None


def _user_configured() -> bool:
    """Whether the user configured JAX's cache: chose a directory, switched it off, or gave the minimum compile time
    or the size bound a value that is neither JAX's default nor the one jaxnn set."""
    chosen = any(
        getattr(jax.config, name) not in (default, _set_by_jaxnn.get(name, default))
        for name, default in _JAX_DEFAULTS.items()
    )
    return chosen or bool(jax.config.jax_compilation_cache_dir) or not jax.config.jax_enable_compilation_cache


def _opted_out() -> bool:
    """Whether ``JAXNN_COMPILE_CACHE`` switches jaxnn's cache off; a value that is neither on nor off is a ValueError
    (``disabled`` left the cache on in silence)."""
    value = os.environ.get(OPT_OUT, "").strip().lower() or "1"  # set but empty: unset, as the other variables
    if value not in ("0", "false", "off", "no", "1", "true", "on", "yes"):
        raise ValueError(f"{OPT_OUT} must be 0, false, off or no (or 1, true, on, yes), got {value!r}")
    return value in ("0", "false", "off", "no")


def _warn_once(error: Exception) -> None:
    global _warned
    if not _warned:
        _warned = True
        warn(f"jaxnn's compilation cache stays off: {error}", RuntimeWarning)  # names the user's line
