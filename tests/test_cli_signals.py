"""jaxnn-train as a process among others: Ctrl-C at any moment, and one writer per output directory."""

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from cli_support import ROOT, arrays, environment, shell, train

from jaxnn import checkpoint
from jaxnn.cli.errors import CliError
from jaxnn.cli.locking import LOCK_FILE, OutLock

# jaxnn-train's main() in a fresh process, saying "ready" on stderr first: a signal sent after that line
# reaches main() itself (the import of the jaxnn package before it is not the CLI's to guard).
READY = "import sys; from jaxnn.cli import main; print('ready', file=sys.stderr, flush=True); sys.exit(main())"


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", READY, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        cwd=ROOT,
    )


def _wait_until_ready(process: subprocess.Popen) -> None:
    line = process.stderr.readline()
    assert line == "ready\n", line + process.stderr.read()


def _interrupt_after(process: subprocess.Popen, delay: float, presses: int = 1) -> None:
    _wait_until_ready(process)
    time.sleep(delay)
    for _ in range(presses):
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)


DELAYS = (0.0, 0.2, 0.5, 1.0, 1.6, 2.5, 4.0)  # import, data, devices, first compile, training


@pytest.mark.slow
def test_ctrl_c_at_any_moment_exits_130(tmp_path):
    # the run; Ctrl-C used to be lost in some runs (swallowed inside JAX: training went on, exit 0)
    processes = [
        _start("--dataset", "digits", "--optimizer", "adam", "--epochs", 1000, "--out", tmp_path / f"run-{i}")
        for i in range(len(DELAYS))
    ]
    senders = [
        threading.Thread(target=_interrupt_after, args=(process, delay))
        for process, delay in zip(processes, DELAYS, strict=True)
    ]
    try:
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=120)
        outcomes = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for i, (process, (_, err)) in enumerate(zip(processes, outcomes, strict=True)):
        assert process.returncode == 130, (DELAYS[i], err)
        assert "Traceback" not in err and "Exception ignored" not in err, err
        out = tmp_path / f"run-{i}"
        if (out / "checkpoint.npz").exists():  # training had started: it stopped at a chunk boundary, saved
            epoch = checkpoint.read_config(out / "checkpoint.npz")["epoch"]
            assert f"interrupted at epoch {epoch}; checkpoint in {out}; continue with --resume {out}" in err, err
        else:
            assert "nothing was saved" in err.splitlines()[-1], err
        assert not (out / LOCK_FILE).exists()


# Ctrl-C before CtrlC's handler is in place: simulated by a CtrlC whose construction is interrupted.
EARLY_CTRL_C = """
import os, signal, sys
import jaxnn.cli as cli
def interrupted(*args, **kwargs):
    signal.raise_signal(signal.SIGINT)  # Python's default handler raises KeyboardInterrupt here
cli.CtrlC = interrupted
sys.exit(cli.main(["--epochs", "1"]))
"""


def test_ctrl_c_before_the_handler_is_in_place_exits_130():
    finished = subprocess.run(
        [sys.executable, "-c", EARLY_CTRL_C], capture_output=True, text=True, env=environment(), cwd=ROOT
    )
    assert finished.returncode == 130, finished.stderr
    assert finished.stderr == "jaxnn-train: interrupted before starting; nothing was saved\n", finished.stderr


@pytest.mark.slow
def test_a_second_ctrl_c_quits_at_once(tmp_path):
    # a million epochs of digits: the first chunk alone takes minutes, so only the second Ctrl-C can end it soon
    process = _start("--dataset", "digits", "--epochs", 1_000_000, "--quiet", "--out", tmp_path)
    try:
        _interrupt_after(process, 3.0, presses=2)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Ctrl-C: stopping at the next safe point (Ctrl-C again quits at once)" in err
    assert "Ctrl-C again: quitting at once; the last checkpoint written is kept" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_one_writer_per_directory_and_ctrl_c_resumes_exactly(tmp_path):
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    first = _start("--epochs", 1_000_000, "--checkpoint-every", 5, "--quiet", "--out", interrupted)
    try:
        _wait_until_ready(first)
        deadline = time.monotonic() + 120
        while not (interrupted / "checkpoint.npz").exists() and first.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        in_use = f"{interrupted} is in use by another jaxnn-train (process {first.pid}); wait for it to finish"
        for args in (["--out", str(interrupted), "--overwrite", "--epochs", "2"], ["--resume", str(interrupted)]):
            second = shell(*args, timeout=120)  # used to run alongside: both wrote checkpoint.npz.tmp
            assert second.returncode == 2 and second.stderr.count("\n") == 1 and in_use in second.stderr, second.stderr
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130, err
    assert "Traceback" not in err and not (interrupted / LOCK_FILE).exists()
    epoch = checkpoint.read_config(interrupted / "checkpoint.npz")["epoch"]
    assert f"interrupted at epoch {epoch}; checkpoint in {interrupted}; continue with --resume {interrupted}" in err
    assert epoch >= 5
    total = epoch + 3
    assert train("--resume", interrupted, "--epochs", total, "--quiet") == 0
    assert train("--epochs", total, "--checkpoint-every", 10**6, "--quiet", "--out", whole) == 0
    expected, resumed = arrays(whole), arrays(interrupted)
    for name in expected:
        if not name.startswith("extras/"):
            np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


def test_a_lock_left_by_a_dead_run_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(finished.stdout)  # a run killed with -9 leaves its file, not its flock
    assert train("--epochs", "2", "--quiet", "--out", tmp_path) == 0
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_held_lock_refuses_a_second_holder(tmp_path):
    with OutLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().strip().isdigit()
        with pytest.raises(CliError, match=rf"{tmp_path} is in use by another jaxnn-train \(process \d+\)"):
            with OutLock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists()
    with OutLock(tmp_path):  # released: free again
        pass
