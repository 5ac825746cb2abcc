"""Runs the benchmark of jaxnn against its anchors: scikit-learn's MLPClassifier, NumPy, PyTorch, autodiff.

Run ``python benchmarks/run.py`` (``make bench``).  Every competitor gets the same data and
configuration and runs in a process of its own (``benchmarks/workers.py``); after a warm-up the
competitors are timed in interleaved rounds and medians are reported.  The run prints a table, writes
``benchmarks/results.json`` and refreshes the generated table in ``benchmarks/README.md``.
``--quick`` runs a tiny configuration (the test suite does); ``--regimes ad`` a subset (``--merge`` keeps the
other regimes' earlier results in the JSON and the table).

This file is the command line.  ``regimes/`` holds one module per regime (``a_iris`` … ``f_populations``;
``regimes/common.py`` the sizes, targets and competitor list they share), ``orchestration.py`` the worker
processes and the interleaved timing, ``report.py`` the JSON, the Markdown table and the README section.

Competitors
  jaxnn              ``jaxnn.fit`` / jaxnn's step: gradients from jaxnn's hand-written rules.
  NeuralNetClassifier  jaxnn's scikit-learn estimator, the whole ``fit`` (regimes a, b and c), on float32
                     and on float64 input (regime a).
  jax.grad           the same compiled loop, gradients by JAX's autodiff of the plain forwards
                     (``custom_rules=False``): the two differ in nothing else.
  jax.grad naive     autodiff of ``model.apply`` batch-first in a ``lax.scan``, written as a user would
                     (no layout change, no divergence guard); for reference, no target.
  NumPy              the seeds' vectorised network (``benchmarks/numpy_net.py``).
  scikit-learn       ``MLPClassifier(solver="sgd", momentum=0, alpha=0, tol=0, shuffle=False, ...)``.
  PyTorch            eager on the CPU (``benchmarks/torch_net.py``); skipped with a note if not installed.

Regimes
  a  the seed's iris network (4 → 10 ReLU → 5 ReLU → 3 softmax, categorical cross-entropy, learning
     rate 0.1), full batch: time per epoch with compilation excluded; compile time on its own line; the
     estimator on float32 and float64 input against scikit-learn on the same input.
  b  the same fit in a fresh process: wall time of ``python -c ...`` including imports, data loading and
     compilation; jaxnn (core API and estimator) with its persistent compilation cache cold (empty) and warm.
  c  model selection on iris: ``cross_val_score`` (5 folds) and a 4-candidate ``GridSearchCV``; jaxnn's
     first call in a fresh process (compiling) and its repeats.
  d  one training step of 784 → 512 ReLU → 512 ReLU → 10 softmax on a batch of 1024 synthetic samples,
     in GFLOP/s against the float32 matmul ceiling measured in the same run, with each competitor's
     peak resident memory beside its memory just after its imports.
  e  the accelerator regime (``benchmarks/accelerator.py``), skipped where JAX sees no accelerator.
  f  populations (``benchmarks/population.py``): P members of the seed's iris network trained by one
     ``jaxnn.fit_many`` call against P ``jaxnn.fit`` calls, and a 20-candidate × 5-fold grid search on wine
     by jaxnn's ``GridSearchCV``, by scikit-learn's over the same jaxnn pipeline and by scikit-learn's over
     ``MLPClassifier``; on the CPU always, and again on an accelerator when JAX sees one.
  g  a medium table (``benchmarks/medium.py``): 25,000 × 784 generated rows, 784 → 256 → 128 → 10, Adam,
     batch 256, float32 and float64 input: seconds per epoch and validation accuracy of the estimator, the
     core ``fit``, plain JAX (``jax.grad`` + optax, ``lax.scan`` per epoch), PyTorch eager and scikit-learn.
  h  prediction latency (``benchmarks/prediction.py``): ``predict`` and ``predict_proba`` of a fitted (100,)
     network on 1 and 1,000 rows of iris and digits, against ``MLPClassifier``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from regimes import (  # noqa: E402
    a_iris,
    b_fresh_process,
    c_model_selection,
    d_large_step,
    e_accelerator,
    f_populations,
    g_medium,
    h_prediction,
)
from regimes.common import FULL, QUICK, SKIPPED, torch_available  # noqa: E402

REGIMES = {
    "a": a_iris.measure,
    "b": b_fresh_process.measure,
    "c": c_model_selection.measure,
    "d": d_large_step.measure,
    "e": e_accelerator.measure,
    "f": f_populations.measure,
    "g": g_medium.measure,
    "h": h_prediction.measure,
}


# --------------------------------------------------------------------------------------------------
# The machine.


def environment() -> dict:
    """Machine, versions, BLAS and the OpenBLAS variables that can slow NumPy (recorded, never changed)."""
    import jax
    import sklearn
    from threadpoolctl import threadpool_info

    versions = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }
    if torch_available():
        import torch

        versions["torch"] = torch.__version__
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "jax_devices": [str(d) for d in jax.devices()],
        },
        "versions": versions,
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "filepath")}
            for info in threadpool_info()
        ],
        "environment_variables": {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "load_average_at_start": os.getloadavg(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (seconds, for the tests)")
    parser.add_argument("--output", type=Path, default=HERE / "results.json", help="where to write the JSON")
    parser.add_argument(
        "--readme", type=Path, default=HERE / "README.md", help="markdown file whose generated table to refresh"
    )
    parser.add_argument("--no-readme", action="store_true", help="do not touch any README")
    parser.add_argument("--regimes", default="".join(REGIMES), help="which regimes to run, e.g. 'ad'")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other regimes' earlier results from the --output file (JSON and table) instead of dropping them",
    )
    parser.add_argument("--skip-torch", action="store_true", help="leave PyTorch out even when it is installed")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not set(args.regimes) <= set(REGIMES):
        raise SystemExit(f"--regimes takes letters from {''.join(REGIMES)!r}, got {args.regimes!r}")
    config = QUICK if args.quick else FULL
    if args.skip_torch:
        SKIPPED["PyTorch"] = "PyTorch left out of this run (--skip-torch)"
    started = time.perf_counter()
    results = {"quick": args.quick, "config": asdict(config), "environment": environment(), "regimes": {}}
    for letter in sorted(set(args.regimes)):
        print(f"regime {letter} …", file=sys.stderr, flush=True)
        regime_started = time.perf_counter()
        results["regimes"][letter] = REGIMES[letter](config)
        results["regimes"][letter]["benchmark_seconds"] = time.perf_counter() - regime_started
        results["regimes"][letter]["measured"] = report.measured_stamp(results["environment"])
    if args.merge:
        results["regimes"] = report.merged_regimes(args.output, results)
    results["targets"] = [t for regime in results["regimes"].values() for t in regime["targets"]]
    results["total_seconds"] = time.perf_counter() - started
    results["environment"]["load_average_at_end"] = os.getloadavg()
    results["notes"] = notes(results)
    report.write_json(args.output, results)
    table = report.markdown(results)
    print(table)
    if not args.no_readme:
        report.update_readme(args.readme, table)
    return results


def notes(results: dict) -> list[str]:
    env = results["environment"]
    found = []
    set_vars = {k: v for k, v in env["environment_variables"].items() if v is not None}
    if set_vars:
        found.append(f"OpenBLAS variables set in this environment (left as they are): {set_vars}")
    found += [f"{name}: {why}" for name, why in SKIPPED.items()]
    return found


if __name__ == "__main__":
    main()
