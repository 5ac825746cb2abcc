"""Regime f: times populations of the seed's iris network (one ``jaxnn.fit_many`` call against P ``jaxnn.fit``
calls) and a grid search on wine, each in a fresh ``benchmarks/population.py`` process, on the CPU and again
on an accelerator where JAX sees one."""

from __future__ import annotations

import json
import sys

import population
import workers
from orchestration import BENCHMARKS, json_from_process, worker_env

from regimes.common import Config, ratio, target


def population_jobs(config: Config) -> dict[str, tuple[str, dict]]:
    """Regime f's ``population.py`` runs, name → (command, settings): the populations, then one search per
    library of ``population.SEARCHES``."""
    search = {
        "max_iter": config.search_max_iter,
        "folds": config.search_folds,
        "learning_rates": list(config.search_learning_rates),
        "alphas": list(config.search_alphas),
        "warm_runs": config.search_warm_runs,
    }
    populations = {
        "sizes": list(config.population_sizes),
        "epochs": config.population_epochs,
        "repeats": config.population_repeats,
        "sequential_run_all_up_to": config.sequential_run_all_up_to,
    }
    return {"populations": ("populations", populations)} | {
        library: ("search", {**search, "library": library}) for library in population.SEARCHES
    }


def population_processes(jobs: dict[str, tuple[str, dict]], platform: str | None) -> dict:
    """Every job in a fresh process of ``population.py``, one after another.  ``platform="cpu"`` hides any
    accelerator from JAX (``JAX_PLATFORMS=cpu``); None leaves JAX its choice.  Returns
    ``{"populations": ..., "searches": {...}}``."""
    env = worker_env() | ({"JAX_PLATFORMS": "cpu"} if platform == "cpu" else {})

    def answer(command: str, settings: dict) -> dict:
        arguments = [sys.executable, str(BENCHMARKS / "population.py"), command, json.dumps(settings)]
        return json_from_process(arguments, env, f"regime f's population.py {command}", timeout=1800)

    measured = {name: answer(*job) for name, job in jobs.items()}
    searches = {name: measured[name] for name in population.SEARCHES if name in measured}
    return {"populations": measured["populations"], "searches": searches}


def accelerator_platform() -> str | None:
    """The accelerator JAX picks in this process (``gpu``, ``tpu``), or None where it sees only the CPU."""
    import jax

    backend = jax.default_backend()
    return None if backend == "cpu" else backend


def measure(config: Config) -> dict:
    """On the CPU always; again on the accelerator (populations and jaxnn's two searches) where there is one."""
    jobs = population_jobs(config)
    regime = {
        "description": (
            f"populations and searches: P members of the seed's iris network (4-10-5-3, categorical cross-entropy, "
            f"gradient descent with learning rate {workers.LEARNING_RATE}, 112 samples, full batch, "
            f"{config.population_epochs} epochs) trained by one `jaxnn.fit_many` call (default group size) against P "
            f"`jaxnn.fit` calls, medians of {config.population_repeats} interleaved rounds after a warm-up; a grid "
            f"search on wine (178 rows as float32, StandardScaler + a (16,) ReLU network, Adam, max_iter "
            f"{config.search_max_iter}, random_state 0) over learning_rate_init {list(config.search_learning_rates)} "
            f"× alpha {list(config.search_alphas)}, {config.search_folds}-fold StratifiedKFold (shuffled, "
            "random_state 0) + refit, n_jobs=1, each search in a fresh process: its first run compiles (persistent "
            f"cache off), 'warm' is the median of the {config.search_warm_runs} runs after it"
        ),
        "cpu": population_processes(jobs, "cpu"),
    }
    if accelerator_platform() is None:
        regime["accelerator"] = {"skipped": "JAX sees no accelerator here"}
    else:  # scikit-learn's MLPClassifier runs on the CPU only: its row is the CPU one
        on_device = {name: job for name, job in jobs.items() if name != population.SKLEARN_SEARCH}
        regime["accelerator"] = population_processes(on_device, None)
    regime["targets"] = population_targets(regime["cpu"], regime["accelerator"], config.population_sizes)
    return regime


def search_speedup(runs: dict, reference: str, key: str = "warm_s") -> float | None:
    """How many times faster jaxnn's search ran than ``reference`` (None where either did not run)."""
    searches = runs.get("searches", {})
    ours, theirs = searches.get(population.JAXNN_SEARCH, {}), searches.get(reference, {})
    return ratio(theirs.get(key), ours.get(key))


def population_targets(cpu: dict, accelerator: dict, sizes: tuple[int, ...]) -> list[dict]:
    """Regime f's targets: on the CPU, a population never slower than its members fitted one by one and
    the search ≥ 3× / ≥ 10× faster; on an accelerator, P_max members ≤ 3× the time of P_min, search ≥ 20×."""
    targets = [
        target(
            "f",
            f"CPU, P = {row['members']}: one fit_many call ≤ 1.0× the time of P jaxnn.fit calls",
            row["population_over_sequential"],
            1.0,
            higher_is_better=False,
        )
        for row in cpu["populations"]["sizes"]
    ]
    targets += [
        target(
            "f",
            "CPU: jaxnn GridSearchCV ≥ 3× faster than scikit-learn's over the same jaxnn pipeline (warm)",
            search_speedup(cpu, population.SEQUENTIAL_SEARCH),
            3.0,
        ),
        target(
            "f",
            "CPU: jaxnn GridSearchCV ≥ 10× faster than scikit-learn's over MLPClassifier (warm)",
            search_speedup(cpu, population.SKLEARN_SEARCH),
            10.0,
        ),
    ]
    smallest, largest = min(sizes), max(sizes)
    seconds = {row["members"]: row["population_s"] for row in accelerator.get("populations", {}).get("sizes", [])}
    targets += [
        target(
            "f",
            f"accelerator: fit_many of P = {largest} ≤ 3× the time of P = {smallest}",
            ratio(seconds.get(largest), seconds.get(smallest)),
            3.0,
            higher_is_better=False,
        ),
        target(
            "f",
            "accelerator: jaxnn GridSearchCV ≥ 20× faster than scikit-learn's over the same jaxnn pipeline (warm)",
            search_speedup(accelerator, population.SEQUENTIAL_SEARCH),
            20.0,
        ),
    ]
    return targets
