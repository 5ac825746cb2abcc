"""Regime c: times model selection on iris (``cross_val_score``, ``GridSearchCV``), jaxnn's network against
scikit-learn's: the first call (compiling, or loading from the persistent cache) and repeats."""

from __future__ import annotations

import statistics
import tempfile

import workers
from orchestration import Worker, close_all, start_workers, timed_rounds

from regimes.common import Config, ratio, target


def measure(config: Config) -> dict:
    """jaxnn's tasks run first in processes with an empty persistent cache (``fresh_process_runs`` of them, each
    with a cache of its own: the first call's median is reported), then in one that finds the first one's cache
    filled; that one serves the timed repeats, interleaved with scikit-learn's."""
    settings = {"epochs": config.selection_epochs}
    jaxnn_names = [f"jaxnn: {task}" for task in workers.TASKS]
    with tempfile.TemporaryDirectory() as caches:

        def jaxnn_workers(run: int):  # one cache directory per task and run, so that none warms another's
            return {
                name: Worker("c", [name], settings, f"{caches}/{i}-{run}").wait_ready()
                for i, name in enumerate(jaxnn_names)
            }

        cold_first_calls: dict[str, list[float]] = {name: [] for name in jaxnn_names}
        for run in range(config.fresh_process_runs):
            cold = jaxnn_workers(run)
            close_all(cold)
            for name in jaxnn_names:
                cold_first_calls[name].append(cold[name].setup[name]["first_call_s"])
        sklearn_names = [f"scikit-learn: {task}" for task in workers.TASKS]
        running = jaxnn_workers(0) | start_workers("c", sklearn_names, settings, together=True)
        times = timed_rounds(running, config.selection_repeats)
        close_all(running)
    tasks: dict[str, dict] = {}
    for name, runs_s in times.items():
        library, task = name.split(": ", 1)
        setup = running[name].setup[name]
        cold_runs = cold_first_calls.get(name)
        tasks.setdefault(task, {})[library] = {
            "first_call_s": statistics.median(cold_runs) if cold_runs else setup["first_call_s"],
            "median_repeat_s": statistics.median(runs_s),
            "runs_s": runs_s,
            "score": setup["score"],
        }
        if library == "jaxnn":
            tasks[task][library] |= {"first_call_warm_cache_s": setup["first_call_s"], "first_calls_cold_s": cold_runs}
    total = {
        library: {key: sum(t[library][key] for t in tasks.values()) for key in ("first_call_s", "median_repeat_s")}
        for library in ("jaxnn", "scikit-learn")
    }
    total["jaxnn"]["first_call_warm_cache_s"] = sum(t["jaxnn"]["first_call_warm_cache_s"] for t in tasks.values())
    sklearn_s = total["scikit-learn"]["median_repeat_s"]
    return {
        "description": (
            f"iris (150 samples, standardised in a Pipeline), 10-5 ReLU network, full-batch gradient descent, "
            f"{config.selection_epochs} epochs per fit; grid {workers.GRID}; each task in a fresh process, so "
            "jaxnn's first call compiles everything it needs (cache cold: median of "
            f"{config.fresh_process_runs} processes) or loads it from a filled persistent cache (cache warm)"
        ),
        "unit": "s",
        "tasks": tasks,
        "total": total,
        "targets": [
            target(
                "c",
                "jaxnn model selection ≤ 0.6× scikit-learn's wall time (first call, compilation included, cache empty)",
                ratio(total["jaxnn"]["first_call_s"], sklearn_s),
                0.6,
                higher_is_better=False,
            ),
            target(
                "c",
                "jaxnn model selection ≤ 1.0× scikit-learn's wall time (first call, persistent cache warm)",
                ratio(total["jaxnn"]["first_call_warm_cache_s"], sklearn_s),
                1.0,
                higher_is_better=False,
            ),
            target(
                "c",
                "jaxnn model selection ≤ 1.0× scikit-learn's wall time (repeat, compiled)",
                ratio(total["jaxnn"]["median_repeat_s"], sklearn_s),
                1.0,
                higher_is_better=False,
            ),
        ],
    }
