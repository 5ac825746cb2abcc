"""Runs the competitors in processes of their own and times them in interleaved rounds.

A :class:`Worker` is a process of ``benchmarks/workers.py`` holding one or more competitors' jobs, warmed up
and then timed on command; :func:`interleaved` times any set of callables in rounds, each in an order of its own
(:func:`round_orders`); :func:`fresh_process_seconds` and :func:`json_from_process` run a fresh interpreter
(regime b's scripts; ``population.py``'s and ``lbfgs.py``'s one-job processes).  Used by ``benchmarks/run.py``'s
regimes, ``benchmarks/population.py`` and ``benchmarks/lbfgs.py``.
"""

from __future__ import annotations

import compileall
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
# Between timed runs, so that the previous process's spinning threads have gone idle: OpenBLAS's spin for
# 2**28 cycles (its THREAD_TIMEOUT, about 0.1 s on this machine) after their last task.
PAUSE_S = 0.3


def worker_env(cache_dir: str | None = None) -> dict:
    """Workers find jaxnn and the benchmark modules; they compile from scratch unless given a cache directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "JAXNN_CACHE_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS), str(ROOT)])
    if cache_dir is None:
        return {**env, "JAXNN_COMPILE_CACHE": "0"}
    return {**env, "JAXNN_COMPILE_CACHE": "1", "JAXNN_CACHE_DIR": cache_dir}


class Worker:
    """A process running one or more competitors' jobs (see ``workers.py``), timed on command once
    :meth:`wait_ready` has returned."""

    def __init__(self, regime: str, names: list[str], settings: dict, cache_dir: str | None = None):
        self.names = list(names)
        self._stderr = tempfile.TemporaryFile("w+")
        command = [sys.executable, str(BENCHMARKS / "workers.py"), regime, json.dumps(self.names), json.dumps(settings)]
        env = worker_env(cache_dir)
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env
        )
        self.setup: dict[str, dict] = {}

    def wait_ready(self) -> Worker:
        """Wait for every job's set-up and warm-up; ``setup[name]`` gets its first call's time and report."""
        self.setup = {name: self._answer() for name in self.names}
        return self

    def runner(self, name: str):
        """A callable timing ``name``'s job once and returning the seconds measured in the worker."""
        index = self.names.index(name)

        def run() -> float:
            self._send(f"run {index}")
            return self._answer()["seconds"]

        return run

    def close(self) -> float:
        """Ends the process; returns its peak resident memory (MiB)."""
        self._send("quit")
        peak = self._answer()["peak_mb"]
        self._process.wait()
        self._stderr.close()
        return peak

    def _send(self, command: str) -> None:
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()

    def _answer(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            self._stderr.seek(0)
            raise RuntimeError(f"benchmark worker {self.names} failed:\n{self._stderr.read()[-3000:]}")
        return json.loads(line)


def start_workers(regime: str, names, settings: dict, *, together: bool = False) -> dict[str, Worker]:
    """One worker per competitor, each warmed up alone (its first call is timed) unless ``together``."""
    if together:
        started = {name: Worker(regime, [name], settings) for name in names}
        return {name: worker.wait_ready() for name, worker in started.items()}
    return {name: Worker(regime, [name], settings).wait_ready() for name in names}


def timed_rounds(running: dict[str, Worker], repeats: int) -> dict[str, list[float]]:
    """Interleaved rounds over every competitor of ``running`` (name → the worker holding its job)."""
    return interleaved({name: worker.runner(name) for name, worker in running.items()}, repeats)


def close_all(running: dict[str, Worker]) -> dict[str, float]:
    """Ends every worker once; returns each competitor's peak memory (that of the process holding it)."""
    peaks: dict[int, float] = {}
    for worker in running.values():
        if id(worker) not in peaks:
            peaks[id(worker)] = worker.close()
    return {name: peaks[id(worker)] for name, worker in running.items()}


def round_orders(names: list, repeats: int, seed: int = 0) -> list[list]:
    """The order of each of ``repeats`` rounds: a shuffle of ``names`` per round, the same in every run (``seed``).

    With one order for every round, or the same order rotated, each competitor is always timed right after the
    same other one (a rotation only changes which one starts a round), and if that one's process leaves threads
    spinning, it is always the one slowed: scikit-learn, timed right after NumPy's process, ran a third slower.
    Shuffled, the competitor before each one changes from round to round."""
    rng = random.Random(seed)
    return [rng.sample(list(names), len(names)) for _ in range(repeats)]


def interleaved(runs: dict, repeats: int, pause_s: float = PAUSE_S) -> dict[str, list]:
    """``repeats`` rounds, each timing every competitor once, in the orders of :func:`round_orders`: a slow
    spell of a shared machine hits all alike, and no competitor always follows the same other one.

    ``runs`` maps a name to a callable returning the seconds it measured (or anything else to collect).
    ``pause_s`` between runs lets the previous process's threads go idle (0 within one process).
    """
    times: dict[str, list] = {name: [] for name in runs}
    for order in round_orders(list(runs), repeats):
        for name in order:
            if pause_s:
                time.sleep(pause_s)
            times[name].append(runs[name]())
    return times


def timed(run: Callable[[], object]) -> tuple[float, object]:
    """Seconds of one call of ``run`` (which blocks until its result is ready), and its result."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def seconds(run: Callable[[], object]) -> float:
    """Seconds of one call of ``run`` (which blocks until its result is ready)."""
    return timed(run)[0]


def byte_compile_jaxnn() -> None:
    """Write the bytecode of jaxnn's modules (``jaxnn/**/__pycache__``, which git ignores), as installing a package
    does, so that a fresh interpreter loads jaxnn's bytecode as it loads scikit-learn's and JAX's.

    Python reads bytecode also where ``PYTHONDONTWRITEBYTECODE`` keeps it from writing any (as on the machine of
    the recorded runs); without this, every process there compiled jaxnn's modules from source (0.04-0.06 s of
    a first fit's imports) where a user's process, with jaxnn installed, loads them.
    """
    compileall.compile_dir(ROOT / "jaxnn", quiet=1)


def fresh_process_seconds(script: str, env: dict) -> float:
    """Wall time of ``python -c script`` from launch to exit; a failure raises with the child's stderr."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=BENCHMARKS, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"fresh-process benchmark failed:\n{done.stderr[-3000:]}")
    return elapsed


def json_from_process(arguments: list[str], env: dict | None, what: str, timeout: float | None = None) -> dict:
    """Run ``arguments`` to the end and return the last line it printed, read as JSON; a failure raises with
    the end of its stderr (``what`` names it in the message)."""
    done = subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
