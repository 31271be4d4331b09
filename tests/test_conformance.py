"""Every registered mechanism passes the public conformance check, and the checker catches each
broken call of the contract in toy mechanisms written here."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import pytest
from attrs import frozen

from mktsim.errors import InvalidParameter
from mktsim.market import settled
from mktsim.mechanism import Option, parse_options
from mktsim.orders import DemandReport, Quote, Receipt, rejected
from mktsim.registry import available
from mktsim.testing import ConformanceError, check_mechanism


@pytest.mark.parametrize("name", sorted(available()))
def test_registered_mechanism_conforms(name):
    check_mechanism(name)


def test_walrasian_non_tatonnement_conforms():
    check_mechanism("walrasian", mode="non_tatonnement")


def test_checker_rejects_a_broken_mechanism():
    class Broken:
        name = "broken"
        description = "accepts anything"
        options: ClassVar[dict[str, object]] = {}
        behaviours: ClassVar[dict[str, str]] = {"x": "y"}

        def __init__(self, **options):
            pass

        def attach(self, ctx):
            pass

        def summary(self):
            return {}

    with pytest.raises(AssertionError, match="unknown option"):
        check_mechanism(Broken)


# ---- a toy protocol mechanism, correct, then broken one call at a time -----------------------
@frozen
class PostedQuote(Quote):
    round: int
    posted: tuple[float, ...]
    settle: bool


class Toy:
    """Posts the same prices every time unit and collects demand reports; never trades."""

    name: ClassVar[str] = "toy"
    description: ClassVar[str] = "posts fixed prices and collects demand reports"
    options: ClassVar[dict[str, Option]] = {"level": Option(1.0, "price of every good", float)}
    accepts: ClassVar[frozenset[type]] = frozenset({DemandReport})
    supported_shocks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options("toy", self.options, options)

    def attach(self, ctx: Any) -> None:
        self.ctx = ctx
        self.level = self.opts["level"]
        self.number = -1
        self.reports = 0
        self.answered: set[str] = set()
        self.next = ctx.env.event()
        self.current = self.make_quote()
        ctx.env.process(self.post())

    def make_quote(self) -> Any:
        goods = self.ctx.goods.names
        prices = {g: self.level for g in goods if g != self.ctx.goods.numeraire}
        posted = tuple(1.0 if g == self.ctx.goods.numeraire else self.level for g in goods)
        return PostedQuote(self.ctx.env.now, prices, self.number, posted, False)

    def post(self):
        while True:
            self.number += 1
            self.answered = set()
            self.current = self.make_quote()
            fired, self.next = self.next, self.ctx.env.event()
            fired.succeed(self.current)
            g = len(self.current.posted)
            self.ctx.recorder.append(
                "prices",
                time=self.ctx.env.now,
                round=self.number,
                good=np.arange(g),
                price=np.asarray(self.current.posted),
                estimate=np.asarray(self.current.posted),
            )
            yield self.ctx.env.timeout(1.0)

    def quote(self) -> Any:
        return self.current

    def updated(self) -> Any:
        return self.next

    def problem(self, order: Any) -> str:
        if not isinstance(order, DemandReport):
            return "demand reports only"
        if order.population not in {s.name for s in self.ctx.slots}:
            return "no such population"
        if order.round != self.number:
            return "not the open posting"
        if order.population in self.answered:
            return "answered already"
        excess = np.asarray(order.excess, dtype=float)
        if excess.shape != (len(self.ctx.goods),):
            return "wrong shape"
        if not np.isfinite(excess).all():
            return "not finite"
        if order.per_agent is not None:
            size = self.ctx.slot(order.population).population.size
            if np.shape(order.per_agent) != (size, len(self.ctx.goods)):
                return "wrong per-agent shape"
        return ""

    def submit(self, order: Any) -> Any:
        reason = self.problem(order)
        if reason:
            return settled(self.ctx.env, rejected(reason))
        self.answered.add(order.population)
        self.reports += 1
        return settled(self.ctx.env, Receipt("accepted"))

    def summary(self) -> dict[str, Any]:
        return {"rounds": self.number + 1, "reports": self.reports}


def test_the_toy_passes_and_the_truthful_strategy_drives_it():
    run = check_mechanism(Toy, until=10.0)
    # postings at 0, 1, ..., 10; the run stops at 10 before the one posted then is answered
    assert run.summary["mechanism"] == "toy" and run.summary["rounds"] == 11
    assert run.summary["reports"] == 10


class IgnoresOptions(Toy):
    def __init__(self, **options: Any) -> None:
        self.opts = {"level": 1.0}


class SetAccepts(Toy):
    accepts: ClassVar[Any] = {DemandReport}


class NamedAccepts(Toy):
    accepts = frozenset({"demand report"})  # type: ignore[assignment]


class DictQuote(Toy):
    def quote(self) -> Any:
        return {"prices": dict(self.current.prices)}


class LooseQuote(Quote):
    """A Quote whose fields can be assigned (not frozen)."""

    __setattr__ = object.__setattr__


class MutableQuote(Toy):
    def quote(self) -> Any:
        return LooseQuote(self.current.time, self.current.prices)


class QuoteOfUnknownGoods(Toy):
    def quote(self) -> Any:
        return PostedQuote(0.0, {"gold": 1.0}, self.number, self.current.posted, False)


class UpdatedIsNotAnEvent(Toy):
    def updated(self) -> Any:
        return None


class RaisesOnRefusal(Toy):
    def submit(self, order: Any) -> Any:
        reason = self.problem(order)
        if reason:
            raise InvalidParameter(reason)
        return super().submit(order)


class ReturnsBareReceipt(Toy):
    def submit(self, order: Any) -> Any:
        return super().submit(order).value


class EventOfNoReceipt(Toy):
    def submit(self, order: Any) -> Any:
        return self.ctx.env.timeout(0, value=not self.problem(order))


class AcceptsWrongRound(Toy):
    def problem(self, order: Any) -> str:
        reason = super().problem(order)
        return "" if reason == "not the open posting" else reason


class AcceptsNonFinite(Toy):
    def problem(self, order: Any) -> str:
        reason = super().problem(order)
        return "" if reason == "not finite" else reason


class AcceptsWrongShape(Toy):
    def problem(self, order: Any) -> str:
        reason = super().problem(order)
        return "" if "shape" in reason else reason


class AcceptsStrangers(Toy):
    def problem(self, order: Any) -> str:
        reason = super().problem(order)
        return "" if reason == "no such population" else reason


class AcceptsAnyOrderType(Toy):
    def submit(self, order: Any) -> Any:
        if not isinstance(order, DemandReport):
            return settled(self.ctx.env, Receipt("accepted"))
        return super().submit(order)


class QuoteMovesOnRefusal(Toy):
    def submit(self, order: Any) -> Any:
        if self.problem(order):
            self.current = PostedQuote(
                self.current.time, self.current.prices, self.number, self.current.posted, True
            )
        return super().submit(order)


class FinesRefusedAgents(Toy):
    def submit(self, order: Any) -> Any:
        if self.problem(order):
            fine = np.zeros((1, len(self.ctx.goods)), dtype=np.int64)
            fine[0, self.ctx.goods.numeraire_index] = -1
            self.ctx.ledger.adjust(np.array([0]), fine, "fine")
        return super().submit(order)


class RefusesButRemembers(Toy):
    """Refuses hostile reports, yet lets them move its next posting."""

    def submit(self, order: Any) -> Any:
        if self.problem(order):
            self.level *= 1.01
        return super().submit(order)


_attaches = itertools.count()


class Nondeterministic(Toy):
    """Prices depend on how many runs this process made before (global state)."""

    def attach(self, ctx: Any) -> None:
        super().attach(ctx)
        self.level = 1.0 + next(_attaches)


class LeaksGoods(Toy):
    """Moves a holding behind the ledger's back."""

    def attach(self, ctx: Any) -> None:
        super().attach(ctx)
        ctx.env.process(self.leak())

    def leak(self):
        yield self.ctx.env.timeout(2.0)
        self.ctx.ledger._h[0, 1] += 5  # (a deliberate violation, for the checker to catch)


class UnknownShock(Toy):
    supported_shocks = ("quake",)


class OutageFails(Toy):
    supported_shocks = ("outage",)

    def apply_shock(self, shock: Any) -> str:
        raise NotImplementedError("outages are not written yet")


@pytest.mark.parametrize(
    ("toy", "match"),
    [
        (IgnoresOptions, r"toy\(__no_such_option__=1\) succeeded"),
        (SetAccepts, r"accepts must be a non-empty frozenset"),
        (NamedAccepts, r"'demand report', which is not an order class"),
        (DictQuote, r"quote\(\) returned dict, not a mktsim.orders.Quote"),
        (MutableQuote, r"whose fields can be assigned: a quote must be frozen"),
        (QuoteOfUnknownGoods, r"quote\(\).prices names goods not in the run: \['gold'\]"),
        (UpdatedIsNotAnEvent, r"updated\(\) returned NoneType, not a SimPy event"),
        (RaisesOnRefusal, r"submit\(DemandReport\(population='__nobody__'.*raised InvalidParam"),
        (ReturnsBareReceipt, r"submit\(.*\) returned Receipt, not a SimPy event"),
        (EventOfNoReceipt, r"the event's value is bool, not a Receipt"),
        (AcceptsWrongRound, r"\(the wrong round\) gave Receipt\(status='accepted'"),
        (AcceptsNonFinite, r"\(non-finite excess demand\) gave Receipt\(status='accepted'"),
        (AcceptsWrongShape, r"\(excess demand of the wrong shape\) gave Receipt"),
        (AcceptsStrangers, r"\(a population not in the run\) gave Receipt\(status='accepted'"),
        (AcceptsAnyOrderType, r"submit\(Limit\(.*\(an order type it does not accept\) gave"),
        (QuoteMovesOnRefusal, r"changed the quote: a refused order must change nothing"),
        (FinesRefusedAgents, r"changed holdings: a refused order must change nothing"),
        (RefusesButRemembers, r"with hostile orders \(refused\) against .*frame 'prices' differ"),
        (Nondeterministic, r"twice: frame 'prices' differs"),
        (LeaksGoods, r"the ledger did not conserve goods"),
        (UnknownShock, r"supported_shocks names 'quake', which is not a market shock"),
        (OutageFails, r"shocks=\[Outage\(.*\)\]\) raised NotImplementedError: outages are not"),
    ],
)
def test_the_checker_names_each_broken_call(toy, match):
    toy.__name__ = "toy"  # (messages name the class)
    with pytest.raises(ConformanceError, match=match):
        check_mechanism(toy, until=10.0)


def test_a_mechanism_without_accepts_fails_the_check():
    skip = ("accepts", "__dict__", "__weakref__")
    namespace = {k: v for k, v in vars(Toy).items() if k not in skip}
    legacy = type("Legacy", (), {**namespace, "behaviours": {"own": "its own behaviour"}})
    with pytest.raises(ConformanceError, match="Legacy declares no 'accepts'"):
        check_mechanism(legacy, until=5.0)
