"""A two-room grid task sold step by step to learning bidders (Hayek machine).

A 5 x 3 grid whose two rooms are joined by a door in the bottom row; the walker starts in the
top-left corner and the goal is the top-right corner (reward 10); every other move, or a bump
into a wall, costs a rent of 1. Four actions (``up``, ``down``, ``left``, ``right``), two
cloned agents per action, one auction per step under the payment rule ``payment``; bids learn
from realised revenue (:mod:`mktsim.strategies.bid_learner`). Values-to-go:
``V(s) = 10 - (d(s) - 1)`` with ``d`` the shortest path to the goal around the wall.
"""

from __future__ import annotations

from mktsim.scenarios._common import check_count, check_number

from mktsim.scenario import Scenario
from mktsim.tasks import GridTask, task_scenario


def build(
    payment: str = "vickrey",
    episodes: int = 400,
    clones: int = 2,
    rate: float = 0.3,
    initial: float = 20.0,
) -> Scenario:
    """The two-room grid.

    Args:
        payment: the auction's payment rule (``vickrey``, ``bucket_brigade``, ``first_price``).
        episodes: episodes to run.
        clones: agents per action.
        rate: the bids' learning step; initial: their optimistic start (units).
    """
    return task_scenario(
        "hayek_grid",
        GridTask(),
        clones=check_count("clones", clones, 1),
        payment=payment,
        episodes=check_count("episodes", episodes, 1),
        behaviour_options={"rate": rate, "initial": check_number("initial", initial)},
        params={
            "payment": payment,
            "episodes": episodes,
            "clones": clones,
            "rate": rate,
            "initial": initial,
        },
        description=__doc__ or "",
    )
