"""Task agents whose bids for the right to act learn from realised revenue.

Each agent i keeps one bid ``b[i, s]`` per state of the world, starting optimistic
(``initial``, above any value-to-go, so that every agent is tried: an untried agent outbids the
tried ones whose bids have fallen toward their worth). When it owns state ``s`` its realised
revenue is what the world paid it (the reward, negative for a rent) plus what the next owner
paid *it* for the state it left behind (nothing when the episode ended, or when the payment
rule sends the money to the world); the bid moves toward that revenue:

    b[i, s] <- b[i, s] + rate * (revenue - b[i, s])

This is Chang et al.'s (2020) credit-conserving update with a tabular bid: under second-price
payments the revenue does not depend on the agent's own bid, bidding one's expected revenue
(the action value ``Q(s, a_i)``) is a dominant strategy, and the fixed point of the update is
the Bellman equation ``b[i, s] = r(s, a_i) + max_j b[j, s']`` once two clones per action make
the second-highest bid at ``s'`` its value. Bids are never negative and never above the agent's
cash. With probability ``explore`` an agent instead bids uniformly in ``[0, initial]``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import simpy

from mktsim.mechanism import Option, in_range, positive_float
from mktsim.orders import Bid

__all__ = ["BidLearner"]


def _optional_positive(value: Any) -> float | None:
    return None if value is None else positive_float(value)


class BidLearner:
    """Per-state bids learned toward realised one-step revenue (see the module docstring)."""

    name: ClassVar[str] = "bid_learner"
    doc: ClassVar[str] = "bids per state learned toward realised revenue (Hayek machine)"
    emits: ClassVar[frozenset[type]] = frozenset({Bid})
    serves: ClassVar[frozenset[str]] = frozenset({"task_agents"})
    options: ClassVar[dict[str, Option]] = {
        "rate": Option(
            0.2, "step of the bid toward realised revenue", convert=in_range(0, 1, low_open=True)
        ),
        "initial": Option(
            None,
            "optimistic starting bid (units); None: twice the world's largest reward",
            convert=_optional_positive,
        ),
        "explore": Option(
            0.0, "probability of a uniform random bid in [0, initial]", convert=in_range(0, 1)
        ),
    }

    def __init__(self, market: Any, ctx: Any, slot: Any, options: dict[str, Any]) -> None:
        self.market, self.ctx, self.slot = market, ctx, slot
        pop = ctx.population(slot)
        self.world = pop.world
        self.rows = slot.row_ids
        self.rate = float(options["rate"])
        self.explore = float(options["explore"])
        initial = options["initial"]
        if initial is None:
            rewards = [
                self.world.step(s, a)[1]
                for s in range(self.world.n_states)
                for a in range(len(self.world.actions))
            ]
            initial = 2.0 * max(max(rewards), 1.0)
        self.initial = float(initial)
        self.bids = np.full((self.rows.size, self.world.n_states), self.initial)
        self.rng = ctx.streams.generator(f"strategy:bid_learner:{slot.name}")
        self._pending: tuple[int, int, float, int, int] | None = None
        self._seen = -1
        self._bid_round = -1

    def start(self) -> None:
        self.ctx.env.process(self._run())

    def _mine(self, agent: int) -> bool:
        return bool(self.slot.owns(agent))

    def _learn(self, agent: int, state: int, revenue: float) -> None:
        i = agent - self.slot.rows.start
        self.bids[i, state] += self.rate * (revenue - self.bids[i, state])

    def observe(self, last: Any) -> None:
        """Credit the owner whose revenue the clearing ``last`` completes."""
        if last is None or last.round <= self._seen:
            return
        self._seen = last.round
        if self._pending is not None:
            agent, state, reward, rnd, episode = self._pending
            same = last.round == rnd + 1 and last.episode == episode
            income = last.price if same and last.seller == agent else 0.0
            self._learn(agent, state, reward + income)
            self._pending = None
        if self._mine(last.winner):
            if last.done:
                self._learn(last.winner, last.state, last.reward)
            else:
                self._pending = (last.winner, last.state, last.reward, last.round, last.episode)

    def _run(self) -> Generator[simpy.Event, Any, None]:
        market, ledger = self.market, self.ctx.ledger
        num = self.ctx.goods.numeraire_index
        while True:
            quote = market.quote()
            self.observe(quote.last)
            if quote.state is not None and quote.round != self._bid_round:
                self._bid_round = quote.round
                amounts = np.clip(self.bids[:, quote.state], 0.0, None)
                if self.explore > 0:
                    draw = self.rng.random(self.rows.size)
                    noise = self.rng.uniform(0.0, self.initial, self.rows.size)
                    amounts = np.where(draw < self.explore, noise, amounts)
                cash = ledger.units(self.rows)[:, num]
                for agent, amount, held in zip(self.rows, amounts, cash, strict=True):
                    market.submit(Bid(int(agent), float(min(amount, held))))
            yield market.updated()
