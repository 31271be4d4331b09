"""Every registered mechanism passes the public conformance check."""

from __future__ import annotations

from typing import ClassVar

import pytest

from mktsim.registry import available
from mktsim.testing import check_mechanism


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
