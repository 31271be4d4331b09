"""An auction for the right to act on a task world (Holland's bucket brigade; Baum's Hayek
machine, 1999; Chang et al. 2020).

Each step the world's current state is auctioned: the task agents (:class:`~mktsim.tasks.
TaskAgents`) send sealed :class:`~mktsim.orders.Bid` orders, the highest bid wins (ties broken
at random by the run's seed), the winner's fixed action moves the world, and the world pays the
winner its reward (created money, or a rent destroyed when negative). Ownership is one unit of
the good ``deed``, which passes from owner to owner through the ledger, together with the
payment, as a journalled trade; between episodes the world's own account holds it.

Payment rules (option ``payment``):

* ``vickrey``: the winner pays the second-highest bid (0 if it bid alone) to the previous
  owner. With two or more clones per action (Chang et al.'s *cloned Vickrey society*) the
  second-highest bid at the next state is the value of the state the owner leaves behind, so
  an owner's income is the reward plus that value whatever it bid: bidding one's action value
  ``Q(s, a)`` is then a dominant strategy (bidding more can only win at a loss, less can only
  lose a profitable sale), and the winning bids are the values-to-go.
* ``bucket_brigade``: the winner pays its own bid to the previous owner (Holland's rule; a
  first-price sale by the previous owner). A bidder gains by shading its bid just above the
  runner-up's, so truthful bids are not an equilibrium.
* ``first_price``: the world sells the right to act each step at the winner's own bid and keeps
  the payment; the previous owner is paid nothing by its successor. An owner's only income is
  the world's reward, so no credit flows back along the chain: the baseline without credit
  assignment.

Money moves only through the ledger: trades between agents (and the world's account, opened
by this mechanism) conserve it exactly; the world's rewards are the only money created or
destroyed, each recorded in the ``auctions`` table (column ``reward``).

Timing: auction k opens at time k (from 1), collects bids for ``bid_window`` and clears; an
episode ends when the world says so or after the world's ``max_steps`` auctions, and the run
ends after ``episodes`` episodes.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen

from mktsim.errors import InvalidParameter
from mktsim.market import settled
from mktsim.mechanism import MarketContext, Option, in_range, parse_options, positive_int
from mktsim.orders import Bid, Quote, Receipt, order_name, rejected
from mktsim.recorder import Column
from mktsim.tasks import DEED, TaskWorld

__all__ = ["PAYMENTS", "AuctionQuote", "AuctionResult", "RightToActMarket"]

PAYMENTS = ("vickrey", "bucket_brigade", "first_price")

#: The auction log: one row per cleared auction.
AUCTIONS: dict[str, Column] = {
    "time": Column("float64", doc="simulation time of the clearing"),
    "round": Column("int64", doc="auction number, from 0"),
    "episode": Column("int64", doc="episode number, from 0"),
    "state": Column("int64", doc="the state auctioned"),
    "winner": Column("int64", doc="the winning agent (ledger row)"),
    "bid": Column("float64", doc="the winning bid"),
    "second": Column("float64", doc="the second-highest bid (0 when alone)"),
    "price": Column("float64", doc="what the winner paid"),
    "seller": Column("int64", doc="who was paid: the previous owner, or -1 for the world"),
    "reward": Column("float64", doc="money the world created (+) or took as rent (-)"),
    "next_state": Column("int64", doc="the state the winner's action led to"),
    "done": Column("bool", doc="the action ended the episode"),
    "bids": Column("int64", doc="valid bids collected"),
}


@frozen
class AuctionResult:
    """One cleared auction (money in units; ``seller`` -1 is the world)."""

    round: int
    episode: int
    state: int
    winner: int
    bid: float
    price: float
    seller: int
    reward: float
    next_state: int
    done: bool


@frozen
class AuctionQuote(Quote):
    """What bidders see: the state on sale (None between auctions), the current owner (-1: the
    world), and the last cleared auction. ``prices`` holds the last price paid for the deed."""

    round: int = -1
    episode: int = 0
    state: int | None = None
    owner: int = -1
    last: AuctionResult | None = None


class RightToActMarket:
    """Sealed-bid auctions of a task world's state, one per step (see the module docstring)."""

    name = "right_to_act"
    description = "auctions for the right to act on a task world (Hayek machine)"
    accepts: ClassVar[frozenset[type]] = frozenset({Bid})
    behaviours: ClassVar[Mapping[str, str]] = {
        "bid_learner": "bids per state learned from realised revenue (mktsim.strategies)",
    }
    options: ClassVar[Mapping[str, Option]] = {
        "payment": Option(
            "vickrey",
            "vickrey (second price to the previous owner), bucket_brigade (own bid to the "
            "previous owner) or first_price (own bid to the world)",
            choices=PAYMENTS,
        ),
        "episodes": Option(400, "episodes to run", convert=positive_int),
        "bid_window": Option(
            0.5,
            "time an auction collects bids (the next opens 1 after the last)",
            convert=in_range(0.0, 1.0, low_open=True, high_open=True),
        ),
    }

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options("right_to_act", self.options, options)
        self.payment: str = self.opts["payment"]
        self._ctx: MarketContext | None = None
        self._bids: dict[int, float] = {}
        self._open = False
        self._round = 0
        self._episode = 0
        self._state: int | None = None
        self._owner = -1
        self._last: AuctionResult | None = None
        self._price: float | None = None
        self._next_id = 0
        self._updated: simpy.Event | None = None
        self._world: Any = None
        self._actions = np.zeros(0, dtype=np.int64)
        self._bidders = 0

    @classmethod
    def example_scenario(cls) -> Any:
        """A five-state chain for conformance checks."""
        from mktsim.tasks import ChainTask, task_scenario

        return task_scenario("chain_example", ChainTask(length=5), episodes=20)

    @classmethod
    def refusal(cls, population: Any) -> str | None:
        """Why the auction cannot run a population (None if it can), before the run: it runs
        task worlds, whose agents alone bid for the right to act."""
        if population.kind == "task_agents":
            return None
        return (
            f"population {population.name!r} ({population.kind}) cannot bid for the right to "
            "act: right_to_act runs task worlds (scenarios hayek_chain, hayek_grid)"
        )

    # ---- attaching -----------------------------------------------------------------------
    def attach(self, ctx: MarketContext) -> None:
        worlds = []
        actions: list[np.ndarray] = []
        for slot in ctx.slots:
            pop = ctx.population(slot)
            if pop.kind != "task_agents":
                raise InvalidParameter(
                    f"population {slot.name!r} ({pop.kind}) cannot bid for the right to act: "
                    f"right_to_act runs task worlds (scenarios hayek_chain, hayek_grid)"
                )
            if slot.name not in ctx.strategies:
                raise InvalidParameter(
                    f"population {slot.name!r} has no strategy sending bid orders "
                    f"(behaviour {pop.behaviour!r})"
                )
            if slot.rows.start != sum(a.size for a in actions):
                raise InvalidParameter("task agents must fill the ledger's first rows")
            worlds.append(pop.world)
            actions.append(np.asarray(pop.actions, dtype=np.int64))
        if not worlds or any(w is not worlds[0] for w in worlds):
            raise InvalidParameter("right_to_act needs task agents sharing one task world")
        if not isinstance(worlds[0], TaskWorld):
            raise InvalidParameter(f"world(={worlds[0]!r}) is not a task world")
        self._ctx = ctx
        self._world = worlds[0]
        self._actions = np.concatenate(actions)
        self._bidders = int(self._actions.size)
        self._deed = ctx.goods.index(DEED)
        self._num = ctx.goods.numeraire_index
        holdings = np.zeros(len(ctx.goods), dtype=np.int64)
        self._goods = ctx.goods  # converts with the run's base unit
        holdings[self._deed] = self._goods.to_base(1.0)
        self._world_row = ctx.ledger.open_account(holdings)
        self._rng = ctx.streams.generator("right_to_act:ties")
        self._updated = ctx.env.event()
        ctx.recorder.add_table("auctions", AUCTIONS)
        ctx.env.process(self._run())

    # ---- the market protocol -------------------------------------------------------------
    def submit(self, order: Any) -> simpy.Event:
        """Collect a bid for the state on sale (an agent's later bid replaces its earlier one).
        Refused: other orders, no auction open, an unknown agent, a bid above the agent's
        cash."""
        assert self._ctx is not None, "submit before attach"
        env = self._ctx.env
        if not isinstance(order, Bid):
            return settled(
                env,
                rejected(f"right_to_act takes bid orders, not {order_name(type(order))} orders"),
            )
        if not self._open:
            return settled(env, rejected("no auction is open"))
        if not 0 <= order.agent < self._bidders:
            return settled(env, rejected(f"agent {order.agent} is not a task agent"))
        cash = int(self._ctx.ledger.holdings[order.agent, self._num])
        if int(self._goods.to_base(order.amount)) > cash:
            return settled(env, rejected("bid above cash"))
        self._bids[int(order.agent)] = float(order.amount)
        self._next_id += 1
        return settled(env, Receipt("accepted", self._next_id))

    def quote(self) -> AuctionQuote:
        now = self._ctx.env.now if self._ctx is not None else 0.0
        return AuctionQuote(
            now,
            {DEED: self._price},
            self._round,
            self._episode,
            self._state if self._open else None,
            self._owner,
            self._last,
        )

    def updated(self) -> simpy.Event:
        """Fires when the next auction opens."""
        assert self._updated is not None, "updated before attach"
        return self._updated

    def check_shock(self, shock: Any, goods: Any) -> None:
        """Refuse, before the run, an endowment shock on the deed: it is one indivisible right,
        sold whole from owner to owner, so a scaled holding of it could never be sold."""
        if shock.kind == "endowment" and shock.good == DEED:
            raise InvalidParameter(
                f"endowment shock on {DEED!r}: the right to act is one indivisible deed sold "
                "whole from owner to owner, and cannot be scaled (shock money instead)"
            )

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.payment,
            "rounds": self._round,
            "episodes": self._episode,
            "converged": False,
        }

    # ---- the auction ---------------------------------------------------------------------
    def _run(self) -> Generator[simpy.Event, Any, None]:
        ctx = self._ctx
        assert ctx is not None
        env, world, window = ctx.env, self._world, self.opts["bid_window"]
        yield env.timeout(1.0)  # time 0 belongs to the strategies starting up
        for episode in range(self.opts["episodes"]):
            self._episode, self._state, self._owner = episode, world.start, -1
            for _ in range(world.max_steps):
                self._bids, self._open = {}, True
                fired, self._updated = self._updated, env.event()
                assert fired is not None
                fired.succeed()
                yield env.timeout(window)
                self._open = False
                result = self._clear()
                if result is None or result.done:
                    break
                self._state = result.next_state
                yield env.timeout(1.0 - window)
            else:
                result = None
            self._return_deed()
            yield env.timeout(1.0 - window)
        self._episode = self.opts["episodes"]
        if not ctx.done.triggered:
            ctx.done.succeed()

    def _clear(self) -> AuctionResult | None:
        """Settle the auction just closed; None (and the episode ends) when nobody bid."""
        ctx = self._ctx
        assert ctx is not None and self._state is not None
        if not self._bids:
            ctx.log("no_bids", f"nobody bid for state {self._state}: the episode ends")
            return None
        agents = np.fromiter(self._bids, dtype=np.int64)
        amounts = np.fromiter(self._bids.values(), dtype=np.float64)
        top = np.flatnonzero(amounts == amounts.max())
        w = int(top[0] if top.size == 1 else self._rng.choice(top))
        bid = float(amounts[w])
        winner = int(agents[w])
        second = float(np.delete(amounts, w).max()) if amounts.size > 1 else 0.0
        price = second if self.payment == "vickrey" else bid
        seller = -1 if self.payment == "first_price" else self._owner
        self._transfer(winner, price)
        state = self._state
        next_state, reward, done = self._world.step(state, int(self._actions[winner]))
        reward = self._pay_reward(winner, float(reward))
        self._owner, self._price = winner, price
        result = AuctionResult(
            self._round,
            self._episode,
            state,
            winner,
            bid,
            price,
            seller,
            reward,
            int(next_state),
            bool(done),
        )
        now = ctx.env.now
        ctx.recorder.append(
            "auctions",
            time=now,
            round=self._round,
            episode=self._episode,
            state=state,
            winner=winner,
            bid=bid,
            second=second,
            price=price,
            seller=seller,
            reward=reward,
            next_state=int(next_state),
            done=bool(done),
            bids=int(agents.size),
        )
        ctx.recorder.append(
            "prices", time=now, round=self._round, good=self._deed, price=price, estimate=bid
        )
        self._last = result
        self._round += 1
        return result

    def _transfer(self, winner: int, price: float) -> None:
        """Move the deed to the winner and its payment to whom the rule says."""
        ledger = self._ctx.ledger  # type: ignore[union-attr]
        one, cash = int(self._goods.to_base(1.0)), int(self._goods.to_base(price))
        previous = self._world_row if self._owner < 0 else self._owner
        if self.payment == "first_price":
            if previous != self._world_row:  # the deed goes back to the world unpaid...
                ledger.trade(self._world_row, previous, self._deed, one, 0, 0.0)
            ledger.trade(winner, self._world_row, self._deed, one, cash, price)  # ...and is sold
        elif previous != winner:  # an owner buying its own state pays itself: nothing moves
            ledger.trade(winner, previous, self._deed, one, cash, price)

    def _pay_reward(self, winner: int, reward: float) -> float:
        """The world pays a reward (created money) or takes a rent (destroyed money, at most
        what the winner holds). Returns the amount actually created (+) or destroyed (-)."""
        ledger = self._ctx.ledger  # type: ignore[union-attr]
        amount = np.zeros(len(ledger.goods), dtype=np.int64)
        base = int(self._goods.to_base(abs(reward)))
        if reward > 0:
            amount[self._num] = base
            ledger.create(winner, amount, "task reward")
            return base / float(self._goods.to_base(1.0))
        if reward < 0:
            amount[self._num] = min(base, int(ledger.holdings[winner, self._num]))
            ledger.destroy(winner, amount, "task rent")
            return -amount[self._num] / float(self._goods.to_base(1.0))
        return 0.0

    def _return_deed(self) -> None:
        """At an episode's end the world takes its deed back from the last owner."""
        if self._owner >= 0:
            ledger = self._ctx.ledger  # type: ignore[union-attr]
            ledger.trade(
                self._world_row, self._owner, self._deed, int(self._goods.to_base(1.0)), 0, 0.0
            )
            self._owner = -1
