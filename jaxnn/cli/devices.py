"""The devices of a run: the platform, the other hosts of a multi-host run, and one mesh over all devices."""

from __future__ import annotations

import argparse
import hashlib
import os
from typing import NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxnn import distributed, platforms
from jaxnn.cli.errors import CliError

__all__ = [
    "MAY_DIFFER",
    "Runtime",
    "any_process",
    "arithmetic_note",
    "arithmetic_setting",
    "check_ranks",
    "first_line",
    "largest_in_any_process",
    "one_device",
    "refuse_differing_commands",
    "start_runtime",
]


class Runtime(NamedTuple):
    mesh: jax.sharding.Mesh
    platform: str
    processes: int
    main: bool  # process 0: prints and writes files


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (JAX's errors run to many lines), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def start_runtime(args: argparse.Namespace) -> Runtime:
    """Pick the platform (:mod:`jaxnn.platforms`), join the other hosts if asked, lay the devices out as a mesh."""
    try:
        platforms.restrict_to(args.platform)
    except (platforms.PlatformError, RuntimeError) as error:
        raise CliError(f"--platform {args.platform}: {first_line(error)}") from None
    cluster = args.coordinator is not None or args.multi_host
    if not cluster and (args.num_processes is not None or args.process_id is not None):
        raise CliError("--num-processes and --process-id describe several hosts: give --coordinator too")
    check_ranks(args.num_processes, args.process_id)
    try:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id, auto=args.multi_host)
    except (RuntimeError, ValueError) as error:
        hint = _rank_hint(args)
        reason = "JAX could not tell the number of processes" if hint and "could not tell" in str(error) else None
        raise CliError(f"could not join the multi-host run: {reason or first_line(error)}{hint}") from None
    refuse_differing_commands(args)
    try:
        devices = platforms.devices_for(args.platform)
    except platforms.PlatformError as error:
        raise CliError(first_line(error)) from None
    if args.devices is not None:
        if jax.process_count() > 1:
            raise CliError("--devices works on one host; several hosts always use all their devices")
        if args.devices > len(devices):
            count = f"{len(devices)} {devices[0].platform} device" + (" is" if len(devices) == 1 else "s are")
            raise CliError(f"--devices {args.devices}: only {count} here")
        devices = devices[: args.devices]
    return Runtime(
        distributed.make_mesh(devices), devices[0].platform, jax.process_count(), distributed.is_main_process()
    )


MAY_DIFFER = frozenset({"process_id", "out", "overwrite", "quiet", "csv", "resume"})


def refuse_differing_commands(args: argparse.Namespace) -> None:
    """On several hosts, a CliError in every process when one was started with other options than process 0's:
    other settings would mix into the shared arrays, and a process given another ``--num-processes`` joined a run
    of another size unnoticed.  :data:`MAY_DIFFER` may: the rank, what only process 0 does (write, print), and
    paths, which may differ between hosts (the data and the starting state they lead to are compared bitwise
    before training: :func:`jaxnn.distributed.refuse_differing_processes`)."""
    if jax.process_count() == 1:
        return
    given = {name: value for name, value in sorted(vars(args).items()) if name not in MAY_DIFFER}
    digests = np.stack(
        [np.frombuffer(hashlib.sha256(repr(value).encode()).digest(), np.uint8) for value in given.values()]
    )
    every = np.asarray(multihost_utils.process_allgather(digests))  # (processes, options, 32)
    for process in range(1, every.shape[0]):
        differing = [
            name for name, a, b in zip(given, every[0], every[process], strict=True) if not np.array_equal(a, b)
        ]
        if differing:
            flags = ", ".join("--" + name.replace("_", "-") for name in differing)
            raise CliError(
                f"process {process} was started with another {flags} than process 0; start every process with the "
                "same options (only --process-id, --out, --quiet and paths may differ)"
            )


def check_ranks(num_processes: int | None, process_id: int | None) -> None:
    """A CliError in the flags' words when ``--process-id`` is not one of the ``--num-processes`` ranks."""
    if num_processes is not None and process_id is not None and process_id >= num_processes:
        raise CliError(
            f"--process-id {process_id}: the ranks of --num-processes {num_processes} are 0 to {num_processes - 1}"
        )


def _rank_hint(args: argparse.Namespace) -> str:
    """What to add where JAX could not learn the cluster's size or this process's rank from the environment."""
    if args.coordinator is None or (args.num_processes is not None and args.process_id is not None):
        return ""
    return " (give --num-processes and --process-id with --coordinator, or run under Slurm or Open MPI)"


def one_device(runtime: Runtime) -> Runtime:
    """The runtime on the first device of its mesh: the one JAX computes on by default."""
    return runtime._replace(mesh=distributed.make_mesh(list(runtime.mesh.devices.flat)[:1]))


def any_process(flag: bool, runtime: Runtime) -> bool:
    """Whether ``flag`` is true in any process of the run (every process must call this at the same point)."""
    if runtime.processes == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def largest_in_any_process(value: int, runtime: Runtime) -> int:
    """The largest ``value`` of every process of the run (every process must call this at the same point)."""
    if runtime.processes == 1:
        return value
    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def arithmetic_setting() -> dict[str, object]:
    """What a CPU run's bits depend on besides its inputs, as a checkpoint records it: the cores this process may use
    (XLA splits a large product's sum among its threads), ``XLA_FLAGS`` (the host device count among them) and JAX's
    version; the flags with their spacing normalised, as XLA reads them (words split on white space)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_cores": cores, "xla_flags": _flag_words(os.environ.get("XLA_FLAGS", "")), "jax": jax.__version__}


def _flag_words(flags) -> object:
    """``XLA_FLAGS`` as one space between words (what a checkpoint records and compares); a value that is not a
    string, from a foreign checkpoint, as it is."""
    return " ".join(flags.split()) if isinstance(flags, str) else flags


def arithmetic_note(stored: dict, runtime: Runtime, path) -> str | None:
    """The note a resumed CPU run prints when its checkpoint (``stored``, its config, read from ``path``) was
    written under another :func:`arithmetic_setting`: it trains correctly, but need not end bitwise as the
    uninterrupted run would.  None where nothing differs, on accelerators (not bitwise between compilations), and
    for a checkpoint that recorded no setting."""
    then = stored.get("arithmetic")
    if runtime.platform != "cpu" or not isinstance(then, dict):
        return None
    then = {**then, "xla_flags": _flag_words(then.get("xla_flags"))}  # older checkpoints kept the spacing
    now = arithmetic_setting()
    names = {"cpu_cores": "usable CPU cores", "xla_flags": "XLA_FLAGS", "jax": "JAX version"}
    changed = [
        f"{names[name]} {then.get(name)!r} then, {value!r} now"
        for name, value in now.items()
        if then.get(name) != value
    ]
    if not changed:
        return None
    return (
        f"note: {path} was written with other settings ({'; '.join(changed)}): the run continues correctly, but its "
        "parameters may differ in the last bits from those of an uninterrupted run (XLA splits a large product's sum "
        "among its threads)"
    )
