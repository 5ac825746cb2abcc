"""``jaxnn.compile_cache``: nothing on import; ``enable`` / ``enable_default`` / ``scoped``; the size bound.

JAX's cache settings and its cache object are process globals, so everything that switches the cache on
runs in a fresh interpreter (:func:`_run`), which prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from jaxnn import compile_cache

MiB = 2**20


def _run(code: str, tmp_path, **env) -> dict:
    """Run ``code`` in a fresh interpreter (no JAX or jaxnn cache settings inherited, caches under
    ``tmp_path``); return the JSON object its last output line holds."""
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
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
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
        "jax_compilation_cache_max_size": compile_cache.DEFAULT_MAX_BYTES,
    }
    assert cache.stat().st_mode & 0o777 == 0o700  # JAX trusts what it loads from here: nobody else may write
    cached = _cached(seen["entries"])
    assert cached and all(name[: -len("-cache")] + "-atime" in seen["entries"] for name in cached)  # LRU stamps


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
    ],
)
def test_enable_default_and_scoped_respect_the_opt_out_and_a_users_own_cache(tmp_path, env, expected_dir):
    cache, own = tmp_path / "cache", str(tmp_path / "own")
    env = {name: value.format(own=own) for name, value in env.items()}
    seen = _run(
        """
        from jaxnn import compile_cache
        before = settings()
        with compile_cache.scoped() as scoped_path:
            inside = settings()
        path = compile_cache.enable_default()
        print(json.dumps({"path": path, "scoped": scoped_path, "unchanged": before == inside == settings(),
                          "dir": jax.config.jax_compilation_cache_dir}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
        **env,
    )
    assert seen["path"] is None and seen["scoped"] is None and seen["unchanged"]
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


def test_scoped_caches_inside_the_block_only_and_restores_every_setting(tmp_path):
    cache = tmp_path / "cache"
    seen = _run(
        """
        from jaxnn import compile_cache
        compile_one(1)  # JAX has compiled (and decided about its cache) before the scope
        before = {name: repr(value) for name, value in jax.config.values.items()}
        with compile_cache.scoped() as path:
            inside = settings()
            compile_one(2)
            with compile_cache.scoped() as nested:
                compile_one(3)
            still_on = settings() == inside
        in_scope = entries(str(path))
        compile_one(4)  # after the block: not written
        after = {name: repr(value) for name, value in jax.config.values.items()}
        changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
        # Overlapping (not nested) scopes, as two threads would have them: on until the last one ends.
        first, second = compile_cache.scoped(), compile_cache.scoped()
        first.__enter__(); second.__enter__(); first.__exit__(None, None, None)
        overlapping_on = jax.config.jax_compilation_cache_dir == str(path)
        second.__exit__(None, None, None)
        print(json.dumps({"path": str(path), "nested": str(nested), "inside": inside, "still_on": still_on,
                          "in_scope": in_scope, "after_scope": entries(str(path)), "changed": changed,
                          "overlapping_on": overlapping_on, "dir": jax.config.jax_compilation_cache_dir}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
    )
    assert seen["path"] == seen["nested"] == str(cache)
    assert seen["inside"]["jax_compilation_cache_dir"] == str(cache)
    assert seen["inside"]["jax_persistent_cache_min_compile_time_secs"] == 0.0
    assert seen["still_on"] and seen["overlapping_on"]
    assert len(_cached(seen["in_scope"])) >= 2  # the two lambdas compiled inside (and their helpers)
    assert seen["after_scope"] == seen["in_scope"]
    assert seen["changed"] == [] and seen["dir"] is None


def test_a_scope_inside_an_enabled_cache_leaves_it_on(tmp_path):
    cache = tmp_path / "cache"
    seen = _run(
        """
        from jaxnn import compile_cache
        with compile_cache.scoped() as scoped_path:
            promoted = compile_cache.enable_default()  # an entry point inside a scope: on for good
        after_promotion = jax.config.jax_compilation_cache_dir
        with compile_cache.scoped() as inner:
            pass
        print(json.dumps({"scoped": str(scoped_path), "promoted": str(promoted), "inner": str(inner),
                          "after_promotion": after_promotion, "dir": jax.config.jax_compilation_cache_dir}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(cache),
    )
    assert seen["scoped"] == seen["promoted"] == seen["inner"] == str(cache)
    assert seen["after_promotion"] == seen["dir"] == str(cache)


def test_the_bound_evicts_least_recently_used_entries(tmp_path):
    cache = tmp_path / "cache"
    seen = _run(
        f"""
        from jaxnn import compile_cache
        compile_cache.enable({str(cache)!r}, max_bytes=8000)  # about three entries of this size
        for k in range(6):
            compile_one(k + 10)
        sizes = {{name: os.path.getsize(os.path.join({str(cache)!r}, name)) for name in entries({str(cache)!r})}}
        print(json.dumps({{"sizes": sizes}}))
        """,
        tmp_path,
    )
    cached = {name: size for name, size in seen["sizes"].items() if name.endswith("-cache")}
    assert 0 < sum(cached.values()) <= 8000
    assert "Error writing persistent compilation cache" not in seen["stderr"]


def test_entries_written_without_a_bound_get_stamps_so_eviction_works(tmp_path):
    """A directory filled unbounded (older jaxnn) has no "-atime" stamps; JAX's eviction needs one per
    entry and would warn on every write.  Enabling with a bound stamps them first."""
    cache = tmp_path / "cache"
    code = """
        from jaxnn import compile_cache
        compile_cache.enable({cache!r}, max_bytes={max_bytes})
        for k in {ks}:
            compile_one(k)
        print(json.dumps({{"entries": entries({cache!r})}}))
        """
    unbounded = _run(code.format(cache=str(cache), max_bytes=-1, ks=(1, 2)), tmp_path)
    assert not any(name.endswith("-atime") for name in unbounded["entries"])
    bounded = _run(code.format(cache=str(cache), max_bytes=10 * MiB, ks=(3, 4)), tmp_path)
    cached = _cached(bounded["entries"])
    assert len(cached) > len(_cached(unbounded["entries"]))
    assert all(name[: -len("-cache")] + "-atime" in bounded["entries"] for name in cached)
    assert "Error writing persistent compilation cache" not in bounded["stderr"]


def test_without_filelock_a_bound_is_a_clear_error_and_the_default_stays_off(tmp_path):
    seen = _run(
        """
        sys.modules["filelock"] = None  # as if the package were not installed
        from jaxnn import compile_cache
        try:
            compile_cache.enable()
            error = ""
        except RuntimeError as e:
            error = str(e)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            default = compile_cache.enable_default()
            with compile_cache.scoped() as scoped_path:
                pass
        unbounded = compile_cache.enable(max_bytes=-1)
        print(json.dumps({"error": error, "default": default, "scoped": scoped_path,
                          "warnings": [str(w.message) for w in caught], "unbounded": str(unbounded)}))
        """,
        tmp_path,
        JAXNN_CACHE_DIR=str(tmp_path / "cache"),
    )
    assert "'filelock'" in seen["error"] and "JAXNN_CACHE_MAX_BYTES=-1" in seen["error"]
    assert seen["default"] is None and seen["scoped"] is None
    assert len(seen["warnings"]) == 1 and "stays off" in seen["warnings"][0]  # warned once, not per call
    assert seen["unbounded"] == str(tmp_path / "cache")


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


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "256"])
def test_a_bad_max_bytes_is_a_value_error_before_any_setting_changes(tmp_path, bad):
    import jax

    before = dict(jax.config.values)
    with pytest.raises(ValueError, match="max_bytes must be a whole number of bytes"):
        compile_cache.enable(tmp_path / "never", max_bytes=bad)
    assert dict(jax.config.values) == before
    assert not (tmp_path / "never").exists()


def test_clear_empties_the_directory_and_keeps_it(tmp_path):
    (tmp_path / "jit_f-abc-cache").write_bytes(b"cut short")
    (tmp_path / "jit_f-abc-atime").write_bytes(b"\0" * 8)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "entry").write_bytes(b"x")
    compile_cache.clear(tmp_path)
    assert tmp_path.is_dir() and not any(tmp_path.iterdir())
    compile_cache.clear(tmp_path / "missing")  # nothing there: nothing to do
