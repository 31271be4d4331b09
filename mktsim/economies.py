"""Benchmark families of exchange economies, each a generator of many economies from a seed.

Price-adjustment rules are judged on families, not on one economy: a rule that converges on
Scarf's economy may fail on its neighbours. Every family is a function ``family(n, seed=0) ->
list[Scenario]``; economy k is drawn from its own stream (seed, k), so the first 50 economies of
``family(200, seed)`` are ``family(50, seed)``, and a training set (another seed) never overlaps
a test set. Each scenario's ``params`` record the family, the seed, the index and the drawn
parameters; its goods are ``good0`` (the numeraire), ``good1``, ...

Families (:data:`FAMILIES`):

* ``scarf_hirota`` — three goods, three Leontief consumers each wanting the two goods other than
  its own index in equal amounts, with a general endowment matrix (Hirota 1981, 1985; Yamamoto,
  Asano, Togawa & Ohya 2008, arXiv:0802.2413). Scarf's (1960) economy is the point where
  consumer j holds one unit of good j + 1 only. See :func:`hirota_stable` for when the
  equilibrium is stable.
* ``cyclic_scarf`` — n goods (3..10), consumer i owns good i and wants goods i and i + 1 (mod n)
  in equal amounts, plus a small random holding of every good (``spread``, 0 in economy 0 of each
  size: the exact cyclic economies, whose equilibrium is p = 1 and whose tatonnement orbits).
* ``ces_complements`` — CES consumers with elasticity below 1 (not gross substitutes) and home
  bias: agent i holds mostly good i mod g and puts weight ``bias`` on it. Two-good members with
  low elasticity and strong bias have three equilibria.
* ``gross_substitutes`` — CES consumers with elasticity above 1: a unique, globally stable
  equilibrium (Arrow, Block & Hurwicz 1959), the control family where every sensible rule must
  converge.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter
from mktsim.population import Consumers
from mktsim.scenario import Scenario
from mktsim.utility import CES, Leontief

__all__ = [
    "FAMILIES",
    "SCARF_ENDOWMENT",
    "ces_complements",
    "cyclic_scarf",
    "cyclic_scarf_economy",
    "gross_substitutes",
    "hirota_jacobian",
    "hirota_stable",
    "scarf_hirota",
    "scarf_hirota_economy",
]

Array = NDArray[np.float64]

#: Scarf's economy as a Scarf-Hirota endowment matrix (rows goods, columns consumers):
#: consumer j holds one unit of good j + 1 (mod 3), the good it wants that the next one does not.
SCARF_ENDOWMENT = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _goods(g: int) -> list[str]:
    return [f"good{j}" for j in range(g)]


def _rng(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(k)]))


def _count(n: int) -> None:
    if not isinstance(n, int | np.integer) or n < 1:
        raise InvalidParameter(f"n(={n!r}) must be an integer >= 1")


def scarf_hirota_economy(endowment: ArrayLike, name: str = "scarf_hirota") -> Scenario:
    """The Scarf-Hirota economy with endowment matrix ``endowment[i, j]`` = units of good i held
    by consumer j (``float64[3, 3]``, the papers' a_ij); consumer j has utility min over the two
    goods k != j of x_k."""
    a = np.asarray(endowment, dtype=float)
    if a.shape != (3, 3) or not np.all(np.isfinite(a)) or (a < 0).any():
        raise InvalidParameter(f"endowment(={a!r}) must be a finite, non-negative 3 x 3 matrix")
    coefficients = 1.0 - np.eye(3)  # consumer j (row) wants every good but j
    return Scenario(
        name=name,
        goods=_goods(3),
        populations=[Consumers("consumers", Leontief(coefficients), a.T)],
        params={"endowment": a.tolist()},
        description="Scarf-Hirota economy",
    )


def hirota_jacobian(endowment: ArrayLike, prices: ArrayLike = (1.0, 1.0, 1.0)) -> Array:
    """The Jacobian J[i, k] = dz_i / dp_k ``float64[3, 3]`` of a Scarf-Hirota economy's excess
    demand, in closed form.

    With P = p_1 + p_2 + p_3 and w_j = sum_i a_ij p_i, consumer j demands w_j / (P - p_j) of each
    good i != j, so J[i, k] = sum_(j != i) [a_kj / (P - p_j) - w_j [k != j] / (P - p_j)^2].

    Args:
        endowment: ``float64[3, 3]``, a_ij = units of good i held by consumer j.
        prices: ``float64[3]``, where to evaluate (the economy's equilibrium for a stability
            question; (1, 1, 1) for the economies of :func:`scarf_hirota`).
    """
    a = np.asarray(endowment, dtype=float)
    p = np.asarray(prices, dtype=float)
    total = p.sum()
    wealth = a.T @ p
    jac = np.zeros((3, 3))
    for i in range(3):
        for k in range(3):
            for j in range(3):
                if j != i:
                    d = total - p[j]
                    jac[i, k] += a[k, j] / d - (wealth[j] / d**2 if k != j else 0.0)
    return jac


def hirota_stable(endowment: ArrayLike, prices: ArrayLike = (1.0, 1.0, 1.0)) -> bool:
    """Whether the equilibrium ``prices`` of a Scarf-Hirota economy is locally asymptotically
    stable under continuous tatonnement dp/dt = z(p) (prices not normalised, as in Scarf 1960
    and Hirota 1981).

    The condition is Routh-Hurwitz on the linearisation: z is homogeneous of degree 0
    (J p* = 0), so J has the eigenvalue 0 along p*, and the flow, which keeps |p| fixed (Walras'
    law), is governed by J's other two eigenvalues. Both have negative real parts exactly when
    their sum, trace(J), is negative and their product, the sum of J's principal 2 x 2 minors,
    is positive. At p* = (1, 1, 1) the trace is -(a_11 + a_22 + a_33) / 2: holdings of the good
    its owner does not want stabilise, and Scarf's economy (zero diagonal) sits on the boundary
    with trace 0, where prices orbit. A negative product makes p* a saddle (index -1), so other
    equilibria exist. Hirota (1981, 1985) studies how the share of stable economies depends on
    the endowment distribution, and Yamamoto et al. (2008) the same question for the
    price-scaled process dp_i/dt = p_i z_i; this function is the local criterion their analysis
    starts from, and ``benchmarks.step_rules`` measures how often it predicts convergence from
    a start 20% away.
    """
    jac = hirota_jacobian(endowment, prices)
    minors = sum(
        jac[i, i] * jac[k, k] - jac[i, k] * jac[k, i] for i in range(3) for k in range(i + 1, 3)
    )
    return bool(np.trace(jac) < 0 and minors > 0)


def _sinkhorn(m: Array, rows: Array, cols: Array) -> Array:
    """Scale a positive matrix to the given row and column sums (Sinkhorn-Knopp)."""
    for _ in range(10_000):
        m = m * (rows / m.sum(axis=1))[:, None]
        m = m * (cols / m.sum(axis=0))[None, :]
        if np.allclose(m.sum(axis=1), rows, rtol=1e-14, atol=0):
            break
    return m


def scarf_hirota(n: int, seed: int = 0) -> list[Scenario]:
    """``n`` Scarf-Hirota economies whose equilibrium is p* = (1, 1, 1), as in Hirota's analysis.

    At p* = 1 consumer j's wealth is its column sum W_j and it demands W_j / 2 of each good it
    wants, so good i clears when its row sum is R_i = (sum W - W_i) / 2. Economy k draws the
    wealths W = 3 Dirichlet(1, 1, 1) and a matrix of uniform entries cubed (some holdings
    near zero), scaled to those margins (Sinkhorn). Economy 0 of seed 0 is Scarf's. About four
    in five are stable (:func:`hirota_stable`); the others are saddles.
    """
    _count(n)
    out = []
    for k in range(n):
        if (seed, k) == (0, 0):
            a = SCARF_ENDOWMENT.copy()
        else:
            rng = _rng(seed, k)
            wealth = 3.0 * rng.dirichlet(np.ones(3))
            a = _sinkhorn(rng.uniform(0, 1, (3, 3)) ** 3 + 1e-9, (3.0 - wealth) / 2, wealth)
        s = scarf_hirota_economy(a)
        out.append(_tag(s, "scarf_hirota", seed, k, endowment=a.tolist()))
    return out


def cyclic_scarf_economy(
    n_goods: int, spread: float = 0.0, rng: np.random.Generator | None = None
) -> Scenario:
    """The n-good cyclic Scarf economy: consumer i owns one unit of good i, plus ``spread`` times
    row i of a random doubly stochastic matrix (drawn from ``rng``), and has utility
    min(x_i, x_(i+1 mod n)).

    Every consumer is then equally rich at p = 1, where it demands (1 + spread) / 2 of its two
    goods, and every good's supply is 1 + spread: p = 1 is an equilibrium for every draw.
    """
    if not isinstance(n_goods, int | np.integer) or n_goods < 3:
        raise InvalidParameter(f"n_goods(={n_goods!r}) must be an integer >= 3")
    if not np.isfinite(spread) or spread < 0:
        raise InvalidParameter(f"spread(={spread!r}) must be >= 0")
    c = np.eye(n_goods) + np.roll(np.eye(n_goods), 1, axis=1)
    e = np.eye(n_goods)
    if spread > 0:
        gen = rng if rng is not None else np.random.default_rng(0)
        ones = np.ones(n_goods)
        e = e + spread * _sinkhorn(gen.uniform(0, 1, (n_goods, n_goods)) + 1e-9, ones, ones)
    return Scenario(
        name="cyclic_scarf",
        goods=_goods(n_goods),
        populations=[Consumers("consumers", Leontief(c), e)],
        params={"n_goods": n_goods, "spread": spread},
        description="cyclic Scarf economy",
    )


def cyclic_scarf(n: int, seed: int = 0) -> list[Scenario]:
    """``n`` cyclic Scarf economies; economy k has 3 + k mod 8 goods, and spread 0 for k < 8 (the
    exact cyclic economies n = 3..10), else uniform on [0, 0.5)."""
    _count(n)
    out = []
    for k in range(n):
        rng = _rng(seed, k)
        g = 3 + k % 8
        spread = 0.0 if k < 8 else float(rng.uniform(0, 0.5))
        s = cyclic_scarf_economy(g, spread, rng)
        out.append(_tag(s, "cyclic_scarf", seed, k, n_goods=g, spread=spread))
    return out


def _ces_economy(
    rng: np.random.Generator,
    g: int,
    agents: int,
    sigma: float,
    bias: Array,
    held: Array,
    name: str,
) -> Scenario:
    """Agent i's home good is i mod g: it puts weight ``bias[i]`` on it (the rest spread by a
    Dirichlet draw) and holds ``held[i]`` of its endowment in it (the rest likewise)."""
    weights = np.empty((agents, g))
    endowment = np.empty((agents, g))
    for i in range(agents):
        home = i % g
        weights[i] = np.insert(rng.dirichlet(np.ones(g - 1)) * (1 - bias[i]), home, bias[i])
        endowment[i] = np.insert(rng.dirichlet(np.ones(g - 1)) * (1 - held[i]), home, held[i])
    return Scenario(
        name=name,
        goods=_goods(g),
        populations=[Consumers("consumers", CES(weights, sigma), endowment)],
        description=name,
    )


def ces_complements(n: int, seed: int = 0) -> list[Scenario]:
    """``n`` CES economies with elasticity below 1 and home bias.

    Odd-numbered economies: g goods (2..4), g or 2g agents, elasticity uniform on [0.1, 0.6),
    weight and endowment share of the home good uniform on [0.6, 0.97). Even-numbered ones: two
    goods, two agents who each hold only their home good and put the same weight, uniform on
    [0.93, 0.99), on it, elasticity uniform on [0.05, 0.2): strong complements with strong home
    bias, a symmetric pair with p = 1 an unstable equilibrium between two stable ones (weight
    0.95 and elasticity 0.2 give equilibria near p = 0.176, 1 and 5.69).
    """
    _count(n)
    out = []
    for k in range(n):
        rng = _rng(seed, k)
        if k % 2 == 0:
            g, agents = 2, 2
            sigma = float(rng.uniform(0.05, 0.2))
            bias, held = np.full(2, rng.uniform(0.93, 0.99)), np.ones(2)
        else:
            g = int(rng.integers(2, 5))
            agents = g * int(rng.integers(1, 3))
            sigma = float(rng.uniform(0.1, 0.6))
            bias = held = rng.uniform(0.6, 0.97, agents)
        s = _ces_economy(rng, g, agents, sigma, bias, held, "ces_complements")
        out.append(
            _tag(s, "ces_complements", seed, k, elasticity=sigma, bias=bias.tolist(), n_goods=g)
        )
    return out


def gross_substitutes(n: int, seed: int = 0) -> list[Scenario]:
    """``n`` CES economies with elasticity uniform on [1.2, 4), g goods (2..5), 2g agents with
    Dirichlet weights and endowments uniform on [0.5, 1.5)."""
    _count(n)
    out = []
    for k in range(n):
        rng = _rng(seed, k)
        g = int(rng.integers(2, 6))
        sigma = float(rng.uniform(1.2, 4.0))
        weights = rng.dirichlet(np.ones(g), 2 * g)
        endowment = rng.uniform(0.5, 1.5, (2 * g, g))
        s = Scenario(
            name="gross_substitutes",
            goods=_goods(g),
            populations=[Consumers("consumers", CES(weights, sigma), endowment)],
            description="gross substitutes",
        )
        out.append(_tag(s, "gross_substitutes", seed, k, elasticity=sigma, n_goods=g))
    return out


def _tag(s: Scenario, family: str, seed: int, k: int, **params: object) -> Scenario:
    import attrs

    return attrs.evolve(
        s, name=f"{family}[{k}]", params={"family": family, "seed": seed, "index": k, **params}
    )


#: Family name -> generator ``family(n, seed=0) -> list[Scenario]``.
FAMILIES: dict[str, Callable[..., list[Scenario]]] = {
    "scarf_hirota": scarf_hirota,
    "cyclic_scarf": cyclic_scarf,
    "ces_complements": ces_complements,
    "gross_substitutes": gross_substitutes,
}
