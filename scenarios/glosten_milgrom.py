"""Glosten-Milgrom (1985) dealer market: a Bayesian dealer quoting to informed and noise traders.

One asset worth ``v_low`` or ``v_high`` (drawn per run with P(v_high) = ``prior``, or forced with
``value``) trades against money on the order book. A single competitive dealer (``gm_dealer``)
quotes bid = E[V | sell] and ask = E[V | buy] for ``quote_size`` units and updates its belief by
Bayes' rule after every trade; informed traders (``gm_informed``) buy below the true value and
sell above it; noise traders (``gm_noise``) buy or sell with probability 1/2. Trader arrivals
are Poisson with total rate ``rate``, split ``mu : 1 - mu`` between the informed and the noise
populations, so each arrival is informed with probability ``mu`` as in the model. Runs under
``order_book`` (the model's sequential trades) and ``call_market`` (trades at each batch's
clearing, an approximation of the model); mechanisms that take no limit orders refuse it (the
traders have no demand at posted prices, no beliefs over outcomes and no utility). See
:mod:`mktsim.dealer` for the closed forms and the summary entries.
"""

from __future__ import annotations

import math
from typing import Any

from mktsim.scenarios._common import check_count, check_number

from mktsim.dealer import DealerMarketTraders, metrics
from mktsim.errors import InvalidParameter
from mktsim.scenario import Scenario


def build(
    mu: float = 0.3,
    v_low: float = 90.0,
    v_high: float = 110.0,
    prior: float = 0.5,
    value: str | None = None,
    n_informed: int = 10,
    n_noise: int = 40,
    rate: float = 1.0,
    tick: float = 0.01,
    quote_size: float = 1.0,
    trade_size: float = 1.0,
    dealer_money: float = 100_000.0,
    dealer_stock: float = 1_000.0,
    trader_money: float = 10_000.0,
    trader_stock: float = 100.0,
    until: float = 300.0,
) -> Scenario:
    """The dealer market.

    Args:
        mu: fraction of informed traders among arrivals, in (0, 1).
        v_low, v_high: the asset's two values, money per unit, 0 < v_low < v_high.
        prior: P(V = v_high), nature's and the dealer's, in (0, 1).
        value: ``high`` or ``low`` to force the true value (None: drawn with the run seed).
        n_informed, n_noise: agents in each trader population (>= 1).
        rate: trader arrivals per unit of time, all traders together.
        tick: price tick of the book, money per unit (the lot is one unit).
        quote_size: units on each side of the dealer's quotes; ``trade_size``: units per
            trader order. Both whole units.
        dealer_money, dealer_stock: what the dealer holds at the start (enough to quote for
            the whole run: about ``rate x until`` trades).
        trader_money, trader_stock: what each trader holds at the start.
        until: horizon, simulation time.
    """
    mu = float(mu)
    if not (math.isfinite(mu) and 0.0 < mu < 1.0):
        raise InvalidParameter(f"mu(={mu!r}) must be in (0, 1)")
    v_low = check_number("v_low", v_low)
    v_high = check_number("v_high", v_high)
    if not v_low < v_high:
        raise InvalidParameter(f"v_low(={v_low}) must be below v_high(={v_high})")
    prior = float(prior)
    if not (math.isfinite(prior) and 0.0 < prior < 1.0):
        raise InvalidParameter(f"prior(={prior!r}) must be in (0, 1)")
    if value not in (None, "high", "low"):
        raise InvalidParameter(f"value(={value!r}) must be 'high', 'low' or None (drawn)")
    check_count("n_informed", n_informed, 1)
    check_count("n_noise", n_noise, 1)
    rate = check_number("rate", rate)
    tick = check_number("tick", tick)
    until = check_number("until", until)
    sizes = {}
    for name, size in (("quote_size", quote_size), ("trade_size", trade_size)):
        v = check_number(name, size)
        if v != round(v):
            raise InvalidParameter(f"{name}(={size!r}) must be a whole number of units")
        sizes[name] = v
    money = {
        name: check_number(name, v, strict=False)
        for name, v in (
            ("dealer_money", dealer_money),
            ("dealer_stock", dealer_stock),
            ("trader_money", trader_money),
            ("trader_stock", trader_stock),
        )
    }
    model: dict[str, Any] = {"v_low": v_low, "v_high": v_high, "prior": prior, "value": value}
    pops = [
        DealerMarketTraders.of(
            "dealer",
            1,
            money["dealer_money"],
            money["dealer_stock"],
            behaviour="gm_dealer",
            behaviour_options={**model, "mu": mu, "order_size": sizes["quote_size"]},
        ),
        DealerMarketTraders.of(
            "informed",
            n_informed,
            money["trader_money"],
            money["trader_stock"],
            behaviour="gm_informed",
            behaviour_options={
                **model,
                "rate": mu * rate / n_informed,
                "order_size": sizes["trade_size"],
            },
        ),
        DealerMarketTraders.of(
            "noise",
            n_noise,
            money["trader_money"],
            money["trader_stock"],
            behaviour="gm_noise",
            behaviour_options={
                **model,
                "rate": (1.0 - mu) * rate / n_noise,
                "order_size": sizes["trade_size"],
            },
        ),
    ]
    return Scenario(
        "glosten_milgrom",
        ["money", "asset"],
        pops,
        mechanism="order_book",
        mechanism_options={
            "order_book": {"tick": tick, "lot": 1.0},
            "call_market": {"tick": tick, "lot": 1.0},
        },
        until=until,
        params={
            "mu": mu,
            "v_low": v_low,
            "v_high": v_high,
            "prior": prior,
            "value": value,
            "n_informed": n_informed,
            "n_noise": n_noise,
            "rate": rate,
            "tick": tick,
            **sizes,
            **money,
            "until": until,
        },
        description=(__doc__ or "").strip().splitlines()[0],
        metrics=metrics,
        metrics_tables=("holdings", "quotes"),
    )
