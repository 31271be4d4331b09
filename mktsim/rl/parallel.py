"""A PettingZoo parallel environment: several learning agents trading in one market.

``ParallelMarketEnv(learners=2)`` adds two learners to the mechanism's default scenario;
``ParallelMarketEnv(scenario, mechanism, population="buyers")`` makes every agent of an existing
population a learner, and ``agents=[0, 2]`` only those (split out of it: the others keep their
strategy). All act at once each step (their orders reach the market in the order of
``possible_agents``), then the simulation advances by ``dt``. Observations, actions and rewards
are those of :mod:`mktsim.rl.core`, per agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from pettingzoo import ParallelEnv

from mktsim.random import Streams
from mktsim.rl.core import StepCore
from mktsim.rl.env import info_of, spaces_of

__all__ = ["ParallelMarketEnv"]


class ParallelMarketEnv(ParallelEnv):
    """Several learning agents in a market (PettingZoo parallel API).

    Args:
        scenario: as for :class:`~mktsim.rl.env.MarketEnv`.
        mechanism: as for :class:`~mktsim.rl.env.MarketEnv`.
        learners: learners to add as a population ``learner`` (agents ``learner_0``, ...).
        population: instead, agents of this existing population learn (agents
            ``<population>_<i>``, ``i`` the index within it).
        agents: which of its agents (indices; None: all). Those are split out into a population
            ``<population>_learner`` driven by ``external``; the others keep their strategy.
        **kwargs: passed to :class:`~mktsim.rl.core.StepCore`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "name": "mktsim_market_v0"}

    def __init__(
        self,
        scenario: Any = None,
        mechanism: Any = None,
        *,
        learners: int = 2,
        population: str | None = None,
        agents: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.core = StepCore(
            scenario, mechanism, learners=learners, population=population, agents=agents, **kwargs
        )
        name = population or self.core.population
        index = range(len(self.core.rows)) if agents is None else sorted(agents)
        self.possible_agents = [f"{name}_{i}" for i in index]
        self._row = dict(zip(self.possible_agents, self.core.rows, strict=True))
        self.agents: list[str] = []
        # One space object per agent, the same one on every call.
        self._spaces = {a: spaces_of(self.core) for a in self.possible_agents}
        self._wealth: dict[str, float] = {}
        self._seed: int | None = None
        self._episodes = 0

    def observation_space(self, agent: str) -> spaces.Box:
        return self._spaces[agent][0]

    def action_space(self, agent: str) -> spaces.Box:
        return self._spaces[agent][1]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, dict[str, Any]]]:
        """A fresh run; ``seed`` is its seed (without one: the last seed given, advanced by the
        number of resets since, so episodes differ but replay)."""
        if seed is not None:
            self._seed, self._episodes = int(seed), 0
        base = 0 if self._seed is None else self._seed
        run_seed = base if self._episodes == 0 else _child(base, self._episodes)
        self._episodes += 1
        self.core.reset(run_seed)
        self.agents = list(self.possible_agents)
        self._wealth = {a: self.core.wealth(self._row[a]) for a in self.agents}
        obs = {a: self.core.observe(self._row[a]) for a in self.agents}
        return obs, {a: info_of(self.core, self._row[a], []) for a in self.agents}

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, NDArray[np.float32]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        core = self.core
        receipts = {a: core.act(self._row[a], actions[a]) for a in self.agents if a in actions}
        core.advance()
        obs, rewards, infos = {}, {}, {}
        for a in self.agents:
            info = info_of(core, self._row[a], receipts.get(a, []))
            rewards[a] = float(info["wealth"] - self._wealth[a])
            self._wealth[a] = info["wealth"]
            obs[a] = core.observe(self._row[a])
            infos[a] = info
        terminated = dict.fromkeys(self.agents, core.done)
        truncated = dict.fromkeys(self.agents, core.truncated)
        if core.done or core.truncated:
            self.agents = []
        return obs, rewards, terminated, truncated, infos


def _child(seed: int, k: int) -> int:
    """The ``k``-th episode's run seed after ``seed`` (deterministic, spread out)."""
    return int(Streams(seed).generator(f"rl:episode:{k}").integers(2**31 - 1))
