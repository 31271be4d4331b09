"""Reproducible randomness without global state.

Two kinds of streams, both pure functions of the run seed:

* named streams (``streams.generator("population:buyers")``): a ``numpy.random.Generator`` whose
  seed is derived from (run seed, a stable hash of the name), for draws a population makes in bulk;
* per-agent counter-based draws (``streams.uniform(name, agent_ids, k)``): the k-th uniform of
  agent ``a`` is a hash of (run seed, stream, a, k), so adding an agent never shifts the draws
  of the others, and a million agents draw in one vectorised call.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter

__all__ = ["Streams", "stable_hash"]

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def stable_hash(name: str) -> int:
    """A 32-bit hash of a string that is the same in every process (unlike ``hash``)."""
    return zlib.crc32(name.encode("utf-8"))


def _splitmix64(x: Any) -> Any:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class Streams:
    """All the randomness of one run, derived from its seed."""

    def __init__(self, seed: int) -> None:
        if (
            isinstance(seed, bool)
            or not isinstance(seed, (int, np.integer))
            or not 0 <= seed < 2**63
        ):
            raise InvalidParameter(f"seed(={seed!r}) must be an integer in [0, 2**63)")
        self.seed = int(seed)

    def generator(self, name: str) -> np.random.Generator:
        """An independent generator for a named stream."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, stable_hash(name)]))

    def for_agent(self, name: str, agent: int) -> np.random.Generator:
        """A generator for one agent acting alone, from (seed, stream, agent id)."""
        return np.random.default_rng(
            np.random.SeedSequence([self.seed, stable_hash(name), int(agent)])
        )

    def uniform(
        self, name: str, agents: NDArray[np.integer] | int, draw: int = 0
    ) -> NDArray[np.float64]:
        """The ``draw``-th uniform on [0, 1) of each agent in a stream (counter-based)."""
        a = np.asarray(agents, dtype=np.uint64)
        with np.errstate(over="ignore"):
            key = _splitmix64(
                np.uint64(self.seed) ^ (np.uint64(stable_hash(name)) << np.uint64(32))
            )
            x = _splitmix64(key ^ _splitmix64(a * np.uint64(0x100000001B3) + np.uint64(draw)))
        return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def uniforms(self, name: str, agents: NDArray[np.integer], k: int) -> NDArray[np.float64]:
        """``float64[len(agents), k]``: draws 0..k-1 of each agent."""
        return np.stack([self.uniform(name, agents, d) for d in range(k)], axis=1)
