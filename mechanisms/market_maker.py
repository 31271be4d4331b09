"""An LMSR market maker running a prediction market (registered as ``lmsr``).

The scenario's goods are money (the numeraire) and one share good per outcome of an event (see
:func:`mktsim.beliefs.prediction_market`). The maker quotes Hanson's logarithmic market scoring
rule over the shares it has issued, ``q: float64[k]``: prices softmax(q/b), and a trade of ``dq``
costs C(q + dq) − C(q) with C(q) = b·ln Σ exp(q_i/b) (kernel: :mod:`mechanisms._lmsr`).

Everything settles through the ledger. The maker has its own account, funded when the market opens
with the subsidy b·ln k (its worst-case loss) plus collateral for the shares traders were endowed
with (complete sets; the maker pays them out at resolution too). Shares it sells are minted
(``ledger.create``) and handed over in a bilateral trade; shares it buys back are burned
(``ledger.destroy``). Charges are rounded in the maker's favour and a trade that would leave the
maker unable to pay every outstanding share of any outcome is refused, so the ledger never
overdraws. At ``resolve_at`` nature's outcome (drawn from ``true_probabilities`` with the run's
seed) resolves: each share of it is redeemed from the maker for one unit of money, every share is
destroyed, and the run ends.

The maker takes the protocol's :class:`~mktsim.orders.Swap` on an outcome's share good
(``accepts``): ``buy`` with ``exact="out"`` buys ``amount`` shares, ``buy`` with ``exact="in"``
spends a money budget of ``amount`` on as many whole base units of shares as it pays for,
``sell`` with ``exact="in"`` sells ``amount`` shares (a sale for an exact sum of money is
refused); ``limit`` refuses a fill whose average price is worse. :meth:`LMSRMarket.submit`
answers at once with one :class:`~mktsim.orders.Receipt` (refusals are data, with a reason);
:meth:`LMSRMarket.quote` shows prices, b, q and the pricing state (:class:`LMSRQuote`). Every
population is driven by a shared strategy (:mod:`mktsim.strategies`): belief traders by
``belief_swap`` by default; ``belief``, ``informed``, ``noise``, ``scripted`` and ``passive``
name ``belief_swap``, ``informed_swap``, ``noise_swap``, ``scripted_swap`` and ``idle`` here.
Tables: ``prices`` (money = 1 and each
outcome's price after every ``record_every``-th trade; ``round`` counts trades) and
``market_maker`` (one row per trade: shares, closed-form cost, cash charged, inventory, the maker's
revenue and its loss if the worst outcome resolved).

Traders' trading profit is tracked per agent from their fills (shares bought, money paid) and
reported per population in the summary (``trader_profit``), valued at resolution (a share of the
outcome 1, the others 0) or, before it, at the maker's prices. At resolution the traders' profits
add up to the maker's loss.

Market shocks (:mod:`mktsim.shocks`):

* liquidity withdrawal of fraction f: the maker lowers its liquidity b to b' = (1 − f)·b and
  keeps prices continuous by rescaling its pricing state s (the q the cost function is evaluated
  at) to s' = (b'/b)·s, so softmax(s'/b') = softmax(s/b). The shares it has issued (what it owes)
  do not change, so from here on pricing state and issued shares differ (``state`` against ``q``).
  The cost *level* changes (C_b'(s') = (b'/b)·C_b(s)), but only cost differences are ever
  charged, so the trades before and after are each priced by a proper LMSR. Its loss if outcome ω
  resolves becomes b·ln n + (b − b')·ln p_ω(t) + b'·ln p_ω(T) (t: the withdrawal, T: the end;
  the middle term is <= 0): lowering b never raises the worst case above b·ln n, and the loss
  still to come is bounded by b'·ln(1/p_ω(t)). The money the maker holds beyond what that new
  worst case needs (every outstanding share of the worst outcome plus b'·ln(1/p_ω(t)), rounded
  up) goes back to the liquidity providers: it leaves the economy through the ledger (counted,
  ``maker_withdrawn``). With f = 1 the maker stops quoting (b' = 0): orders are refused with
  ``maker withdrew``, prices stay where they were, and it still pays out at resolution.
* outage: applied by the shared wrapper (:class:`mktsim.wrappers.Outage`): for its duration
  every order is refused as data with reason ``market closed`` (counted in the run summary's
  ``rejections``), and the quote strategies read through it says ``open=False``.
* latency spike: applied by the shared wrapper (:class:`mktsim.wrappers.Latency`): every order
  sent during the spike reaches the maker ``delay`` later (on top of the population's own
  delay), in the order sent, and fills at the maker's state then; the sender's event fires with
  the receipt when it does. The run ends when the event resolves, so an order still on its way
  then never arrives.

A price clamp has no meaning for a maker that must quote a price for any trade, so ``lmsr``
refuses it before the run starts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms import _lmsr
from numpy.typing import NDArray

from mktsim.beliefs import BeliefTraders
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import MAX_BASE, TOTAL_DIGITS, base_units_for
from mktsim.market import settled
from mktsim.mechanism import MarketContext, Option, parse_options, positive_float, positive_int
from mktsim.orders import BUY, Quote, Receipt, Swap, rejected
from mktsim.recorder import Column
from mktsim.scenario import Scenario

__all__ = ["MAKER_TABLE", "LMSRMarket", "LMSRQuote"]

Array = NDArray[np.float64]

#: Schema of the ``market_maker`` table (one row per filled trade).
MAKER_TABLE: dict[str, Column] = {
    "time": Column("float64", doc="simulation time"),
    "trade_id": Column("int64", doc="ledger trade id (rows of the trades table share it)"),
    "agent": Column("int64", doc="trader's ledger row"),
    "good": Column("category", "goods", "the outcome's share good"),
    "shares": Column("float64", doc="shares the maker sold (+) or bought back (−), units"),
    "cost": Column("float64", doc="closed-form cost C(q') − C(q), money units"),
    "cash": Column("float64", doc="money the trader paid (+) or received (−), as charged"),
    "inventory": Column("float64", doc="shares of this outcome the maker has issued, after"),
    "revenue": Column("float64", doc="maker's net money from trades so far"),
    "worst_loss": Column(
        "float64", doc="maker's loss if the worst outcome resolved: max q − revenue"
    ),
    "price": Column("float64", doc="this outcome's price after the trade"),
}


@frozen
class LMSRQuote(Quote):
    """What the maker shows at ``time``.

    Attributes:
        prices: outcome -> price (they sum to 1).
        b: liquidity (money units).
        q: shares issued per outcome (units), in outcome order.
        outcomes: outcome (share good) names.
        resolved: whether the event has resolved.
        outcome: the resolved outcome's name (None before resolution).
        state: the pricing state the cost function is evaluated at, in outcome order (equal to
            ``q`` unless liquidity was withdrawn); prices are softmax(state / b).
        open: whether the maker takes orders now (False after it withdrew or resolved; during
            an outage the shared :class:`mktsim.wrappers.Outage`, which refuses the orders,
            shows False too).
    """

    b: float
    q: tuple[float, ...]
    outcomes: tuple[str, ...]
    resolved: bool
    outcome: str | None = None
    state: tuple[float, ...] = ()
    open: bool = True


def _probabilities(value: Any) -> Any:
    if value in (None, "", "none"):
        return None
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    return [float(v) for v in value]


def _resolve_at(value: Any) -> float | None:
    if value in (None, "", "none"):
        return None
    if value in ("never", math.inf):
        return math.inf
    return positive_float(value)


class LMSRMarket:
    """LMSR market maker for a prediction market; see the module docstring."""

    name: ClassVar[str] = "lmsr"
    description: ClassVar[str] = (
        "LMSR market maker (Hanson): prediction market over money + one share per outcome; "
        "bounded loss b·ln n; resolves at resolve_at"
    )
    accepts: ClassVar[frozenset[type]] = frozenset({Swap})
    #: The behaviour names it takes, all served by shared strategies (see ``aliases``); it
    #: starts no process for any population.
    behaviours: ClassVar[Mapping[str, str]] = {
        "belief": "trade toward where the reservation price equals the maker's (rate, tol)",
        "informed": "belief trading on a posterior after a private signal (rate, tol, accuracy)",
        "noise": "random buys and sells (rate, max_fraction, sell_probability)",
        "scripted": "replay orders [(time, agent, outcome, shares), ...]",
        "passive": "never trade",
    }
    #: Behaviour names this market has always taken -> the shared strategy each means here.
    aliases: ClassVar[Mapping[str, str]] = {
        "belief": "belief_swap",
        "informed": "informed_swap",
        "noise": "noise_swap",
        "scripted": "scripted_swap",
        "passive": "idle",
    }
    supported_shocks: ClassVar[tuple[str, ...]] = ("liquidity",)
    options: ClassVar[Mapping[str, Option]] = {
        "b": Option(
            10.0, "liquidity b (money units); the maker's worst-case loss is b·ln n", positive_float
        ),
        "true_probabilities": Option(
            None,
            "outcome probabilities nature draws the outcome from (list in outcome order or "
            "outcome -> p; default uniform)",
            _probabilities,
        ),
        "outcome": Option(None, "force the outcome (a share good's name) instead of drawing it"),
        "resolve_at": Option(
            None,
            "time the event resolves and the run ends (default the scenario's until; 'never')",
            _resolve_at,
        ),
        "record_every": Option(1, "record prices after every k-th trade", positive_int),
    }

    @staticmethod
    def example_scenario() -> Scenario:
        """A small prediction market that resolves at time 20 (for conformance checks)."""
        from mktsim.scenarios import prediction_market

        return prediction_market.build(n_traders=12, n_noise=4, until=20.0, seed=1)

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options(self.name, self.options, options)
        self.b: float = self.opts["b"]
        self.trades = 0
        self.rejections: Counter[str] = Counter()
        self.resolved = False
        self.outcome: int | None = None
        self._payout: int | None = None
        self.withdrawn = False  # the maker stopped quoting (a full liquidity withdrawal)
        self._withdrawals: list[tuple[float, float, float]] = []  # (time, b before, b after)
        self._released = 0  # money base units returned to the liquidity providers
        self._next_fill: simpy.Event | None = None

    # ---- set-up -----------------------------------------------------------------------------
    def creations(self, scenario: Any, totals: list[float]) -> list[float] | None:
        """Units of each good (in the goods' order) the maker holds when it opens, from each
        good's total endowment ``totals``: the subsidy ``b ln k`` and the collateral for the
        most shares of one outcome traders were endowed with, in money (what :meth:`attach`
        funds), so that the run can choose a base unit with room for it. None with fewer
        than two outcomes, or where the unit that holds it would not count whole shares (at
        least one base unit per unit): :meth:`attach` refuses those, naming ``b``."""
        num = scenario.goods.numeraire_index
        shares = [t for j, t in enumerate(totals) if j != num]
        if len(shares) < 2:
            return None
        made = [0.0] * len(totals)
        made[num] = self.b * math.log(len(shares)) + max(shares)
        after = max(t + m for t, m in zip(totals, made, strict=True))
        return made if base_units_for(after) >= 1 else None

    def attach(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        # The cost function's integer scale: refused (one line) when a unit is not whole.
        self._scale = ctx.goods.whole_base
        goods, ledger = ctx.goods, ctx.ledger
        self._num = goods.numeraire_index
        self._names = tuple(n for n in goods.names if n != goods.numeraire)
        self._cols = np.array([goods.index(n) for n in self._names], dtype=np.intp)
        self._col_to_outcome = {int(c): i for i, c in enumerate(self._cols)}
        k = len(self._names)
        if k < 2:
            raise InvalidParameter(
                f"an LMSR market needs at least 2 outcomes (share goods besides the numeraire); "
                f"the scenario has {k} ({', '.join(self._names)})"
            )
        self._n_agents = ctx.scenario.n_agents
        for slot in ctx.slots:
            self._check_population(slot.population)
        self._truth = self._true_probabilities(k)
        self.outcome = self._draw_outcome(k)

        # Shares traders were endowed with are claims on the maker too: collateralise them.
        self._endowed = ledger.totals()[self._cols].astype(np.int64)
        self._collateral = int(self._endowed.max())
        subsidy = self.b * math.log(k) * self.base_units
        if not subsidy + self._collateral < MAX_BASE - int(ledger.totals()[self._num]):
            raise InvalidParameter(
                f"b(={self.b:g}) asks a subsidy of b·ln {k} = {self.b * math.log(k):.6g} units "
                f"of money, past what the ledger can hold beside the traders' money at any unit "
                f"that counts whole shares (a total of 1e{TOTAL_DIGITS} units per good)"
            )
        self._subsidy = math.ceil(subsidy)
        funding = np.zeros(len(goods), dtype=np.int64)
        funding[self._num] = self._subsidy + self._collateral
        self.maker = ledger.open_account(funding)
        self._q = np.zeros(k, dtype=np.int64)  # base units issued per outcome
        self._shift: Array | None = None  # pricing state − q (units), once liquidity changed
        self._bound = np.full(k, self.b * math.log(k))  # loss bound if each outcome resolved
        self._revenue = 0  # base units of money, net, from trades
        self._paid = np.zeros(self._n_agents, dtype=np.int64)  # money each trader paid, net
        self._bought = np.zeros((self._n_agents, k), dtype=np.int64)  # shares, net
        ctx.recorder.add_table("market_maker", MAKER_TABLE)
        ctx.log(
            "lmsr_open",
            f"b={self.b:g} over {k} outcomes ({', '.join(self._names)}); subsidy "
            f"{self._subsidy / self.base_units:g}, "
            f"collateral {self._collateral / self.base_units:g}",
        )
        self._record_prices()
        at = self.opts["resolve_at"]
        at = ctx.scenario.until if at is None else at
        if math.isfinite(at):
            ctx.env.process(self._resolution(at))

    def _check_population(self, pop: Any) -> None:
        """Refuse a population with no beliefs and no strategy given: there is nothing to trade
        on (strategies that need beliefs refuse other populations themselves)."""
        if pop.behaviour is None and not isinstance(pop, BeliefTraders):
            raise InvalidParameter(
                f"population {pop.name!r} ({pop.kind}) has no beliefs over outcomes, so lmsr "
                "cannot trade for it: lmsr runs prediction markets (goods = money + one share "
                "per outcome, e.g. `mktsim run prediction_market` or "
                "mktsim.beliefs.prediction_market); give the population behaviour 'noise' to "
                "trade at random"
            )

    def _true_probabilities(self, k: int) -> Array | None:
        truth = self.opts["true_probabilities"]
        if truth is None:
            return None
        if isinstance(truth, dict):
            unknown = [o for o in truth if o not in self._names]
            if unknown:
                raise UnknownName("outcome in true_probabilities", unknown[0], list(self._names))
            truth = [truth.get(o, 0.0) for o in self._names]
        p = np.asarray(truth, dtype=float)
        if p.shape != (k,) or not np.isfinite(p).all() or (p < 0).any():
            raise InvalidParameter(
                f"true_probabilities(={truth}) must be {k} probabilities >= 0, one per outcome"
            )
        if abs(p.sum() - 1.0) > 1e-9:
            raise InvalidParameter(f"true_probabilities(={truth}) must sum to 1")
        return p / p.sum()

    def _draw_outcome(self, k: int) -> int:
        forced = self.opts["outcome"]
        if forced is not None:
            if forced not in self._names:
                raise UnknownName("outcome", str(forced), list(self._names))
            return self._names.index(forced)
        p = self._truth if self._truth is not None else np.full(k, 1.0 / k)
        return int(self.ctx.streams.generator("lmsr:outcome").choice(k, p=p))

    # ---- public interface -------------------------------------------------------------------
    @property
    def share_columns(self) -> NDArray[np.intp]:
        """Ledger columns of the outcomes' share goods, in outcome order."""
        return self._cols

    @property
    def q(self) -> Array:
        """Shares issued per outcome (units), ``float64[k]``: what the maker owes."""
        return self._q / self.base_units

    @property
    def state(self) -> Array:
        """The pricing state (units), ``float64[k]``: the point the cost function is evaluated
        at. Equal to :attr:`q` unless liquidity was withdrawn (see the module docstring)."""
        if self._shift is None:
            return self.q
        return self.q + self._shift

    def prices(self) -> Array:
        """The maker's prices ``float64[k]`` (sum to 1)."""
        return _lmsr.prices(self.state, self.b)

    def quote(self) -> LMSRQuote:
        p = self.prices()
        shown = self._names[self.outcome] if self.resolved and self.outcome is not None else None
        return LMSRQuote(
            float(self.ctx.env.now),
            dict(zip(self._names, p.tolist(), strict=True)),
            self.b,
            tuple(self.q.tolist()),
            self._names,
            self.resolved,
            shown,
            tuple(self.state.tolist()),
            not (self.resolved or self.withdrawn),
        )

    def signals(self, accuracy: float, rng: np.random.Generator, size: int) -> NDArray[np.intp]:
        """Nature's private signals about the outcome (for informed traders; the maker never
        looks at them): each is the true outcome with probability ``accuracy``, else one of the
        other outcomes uniformly."""
        if not (0.0 <= accuracy <= 1.0):
            raise InvalidParameter(f"accuracy(={accuracy}) must be in [0, 1]")
        assert self.outcome is not None
        k = len(self._names)
        right = rng.random(size) < accuracy
        wrong = (self.outcome + 1 + rng.integers(0, k - 1, size)) % k
        return np.where(right, self.outcome, wrong).astype(np.intp)

    def updated(self) -> simpy.Event:
        """An event that fires at the next filled trade (its value: the receipt)."""
        if self._next_fill is None:
            self._next_fill = self.ctx.env.event()
        return self._next_fill

    def submit(self, order: Swap) -> simpy.Event:
        """Execute an order; the returned event, already processed, holds its
        :class:`~mktsim.orders.Receipt`."""
        return settled(self.ctx.env, self.execute(order))

    def execute(self, order: Swap) -> Receipt:
        """Execute an order at once and return its receipt (filled, or refused with a reason)."""
        if not isinstance(order, Swap):
            return self._refuse("lmsr takes swap orders only")
        agent = int(order.agent)
        if not 0 <= agent < self._n_agents:
            return self._refuse("unknown agent")
        if order.good not in self._names:
            return self._refuse("not an outcome's share good")
        col = int(self._cols[self._names.index(order.good)])
        if self.resolved:
            return self._refuse("market resolved")
        if self.withdrawn:
            return self._refuse("maker withdrew")
        units = round(float(order.amount) * self.base_units)
        if units < 1:
            return self._refuse("amount below one base unit")
        if order.side == BUY and order.exact == "in":  # a money budget
            money = min(units, int(self.ctx.ledger.holdings[agent, self._num]))
            if money <= 0:
                return self._refuse("insufficient money")
            units, _ = _lmsr.budget_order_units(
                self.state, self._col_to_outcome[col], money, self.b, scale=self._scale
            )
            if units <= 0:
                return self._refuse("budget buys no share")
            return self._fill(agent, col, units, order.limit)
        if order.side == BUY:
            return self._fill(agent, col, units, order.limit)
        if order.exact == "out":
            return self._refuse("sale for an exact sum not offered")
        return self._fill(agent, col, -units, order.limit)

    def trader_profit(self) -> dict[str, float]:
        """Trading profit per population (money units): the value of the shares each agent
        bought net, less the money it paid net. Valued at resolution (a share of the outcome 1,
        the others 0), or before it at the maker's current prices."""
        if self.resolved and self.outcome is not None:
            value = np.zeros(len(self._names))
            value[self.outcome] = 1.0
        else:
            value = self.prices()
        out = {}
        for slot in self.ctx.slots:
            rows = slot.row_ids
            shares = self._bought[rows].astype(np.float64) @ value
            out[slot.name] = float((shares.sum() - float(self._paid[rows].sum())) / self.base_units)
        return out

    def summary(self) -> dict[str, Any]:
        """Run summary. The regret entries read the maker as an online learner (Chen & Vaughan
        2010): its prices softmax(q/b) are the Hedge (exponential weights) distribution over
        outcomes on the cumulative shares sold, learning rate 1/b; each trade's charge is what
        the learner "earns", and the shares the adversary's gains. ``maker_regret`` is its
        regret against the best fixed outcome in hindsight, max_ω q_ω − revenue (money units;
        what it would owe if that outcome resolved, less what it charged: its worst-case loss
        on the trades), bounded by ``maker_regret_bound`` (b·ln n, lowered by liquidity
        withdrawals as ``maker_loss_bound``); ``maker_regret_outcome`` names that outcome."""
        q = self._q
        loss = None
        if self._payout is not None and self.outcome is not None:
            loss = float(q[self.outcome] - self._revenue) / self.base_units
        best = int(np.argmax(q))
        regret = {
            "maker_regret": float(q[best] - self._revenue) / self.base_units,
            "maker_regret_bound": float(self._bound.max()),
            "maker_regret_outcome": self._names[best],
        }
        return {
            "method": "lmsr",
            "rounds": self.trades,
            "converged": False,
            "b": self.b,
            "b_initial": self.opts["b"],
            "outcomes": list(self._names),
            "true_probabilities": None
            if self._truth is None
            else dict(zip(self._names, self._truth.tolist(), strict=True)),
            "resolved": self.resolved,
            "outcome": self._names[self.outcome]
            if self.resolved and self.outcome is not None
            else None,
            "trades": self.trades,
            "rejections": dict(sorted(self.rejections.items())),
            "maker_subsidy": self._subsidy / self.base_units,
            "maker_collateral": self._collateral / self.base_units,
            "maker_revenue": self._revenue / self.base_units,
            "maker_inventory": dict(zip(self._names, (q / self.base_units).tolist(), strict=True)),
            "maker_payout": None if self._payout is None else self._payout / self.base_units,
            "maker_loss": loss,
            "maker_worst_loss": float(q.max() - self._revenue) / self.base_units,
            "maker_loss_bound": float(self._bound.max()),
            "maker_withdrawn": self._released / self.base_units,
            "liquidity_withdrawals": [
                {"time": t, "b_before": b0, "b_after": b1} for t, b0, b1 in self._withdrawals
            ],
            "trader_profit": self.trader_profit(),
            "trader_profit_valued_at": "resolution" if self.resolved else "maker prices",
            **regret,
        }

    # ---- shocks -----------------------------------------------------------------------------
    def apply_shock(self, shock: Any) -> str:
        """Liquidity withdrawal (see the module docstring). Returns what was done, for the
        events table."""
        if shock.kind == "liquidity":
            return self._withdraw(float(shock.fraction))
        raise InvalidParameter(f"lmsr does not support {shock.kind} shocks")

    def _withdraw(self, fraction: float) -> str:
        """Lower b by ``fraction`` with prices continuous; release the money the new worst case
        no longer needs."""
        if self.resolved or self.withdrawn:
            return "nothing to withdraw: the maker no longer quotes"
        ledger, num, now = self.ctx.ledger, self._num, self.ctx.env.now
        p = self.prices()
        b, b_new = self.b, self.b * (1.0 - fraction)
        with np.errstate(divide="ignore"):
            log_p = np.log(p)
        # loss if ω resolves: b0·ln n + Σ (b_before − b_after)·ln p_ω(at each change) + ...
        self._bound = self._bound + (b - b_new) * log_p
        if fraction < 1.0:
            self._shift = self.state * (b_new / b) - self.q
            self.b = b_new
            detail = f"b {b:g} -> {b_new:g}, prices unchanged"
        else:
            self.withdrawn = True
            detail = "the maker stopped quoting"
        self._withdrawals.append((now, b, b_new if fraction < 1.0 else 0.0))
        # What the maker must still be able to pay if ω resolves: every outstanding share of ω
        # plus the most it can still lose, b'·ln(1/p_ω); the rest goes back to the providers.
        ahead = -b_new * log_p * self.base_units if fraction < 1.0 else np.zeros_like(p)
        need = (self._endowed + self._q).astype(np.float64) + ahead
        released = 0
        if np.isfinite(need).all():
            required = math.ceil(float(need.max())) + len(self._names)  # rounding margin
            released = max(int(ledger.holdings[self.maker, num]) - required, 0)
        if released:
            money = np.zeros(len(self.ctx.goods), dtype=np.int64)
            money[num] = released
            ledger.destroy(self.maker, money, "lmsr: liquidity withdrawn")
            self._released += released
        return (
            f"liquidity withdrawal {fraction:g}: {detail}; {released / self.base_units:g} money "
            f"returned to the liquidity providers; loss bound now {self._bound.max():.6g}"
        )

    # ---- settlement -------------------------------------------------------------------------
    def _refuse(self, reason: str) -> Receipt:
        self.rejections[reason] += 1
        return rejected(reason)

    def _fill(self, agent: int, col: int, shares: int, limit: float | None = None) -> Receipt:
        ledger = self.ctx.ledger
        h = ledger.holdings
        num, maker, i = self._num, self.maker, self._col_to_outcome[col]
        dq = np.zeros(len(self._names))
        dq[i] = shares / self.base_units
        cost = _lmsr.trade_cost(self.state, dq, self.b)
        charge = _lmsr.charge_units(cost, self._scale)
        if shares > 0 and charge > h[agent, num]:
            return self._refuse("insufficient money")
        if shares < 0:
            if -shares > h[agent, col]:
                return self._refuse("insufficient shares")
            if charge >= 0:
                return self._refuse("proceeds round to zero")
        if limit is not None:
            price = charge / shares
            if (price > limit) if shares > 0 else (price < limit):
                return self._refuse("limit")
        # Every outstanding share of any outcome must stay payable (float dust aside, the LMSR
        # bound guarantees it; this keeps the ledger from ever being asked to overdraw).
        outstanding = self._endowed + self._q
        outstanding[i] += shares
        if int(h[maker, num]) + charge < int(outstanding.max()):
            return self._refuse("maker could not cover payouts")
        ledger.round = self.trades + 1
        vector = np.zeros(len(self.ctx.goods), dtype=np.int64)
        vector[col] = abs(shares)
        if shares > 0:
            ledger.create(maker, vector, "lmsr: shares minted for a sale")
            tid = ledger.trade(agent, maker, col, shares, charge, charge / shares)
        else:
            tid = ledger.trade(maker, agent, col, -shares, -charge, charge / shares)
            ledger.destroy(maker, vector, "lmsr: shares bought back and burned")
        self._q[i] += shares
        self._revenue += charge
        self._paid[agent] += charge
        self._bought[agent, i] += shares
        self.trades += 1
        p = self.prices()
        now = self.ctx.env.now
        self.ctx.recorder.append_row(
            "market_maker",
            (
                now,
                tid,
                agent,
                col,
                shares / self.base_units,
                cost,
                charge / self.base_units,
                self._q[i] / self.base_units,
                self._revenue / self.base_units,
                float(self._q.max() - self._revenue) / self.base_units,
                float(p[i]),
            ),
        )
        if self.trades % self.opts["record_every"] == 0:
            self._record_prices(p)
        receipt = Receipt(
            "filled",
            None,
            "",
            abs(shares) / self.base_units,
            charge / shares,
            charge / self.base_units,
        )
        if self._next_fill is not None:
            fired, self._next_fill = self._next_fill, None
            fired.succeed(receipt)
        return receipt

    def _record_prices(self, p: Array | None = None) -> None:
        p = self.prices() if p is None else p
        record, now, rnd = self.ctx.recorder.append_row, self.ctx.env.now, self.trades
        record("prices", (now, rnd, self._num, 1.0, 1.0))
        for col, price in zip(self._cols.tolist(), p.tolist(), strict=True):
            record("prices", (now, rnd, col, price, price))

    def _resolution(self, at: float) -> Generator[simpy.Event, Any, None]:
        env = self.ctx.env
        if at > env.now:
            yield env.timeout(at - env.now)
        self.resolve()
        self.ctx.done.succeed()

    def check_shock(self, shock: Any, goods: Any) -> None:
        """Refuse, before the run, an endowment shock that would mint shares: each is a claim on
        the maker, which collateralises only the shares held when it opens (destroying shares
        only lowers what it owes)."""
        if shock.kind == "endowment" and shock.good != goods.numeraire and shock.factor > 1:
            raise InvalidParameter(
                f"endowment shock on {shock.good!r} with factor(={shock.factor:g}) > 1 would "
                "mint shares, claims on the lmsr maker that it never collateralised: shares "
                "may only be destroyed (factor <= 1)"
            )

    def resolve(self) -> None:
        """Resolve the event now: redeem every share of the outcome for one unit of money from
        the maker, destroy all shares, and close the market."""
        if self.resolved:
            return
        assert self.outcome is not None
        ctx, ledger = self.ctx, self.ctx.ledger
        if self.trades % self.opts["record_every"]:
            self._record_prices()  # the last trades' state, if sampling skipped it
        self.resolved = True
        win = int(self._cols[self.outcome])
        held = np.array(ledger.holdings[: self._n_agents, win], dtype=np.int64)
        payout = 0
        for agent in np.flatnonzero(held > 0).tolist():
            qty = int(held[agent])
            ledger.trade(self.maker, agent, win, qty, qty, 1.0)
            payout += qty
        self._payout = payout
        for row in [*range(self._n_agents), self.maker]:
            shares = np.zeros(len(ctx.goods), dtype=np.int64)
            shares[self._cols] = ledger.holdings[row, self._cols]
            if shares.any():
                ledger.destroy(row, shares, "lmsr: shares expire at resolution")
        loss = float(self._q[self.outcome] - self._revenue) / self.base_units
        ctx.log(
            "resolution",
            f"outcome {self._names[self.outcome]}: paid {payout / self.base_units:g} for "
            f"{int((held > 0).sum())} holders' shares; maker loss {loss:.6g} "
            f"(bound {'' if self._withdrawals else 'b·ln n = '}{self._bound.max():.6g})",
        )
