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

# Compiling, not running, is most of the suite's time (some thirty thousand small programs), so this process
# compiles for a short compile rather than a fast run, which programs this small do not feel:
# * XLA:CPU's older elemental emitter instead of its fusion emitters (about a third less compile time);
# * LLVM's optimisations off (xla_backend_optimization_level=0, as jaxnn._builds.UNOPTIMISED): the suite's compile
#   time fell from about 670 to 250 CPU seconds and its wall time from 10-12 to 7½ minutes on 2 cores, the tests
#   that run longest in this process no slower (2026-12-07);
# * each program's machine code generated in one piece: XLA splits it over threads for a shorter wall time per
#   compile, which costs CPU time to split and join, and with one test process per core no core is idle.
# These change how a program is compiled, not what it computes: results can differ from XLA's default build in
# their last bits (a fused sum, a scaling folded into a product), never by more than rounding.  So every bitwise
# comparison in the suite is between results of one build: a test that compares this process with a subprocess
# hands it these flags (tests/test_distributed.py), and the jaxnn-train subprocesses, which run with XLA's
# defaults as a user's do (cli_support.environment), are compared with runs here to rounding, or bitwise only
# when they get these flags too.  `make train` and benchmarks/run.py run with XLA's defaults.  Only on the JAX
# releases pyproject.toml allows, each with the flags its XLA knows (it aborts a process whose XLA_FLAGS name one it
# does not): 0.11's and 0.12's have no elemental emitter.  The xdist workers inherit the flags from the process that
# starts them, so they are added once.
_SHORT_COMPILE = "--xla_cpu_parallel_codegen_split_count=1 --xla_backend_optimization_level=0"
TEST_XLA_FLAGS = {
    "0.10": f"--xla_cpu_use_fusion_emitters=false {_SHORT_COMPILE}",
    "0.11": _SHORT_COMPILE,
    "0.12": _SHORT_COMPILE,
}.get(".".join(jax.__version__.split(".")[:2]), "")
if TEST_XLA_FLAGS and TEST_XLA_FLAGS not in os.environ.get("XLA_FLAGS", ""):
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
