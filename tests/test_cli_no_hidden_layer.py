"""jaxnn-train --layers none: the output layer alone (softmax, logistic or linear regression), the estimators'
hidden_layer_sizes=(), on every optimiser; no activation, no dropout; kept by the checkpoint."""

import pytest
from cli_support import (
    arrays,
    assert_same_params,
    fit_as_the_run,
    metrics,
    regression_csv,
    saved_params,
    train,
    with_config,
)

from jaxnn import checkpoint, lbfgs
from jaxnn.cli import options as cli_options
from jaxnn.cli import training
from jaxnn.cli.data import load_problem
from jaxnn.layers import Dense, Sequential
from jaxnn.train import training_keys

EPOCHS = 20


def _linear_model(**given):
    """The run's options, problem, head and targets, and a model built here: the head's output layer alone."""
    options = cli_options.with_defaults({"layers": [], **given})
    problem = load_problem(options)
    options = training.settled_options(options, problem)
    head = training.make_head(options, problem)
    model = Sequential((Dense(head.units, head.layer_activation),))
    return options, problem, head, training.make_targets(problem, head), model


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("linear")
    assert train("--layers", "none", "--epochs", EPOCHS, "--quiet", "--out", out) == 0
    return out


def test_layers_none_trains_the_output_layer_alone_as_jaxnn_fit_does(linear_run):
    options, problem, head, targets, model = _linear_model()
    params = model.init(training_keys(options["seed"])[0], problem.x_train.shape[1])
    expected = fit_as_the_run(options, problem, head, targets, model, params, EPOCHS)
    saved = arrays(linear_run)
    assert_same_params(saved_params(saved), expected.params)
    assert saved["params/0/W"].shape == (4, 3)
    for name in ("checkpoint.npz", "metrics.json", "history.csv", "loss.png", "confusion.png"):
        assert (linear_run / name).exists(), name
    assert checkpoint.read_config(linear_run / "checkpoint.npz")["layers"] == []
    assert metrics(linear_run)["options"]["layers"] == []
    assert metrics(linear_run)["test_accuracy"] > 0.7


def test_the_summary_names_the_network(capsys):
    assert train("--layers", "none", "--epochs", 2, "--quiet") == 0
    assert "iris: 4-3 identity, softmax_cross_entropy, gd lr 0.1" in capsys.readouterr().out


def test_a_regression_and_adam_minibatches_train_without_a_hidden_layer(tmp_path):
    csv = regression_csv(tmp_path / "prices.csv")
    out = tmp_path / "run"
    assert train("--csv", csv, "--target", "price", "--layers", "none", "--optimizer", "adam", "--epochs", 100,
                 "--quiet", "--out", out) == 0  # fmt: skip
    assert arrays(out)["params/0/W"].shape == (2, 1)
    assert metrics(out)["test_r2"] > 0.9  # price is linear in a and b


def test_lbfgs_without_a_hidden_layer_is_jaxnn_lbfgs_minimize(tmp_path):
    assert train("--layers", "none", "--optimizer", "lbfgs", "--epochs", 8, "--quiet", "--out", tmp_path) == 0
    options, problem, head, targets, model = _linear_model(optimizer="lbfgs")
    params = model.init(training_keys(options["seed"])[0], problem.x_train.shape[1])
    expected = lbfgs.minimize(model, params, problem.x_train, targets.train, loss=head.loss, max_iter=8)
    assert_same_params(saved_params(arrays(tmp_path)), expected.params)


def test_a_population_without_a_hidden_layer(tmp_path):
    assert train("--layers", "none", "--seed", "0,1", "--epochs", 5, "--quiet", "--out", tmp_path) == 0
    assert len((tmp_path / "population.csv").read_text().splitlines()) == 3
    assert arrays(tmp_path)["params/0/W"].shape == (4, 3)


def test_resume_keeps_no_hidden_layer(linear_run, tmp_path, capsys):
    run = tmp_path / "run"
    assert train("--layers", "none", "--epochs", 10, "--quiet", "--out", run) == 0
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--layers", "10", "--epochs", 12)
    assert exit_info.value.code == 2 and "--layers 10 differs from none in" in capsys.readouterr().err
    assert train("--resume", run, "--layers", "none", "--epochs", EPOCHS, "--quiet") == 0
    assert_same_params(saved_params(arrays(run)), saved_params(arrays(linear_run)))


REFUSED = [
    (["--dropout", "0.5"], "--dropout 0.5 applies to hidden layers, and --layers none has none"),
    (["--activation", "tanh"], "--activation tanh applies to hidden layers, and --layers none has none"),
]


@pytest.mark.parametrize(("flags", "message"), REFUSED, ids=["dropout", "activation"])
def test_what_applies_to_hidden_layers_is_refused(linear_run, tmp_path, capsys, flags, message):
    for args in (["--layers", "none", "--epochs", 2, "--out", tmp_path / "fresh"], ["--resume", linear_run]):
        with pytest.raises(SystemExit) as exit_info:
            train(*args, *flags)
        assert exit_info.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "fresh").exists()
    assert train("--layers", "none", "--dropout", 0, "--epochs", 2, "--quiet") == 0  # no dropout: accepted


def test_bad_layers_say_none_is_the_word(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train("--layers", "None")
    assert exit_info.value.code == 2
    assert "'None' is not a comma-separated list of positive layer widths, like 10,5, or 'none' for no hidden " in (
        capsys.readouterr().err
    )


def test_a_checkpoint_without_hidden_layers_and_with_dropout_is_refused(linear_run, tmp_path, capsys):
    run = with_config(linear_run, tmp_path / "run", dropout=0.5)
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", EPOCHS + 1)
    assert exit_info.value.code == 2
    assert "holds an invalid --dropout for --layers none" in capsys.readouterr().err
