"""Shared test set-up: pinned matmul precision, loud rank promotion, and a compilation cache of the run's own."""

import atexit
import os
import shutil
import tempfile

import jax

# jaxnn's persistent compilation cache (jaxnn.compile_cache) goes to a directory of this test process's own,
# for it and the subprocesses it starts: JAX writes a cache entry in place, so a process that a test kills
# while it writes one leaves a torn entry, which must not reach other runs on the machine.
os.environ["JAXNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxnn-test-xla-")
atexit.register(shutil.rmtree, os.environ["JAXNN_CACHE_DIR"], ignore_errors=True)

# float32 comparisons must mean the same on every backend (TPUs/GPUs default to lower-precision matmuls).
jax.config.update("jax_default_matmul_precision", "highest")
# A forgotten sum over the batch axis should fail loudly rather than broadcast silently.
jax.config.update("jax_numpy_rank_promotion", "raise")
