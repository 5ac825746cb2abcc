"""jaxnn-train as a process among others: Ctrl-C at any moment, and one writer per output directory."""

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from cli_support import ROOT, arrays, environment, regression_csv, shell, train

from jaxnn import checkpoint
from jaxnn.cli import command, population_results, training
from jaxnn.cli.errors import CliError
from jaxnn.cli.interrupts import REPEAT_SECONDS, StopSignals
from jaxnn.cli.locking import LOCK_FILE, OutLock


@pytest.fixture(autouse=True, scope="module")
def _cache_of_the_killed(tmp_path_factory):
    """The processes this module kills compile into a cache that no other test reads (JAX writes an entry in
    place: a process killed while writing one leaves it torn)."""
    saved = os.environ["JAXNN_CACHE_DIR"]
    os.environ["JAXNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("killed-xla-cache"))
    yield
    os.environ["JAXNN_CACHE_DIR"] = saved


# The jaxnn-train command (command_line, as the console script runs it) in a fresh process, saying "ready" on
# stderr first: a signal sent after that line reaches main() itself (the import of the jaxnn package before it
# is not the CLI's to guard).
READY = (
    "import sys; from jaxnn.cli import command_line; print('ready', file=sys.stderr, flush=True); "
    "sys.exit(command_line())"
)


def _start(*args, **environment_extra: str) -> subprocess.Popen:
    """jaxnn-train with ``args`` in a fresh process (XLA's default flags unless ``environment_extra`` names some)."""
    return subprocess.Popen(
        [sys.executable, "-c", READY, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(**environment_extra),
        cwd=ROOT,
    )


def _wait_until_ready(process: subprocess.Popen) -> None:
    line = process.stderr.readline()
    assert line == "ready\n", line + process.stderr.read()


def _wait_while_running(process: subprocess.Popen, done, what: str, seconds: float = 120) -> None:
    """Until ``done()``, polling; fails (with ``what`` did not happen) when ``process`` ends first or time runs out."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline and process.poll() is None, f"{what} did not happen"
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    with socket.socket() as client:
        return client.connect_ex(("127.0.0.1", port)) == 0


def _interrupt_after(
    process: subprocess.Popen, delay: float, presses: int = 1, ready: bool = False, gap: float = 0.05
) -> None:
    if not ready:
        _wait_until_ready(process)
    time.sleep(delay)
    for _ in range(presses):
        process.send_signal(signal.SIGINT)
        time.sleep(gap)


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
        else:  # stopped before anything was written: the --out it created is gone
            assert "nothing was saved" in err.splitlines()[-1] and not out.exists(), err
        assert not (out / LOCK_FILE).exists()


@pytest.mark.parametrize("population", [False, True], ids=["one network", "population"])
def test_a_signal_while_a_csv_pipe_waits_for_a_writer_quits_at_once(tmp_path, population):
    """--csv a named pipe no one writes to (or a shell's <(...) still waiting): the signal set the flag and the
    read went on waiting, so timeout's or a scheduler's SIGTERM left the run hanging until data came.  It now quits
    at once, as while joining other hosts, leaving neither the lock nor the --out it created."""
    fifo, out = tmp_path / "rows.csv", tmp_path / "run"
    os.mkfifo(fifo)
    lists = ["--seed", "0,1"] if population else []
    process = _start("--csv", fifo, "--target", "label", *lists, "--quiet", "--out", out)
    try:
        _wait_until_ready(process)
        _wait_while_running(process, lambda: (out / LOCK_FILE).exists(), "taking the lock")
        time.sleep(0.5)  # into the read, which waits for a writer
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == "jaxnn-train: SIGTERM: interrupted while loading the data; nothing was saved"
    assert not out.exists()


# Ctrl-C before CtrlC's handler is in place: simulated by a CtrlC whose construction is interrupted.
EARLY_CTRL_C = """
import os, signal, sys, time
import jaxnn.cli as cli
def interrupted(*args, **kwargs):
    signal.raise_signal(signal.SIGINT)  # Python's default handler raises KeyboardInterrupt here
    time.sleep(10)  # ... at the next check for signals, at the latest in this sleep (it once came after the return)
cli.StopSignals = interrupted
sys.exit(cli.main(["--epochs", "1"]))
"""


def test_ctrl_c_before_the_handler_is_in_place_exits_130():
    finished = subprocess.run(
        [sys.executable, "-c", EARLY_CTRL_C], capture_output=True, text=True, env=environment(), cwd=ROOT
    )
    assert finished.returncode == 130, finished.stderr
    assert finished.stderr == "jaxnn-train: interrupted before starting; nothing was saved\n", finished.stderr


def _wait_for_cpu_seconds(process: subprocess.Popen, seconds: float) -> None:
    """Until ``process`` has used ``seconds`` of CPU time (past its start-up and first compilations, whatever the
    machine's load), or ended."""
    ticks = os.sysconf("SC_CLK_TCK")
    while process.poll() is None:
        with open(f"/proc/{process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / ticks >= seconds:  # utime + stime
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_ctrl_c_quits_at_once(tmp_path):
    # ten million epochs of digits in chunks of a fiftieth (checkpoints rarely asked for, so chunks are not cut
    # short): a chunk takes a minute or more (a million epochs' 20,000 took 7 s, and the first press once landed
    # near a chunk's end on a loaded machine), so only the second Ctrl-C can end it soon.  The presses come once the run
    # trains (6 s of CPU time: start-up, the compilations and the short first chunk take about 3): one during
    # start-up or the first chunk would end the run at once, and the second would find it gone.
    process = _start(
        "--dataset", "digits", "--epochs", 10_000_000, "--checkpoint-seconds", 100_000, "--quiet", "--out", tmp_path
    )
    try:
        _wait_until_ready(process)
        _wait_for_cpu_seconds(process, 6.0)
        _interrupt_after(process, 0.0, presses=2, ready=True, gap=REPEAT_SECONDS + 0.2)  # sooner: the same press
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Ctrl-C: stopping at the next safe point (Ctrl-C again quits at once)" in err
    assert "Ctrl-C again: quitting at once; the last checkpoint written is kept" in err
    assert "Traceback" not in err


def _run_script(script: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh Python process (the test environment), its output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment(), cwd=ROOT, timeout=60
    )


# A signal sent to a process and to its process group at once (GNU timeout, Slurm): two deliveries, one request.
TWICE_AT_ONCE = """
import os, signal, sys, time
from jaxnn.cli.interrupts import REPEAT_SECONDS, StopSignals
with StopSignals("jaxnn-train", until_exit=True) as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)
    print("stopping", stop.pressed, flush=True)
    time.sleep(REPEAT_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)  # a second request, later: quits at once
    time.sleep(10)
    print("still running", flush=True)
"""


def test_the_same_signal_twice_at_once_is_one_request():
    done = _run_script(TWICE_AT_ONCE)
    assert done.returncode == 143 and done.stdout == "stopping True\n", done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "jaxnn-train: SIGTERM: stopping at the next safe point (a second signal quits at once)",
        "jaxnn-train: SIGTERM again: quitting at once; the last checkpoint written is kept",
    ], done.stderr


# A second signal of another kind after Python has disabled its signal handling at exit (it does so before it
# tears the modules down, which takes tenths of a second with JAX loaded): the object deleted then sends it.
SIGNAL_WHILE_PYTHON_EXITS = """
import os, signal, sys, time
from jaxnn.cli.interrupts import StopSignals
with StopSignals("jaxnn-train", until_exit=True) as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    while not stop.pressed:
        time.sleep(0.01)
class Late:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.5)
late = Late()
sys.exit(stop.status)
"""


def test_a_signal_while_python_tears_down_keeps_the_first_ones_status():
    done = _run_script(SIGNAL_WHILE_PYTHON_EXITS)
    assert done.returncode == 143, done.stderr  # not -1: ended by SIGHUP's default action


# After the run's work is done, a signal is said and changes nothing, a second one included.
SIGNALS_AFTER_THE_END = """
import os, signal, sys, time
from jaxnn.cli.interrupts import REPEAT_SECONDS, StopSignals
with StopSignals("jaxnn-train", until_exit=True) as stop:
    print("stopped before the end", stop.finish(), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(REPEAT_SECONDS + 0.2)
    os.kill(os.getpid(), signal.SIGHUP)  # a second request: it quit at once (with 130)
    time.sleep(0.5)
    print("pressed", stop.pressed, flush=True)
"""


def test_signals_after_the_run_is_done_are_said_and_change_nothing():
    done = _run_script(SIGNALS_AFTER_THE_END)
    assert done.returncode == 0 and done.stdout == "stopped before the end False\npressed False\n", done
    assert done.stderr.splitlines() == ["jaxnn-train: SIGTERM: the run has finished; exiting"], done.stderr


# A signal whose Python-level handler runs (on the main thread) while finish() holds the handlers' lock there.
SIGNAL_INSIDE_FINISH = """
import os, signal, threading
from jaxnn.cli.interrupts import StopSignals
class SignalWhileRead(threading.Event):
    def is_set(self):
        if not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs at the next bytecode, inside finish()
        return super().is_set()
with StopSignals("jaxnn-train") as stop:
    stop._pressed = SignalWhileRead()
    print("stopped before the end", stop.finish(), flush=True)
"""


def test_a_signal_while_finish_holds_the_lock_does_not_deadlock():
    """The handler waited for a lock its own thread held: the process hung, and ignored every later signal."""
    done = _run_script(SIGNAL_INSIDE_FINISH)
    assert done.returncode == 0 and done.stdout == "stopped before the end True\n", done
    assert "SIGTERM: stopping at the next safe point" in done.stderr, done.stderr


class _SignalAtFinish(StopSignals):
    """SIGTERM to this process just before (``before=True``) or just after the command says its work is done."""

    def __init__(self, before: bool):
        super().__init__("jaxnn-train")
        self.before = before

    def finish(self) -> bool:
        if self.before:
            self._sigterm()
        stopped = super().finish()
        if not self.before:
            self._sigterm()
        return stopped

    def _sigterm(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)  # the watcher thread takes it


@pytest.mark.parametrize("lists", [[], ["--lr", "0.1,0.2"]], ids=["single", "population"])
def test_a_signal_once_the_files_are_written_keeps_exit_0_and_one_before_gives_143(tmp_path, capfd, lists):
    """A SIGTERM that came after the run had written every file and printed its summary said 'stopping at the next
    safe point' and made the exit status 143 or 0 by the microsecond it arrived."""
    run = [*lists, "--epochs", "3", "--quiet"]
    with _SignalAtFinish(before=False) as stop:
        assert command.execute([*run, "--out", str(tmp_path / "after")], stop) == 0
    err = capfd.readouterr().err
    assert err.splitlines() == ["jaxnn-train: SIGTERM: the run has finished; exiting"], err
    with _SignalAtFinish(before=True) as stop:
        assert command.execute([*run, "--out", str(tmp_path / "before")], stop) == 143
    err = capfd.readouterr().err
    assert "SIGTERM: stopping at the next safe point" in err and "interrupted after training" in err, err
    for out in ("after", "before"):
        assert (tmp_path / out / "metrics.json").exists()


@pytest.mark.slow
def test_a_second_signal_while_a_stopped_run_winds_down_keeps_the_first_ones_status(tmp_path):
    # The run says it was interrupted, then Python exits (a few tenths of a second with JAX loaded): a second
    # SIGTERM then must not end the process by the signal's default action (-15) or with a traceback.
    run = ("--dataset", "digits", "--epochs", 1_000_000, "--checkpoint-seconds", 0.5, "--quiet", "--out", tmp_path)
    process = _start(*run)
    try:
        _wait_until_ready(process)
        _wait_while_running(process, (tmp_path / "checkpoint.npz").exists, "a checkpoint")
        process.send_signal(signal.SIGTERM)
        lines = []
        while not any("interrupted at epoch" in line for line in lines):
            line = process.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        process.send_signal(signal.SIGTERM)  # while the process winds down
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, "".join(lines) + err
    assert "Traceback" not in err


@pytest.mark.slow
def test_one_writer_per_directory_and_ctrl_c_resumes_exactly(tmp_path):
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    # with this process's XLA flags: the run is resumed, and run whole, here (across other flags a resumed run may
    # differ in its last bits, and says so: test_cli_runs)
    flags = os.environ.get("XLA_FLAGS", "")
    first = _start("--epochs", 1_000_000, "--checkpoint-every", 5, "--quiet", "--out", interrupted, XLA_FLAGS=flags)
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


def test_resuming_a_run_that_has_saved_no_checkpoint_yet_names_the_run_holding_the_directory(tmp_path, capsys):
    """--resume DIR while a run writing DIR had not saved its first checkpoint said DIR "holds no jaxnn-train run"."""
    with OutLock(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", tmp_path, "--epochs", "2")
    assert exit_info.value.code == 2
    assert f"{tmp_path} is in use by another jaxnn-train (process " in capsys.readouterr().err
    (tmp_path / LOCK_FILE).write_text("1\n")  # a lock file left by a run that is gone: no run there
    with pytest.raises(SystemExit):
        train("--resume", tmp_path, "--epochs", "2")
    assert f"{tmp_path} holds no jaxnn-train run" in capsys.readouterr().err


def test_a_directory_at_the_lock_files_name_is_one_line(tmp_path, capsys):
    (tmp_path / LOCK_FILE / "inside").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        train("--epochs", "2", "--quiet", "--out", tmp_path)  # was an IsADirectoryError traceback
    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert (
        f"{tmp_path / LOCK_FILE} is a directory, not the lock file jaxnn-train keeps there; move or rename" in lines[0]
    )
    assert [path.name for path in tmp_path.iterdir()] == [LOCK_FILE]


LINKS = {
    # the symbolic link was followed: the victim held the run's PID
    "symbolic": (lambda link, victim: link.symlink_to(victim), "is a symbolic link, not the lock file jaxnn-train"),
    # O_NOFOLLOW sees no hard link: the PID overwrote the victim
    "hard": (lambda link, victim: os.link(victim, link), "is a hard link to another file, not the lock file"),
}


@pytest.mark.parametrize(("make_link", "message"), LINKS.values(), ids=LINKS)
def test_a_link_at_the_lock_files_name_is_refused_and_not_followed(tmp_path, capsys, make_link, message):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "run").mkdir()
    make_link(tmp_path / "run" / LOCK_FILE, victim)
    with pytest.raises(SystemExit) as exit_info:
        train("--epochs", "2", "--quiet", "--out", tmp_path / "run")
    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert f"{tmp_path / 'run' / LOCK_FILE} {message}" in lines[0]
    assert victim.read_text() == "precious"


# --- SIGTERM and SIGHUP: a scheduler or a closed terminal stops a run as Ctrl-C does ------------------------


def _noisy_regression(path):
    """A regression L-BFGS works on for thousands of iterations (noise to fit), about a second per hundred."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 8))
    y = np.sin(x).sum(axis=1) + rng.normal(scale=0.5, size=3000)
    np.savetxt(path, np.c_[x, y], delimiter=",", header=",".join([f"x{i}" for i in range(8)] + ["y"]), comments="")
    return path


MODES = {
    "single": ["--dataset", "digits", "--optimizer", "adam", "--epochs", 1_000_000, "--checkpoint-seconds", 0.5],
    "lbfgs": ["--optimizer", "lbfgs", "--layers", "128,128", "--epochs", 15000, "--checkpoint-seconds", 0.5],
    "population": ["--dataset", "digits", "--lr", "0.01,0.1", "--epochs", 1_000_000, "--checkpoint-seconds", 0.5],
}
STOPS = [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")]


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_sigterm_and_sighup_stop_every_mode_as_ctrl_c_does(tmp_path, mode):
    extra = ["--csv", _noisy_regression(tmp_path / "noisy.csv"), "--target", "y"] if mode == "lbfgs" else []
    outs = [tmp_path / name for _, _, name in STOPS]
    processes = [_start(*MODES[mode], *extra, "--quiet", "--out", out) for out in outs]
    try:
        for process, out, (number, _, _) in zip(processes, outs, STOPS, strict=True):
            _wait_until_ready(process)
            _wait_while_running(process, (out / "checkpoint.npz").exists, "a checkpoint")
            process.send_signal(number)
        outcomes = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, out, (_, status, name), (_, err) in zip(processes, outs, STOPS, outcomes, strict=True):
        assert process.returncode == status, err
        assert f"jaxnn-train: {name}: stopping at the next safe point (a second signal quits at once)" in err, err
        assert "Traceback" not in err and not (out / LOCK_FILE).exists(), err
        config = checkpoint.read_config(out / "checkpoint.npz")
        if mode == "population":  # every member's state, which --resume continues whole
            epoch = checkpoint.read_config(out / "population.npz")["epoch"]
            assert config["epoch"] == epoch  # the best member's checkpoint.npz, written with it
            line = f"interrupted at epoch {epoch}; every member checkpointed in {out}; continue with --resume {out}"
            assert line in err, err
            assert train("--resume", out, "--epochs", epoch + 2, "--quiet") == 0
            assert checkpoint.read_config(out / "population.npz")["epoch"] == epoch + 2
        else:
            unit = "iteration" if mode == "lbfgs" else "epoch"
            line = f"interrupted at {unit} {config['epoch']}; checkpoint in {out}; continue with --resume {out}"
            assert line in err, err


@pytest.mark.slow
def test_a_second_signal_of_another_kind_quits_at_once_with_the_first_ones_status(tmp_path):
    # chunks of minutes (a long --checkpoint-seconds): only the second signal can end it soon
    process = _start(
        "--dataset", "digits", "--epochs", 1_000_000, "--checkpoint-seconds", 1000, "--quiet", "--out", tmp_path
    )
    try:
        _wait_until_ready(process)
        # once the run trains: a signal while it starts or loads the data ends it at the next stage, at once (a
        # second after the lock on --out, loading digits was not always done on a loaded machine)
        _wait_for_cpu_seconds(process, 6.0)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    # it was announced as "SIGHUP again", though no SIGHUP had come before
    assert "SIGHUP after SIGTERM: quitting at once; the last checkpoint written is kept" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_signal_to_one_host_stops_every_host_with_its_status(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    run = ["--optimizer", "adam", "--epochs", 1_000_000, "--checkpoint-seconds", 0.5, "--quiet", "--out", tmp_path]
    hosts = ["--coordinator", address, "--num-processes", 2, "--process-id"]
    processes = [_start(*run, *hosts, rank) for rank in (0, 1)]
    try:
        for process in processes:
            _wait_until_ready(process)
        _wait_while_running(processes[0], (tmp_path / "checkpoint.npz").exists, "a checkpoint", seconds=180)
        processes[1].send_signal(signal.SIGTERM)  # the process that neither prints nor writes
        outcomes = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [143, 143], outcomes
    epoch = checkpoint.read_config(tmp_path / "checkpoint.npz")["epoch"]
    assert f"interrupted at epoch {epoch}; checkpoint in {tmp_path}" in outcomes[0][1], outcomes[0][1]
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.slow
def test_a_signal_while_waiting_for_the_other_hosts_quits_at_once(tmp_path):
    """Process 0 of two, whose peer never comes, waits inside JAX's native code to join (up to minutes): a SIGTERM
    there was only flagged, and acted on when the wait gave up.  Nothing is written before the devices start, so the
    first signal now quits at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    process = _start(
        "--epochs", 5, "--out", out, "--coordinator", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", 0
    )
    try:
        _wait_until_ready(process)
        # process 0 serves the coordination service on the port: then it is waiting for its peer
        _wait_while_running(process, lambda: _port_open(port), "the coordination service")
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert "jaxnn-train: SIGTERM: interrupted while starting the devices; nothing was saved" in err, err
    assert not out.exists()


# --- checkpoints every --checkpoint-seconds, however long the run ------------------------------------------


@pytest.mark.slow
def test_checkpoints_come_every_checkpoint_seconds_in_a_long_run(tmp_path):
    # a million epochs of adam: chunks of 1/50 of the run took about 25 s here, so checkpoints were that far apart
    run = ("--dataset", "digits", "--optimizer", "adam", "--epochs", 1_000_000, "--checkpoint-seconds", 1)
    process = _start(*run, "--quiet", "--out", tmp_path)
    changes = []
    try:
        _wait_until_ready(process)
        path, last, deadline = tmp_path / "checkpoint.npz", None, time.monotonic() + 120
        while len(changes) < 5:
            assert time.monotonic() < deadline and process.poll() is None, changes
            try:
                stamp = path.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = None
            if stamp is not None and stamp != last:
                changes.append(time.monotonic())
                last = stamp
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    gaps = np.diff(changes[1:])  # after the first: the first chunk compiles
    assert gaps.max() <= 2.0, gaps


def test_a_short_checkpoint_seconds_cuts_chunks_without_changing_the_bits(tmp_path, monkeypatch):
    """Nor the files: the held-out loss was evaluated wherever a chunk ended, and chunk lengths follow the
    machine's pace, so two runs of one command wrote different history.csv files.  It is now evaluated every
    ``progress_step`` epochs (4 here) and at the end."""
    short, whole, chunks = tmp_path / "short", tmp_path / "whole", []
    advance = training.advance
    monkeypatch.setattr(
        training, "advance", lambda setup, state, epochs: chunks.append(epochs) or advance(setup, state, epochs)
    )
    common = ("--optimizer", "adam", "--batch-size", 16, "--epochs", 198, "--quiet")
    assert training.progress_step(198, None) == 4
    assert train(*common, "--checkpoint-seconds", 1e-4, "--out", short) == 0
    assert chunks == [4] + [1] * 194  # after the first (which compiles, and measures the pace) a chunk per epoch
    chunks.clear()
    assert train(*common, "--checkpoint-seconds", 1000, "--out", whole) == 0
    assert set(chunks) == {4, 2}  # 49 chunks of 4 epochs, then the last 2
    assert (short / "history.csv").read_bytes() == (whole / "history.csv").read_bytes()
    expected, cut = arrays(whole), arrays(short)
    assert expected.keys() == cut.keys()
    for name in expected:
        np.testing.assert_array_equal(cut[name], expected[name], err_msg=name)
    assert list(expected["extras/held_out_epochs"]) == [*range(4, 198, 4), 198]  # the step's multiples, and the end


# --- a full disk, a directory that cannot be written ------------------------------------------------------


def test_a_write_error_while_training_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    out, calls, write = tmp_path / "run", [], checkpoint.write_atomically

    def out_removed_after_the_first_checkpoint(path, contents):
        calls.append(path)
        if len(calls) == 2:
            shutil.rmtree(out)  # rm -rf DIR while the run trains
        write(path, contents)

    monkeypatch.setattr(checkpoint, "write_atomically", out_removed_after_the_first_checkpoint)
    assert train("--epochs", "200", "--checkpoint-every", "50", "--quiet", "--out", out) == 1  # was a traceback
    assert capsys.readouterr().err.splitlines() == [
        f"jaxnn-train: could not write checkpoint at epoch 100 (the directory {out} does not exist; create it "
        "first); no earlier checkpoint is there"
    ]


def test_a_full_disk_while_training_names_the_checkpoint_and_how_to_continue(tmp_path, capsys, monkeypatch):
    """The line said which epoch's checkpoint is kept, not where it is nor what to do."""
    out, calls, write = tmp_path / "run", [], checkpoint.write_atomically

    def full_after_the_first_checkpoint(path, contents):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, contents)

    monkeypatch.setattr(checkpoint, "write_atomically", full_after_the_first_checkpoint)
    assert train("--epochs", "200", "--checkpoint-every", "50", "--quiet", "--out", out) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"jaxnn-train: the disk is full: could not write checkpoint {out / 'checkpoint.npz'} at epoch 100; the "
        f"checkpoint of epoch 50 is kept: free some space, then continue with --resume {out}"
    ]
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == 50


def test_a_write_error_on_the_results_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    write = checkpoint.write_atomically

    def read_only_metrics(path, contents):
        if path.name == "metrics.json":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        write(path, contents)

    monkeypatch.setattr(checkpoint, "write_atomically", read_only_metrics)
    assert train("--epochs", "3", "--quiet", "--out", tmp_path) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"jaxnn-train: could not write {tmp_path / 'metrics.json'} (Permission denied); the checkpoint is kept: mend "
        f"that, then --resume {tmp_path} writes the results again"  # it had said "the run stopped", after training
    ]


def test_a_full_disk_while_writing_the_results_names_the_file_and_how_to_finish(tmp_path, capsys, monkeypatch):
    """ENOSPC from a write or fsync has no file name: the line said "could not write a file" and nothing more."""
    write, out = checkpoint.write_atomically, tmp_path / "run"

    def full_at_history(path, contents):
        def no_space(file):
            raise OSError(errno.ENOSPC, "No space left on device")

        write(path, no_space if path.name == "history.csv" else contents)

    monkeypatch.setattr(checkpoint, "write_atomically", full_at_history)
    assert train("--epochs", "3", "--quiet", "--out", out) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"jaxnn-train: the disk is full: could not write {out / 'history.csv'}; the checkpoint is kept: free some "
        f"space, then --resume {out} writes the results again"
    ]
    assert sorted(path.name for path in out.iterdir()) == ["checkpoint.npz", "metrics.json"]  # no .tmp left
    monkeypatch.setattr(checkpoint, "write_atomically", write)
    assert train("--resume", out, "--quiet") == 0  # what the line says to do
    assert (out / "history.csv").read_text().count("\n") == 4


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs at ``tmp_path / "disk"`` (root only); skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


FULL_DISK = re.compile(
    r"jaxnn-train: the disk is full: could not write (checkpoint|population checkpoint) (\S+) at epoch \d+; "
    r"the \1 of epoch (\d+) is kept: free some space, then continue with --resume (\S+)\n"
)


@pytest.mark.slow
@pytest.mark.parametrize("lists", [(), ("--lr", "0.1,0.2")], ids=["single", "population"])
def test_a_full_disk_while_checkpointing_is_one_line_and_exit_1(small_disk, lists):
    # the checkpoints grow with the loss histories (4 bytes an epoch and member) until one and its .tmp do not fit
    options = ("--epochs", "1000000", "--checkpoint-seconds", "0.2", "--quiet", "--out", str(small_disk))
    run = shell(*lists, *options, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    said = FULL_DISK.fullmatch(run.stderr)
    assert said, run.stderr
    kept = small_disk / ("checkpoint.npz" if said[1] == "checkpoint" else "population.npz")
    assert (said[2], said[4]) == (str(kept), str(small_disk))  # the file, and the line that continues the run
    assert checkpoint.read_config(kept)["epoch"] == int(said[3])
    assert lists or said[1] == "checkpoint"
    assert not (small_disk / LOCK_FILE).exists() and not list(small_disk.glob("*.tmp"))


def test_an_out_directory_that_cannot_be_written_is_one_line_and_exit_2(small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    run = shell("--epochs", "2", "--out", str(small_disk))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"jaxnn-train: error: cannot write in --out {small_disk}: Read-only file system" in run.stderr


class Sigterm:  # the flag StopSignals sets on a first SIGTERM
    pressed = False
    received = signal.SIGTERM


def _pressing(stop, function):
    def pressed(*args):
        stop.pressed = True
        return function(*args)

    return pressed


def test_a_run_that_ends_where_a_stopped_one_was_cut_has_its_last_held_out_point(tmp_path, monkeypatch, capsys):
    """Held-out points come every step (4 epochs here) and at the end; a run stopped after epoch 5 has none there,
    and resuming it to --epochs 5 ran no chunk, so it finished without one (history.csv's last test loss empty)."""
    out, stop, advance = tmp_path / "run", Sigterm(), training.advance

    def stopping_after_epoch_5(setup, state, epochs):
        state = advance(setup, state, epochs)
        stop.pressed = stop.pressed or state.epoch == 5
        return state

    run = ["--optimizer", "adam", "--batch-size", "16", "--checkpoint-seconds", "1e-4", "--quiet", "--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(training, "advance", stopping_after_epoch_5)
        assert command.execute([*run, "--epochs", "198"], stop) == 143
    assert list(arrays(out)["extras/held_out_epochs"]) == [4]
    assert train("--resume", out, "--epochs", 5, "--quiet") == 0
    assert list(arrays(out)["extras/held_out_epochs"]) == [4, 5]
    last = (out / "history.csv").read_text().splitlines()[-1].split(",")
    assert last[0] == "5" and float(last[2]) > 0, last


def test_a_signal_as_a_run_diverges_leaves_the_divergence_and_exit_1(tmp_path, monkeypatch, capsys):
    """SIGTERM during the chunk that diverges, or while the diverged run's files are written, made the exit status
    143 with "checkpoint in DIR; continue with --resume DIR": there was no checkpoint to continue (--resume says the
    run diverged), and in the first case no divergence message and no results."""
    data = regression_csv(tmp_path / "prices.csv")
    run = ["--csv", str(data), "--target", "price", "--lr", "1e4", "--epochs", "50", "--quiet"]
    for module, name in ((training, "advance"), (command, "metrics_of")):
        stop, out, real = Sigterm(), tmp_path / name, getattr(module, name)

        def pressing(*args, stop=stop, real=real):
            result = real(*args)
            stop.pressed = stop.pressed or getattr(result, "diverged", True)  # in the chunk that diverged
            return result

        with monkeypatch.context() as patch:
            patch.setattr(module, name, pressing)
            assert command.execute([*run, "--out", str(out)], stop) == 1
        err = capsys.readouterr().err
        assert "training diverged after epoch" in err and "checkpoint in" not in err, err
        assert (out / "metrics.json").exists() and (out / "checkpoint-diverged.npz").exists()


def test_a_signal_as_a_population_ends_with_every_member_diverged_keeps_exit_1(tmp_path, monkeypatch, capsys):
    data = regression_csv(tmp_path / "prices.csv")
    stop = Sigterm()
    monkeypatch.setattr(population_results, "finish", _pressing(stop, population_results.finish))
    run = ["--csv", str(data), "--target", "price", "--lr", "1e4,1e5", "--epochs", "50", "--quiet"]
    assert command.execute([*run, "--out", str(tmp_path / "run")], stop) == 1
    assert "interrupted" not in capsys.readouterr().err
