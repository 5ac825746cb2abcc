"""jaxnn-train population runs: comma-separated --lr and --seed lists train as one population (jaxnn.fit_many)."""

import csv
import importlib.util
import json
import shutil
import signal
import sys
import warnings

import numpy as np
import pytest
from cli_support import PNG, arrays, history_rows, metrics, regression_csv, tampered_copy, train, with_config, write_csv
from helpers import arrays_only_digest

from jaxnn import checkpoint
from jaxnn.cli import options, population_checkpoint, run_files
from jaxnn.cli import population as cli_population

GRID = ("--lr", "0.05,0.2", "--seed", "0,1", "--epochs", "30")  # iris, gd: 4 members
MEMBERS = [(0.05, 0), (0.05, 1), (0.2, 0), (0.2, 1)]  # product(lrs, seeds): the learning rate varies slowest
CLASSIFICATION_COLUMNS = [
    "member",
    "lr",
    "l2",
    "seed",
    "epochs",
    "diverged",
    "train_loss",
    "test_loss",
    "train_accuracy",
    "test_accuracy",
    "best",
]
# Member i against its lone run: float32 rounding (batched products may sum in another order), not more.
RTOL, ATOL = 1e-5, 1e-6


def population_rows(directory):
    with (directory / "population.csv").open() as file:
        return list(csv.DictReader(file))


def expected_best(rows) -> int:
    """The documented rule, from the csv alone: highest test score, then lowest test loss, then lowest index."""
    score = "test_accuracy" if "test_accuracy" in rows[0] else "test_r2"
    eligible = [row for row in rows if row["diverged"] == "false"]
    best = min(eligible, key=lambda row: (-float(row[score]), float(row["test_loss"]), int(row["member"])))
    return int(best["member"])


def assert_same_network(population_dir, lone_dir):
    """The population's checkpoint holds what the lone run's holds, within float32 rounding."""
    ours, lone = arrays(population_dir), arrays(lone_dir)
    assert sorted(ours) == sorted(lone)
    for name in lone:
        np.testing.assert_allclose(ours[name], lone[name], rtol=RTOL, atol=ATOL, err_msg=name)
    ours_config = checkpoint.read_config(population_dir / "checkpoint.npz")
    lone_config = checkpoint.read_config(lone_dir / "checkpoint.npz")
    timing = ("seconds", "total_seconds")
    assert {k: v for k, v in ours_config.items() if k not in timing} == {
        k: v for k, v in lone_config.items() if k not in timing
    }


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "run"
    assert train(*GRID, "--quiet", "--out", out) == 0
    return out


def test_population_csv_lists_every_member_and_marks_the_best(grid_run):
    rows = population_rows(grid_run)
    assert list(rows[0]) == CLASSIFICATION_COLUMNS
    assert [(float(row["lr"]), int(row["seed"])) for row in rows] == MEMBERS
    assert all(row["l2"] == "0.0" for row in rows)  # no --l2: no penalty
    assert [int(row["member"]) for row in rows] == [0, 1, 2, 3]
    assert all(row["epochs"] == "30" and row["diverged"] == "false" for row in rows)
    assert all(0 <= float(row["test_accuracy"]) <= 1 and np.isfinite(float(row["train_loss"])) for row in rows)
    best = expected_best(rows)
    assert [row["best"] for row in rows] == ["true" if i == best else "false" for i in range(4)]

    result = metrics(grid_run)  # the best member's, as a single run's metrics.json
    assert result["population"] == {
        "members": 4,
        "best": best,
        "chosen_by": "test_accuracy",
        "lr": [0.05, 0.2],
        "seed": [0, 1],
        "file": "population.csv",
    }
    assert (result["options"]["lr"], result["options"]["seed"]) == MEMBERS[best]
    assert result["test_accuracy"] == float(rows[best]["test_accuracy"])
    assert result["train_loss"] == float(rows[best]["train_loss"])
    assert [int(row[0]) for row in history_rows(grid_run)[1:]] == list(range(1, 31))
    expected = {"checkpoint.npz", "population.npz", "metrics.json", "history.csv", "population.csv"}
    if importlib.util.find_spec("matplotlib") is not None:
        expected |= {"loss.png", "confusion.png"}
        assert (grid_run / "loss.png").read_bytes().startswith(PNG)
    assert {path.name for path in grid_run.iterdir()} == expected


def test_each_member_equals_its_lone_run(grid_run, tmp_path):
    rows = population_rows(grid_run)
    best = expected_best(rows)
    other = (best + 1) % len(rows)
    for index in (best, other):
        lr, seed = MEMBERS[index]
        lone = tmp_path / f"lone-{index}"
        assert train("--lr", lr, "--seed", seed, "--epochs", "30", "--quiet", "--out", lone) == 0
        alone = metrics(lone)
        assert float(rows[index]["train_loss"]) == pytest.approx(alone["train_loss"], rel=RTOL)
        assert float(rows[index]["test_loss"]) == pytest.approx(alone["test_loss"], rel=RTOL)
        assert float(rows[index]["test_accuracy"]) == alone["test_accuracy"]
    assert_same_network(grid_run, tmp_path / f"lone-{best}")  # the checkpoint is the best member's single run's
    lone_history = history_rows(tmp_path / f"lone-{best}")
    assert [row[0] for row in history_rows(grid_run)] == [row[0] for row in lone_history]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_minibatch_population_checkpoint_resumes_as_its_lone_run(tmp_path, optimizer):
    # minibatches (per-member shuffle keys) and an optimiser state (Adam's moments, sgd's momentum) that
    # the checkpoint must hold in the single run's form
    common = ("--optimizer", optimizer, "--batch-size", "16", "--epochs", "4", "--quiet")
    assert train(*common, "--lr", "0.01,0.03", "--seed", "3,4", "--out", tmp_path / "grid") == 0
    best = expected_best(population_rows(tmp_path / "grid"))
    lr, seed = [(0.01, 3), (0.01, 4), (0.03, 3), (0.03, 4)][best]
    assert train(*common, "--lr", lr, "--seed", seed, "--out", tmp_path / "lone") == 0
    assert any(name.startswith("opt_state/") for name in arrays(tmp_path / "lone"))
    assert_same_network(tmp_path / "grid", tmp_path / "lone")
    best_alone = ("--resume", tmp_path / "grid" / "checkpoint.npz", "--out", tmp_path / "best")
    assert train(*best_alone, "--epochs", "6", "--quiet") == 0
    assert train("--resume", tmp_path / "lone", "--epochs", "6", "--quiet") == 0
    assert_same_network(tmp_path / "best", tmp_path / "lone")


def test_a_diverged_member_is_never_best_and_all_diverged_fails(tmp_path, capsys):
    data = regression_csv(tmp_path / "prices.csv")
    common = ("--csv", data, "--target", "price", "--epochs", "20", "--quiet")
    assert train(*common, "--lr", "0.1,1e4", "--out", tmp_path / "mixed") == 0
    rows = population_rows(tmp_path / "mixed")
    assert list(rows[0])[8:] == ["test_rmse", "test_r2", "best"]
    assert [(row["diverged"], row["best"]) for row in rows] == [("false", "true"), ("true", "false")]
    assert int(rows[1]["epochs"]) < 20 and int(rows[0]["epochs"]) == 20
    assert metrics(tmp_path / "mixed")["population"]["chosen_by"] == "test_r2"
    assert "1 diverged; best by test R^2: member 0: lr 0.1, seed 42" in capsys.readouterr().out

    assert train(*common, "--lr", "1e4,1e5", "--out", tmp_path / "all") == 1
    assert "no member of the population finished with finite test metrics" in capsys.readouterr().err
    assert {path.name for path in (tmp_path / "all").iterdir()} == {"population.csv", "population.npz", "metrics.json"}
    assert metrics(tmp_path / "all")["population"] | {"lr": None} == {
        "members": 2, "best": None, "chosen_by": "test_r2", "lr": None, "file": "population.csv", "diverged": 2,
        "checkpoint": None,
    }  # fmt: skip
    assert all(row["diverged"] == "true" and row["best"] == "false" for row in population_rows(tmp_path / "all"))


def test_a_diverged_member_records_its_last_held_out_point_once(tmp_path, capsys):
    """A member whose divergence comes at a chunk's first step ran no epoch in it: its last held-out point is
    not recorded again (population.npz had [1, ..., 7, 7] for the member's 7 epochs)."""
    data = regression_csv(tmp_path / "prices.csv")
    out = tmp_path / "run"
    assert train("--csv", data, "--target", "price", "--lr", "1e3,0.1", "--epochs", "20", "--quiet", "--out", out) == 0
    capsys.readouterr()
    saved = arrays(out, "population.npz")
    for row, count, epochs in zip(
        saved["extras/held_out_epochs"], saved["extras/held_out_counts"], saved["extras/member_epochs"], strict=True
    ):
        np.testing.assert_array_equal(row[:count], np.arange(1, epochs + 1))  # chunks of 1 epoch, each once
    assert saved["extras/member_epochs"][0] < 20 and not saved["extras/alive"][0]


def test_progress_never_shows_a_diverged_member_while_another_is_healthy(tmp_path, capsys):
    """lr 3e38 on the sum of squares oversteps float32 at the first step: member 0 diverges at its initial
    weights, whose held-out loss is lower than member 1's growing one; the progress lines show member 1."""
    data = regression_csv(tmp_path / "prices.csv")
    common = ("--csv", data, "--target", "price", "--loss", "sum_of_squares", "--epochs", "6")
    assert train(*common, "--lr", "3e38,0.05", "--out", tmp_path / "run") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    rows = population_rows(tmp_path / "run")
    assert rows[0]["diverged"] == "true" and rows[1]["diverged"] == "false"
    assert len(lines) == 6 and not any("nan" in line for line in lines)
    assert lines[-1].endswith(f"test loss {float(rows[1]['test_loss']):.4g}")


def test_progress_leader_prefers_a_healthy_member():
    leader = cli_population.progress_leader
    assert leader([1.0, 5.0, 3.0], np.array([False, True, True])) == 2
    assert leader([1.0, 5.0, float("nan")], np.array([False, False, True])) == 0  # no healthy finite loss: all
    assert leader([2.0, 1.0], np.array([False, False])) == 1  # none alive: the lowest of all
    assert leader([float("inf"), float("nan")], np.array([True, True])) == 0


def test_a_population_records_the_same_held_out_points_whatever_its_pace(tmp_path):
    """As a single run's: held-out points every ``progress_step`` epochs and at the end, not wherever a chunk
    ended; a member that diverges between two such points gets its last finite state's point at its epoch."""
    paced, hurried = tmp_path / "paced", tmp_path / "hurried"
    common = ("--lr", "0.1,1e5", "--epochs", "200", "--quiet")  # the step is 4 epochs; 1e5 diverges early
    assert train(*common, "--out", paced) == 0
    assert train(*common, "--checkpoint-seconds", 0, "--out", hurried) == 0
    expected, got = arrays(paced, "population.npz"), arrays(hurried, "population.npz")
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    rows = population_rows(paced)
    assert [row["diverged"] for row in rows] == ["false", "true"], rows
    died_at = int(rows[1]["epochs"])
    held_out_epochs = expected["extras/held_out_epochs"]
    assert list(held_out_epochs[0]) == [*range(4, 201, 4)]
    assert 0 < died_at % 4 and held_out_epochs[1, expected["extras/held_out_counts"][1] - 1] == died_at


def test_all_diverged_after_a_checkpoint_names_the_checkpoint_it_keeps(tmp_path, capsys):
    """Every member diverges after the best one was checkpointed: that healthy checkpoint.npz stays, and the
    closing line says so rather than that there is no checkpoint."""
    out = tmp_path / "late"
    common = ("--lr", "1e5,3e5", "--epochs", "50", "--checkpoint-seconds", "0.001", "--quiet", "--out", out)
    assert train(*common) == 1
    rows = population_rows(out)
    assert all(row["diverged"] == "true" and 1 < int(row["epochs"]) < 50 for row in rows)
    kept = checkpoint.read_config(out / "checkpoint.npz")
    assert not kept["diverged"] and kept["epoch"] <= min(int(row["epochs"]) for row in rows)
    assert all(np.isfinite(values).all() for values in arrays(out).values())
    err = capsys.readouterr().err
    assert "no member of the population finished with finite test metrics" in err
    assert f"{out / 'checkpoint.npz'} keeps" in err and "no checkpoint" not in err


def test_a_resumed_population_that_all_diverges_leaves_no_stale_results(tmp_path, capsys):
    """A finished population resumed to more epochs, where every member then diverges: metrics.json says so
    (as a single run's does) instead of keeping the earlier run's best member, whose history.csv and plots go;
    the best member's healthy checkpoint.npz stays."""
    data = regression_csv(tmp_path / "prices.csv")
    out = tmp_path / "run"
    assert train("--csv", data, "--target", "price", "--lr", "4,6", "--epochs", "10", "--quiet", "--out", out) == 0
    healthy = (out / "checkpoint.npz").read_bytes()
    assert {"history.csv", "loss.png", "metrics.json"} <= {path.name for path in out.iterdir()}
    capsys.readouterr()
    assert train("--resume", out, "--epochs", "200", "--quiet") == 1
    assert f"{out / 'checkpoint.npz'} keeps the best member" in capsys.readouterr().err
    rows = population_rows(out)
    assert all(row["diverged"] == "true" for row in rows)
    result = metrics(out)
    assert result["diverged"] is True and result["options"]["lr"] == [4.0, 6.0]
    assert result["population"]["best"] is None and result["population"]["checkpoint"] == "checkpoint.npz"
    assert "test_r2" not in result and "epochs" not in result
    assert {path.name for path in out.iterdir()} == {
        "population.csv",
        "population.npz",
        "metrics.json",
        "checkpoint.npz",
    }
    assert (out / "checkpoint.npz").read_bytes() == healthy


def test_without_matplotlib_a_population_skips_its_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert train(*GRID, "--out", tmp_path) == 0  # the grid's program: compiled already
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "jaxnn-train: plots skipped: matplotlib is not installed (pip install 'jaxnn[plots]')"
    ]
    progress = [line for line in captured.out.splitlines() if line.startswith("epoch")]
    assert len(progress) == 10 and progress[-1].startswith("epoch 30/30  loss ") and "test loss" in progress[-1]
    files = {path.name for path in tmp_path.iterdir()}
    assert files == {"checkpoint.npz", "population.npz", "history.csv", "metrics.json", "population.csv"}


def ctrl_c_after_chunks(monkeypatch, chunks: int) -> None:
    """Ctrl-C once the population's ``chunks``-th chunk has trained (jaxnn-train's handler only sets its flag)."""
    real_fit_many, calls = cli_population.fit_many, []

    def fit_many_then_ctrl_c(*args, **kwargs):
        result = real_fit_many(*args, **kwargs)
        calls.append(kwargs["epochs"])
        if len(calls) == chunks:
            signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(cli_population, "fit_many", fit_many_then_ctrl_c)


def test_ctrl_c_stops_a_population_with_every_member_checkpointed(tmp_path, capsys, monkeypatch):
    ctrl_c_after_chunks(monkeypatch, 1)
    assert train(*GRID, "--quiet", "--out", tmp_path) == 130
    err = capsys.readouterr().err
    config = checkpoint.read_config(tmp_path / "checkpoint.npz")  # the best member's, as its single run's
    assert config["epoch"] == 1 and config["lr"] in (0.05, 0.2) and config["seed"] in (0, 1)
    assert err.strip().splitlines()[-1] == (
        f"jaxnn-train: interrupted at epoch 1; every member checkpointed in {tmp_path}; continue with --resume "
        f"{tmp_path} (the best member so far, --lr {config['lr']:g} --seed {config['seed']}, alone: --resume "
        f"{tmp_path / 'checkpoint.npz'} --out NEWDIR)"
    )
    stored = checkpoint.read_config(tmp_path / "population.npz")
    assert stored["epoch"] == 1 and stored["lr"] == [0.05, 0.2] and stored["seed"] == [0, 1]
    # no lock left; the other files come at the end
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.npz", "population.npz"]


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_a_stopped_population_resumes_whole_and_ends_as_the_uninterrupted_one(tmp_path, monkeypatch, optimizer):
    # adam: a per-member shuffle key, an optimiser state with each member's rate; gd: full batch
    run = ("--optimizer", optimizer, "--lr", "0.01,0.05", "--seed", "3,4", "--epochs", "40", "--quiet")
    if optimizer == "adam":
        run += ("--batch-size", "32")
    assert train(*run, "--out", tmp_path / "whole") == 0
    with monkeypatch.context() as patch:
        ctrl_c_after_chunks(patch, 3)
        assert train(*run, "--out", tmp_path / "stopped") == 130
    assert checkpoint.read_config(tmp_path / "stopped" / "population.npz")["epoch"] < 40
    assert train("--resume", tmp_path / "stopped", "--quiet") == 0  # --epochs: the stored 40
    for name in ("population.npz", "checkpoint.npz"):
        whole, resumed = arrays(tmp_path / "whole", name), arrays(tmp_path / "stopped", name)
        assert sorted(whole) == sorted(resumed)
        for entry in whole:
            np.testing.assert_array_equal(resumed[entry], whole[entry], err_msg=f"{name}: {entry}")
    assert (tmp_path / "stopped" / "population.csv").read_text() == (tmp_path / "whole" / "population.csv").read_text()
    assert history_rows(tmp_path / "stopped") == history_rows(tmp_path / "whole")


def test_a_finished_population_resumes_to_more_epochs(grid_run, tmp_path, capsys):
    resumed = tmp_path / "resumed"
    shutil.copytree(grid_run, resumed)
    assert train("--resume", resumed, "--epochs", "32") == 0
    assert f"resuming {resumed / 'population.npz'} at epoch 30 of 32" in capsys.readouterr().out
    assert checkpoint.read_config(resumed / "population.npz")["epoch"] == 32
    rows = population_rows(resumed)
    assert [row["epochs"] for row in rows] == ["32"] * 4
    assert [int(row[0]) for row in history_rows(resumed)[1:]] == list(range(1, 33))


def test_single_values_are_a_single_run(tmp_path):
    parsed = options.given_options(options.build_parser().parse_args(["--lr", "0.1", "--seed", "42"]))
    assert parsed == {"lr": 0.1, "seed": 42}
    assert options.listed_options(parsed) == [] and options.population_members(parsed) == [parsed]
    assert train("--lr", "0.1", "--seed", "42", "--epochs", "3", "--quiet", "--out", tmp_path / "given") == 0
    assert train("--epochs", "3", "--quiet", "--out", tmp_path / "defaults") == 0
    given, defaults = arrays(tmp_path / "given"), arrays(tmp_path / "defaults")
    assert sorted(given) == sorted(defaults)
    for name in given:
        np.testing.assert_array_equal(given[name], defaults[name], err_msg=name)
    assert not (tmp_path / "given" / "population.csv").exists() and "population" not in metrics(tmp_path / "given")


def test_a_population_checkpoint_with_a_bad_time_is_one_line(grid_run, tmp_path, capsys):
    run = with_config(grid_run, tmp_path / "run", file="population.npz", seconds="abc")  # was a ValueError
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", "32", "--quiet")
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert f"{run / 'population.npz'} is corrupt: its seconds ('abc') is not a number of seconds" in lines[0]


def test_the_best_member_continues_alone_from_its_checkpoint_in_its_own_out(grid_run, tmp_path, capsys):
    best = grid_run / "checkpoint.npz"
    before = {path.name: path.read_bytes() for path in grid_run.iterdir()}
    for out in [[], ["--out", grid_run], ["--out", grid_run / "." / "x" / ".."]]:  # the population's own --out too
        with pytest.raises(SystemExit) as exit_info:
            train("--resume", best, "--epochs", "32", *out)
        assert exit_info.value.code == 2
        assert f"{grid_run} holds a population run; continuing its best member alone from {best}" in (
            capsys.readouterr().err
        )
    assert {path.name: path.read_bytes() for path in grid_run.iterdir()} == before
    assert train("--resume", best, "--epochs", "32", "--quiet", "--out", tmp_path / "best") == 0
    config = checkpoint.read_config(tmp_path / "best" / "checkpoint.npz")
    assert config["epoch"] == 32 and "population" not in metrics(tmp_path / "best")
    assert not (tmp_path / "best" / "population.npz").exists()


def test_a_population_without_its_checkpoint_is_not_continued_as_its_best_member(grid_run, tmp_path, capsys):
    """With population.npz gone, ``--resume DIR`` continued the best member alone in DIR: single-run files beside
    the population's stale population.csv."""
    run = tmp_path / "run"
    shutil.copytree(grid_run, run)
    (run / "population.npz").unlink()
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", "32")
    assert exit_info.value.code == 2
    assert (
        f"{run} holds a population run (population.csv) but not its population.npz, so the population cannot be "
        f"continued; continue its best member alone with --resume {run / 'checkpoint.npz'} --out NEWDIR"
    ) in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_overwrite_removes_every_file_of_the_population_once_the_new_run_starts(grid_run, tmp_path, capsys):
    """Commands refused for their data leave the population as it was; a run that starts removes every file
    jaxnn-train wrote (population.csv included), and nothing else."""
    assert {path.name for path in grid_run.iterdir()} <= set(run_files.RUN_FILES)  # the list names them all
    out = tmp_path / "run"
    shutil.copytree(grid_run, out)
    (out / "notes.txt").write_text("the user's own")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    typo = write_csv(tmp_path / "typo.csv", ["a", "b", "y"], [[1, "x", 0], [2, 3, 1]])
    for lrs in ("0.1", "0.1,0.2"):  # a single run and a population
        with pytest.raises(SystemExit) as exit_info:
            train("--lr", lrs, "--csv", typo, "--target", "y", "--quiet", "--out", out, "--overwrite")
        assert exit_info.value.code == 2 and "holds 'x', which is not a finite number" in capsys.readouterr().err
        assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert train("--epochs", "2", "--quiet", "--out", out, "--overwrite") == 0
    names = {path.name for path in out.iterdir()}
    assert "notes.txt" in names and not names & {"population.csv", "population.npz"}
    assert names - {"notes.txt"} <= set(run_files.RUN_FILES) and "population" not in metrics(out)
    assert checkpoint.read_config(out / "checkpoint.npz")["epoch"] == 2


RESUME_REFUSALS = [
    (("--lr", "0.05"), "--lr 0.05 differs from 0.05,0.2 in"),
    (("--seed", "0,2"), "--seed 0,2 differs from 0,1 in"),
    (("--epochs", "20"), "--epochs 20 is fewer than the 30 epochs the checkpoint has already done"),
]


@pytest.mark.parametrize(("args", "message"), RESUME_REFUSALS, ids=[" ".join(a) for a, _ in RESUME_REFUSALS])
def test_a_resumed_population_keeps_its_lists_and_epochs(grid_run, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", grid_run, *args, "--quiet")
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_population_checkpoint_of_other_data_or_damaged_is_refused(grid_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(grid_run, copy)
    with np.load(copy / "population.npz", allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    meta = json.loads(entries["meta"].tobytes())
    meta["config"]["data_sha256"][1] = "0" * 64
    meta["sha256"] = arrays_only_digest({name: array for name, array in entries.items() if name != "meta"})
    entries["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(copy / "population.npz", **entries)
    with pytest.raises(SystemExit):
        train("--resume", copy, "--epochs", "32", "--quiet")
    assert "the data differs from the data" in capsys.readouterr().err

    (copy / "population.npz").write_bytes((grid_run / "population.npz").read_bytes()[:-100])
    with pytest.raises(SystemExit):
        train("--resume", copy, "--epochs", "32", "--quiet")
    assert "population.npz" in capsys.readouterr().err


def _member_entry(name, member, value):
    def change(config, entries):
        entries[name] = entries[name].copy()
        entries[name][member] = value(entries[name][member])

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_member_entry("extras/held_out_epochs", 1, lambda row: row + 10**6), "member 1's held-out loss curve is"),
        (_member_entry("extras/held_out_epochs", 0, lambda row: row[::-1]), "member 0's held-out loss curve is"),
        (_member_entry("extras/histories", 1, lambda row: row * np.nan), "its members' training losses hold NaN"),
    ],
    ids=["held-out epochs past the member's", "held-out epochs falling", "NaN losses"],
)
def test_a_population_checkpoint_with_tampered_curves_is_one_line(grid_run, tmp_path, capsys, change, message):
    run = tampered_copy(grid_run, tmp_path / "run", change, file="population.npz")
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", "32", "--quiet")
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert f"{run / 'population.npz'} is corrupt: {message}" in lines[0], lines


BAD_LISTS = [
    (["--lr", "0.1,,x"], "argument --lr: '0.1,,x' has an empty item; list values separated by single commas"),
    (["--lr", "0.1,"], "argument --lr: '0.1,' has an empty item"),
    (["--lr", "0.1,-1"], "argument --lr: '-1' in '0.1,-1' is not a positive number"),
    (["--lr", "0.1,nan"], "argument --lr: 'nan' in '0.1,nan' is not a positive number"),
    (["--seed", "0,x"], "argument --seed: 'x' in '0,x' is not a whole number from 0 to 2**32 - 1"),
    (["--seed", "1,2,1"], "argument --seed: '1,2,1' lists 1 more than once"),
    (["--lr", "0.1,0.10"], "argument --lr: '0.1,0.10' lists 0.1 more than once"),
    (
        ["--lr", "0.1,0.1000000001"],
        "argument --lr: '0.1,0.1000000001' lists 0.1 (0.1 and 0.1000000001 are one number in float32) more than once",
    ),
    (
        ["--seed", "1,2", "--coordinator", "h:1"],
        "--coordinator: a population run (several --lr, --l2 or --seed values) runs",
    ),
    (
        ["--seed", "1,2", "--checkpoint-every", "5"],
        "--checkpoint-every: a population run (several --lr, --l2 or --seed",
    ),
    (["--resume", "{dir}", "--lr", "0.1,0.2"], "--lr 0.1,0.2 lists several values, which trains a population"),
]


@pytest.mark.parametrize(("args", "message"), BAD_LISTS, ids=[" ".join(a) for a, _ in BAD_LISTS])
def test_bad_lists_are_one_clear_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train(*(arg.format(dir=tmp_path) for arg in args))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxnn-train: error: ") and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_population_accuracies_are_exact_ratios_of_counts(grid_run):
    n_test, n_train = metrics(grid_run)["n_test"], metrics(grid_run)["n_train"]
    for row in population_rows(grid_run):
        for column, rows in (("test_accuracy", n_test), ("train_accuracy", n_train)):
            value = float(row[column])
            assert value == round(value * rows) / rows, (column, row[column])  # not float32's 0.9736841917037964


def test_the_population_mean_loss_of_members_about_to_diverge_is_infinite_without_numpys_warning():
    """Two members' float32 losses near float32's largest number summed past it: NumPy's 'overflow encountered in
    reduce' was printed among the progress lines of a population whose members diverged."""
    histories = np.array([[1.0, 3e38, 0.0], [3.0, 3e38, 0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean = population_checkpoint.mean_history(histories, np.array([2, 1]))
        huge = population_checkpoint.mean_history(histories, np.array([2, 2]))
    assert mean[0] == 2.0 and mean[1] == np.float32(3e38) and np.isnan(mean[2])
    assert np.isinf(huge[1])
