"""jaxnn-train: every bundled dataset end to end, the files it writes, resume, Ctrl-C and bad input."""

import csv
import io
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import jaxnn
from jaxnn import checkpoint, cli
from jaxnn.data import standardise

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _command() -> list[str]:
    """The installed console script, or the module when the package is not installed as a script."""
    script = Path(sys.executable).with_name("jaxnn-train")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jaxnn.cli"]


def _environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "XLA_FLAGS"}
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1", **extra}


def _shell(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_command(), *args], capture_output=True, text=True, timeout=timeout, env=_environment(), cwd=ROOT
    )


def _train(*args) -> int:
    """jaxnn-train in this process (no JAX start-up to pay)."""
    return cli.main([str(arg) for arg in args])


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / "checkpoint.npz", allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files if name != "meta"}


def _strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which are not JSON (as most parsers outside Python do)."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _metrics(directory: Path) -> dict:
    return _strict_json((directory / "metrics.json").read_text())


# --- every bundled dataset, from the shell ------------------------------------------------------

DATASET_RUNS = [
    ("iris", 4, 3, ["--optimizer", "sgd", "--batch-size", "16"]),
    ("wine", 13, 3, ["--optimizer", "adam"]),
    ("breast_cancer", 30, 1, ["--loss", "binary_cross_entropy"]),  # two classes: one sigmoid output
    ("digits", 64, 10, ["--loss", "softmax_cross_entropy", "--layers", "16"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "n_features", "n_outputs", "extra"), DATASET_RUNS, ids=[r[0] for r in DATASET_RUNS]
)
def test_each_bundled_dataset_trains_and_writes_its_files(tmp_path, dataset, n_features, n_outputs, extra):
    out = tmp_path / "run"
    done = _shell("--dataset", dataset, "--epochs", "3", "--checkpoint-every", "2", "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    # progress as plain lines (stdout is not a terminal), then the summary
    assert "epoch 3/3  loss " in done.stdout and "accuracy" in done.stdout
    assert f"{dataset}: {n_features}-" in done.stdout and "test accuracy" in done.stdout

    metrics = _metrics(out)
    assert metrics["epochs"] == 3 and metrics["devices"] == 1 and metrics["seconds"] > 0
    assert (
        0 <= metrics["test_accuracy"] <= 1 and np.isfinite(metrics["test_loss"]) and np.isfinite(metrics["train_loss"])
    )

    arrays = _arrays(out)
    last = max(int(name.split("/")[1]) for name in arrays if name.startswith("params/"))
    assert arrays["params/0/W"].shape[0] == n_features and arrays[f"params/{last}/b"].shape == (n_outputs,)
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == 3
    rows = list(csv.reader((out / "history.csv").open()))
    assert rows[0] == ["epoch", "train_loss"] and [int(r[0]) for r in rows[1:]] == [1, 2, 3]
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], arrays["history"])
    for plot in ("loss.png", "confusion.png"):
        assert (out / plot).read_bytes().startswith(PNG)


# --- what a person sees ----------------------------------------------------------------------------


def test_seed_example_script_reaches_097(tmp_path, capsys):
    seed_example = runpy.run_path(str(ROOT / "scripts" / "train.py"), run_name="not_main")["SEED_EXAMPLE"]
    assert _train(*seed_example, "--out", tmp_path) == 0
    output = capsys.readouterr().out
    assert "epoch 2000/2000  loss" in output and "iris: 4-10 relu-5 relu-3 softmax" in output
    assert _metrics(tmp_path)["test_accuracy"] >= 0.97


def test_metrics_are_those_of_the_checkpointed_parameters(tmp_path):
    assert _train("--epochs", "40", "--quiet", "--out", tmp_path) == 0
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=42)
    scaler = standardise(x_train)
    arrays = _arrays(tmp_path)
    params = [{"W": arrays[f"params/{i}/W"], "b": arrays[f"params/{i}/b"]} for i in range(3)]
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    predicted = np.argmax(model.apply(params, scaler(x_test).astype(np.float32)), axis=1)
    metrics = _metrics(tmp_path)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == y_test))
    assert metrics["n_train"] == len(y_train) and metrics["n_test"] == len(y_test)


def test_progress_is_about_ten_lines_without_a_terminal(capsys):
    assert _train("--epochs", "20") == 0
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("epoch")]
    assert [line.split()[1] for line in progress] == [f"{e}/20" for e in range(2, 21, 2)]
    assert all("loss" in line and "accuracy" in line for line in progress)


def test_quiet_prints_only_the_summary(capsys):
    assert _train("--epochs", "5", "--quiet") == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("epoch") for line in lines)
    assert any("test accuracy" in line for line in lines)


def test_progress_bar_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _train("--epochs", "5") == 0
    captured = capsys.readouterr()
    assert "5/5" in captured.err and "loss=" in captured.err and "acc=" in captured.err
    assert not any(line.startswith("epoch") for line in captured.out.splitlines())


def test_without_tqdm_a_terminal_gets_lines(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert _train("--epochs", "5") == 0
    assert "epoch 5/5  loss" in capsys.readouterr().out


def test_without_matplotlib_plots_are_skipped_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert _train("--epochs", "3", "--quiet", "--out", tmp_path) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["jaxnn-train: plots skipped: matplotlib is not installed (pip install 'jaxnn[plots]')"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "history.csv", "metrics.json"]


def test_chunks_end_on_every_checkpoint():
    for epochs in range(1, 120):
        for every in range(1, 40):
            step = cli.progress_step(epochs, every)
            assert every % step == 0 and step <= max(1, -(-epochs // cli.PROGRESS_UPDATES))
    assert cli.progress_step(2000, 100) == 25
    stops, done = [], 0
    while done < 2010:
        done = cli.next_stop(done, 2010, 25)
        stops.append(done)
    assert stops[:2] == [25, 50] and stops[-2:] == [2000, 2010]


# --- checkpoints and resume ---------------------------------------------------------------------

ADAM_MINIBATCH = ("--optimizer", "adam", "--batch-size", "16", "--checkpoint-every", "60", "--quiet")


def test_resume_equals_an_uninterrupted_run_bitwise(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert cli.progress_step(60, 60) == 2 and cli.progress_step(25, 60) == 1
    assert _train(*ADAM_MINIBATCH, "--epochs", "60", "--out", whole) == 0  # chunks of 2 epochs
    assert _train(*ADAM_MINIBATCH, "--epochs", "25", "--out", split) == 0  # chunks of 1 epoch
    assert checkpoint.read_config(split / "checkpoint.npz")["epoch"] == 25
    assert _train("--resume", split, "--epochs", "60", "--quiet") == 0  # 25 is off the chunks of 2
    expected, resumed = _arrays(whole), _arrays(split)
    assert sorted(expected) == sorted(resumed)
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)
    assert (split / "history.csv").read_text() == (whole / "history.csv").read_text()
    assert _metrics(split)["test_accuracy"] == _metrics(whole)["test_accuracy"]


def test_resume_refuses_changed_options(tmp_path, capsys):
    assert _train("--epochs", "4", "--quiet", "--out", tmp_path) == 0
    capsys.readouterr()
    for args, message in [
        (["--lr", "0.5"], f"--lr 0.5 differs from 0.1 in {tmp_path / 'checkpoint.npz'}; leave --lr out"),
        (["--layers", "10,6"], "--layers 10,6 differs from 10,5"),
        (["--dataset", "wine"], "--dataset wine differs from iris"),
        (["--epochs", "2"], "--epochs 2 is fewer than the 4 epochs the checkpoint has already done"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            _train("--resume", tmp_path, *args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err, err


def test_a_checkpoint_from_elsewhere_is_refused_on_resume(tmp_path, capsys):
    params = [{"W": np.zeros((4, 10), np.float32), "b": np.zeros(10, np.float32)}]
    checkpoint.save(tmp_path / "checkpoint.npz", params=params, opt_state=(), key=jax.random.key(0), epoch=0,
                    history=[], config={"lr": 0.1})  # fmt: skip
    with pytest.raises(SystemExit):
        _train("--resume", tmp_path)
    assert "was not written by jaxnn-train: its config lacks dataset, csv" in capsys.readouterr().err


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    """A 2-epoch run of the default iris network, checkpointed; tests copy it, never change it."""
    out = tmp_path_factory.mktemp("iris_run")
    assert _train("--epochs", "2", "--quiet", "--out", out) == 0
    return out


def _with_config(source: Path, destination: Path, **changes) -> Path:
    """A copy of ``source``'s checkpoint whose stored config has ``changes``, still a loadable file.

    The checksum covers the arrays, not the config, so the arrays are written back unchanged.
    """
    with np.load(source / "checkpoint.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    meta["config"].update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "checkpoint.npz").write_bytes(buffer.getvalue())
    return destination


def test_a_rewritten_config_with_valid_options_resumes(iris_run, tmp_path):
    # the control for the test below: the rewriting keeps the file loadable and valid options pass
    run = _with_config(iris_run, tmp_path / "run", lr=0.05, activation="tanh", layers=[10, 5], batch_size=None)
    assert _train("--resume", run, "--epochs", "3", "--quiet") == 0
    config = checkpoint.read_config(run / "checkpoint.npz")
    assert (config["epoch"], config["lr"], config["activation"]) == (3, 0.05, "tanh")


TAMPERED = [
    ({"optimizer": "rmsprop"}, "--optimizer ('rmsprop')"),
    ({"lr": -1}, "--lr (-1)"),
    ({"lr": 1e400}, "--lr (inf)"),  # json writes Infinity, json.loads reads it back
    ({"lr": "0.1"}, "--lr ('0.1')"),  # a string, not a number
    ({"layers": "x"}, "--layers ('x')"),
    ({"layers": [10, 0]}, "--layers ([10, 0])"),
    ({"layers": [10, 5.5]}, "--layers ([10, 5.5])"),
    ({"layers": []}, "--layers ([])"),
    ({"dataset": "../etc"}, "--dataset ('../etc')"),
    ({"activation": "os.system"}, "--activation ('os.system')"),
    ({"loss": "hinge"}, "--loss ('hinge')"),
    ({"task": "sideways"}, "--task ('sideways')"),
    ({"batch_size": 0}, "--batch-size (0)"),
    ({"seed": True}, "--seed (True)"),
    ({"seed": 2**32}, f"--seed ({2**32})"),
    ({"test_size": 1.5}, "--test-size (1.5)"),
    ({"epochs": 0}, "--epochs (0)"),
    ({"epochs": 2**32}, f"--epochs ({2**32})"),  # the epoch counter is a uint32
    ({"csv": 5}, "--csv or --target"),
    ({"target": ["price"]}, "--csv or --target"),
]


@pytest.mark.parametrize(("changes", "named"), TAMPERED, ids=[repr(c) for c, _ in TAMPERED])
def test_resume_checks_the_options_stored_in_the_checkpoint(iris_run, tmp_path, capsys, changes, named):
    run = _with_config(iris_run, tmp_path / "run", **changes)
    with pytest.raises(SystemExit) as exit_info:
        _train("--resume", run, "--epochs", "3", "--quiet")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"{run / 'checkpoint.npz'} holds an invalid {named}" in lines[0], lines
    assert checkpoint.read_config(run / "checkpoint.npz")["epoch"] == 2  # nothing was trained or written


@pytest.mark.parametrize(
    ("changes", "named"),
    [({"batch_size": "full"}, "--batch-size"), ({"dataset": None}, "--dataset/--csv")],
    ids=["batch_full", "no_data"],
)
def test_resume_refuses_stored_options_no_run_writes(iris_run, tmp_path, capsys, changes, named):
    run = _with_config(iris_run, tmp_path / "run", **changes)
    with pytest.raises(SystemExit) as exit_info:
        _train("--resume", run, "--epochs", "3", "--quiet")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"holds an invalid {named}" in lines[0], lines


def test_an_existing_checkpoint_is_not_overwritten_unasked(tmp_path, capsys):
    assert _train("--epochs", "2", "--quiet", "--out", tmp_path) == 0
    with pytest.raises(SystemExit):
        _train("--epochs", "2", "--quiet", "--out", tmp_path)
    assert f"{tmp_path} already holds a checkpoint; continue it with --resume" in capsys.readouterr().err
    assert _train("--epochs", "3", "--quiet", "--out", tmp_path, "--overwrite") == 0
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["epoch"] == 3


def test_corrupt_checkpoint_on_resume_is_one_line(tmp_path, capsys):
    assert _train("--epochs", "2", "--quiet", "--out", tmp_path) == 0
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SystemExit) as exit_info:
        _train("--resume", tmp_path)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert f"{path} is truncated or corrupt" in err


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_the_run_resumes_exactly(tmp_path):
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    process = subprocess.Popen(
        [*_command(), "--epochs", "1000000", "--checkpoint-every", "5", "--quiet", "--out", str(interrupted)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    try:
        deadline = time.monotonic() + 120
        while not (interrupted / "checkpoint.npz").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    epoch = checkpoint.read_config(interrupted / "checkpoint.npz")["epoch"]
    assert f"interrupted at epoch {epoch}; checkpoint in {interrupted}; continue with --resume {interrupted}" in err
    assert epoch >= 5
    total = epoch + 3
    assert _train("--resume", interrupted, "--epochs", total, "--quiet") == 0
    assert _train("--epochs", total, "--checkpoint-every", 10**6, "--quiet", "--out", whole) == 0
    expected, resumed = _arrays(whole), _arrays(interrupted)
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


# --- CSV files ----------------------------------------------------------------------------------


def _write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_with_text_labels_trains_exactly_like_the_bundled_dataset(tmp_path):
    bunch = load_iris()
    names = [str(name) for name in bunch.target_names]  # already in sorted order, so the class indices agree
    rows = [
        [*map(repr, features), names[label]] for features, label in zip(bunch.data.tolist(), bunch.target, strict=True)
    ]
    data = _write_csv(tmp_path / "iris.csv", [*bunch.feature_names, "species"], rows)
    assert _train("--csv", data, "--target", "species", "--epochs", "30", "--quiet", "--out", tmp_path / "csv") == 0
    assert _train("--dataset", "iris", "--epochs", "30", "--quiet", "--out", tmp_path / "bundled") == 0
    from_csv, bundled = _arrays(tmp_path / "csv"), _arrays(tmp_path / "bundled")
    for name in bundled:
        np.testing.assert_array_equal(from_csv[name], bundled[name], err_msg=name)
    assert checkpoint.read_config(tmp_path / "csv" / "checkpoint.npz")["class_names"] == names


def _regression_csv(path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.uniform(0, 10, size=n)
    target = 3.0 * a - 2.0 * b + 40.0 + rng.normal(scale=0.1, size=n)
    return _write_csv(path, ["a", "b", "price"], zip(a.tolist(), b.tolist(), target.tolist(), strict=True))


def test_csv_with_a_continuous_target_is_regression(tmp_path, capsys):
    data = _regression_csv(tmp_path / "prices.csv")
    args = ("--csv", data, "--target", "price", "--optimizer", "adam", "--lr", "0.03", "--epochs", "60", "--quiet")
    assert _train(*args, "--out", tmp_path / "run") == 0
    metrics = _metrics(tmp_path / "run")
    assert metrics["task"] == "regression" and metrics["loss"] == "mean_squared_error"
    assert metrics["test_r2"] > 0.95 and metrics["test_rmse"] < 0.25 * 6  # the target's spread is about 6
    assert "test RMSE" in capsys.readouterr().out
    assert not (tmp_path / "run" / "confusion.png").exists() and (tmp_path / "run" / "loss.png").exists()
    data.write_text(data.read_text().replace("40.", "41.", 1))
    with pytest.raises(SystemExit):
        _train("--resume", tmp_path / "run", "--epochs", "70")
    assert "the data differs from the data" in capsys.readouterr().err


def test_target_kind_is_read_from_the_column():
    path = Path("t.csv")
    assert cli._csv_targets(["1", "0", "2", "1"], [2, 3, 4, 5], None, path, "y")[0] == "classification"
    task, labels, names = cli._csv_targets(["b", "a", "b"], [2, 3, 4], None, path, "y")
    assert (task, labels.tolist(), names) == ("classification", [1, 0, 1], ("a", "b"))
    assert cli._csv_targets(["0.5", "1.25", "3"], [2, 3, 4], None, path, "y")[0] == "regression"
    many = [str(i) for i in range(cli.MAX_AUTO_CLASSES + 1)]
    assert cli._csv_targets(many, list(range(len(many))), None, path, "y")[0] == "regression"
    assert cli._csv_targets(many, list(range(len(many))), "classification", path, "y")[0] == "classification"


def test_divergence_exits_1_and_keeps_finite_parameters(tmp_path, capsys):
    data = _regression_csv(tmp_path / "prices.csv")
    assert (
        _train("--csv", data, "--target", "price", "--lr", "1e4", "--epochs", "50", "--quiet", "--out", tmp_path) == 1
    )
    assert "training diverged after epoch" in capsys.readouterr().err
    metrics = _metrics(tmp_path)
    assert metrics["diverged"] is True and metrics["epochs"] < 50
    assert all(np.all(np.isfinite(a)) for name, a in _arrays(tmp_path).items() if name.startswith("params/"))


def test_metrics_json_is_strict_json_when_r2_is_undefined(tmp_path):
    rows = [[i, (i * 7) % 5, 2.5] for i in range(20)]  # a constant, non-whole target: regression with R² undefined
    data = _write_csv(tmp_path / "constant.csv", ["a", "b", "y"], rows)
    assert _train("--csv", data, "--target", "y", "--epochs", "3", "--quiet", "--out", tmp_path / "run") == 0
    metrics = _metrics(tmp_path / "run")  # strict: NaN or Infinity in the file fails here
    assert metrics["task"] == "regression" and metrics["test_r2"] is None
    assert np.isfinite(metrics["test_rmse"]) and np.isfinite(metrics["test_loss"])


def test_metrics_json_is_strict_json_after_divergence(tmp_path, capsys):
    assert _train("--lr", "1e30", "--epochs", "5", "--quiet", "--out", tmp_path) == 1
    assert "training diverged after epoch" in capsys.readouterr().err
    metrics = _metrics(tmp_path)  # strict: NaN or Infinity in the file fails here
    assert metrics["diverged"] is True and metrics["options"]["lr"] == 1e30
    assert metrics["train_loss"] is None and metrics["test_loss"] is None  # NaN on the kept parameters
    assert 0 <= metrics["test_accuracy"] <= 1


def test_json_safe_nulls_every_non_finite_float():
    value = {"a": [1.0, float("inf"), {"b": float("-inf")}], "c": (float("nan"), 2), "d": "nan", "e": None}
    assert cli._json_safe(value) == {"a": [1.0, None, {"b": None}], "c": [None, 2], "d": "nan", "e": None}


# --- bad input: one line, exit status 2, never a traceback ------------------------------------------


@pytest.fixture
def csv_files(tmp_path):
    good = _write_csv(tmp_path / "good.csv", ["a", "b", "label"], [[1, 2, "x"], [3, 4, "y"], [5, 6, "x"], [7, 8, "y"]])
    text = _write_csv(tmp_path / "text.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "abc", "y"]])
    empty = _write_csv(tmp_path / "empty.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "", "y"]])
    ragged = _write_csv(tmp_path / "ragged.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "y"]])
    numbers = _write_csv(tmp_path / "numbers.csv", ["a", "b", "y"], [[1, 2, 0.5], [3, 4, 1.5], [5, 6, 2.25]])
    files = {"good": good, "text": text, "empty": empty, "ragged": ragged, "numbers": numbers}
    rows = [[1, 2, "x", 0.5], [3, 4, "y", 1.5], [5, 6, "x", 2.25], [7, 8, "y", 3.5]]
    files["repeated"] = _write_csv(tmp_path / "repeated.csv", ["a", "a", "label", "y"], rows)
    numeric = [[a, b, y] for a, b, _, y in rows]  # names are stripped: the target "y" would also be an input
    files["twice"] = _write_csv(tmp_path / "twice.csv", ["y", "b", "y "], numeric)
    for name, cell in [("blank", ""), ("nan", "nan"), ("inf", "-inf"), ("huge", "1e400")]:
        bad = [[*row[:2], cell if i == 2 else row[3]] for i, row in enumerate(rows)]  # the 3rd data row: line 4
        files[f"target_{name}"] = _write_csv(tmp_path / f"target_{name}.csv", ["a", "b", "y"], bad)
    labels = [[*row[:2], "" if i == 1 else row[2]] for i, row in enumerate(rows)]  # a text target, line 3 blank
    files["label_blank"] = _write_csv(tmp_path / "label_blank.csv", ["a", "b", "label"], labels)
    return {**files, "missing": tmp_path / "nope.csv"}


BAD_INPUT = [
    (["--dataset", "foo"], "unknown dataset 'foo'; choose iris, wine, breast_cancer, digits"),
    (["--layers", "0"], "argument --layers: '0' is not a comma-separated list of positive layer widths"),
    (["--layers", "10,-5"], "'10,-5' is not a comma-separated list"),
    (["--lr", "-1"], "argument --lr: '-1' is not a positive number"),
    (["--test-size", "1.5"], "is not a fraction between 0 and 1"),
    (["--epochs", "0"], "argument --epochs: '0' is not a positive whole number"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'; choose gd, sgd, adam"),
    (["--platform", "quantum"], "unknown platform 'quantum'; choose cpu, gpu, tpu"),
    (["--num-processes", "2"], "--num-processes and --process-id describe several hosts: give --coordinator too"),
    (["--csv", "{good}", "--target", "nope"], "--target column 'nope' is not in"),
    (["--csv", "{text}", "--target", "label"], "text.csv line 3, column 'b' holds 'abc', which is not a finite number"),
    (["--csv", "{empty}", "--target", "label"], "empty.csv line 3, column 'b' is empty"),
    (["--csv", "{ragged}", "--target", "label"], "ragged.csv line 3 has 2 cells but the header has 3"),
    # --epochs 2: without the checks these would train, quickly
    (["--csv", "{repeated}", "--target", "label", "--epochs", "2"], "repeated.csv has repeated column names ('a')"),
    (["--csv", "{twice}", "--target", "y", "--epochs", "2"], "twice.csv has repeated column names ('y')"),
    (["--csv", "{target_blank}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds ''; fill in"),
    (["--csv", "{target_nan}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds 'nan'; fill in"),
    (["--csv", "{target_inf}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds '-inf'; fill"),
    (["--csv", "{target_huge}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds '1e400'"),
    (["--csv", "{label_blank}", "--target", "label", "--epochs", "2"], "line 3, target column 'label' holds ''"),
    (["--csv", "{missing}", "--target", "label"], "cannot read --csv"),
    (["--csv", "{good}"], "--csv and --target go together"),
    (["--csv", "{good}", "--target", "label", "--dataset", "iris"], "--dataset and --csv both name the data"),
    (
        ["--csv", "{numbers}", "--target", "y", "--loss", "softmax_cross_entropy"],
        "--loss softmax_cross_entropy needs class labels but the target is continuous",
    ),
    (["--csv", "{good}", "--target", "label", "--task", "regression"], "regression needs numbers there"),
    (["--dataset", "wine", "--task", "regression"], "the wine dataset is classification"),
    (["--csv", "{good}", "--target", "label", "--test-size", "0.9"], "cannot split the 4 rows of good.csv"),
    (["--resume", "{missing}"], "no checkpoint at"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_clear_line(csv_files, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        _train(*(arg.format(**{k: str(v) for k, v in csv_files.items()}) for arg in args))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxnn-train: error: "), captured.err
    assert message in lines[0]
    assert lines[0].endswith("(see jaxnn-train --help)")


def test_epochs_beyond_the_uint32_epoch_counter_are_one_clear_line_at_parse_time(capsys):
    # at parse time, not in BAD_INPUT: without the check a full run would start on 2**32 epochs
    parser = cli.build_parser()
    assert parser.parse_args(["--epochs", str(2**32 - 1)]).epochs == 2**32 - 1
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--epochs", str(2**32)])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"jaxnn-train: error: argument --epochs: '{2**32}' is not a whole number from 1 to 2**32 - 1 "
        "(a 32-bit epoch count) (see jaxnn-train --help)"
    ]


@pytest.mark.slow
def test_bad_input_from_the_shell_has_no_traceback(csv_files):
    for args, message in [
        (["--dataset", "foo"], "unknown dataset 'foo'"),
        (["--csv", str(csv_files["text"]), "--target", "label"], "'abc', which is not a finite number"),
    ]:
        done = _shell(*args, timeout=60)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_help_explains_each_option():
    parser = cli.build_parser()
    text = parser.format_help()
    options = [action for action in parser._actions if action.option_strings]
    assert all(action.help for action in options)
    for flag in ["--dataset", "--csv", "--target", "--layers", "--activation", "--loss", "--optimizer", "--lr"]:
        assert flag in text
    for flag in ["--epochs", "--batch-size", "--seed", "--test-size", "--platform", "--out", "--quiet", "--resume"]:
        assert flag in text
    assert "iris, wine, breast_cancer, digits" in text
