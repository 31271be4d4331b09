"""Task worlds whose right to act is sold, and the agents that buy it (Baum's Hayek machine).

A *task world* is a small deterministic decision problem: states, actions, and for each
(state, action) the next state, a reward in units of money and whether the episode ends. Its
agents (:class:`TaskAgents`) each own one fixed action; at every step they bid for ownership
of the current state, and the winner's action moves the world (the auction and its payments
are :mod:`mktsim.mechanisms.right_to_act`). An owner is paid by the world's reward and by the
next owner, who buys the state it left behind, so an agent whose action leads somewhere
valuable earns more than it paid: money flows back along the chain of owners the way credit
does in Holland's bucket brigade, and under second-price payments the learned bids become the
optimal action values (Chang et al. 2020).

Episodes are undiscounted; every world here is *proper*: any loop that does not end the
episode costs money (a rent), so the values-to-go are finite and :func:`values` finds them by
value iteration. Rewards may be negative (a rent paid to the world); values-to-go of the
shipped worlds are positive, so a bid (never negative) can equal one.

Reference answers come from the world alone (:func:`values`), never from a run, and
:func:`metrics` compares a run's winning bids with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.equilibrium import Equilibrium
from mktsim.errors import InvalidParameter
from mktsim.population import check_delay, check_name
from mktsim.scenario import Scenario

__all__ = [
    "DEED",
    "ChainTask",
    "GridTask",
    "TaskAgents",
    "TaskWorld",
    "metrics",
    "reference",
    "task_scenario",
    "values",
]

#: The good that stands for ownership of the world's current state (one unit, held by the
#: current owner, or by the world between episodes).
DEED = "deed"

#: The tables :func:`metrics` reads.
TABLES = ("auctions",)


@runtime_checkable
class TaskWorld(Protocol):
    """What the right-to-act auction needs of a world.

    ``step(state, action) -> (next_state, reward, done)``: deterministic; ``reward`` in units
    of money (negative: a rent the owner pays); ``done`` ends the episode (``next_state`` is
    then ignored). ``max_steps`` truncates an episode that has not ended.
    """

    @property
    def n_states(self) -> int: ...

    @property
    def start(self) -> int: ...

    @property
    def actions(self) -> tuple[str, ...]: ...

    @property
    def max_steps(self) -> int: ...

    def step(self, state: int, action: int) -> tuple[int, float, bool]: ...

    def state_name(self, state: int) -> str: ...


def _positive(_: object, attribute: Any, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be > 0 and finite")


def _nonnegative(_: object, attribute: Any, value: float) -> None:
    if not (np.isfinite(value) and value >= 0):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be >= 0 and finite")


def _steps(_: object, attribute: Any, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be an integer >= 1")


@frozen
class ChainTask:
    """A chain of ``length`` states walked from state 0.

    Actions: ``forward`` (state s -> s + 1 earning ``step_reward``; from the last state it
    ends the episode earning ``goal``), ``stay`` (pays ``rent``, stays) and ``end`` (ends the
    episode at once earning ``quit``). Values-to-go in closed form:
    ``V(s) = step_reward * (length - 1 - s) + goal``, reached by always moving forward as long
    as ``goal > quit`` and ``rent > 0``.
    """

    length: int = field(default=6)
    step_reward: float = field(default=1.0, converter=float, validator=_nonnegative)
    goal: float = field(default=10.0, converter=float, validator=_positive)
    quit: float = field(default=2.0, converter=float, validator=_nonnegative)
    rent: float = field(default=1.0, converter=float, validator=_positive)
    steps: int | None = field(default=None, validator=_steps)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < 2:
            raise InvalidParameter(f"length(={self.length!r}) must be an integer >= 2")

    @property
    def n_states(self) -> int:
        return self.length

    @property
    def start(self) -> int:
        return 0

    @property
    def actions(self) -> tuple[str, ...]:
        return ("forward", "stay", "end")

    @property
    def max_steps(self) -> int:
        return self.steps if self.steps is not None else 3 * self.length

    def step(self, state: int, action: int) -> tuple[int, float, bool]:
        if action == 0:
            if state == self.length - 1:
                return state, self.goal, True
            return state + 1, self.step_reward, False
        if action == 1:
            return state, -self.rent, False
        return state, self.quit, True

    def state_name(self, state: int) -> str:
        return f"s{state}"


@frozen
class GridTask:
    """A grid of ``width`` x ``height`` cells with wall cells, walked from ``start`` to ``goal``.

    Actions ``up``, ``down``, ``left``, ``right`` move one cell (row 0 is the top); a move
    into the edge or a wall leaves the walker in place. Every move pays ``rent`` except the
    one that enters the goal, which earns ``reward`` and ends the episode. Values-to-go:
    ``V(s) = reward - rent * (d(s) - 1)``, ``d`` the shortest path length around the walls.
    The default is two rooms joined by a door in the bottom row, in the spirit of the grid
    tasks of Chang et al. (2020).
    """

    width: int = 5
    height: int = 3
    walls: tuple[tuple[int, int], ...] = field(
        default=((2, 0), (2, 1)), converter=lambda v: tuple(tuple(map(int, c)) for c in v)
    )
    start_cell: tuple[int, int] = field(default=(0, 0), converter=lambda c: tuple(map(int, c)))
    goal_cell: tuple[int, int] = field(default=(4, 0), converter=lambda c: tuple(map(int, c)))
    reward: float = field(default=10.0, converter=float, validator=_positive)
    rent: float = field(default=1.0, converter=float, validator=_positive)
    steps: int | None = field(default=None, validator=_steps)

    def __attrs_post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidParameter(f"{name}(={v!r}) must be an integer >= 1")
        for name in ("start_cell", "goal_cell"):
            cell = getattr(self, name)
            if not self.inside(cell) or cell in self.walls:
                raise InvalidParameter(f"{name}(={cell}) must be a free cell of the grid")
        if self.start_cell == self.goal_cell:
            raise InvalidParameter("start_cell and goal_cell must differ")
        if np.isinf(_distances(self)[self.start]):
            raise InvalidParameter(f"the goal {self.goal_cell} cannot be reached from the start")

    def inside(self, cell: tuple[int, ...]) -> bool:
        return len(cell) == 2 and 0 <= cell[0] < self.width and 0 <= cell[1] < self.height

    @property
    def n_states(self) -> int:
        return self.width * self.height

    @property
    def start(self) -> int:
        return self.cell_state(self.start_cell)

    @property
    def actions(self) -> tuple[str, ...]:
        return ("up", "down", "left", "right")

    @property
    def max_steps(self) -> int:
        return self.steps if self.steps is not None else 4 * self.n_states

    def cell_state(self, cell: tuple[int, int]) -> int:
        return cell[1] * self.width + cell[0]

    def state_name(self, state: int) -> str:
        return f"({state % self.width},{state // self.width})"

    def step(self, state: int, action: int) -> tuple[int, float, bool]:
        x, y = state % self.width, state // self.width
        dx, dy = ((0, -1), (0, 1), (-1, 0), (1, 0))[action]
        cell = (x + dx, y + dy)
        if not self.inside(cell) or cell in self.walls:
            cell = (x, y)
        if cell == self.goal_cell:
            return self.cell_state(cell), self.reward, True
        return self.cell_state(cell), -self.rent, False


def _distances(grid: GridTask) -> NDArray[np.float64]:
    """Moves from each state to the goal around the walls (breadth-first; inf if cut off)."""
    d = np.full(grid.n_states, np.inf)
    goal = grid.cell_state(grid.goal_cell)
    d[goal] = 0.0
    frontier = [goal]
    while frontier:
        nxt = []
        for s in frontier:
            x, y = s % grid.width, s // grid.width
            for cell in ((x, y - 1), (x, y + 1), (x - 1, y), (x + 1, y)):
                if grid.inside(cell) and cell not in grid.walls:
                    t = grid.cell_state(cell)
                    if np.isinf(d[t]):
                        d[t] = d[s] + 1
                        nxt.append(t)
        frontier = nxt
    return d


def values(world: TaskWorld, sweeps: int | None = None) -> tuple[NDArray[np.float64], Any]:
    """Optimal values-to-go ``float64[n_states]`` and action values ``float64[n_states,
    n_actions]`` by value iteration (undiscounted; exact after at most ``n_states`` sweeps
    in a proper world, where every loop costs rent).

    ``V[s]`` is the most money the owners of an episode starting at ``s`` can collect from
    the world; ``Q[s, a] = r(s, a) + V[s']`` (``V[s'] = 0`` when the step ends the episode).
    """
    n, k = world.n_states, len(world.actions)
    table = [[world.step(s, a) for a in range(k)] for s in range(n)]
    nxt = np.array([[t[0] for t in row] for row in table], dtype=np.intp)
    rew = np.array([[t[1] for t in row] for row in table], dtype=np.float64)
    done = np.array([[t[2] for t in row] for row in table], dtype=bool)
    v = np.zeros(n)
    for _ in range(sweeps or 4 * n + 4):
        q = rew + np.where(done, 0.0, v[nxt])
        new = q.max(axis=1)
        if np.array_equal(new, v):
            break
        v = new
    q = rew + np.where(done, 0.0, v[nxt])
    return q.max(axis=1), q


def _actions(value: Any) -> NDArray[np.int64]:
    arr = np.array(value, dtype=np.int64).ravel()
    if arr.size < 1:
        raise InvalidParameter("actions must name at least one agent's action")
    return arr


@frozen
class TaskAgents:
    """Agents that each own one fixed action of a task world and bid for the right to use it.

    Attributes:
        name: unique within the scenario.
        world: the task world (:class:`ChainTask`, :class:`GridTask`, or any
            :class:`TaskWorld`).
        actions: ``int[n]``, agent i's action (an index into ``world.actions``).
        money: money each agent starts with (units).
        endowment: ``float64[n, 2]`` holdings of money and deed; default ``money`` each and no
            deed (the world holds it between owners).
        behaviour: the bidding strategy (default ``bid_learner``); ``behaviour_options`` tune it.
        delay: unused by the auction (present for the population protocol).
    """

    name: str = field(validator=check_name)
    world: Any = field()
    actions: NDArray[np.int64] = field(converter=_actions)
    money: float = field(default=1000.0, converter=float, validator=_positive)
    behaviour: str | None = "bid_learner"
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)
    endowment: NDArray[np.float64] = field(default=None)

    #: Goods a scenario of task agents trades: money and the deed (made by the world).
    creates = (DEED,)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.world, TaskWorld):
            raise InvalidParameter(f"world(={self.world!r}) is not a task world")
        k = len(self.world.actions)
        if (self.actions < 0).any() or (self.actions >= k).any():
            raise InvalidParameter(
                f"population {self.name!r}: actions must be in 0..{k - 1} "
                f"({', '.join(self.world.actions)}), got {self.actions.tolist()}"
            )
        if self.endowment is None:  # money, and no deed (the world holds it between owners)
            start = np.zeros((self.size, 2))
            start[:, 0] = self.money
            object.__setattr__(self, "endowment", start)
        else:
            given = np.array(self.endowment, dtype=np.float64)
            if given.shape != (self.size, 2) or not np.isfinite(given).all() or (given < 0).any():
                raise InvalidParameter(
                    f"population {self.name!r}: endowment must be >= 0 with shape "
                    f"({self.size}, 2) (money, {DEED})"
                )
            object.__setattr__(self, "endowment", given)

    @classmethod
    def cloned(cls, name: str, world: Any, clones: int = 2, **kwargs: Any) -> TaskAgents:
        """``clones`` agents for every action of the world (Chang et al.'s cloned society: with
        two or more bidders per action the second-highest bid at a state is the best
        action's value, so a second-price payment passes on exactly that value)."""
        if isinstance(clones, bool) or not isinstance(clones, int) or clones < 1:
            raise InvalidParameter(f"clones(={clones!r}) must be an integer >= 1")
        actions = np.repeat(np.arange(len(world.actions)), clones)
        return cls(name, world, actions, **kwargs)

    @property
    def size(self) -> int:
        return int(self.actions.size)

    @property
    def kind(self) -> str:
        return "task_agents"

    def check_scenario(self, scenario: Scenario) -> None:
        if scenario.goods.names != ["money", DEED]:
            raise InvalidParameter(
                f"population {self.name!r} trades goods money and {DEED}, not "
                f"{', '.join(scenario.goods.names)}"
            )
        worlds = {id(getattr(p, "world", None)) for p in scenario.populations}
        if len(worlds) != 1:
            raise InvalidParameter("all populations of a task scenario must share one world")


def reference(scenario: Scenario) -> Equilibrium:
    """Reference solver for a task scenario: no prices, the world's values-to-go in ``extra``
    (``values``: ``float64[n_states]``, ``q``: ``float64[n_states, n_actions]``)."""
    world = scenario.populations[0].world  # type: ignore[attr-defined]
    v, q = values(world)
    return Equilibrium(
        "none",
        None,
        None,
        None,
        "value_iteration",
        float("nan"),
        "a task world has values-to-go, not equilibrium prices",
        extra={"values": v, "q": q},
    )


def agent_actions(scenario: Scenario) -> NDArray[np.int64]:
    """Every ledger row's action, in row order."""
    return np.concatenate([p.actions for p in scenario.populations])  # type: ignore[attr-defined]


def metrics(run: Any, tolerance: float = 0.05, tail: float = 0.2) -> dict[str, Any]:
    """How far the market's winning bids are from the values-to-go.

    Returns (in the run summary): ``value_error`` (max over states auctioned in the last
    ``tail`` of the run of |last winning bid − V(s)| / V(s)), ``best_action_share`` (share of
    those auctions won by an agent whose action is optimal there), ``rounds_to_settle`` (the
    first auction after which every winning bid stays within ``tolerance`` of its state's
    value; None unless that holds over the whole last ``tail`` at least), ``shading_gain``
    (mean over those auctions of what the winner paid above the runner-up's bid: what it would
    have saved by bidding just above the runner-up; 0 under second-price payments, whatever the
    bids) and ``auctions``.
    """
    frame = run.frame("auctions")
    world = run.scenario.populations[0].world
    return bid_metrics(frame, world, agent_actions(run.scenario), tolerance, tail)


def bid_metrics(
    auctions: pd.DataFrame,
    world: Any,
    actions: NDArray[np.int64],
    tolerance: float = 0.05,
    tail: float = 0.2,
) -> dict[str, Any]:
    """:func:`metrics` from an ``auctions`` table (one row per cleared auction)."""
    if auctions.empty:
        return {
            "auctions": 0,
            "value_error": None,
            "best_action_share": None,
            "rounds_to_settle": None,
            "shading_gain": None,
        }
    v, q = values(world)
    state = auctions["state"].to_numpy()
    bid = auctions["bid"].to_numpy()
    winner = auctions["winner"].to_numpy()
    price = auctions["price"].to_numpy()
    second = auctions["second"].to_numpy()
    err = np.abs(bid - v[state]) / np.maximum(np.abs(v[state]), 1e-12)
    best = np.isclose(q[state, actions[winner]], v[state], rtol=0, atol=1e-9)
    first_late = int(len(auctions) * (1 - tail))
    late = np.arange(len(auctions)) >= first_late
    last = pd.Series(err[late]).groupby(state[late]).last()
    off = np.flatnonzero(err > tolerance)
    settled = 0 if off.size == 0 else int(off[-1]) + 1
    return {
        "auctions": len(auctions),
        "value_error": float(last.max()),
        "best_action_share": float(best[late].mean()),
        "rounds_to_settle": settled if settled <= first_late else None,
        "shading_gain": float((price - second)[late].mean()),
    }


def task_scenario(
    name: str,
    world: Any,
    clones: int = 2,
    money: float = 1000.0,
    payment: str = "vickrey",
    episodes: int = 400,
    behaviour_options: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
) -> Scenario:
    """A scenario of cloned task agents under the right-to-act auction (one auction per unit
    of simulation time; the horizon covers ``episodes`` full-length episodes)."""
    agents = TaskAgents.cloned(
        "agents", world, clones, money=money, behaviour_options=behaviour_options or {}
    )
    return Scenario(
        name=name,
        goods=["money", DEED],
        populations=[agents],
        mechanism="right_to_act",
        mechanism_options={"right_to_act": {"payment": payment, "episodes": episodes}},
        until=float(episodes * world.max_steps + 1),
        params=dict(params or {}),
        description=description,
        reference=reference,
        metrics=metrics,
        metrics_tables=TABLES,
    )
