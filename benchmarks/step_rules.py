"""Which price-adjustment rules converge on which families of economies? A measured table.

Run from the repository root::

    python -m benchmarks.step_rules                     # 50 economies a family, 200 Scarf-Hirota
    python -m benchmarks.step_rules --quick             # 12 a family, for a look

For each family of :mod:`mktsim.economies` and each built-in rule of :mod:`mktsim.steps`, every
economy starts from the same off-equilibrium prices (numeraire good0 at 1, each other price
exp(U(-0.5, 0.5)) from the benchmark's seed) and is stepped for at most 10^4 rounds, as the
auctioneer steps it (``normalize="numeraire"``, ``scale="supply"``): the gradient is excess
demand over total supply with the numeraire's entry zeroed, and every demand evaluation is a round
(extragradient's look-ahead, the average of ``averaged``, Newton's probes). An economy converges
when max over goods of |z_j| / supply_j falls below 1e-6 at a posted point.

Tatonnement is evaluated directly on the economies' excess demand, vectorised with numpy over all
economies of a family with the same number of goods (agents padded with zero endowment, who demand
nothing), NOT through full simulations; the step-rule objects are the auctioneer's own
(:func:`mktsim.steps.make_rule`). The batched demand is checked against
:func:`mktsim.equilibrium.aggregate_excess_demand` before any run.

Step sizes are tuned once per rule, on a separate training set (other seeds, 12 economies a family,
2,000 rounds): of the sizes {0.03, 0.1, 0.3, 1, 3, 10} x the rule's default, the one that
converges most often on the gross-substitutes control, then on the most training economies (the
families' shares summed), then in the fewest median rounds; one size per rule for every family, as
a deployed auctioneer would have. The heavy ball's coefficient is tuned with its step, on the same
training set ({0.5, 0.8, 0.9}; :data:`BETAS`). The test economies never inform it.
``proportional_response`` is left out by default: its buyers' half is a strategy, so evaluated
on demand alone it is a different rule (the trading-post update); ``--methods`` adds it.

Columns: the share that converged with its 95% Wilson interval, the median rounds to 1e-6 among
those that did, and which equilibrium they reached: the nearest of those :func:`mktsim.equilibrium`
lists (``stable`` / ``unstable`` / ``marginal`` under continuous tatonnement, numeraire held), or
``other`` when it is none of them (a point of a continuum of equilibria the solver did not list).

The Scarf-Hirota check (200 economies): continuous-time tatonnement dp/dt = z(p), prices not
normalised, followed with additive steps of 0.05 for 3,000 time units from a start 20% from
p* = (1, 1, 1) on the sphere |p| = |p0|; converged when the direction error fell twentyfold. The
share of economies where this agrees with :func:`mktsim.economies.hirota_stable` is printed.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

import mktsim
from mktsim import economies
from mktsim.equilibrium import aggregate_excess_demand
from mktsim.steps import make_rule, rule_names
from mktsim.utility import CES, Leontief

TOL = 1e-6
GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: Momentum coefficients tuned with the step, per rule (others keep their default). With the
#: heavy ball's default 0.8 its effective step h / (1 - beta) is five times h, and the step that
#: serves the other families overshoots on a few gross-substitutes economies.
BETAS: dict[str, tuple[float | None, ...]] = {"momentum": (0.5, 0.8, 0.9)}
#: Rules the table leaves out unless ``--methods`` names them (see the module docstring).
LEFT_OUT = ("proportional_response",)


@attrs.define
class Batch:
    """Economies of one family with the same number of goods, as padded arrays.

    ``params[b, a, g]`` are CES weights or Leontief coefficients, ``sigma[b, a]`` CES elasticities
    (None for Leontief), ``endowment[b, a, g]`` (padding agents hold nothing).
    """

    scenarios: list[mktsim.Scenario]
    params: np.ndarray
    sigma: np.ndarray | None
    endowment: np.ndarray

    @classmethod
    def of(cls, scenarios: list[mktsim.Scenario]) -> Batch:
        pops: list[Any] = [s.populations[0] for s in scenarios]
        g = len(scenarios[0].goods)
        agents = max(p.size for p in pops)
        leontief = isinstance(pops[0].utility, Leontief)
        params = np.ones((len(pops), agents, g))
        endowment = np.zeros((len(pops), agents, g))
        sigma = None if leontief else np.ones((len(pops), agents))
        for b, pop in enumerate(pops):
            u = pop.utility
            n = pop.size
            if leontief:
                params[b, :n] = u.coefficients
            else:
                assert isinstance(u, CES) and sigma is not None
                params[b, :n] = u.weights
                sigma[b, :n] = np.broadcast_to(u.elasticity, (n,))
            endowment[b, :n] = pop.endowment
        return cls(scenarios, params, sigma, endowment)

    @property
    def supply(self) -> np.ndarray:
        return self.endowment.sum(axis=1)

    def excess(self, p: np.ndarray) -> np.ndarray:
        """Excess demand ``float64[b, g]`` at prices ``p[b, g]``."""
        wealth = np.einsum("bag,bg->ba", self.endowment, p)
        if self.sigma is None:
            cost = np.einsum("bag,bg->ba", self.params, p)
            demand = self.params * (wealth / cost)[:, :, None]
        else:
            s = self.sigma[:, :, None]
            with np.errstate(divide="ignore"):
                term = np.where(
                    self.params > 0,
                    np.exp(s * (np.log(self.params) - np.log(p)[:, None, :])),
                    0.0,
                )
            demand = wealth[:, :, None] * term / (term * p[:, None, :]).sum(axis=2, keepdims=True)
        return demand.sum(axis=1) - self.supply

    def take(self, rows: np.ndarray) -> Batch:
        sigma = None if self.sigma is None else self.sigma[rows]
        picked = [self.scenarios[i] for i in rows]
        return Batch(picked, self.params[rows], sigma, self.endowment[rows])


def batches(scenarios: list[mktsim.Scenario]) -> list[Batch]:
    groups: dict[int, list[mktsim.Scenario]] = {}
    for s in scenarios:
        groups.setdefault(len(s.goods), []).append(s)
    out = [Batch.of(group) for _, group in sorted(groups.items())]
    rng = np.random.default_rng(0)
    for batch in out:  # the vectorised demand is the package's demand
        p = np.exp(rng.uniform(-1, 1, (len(batch.scenarios), batch.params.shape[2])))
        ref = np.array(
            [aggregate_excess_demand(s, q) for s, q in zip(batch.scenarios, p, strict=True)]
        )
        np.testing.assert_allclose(batch.excess(p), ref, rtol=1e-9, atol=1e-9)
    return out


def starts(batch: Batch, seed: int) -> np.ndarray:
    """Start prices: good0 at 1, the others exp(U(-0.5, 0.5)), one stream per economy."""
    out = np.ones((len(batch.scenarios), batch.params.shape[2]))
    for b, s in enumerate(batch.scenarios):
        rng = np.random.default_rng([seed, int(s.params["index"])])
        out[b, 1:] = np.exp(rng.uniform(-0.5, 0.5, out.shape[1] - 1))
    return out


def run_rule(
    make: Callable[[], Any], batch: Batch, p0: np.ndarray, rounds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Step every economy of ``batch`` with a fresh rule from ``make``; returns the round at
    which each first converged (-1: never) and the prices posted then."""
    rule = make()
    n = len(batch.scenarios)
    single = rule.__class__.__name__ == "Newton"  # its Jacobian is per economy
    if single and n > 1:
        hits, at = [], []
        for b in range(n):
            h, q = run_rule(make, batch.take(np.array([b])), p0[b : b + 1], rounds)
            hits.append(h[0])
            at.append(q[0])
        return np.array(hits), np.array(at)
    p, state = p0.copy(), {}
    supply = np.where(batch.supply > 0, batch.supply, 1.0)
    hit, at = np.full(n, -1), p0.copy()
    live = np.ones(n, dtype=bool)
    for t in range(rounds):
        with np.errstate(all="ignore"):
            relative = batch.excess(p) / supply
        bad = ~np.all(np.isfinite(relative), axis=1) | ~np.all(np.isfinite(p), axis=1)
        live &= ~bad
        now = live & (hit < 0) & (np.max(np.abs(relative), axis=1) < TOL)
        hit[now], at[now] = t, p[now]
        if not np.any(live & (hit < 0)):
            break
        relative[bad] = 0.0
        gradient = relative.copy()
        gradient[:, 0] = 0.0  # numeraire held at 1
        with np.errstate(all="ignore"):
            if single:  # one economy, as the auctioneer hands it: float64[g]
                p = np.asarray(rule(p[0], gradient[0], state), dtype=float)[None, :]
            else:
                p = np.asarray(rule(p, gradient, state), dtype=float)
        p[bad] = 1.0  # (finished rows; keeps the batch's arithmetic finite)
    return hit, at


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def default_step(method: str) -> float:
    return float(make_rule(method).step)  # type: ignore[attr-defined]


def tune(
    method: str, families: dict[str, list[Batch]], rounds: int, seed: int
) -> tuple[float, float | None]:
    """The step (and momentum coefficient, for rules in :data:`BETAS`), on the grid, that
    converges on the whole gross-substitutes training set (the control: a sensible auctioneer
    must clear it) and, among those, on the most training economies summed over families'
    shares (ties: fewer median rounds). One setting per rule for every family, as a deployed
    auctioneer would have."""
    best: tuple[float, float, float] | None = None
    chosen: tuple[float, float | None] = (default_step(method), None)
    for beta in BETAS.get(method, (None,)):
        for factor in GRID:
            step = default_step(method) * factor
            shares, hits = {}, []
            for name, family in families.items():
                mine = []
                for batch in family:
                    h, _ = run_rule(
                        lambda step=step, beta=beta: make_rule(method, step, beta=beta),
                        batch,
                        starts(batch, seed),
                        rounds,
                    )
                    mine.append(h)
                h = np.concatenate(mine)
                shares[name] = float(np.mean(h >= 0))
                hits.append(h)
            h = np.concatenate(hits)
            median = float(np.median(h[h >= 0])) if np.any(h >= 0) else math.inf
            key = (shares.get("gross_substitutes", 1.0), sum(shares.values()), -median)
            if best is None or key > best:
                best, chosen = key, (step, beta)
    return chosen


def classify(scenario: mktsim.Scenario, p: np.ndarray, cache: dict[str, Any]) -> str:
    if scenario.name not in cache:
        cache[scenario.name] = mktsim.equilibrium(scenario).equilibria
    points = cache[scenario.name]
    if not points:
        return "other"
    dist = [float(np.max(np.abs(np.log(p) - np.log(q.price_vector)))) for q in points]
    k = int(np.argmin(dist))
    return points[k].stability if dist[k] < 1e-3 else "other"


def hirota_check(n: int, seed: int = 1) -> tuple[float, float, float]:
    """(share predicted stable, share converged, share where they agree) over ``n`` draws."""
    draws = economies.scarf_hirota(n, seed=seed)
    batch = Batch.of(draws)
    rng = np.random.default_rng(5)
    u = rng.normal(size=(n, 3))
    u -= u.mean(axis=1, keepdims=True)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    p = 1 + 0.2 * math.sqrt(3) * u
    p0 = p.copy()
    rule, state = make_rule("additive", 0.05), {}
    for _ in range(int(3000 / 0.05)):
        p = rule(p, batch.excess(p), state)

    def error(x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(
            x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(3) - 1, axis=1
        )

    converged = error(p) < 0.05 * error(p0)
    predicted = np.array([economies.hirota_stable(s.params["endowment"]) for s in draws])
    return float(predicted.mean()), float(converged.mean()), float(np.mean(converged == predicted))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--economies", type=int, default=50, help="test economies per family")
    parser.add_argument("--hirota", type=int, default=200, help="Scarf-Hirota stability draws")
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--train", type=int, default=12, help="training economies per family")
    parser.add_argument("--train-rounds", type=int, default=2000)
    parser.add_argument("--methods", default=",".join(m for m in rule_names() if m not in LEFT_OUT))
    parser.add_argument("--figure", default="reports/gallery/step_rules.png")
    parser.add_argument("--quick", action="store_true", help="12 economies, 2,000 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.economies, args.hirota, args.rounds, args.train = 12, 40, 2000, 4
        args.train_rounds = 500
    methods = args.methods.split(",")
    train = {f: batches(make(args.train, seed=1000)) for f, make in economies.FAMILIES.items()}
    test = {f: batches(make(args.economies, seed=1)) for f, make in economies.FAMILIES.items()}
    print(
        "Tatonnement evaluated directly on each economy's excess demand (vectorised numpy), "
        "with the auctioneer's step-rule objects; not full simulations.\n"
    )
    stable, converged, agree = hirota_check(args.hirota)
    print(
        f"Scarf-Hirota, {args.hirota} draws: hirota_stable {stable:.1%}, continuous-time "
        f"tatonnement converged {converged:.1%}, agreement {agree:.1%}\n"
    )
    steps = {}
    for m in methods:
        steps[m] = tune(m, train, args.train_rounds, seed=7)
        print(f"tuned {m}: step {setting(*steps[m])}", file=sys.stderr, flush=True)
    cache: dict[str, Any] = {}
    rows = []
    for family, group in test.items():
        for method in methods:
            step, beta = steps[method]
            hits, kinds = [], []
            for batch in group:
                h, at = run_rule(
                    lambda step=step, beta=beta, method=method: make_rule(method, step, beta=beta),
                    batch,
                    starts(batch, seed=3),
                    args.rounds,
                )
                hits.append(h)
                kinds += [
                    classify(s, q, cache) if k >= 0 else None
                    for s, k, q in zip(batch.scenarios, h, at, strict=True)
                ]
            h = np.concatenate(hits)
            k, n = int(np.sum(h >= 0)), len(h)
            low, high = wilson(k, n)
            rows.append(
                {
                    "family": family,
                    "method": method,
                    "step": step,
                    "beta": beta,
                    "n": n,
                    "share": k / n,
                    "low": low,
                    "high": high,
                    "median": float(np.median(h[h >= 0])) if k else math.nan,
                    **{c: kinds.count(c) for c in ("stable", "unstable", "marginal", "other")},
                }
            )
    print(f"At most {args.rounds} rounds; converged: max_j |z_j| / supply_j < {TOL:g}\n")
    print(
        "| family | method | step | converged [95% CI] | median rounds | stable | unstable | "
        "marginal | other |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        median = "-" if math.isnan(r["median"]) else f"{r['median']:.0f}"
        print(
            f"| {r['family']} | {r['method']} | {setting(r['step'], r['beta'])} | {r['share']:.0%} "
            f"[{r['low']:.0%}, {r['high']:.0%}] | {median} | {r['stable']} | {r['unstable']} | "
            f"{r['marginal']} | {r['other']} |"
        )
    figure(rows, methods, args.figure)
    print(f"\nfigure: {args.figure}")


def setting(step: float, beta: float | None) -> str:
    """A tuned step as the table shows it (with the momentum coefficient where tuned)."""
    return f"{step:.3g}" if beta is None else f"{step:.3g} (β {beta:g})"


def figure(rows: list[dict[str, Any]], methods: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(1, len(families), figsize=(4 * len(families), 4), sharey=True)
    for ax, family in zip(np.atleast_1d(axes), families, strict=True):
        mine = [r for r in rows if r["family"] == family]
        x = np.arange(len(mine))
        share = np.array([r["share"] for r in mine])
        err = np.array([[r["share"] - r["low"], r["high"] - r["share"]] for r in mine]).T
        ax.bar(x, share, yerr=err, capsize=3, color="tab:blue")
        ax.set_xticks(x, [r["method"] for r in mine], rotation=70, fontsize=8)
        ax.set_title(f"{family} (n={mine[0]['n']})")
        ax.set_ylim(0, 1.05)
    np.atleast_1d(axes)[0].set_ylabel("share converged (95% Wilson)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
