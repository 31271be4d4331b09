"""Prediction market: belief traders with heterogeneous beliefs and wealth facing an LMSR maker."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mktsim.scenarios._common import check_count, check_number
from scipy import stats

from mktsim.beliefs import BeliefTraders, prediction_market
from mktsim.errors import InvalidParameter
from mktsim.random import Streams
from mktsim.scenario import Scenario


def build(
    n_traders: int = 50,
    n_noise: int = 10,
    n_informed: int = 0,
    true_probability: float | Sequence[float] = 0.7,
    concentration: float = 20.0,
    money: float = 10.0,
    wealth_spread: float = 1.0,
    complete_sets: float = 1.0,
    b: float = 10.0,
    risk: str = "log",
    accuracy: float = 0.8,
    rate: float = 1.0,
    until: float = 50.0,
    seed: int = 0,
) -> Scenario:
    """An event with true outcome probabilities ``true_probability`` (a float: a yes/no event
    with P(yes) = that float; a list: one probability per outcome).

    ``n_traders`` belief traders hold beliefs drawn from a Dirichlet with mean the true
    probabilities and concentration ``concentration`` (so beliefs average to the truth), and
    money lognormal with mean ``money`` and log-sd ``wealth_spread``; each also holds
    ``complete_sets`` complete sets of shares. ``n_noise`` noise traders trade at random;
    ``n_informed`` informed traders know the true probabilities and get a private signal of the
    outcome, right with probability ``accuracy``. Every draw is a function of (seed, agent id).
    The LMSR maker has liquidity ``b``; the event resolves at ``until``, the outcome drawn from
    the true probabilities with the run seed.
    """
    check_count("n_traders", n_traders, 1)
    check_count("n_noise", n_noise, 0)
    check_count("n_informed", n_informed, 0)
    truth = np.atleast_1d(np.asarray(true_probability, dtype=float))
    if truth.size == 1:
        truth = np.array([truth[0], 1.0 - truth[0]])
    if not np.isfinite(truth).all() or (truth <= 0).any() or abs(truth.sum() - 1.0) > 1e-9:
        raise InvalidParameter(
            f"true_probability(={true_probability!r}) must be in (0, 1), or a list of "
            "probabilities > 0 summing to 1"
        )
    concentration = check_number("concentration", concentration)
    money = check_number("money", money)
    wealth_spread = check_number("wealth_spread", wealth_spread, strict=False)
    if not np.isfinite(complete_sets) or complete_sets <= 0:
        raise InvalidParameter(
            f"complete_sets(={complete_sets!r}) must be > 0: every share good needs a supply"
        )
    k = truth.size
    streams = Streams(seed)

    def wealth(stream: str, n: int) -> np.ndarray:
        z = stats.norm.ppf(streams.uniform(stream, np.arange(n)))
        return np.asarray(money * np.exp(wealth_spread * z - wealth_spread**2 / 2))

    # Dirichlet(concentration·truth) by normalised gamma quantiles of per-agent uniforms.
    u = streams.uniforms("prediction_market:beliefs", np.arange(n_traders), k)
    gammas = stats.gamma.ppf(u, concentration * truth[None, :])
    beliefs = np.maximum(gammas, 1e-300)
    beliefs /= beliefs.sum(axis=1, keepdims=True)
    pops = [
        BeliefTraders.of(
            "traders",
            beliefs,
            wealth("prediction_market:money", n_traders),
            complete_sets,
            risk=risk,
            behaviour_options={"rate": rate},
        )
    ]
    if n_noise:
        pops.append(
            BeliefTraders.of(
                "noise",
                np.full((n_noise, k), 1.0 / k),
                wealth("prediction_market:noise_money", n_noise),
                complete_sets,
                behaviour="noise",
                behaviour_options={"rate": rate},
            )
        )
    if n_informed:
        pops.append(
            BeliefTraders.of(
                "informed",
                np.repeat(truth[None, :], n_informed, axis=0),
                wealth("prediction_market:informed_money", n_informed),
                complete_sets,
                risk=risk,
                behaviour="informed",
                behaviour_options={"rate": rate, "accuracy": accuracy},
            )
        )
    return prediction_market(
        pops,
        truth,
        b=b,
        until=until,
        params={
            "n_traders": n_traders,
            "n_noise": n_noise,
            "n_informed": n_informed,
            "true_probability": truth.tolist(),
            "concentration": concentration,
            "money": money,
            "wealth_spread": wealth_spread,
            "complete_sets": complete_sets,
            "b": b,
            "risk": risk,
            "accuracy": accuracy,
            "rate": rate,
            "until": until,
            "seed": seed,
        },
        description=__doc__ or "",
    )
