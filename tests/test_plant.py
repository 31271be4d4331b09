"""Production outside every mechanism (mktsim.production.plant): firms' runs and sources'
extraction, driven by a bare SimPy clock with no market at all."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, Source, link
from mktsim.goods import Goods, to_base
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.production.plant import Plant
from mktsim.production.technology import CobbDouglas as PowerTech
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.scenario import Scenario

GOODS = ["money", "ore", "gas", "widget"]


def context(holdings: list[list[float]], *, production_time: float = 0.0):
    """Two firms making widgets from ore and gas (y = ore^0.5 gas^0.25) and one ore source of
    rate 3; ``holdings`` (units) of the two firms, then the source."""
    goods = Goods.of(GOODS, numeraire="money")
    h = np.asarray(holdings, dtype=float)
    firms = Firms(
        "makers",
        PowerTech([[0.5, 0.25], [0.5, 0.25]]),
        ["ore", "gas"],
        "widget",
        goods,
        endowment=h[:2],
        production_time=production_time,
    )
    source = Source("mine", goods, "ore", [3.0])
    buyers = FinalDemand("buyers", goods, prices={"widget": 1.0}, budget=1.0)
    scenario = Scenario("t", goods, link([firms, source, buyers]), until=100.0)
    h = np.vstack([h, [[1.0, 0, 0, 0]]])
    env = simpy.Environment()
    recorder = Recorder({"goods": GOODS, "populations": ["makers", "mine", "buyers"]})
    ledger = Ledger(goods, to_base(h), recorder, lambda: env.now)
    slots = PopulationSlot.all_of(scenario)[:2]
    ctx = MarketContext(env, scenario, goods, ledger, recorder, Streams(0), slots, env.event())
    return ctx, slots


def test_firms_run_every_cycle_and_sources_top_up() -> None:
    ctx, (makers, mine) = context([[1, 4, 1, 0], [1, 0, 1, 0], [0, 1, 0, 0]])
    plant = Plant.of(ctx, makers, cycle=5.0, memory=0.5)
    seen: list[tuple[float, list[bool], list[float]]] = []
    plant.listen(lambda busy, y: seen.append((ctx.env.now, busy.tolist(), y.tolist())))
    source = Plant.of(ctx, mine, cycle=2.0)
    ctx.env.run(until=5.5)
    units = ctx.ledger.units()
    # firm 0: y = 4^0.5 * 1^0.25 = 2, by hand; firm 1 has no ore: output 0, keeps its gas
    assert units[0].tolist() == pytest.approx([1, 0, 0, 2.0])
    assert units[1].tolist() == pytest.approx([1, 0, 1, 0])
    assert seen == [(5.0, [True, False], pytest.approx([2.0, 0.0]))]
    assert plant.batch.tolist() == [[4.0, 1.0], [0.0, 0.0]]  # the first run sets it outright
    assert plant.made.tolist() == [2.0, 0.0]
    # the mine held 1: topped up to 3 at t = 2, nothing more at t = 4
    assert units[2, 1] == pytest.approx(3.0)
    assert source.runs == 2
    prod = ctx.recorder.frame("production")
    assert set(prod.technology) == {"makers", "mine"}


def test_expected_batch_is_an_exponential_average() -> None:
    ctx, (makers, _) = context([[1, 4, 1, 0], [1, 9, 16, 0], [0, 0, 0, 0]])
    plant = Plant.of(ctx, makers, cycle=1.0, memory=0.25)
    ctx.env.run(until=1.5)
    assert plant.batch.tolist() == [[4.0, 1.0], [9.0, 16.0]]
    # second run: give firm 0 new inputs by hand through the ledger
    ctx.settlement.create(0, to_base(np.eye(4)[1] * 8.0), "t")
    ctx.env.run(until=2.5)
    # firm 0 ran on (8, 0): y = 0 -> did not run, keeps the ore, batch unchanged
    assert plant.batch[0].tolist() == [4.0, 1.0]
    assert ctx.ledger.units()[0, 1] == pytest.approx(8.0)
    ctx.settlement.create(0, to_base(np.eye(4)[2] * 2.0), "t")
    ctx.env.run(until=3.5)
    w = 0.25
    assert plant.batch[0].tolist() == pytest.approx([w * 8 + (1 - w) * 4, w * 2 + (1 - w) * 1])
    assert ctx.ledger.units()[0, 3] == pytest.approx(2.0 + math.sqrt(8) * 2**0.25)


def test_production_time_leaves_later_purchases_for_the_next_run() -> None:
    ctx, (makers, _) = context([[1, 4, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], production_time=1.0)
    Plant.of(ctx, makers, cycle=5.0)
    ctx.env.run(until=5.5)
    ctx.settlement.create(0, to_base(np.eye(4)[1] * 5.0), "t")  # bought during the run
    ctx.env.run(until=6.5)
    units = ctx.ledger.units()[0]
    assert units[3] == pytest.approx(2.0)  # made from the 4 ore held at t = 5
    assert units[1] == pytest.approx(5.0)


def test_one_plant_per_population_and_bad_settings_refused() -> None:
    ctx, (makers, _) = context([[1, 4, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert Plant.of(ctx, makers, cycle=5.0) is Plant.of(ctx, makers, cycle=5.0)
    with pytest.raises(InvalidParameter, match="already produces"):
        Plant.of(ctx, makers, cycle=2.0)
    with pytest.raises(InvalidParameter, match=r"cycle\(=0"):
        Plant(ctx, makers, cycle=0)
    with pytest.raises(InvalidParameter, match=r"memory\(=1.5"):
        Plant(ctx, makers, cycle=1.0, memory=1.5)
