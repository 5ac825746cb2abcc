"""jaxnn-train --optimizer lbfgs: jaxnn.lbfgs.minimize's result, why it stopped, refused options, resume, Ctrl-C."""

import contextlib
import io
import shutil

import numpy as np
import pytest
from cli_support import (
    DELETE,
    arrays,
    assert_same_params,
    history_rows,
    metrics,
    saved_params,
    train,
    with_config,
    write_csv,
)

from jaxnn import checkpoint, lbfgs
from jaxnn.cli import command, lbfgs_training, training
from jaxnn.cli import options as cli_options
from jaxnn.cli.data import load_problem
from jaxnn.lbfgs import Status
from jaxnn.train import training_keys

ITERATIONS = 12  # well before iris converges (about 56 iterations): stops on --epochs


def _iris_fit(params, max_iter: int) -> lbfgs.LbfgsResult:
    """jaxnn.lbfgs.minimize on the default iris run's network, split and targets, from ``params``."""
    options = cli_options.with_defaults({"optimizer": "lbfgs"})
    problem = load_problem(options)
    options = training.settled_options(options, problem)
    head = training.make_head(options, problem)
    model = training.build_model(options, head)
    targets = training.make_targets(problem, head)
    if params is None:
        params = model.init(training_keys(options["seed"])[0], problem.x_train.shape[1])
    return lbfgs.minimize(model, params, problem.x_train, targets.train, loss=head.loss, max_iter=max_iter)


@pytest.fixture(scope="module")
def iris_lbfgs(tmp_path_factory):
    """``--optimizer lbfgs --epochs 12`` on iris, checkpointed, and what it printed; tests copy it, never change it."""
    out = tmp_path_factory.mktemp("iris_lbfgs")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert train("--optimizer", "lbfgs", "--epochs", ITERATIONS, "--out", out) == 0
    return out, printed.getvalue()


def _copy(run, destination):
    shutil.copytree(run, destination)
    return destination


def _lbfgs_arrays(saved: dict) -> dict[str, np.ndarray]:
    """The checkpoint's L-BFGS state: its ``extras/lbfgs.*`` arrays by field name."""
    return {name.removeprefix("extras/lbfgs."): array for name, array in saved.items() if "/lbfgs." in name}


def _state_arrays(state: lbfgs.LbfgsState) -> dict[str, np.ndarray]:
    return {name.removeprefix("lbfgs."): array for name, array in training.lbfgs_extras(state).items()}


def _rewritten(source, destination, change):
    """A copy of ``source``'s checkpoint, written by jaxnn.checkpoint.save (so its checksum holds), with
    ``change(extras)`` for extras: as an older jaxnn-train wrote it, or tampered with."""
    saved = arrays(source)
    loaded = checkpoint.load(source / "checkpoint.npz", params_like=saved_params(saved), opt_state_like=())
    destination.mkdir(parents=True)
    checkpoint.save(
        destination / "checkpoint.npz",
        params=loaded.params,
        opt_state=(),
        key=loaded.key,
        epoch=loaded.epoch,
        history=loaded.history,
        config=loaded.config,
        extras=change(dict(loaded.extras)),
    )
    return destination


def _without_lbfgs_state(extras: dict) -> dict:
    return {name: array for name, array in extras.items() if not name.startswith("lbfgs.")}


def test_the_run_is_jaxnn_lbfgs_minimize_from_the_same_start(iris_lbfgs):
    out, printed = iris_lbfgs
    expected = _iris_fit(None, ITERATIONS)
    assert expected.status == Status.MAX_ITER and expected.n_iter == ITERATIONS
    saved = arrays(out)
    assert_same_params(saved_params(saved), expected.params)
    np.testing.assert_array_equal(saved["history"], expected.loss_curve)  # L after each iteration
    assert not any(name.startswith("opt_state/") for name in saved)  # no optimiser state to keep
    result = metrics(out)
    assert result["train_loss"] == pytest.approx(expected.loss, rel=1e-6)
    assert result["epochs"] == ITERATIONS and result["stopped"] == "MAX_ITER"
    assert result["options"]["optimizer"] == "lbfgs" and result["options"]["lr"] is None
    assert result["options"]["batch_size"] is None
    rows = history_rows(out)
    assert [int(row[0]) for row in rows[1:]] == list(range(1, ITERATIONS + 1))
    assert rows[-1][2] != "" and float(rows[-1][2]) == pytest.approx(result["test_loss"], rel=1e-6)
    # what a person sees: one progress line at the end, the optimiser, the count and why it stopped
    assert f"iteration {ITERATIONS}/{ITERATIONS}  loss " in printed and "test loss" in printed
    assert "iris: 4-10 relu-5 relu-3 identity, softmax_cross_entropy, lbfgs, full batch" in printed
    assert f"{ITERATIONS} iterations on 1 cpu device" in printed
    assert f"L-BFGS stopped: {lbfgs_training.stop_reason(Status.MAX_ITER)}" in printed
    assert "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT" in printed
    assert (out / "loss.png").exists() and (out / "confusion.png").exists()


def test_a_converged_run_says_so_and_stops_before_epochs(tmp_path, capsys):
    assert train("--optimizer", "lbfgs", "--out", tmp_path) == 0  # default --epochs: 200 iterations at most
    result = metrics(tmp_path)
    status = Status[result["stopped"]]
    assert status in (Status.CONVERGED_GRADIENT, Status.CONVERGED_REDUCTION)
    assert ITERATIONS < result["epochs"] < cli_options.DEFAULT_EPOCHS["lbfgs"]
    assert len(arrays(tmp_path)["history"]) == result["epochs"]
    output = capsys.readouterr().out
    assert "L-BFGS stopped: converged: " in output and status.message in output
    assert f"iteration {result['epochs']:3d}/200  loss" in output  # the line shows although 200 was not reached


def test_every_stopping_status_has_a_reason_with_scipys_message():
    for status in Status:
        if status != Status.RUNNING:
            reason = lbfgs_training.stop_reason(status)
            message = status.message.rstrip(": ")
            assert reason.endswith(f"({message})") and len(reason) > len(message) + 10


def test_a_failed_line_search_names_scipys_message_without_its_bare_separator():
    """scipy >= 1.15 says only 'ABNORMAL: ' for a failed line search: the summary ended '... (ABNORMAL: )'."""
    assert lbfgs_training.stop_reason(Status.LINE_SEARCH_FAILED).endswith("rounding allows) (ABNORMAL)")


def test_the_checkpoint_holds_the_lbfgs_state_as_plain_arrays(iris_lbfgs):
    saved, expected = arrays(iris_lbfgs[0]), _iris_fit(None, ITERATIONS)
    stored, state = _lbfgs_arrays(saved), _state_arrays(expected.state)
    assert sorted(stored) == sorted(state) and {"theta", "memory.s", "memory.y", "n_iter", "status"} <= set(stored)
    for name, array in state.items():
        assert stored[name].dtype == array.dtype and stored[name].shape == array.shape, name
        np.testing.assert_array_equal(stored[name], array, err_msg=name)
    assert int(stored["memory.count"]) == lbfgs.MEMORY and int(stored["status"]) == Status.MAX_ITER


def test_resume_continues_the_minimisation_exactly(iris_lbfgs, tmp_path, capsys):
    """--epochs 12, then --resume to 20: the iterates, the counts and the memory of one 20-iteration run."""
    run = _copy(iris_lbfgs[0], tmp_path / "run")
    assert train("--resume", run, "--epochs", 20) == 0
    assert f"resuming {run / 'checkpoint.npz'} at iteration {ITERATIONS} of 20" in capsys.readouterr().out
    after, uninterrupted = arrays(run), _iris_fit(None, 20)
    np.testing.assert_array_equal(after["history"], uninterrupted.loss_curve)
    assert_same_params(saved_params(after), uninterrupted.params)
    for name, array in _state_arrays(uninterrupted.state).items():
        np.testing.assert_array_equal(_lbfgs_arrays(after)[name], array, err_msg=name)
    assert metrics(run)["stopped"] == "MAX_ITER" and metrics(run)["epochs"] == 20


def test_an_older_checkpoint_resumes_from_the_parameters_with_a_fresh_memory(iris_lbfgs, tmp_path, capsys):
    run = _rewritten(iris_lbfgs[0], tmp_path / "run", _without_lbfgs_state)  # as jaxnn-train wrote it before
    before = arrays(run)
    assert not _lbfgs_arrays(before)
    assert train("--resume", run, "--epochs", 20) == 0
    assert f"resuming {run / 'checkpoint.npz'} at iteration {ITERATIONS} of 20" in capsys.readouterr().out
    after = arrays(run)
    expected = _iris_fit(saved_params(before), 20 - ITERATIONS)  # warm start: new L-BFGS memory from the saved weights
    done = checkpoint.read_config(run / "checkpoint.npz")["epoch"]
    assert done == ITERATIONS + expected.n_iter and len(after["history"]) == done
    np.testing.assert_array_equal(after["history"][:ITERATIONS], before["history"])
    np.testing.assert_array_equal(after["history"][ITERATIONS:], expected.loss_curve)
    for got, want in zip(saved_params(after), expected.params, strict=True):
        np.testing.assert_array_equal(got["W"], want["W"])
    assert after["history"][-1] <= before["history"][-1]
    assert metrics(run)["stopped"] == expected.status.name


def test_ctrl_c_during_the_minimisation_stops_it_between_compiled_calls_and_checkpoints(
    iris_lbfgs, tmp_path, monkeypatch, capsys
):
    class CtrlC:  # the flag jaxnn.cli.interrupts.CtrlC sets on a first Ctrl-C
        pressed = False

    ctrl_c, run = CtrlC(), lbfgs.run

    def pressed_during_the_first_call(*args, **kwargs):
        ctrl_c.pressed = True
        return run(*args, **kwargs)

    monkeypatch.setattr(lbfgs, "run", pressed_during_the_first_call)
    out = tmp_path / "run"
    epochs = 5 * lbfgs_training.PROGRESS_CALLS  # 5 iterations per compiled call
    assert command.execute(["--optimizer", "lbfgs", "--epochs", str(epochs), "--out", str(out)], ctrl_c) == 130
    assert f"interrupted at iteration 5; checkpoint in {out}; continue with --resume {out}" in capsys.readouterr().err
    saved, finished = arrays(out), arrays(iris_lbfgs[0])
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == 5
    assert "stopped" not in checkpoint.read_config(out / "checkpoint.npz")  # paused, not stopped
    np.testing.assert_array_equal(saved["history"], finished["history"][:5])  # the same iterates, stopped early
    assert (int(_lbfgs_arrays(saved)["n_iter"]), int(_lbfgs_arrays(saved)["status"])) == (5, Status.RUNNING)
    monkeypatch.setattr(lbfgs, "run", run)
    assert train("--resume", out, "--quiet") == 0
    # resumed, it is the uninterrupted minimisation: it converges where a single call does, with the same bits
    uninterrupted, resumed = _iris_fit(None, epochs), arrays(out)
    assert uninterrupted.status != Status.MAX_ITER and metrics(out)["stopped"] == uninterrupted.status.name
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == uninterrupted.n_iter > 5
    np.testing.assert_array_equal(resumed["history"], uninterrupted.loss_curve)
    assert_same_params(saved_params(resumed), uninterrupted.params)
    for name, array in _state_arrays(uninterrupted.state).items():
        np.testing.assert_array_equal(_lbfgs_arrays(resumed)[name], array, err_msg=name)
    # a minimisation that converged stays converged: a larger --epochs does not start it again
    assert train("--resume", out, "--epochs", epochs + 100, "--quiet") == 0
    assert metrics(out)["epochs"] == uninterrupted.n_iter and metrics(out)["stopped"] == uninterrupted.status.name
    np.testing.assert_array_equal(arrays(out)["history"], uninterrupted.loss_curve)


def test_checkpoints_follow_checkpoint_seconds_between_compiled_calls(tmp_path, monkeypatch):
    written, save = [], lbfgs_training.save_checkpoint

    def counting(run, state):
        written.append(state.epoch)
        return save(run, state)

    monkeypatch.setattr(lbfgs_training, "save_checkpoint", counting)
    out = tmp_path / "run"
    assert train("--optimizer", "lbfgs", "--epochs", 10, "--checkpoint-seconds", 0, "--quiet", "--out", out) == 0
    assert written == list(range(1, 11))  # one iteration per call: after each of the first 9, then the end


def test_a_checkpoint_written_while_the_minimisation_runs_resumes(tmp_path, monkeypatch):
    # a run killed after a time-based checkpoint (a second Ctrl-C, kill -9) continues from it
    kept, save = tmp_path / "kept", lbfgs_training.save_checkpoint

    def keeping_the_first(run, state):
        path = save(run, state)
        if not kept.exists():
            shutil.copytree(path.parent, kept, ignore=shutil.ignore_patterns(".*"))
        return path

    monkeypatch.setattr(lbfgs_training, "save_checkpoint", keeping_the_first)
    args = ("--optimizer", "lbfgs", "--epochs", 4, "--checkpoint-seconds", 0, "--quiet")
    assert train(*args, "--out", tmp_path / "run") == 0
    config = checkpoint.read_config(kept / "checkpoint.npz")
    assert config["epoch"] == 1 and "stopped" not in config  # written between compiled calls: still running
    assert (int(_lbfgs_arrays(arrays(kept))["n_iter"]), int(_lbfgs_arrays(arrays(kept))["status"])) == (1, 0)
    monkeypatch.undo()
    assert train("--resume", kept, "--quiet") == 0
    assert metrics(kept)["epochs"] == 4 and metrics(kept)["stopped"] == "MAX_ITER"
    resumed, uninterrupted = arrays(kept), arrays(tmp_path / "run")  # killed after a checkpoint, resumed: the same bits
    assert sorted(resumed) == sorted(uninterrupted)
    for name in uninterrupted:
        if not name.startswith("extras/held_out"):  # evaluated where each run's chunks ended
            np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)


def test_ctrl_c_before_the_minimisation_checkpoints_the_start_and_resumes(iris_lbfgs, tmp_path, monkeypatch, capsys):
    class CtrlC:
        pressed = False

    ctrl_c, make_progress = CtrlC(), command.make_progress

    def pressed_meanwhile(*args):
        ctrl_c.pressed = True  # after the network is built, before training starts
        return make_progress(*args)

    monkeypatch.setattr(command, "make_progress", pressed_meanwhile)
    out = tmp_path / "run"
    assert command.execute(["--optimizer", "lbfgs", "--epochs", str(ITERATIONS), "--out", str(out)], ctrl_c) == 130
    assert f"interrupted at iteration 0; checkpoint in {out}; continue with --resume {out}" in capsys.readouterr().err
    config = checkpoint.read_config(out / "checkpoint.npz")
    assert config["epoch"] == 0 and "stopped" not in config
    monkeypatch.undo()
    assert train("--resume", out, "--quiet") == 0
    assert metrics(out)["epochs"] == ITERATIONS and metrics(out)["stopped"] == "MAX_ITER"
    resumed, uninterrupted = arrays(out), arrays(iris_lbfgs[0])  # from iteration 0 it is the uninterrupted run
    for name in ("params/0/W", "params/2/b", "history"):
        np.testing.assert_array_equal(resumed[name], uninterrupted[name])


REFUSED = [
    (["--lr", "0.1"], "--lr 0.1 does not apply to --optimizer lbfgs"),
    (["--lr", "0.01,0.1"], "--lr 0.01,0.1 does not apply to --optimizer lbfgs"),
    (["--batch-size", "16"], "--batch-size 16 does not apply to --optimizer lbfgs"),
    (["--lr", "0.5", "--batch-size", "8"], "--lr 0.5 and --batch-size 8 do not apply to --optimizer lbfgs"),
    (["--momentum", "0.5"], "--momentum sets sgd's momentum; --optimizer lbfgs has none"),
    (["--no-nesterov"], "--nesterov sets sgd's momentum; --optimizer lbfgs has none"),
    (["--seed", "0,1"], "--seed 0,1 lists several values, which trains a population; --optimizer lbfgs trains one"),
    (["--devices", "2"], "--devices 2: --optimizer lbfgs trains on one device"),
    (["--multi-host"], "--multi-host: --optimizer lbfgs runs on one host"),
    (["--coordinator", "localhost:1"], "--coordinator: --optimizer lbfgs runs on one host"),
    (["--checkpoint-every", "5"], "--checkpoint-every: --optimizer lbfgs checkpoints every --checkpoint-seconds"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_options_that_do_not_apply_are_refused(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train("--optimizer", "lbfgs", *args, "--out", tmp_path)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "checkpoint.npz").exists()


def test_full_batch_is_accepted(capsys):
    assert train("--optimizer", "lbfgs", "--batch-size", "full", "--epochs", 2, "--quiet") == 0
    assert "lbfgs, full batch" in capsys.readouterr().out


def test_resume_refuses_what_lbfgs_does_not_use_and_another_optimizer(iris_lbfgs, capsys):
    run = iris_lbfgs[0]
    for args, message in [
        (["--lr", "0.1"], "--lr 0.1 does not apply to --optimizer lbfgs"),
        (["--batch-size", "4"], "--batch-size 4 does not apply to --optimizer lbfgs"),
        (["--optimizer", "gd"], f"--optimizer gd differs from lbfgs in {run / 'checkpoint.npz'}"),
        (["--epochs", "5"], f"--epochs 5 is fewer than the {ITERATIONS} iterations the checkpoint has already done"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", run, *args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert checkpoint.read_config(run / "checkpoint.npz")["epoch"] == ITERATIONS  # nothing was written


TAMPERED = [
    ({"lr": 0.1}, "holds an invalid --lr/--batch-size for --optimizer lbfgs"),
    ({"batch_size": 16}, "holds an invalid --lr/--batch-size for --optimizer lbfgs"),
    ({"optimizer": "gd"}, "holds an invalid --lr/--batch-size for --optimizer gd"),  # gd needs its learning rate
    ({"stopped": "TIRED"}, "is corrupt: its stopping status 'TIRED' is not an L-BFGS status"),
    ({"stopped": "RUNNING"}, "is corrupt: its stopping status 'RUNNING' is not an L-BFGS status"),
]


@pytest.mark.parametrize(("changes", "message"), TAMPERED, ids=[repr(c) for c, _ in TAMPERED])
def test_resume_checks_an_lbfgs_checkpoint(iris_lbfgs, tmp_path, capsys, changes, message):
    run = with_config(iris_lbfgs[0], tmp_path / "run", **changes)
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", 20, "--quiet")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_step_taking_run_has_no_stopping_status(tmp_path, capsys):
    assert train("--epochs", 2, "--quiet", "--out", tmp_path / "gd") == 0
    assert "stopped" not in checkpoint.read_config(tmp_path / "gd" / "checkpoint.npz")
    assert "stopped" not in metrics(tmp_path / "gd") and "L-BFGS" not in capsys.readouterr().out
    run = with_config(tmp_path / "gd", tmp_path / "run", stopped="MAX_ITER")
    with pytest.raises(SystemExit):
        train("--resume", run, "--epochs", 3, "--quiet")
    assert "is corrupt: its stopping status 'MAX_ITER' is not an L-BFGS status" in capsys.readouterr().err


def test_the_checkpoint_loads_and_one_without_a_status_resumes(iris_lbfgs, tmp_path):
    path = iris_lbfgs[0] / "checkpoint.npz"
    saved = arrays(iris_lbfgs[0])
    loaded = checkpoint.load(path, params_like=saved_params(saved), opt_state_like=())
    assert loaded.epoch == ITERATIONS and loaded.opt_state == () and loaded.config["stopped"] == "MAX_ITER"
    assert (loaded.config["optimizer"], loaded.config["lr"], loaded.config["batch_size"]) == ("lbfgs", None, None)
    # a checkpoint written before the minimisation ran (Ctrl-C first) has no status: it resumes
    run = with_config(iris_lbfgs[0], tmp_path / "run", stopped=DELETE)
    assert train("--resume", run, "--epochs", ITERATIONS + 1, "--quiet") == 0
    assert checkpoint.read_config(run / "checkpoint.npz")["epoch"] == ITERATIONS + 1


TAMPERED_STATES = [
    ({"lbfgs.n_iter": np.int32(ITERATIONS + 1)}, "its L-BFGS state does not match its parameters and counts"),
    ({"lbfgs.status": np.int32(Status.STOPPED)}, "its L-BFGS state does not match its parameters and counts"),
    ({"lbfgs.memory.count": np.int32(11)}, "its L-BFGS state does not match its parameters and counts"),
    (
        {"lbfgs.theta": lambda theta: theta + np.float32(1e-3)},
        "its L-BFGS state does not match its parameters and counts",
    ),
    ({"lbfgs.memory.s": np.zeros((3, 3), np.float32)}, "its L-BFGS state does not fit the network"),
    ({"lbfgs.memory.rho": None}, "its L-BFGS state does not fit the network"),
    # values a minimisation never holds: each resumed in silence as another minimisation (exit 0)
    ({"lbfgs.grad": lambda grad: grad * np.nan}, "its L-BFGS state does not match its parameters and counts"),
    ({"lbfgs.memory.s": lambda s: s * np.nan}, "its L-BFGS state does not match its parameters and counts"),
    ({"lbfgs.memory.gamma": np.float32(np.nan)}, "its L-BFGS state does not match its parameters and counts"),
    ({"lbfgs.memory.rho": lambda rho: -np.abs(rho) - 1}, "its L-BFGS state does not match its parameters and counts"),
    ({"lbfgs.value": np.float32(np.nan)}, "its L-BFGS state does not match its parameters and counts"),
]


@pytest.mark.parametrize(("changes", "message"), TAMPERED_STATES, ids=[next(iter(c)) for c, _ in TAMPERED_STATES])
def test_resume_checks_the_lbfgs_state(iris_lbfgs, tmp_path, capsys, changes, message):
    def tampered(extras):
        for name, value in changes.items():
            if value is None:
                del extras[name]
            else:
                extras[name] = value(extras[name]) if callable(value) else value
        return extras

    run = _rewritten(iris_lbfgs[0], tmp_path / "run", tampered)
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", 20, "--quiet")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and f"is corrupt: {message}" in err, err


def test_an_lbfgs_state_in_another_optimizers_checkpoint_is_refused(iris_lbfgs, tmp_path, capsys):
    run = with_config(iris_lbfgs[0], tmp_path / "run", optimizer="gd", lr=0.1, stopped=DELETE)
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", 20, "--quiet")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "is corrupt: it holds an L-BFGS state but is not an lbfgs run" in err, err


def test_a_run_that_stopped_non_finite_at_its_start_resumes_as_it_stopped(tmp_path, capsys):
    """An lbfgs run whose loss is not finite at its start stops NON_FINITE with a NaN loss in its state and saves it
    as checkpoint.npz (lbfgs runs never diverge); the state's finiteness check called that file corrupt."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 50)) * 1e-3
    x[:3] = 1e3  # rows whose exp activations overflow after standardising
    rows = [[*row, target] for row, target in zip(x.tolist(), rng.normal(size=200).tolist(), strict=True)]
    data = write_csv(tmp_path / "exp.csv", [*(f"c{j}" for j in range(50)), "y"], rows)
    run = ("--csv", data, "--target", "y", "--task", "regression", "--activation", "exp", "--optimizer", "lbfgs")
    first = train(*run, "--epochs", 5, "--out", tmp_path / "run", "--quiet")
    assert checkpoint.read_config(tmp_path / "run" / "checkpoint.npz")["stopped"] == Status.NON_FINITE.name
    capsys.readouterr()
    assert train("--resume", tmp_path / "run", "--epochs", 10, "--quiet") == first
    assert "corrupt" not in capsys.readouterr().err
