"""Regime d: times one training step of a large network on a large batch, in GFLOP/s against the float32
matmul ceiling measured in the same run, beside each competitor's peak memory."""

from __future__ import annotations

import itertools
import statistics
import tempfile

import numpy as np
from orchestration import Worker, close_all, interleaved, seconds, start_workers

from regimes.common import Config, competitor_names, ratio, skipped, target

REGIME_D = ("jaxnn", "jax.grad", "NumPy", "scikit-learn", "PyTorch")


def step_flops(sizes: tuple[int, ...], batch: int) -> float:
    """Nominal FLOPs of one step: forward 2·B·Σ n_in·n_out, backward twice that (= 6·B·Σ n_in·n_out).

    The count includes the input gradient of the first layer, which no competitor computes (its input
    is data), so every GFLOP/s figure here slightly overstates the arithmetic actually done, equally.
    """
    return 6.0 * batch * sum(a * b for a, b in itertools.pairwise(sizes))


def matmul_ceiling(sizes: tuple[int, ...], batch: int) -> dict:
    """float32 GFLOP/s of the step's largest product, (B × n0)·(n0 × n1), by NumPy's BLAS and by XLA.

    Each is warmed up with a few calls first: XLA's first executions run well below its steady speed.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    b = rng.standard_normal((sizes[0], sizes[1]), dtype=np.float32)
    flops = 2.0 * batch * sizes[0] * sizes[1]
    xla_dot = jax.jit(jnp.dot)
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    products = {"numpy": lambda: np.dot(a, b), "jax": lambda: xla_dot(a_j, b_j).block_until_ready()}
    result = {}
    for name, product in products.items():
        for _ in range(5):
            product()
        times = [seconds(product) for _ in range(20)]
        result[f"{name}_gflops"] = flops / statistics.median(times) / 1e9
    result["gflops"] = max(result["numpy_gflops"], result["jax_gflops"])
    result["shape"] = f"({batch}×{sizes[0]})·({sizes[0]}×{sizes[1]})"
    return result


def measure(config: Config) -> dict:
    """Every competitor's step timed in interleaved rounds, beside its peak and idle memory."""
    sizes, batch = config.step_sizes, config.step_batch
    flops = step_flops(sizes, batch)
    ceiling = matmul_ceiling(sizes, batch)
    settings = {"sizes": sizes, "batch": batch, "steps": config.steps_per_round}
    warm = "jaxnn (cache warm)"
    with tempfile.TemporaryDirectory() as cache:
        # jaxnn's persistent compilation cache (on by default) is filled by a first process, as by a user's
        # first run; a second process then loads the step instead of compiling it (LLVM's peak is gone).
        close_all({"jaxnn": Worker("d", ["jaxnn"], settings, cache).wait_ready()})
        running = start_workers("d", competitor_names(REGIME_D), settings, together=True)
        running[warm] = Worker("d", ["jaxnn"], settings, cache).wait_ready()
        runs = {name: worker.runner("jaxnn" if name == warm else name) for name, worker in running.items()}
        times = interleaved(runs, config.step_rounds)
        peaks = close_all(running)
    competitors = {}
    for name, worker in running.items():
        step_s, setup = statistics.median(times[name]) / config.steps_per_round, worker.setup.get(name)
        setup = setup or worker.setup["jaxnn"]
        competitors[name] = {
            "step_s": step_s,
            "gflops": flops / step_s / 1e9,
            "runs_s": times[name],
            "peak_mb": peaks[name],
            "idle_mb": setup["idle_mb"],
            "working_mb": peaks[name] - setup["idle_mb"],
            "loss": setup["loss"],
        }
    gflops = {name: c["gflops"] for name, c in competitors.items()}
    peak = {name: c["peak_mb"] for name, c in competitors.items()}
    return {
        "description": (
            f"one training step (forward, backward, update) of {' → '.join(map(str, sizes))} (ReLU hidden, softmax "
            f"cross-entropy), batch {batch}, synthetic float32 data; nominal {flops / 1e9:.2f} GFLOP per step "
            f"(6·B·Σ n_in·n_out); {config.steps_per_round} steps back to back per timed round; jaxnn's step donates "
            "params and optimiser state (updated in place); 'jaxnn' compiles its step in the process, 'jaxnn (cache "
            "warm)' loads it from the persistent compilation cache that an earlier process filled"
        ),
        "unit": "GFLOP/s",
        "flops_per_step": flops,
        "matmul_ceiling": ceiling,
        "competitors": skipped(competitors, REGIME_D),
        "targets": [
            target("d", "jaxnn ≥ 0.9× scikit-learn's throughput", ratio(gflops["jaxnn"], gflops["scikit-learn"]), 0.9),
            target("d", "jaxnn ≥ 70 % of the float32 matmul ceiling", ratio(gflops["jaxnn"], ceiling["gflops"]), 0.7),
            target(
                "d",
                "jaxnn peak memory ≤ 2× scikit-learn's (compilation cache warm, the default after the first run)",
                ratio(peak[warm], peak["scikit-learn"]),
                2.0,
                higher_is_better=False,
            ),
            target(
                "d",
                "jaxnn peak memory ≤ 2× scikit-learn's (cache cold: compiling in the process)",
                ratio(peak["jaxnn"], peak["scikit-learn"]),
                2.0,
                higher_is_better=False,
            ),
        ],
    }
