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
    yield
    jax.clear_caches()
    gc.collect()
