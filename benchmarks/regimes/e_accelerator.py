"""Regime e: runs ``benchmarks/accelerator.py`` in a process of its own and reads its results back, with
the targets (skipped where JAX sees no accelerator)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestration import BENCHMARKS
from report import write_text

from regimes.common import QUICK, Config, target


def measure(config: Config) -> dict:
    """The accelerator regime (``benchmarks/accelerator.py``) in a process of its own; where JAX sees no
    accelerator it reports itself skipped and every target is "not measured"."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            str(BENCHMARKS / "accelerator.py"),
            "--out",
            folder,
            *(["--quick"] if config == QUICK else []),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        found = sorted(Path(folder).glob("results-*.json"))
        measured = json.loads(found[0].read_text()) if done.returncode == 0 and found else None
        if measured is not None and config != QUICK:  # kept beside results.json, named by the card
            write_text(BENCHMARKS / found[0].name, found[0].read_text())
    regime = {"description": "accelerator: steps, fit over 60,000 rows, the iris network (benchmarks/accelerator.py)"}
    if measured is None:
        note = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
        regime |= {"skipped": note, "targets": _accelerator_targets(None)}
        return regime
    return regime | {"results": measured, "targets": _accelerator_targets(measured)}


def _accelerator_targets(measured: dict | None) -> list[dict]:
    """Regime e's targets, as ratios on one card in one run (None where not measured)."""
    steps = {(s["network"], s["batch"]): s for s in measured["steps"]} if measured else {}
    at_1024 = steps.get(("784-512-512-10", 1024))
    wide = steps.get(("784-4096-4096-10", 8192))

    def ratio(entry, name, reference="plain jax.jit step"):
        if entry is None or name not in entry["seconds"] or reference not in entry["seconds"]:
            return None
        return entry["seconds"][name] / entry["seconds"][reference]

    best_factory = min(
        (
            value
            for value in (ratio(at_1024, "make_train_step (rows)"), ratio(at_1024, "make_train_step (columns)"))
            if value is not None
        ),
        default=None,
    )
    torch = ratio(at_1024, "PyTorch eager fp32", "jaxnn.train_step")
    fit_step = measured["fit"].get("fit per step / plain step") if measured else None
    wide_speed = None if ratio(wide, "jaxnn.train_step") is None else 1.0 / ratio(wide, "jaxnn.train_step")
    return [
        target(
            "e",
            "public step at batch 1024 ≤ 1.15× the plain jax.jit step",
            ratio(at_1024, "jaxnn.train_step"),
            1.15,
            higher_is_better=False,
        ),
        target(
            "e", "step factory at batch 1024 ≤ 1.15× the plain jax.jit step", best_factory, 1.15, higher_is_better=False
        ),
        target("e", "public step ≥ 4× faster than PyTorch eager (fp32) at batch 1024", torch, 4.0),
        target("e", "fit with minibatches: per step ≤ 1.3× the plain step", fit_step, 1.3, higher_is_better=False),
        target("e", "wide network ≥ 0.95× plain JAX's speed", wide_speed, 0.95),
    ]
