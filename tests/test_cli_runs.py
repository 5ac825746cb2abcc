"""jaxnn-train end to end: every bundled dataset, what a person sees, the files, resume, regression and divergence."""

import errno
import io
import os
import runpy
import sys
import warnings

import numpy as np
import pytest
from cli_support import (
    PNG,
    ROOT,
    arrays,
    history_rows,
    metrics,
    regression_csv,
    shell,
    tampered_copy,
    train,
    write_csv,
)
from sklearn.datasets import load_iris
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

import jaxnn
import jaxnn.cli
from jaxnn import checkpoint
from jaxnn.cli import command, population, report, training
from jaxnn.data import shuffle_split, standardise

# --- every bundled dataset ----------------------------------------------------------------------
# One dataset runs as a person runs it: the installed jaxnn-train command in a process of its own (exit status,
# no traceback, output to a pipe).  The others call the command's Python entry, jaxnn.cli.main, in this process
# (as the rest of these tests do), which spares a process start-up each; what is checked is the same.

DATASET_RUNS = [
    ("iris", 4, 3, ["--optimizer", "sgd", "--batch-size", "16"], "console command"),
    ("wine", 13, 3, ["--optimizer", "adam"], "in process"),
    ("breast_cancer", 30, 1, ["--loss", "binary_cross_entropy"], "in process"),  # two classes: one sigmoid output
    ("digits", 64, 10, ["--loss", "categorical_cross_entropy", "--layers", "16"], "in process"),
]


def _run_dataset(how, capsys, *args) -> tuple[str, str]:
    """jaxnn-train's stdout and stderr after a successful run, as the console command or in this process."""
    if how == "console command":
        done = shell(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr
    assert train(*args) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "n_features", "n_outputs", "extra", "how"), DATASET_RUNS, ids=[r[0] for r in DATASET_RUNS]
)
def test_each_bundled_dataset_trains_and_writes_its_files(tmp_path, capsys, dataset, n_features, n_outputs, extra, how):
    out = tmp_path / "run"
    stdout, stderr = _run_dataset(
        how, capsys, "--dataset", dataset, "--epochs", "3", "--checkpoint-every", "2", "--out", str(out), *extra
    )
    assert "Traceback" not in stderr
    # progress as plain lines (stdout is not a terminal), then the summary
    assert "epoch 3/3  loss " in stdout and "accuracy" in stdout and "test loss" in stdout
    assert f"{dataset}: {n_features}-" in stdout and "test accuracy" in stdout
    assert f"inputs ({n_features}): " in stdout

    result = metrics(out)
    assert result["epochs"] == 3 and result["devices"] == 1 and 0 < result["seconds"] <= result["total_seconds"]
    assert 0 <= result["test_accuracy"] <= 1 and np.isfinite(result["test_loss"]) and np.isfinite(result["train_loss"])
    assert len(result["input_columns"]) == n_features

    saved = arrays(out)
    last = max(int(name.split("/")[1]) for name in saved if name.startswith("params/"))
    assert saved["params/0/W"].shape[0] == n_features and saved[f"params/{last}/b"].shape == (n_outputs,)
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == 3
    rows = history_rows(out)
    assert rows[0] == ["epoch", "train_loss", "test_loss"] and [int(r[0]) for r in rows[1:]] == [1, 2, 3]
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], saved["history"])
    assert rows[-1][2] != "" and float(rows[-1][2]) == pytest.approx(result["test_loss"], rel=1e-6)
    for plot in ("loss.png", "confusion.png"):
        assert (out / plot).read_bytes().startswith(PNG)


# --- what a person sees ----------------------------------------------------------------------------


def test_seed_example_script_reaches_097(tmp_path, capsys):
    seed_example = runpy.run_path(str(ROOT / "scripts" / "train.py"), run_name="not_main")["SEED_EXAMPLE"]
    assert train(*seed_example, "--out", tmp_path) == 0
    output = capsys.readouterr().out
    assert "epoch 2000/2000  loss" in output and "iris: 4-10 relu-5 relu-3 softmax" in output
    assert metrics(tmp_path)["test_accuracy"] >= 0.97


def test_metrics_are_those_of_the_checkpointed_parameters(tmp_path):
    # the default split of classes is stratified, row for row as scikit-learn's
    assert train("--epochs", "40", "--quiet", "--out", tmp_path) == 0
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=42, stratify=y)
    scaler = standardise(x_train)
    saved = arrays(tmp_path)
    params = [{"W": saved[f"params/{i}/W"], "b": saved[f"params/{i}/b"]} for i in range(3)]
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "identity")))
    predicted = np.argmax(model.apply(params, scaler(x_test).astype(np.float32)), axis=1)
    result = metrics(tmp_path)
    assert result["test_accuracy"] == pytest.approx(np.mean(predicted == y_test))
    assert result["n_train"] == len(y_train) and result["n_test"] == len(y_test)
    assert result["loss"] == "softmax_cross_entropy" and result["options"]["stratify"] is True


def test_progress_is_about_ten_lines_without_a_terminal(capsys):
    assert train("--epochs", "20") == 0
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("epoch")]
    assert [line.split()[1] for line in progress] == [f"{e}/20" for e in range(2, 21, 2)]
    assert all("loss" in line and "accuracy" in line and "test loss" in line for line in progress)


def test_quiet_prints_only_the_summary(capsys):
    assert train("--epochs", "5", "--quiet") == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("epoch") for line in lines)
    assert any("test accuracy" in line for line in lines)


def test_progress_bar_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert train("--epochs", "5") == 0
    captured = capsys.readouterr()
    assert "5/5" in captured.err and "loss=" in captured.err and "acc=" in captured.err
    assert not any(line.startswith("epoch") for line in captured.out.splitlines())


def test_without_tqdm_a_terminal_gets_lines(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert train("--epochs", "5") == 0
    assert "epoch 5/5  loss" in capsys.readouterr().out


class _ClosedPipe(io.TextIOBase):
    """stdout after its reader went away (jaxnn-train ... | head): every write is a BrokenPipeError."""

    def __init__(self, descriptor: int):
        self.descriptor = descriptor

    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def fileno(self):
        return self.descriptor


def test_a_closed_stdout_checkpoints_and_ends_quietly(tmp_path, capsys, monkeypatch):
    descriptor = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT)
    try:
        with monkeypatch.context() as patches:
            patches.setattr(sys, "stdout", _ClosedPipe(descriptor))
            assert train("--epochs", "500", "--checkpoint-seconds", "1000", "--out", tmp_path / "run") == 1
    finally:
        os.close(descriptor)
    assert capsys.readouterr().err == ""  # was a BrokenPipeError traceback, with no checkpoint of these epochs
    assert checkpoint.read_config(tmp_path / "run" / "checkpoint.npz")["epoch"] == 50  # the first progress line
    assert train("--resume", tmp_path / "run", "--quiet") == 0


def test_without_matplotlib_plots_are_skipped_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert train("--epochs", "3", "--quiet", "--out", tmp_path) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["jaxnn-train: plots skipped: matplotlib is not installed (pip install 'jaxnn[plots]')"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "history.csv", "metrics.json"]


def test_plots_show_class_names_and_file_names_literally(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    drawn = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda figure, *a, **k: (drawn.append(figure), savefig(figure, *a, **k)))
    # "$^$": a math-text syntax error
    rows = [[(i * 3) % 20, i % 3, "$^$" if i % 2 else "cheap $5-$10"] for i in range(20)]
    csv_file = write_csv(tmp_path / os.fsdecode(b"bad\xffname.csv"), ["a", "b", "label"], rows)  # not UTF-8
    assert train("--csv", csv_file, "--target", "label", "--epochs", "3", "--quiet", "--out", tmp_path / "run") == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "bad\\xffname.csv: 2-10 relu" in captured.out  # as stderr shows it
    assert all((tmp_path / "run" / name).read_bytes().startswith(PNG) for name in ("loss.png", "confusion.png"))
    confusion = drawn[-1].axes[0]
    texts = [*confusion.get_xticklabels(), *confusion.get_yticklabels(), confusion.title]
    assert [text.get_text() for text in texts[:2]] == ["$^$", "cheap $5-$10"]
    assert texts[-1].get_text().startswith("bad\\xffname.csv: test accuracy")
    assert not any(text.get_parse_math() for text in texts)


def test_a_plot_that_cannot_be_drawn_is_a_warning_and_the_results_are_kept(tmp_path, capsys, monkeypatch):
    def fails(figure, *args, **kwargs):
        raise ValueError("Unknown symbol\n  at line 1")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", fails)
    assert train("--epochs", "3", "--quiet", "--out", tmp_path) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"jaxnn-train: warning: {name} was not drawn (ValueError: Unknown symbol at line 1); every other file was "
        "written"
        for name in ("loss.png", "confusion.png")
    ]
    assert "wrote" in captured.out and sorted(path.name for path in tmp_path.iterdir()) == [
        "checkpoint.npz",
        "history.csv",
        "metrics.json",
    ]


def test_chunks_end_on_every_checkpoint():
    for epochs in range(1, 120):
        assert training.progress_step(epochs, None) == max(1, -(-epochs // training.PROGRESS_UPDATES))
        for every in range(1, 40):
            step = training.progress_step(epochs, every)
            assert every % step == 0 and step <= max(1, -(-epochs // training.PROGRESS_UPDATES))
    assert training.progress_step(2000, 100) == 25
    stops, done = [], 0
    while done < 2010:
        done = training.next_stop(done, 2010, 25)
        stops.append(done)
    assert stops[:2] == [25, 50] and stops[-2:] == [2000, 2010]


def test_the_held_out_loss_is_recorded_at_every_chunk_and_kept_by_the_checkpoint(tmp_path):
    assert train("--epochs", "20", "--checkpoint-every", "4", "--quiet", "--out", tmp_path) == 0  # chunks of 1
    rows = history_rows(tmp_path)[1:]
    assert all(row[2] != "" for row in rows)  # 20 epochs: one chunk (and one held-out loss) per epoch
    saved = arrays(tmp_path)
    np.testing.assert_array_equal(saved["extras/held_out_epochs"], np.arange(1, 21))
    np.testing.assert_array_equal(saved["extras/held_out_losses"], [float(row[2]) for row in rows])
    assert float(rows[-1][2]) == pytest.approx(metrics(tmp_path)["test_loss"], rel=1e-6)


# --- checkpoints and resume ---------------------------------------------------------------------

ADAM_MINIBATCH = ("--optimizer", "adam", "--batch-size", "16", "--checkpoint-every", "60", "--quiet")


def test_resume_equals_an_uninterrupted_run_bitwise(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert training.progress_step(60, 60) == 2 and training.progress_step(25, 60) == 1
    assert train(*ADAM_MINIBATCH, "--epochs", "60", "--out", whole) == 0  # chunks of 2 epochs
    assert train(*ADAM_MINIBATCH, "--epochs", "25", "--out", split) == 0  # chunks of 1 epoch
    assert checkpoint.read_config(split / "checkpoint.npz")["epoch"] == 25
    assert train("--resume", split, "--epochs", "60", "--quiet") == 0  # 25 is off the chunks of 2
    expected, resumed = arrays(whole), arrays(split)
    for name in expected:
        if not name.startswith("extras/"):  # held-out points every step: 1 epoch for --epochs 25, 2 for 60
            np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)
    whole_rows, split_rows = history_rows(whole), history_rows(split)
    assert [row[:2] for row in split_rows] == [row[:2] for row in whole_rows]
    both = [(a[2], b[2]) for a, b in zip(whole_rows[1:], split_rows[1:], strict=True) if a[2] and b[2]]
    assert len(both) >= 20 and all(a == b for a, b in both)  # same parameters, same held-out loss
    assert [row[0] for row in split_rows[1:] if row[2]][:25] == [str(e) for e in range(1, 26)]  # kept on resume
    assert metrics(split)["test_accuracy"] == metrics(whole)["test_accuracy"]


def test_a_run_resumed_under_other_cpu_settings_says_it_need_not_end_bitwise(tmp_path, capsys, monkeypatch):
    """The checkpoint records what a CPU run's bits depend on (usable cores, XLA_FLAGS, JAX's version); a resume
    under the same says nothing (the flags compared word by word, as XLA reads them: other spacing is no other
    setting), one under another (here XLA_FLAGS as the checkpoint read them) says what differs and that the run,
    which continues, may end other than bitwise as the uninterrupted one."""
    run = tmp_path / "run"
    assert train("--dataset", "iris", "--epochs", "2", "--quiet", "--out", run) == 0
    assert checkpoint.read_config(run / "checkpoint.npz")["arithmetic"]["cpu_cores"] == len(os.sched_getaffinity(0))
    capsys.readouterr()
    assert train("--resume", run, "--epochs", "3", "--quiet") == 0
    assert "note:" not in capsys.readouterr().err
    flags = os.environ.get("XLA_FLAGS", "")
    monkeypatch.setenv("XLA_FLAGS", f"  {flags.replace(' ', '   ')}  ")  # the same flags, spaced otherwise
    assert train("--resume", run, "--epochs", "3", "--quiet") == 0
    assert "note:" not in capsys.readouterr().err
    monkeypatch.setenv("XLA_FLAGS", f"{flags} --xla_force_host_platform_device_count=2".strip())
    assert train("--resume", run, "--epochs", "4", "--quiet") == 0
    err = capsys.readouterr().err
    assert (
        f"jaxnn-train: note: {run / 'checkpoint.npz'} was written with other settings (XLA_FLAGS {flags!r} then, "
        in err
    )
    assert "the run continues correctly, but its parameters may differ in the last bits" in err
    assert checkpoint.read_config(run / "checkpoint.npz")["epoch"] == 4


def test_checkpoints_are_written_by_time_by_epochs_at_the_end(tmp_path, monkeypatch):
    writes = []
    save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda path, **kw: writes.append(kw["epoch"]) or save(path, **kw))
    assert train("--epochs", "300", "--checkpoint-seconds", "1000", "--quiet", "--out", tmp_path / "a") == 0
    assert writes == [300]  # a run shorter than --checkpoint-seconds: only at the end
    writes.clear()
    args = ("--epochs", "300", "--checkpoint-seconds", "1000", "--checkpoint-every", "100", "--quiet")
    assert train(*args, "--out", tmp_path / "b") == 0
    assert writes == [100, 200, 300]
    writes.clear()
    assert train("--epochs", "30", "--checkpoint-seconds", "0", "--quiet", "--out", tmp_path / "c") == 0
    assert writes == list(range(1, 31))  # every chunk (of 1 epoch) is at least 0 s after the last write
    result = metrics(tmp_path / "c")
    assert 0 < result["seconds"] <= result["total_seconds"]  # the total includes the checkpoint writing


def test_a_resumed_run_keeps_checkpoint_every_unless_given_again(tmp_path, monkeypatch):
    """--checkpoint-every was not stored: `--resume DIR` alone, as the stop line advises, checkpointed by time only
    and evaluated the held-out loss on other epochs than the uninterrupted run's (another history.csv)."""
    writes = []
    save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda path, **kw: writes.append(kw["epoch"]) or save(path, **kw))
    common = ("--checkpoint-seconds", "1000", "--quiet")
    # the held-out loss is evaluated at the chunks' ends: chunks of 2 epochs with --checkpoint-every 2 (in runs of
    # 60 and 150), of 3 by the pace alone in a run of 150
    assert train("--epochs", "150", "--checkpoint-every", "2", *common, "--out", tmp_path / "whole") == 0
    assert train("--epochs", "60", "--checkpoint-every", "2", *common, "--out", tmp_path / "cut") == 0
    writes.clear()
    assert train("--resume", tmp_path / "cut", "--epochs", "150", *common) == 0
    assert writes == list(range(62, 151, 2))
    assert (tmp_path / "cut" / "history.csv").read_bytes() == (tmp_path / "whole" / "history.csv").read_bytes()
    writes.clear()
    assert train("--resume", tmp_path / "cut", "--epochs", "160", "--checkpoint-every", "4", *common) == 0
    assert writes == [152, 156, 160]  # given again, it replaces the stored one


def test_resume_refuses_changed_options(tmp_path, capsys):
    assert train("--epochs", "4", "--quiet", "--out", tmp_path) == 0
    capsys.readouterr()
    for args, message in [
        (["--lr", "0.5"], f"--lr 0.5 differs from 0.1 in {tmp_path / 'checkpoint.npz'}; leave --lr out"),
        (["--layers", "10,6"], "--layers 10,6 differs from 10,5"),
        (["--dataset", "wine"], "--dataset wine differs from iris"),
        (["--no-stratify"], "--stratify off differs from on"),
        (["--epochs", "2"], "--epochs 2 is fewer than the 4 epochs the checkpoint has already done"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", tmp_path, *args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err, err


def test_too_few_epochs_on_resume_says_how_many_to_give(tmp_path, capsys):
    """``--resume DIR --epochs 3`` after 4 epochs said only that 3 is fewer than 4; it says what to give: the
    total is counted from the start, and 5 is the least that trains on (4, as many as done, trains no further)."""
    assert train("--epochs", "4", "--quiet", "--out", tmp_path) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", tmp_path, "--epochs", "3")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert (
        "--epochs 3 is fewer than the 4 epochs the checkpoint has already done; --epochs is the total, counting "
        "those: give --epochs 5 or more to train on" in err
    )
    assert train("--resume", tmp_path, "--epochs", "4", "--quiet") == 0  # allowed: nothing more to train
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["epoch"] == 4
    assert train("--resume", tmp_path, "--epochs", "5", "--quiet") == 0
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["epoch"] == 5


def test_an_existing_checkpoint_is_not_overwritten_unasked(tmp_path, capsys):
    assert train("--epochs", "2", "--quiet", "--out", tmp_path) == 0
    with pytest.raises(SystemExit):
        train("--epochs", "2", "--quiet", "--out", tmp_path)
    assert f"{tmp_path} already holds a checkpoint; continue it with --resume" in capsys.readouterr().err
    assert train("--epochs", "3", "--quiet", "--out", tmp_path, "--overwrite") == 0
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["epoch"] == 3


def test_overwrite_refused_for_its_data_leaves_the_old_run_as_it_was(tmp_path, capsys):
    """--overwrite removes nothing before the new run has passed its checks: the old run still resumes."""
    out = tmp_path / "run"
    assert train("--epochs", "2", "--quiet", "--out", out) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    typo = write_csv(tmp_path / "typo.csv", ["a", "b", "y"], [[1, "x", 0], [2, 3, 1]])
    with pytest.raises(SystemExit) as exit_info:
        train("--csv", typo, "--target", "y", "--quiet", "--out", out, "--overwrite")
    assert exit_info.value.code == 2 and "holds 'x', which is not a finite number" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert train("--resume", out, "--epochs", "3", "--quiet") == 0
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == 3


def test_overwrite_on_the_run_resumed_in_place_is_refused(tmp_path, capsys):
    """--resume DIR --overwrite silently continued the run: the user who asked to start afresh got the old run."""
    out = tmp_path / "run"
    assert train("--epochs", "2", "--quiet", "--out", out) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    for resume in (out, out / "checkpoint.npz"):
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", resume, "--overwrite", "--epochs", "3", "--quiet")
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and f"--overwrite starts afresh, but --resume {resume} continues" in err
        assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    other = tmp_path / "other"  # --overwrite of another --out stays what it was: that directory's old run goes
    assert train("--epochs", "2", "--quiet", "--out", other) == 0
    assert train("--resume", out, "--out", other, "--overwrite", "--epochs", "3", "--quiet") == 0


def test_out_inside_a_file_names_that_file(tmp_path, capsys):
    """``--out data.csv/run`` said 'cannot create --out data.csv/run: Not a directory', leaving the user to find
    which part is not one."""
    data = regression_csv(tmp_path / "data.csv", n=20)
    before = data.read_bytes()
    for out in (data / "run", data / "run" / "deeper"):
        with pytest.raises(SystemExit) as exit_info:
            train("--epochs", "2", "--quiet", "--out", out)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
        assert f"--out {out} is inside {data}, which is a file, not a directory; choose another --out" in err
    assert data.read_bytes() == before


def test_a_refused_command_leaves_no_out_directory_it_created(tmp_path, capsys):
    """A command refused after --out was created (for its data, or its loss) left that empty directory behind, and
    the parents it made for it; a directory that was there stays, as it was."""
    text = write_csv(tmp_path / "text.csv", ["a", "b", "y"], [[1, 2, "x"], [3, "abc", "y"]])
    single = write_csv(tmp_path / "single.csv", ["a", "y"], [[i, "only"] for i in range(8)])
    existing = tmp_path / "existing"
    (existing / "notes").mkdir(parents=True)
    for args, message in [
        (["--csv", text, "--target", "y"], "holds 'abc', which is not a finite number"),
        (["--csv", single, "--target", "y"], "has only one class ('only'); classification needs two"),
        (["--loss", "binary_cross_entropy"], "is for two classes (one sigmoid output) but the target has 3 classes"),
    ]:
        for out in (tmp_path / "new" / "deeper" / "run", existing, existing / "run"):
            with pytest.raises(SystemExit) as exit_info:
                train(*args, "--epochs", "2", "--quiet", "--out", out)
            err = capsys.readouterr().err
            assert exit_info.value.code == 2 and message in err, err
            assert sorted(path.name for path in tmp_path.iterdir()) == ["existing", "single.csv", "text.csv"], out
            assert [path.name for path in existing.iterdir()] == ["notes"] and not any((existing / "notes").iterdir())
    assert train("--epochs", "2", "--quiet", "--out", tmp_path / "new" / "run") == 0  # an accepted run keeps it
    assert (tmp_path / "new" / "run" / "checkpoint.npz").exists()


def test_an_out_that_is_a_file_is_named_as_such(tmp_path, capsys):
    """--out naming a file said 'cannot create --out PATH: File exists', as if the directory were the trouble."""
    data = tmp_path / "data.csv"
    data.write_text("keep me\n")
    with pytest.raises(SystemExit) as exit_info:
        train("--epochs", "2", "--quiet", "--out", data)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"--out {data} exists but is not a directory; choose another --out" in err
    assert data.read_text() == "keep me\n"


def test_a_command_stopped_before_training_leaves_no_out_directory_it_created(tmp_path, monkeypatch, capsys):
    """Ctrl-C before training started (here while the data loaded) left the empty --out the command had created,
    and its parents; a directory that was there stays."""

    class CtrlC:  # the flag jaxnn.cli.interrupts.StopSignals sets on a first Ctrl-C
        pressed = False

    ctrl_c = CtrlC()

    def pressed_while(load):
        def loading(*args):
            ctrl_c.pressed = True
            return load(*args)

        return loading

    monkeypatch.setattr(command, "load_problem", pressed_while(command.load_problem))
    monkeypatch.setattr(population, "load_problems", pressed_while(population.load_problems))
    existing = tmp_path / "existing"
    existing.mkdir()
    for lists in ([], ["--lr", "0.1,0.2"]):
        for out in (tmp_path / "new" / "run", existing):
            ctrl_c.pressed = False
            assert command.execute([*lists, "--epochs", "2", "--quiet", "--out", str(out)], ctrl_c) == 130
            assert "interrupted while loading the data; nothing was saved" in capsys.readouterr().err
            assert [path.name for path in tmp_path.iterdir()] == ["existing"] and not any(existing.iterdir())


def test_a_command_that_fails_before_writing_leaves_no_out_directory_it_created(tmp_path, monkeypatch):
    """Any error before anything was written (here one jaxnn-train does not expect, while the data loads) takes
    the --out it created with it, as a refusal does; the error itself goes on to the caller."""

    def failing(*args):
        raise MemoryError("no room for the data")

    monkeypatch.setattr(command, "load_problem", failing)
    with pytest.raises(MemoryError, match="no room for the data"):
        train("--epochs", "2", "--quiet", "--out", tmp_path / "new" / "run")
    assert not any(tmp_path.iterdir())


def test_a_directory_where_a_run_file_belongs_is_one_line(tmp_path, capsys):
    in_the_way = tmp_path / "checkpoint.npz"
    (in_the_way / "inside").mkdir(parents=True)
    for args, message in [
        (["--out", tmp_path], f"{in_the_way} is a directory, not a file jaxnn-train writes; move or rename it"),
        (["--out", tmp_path, "--overwrite"], f"{in_the_way} is a directory, not a file jaxnn-train writes"),
        (["--resume", tmp_path], f"{in_the_way} is a directory, not a checkpoint jaxnn-train wrote, so there is"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            train(*args, "--epochs", "2", "--quiet")
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint.npz"] and (in_the_way / "inside").is_dir()


def test_a_directory_at_a_run_files_temporary_name_is_refused_before_training(tmp_path, capsys):
    """A directory at ``checkpoint.npz.tmp`` let the run train, then fail writing its checkpoint (exit 1)."""
    in_the_way = tmp_path / "checkpoint.npz.tmp"
    in_the_way.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        train("--out", tmp_path, "--epochs", "2", "--quiet")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{in_the_way} is a directory, not a file jaxnn-train writes" in err, err
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint.npz.tmp"]


def test_a_csv_at_the_name_of_a_file_the_run_writes_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    data = regression_csv(out / "history.csv", n=20)
    (tmp_path / "link.csv").symlink_to(out / "metrics.json")
    regression_csv(out / "metrics.json", n=20)
    before = data.read_bytes()
    for csv_file, written in [(data, "history.csv"), (tmp_path / "link.csv", "metrics.json")]:
        for extra in [[], ["--overwrite"]]:
            with pytest.raises(SystemExit) as exit_info:
                train("--csv", csv_file, "--target", "price", "--epochs", "2", "--quiet", "--out", out, *extra)
            err = capsys.readouterr().err
            assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
            assert f"is the {written} that jaxnn-train writes in --out {out}, so the run would overwrite" in err
    assert data.read_bytes() == before == (out / "metrics.json").read_bytes()
    assert sorted(path.name for path in out.iterdir()) == ["history.csv", "metrics.json"]


def test_corrupt_checkpoint_on_resume_is_one_line(tmp_path, capsys):
    """Truncated, or a byte flipped: one line saying so and (it did not) what to do; the file is left as it is."""
    assert train("--epochs", "2", "--quiet", "--out", tmp_path) == 0
    path = tmp_path / "checkpoint.npz"
    whole = path.read_bytes()
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 1
    for damaged in (whole[:-100], bytes(flipped)):
        path.write_bytes(damaged)
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", tmp_path)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1
        assert f"{path} is truncated or corrupt" in err
        assert "; that run cannot continue from it: restore the file from a copy, or start a new run" in err
        assert path.read_bytes() == damaged


def _entry(name, value):
    """A change for :func:`tampered_copy`: entry ``name`` becomes ``value(entry)``."""

    def change(config, entries):
        entries[name] = value(entries[name])

    return change


TAMPERED_CURVES = {
    # raw bytes: load let them through, and resuming read them as numbers (a ValueError traceback)
    "held-out epochs as bytes": (_entry("extras/held_out_epochs", lambda e: np.zeros(e.shape, "V8")), "is void64"),
    "held-out losses as text": (_entry("extras/held_out_losses", lambda e: e.astype("U8")), "is str256"),
    "held-out epochs as floats": (_entry("extras/held_out_epochs", lambda e: e + 0.5), "loss curve is malformed"),
    "held-out epoch past the run's": (_entry("extras/held_out_epochs", lambda e: e * 10**9), "curve is malformed"),
    "negative held-out epoch": (_entry("extras/held_out_epochs", lambda e: e - 2), "loss curve is malformed"),
    "held-out epochs falling": (_entry("extras/held_out_epochs", lambda e: e[::-1]), "loss curve is malformed"),
    "NaN training loss": (_entry("history", lambda h: np.where(np.arange(h.size) == 1, np.nan, h)), "NaN or an inf"),
    # a TypeError traceback (exit 1) while comparing names, and a batch of keys fit refused in its own words
    "class names not a list": (lambda config, entries: config.update(class_names=None), "its class_names is not a"),
    "input columns a number": (lambda config, entries: config.update(input_columns=7), "its input_columns is not a"),
    "three keys": (_entry("key", lambda key: np.zeros((3, *key.shape), key.dtype)), "RNG key entry holds 3 keys, not"),
}


@pytest.mark.parametrize("tampering", TAMPERED_CURVES.values(), ids=TAMPERED_CURVES)
def test_a_tampered_loss_curve_is_refused_on_resume_in_one_line(tmp_path, capsys, tampering):
    """A checkpoint that passes the checksum (metadata and digest rewritten with the edit) but holds loss curves
    jaxnn-train never writes: refused, not carried into history.csv and the next checkpoint, nor a traceback."""
    change, message = tampering
    assert train("--epochs", "3", "--quiet", "--out", tmp_path / "run") == 0
    run = tampered_copy(tmp_path / "run", tmp_path / "tampered", change)
    before = (run / "checkpoint.npz").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", "6", "--quiet")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "checkpoint.npz is corrupt: " in err, err
    assert message in err, err
    assert (run / "checkpoint.npz").read_bytes() == before


def test_resume_of_a_file_that_is_not_a_checkpoint_says_so_and_what_resume_takes(tmp_path, capsys):
    """``--resume data.csv`` (any file that is not a zip archive, whatever its name) said the file 'is truncated or
    corrupt' and advised restoring it from a copy; it is not a checkpoint at all.  Judged by content: a CSV file
    named like a checkpoint is not one either, and a damaged archive is still called truncated or corrupt."""
    data = regression_csv(tmp_path / "data.csv", n=20)
    named_like_one = tmp_path / "checkpoint.npz"
    named_like_one.write_text("a,b\n1,2\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("PK is where a zip archive starts, but this is text\n")  # starts with PK: damaged, not mistaken
    for resume in (data, named_like_one):
        before = resume.read_bytes()
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", resume, "--epochs", "3")
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
        assert (
            f"{resume} is not a jaxnn-train checkpoint (it is not an .npz/zip archive); --resume takes a run's --out "
            "directory or its checkpoint.npz" in err
        )
        assert "corrupt" not in err and "restore" not in err
        assert resume.read_bytes() == before
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", notes)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{notes} is truncated or corrupt" in err and "restore the file" in err


def test_resume_of_what_is_not_a_run_says_what_it_is_and_what_to_do(tmp_path, capsys):
    """``--resume`` of a run directory without its checkpoint, of a directory without a run, or of a path that is
    not there said only 'no checkpoint at DIR/checkpoint.npz' (a missing file as 'x.npz/checkpoint.npz')."""
    run = tmp_path / "run"
    assert train("--epochs", "2", "--quiet", "--out", run) == 0
    (run / "checkpoint.npz").unlink()
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    for resume, message in [
        (run, f"no checkpoint at {run}/checkpoint.npz: {run} holds metrics.json, history.csv"),
        (run, "of a run but not its checkpoint, so that run cannot be continued; start a new run (--out"),
        (tmp_path / "empty", f"{tmp_path}/empty holds no jaxnn-train run; --resume the --out directory of a run"),
        (run / "x.npz", f"no checkpoint at {run}/x.npz: no such file or directory; --resume the --out directory"),
    ]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", resume, "--epochs", "3")
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


# --- optimisers ---------------------------------------------------------------------------------


def test_sgd_means_momentum_and_the_flags_reach_the_checkpoint(tmp_path, capsys):
    assert train("--optimizer", "sgd", "--epochs", "2", "--quiet", "--out", tmp_path / "default") == 0
    assert "sgd lr 0.1 momentum 0.9 nesterov, batch 32" in capsys.readouterr().out
    config = checkpoint.read_config(tmp_path / "default" / "checkpoint.npz")
    assert (config["momentum"], config["nesterov"]) == (0.9, True)
    assert any(name.startswith("opt_state/") for name in arrays(tmp_path / "default"))  # the velocity
    plain = ("--optimizer", "sgd", "--momentum", "0", "--epochs", "2", "--quiet")
    assert train(*plain, "--out", tmp_path / "plain") == 0
    assert not any(name.startswith("opt_state/") for name in arrays(tmp_path / "plain"))  # gradient descent
    heavy = ("--optimizer", "sgd", "--no-nesterov", "--epochs", "2", "--quiet")
    assert train(*heavy, "--out", tmp_path / "heavy") == 0
    assert checkpoint.read_config(tmp_path / "heavy" / "checkpoint.npz")["nesterov"] is False
    assert not np.array_equal(arrays(tmp_path / "heavy")["params/0/W"], arrays(tmp_path / "default")["params/0/W"])


# --- regression, divergence and strict JSON ---------------------------------------------------------


def test_csv_with_a_continuous_target_is_regression(tmp_path, capsys):
    data = regression_csv(tmp_path / "prices.csv")
    args = ("--csv", data, "--target", "price", "--optimizer", "adam", "--lr", "0.03", "--epochs", "60", "--quiet")
    assert train(*args, "--out", tmp_path / "run") == 0
    result = metrics(tmp_path / "run")
    assert result["task"] == "regression" and result["loss"] == "squared_error"
    assert result["test_r2"] > 0.95 and result["test_rmse"] < 0.25 * 6  # the target's spread is about 6
    assert result["input_columns"] == ["a", "b"]
    output = capsys.readouterr().out
    assert "test RMSE" in output and "inputs (2): a, b" in output
    assert not (tmp_path / "run" / "confusion.png").exists() and (tmp_path / "run" / "loss.png").exists()
    data.write_text(data.read_text().replace("40.", "41.", 1))
    with pytest.raises(SystemExit):
        train("--resume", tmp_path / "run", "--epochs", "70")
    assert "the data differs from the data" in capsys.readouterr().err


def test_a_target_of_magnitude_1e200_trains_like_one_of_magnitude_1(tmp_path, capsys):
    args = ("--target", "price", "--optimizer", "adam", "--lr", "0.03", "--epochs", "60", "--quiet")
    assert train("--csv", regression_csv(tmp_path / "small.csv"), *args, "--out", tmp_path / "small") == 0
    assert train("--csv", regression_csv(tmp_path / "huge.csv", scale=1e200), *args, "--out", tmp_path / "huge") == 0
    small, huge = metrics(tmp_path / "small"), metrics(tmp_path / "huge")
    assert huge["test_rmse"] == pytest.approx(small["test_rmse"] * 1e200, rel=1e-3)
    assert huge["test_r2"] == pytest.approx(small["test_r2"], abs=1e-3) and huge["test_r2"] > 0.95


def _far_test_rows_csv(path):
    """A regression CSV whose two test rows (of the default split) lie ~1e300 beyond every training row: the errors
    overflow float arithmetic."""
    n = 200
    _, test = shuffle_split(n, 0.25, 42)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.normal(size=n)
    target = a + b
    target[test[:2]] = [1e300, -1e300]
    return write_csv(path, ["a", "b", "y"], zip(a.tolist(), b.tolist(), target.tolist(), strict=True))


def test_a_non_finite_test_metric_is_a_failure(tmp_path, capsys):
    data = _far_test_rows_csv(tmp_path / "far.csv")
    assert train("--csv", data, "--target", "y", "--epochs", "3", "--quiet", "--out", tmp_path / "run") == 1
    err = capsys.readouterr().err
    assert "the run finished but test_rmse inf" in err and "not a finite number" in err
    assert metrics(tmp_path / "run")["test_rmse"] is None  # strict JSON: null


def test_a_non_finite_test_metric_is_one_line_without_a_numpy_warning(tmp_path):
    """The standardised test targets, cast to float32 for the held-out loss, overflowed: numpy's 'RuntimeWarning:
    overflow encountered in cast' and a line of jaxnn's source came before the message."""
    result = shell("--csv", str(_far_test_rows_csv(tmp_path / "far.csv")), "--target", "y", "--epochs", "3", "--quiet")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxnn-train: the run finished but"), result.stderr


def test_r2_is_scored_on_the_test_targets_spread_not_lost_to_a_far_training_row(tmp_path):
    """A training row 1e20 away made the standardised test targets one float64 value: a 'constant' test column, R² 0,
    for predictions off by 1e18 (R² about -1e36)."""
    n = 200
    train_rows, test = shuffle_split(n, 0.25, 42)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.normal(size=n)
    target = a + b
    target[train_rows[0]] = 1e20
    data = write_csv(tmp_path / "far.csv", ["a", "b", "y"], zip(a.tolist(), b.tolist(), target.tolist(), strict=True))
    assert train("--csv", data, "--target", "y", "--epochs", "3", "--quiet", "--out", tmp_path / "run") == 0
    result = metrics(tmp_path / "run")
    # with unit weights, scikit-learn's R² is 1 − MSE / the variance of the test targets
    assert result["test_r2"] == pytest.approx(1 - result["test_rmse"] ** 2 / np.var(target[test]), rel=1e-6)


def test_numbers_in_the_summary_have_a_sensible_format():
    assert report.r_squared(-31850061773604679502065830366648729600.0) == "-3.185e+37"
    assert report.r_squared(0.98765) == "0.9877" and report.r_squared(-0.5) == "-0.5000"
    assert report.number(0.0447123) == "0.04471" and report.number(1.2e-5) == "1.2e-05"


def test_divergence_exits_1_and_keeps_finite_parameters(tmp_path, capsys):
    data = regression_csv(tmp_path / "prices.csv")
    assert train("--csv", data, "--target", "price", "--lr", "1e4", "--epochs", "50", "--quiet", "--out", tmp_path) == 1
    err = capsys.readouterr().err
    assert "training diverged after epoch" in err and "start again with a smaller --lr (and --overwrite" in err
    result = metrics(tmp_path)
    assert result["diverged"] is True and result["epochs"] < 50
    assert not (tmp_path / "checkpoint.npz").exists()  # no healthy checkpoint was due before the divergence
    saved = arrays(tmp_path, "checkpoint-diverged.npz")
    assert all(np.all(np.isfinite(a)) for name, a in saved.items() if name.startswith("params/"))
    with pytest.raises(SystemExit):
        train("--resume", tmp_path)
    assert "that run diverged before its first checkpoint" in capsys.readouterr().err


def test_a_divergence_records_its_last_held_out_point_once(tmp_path, capsys):
    """The chunk that diverges at its first step runs no epoch: the held-out loss of the epoch before is not
    recorded a second time (it was [1, ..., 7, 7] in the checkpoint, for 7 rows of history.csv)."""
    data = regression_csv(tmp_path / "prices.csv")
    assert train("--csv", data, "--target", "price", "--lr", "1e3", "--epochs", "20", "--quiet", "--out", tmp_path) == 1
    capsys.readouterr()
    saved = arrays(tmp_path, "checkpoint-diverged.npz")
    epochs = saved["extras/held_out_epochs"]
    assert len(saved["history"]) == metrics(tmp_path)["epochs"] < 20
    np.testing.assert_array_equal(epochs, np.arange(1, len(saved["history"]) + 1))  # chunks of 1 epoch, each once
    assert len(history_rows(tmp_path)) == 1 + len(epochs)


def test_a_resumed_run_that_diverges_keeps_the_healthy_checkpoint(tmp_path, capsys):
    data = regression_csv(tmp_path / "prices.csv")
    assert train("--csv", data, "--target", "price", "--lr", "4", "--epochs", "10", "--quiet", "--out", tmp_path) == 0
    healthy = (tmp_path / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert train("--resume", tmp_path, "--epochs", "200", "--quiet") == 1  # lr 4 (on half the squared error) diverges
    err = capsys.readouterr().err
    assert "a resumed run keeps its --lr: start a new run with a smaller --lr in another --out" in err
    assert f"{tmp_path / 'checkpoint.npz'} keeps the last healthy checkpoint" in err
    assert (tmp_path / "checkpoint.npz").read_bytes() == healthy
    diverged = checkpoint.read_config(tmp_path / "checkpoint-diverged.npz")
    assert diverged["diverged"] is True and 10 < diverged["epoch"] < 200
    assert metrics(tmp_path)["epochs"] == diverged["epoch"]


def test_a_constant_target_scores_r2_as_scikit_learn_does(tmp_path):
    rows = [[i, (i * 7) % 5, 2.5] for i in range(20)]  # a constant, non-whole target: regression
    data = write_csv(tmp_path / "constant.csv", ["a", "b", "y"], rows)
    assert train("--csv", data, "--target", "y", "--epochs", "3", "--quiet", "--out", tmp_path / "run") == 0
    result = metrics(tmp_path / "run")  # strict: NaN or Infinity in the file fails here
    assert result["task"] == "regression" and np.isfinite(result["test_rmse"]) and result["test_rmse"] > 0
    predicted = np.full(result["n_test"], 2.5) + result["test_rmse"]  # any prediction off the constant
    assert result["test_r2"] == r2_score(np.full(result["n_test"], 2.5), predicted) == 0.0


def test_metrics_json_is_strict_json_after_divergence(tmp_path, capsys):
    data = regression_csv(tmp_path / "prices.csv")
    assert train("--csv", data, "--target", "price", "--lr", "1e30", "--epochs", "5", "--quiet", "--out", tmp_path) == 1
    assert "training diverged after epoch" in capsys.readouterr().err
    result = metrics(tmp_path)  # strict: NaN or Infinity in the file fails here
    assert result["diverged"] is True and result["options"]["lr"] == 1e30


def test_json_safe_nulls_every_non_finite_float():
    value = {"a": [1.0, float("inf"), {"b": float("-inf")}], "c": (float("nan"), 2), "d": "nan", "e": None}
    assert report.json_safe(value) == {"a": [1.0, None, {"b": None}], "c": [None, 2], "d": "nan", "e": None}


def test_confusion_png_of_200_classes_is_a_small_heat_map(tmp_path):
    # it used to write 40000 cell labels on a 102-inch figure: 10200 x 10200 pixels, minutes of matplotlib
    rng = np.random.default_rng(0)
    rows = [(*rng.normal(size=2).tolist(), f"class{index % 200}") for index in range(2000)]
    data = write_csv(tmp_path / "many.csv", ["a", "b", "label"], rows)
    assert train("--csv", data, "--target", "label", "--epochs", 1, "--quiet", "--out", tmp_path / "run") == 0
    png = (tmp_path / "run" / "confusion.png").read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert png.startswith(PNG) and width <= 1000 and height <= 1000, (width, height)


def test_accuracies_are_exact_ratios_of_counts(tmp_path):
    assert train("--epochs", "40", "--quiet", "--out", tmp_path) == 0
    result = metrics(tmp_path)
    for split, rows in (("test", result["n_test"]), ("train", result["n_train"])):
        correct = round(result[f"{split}_accuracy"] * rows)
        assert result[f"{split}_accuracy"] == correct / rows, split  # float32's 37/38 is 0.9736841917037964


def test_a_semicolon_separated_csv_gets_a_hint_about_the_delimiter(tmp_path, capsys):
    data = tmp_path / "semi.csv"
    data.write_text("a;b;label\n1;2;x\n3;4;y\n5;6;x\n7;8;y\n")
    with pytest.raises(SystemExit) as exit_info:
        train("--csv", data, "--target", "label")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert "has one column, 'a;b;label': its cells seem separated by semicolons" in err


def test_names_print_on_an_ascii_stdout(tmp_path, monkeypatch):
    """PYTHONIOENCODING=ascii (or a pipe under an ASCII locale): the summary, which names the CSV file, was a
    UnicodeEncodeError traceback after training; the command now writes what ASCII lacks as \\xe4."""
    rows = [(1, 2, "×"), (2, 1, "−"), (1, 1, "×"), (2, 2, "−"), (1, 3, "×"), (3, 1, "−"), (2, 3, "×"), (3, 2, "−")]
    data = write_csv(tmp_path / "dätä×.csv", ["a", "b", "cls"], rows)
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    jaxnn.cli.printable_streams()  # what the command does first
    assert train("--csv", data, "--target", "cls", "--epochs", "2", "--quiet") == 0
    sys.stdout.flush()
    assert "d\\xe4t\\xe4\\xd7" in raw.getvalue().decode("ascii")


def test_a_cache_that_stays_off_is_one_line_in_the_commands_words(monkeypatch, capsys):
    """Under python -m jaxnn.cli the warning read "<frozen runpy>:88: RuntimeWarning: jaxnn's compilation cache
    stays off: ..." (the installed script: its own path and line)."""
    from jaxnn import compile_cache

    def read_only_home():
        warnings.warn(
            "jaxnn's compilation cache stays off: the cache directory /ro/.cache/jaxnn/xla cannot be written",
            RuntimeWarning,
            stacklevel=2,
        )

    monkeypatch.setattr(compile_cache, "enable_default", read_only_home)
    assert train("--epochs", "1", "--quiet") == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "jaxnn-train: warning: jaxnn's compilation cache stays off: the cache directory /ro/.cache/jaxnn/xla cannot "
        "be written"
    )
    assert "RuntimeWarning" not in err


def test_a_batch_size_of_every_training_row_or_more_is_named_full_batch_in_the_summary(tmp_path, capsys):
    """fit trains such a batch size as the full batch; the summary said "batch 100000" on 112 rows."""
    assert train("--batch-size", 100000, "--epochs", 2, "--quiet", "--out", tmp_path / "run") == 0
    assert ", full batch (--batch-size 100000 >= the 112 training rows)" in capsys.readouterr().out
    assert train("--batch-size", 16, "--epochs", 2, "--quiet", "--out", tmp_path / "minibatch") == 0
    assert "gd lr 0.1, batch 16" in capsys.readouterr().out
