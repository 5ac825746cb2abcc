"""What a compilation costs with the persistent cache on, by how many entries the cache directory holds: jaxnn's
bound (the directory cut back when a process turns the cache on) against JAX's own
(``jax_compilation_cache_max_size``, kept on every write), which jaxnn set before.

    python benchmarks/cache_bound.py [--entries 0 1000 4000 16000] [--programs 20] [--processes 3]

For each size a directory is filled with that many entries of 16 KB (zlib streams, as JAX writes them without
zstandard) and JAX's last-use stamps, as a directory bounded by JAX looks.  Then, alternating between the two ways,
fresh processes each turn the cache on (timed) and compile ``--programs`` new small programs, each written to the
directory (timed).  Reported: medians over the processes of the time to turn the cache on and of the time per
compiled program; the first process of jaxnn's way also reads every entry once (no process has looked at the
directory before), which its own column shows.  Both ways keep the directory under 256 MiB (16,000 entries fit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOUND = 256 * 2**20

CHILD = """
import json, sys, time
import jax, jax.numpy as jnp
way, directory, programs, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
from jaxnn import compile_cache
x = jnp.ones(3)
start = time.perf_counter()
if way == "jaxnn":
    compile_cache.enable(directory, max_bytes=BOUND)
else:  # what jaxnn set before: JAX's own bound
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", BOUND)
    jax.config.update("jax_enable_compilation_cache", True)
enabled = time.perf_counter() - start
times = []
for k in range(first, first + programs):
    start = time.perf_counter()
    jax.jit(lambda v, k=k: v * k + 0.5)(x).block_until_ready()
    times.append(time.perf_counter() - start)
print(json.dumps({"enable": enabled, "per_program": sorted(times)[len(times) // 2]}))
""".replace("BOUND", str(BOUND))


def fill(directory: Path, entries: int) -> None:
    """``entries`` entries of 16 KB with last-use stamps, as JAX's bounded cache writes them."""
    directory.mkdir(mode=0o700)
    data = zlib.compress(os.urandom(16_000), 1)
    for i in range(entries):
        (directory / f"jit_f-{i:064x}-cache").write_bytes(data)
        (directory / f"jit_f-{i:064x}-atime").write_bytes((1_700_000_000 + i).to_bytes(8, "little"))


def run_child(way: str, directory: Path, programs: int, first: int) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, way, str(directory), str(programs), str(first)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[0, 1000, 4000, 16000])
    parser.add_argument("--programs", type=int, default=20)
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.programs} programs per process, {args.processes} processes")
    print("| entries | JAX's bound: enable | per program | jaxnn's bound: enable (first process) | per program |")
    print("|---|---|---|---|---|")
    for entries in args.entries:
        base = Path(tempfile.mkdtemp(prefix="jaxnn-cache-bound-"))
        try:
            seen: dict[str, list[dict]] = {"jax": [], "jaxnn": []}
            for way in seen:
                fill(base / way, entries)
            for process in range(args.processes):
                for way in ("jax", "jaxnn") if process % 2 == 0 else ("jaxnn", "jax"):
                    first = 1000 * (process + 1)  # new programs in every process: each one is written
                    seen[way].append(run_child(way, base / way, args.programs, first))
            jax_way, ours = seen["jax"], seen["jaxnn"]
            print(
                f"| {entries:,} | {statistics.median(r['enable'] for r in jax_way) * 1e3:.0f} ms "
                f"| {statistics.median(r['per_program'] for r in jax_way) * 1e3:.1f} ms "
                f"| {statistics.median(r['enable'] for r in ours) * 1e3:.0f} ms ({ours[0]['enable'] * 1e3:.0f} ms) "
                f"| {statistics.median(r['per_program'] for r in ours) * 1e3:.1f} ms |",
                flush=True,
            )
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
