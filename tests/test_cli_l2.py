"""jaxnn-train --l2: jaxnn.fit's l2 for gd, sgd and adam, the same objective for lbfgs (alpha = l2·Σw), one value
for a population; a run option the checkpoint keeps (absent from older ones: 0)."""

import numpy as np
import pytest
from cli_support import (
    DELETE,
    arrays,
    assert_same_params,
    fit_as_the_run,
    history_rows,
    metrics,
    saved_params,
    train,
    with_config,
)

from jaxnn import checkpoint, lbfgs
from jaxnn.cli import lbfgs_training, training
from jaxnn.cli import options as cli_options
from jaxnn.cli.data import load_problem
from jaxnn.train import training_keys

L2 = 0.05  # large enough on iris to move the weights well away from an unpenalised run's
EPOCHS = 20


def _run_parts(**given):
    """The options, problem, head, model, targets and starting weights a run given ``given`` trains."""
    options = cli_options.with_defaults(given)
    problem = load_problem(options)
    options = training.settled_options(options, problem)
    head = training.make_head(options, problem)
    model = training.build_model(options, head)
    targets = training.make_targets(problem, head, options["class_weight"])
    params = model.init(training_keys(options["seed"])[0], problem.x_train.shape[1])
    return options, problem, head, model, targets, params


def _weight_norm(params) -> float:
    return float(sum(np.sum(np.square(layer["W"])) for layer in params))


def _core_fit(given: dict, epochs: int, l2: float):
    """jaxnn.fit with ``l2`` on the split, starting weights and shuffle key of the run given ``given``."""
    options, problem, head, model, targets, params = _run_parts(**given)
    solver = {"optimizer": options["optimizer"], "learning_rate": options["lr"], "l2": l2}
    return fit_as_the_run(
        options, problem, head, targets, model, params, epochs, batch_size=options["batch_size"], **solver
    )


RUNS = [
    pytest.param([], {}, id="gd"),
    pytest.param(["--optimizer", "adam", "--batch-size", "16"], {"optimizer": "adam", "batch_size": 16}, id="adam"),
]


@pytest.mark.parametrize(("flags", "given"), RUNS)
def test_a_run_with_l2_is_jaxnn_fit_with_l2(tmp_path, flags, given):
    assert train(*flags, "--l2", L2, "--epochs", EPOCHS, "--checkpoint-every", 7, "--quiet", "--out", tmp_path) == 0
    expected = _core_fit(given, EPOCHS, L2)
    saved = arrays(tmp_path)
    assert_same_params(saved_params(saved), expected.params)
    # the history is fit's: the training loss with the penalty ½·l2·Σ‖W‖²
    np.testing.assert_array_equal(saved["history"], np.asarray(expected.history, np.float32))
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["l2"] == L2
    assert metrics(tmp_path)["options"]["l2"] == L2
    # the control: the penalty changes the result, and shrinks the weights
    unpenalised = _core_fit(given, EPOCHS, 0.0)
    assert _weight_norm(saved_params(saved)) < 0.9 * _weight_norm(unpenalised.params)


def test_l2_0_is_the_run_without_the_option(tmp_path):
    assert train("--l2", 0, "--epochs", 5, "--quiet", "--out", tmp_path / "zero") == 0
    assert train("--epochs", 5, "--quiet", "--out", tmp_path / "none") == 0
    zero, none = arrays(tmp_path / "zero"), arrays(tmp_path / "none")
    assert zero.keys() == none.keys()  # the optimiser state of a run without --l2, as before the option
    for name in zero:
        np.testing.assert_array_equal(zero[name], none[name], err_msg=name)
    assert checkpoint.read_config(tmp_path / "none" / "checkpoint.npz")["l2"] == 0.0


def test_the_summary_shows_the_penalty(tmp_path, capsys):
    assert train("--l2", "1e-3", "--epochs", 2, "--quiet") == 0
    assert "gd lr 0.1 l2 0.001, full batch" in capsys.readouterr().out


def test_resume_with_l2_continues_exactly_and_refuses_another_l2(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    adam = ("--optimizer", "adam", "--l2", L2)
    assert train(*adam, "--epochs", 12, "--quiet", "--out", whole) == 0
    assert train(*adam, "--epochs", 5, "--quiet", "--out", split) == 0
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", split, "--l2", 0.01, "--epochs", 12)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--l2 0.01 differs from 0.05 in" in err, err
    assert train("--resume", split, "--l2", L2, "--epochs", 12, "--quiet") == 0
    expected, resumed = arrays(whole), arrays(split)
    for name in expected:
        if name.startswith(("params/", "opt_state/", "history")):
            np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


def test_a_checkpoint_from_before_l2_resumes_without_a_penalty(tmp_path, capsys):
    assert train("--epochs", 4, "--quiet", "--out", tmp_path / "new") == 0
    old = with_config(tmp_path / "new", tmp_path / "old", l2=DELETE)
    assert "l2" not in checkpoint.read_config(old / "checkpoint.npz")
    assert cli_options.stored_options(checkpoint.read_config(old / "checkpoint.npz"), old)["l2"] == 0.0
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", old, "--l2", L2, "--epochs", 6)
    assert exit_info.value.code == 2 and "--l2 0.05 differs from 0.0 in" in capsys.readouterr().err
    assert train("--resume", old, "--epochs", 6, "--quiet") == 0
    assert checkpoint.read_config(old / "checkpoint.npz")["l2"] == 0.0
    assert train("--epochs", 6, "--quiet", "--out", tmp_path / "whole") == 0
    np.testing.assert_array_equal(arrays(old)["params/0/W"], arrays(tmp_path / "whole")["params/0/W"])


WHAT = "is not 0 (no penalty) or a positive number from 1.1754944e-38 to 3.4028234e+38 (float32's range)"
BAD_L2 = [
    ("-1", f"argument --l2: '-1' {WHAT}"),
    ("nan", f"argument --l2: 'nan' {WHAT}"),
    ("inf", f"argument --l2: 'inf' {WHAT}"),
    ("1e39", f"argument --l2: '1e39' {WHAT}"),  # infinite in float32
    ("1e-50", f"argument --l2: '1e-50' {WHAT}"),  # 0 in float32: a run without a penalty under another name
    ("lots", f"argument --l2: 'lots' {WHAT}"),
    ("0.1,-1", f"argument --l2: '-1' in '0.1,-1' {WHAT}"),
]


def test_minus_zero_is_no_penalty(tmp_path):
    assert train("--l2", "-0", "--epochs", 2, "--quiet", "--out", tmp_path) == 0
    assert str(checkpoint.read_config(tmp_path / "checkpoint.npz")["l2"]) == "0.0"


@pytest.mark.parametrize(("value", "message"), BAD_L2, ids=[value for value, _ in BAD_L2])
def test_bad_l2_is_one_clear_line(tmp_path, capsys, value, message):
    with pytest.raises(SystemExit) as exit_info:
        train("--l2", value, "--epochs", 2, "--out", tmp_path / "run")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_lbfgs_alpha_gives_fits_objective(class_weight):
    """alpha = l2·Σw makes jaxnn.lbfgs's penalty alpha/(2Σw)·Σ‖W‖² the ½·l2·Σ‖W‖² that jaxnn.fit adds."""
    given = {"dataset": "wine", "optimizer": "lbfgs", "class_weight": class_weight}
    _, problem, head, model, targets, params = _run_parts(**given)
    weight = np.ones(len(problem.x_train)) if targets.weight is None else targets.weight
    x, y = np.asarray(problem.x_train, np.float32), np.asarray(targets.train, np.float32)
    spec = lbfgs.LbfgsSpec(model, head.loss)
    weight32 = np.asarray(weight, np.float32)
    penalised, _ = lbfgs.loss_and_gradient(spec, params, x, y, weight32, alpha=lbfgs_training.alpha(L2, weight32))
    plain, _ = lbfgs.loss_and_gradient(spec, params, x, y, weight32)
    penalty = 0.5 * L2 * _weight_norm(params)
    assert float(penalised) == pytest.approx(float(plain) + penalty, rel=1e-6)
    assert lbfgs_training.alpha(L2, weight32) == pytest.approx(L2 * np.sum(weight), rel=1e-6)


@pytest.mark.parametrize("class_weight", [[], ["--class-weight", "balanced"]], ids=["unweighted", "balanced"])
def test_lbfgs_with_l2_is_jaxnn_lbfgs_with_alpha_l2_times_the_rows_weight(tmp_path, class_weight):
    iterations = 8
    assert train("--dataset", "wine", "--optimizer", "lbfgs", "--l2", L2, *class_weight, "--epochs", iterations,
                 "--quiet", "--out", tmp_path) == 0  # fmt: skip
    given = {"dataset": "wine", "optimizer": "lbfgs", "class_weight": "balanced" if class_weight else None}
    _, problem, head, model, targets, params = _run_parts(**given)
    weight = np.ones(len(problem.x_train), np.float32) if targets.weight is None else targets.weight
    alpha = L2 * float(np.sum(np.asarray(weight, np.float32), dtype=np.float64))
    if not class_weight:
        assert alpha == L2 * len(problem.x_train)  # Σw is the training rows' count
    expected = lbfgs.minimize(
        model, params, problem.x_train, targets.train, loss=head.loss, weight=weight, alpha=alpha, max_iter=iterations
    )
    saved = arrays(tmp_path)
    assert_same_params(saved_params(saved), expected.params)
    np.testing.assert_array_equal(saved["history"], expected.loss_curve)
    unpenalised = lbfgs.minimize(
        model, params, problem.x_train, targets.train, loss=head.loss, weight=weight, max_iter=iterations
    )
    assert _weight_norm(saved_params(saved)) < 0.9 * _weight_norm(unpenalised.params)
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["l2"] == L2


def test_a_population_trains_every_member_with_the_one_l2(tmp_path):
    lone, population = tmp_path / "lone", tmp_path / "population"
    assert train("--l2", L2, "--epochs", EPOCHS, "--quiet", "--out", lone) == 0
    assert train("--l2", L2, "--lr", "0.1,0.3", "--epochs", EPOCHS, "--quiet", "--out", population) == 0
    rows = (population / "population.csv").read_text().splitlines()
    member = dict(zip(rows[0].split(","), rows[1].split(","), strict=True))
    assert float(member["lr"]) == 0.1
    assert float(member["train_loss"]) == pytest.approx(metrics(lone)["train_loss"], rel=1e-5)
    assert float(member["test_loss"]) == pytest.approx(metrics(lone)["test_loss"], rel=1e-5)
    assert metrics(population)["options"]["l2"] == L2
    # the best member's checkpoint continues alone, with its penalty
    best = population / "checkpoint.npz"
    assert checkpoint.read_config(best)["l2"] == L2
    assert train("--resume", best, "--out", tmp_path / "alone", "--epochs", EPOCHS + 5, "--quiet") == 0
    assert [row[0] for row in history_rows(tmp_path / "alone")][-1] == str(EPOCHS + 5)


def test_a_list_of_l2_trains_one_member_per_penalty_each_as_its_lone_run(tmp_path, capsys):
    population = tmp_path / "population"
    assert train("--l2", f"0,{L2}", "--lr", 0.3, "--epochs", EPOCHS, "--quiet", "--out", population) == 0
    rows = (population / "population.csv").read_text().splitlines()
    members = [dict(zip(rows[0].split(","), row.split(","), strict=True)) for row in rows[1:]]
    assert [float(member["l2"]) for member in members] == [0.0, L2]
    for member, l2 in zip(members, (0.0, L2), strict=True):
        lone = tmp_path / f"lone-{l2}"
        assert train("--l2", l2, "--lr", 0.3, "--epochs", EPOCHS, "--quiet", "--out", lone) == 0
        assert float(member["train_loss"]) == pytest.approx(metrics(lone)["train_loss"], rel=1e-5)
        assert float(member["test_loss"]) == pytest.approx(metrics(lone)["test_loss"], rel=1e-5)
    assert members[0]["train_loss"] != members[1]["train_loss"]
    best = int(next(member["member"] for member in members if member["best"] == "true"))
    assert checkpoint.read_config(population / "checkpoint.npz")["l2"] == [0.0, L2][best]
    assert metrics(population)["population"]["l2"] == [0.0, L2]
    # the summary names the best member's penalty, 0 included (a member without one was named without "l2")
    assert f"best by test accuracy: member {best}: lr 0.3, l2 {[0, L2][best]:g}, seed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # a resumed population keeps its members
        train("--resume", population, "--l2", f"0,{2 * L2}", "--epochs", EPOCHS + 2)
    assert exit_info.value.code == 2 and f"--l2 0.0,{2 * L2} differs from 0.0,{L2} in" in capsys.readouterr().err
    assert train("--resume", population, "--epochs", EPOCHS + 2, "--quiet") == 0
    with pytest.raises(SystemExit) as exit_info:
        train("--optimizer", "lbfgs", "--l2", f"0,{L2}", "--epochs", 2)
    assert exit_info.value.code == 2 and "lbfgs trains one network at a time" in capsys.readouterr().err


def test_a_members_flags_read_back_as_its_own_values():
    from jaxnn.cli.population_results import member_flags

    flags = member_flags({"lr": 0.1, "l2": 0.0012345678, "seed": 3})
    assert flags == "--lr 0.1 --l2 0.0012345678 --seed 3"  # :g gave 0.00123457, another penalty
    assert member_flags({"lr": 1.0, "l2": 0.0, "seed": 0}) == "--lr 1 --seed 0"


def test_a_penalty_beyond_float32_is_refused_for_lbfgs_and_named_when_descent_diverges(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # alpha = l2 · 112 rows overflows float32: nothing would train
        train("--optimizer", "lbfgs", "--l2", 1e37, "--epochs", 5, "--quiet", "--out", tmp_path / "lbfgs")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert "--l2 1e+37: lbfgs's penalty alpha = l2 · the training rows' weight (1.12e+39) is beyond float32" in err
    assert not (tmp_path / "lbfgs" / "checkpoint.npz").exists()
    assert train("--l2", 1e30, "--epochs", 5, "--quiet", "--out", tmp_path / "gd") == 1  # diverges at once
    assert "start again with a smaller --lr or --l2 (and --overwrite, or another --out)" in capsys.readouterr().err
