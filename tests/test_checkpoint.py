"""Checkpoints: exact round trip, atomic writes, and a clear error for every bad file."""

import errno
import io
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from helpers import arrays_only_digest, assert_trees_equal

import jaxnn
from jaxnn import checkpoint
from jaxnn.checkpoint import CheckpointError, NotACheckpoint


@pytest.fixture(autouse=True, scope="module")
def _cache_of_the_killed(tmp_path_factory):
    """The processes this module kills compile into a cache that no other test reads (JAX writes an entry in
    place: a process killed while writing one leaves it torn)."""
    saved = os.environ["JAXNN_CACHE_DIR"]
    os.environ["JAXNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("killed-xla-cache"))
    yield
    os.environ["JAXNN_CACHE_DIR"] = saved


MODEL = jaxnn.Sequential((jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
OPTIMIZER = optax.adam(0.01)


@jax.jit
def _initial_and_one_update(key):
    params = MODEL.init(key, 4)
    grads = jax.tree.map(lambda p: p * 0.5 + 0.1, params)
    updates, opt_state = OPTIMIZER.update(grads, OPTIMIZER.init(params), params)
    return optax.apply_updates(params, updates), opt_state


def _state(seed: int = 0):
    """Params and an Adam state with non-trivial moments (one real update)."""
    return _initial_and_one_update(jax.random.key(seed))


def _save(path, seed: int = 0, epoch: int = 3):
    params, opt_state = _state(seed)
    checkpoint.save(
        path,
        params=params,
        opt_state=opt_state,
        key=jax.random.key(seed + 100),
        epoch=epoch,
        history=np.linspace(1.0, 0.5, epoch, dtype=np.float32),
        config={"lr": 0.01, "layers": [5]},
    )
    return params, opt_state


def _load(path):
    params, opt_state = _state()
    return checkpoint.load(path, params_like=params, opt_state_like=opt_state)


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _save(path, seed=7, epoch=4)
    loaded = _load(path)
    _assert_trees_equal(loaded.params, params)
    _assert_trees_equal(loaded.opt_state, opt_state)
    assert loaded.epoch == 4
    np.testing.assert_array_equal(loaded.history, np.linspace(1.0, 0.5, 4, dtype=np.float32))
    assert loaded.config == {"lr": 0.01, "layers": [5]}
    assert checkpoint.read_config(path) == {"lr": 0.01, "layers": [5], "epoch": 4}
    # the restored key draws the same numbers as the original
    np.testing.assert_array_equal(jax.random.uniform(loaded.key, (5,)), jax.random.uniform(jax.random.key(107), (5,)))


def test_file_holds_only_plain_arrays_and_json_meta(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        meta = json.loads(archive["meta"].tobytes())
        assert all(archive[name].dtype != object for name in names)
    assert {"params/0/W", "params/1/b", "opt_state/0/count", "opt_state/0/mu/0/W", "key", "history"} <= names
    assert meta["format"] == "jaxnn-checkpoint" and meta["version"] == 1 and meta["epoch"] == 3
    assert meta["arrays"]["params/0/W"] == {"shape": [4, 5], "dtype": "float32"}


def test_overwrite_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path, epoch=2)
    _save(path, epoch=5)
    assert _load(path).epoch == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path, epoch=2)

    def half_then_fail(file):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        checkpoint.write_atomically(path, half_then_fail)
    assert _load(path).epoch == 2
    assert not (tmp_path / "checkpoint.npz.tmp").exists()


def test_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path):
    """A write or fsync that fails raises an OSError without a file name, so jaxnn-train said "the disk is full:
    could not write a file"; the error names the file now, and the old one stays."""
    path = tmp_path / "checkpoint.npz"
    _save(path, epoch=2)

    def disk_full(file):
        file.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")  # what file.write or os.fsync raises

    with pytest.raises(OSError) as raised:
        checkpoint.write_atomically(path, disk_full)
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(path))
    assert "No space left on device" in str(raised.value)
    assert _load(path).epoch == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_a_link_or_a_stale_file_at_the_temporary_name_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json.tmp").symlink_to(victim)  # was written through: victim overwritten
    (tmp_path / "run" / "history.csv.tmp").write_text("a killed run's")
    for name in ("metrics.json", "history.csv"):
        checkpoint.write_atomically(tmp_path / "run" / name, lambda file: file.write(b"new"))
    assert victim.read_text() == "precious"
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["history.csv", "metrics.json"]
    assert all(not path.is_symlink() and path.read_bytes() == b"new" for path in (tmp_path / "run").iterdir())


@pytest.mark.parametrize("mode", [0o600, 0o444, 0o640])
def test_a_file_written_again_keeps_its_permissions(tmp_path, mode):
    """The new file took the umask's 0644, so a checkpoint made private (0600) became readable by all when saved
    again, and a read-only one (0444) writable; a new file still gets the umask's mode."""
    path = tmp_path / "checkpoint.npz"
    _save(path, epoch=1)
    new_file_mode = stat.S_IMODE(path.stat().st_mode)
    path.chmod(mode)
    _save(path, epoch=2)
    assert stat.S_IMODE(path.stat().st_mode) == mode and _load(path).epoch == 2
    (tmp_path / "other.npz").symlink_to(path)  # a link is replaced by the file, which gets the new-file mode
    checkpoint.write_atomically(tmp_path / "other.npz", lambda file: file.write(b"new"))
    assert stat.S_IMODE((tmp_path / "other.npz").lstat().st_mode) == new_file_mode
    assert stat.S_IMODE(path.stat().st_mode) == mode


KILLED_WRITER = textwrap.dedent(
    """
    import io, sys, time
    sys.path.insert(0, {tests!r})
    from test_checkpoint import _save
    import jaxnn.checkpoint as checkpoint

    _save({path!r}, epoch=2)
    real_write_atomically = checkpoint.write_atomically

    def stalled(path, write):
        def write_half_and_hang(file):
            buffer = io.BytesIO()
            write(buffer)
            data = buffer.getvalue()
            file.write(data[: len(data) // 2])
            file.flush()
            print("half written", flush=True)
            time.sleep(120)

        real_write_atomically(path, write_half_and_hang)

    checkpoint.write_atomically = stalled
    _save({path!r}, epoch=9)
    """
)


def test_checkpoint_killed_mid_write_still_loads_the_previous_one(tmp_path):
    path = tmp_path / "checkpoint.npz"
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), path=str(path))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "half written"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    partial = tmp_path / "checkpoint.npz.tmp"
    assert partial.exists() and partial.stat().st_size > 0  # the torn write is there ...
    assert _load(path).epoch == 2  # ... but the checkpoint is the previous one, intact
    with pytest.raises(CheckpointError, match=r"checkpoint\.npz\.tmp is truncated or corrupt"):
        _load(partial)
    _save(path, epoch=4)  # the next save simply replaces the leftover
    assert _load(path).epoch == 4 and not partial.exists()


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    data = path.read_bytes()
    for cut in (0, 1, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=re.escape(f"{path} is truncated or corrupt")):
            _load(path)


def test_flipped_byte_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("params/0/W.npy")
    # the last byte of that member's stored data (an element of W), past its local header
    data[info.header_offset + 30 + len(info.filename) + info.compress_size - 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        _load(path)


def _rewrite(path, change_meta=None, change_arrays=None, *, forge_checksum=False):
    """Rewrite a checkpoint's entries, optionally editing its meta or arrays, without fixing the checksum (or, with
    ``forge_checksum``, with the digest of the edited arrays, as files written before the checksum covered the
    metadata carry it: only the other checks can tell)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    if change_meta:
        change_meta(meta)
    if change_arrays:
        change_arrays(arrays)
    if forge_checksum:
        meta["sha256"] = arrays_only_digest(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    path.write_bytes(buffer.getvalue())


def test_changed_values_fail_the_checksum(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)

    def nudge(arrays):
        arrays["params/1/b"] = arrays["params/1/b"] + np.float32(1e-3)

    _rewrite(path, change_arrays=nudge)
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        _load(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda meta: meta["config"].update(lr=0.5),  # a valid option, edited: it resumed with it
        lambda meta: meta.update(epoch=meta["epoch"] + 1),
        lambda meta: meta.update(key_impl="rbg"),
    ],
    ids=["config", "epoch", "key_impl"],
)
def test_edited_metadata_fails_the_checksum(tmp_path, edit):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    checkpoint.save(
        path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=2, history=[0.5, 0.25],
        config={"lr": 0.1},
    )  # fmt: skip
    _rewrite(path, change_meta=edit)
    with pytest.raises(CheckpointError, match="arrays or metadata do not match the checksum"):
        checkpoint.read_config(path)


def test_a_config_that_json_changes_still_matches_its_checksum(tmp_path):
    """Integer keys come back as strings and tuples as lists: the checksum covers the config as it is read."""
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    config = {"sizes": (4, 5), "by_epoch": {2: 0.5, 10: 0.25}}
    checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[], config=config)
    assert checkpoint.read_config(path) == {"sizes": [4, 5], "by_epoch": {"2": 0.5, "10": 0.25}, "epoch": 0}


def test_a_config_mixing_string_and_number_keys_is_saved_with_them_as_strings(tmp_path):
    """json.dumps(sort_keys=True) cannot order 2 beside "lr": save raised "'<' not supported between instances"."""
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    config = {"lr": 0.1, 2: (4, 5), None: {"b": 1, 3: 2}}
    checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[], config=config)
    assert checkpoint.read_config(path) == {"lr": 0.1, "2": [4, 5], "null": {"b": 1, "3": 2}, "epoch": 0}


def test_a_prng_key_in_the_optimiser_state_is_refused_naming_it(tmp_path):
    params, _ = _state()
    with pytest.raises(TypeError, match=r"^cannot save opt_state/noise: a PRNG key; .*jax.random.key_data"):
        checkpoint.save(
            tmp_path / "c.npz", params=params, opt_state={"noise": jax.random.key(1)}, key=jax.random.key(0),
            epoch=0, history=[],
        )  # fmt: skip
    with pytest.raises(TypeError, match=r"^cannot save extra 'k': a PRNG key; .*jax.random.key_data"):
        checkpoint.save(
            tmp_path / "c.npz", params=params, opt_state={}, key=jax.random.key(0), epoch=0, history=[],
            extras={"k": jax.random.key(1)},
        )  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_with_the_arrays_digest_alone_is_still_read(tmp_path):
    """Files written before the checksum covered the metadata carry the arrays' digest: they load as before."""
    path = tmp_path / "checkpoint.npz"
    _save(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "meta"}

    def arrays_digest_alone(meta):
        meta["sha256"] = arrays_only_digest(arrays)

    expected = _load(path)
    _rewrite(path, change_meta=arrays_digest_alone)
    assert_trees_equal(_load(path).params, expected.params)


@pytest.mark.parametrize("impl", ["rbg", "no such prng"])
def test_a_key_of_another_prng_is_refused_in_one_short_line(tmp_path, impl):
    """The message held JAX's repr of the PRNG, its functions' addresses included."""
    path = tmp_path / "checkpoint.npz"
    _save(path)
    _rewrite(path, change_meta=lambda meta: meta.update(key_impl=impl), forge_checksum=True)
    with pytest.raises(CheckpointError) as error:
        _load(path)
    message = str(error.value)
    assert message == (
        f"{path} holds an RNG key that cannot be restored: key data of shape (2,) for the PRNG {impl!r}, which JAX "
        "does not take; resume from another checkpoint"
    )


def _templates(model, optimizer):
    """Shapes and dtypes only (``jax.eval_shape``): nothing is computed or compiled."""
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), 4))
    return params, jax.eval_shape(optimizer.init, params)


def test_another_model_is_refused_with_the_difference(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    wider = jaxnn.Sequential((jaxnn.Dense(6, "relu"), jaxnn.Dense(3, "softmax")))
    params, opt_state = _templates(wider, OPTIMIZER)
    with pytest.raises(CheckpointError, match=r"params/0/W is float32\[4, 5\] in the file but float32\[4, 6\]"):
        checkpoint.load(path, params_like=params, opt_state_like=opt_state)
    deeper = jaxnn.Sequential((jaxnn.Dense(5, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params, opt_state = _templates(deeper, OPTIMIZER)
    with pytest.raises(CheckpointError, match=r"params entries differ.*params/2/W"):
        checkpoint.load(path, params_like=params, opt_state_like=opt_state)


def test_another_optimizer_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    params, opt_state = _templates(MODEL, optax.sgd(0.1))
    with pytest.raises(CheckpointError, match=r"opt_state entries differ.*opt_state/0/mu/0/W"):
        checkpoint.load(path, params_like=params, opt_state_like=opt_state)


def test_abstract_templates_load_the_same_arrays(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _save(path)
    loaded = checkpoint.load(path, params_like=params, opt_state_like=opt_state)
    params_like, opt_state_like = _templates(MODEL, OPTIMIZER)
    from_shapes = checkpoint.load(path, params_like=params_like, opt_state_like=opt_state_like)
    _assert_trees_equal(from_shapes.params, loaded.params)
    _assert_trees_equal(from_shapes.opt_state, loaded.opt_state)


def test_newer_format_version_is_named(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    _rewrite(path, change_meta=lambda meta: meta.update(version=2))
    with pytest.raises(CheckpointError, match="format version 2; this jaxnn reads version 1"):
        _load(path)


def test_a_version_of_true_is_not_version_1(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    _rewrite(path, change_meta=lambda meta: meta.update(version=True))
    with pytest.raises(CheckpointError, match="format version True; this jaxnn reads version 1"):
        _load(path)


def test_meta_nested_too_deep_for_json_is_unreadable_not_a_crash(tmp_path):
    path = tmp_path / "checkpoint.npz"
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    np.savez(path, meta=np.frombuffer(deep, np.uint8))
    with pytest.raises(CheckpointError, match="has an unreadable 'meta' entry"):
        _load(path)
    with pytest.raises(CheckpointError, match="has an unreadable 'meta' entry"):
        checkpoint.read_config(path)


def test_malformed_meta_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    _rewrite(path, change_meta=lambda meta: meta.update(epoch="three"))
    with pytest.raises(CheckpointError, match="'meta' entry lacks fields or has fields of the wrong type"):
        _load(path)


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        _load(tmp_path / "missing.npz")
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(NotACheckpoint, match=r"notes\.npz is not a jaxnn checkpoint \(it is not an \.npz/zip"):
        _load(text)
    single = tmp_path / "single.npz"
    with open(single, "wb") as file:
        np.save(file, np.zeros(3))
    with pytest.raises(NotACheckpoint, match=r"a single \.npy array"):
        _load(single)
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    with pytest.raises(NotACheckpoint, match="no 'meta' entry"):
        _load(plain)
    # both were "corrupt" (the entry names, or the sizes a compressed archive declares, were checked first)
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, weights=np.zeros(10_000))
    zipped_csv = tmp_path / "data.zip"
    with zipfile.ZipFile(zipped_csv, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    for other in (compressed, zipped_csv):
        with pytest.raises(NotACheckpoint, match=rf"{other.name} is not a jaxnn checkpoint \(no 'meta' entry\)"):
            _load(other)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_objects_are_refused_and_never_run(tmp_path):
    path = tmp_path / "checkpoint.npz"
    _save(path)
    marker = tmp_path / "code-ran"

    def smuggle(arrays):
        arrays["params/0/W"] = np.array([_Payload(marker)], dtype=object)

    _rewrite(path, change_arrays=smuggle)
    with pytest.raises(CheckpointError, match="allow_pickle=False"):
        _load(path)
    assert not marker.exists()


def test_save_refuses_a_config_that_is_not_json_and_writes_nothing(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    with pytest.raises(TypeError):
        checkpoint.save(
            path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[], config={"f": print}
        )
    assert not os.listdir(tmp_path)


def test_a_config_that_holds_itself_is_a_value_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    config = {"name": "run"}
    config["self"] = config
    with pytest.raises(ValueError, match="config holds itself"):
        checkpoint.save(
            path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[], config=config
        )
    assert not os.listdir(tmp_path)


def test_damaged_zip_structure_is_always_a_checkpoint_error(tmp_path):
    """Every single-bit flip in the archive's central directory either leaves the arrays intact or is
    reported as a CheckpointError (zipfile itself raises RuntimeError or NotImplementedError for some)."""
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _save(path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        last = max(archive.infolist(), key=lambda info: info.header_offset)
        directory_start = last.header_offset + 30 + len(last.filename) + last.compress_size
    for position in range(directory_start, len(data)):
        for bit in (0x01, 0x10, 0x80):
            damaged = bytearray(data)
            damaged[position] ^= bit
            path.write_bytes(bytes(damaged))
            try:
                loaded = _load(path)
            except CheckpointError:
                continue
            _assert_trees_equal(loaded.params, params)
            _assert_trees_equal(loaded.opt_state, opt_state)


def test_random_bytes_are_refused_without_advice_to_unpickle(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"\x80\x04" + bytes(range(256)) * 4)  # starts like a pickle
    with pytest.raises(NotACheckpoint, match="is not a jaxnn checkpoint") as error:
        _load(path)
    assert "allow_pickle=True" not in str(error.value) and "trust" not in str(error.value)


def _archive_with(path, **members: bytes):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)


def _npy_header(shape, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_forged_sizes_cannot_make_load_allocate_gigabytes(tmp_path):
    path = tmp_path / "checkpoint.npz"
    meta = _npy_header((2,), "|u1") + b"{}"
    # a 300-byte file whose header declares 80 GB of float64
    _archive_with(path, meta=meta, **{"params/0/W": _npy_header((10**10,))})
    with pytest.raises(CheckpointError, match="holds less data than its header says"):
        _load(path)
    # a compressed entry that would inflate to 100 MB
    _archive_with(path, meta=meta, **{"params/0/W": _npy_header((12_500_000,)) + bytes(100_000_000)})
    assert path.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match=r"declare \d+ bytes in a \d+-byte file"):
        _load(path)


def test_a_checkpoint_saved_again_compressed_is_called_compressed_not_corrupt(tmp_path):
    """Its arrays re-saved with np.savez_compressed, a good checkpoint was 'truncated or corrupt', with the advice
    to restore it from a copy; it is whole, in a form load does not read."""
    path = tmp_path / "checkpoint.npz"
    _save(path)
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    entries["params/0/W"] = np.zeros((100, 100), np.float32)  # room to compress
    np.savez_compressed(path, **entries)
    with pytest.raises(CheckpointError) as error:
        _load(path)
    assert "is a compressed archive (as np.savez_compressed writes)" in str(error.value)
    assert "jaxnn reads an archive only when its entries fit in its size" in str(error.value)
    assert "save its arrays again with np.savez (uncompressed, as jaxnn writes them)" in str(error.value)
    assert "corrupt" not in str(error.value)


def test_non_finite_parameters_are_neither_saved_nor_loaded(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    broken = jax.tree.map(lambda a: a.at[0].set(np.nan), params)
    with pytest.raises(ValueError, match=r"refusing to save parameters that hold NaN or infinity \(params/0/W"):
        checkpoint.save(path, params=broken, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[])
    assert not os.listdir(tmp_path)

    _save(path)

    def poison(arrays):  # NaN weights with a checksum that matches them: only the finiteness check can tell
        arrays["params/1/b"] = np.full_like(arrays["params/1/b"], np.inf)

    _rewrite(path, change_arrays=poison, forge_checksum=True)
    with pytest.raises(CheckpointError, match=r"parameters with NaN or infinity \(params/1/b\)"):
        _load(path)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"epoch": -1, "history": []}, ValueError, "epoch must be 0 or more"),
        ({"epoch": 1.7}, TypeError, "epoch must be a whole number"),
        ({"epoch": True}, TypeError, "epoch must be a whole number"),
        ({"epoch": 3, "history": [0.5]}, ValueError, r"a \(3,\) array of numbers; got float64\[1\]"),
        ({"epoch": 1, "history": [[0.5]]}, ValueError, r"got float64\[1, 1\]; for several networks' histories"),
        ({"epoch": 2, "history": np.zeros((3, 2))}, ValueError, r"float64\[3, 2\]; .*the table in extras="),
        ({"epoch": 1, "history": ["low"]}, ValueError, "array of numbers"),
        ({"key": 0}, TypeError, r"key must be a jax\.random key"),
        ({"params": [{"W": np.zeros(2), "b": "abc"}]}, TypeError, "cannot save params/0/b: .* numeric arrays only"),
        ({"params": {"a/b": np.zeros(2), "a": {"b": np.ones(2)}}}, ValueError, r"same name \(params/a/b\)"),
        ({"params": None}, ValueError, r"params holds no arrays \(got NoneType\)"),
        ({"params": []}, ValueError, r"params holds no arrays \(got list\)"),
    ],
)
def test_save_refuses_what_load_could_not_read_and_writes_nothing(tmp_path, change, error, message):
    params, opt_state = _state()
    arguments = {"params": params, "opt_state": opt_state, "key": jax.random.key(0), "epoch": 1, "history": [1.0]}
    with pytest.raises(error, match=message):
        checkpoint.save(tmp_path / "checkpoint.npz", **{**arguments, **change})
    assert not os.listdir(tmp_path)


def test_epoch_may_be_a_numpy_or_jax_integer(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    for epoch in (np.int64(2), jax.numpy.asarray(2)):
        checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=epoch, history=[1, 2])
        assert _load(path).epoch == 2


def test_bfloat16_parameters_round_trip(tmp_path):
    """NumPy stores bfloat16 as raw 2-byte records; load views them as bfloat16 again."""
    path = tmp_path / "checkpoint.npz"
    params = jaxnn.Sequential((jaxnn.Dense(3, "relu"),)).init(jax.random.key(0), 2, dtype=jax.numpy.bfloat16)
    checkpoint.save(path, params=params, opt_state=(), key=jax.random.key(0), epoch=0, history=[])
    loaded = checkpoint.load(path, params_like=params, opt_state_like=())
    _assert_trees_equal(loaded.params, params)
    assert loaded.params[0]["W"].dtype == jax.numpy.bfloat16


def test_extras_round_trip_and_are_covered_by_the_checksum(tmp_path):
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    extras = {"held_out_epochs": np.array([2, 4], np.int64), "held_out_losses": np.array([0.5, 0.25])}
    checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=2,
                    history=[1.0, 0.5], extras=extras)  # fmt: skip
    loaded = _load(path)
    assert sorted(loaded.extras) == sorted(extras)
    for name, array in extras.items():
        np.testing.assert_array_equal(loaded.extras[name], array)
        assert loaded.extras[name].dtype == array.dtype
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    entries["extras/held_out_losses"] = np.array([0.5, 0.125])  # a changed extra fails the checksum
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        _load(path)


def test_a_checkpoint_without_extras_loads_with_none(tmp_path):
    _save(tmp_path / "checkpoint.npz")
    assert _load(tmp_path / "checkpoint.npz").extras == {}


@pytest.mark.parametrize(
    ("extras", "error", "message"),
    [
        ({"a/b": np.zeros(2)}, ValueError, "an extra's name must be letters, digits"),
        ({"": np.zeros(2)}, ValueError, "an extra's name must be"),
        ({"notes": np.array(["text"])}, TypeError, "cannot save extra 'notes': a checkpoint holds numeric arrays"),
        ("losses", TypeError, "extras must be a dict of numeric arrays by name, got str"),  # was an AttributeError
    ],
)
def test_save_refuses_extras_load_could_not_read(tmp_path, extras, error, message):
    params, opt_state = _state()
    with pytest.raises(error, match=message):
        checkpoint.save(tmp_path / "c.npz", params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0,
                        history=[], extras=extras)  # fmt: skip
    assert not (tmp_path / "c.npz").exists()


def test_a_config_load_could_not_read_back_is_refused_before_writing(tmp_path):
    """A list was saved, then the file was 'corrupt' to load; an object failed inside json naming only its type."""
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    common = {"params": params, "opt_state": opt_state, "key": jax.random.key(0), "epoch": 0, "history": np.zeros(0)}
    with pytest.raises(TypeError, match="config must be a dict"):
        checkpoint.save(path, config=["lr", 0.1], **common)
    with pytest.raises(TypeError, match=r"config\['optimizer'\] is object, which a checkpoint's config cannot hold"):
        checkpoint.save(path, config={"optimizer": object()}, **common)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": {"units": (4, {"act": print})}}, r"config\['model'\]\['units'\]\[1\]\['act'\] is builtin_function"),
        (
            {"lrs": np.array([0.1, 0.2])},
            r"config\['lrs'\] is ndarray, .*store value\.tolist\(\), or pass it in extras=",
        ),
        ({"grid": {(1, 2): 0.5}}, r"config\['grid'\] has the key \(1, 2\) of type tuple"),
        ({1: "a", "1": "b"}, r"config has keys that JSON stores as the same string \('1', 1\)"),
    ],
)
def test_a_config_value_json_cannot_hold_is_named_where_it_is(tmp_path, config, message):
    """json's own error named only the type (``Object of type function is not JSON serializable``), and two keys
    that JSON writes alike (1 and "1") were both written and one silently lost on reading."""
    params, opt_state = _state()
    common = {"params": params, "opt_state": opt_state, "key": jax.random.key(0), "epoch": 0, "history": np.zeros(0)}
    with pytest.raises(TypeError, match=message):
        checkpoint.save(tmp_path / "checkpoint.npz", config=config, **common)
    assert not any(tmp_path.iterdir())


def test_numpy_scalars_in_a_config_read_back_as_python_values(tmp_path):
    """``np.float32(lr)`` or ``np.int64(seed)``, what NumPy code hands around, were refused as not JSON."""
    path = tmp_path / "checkpoint.npz"
    _, opt_state = _state()
    config = {"lr": np.float32(0.5), "seed": np.int64(3), "shuffle": np.bool_(True), "layers": (np.int32(4), None)}
    checkpoint.save(
        path, params=_state()[0], opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[], config=config
    )
    read = checkpoint.read_config(path)
    assert read == {"lr": 0.5, "seed": 3, "shuffle": True, "layers": [4, None], "epoch": 0}
    assert [type(read[name]) for name in ("lr", "seed", "shuffle")] == [float, int, bool]


def test_a_file_name_of_the_longest_length_is_written_and_a_longer_one_is_a_checkpoint_error(tmp_path):
    """``<name>.tmp`` of a 252-byte name passed the 255-byte limit: save failed with ENAMETOOLONG on a name the
    directory takes; load of a name over the limit raised a bare OSError, not the CheckpointError it promises."""
    params, opt_state = _state()
    path = tmp_path / ("c" * 251 + ".npz")
    checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[])
    assert os.listdir(tmp_path) == [path.name]
    assert checkpoint.load(path, params_like=params, opt_state_like=opt_state).epoch == 0
    with pytest.raises(CheckpointError, match=r"cannot read the checkpoint .*c{200}.*: File name too long"):
        checkpoint.load(tmp_path / ("c" * 300 + ".npz"), params_like=params, opt_state_like=opt_state)


def test_a_checkpoint_that_cannot_be_opened_is_not_called_corrupt(tmp_path, monkeypatch):
    """A file without read permission was reported as "truncated or corrupt"."""
    path = tmp_path / "checkpoint.npz"
    _save(path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(checkpoint, "open", denied, raising=False)  # root ignores chmod
    with pytest.raises(CheckpointError, match=r"cannot read the checkpoint .*checkpoint\.npz: Permission denied"):
        _load(path)


def test_a_directory_or_a_missing_directory_is_named_without_a_temporary_file(tmp_path):
    params, opt_state = _state()
    common = {"params": params, "opt_state": opt_state, "key": jax.random.key(0), "epoch": 0, "history": np.zeros(0)}
    with pytest.raises(IsADirectoryError, match=r"is a directory; pass a file path such as .*checkpoint\.npz"):
        checkpoint.save(tmp_path, **common)  # it failed in os.replace, naming the .tmp
    with pytest.raises(FileNotFoundError, match=r"the directory .*missing does not exist; create it first"):
        checkpoint.save(tmp_path / "missing" / "checkpoint.npz", **common)
    assert not any(tmp_path.iterdir()) and not tmp_path.with_name(tmp_path.name + ".tmp").exists()
    with pytest.raises(CheckpointError, match=r"is a directory; pass the checkpoint file in it"):
        checkpoint.load(tmp_path, params_like=params, opt_state_like=opt_state)  # it said "no checkpoint at"


def test_float64_parameters_loaded_for_float32_say_how_to_load_them(tmp_path):
    """The refusal named the dtypes but not what to do; the arrays are never cast silently."""
    path = tmp_path / "checkpoint.npz"
    params, _ = _state()
    wide = jax.tree.map(lambda leaf: np.asarray(leaf, np.float64), params)
    checkpoint.save(path, params=wide, opt_state=(), key=jax.random.key(0), epoch=0, history=[])
    with pytest.raises(CheckpointError, match=r"float64\[4, 5\] in the file but float32\[4, 5\] is expected; it was "):
        checkpoint.load(path, params_like=params, opt_state_like=())
    loaded = checkpoint.load(path, params_like=wide, opt_state_like=())
    _assert_trees_equal(loaded.params, wide)


def test_a_directory_at_the_temporary_name_is_named_and_kept(tmp_path):
    """unlink failed with a bare "[Errno 21] Is a directory", which jaxnn-train showed as "(Is a directory)"."""
    params, opt_state = _state()
    (tmp_path / "checkpoint.npz.tmp" / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=r"checkpoint\.npz\.tmp is a directory, where checkpoint\.npz is"):
        checkpoint.save(
            tmp_path / "checkpoint.npz", params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[]
        )
    assert (tmp_path / "checkpoint.npz.tmp" / "inside").is_dir() and not (tmp_path / "checkpoint.npz").exists()


def test_python_number_templates_load_and_a_config_epoch_is_refused(tmp_path):
    """save stored {"count": 3} as int64, but load with the same dict as template raised AttributeError; a
    config's own "epoch" was saved and then replaced by the checkpoint's in read_config."""
    path = tmp_path / "numbers.npz"
    params = [{"W": np.ones((2, 2), np.float32), "b": np.zeros(2, np.float32)}]
    state = {"count": 3, "rate": 0.1}
    checkpoint.save(path, params=params, opt_state=state, key=jax.random.key(0), epoch=0, history=[])
    loaded = checkpoint.load(path, params_like=params, opt_state_like=state)
    assert int(loaded.opt_state["count"]) == 3 and float(loaded.opt_state["rate"]) == 0.1
    with pytest.raises(ValueError, match=r"config must not hold 'epoch'"):
        checkpoint.save(
            tmp_path / "epoch.npz", params=params, opt_state=state, key=jax.random.key(0), epoch=0, history=[],
            config={"epoch": 500},
        )  # fmt: skip
    assert not (tmp_path / "epoch.npz").exists()


def test_an_optimiser_state_with_nan_is_neither_saved_nor_loaded(tmp_path):
    """A resumed run would diverge at its first step: save refuses such a state (writing nothing), and load refuses a
    file that holds one (forged here with a matching checksum; load took NaN moments before)."""
    path = tmp_path / "checkpoint.npz"
    params, opt_state = _state()
    broken = jax.tree.map(lambda a: a.at[0].set(np.nan) if np.issubdtype(a.dtype, np.floating) else a, opt_state)
    with pytest.raises(ValueError, match=r"refusing to save an optimiser state that holds NaN \(opt_state/0/mu"):
        checkpoint.save(path, params=params, opt_state=broken, key=jax.random.key(0), epoch=0, history=[])
    assert not os.listdir(tmp_path)

    def poison(arrays):
        arrays["opt_state/0/mu/0/W"] = np.full_like(arrays["opt_state/0/mu/0/W"], np.nan)

    _save(path)
    _rewrite(path, change_arrays=poison, forge_checksum=True)
    with pytest.raises(CheckpointError, match=r"optimiser state with NaN \(opt_state/0/mu.*\); refusing to load it"):
        _load(path)


def test_an_infinite_optimiser_state_is_loaded(tmp_path):
    """Infinity can be a state's own value: optax's reduce_on_plateau starts its best value at inf."""
    params = MODEL.init(jax.random.key(0), 4)
    optimizer = optax.chain(optax.adam(0.01), optax.contrib.reduce_on_plateau())
    opt_state = optimizer.init(params)
    assert np.isinf(opt_state[1].best_value)
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[])
    loaded = checkpoint.load(path, params_like=params, opt_state_like=opt_state)
    assert_trees_equal(loaded.opt_state, opt_state)


@pytest.mark.parametrize("path", [None, 3, b"checkpoint.npz"])
def test_a_path_that_is_not_a_str_or_path_is_a_type_error_naming_path(tmp_path, path):
    """Issue: pathlib's "expected str, bytes or os.PathLike object, not NoneType" named no argument."""
    params, opt_state = _state()
    with pytest.raises(TypeError, match=r"path must be a file path \(a str or pathlib\.Path\), got"):
        checkpoint.save(path, params=params, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[])
    with pytest.raises(TypeError, match=r"path must be a file path"):
        checkpoint.load(path, params_like=params, opt_state_like=opt_state)
    with pytest.raises(TypeError, match=r"path must be a file path"):
        checkpoint.read_config(path)


def _declared_size(path: Path, name: str, declared: int) -> None:
    """Rewrite the uncompressed size that entry ``name`` declares, in its local header and its central record."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    record = data.index(b"PK\x01\x02")
    while data[record + 46 : record + 46 + len(name)] != name.encode():
        record = data.index(b"PK\x01\x02", record + 4)
    struct.pack_into("<I", data, record + 24, declared)
    path.write_bytes(bytes(data))


def test_a_compressed_entry_that_inflates_past_its_declared_size_is_refused_without_inflating_it(tmp_path):
    """An entry declaring 1,000 bytes (so the archive passes the size rule) that inflates to 30 MB: zipfile's
    read() inflated all of it before its CRC check refused it (a 1 MB file took 2 GB).  Read to the declared size
    only, it is refused having allocated about that."""
    path = tmp_path / "checkpoint.npz"
    _save(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("extras/big.npy", bytes(30_000_000))
    _declared_size(path, "extras/big.npy", 1000)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            checkpoint.read_config(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak


def test_a_meta_entry_with_an_integer_too_long_to_read_is_a_checkpoint_error(tmp_path):
    """Python refuses integers of more than 4,300 digits with a bare ValueError (and advice to raise the limit)."""
    path = tmp_path / "checkpoint.npz"
    _save(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    text = arrays.pop("meta").tobytes().replace(b'"epoch": 3', b'"epoch": ' + b"9" * 5000)
    np.savez(path, meta=np.frombuffer(text, np.uint8), **arrays)
    with pytest.raises(CheckpointError, match=r"has an unreadable 'meta' entry \(an integer too long to read\)$"):
        checkpoint.read_config(path)


def test_a_damaged_meta_entry_name_is_corrupt_not_another_kind_of_file(tmp_path):
    """One flipped byte in the name 'meta.npy' said 'not a jaxnn checkpoint'; the file holds a checkpoint's params."""
    path = tmp_path / "checkpoint.npz"
    _save(path)
    path.write_bytes(path.read_bytes().replace(b"meta.npy", b"mexa.npy"))
    with pytest.raises(CheckpointError, match="is corrupt: it holds parameters but no 'meta' entry") as info:
        _load(path)
    assert not isinstance(info.value, NotACheckpoint)


def test_save_takes_one_key_and_load_reads_an_earlier_batch_of_keys(tmp_path):
    params, opt_state = _state()
    arguments = dict(params=params, opt_state=opt_state, epoch=0, history=[])
    with pytest.raises(ValueError, match=r"key must be one jax.random key \(the run's\), got \(3,\) of them"):
        checkpoint.save(tmp_path / "c.npz", key=jax.random.split(jax.random.key(0), 3), **arguments)
    assert not list(tmp_path.iterdir())
    path = tmp_path / "checkpoint.npz"
    _save(path)
    _rewrite(
        path,
        change_meta=lambda meta: meta["arrays"].update(key={"shape": [3, 2], "dtype": "uint32"}),
        change_arrays=lambda arrays: arrays.update(key=np.zeros((3, 2), np.uint32)),
        forge_checksum=True,
    )
    assert _load(path).key.shape == (3,)  # as an earlier jaxnn's save wrote a batch, and its load gave it back


def test_big_endian_arrays_are_saved_as_native_ones_and_load(tmp_path):
    """save took big-endian float32 weights, and load refused them: 'float32 in the file but float32 is expected'."""
    params, opt_state = _state()
    swapped = jax.tree.map(lambda a: np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">")), params)
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, params=swapped, opt_state=opt_state, key=jax.random.key(0), epoch=0, history=[])
    _assert_trees_equal(checkpoint.load(path, params_like=params, opt_state_like=opt_state).params, params)
