"""An example learner: a market maker on the order book, trained through :class:`MarketEnv`.

The agent quotes both sides of every book each step, at full size; its choices are a handful of
quote widths (:data:`WIDTHS`, fractions of ``max_offset`` on either side of the reference price),
quoted symmetrically or *leaning*: the side that brings its inventory back toward where it
started quotes at :data:`LEAN` times the width, the other at the width (about as many units as
at the start, a leaning quote is the symmetric one). It learns a table of action values over
three inventory states (fewer units than it started with, about as many, more) by tabular
Q-learning with ε-greedy exploration; with the default ``gamma = 0`` each value is the mean
one-step reward of a choice in a state (a contextual bandit: a market maker's quotes are re-set
every step, and what a step earns is mostly that step's spread), and by default a plain sample
mean (``alpha=None``), since the rewards are noisy and their law does not drift between
episodes. Rewards are the environment's: the change in money-metric wealth. Plain numpy, a few
dozen lines: a baseline to compare learners with, not a state of the art.

>>> maker = train_market_maker(episodes=20, seed=0, max_steps=30)  # doctest: +SKIP
>>> evaluate(maker.act, seeds=range(1000, 1020), max_steps=30).mean() > 0  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.rl.env import MarketEnv

__all__ = ["LEAN", "WIDTHS", "QuotingLearner", "evaluate", "random_policy", "train_market_maker"]

#: Quote offsets the learner chooses from, as fractions of ``max_offset`` (negative: crossing).
WIDTHS = (-0.5, 0.1, 0.2, 0.5, 1.0)
#: Leaning quotes: the side that restores the starting inventory quotes at ``LEAN`` times the
#: width (choices ``len(WIDTHS)`` onwards, one per positive width).
LEAN = 0.2
_LEANING = tuple(w for w in WIDTHS if w > 0)


class QuotingLearner:
    """Action values ``q[state, choice]`` and the policy they define (see the module docstring).

    Choices ``0..len(WIDTHS)-1`` quote ``WIDTHS[k]`` on both sides; the next ones lean at each
    positive width in turn.

    Args:
        n_goods: books quoted (the action's rows).
        epsilon: exploration rate while training.
        alpha: step size of the value updates (None: the sample mean of each value's rewards).
        gamma: discount of the next state's value (0: each step's reward alone).
        rng: randomness for exploration.
    """

    def __init__(
        self,
        n_goods: int,
        epsilon: float = 0.1,
        alpha: float | None = None,
        gamma: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.q = np.zeros((3, len(WIDTHS) + len(_LEANING)))
        self.n = np.zeros_like(self.q)  # updates of each value (for sample means)
        self.n_goods, self.epsilon, self.alpha, self.gamma = n_goods, epsilon, alpha, gamma
        self.rng = np.random.default_rng(0) if rng is None else rng
        self.start: float | None = None  # units held at the episode's start (scaled)

    def state(self, obs: NDArray[np.float32]) -> int:
        """0, 1, 2: holding fewer, about as many, more units than at the start (first good)."""
        held = float(obs[5])
        if self.start is None:
            self.start = held
        gap = (held - self.start) / max(self.start, 1e-9)
        return 0 if gap < -0.2 else 2 if gap > 0.2 else 1

    def choose(self, state: int, explore: bool) -> int:
        if explore and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.q.shape[1]))
        return int(np.argmax(self.q[state]))

    def action(self, k: int, state: int = 1) -> NDArray[np.float32]:
        """Full-size quotes on both sides of every book for choice ``k`` in ``state``."""
        if k < len(WIDTHS):
            bid = ask = WIDTHS[k]
        else:  # leaning: short (state 0) bids close, long (state 2) offers close
            bid = ask = _LEANING[k - len(WIDTHS)]
            bid, ask = (
                (LEAN * bid, ask) if state == 0 else (bid, LEAN * ask) if state == 2 else (bid, ask)
            )
        row = [1.0, bid, 1.0, ask]
        return np.tile(np.asarray(row, dtype=np.float32), (self.n_goods, 1))

    def act(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:
        """The greedy policy (for evaluation)."""
        s = self.state(obs)
        return self.action(self.choose(s, explore=False), s)

    def update(self, s: int, k: int, reward: float, s_next: int, last: bool) -> None:
        target = reward + (0.0 if last else self.gamma * float(self.q[s_next].max()))
        self.n[s, k] += 1
        step = 1.0 / self.n[s, k] if self.alpha is None else self.alpha
        self.q[s, k] += step * (target - self.q[s, k])


def train_market_maker(
    episodes: int = 40, seed: int = 0, learner: QuotingLearner | None = None, **env: Any
) -> QuotingLearner:
    """Train a :class:`QuotingLearner` for ``episodes`` episodes on run seeds ``seed``,
    ``seed + 1``, ...; ``env`` goes to :class:`MarketEnv` (default: the order book)."""
    market = MarketEnv(**env)
    n_goods = market.core.action_shape[0]
    learner = learner or QuotingLearner(n_goods, rng=np.random.default_rng(seed))
    for episode in range(episodes):
        obs, _ = market.reset(seed=seed + episode)
        learner.start = None
        s, done = learner.state(obs), False
        while not done:
            k = learner.choose(s, explore=True)
            obs, reward, terminated, truncated, _ = market.step(learner.action(k, s))
            done = terminated or truncated
            s_next = learner.state(obs)
            learner.update(s, k, reward, s_next, done)
            s = s_next
    return learner


def evaluate(
    policy: Callable[[NDArray[np.float32]], Any], seeds: Iterable[int], **env: Any
) -> NDArray[np.float64]:
    """Profit (the sum of rewards: final less initial money-metric wealth) of one episode per
    seed, acting by ``policy(obs) -> action``. A policy with a ``start`` attribute (a
    :class:`QuotingLearner`'s method) has it cleared at each episode's start."""
    market = MarketEnv(**env)
    owner = getattr(policy, "__self__", None)
    out = []
    for seed in seeds:
        obs, _ = market.reset(seed=seed)
        if owner is not None and hasattr(owner, "start"):
            owner.start = None
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = market.step(policy(obs))
            total += reward
            done = terminated or truncated
        out.append(total)
    return np.asarray(out)


def random_policy(seed: int = 0, **env: Any) -> Callable[[NDArray[np.float32]], Any]:
    """Uniformly random actions from the environment's action space (a baseline)."""
    space = MarketEnv(**env).action_space
    space.seed(seed)
    return lambda _obs: space.sample()


def _constant(action: NDArray[np.float32]) -> Callable[[NDArray[np.float32]], Any]:
    """A policy that always takes ``action``."""
    return lambda _obs: action


def main(episodes: int = 200, held_out: int = 20) -> None:
    """The full example (``python -m mktsim.rl.examples``): train on seeds 0..episodes-1, then
    print the mean profit (and its standard error) over ``held_out`` seeds from 1000 for the
    trained maker, a random agent, and each width held fixed, and each policy's profit less
    the trained maker's, seed by seed (the same seeds make the same traders' draws, so the
    paired difference is the fair comparison: most of a profit's spread is common to all)."""
    seeds = range(1000, 1000 + held_out)
    maker = train_market_maker(episodes=episodes, seed=0)
    rows = [
        ("trained market maker", evaluate(maker.act, seeds)),
        ("random agent", evaluate(random_policy(0), seeds)),
    ]
    quotes = QuotingLearner(1)
    for k, width in enumerate(WIDTHS):
        fixed = quotes.action(k)
        rows.append((f"fixed width {width:+.1f}", evaluate(_constant(fixed), seeds)))
    trained = rows[0][1]
    print(
        f"{'policy':<22} {'mean profit':>12} {'s.e.':>8} {'> 0':>6} "
        f"{'less trained':>13} {'s.e.':>7}"
    )
    for name, profits in rows:
        se = profits.std(ddof=1) / np.sqrt(profits.size)
        gap = profits - trained
        gap_se = gap.std(ddof=1) / np.sqrt(gap.size)
        print(
            f"{name:<22} {profits.mean():>12.2f} {se:>8.2f} {(profits > 0).mean():>6.0%} "
            f"{gap.mean():>13.2f} {gap_se:>7.2f}"
        )
    print("action values q[state, choice]:")
    print(np.array2string(maker.q, precision=2))


if __name__ == "__main__":
    main()
