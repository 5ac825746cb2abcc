"""Regime e: jaxnn on an accelerator, against a plain ``jax.jit`` step and PyTorch eager on the same card.

    python benchmarks/accelerator.py                 # on a GPU/TPU host: full sizes, results-<device>.json
    python benchmarks/accelerator.py --quick --cpu   # a small smoke run on the CPU (what the tests run)

What is timed, all in one process on one device (so the ratios compare like with like):

* **steps**: one training step (forward, backward, plain gradient-descent update, parameters donated)
  of 784→512→512→10 at batch 1024 and 16384, and of the wide 784→4096→4096→10 at batch 8192, by
  ``jaxnn.train_step`` (the public step), ``jaxnn.make_train_step`` in each layout (the step factory),
  a plain ``jax.jit`` step written with ``jax.value_and_grad`` and optax, and PyTorch eager (float32
  and TF32) when PyTorch sees a CUDA device.  Throughput: ``repeats`` steps back to back, then one wait.
* **fit**: ``jaxnn.fit`` over 60,000 × 784 synthetic rows at batch 1024 (59 steps an epoch), cold (the
  first call in the process, compile included) and warm (per epoch and per step).
* **iris**: the seed's 4-10-5-3 network, 2000 full-batch epochs, time per epoch (launch latency).

Without an accelerator (and without ``--cpu``) it writes nothing and says so; ``benchmarks/run.py``
then reports regime e as skipped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LEARNING_RATE = 0.01

FULL = {
    "steps": [
        ("784-512-512-10", (784, 512, 512, 10), 1024),
        ("784-512-512-10", (784, 512, 512, 10), 16384),
        ("784-4096-4096-10", (784, 4096, 4096, 10), 8192),
    ],
    "fit_sizes": (784, 512, 512, 10),
    "fit_rows": 60_000,
    "fit_batch": 1024,
    "fit_epochs": 3,
    "iris_epochs": 2000,
    "repeats": 50,
}
QUICK = {
    "steps": [("64-32-32-10", (64, 32, 32, 10), 64), ("64-128-10", (64, 128, 10), 256)],
    "fit_sizes": (64, 32, 32, 10),
    "fit_rows": 2_000,
    "fit_batch": 64,
    "fit_epochs": 2,
    "iris_epochs": 200,
    "repeats": 5,
}


def median_seconds(run: Callable[[], object], repeats: int, rounds: int = 3) -> float:
    """Median over ``rounds`` of the time of ``repeats`` calls back to back, per call (run blocks at its end)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def synthetic(sizes, rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, sizes[0]), dtype=np.float32)
    labels = rng.integers(0, sizes[-1], rows)
    return x, labels, np.eye(sizes[-1], dtype=np.float32)[labels]


def he_params(sizes, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [
        {
            "W": (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32),
            "b": np.zeros(n_out, np.float32),
        }
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def mlp(sizes):
    import jaxnn

    hidden = tuple(jaxnn.Dense(units, "relu") for units in sizes[1:-1])
    return jaxnn.Sequential((*hidden, jaxnn.Dense(sizes[-1], "identity")))


def step_competitors(sizes, batch: int, repeats: int) -> dict[str, float]:
    """Seconds per step of each competitor on one batch (parameters updated in place where possible)."""
    import jax
    import jax.numpy as jnp
    import optax

    import jaxnn

    x, _, y = synthetic(sizes, batch)
    x, y = jax.device_put(x), jax.device_put(y)
    model, optimizer = mlp(sizes), jaxnn.gradient_descent(LEARNING_RATE)

    def timed(step, init=optimizer.init) -> float:
        state = [jax.tree.map(jnp.asarray, he_params(sizes)), init(he_params(sizes))]

        def run_steps():
            for _ in range(repeats):
                state[0], state[1], value = step(state[0], state[1])
            jax.block_until_ready(value)

        run_steps()  # compile and warm up
        return median_seconds(run_steps, repeats)

    results = {
        "jaxnn.train_step": timed(
            lambda p, s: jaxnn.train_step(model, "softmax_cross_entropy", optimizer, p, s, x, y, in_place=True)
        )
    }
    for layout in ("rows", "columns"):
        factory = jaxnn.make_train_step(model, "softmax_cross_entropy", optimizer, in_place=True, layout=layout)
        results[f"make_train_step ({layout})"] = timed(lambda p, s, f=factory: f(p, s, x, y))

    plain_optimizer = optax.sgd(LEARNING_RATE)

    def plain(params, opt_state, x, y):
        def loss(p):
            h = x
            for index, layer in enumerate(p):
                h = h @ layer["W"] + layer["b"]
                if index < len(p) - 1:
                    h = jax.nn.relu(h)
            return optax.softmax_cross_entropy(h, y).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = plain_optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, value

    plain_step = jax.jit(plain, donate_argnums=(0, 1))
    results["plain jax.jit step"] = timed(lambda p, s: plain_step(p, s, x, y), plain_optimizer.init)
    results.update(torch_competitors(sizes, batch, repeats))
    return results


def torch_competitors(sizes, batch: int, repeats: int) -> dict[str, float]:
    """PyTorch eager on its CUDA device, float32 and TF32; nothing when PyTorch or CUDA is missing."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    sys.path.insert(0, str(HERE))
    import torch_net

    device = torch.device("cuda")
    x, labels, y = synthetic(sizes, batch)
    x_t, labels_t, y_t = (torch.from_numpy(a).to(device) for a in (x, labels, y))
    results = {}
    for name, tf32 in (("PyTorch eager fp32", False), ("PyTorch eager TF32", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        step = torch_net.make_step(torch_net.build(he_params(sizes)).to(device), LEARNING_RATE, "softmax_cross_entropy")

        def run_steps(step=step):
            for _ in range(repeats):
                loss = step(x_t, labels_t, y_t)
            torch.cuda.synchronize()
            return loss

        run_steps()
        results[name] = median_seconds(run_steps, repeats)
    torch.backends.cuda.matmul.allow_tf32 = False
    return results


def fit_timings(sizes, rows: int, batch: int, epochs: int) -> dict[str, float]:
    """``jaxnn.fit`` over ``rows`` synthetic rows: the first call (compile included) and warm per-epoch time."""
    import jax

    import jaxnn

    x, _, y = synthetic(sizes, rows)
    model, optimizer = mlp(sizes), jaxnn.gradient_descent(LEARNING_RATE)
    params = he_params(sizes)

    def fit(n_epochs):
        result = jaxnn.fit(
            model,
            params,
            x,
            y,
            loss="softmax_cross_entropy",
            epochs=n_epochs,
            optimizer=optimizer,
            batch_size=batch,
            key=jax.random.key(0),
        )
        return jax.block_until_ready(result.params)

    start = time.perf_counter()
    fit(1)
    cold = time.perf_counter() - start
    per_epoch = median_seconds(lambda: fit(epochs), epochs)
    steps = -(-rows // batch)
    return {"fit first call (s)": cold, "fit per epoch (s)": per_epoch, "fit per step (s)": per_epoch / steps}


def iris_timing(epochs: int) -> dict[str, float]:
    import jax

    import jaxnn
    from jaxnn.data import iris_split, one_hot

    split = iris_split()
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params = model.init(jax.random.key(0), 4)
    y = one_hot(split.y_train, 3)

    def fit():
        jaxnn.fit(model, params, split.x_train, y, loss="categorical_cross_entropy", epochs=epochs, learning_rate=0.1)

    fit()
    return {"iris per epoch (s)": median_seconds(fit, epochs)}


def device_description():
    import jax

    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device": getattr(device, "device_kind", str(device)),
        "devices": jax.device_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def measure(settings: dict) -> dict:
    results = {"device": device_description(), "steps": [], "settings": dict(settings)}
    for label, sizes, batch in settings["steps"]:
        times = step_competitors(sizes, batch, settings["repeats"])
        plain = times["plain jax.jit step"]
        results["steps"].append(
            {
                "network": label,
                "batch": batch,
                "seconds": times,
                "ratio_to_plain": {name: value / plain for name, value in times.items()},
            }
        )
    sizes, batch = settings["fit_sizes"], settings["fit_batch"]
    results["fit"] = fit_timings(sizes, settings["fit_rows"], batch, settings["fit_epochs"])
    plain_at_fit_batch = next(
        (
            entry["seconds"]["plain jax.jit step"]
            for entry, (_, s_sizes, s_batch) in zip(results["steps"], settings["steps"], strict=True)
            if s_sizes == sizes and s_batch == batch
        ),
        None,
    )
    if plain_at_fit_batch:
        results["fit"]["fit per step / plain step"] = results["fit"]["fit per step (s)"] / plain_at_fit_batch
    results["iris"] = iris_timing(settings["iris_epochs"])
    return results


def table(results: dict) -> str:
    device = results["device"]
    lines = [f"Regime e on {device['device']} ({device['platform']}, jax {device['jax']}):", ""]
    for entry in results["steps"]:
        lines.append(f"{entry['network']}, batch {entry['batch']}:")
        for name, value in entry["seconds"].items():
            lines.append(f"  {name:28s} {value * 1e3:9.3f} ms/step   {entry['ratio_to_plain'][name]:5.2f}× plain")
    for group in ("fit", "iris"):
        for name, value in results[group].items():
            lines.append(f"{name:30s} {value:.6g}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--cpu", action="store_true", help="run even where JAX sees no accelerator")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results-<device>.json")
    args = parser.parse_args(argv)
    import jax

    if jax.default_backend() == "cpu" and not args.cpu:
        print("regime e skipped: JAX sees no accelerator here (pass --cpu to run it on the CPU anyway)")
        return 0
    results = measure(QUICK if args.quick else FULL)
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"results-{slug(results['device']['device'])}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
