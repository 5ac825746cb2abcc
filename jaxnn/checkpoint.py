"""Safe, atomic checkpoints: parameters, optimiser state, RNG key, epoch and loss history.

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

``sha256`` is the digest of every array's name, dtype, shape and bytes, in sorted name order; a
file whose arrays do not match it is reported as corrupt.  The names, shapes and dtypes are also
checked against the model and optimiser the checkpoint is loaded into, so a checkpoint of another
model is refused with the first difference named.

Writes are atomic: the archive goes to ``<name>.tmp`` in the same directory, is flushed and
fsync'd, then renamed over the old file with ``os.replace`` and the directory is fsync'd.  A process
killed at any moment leaves either the previous checkpoint or the new one, never a torn file.

Example::

    save("run/checkpoint.npz", params=params, opt_state=state, key=key, epoch=200,
         history=losses, config={"lr": 0.1})
    config = read_config("run/checkpoint.npz")            # rebuild the model from this ...
    ckpt = load("run/checkpoint.npz", params_like=params, opt_state_like=optimizer.init(params))
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

import jax
import numpy as np

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "load", "read_config", "save", "write_atomically"]

FORMAT = "jaxnn-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or made for another model."""


class Checkpoint(NamedTuple):
    """A loaded checkpoint; arrays are host NumPy arrays, the key is a typed ``jax.random`` key."""

    params: Any
    opt_state: Any
    key: jax.Array
    epoch: int
    history: np.ndarray
    config: dict


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on ``<path>.tmp``, fsync it, then rename it over ``path``.

    Until the rename, ``path`` keeps its old content; if ``write`` fails or the process is
    interrupted, the temporary file is removed and the exception goes on.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


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
    """``{"prefix/<pytree path>": leaf}`` for every leaf of ``tree``, as host arrays."""
    return dict(zip(_leaf_names(prefix, tree), map(np.asarray, jax.tree.leaves(tree)), strict=True))


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
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
) -> None:
    """Write a checkpoint atomically (see the module docstring for the format).

    Args:
      path: the file to write, conventionally ``<dir>/checkpoint.npz``.
      params, opt_state: pytrees of arrays (device arrays are copied to the host).
      key: a typed ``jax.random`` key (``jax.random.key(seed)``).
      epoch: the number of epochs done.
      history: the mean training loss of each epoch done, ``(epoch,)``.
      config: any JSON-serialisable description of the run (options, model, data fingerprint).
    """
    arrays = {
        **_named_leaves("params", params),
        **_named_leaves("opt_state", opt_state),
        "key": np.asarray(jax.random.key_data(key)),
        "history": np.asarray(history),
    }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "key_impl": str(jax.random.key_impl(key)),
        "config": config or {},
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.name} for name, a in arrays.items()},
        "sha256": _digest(arrays),
    }
    encoded_meta = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    # Serialise in memory first: the temporary file then gets one write, and a failure while
    # encoding (a non-JSON config, an odd dtype) happens before anything touches the disk.
    buffer = io.BytesIO()
    np.savez(buffer, meta=encoded_meta, **arrays)
    write_atomically(path, lambda file: file.write(buffer.getvalue()))


def _open(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify the whole archive: returns ``(meta, arrays)`` or raises CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} is not a jaxnn checkpoint (a single .npy array, not an .npz archive)")
        with archive:
            if "meta" not in archive.files:
                raise CheckpointError(f"{path} is not a jaxnn checkpoint (no 'meta' entry)")
            contents = {name: archive[name] for name in archive.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read ({error})") from None
    try:
        meta = json.loads(contents.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} has an unreadable 'meta' entry ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jaxnn checkpoint (its 'meta' entry does not say format {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is checkpoint format version {meta.get('version')!r}; this jaxnn reads version {VERSION}"
        )
    if not _well_formed(meta):
        raise CheckpointError(f"{path} is corrupt: its 'meta' entry lacks fields or has fields of the wrong type")
    listed = meta["arrays"]
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
    if _digest(contents) != meta.get("sha256"):
        raise CheckpointError(f"{path} is corrupt: its arrays do not match the checksum written with them")
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
    meta, _ = _open(Path(path))
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
        array, shape, dtype = contents[name], tuple(np.shape(template)), np.dtype(template.dtype)
        if array.shape != shape or array.dtype != dtype:
            raise CheckpointError(
                f"{path} does not fit: {name} is {array.dtype.name}{list(array.shape)} in the file "
                f"but {dtype.name}{list(shape)} is expected"
            )
        leaves.append(array)
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def load(path: str | os.PathLike, *, params_like, opt_state_like) -> Checkpoint:
    """Read a checkpoint into the structure of ``params_like`` and ``opt_state_like``.

    The templates give the expected pytree structure, shapes and dtypes (e.g. ``model.init(...)``
    and ``optimizer.init(params)``, or their ``jax.eval_shape``); their values are not used.
    Raises :class:`CheckpointError` naming the file and the difference when the file is missing,
    truncated, corrupt or does not fit.
    """
    path = Path(path)
    meta, contents = _open(path)
    params = _restore(path, "params", params_like, contents)
    opt_state = _restore(path, "opt_state", opt_state_like, contents)
    try:
        key = jax.random.wrap_key_data(contents["key"], impl=meta["key_impl"])
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} holds an RNG key that cannot be restored ({error})") from None
    history = contents["history"]
    if history.shape != (meta["epoch"],):
        raise CheckpointError(f"{path} is corrupt: {history.shape[0]} loss values for {meta['epoch']} epochs")
    return Checkpoint(params, opt_state, key, meta["epoch"], history, meta["config"])
