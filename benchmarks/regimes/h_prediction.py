"""Regime h: prediction latency of a fitted estimator against scikit-learn's MLP (``benchmarks/prediction.py``)."""

from __future__ import annotations

import sys

from orchestration import BENCHMARKS, json_from_process, worker_env

from regimes.common import Config, target


def measure(config: Config) -> dict:
    """One process holding both libraries times ``predict`` and ``predict_proba`` on 1 and 1,000 rows; a second
    does the same with JAX's synchronous dispatch on the CPU (a setting a serving process makes once; the
    targets are judged on the first, jaxnn's defaults)."""
    arguments = [sys.executable, str(BENCHMARKS / "prediction.py"), "--calls", str(config.prediction_calls)]
    arguments += ["--rounds", str(config.prediction_rounds)] + (["--quick"] if config.prediction_calls < 50 else [])
    measured = json_from_process(arguments, worker_env(), "the prediction benchmark", timeout=1800)
    synchronous = json_from_process(
        [*arguments, "--synchronous-dispatch"], worker_env(), "the prediction benchmark", timeout=1800
    )
    targets = []
    for case, row in measured.items():
        if row["method"] != "predict_proba":
            continue
        limit = 1.0 if row["rows"] == 1 else 0.5
        claim = f"{case}: jaxnn ≤ {limit:g}× scikit-learn's time"
        targets.append(target("h", claim, row["jaxnn_over_sklearn"], limit, higher_is_better=False))
    return {
        "description": (
            "prediction latency after a (100,) fit, float64 input as scikit-learn loads it: the mean of "
            f"{config.prediction_calls} calls back to back, median of {config.prediction_rounds} rounds alternating "
            "the libraries in one process, in µs; then the same in a process that set "
            "jax_cpu_enable_async_dispatch=False first"
        ),
        "unit": "µs per call",
        "cases": measured,
        "synchronous_dispatch_cases": synchronous,
        "targets": targets,
    }
