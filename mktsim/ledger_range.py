"""The ledger's representable range: each run's base unit, chosen from the economy's magnitudes,
and the refusal, before the run, of quantities the ledger could not hold exactly.

Kept apart from :mod:`mktsim.ledger` (which moves holdings) because it reads a scenario: it runs
once, before any ledger exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from mktsim.errors import InvalidParameter
from mktsim.goods import MAX_BASE, Goods, base_units_for
from mktsim.ledger import FLOAT_LIMIT, IntArray, exact_column_sums

__all__ = ["check_representable", "run_goods"]


def _totals(scenario: Any) -> list[float]:
    """Each good's total over the economy's endowments, in units."""
    totals = np.zeros(len(scenario.goods))
    for pop in scenario.populations:
        units = np.asarray(pop.endowment, dtype=np.float64)
        if units.size:
            totals += np.abs(units).sum(axis=0)
    return [float(t) for t in totals]


def run_goods(
    scenario: Any,
    shocks: Sequence[Any] = (),
    creations: Callable[[Any, list[float]], list[float] | None] | None = None,
) -> Goods:
    """The scenario's goods with the run's base unit, chosen from the economy's magnitudes: the
    power of ten putting the largest total any good could reach under the planned shocks at 15
    digits, in ``(1e14, 1e15]`` base units (:func:`mktsim.goods.base_units_for`). That is a
    resolution of 1e-15 of the total, and room for about 9,200 times it before int64's limit
    for what the run creates (pools, production). The rule depends on the total's decade only:
    an economy scaled by ``10**k`` gets a base unit ``10**k`` times as large, and so the same
    integer holdings and the same prices, scaled.

    ``creations(scenario, totals)``, a mechanism's optional word on the units of each good it
    will create when it opens (a pool's reserves; ``totals``: each good's total endowment), is
    heeded only where that room would not hold them: the largest total after the opening then
    sets the unit (coarser), so a run the economy's own unit would refuse goes ahead."""
    totals = _totals(scenario)
    bound = list(totals)
    for shock in sorted(shocks, key=lambda s: s.time):
        if getattr(shock, "kind", None) == "endowment" and shock.factor > 1:
            j = scenario.goods.index(shock.good)
            bound[j] *= shock.factor
            if not np.isfinite(bound[j]):
                raise InvalidParameter(
                    f"shock {shock!r} could carry the total of {shock.good} to {bound[j]} units, "
                    "past what the ledger can represent in any unit"
                )
    largest = max(bound, default=0.0)
    if not np.isfinite(largest):
        raise InvalidParameter(f"the endowments' largest total (={largest}) must be finite")
    made = None if creations is None else creations(scenario, totals)
    if made is not None:
        after = max((b + m for b, m in zip(bound, made, strict=True)), default=0.0)
        if np.isfinite(after) and after > MAX_BASE / base_units_for(largest):
            largest = after
    return attrs.evolve(scenario.goods, base_units=base_units_for(largest))


def check_representable(
    scenario: Any, shocks: Sequence[Any] = (), goods: Goods | None = None
) -> IntArray:
    """Refuse, before a run, an economy whose quantities the ledger cannot hold exactly, and
    return its initial holdings in base units (ledger row order).

    Holdings are int64 base units of 1/``goods.base_units`` (default: the run's choice,
    :func:`run_goods`), so a good's total over the economy must stay within
    ``goods.max_units`` and a nonzero endowment must be at least half a base unit (smaller
    ones would silently become zero). Endowment shocks that multiply holdings are bounded too,
    as if one population held all of the good when it struck. What mechanisms and firms create
    during the run (pool funding, shares, production) is checked when it happens: the ledger
    refuses any creation past the limit.

    Args:
        scenario: the economy (its populations' endowments, in units).
        shocks: the shocks planned for the run.
        goods: the goods with the base unit to check against.

    Raises:
        InvalidParameter: naming the population, good and value, or the good, its total and the
            limit, or the shock that would pass it.
    """
    goods = run_goods(scenario, shocks) if goods is None else goods
    base_units = goods.base_units
    limit = goods.max_units
    unit = f"int64 base units of 1/{base_units:g}"
    names = goods.names
    held: list[IntArray] = []
    totals = [0] * len(goods)
    largest: list[tuple[int, str]] = [(0, "")] * len(goods)
    for pop in scenario.populations:
        units = np.asarray(pop.endowment, dtype=np.float64)
        magnitude = np.abs(units) * base_units
        for check, what in (
            (~(magnitude < FLOAT_LIMIT), f"is past the ledger's limit of {limit:.6g} units"),
            ((units != 0) & (magnitude < 0.5), "rounds to 0 base units"),
        ):
            if check.any():
                i, j = np.argwhere(check)[0]
                raise InvalidParameter(
                    f"population {pop.name!r}: endowment of {names[j]} (={units[i, j]:.6g}) "
                    f"{what} (the ledger holds every good in {unit}); express {names[j]} in "
                    "another unit"
                )
        base = goods.to_base(units, f"population {pop.name!r} endowment")
        held.append(base)
        for j, total in enumerate(exact_column_sums(base)):
            totals[j] += total
            largest[j] = max(largest[j], (total, pop.name))
    for j, total in enumerate(totals):
        if total > MAX_BASE:
            raise InvalidParameter(
                f"the endowments of {names[j]} total {total / base_units:.6g} units (population "
                f"{largest[j][1]!r} holds {largest[j][0] / base_units:.6g}), past the ledger's "
                f"limit of {limit:.6g} units per good ({unit}); express {names[j]} in a larger "
                "unit"
            )
    bound = [float(t) for t in totals]
    for shock in sorted(shocks, key=lambda s: s.time):
        if getattr(shock, "kind", None) != "endowment" or shock.factor <= 1:
            continue
        j = goods.index(shock.good)
        bound[j] *= shock.factor
        if bound[j] >= FLOAT_LIMIT:
            raise InvalidParameter(
                f"shock {shock!r} could carry the total of {shock.good} to "
                f"{bound[j] / base_units:.6g} units, past the ledger's limit of "
                f"{limit:.6g} units per good ({unit})"
            )
    if not held:
        return np.zeros((0, len(goods)), dtype=np.int64)
    return np.vstack(held)
