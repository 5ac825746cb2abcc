"""Shared helpers of the jaxnn-train tests (tests/test_cli_*.py): running the command, reading its files."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers import arrays_only_digest

from jaxnn import cli

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def command() -> list[str]:
    """The installed console script, or the module when the package is not installed as a script."""
    script = Path(sys.executable).with_name("jaxnn-train")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jaxnn.cli"]


def environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "XLA_FLAGS"}
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1", **extra}


def shell(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command(), *args], capture_output=True, text=True, timeout=timeout, env=environment(), cwd=ROOT
    )


def train(*args) -> int:
    """jaxnn-train in this process (no JAX start-up to pay)."""
    return cli.main([str(arg) for arg in args])


def arrays(directory: Path, name: str = "checkpoint.npz") -> dict[str, np.ndarray]:
    with np.load(directory / name, allow_pickle=False) as archive:
        return {entry: archive[entry] for entry in archive.files if entry != "meta"}


def saved_params(saved: dict) -> list[dict]:
    """The network's weights from a checkpoint's arrays (:func:`arrays`), layer by layer."""
    layers = sorted({int(name.split("/")[1]) for name in saved if name.startswith("params/")})
    return [{"W": saved[f"params/{i}/W"], "b": saved[f"params/{i}/b"]} for i in layers]


def assert_same_params(params, expected) -> None:
    """Layer by layer, bit for bit."""
    assert len(params) == len(expected)
    for got, want in zip(params, expected, strict=True):
        np.testing.assert_array_equal(got["W"], np.asarray(want["W"]))
        np.testing.assert_array_equal(got["b"], np.asarray(want["b"]))


def fit_as_the_run(options, problem, head, targets, model, params, epochs: int, weight=None, **solver):
    """The ``jaxnn.fit`` call a single run of ``options`` makes: its split, loss, shuffle key and one-device mesh,
    with the rows' ``weight``; ``solver`` gives the optimiser arguments (default: the run's transformation and its
    fresh state)."""
    import jax

    import jaxnn
    from jaxnn import distributed
    from jaxnn.cli import training
    from jaxnn.train import training_keys

    if not solver:
        optimizer = training.make_optimizer(options)
        solver = {"optimizer": optimizer, "opt_state": optimizer.init(params)}
    return jaxnn.fit(
        model,
        params,
        problem.x_train,
        targets.train,
        loss=head.loss,
        weight=weight,
        epochs=epochs,
        key=training_keys(options["seed"])[1],
        mesh=distributed.make_mesh(jax.devices()[:1]),  # the run's one-device mesh
        **solver,
    )


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which are not JSON (as most parsers outside Python do)."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def metrics(directory: Path) -> dict:
    return strict_json((directory / "metrics.json").read_text())


def history_rows(directory: Path) -> list[list[str]]:
    return list(csv.reader((directory / "history.csv").open()))


def write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def regression_csv(path: Path, n: int = 200, scale: float = 1.0) -> Path:
    """``price = 3a − 2b + 40 + noise`` (times ``scale``): a regression a network learns in a few dozen epochs."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.uniform(0, 10, size=n)
    target = (3.0 * a - 2.0 * b + 40.0 + rng.normal(scale=0.1, size=n)) * scale
    return write_csv(path, ["a", "b", "price"], zip(a.tolist(), b.tolist(), target.tolist(), strict=True))


def with_config(source: Path, destination: Path, file: str = "checkpoint.npz", **changes) -> Path:
    """A copy of ``source``'s checkpoint ``file`` whose stored config has ``changes`` (DELETE removes one), still
    loadable: as an older jaxnn-train would have written it, with the checksum of its arrays alone."""

    def change(config, entries):
        for name, value in changes.items():
            if value is _DELETE:
                config.pop(name, None)
            else:
                config[name] = value

    return tampered_copy(source, destination, change, file)


def tampered_copy(source: Path, destination: Path, change, file: str = "checkpoint.npz") -> Path:
    """A copy of ``source``'s checkpoint ``file`` after ``change(config, entries)`` edits its stored config and its
    arrays by entry name (``history``, ``extras/held_out_epochs``, ...), with metadata and a checksum that match
    the edit (the arrays' alone, as an older jaxnn-train wrote it): only checks of the values can refuse it."""
    with np.load(source / file, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    meta = json.loads(entries.pop("meta").tobytes())
    before = dict(entries)
    change(meta["config"], entries)
    listed = meta["arrays"]  # as written, for the unchanged entries (a bfloat16 array reads back as raw bytes)
    meta["arrays"] = {
        name: listed[name] if before.get(name) is a else {"shape": list(a.shape), "dtype": a.dtype.name}
        for name, a in entries.items()
    }
    meta["sha256"] = arrays_only_digest(entries)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **entries)
    destination.mkdir(parents=True, exist_ok=True)
    (destination / file).write_bytes(buffer.getvalue())
    return destination


_DELETE = object()
DELETE = _DELETE  # with_config(..., name=DELETE) removes an option, as in a checkpoint from an older jaxnn-train
