"""Shared test set-up: pinned matmul precision and loud rank promotion."""

import jax

# float32 comparisons must mean the same on every backend (TPUs/GPUs default to lower-precision matmuls).
jax.config.update("jax_default_matmul_precision", "highest")
# A forgotten sum over the batch axis should fail loudly rather than broadcast silently.
jax.config.update("jax_numpy_rank_promotion", "raise")
