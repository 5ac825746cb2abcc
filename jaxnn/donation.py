"""Donated buffers given once: an argument donated to a compiled call (updated in place) may appear once among its
arguments and be read by no other, which a fresh optimiser state (one array in several places) or a batch that is
also a parameter breaks; :func:`each_buffer_once` copies the repeats."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["DONATED_TWICE", "buffers", "each_buffer_once"]


def buffers(array: jax.Array) -> tuple[int, ...]:
    """Where ``array``'s data lie: the addresses of its buffers on this process's devices."""
    return tuple(shard.data.unsafe_buffer_pointer() for shard in array.addressable_shards)


DONATED_TWICE = ("donate the same buffer twice", "previously donated in the same call")  # XLA's refusals


def each_buffer_once(tree, others: tuple = (), identity=id):
    """``tree`` with each array that appears in it again, or among ``others`` (the same ``identity``), copied
    there: a donated buffer may be given once and read by no other argument, and an optimiser's fresh state can
    hold one array in several places (optax's L-BFGS, jaxnn's named solvers), a batch be a parameter.  ``id`` is
    the check every call affords; :func:`buffers` also finds two objects of one buffer."""
    arrays = [leaf for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]  # others are not donated
    seen = {identity(other) for other in others if isinstance(other, jax.Array)}
    identities = {identity(array) for array in arrays}
    if len(identities) == len(arrays) and seen.isdisjoint(identities):
        return tree

    def first_or_copy(leaf):
        if not isinstance(leaf, jax.Array):
            return leaf
        if identity(leaf) in seen:
            return jnp.copy(leaf)
        seen.add(identity(leaf))
        return leaf

    return jax.tree.map(first_or_copy, tree)
