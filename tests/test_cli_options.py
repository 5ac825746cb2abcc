"""jaxnn-train's options: bad input is one line with exit status 2, and a checkpoint's stored options are checked."""

import json
import os
import re

import jax
import numpy as np
import pytest
from cli_support import DELETE, shell, train, with_config, write_csv

import jaxnn
from jaxnn import checkpoint
from jaxnn.cli import options


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A 2-epoch run of the default iris network, checkpointed; tests copy it, never change it."""
    out = tmp_path_factory.mktemp("iris_run")
    assert train("--epochs", "2", "--quiet", "--out", out) == 0
    return out


def test_a_checkpoint_from_elsewhere_is_refused_on_resume(tmp_path, capsys):
    params = [{"W": np.zeros((4, 10), np.float32), "b": np.zeros(10, np.float32)}]
    checkpoint.save(tmp_path / "checkpoint.npz", params=params, opt_state=(), key=jax.random.key(0), epoch=0,
                    history=[], config={"lr": 0.1})  # fmt: skip
    with pytest.raises(SystemExit):
        train("--resume", tmp_path)
    assert "was not written by jaxnn-train: its config lacks dataset, csv" in capsys.readouterr().err


def test_a_rewritten_config_with_valid_options_resumes(iris_run, tmp_path):
    # the control for the tests below: the rewriting keeps the file loadable and valid options pass
    run = with_config(iris_run, tmp_path / "run", lr=0.05, activation="tanh", layers=[10, 5], batch_size=None)
    assert train("--resume", run, "--epochs", "3", "--quiet") == 0
    config = checkpoint.read_config(run / "checkpoint.npz")
    assert (config["epoch"], config["lr"], config["activation"]) == (3, 0.05, "tanh")


def test_a_checkpoint_from_before_momentum_and_stratify_resumes_as_it_was_trained(iris_run, tmp_path):
    # sgd used to be plain minibatch descent, and splits were not stratified: such a run continues so
    run = with_config(
        iris_run,
        tmp_path / "run",
        optimizer="sgd",
        momentum=DELETE,
        nesterov=DELETE,
        stratify=DELETE,
        class_weight=DELETE,
    )
    stored = options.stored_options(checkpoint.read_config(run / "checkpoint.npz"), run)
    assert (stored["momentum"], stored["nesterov"], stored["stratify"]) == (0.0, False, False)
    assert stored["class_weight"] is None  # before --class-weight, every row weighed 1


TAMPERED = [
    ({"optimizer": "rmsprop"}, "--optimizer ('rmsprop')"),
    ({"lr": -1}, "--lr (-1)"),
    ({"lr": 1e400}, "--lr (inf)"),  # json writes Infinity, json.loads reads it back
    ({"lr": "0.1"}, "--lr ('0.1')"),  # a string, not a number
    ({"layers": "x"}, "--layers ('x')"),
    ({"layers": [10, 0]}, "--layers ([10, 0])"),
    ({"layers": [10, 5.5]}, "--layers ([10, 5.5])"),
    ({"layers": [[10]]}, "--layers ([[10]])"),  # [] is --layers none: valid
    ({"l2": -1}, "--l2 (-1)"),
    ({"l2": "0.1"}, "--l2 ('0.1')"),
    ({"l2": [0.1, 0.2]}, "--lr/--l2/--seed: lists belong to a population's"),  # population.npz holds lists
    ({"dataset": "../etc"}, "--dataset ('../etc')"),
    ({"activation": "os.system"}, "--activation ('os.system')"),
    ({"loss": "hinge"}, "--loss ('hinge')"),
    ({"loss": None}, "--loss (None)"),
    ({"task": "sideways"}, "--task ('sideways')"),
    ({"batch_size": 0}, "--batch-size (0)"),
    ({"batch_size": "full"}, "--batch-size ('full')"),  # a run stores full batch as null
    ({"seed": True}, "--seed (True)"),
    ({"seed": 2**32}, f"--seed ({2**32})"),
    ({"test_size": 1.5}, "--test-size (1.5)"),
    ({"momentum": 1.5}, "--momentum (1.5)"),
    ({"nesterov": "yes"}, "--nesterov ('yes')"),
    ({"stratify": 1}, "--stratify (1)"),
    ({"class_weight": "inverse"}, "--class-weight ('inverse')"),
    ({"class_weight": {"0": 2.0}}, "--class-weight ({'0': 2.0})"),
    ({"epochs": 0}, "--epochs (0)"),
    ({"epochs": 2**32}, f"--epochs ({2**32})"),  # the epoch counter is a uint32
    ({"csv": 5}, "--csv (5)"),
    ({"target": ["price"]}, "--target (['price'])"),
    ({"dataset": None}, "--dataset/--csv (a run sets exactly one)"),
    ({"momentum": 0.9}, "--momentum/--nesterov for --optimizer gd"),  # gd has no momentum
]


@pytest.mark.parametrize(("changes", "named"), TAMPERED, ids=[repr(c) for c, _ in TAMPERED])
def test_resume_checks_the_options_stored_in_the_checkpoint(iris_run, tmp_path, capsys, changes, named):
    run = with_config(iris_run, tmp_path / "run", **changes)
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", "3", "--quiet")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"{run / 'checkpoint.npz'} holds an invalid {named}" in lines[0], lines
    assert checkpoint.read_config(run / "checkpoint.npz")["epoch"] == 2  # nothing was trained or written


CORRUPT_STATE = [
    ({"seconds": "abc"}, "its seconds ('abc') is not a number of seconds"),  # was a TypeError after a chunk
    ({"total_seconds": [1]}, "its total_seconds ([1]) is not a number of seconds"),
    ({"seconds": -1.0}, "its seconds (-1.0) is not a number of seconds"),
    ({"seconds": True}, "its seconds (True) is not a number of seconds"),
    ({"diverged": "no"}, "its diverged flag ('no') is not one jaxnn-train writes"),  # reported a divergence
    ({"diverged": True}, "its diverged flag (True) is not one jaxnn-train writes (false or true, and never true"),
]


@pytest.mark.parametrize(("changes", "message"), CORRUPT_STATE, ids=[repr(c) for c, _ in CORRUPT_STATE])
def test_resume_checks_the_state_stored_in_the_checkpoint(iris_run, tmp_path, capsys, changes, message):
    run = with_config(iris_run, tmp_path / "run", **changes)
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--epochs", "3", "--quiet")
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert f"{run / 'checkpoint.npz'} is corrupt: {message}" in lines[0], lines
    assert sorted(path.name for path in run.iterdir()) == ["checkpoint.npz"]  # nothing was trained or written


def test_every_run_option_has_a_flag_and_a_typed_check():
    parser = options.build_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for name, option in options.RUN_OPTIONS.items():
        assert option.flag == options.flag(name) and option.flag in flags
        assert not options.check_value(option, "1") or name in ("csv", "target")  # text is never a number here
    stored = json.loads(json.dumps(options.with_defaults({}) | {"task": "classification", "loss": "relu"}))
    assert not options.check_value(options.RUN_OPTIONS["loss"], stored["loss"])  # an activation is not a loss


# --- bad input: one line, exit status 2, never a traceback ------------------------------------------


@pytest.fixture
def csv_files(tmp_path):
    good = write_csv(tmp_path / "good.csv", ["a", "b", "label"], [[1, 2, "x"], [3, 4, "y"], [5, 6, "x"], [7, 8, "y"]])
    text = write_csv(tmp_path / "text.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "abc", "y"]])
    empty = write_csv(tmp_path / "empty.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "", "y"]])
    ragged = write_csv(tmp_path / "ragged.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "y"]])
    numbers = write_csv(tmp_path / "numbers.csv", ["a", "b", "y"], [[1, 2, 0.5], [3, 4, 1.5], [5, 6, 2.25]])
    three = write_csv(tmp_path / "three.csv", ["a", "label"], [[i, "xyz"[i % 3]] for i in range(9)])
    files = {"good": good, "text": text, "empty": empty, "ragged": ragged, "numbers": numbers, "three": three}
    rows = [[1, 2, "x", 0.5], [3, 4, "y", 1.5], [5, 6, "x", 2.25], [7, 8, "y", 3.5]]
    files["repeated"] = write_csv(tmp_path / "repeated.csv", ["a", "a", "label", "y"], rows)
    numeric = [[a, b, y] for a, b, _, y in rows]  # names are stripped: the target "y" would also be an input
    files["twice"] = write_csv(tmp_path / "twice.csv", ["y", "b", "y "], numeric)
    files["index"] = write_csv(
        tmp_path / "index.csv", ["", "a", "b", "label"], [[i, *r[:3]] for i, r in enumerate(rows)]
    )
    files["unnamed"] = write_csv(tmp_path / "unnamed.csv", ["a", "Unnamed: 0", "label"], [r[:3] for r in rows])
    for name, cell in [("blank", ""), ("nan", "nan"), ("inf", "-inf"), ("huge", "1e400"), ("na", "NA"), ("q", "?")]:
        bad = [[*row[:2], cell if i == 2 else row[3]] for i, row in enumerate(rows)]  # the 3rd data row: line 4
        files[f"target_{name}"] = write_csv(tmp_path / f"target_{name}.csv", ["a", "b", "y"], bad)
    typo = [[*row[:2], "0.5x" if i == 2 else row[3]] for i, row in enumerate(rows)]
    files["target_typo"] = write_csv(tmp_path / "target_typo.csv", ["a", "b", "y"], typo)
    labels = [[*row[:2], "" if i == 1 else row[2]] for i, row in enumerate(rows)]  # a text target, line 3 blank
    files["label_blank"] = write_csv(tmp_path / "label_blank.csv", ["a", "b", "label"], labels)
    return {**files, "missing": tmp_path / "nope.csv"}


BAD_INPUT = [
    (["--dataset", "foo"], "unknown dataset 'foo'; choose iris, wine, breast_cancer, digits"),
    (["--layers", "0"], "argument --layers: '0' is not a comma-separated list of positive layer widths"),
    (["--layers", "10,-5"], "'10,-5' is not a comma-separated list"),
    (["--lr", "-1"], "argument --lr: '-1' is not a positive number"),
    (["--test-size", "1.5"], "is not a fraction between 0 and 1"),
    (["--epochs", "0"], "argument --epochs: '0' is not a positive whole number"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'; choose gd, sgd, adam"),
    (["--momentum", "2"], "argument --momentum: '2' is not a number from 0 to 1"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum sets sgd's momentum; --optimizer adam has none"),
    (["--no-nesterov"], "--nesterov sets sgd's momentum; --optimizer gd has none"),
    (["--momentum", "0.5", "--no-nesterov"], "--momentum and --nesterov set sgd's momentum; --optimizer gd has"),
    (["--checkpoint-seconds", "-1"], "'-1' is not a number of seconds, 0 or more"),
    (["--platform", "quantum"], "unknown platform 'quantum'; choose cpu, gpu, tpu"),
    (["--num-processes", "2"], "--num-processes and --process-id describe several hosts: give --coordinator too"),
    # it was the library's words: "process_id must be an integer in [0, 2), got 2"
    (
        ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"],
        "--process-id 2: the ranks of --num-processes 2 are 0 to 1",
    ),
    # refused before any weight is allocated or compiled (it was an XLA out-of-memory traceback)
    (["--layers", "1000000000"], "--layers 1000000000: 8,000,000,003 weights need about"),
    (["--layers", "2147483648"], "; use narrower layers"),
    (["--layers", "1000000000", "--lr", "0.1,1", "--seed", "0,1"], "4 networks of 8,000,000,003 weights need about"),
    (["--coordinator", "host0"], "argument --coordinator: 'host0' is not HOST:PORT with a port from 1 to 65535"),
    (["--coordinator", "host0:0"], "argument --coordinator: 'host0:0' is not HOST:PORT with a port from 1 to 65535"),
    (["--coordinator", "host0:65536"], "'host0:65536' is not HOST:PORT with a port from 1 to 65535"),
    (["--coordinator", ":1234"], "':1234' is not HOST:PORT with a port from 1 to 65535"),
    (["--coordinator", "host0:http"], "'host0:http' is not HOST:PORT with a port from 1 to 65535"),
    # a scheme or a space passed the check, and JAX's coordinator client waited minutes for the address
    (["--coordinator", "http://host0:1234"], "'http://host0:1234' is not HOST:PORT with a port from 1 to 65535"),
    (["--coordinator", " host0:1234"], "' host0:1234' is not HOST:PORT"),
    (["--csv", "{good}", "--target", "nope"], "--target column 'nope' is not in"),
    (["--csv", "{text}", "--target", "label"], "text.csv line 3, column 'b' holds 'abc', which is not a finite number"),
    (["--csv", "{empty}", "--target", "label"], "empty.csv line 3, column 'b' is empty"),
    (["--csv", "{ragged}", "--target", "label"], "ragged.csv line 3 has 2 cells but the header has 3"),
    # --epochs 2: without the checks these would train, quickly
    (["--csv", "{repeated}", "--target", "label", "--epochs", "2"], "repeated.csv has repeated column names ('a')"),
    (["--csv", "{twice}", "--target", "y", "--epochs", "2"], "twice.csv has repeated column names ('y')"),
    (
        ["--csv", "{index}", "--target", "label", "--epochs", "2"],
        "index.csv column 1 has an empty name, as pandas writes its row index (df.to_csv(path)); drop that column, "
        "or write the file with df.to_csv(path, index=False)",
    ),
    (["--csv", "{unnamed}", "--target", "label", "--epochs", "2"], "column 2 has 'Unnamed: 0', as pandas writes"),
    (["--csv", "{target_blank}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds ''; fill in"),
    (["--csv", "{target_nan}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds 'nan'; fill in"),
    (
        ["--csv", "{target_inf}", "--target", "y", "--epochs", "2"],
        "line 4, target column 'y' holds '-inf', read as the number -inf",
    ),
    (["--csv", "{target_huge}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds '1e400'"),
    # a missing-value marker was a class: a regression column became a classifier with a class per value
    (["--csv", "{target_na}", "--target", "y", "--epochs", "2"], "line 4, target column 'y' holds 'NA', a missing"),
    (["--csv", "{target_q}", "--target", "y", "--epochs", "2"], "target column 'y' holds '?', a missing-value marker"),
    (
        ["--csv", "{target_typo}", "--target", "y", "--epochs", "2"],
        "line 4, target column 'y' holds '0.5x' but its other cells are mostly numbers, read as regression; "
        "regression needs numbers there (or use --task classification)",
    ),
    (["--csv", "{label_blank}", "--target", "label", "--epochs", "2"], "line 3, target column 'label' holds ''"),
    (["--csv", "{missing}", "--target", "label"], "cannot read --csv"),
    (["--csv", "{good}"], "--csv and --target go together"),
    (["--csv", "{good}", "--target", "label", "--dataset", "iris"], "--dataset and --csv both name the data"),
    (
        ["--csv", "{numbers}", "--target", "y", "--loss", "softmax_cross_entropy"],
        "--loss softmax_cross_entropy: loss 'softmax_cross_entropy' is a classification loss (categorical) "
        "but the target is continuous",
    ),
    (
        ["--csv", "{three}", "--target", "label", "--loss", "binary_cross_entropy", "--epochs", "2"],
        "loss 'binary_cross_entropy' is for two classes (one sigmoid output) but the target has 3 classes",
    ),
    (
        ["--csv", "{numbers}", "--target", "y", "--loss", "poisson", "--epochs", "2"],
        "--loss poisson: jaxnn-train fits standardised targets with a linear output",
    ),
    (  # numbers.csv's test part is one row, which is warned about once the run is not refused
        ["--csv", "{numbers}", "--target", "y", "--loss", "poisson", "--epochs", "2", "--lr", "0.1,0.2"],
        "--loss poisson: jaxnn-train fits standardised targets with a linear output",
    ),
    (["--csv", "{numbers}", "--target", "y", "--stratify"], "--stratify needs class labels"),
    (["--csv", "{numbers}", "--target", "y", "--class-weight", "balanced"], "this run is regression; leave it out"),
    (["--class-weight", "inverse"], "unknown class weight 'inverse'; choose balanced"),
    (["--csv", "{good}", "--target", "label", "--task", "regression"], "regression needs numbers there"),
    (["--dataset", "wine", "--task", "regression"], "the wine dataset is classification"),
    (["--csv", "{good}", "--target", "label", "--test-size", "0.9"], "cannot split the 4 rows of good.csv"),
    (["--resume", "{missing}"], "no checkpoint at"),
    # an empty path was the current directory: --out "" wrote the run's files there, --csv "" read "." and
    # --resume "" looked for ./checkpoint.npz
    (["--out", "", "--epochs", "2"], "argument --out: '' is an empty path; name a directory (--out . for the current"),
    (["--csv", "", "--target", "label"], "argument --csv: '' is an empty path; name the CSV file"),
    (["--resume", ""], "argument --resume: '' is an empty path; name the directory of the run to continue"),
    # another tool's name for an option, or a near spelling, was "unrecognized arguments" alone
    (["--solver", "adam"], "unrecognized arguments: --solver adam; jaxnn-train's name for --solver is --optimizer"),
    (["--hidden_layer_sizes", "10"], "jaxnn-train's name for --hidden_layer_sizes is --layers"),
    (["--optimiser", "adam"], "unrecognized arguments: --optimiser adam; did you mean --optimizer?"),
    (["--lerning-rate=0.1"], "unrecognized arguments: --lerning-rate=0.1; jaxnn-train's step size is --lr"),
    # scikit-learn's learning_rate is a schedule: "its name is --lr" led to --lr invscaling, refused as no number
    (["--learning_rate", "invscaling"], "jaxnn-train's step size is --lr (scikit-learn's learning_rate_init); "),
    (["--learning-rate", "0.1"], "scikit-learn's learning_rate, a schedule ('invscaling', 'adaptive'), has no "),
    (["--foo", "3"], "unrecognized arguments: --foo 3 (see jaxnn-train --help)"),  # no guess
    (["--alpha", "0.01"], "unrecognized arguments: --alpha 0.01; jaxnn-train's L2 penalty is --l2, jaxnn.fit's l2"),
    (["--weight-decay", "0.01"], "jaxnn-train's weight decay is --l2: l2·W added to each weight's gradient"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_clear_line(csv_files, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train(*(arg.format(**{k: str(v) for k, v in csv_files.items()}) for arg in args))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxnn-train: error: "), captured.err
    assert message in lines[0]
    assert lines[0].endswith("(see jaxnn-train --help)")


def test_epochs_beyond_the_uint32_epoch_counter_are_one_clear_line_at_parse_time(capsys):
    # at parse time, not in BAD_INPUT: without the check a full run would start on 2**32 epochs
    parser = options.build_parser()
    assert parser.parse_args(["--epochs", str(2**32 - 1)]).epochs == 2**32 - 1
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--epochs", str(2**32)])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"jaxnn-train: error: argument --epochs: '{2**32}' is not a whole number from 1 to 2**32 - 1 "
        "(a 32-bit epoch count) (see jaxnn-train --help)"
    ]


NOT_PLAIN = [
    (["--lr", "1_0"], "argument --lr: '1_0' is not a positive number"),
    (["--lr", "0.1,1_0"], "argument --lr: '1_0' in '0.1,1_0' is not a positive number"),
    (["--lr", "0.1,nan"], "argument --lr: 'nan' in '0.1,nan' is not a positive number"),
    (["--seed", "1_0"], "argument --seed: '1_0' is not a whole number from 0 to 2**32 - 1"),
    (["--seed", "\u0661"], "argument --seed: '\u0661' is not a whole number"),  # ARABIC-INDIC DIGIT ONE
    (["--epochs", "2_000"], "argument --epochs: '2_000' is not a positive whole number"),
    (["--layers", "1_0,5"], "argument --layers: '1_0,5' is not a comma-separated list of positive layer widths"),
    (["--batch-size", "3_2"], "argument --batch-size: '3_2' is not a positive whole number or 'full'"),
    (["--momentum", "0.9_0"], "argument --momentum: '0.9_0' is not a number from 0 to 1"),
    (["--dropout", "0.1_0"], "argument --dropout: '0.1_0' is not a fraction"),
    (["--test-size", "0.2_5"], "argument --test-size: '0.2_5' is not a fraction between 0 and 1"),
    (["--checkpoint-seconds", "1_0"], "argument --checkpoint-seconds: '1_0' is not a number of seconds"),
    (["--checkpoint-every", "1_0"], "argument --checkpoint-every: '1_0' is not a positive whole number"),
    (["--devices", "1_0"], "argument --devices: '1_0' is not a positive whole number"),
    (["--num-processes", "1_0"], "argument --num-processes: '1_0' is not a positive whole number"),
    (["--process-id", "abc"], "argument --process-id: 'abc' is not a whole number, 0 or more"),  # was "invalid int"
]


@pytest.mark.parametrize(("args", "message"), NOT_PLAIN, ids=[" ".join(a) for a, _ in NOT_PLAIN])
def test_numbers_python_reads_but_a_user_does_not_write_are_refused(capsys, args, message):
    """``--lr 1_0`` trained at lr 10 (Python's float reads underscores), ``--seed ١`` at seed 1."""
    with pytest.raises(SystemExit) as exit_info:
        options.build_parser().parse_args(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jaxnn-train: error: {message}"), lines
    assert lines[0].endswith("(see jaxnn-train --help)")


GIVEN_TWICE = [
    (["--lr", "0.1", "--lr", "0.2"], "argument --lr: given twice; give it once, or its values as one comma-separated"),
    (["--epochs", "3", "--epochs=4"], "argument --epochs: given twice; give it once (see"),
    (["--ep", "3", "--epochs", "4"], "argument --epochs: given twice; give it once (see"),  # an abbreviation is one
    (["--seed", "1", "--seed", "1"], "argument --seed: given twice"),  # the same value: still a slip
]


@pytest.mark.parametrize(("args", "message"), GIVEN_TWICE, ids=[" ".join(a) for a, _ in GIVEN_TWICE])
def test_an_option_given_twice_is_refused(capsys, args, message):
    """argparse keeps the last value: ``--lr 0.1 --lr 0.2`` trained at 0.2 alone, where a population was likely
    meant.  Each parse starts afresh: one parser reads two command lines that each give the option once."""
    parser = options.build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jaxnn-train: error: {message}"), lines
    assert parser.parse_args(["--lr", "0.1"]).lr == parser.parse_args(["--lr", "0.1"]).lr == (0.1,)
    assert options.build_parser().parse_args(["--quiet", "--quiet"]).quiet  # a switch repeated means the same


def test_a_coordinator_without_the_cluster_size_says_which_flags_to_give(capsys):
    """Outside Slurm and Open MPI, JAX's "Number of processes must be defined." now names the flags to give."""
    before = jax.config.jax_cpu_collectives_implementation
    try:
        with pytest.raises(SystemExit):
            train("--coordinator", "127.0.0.1:1", "--epochs", "1")
    finally:
        jax.config.update("jax_cpu_collectives_implementation", before)
    assert "(give --num-processes and --process-id with --coordinator" in capsys.readouterr().err
    # In a fresh process, as a user starts it (here JAX has run already, which initialize refuses first), the
    # flags' advice stands alone: the Python API's (initialize(..., num_processes=2, ...)) was given beside it.
    done = shell("--coordinator", "127.0.0.1:1", "--epochs", "1", timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "jaxnn-train: error: could not join the multi-host run: JAX could not tell the number of processes (give "
        "--num-processes and --process-id with --coordinator, or run under Slurm or Open MPI) (see jaxnn-train --help)"
    ]


def test_numbers_written_plainly_are_read_with_spaces_around():
    given = ["--lr", " 1e-3 ,.5", "--seed", "+3", "--momentum", "1.", "--epochs", " 5"]
    args = options.build_parser().parse_args(given)
    assert (args.lr, args.seed, args.momentum, args.epochs) == ((0.001, 0.5), (3,), 1.0, 5)


@pytest.mark.slow
def test_bad_input_from_the_shell_has_no_traceback(csv_files):
    for args, message in [
        (["--dataset", "foo"], "unknown dataset 'foo'"),
        (["--csv", str(csv_files["text"]), "--target", "label"], "'abc', which is not a finite number"),
    ]:
        done = shell(*args, timeout=60)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_help_explains_each_option():
    parser = options.build_parser()
    text = parser.format_help()
    flags = [action for action in parser._actions if action.option_strings]
    assert all(action.help for action in flags)
    for flag in ["--dataset", "--csv", "--target", "--layers", "--activation", "--loss", "--optimizer", "--lr"]:
        assert flag in text
    for flag in ["--epochs", "--batch-size", "--seed", "--test-size", "--platform", "--out", "--quiet", "--resume"]:
        assert flag in text
    for flag in ["--momentum", "--nesterov", "--l2", "--stratify", "--class-weight", "--checkpoint-seconds"]:
        assert flag in text
    assert "iris, wine, breast_cancer, digits" in text
    # the exit statuses as docs/cli.md gives them: status 1 is not only a full disk
    assert "a file could not be written\nor the output was closed early" in text


def test_version_prints_jaxnns_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        train("--version")
    assert exit_.value.code == 0 and capsys.readouterr().out == f"jaxnn-train {jaxnn.__version__}\n"


def test_a_cpu_run_is_measured_against_the_memory_available_now(tmp_path):
    """The host's total memory let a run that the other processes left no room for start, and the kernel killed it
    (exit 137, nothing said): on a CPU the check reads Linux's MemAvailable, else the free pages."""
    from jaxnn.cli.training import device_memory

    class Cpu:
        platform = "cpu"

        def memory_stats(self):
            return None

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:          100000 kB\nMemAvailable:    2000000 kB\n")
    assert device_memory(Cpu(), str(meminfo)) == (2000000 * 1024, "memory available on this machine")
    free, where = device_memory(Cpu(), str(tmp_path / "none"))  # no /proc: the free pages
    assert (
        0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") and where == "memory free on this machine"
    )


def test_a_classification_loss_on_a_regression_target_suggests_only_losses_jaxnn_train_trains(csv_files, capsys):
    # the advice was the library's, which names 'poisson': jaxnn-train then refused that loss too
    with pytest.raises(SystemExit):
        train("--csv", csv_files["numbers"], "--target", "y", "--loss", "softmax_cross_entropy", "--epochs", "1")
    advice = capsys.readouterr().err.split(";", 1)[1]
    suggested = [name for name in sorted(options.OPTIONS["loss"].choices) if f"'{name}'" in advice]
    assert suggested
    for name in suggested:
        assert train("--csv", csv_files["numbers"], "--target", "y", "--loss", name, "--epochs", "1", "--quiet") == 0


@pytest.mark.parametrize("rate", ["1e40", "1e-50", "0.1,1e40"])
def test_a_learning_rate_that_float32_cannot_hold_is_one_clear_line(capsys, rate):
    # 1e40 is infinite in float32: JAX warned of an overflow in a cast and the run diverged at once; 1e-50 is 0
    # there, and the network trained without moving while metrics.json recorded lr 1e-50
    with pytest.raises(SystemExit) as exit_info:
        train("--lr", rate, "--epochs", "1")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxnn-train: error: argument --lr: "), lines
    assert "float32" in lines[0]


def test_the_learning_rates_at_float32s_limits_are_accepted():
    limits = np.finfo(np.float32)
    parser = options.build_parser()
    for rate in (float(limits.tiny), float(limits.max)):
        assert parser.parse_args(["--lr", repr(rate)]).lr == (rate,)


@pytest.mark.parametrize("flag", ["--lr", "--l2"])
def test_the_range_a_refusal_names_is_accepted_at_both_ends(capsys, flag):
    # the message said "to 3.4028235e+38", float32's maximum rounded to nearest, which lies above it: refused
    with pytest.raises(SystemExit):
        train(flag, "-1", "--epochs", "1")
    low, high = re.search(r"from (\S+) to (\S+) \(float32's range\)", capsys.readouterr().err).groups()
    parser = options.build_parser()
    for bound in (low, high):
        assert getattr(parser.parse_args([flag, bound]), flag[2:]) == (float(bound),)


def test_resume_takes_another_name_of_the_same_activation_and_refuses_another_activation(tmp_path, capsys):
    run = tmp_path / "run"
    assert train("--activation", "logistic", "--epochs", 3, "--quiet", "--out", run) == 0
    assert train("--resume", run, "--activation", "sigmoid", "--epochs", 5, "--quiet") == 0  # one function
    assert checkpoint.read_config(run / "checkpoint.npz")["activation"] == "logistic"  # the run's name kept
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--resume", run, "--activation", "tanh", "--epochs", 6)
    assert exit_info.value.code == 2 and "--activation tanh differs from logistic in" in capsys.readouterr().err
