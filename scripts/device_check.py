"""The device check: is jaxnn right and fast on the accelerator this host has?  One command, one report.

    python scripts/device_check.py                   # or: make device-check
    python scripts/device_check.py --out reports/    # where the report goes (default: benchmarks/)

On whatever device JAX sees first (a GPU, a TPU, or the CPU when there is nothing else) it runs, each
step in a subprocess under its own time limit so that one hang cannot eat the others' time:

1. the gradient-check suite (``tests/test_gradcheck.py``, ``tests/test_model_gradients.py``,
   ``tests/test_ops.py``) with matmul precision ``highest`` (``tests/conftest.py`` pins it);
2. the seed's iris example (``scripts/train.py``);
3. ``jaxnn-train --dataset digits`` with ``--platform`` of that device;
4. a short benchmark (``benchmarks/accelerator.py``: steps, fit and the iris network against a plain
   ``jax.jit`` step and PyTorch eager where PyTorch sees CUDA).

It writes ``device-check-<device>.md`` (device, versions, pass/fail counts, timings, and the tail of
any step that failed) and exits 0 when every step passed.  Budget: under 5 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PYTEST_SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|error|errors|xfailed|xpassed)")


class Step(NamedTuple):
    name: str
    command: list[str]
    seconds_allowed: int


class Outcome(NamedTuple):
    name: str
    ok: bool
    seconds: float
    summary: str
    tail: str


def device_facts() -> dict:
    """Platform, device kind and count, and the versions that matter, from a fresh interpreter."""
    code = (
        "import json, platform, jax, jaxlib, optax, numpy, sklearn\n"
        "from jaxnn._builds import QUICK_BUILDS, FallbackJit\n"
        "d = jax.devices()[0]\n"
        "quick = FallbackJit(lambda x: x + 1, QUICK_BUILDS)\n"
        "quick(numpy.ones(2, numpy.float32))\n"
        "print(json.dumps({'platform': d.platform, 'device': getattr(d, 'device_kind', str(d)),"
        " 'devices': jax.device_count(), 'python': platform.python_version(), 'jax': jax.__version__,"
        " 'jaxlib': jaxlib.__version__, 'optax': optax.__version__, 'numpy': numpy.__version__,"
        " 'scikit-learn': sklearn.__version__, 'quick_builds_left': quick.builds_left,"
        " 'quick_builds': len(QUICK_BUILDS)}))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env())
    return json.loads(output.stdout.strip().splitlines()[-1])


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several processes may share the card
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def steps(facts: dict, out: Path, workers: int) -> list[Step]:
    python = sys.executable
    cli_platform = {"cuda": "gpu", "rocm": "gpu"}.get(facts["platform"], facts["platform"])
    gradchecks = ["tests/test_gradcheck.py", "tests/test_model_gradients.py", "tests/test_ops.py"]
    parallel = ["-n", str(workers)] if workers > 1 else []
    return [
        Step("gradient checks", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *parallel, *gradchecks], 180),
        Step("seed iris example", [python, "scripts/train.py", "--quiet"], 60),
        Step(
            "jaxnn-train digits",
            [
                python,
                "-m",
                "jaxnn.cli",
                "--dataset",
                "digits",
                "--platform",
                cli_platform,
                "--quiet",
                "--out",
                str(out / "device-check-digits"),
                "--overwrite",
            ],
            90,
        ),
        Step("benchmark", [python, "benchmarks/accelerator.py", "--out", str(out)], 150),
    ]


def run_step(step: Step) -> Outcome:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            step.command, cwd=ROOT, capture_output=True, text=True, timeout=step.seconds_allowed, env=_env()
        )
        text, ok = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as expired:
        partial = expired.stdout or ""  # bytes, even with text=True (a known quirk of subprocess)
        text = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        text, ok = text + f"\n(stopped after {step.seconds_allowed} s)", False
    seconds = time.perf_counter() - started
    return Outcome(step.name, ok, seconds, summarise(step.name, text), "\n".join(text.strip().splitlines()[-25:]))


def summarise(name: str, text: str) -> str:
    """The line of a step's output worth a row in the report."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if name == "gradient checks":
        counts = PYTEST_SUMMARY.findall(text)
        return ", ".join(f"{n} {word}" for n, word in counts) or (lines[-1] if lines else "no output")
    for marker in ("test accuracy", "ms/step", "regime e skipped"):
        found = [line.strip() for line in lines if marker in line]
        if found:
            return found[-1] if marker != "ms/step" else f"{len(found)} step timings (see below)"
    return lines[-1].strip() if lines else "no output"


def xla_options_line(facts: dict) -> str:
    """Whether this XLA takes jaxnn's compile-shortening options (``jaxnn/_builds.py``): of its quick builds (the
    options in their list, the plain build last, which every XLA takes) those refused are skipped."""
    left, total = facts["quick_builds_left"], facts["quick_builds"]
    if left == total:
        return "This XLA takes jaxnn's compile-shortening options (`jaxnn/_builds.py`: every build accepted)."
    return (
        f"This XLA refused {total - left} of jaxnn's {total - 1} compile-shortening builds (`jaxnn/_builds.py`): the "
        "next one runs, with a longer first compile (and, where that is the plain build, results that may differ in "
        "the last bit from the unoptimised build's)."
    )


def report(facts: dict, outcomes: list[Outcome], benchmark: dict | None, total: float) -> str:
    versions = ", ".join(f"{k} {facts[k]}" for k in ("python", "jax", "jaxlib", "optax", "numpy", "scikit-learn"))
    lines = [
        f"# jaxnn device check: {facts['device']}",
        "",
        f"{facts['devices']} × {facts['device']} ({facts['platform']}); {versions}; host {platform.node()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {total:.0f} s in all.",
        "",
        xla_options_line(facts),
        "",
        "| step | result | seconds | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {o.name} | {'pass' if o.ok else '**FAIL**'} | {o.seconds:.0f} | {o.summary} |" for o in outcomes]
    if benchmark:
        lines += ["", "Benchmark (ms per step; ratio to the plain `jax.jit` step on this card):", ""]
        for entry in benchmark["steps"]:
            lines.append(
                f"- {entry['network']}, batch {entry['batch']}: "
                + "; ".join(
                    f"{name} {seconds * 1e3:.3f} ({entry['ratio_to_plain'][name]:.2f}×)"
                    for name, seconds in entry["seconds"].items()
                )
            )
        lines.append("- " + "; ".join(f"{k} {v:.4g}" for k, v in {**benchmark["fit"], **benchmark["iris"]}.items()))
    for outcome in outcomes:
        if not outcome.ok:
            lines += ["", f"## {outcome.name}: last lines", "", "```", outcome.tail, "```"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="folder for the report")
    parser.add_argument(
        "--workers", type=int, default=min(8, os.cpu_count() or 1), help="pytest-xdist workers for the gradient checks"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    facts = device_facts()
    outcomes = []
    for step in steps(facts, args.out, args.workers):
        outcome = run_step(step)
        print(
            f"{outcome.name}: {'pass' if outcome.ok else 'FAIL'} in {outcome.seconds:.0f} s — {outcome.summary}",
            flush=True,
        )
        outcomes.append(outcome)
    slug = re.sub(r"[^a-z0-9]+", "-", facts["device"].lower()).strip("-")
    results = args.out / f"results-{slug}.json"
    fresh = results.exists() and results.stat().st_mtime >= time.time() - (time.perf_counter() - started)
    benchmark = json.loads(results.read_text()) if fresh else None  # never an earlier run's numbers
    path = args.out / f"device-check-{slug}.md"
    path.write_text(report(facts, outcomes, benchmark, time.perf_counter() - started))
    print(f"wrote {path}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
