"""A chain task sold step by step to learning bidders (Hayek machine): bids learn values-to-go.

Six states walked from state 0; three actions (``forward``: +1 per step and 10 at the end of
the chain, ``stay``: a rent of 1, ``end``: quit at once for 2), two cloned agents per action.
Each step the current state is auctioned under the payment rule ``payment`` (``vickrey``,
``bucket_brigade`` or ``first_price``); the agents' bids learn from the revenue they realise
(:mod:`mktsim.strategies.bid_learner`). The values-to-go are exact:
``V(s) = (length - 1 - s) + 10``; the summary reports how far the winning bids end from them
(``value_error``), how often the forward agents win (``best_action_share``) and when the bids
settled within 5% (``rounds_to_settle``).
"""

from __future__ import annotations

from mktsim.scenarios._common import check_count, check_number

from mktsim.scenario import Scenario
from mktsim.tasks import ChainTask, task_scenario


def build(
    length: int = 6,
    payment: str = "vickrey",
    episodes: int = 200,
    clones: int = 2,
    rate: float = 0.3,
    initial: float = 20.0,
) -> Scenario:
    """The chain task.

    Args:
        length: states of the chain (>= 2).
        payment: the auction's payment rule (``vickrey``, ``bucket_brigade``, ``first_price``).
        episodes: episodes to run.
        clones: agents per action.
        rate: the bids' learning step; initial: their optimistic start (units).
    """
    world = ChainTask(length=check_count("length", length, 2))
    return task_scenario(
        "hayek_chain",
        world,
        clones=check_count("clones", clones, 1),
        payment=payment,
        episodes=check_count("episodes", episodes, 1),
        behaviour_options={"rate": rate, "initial": check_number("initial", initial)},
        params={
            "length": length,
            "payment": payment,
            "episodes": episodes,
            "clones": clones,
            "rate": rate,
            "initial": initial,
        },
        description=__doc__ or "",
    )
