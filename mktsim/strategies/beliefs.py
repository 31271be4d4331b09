"""Belief traders against a market maker: trade toward where the reservation price equals the
maker's price (registered as ``belief_swap`` and ``informed_swap``).

``belief_swap``: expected-utility traders (:class:`~mktsim.beliefs.BeliefTraders`) look at the
maker's quote (its pricing state and liquidity b, from which an LMSR's prices and the cost of
any trade follow) and their own money and shares, and trade the one outcome whose reservation
price is furthest from the maker's price, up to where the two are equal
(:func:`mktsim.margins.lmsr_plan`), within their budget: a buy of exactly that many shares
(``Swap(exact="out")``), a sale of that many (``exact="in"``), or, when the whole budget binds,
all their money (``buy, exact="in"``) or all their shares of the outcome.

``informed_swap``: belief traders who first receive a private signal of the outcome, right with
probability ``accuracy``, and trade on their Bayesian posterior. Nature's signals come from the
market hosting the event (its public ``signals(accuracy, rng, size)``; the maker itself never
looks at them). This is the trader that drains a maker's subsidy: it trades toward the truth
through the public protocol only.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import simpy

from mktsim.beliefs import BeliefTraders, posterior
from mktsim.errors import InvalidParameter
from mktsim.margins import lmsr_plan
from mktsim.mechanism import MarketContext, Option, PopulationSlot, in_range
from mktsim.orders import BUY, SELL, Swap
from mktsim.strategies._common import RATE, SwapStrategy, arrivals, tolerance

__all__ = ["BeliefSwap", "InformedSwap"]


class BeliefSwap(SwapStrategy):
    """Belief traders swap to where their reservation price equals the maker's price."""

    name: ClassVar[str] = "belief_swap"
    doc: ClassVar[str] = (
        "trade toward the price where the reservation price equals the maker's (rate, tol)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"belief_traders"})
    options: ClassVar[dict[str, Option]] = {
        "rate": RATE,
        "tol": Option(1e-3, "least |ln(reservation / maker price)| worth a trade", tolerance),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = self.population
        if not isinstance(pop, BeliefTraders):
            raise InvalidParameter(
                f"strategy {self.name!r} needs beliefs: population {pop.name!r} is {pop.kind}, "
                "not belief_traders"
            )
        quote = market.quote()
        if not hasattr(quote, "state") or not hasattr(quote, "b"):
            raise InvalidParameter(
                f"strategy {self.name!r} of population {pop.name!r} needs a cost-function "
                "maker's quote (pricing state and liquidity b), as lmsr shows"
            )
        self.outcomes: tuple[str, ...] = tuple(quote.outcomes)
        if pop.n_outcomes != len(self.outcomes):
            raise InvalidParameter(
                f"population {pop.name!r} has beliefs over {pop.n_outcomes} outcomes, the "
                f"market {len(self.outcomes)} ({', '.join(self.outcomes)})"
            )
        self.columns = np.array([ctx.goods.index(o) for o in self.outcomes], dtype=np.intp)
        self.beliefs = self.prepare(np.array(pop.beliefs, dtype=np.float64))

    def prepare(self, beliefs: np.ndarray) -> np.ndarray:
        """The probabilities the agents trade on (their beliefs)."""
        return beliefs

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env, pop = self.ctx, self.env, self.population
        ledger, num, cols = ctx.ledger, ctx.goods.numeraire_index, self.columns
        aversion, tol, start = pop.aversion, self.opts["tol"], self.slot.rows.start
        for gap, who in arrivals(self.stream(), self.opts["rate"], pop.size):
            yield env.timeout(gap)
            quote = self.market.quote()
            if quote.resolved:
                return
            agent = start + who
            h = ledger.holdings[agent]
            money = int(h[num])
            plan = lmsr_plan(
                np.array(quote.state),
                quote.b,
                self.beliefs[who],
                money / self.base_units,
                h[cols] / self.base_units,
                pop.risk,
                float(aversion[who]),
                tol,
            )
            if plan is None:
                continue
            col = int(cols[plan.outcome])
            good = self.outcomes[plan.outcome]
            if plan.shares > 0 and plan.whole_budget:
                order = Swap(agent, good, BUY, money / self.base_units, "in")
            elif plan.shares < 0 and plan.whole_budget:
                order = Swap(agent, good, SELL, int(h[col]) / self.base_units, "in")
            else:
                units = math.trunc(plan.shares * self.base_units)  # toward zero: never overshoot
                if units == 0:
                    continue
                if units > 0:
                    order = Swap(agent, good, BUY, units / self.base_units, "out")
                else:
                    order = Swap(agent, good, SELL, -units / self.base_units, "in")
            self.send(order)


class InformedSwap(BeliefSwap):
    """Belief traders who trade on the posterior after a private signal of the outcome."""

    name: ClassVar[str] = "informed_swap"
    doc: ClassVar[str] = (
        "belief trading on a posterior after a private signal (rate, tol, accuracy)"
    )
    options: ClassVar[dict[str, Option]] = {
        **BeliefSwap.options,
        "accuracy": Option(1.0, "probability the private signal names the outcome", in_range(0, 1)),
    }

    def prepare(self, beliefs: np.ndarray) -> np.ndarray:
        signals = getattr(self.market, "signals", None)
        if signals is None:
            raise InvalidParameter(
                f"strategy 'informed_swap' of population {self.population.name!r} needs a market "
                "that hosts the event and gives private signals of its outcome"
            )
        accuracy = self.opts["accuracy"]
        market = getattr(self.market, "name", "market")
        rng = self.ctx.streams.generator(f"{market}:{self.population.name}:signals")
        return posterior(beliefs, signals(accuracy, rng, self.population.size), accuracy)
