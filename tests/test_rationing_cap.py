"""Non-tatonnement rationing under a cap on its passes: a round that does not clear within the
cap trades nothing and says so; it never settles an unbalanced exchange.

Reference: every good's rationed purchases equal its rationed sales, summed here directly.
"""

from __future__ import annotations

import numpy as np
from mktsim.mechanisms._rationing import uniform_fractions

import mktsim


def test_cleared_fractions_balance_every_good() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        z = rng.normal(size=(40, 4))
        t, passes, cleared = uniform_fractions(z)
        assert cleared and passes >= 1 and ((t >= 0) & (t <= 1)).all()
        traded = z * t[:, None]
        buys, sells = traded.clip(min=0).sum(axis=0), -traded.clip(max=0).sum(axis=0)
        np.testing.assert_allclose(buys, sells, rtol=1e-9, atol=1e-9)


def test_an_uncleared_round_trades_nothing_and_is_logged() -> None:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=100)
    capped = mktsim.simulate(
        scenario, "walrasian", mode="non_tatonnement", max_rationing_passes=2, until=10
    )
    summary, events = capped.summary, capped.frames["events"]
    logged = events[events["kind"] == "rationing"]
    assert summary["rounds_unrationed"] == len(logged) > 0
    assert summary["conservation_ok"]
    trades = capped.frames["trades"]
    assert not set(trades["round"]) & {int(d.split(":")[0].split()[1]) for d in logged["detail"]}
    free = mktsim.simulate(scenario, "walrasian", mode="non_tatonnement", until=10)
    assert free.summary["rounds_unrationed"] == 0 and len(free.frames["trades"]) > 0
