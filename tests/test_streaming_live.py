"""A streaming run writes its Parquet parts while it goes, and its saved folder reopens as the
same frames as a run of the same seed held in memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mktsim

CASES = [
    ("cobb_douglas", {"n_agents": 40, "seed": 2}, None, {"mode": "non_tatonnement"}, 60.0),
    ("gode_sunder", {}, "order_book", {}, None),
]


def _parts(spool: Path) -> int:
    """Parts of the trades table on disk (rows reach it through the ledger's own buffer)."""
    return sum(1 for _ in spool.glob("trades/part-*.parquet"))


@pytest.mark.parametrize(("name", "params", "mechanism", "options", "until"), CASES)
def test_parts_are_written_during_the_run(tmp_path, name, params, mechanism, options, until):
    scenario = mktsim.build_scenario(name, **params)
    spool = tmp_path / "spool"
    seen: list[tuple[float, int]] = []
    run = mktsim.simulate(
        scenario,
        mechanism,
        seed=3,
        until=until,
        stream_to=spool,
        chunk_rows=20,
        progress=lambda now, horizon: seen.append((now / horizon, _parts(spool))),
        **options,
    )
    written_by_half = max(n for share, n in seen if share <= 0.5)
    at_end = _parts(spool)
    assert written_by_half > 0, seen
    assert written_by_half < at_end  # more parts came as the run went on
    memory = mktsim.simulate(scenario, mechanism, seed=3, until=until, **options)
    assert memory.trades.shape[0] > 100  # several parts' worth
    saved = mktsim.load(run.save(tmp_path / "out", figures=False))
    assert saved.tables == memory.tables
    for table in memory.tables:
        pd.testing.assert_frame_equal(saved.frame(table), memory.frame(table), check_exact=True)
    assert (tmp_path / "out" / "trades.parquet").is_dir()


def test_rows_added_one_at_a_time_spill_at_chunk_rows(tmp_path):
    from mktsim.recorder import Recorder

    rec = Recorder({"goods": ["money", "x"], "populations": ["p"]}, spool=tmp_path, chunk_rows=7)
    for k in range(20):
        rec.append_row("events", (float(k), "tick", str(k)))
    assert len(list((tmp_path / "events").glob("*.parquet"))) == 2  # 14 of 20 rows on disk
    assert rec.frame("events")["detail"].tolist() == [str(k) for k in range(20)]
