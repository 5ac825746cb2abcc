"""Prediction latency: a fitted ``NeuralNetClassifier`` against a fitted ``MLPClassifier`` (regime h).

    python benchmarks/prediction.py [--calls 300] [--rounds 5] [--quick] [--synchronous-dispatch]

For iris and digits: both estimators fitted with ``hidden_layer_sizes=(100,)`` (everything else at its
default but ``max_iter``), then ``predict`` and ``predict_proba`` on 1 row and on 1,000 rows (drawn with
replacement from the data set, float64 as scikit-learn loads it).  Each call is timed as the mean of
``--calls`` calls back to back, the two libraries alternating in ``--rounds`` rounds; the median round is
reported in microseconds.  jaxnn's first call of each shape (which compiles or loads its forward pass) is made
before the timed rounds.  One process holds both libraries, so they share the machine's state; the last line
printed is the JSON of the results.

``--synchronous-dispatch`` sets JAX's ``jax_cpu_enable_async_dispatch`` to False before anything runs: the
process-wide setting, made once by a serving process (jaxnn never changes it), under which XLA:CPU runs a small
program on the calling thread instead of handing it to its executor thread and waiting for the answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from jaxnn import NeuralNetClassifier

DATASETS = {"iris": load_iris, "digits": load_digits}
METHODS = ("predict", "predict_proba")
ROW_COUNTS = (1, 1000)


def _mean_call_us(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def measure(calls: int, rounds: int, max_iter: int) -> dict:
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    results = {}
    for name, load in DATASETS.items():
        x, y = load(return_X_y=True)
        fitted = {
            "jaxnn": NeuralNetClassifier((100,), max_iter=max_iter, random_state=0).fit(x, y),
            "scikit-learn": MLPClassifier((100,), max_iter=max_iter, random_state=0).fit(x, y),
        }
        rows = {n: x[np.random.default_rng(0).integers(0, len(x), n)] for n in ROW_COUNTS}
        for n, x_rows in rows.items():
            for method in METHODS:
                calls_of = {library: getattr(estimator, method) for library, estimator in fitted.items()}
                np.testing.assert_array_equal(calls_of["jaxnn"](x_rows).shape, calls_of["scikit-learn"](x_rows).shape)
                times = {library: [] for library in calls_of}
                for _ in range(rounds):
                    for library, call in calls_of.items():
                        times[library].append(_mean_call_us(lambda call=call, x_rows=x_rows: call(x_rows), calls))
                medians = {library: statistics.median(t) for library, t in times.items()}
                results[f"{name}, {method}, {n} row{'s' if n > 1 else ''}"] = {
                    "jaxnn_us": medians["jaxnn"],
                    "sklearn_us": medians["scikit-learn"],
                    "jaxnn_over_sklearn": medians["jaxnn"] / medians["scikit-learn"],
                    "rows": n,
                    "method": method,
                    "dataset": name,
                }
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="few calls and epochs (the test suite's run)")
    parser.add_argument(
        "--synchronous-dispatch", action="store_true", help="set jax_cpu_enable_async_dispatch=False first"
    )
    args = parser.parse_args(argv)
    if args.synchronous_dispatch:
        import jax

        try:
            jax.config.update("jax_cpu_enable_async_dispatch", False)
        except AttributeError:  # a JAX without the option: no cases (the report shows none)
            print(json.dumps({}))
            return
    if args.quick:
        args.calls, args.rounds = 5, 1
    print(json.dumps(measure(args.calls, args.rounds, max_iter=5 if args.quick else 50)))


if __name__ == "__main__":
    main()
