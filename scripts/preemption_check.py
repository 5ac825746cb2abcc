"""Stop jaxnn-train at random moments, the way a machine that is taken back stops it, and check what is left.

    python scripts/preemption_check.py                    # 20 SIGTERMs and 5 kill -9s per mode
    python scripts/preemption_check.py --modes adam,lbfgs --sigterms 5 --kills 2 --json report.json

For each mode (a full-batch gd run, minibatch sgd and adam, L-BFGS, a population of two learning rates), one
uninterrupted run is the reference; then every try starts the same run with ``--checkpoint-seconds 0.5``, waits a
random time between 0 and the reference run's duration, and sends SIGTERM (or SIGKILL), then:

* SIGTERM: the exit status must be 143 and the lock on ``--out`` released; a run stopped while it trains must
  leave a checkpoint (a population: ``population.npz``, every member's state), and one stopped before training
  must say that nothing was saved.  A process can also end by SIGTERM's default
  action (the shell reports 143 for it as well; Python's subprocess, -15): while Python is still starting, before
  jaxnn-train's handler is in place, or once the run is over and the interpreter shuts down; the table counts
  those apart;
* either signal: where a checkpoint was left, ``--resume`` up to the same ``--epochs`` must end with the
  reference's checkpoint, bit for bit (arrays, not the timings; a population's ``population.npz``, every member).

This is issue 21's loop, run by hand (it takes minutes, so it is not part of the test suite); it prints one line
per try and a table, and exits 1 when any try broke a rule.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "gd": ["--dataset", "digits", "--optimizer", "gd", "--epochs", "20000"],
    "sgd": ["--dataset", "digits", "--optimizer", "sgd", "--batch-size", "64", "--epochs", "300"],
    "adam": ["--dataset", "digits", "--optimizer", "adam", "--batch-size", "64", "--epochs", "300"],
    "lbfgs": ["--dataset", "digits", "--optimizer", "lbfgs", "--layers", "32", "--epochs", "400"],
    "population": ["--dataset", "digits", "--optimizer", "gd", "--lr", "0.05,0.1", "--epochs", "20000"],
}
LOCK = ".jaxnn-train.lock"


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "jaxnn.cli", *map(str, args)]


def _environment() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), capture_output=True, text=True, env=_environment(), cwd=ROOT, timeout=900)


def _checkpoint_file(mode: str) -> str:
    """The checkpoint a mode's ``--resume DIR`` continues: a population's holds every member."""
    return "population.npz" if mode == "population" else "checkpoint.npz"


def _arrays(directory: Path, name: str) -> dict[str, np.ndarray] | None:
    path = directory / name
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files if name != "meta" and not name.startswith("extras/")}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[name], b[name]) for name in a)


def _one_try(mode: str, stop: signal.Signals, after: float, reference: dict, work: Path, index: int) -> dict:
    """Start the mode's run, send ``stop`` after ``after`` seconds, check what it left, resume it when it can."""
    out = work / f"{mode}-{index}-{stop.name}"
    process = subprocess.Popen(
        _command(*MODES[mode], "--checkpoint-seconds", 0.5, "--quiet", "--out", out),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(), cwd=ROOT,
    )  # fmt: skip
    time.sleep(after)
    process.send_signal(stop)
    _, err = process.communicate(timeout=300)
    left = _arrays(out, _checkpoint_file(mode))
    outcome = {"mode": mode, "signal": stop.name, "after": round(after, 2), "status": process.returncode}
    outcome |= {"checkpoint": left is not None, "lock_left": (out / LOCK).exists(), "problems": []}
    finished = process.returncode == 0  # the run ended before the signal came
    # Killed by SIGTERM's default action (the shell's status 143 too): before jaxnn-train's handler is in place
    # (Python still starting), or after the run ended (the interpreter shutting down, the handler gone).
    outcome["default_action"] = process.returncode == -signal.SIGTERM
    if stop == signal.SIGTERM and not finished:
        if process.returncode not in (143, -signal.SIGTERM):
            outcome["problems"].append(f"exit status {process.returncode}, not 143: {err.strip()[-300:]}")
        if outcome["lock_left"]:
            outcome["problems"].append("the lock on --out was left behind")
        said = "nothing was saved" in err or outcome["default_action"]
        if left is None and not said:
            outcome["problems"].append(f"stopped without a checkpoint and without saying so: {err.strip()[-300:]}")
    if "Traceback" in err:
        outcome["problems"].append("a traceback: " + err.strip()[-500:])
    if left is not None and not finished:
        resumed = _run("--resume", out, "--epochs", MODES[mode][-1], "--quiet")
        match = _same(_arrays(out, _checkpoint_file(mode)), reference)
        outcome["resumed"] = resumed.returncode == 0 and match
        if not outcome["resumed"]:
            outcome["problems"].append(f"--resume did not end with the reference (exit {resumed.returncode})")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    parser.add_argument("--sigterms", type=int, default=20, help="SIGTERM tries per mode (default 20)")
    parser.add_argument("--kills", type=int, default=5, help="kill -9 tries per mode (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every try's outcome here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="jaxnn-preemption-") as scratch:
        work = Path(scratch)
        for mode in args.modes.split(","):
            started = time.perf_counter()
            whole = _run(*MODES[mode], "--quiet", "--out", work / f"{mode}-reference")
            duration = time.perf_counter() - started
            if whole.returncode != 0:
                print(f"{mode}: the reference run failed: {whole.stderr.strip()[-500:]}", file=sys.stderr)
                return 1
            reference = _arrays(work / f"{mode}-reference", _checkpoint_file(mode))
            print(f"{mode}: reference run {duration:.1f} s", flush=True)
            tries = [signal.SIGTERM] * args.sigterms + [signal.SIGKILL] * args.kills
            for index, stop in enumerate(tries):
                outcome = _one_try(mode, stop, rng.uniform(0.0, duration), reference, work, index)
                outcomes.append(outcome)
                print(json.dumps(outcome), flush=True)
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1))
    print("\n| mode | signal | tries | exit statuses | checkpoint left | resumed = reference | problems |")
    print("|---|---|---|---|---|---|---|")  # exit status -15: SIGTERM's default action (see the docstring)
    for mode in args.modes.split(","):
        for name in ("SIGTERM", "SIGKILL"):
            rows = [o for o in outcomes if o["mode"] == mode and o["signal"] == name]
            if rows:
                statuses = {}
                for row in rows:
                    statuses[row["status"]] = statuses.get(row["status"], 0) + 1
                resumed = [row["resumed"] for row in rows if "resumed" in row]
                print(
                    f"| {mode} | {name} | {len(rows)} | {statuses} | {sum(r['checkpoint'] for r in rows)} "
                    f"| {sum(resumed)}/{len(resumed)} | {sum(len(r['problems']) for r in rows)} |"
                )
    return 1 if any(o["problems"] for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
