"""The auctioneer's round log hands the recorder exactly the rows it would get round by round."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mktsim.mechanisms._walrasian_log import RoundLog

import mktsim
from mktsim.recorder import Recorder

GOODS = ["money", "a", "b"]
POPULATIONS = ["p0", "p1", "p2"]
TABLES = ("prices", "excess_demand", "excess_demand_by_population")


def _rounds(count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "time": 0.5 * k,
            "round": k,
            "price": rng.random(3),
            "estimate": rng.random(3),
            "z": rng.normal(size=3),
            "relative": rng.normal(size=3),
            "per_population": [rng.normal(size=3), rng.normal(size=3)],
        }
        for k in range(count)
    ]


def _row_by_row(rounds: list[dict], enabled: list[str]) -> Recorder:
    """The reference: one append per round and table, as a round-by-round writer would."""
    rec = Recorder({"goods": GOODS, "populations": POPULATIONS}, enabled=enabled)
    goods = np.arange(3)
    for r in rounds:
        rec.append(
            "prices",
            time=r["time"],
            round=r["round"],
            good=goods,
            price=r["price"],
            estimate=r["estimate"],
        )
        rec.append(
            "excess_demand",
            time=r["time"],
            round=r["round"],
            good=goods,
            excess_demand=r["z"],
            relative=r["relative"],
        )
        for population, excess in zip([2, 0], r["per_population"], strict=True):
            rec.append(
                "excess_demand_by_population",
                time=r["time"],
                round=r["round"],
                population=population,
                good=goods,
                excess_demand=excess,
            )
    return rec


@pytest.mark.parametrize("block", [1, 3, 7, 1024])
@pytest.mark.parametrize(
    "enabled", [list(TABLES), ["prices", "excess_demand"], ["events"]], ids=["all", "two", "none"]
)
def test_blocks_hand_over_the_rows_of_a_round_by_round_writer(block, enabled):
    rounds = _rounds(10)
    rec = Recorder({"goods": GOODS, "populations": POPULATIONS}, enabled=enabled)
    log = RoundLog(rec, 3, [2, 0], block=block)
    for k, r in enumerate(rounds):
        log.add(
            r["time"],
            r["round"],
            r["price"],
            r["estimate"],
            r["z"],
            r["relative"],
            r["per_population"],
        )
        if k == 4:  # a read in the middle of a block sees every round logged so far
            assert rec.rows("prices") == (15 if "prices" in enabled else 0)
    expected = _row_by_row(rounds, enabled)
    for table in TABLES:
        pd.testing.assert_frame_equal(rec.frame(table), expected.frame(table), check_exact=True)


def test_a_streamed_run_longer_than_a_block_records_every_round(tmp_path):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20, n_goods=3, seed=4)
    kwargs = {"seed": 2, "until": 1_500, "tol": 1e-300}  # never converges: 1,500 rounds
    memory = mktsim.simulate(scenario, **kwargs)
    streamed = mktsim.simulate(scenario, stream_to=tmp_path / "run", chunk_rows=500, **kwargs)
    for table in TABLES:
        frame = streamed.frame(table)
        assert len(frame) == 1_500 * 3
        assert frame["round"].tolist() == np.repeat(np.arange(1_500), 3).tolist()
        pd.testing.assert_frame_equal(frame, memory.frame(table), check_exact=True)
