"""One root for every error mktsim raises, so callers can catch them all at once.

Refusals that are part of normal market life (an order that cannot be filled, a swap larger than
the pool) are returned as data with a reason; these exceptions are for programming errors and bad
input, and their messages name the parameter, the bound and the value.
"""

from __future__ import annotations

__all__ = [
    "ConservationError",
    "InvalidParameter",
    "MktsimError",
    "NoEquilibrium",
    "ScenarioError",
    "UnknownName",
]


class MktsimError(Exception):
    """Root of every mktsim error."""


class InvalidParameter(MktsimError, ValueError):
    """A parameter is out of range, non-finite, or of the wrong shape."""


class UnknownName(MktsimError, KeyError):
    """A name (good, mechanism, method, scenario, option) that is not known.

    The message lists the valid names and suggests the closest one.
    """

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        import difflib

        valid = sorted(valid)
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.kind, self.name, self.valid = kind, name, valid
        msg = f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid) if valid else 'none'}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ScenarioError(MktsimError, ValueError):
    """A scenario file or script is missing or malformed."""


class ConservationError(MktsimError, RuntimeError):
    """The ledger found a good or money created or destroyed outside production/consumption."""


class NoEquilibrium(MktsimError, RuntimeError):
    """The reference solver found no competitive equilibrium."""
