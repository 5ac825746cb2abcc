"""Data-parallel training: rows split over a mesh, parameters replicated; 8 devices and 2 processes match 1.

The checks on 8 (virtual CPU) devices need a process started with them; their scripts run one after another in
one such process (the ``eight_devices`` fixture), each leaving what it saw in its ``report``."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

import jaxnn
from jaxnn import cli, distributed
from jaxnn.data import iris_split, one_hot
from jaxnn.distributed import is_host_port

ROOT = Path(__file__).resolve().parents[1]
MODEL = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
# Reductions split over devices add in another order: float32 results agree to rounding, not bitwise.
RTOL, ATOL = 1e-5, 1e-6


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment for a JAX process on the CPU: its XLA flags (the suite's compile flags,
    tests/conftest.py) without a device count, then ``extra``'s (each process here chooses its devices)."""
    flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split() if not flag.startswith(DEVICE_COUNT_FLAG)]
    flags += extra.pop("XLA_FLAGS", "").split()
    env = {name: value for name, value in os.environ.items() if name != "XLA_FLAGS"}
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1", **extra, "XLA_FLAGS": " ".join(flags)}


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / "checkpoint.npz", allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files if name != "meta"}


def _assert_close(actual: dict, expected: dict):
    assert sorted(actual) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=name)


# --- one process for the scripts on 8 devices ------------------------------------------------------------

# Runs scripts one after another in one fresh process and prints, as one JSON line, the ``report`` each leaves
# (None for one that only writes files).  Each script gets its arguments in sys.argv; a wrapper it puts on
# jaxnn.distributed.place or jaxnn.engine.train to record the calls ends with it.
RUN_SCRIPTS = textwrap.dedent(
    """
    import json, sys
    from jaxnn import distributed, engine

    reports = {}
    for name, (script, args) in json.loads(sys.argv[1]).items():
        sys.argv, unwrapped = [name, *args], (distributed.place, engine.train)
        namespace = {"__name__": "__main__"}
        exec(compile(script, name, "exec"), namespace)
        reports[name] = namespace.get("report")
        distributed.place, engine.train = unwrapped
    print(json.dumps(reports))
    """
)
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
EIGHT_DEVICE_FLAGS = f"{DEVICE_COUNT_FLAG}=8"


def _start(scripts: dict[str, tuple[str, list[str]]], **environment: str) -> subprocess.Popen:
    """A fresh Python that runs ``scripts`` (name: (source, arguments)) in turn, as :data:`RUN_SCRIPTS` says."""
    return subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPTS, json.dumps(scripts)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(**environment), cwd=ROOT,
    )  # fmt: skip


def _reports(processes: list[subprocess.Popen], timeout: float = 240) -> list[dict]:
    """Each process's reports, script by script, once all have ended (with status 0)."""
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory) -> tuple[dict, Path]:
    """The scripts that need 8 devices, in one process started with 8 CPU devices (one JAX start-up, not four):
    their reports by name, and the directory under which each script that writes files has one of its name."""
    out = tmp_path_factory.mktemp("eight-devices")
    scripts = {
        "rows-and-runs": (EIGHT_DEVICES, [str(out / "rows-and-runs")]),
        "population-split": (POPULATION_ON_EIGHT_DEVICES, []),
        "populations": (POPULATIONS, ["", "1", "0"]),
        "jaxnn-train-population": (POPULATION_RUN, [str(out / "jaxnn-train-population")]),
    }
    (reports,) = _reports([_start(scripts, XLA_FLAGS=EIGHT_DEVICE_FLAGS)], timeout=600)
    return reports, out


def test_padding_makes_rows_divisible():
    assert [distributed.padding_for(n, 8) for n in (1, 7, 8, 9, 133, 136)] == [7, 1, 0, 7, 3, 0]
    assert distributed.padding_for(5, 1) == 0


def test_rows_are_split_along_the_batch_axis():
    mesh = distributed.make_mesh()
    data = distributed.shard_rows(mesh, np.arange(10.0).reshape(5, 2), np.ones((5, 1)))
    assert data.n_samples == 5 and data.x.shape == (5, 2) and data.x.dtype == np.float32
    assert data.x.sharding.spec == PartitionSpec("batch") and data.weight.sharding.spec == PartitionSpec("batch")
    np.testing.assert_array_equal(data.weight, np.ones(5))
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        distributed.shard_rows(mesh, np.zeros((5, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"weight must have shape \(5,\)"):
        distributed.shard_rows(mesh, np.zeros((5, 2)), np.zeros((5, 1)), weight=np.ones(4))


def test_no_cluster_means_no_initialisation():
    assert distributed.initialize() is False
    with pytest.raises(ValueError, match="give its coordinator too"):
        distributed.initialize(num_processes=2, process_id=0)
    assert distributed.is_main_process()


@pytest.mark.parametrize(
    ("optimizer", "batch_size"), [(jaxnn.gradient_descent(0.1), None), (optax.adam(0.01), 16)], ids=["gd", "adam"]
)
def test_fit_on_a_mesh_of_one_device_is_jaxnn_fit(optimizer, batch_size):
    split = iris_split()
    targets = one_hot(split.y_train, 3)
    params = MODEL.init(jax.random.key(0), 4)
    key = jax.random.key(1)
    expected = jaxnn.fit(
        MODEL, params, split.x_train, targets, loss="categorical_cross_entropy", epochs=4, optimizer=optimizer,
        batch_size=batch_size, key=key, opt_state=optimizer.init(params), start_epoch=3,
    )  # fmt: skip
    mesh = distributed.make_mesh()
    result = jaxnn.fit(
        MODEL, params, split.x_train, targets, loss="categorical_cross_entropy", epochs=4, optimizer=optimizer,
        batch_size=batch_size, key=key, opt_state=optimizer.init(params), start_epoch=3, mesh=mesh,
    )  # fmt: skip
    for got, want in zip(jax.tree.leaves(result), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(got, np.asarray(want))


@pytest.mark.parametrize("axes", [("rows",), ("members", "batch")], ids=["other-name", "2-D"])
def test_fit_takes_any_mesh_as_fit_many_does(axes):
    """jaxnn.fit splits the rows over the devices of any mesh (fit_many takes any mesh's devices too); a mesh
    without the axis "batch" raised JAX's "Resource axis: batch of P('batch',) is not found in mesh"."""
    split = iris_split()
    targets = one_hot(split.y_train, 3)
    params = MODEL.init(jax.random.key(0), 4)
    options = dict(loss="categorical_cross_entropy", epochs=3, optimizer="adam", batch_size=16, key=jax.random.key(1))
    expected = jaxnn.fit(MODEL, params, split.x_train, targets, **options)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]).reshape((1,) * len(axes)), axes)
    result = jaxnn.fit(MODEL, params, split.x_train, targets, mesh=mesh, **options)
    for got, want in zip(jax.tree.leaves(result), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(got, np.asarray(want))


def test_a_population_of_one_with_its_own_data_trains_on_a_mesh():
    """fit_many with P = 1 and data given per member (a leading member axis of 1) on a mesh: that member's data,
    as without the mesh (it raised "a mesh trains one network on shared data")."""
    split = iris_split()
    x, targets = split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)
    params = MODEL.init_many(jax.random.split(jax.random.key(0), 1), 4)
    options = {
        "loss": "categorical_cross_entropy", "epochs": 4, "learning_rate": 0.1,
        "weight": np.linspace(0.5, 1.5, len(x), dtype=np.float32)[None],
        "validation": (x[None, :20], targets[None, :20]), "score": lambda outputs, y: -jnp.mean((outputs - y) ** 2),
        "stopping": jaxnn.Stopping(),
    }  # fmt: skip
    expected = jaxnn.fit_many(MODEL, params, x[None], targets[None], **options)
    result = jaxnn.fit_many(MODEL, params, x[None], targets[None], mesh=distributed.make_mesh(), **options)
    for got, want in zip(jax.tree.leaves(result), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


EIGHT_DEVICES = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    import optax
    import jaxnn
    from jaxnn import cli, distributed

    out = sys.argv[1]
    mesh = distributed.make_mesh()
    data = distributed.shard_rows(mesh, np.arange(266.0).reshape(133, 2), np.ones((133, 1)))
    shards = sorted(data.x.addressable_shards, key=lambda shard: shard.index[0].start)
    report = {
        "devices": len(jax.devices()),
        "rows": data.x.shape[0],
        "rows_per_device": [shard.data.shape[0] for shard in shards],
        "distinct_devices": len({shard.device for shard in shards}),
        "first_rows": [float(shard.data[0, 0]) for shard in shards],
        "weights": np.asarray(data.weight).tolist(),
    }
    # jaxnn-train's full-batch run on the mesh (its minibatch runs on a mesh: POPULATION_RUN, and fit's below)
    for devices in (1, 8):
        args = ["--dataset", "wine", "--epochs", "20", "--devices", str(devices), "--quiet"]
        assert cli.main([*args, "--out", f"{out}/wine-{devices}"]) == 0
    # Padded minibatches: 1629 rows (above 1625, where jax.random.permutation would sort twice) padded to
    # 1632 on 8 devices; in batches of 7 the 3 padding rows even make a 234th batch next to the 233 real ones.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1629, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.argmax(x[:, :3], axis=1)]
    model = jaxnn.Sequential((jaxnn.Dense(8, "relu"), jaxnn.Dense(3, "softmax")))
    optimizer = optax.adam(0.01)
    params = model.init(jax.random.key(0), 4)
    for devices in (1, 8):
        mesh = distributed.make_mesh(jax.devices()[:devices])
        result = jaxnn.fit(
            model, params, x, y, loss="categorical_cross_entropy", epochs=2, optimizer=optimizer,
            opt_state=optimizer.init(params), key=jax.random.key(1), batch_size=7, mesh=mesh,
        )
        report[f"padded-minibatch-{devices}"] = [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(result)]
    """
)


@pytest.mark.slow
def test_eight_devices_train_like_one(eight_devices):
    reports, out = eight_devices
    report, runs = reports["rows-and-runs"], out / "rows-and-runs"
    # 133 rows padded to 136 = 8 × 17, one block of rows per device, the 3 padding rows weigh 0
    assert report["devices"] == 8 and report["rows"] == 136
    assert report["rows_per_device"] == [17] * 8 and report["distinct_devices"] == 8
    assert report["first_rows"] == [34.0 * i for i in range(8)]
    assert report["weights"] == [1.0] * 133 + [0.0] * 3
    one, eight = runs / "wine-1", runs / "wine-8"  # 133 training rows, padded to 136
    _assert_close(_arrays(eight), _arrays(one))
    metrics = json.loads((eight / "metrics.json").read_text())
    assert metrics["devices"] == 8 and metrics["epochs"] == json.loads((one / "metrics.json").read_text())["epochs"]
    # A padded minibatch run shuffles the real rows as the unpadded one does: same batches, same result.
    one, eight = report["padded-minibatch-1"], report["padded-minibatch-8"]
    assert len(one) == len(eight)
    for got, want in zip(eight, one, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


TWO_PROCESS_RUN = ("--optimizer", "adam", "--batch-size", "16", "--epochs", "5")


def _two_jaxnn_trains(arguments) -> list[tuple[int, str, str]]:
    """``(exit status, stdout, stderr)`` of two jaxnn-train processes joined on 127.0.0.1, process ``rank`` given
    ``arguments(rank)`` beside the coordinator and the cluster's size."""
    hosts = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxnn.cli", *hosts, "--process-id", str(rank), *arguments(rank)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
            cwd=ROOT,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [process.communicate(timeout=240) for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs, strict=True)]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    runs = _two_jaxnn_trains(lambda rank: [*TWO_PROCESS_RUN, "--out", str(tmp_path / f"process-{rank}")])
    for status, _, err in runs:
        assert status == 0, err
    assert "test accuracy" in runs[0][1] and "epoch" not in runs[1][1] and "test" not in runs[1][1]
    assert not (tmp_path / "process-1").exists()  # ... and writes files
    metrics = json.loads((tmp_path / "process-0" / "metrics.json").read_text())
    assert metrics["devices"] == 2 and metrics["processes"] == 2

    assert cli.main([*TWO_PROCESS_RUN, "--quiet", "--out", str(tmp_path / "one")]) == 0
    _assert_close(_arrays(tmp_path / "process-0"), _arrays(tmp_path / "one"))


@pytest.mark.slow
def test_processes_started_with_other_options_are_refused_in_one_line_naming_them(tmp_path):
    """Other --seed values ended in a 40-line traceback of the data check (exit 1), and a process given another
    --num-processes joined a run of another size unnoticed: the commands are compared once the processes join."""
    runs = _two_jaxnn_trains(lambda rank: ["--epochs", "2", "--seed", str(rank), "--out", str(tmp_path)])
    for status, _, err in runs:
        assert status == 2, err
        assert err.splitlines() == [
            "jaxnn-train: error: process 1 was started with another --seed than process 0; start every process with "
            "the same options (only --process-id, --out, --quiet and paths may differ) (see jaxnn-train --help)"
        ]
    assert not list(tmp_path.iterdir())


POPULATION_ON_EIGHT_DEVICES = textwrap.dedent(
    """
    import jax
    import numpy as np
    import jaxnn
    from jaxnn import distributed
    from jaxnn.data import iris_split, one_hot

    placed = []
    real_place = distributed.place

    def recording(mesh, tree, *axes):
        out = real_place(mesh, tree, *axes)
        shards = [sorted(shard.data.shape[0] for shard in leaf.addressable_shards) for leaf in jax.tree.leaves(out)]
        placed.append((axes, shards))
        return out

    distributed.place = recording
    split = iris_split()
    x, y = split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)
    model = jaxnn.Sequential((jaxnn.Dense(8, "relu"), jaxnn.Dense(3, "identity")))
    report = {"devices": len(jax.devices())}
    for n in (64, 2, 7):
        placed.clear()
        params = model.init_many(jax.random.split(jax.random.key(0), n), 4)
        common = dict(
            loss="softmax_cross_entropy", epochs=30, optimizer="adam", batch_size=16,
            learning_rate=np.logspace(-3, -1.5, n).astype(np.float32), key=jax.random.split(jax.random.key(1), n),
        )
        one = jaxnn.fit_many(model, params, x, y, **common)
        many = jaxnn.fit_many(model, params, x, y, mesh=distributed.make_mesh(), **common)
        report[n] = {
            "members_per_device": placed[0][1][0],
            "x_rows_per_device": [shards for axes, leaves in placed if axes == ("batch",) for shards in leaves][0],
            "placements": len(placed),
            "one": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves((one.params, one.history))],
            "many": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves((many.params, many.history))],
        }
    placed.clear()  # the 7 members again, 3 to a compiled program: three programs of 2 groups × 4 row shards
    grouped = jaxnn.fit_many(model, params, x, y, mesh=distributed.make_mesh(), group_size=3, **common)
    report["7 by 3"] = {
        "members_per_device": [leaves[0] for axes, leaves in placed if axes == ("members",)],
        "placements": len(placed),
        "many": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves((grouped.params, grouped.history))],
    }
    """
)


def test_a_population_split_over_eight_devices_equals_one_device_member_by_member(eight_devices):
    """fit_many(mesh=...) puts 8 of 64 members on each of 8 devices, in one program; with 2 members, each member
    on 4 devices with a quarter of the rows each.  Every member ends as on one device, to float32 rounding (a
    batched product, or a sum over split rows, may add in another order)."""
    report = eight_devices[0]["population-split"]
    assert report["devices"] == 8
    assert report["64"]["members_per_device"] == [8] * 8 and report["64"]["x_rows_per_device"] == [112] * 8
    assert report["2"]["members_per_device"] == [1] * 8 and report["2"]["x_rows_per_device"] == [28] * 8
    for size in ("64", "2", "7"):
        for got, want in zip(report[size]["many"], report[size]["one"], strict=True):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_group_size_splits_a_population_on_a_mesh_into_programs_of_that_many_members(eight_devices):
    """``group_size`` was ignored with a mesh (every member in one program, memory growing with P); 7 members in
    groups of 3 on 8 devices now run as three programs (the last wraps round to keep one shape), each with its
    3 members (and one repeated) on 2 groups of 4 devices, and end as on one device."""
    report = eight_devices[0]["population-split"]
    grouped, whole = report["7 by 3"], report["7"]
    assert grouped["placements"] == 3 * whole["placements"]
    assert grouped["members_per_device"] == [[2] * 8] * len(grouped["members_per_device"])
    for got, want in zip(grouped["many"], whole["one"], strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


POPULATIONS = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.model_selection import StratifiedKFold
    import jaxnn
    from jaxnn import NeuralNetClassifier, distributed, engine
    from jaxnn.data import iris_split, one_hot
    from jaxnn.model_selection import GridSearchCV

    address, n_processes, rank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if n_processes > 1:
        distributed.initialize(address, n_processes, rank)
    train, meshes = engine.train, []

    def recording(*args, mesh=None, **kwargs):  # the devices each of the search's populations trains on
        meshes.append(0 if mesh is None else mesh.devices.size)
        return train(*args, mesh=mesh, **kwargs)

    # fit_many on every device there is (of this process, or of every process)
    split = iris_split()
    x, y = split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)
    model = jaxnn.Sequential((jaxnn.Dense(8, "relu"), jaxnn.Dense(3, "identity")))
    params = model.init_many(jax.random.split(jax.random.key(0), 6), 4)
    result = jaxnn.fit_many(
        model, params, x, y, loss="softmax_cross_entropy", epochs=20, optimizer="adam", batch_size=16,
        learning_rate=np.logspace(-3, -1.5, 6).astype(np.float32), key=jax.random.split(jax.random.key(1), 6),
        mesh=distributed.make_mesh(),
    )
    report = {"fit_many": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves((result.params, result.history))]}

    # a search: the estimators' populations spread over every device without being asked
    engine.train = recording
    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    search = GridSearchCV(
        NeuralNetClassifier((8,), solver="adam", max_iter=20, random_state=0),
        {"learning_rate_init": [0.003, 0.01, 0.03], "alpha": [1e-4, 1e-2]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(x, y)
    report |= {name: np.asarray(search.cv_results_[name]).tolist() for name in ("mean_test_score", "rank_test_score")}
    report |= {"refit": search.best_estimator_.predict_proba(x[:10]).tolist(), "meshes": meshes}
    """
)


def _populations(address: str, n_processes: int, rank: int) -> subprocess.Popen:
    """:data:`POPULATIONS` alone in a fresh process (of ``n_processes``, with one device each)."""
    return _start({"populations": (POPULATIONS, [address, str(n_processes), str(rank)])})


@pytest.fixture(scope="module")
def one_device():
    """The populations of :data:`POPULATIONS` in one process with one device: the reference."""
    (reports,) = _reports([_populations("", 1, 0)])
    report = reports["populations"]
    assert report["meshes"] == [0, 0]  # the candidates × folds, then the refit: one device, no mesh
    return report


def _assert_same_populations(report: dict, reference: dict) -> None:
    """fit_many's members to float32 rounding (a sum over split rows, or a batched product, may add in another
    order), the search's scores and ranks, and its refit network's probabilities."""
    for got, want in zip(report["fit_many"], reference["fit_many"], strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(report["mean_test_score"], reference["mean_test_score"], rtol=1e-6)
    assert report["rank_test_score"] == reference["rank_test_score"]
    np.testing.assert_allclose(report["refit"], reference["refit"], rtol=2e-5, atol=2e-6)


def test_populations_on_eight_devices_give_the_one_device_results(eight_devices, one_device):
    """With several local devices, fit_many(mesh=...) and the estimators' populations (a search's candidates ×
    folds) split their members across them; members, cv_results_ and the refit are the one-device ones."""
    report = eight_devices[0]["populations"]
    assert report["meshes"] == [8, 0]  # the population over the 8 devices; the refit alone, as ever
    _assert_same_populations(report, one_device)


@pytest.mark.slow
def test_populations_over_two_processes_give_the_one_process_results(one_device):
    """After jaxnn.distributed.initialize, fit_many(mesh=...) puts 3 of 6 members on each process's device and the
    estimators' populations spread over both processes' devices; every process gets every member's result, the
    search's cv_results_ and its refit network, as one process does."""
    address = f"127.0.0.1:{_free_port()}"
    for reports in _reports([_populations(address, 2, rank) for rank in (0, 1)]):
        report = reports["populations"]
        assert report["meshes"] == [2, 0]
        _assert_same_populations(report, one_device)


# Every process passes fit_many the same members, then other learning rates, then other data, over both processes.
DIFFERING_PROCESSES = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    import jaxnn
    from jaxnn import distributed
    from jaxnn.data import iris_split, one_hot

    address, rank = sys.argv[1], int(sys.argv[2])
    distributed.initialize(address, 2, rank)
    split = iris_split()
    x, y = split.x_train.astype(np.float32), one_hot(split.y_train, 3).astype(np.float32)
    model = jaxnn.Sequential((jaxnn.Dense(8, "relu"), jaxnn.Dense(3, "identity")))
    params, rates = model.init_many(jax.random.split(jax.random.key(0), 4), 4), np.full(4, 0.01, np.float32)

    def outcome(learning_rate, x):
        try:
            jaxnn.fit_many(
                model, params, x, y, loss="softmax_cross_entropy", epochs=2, optimizer="adam", batch_size=16,
                learning_rate=learning_rate, key=jax.random.split(jax.random.key(1), 4), mesh=distributed.make_mesh(),
            )
        except ValueError as error:
            return str(error)
        return "trained"

    report = {"same": outcome(rates, x), "rates": outcome(rates * (1 + rank), x), "data": outcome(rates, x + rank)}
    """
)


@pytest.mark.slow
def test_processes_given_other_members_or_data_are_refused_in_every_process():
    """Each process fills its own devices' share of the population's arrays from its own copy: process 1's other
    learning rates (or other rows) trained its half of the members, and every process got that mixture back as
    its result.  The processes now compare digests of what they were given before training, and refuse."""
    address = f"127.0.0.1:{_free_port()}"
    processes = [_start({"differing": (DIFFERING_PROCESSES, [address, str(rank)])}) for rank in (0, 1)]
    for reports in _reports(processes):
        report = reports["differing"]
        assert report["same"] == "trained", report
        assert report["rates"].startswith("training on several hosts: process 1 passed other members than process 0")
        assert report["data"].startswith("training on several hosts: process 1 passed other data than process 0")
        assert "every process must pass the same" in report["data"]


POPULATION_RUN = textwrap.dedent(
    """
    import sys
    from jaxnn import cli

    out = sys.argv[1]
    for devices in (1, 8):
        args = ["--lr", "0.01,0.03,0.1", "--seed", "0,1", "--epochs", "30", "--optimizer", "adam", "--batch-size", "16"]
        assert cli.main([*args, "--devices", str(devices), "--quiet", "--out", f"{out}/{devices}"]) == 0
    """
)


def test_a_jaxnn_train_population_over_eight_devices_equals_one_device(eight_devices):
    """A --lr/--seed list run splits its 6 members across 8 devices (jaxnn.fit_many with the run's mesh); the best
    member's checkpoint equals the one-device run's to float32 rounding.  The rates stop at 0.1: adam at 0.3 on
    minibatches of 16 is chaotic: the two runs' rounding (8 devices sum in another order), 1e-5 after one epoch,
    grew to 0.2 in the weights within 30 epochs."""
    runs = eight_devices[1] / "jaxnn-train-population"
    one, eight = _arrays(runs / "1"), _arrays(runs / "8")
    _assert_close(eight, one)
    assert (runs / "8" / "population.csv").read_text().count("\n") == 7  # header and six members


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"coordinator": 1234, "num_processes": 2, "process_id": 0}, TypeError, "coordinator must be a string"),
        ({"coordinator": "host0", "num_processes": 2, "process_id": 0}, ValueError, "'host:port' of process 0"),
        ({"coordinator": "host0:http", "num_processes": 2, "process_id": 0}, ValueError, "port in 1..65535"),
        # a scheme or a space passed, and JAX's coordinator client waited minutes for the address
        ({"coordinator": "http://host0:1234", "num_processes": 2, "process_id": 0}, ValueError, "no scheme, path"),
        ({"coordinator": "host0:1234 ", "num_processes": 2, "process_id": 0}, ValueError, "'host:port' of process 0"),
        ({"coordinator": "::1:1234", "num_processes": 2, "process_id": 0}, ValueError, r"'\[::1\]:1234'"),
        ({"coordinator": "host0:1234", "num_processes": 0, "process_id": 0}, ValueError, "num_processes must be a"),
        ({"coordinator": "host0:1234", "num_processes": 2, "process_id": 2}, ValueError, r"process_id .*\[0, 2\)"),
        ({"coordinator": "host0:1234", "num_processes": 2.0}, ValueError, "num_processes must be a positive integer"),
        ({"auto": "no"}, TypeError, "auto must be True or False, got 'no'"),  # it joined whatever JAX detected
    ],
)
def test_a_bad_cluster_description_is_refused_before_any_setting_changes(arguments, error, message):
    """An int or a port-less coordinator failed inside JAX (AttributeError, IndexError)."""
    before = jax.config.jax_cpu_collectives_implementation
    with pytest.raises(error, match=message):
        distributed.initialize(**arguments)
    assert jax.config.jax_cpu_collectives_implementation == before


UNDESCRIBED_CLUSTERS = textwrap.dedent(
    """
    import jax
    from jaxnn import distributed

    jax.config.update("jax_cpu_collectives_implementation", "mpi")  # not jaxnn's gloo: a failed call restores it
    report = {}
    for name, arguments in {
        "coordinator alone": {"coordinator": "127.0.0.1:1234"},
        "no process_id": {"coordinator": "127.0.0.1:1234", "num_processes": 2},
        "auto, no cluster": {"auto": True},
    }.items():
        try:
            distributed.initialize(**arguments)
        except ValueError as error:
            report[name] = str(error)
    report["collectives"] = jax.config.jax_cpu_collectives_implementation
    """
)


def test_a_cluster_neither_described_nor_detected_is_refused_in_jaxnn_words():
    """A coordinator without num_processes (outside Slurm and Open MPI) ended in JAX's "Number of processes must be
    defined."; it runs in a fresh process, as initialize must come before any computation (this one's has run)."""
    manager = ("SLURM_", "OMPI_", "PMI_", "JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "KUBERNETES_")
    environment = {name: value for name, value in _environment().items() if not name.startswith(manager)}
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPTS, json.dumps({"undescribed": (UNDESCRIBED_CLUSTERS, [])})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=ROOT,
    )  # fmt: skip
    (reports,) = _reports([process], timeout=60)
    report = reports["undescribed"]
    advice = "pass coordinator='host:port' of process 0, num_processes and process_id"
    for name, unknown in (
        ("coordinator alone", "the number of processes"),
        ("no process_id", "this process's id"),
        ("auto, no cluster", "the coordinator's address"),
    ):
        assert report[name].startswith(f"initialize could not tell {unknown}: {advice}"), report[name]
        assert "or run under a cluster manager JAX reads them from (Slurm, Open MPI" in report[name]
    assert report["collectives"] == "mpi"


@pytest.mark.parametrize(
    "address", ["host0:1234", "10.0.0.7:8476", "my-host.example.com:1", "[::1]:1234", "[fe80::1%eth0]:80"]
)
def test_host_port_addresses_pass_the_coordinator_check(address):
    assert is_host_port(address)


def test_make_mesh_needs_devices():
    with pytest.raises(TypeError, match=r"devices must be JAX devices, e.g. jax.devices\(\)"):
        distributed.make_mesh([0, 1])  # JAX: "'int' object has no attribute 'id'"
    with pytest.raises(TypeError, match=r"a list of JAX devices; for the first 2: jax.devices\(\)\[:2\]"):
        distributed.make_mesh(2)  # jaxnn-train's --devices count; Python said "'int' object is not iterable"
    with pytest.raises(TypeError, match=r"for the first 2: jax.devices\(\)\[:2\]"):
        distributed.make_mesh(np.int64(2))


@pytest.mark.parametrize("devices", [True, 2.5, np.array(3)], ids=["bool", "float", "0-d array"])
def test_a_mesh_of_something_not_a_list_names_devices(devices):
    with pytest.raises(TypeError, match=r"devices must be a list of JAX devices"):
        distributed.make_mesh(devices)  # had been "'bool' object is not iterable", "iteration over a 0-d array"


def test_a_mesh_of_no_devices_is_not_advised_as_the_first_zero():
    with pytest.raises(TypeError, match=r"devices must be a list of JAX devices \(at least one\)$"):
        distributed.make_mesh(0)  # had advised jax.devices()[:0], which make_mesh then refused


def test_process_0s_port_in_use_is_named_before_jax_binds_it():
    """JAX's coordinator serves on [::]:port; with the port taken it said "Failed to start RPC server", or crashed
    (SIGSEGV) in some runs.  Refused before JAX is asked, so this process's JAX is untouched."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ValueError, match=rf"coordinator '127.0.0.1:{port}': port {port} is in use on this host"):
            distributed.initialize(f"127.0.0.1:{port}", 2, 0)
    assert not jax.distributed.is_initialized()


JOINED_TWICE = textwrap.dedent(
    """
    import sys
    from jaxnn import distributed

    address, size, rank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    report = {}
    try:
        report["first"] = distributed.initialize(address, size, rank)
    except ValueError as error:
        report["first"] = str(error)
    try:
        distributed.initialize(address, size, rank)
    except RuntimeError as error:
        report["second"] = str(error)
    """
)


def test_a_second_initialize_says_so():
    """JAX's own answer blamed "JAX calls that might initialise the XLA backend" (initialize's own, by then)."""
    (reports,) = _reports([_start({"twice": (JOINED_TWICE, [f"127.0.0.1:{_free_port()}", "1", "0"])})], timeout=120)
    assert reports["twice"] == {
        "first": False,
        "second": "initialize was already called in this process: a process joins one run, once",
    }


@pytest.mark.slow
def test_processes_given_other_process_counts_are_refused_in_every_process():
    """JAX takes the coordinator's count: a process told 3 joined a 2-process run unnoticed (jaxnn-train compared
    its options; the library did not)."""
    address = f"127.0.0.1:{_free_port()}"
    processes = [_start({"twice": (JOINED_TWICE, [address, str(size), str(rank)])}) for rank, size in ((0, 2), (1, 3))]
    for reports in _reports(processes, timeout=120):
        assert reports["twice"]["first"] == (
            "process 1 was given num_processes=3, but the run has 2 processes (the coordinator's count); give "
            "every process the same num_processes"
        )


def test_a_mesh_names_each_device_once():
    # fit on make_mesh([d, d]) failed deep in XLA ("Number of processed shards does not match")
    device = jax.devices()[0]
    with pytest.raises(ValueError, match=r"make_mesh needs each device once, got .* more than once"):
        distributed.make_mesh([device, device])
    with pytest.raises(TypeError, match=r"devices must be a list of JAX devices"):
        distributed.make_mesh(device)
