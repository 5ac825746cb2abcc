"""Shared test set-up: pinned matmul precision, loud rank promotion, a compilation cache of the run's own, and
JAX's in-memory caches emptied after each test module."""

import atexit
import gc
import os
import shutil
import tempfile

import jax
import pytest
from threadpoolctl import threadpool_limits

# jaxnn's persistent compilation cache (jaxnn.compile_cache) goes to a directory of this test process's own,
# for it and the subprocesses it starts: JAX writes a cache entry in place, so a process that a test kills
# while it writes one leaves a torn entry, which must not reach other runs on the machine.
os.environ["JAXNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxnn-test-xla-")
atexit.register(shutil.rmtree, os.environ["JAXNN_CACHE_DIR"], ignore_errors=True)

# Compiling, not running, is most of the suite's time (some thirty thousand small programs).  XLA:CPU's older
# elemental emitter compiles them about a third faster than its fusion emitters, and runs them slower, which
# programs this small do not feel; so this process compiles with it.  Its bits are the fusion emitters' wherever they
# are compared: the jaxnn-train tests start their subprocesses with XLA's defaults (cli_support.environment), and a
# run interrupted there and resumed here equals a run made here bit for bit; test_lbfgs compares the L-BFGS program's
# two builds in such a process (jaxnn._builds.FAST_COMPILE_CPU: they agree to rounding, a fused sum can differ).
# `make train` and benchmarks/run.py run with XLA's defaults.  Only on JAX 0.10, which CI pins: XLA aborts a process
# whose XLA_FLAGS name a flag it does not know.
# XLA also splits each program's machine-code generation over threads (a shorter wall time for one compile), which
# costs CPU time to split and join; with one test process per core there is no idle core to gain, so each program
# is generated in one piece: the same bits, about a tenth less CPU time over the suite (README, make test).
TEST_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"
if jax.__version__.startswith("0.10."):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

# pytest-xdist runs one test process per core: each gets its share of the cores for NumPy's and SciPy's BLAS
# and OpenMP pools, or the pools of every worker spin against each other (scikit-learn's tests ran 5x slower).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, _THREADS)  # for the subprocesses tests start
threadpool_limits(int(_THREADS))

# float32 comparisons must mean the same on every backend (TPUs/GPUs default to lower-precision matmuls).
jax.config.update("jax_default_matmul_precision", "highest")
# A forgotten sum over the batch axis should fail loudly rather than broadcast silently.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True, scope="module")
def _compiled_programs_freed_after_the_module():
    """Each module's compiled programs are freed when it ends.

    XLA's CPU backend maps every compiled program's machine code into memory with a few ``mmap`` regions, and
    ``jax.jit`` keeps each program for the life of the process.  A test worker that runs many modules compiles
    some 15,000 programs, and Linux refuses a process more than ``vm.max_map_count`` regions (65,530 by
    default): XLA then crashed the worker (a segfault or abort inside a compilation or a cache write).  Emptying
    the caches frees the programs and their regions; a later module that needs one compiles it again (or loads
    it from the run's persistent cache).
    """
    from jaxnn._builds import release_programs  # imported here: jaxnn after this file has set its environment

    yield
    release_programs()  # jaxnn's own count starts again too (jaxnn._builds)
    jax.clear_caches()
    gc.collect()
