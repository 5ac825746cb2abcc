"""The benchmark runs end to end (tiny configuration) and its NumPy competitor does the same math as jaxnn.

Timings are never asserted here: only that every regime and competitor is measured and reported.
"""

import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnn
from jaxnn.data import iris_split, one_hot

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _load(name: str, path: Path):
    """Import a benchmark script under a name of its own (``run`` alone would be too generic)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _load("jaxnn_benchmarks_run", BENCHMARKS / "run.py")  # puts benchmarks/ on sys.path
report = _load("jaxnn_benchmarks_report", BENCHMARKS / "report.py")
regime_b = _load("jaxnn_benchmarks_regime_b", BENCHMARKS / "regimes" / "b_fresh_process.py")
regime_d = _load("jaxnn_benchmarks_regime_d", BENCHMARKS / "regimes" / "d_large_step.py")
regime_g = _load("jaxnn_benchmarks_regime_g", BENCHMARKS / "regimes" / "g_medium.py")
regime_f = _load("jaxnn_benchmarks_regime_f", BENCHMARKS / "regimes" / "f_populations.py")
population = _load("jaxnn_benchmarks_population", BENCHMARKS / "population.py")
numpy_net = _load("jaxnn_benchmarks_numpy_net", BENCHMARKS / "numpy_net.py")

COMPETITORS = {
    "a": {
        "jaxnn",
        "jaxnn, float64",
        "jax.grad",
        "jax.grad naive",
        "NeuralNetClassifier, float32 input",
        "NeuralNetClassifier, float64 input",
        "NumPy",
        "scikit-learn",
        "scikit-learn, float64 input",
        "PyTorch",
    },
    "b": {
        "jaxnn (cache cold)",
        "jaxnn (cache warm)",
        "jaxnn (cache warm), iris via scikit-learn",
        "NeuralNetClassifier (cache cold)",
        "NeuralNetClassifier (cache warm)",
        "scikit-learn",
        "NumPy",
        "PyTorch",
    },
    "d": {"jaxnn", "jaxnn (cache warm)", "jax.grad", "NumPy", "scikit-learn", "PyTorch"},
}


def _positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.slow
@pytest.mark.bench_harness  # minutes of CPU: make bench runs it first; make test leaves it out
def test_quick_benchmark_measures_every_regime_and_competitor(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(BENCHMARKS / "README.md", readme)
    output = tmp_path / "results.json"
    command = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--skip-torch"]
    command += ["--output", str(output), "--readme", str(readme)]
    # Regimes a-f take about 90 s of CPU time: 4-5 minutes on a busy 2-core machine (load 9).
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads(output.read_text())
    assert results["quick"] is True
    assert set(results["regimes"]) == {"a", "b", "c", "d", "e", "f", "g", "h"}
    e = results["regimes"]["e"]  # the accelerator regime: skipped here, with its targets not measured
    assert "skipped" in e and "no accelerator" in e["skipped"]
    assert len(e["targets"]) == 5 and all(t["met"] is None for t in e["targets"])
    for regime, names in COMPETITORS.items():
        competitors = results["regimes"][regime]["competitors"]
        assert set(competitors) == names
        assert "skipped" in competitors["PyTorch"]
        measured = [c for name, c in competitors.items() if name != "PyTorch"]
        key = {"a": "us_per_epoch", "b": "seconds", "d": "gflops"}[regime]
        assert all(_positive(c[key]) for c in measured), competitors

    a = results["regimes"]["a"]["competitors"]
    # Same initial weights, same data, same arithmetic: the from-scratch competitors agree with jaxnn.
    for name in ("jax.grad", "jax.grad naive", "NumPy", "jaxnn, float64"):
        assert a[name]["final_loss"] == pytest.approx(a["jaxnn"]["final_loss"], rel=1e-4)
    # The estimator rows draw their own weights (float64 draws differ from float32 ones): they train, that is all.
    for name in ("NeuralNetClassifier, float32 input", "NeuralNetClassifier, float64 input"):
        assert 0 < a[name]["final_loss"] < math.log(3) + 0.1  # from about log 3, the loss of a blind guess
    assert all(_positive(c["x_sklearn"]) for name, c in a.items() if name != "PyTorch")
    d = results["regimes"]["d"]["competitors"]
    assert all(c["peak_mb"] >= c["idle_mb"] > 0 for name, c in d.items() if name != "PyTorch")
    b = results["regimes"]["b"]
    # The idle interpreters shown for scale: JAX's import and scikit-learn's dataset import, each alone.
    assert set(b["idle_interpreter_s"]) == {"import jax", "import sklearn.datasets"}
    tasks = results["regimes"]["c"]["tasks"]
    assert all(_positive(t[lib]["first_call_s"]) for t in tasks.values() for lib in ("jaxnn", "scikit-learn"))

    _check_regime_f(results["regimes"]["f"])
    _check_regime_g(results["regimes"]["g"])
    _check_regime_h(results["regimes"]["h"])
    targets = [t for t in results["targets"] if t["regime"] not in "efgh"]  # e, f, g, h: checked above
    # 15, and two for each solver whose first fit regime b times (the quick run: adam alone)
    assert len(targets) == 15 + 2 * len(bench.QUICK.first_fit_solvers) and {t["regime"] for t in targets} == set("abcd")
    assert set(b["first_fit_per_solver_s"]) == set(bench.QUICK.first_fit_solvers)
    assert all(t["met"] in (True, False) and _positive(t["measured"]) for t in targets)
    assert {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} <= set(results["environment"]["environment_variables"])
    assert results["environment"]["blas"], "threadpoolctl found no BLAS"

    table = readme.read_text()
    assert "**Targets**" in table and "GFLOP/s" in table and "**f. populations" in table
    assert table.count(report.README_START) == 1 and table.count(report.README_END) == 1


def _check_regime_g(g: dict) -> None:
    """Regime g in the quick configuration: every competitor but PyTorch measured on float32 input, the
    estimator, plain JAX and scikit-learn on float64, and the matrix products' floor on both; the core fit and
    plain JAX (same initial weights and optimiser) reach about the same accuracy (a few quick epochs leave every
    competitor near chance, 0.1)."""
    products = "matrix products alone"
    assert set(g["competitors"]["float32"]) == {
        "NeuralNetClassifier",
        "jaxnn.fit",
        "plain JAX",
        products,
        "PyTorch",
        "scikit-learn",
    }
    assert set(g["competitors"]["float64"]) == {"NeuralNetClassifier", "plain JAX", products, "scikit-learn"}
    assert "skipped" in g["competitors"]["float32"]["PyTorch"]
    for competitors in g["competitors"].values():
        for name, c in competitors.items():
            if name != "PyTorch":
                assert _positive(c["first_call_s"]) and _positive(c[f"fit_{g['epochs']}_epochs_s"]), (name, c)
            if name not in ("PyTorch", products):
                assert 0.0 <= c["val_accuracy"] <= 1.0, (name, c)
        assert competitors[products]["val_accuracy"] is None  # the floor trains nothing
    assert set(g["scikit-learn_over_products_floor"]) == {"float32", "float64"}
    f32 = g["competitors"]["float32"]
    assert abs(f32["jaxnn.fit"]["val_accuracy"] - f32["plain JAX"]["val_accuracy"]) <= 0.05
    # Two quick epochs are too short for a reliable slope: its ratios are reported, not checked, here.
    assert len(g["targets"]) == 5 and all(t["regime"] == "g" for t in g["targets"])
    torch_target = [t for t in g["targets"] if "PyTorch" in t["target"]]
    assert len(torch_target) == 1 and torch_target[0]["met"] is None


def _check_regime_h(h: dict) -> None:
    """Regime h: both methods on 1 and 1,000 rows of both data sets, timed for both libraries; a target for
    every predict_proba case."""
    assert len(h["cases"]) == 8
    assert {(c["dataset"], c["method"], c["rows"]) for c in h["cases"].values()} == {
        (d, m, n) for d in ("iris", "digits") for m in ("predict", "predict_proba") for n in (1, 1000)
    }
    assert all(_positive(c["jaxnn_us"]) and _positive(c["sklearn_us"]) for c in h["cases"].values())
    assert h["synchronous_dispatch_cases"].keys() == h["cases"].keys()
    assert all(_positive(c["jaxnn_us"]) for c in h["synchronous_dispatch_cases"].values())
    assert len(h["targets"]) == 4 and all(t["met"] in (True, False) for t in h["targets"])


def _check_regime_f(f: dict) -> None:
    """Regime f in the quick configuration: populations of 1 and 2 members (the sequential time of 2 scaled
    from 1 fit) and the three searches on the CPU; the accelerator run skipped, its targets not measured."""
    assert "no accelerator" in f["accelerator"]["skipped"]
    rows = f["cpu"]["populations"]["sizes"]
    assert [row["members"] for row in rows] == list(bench.QUICK.population_sizes) == [1, 2]
    assert [row["sequential_estimated"] for row in rows] == [False, True]
    for row in rows:
        assert _positive(row["population_s"]) and _positive(row["sequential_s"])
        assert row["population_over_sequential"] == pytest.approx(row["population_s"] / row["sequential_s"])
        # Every member equals its lone jaxnn.fit (the bound of tests/test_population.py).
        assert row["max_relative_final_loss_difference"] <= 2e-5
        assert 0 < row["final_loss_member_0"] < math.log(3) + 0.1
    searches = f["cpu"]["searches"]
    assert list(searches) == list(population.SEARCHES)
    jaxnn_search = searches[population.JAXNN_SEARCH]
    measured = [s for s in searches.values() if "skipped" not in s]
    assert len(measured) >= 2 and all(_positive(s["first_run_s"]) and _positive(s["warm_s"]) for s in measured)
    assert all(0 < s["best_score"] <= 1 and s["candidates"] == 2 and s["folds"] == 2 for s in measured)
    if "skipped" not in jaxnn_search:  # the same jaxnn pipeline, folds and grid: the same choice
        assert jaxnn_search["best_params"] == searches[population.SEQUENTIAL_SEARCH]["best_params"]
    targets = f["targets"]
    assert len(targets) == 6 and all(t["regime"] == "f" for t in targets)
    cpu, device = targets[:4], targets[4:]
    assert all(t["met"] is None for t in device)
    for t in cpu:
        if "GridSearchCV" in t["target"] and "skipped" in jaxnn_search:
            assert t["met"] is None
        else:
            assert t["met"] in (True, False) and _positive(t["measured"])


# Regime f's bookkeeping, on hand-made measurements (no processes): what the table and targets say.


def _population_row(members: int, population_s: float, sequential_s: float) -> dict:
    return {
        "members": members,
        "group_size": min(members, 8),
        "population_s": population_s,
        "sequential_s": sequential_s,
        "sequential_estimated": members > 100,
        "sequential_fits_run": min(members, 100),
        "population_over_sequential": population_s / sequential_s,
        "population_first_call_s": 1.5,
        "final_loss_member_0": 0.05,
        "max_relative_final_loss_difference": 1e-6,
    }


def _search(library: str, first: float, warm: float) -> dict:
    best = {"learning_rate_init": 0.01, "alpha": 1e-3}
    return {"library": library, "first_run_s": first, "warm_s": warm, "best_score": 0.97, "best_params": best}


def test_regime_f_targets_read_the_right_ratios_and_an_absent_search_is_not_measured():
    populations = {
        "device": {"platform": "cpu", "device": "cpu"},
        "sizes": [_population_row(1, 0.03, 0.02), _population_row(1000, 10.0, 20.0)],
    }
    searches = {
        population.JAXNN_SEARCH: _search(population.JAXNN_SEARCH, 4.0, 0.5),
        population.SEQUENTIAL_SEARCH: _search(population.SEQUENTIAL_SEARCH, 5.0, 2.0),
        population.SKLEARN_SEARCH: _search(population.SKLEARN_SEARCH, 7.0, 6.0),
    }
    cpu = {"populations": populations, "searches": searches}
    device = {
        "populations": {**populations, "sizes": [_population_row(1, 0.2, 0.5), _population_row(1000, 0.5, 400.0)]},
        "searches": {name: searches[name] for name in (population.JAXNN_SEARCH, population.SEQUENTIAL_SEARCH)},
    }
    targets = regime_f.population_targets(cpu, device, (1, 1000))
    assert [(t["measured"], t["met"]) for t in targets] == [
        (pytest.approx(1.5), False),  # P = 1: the population is slower than one fit
        (pytest.approx(0.5), True),  # P = 1000
        (pytest.approx(4.0), True),  # 2.0 / 0.5 against the sequential jaxnn search, target ≥ 3
        (pytest.approx(12.0), True),  # 6.0 / 0.5 against MLPClassifier, target ≥ 10
        (pytest.approx(2.5), True),  # accelerator: 0.5 / 0.2, target ≤ 3
        (pytest.approx(4.0), False),  # accelerator search, target ≥ 20
    ]

    absent = {**searches, population.JAXNN_SEARCH: {"library": population.JAXNN_SEARCH, "skipped": "not available"}}
    targets = regime_f.population_targets({**cpu, "searches": absent}, {"skipped": "no accelerator"}, (1, 1000))
    assert [t["met"] for t in targets] == [False, True, None, None, None, None]
    regime = {"description": "test", "cpu": {**cpu, "searches": absent}, "accelerator": {"skipped": "no accelerator"}}
    env = {
        "date": "2026-01-01 00:00 UTC",
        "machine": {"cpu": "a CPU", "cores": 2},
        "versions": {"jax": "0", "scikit-learn": "0", "numpy": "0"},
        "load_average_at_start": [1.0, 1.0, 1.0],
    }
    table = report.markdown({"environment": env, "quick": False, "regimes": {"f": regime}, "targets": targets})
    assert f"| {population.JAXNN_SEARCH} | — | — | — | — | not available |" in table
    assert "scaled from 100 fits" in table and "fit_many of 1000 ÷ fit_many of 1: 333.3×" in table
    assert "On the accelerator: skipped (no accelerator)." in table


def test_regime_g_leaves_a_slope_below_the_products_floor_out_of_the_ratios():
    """Every competitor does at least the floor's products, so a slope under it is timing noise: the row is kept,
    marked and noted, and its ratios are not measured."""
    rows = {"NeuralNetClassifier": 0.08, "plain JAX": 0.10, regime_g.PRODUCTS: 0.09, "scikit-learn": 0.25}
    competitors = {name: {"epoch_s": epoch} for name, epoch in rows.items()}
    regime_g._mark_below_floor(competitors)
    assert [name for name, row in competitors.items() if row.get("below_floor")] == ["NeuralNetClassifier"]
    assert "timing noise" in competitors["NeuralNetClassifier"]["note"]
    assert "note" not in competitors["plain JAX"] and "note" not in competitors["scikit-learn"]


def test_regime_g_takes_the_slope_within_each_round():
    """Seconds per epoch is the median of each round's (long − short) / (epochs apart), the two fits timed back to
    back: a round where the machine ran at half speed moves one slope, not the medians the slope is read from
    (the medians' slope here, (8 − 2) / 3 = 2, would double the epoch)."""
    assert regime_g.per_epoch([(1.0, 4.0), (2.0, 8.0), (10.0, 13.0)], 1, 4) == 1.0
    assert regime_g.per_epoch([(0.2, 0.9)], 1, 8) == pytest.approx(0.1)


def test_no_competitor_is_always_timed_right_after_the_same_other_one():
    """Regime g's twelve runs over its five rounds, and a regime of three over fifteen: each round times every
    run once, and each run's predecessors (the run before it in its round) are not all one and the same (a
    rotation of one order made them so: a process that left threads spinning always slowed the same run)."""
    orchestration = sys.modules["orchestration"]  # on sys.path by benchmarks/run.py
    for names, repeats in [([f"{c}|{n}" for c in "abcdef" for n in (1, 4)], 5), (["x", "y", "z"], 15)]:
        orders = orchestration.round_orders(names, repeats)
        assert len(orders) == repeats and all(sorted(order) == sorted(names) for order in orders)
        assert orders == orchestration.round_orders(names, repeats)  # the same schedule in every run
        for name in names:
            before = {order[order.index(name) - 1] for order in orders if order.index(name) > 0}
            assert len(before) > 1, (name, orders)


def test_merge_keeps_the_other_regimes_of_the_earlier_run_with_their_stamp(tmp_path):
    earlier_env = {"date": "2026-01-01 00:00 UTC", "load_average_at_start": [0.5, 0.5, 0.5]}
    earlier = {"quick": False, "environment": earlier_env, "regimes": {"a": {"targets": []}, "f": {"old": True}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(earlier))
    now = {"date": "2026-02-02 00:00 UTC", "load_average_at_start": [1.0, 1.0, 1.0]}
    new_f = {"targets": [], "measured": report.measured_stamp(now)}
    merged = report.merged_regimes(path, {"quick": False, "environment": now, "regimes": {"f": new_f}})
    assert merged == {
        "a": {"targets": [], "measured": "2026-01-01 00:00 UTC, load average 0.5 at the start"},
        "f": new_f,
    }
    with pytest.raises(SystemExit, match="not mixing them"):
        report.merged_regimes(path, {"quick": True, "environment": now, "regimes": {"f": new_f}})
    assert report.merged_regimes(tmp_path / "absent.json", {"quick": False, "regimes": {"f": new_f}}) == {"f": new_f}


def test_final_losses_skip_the_nan_padding_of_members_that_stopped_early():
    history = np.array([[3.0, 2.0, 1.0], [3.0, 2.5, np.nan]])
    np.testing.assert_array_equal(population.final_losses(history), [1.0, 2.5])
    np.testing.assert_array_equal(population.final_losses(np.array([4.0, 3.0])), [3.0])


@pytest.mark.parametrize("head", ["categorical_cross_entropy", "softmax_cross_entropy"])
def test_numpy_competitor_computes_jaxnn_gradients(head):
    """One NumPy step equals one step with jaxnn's hand-written rules (the seeds' column layout)."""
    split = iris_split()
    x, y = split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)
    last = "softmax" if head == "categorical_cross_entropy" else "identity"
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, last)))
    rng = np.random.default_rng(0)  # drawn with NumPy: eager jax.random would compile per shape
    sizes = (4, 10, 5, 3)
    params = [
        {"W": rng.normal(0, 0.5, (n_in, n_out)).astype(np.float32), "b": rng.normal(0, 0.1, n_out).astype(np.float32)}
        for n_in, n_out in itertools.pairwise(sizes)
    ]

    loss, grads = jax.jit(jaxnn.loss_and_grads, static_argnums=(0, 4))(model, params, x, y, head)
    expected = [(p["W"] - 0.1 * g["W"], p["b"] - 0.1 * g["b"]) for p, g in zip(params, grads, strict=True)]
    stepped, numpy_loss = numpy_net.train_step(
        numpy_net.from_batch_first(params), np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), np.float32(0.1), head
    )

    assert numpy_loss == pytest.approx(float(loss), rel=1e-5)
    for (w, b), (w_expected, b_expected) in zip(stepped, expected, strict=True):
        np.testing.assert_allclose(w, np.asarray(w_expected).T, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(b[:, 0], np.asarray(b_expected), rtol=1e-5, atol=1e-7)


def test_step_flops_are_six_per_weight_per_sample():
    # 1024 samples through 784·512 + 512·512 + 512·10 weights: forward 2, backward 4 FLOPs each.
    assert regime_d.step_flops((784, 512, 512, 10), 1024) == 6 * 1024 * (784 * 512 + 512 * 512 + 512 * 10)


def test_readme_block_is_replaced_and_its_markers_are_required(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold table\n{report.README_END}\noutro\n")
    report.update_readme(readme, "new table\n")
    assert readme.read_text() == f"intro\n{report.README_START}\nnew table\n{report.README_END}\noutro\n"

    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="has no generated block"):
        report.update_readme(readme, "new table\n")
    assert readme.read_text() == "no markers here\n"


def test_jaxnn_column_loop_and_autodiff_loop_agree():
    """The benchmark's jax.grad competitor is the same compiled loop: its result matches jaxnn's rules."""
    from jaxnn.engine import RunSpec, train_one

    split = iris_split()
    x, y = jnp.asarray(split.x_train, jnp.float32), jnp.asarray(one_hot(split.y_train, 3), jnp.float32)
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params = model.init(jax.random.key(0), 4)
    loss, optimizer = jaxnn.get_loss("categorical_cross_entropy"), jaxnn.gradient_descent(0.1)
    rules, autodiff = (
        train_one(
            RunSpec(model, loss, optimizer, batch_size=len(x), custom_rules=custom_rules),
            params=params,
            opt_state=optimizer.init(params),
            x=x,
            y=y,
            weight=jnp.ones(len(x)),
            key=jax.random.key(0),
            start_epoch=0,
            epochs=50,
        )
        for custom_rules in (True, False)
    )
    np.testing.assert_allclose(rules.history, autodiff.history, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(rules.params), jax.tree.leaves(autodiff.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# What the benchmark's speed rests on: compile once per configuration, and keep compilations on disk.


def test_fit_with_the_same_learning_rate_compiles_once():
    from jaxnn._loop import compiled_programs

    model = jaxnn.Sequential((jaxnn.Dense(3, "relu"), jaxnn.Dense(2, "softmax")))
    params = jax.tree.map(np.asarray, model.init(jax.random.key(1), 2))
    x, y = np.eye(4, 2, dtype=np.float32), one_hot(np.array([0, 1, 1, 0]), 2)
    before = compiled_programs()
    for epochs in (7, 8, 3000):  # a new gradient_descent(0.05) each call, equal to the others; any epochs
        jaxnn.fit(model, params, x, y, loss="categorical_cross_entropy", epochs=epochs, learning_rate=0.05)
    assert compiled_programs() == before + 1
    assert jaxnn.gradient_descent(0.05) == jaxnn.gradient_descent(0.05) != jaxnn.gradient_descent(0.5)


@pytest.mark.parametrize("minibatch", [False, True])
def test_plain_descent_carrying_folded_layers_equals_the_generic_loop(minibatch):
    """With gradient_descent the loop carries W̃ = [Wᵀ | b]; optax.sgd takes the generic path: same bits."""
    import optax

    split = iris_split()
    x, y = split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params = jax.tree.map(np.asarray, model.init(jax.random.key(0), 4))
    batches = {"batch_size": 32, "key": jax.random.key(2)} if minibatch else {}
    folded, generic = (
        jaxnn.fit(model, params, x, y, loss="categorical_cross_entropy", epochs=30, optimizer=optimizer, **batches)
        for optimizer in (jaxnn.gradient_descent(0.1), optax.sgd(0.1))
    )
    assert jax.tree.structure(folded.params) == jax.tree.structure(generic.params)
    for a, b in zip(jax.tree.leaves(folded.params), jax.tree.leaves(generic.params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(folded.history, generic.history)


def _python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from benchmarks/ with extra environment variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION", "JAXNN_"))}
    environment["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-c", code], env={**environment, **env}, cwd=BENCHMARKS, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("script", ["jaxnn", "NeuralNetClassifier"])
def test_the_fresh_process_scripts_fill_the_cache_they_are_given_and_only_that(tmp_path, script):
    """Regime b's 'cache warm' rows mean something only if the cold run filled the cache: the core script opts
    in (importing jaxnn turns nothing on), the estimator's fit turns it on itself; JAXNN_COMPILE_CACHE=0 (the
    driver's default for the other competitors) keeps both off."""
    code = regime_b.FRESH_PROCESS_SCRIPTS[script].format(epochs=3)
    cache = tmp_path / "cache"
    _python(code, JAXNN_CACHE_DIR=str(cache), JAXNN_COMPILE_CACHE="1")
    entries = [path.name for path in cache.iterdir()]
    assert sum(name.endswith("-cache") for name in entries) >= 2, entries  # initial weights and training loop
    off = tmp_path / "off"
    _python(code, JAXNN_CACHE_DIR=str(off), JAXNN_COMPILE_CACHE="0")
    assert not off.exists()


def test_regime_b_times_jaxnn_loaded_from_bytecode_as_installed():
    """Every jaxnn module has the bytecode a fresh interpreter looks for, also under PYTHONDONTWRITEBYTECODE."""
    orchestration = sys.modules["orchestration"]  # on sys.path by benchmarks/run.py, as regime b imports it
    orchestration.byte_compile_jaxnn()
    modules = sorted((ROOT / "jaxnn").rglob("*.py"))
    assert modules and all(Path(importlib.util.cache_from_source(str(path))).is_file() for path in modules)


def test_accelerator_benchmark_runs_on_the_cpu_when_asked(tmp_path):
    """Regime e's own script, in its smoke configuration on the CPU: every competitor is timed and the ratios
    that its targets read are there."""
    command = [sys.executable, str(BENCHMARKS / "accelerator.py"), "--quick", "--cpu", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("results-*-quick.json")
    results = json.loads(path.read_text())
    for entry in results["steps"]:
        assert {"jaxnn.train_step", "make_train_step (rows)", "make_train_step (columns)", "plain jax.jit step"} <= set(
            entry["seconds"]
        )
        assert all(seconds > 0 for seconds in entry["seconds"].values())
    assert results["fit"]["fit per step / plain step"] > 0 and results["iris"]["iris per epoch (s)"] > 0


def test_cache_bound_benchmark_times_both_bounds_for_each_directory_size():
    """benchmarks/cache_bound.py in its smallest form: a row per directory size, every time measured."""
    command = [sys.executable, str(BENCHMARKS / "cache_bound.py"), "--entries", "0", "3", "--programs", "2"]
    done = subprocess.run([*command, "--processes", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "3"]
    for row in rows:
        times = [float(part) for part in re.findall(r"(\d+(?:\.\d+)?) ms", row)]
        assert len(times) == 5 and times[1] > 0 and times[4] > 0  # the enable times may round to 0 ms
