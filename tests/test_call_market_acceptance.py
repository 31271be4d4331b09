"""The frequent batch auction with the shared strategies, against references written here.

* Gode & Sunder's markets 1-4 with constrained zero-intelligence traders: allocative efficiency
  recomputed from the trades and the unit schedules (not the scenario's metric), and every
  clearing price inside the competitive range of the orders present at that batch, found by a
  naive uniform-price clearing of the ``orders`` table.
* Cobb-Douglas consumers with their default strategy: the final price against the equilibrium
  of the holdings reached, solved here from the linear market-clearing conditions.
* Pairs the market cannot run (strategies it has no order type for) are refused before the run.

More seeds: ``python -m benchmarks.call_market``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mktsim.scenarios.gode_sunder import MARKETS

import mktsim
from mktsim.errors import MktsimError
from mktsim.scenario import list_scenarios

SEEDS = (0, 1, 2)


def max_surplus(values: list[list[float]], costs: list[list[float]]) -> float:
    """Gains from trade when the highest values meet the lowest costs."""
    bids = sorted((v for row in values for v in row), reverse=True)
    asks = sorted(c for row in costs for c in row)
    return sum(b - a for b, a in zip(bids, asks, strict=False) if b > a)


def realised_surplus(trades: pd.DataFrame, values, costs) -> list[float]:
    """Per session: values of the units each buyer bought less costs of those each seller sold,
    in schedule order (buyers are the first ledger rows, sellers follow)."""
    out = []
    for _, session in trades.groupby("round"):
        got = session.groupby("agent")["quantity"].sum()
        total = 0.0
        for agent, q in got.items():
            k = round(abs(q))
            if agent < len(values):
                assert q > 0
                total += sum(values[agent][:k])
            else:
                assert q < 0
                total -= sum(costs[agent - len(values)][:k])
        out.append(total)
    return out


def live_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Accepted limit orders with the time they arrived and the time they left (fill, cancel,
    expiry or session close; inf if never)."""
    arrived = orders[(orders["action"] == "limit") & (orders["status"] == "accepted")]
    gone = orders[
        orders["action"].isin(["fill", "expire", "close"])
        | ((orders["action"] == "cancel") & (orders["status"] == "cancelled"))
    ]
    left = gone.groupby("order_id")["time"].min()
    out = arrived[["order_id", "time", "side", "price", "quantity"]].copy()
    out["left"] = out["order_id"].map(left).fillna(math.inf)
    return out


def naive_clearing(bids: list[float], asks: list[float]) -> tuple[int, float, float]:
    """Volume and competitive price range of unit orders: ``V`` the largest ``k`` with the
    k-th highest bid at least the k-th lowest ask; any price in ``[max(a_V, b_V+1), min(b_V,
    a_V+1)]`` has the V crossing bids and asks willing and the others not eager."""
    b = sorted(bids, reverse=True)
    a = sorted(asks)
    v = 0
    while v < min(len(a), len(b)) and b[v] >= a[v]:
        v += 1
    if v == 0:
        return 0, math.nan, math.nan
    lo = max(a[v - 1], b[v] if v < len(b) else -math.inf)
    hi = min(b[v - 1], a[v] if v < len(a) else math.inf)
    return v, lo, hi


def gode_sunder_run(market: int, seed: int):
    scenario = mktsim.build_scenario("gode_sunder", market=market)
    return mktsim.simulate(scenario, "call_market", seed=seed, record_orders="all")


@pytest.mark.parametrize("market", [1, 2, 3, 4])
def test_gode_sunder_zi_c_efficiency_and_competitive_prices(market):
    values, costs = MARKETS[market]
    best = max_surplus(values, costs)
    efficiencies = []
    for seed in SEEDS:
        run = gode_sunder_run(market, seed)
        assert run.summary["mechanism_options"]["tick"] == 1.0
        assert run.summary["periods_run"] == 6
        sessions = realised_surplus(run.trades, values, costs)
        assert len(sessions) <= 6
        efficiencies.append(sum(sessions) / (6 * best))
        assert efficiencies[-1] == pytest.approx(run.summary["allocative_efficiency"], abs=1e-9)

        # Every batch against a naive clearing of the unit orders present at it.
        live = live_orders(run.frame("orders"))
        assert (live["quantity"] == 1.0).all()
        arrived, left = live["time"].to_numpy(), live["left"].to_numpy()
        buy, price = (live["side"] == "buy").to_numpy(), live["price"].to_numpy()
        checked = 0
        for batch in run.frame("batches").itertuples():
            present = (arrived < batch.time) & (left >= batch.time)
            bids, asks = price[present & buy].tolist(), price[present & ~buy].tolist()
            volume, lo, hi = naive_clearing(bids, asks)
            assert batch.volume == volume, batch
            assert batch.orders == present.sum()
            if volume:
                assert lo <= batch.price <= hi, (batch, lo, hi)
                checked += 1
            else:
                assert math.isnan(batch.price)
        assert checked > 10
        # Trades happen at clearing prices only, and a constrained trader never loses.
        prices = run.frame("batches").set_index("time")["price"]
        assert (run.trades["price"] == run.trades["time"].map(prices)).all()
    assert np.mean(efficiencies) >= 0.97, efficiencies


def test_gode_sunder_runs_under_call_market_from_the_command_line(tmp_path):
    from mktsim.cli import main

    out = tmp_path / "run"
    main(["run", "gode_sunder", "--mechanism", "call_market", "--seed", "0", "--out", str(out)])
    summary = pd.read_json(out / "summary.json", typ="series")
    assert summary["fills"] > 0 and summary["periods_run"] == 6


def cobb_douglas_equilibrium(shares: np.ndarray, holdings: np.ndarray) -> np.ndarray:
    """Cobb-Douglas exchange equilibrium, numeraire first at 1: good j clears when p_j X_j =
    sum_i a_ij (p . x_i), linear in p."""
    totals = holdings.sum(axis=0)
    spend = shares.T @ holdings  # spend[j, k] = sum_i a_ij x_ik
    m = np.diag(totals) - spend
    p_rest = np.linalg.solve(m[1:, 1:], -m[1:, 0])
    return np.concatenate([[1.0], p_rest])


def test_cobb_douglas_default_strategy_reaches_the_equilibrium_of_its_holdings():
    scenario = mktsim.build_scenario("cobb_douglas")
    (consumers,) = scenario.populations
    shares = np.asarray(consumers.utility.shares, dtype=float)
    run = mktsim.simulate(scenario, "call_market", seed=0, record="all")
    assert run.summary["fills"] > 0
    held = run.holdings[run.holdings["time"] == run.holdings["time"].max()]
    x = held.pivot(index="agent", columns="good", values="quantity")[scenario.goods.names]
    reference = cobb_douglas_equilibrium(shares, x.to_numpy())
    last = run.prices[run.prices["time"] == run.prices["time"].max()].set_index("good")
    final = np.array([1.0] + [last.loc[g, "estimate"] for g in scenario.goods.names[1:]])
    error = np.max(np.abs(final - reference) / reference)
    assert error <= 0.01, (final, reference)
    assert error == pytest.approx(run.summary["price_error_vs_holdings_equilibrium"], rel=1e-6)


# (Supply chains with flows run under the call market: tests/test_supply_chain_limit.py.)
@pytest.mark.parametrize(("name", "settings"), [("leontief_io", {}), ("tupperware", {})])
def test_strategies_without_limit_orders_are_refused_before_the_run(name, settings):
    scenario = mktsim.build_scenario(name, **settings)
    with pytest.raises(MktsimError) as refused:
        mktsim.simulate(scenario, "call_market", seed=0, until=5.0)
    message = str(refused.value)
    assert message and "\n" not in message


#: Smaller economies for the sweep below (as in the sweep over every mechanism).
SMALL = {"cobb_douglas": {"n_agents": 20}, "ces": {"n_agents": 20}, "default": {"n_agents": 50}}


@pytest.mark.parametrize("name", sorted(list_scenarios()))
def test_every_scenario_trades_or_is_refused_before_the_run(name):
    scenario = mktsim.build_scenario(name, **SMALL.get(name, {}))
    try:
        run = mktsim.simulate(scenario, "call_market", seed=1, until=min(scenario.until, 30.0))
    except MktsimError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert run.summary["fills"] > 0, f"{name} ran under call_market and traded nothing"
    if name == "glosten_milgrom":  # no Walrasian reference: the dealer quotes the asset's value
        assert run.summary["equilibrium_status"] == "none" and run.summary["dealer_trades"] > 0
        return
    assert math.isfinite(run.summary["price_error"]), name


def test_the_scenario_rate_reaches_the_traders_under_call_market():
    def orders(rate: float) -> int:
        scenario = mktsim.build_scenario("gode_sunder", market=1, rate=rate, periods=1)
        return mktsim.simulate(scenario, "call_market", seed=0).summary["orders"]

    # Poisson arrivals: twice the rate, about twice the orders (60 expected per trader vs 120)
    assert 1.7 < orders(2.0) / orders(1.0) < 2.3
