"""The mesh of data-parallel training on JAX's own runtime: devices, processes, sharded rows, host copies.

The picture.  All devices taking part — the local ones, or those of every host after
:func:`initialize` — form a 1-D :class:`jax.sharding.Mesh` with the axis ``"batch"``.  The training
rows are split along it (``PartitionSpec("batch")``: with ``d`` devices each holds ``n/d`` rows);
the parameters and the optimiser state are replicated (``PartitionSpec()``).  jaxnn's compiled
training loop then runs on these global arrays: ``jax.jit`` partitions it (GSPMD), each device
computes its rows' share of the loss and gradients, and XLA inserts the all-reduce that sums the
shares, so every device applies the same update.  The result equals single-device training up to
the order of floating-point sums.

Padding.  A mesh of ``d`` devices needs a row count divisible by ``d``; the data is padded with
up to ``d − 1`` rows of weight 0, which the losses mask out (a weighted mean over weights that sum
to the real row count).  With minibatches, ``jaxnn.fit`` shuffles the padding rows behind the
real ones, and the order of the real rows depends only on the key, the epoch and their positions,
not on how many padding rows follow (see ``jaxnn._loop``): a padded run fills its
batches with the same real rows as an unpadded one, and the batches that hold only padding change
nothing.  So full-batch and minibatch runs alike equal single-device training up to the order of
floating-point sums.

Several hosts.  Start the same program on every host and call :func:`initialize` first, before
any JAX computation; every process must load the same data (the arrays are built with
``jax.make_array_from_callback``, each process filling its own devices' rows; the engine compares digests of
what each process passed, :func:`refuse_differing_processes`).  One network's results are fully replicated, so
every process can read them with :func:`to_host` (a population's come back split by member, and the engine
gathers them on every host); only process 0 should write files
(:func:`is_main_process`).  On CPU the collectives run over gloo.

Example (8 CPU devices in one process: ``XLA_FLAGS=--xla_force_host_platform_device_count=8``)::

    mesh = make_mesh()                                 # all devices
    result = jaxnn.fit(model, params, x_train, one_hot_train, loss="categorical_cross_entropy",
                       epochs=100, mesh=mesh)           # the rows padded and split across the mesh
"""

from __future__ import annotations

import errno
import hashlib
import numbers
import re
import socket
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnn._checks import UINT32_LIMIT, int_in_range, positive_int

__all__ = [
    "BATCH_AXIS",
    "MEMBER_AXIS",
    "ProcessesDiffer",
    "ShardedData",
    "initialize",
    "is_host_port",
    "is_main_process",
    "make_mesh",
    "padding_for",
    "place",
    "place_keys",
    "population_mesh",
    "refuse_differing_processes",
    "replicate",
    "shard_rows",
    "to_host",
]

BATCH_AXIS = "batch"  # the mesh axis training rows are split along
MEMBER_AXIS = "members"  # the mesh axis a population's members are split along


HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # a host name or an IPv4 address
IPV6_ADDRESS = re.compile(r"\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?\]")  # in brackets: [::1], [fe80::1%eth0]


def is_host_port(text) -> bool:
    """Whether ``text`` is ``HOST:PORT``: a host name or IPv4 address (letters, digits, ``.``, ``-``, ``_``) or an
    IPv6 address in brackets (``[::1]``), then a port from 1 to 65535.  A scheme (``http://``), a path or a space
    is not (JAX's coordinator client would wait minutes for such an address before failing)."""
    if not isinstance(text, str):
        return False
    host, _, port = text.rpartition(":")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        return False
    return HOST_NAME.fullmatch(host) is not None or IPV6_ADDRESS.fullmatch(host) is not None


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Join JAX's distributed runtime when asked to; returns True when this is a multi-process run.

    With ``coordinator`` (``"host:port"`` of process 0) the cluster is described explicitly;
    ``num_processes`` and ``process_id`` may be left out where JAX can read them from the
    environment (Slurm, Open MPI).  With ``auto=True`` and no coordinator, JAX detects everything
    itself (TPU pods, Slurm, …).  With neither, nothing happens: a single-process run.

    Must be called before any JAX computation.  CPU collectives are switched to gloo so that CPU
    devices of several processes can reduce across each other (and back, when the call fails).

    Raises ValueError (TypeError for a wrong type) for a malformed description, and a ValueError saying to pass
    ``num_processes`` and ``process_id`` (or to run under a cluster manager) when neither they nor the
    environment tell JAX the cluster, e.g. a ``coordinator`` alone outside Slurm and Open MPI; a ValueError in
    process 0 when the coordinator's port is in use on its host, and in every process after joining when one was
    given another ``num_processes`` than the run has; a RuntimeError when called a second time in a process.
    """
    if not isinstance(auto, bool):  # a truthy 'no' would join whatever cluster JAX detects
        raise TypeError(f"auto must be True or False, got {auto!r:.80}")
    if coordinator is None and not auto:
        if num_processes is not None or process_id is not None:
            raise ValueError("num_processes and process_id describe a cluster: give its coordinator too")
        return False
    _check_cluster(coordinator, num_processes, process_id)  # before any setting changes
    if jax.distributed.is_initialized():  # JAX's own check comes after one that blames "JAX calls" for it
        raise RuntimeError("initialize was already called in this process: a process joins one run, once")
    if coordinator is not None and process_id == 0:
        _refuse_port_in_use(coordinator)
    before = jax.config.jax_cpu_collectives_implementation
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    except BaseException as error:
        jax.config.update("jax_cpu_collectives_implementation", before)  # a failed call changes no setting
        missing = _undescribed(error)
        if missing is None:
            raise
        raise ValueError(
            f"initialize could not tell {missing}: pass coordinator='host:port' of process 0, num_processes and "
            "process_id (e.g. initialize('host0:1234', num_processes=2, process_id=0) in the first process), or "
            "run under a cluster manager JAX reads them from (Slurm, Open MPI, Kubernetes, a TPU pod)"
        ) from error
    _refuse_differing_counts(num_processes)
    return jax.process_count() > 1


def _refuse_port_in_use(coordinator: str) -> None:
    """In process 0, which serves the coordinator on every address of its host (``[::]:port``), a ValueError when
    that port is taken: JAX says "Failed to start RPC server", when it does not crash (SIGSEGV) instead."""
    port = int(coordinator.rpartition(":")[2])
    for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to serve on
                probe.bind((address, port))
            return
        except OSError as error:  # anything but a taken port (no IPv6 here, say): try IPv4, then leave it to JAX
            if error.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"coordinator {coordinator!r}: port {port} is in use on this host (process 0 serves the run "
                    "there); choose a free port, the same in every process's coordinator"
                ) from None


def _refuse_differing_counts(num_processes: int | None) -> None:
    """After joining, a ValueError in every process when one was given a ``num_processes`` other than the run's
    (JAX takes the coordinator's and says nothing): each process's own count is gathered and compared."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils  # only multi-process runs get here

    count = jax.process_count()
    claimed = np.asarray(multihost_utils.process_allgather(np.int64(-1 if num_processes is None else num_processes)))
    differing = [(rank, int(told)) for rank, told in enumerate(claimed.ravel()) if told not in (-1, count)]
    if differing:
        told = ", ".join(f"process {rank} was given num_processes={claim}" for rank, claim in differing)
        raise ValueError(
            f"{told}, but the run has {count} processes (the coordinator's count); give every process the same "
            "num_processes"
        )


# JAX's ValueErrors (jax._src.distributed) when neither the arguments nor a cluster manager it detects gave a value:
# checked before JAX connects anywhere, so reading them is safe; what each leaves unknown, in the user's words
_JAX_UNDESCRIBED = {
    "coordinator_address should be defined": "the coordinator's address",
    "Number of processes must be defined": "the number of processes",
    "The process id of the current process must be defined": "this process's id",
}


def _undescribed(error: BaseException) -> str | None:
    """What JAX's ``error`` says it could not learn of the cluster, or None for any other error."""
    if type(error) is not ValueError:
        return None
    text = str(error)
    return next((what for message, what in _JAX_UNDESCRIBED.items() if text.startswith(message)), None)


def _check_cluster(coordinator, num_processes, process_id) -> None:
    """The cluster's description, checked here: JAX's own checks raise AttributeError or IndexError for a
    coordinator that is not ``"host:port"``, and wait minutes on one with a scheme or a space."""
    if coordinator is not None:
        if not isinstance(coordinator, str):
            raise TypeError(f"coordinator must be a string 'host:port', e.g. 'host0:1234', got {coordinator!r:.80}")
        if not is_host_port(coordinator):
            raise ValueError(
                f"coordinator must be 'host:port' of process 0 with a port in 1..65535, e.g. 'host0:1234' or "
                f"'[::1]:1234' (no scheme, path or spaces); got {coordinator!r:.80}"
            )
    if num_processes is not None:
        positive_int(num_processes, "num_processes")
    if process_id is not None:
        int_in_range(process_id, "process_id", 0, num_processes if num_processes is not None else UINT32_LIMIT)


def is_main_process() -> bool:
    """True in process 0, the one that writes files and prints."""
    return jax.process_index() == 0


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh with the axis ``"batch"`` over ``devices`` (default: every device of every process)."""
    if isinstance(devices, jax.Device):
        raise TypeError(f"devices must be a list of JAX devices, e.g. [{devices!r}] or jax.devices(), got one device")
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):  # jaxnn-train's --devices counts
        first = f"; for the first {devices}: jax.devices()[:{devices}]" if devices > 0 else " (at least one)"
        raise TypeError(f"devices must be a list of JAX devices{first}")
    try:
        devices = jax.devices() if devices is None else list(devices)
    except TypeError:  # not iterable: True, 2.5, a 0-d array
        raise TypeError(f"devices must be a list of JAX devices, e.g. jax.devices(), got {devices!r:.80}") from None
    if not devices:
        raise ValueError("make_mesh needs at least one device")
    if not all(isinstance(device, jax.Device) for device in devices):  # JAX: "'int' object has no attribute 'id'"
        raise TypeError(f"devices must be JAX devices, e.g. jax.devices() or jax.local_devices(), got {devices!r:.80}")
    repeated = sorted({str(device) for device in devices if devices.count(device) > 1})
    if repeated:
        raise ValueError(f"make_mesh needs each device once, got {', '.join(repeated)} more than once")
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def padding_for(n_samples: int, n_devices: int) -> int:
    """Rows to add so that ``n_samples`` splits evenly over ``n_devices``: ``(−n) mod d``."""
    return -n_samples % n_devices


class ShardedData(NamedTuple):
    """Training rows split across a mesh; ``weight`` is 0 on the padding rows at the end."""

    x: jax.Array
    y: jax.Array
    weight: jax.Array
    n_samples: int  # real rows, without the padding


def _global_array(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from the same host array in every process; each process fills its own devices."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def shard_rows(mesh: Mesh, x, y, weight=None, dtype=np.float32) -> ShardedData:
    """Pad ``x``, ``y`` (and per-sample ``weight``, default 1) with weight-0 rows and split them over the mesh.

    Every process must pass the same arrays.
    """
    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"x and y must be 2-D with the same, non-zero number of rows; got shapes {x.shape} and {y.shape}"
        )
    n_samples = x.shape[0]
    weight = np.ones(n_samples, dtype) if weight is None else np.asarray(weight, dtype)
    if weight.shape != (n_samples,):
        raise ValueError(f"weight must have shape ({n_samples},), got {weight.shape}")
    extra = padding_for(n_samples, mesh.size)
    x, y, weight = (np.concatenate([a, np.zeros((extra, *a.shape[1:]), dtype)]) for a in (x, y, weight))
    rows = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
    return ShardedData(_global_array(x, rows), _global_array(y, rows), _global_array(weight, rows), n_samples)


def replicate(mesh: Mesh, tree):
    """Every leaf of ``tree`` (host or device arrays, the same in every process) replicated over the mesh:
    :func:`place` with no axis split."""
    return place(mesh, tree)


def place(mesh: Mesh, tree, *axes: str | None):
    """Every leaf of ``tree`` (the same host arrays in every process) laid out over the mesh: leaf axis ``i`` split
    along the mesh axis ``axes[i]`` (None, or no entry: not split), e.g. ``place(mesh, params, MEMBER_AXIS)``."""
    sharding = NamedSharding(mesh, PartitionSpec(*axes))
    return jax.tree.map(lambda leaf: _global_array(np.asarray(leaf), sharding), tree)


def place_keys(mesh: Mesh, keys: jax.Array, *axes: str | None) -> jax.Array:
    """Typed PRNG keys laid out over the mesh as :func:`place` lays out arrays."""
    data = place(mesh, jax.random.key_data(keys), *axes)
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(keys))


def population_mesh(mesh: Mesh, n_members: int) -> Mesh:
    """``mesh``'s devices as a 2-D mesh of ``(MEMBER_AXIS, BATCH_AXIS)`` for a population of ``n_members``: as
    many member groups as divide the device count without exceeding the members (all devices when members
    are as many), the rows of each group's members split over the rest."""
    devices = np.asarray(mesh.devices).reshape(-1)
    groups = max(g for g in range(1, len(devices) + 1) if len(devices) % g == 0 and g <= max(n_members, 1))
    return Mesh(devices.reshape(groups, -1), (MEMBER_AXIS, BATCH_AXIS))


# Entries of an array that refuse_differing_processes reads: all of a smaller one, evenly spaced whole rows of a larger
# one (data loaded or split differently differs nearly everywhere; reading a sample keeps each call cheap).
DIGEST_ENTRIES = 1 << 20


class ProcessesDiffer(ValueError):
    """The processes of a multi-host run were given different members, data or settings."""


def refuse_differing_processes(mesh: Mesh, what: str, **parts) -> None:
    """A :class:`ProcessesDiffer` (a ValueError) when the processes of a mesh spanning every process were given
    different ``parts`` (each a tree of arrays and numbers: a population's members, the training data, the run's
    settings).

    The arrays become one global array whose devices each process fills from its own copy, so different copies
    do not fail: they mix, member by member or row by row, into results that no process asked for (or, with other
    shapes, abort inside a collective).  Each process sends the SHA-256 of each part (shapes, dtypes and the
    bytes of every array; of a larger one than :data:`DIGEST_ENTRIES` entries, of evenly spaced whole rows), so
    the comparison is bitwise.  What is not an array is not compared: a user's optax transformation, whose rate
    is built into its functions (a named solver's rates are arrays of the optimiser state).  A mesh of one
    process's devices, or of some processes only, is not checked."""
    processes = {device.process_index for device in np.asarray(mesh.devices).reshape(-1)}
    if len(processes) == 1 or processes != set(range(jax.process_count())):
        return
    from jax.experimental import multihost_utils  # only multi-process runs get here

    digests = np.stack([_digest(tree) for tree in parts.values()])
    every = np.asarray(multihost_utils.process_allgather(digests))  # (processes, parts, 32)
    for process in range(1, every.shape[0]):
        differing = [
            name for name, a, b in zip(parts, every[0], every[process], strict=True) if not np.array_equal(a, b)
        ]
        if differing:
            raise ProcessesDiffer(
                f"{what}: process {process} passed other {' and '.join(differing)} than process 0; on several hosts "
                "every process must pass the same bits (load the same data, build the same members and settings; "
                "an estimator's random_state=None draws another seed in each process: give an int)"
            )


def _digest(tree) -> np.ndarray:
    """The SHA-256 of a tree's structure, shapes, dtypes and (sampled) entries, as 32 bytes."""
    digest = hashlib.sha256(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:  # already global: its shape alone
            digest.update(str((leaf.shape, leaf.dtype)).encode())
            continue
        array = np.asarray(leaf)
        digest.update(str((array.shape, array.dtype.str)).encode())
        rows = array.reshape(len(array), -1) if array.size and array.ndim else array.reshape(-1, 1)  # whole rows
        step = max(1, -(-rows.size // DIGEST_ENTRIES))
        digest.update(np.ascontiguousarray(rows[::step]).tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


def to_host(tree):
    """Host NumPy copies of ``tree``'s leaves; global arrays must be fully replicated (as fit's results are)."""

    def fetch(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if not leaf.is_fully_replicated:
                raise ValueError("to_host needs replicated arrays; this one is split across processes")
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(leaf)

    return jax.tree.map(fetch, tree)
