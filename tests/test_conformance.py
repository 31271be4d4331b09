"""Every registered mechanism passes the public conformance check."""

from __future__ import annotations

from typing import ClassVar

import pytest

from mktsim import strategies
from mktsim.registry import available, resolve
from mktsim.testing import check_mechanism


def _mechanisms() -> list[object]:
    """Every registered mechanism; one that starts no behaviours of its own (no ``behaviours``
    table) is checked once registered strategies exist to drive its populations."""
    out: list[object] = []
    for name in sorted(available()):
        if not hasattr(resolve(name), "behaviours") and not strategies.available():
            out.append(pytest.param(name, marks=pytest.mark.skip(reason="no strategies yet")))
        else:
            out.append(name)
    return out


@pytest.mark.parametrize("name", _mechanisms())
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
