"""Which strategy drives each population under a mechanism, decided before the run.

A population names its strategy (``behaviour=``) or takes the default for its kind
(:data:`mktsim.strategies.DEFAULTS`). A strategy whose orders the mechanism does not accept, or
that cannot drive the population's kind, is refused here with one line naming the mechanisms
that would accept it, so nothing runs that would silently do nothing.

A mechanism may refuse a population kind it cannot clear at all (``refusal(population)``, a
class method returning the one-line reason or None): that reason comes first. A strategy may
refuse a population it cannot drive the same way (its own ``refusal(population)``), once the
pairing itself is possible.

Every population is driven by a registered strategy; a mechanism starts none of its own. A
mechanism's ``aliases`` map behaviour names it has always taken to the strategies they mean
under it (``noise`` on a market maker is ``noise_swap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mktsim import registry, strategies
from mktsim.errors import InvalidParameter, MktsimError
from mktsim.market import check_pairing
from mktsim.mechanism import PopulationSlot
from mktsim.options import parse_options

__all__ = ["assign_strategies", "start_strategies"]


def _accepting(emits: frozenset[type], skip: str) -> list[str]:
    out = []
    for name in sorted(registry.available()):
        if name == skip:
            continue
        try:
            cls = registry.resolve(name)
        except MktsimError:
            continue
        if emits & set(getattr(cls, "accepts", ())):
            out.append(name)
    return out


def assign_strategies(mechanism: Any, slots: Sequence[PopulationSlot]) -> dict[str, Any]:
    """Population name -> (strategy class, parsed options) for every population a registered
    strategy drives under ``mechanism`` (a class); raises the one-line refusal otherwise."""
    accepts = frozenset(getattr(mechanism, "accepts", ()))
    aliases = dict(getattr(mechanism, "aliases", {}))
    registered = strategies.available()
    refusal = getattr(mechanism, "refusal", None)
    out: dict[str, Any] = {}
    for slot in slots:
        pop = slot.population
        reason = refusal(pop) if refusal is not None else None
        if reason:
            raise InvalidParameter(reason)
        name = aliases.get(pop.behaviour, pop.behaviour)
        if name is None:
            name = strategies.default_for(pop.kind, accepts)
            if name is None:
                raise InvalidParameter(
                    f"population {slot.name!r} ({pop.kind}) has no strategy that "
                    f"{mechanism.name} accepts orders from"
                )
        given = isinstance(name, type) or (isinstance(name, str) and ":" in name)
        if not given and name not in registered:
            valid = sorted(set(registered) | set(aliases))
            raise registry.unknown_behaviour(slot.name, mechanism.name, name, valid)
        cls = strategies.resolve(name)
        strategies.check_serves(cls, slot.name, pop.kind)
        if not cls.emits & accepts:  # refused: name the mechanisms that would take it
            elsewhere = _accepting(cls.emits, mechanism.name)
            raise InvalidParameter(
                check_pairing(cls.name, cls.emits, mechanism.name, accepts, elsewhere) or ""
            )
        reason = cls.refusal(pop) if hasattr(cls, "refusal") else None
        if reason:
            raise InvalidParameter(reason)
        options = parse_options(f"strategy {cls.name}", cls.options, pop.behaviour_options)
        out[slot.name] = (cls, options)
    return out


def start_strategies(market: Any, ctx: Any, assigned: dict[str, Any]) -> list[Any]:
    """Construct and start the assigned strategies; returns them (for summaries).

    A strategy class may have ``refuse(market, ctx, slot)``, which raises the one-line reason
    it cannot work in this run: every one is asked before any strategy is made, so the reason
    that names the cause comes first (a firm nobody supplies, rather than its idle suppliers).
    """
    for slot in ctx.slots:
        if slot.name in assigned and hasattr(assigned[slot.name][0], "refuse"):
            assigned[slot.name][0].refuse(market, ctx, slot)
    started = []
    for slot in ctx.slots:
        if slot.name in assigned:
            cls, options = assigned[slot.name]
            strategy = cls(market, ctx, slot, options)
            strategy.start()
            started.append(strategy)
    return started
