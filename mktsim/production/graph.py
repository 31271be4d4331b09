"""Supply graphs: which firms turn which goods into which, validated once where they are made.

A :class:`SupplyGraph` has three kinds of goods:

- raw resources, with an endowment, produced by no firm;
- intermediate goods, produced by firms and used by firms;
- final goods, produced by firms and used by none, either sold at a fixed price (perfectly
  elastic demand) or bought by consumers whose demand is modelled elsewhere.

Each :class:`FirmNode` is one firm: a single-firm technology, its input goods (in the
technology's input order) and its output good. Several firms may make the same good and a good
may have several users; the graph must be acyclic.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from attrs import field, frozen

from mktsim.errors import InvalidParameter, ScenarioError
from mktsim.production.callable import tupperware_chain
from mktsim.production.technology import CobbDouglas, Technology

__all__ = [
    "FinalGood",
    "FirmNode",
    "RawResource",
    "SupplyGraph",
    "shared_intermediate_graph",
    "tupperware_graph",
]


def _finite(name: str, value: float, *, positive: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"{name}(={value!r}) must be a number") from exc
    ok = v > 0 if positive else v >= 0
    if not (ok and v < float("inf")):
        raise InvalidParameter(
            f"{name}(={value!r}) must be {'>' if positive else '>='} 0 and finite"
        )
    return v


def _names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        # a bare string would become its characters
        raise InvalidParameter(f"expected a sequence of names; got the string {names!r}")
    return tuple(str(n) for n in names)


@frozen
class RawResource:
    """A good nobody produces, available in a fixed amount.

    Attributes:
        good: the good's name.
        endowment: units available, >= 0 and finite.
    """

    good: str
    endowment: float

    def __attrs_post_init__(self) -> None:
        e = _finite(f"endowment of {self.good!r}", self.endowment, positive=False)
        object.__setattr__(self, "endowment", e)


@frozen
class FinalGood:
    """A good that leaves the production graph.

    Exactly one of ``price`` (a fixed price, i.e. perfectly elastic demand) and ``consumed``
    (bought by consumers; its price is set by a market) must be given.

    Attributes:
        good: the good's name.
        price: numeraire per unit, > 0 and finite, or None.
        consumed: True when consumers buy it.
    """

    good: str
    price: float | None = None
    consumed: bool = False

    def __attrs_post_init__(self) -> None:
        if self.price is None and not self.consumed:
            raise ScenarioError(
                f"final good {self.good!r} has no price: give price= (perfectly elastic demand) "
                "or consumed=True (bought by consumers)"
            )
        if self.price is not None and self.consumed:
            raise ScenarioError(
                f"final good {self.good!r} has both a fixed price and consumers: a fixed price "
                "already means perfectly elastic demand; give one of them"
            )
        if self.price is not None:
            p = _finite(f"price of final good {self.good!r}", self.price, positive=True)
            object.__setattr__(self, "price", p)


@frozen(eq=False)
class FirmNode:
    """One firm in a supply graph.

    Attributes:
        name: unique firm name.
        technology: a :class:`~mktsim.production.technology.Technology` with ``n_firms == 1``
            and ``n_inputs == len(inputs)``.
        inputs: input goods, in the technology's input order, all distinct.
        output: the good it makes.
    """

    name: str
    technology: Technology
    inputs: tuple[str, ...] = field(converter=_names)
    output: str

    def __attrs_post_init__(self) -> None:
        tech = self.technology
        if not isinstance(tech, Technology):
            raise InvalidParameter(
                f"technology of firm {self.name!r}(={tech!r}) must implement Technology "
                "(n_firms, n_inputs, output, marginal_products, input_demand, supply)"
            )
        if tech.n_firms != 1:
            raise InvalidParameter(
                f"technology of firm {self.name!r} must describe one firm; "
                f"got n_firms={tech.n_firms}"
            )
        if not self.inputs:
            raise ScenarioError(f"firm {self.name!r} has no inputs")
        if tech.n_inputs != len(self.inputs):
            raise InvalidParameter(
                f"firm {self.name!r} lists {len(self.inputs)} inputs {list(self.inputs)} but its "
                f"technology takes n_inputs={tech.n_inputs}"
            )
        if len(set(self.inputs)) != len(self.inputs):
            raise ScenarioError(f"firm {self.name!r} lists an input twice: {list(self.inputs)}")


def _resources(items: Iterable[RawResource]) -> tuple[RawResource, ...]:
    return tuple(items)


def _firms(items: Iterable[FirmNode]) -> tuple[FirmNode, ...]:
    return tuple(items)


def _finals(items: Iterable[FinalGood]) -> tuple[FinalGood, ...]:
    return tuple(items)


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    return dup


def _unknown(kind: str, name: str, where: str, valid: Sequence[str]) -> ScenarioError:
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ScenarioError(
        f"{where} names unknown {kind} {name!r}{hint}; declared goods: {', '.join(valid)}"
    )


@frozen(eq=False)
class SupplyGraph:
    """A validated, acyclic production graph.

    Attributes:
        goods: every good's name, each once.
        resources: the raw resources.
        firms: the firms.
        finals: the final goods.

    Raises:
        ScenarioError: duplicate or unknown names, a cycle, a good nobody produces or nobody
            uses, a raw resource that a firm produces, a final good nobody produces or that a
            firm uses, a final good without price.
        InvalidParameter: a technology whose shape does not match its firm.
    """

    goods: tuple[str, ...] = field(converter=_names)
    resources: tuple[RawResource, ...] = field(converter=_resources)
    firms: tuple[FirmNode, ...] = field(converter=_firms)
    finals: tuple[FinalGood, ...] = field(converter=_finals)
    _producers: dict[str, tuple[FirmNode, ...]] = field(init=False, repr=False)
    _users: dict[str, tuple[FirmNode, ...]] = field(init=False, repr=False)
    _firm_order: tuple[FirmNode, ...] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        goods = self.goods
        for kind, names in (
            ("good", goods),
            ("firm", [f.name for f in self.firms]),
            ("raw resource", [r.good for r in self.resources]),
            ("final good", [f.good for f in self.finals]),
        ):
            dup = _duplicates(names)
            if dup:
                raise ScenarioError(f"{kind} {dup[0]!r} is declared more than once")
        for r in self.resources:
            if r.good not in goods:
                raise _unknown("good", r.good, "raw resource", goods)
        for fg in self.finals:
            if fg.good not in goods:
                raise _unknown("good", fg.good, "final good", goods)
        for firm in self.firms:
            if not isinstance(firm, FirmNode):
                raise InvalidParameter(f"firms must be FirmNode objects; got {firm!r}")
            for g in (*firm.inputs, firm.output):
                if g not in goods:
                    raise _unknown("good", g, f"firm {firm.name!r}", goods)

        producers: dict[str, list[FirmNode]] = {g: [] for g in goods}
        users: dict[str, list[FirmNode]] = {g: [] for g in goods}
        for firm in self.firms:
            producers[firm.output].append(firm)
            for g in firm.inputs:
                users[g].append(firm)
        raw = {r.good for r in self.resources}
        final = {f.good for f in self.finals}

        for g in goods:
            made_by = [f.name for f in producers[g]]
            used_by = [f.name for f in users[g]]
            if g in raw and g in final:
                raise ScenarioError(f"good {g!r} is both a raw resource and a final good")
            if g in raw and made_by:
                raise ScenarioError(
                    f"raw resource {g!r} is produced by firm(s) {made_by}: a raw resource comes "
                    "only from its endowment"
                )
            if g in raw and not used_by:
                raise ScenarioError(f"raw resource {g!r} is used by no firm")
            if g in final and not made_by:
                raise ScenarioError(f"final good {g!r} is produced by no firm")
            if g in final and used_by:
                raise ScenarioError(
                    f"final good {g!r} is also an input of firm(s) {used_by}: a final good must "
                    "leave the graph; model any internal use with a separate intermediate good"
                )
            if g not in raw and g not in final:
                if not made_by and not used_by:
                    raise ScenarioError(f"good {g!r} is neither produced nor used by any firm")
                if not made_by:
                    raise ScenarioError(
                        f"good {g!r} is used by firm(s) {used_by} but produced by no firm and "
                        "is not a raw resource"
                    )
                if not used_by:
                    raise ScenarioError(
                        f"good {g!r} is produced by firm(s) {made_by} but used by no firm and "
                        "is not a final good"
                    )

        object.__setattr__(self, "_producers", {g: tuple(v) for g, v in producers.items()})
        object.__setattr__(self, "_users", {g: tuple(v) for g, v in users.items()})
        object.__setattr__(self, "_firm_order", self._sort_firms())

    def _sort_firms(self) -> tuple[FirmNode, ...]:
        """Firms so that every good's producers come before its users (Kahn's algorithm)."""
        waiting = {f.name: sum(len(self._producers[g]) for g in f.inputs) for f in self.firms}
        ready = [f for f in self.firms if waiting[f.name] == 0]
        order: list[FirmNode] = []
        while ready:
            firm = ready.pop(0)
            order.append(firm)
            for user in self._users[firm.output]:
                waiting[user.name] -= 1
                if waiting[user.name] == 0:
                    ready.append(user)
        if len(order) < len(self.firms):
            raise ScenarioError(f"the supply graph has a cycle: {self._find_cycle(order)}")
        return tuple(order)

    def _find_cycle(self, done: list[FirmNode]) -> str:
        """One cycle among the firms Kahn's algorithm could not order, as 'g -> firm -> g'."""
        left = {f.name: f for f in self.firms if f not in done}
        # every remaining firm has an input produced by a remaining firm: walk back until a repeat
        firm = next(iter(left.values()))
        path: list[tuple[str, FirmNode]] = []
        seen: dict[str, int] = {}
        while firm.name not in seen:
            seen[firm.name] = len(path)
            good, prev = next(
                (g, p) for g in firm.inputs for p in self._producers[g] if p.name in left
            )
            path.append((good, firm))
            firm = prev
        loop = path[seen[firm.name] :][::-1]
        parts = [f"{good} -> {f.name}" for good, f in loop]
        return " -> ".join(parts) + f" -> {loop[0][0]}"

    # ------------------------------------------------------------------ queries

    @property
    def raw_goods(self) -> tuple[str, ...]:
        """Names of raw resources, in declaration order."""
        return tuple(r.good for r in self.resources)

    @property
    def final_goods(self) -> tuple[str, ...]:
        """Names of final goods, in declaration order."""
        return tuple(f.good for f in self.finals)

    @property
    def intermediate_goods(self) -> tuple[str, ...]:
        """Goods that are produced and used, in declaration order."""
        special = set(self.raw_goods) | set(self.final_goods)
        return tuple(g for g in self.goods if g not in special)

    def kind(self, good: str) -> str:
        """'raw', 'intermediate' or 'final'."""
        self._known(good)
        if good in self.raw_goods:
            return "raw"
        if good in self.final_goods:
            return "final"
        return "intermediate"

    def endowment(self, good: str) -> float:
        """Endowment of a good (0 for produced goods)."""
        self._known(good)
        return next((r.endowment for r in self.resources if r.good == good), 0.0)

    def final_price(self, good: str) -> float | None:
        """Fixed price of a final good, or None when consumers buy it."""
        self._known(good)
        for f in self.finals:
            if f.good == good:
                return f.price
        raise ScenarioError(f"good {good!r} is not a final good")

    def producers(self, good: str) -> tuple[FirmNode, ...]:
        """Firms that make ``good``."""
        self._known(good)
        return self._producers[good]

    def users(self, good: str) -> tuple[FirmNode, ...]:
        """Firms that use ``good`` as an input."""
        self._known(good)
        return self._users[good]

    def firm(self, name: str) -> FirmNode:
        """The firm called ``name``."""
        for f in self.firms:
            if f.name == name:
                return f
        close = difflib.get_close_matches(name, [f.name for f in self.firms], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ScenarioError(f"unknown firm {name!r}{hint}")

    def firm_order(self) -> tuple[FirmNode, ...]:
        """Firms in topological order: producers of a good before its users."""
        return self._firm_order

    def topological_order(self) -> tuple[str, ...]:
        """Goods in topological order: every good after the inputs of every firm that makes it.

        Raw resources come first (declaration order), then each firm's output when the firm is
        reached in :meth:`firm_order`, as soon as all its producers have been placed.
        """
        order = list(self.raw_goods)
        placed = set(order)
        remaining = {g: len(self._producers[g]) for g in self.goods}
        for firm in self._firm_order:
            remaining[firm.output] -= 1
            if remaining[firm.output] == 0 and firm.output not in placed:
                order.append(firm.output)
                placed.add(firm.output)
        return tuple(order)

    def is_tree(self) -> bool:
        """True when every good has at most one user (so backprop needs no allocation rule)."""
        return all(len(u) <= 1 for u in self._users.values())

    def _known(self, good: str) -> None:
        if good not in self.goods:
            raise _unknown("good", good, "query", self.goods)


# --------------------------------------------------------------------------- examples


def tupperware_graph(natgas: float = 4.0, offset: float = 0.0, price: float = 1.0) -> SupplyGraph:
    """Natgas x -> ethylene a = sqrt(x) -> polyethylene b = 1 - 1/(a+1) -> tupperware c = ln b.

    Args:
        natgas: endowment of natural gas x (units), >= 0.
        offset: constant added to c (changes no price; keeps c >= 0 if large enough).
        price: fixed price of tupperware (numeraire per unit), > 0.
    """
    a_tech, b_tech, c_tech = tupperware_chain(offset)
    return SupplyGraph(
        goods=("natgas", "ethylene", "polyethylene", "tupperware"),
        resources=[RawResource("natgas", natgas)],
        firms=[
            FirmNode("cracker", a_tech, ["natgas"], "ethylene"),
            FirmNode("polymeriser", b_tech, ["ethylene"], "polyethylene"),
            FirmNode("moulder", c_tech, ["polyethylene"], "tupperware"),
        ],
        finals=[FinalGood("tupperware", price=price)],
    )


def shared_intermediate_graph(
    endowment: float = 4.0,
    upstream: tuple[float, float] = (1.0, 0.5),
    users: Sequence[tuple[float, float]] = ((2.0, 0.5), (3.0, 0.3)),
    prices: Sequence[float] = (1.0, 1.0),
) -> SupplyGraph:
    """One raw resource -> one intermediate -> several firms, each making a priced final good.

    The intermediate is read twice, so the graph is not a tree: its competitive price is the
    planner's multiplier, equal to its marginal value in every use.

    Args:
        endowment: units of the raw resource ``ore``.
        upstream: (B, beta) of the intermediate firm ``m = B * ore**beta``.
        users: (A_k, alpha_k) of user k, ``y_k = A_k * m_k**alpha_k`` (alpha_k < 1).
        prices: fixed price P_k of each user's final good ``final<k>``.

    Returns:
        Goods ``ore``, ``metal``, ``final0``, ``final1``, ...; firms ``smelter``, ``maker0``, ...
    """
    if len(users) != len(prices) or not users:
        raise InvalidParameter(
            f"users (len {len(users)}) and prices (len {len(prices)}) must have the same "
            "length >= 1"
        )
    b, beta = upstream
    finals = [f"final{k}" for k in range(len(users))]
    firms = [FirmNode("smelter", CobbDouglas([[beta]], scale=b), ["ore"], "metal")]
    firms += [
        FirmNode(f"maker{k}", CobbDouglas([[alpha]], scale=a), ["metal"], finals[k])
        for k, (a, alpha) in enumerate(users)
    ]
    return SupplyGraph(
        goods=("ore", "metal", *finals),
        resources=[RawResource("ore", endowment)],
        firms=firms,
        finals=[FinalGood(g, price=p) for g, p in zip(finals, prices, strict=True)],
    )
