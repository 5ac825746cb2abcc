"""``jaxnn.compile_cache``: nothing on import; ``enable`` / ``enable_default``, once per process and never undone;
threads and a user's own setting; an unusable directory; the size bound.

JAX's cache settings and its cache object are process globals, so everything that switches the cache on
runs in a fresh interpreter (:func:`_run`), which prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from types import SimpleNamespace

import jax
import pytest

from jaxnn import compile_cache

MiB = 2**20


def _run(code: str, tmp_path, first: str = "", **env) -> dict:
    """Run ``code`` in a fresh interpreter (no JAX or jaxnn cache settings inherited, caches under
    ``tmp_path``), after ``first`` and the prelude that imports JAX; return the JSON object its last output line
    holds."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JAX_COMPILATION", "JAX_PERSISTENT_CACHE", "JAX_ENABLE_COMPILATION", "JAXNN_"))
    }
    clean.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu")
    prelude = textwrap.dedent(
        """
        import json, os, sys, warnings
        import jax, jax.numpy as jnp

        def compile_one(k):
            jax.jit(lambda x: x * k + 1.5)(jnp.ones(3)).block_until_ready()

        def entries(path):
            return sorted(os.listdir(path)) if os.path.isdir(path) else []

        def settings():
            return {name: getattr(jax.config, name) for name in (
                "jax_compilation_cache_dir", "jax_enable_compilation_cache",
                "jax_persistent_cache_min_compile_time_secs", "jax_compilation_cache_max_size")}
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(first) + prelude + textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


def _cached(names) -> list[str]:
    return [name for name in names if name.endswith("-cache")]


def test_importing_jaxnn_changes_no_jax_setting_and_caches_nothing(tmp_path):
    cache = tmp_path / "cache"
    seen = _run(
        """
        before = {name: repr(value) for name, value in jax.config.values.items()}
        import jaxnn
        after = {name: repr(value) for name, value in jax.config.values.items()}
        changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
        compile_one(3)
        print(json.dumps({"changed": changed, "dir": jax.config.jax_compilation_cache_dir}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
    )
    assert seen["changed"] == []
    assert seen["dir"] is None
    assert not cache.exists() and not (tmp_path / "xdg").exists()


def test_enable_default_caches_in_a_private_bounded_directory(tmp_path):
    cache = tmp_path / "cache"
    seen = _run(
        """
        from jaxnn import compile_cache
        path = compile_cache.enable_default()
        again = compile_cache.enable_default()  # an entry point called twice: same directory, nothing redone
        compile_one(3)
        print(json.dumps({"path": str(path), "again": str(again), "settings": settings(),
                          "entries": entries(str(path))}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
    )
    assert seen["path"] == seen["again"] == str(cache)
    assert seen["settings"] == {
        "jax_compilation_cache_dir": str(cache),
        "jax_enable_compilation_cache": True,
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_compilation_cache_max_size": -1,  # JAX's own bound lists the whole directory on every write
    }
    assert cache.stat().st_mode & 0o777 == 0o700  # JAX trusts what it loads from here: nobody else may write
    assert _cached(seen["entries"]) and ".jaxnn-checked" in seen["entries"]
    assert not any(name.endswith("-atime") or name == ".lockfile" for name in seen["entries"])  # no per-write stamps


def test_the_default_directory_follows_xdg_cache_home(tmp_path):
    seen = _run(
        "from jaxnn import compile_cache; print(json.dumps({'path': str(compile_cache.enable_default())}))",
        tmp_path,
    )
    assert seen["path"] == str(tmp_path / "xdg" / "jaxnn" / "xla")


@pytest.mark.parametrize(
    ("env", "expected_dir"),
    [
        ({"JAXNN_COMPILE_CACHE": "0"}, None),
        ({"JAXNN_COMPILE_CACHE": "off"}, None),
        ({"JAX_COMPILATION_CACHE_DIR": "{own}"}, "{own}"),
        ({"JAX_ENABLE_COMPILATION_CACHE": "false"}, None),
        ({"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "5"}, None),  # the user's threshold is not set to 0
        ({"JAX_COMPILATION_CACHE_MAX_SIZE": "1000000"}, None),  # nor the user's bound to jaxnn's
    ],
)
def test_enable_default_respects_the_opt_out_and_a_users_own_cache(tmp_path, env, expected_dir):
    cache, own = tmp_path / "cache", str(tmp_path / "own")
    env = {name: value.format(own=own) for name, value in env.items()}
    seen = _run(
        """
        from jaxnn import compile_cache
        before = settings()
        path = compile_cache.enable_default()
        print(json.dumps({"path": path, "unchanged": before == settings(),
                          "dir": jax.config.jax_compilation_cache_dir}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
        **env,
    )
    assert seen["path"] is None and seen["unchanged"]
    assert seen["dir"] == (expected_dir.format(own=own) if expected_dir else None)
    assert not cache.exists()


def test_enable_is_the_explicit_switch_whatever_the_environment_says(tmp_path):
    cache = tmp_path / "explicit"
    seen = _run(
        f"""
        from jaxnn import compile_cache
        path = compile_cache.enable({str(cache)!r}, max_bytes=-1)
        compile_one(4)
        print(json.dumps({{"path": str(path), "settings": settings(), "entries": entries(str(path))}}))
        """,
        tmp_path,
        JAXNN_COMPILE_CACHE="0",
    )
    assert seen["path"] == str(cache)
    assert seen["settings"]["jax_compilation_cache_max_size"] == -1
    assert _cached(seen["entries"]) and not any(name.endswith("-atime") for name in seen["entries"])  # unbounded


def test_once_on_the_cache_stays_on_and_a_users_later_setting_stands(tmp_path):
    cache, own = tmp_path / "cache", tmp_path / "own"
    seen = _run(
        f"""
        from jaxnn import compile_cache
        compile_one(1)  # JAX has compiled (and decided about its cache) before jaxnn turns it on
        path = compile_cache.enable_default()
        compile_one(2)
        on = settings()
        jax.config.update("jax_compilation_cache_dir", {str(own)!r})  # the user's own choice, later
        again = compile_cache.enable_default()  # the next fit: leaves the user's setting alone
        print(json.dumps({{"path": str(path), "on": on, "again": again, "after": settings(),
                          "entries": entries(str(path))}}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
    )
    assert seen["path"] == seen["on"]["jax_compilation_cache_dir"] == str(cache)
    assert _cached(seen["entries"])  # compiled after enable_default, in a process that had compiled before
    assert seen["again"] is None
    assert seen["after"] == seen["on"] | {"jax_compilation_cache_dir": str(own)}


def test_threads_fitting_while_another_sets_the_cache_leave_the_users_setting_in_force(tmp_path):
    """Two threads fit estimators one after another (each fit an entry point that may turn jaxnn's cache on) while
    a third switches JAX's cache to the user's own directory in the middle of their fits: afterwards the user's
    directory is the one in force, and no fit failed."""
    cache, own = tmp_path / "cache", tmp_path / "own"
    seen = _run(
        f"""
        import threading, time
        import numpy as np
        from jaxnn import NeuralNetClassifier

        rng = np.random.default_rng(0)
        x = rng.normal(size=(60, 3)).astype(np.float32)
        y = (x[:, 0] > 0).astype(int)
        errors, fits_done = [], []

        def fits(seed, stop):
            try:
                while not stop.is_set():
                    model = NeuralNetClassifier((4,), solver="sgd", max_iter=3, random_state=seed)
                    model.fit(x, y).predict(x)
                    fits_done.append(seed)
            except Exception as error:
                errors.append(repr(error))

        settings_seen = []
        for pause in (0.05, 0.2, 0.4):
            stop = threading.Event()
            threads = [threading.Thread(target=fits, args=(seed, stop)) for seed in (0, 1)]
            for thread in threads:
                thread.start()
            while len(set(fits_done)) < 2:  # both threads are fitting
                time.sleep(0.01)
            time.sleep(pause)
            jax.config.update("jax_compilation_cache_dir", {str(own)!r})  # the user's choice, mid-fits
            before = len(fits_done)
            time.sleep(0.3)
            stop.set()
            for thread in threads:
                thread.join()
            settings_seen.append((jax.config.jax_compilation_cache_dir, len(fits_done) > before))
            jax.config.update("jax_compilation_cache_dir", None)  # the next round starts from JAX's default
            fits_done.clear()
        print(json.dumps({{"seen": settings_seen, "errors": errors}}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
    )
    assert seen["errors"] == []
    assert seen["seen"] == [[str(own), True]] * 3  # fits went on after the change, and the change stands


def test_a_directory_that_cannot_be_written_leaves_the_cache_off_with_one_warning(tmp_path):
    """``/proc`` exists but takes no file, even from root: JAX would warn at every compilation it tries to write."""
    seen = _run(
        """
        import numpy as np
        from jaxnn import NeuralNetClassifier
        x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for hidden in (3, 4, 5):
                NeuralNetClassifier((hidden,), max_iter=2, random_state=0).fit(x, (x[:, 0] > 0).astype(int)).predict(x)
        print(json.dumps({"warnings": [str(w.message) for w in caught if "cache" in str(w.message).lower()],
                          "dir": jax.config.jax_compilation_cache_dir}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR="/proc",
    )
    assert seen["dir"] is None
    assert len(seen["warnings"]) == 1, seen["warnings"]
    assert "compilation cache stays off" in seen["warnings"][0] and "/proc cannot be written" in seen["warnings"][0]
    assert "persistent compilation cache" not in seen["stderr"].lower()  # nothing from JAX's cache either


def _fill(cache, tmp_path, ks) -> list[str]:
    """The entries of ``cache`` after a process compiled one program per ``k`` with the cache on, unbounded."""
    code = f"""
        from jaxnn import compile_cache
        compile_cache.enable({str(cache)!r}, max_bytes=-1)
        for k in {tuple(ks)!r}:
            compile_one(k)
        print(json.dumps({{"entries": entries({str(cache)!r})}}))
        """
    return _cached(_run(code, tmp_path)["entries"])


def _enable_bounded(cache, tmp_path, max_bytes: int, ks=()) -> dict:
    """What a process that enables ``cache`` with ``max_bytes`` and then compiles a program per ``k`` sees."""
    code = f"""
        from jaxnn import compile_cache
        compile_cache.enable({str(cache)!r}, max_bytes={max_bytes})
        after_enable = entries({str(cache)!r})
        for k in {tuple(ks)!r}:
            compile_one(k)
        print(json.dumps({{"after_enable": after_enable, "at_exit": entries({str(cache)!r})}}))
        """
    return _run(code, tmp_path)


def test_the_bound_deletes_the_least_recently_used_entries_when_a_process_enables_the_cache(tmp_path):
    cache = tmp_path / "cache"
    names = sorted(_fill(cache, tmp_path, range(10, 16)))
    assert len(names) >= 6
    # Last use is the later of an entry's access and modification times.  Kept within the bound: one written
    # first and read last, one written late and never read since, one written and read late.
    day = 86_400 * 10**9
    start = 1_000 * day
    read_last, written_late, both_late, *others = names
    times = {read_last: (start + 9 * day, start), written_late: (start, start + 8 * day)}
    times[both_late] = (start + 7 * day, start + 7 * day)
    times.update({name: (start + (i + 1) * day, start + (i + 1) * day) for i, name in enumerate(others)})
    for name, (accessed, modified) in times.items():
        os.utime(cache / name, ns=(accessed, modified))
    bound = sum((cache / name).stat().st_size for name in (read_last, written_late, both_late))
    seen = _enable_bounded(cache, tmp_path, bound, ks=(20, 21))
    assert sorted(_cached(seen["after_enable"])) == sorted([read_last, written_late, both_late])
    # the process's own programs are added on top; the next process that enables the cache cuts back again
    grown = _cached(seen["at_exit"])
    assert len(grown) > 3 and sum((cache / name).stat().st_size for name in grown) > bound
    again = _enable_bounded(cache, tmp_path, bound)
    assert 0 < sum((cache / name).stat().st_size for name in _cached(again["after_enable"])) <= bound
    assert "persistent compilation cache" not in seen["stderr"].lower() + again["stderr"].lower()


def test_without_a_bound_every_whole_entry_stays_and_reading_them_does_not_count_as_use(tmp_path):
    cache = tmp_path / "cache"
    names = _fill(cache, tmp_path, (1, 2, 3))
    # dated after the last look, so that this process reads each of them; under relatime a plain read of a file
    # whose access time is not after its modification time would move the access time to now
    looked = (cache / ".jaxnn-checked").stat().st_mtime_ns
    dated = looked + 10 * 10**9
    for name in names:
        os.utime(cache / name, ns=(dated, dated))
    (cache / "jit_empty-0123-cache").write_bytes(b"")  # cut short: goes whatever the bound
    seen = _enable_bounded(cache, tmp_path, -1)
    assert sorted(_cached(seen["after_enable"])) == sorted(names)
    assert all((cache / name).stat().st_atime_ns == dated for name in names)


def test_one_entry_that_cannot_be_deleted_does_not_stop_the_bound(tmp_path):
    cache = tmp_path / "cache"
    names = sorted(_fill(cache, tmp_path, (1, 2, 3, 4)))
    stuck = names[0]
    first = f"""
        import pathlib
        unlink = pathlib.Path.unlink
        def refusing(self, missing_ok=False):  # as Windows refuses to delete a file another process has open
            if self.name == {stuck!r}:
                raise PermissionError(13, "Permission denied", str(self))
            return unlink(self, missing_ok=missing_ok)
        pathlib.Path.unlink = refusing
        """
    code = f"""
        from jaxnn import compile_cache
        compile_cache.enable({str(cache)!r}, max_bytes=1)
        print(json.dumps({{"entries": entries({str(cache)!r})}}))
        """
    assert _cached(_run(code, tmp_path, first=first)["entries"]) == [stuck]


def test_a_last_look_that_cannot_be_recorded_does_not_stop_the_bound(tmp_path):
    cache = tmp_path / "cache"
    _fill(cache, tmp_path, (1, 2))
    (cache / ".jaxnn-checked").unlink()
    (cache / ".jaxnn-checked").mkdir()  # not a file: the pass cannot be dated, and the entries are read every time
    assert _cached(_enable_bounded(cache, tmp_path, 1)["after_enable"]) == []


def test_a_look_cut_short_leaves_the_entries_it_did_not_reach_to_the_next_one(tmp_path):
    """.jaxnn-checked is dated only after a whole pass: a pass that fails half-way (here the directory listing)
    must not count the entries it never read as looked at."""
    cache = tmp_path / "cache"
    halved = next(name for name in _fill(cache, tmp_path, (5, 6)) if "lambda" in name)
    checked = cache / ".jaxnn-checked"
    looked = checked.stat().st_mtime_ns - 100 * 10**9
    os.utime(checked, ns=(looked, looked))
    data = (cache / halved).read_bytes()
    (cache / halved).write_bytes(data[: len(data) // 2])
    written = looked + 50 * 10**9
    os.utime(cache / halved, ns=(written, written))
    first = """
        import os
        scandir = os.scandir
        class Failing:  # a listing that fails after its first entry
            def __init__(self, path):
                self.listing = scandir(path)
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                self.listing.close()
            def __iter__(self):
                for n, item in enumerate(self.listing):
                    if n == 1:
                        raise OSError(5, "Input/output error")
                    yield item
        os.scandir = Failing
        """
    code = f"""
        from jaxnn import compile_cache
        compile_cache.enable({str(cache)!r})
        print(json.dumps({{"entries": entries({str(cache)!r})}}))
        """
    _run(code, tmp_path, first=first)
    assert checked.stat().st_mtime_ns == looked
    assert halved not in _run(code, tmp_path)["entries"]


def test_a_last_look_dated_in_the_future_is_not_trusted(tmp_path):
    cache = tmp_path / "cache"
    halved = next(name for name in _fill(cache, tmp_path, (5, 6)) if "lambda" in name)
    ahead = (cache / ".jaxnn-checked").stat().st_mtime_ns + 86_400 * 10**9  # the clock was a day ahead then
    os.utime(cache / ".jaxnn-checked", ns=(ahead, ahead))
    data = (cache / halved).read_bytes()
    (cache / halved).write_bytes(data[: len(data) // 2])
    assert halved not in _enable_bounded(cache, tmp_path, -1)["after_enable"]


def test_an_older_jaxnns_stamps_leave_with_their_entries_and_no_new_ones_are_written(tmp_path):
    """Older jaxnn versions bounded the directory with JAX's own bound, which keeps "<key>-atime" stamps and a
    ".lockfile"; entries deleted now take their stamps with them, and writes add none."""
    cache = tmp_path / "cache"
    names = _fill(cache, tmp_path, (1, 2, 3))
    for name in names:
        (cache / name.replace("-cache", "-atime")).write_bytes((1).to_bytes(8, "little"))
    (cache / ".lockfile").write_bytes(b"")
    seen = _enable_bounded(cache, tmp_path, 1, ks=(4,))  # a bound no entry fits in: every entry goes
    assert seen["after_enable"] == [".jaxnn-checked", ".lockfile"]
    assert _cached(seen["at_exit"]) and not any(name.endswith("-atime") for name in seen["at_exit"])
    assert "persistent compilation cache" not in seen["stderr"].lower()


def test_a_bound_needs_no_filelock(tmp_path):
    seen = _run(
        """
        from jaxnn import compile_cache
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = compile_cache.enable_default()
        compile_one(5)
        compile_one(6)
        print(json.dumps({"path": str(path), "entries": entries(str(path)),
                          "warnings": [str(w.message) for w in caught]}))
        """,
        tmp_path,
        first='import sys; sys.modules["filelock"] = None  # as if the package were not installed (JAX imports it)',
        JAXNN_CACHE_DIR=str(tmp_path / "cache"),
    )
    assert seen["path"] == str(tmp_path / "cache") and len(_cached(seen["entries"])) >= 2 and not seen["warnings"]
    assert "persistent compilation cache" not in seen["stderr"].lower()


def test_max_bytes_comes_from_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv("JAXNN_CACHE_MAX_BYTES", raising=False)
    assert compile_cache.default_max_bytes() == compile_cache.DEFAULT_MAX_BYTES == 256 * MiB
    for text, value in (("1000", 1000), (" 1048576 ", MiB), ("-1", -1)):
        monkeypatch.setenv("JAXNN_CACHE_MAX_BYTES", text)
        assert compile_cache.default_max_bytes() == value
    for text in ("0", "-2", "1.5", "256MiB", "lots"):
        monkeypatch.setenv("JAXNN_CACHE_MAX_BYTES", text)
        with pytest.raises(ValueError, match=r"JAXNN_CACHE_MAX_BYTES must be a whole number of bytes"):
            compile_cache.default_max_bytes()


def test_an_opt_out_value_that_is_neither_on_nor_off_is_refused(monkeypatch):
    """JAXNN_COMPILE_CACHE=disabled left the cache on in silence (only 0, false, off and no switched it off)."""
    for text in ("disabled", "nope", "2"):
        monkeypatch.setenv("JAXNN_COMPILE_CACHE", text)
        with pytest.raises(ValueError, match=rf"JAXNN_COMPILE_CACHE must be 0, false, off or no .*got '{text}'"):
            compile_cache.enable_default()
    monkeypatch.setenv("JAXNN_COMPILE_CACHE", " OFF ")
    assert compile_cache.enable_default() is None


def test_an_opt_out_set_but_empty_is_unset_as_the_other_variables(tmp_path):
    """JAXNN_COMPILE_CACHE= failed every fit (and an unpickled model's predict) with a ValueError, where an empty
    JAXNN_CACHE_DIR or JAXNN_CACHE_MAX_BYTES means the default."""
    code = "from jaxnn import compile_cache\nprint(json.dumps({'on': compile_cache.enable_default() is not None}))"
    assert _run(code, tmp_path, JAXNN_COMPILE_CACHE="", JAXNN_CACHE_DIR=str(tmp_path / "cache"))["on"]


def test_a_full_file_system_is_tidied_before_it_is_refused(tmp_path, monkeypatch):
    """With under 1 MiB free the cache was refused before the bound and the clean-up ran: when its own entries had
    filled the disk, it stayed full (and its cut-short entries stayed) whatever JAXNN_CACHE_MAX_BYTES said."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "empty-cache").write_bytes(b"")
    for name in ("a", "b", "c"):
        (cache / f"{name}-cache").write_bytes(zlib.compress(os.urandom(40_000)))
    monkeypatch.setattr(compile_cache.os, "statvfs", lambda path: SimpleNamespace(f_bavail=3, f_frsize=4096))
    before = jax.config.jax_compilation_cache_dir
    with pytest.raises(OSError, match=r"No space left on device: 12 KiB free"):
        compile_cache.enable(cache, max_bytes=50_000)
    assert jax.config.jax_compilation_cache_dir == before
    left = _cached(os.listdir(cache))
    assert "empty-cache" not in left and sum((cache / name).stat().st_size for name in left) <= 50_000


def test_an_entry_no_zstd_decoder_can_check_is_left_for_one_that_can(tmp_path, monkeypatch):
    """An environment without zstandard counted a cut-short zstd entry as whole and dated its last look past it, so
    no later process checked it again: every one warned and compiled the program anew."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "cut-cache").write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(64))  # zstd's magic, then not a frame
    monkeypatch.setattr(compile_cache, "_zstd_decoder", lambda: None)
    compile_cache._tidy(cache, -1)
    assert (cache / "cut-cache").exists()  # kept, and the last look dated no later than it
    assert (cache / ".jaxnn-checked").stat().st_mtime_ns <= (cache / "cut-cache").stat().st_mtime_ns
    monkeypatch.undo()
    if compile_cache._zstd_decoder() is None:
        pytest.skip("zstandard is not installed here")
    compile_cache._tidy(cache, -1)
    assert not (cache / "cut-cache").exists() and (cache / ".jaxnn-checked").exists()


@pytest.mark.parametrize(
    ("bad", "error"),
    # a type other than int was a ValueError as a value out of range is
    [(0, ValueError), (-5, ValueError), (1.5, TypeError), (5.0, TypeError), (True, TypeError), ("256", TypeError)],
)
def test_a_bad_max_bytes_is_refused_before_any_setting_changes(tmp_path, bad, error):
    import jax

    before = dict(jax.config.values)
    with pytest.raises(error, match="max_bytes must be a whole number of bytes") as caught:
        compile_cache.enable(tmp_path / "never", max_bytes=bad)
    assert type(caught.value) is error
    assert dict(jax.config.values) == before
    assert not (tmp_path / "never").exists()


def test_clear_empties_the_directory_and_keeps_it(tmp_path):
    (tmp_path / "jit_f-abc-cache").write_bytes(b"cut short")
    (tmp_path / "jit_f-abc-atime").write_bytes(b"\0" * 8)
    (tmp_path / ".lockfile").write_bytes(b"")
    (tmp_path / ".jaxnn-checked").write_bytes(b"")
    # XLA's own caches, which JAX keeps in the same directory on GPUs (jax_persistent_cache_enable_xla_caches)
    (tmp_path / "xla_gpu_per_fusion_autotune_cache_dir").mkdir()
    (tmp_path / "xla_gpu_per_fusion_autotune_cache_dir" / "fusion.textproto").write_text("autotuned")
    (tmp_path / "xla_gpu_kernel_cache_file").write_bytes(b"kernels")
    compile_cache.clear(tmp_path)
    assert tmp_path.is_dir() and not any(tmp_path.iterdir())
    compile_cache.clear(tmp_path / "missing")  # nothing there: nothing to do


def test_clear_refuses_a_directory_that_is_not_a_cache_and_deletes_nothing(tmp_path):
    (tmp_path / "jit_f-abc-cache").write_bytes(b"entry")
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "nested").mkdir()
    with pytest.raises(ValueError, match=r"is not a compilation cache \(it holds nested, thesis.tex\).*delete"):
        compile_cache.clear(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jit_f-abc-cache", "nested", "thesis.tex"]


@pytest.mark.parametrize("call", [compile_cache.clear, compile_cache.enable])
def test_an_empty_directory_name_is_refused_not_read_as_the_working_directory(tmp_path, monkeypatch, call):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jit_f-abc-cache").write_bytes(b"entry")
    with pytest.raises(ValueError, match="directory must name a directory, got ''; leave it None"):
        call("")
    with pytest.raises(TypeError, match="directory must be a path"):
        call(3)
    assert [p.name for p in tmp_path.iterdir()] == ["jit_f-abc-cache"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(("mode", "who"), [(0o777, "its group and others"), (0o770, "its group"), (0o703, "others")])
def test_a_directory_others_may_write_to_is_refused_and_left_as_it_is(tmp_path, mode, who):
    """JAX runs what it loads from the cache: a directory someone else may write to would let them run code here."""
    import jax

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    before = dict(jax.config.values)
    with pytest.raises(PermissionError, match=rf"{shared} is writable by {who} \(mode {mode:o}\).*chmod 700"):
        compile_cache.enable(shared)
    assert dict(jax.config.values) == before
    assert shared.stat().st_mode & 0o777 == mode and not any(shared.iterdir())


@pytest.mark.parametrize("how", ["enable", "JAXNN_CACHE_DIR"])
def test_a_relative_directory_is_the_one_under_the_working_directory_of_the_call(tmp_path, how):
    """JAX reads its directory at each compilation: a relative one followed a later chdir to an unchecked one."""
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    call = "compile_cache.enable('rel')" if how == "enable" else "compile_cache.enable_default()"
    seen = _run(
        f"""
        from jaxnn import compile_cache
        os.chdir({str(tmp_path / "work")!r})
        path = {call}
        os.chdir({str(tmp_path / "elsewhere")!r})
        compile_one(5)
        print(json.dumps({{"path": str(path), "dir": jax.config.jax_compilation_cache_dir}}))
        """,
        tmp_path,
        **({"JAXNN_CACHE_DIR": "rel"} if how == "JAXNN_CACHE_DIR" else {}),
    )
    expected = tmp_path / "work" / "rel"
    assert seen["path"] == seen["dir"] == str(expected)
    assert _cached(os.listdir(expected)) and not (tmp_path / "elsewhere" / "rel").exists()


def test_a_path_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(OSError, match=r"notes cannot be written \(it is a file, not a directory\)"):
        compile_cache.enable(tmp_path / "notes")
    assert (tmp_path / "notes").read_text() == "mine"
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")  # was "(File exists)"
    with pytest.raises(OSError, match=r"dangling cannot be written \(it is a symbolic link to nothing\)"):
        compile_cache.enable(tmp_path / "dangling")


def test_a_full_file_system_leaves_the_cache_off_before_any_setting_changes(tmp_path, monkeypatch):
    """An empty file fits on a full disk, so the write test passed and JAX then warned at every compilation (each
    entry it began left cut short, warned about in every later process)."""
    full = SimpleNamespace(f_bavail=3, f_frsize=4096)
    monkeypatch.setattr(compile_cache.os, "statvfs", lambda path: full, raising=False)
    before = jax.config.jax_compilation_cache_dir
    with pytest.raises(
        OSError, match=r"cache\S* cannot be written \(No space left on device: 12 KiB free, 1 MiB needed\)"
    ):
        compile_cache.enable(tmp_path / "cache")
    assert jax.config.jax_compilation_cache_dir == before


def test_an_entry_cut_short_is_deleted_and_written_again(tmp_path):
    """A full disk or a killed process leaves "<key>-cache" cut short; JAX never rewrites an entry that exists, so
    every later process warned and compiled it again.  The next process that enables the cache deletes it: one cut
    short since a process last looked, or an empty one whenever it was written."""
    cache = tmp_path / "cache"
    seen = _enable_bounded(cache, tmp_path, 10 * MiB, ks=(7, 8))
    halved, emptied = sorted(name for name in _cached(seen["at_exit"]) if "lambda" in name)
    whole = {name: (cache / name).read_bytes() for name in (halved, emptied)}
    (cache / halved).write_bytes(whole[halved][: len(whole[halved]) // 2])
    (cache / emptied).write_bytes(b"")
    old = (cache / ".jaxnn-checked").stat().st_mtime_ns - 3600 * 10**9  # written long before a process looked
    os.utime(cache / emptied, ns=(old, old))
    again = _enable_bounded(cache, tmp_path, 10 * MiB, ks=(7, 8))
    assert "Error reading persistent compilation cache" not in again["stderr"], again["stderr"]
    assert all((cache / name).read_bytes() == whole[name] for name in (halved, emptied))
