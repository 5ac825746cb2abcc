"""jaxnn-train --class-weight balanced: the training rows weighted as scikit-learn's compute_class_weight('balanced')
over the training split, for every optimiser and populations; kept by the checkpoint; refused by regression."""

import numpy as np
import pytest
from cli_support import arrays, assert_same_params, fit_as_the_run, metrics, saved_params, train
from sklearn.utils.class_weight import compute_class_weight

from jaxnn import checkpoint, lbfgs
from jaxnn.cli import options as cli_options
from jaxnn.cli import training
from jaxnn.cli.data import load_problem
from jaxnn.train import training_keys

EPOCHS = 20  # wine (59/71/48 rows per class), gd on the full batch


def _wine(**given):
    """The wine run's problem, head, model, unweighted targets, starting weights and balanced row weights,
    the weights computed here from scikit-learn's compute_class_weight on the training split."""
    options = cli_options.with_defaults({"dataset": "wine", **given})
    problem = load_problem(options)
    options = training.settled_options(options, problem)
    head = training.make_head(options, problem)
    model = training.build_model(options, head)
    classes, counts = np.unique(problem.y_train, return_counts=True)
    assert counts.max() > 1.4 * counts.min()  # unbalanced: the weights matter
    per_class = compute_class_weight("balanced", classes=classes, y=problem.y_train)
    weights = per_class[np.searchsorted(classes, problem.y_train)]
    params = model.init(training_keys(options["seed"])[0], problem.x_train.shape[1])
    return options, problem, head, model, training.make_targets(problem, head), params, weights


@pytest.fixture(scope="module")
def balanced_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("balanced")
    assert train("--dataset", "wine", "--class-weight", "balanced", "--epochs", EPOCHS, "--quiet", "--out", out) == 0
    return out


def test_a_balanced_run_is_jaxnn_fit_with_the_balanced_weights(balanced_run, tmp_path):
    options, problem, head, model, targets, params, weights = _wine()
    expected = fit_as_the_run(options, problem, head, targets, model, params, EPOCHS, weight=weights)
    assert_same_params(saved_params(arrays(balanced_run)), expected.params)
    assert checkpoint.read_config(balanced_run / "checkpoint.npz")["class_weight"] == "balanced"
    assert metrics(balanced_run)["options"]["class_weight"] == "balanced"
    # the control: the same run without the weights ends elsewhere
    assert train("--dataset", "wine", "--epochs", EPOCHS, "--quiet", "--out", tmp_path) == 0
    unweighted = saved_params(arrays(tmp_path))
    assert not np.array_equal(unweighted[0]["W"], np.asarray(expected.params[0]["W"]))
    assert checkpoint.read_config(tmp_path / "checkpoint.npz")["class_weight"] is None


def test_resume_keeps_the_class_weights(balanced_run, tmp_path):
    whole = tmp_path / "whole"
    assert train("--dataset", "wine", "--class-weight", "balanced", "--epochs", 30, "--quiet", "--out", whole) == 0
    resumed = tmp_path / "resumed"
    assert train("--resume", balanced_run, "--out", resumed, "--epochs", 30, "--quiet") == 0
    expected, got = arrays(whole), arrays(resumed)
    for name in expected:
        if name.startswith(("params/", "opt_state/")):
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert checkpoint.read_config(resumed / "checkpoint.npz")["class_weight"] == "balanced"


def test_resume_refuses_other_class_weights_and_a_regression_run_refuses_them(balanced_run, tmp_path, capsys):
    unweighted = tmp_path / "unweighted"
    assert train("--dataset", "wine", "--epochs", 2, "--quiet", "--out", unweighted) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", unweighted, "--class-weight", "balanced", "--epochs", 3)
    assert exit_info.value.code == 2
    assert "--class-weight balanced differs from (not set) in" in capsys.readouterr().err
    assert train("--resume", balanced_run, "--out", tmp_path / "again", "--class-weight", "balanced",
                 "--epochs", EPOCHS + 1, "--quiet") == 0  # fmt: skip

    csv = tmp_path / "numbers.csv"
    csv.write_text("a,y\n" + "".join(f"{i},{i * 0.37 + 0.1}\n" for i in range(40)))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--csv", csv, "--target", "y", "--class-weight", "balanced", "--epochs", 2, "--out", tmp_path / "r")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "jaxnn-train: error: --class-weight balanced weighs the classes of a classification run, but this run is "
        "regression; leave it out (see jaxnn-train --help)"
    ]
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_lbfgs_minimises_the_balanced_loss(tmp_path):
    assert train("--dataset", "wine", "--optimizer", "lbfgs", "--class-weight", "balanced", "--epochs", 8,
                 "--quiet", "--out", tmp_path) == 0  # fmt: skip
    _, problem, head, model, targets, params, weights = _wine(optimizer="lbfgs")
    expected = lbfgs.minimize(model, params, problem.x_train, targets.train, loss=head.loss, weight=weights, max_iter=8)
    assert_same_params(saved_params(arrays(tmp_path)), expected.params)
    np.testing.assert_array_equal(arrays(tmp_path)["history"], expected.loss_curve)


def test_a_population_weighs_every_member_as_its_lone_run(balanced_run, tmp_path):
    out = tmp_path / "population"
    lrs = "0.1,0.3"  # the default 0.1 is the balanced_run's
    assert train("--dataset", "wine", "--class-weight", "balanced", "--lr", lrs, "--epochs", EPOCHS, "--quiet",
                 "--out", out) == 0  # fmt: skip
    rows = (out / "population.csv").read_text().splitlines()
    lone = metrics(balanced_run)
    member = dict(zip(rows[0].split(","), rows[1].split(","), strict=True))
    assert float(member["lr"]) == 0.1
    assert float(member["train_loss"]) == pytest.approx(lone["train_loss"], rel=1e-5)
    assert float(member["test_loss"]) == pytest.approx(lone["test_loss"], rel=1e-5)
