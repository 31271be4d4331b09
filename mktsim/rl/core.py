"""The step interface's engine: one scenario under one mechanism, advanced ``dt`` at a time,
with some agents acting through orders you choose (no dependency beyond mktsim itself).

:class:`StepCore` wires a run the way :func:`mktsim.simulate` does (ledger, recorder, context,
strategies, market wrappers and the scenario's shocks) but, instead of running to the horizon,
lets a caller act for the *learners* and then advance the SimPy clock by ``dt``. The learners
form a population of their own driven by the ``external`` strategy (it starts no process), so
they act only through the orders this engine submits on their behalf; every other agent runs its
usual strategy. Learners are either added (a population ``learner``) or split out of an existing
population: agents ``agents`` of population ``P`` become a population ``P_learner`` with the same
preferences (or values, beliefs, technology) and endowments, placed right after ``P``, whose
other agents keep their order and their strategy. Ledger rows are assigned population by
population, so every other population keeps its rows; within ``P``'s block the others come
first, in their order, and the learners last. :class:`mktsim.rl.MarketEnv` (Gymnasium) and
:class:`mktsim.rl.ParallelMarketEnv` (PettingZoo) are thin shells around it.

Actions become orders by the mechanism's ``accepts``:

* **book-like** (it takes :class:`~mktsim.orders.Limit`: ``order_book``, ``call_market``): an
  action is ``float[k, 4]`` in [-1, 1], one row per traded good, ``(bid size, bid offset, ask
  size, ask offset)``. Each step first withdraws the learner's orders still resting, then posts a
  bid of ``max_qty·(a0 + 1)/2`` units at ``ref·(1 − max_offset·a1)`` and an ask of
  ``max_qty·(a2 + 1)/2`` units at ``ref·(1 + max_offset·a3)`` (``ref`` the good's reference
  price; a negative offset crosses it). Sizes are cut to whole lots and to what the agent holds,
  bids rounded down and asks up to the tick; a side whose size rounds to no lot is not posted.
* **swap** (it takes :class:`~mktsim.orders.Swap`: ``cpmm``, ``lmsr``): an action is ``float[k]``
  in [-1, 1]: ``a > 0`` spends ``a·max_trade`` money on the good, ``a < 0`` sells goods worth
  ``|a|·max_trade`` at the reference price (at most what the agent holds); ``|a| < 1e-3`` does
  nothing.

The observation is ``float32[2 + 4k]``, entries clipped to [0, 1e9]: ``t / horizon``, money
held over the initial wealth ``w0``, then per traded good its reference price, best bid and best
ask (the pool's marginal bid and ask; the maker's price for an LMSR) over the good's reference
price at reset ``p0``, and the units held times ``p0 / w0``.

**Reward** is the change in the agent's money-metric wealth over the step: its holdings valued at
the quote's reference prices (numeraire = 1), ``w = m + Σ_g h_g·P_g``, marked to market every step
(so the rewards of an episode add up to its final wealth less its initial one, both at the
prices of their time). Holdings reserved by resting orders count: they are still the agent's.
Where the quote has no price yet (an empty book) the last price seen is used, and before any, the
scenario's reference equilibrium price (1 if it has none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim import wrappers
from mktsim.errors import InvalidParameter, MktsimError, UnknownName
from mktsim.goods import Goods
from mktsim.ledger import Ledger
from mktsim.ledger_range import check_representable, run_goods
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import BUY, SELL, Cancel, Limit, Receipt, Swap, order_name
from mktsim.pairing import assign_strategies, start_strategies
from mktsim.population import Consumers
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.registry import resolve
from mktsim.scenario import Scenario, build_scenario
from mktsim.shocks import check_supported, schedule
from mktsim.utility import CobbDouglas, Utility

__all__ = ["DEFAULT_SCENARIOS", "LEARNER", "OBS_HIGH", "StepCore"]

#: Largest observation entry (entries are clipped to [0, OBS_HIGH]).
OBS_HIGH = 1e9

#: Name of the population of learners the engine adds when none is named.
LEARNER = "learner"

#: mechanism -> (shipped scenario, its parameters, mechanism options, learners' endowment):
#: what an environment built with no scenario runs. The order book's is Gode and Sunder's first
#: market (zero-intelligence traders, induced values around 100); the pools' a small Cobb-Douglas
#: exchange economy whose consumers swap to their margins; the LMSR's a prediction market.
DEFAULT_SCENARIOS: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, float]]] = {
    "order_book": (
        "gode_sunder",
        {"market": 1, "periods": 1, "period_length": 50.0, "clear_on_trade": False},
        {},
        {"money": 2000.0, "good": 10.0},
    ),
    "call_market": ("gode_sunder", {"market": 1, "periods": 1, "period_length": 50.0}, {}, {}),
    "cpmm": ("cobb_douglas", {"n_agents": 20, "n_goods": 3}, {"quiet": "never"}, {}),
    "lmsr": ("prediction_market", {"n_traders": 20, "n_noise": 5, "until": 50.0}, {}, {}),
}

Array = NDArray[np.float64]


def _mode(cls: Any) -> str:
    accepts = frozenset(getattr(cls, "accepts", ()))
    if Limit in accepts:
        return "book"
    if Swap in accepts:
        return "swap"
    takes = ", ".join(sorted(order_name(k) for k in accepts)) or "no"
    raise InvalidParameter(
        f"mechanism {cls.name!r} takes {takes} orders; the step interface acts through limit "
        "orders or swaps: use order_book, call_market, cpmm or lmsr"
    )


class StepCore:
    """A scenario under a mechanism, advanced ``dt`` at a time, with learners acting by orders.

    Args:
        scenario: a :class:`~mktsim.scenario.Scenario`, a shipped scenario's name, or None for
            the mechanism's default (:data:`DEFAULT_SCENARIOS`).
        mechanism: a registered name, ``module:Class`` or class; default the scenario's own
            (``order_book`` when neither is given).
        learners: how many learning agents to add as a population named ``learner`` (ignored
            when ``population`` is given).
        population: instead, an existing population some of whose agents learn.
        agents: the indices (within ``population``) of the agents who learn, split out into a
            population ``<population>_learner`` (the rest keep their strategy); None: the whole
            population learns (it is then driven by ``external`` as it is).
        endowment: the added learners' holdings, good -> units (a good not named: the mean
            endowment of the scenario's agents).
        dt: simulation time per step (> 0).
        max_steps: steps before an episode is truncated (default: the scenario's horizon / dt).
        max_qty: units per limit order at full size (book-like; default 10 lots).
        max_offset: relative price offset at full action (book-like).
        max_trade: money per swap at full action (swap; default 5% of a learner's initial
            wealth).
        options: mechanism options, over the scenario's defaults for the mechanism.

    Raises:
        InvalidParameter: a bad argument, a mechanism that takes neither limit orders nor swaps,
            or a scenario and mechanism that cannot run together (the pairing's one-line
            refusal).
    """

    def __init__(
        self,
        scenario: Scenario | str | None = None,
        mechanism: Any = None,
        *,
        learners: int = 1,
        population: str | None = None,
        agents: Sequence[int] | None = None,
        endowment: Mapping[str, float] | None = None,
        dt: float = 1.0,
        max_steps: int | None = None,
        max_qty: float | None = None,
        max_offset: float = 0.1,
        max_trade: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        defaults: dict[str, Any] = {}
        if mechanism is not None:
            _mode(resolve(mechanism))  # a mechanism it cannot act through, refused first
        if isinstance(scenario, str):  # a shipped scenario (or a script), under its mechanism
            scenario = build_scenario(scenario)
        elif scenario is None:
            name = "order_book" if mechanism is None else resolve(mechanism).name
            if name not in DEFAULT_SCENARIOS:
                raise InvalidParameter(
                    f"mechanism {name!r} has no default scenario for the step interface "
                    f"(those of {', '.join(sorted(DEFAULT_SCENARIOS))} have): give a scenario"
                )
            script, params, defaults, given = DEFAULT_SCENARIOS[name]
            scenario = build_scenario(script, **params)
            endowment = {**given, **dict(endowment or {})}
            mechanism = name if mechanism is None else mechanism
        if not isinstance(scenario, Scenario):
            raise InvalidParameter(f"scenario must be a Scenario or a name, got {scenario!r}")
        self.cls = resolve(scenario.mechanism if mechanism is None else mechanism)
        self.mode = _mode(self.cls)
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise InvalidParameter(f"dt(={dt!r}) must be > 0 and finite")
        if not (math.isfinite(max_offset) and 0 < max_offset < 1):
            raise InvalidParameter(f"max_offset(={max_offset!r}) must be in (0, 1)")
        for key, value in (("max_qty", max_qty), ("max_trade", max_trade)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidParameter(f"{key}(={value!r}) must be > 0 and finite")
        self.dt = float(dt)
        self.max_offset = float(max_offset)
        self._max_qty, self._max_trade = max_qty, max_trade
        self.original = scenario
        self.scenario, self.population = self._with_learners(
            scenario, learners, population, agents, endowment
        )
        slots = {s.name: s for s in PopulationSlot.all_of(self.scenario)}
        self.rows: tuple[int, ...] = tuple(slots[self.population].row_ids.tolist())
        if population is None:
            self.rows = self.rows[: int(learners)]
        self.options = {
            **defaults,
            **dict(self.scenario.mechanism_options.get(self.cls.name, {})),
            **dict(options or {}),
        }
        self.horizon = float(self.scenario.until)
        steps = math.ceil(self.horizon / self.dt - 1e-9)
        if max_steps is not None and (
            isinstance(max_steps, bool)
            or not isinstance(max_steps, (int, np.integer))
            or max_steps < 1
        ):
            raise InvalidParameter(f"max_steps(={max_steps!r}) must be an integer >= 1")
        self.max_steps = steps if max_steps is None else min(int(max_steps), steps)
        self.goods = [g for g in self.scenario.goods.names if g != self.scenario.goods.numeraire]
        self._fallback: dict[str, float] | None = None
        # Which strategy drives each population depends only on the scenario and the mechanism:
        # decided (or refused) once, here, not at every reset.
        self._assigned = assign_strategies(self.cls, PopulationSlot.all_of(self.scenario))
        self.reset(0)  # wire once now: an impossible pairing is refused at construction

    # ---- set-up -----------------------------------------------------------------------------
    @staticmethod
    def _with_learners(
        scenario: Scenario,
        learners: int,
        population: str | None,
        agents: Sequence[int] | None,
        endowment: Mapping[str, float] | None,
    ) -> tuple[Scenario, str]:
        """The scenario with its learners' population driven by ``external``."""
        pops = list(scenario.populations)
        names = [p.name for p in pops]
        if population is not None:
            if population not in names:
                raise UnknownName("population", str(population), names)
            i = names.index(population)
            pop = pops[i]
            chosen = _indices(agents, population, pop.size)
            if chosen is None or len(chosen) == pop.size:
                pops[i] = _driven_externally(pop, pop.name)
                return attrs.evolve(scenario, populations=pops), population
            name = f"{population}_{LEARNER}"
            if name in names:
                raise InvalidParameter(
                    f"the scenario already has a population named {name!r}, the name the "
                    f"learners split out of {population!r} would take"
                )
            rest = np.setdiff1d(np.arange(pop.size), chosen).astype(np.intp)
            parts = []
            for rows in (rest, np.asarray(chosen, dtype=np.intp)):
                try:
                    part = _take(pop, rows)
                except InvalidParameter as exc:
                    raise InvalidParameter(
                        f"population {population!r} cannot be split agent by agent ({exc}); "
                        "let the whole population learn (no agent) or add a learner"
                    ) from exc
                parts.append(part)
            pops[i : i + 1] = [parts[0], _driven_externally(parts[1], name)]
            return attrs.evolve(scenario, populations=pops), name
        if agents is not None:
            raise InvalidParameter(f"agents(={agents!r}) needs population= (whose agents they are)")
        if isinstance(learners, bool) or not isinstance(learners, (int, np.integer)):
            raise InvalidParameter(f"learners(={learners!r}) must be an integer >= 1")
        if learners < 1:
            raise InvalidParameter(f"learners(={learners!r}) must be >= 1")
        if LEARNER in names:
            raise InvalidParameter(
                f"the scenario already has a population named {LEARNER!r}: name it as "
                "population= to learn as it"
            )
        goods = scenario.goods.names
        row = scenario.endowments().mean(axis=0)
        for good, units in dict(endowment or {}).items():
            if good not in goods:
                raise UnknownName("good in endowment", str(good), list(goods))
            if not (math.isfinite(units) and units >= 0):
                raise InvalidParameter(f"endowment[{good!r}](={units!r}) must be >= 0 and finite")
            row[goods.index(good)] = units
        n = int(learners)
        # The utility is nominal (the market's reports may read it); learners act by orders.
        added = Consumers(
            LEARNER,
            CobbDouglas(np.full((n, len(goods)), 1.0 / len(goods))),
            np.repeat(row[None, :], n, axis=0),
            behaviour="external",
        )
        return attrs.evolve(scenario, populations=[*pops, added]), LEARNER

    def reset(self, seed: int) -> None:
        """Start a fresh run of the scenario with run seed ``seed`` (every random stream of the
        run derives from it, so the same seed and the same actions replay exactly)."""
        scenario, cls = self.scenario, self.cls
        planned = tuple(scenario.shocks)
        goods = run_goods(scenario, planned)
        initial = check_representable(scenario, planned, goods)
        mech = cls(**self.options)
        env = simpy.Environment()
        recorder = Recorder(
            {"goods": scenario.goods.names, "populations": [p.name for p in scenario.populations]}
        )
        ledger = Ledger(goods, initial, recorder, lambda: env.now)
        slots = PopulationSlot.all_of(scenario)
        assigned = dict(self._assigned)
        done = env.event()
        ctx = MarketContext(
            env,
            scenario,
            goods,
            ledger,
            recorder,
            Streams(int(seed)),
            slots,
            done,
            strategies=assigned,
        )
        wrappable = wrappers.provided(mech) if len(assigned) == len(slots) else frozenset()
        check_supported(planned, mech, scenario.goods, [s.name for s in slots], wrappable)
        market = wrappers.wrap(mech, env, planned, recorder)
        if planned:
            env.process(schedule(ctx, market, planned, lambda: None))
        mech.attach(ctx)
        start_strategies(market, ctx, assigned)
        self.env, self.ctx, self.ledger, self.recorder = env, ctx, ledger, recorder
        self.mechanism, self.market = mech, market
        self.steps = 0
        self._seen: dict[str, float] = {}
        self._resting: dict[int, list[tuple[str, int]]] = {row: [] for row in self.rows}
        self.p0 = self.prices()
        self.w0 = {row: self.wealth(row) for row in self.rows}

    # ---- reading ----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once the market has finished (an event resolved, sessions ended, pools quiet)."""
        return bool(self.ctx.done.triggered)

    @property
    def truncated(self) -> bool:
        """True once the episode has run ``max_steps`` steps or reached the horizon."""
        return self.steps >= self.max_steps or self.env.now >= self.horizon - 1e-9

    def prices(self) -> dict[str, float]:
        """Reference price per traded good now (see the module docstring for the fallbacks)."""
        shown = self.market.quote().prices
        out = {}
        for good in self.goods:
            price = shown.get(good)
            if price is not None and math.isfinite(price) and price > 0:
                self._seen[good] = float(price)
            out[good] = self._seen.get(good) or self._reference(good)
        return out

    def _reference(self, good: str) -> float:
        if self._fallback is None:
            from mktsim.equilibrium import equilibrium

            try:
                eq = equilibrium(self.original)
                prices = eq.prices if eq.status in ("unique", "found") else None
            except MktsimError:
                prices = None
            self._fallback = {g: float(v) for g, v in (prices or {}).items()}
        price = self._fallback.get(good, 1.0)
        return price if math.isfinite(price) and price > 0 else 1.0

    def holdings(self, row: int) -> Array:
        """The agent's holdings ``float64[g]`` in units (goods order)."""
        return np.asarray(self.ledger.holdings[row], dtype=np.float64) / self.ledger.base_units

    def wealth(self, row: int, prices: Mapping[str, float] | None = None) -> float:
        """Money-metric wealth: money plus goods at reference prices (numeraire = 1)."""
        prices = self.prices() if prices is None else prices
        held = self.holdings(row)
        names = self.scenario.goods.names
        return float(
            held[self.scenario.goods.numeraire_index]
            + sum(held[names.index(g)] * prices[g] for g in self.goods)
        )

    def observe(self, row: int) -> NDArray[np.float32]:
        """The agent's observation (see the module docstring)."""
        quote = self.market.quote()
        prices = self.prices()
        held = self.holdings(row)
        names = self.scenario.goods.names
        w0 = max(self.w0.get(row, 1.0), 1e-12)
        out = [
            min(self.env.now / self.horizon, 1.0),
            held[self.scenario.goods.numeraire_index] / w0,
        ]
        for good in self.goods:
            p0, ref = self.p0[good], prices[good]
            bid, ask = _best(quote, good, ref)
            out += [ref / p0, bid / p0, ask / p0, held[names.index(good)] * p0 / w0]
        return np.clip(np.asarray(out, dtype=np.float32), 0.0, OBS_HIGH)

    @property
    def observation_size(self) -> int:
        return 2 + 4 * len(self.goods)

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (len(self.goods), 4) if self.mode == "book" else (len(self.goods),)

    # ---- acting -----------------------------------------------------------------------------
    def act(self, row: int, action: Any) -> list[Receipt]:
        """Submit the orders ``action`` stands for on behalf of agent ``row``; their receipts."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(self.action_shape), -1.0, 1.0)
        if not np.isfinite(a).all():
            raise InvalidParameter(f"action(={action!r}) must be finite")
        if self.done:
            return []
        orders = self._book_orders(row, a) if self.mode == "book" else self._swaps(row, a)
        receipts = []
        for order in orders:
            event = self.market.submit(order)
            receipt = event.value if event.triggered else None
            if receipt is None:  # held by a latency spike: its receipt comes later
                receipt = Receipt("pending")
            receipts.append(receipt)
            if (
                isinstance(order, Limit)
                and receipt.order_id is not None
                and (receipt.resting > 0 or receipt.status == "pending")
            ):
                self._resting[row].append((order.good, receipt.order_id))
        return receipts

    def _book_orders(self, row: int, a: Array) -> list[Any]:
        quote = self.market.quote()
        tick = float(getattr(quote, "tick", 0.0) or 0.0)
        lot = float(getattr(quote, "lot", 0.0) or 0.0)
        orders: list[Any] = [Cancel(row, good, oid) for good, oid in self._resting[row]]
        self._resting[row] = []
        max_qty = self._max_qty if self._max_qty is not None else 10 * (lot or 1.0)
        prices = self.prices()
        held = self.holdings(row)
        names = self.scenario.goods.names
        cash = held[self.scenario.goods.numeraire_index]
        for good, (bq, bo, aq, ao) in zip(self.goods, a, strict=True):
            ref = prices[good]
            bid = _on_grid(ref * (1.0 - self.max_offset * bo), tick, math.floor)
            ask = _on_grid(ref * (1.0 + self.max_offset * ao), tick, math.ceil)
            size = max_qty * (bq + 1.0) / 2.0
            size = min(size, cash / bid)
            size = _lots(size, lot, self.ledger.base_units)
            if size > 0:
                orders.append(Limit(row, good, BUY, size, bid))
                cash -= size * bid
            size = _lots(
                min(max_qty * (aq + 1.0) / 2.0, held[names.index(good)]),
                lot,
                self.ledger.base_units,
            )
            if size > 0:
                orders.append(Limit(row, good, SELL, size, ask))
        return orders

    def _swaps(self, row: int, a: Array) -> list[Swap]:
        prices = self.prices()
        held = self.holdings(row)
        names = self.scenario.goods.names
        budget = self._max_trade
        if budget is None:
            budget = 0.05 * max(self.w0.get(row, 0.0), 1e-9)
        cash = held[self.scenario.goods.numeraire_index]
        orders = []
        for good, x in zip(self.goods, a.tolist(), strict=True):
            if x >= 1e-3:
                money = min(x * budget, cash)
                if money * self.ledger.base_units >= 1:
                    orders.append(Swap(row, good, BUY, money))
                    cash -= money
            elif x <= -1e-3:
                units = min(-x * budget / prices[good], held[names.index(good)])
                if units * self.ledger.base_units >= 1:
                    orders.append(Swap(row, good, SELL, units))
        return orders

    def advance(self) -> None:
        """Run the market ``dt`` further (or until it finishes); count the step."""
        self.steps += 1
        if self.done:
            return
        env = self.env
        env.run(until=env.any_of([self.ctx.done, env.timeout(self.dt)]))

    def conserved(self) -> bool:
        """The ledger's exact conservation check (every good, no negative holding)."""
        return bool(self.ledger.conserved())


def _indices(agents: Sequence[int] | None, population: str, size: int) -> list[int] | None:
    """The learners' indices within a population of ``size`` agents, checked and sorted."""
    if agents is None:
        return None
    chosen = list(agents)
    if not chosen or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < size
        for k in chosen
    ):
        shown = chosen[0] if len(chosen) == 1 else agents
        raise InvalidParameter(
            f"agent(={shown!r}) must be an index in population {population!r} (0..{size - 1})"
        )
    if len(set(chosen)) != len(chosen):
        raise InvalidParameter(f"agents(={agents!r}) name an agent twice")
    return sorted(int(k) for k in chosen)


def _driven_externally(pop: Any, name: str) -> Any:
    """``pop`` renamed ``name`` and driven by ``external`` (no process: orders come from us)."""
    return attrs.evolve(pop, name=name, behaviour="external", behaviour_options={})


def _take(value: Any, rows: NDArray[np.intp], size: int | None = None) -> Any:
    """``value`` restricted to the agents ``rows`` of a population of ``size``: every per-agent
    array (first axis ``size``) is indexed, a utility family takes its rows, and a per-agent
    parameter object (a technology: attrs with one row per firm) is restricted field by field;
    everything shared by the population (goods, names, options, scalars) stays as it is."""
    if size is None:
        size = int(value.size)
    if isinstance(value, np.ndarray):
        return value[rows] if value.ndim >= 1 and value.shape[0] == size else value
    if isinstance(value, Utility):
        return value.take(rows)
    if attrs.has(type(value)) and not isinstance(value, Goods):
        changes = {}
        for f in attrs.fields(type(value)):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = _take(old, rows, size)
            if new is not old:
                changes[f.alias or f.name] = new
        return attrs.evolve(value, **changes) if changes else value
    return value


def _best(quote: Any, good: str, ref: float) -> tuple[float, float]:
    """Best bid and ask of ``good`` as the quote shows them (the reference price where a side
    is missing or the market shows none)."""
    books = getattr(quote, "goods", None)
    if isinstance(books, Mapping) and good in books:
        book = books[good]
        bid, ask = getattr(book, "best_bid", None), getattr(book, "best_ask", None)
        return (ref if bid is None else float(bid)), (ref if ask is None else float(ask))
    pools = getattr(quote, "pools", None)
    if isinstance(pools, Mapping) and good in pools:
        return float(pools[good].bid), float(pools[good].ask)
    return ref, ref


def _on_grid(price: float, tick: float, direction: Any) -> float:
    """``price`` on the tick grid (rounded by ``direction``), at least one tick."""
    if tick <= 0:
        return max(price, 1e-9)
    ticks = max(int(direction(price / tick + (1e-9 if direction is math.floor else -1e-9))), 1)
    return ticks * tick


def _lots(size: float, lot: float, base_units: float) -> float:
    """Whole lots of ``size`` (0.0 when below one)."""
    if lot <= 0:
        return max(size, 0.0) if size * base_units >= 1 else 0.0
    n = math.floor(size / lot + 1e-9)
    return n * lot if n >= 1 else 0.0
