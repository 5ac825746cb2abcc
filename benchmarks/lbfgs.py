"""jaxnn's ``solver='lbfgs'`` against scikit-learn's ``MLPClassifier(solver='lbfgs')``: accuracy and fit time.

    python benchmarks/lbfgs.py [--seeds 0 1 2 3 4] [--repeats 3] [--fresh 3] [--blas-threads 1] [--quick] [--json PATH]

For iris, wine, breast_cancer and digits: a stratified ``train_test_split(random_state=0)`` (75/25), the
inputs standardised on the training rows (float64, as scikit-learn loads them), then for every seed
``NeuralNetClassifier`` and ``MLPClassifier`` with the same settings (``hidden_layer_sizes=(100,)``,
``solver='lbfgs'``, ``max_iter=200``, ``random_state=seed``; everything else at its default, so both
stop on ``max_iter``, ``max_fun=15000``, ``max |gradient| ≤ tol=1e-4`` or scipy's relative reduction
test).  Reported per data set: the held-out accuracy (mean over the seeds, and per seed), the iterations,
and the fit time in seconds:

* **cold** — jaxnn's first fit of the data set's shapes in this process: building its program (the L-BFGS
  loop; the persistent compilation cache is off here, so this is real compilation) and the fit;
  scikit-learn's first fit of the data set.
* **fresh process** — the first fit in a new Python process, the median over ``--fresh`` processes per
  library (seeds taken in turn).  Each process imports both libraries, loads and standardises the data
  and makes the estimator, then times ``fit`` alone (``time.perf_counter`` around the call; imports,
  data and interpreter start-up are not timed, JAX's start-up on its first computation is).  jaxnn runs
  with its persistent compilation cache on, in a directory of its own filled by one process run before
  the timed ones (that process's fit, which compiles, is reported too as "fresh, empty cache"); so this
  is what a user's new process pays once the cache holds the program: tracing and lowering the program
  to find it in the cache, loading it, and the fit.  scikit-learn's processes time its first fit.  Each
  process then times three more fits ("warm, cache on": the median over all of them).
* **warm** — the median of ``repeats`` fits per seed, pooled over the seeds (jaxnn compiles nothing
  more: a new seed is new initial weights, not a new program).  The two libraries are timed in
  interleaved rounds, so that a busy spell of the shared machine hits both alike.

jaxnn's L-BFGS program comes in two builds with the same results (``jaxnn.lbfgs.LbfgsSpec.fast_compile``):
without a persistent cache, as in this process, the one that compiles in about half the time and runs some
5-15 % slower; with the cache on (the fresh processes, and the estimators' default) XLA's full build, compiled
once and then loaded.  So "cold" and "warm" here are the short-compile build, "fresh, empty cache" and "warm,
cache on" the full one.

scikit-learn runs with its BLAS limited to ``--blas-threads`` threads (``threadpoolctl``; default 1, its
fastest on the 2-core CI machine: with OpenBLAS's default thread count its lbfgs fits took 5 to 20 times
longer there under load); jaxnn runs with XLA's defaults.

The issue's target: accuracy within 0.01 of scikit-learn's and a faster fit on every data set.  The
machine's load average is printed: other work slows both libraries and blurs the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

from orchestration import interleaved, json_from_process
from report import write_json
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from jaxnn import NeuralNetClassifier

DATASETS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
LIBRARIES = {"jaxnn": NeuralNetClassifier, "scikit-learn": MLPClassifier}
SETTINGS = {"hidden_layer_sizes": (100,), "solver": "lbfgs", "max_iter": 200}
ACCURACY_TARGET = 0.01  # jaxnn's mean held-out accuracy at most this far below scikit-learn's


def split(name: str):
    """Standardised stratified 75/25 split of a scikit-learn toy data set (float64)."""
    x, y = DATASETS[name](return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, stratify=y, random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


def timed_fit(make, x, y, blas_threads=None):
    """``(fitted estimator, seconds)`` of one ``fit`` (ConvergenceWarnings of max_iter silenced), with the
    BLAS limited to ``blas_threads`` threads when given."""
    estimator = make()
    with warnings.catch_warnings(), threadpool_limits(limits=blas_threads, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(x, y)
        return estimator, time.perf_counter() - start


def measure(name: str, seeds: list[int], repeats: int, blas_threads: int) -> dict:
    x_train, x_test, y_train, y_test = split(name)
    libraries = LIBRARIES
    threads = {"jaxnn": None, "scikit-learn": blas_threads}
    result = {"rows": int(x_train.shape[0]), "features": int(x_train.shape[1])}
    for library, cls in libraries.items():
        make = partial(cls, **SETTINGS, random_state=seeds[0])
        _, cold = timed_fit(make, x_train, y_train, threads[library])
        result[library] = {"cold_s": cold, "warm_s": [], "accuracy": [], "n_iter": []}
    for seed in seeds:  # the libraries in interleaved rounds; each one's first fit of the seed is scored
        runs = {
            library: partial(timed_fit, partial(cls, **SETTINGS, random_state=seed), x_train, y_train, threads[library])
            for library, cls in libraries.items()
        }
        for library, fits in interleaved(runs, repeats, pause_s=0.0).items():
            entry, fitted = result[library], fits[0][0]
            entry["warm_s"] += [seconds for _, seconds in fits]
            entry["accuracy"].append(float(fitted.score(x_test, y_test)))
            entry["n_iter"].append(int(fitted.n_iter_))
    for library in libraries:
        entry = result[library]
        entry["warm_median_s"] = statistics.median(entry.pop("warm_s"))
        entry["mean_accuracy"] = statistics.fmean(entry["accuracy"])
    ours, theirs = result["jaxnn"], result["scikit-learn"]
    result["accuracy_gap"] = theirs["mean_accuracy"] - ours["mean_accuracy"]
    result["warm_speedup"] = theirs["warm_median_s"] / ours["warm_median_s"]
    result["cold_speedup"] = theirs["cold_s"] / ours["cold_s"]
    result["targets_met"] = {
        "accuracy": result["accuracy_gap"] <= ACCURACY_TARGET,
        "faster_warm": result["warm_speedup"] > 1,
        "faster_cold": result["cold_speedup"] > 1,
    }
    return result


def fresh_process_fits(library: str, name: str, seed: int, blas_threads: int, later: int) -> dict:
    """Seconds of this process's first ``fit`` and of ``later`` fits after it (seeds ``seed + 1``, ...): what
    each of :func:`measure_fresh`'s processes runs."""
    x_train, _, y_train, _ = split(name)
    threads = blas_threads if library == "scikit-learn" else None
    seconds = [
        timed_fit(partial(LIBRARIES[library], **SETTINGS, random_state=seed + k), x_train, y_train, threads)[1]
        for k in range(1 + later)
    ]
    return {"first": seconds[0], "later": seconds[1:]}


def fresh_fits(library: str, name: str, seed: int, blas_threads: int, cache_directory: str, later: int) -> dict:
    """:func:`fresh_process_fits` in a new Python process, jaxnn's persistent cache in ``cache_directory``."""
    env = {key: value for key, value in os.environ.items() if key != "JAXNN_COMPILE_CACHE"}
    env["JAXNN_CACHE_DIR"] = cache_directory
    command = [sys.executable, __file__, "--fresh-process", library, name, str(seed), str(later)]
    command += ["--blas-threads", str(blas_threads)]
    return json_from_process(command, env, f"lbfgs.py's fresh {library} process on {name}")


def measure_fresh(name: str, seeds: list[int], processes: int, blas_threads: int, later: int = 3) -> dict:
    """First fits in fresh processes, ``processes`` per library, interleaved: jaxnn's with its persistent cache
    filled (by one process before them) and scikit-learn's; and the ``later`` fits after each first one."""
    with tempfile.TemporaryDirectory(prefix="jaxnn-lbfgs-benchmark-") as cache_directory:
        empty = fresh_fits("jaxnn", name, seeds[0], blas_threads, cache_directory, later=0)["first"]
        seeds_of = {library: itertools.cycle(seeds) for library in LIBRARIES}  # a library's process k: seed k

        def process(library: str) -> dict:
            return fresh_fits(library, name, next(seeds_of[library]), blas_threads, cache_directory, later)

        processes_of = interleaved(
            {library: partial(process, library) for library in LIBRARIES}, processes, pause_s=0.0
        )
    first = {library: [fits["first"] for fits in runs] for library, runs in processes_of.items()}
    after = {library: [s for fits in runs for s in fits["later"]] for library, runs in processes_of.items()}
    fresh = {library: statistics.median(seconds) for library, seconds in first.items()}
    warm = {library: statistics.median(seconds) for library, seconds in after.items()} if later else {}
    return {
        "jaxnn_fresh_empty_cache_s": empty,
        "jaxnn_fresh_s": fresh["jaxnn"],
        "scikit_learn_fresh_s": fresh["scikit-learn"],
        "fresh_speedup": fresh["scikit-learn"] / fresh["jaxnn"],
        "jaxnn_warm_cache_on_s": warm.get("jaxnn"),
        "scikit_learn_warm_fresh_s": warm.get("scikit-learn"),
        "first_fits_s": first,
        "later_fits_s": after,
    }


def fresh_cells(fresh: dict | None) -> str:
    """The table's three fresh-process cells (dashes without ``--fresh``)."""
    if not fresh:
        return "– | – | –"
    cells = [
        f"{fresh['jaxnn_fresh_s']:.3f} / {fresh['scikit_learn_fresh_s']:.3f} ({fresh['fresh_speedup']:.2f}×)",
        f"{fresh['jaxnn_fresh_empty_cache_s']:.2f}",
        "–",
    ]
    ours, theirs = fresh["jaxnn_warm_cache_on_s"], fresh["scikit_learn_warm_fresh_s"]
    if ours is not None:
        cells[2] = f"{ours:.4f} / {theirs:.4f} ({theirs / ours:.1f}×)"
    return " | ".join(cells)


def table(results: dict) -> str:
    lines = [
        "| data set | rows×features | accuracy jaxnn / sklearn | iterations jaxnn / sklearn "
        "| warm s jaxnn / sklearn (×) | cold s jaxnn / sklearn (×) "
        "| fresh process s jaxnn cache filled / sklearn (×) | fresh, empty cache s jaxnn "
        "| warm s, cache on jaxnn / sklearn (×) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ours, theirs = r["jaxnn"], r["scikit-learn"]
        lines.append(
            f"| {name} | {r['rows']}×{r['features']} | {ours['mean_accuracy']:.3f} / {theirs['mean_accuracy']:.3f} "
            f"| {statistics.fmean(ours['n_iter']):.0f} / {statistics.fmean(theirs['n_iter']):.0f} "
            f"| {ours['warm_median_s']:.4f} / {theirs['warm_median_s']:.4f} ({r['warm_speedup']:.1f}×) "
            f"| {ours['cold_s']:.2f} / {theirs['cold_s']:.2f} ({r['cold_speedup']:.2f}×) "
            f"| {fresh_cells(r.get('fresh'))} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per seed and library")
    parser.add_argument("--blas-threads", type=int, default=1, help="scikit-learn's BLAS threads")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--fresh", type=int, default=3, help="fresh processes per library and data set (0: none)")
    parser.add_argument("--quick", action="store_true", help="iris only, one seed, one repeat (a smoke run)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--fresh-process", nargs=4, help=argparse.SUPPRESS)  # LIBRARY DATASET SEED LATER
    args = parser.parse_args(argv)
    if args.fresh_process:  # one of measure_fresh's processes
        library, name, seed, later = args.fresh_process
        print(json.dumps(fresh_process_fits(library, name, int(seed), args.blas_threads, int(later))))
        return {}
    os.environ["JAXNN_COMPILE_CACHE"] = "0"  # cold means compiling, not loading from jaxnn's persistent cache
    if args.quick:
        args.seeds, args.repeats, args.datasets, args.fresh = args.seeds[:1], 1, ["iris"], min(args.fresh, 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results = {name: measure(name, args.seeds, args.repeats, args.blas_threads) for name in args.datasets}
    if args.fresh > 0:
        for name in args.datasets:
            results[name]["fresh"] = measure_fresh(name, args.seeds, args.fresh, args.blas_threads)
            results[name]["targets_met"]["faster_fresh"] = results[name]["fresh"]["fresh_speedup"] > 1
    print(
        f"load average at the start: {load:.2f}; seeds {args.seeds}, {args.repeats} timed fits per seed, "
        f"{args.fresh} fresh processes per library; scikit-learn with {args.blas_threads} BLAS thread(s)"
    )
    print(table(results))
    if args.json:
        record = {"load_average": load, "seeds": args.seeds, "blas_threads": args.blas_threads, "results": results}
        write_json(Path(args.json), record)
    return results


if __name__ == "__main__":
    main()
