"""Safe, atomic checkpoints: parameters, optimiser state, RNG key, epoch, loss history and extra named arrays.

The format (version 1) is a NumPy ``.npz`` archive — a zip file of ``.npy`` arrays — holding only
numeric arrays.  It is read with ``numpy.load(..., allow_pickle=False)``, so opening a checkpoint
from a stranger never runs code: an archive that smuggles in a pickled object is refused.

Entries:

* ``meta`` — UTF-8 JSON stored as a ``uint8`` array::

      {"format": "jaxnn-checkpoint", "version": 1, "epoch": 200, "key_impl": "threefry2x32",
       "config": {...free-form JSON, e.g. the training options...},
       "arrays": {"params/0/W": {"shape": [4, 10], "dtype": "float32"}, ...},
       "sha256": "<hex digest>"}

* ``params/<path>`` — one array per parameter leaf, named by its pytree path (``params/0/W``).
* ``opt_state/<path>`` — the optimiser state's leaves, named the same way (``opt_state/0/mu/1/b``).
* ``key`` — the raw data of the RNG key (``jax.random.key_data``); ``key_impl`` names its PRNG.
* ``history`` — the mean training loss of every epoch run so far, ``(epoch,)``.
* ``extras/<name>`` — optional: any further numeric arrays the caller names (``jaxnn-train`` keeps its
  held-out loss curve there).  A reader that does not know an extra ignores it, so files with extras are
  still version 1.

``sha256`` is the digest of every array's name, dtype, shape and bytes, in sorted name order, and of the
rest of ``meta`` (its canonical JSON: the epoch, the config, the array list); a file whose arrays or metadata do
not match it is reported as corrupt (files written before the metadata was covered carry the arrays' digest alone,
and are read as before).  The names, shapes and dtypes are also
checked against the model and optimiser the checkpoint is loaded into, so a checkpoint of another
model is refused with the first difference named.

Errors: every file :func:`load` or :func:`read_config` cannot use is a :class:`CheckpointError` (a
``ValueError``) naming the file and what is wrong: missing, truncated or corrupt, another format version, or made
for another model.  A file that is not a jaxnn checkpoint at all, judged by its content whatever its name (not a
zip archive, a single ``.npy`` array, an archive without a ``meta`` entry or whose ``meta`` does not say format
``jaxnn-checkpoint``), is its subclass :class:`NotACheckpoint`, so that a caller can tell a mistaken file from a
damaged one.

Writes are atomic: the archive goes to ``<name>.tmp`` (a shorter name where that one would be too long) in
the same directory, is flushed and
fsync'd, then renamed over the old file with ``os.replace`` and the directory is fsync'd.  A process
killed at any moment leaves either the previous checkpoint or the new one, never a torn file.  The new file keeps
the permission bits of the one it replaces (a private checkpoint stays private).  One writer at a time per path:
two processes saving to one path at once share the temporary file (``jaxnn-train`` locks its ``--out``).

Example::

    save("run/checkpoint.npz", params=params, opt_state=state, key=key, epoch=200,
         history=losses, config={"lr": 0.1})
    config = read_config("run/checkpoint.npz")            # rebuild the model from this ...
    ckpt = load("run/checkpoint.npz", params_like=params, opt_state_like=optimizer.init(params))
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import operator
import os
import stat
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "CheckpointError",
    "NotACheckpoint",
    "load",
    "read_config",
    "save",
    "write_atomically",
]

FORMAT = "jaxnn-checkpoint"
VERSION = 1

# JAX's extra floating types (ml_dtypes) have no .npy type code: ``np.save`` stores them as raw bytes ("void"),
# and ``load`` views those bytes as the type the metadata names again.
_EXTENDED_DTYPES = {
    np.dtype(getattr(ml_dtypes, name)).name: np.dtype(getattr(ml_dtypes, name))
    for name in ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2", "float8_e5m2fnuz")
    if hasattr(ml_dtypes, name)
}
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"  # every zip archive (so every .npz) starts with it: a local file header or an empty archive's end


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or made for another model."""


class NotACheckpoint(CheckpointError):
    """A file that is not a jaxnn checkpoint at all, as opposed to a damaged one: judged by its content (not an
    .npz/zip archive, a single .npy array, or an archive without jaxnn's ``meta`` entry), never by its name.

    ``path`` is the file and ``reason`` says what it is instead; the message is ``"{path} is not a jaxnn
    checkpoint ({reason})"``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is not a jaxnn checkpoint ({reason})")
        self.path = path
        self.reason = reason


class Checkpoint(NamedTuple):
    """A loaded checkpoint; arrays are host NumPy arrays, the key is a typed ``jax.random`` key (one, as ``save``
    takes it; a file an earlier jaxnn saved with a batch of keys gives the batch back)."""

    params: Any
    opt_state: Any
    key: jax.Array
    epoch: int
    history: np.ndarray
    config: dict
    extras: dict[str, np.ndarray] | None = None  # the ``extras`` saved with it ({} when none)


def _file_path(path) -> Path:
    """``path`` as a Path; anything but a str or os.PathLike is a TypeError naming it (pathlib's names no argument)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path (a str or pathlib.Path), got {type(path).__name__}: {path!r:.60}")
    return Path(path)


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on ``<path>.tmp``, fsync it, then rename it over ``path``.

    ``<path>.tmp`` (for a name too long to take 4 more bytes, a shorter one: :func:`_temporary_name`) is created
    anew, never opened through a link (whatever is at that name, a killed run's file or a link, is removed first),
    and the rename replaces a link at ``path`` rather than what it points to: no file outside the directory is
    written.

    Until the rename, ``path`` keeps its old content; if ``write`` fails or the process is
    interrupted, the temporary file is removed and the exception goes on.
    """
    path = _file_path(path)
    if path.is_dir():  # os.replace would fail only after the whole file was written, naming the .tmp
        raise IsADirectoryError(
            errno.EISDIR, f"{path} is a directory; pass a file path such as {path / 'checkpoint.npz'}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"the directory {path.parent} does not exist; create it first")
    temporary = _temporary_name(path)
    if temporary.is_dir() and not temporary.is_symlink():  # unlink fails with a bare "Is a directory"
        raise IsADirectoryError(
            errno.EISDIR, f"{temporary} is a directory, where {path.name} is written first; move or remove it"
        )
    temporary.unlink(missing_ok=True)  # a stale one (a killed run's), or a link: removed, not what it points to
    mode = _kept_mode(path)
    try:
        # a new file, never through a link (O_EXCL refuses any name that exists, a link made since included)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(temporary, flags, 0o666), "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _naming(error, path) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _kept_mode(path: Path) -> int | None:
    """The permission bits of the file at ``path`` that a write replaces, for the new file to keep (a checkpoint
    made private with ``chmod 600`` became 0644, readable by all, when it was saved again); None where there is
    no regular file there (a new file gets the umask's mode; a link at ``path`` is replaced, not followed)."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(status.st_mode) if stat.S_ISREG(status.st_mode) else None


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` with ``path`` as its file name when it has none.  A write or fsync that fails (a full disk, a
    quota) raises an OSError without one, so the caller could only say "could not write a file"."""
    if error.filename is not None or error.errno is None:
        return error
    return OSError(error.errno, error.strerror or str(error), str(path))  # errno picks the subclass, as open's


def _temporary_name(path: Path) -> Path:
    """``<path>.tmp``; where the directory's name limit (255 bytes, usually) leaves no room for ``.tmp``, a name
    that does fit: the name cut short, with a digest of the whole name so that two long names never share one."""
    name = path.name + ".tmp"
    try:
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or the directory does not say
        limit = 255
    if len(os.fsencode(name)) <= limit:
        return path.with_name(name)
    digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]
    kept = os.fsencode(path.name)[: max(limit - len(digest) - 6, 1)].decode(errors="ignore")
    return path.with_name(f"{kept}.{digest}.tmp")


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX only; elsewhere the rename is all we can do)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _leaf_names(prefix: str, tree) -> list[str]:
    """``prefix/<pytree path>`` for every leaf of ``tree``, in ``jax.tree.leaves`` order."""
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return [f"{prefix}/{jax.tree_util.keystr(path, simple=True, separator='/')}" for path in paths]


def _named_leaves(prefix: str, tree) -> dict[str, np.ndarray]:
    """``{"prefix/<pytree path>": leaf}`` for every leaf of ``tree``, as host arrays.

    Two leaves whose paths print alike (a dict key ``"a/b"`` next to ``{"a": {"b": ...}}``) would overwrite
    each other in the archive, and a leaf that is not numeric could not be read back: both are refused.
    """
    names = _leaf_names(prefix, tree)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"cannot save {prefix}: several leaves would be stored under the same name ({_few(duplicates)}); "
            "rename the pytree keys so that their paths differ"
        )
    arrays = {}
    for name, leaf in zip(names, jax.tree.leaves(tree), strict=True):
        _refuse_key(name, leaf)
        array = np.asarray(leaf)
        if array.dtype.kind not in "biufc" and array.dtype not in _EXTENDED_DTYPES.values():
            raise TypeError(
                f"cannot save {name}: a checkpoint holds numeric arrays only, got {type(leaf).__name__} "
                f"of dtype {array.dtype}"
            )
        arrays[name] = array.astype(array.dtype.newbyteorder("="))  # big-endian stored as native: load compares
    return arrays


def _non_finite(arrays: dict[str, np.ndarray]) -> list[str]:
    """The names of floating arrays holding NaN or an infinity."""
    return [
        name
        for name, array in arrays.items()
        if jnp.issubdtype(array.dtype, jnp.inexact) and not np.all(np.isfinite(array))
    ]


def _with_nan(arrays: dict[str, np.ndarray]) -> list[str]:
    """The names of floating arrays holding NaN (an infinity is no NaN: an optimiser state may hold one)."""
    return [
        name for name, array in arrays.items() if jnp.issubdtype(array.dtype, jnp.inexact) and np.any(np.isnan(array))
    ]


def _array_hash(arrays: dict[str, np.ndarray]):
    """SHA-256 (a hashlib object, to go on with) of every array's name, dtype, shape and bytes, in name order: the
    whole checksum of files written before it covered the metadata."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest


def _checksum(array_hash, meta: dict) -> str:
    """The checksum: ``array_hash`` (:func:`_array_hash`) continued with ``meta`` without its ``sha256`` field, as
    canonical JSON."""
    digest = array_hash.copy()
    described = {field: value for field, value in meta.items() if field != "sha256"}
    digest.update(json.dumps(described, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def save(
    path: str | os.PathLike,
    *,
    params,
    opt_state,
    key: jax.Array,
    epoch: int,
    history,
    config: dict | None = None,
    extras: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (see the module docstring for the format).

    Args:
      path: the file to write, conventionally ``<dir>/checkpoint.npz``.
      params, opt_state: pytrees of arrays (device arrays are copied to the host).
      key: one typed ``jax.random`` key (``jax.random.key(seed)``): the run's (others go in ``extras`` as key data).
      epoch: the number of epochs done.
      history: the mean training loss of each epoch done, ``(epoch,)``.
      config: any JSON-serialisable description of the run (options, model, data fingerprint); it is read back
        as JSON gives it, keys as strings, tuples as lists and NumPy scalars as Python numbers (``{2: (4, 5)}``
        comes back as ``{"2": [4, 5]}``, ``np.float32(0.5)`` as ``0.5``); any other value is a TypeError naming
        where it is (``config['model']['act'] is function, ...``).
      extras: further numeric arrays by name (letters, digits, ``_``, ``-``, ``.``), stored as
        ``extras/<name>`` and given back by :func:`load` as ``Checkpoint.extras``.

    Raises:
      ValueError: the parameters hold no array, or NaN or an infinity, or the optimiser state holds NaN (a
        checkpoint never keeps them: :func:`load` refuses them), ``epoch`` is negative, or ``history`` does not
        hold ``epoch`` numbers; TypeError: a leaf, the key, ``epoch`` or ``config`` has the wrong type.  Nothing is
        written then.
    """
    if config is not None and not isinstance(config, dict):  # load reads a dict: a list was saved, then "corrupt"
        raise TypeError(f"config must be a dict (JSON-serialisable), got {type(config).__name__}")
    if config is not None and "epoch" in config:  # read_config returns {**config, "epoch": epoch}: one would be lost
        raise ValueError("config must not hold 'epoch': the checkpoint stores the epoch itself (pass epoch=)")
    try:
        config = _json_value(config or {}, "config")
    except RecursionError:  # a dict or list that holds itself
        raise ValueError("config holds itself (a dict or list among its own values), or nests too deeply") from None
    params_arrays = _named_leaves("params", params)
    if not params_arrays:  # a checkpoint that cannot resume anything
        raise ValueError(f"params holds no arrays (got {type(params).__name__}); pass the parameters to keep")
    bad = _non_finite(params_arrays)
    if bad:
        raise ValueError(
            f"refusing to save parameters that hold NaN or infinity ({_few(bad)}); "
            "save the last finite parameters instead"
        )
    if isinstance(epoch, bool | np.bool_):
        raise TypeError(f"epoch must be a whole number of epochs, got {epoch!r}")
    try:
        epoch = operator.index(epoch)
    except TypeError:
        raise TypeError(f"epoch must be a whole number of epochs, got {epoch!r}") from None
    if epoch < 0:
        raise ValueError(f"epoch must be 0 or more, got {epoch}")
    history = np.asarray(history)
    if history.dtype.kind not in "iuf" or history.shape != (epoch,):
        several = history.ndim == 2 and history.shape[1] == epoch  # a population's (members, epoch) table
        hint = (
            "; for several networks' histories save one row per epoch (their mean, say) as history and the table "
            "in extras=, as jaxnn-train's population.npz does"
            if several
            else ""
        )
        raise ValueError(
            f"history must hold one loss value per epoch done, a ({epoch},) array of numbers; "
            f"got {history.dtype.name}{list(history.shape)}{hint}"
        )
    try:
        key_data, key_impl = np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
    except (TypeError, ValueError):
        raise TypeError(f"key must be a jax.random key such as jax.random.key(0), got {type(key).__name__}") from None
    if key_data.ndim != 1:  # one key's data is a vector (threefry: 2 numbers); a batch of keys has more axes
        raise ValueError(
            f"key must be one jax.random key (the run's), got {key_data.shape[:-1]} of them; save others as their "
            "data in extras (jax.random.key_data(keys))"
        )
    opt_state_arrays = _named_leaves("opt_state", opt_state)
    bad = _with_nan(opt_state_arrays)
    if bad:  # load refuses such a file: say so now, while the run can still save a healthy state
        raise ValueError(
            f"refusing to save an optimiser state that holds NaN ({_few(bad)}); save the last healthy state "
            "instead (an infinity is kept: optax's reduce_on_plateau starts from one)"
        )
    arrays = {
        **params_arrays,
        **opt_state_arrays,
        "key": key_data,
        "history": history,
        **_extra_arrays(extras or {}),
    }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": epoch,
        "key_impl": key_impl,
        "config": config,
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.name} for name, a in arrays.items()},
    }
    try:
        # the metadata as a reader will parse it (a config's int keys come back as strings, tuples as lists)
        meta = json.loads(json.dumps(meta))
        meta["sha256"] = _checksum(_array_hash(arrays), meta)
        encoded_meta = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    except (TypeError, ValueError, RecursionError) as error:  # what _json_value cannot see: a too deep nesting
        raise TypeError(f"config must be JSON-serialisable (strings, numbers, lists and dicts): {error}") from None
    # Serialise in memory first: the temporary file then gets one write, and a failure while
    # encoding (a non-JSON config, an odd dtype) happens before anything touches the disk.
    buffer = io.BytesIO()
    np.savez(buffer, meta=encoded_meta, **arrays)
    write_atomically(path, lambda file: file.write(buffer.getvalue()))


def _json_value(value, where: str):
    """``value`` as JSON stores it, or a TypeError naming ``where`` in it the first value JSON cannot hold is.

    Strings, Python numbers, bools and None stay as they are; NumPy scalars (``np.float32(0.1)``, ``np.int64(3)``,
    ``np.bool_(True)``) become the Python number or bool they hold; tuples and lists become lists; dicts keep
    their keys (strings, numbers, bools or None, which JSON writes as strings).  ``where`` names ``value`` in the
    message (``config['model']['units'][1]``).
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return value.item()
    if isinstance(value, list | tuple):
        return [_json_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        for name in value:
            if name is not None and not isinstance(name, str | bool | int | float):
                raise TypeError(
                    f"{where} has the key {name!r} of type {type(name).__name__}; a config's keys must be strings "
                    "(or numbers, stored as strings)"
                )
        written = [name if isinstance(name, str) else json.dumps(name) for name in value]  # what JSON makes of them
        alike = sorted({repr(name) for name, text in zip(value, written, strict=True) if written.count(text) > 1})
        if alike:  # JSON would write both, and read back only the last
            raise TypeError(f"{where} has keys that JSON stores as the same string ({', '.join(alike)}); rename one")
        return {name: _json_value(item, f"{where}[{name!r}]") for name, item in value.items()}
    hint = " (an array: store value.tolist(), or pass it in extras=)" if isinstance(value, np.ndarray) else ""
    raise TypeError(
        f"{where} is {type(value).__name__}, which a checkpoint's config cannot hold{hint}; a config holds JSON "
        "values only: strings, numbers, bools, None, lists, tuples and dicts"
    )


def _refuse_key(name: str, value) -> None:
    """A TypeError if ``value`` is a typed PRNG key (``np.asarray`` of one is JAX's own error, naming nothing)."""
    if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
        raise TypeError(
            f"cannot save {name}: a PRNG key; the run's key is save's key=, and another key can be saved as its "
            "data (jax.random.key_data(key)) and rebuilt with jax.random.wrap_key_data"
        )


def _extra_arrays(extras: dict[str, Any]) -> dict[str, np.ndarray]:
    """``{"extras/<name>": array}``; a name that is not a plain word or an array that is not numeric is refused."""
    if not isinstance(extras, Mapping):  # else an AttributeError on .items()
        raise TypeError(f"extras must be a dict of numeric arrays by name, got {type(extras).__name__}")
    arrays = {}
    for name, value in extras.items():
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
            raise ValueError(f"an extra's name must be letters, digits, '_', '-' or '.', got {name!r}")
        _refuse_key(f"extra {name!r}", value)
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"cannot save extra {name!r}: a checkpoint holds numeric arrays only, got {array.dtype}")
        arrays[f"extras/{name}"] = array
    return arrays


def _read_entries(path: Path) -> dict[str, np.ndarray]:
    """Every ``.npy`` entry of the archive, read without ever unpickling and without trusting its sizes.

    An entry's header is checked before its array is allocated: a Python-object (pickled) array is
    refused, and so is a header that declares more data than the entry holds.  The entries together may
    not declare more bytes than the file has (jaxnn writes uncompressed archives), so a small forged or
    compressed file cannot make ``load`` allocate gigabytes.
    """
    with open(path, "rb") as file:
        start = file.read(len(_NPY_MAGIC))
    if start == _NPY_MAGIC:
        raise NotACheckpoint(path, "a single .npy array, not an .npz archive")
    if not _ZIP_MAGIC.startswith(start[: len(_ZIP_MAGIC)]):  # (a file cut to 0 or 1 bytes is truncated, below)
        raise NotACheckpoint(path, "it is not an .npz/zip archive")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read (it is not an .npz/zip archive)")
    size = path.stat().st_size
    entries = {}
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        names = {info.filename for info in infos}
        if "meta.npy" not in names and any(name.startswith("params/") for name in names):
            raise CheckpointError(f"{path} is corrupt: it holds parameters but no 'meta' entry; restore it from a copy")
        if "meta.npy" not in names:  # another archive (a zipped CSV), not a damaged one
            raise NotACheckpoint(path, "no 'meta' entry")
        declared = sum(info.file_size for info in infos)
        if declared > size and any(info.compress_type != zipfile.ZIP_STORED for info in infos):
            raise CheckpointError(
                f"{path} is a compressed archive (as np.savez_compressed writes) whose entries declare {declared} "
                f"bytes in a {size}-byte file; jaxnn reads an archive only when its entries fit in its size, so that "
                "a small file cannot make it allocate gigabytes: save its arrays again with np.savez (uncompressed, "
                "as jaxnn writes them)"
            )
        if declared > size:
            raise CheckpointError(
                f"{path} is truncated or corrupt and cannot be read (its entries declare {declared} bytes in a "
                f"{size}-byte file; jaxnn writes uncompressed archives)"
            )
        for info in infos:
            name = info.filename.removesuffix(".npy")
            if name == info.filename or name in entries:
                raise CheckpointError(f"{path} is corrupt: unexpected or repeated entry {info.filename!r}")
            with archive.open(info) as stream:  # at most the declared size: read() inflates a lying entry whole
                entries[name] = _read_npy(path, name, stream.read(info.file_size))
    return entries


def _read_npy(path: Path, name: str, data: bytes) -> np.ndarray:
    buffer = io.BytesIO(data)
    version = np.lib.format.read_magic(buffer)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(buffer)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(buffer)
    else:
        raise CheckpointError(f"{path} is corrupt: entry {name!r} is .npy format version {version}")
    if dtype.hasobject:
        raise CheckpointError(
            f"{path} is not a safe checkpoint: entry {name!r} holds Python objects, which could only be read by "
            "unpickling them (running code); jaxnn reads with allow_pickle=False and refuses it"
        )
    if math.prod(shape) * dtype.itemsize > len(data) - buffer.tell():
        raise CheckpointError(f"{path} is truncated or corrupt: entry {name!r} holds less data than its header says")
    buffer.seek(0)
    return np.lib.format.read_array(buffer, allow_pickle=False)


def _open(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify the whole archive: returns ``(meta, arrays)`` or raises CheckpointError."""
    try:
        if path.is_dir():
            raise CheckpointError(
                f"{path} is a directory; pass the checkpoint file in it, e.g. {path / 'checkpoint.npz'}"
            )
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}")
        contents = _read_entries(path)
    except CheckpointError:
        raise
    except OSError as error:  # the file cannot be opened (a name too long, no permission): not a damaged file
        raise CheckpointError(f"cannot read the checkpoint {path}: {error.strerror or error}") from None
    except Exception as error:  # anything a damaged file makes zipfile or numpy raise
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read ({reason})") from None
    try:
        meta = json.loads(contents.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # JSON's, an integer too long, nesting too deep
        reason = "an integer too long to read" if type(error) is ValueError else error  # not Python's advice
        raise CheckpointError(f"{path} has an unreadable 'meta' entry ({reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NotACheckpoint(path, f"its 'meta' entry does not say format {FORMAT!r}")
    if meta.get("version") != VERSION or isinstance(meta.get("version"), bool):  # True == 1 in Python
        raise CheckpointError(
            f"{path} is checkpoint format version {meta.get('version')!r}; this jaxnn reads version {VERSION}"
        )
    if not _well_formed(meta):
        raise CheckpointError(f"{path} is corrupt: its 'meta' entry lacks fields or has fields of the wrong type")
    listed = meta["arrays"]
    for name, array in contents.items():
        extended = _EXTENDED_DTYPES.get(listed.get(name, {}).get("dtype"))
        if extended is not None and array.dtype.kind == "V" and array.dtype.itemsize == extended.itemsize:
            contents[name] = array.view(extended)
    if set(listed) != set(contents):
        missing, extra = sorted(set(listed) - set(contents)), sorted(set(contents) - set(listed))
        raise CheckpointError(f"{path} is corrupt: entries missing: {_few(missing)}; unexpected: {_few(extra)}")
    for name, array in contents.items():
        expected = (tuple(listed[name]["shape"]), listed[name]["dtype"])
        if (array.shape, array.dtype.name) != expected:
            raise CheckpointError(
                f"{path} is corrupt: {name} is {array.dtype.name}{list(array.shape)}, "
                f"its metadata says {expected[1]}{list(expected[0])}"
            )
    array_hash = _array_hash(contents)
    if meta["sha256"] not in (_checksum(array_hash, meta), array_hash.hexdigest()):
        raise CheckpointError(f"{path} is corrupt: its arrays or metadata do not match the checksum written with them")
    if contents["history"].dtype.kind not in "iuf" or contents["history"].ndim != 1:
        raise CheckpointError(f"{path} is corrupt: its history is not a 1-D array of loss values")
    for name, array in contents.items():  # save stores numeric extras only (bytes or text would be read as numbers)
        if name.startswith("extras/") and array.dtype.kind not in "biuf":
            raise CheckpointError(f"{path} is corrupt: {name} is {array.dtype.name}, not the numeric array save writes")
    return meta, contents


def _well_formed(meta: dict) -> bool:
    """The fields ``load`` relies on are there and have the right JSON types."""
    arrays = meta.get("arrays")
    epoch = meta.get("epoch")
    return (
        type(epoch) is int
        and epoch >= 0
        and isinstance(meta.get("key_impl"), str)
        and isinstance(meta.get("config"), dict)
        and isinstance(meta.get("sha256"), str)
        and isinstance(arrays, dict)
        and {"key", "history"} <= set(arrays)
        and all(
            isinstance(spec, dict) and isinstance(spec.get("shape"), list) and isinstance(spec.get("dtype"), str)
            for spec in arrays.values()
        )
    )


def read_config(path: str | os.PathLike) -> dict:
    """The ``config`` and ``epoch`` of a verified checkpoint: ``{**config, "epoch": epoch}``.

    Read it first to rebuild the model and optimiser, then :func:`load` the arrays into them.
    """
    meta, _ = _open(_file_path(path))
    return {**meta["config"], "epoch": meta["epoch"]}


def _few(names: list[str], shown: int = 4) -> str:
    """``a, b, c, d and 5 more`` — enough to see what differs without a wall of names."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _restore(path: Path, prefix: str, like, contents: dict[str, np.ndarray]):
    """Rebuild the pytree ``like`` from the arrays named ``prefix/...``; names, shapes, dtypes must match."""
    wanted = _leaf_names(prefix, like)
    stored = sorted(name for name in contents if name.startswith(prefix + "/"))
    if stored != sorted(wanted):
        missing, extra = sorted(set(wanted) - set(stored)), sorted(set(stored) - set(wanted))
        raise CheckpointError(
            f"{path} does not fit: its {prefix} entries differ (expected but missing: {_few(missing)}; "
            f"in the file but not expected: {_few(extra)})"
        )
    leaves = []
    for name, template in zip(wanted, jax.tree.leaves(like), strict=True):
        # a template leaf may be a Python number, which save stores as NumPy makes it
        dtype = np.dtype(template.dtype) if hasattr(template, "dtype") else np.asarray(template).dtype
        array, shape = contents[name], tuple(np.shape(template))
        if array.shape != shape or array.dtype != dtype:
            # the same shapes in another precision: the user can load it as saved and cast it, never silently here
            hint = (
                f"; it was saved in {array.dtype.name}: load it with {array.dtype.name} templates (cast yours with "
                f".astype), then cast what it gives to {dtype.name}"
                if array.shape == shape
                else ""
            )
            raise CheckpointError(
                f"{path} does not fit: {name} is {array.dtype.name}{list(array.shape)} in the file "
                f"but {dtype.name}{list(shape)} is expected{hint}"
            )
        leaves.append(array)
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def load(path: str | os.PathLike, *, params_like, opt_state_like) -> Checkpoint:
    """Read a checkpoint into the structure of ``params_like`` and ``opt_state_like``.

    The templates give the expected pytree structure, shapes and dtypes (e.g. ``model.init(...)``
    and ``optimizer.init(params)``, or their ``jax.eval_shape``); their values are not used.
    Raises :class:`CheckpointError` naming the file and the difference when the file is missing,
    truncated, corrupt or does not fit, and when its parameters hold NaN or an infinity or its optimiser state
    holds NaN (a run resumed from either diverges at once; an infinity in the state can be legitimate).
    """
    path = _file_path(path)
    meta, contents = _open(path)
    params = _restore(path, "params", params_like, contents)
    bad = _non_finite({name: array for name, array in contents.items() if name.startswith("params/")})
    if bad:
        raise CheckpointError(f"{path} holds parameters with NaN or infinity ({_few(bad)}); refusing to load them")
    opt_state = _restore(path, "opt_state", opt_state_like, contents)
    # NaN only: an infinity is a legitimate state (optax's reduce_on_plateau starts its best value at inf)
    bad = _with_nan({name: array for name, array in contents.items() if name.startswith("opt_state/")})
    if bad:
        raise CheckpointError(
            f"{path} holds an optimiser state with NaN ({_few(bad)}); refusing to load it (a run resumed from it "
            "diverges at its first step): resume from an earlier checkpoint"
        )
    try:
        key = jax.random.wrap_key_data(contents["key"], impl=meta["key_impl"])
    except (KeyError, ValueError, TypeError):  # JAX's message holds its PRNG's repr, functions and all
        raise CheckpointError(
            f"{path} holds an RNG key that cannot be restored: key data of shape {contents['key'].shape} for the PRNG "
            f"{meta['key_impl']!r:.40}, which JAX does not take; resume from another checkpoint"
        ) from None
    history = contents["history"]
    if history.shape != (meta["epoch"],):
        raise CheckpointError(f"{path} is corrupt: {history.shape[0]} loss values for {meta['epoch']} epochs")
    extras = {name.removeprefix("extras/"): array for name, array in contents.items() if name.startswith("extras/")}
    return Checkpoint(params, opt_state, key, meta["epoch"], history, meta["config"], extras)
