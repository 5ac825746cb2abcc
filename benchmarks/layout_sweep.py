"""The sweep behind ``jaxnn.engine.decide_layout``: the loop's two layouts timed over network widths and batches.

    python benchmarks/layout_sweep.py [--quick] [--json PATH] [--widths 4 16 ...] [--batches 0 32 ...]

For every width ``w``, batch size ``b`` (0: full batch), solver (``gd``, ``adam``) and dtype (float32,
float64): a network ``w → w ReLU → w ReLU → 10 softmax`` (categorical cross-entropy) on ``n`` generated
rows — 150 for full batch (iris-sized), ``max(8·b, 8192)`` with minibatches — trained by ``jaxnn.fit`` with
``layout="rows"`` and with ``layout="columns"``.  The time of an epoch is the slope between a short and a
long warm fit (compilation excluded), the median of ``--repeats`` interleaved rounds.  A point's verdict is
the ratio columns / rows (< 1: columns win).  The JSON (``benchmarks/results-layout.json``) keeps every
point; ``benchmarks/README.md`` quotes the table and the thresholds ``decide_layout`` takes from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import jaxnn  # noqa: E402
from jaxnn.layers import Dense, Sequential  # noqa: E402

FULL_BATCH_ROWS = 150
MINIBATCH_ROWS = 8192  # at least: a data set larger than the caches, as real tables are


def _rows(batch: int) -> int:
    return FULL_BATCH_ROWS if batch == 0 else max(8 * batch, MINIBATCH_ROWS)


def _problem(width: int, batch: int, dtype):
    rng = np.random.default_rng(0)
    n = _rows(batch)
    x = rng.standard_normal((n, width)).astype(dtype)
    y = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
    model = Sequential((Dense(width, "relu"), Dense(width, "relu"), Dense(10, "softmax")))
    params = jax.tree.map(lambda leaf: leaf.astype(dtype), model.init(jax.random.key(0), width))
    return model, params, x, y


def _epoch_seconds(model, params, x, y, *, batch: int, solver: str, layout: str, epochs: tuple[int, int]) -> float:
    """Seconds per epoch: (t(long) − t(short)) / (long − short) of warm fits."""
    kwargs = dict(
        loss="categorical_cross_entropy",
        optimizer=solver,
        learning_rate=1e-3,
        layout=layout,
        batch_size=batch or None,
        key=jax.random.key(1) if batch else None,
    )
    times = []
    for n_epochs in epochs:
        start = time.perf_counter()
        jaxnn.fit(model, params, x, y, epochs=n_epochs, **kwargs)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / (epochs[1] - epochs[0])


def _epochs_for(width: int, batch: int) -> tuple[int, int]:
    """Enough epochs that the slope is well above timer noise, few enough for wide networks and small batches:
    at most about 2·10⁹ multiply-adds and 20,000 steps in the long fit, at least 4 epochs."""
    rows = _rows(batch)
    steps = 1 if batch == 0 else -(-rows // batch)
    work = rows * width * width  # multiply-adds of one epoch, roughly
    long = int(np.clip(min(2e9 / max(work, 1), 20_000 / steps), 4, 2000))
    return max(1, long // 4), long


def measure_point(width: int, batch: int, solver: str, dtype, repeats: int) -> dict:
    model, params, x, y = _problem(width, batch, dtype)
    epochs = _epochs_for(width, batch)
    for layout in ("rows", "columns"):  # compile both and warm up
        _epoch_seconds(model, params, x, y, batch=batch, solver=solver, layout=layout, epochs=(1, 2))
    samples = {"rows": [], "columns": []}
    for _ in range(repeats):
        for layout in samples:
            samples[layout].append(
                _epoch_seconds(model, params, x, y, batch=batch, solver=solver, layout=layout, epochs=epochs)
            )
    rows_s, columns_s = (statistics.median(samples[layout]) for layout in ("rows", "columns"))
    return {
        "width": width,
        "batch": batch,
        "rows_in_data": _rows(batch),
        "solver": solver,
        "dtype": np.dtype(dtype).name,
        "rows_s": rows_s,
        "columns_s": columns_s,
        "columns_over_rows": columns_s / rows_s,
        "chosen": jaxnn.engine.decide_layout(None, model, width),
    }


def markdown(points: list[dict]) -> str:
    """One table per solver and dtype: rows are widths, columns batch sizes, cells columns/rows (chosen)."""
    lines = []
    keys = sorted({(p["solver"], p["dtype"]) for p in points})
    for solver, dtype in keys:
        subset = [p for p in points if (p["solver"], p["dtype"]) == (solver, dtype)]
        batches = sorted({p["batch"] for p in subset})
        widths = sorted({p["width"] for p in subset})
        head = " | ".join("full (150)" if b == 0 else str(b) for b in batches)
        lines += [f"**{solver}, {dtype}** — columns time / rows time (the layout `decide_layout` chooses)", ""]
        lines += [f"| width | {head} |", "|---|" + "---|" * len(batches)]
        for width in widths:
            cells = []
            for batch in batches:
                point = next((p for p in subset if p["width"] == width and p["batch"] == batch), None)
                cells.append("—" if point is None else f"{point['columns_over_rows']:.2f} ({point['chosen'][0]})")
            lines.append(f"| {width} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 16, 32, 64, 256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[0, 32, 256, 1024], help="0: full batch")
    parser.add_argument("--solvers", nargs="+", default=["gd", "adam"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="two widths, two batches, one repeat")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.batches, args.repeats, args.dtypes = [4, 64], [0, 32], 1, ["float32"]
    if "float64" in args.dtypes:
        jax.config.update("jax_enable_x64", True)  # this script's own process: float64 inputs stay float64
    points = []
    for dtype in args.dtypes:
        for solver in args.solvers:
            for width in args.widths:
                for batch in args.batches:
                    point = measure_point(width, batch, solver, np.dtype(dtype), args.repeats)
                    points.append(point)
                    print(
                        f"{solver:4} {dtype:7} width {width:5} batch {batch:5}: rows {point['rows_s'] * 1e3:9.3f} ms"
                        f"  columns {point['columns_s'] * 1e3:9.3f} ms  ratio {point['columns_over_rows']:.2f}"
                        f"  chosen {point['chosen']}",
                        flush=True,
                    )
    print()
    print(markdown(points))
    if args.json is not None:
        environment = {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "backend": jax.default_backend(),
            "device": str(jax.devices()[0].device_kind),
            "jax": jax.__version__,
            "load_average": os.getloadavg(),
            "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        args.json.write_text(json.dumps({"environment": environment, "points": points}, indent=1) + "\n")


if __name__ == "__main__":
    main()
