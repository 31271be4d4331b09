"""A Gymnasium environment: one learning agent trading in a scenario's market.

``MarketEnv()`` trades on the order book of Gode and Sunder's first market; ``MarketEnv(scenario,
mechanism, ...)`` in any scenario under any mechanism that takes limit orders or swaps. Each
``step(action)`` submits the orders the action stands for, advances the simulation by ``dt`` and
returns the observation, the change in the agent's money-metric wealth as reward, whether the
market finished (``terminated``) or the episode ran out of steps (``truncated``), and ``info``
(the receipts, the wealth, the time, and the ledger's conservation check). The encoding of
actions and observations, and the reward, are those of :mod:`mktsim.rl.core`.
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.rl.core import OBS_HIGH, StepCore

__all__ = ["MarketEnv"]


def spaces_of(core: StepCore) -> tuple[spaces.Box, spaces.Box]:
    """(observation space, action space) of one learner of ``core``."""
    observation = spaces.Box(0.0, OBS_HIGH, shape=(core.observation_size,), dtype=np.float32)
    action = spaces.Box(-1.0, 1.0, shape=core.action_shape, dtype=np.float32)
    return observation, action


def info_of(core: StepCore, row: int, receipts: list[Any]) -> dict[str, Any]:
    """What a step reports beside the reward: receipts (as tuples of their fields), wealth,
    time, and whether the ledger conserved every good."""
    return {
        "receipts": [(r.status, r.filled, r.cash, r.reason) for r in receipts],
        "wealth": core.wealth(row),
        "time": float(core.env.now),
        "conserved": core.conserved(),
    }


class MarketEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """One learning agent in a market (Gymnasium API).

    Args:
        scenario: a :class:`~mktsim.scenario.Scenario`, a shipped scenario's name, or None for
            the mechanism's default.
        mechanism: registered name, ``module:Class`` or class (default the scenario's own;
            ``order_book`` when neither is given).
        population: learn as agent ``agent`` of this existing population instead of an added
            one-agent population ``learner``. That agent is split out into a one-agent population
            ``<population>_learner`` driven by the ``external`` strategy, with its own
            preferences and endowment; the population's other agents keep their strategy.
        agent: the learner's index within ``population``.
        **kwargs: passed to :class:`~mktsim.rl.core.StepCore` (``endowment``, ``dt``,
            ``max_steps``, ``max_qty``, ``max_offset``, ``max_trade``, ``options``).
    """

    # Gymnasium declares metadata as an instance attribute with a class-level default.
    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        scenario: Any = None,
        mechanism: Any = None,
        *,
        population: str | None = None,
        agent: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if population is None and agent != 0:
            raise InvalidParameter(f"agent(={agent!r}) needs population= (whose agent it is)")
        chosen = None if population is None else [agent]
        self.core = StepCore(
            scenario, mechanism, learners=1, population=population, agents=chosen, **kwargs
        )
        self.row = self.core.rows[0]
        observation, action = spaces_of(self.core)
        self.observation_space = cast(spaces.Space[NDArray[np.float32]], observation)
        self.action_space = cast(spaces.Space[NDArray[np.float32]], action)
        self._wealth = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """A fresh run. With ``seed`` it is the run's seed; without, one is drawn from the
        environment's generator (itself seeded by the last seed given)."""
        super().reset(seed=seed)
        run_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.core.reset(run_seed)
        self._wealth = self.core.wealth(self.row)
        return self.core.observe(self.row), info_of(self.core, self.row, [])

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        core = self.core
        receipts = core.act(self.row, action)
        core.advance()
        info = info_of(core, self.row, receipts)
        reward = info["wealth"] - self._wealth
        self._wealth = info["wealth"]
        return core.observe(self.row), float(reward), core.done, core.truncated, info
