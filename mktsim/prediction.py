"""A prediction market's event, owned by the run: nature's outcome, complete sets, resolution.

The goods are money (the numeraire) and one share good per outcome
(:func:`mktsim.beliefs.prediction_market`). Under a market maker the maker pays the shares it
issued and resolves the event itself (``lmsr``). Under a mechanism that only matches orders (an
order book, a call market) nobody in the market issues or pays shares, so the event is a service
of the run: the strategies that trade shares ask for it with :func:`prediction_event_of`
(``ctx.service("prediction", ...)``, the first one making it) and it settles only through the
ledger's narrow face (``ctx.settlement``). Strategies that swap against a maker never ask for it,
so an event is never resolved twice.

**Outcome.** The scenario's event (:func:`mktsim.beliefs.prediction_event`): a forced outcome,
or one drawn from the true probabilities (uniform when none are given) with the run's stream
``lmsr:outcome``, the stream the maker draws from, so a seed resolves the same outcome under
every mechanism. Private signals of it (:meth:`PredictionEvent.signals`) are drawn as the maker
draws them.

**Complete sets.** Money is the same asset as a complete set (one share of every outcome), and
the exchange trades one for the other at par, as the Iowa Electronic Markets sell and buy back
unit portfolios: :meth:`PredictionEvent.issue` turns an agent's money into as many complete
sets, :meth:`PredictionEvent.redeem` the reverse. Either leaves its state wealth unchanged. Each
is one ledger ``produce`` of technology ``complete set: issue`` / ``complete set: redeem`` (the
``production`` table), so conservation checks exactly and holdings rebuild from the journal.

**Resolution** at ``resolve_at``: the strategies that registered with
:meth:`PredictionEvent.on_resolution` withdraw their resting orders, every share of the outcome
is redeemed for one unit of money and every share destroyed (one ``produce``, technology
``resolution: <outcome>``), the event is logged (``resolution``) and the run ends. Without a
maker there is no maker loss: the traders' profits (``trader_profit``, per population) add up
to 0.

Summary entries (:meth:`PredictionEvent.summary`, added to the run's summary): ``outcomes``,
``true_probabilities``, ``resolve_at``, ``resolved``, ``outcome``, ``payout``,
``complete_sets_issued``, ``complete_sets_redeemed``, ``trader_profit`` and
``trader_profit_valued_at``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.beliefs import prediction_event
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import MarketContext

__all__ = ["SERVICE", "PredictionEvent", "prediction_event_of"]

#: Name of the event among the run's services.
SERVICE = "prediction"


class PredictionEvent:
    """The run's prediction event (see the module docstring); made by
    :func:`prediction_event_of`.

    Args:
        ctx: the run's market context.
        market: the market the shares trade on, read only (its quote values shares for
            ``trader_profit`` before the event resolves).
    """

    def __init__(self, ctx: MarketContext, market: Any) -> None:
        goods = ctx.goods
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        self.market = market
        self.settlement = ctx.settlement
        self.num = goods.numeraire_index
        self.cols: list[int] = [j for j in range(len(goods)) if j != self.num]
        self.names: list[str] = [goods.names[j] for j in self.cols]
        k = len(self.cols)
        if k < 2:
            raise InvalidParameter(
                f"a prediction market needs at least 2 outcomes (share goods besides the "
                f"numeraire); the scenario has {k} ({', '.join(self.names)})"
            )
        truth, at, forced = prediction_event(ctx.scenario)
        self.truth = truth
        if forced is not None:
            if forced not in self.names:
                raise UnknownName("outcome", forced, self.names)
            self.outcome = self.names.index(forced)
        else:
            p = truth if truth is not None else np.full(k, 1.0 / k)
            self.outcome = int(ctx.streams.generator("lmsr:outcome").choice(k, p=p))
        self.resolve_at = at
        self.resolved = False
        self.payout: int | None = None
        self.issued = 0  # complete sets, base units
        self.redeemed = 0
        self._withdrawals: list[Callable[[], int]] = []
        # what every agent started with, base units, to value its trading profit
        n = ctx.scenario.n_agents
        self._start = np.array(self.settlement.holdings[:n], dtype=np.int64)
        if math.isfinite(at):
            ctx.env.process(self._resolution(at))

    # -- signals
    def signals(self, accuracy: float, rng: np.random.Generator, size: int) -> NDArray[np.intp]:
        """Nature's private signals of the outcome, ``intp[size]``: each is the outcome with
        probability ``accuracy``, else one of the other outcomes uniformly (drawn as the LMSR
        maker draws them, so a seed and a stream give the same signals under both)."""
        if not 0.0 <= accuracy <= 1.0:
            raise InvalidParameter(f"accuracy(={accuracy}) must be in [0, 1]")
        k = len(self.cols)
        right = rng.random(size) < accuracy
        wrong = (self.outcome + 1 + rng.integers(0, k - 1, size)) % k
        return np.where(right, self.outcome, wrong).astype(np.intp)

    # -- complete sets
    def _convert(self, agent: int, amount: int, issue: bool) -> None:
        g = len(self.ctx.goods)
        money = np.zeros((1, g), dtype=np.int64)
        money[0, self.num] = amount
        sets = np.zeros((1, g), dtype=np.int64)
        sets[0, self.cols] = amount
        rows = np.array([agent])
        if issue:
            self.settlement.produce(rows, money, sets, "complete set: issue")
            self.issued += amount
        else:
            self.settlement.produce(rows, sets, money, "complete set: redeem")
            self.redeemed += amount

    def issue(self, agent: int, amount: int) -> int:
        """Sell the agent ``amount`` base units of complete sets for as much money (at most the
        money it holds: the caller passes what it may commit); returns how many."""
        amount = min(int(amount), int(self.settlement.holdings[agent, self.num]))
        if amount > 0 and not self.resolved:
            self._convert(agent, amount, True)
            return amount
        return 0

    def redeem(self, agent: int, amount: int) -> int:
        """Buy back ``amount`` base units of complete sets from the agent (at most the sets its
        holdings make up: the caller passes what it may commit); returns how many."""
        held = self.settlement.holdings[agent]
        amount = min(int(amount), *(int(held[j]) for j in self.cols))
        if amount > 0 and not self.resolved:
            self._convert(agent, amount, False)
            return amount
        return 0

    # -- resolution
    def on_resolution(self, withdraw: Callable[[], int]) -> None:
        """Have ``withdraw()`` called just before the event resolves: a strategy cancels its
        agents' resting orders there (returning how many), so none is left on a share that no
        longer exists."""
        self._withdrawals.append(withdraw)

    def _resolution(self, at: float) -> Generator[simpy.Event, Any, None]:
        env = self.ctx.env
        if at > env.now:
            yield env.timeout(at - env.now)
        self.resolve()
        if not self.ctx.done.triggered:
            self.ctx.done.succeed()

    def resolve(self) -> None:
        """Resolve now: withdraw the registered strategies' resting orders, pay one unit of
        money per share of the outcome and destroy every share (one ledger ``produce``)."""
        if self.resolved:
            return
        cancelled = sum(withdraw() for withdraw in self._withdrawals)
        self.resolved = True
        h = np.array(self.settlement.holdings, dtype=np.int64)
        cols = self.cols
        win = cols[self.outcome]
        rows = np.flatnonzero(h[:, cols].any(axis=1))
        inputs = np.zeros((rows.size, h.shape[1]), dtype=np.int64)
        inputs[:, cols] = h[rows][:, cols]
        outputs = np.zeros_like(inputs)
        outputs[:, self.num] = h[rows, win]
        self.payout = int(outputs.sum())
        name = self.names[self.outcome]
        if rows.size:
            self.settlement.produce(rows, inputs, outputs, f"resolution: {name}")
        self.ctx.log(
            "resolution",
            f"outcome {name}: paid {self.payout / self.base_units:g} for "
            f"{int((h[rows, win] > 0).sum())} holders' shares; {cancelled} resting orders "
            "cancelled",
        )

    # -- reporting
    def _estimates(self) -> tuple[dict[str, float | None], bool]:
        """The market's price of each share now, and whether they are estimates (an order
        book's moving average) rather than last prices."""
        quote = self.market.quote()
        states = getattr(quote, "goods", None) or {}
        out: dict[str, float | None] = {}
        estimated = True
        for name in self.names:
            est = getattr(states.get(name), "estimate", None)
            if est is None:
                estimated = False
                est = quote.prices.get(name)
            out[name] = est
        return out, estimated

    def trader_profit(self) -> tuple[dict[str, float], str]:
        """Trading profit per population (money units), and what it is valued at: the value of
        its holdings now less that of its endowment, at resolution (a share of the outcome 1,
        the others 0) or before it at the market's price estimates (shares of a good without
        one valued at 0)."""
        value = np.zeros(len(self.ctx.goods))
        value[self.num] = 1.0
        if self.resolved:
            value[self.cols[self.outcome]] = 1.0
            basis = "resolution"
        else:
            prices, estimated = self._estimates()
            for j, name in zip(self.cols, self.names, strict=True):
                p = prices[name]
                value[j] = 0.0 if p is None else p
            basis = "book estimates" if estimated else "last prices"
        n = self._start.shape[0]
        now = np.array(self.settlement.holdings[:n], dtype=np.int64)
        if self.resolved:  # exact: integer base units
            change = (now - self._start) @ value.astype(np.int64)
            per_agent = change.astype(np.float64) / self.base_units
        else:
            per_agent = ((now - self._start).astype(np.float64) @ value) / self.base_units
        return {s.name: float(per_agent[s.rows].sum()) for s in self.ctx.slots}, basis

    def summary(self) -> dict[str, Any]:
        profit, basis = self.trader_profit()
        return {
            "outcomes": list(self.names),
            "true_probabilities": None
            if self.truth is None
            else dict(zip(self.names, self.truth.tolist(), strict=True)),
            "resolve_at": self.resolve_at,
            "resolved": self.resolved,
            "outcome": self.names[self.outcome] if self.resolved else None,
            "payout": None if self.payout is None else self.payout / self.base_units,
            "complete_sets_issued": self.issued / self.base_units,
            "complete_sets_redeemed": self.redeemed / self.base_units,
            "trader_profit": profit,
            "trader_profit_valued_at": basis,
        }


def prediction_event_of(ctx: MarketContext, market: Any) -> PredictionEvent:
    """The run's prediction event, made by the first strategy that asks (``market``: the market
    its shares trade on, read only)."""
    event: PredictionEvent = ctx.service(SERVICE, lambda: PredictionEvent(ctx, market))
    return event
