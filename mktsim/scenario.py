"""Scenarios: frozen descriptions of an economy, and loading them by name or path.

A scenario script is a Python file defining ``build(**params) -> Scenario``. Shipped scripts live
in the ``scenarios`` package and are found by name; any other script is found by path.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen

from mktsim.errors import InvalidParameter, MktsimError, ScenarioError, UnknownName
from mktsim.goods import Goods
from mktsim.options import boolean
from mktsim.population import Population

__all__ = ["Scenario", "build_scenario", "list_scenarios", "load_module"]


def _populations(value: Sequence[Population]) -> tuple[Population, ...]:
    return tuple(value)


def _as_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


@frozen
class Scenario:
    """An economy ready to simulate.

    Attributes:
        name: label used in summaries and report titles.
        goods: the goods and numeraire (:class:`~mktsim.goods.Goods`, or a list of names whose
            first entry is the numeraire).
        populations: consumer populations; their arrays' columns follow ``goods``.
        mechanism: default mechanism name when ``simulate`` is not given one.
        mechanism_options: default options for mechanisms, keyed by mechanism name.
        until: default simulation horizon.
        params: the parameters ``build`` was called with (recorded in summaries).
        description: one line for ``mktsim list``.
        shocks: scheduled shocks (:mod:`mktsim.shocks`) applied under any mechanism.
        reference: a scenario-specific reference solver ``reference(scenario) -> Equilibrium``
            (e.g. the competitive band of an induced-value market, a supply chain's planner);
            None uses the exchange-economy solver of :func:`mktsim.equilibrium`.
        metrics: scenario-specific summary entries ``metrics(run) -> dict`` computed from the
            finished run's frames (e.g. allocative efficiency of an induced-value market).
        metrics_tables: the tables ``metrics`` reads beyond prices, excess demand and events:
            recorded even when a run records only its summary (``record="summary"``).
        source: set by :func:`build_scenario`: ``{"script": shipped name or script path,
            "params": the keyword arguments build was called with}``, so a run of it can be
            rerun; None for a scenario built in Python.
    """

    name: str
    goods: Goods = field(converter=lambda g: g if isinstance(g, Goods) else Goods.of(g))
    populations: tuple[Population, ...] = field(converter=_populations)
    mechanism: str = "walrasian"
    mechanism_options: Mapping[str, Mapping[str, Any]] = field(factory=dict, converter=_as_dict)
    until: float = field(default=200.0, converter=float)
    params: Mapping[str, Any] = field(factory=dict, converter=_as_dict)
    description: str = ""
    shocks: tuple[Any, ...] = field(default=(), converter=tuple)
    reference: Callable[[Scenario], Any] | None = field(default=None, eq=False, repr=False)
    metrics: Callable[[Any], dict[str, Any]] | None = field(default=None, eq=False, repr=False)
    metrics_tables: tuple[str, ...] = field(default=(), converter=lambda v: tuple(map(str, v)))
    source: Mapping[str, Any] | None = None

    def __attrs_post_init__(self) -> None:
        if not self.populations:
            raise InvalidParameter("a scenario needs at least one population")
        for p in self.populations:
            if not isinstance(p, Population):
                raise InvalidParameter(f"population {p!r} is not a population")
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise InvalidParameter(f"population names must be distinct: {names}")
        for p in self.populations:
            if p.endowment.shape[1] != len(self.goods):
                raise InvalidParameter(
                    f"population {p.name!r} has {p.endowment.shape[1]} goods, the scenario "
                    f"{len(self.goods)} ({', '.join(self.goods.names)})"
                )
        if not np.isfinite(self.until) or self.until <= 0:
            raise InvalidParameter(f"until(={self.until}) must be > 0 and finite")
        total = sum(p.endowment.sum(axis=0) for p in self.populations)
        # goods a population brings into being (a firm's output) need no endowment
        made = {g for p in self.populations for g in getattr(p, "creates", ())}
        empty = [
            g
            for g, t in zip(self.goods.names, np.atleast_1d(total), strict=True)
            if t <= 0 and g not in made
        ]
        if empty:
            raise InvalidParameter(f"no agent is endowed with {', '.join(empty)}: nothing to trade")
        for p in self.populations:
            check = getattr(p, "check_scenario", None)  # kinds that depend on each other
            if check is not None:
                check(self)

    @property
    def n_agents(self) -> int:
        return sum(p.size for p in self.populations)

    def _repr_html_(self) -> str:
        """A notebook's view: goods, populations, mechanism, horizon, shocks and parameters."""
        import jinja2

        template = jinja2.Environment(autoescape=True).from_string(_SCENARIO_HTML)
        return template.render(
            s=self,
            populations=[
                (p.name, p.kind, p.size, p.behaviour if isinstance(p.behaviour, str) else "")
                for p in self.populations
            ],
        )

    def population_slices(self) -> dict[str, slice]:
        """Ledger rows of each population (contiguous, in declaration order)."""
        out, start = {}, 0
        for p in self.populations:
            out[p.name] = slice(start, start + p.size)
            start += p.size
        return out

    def with_endowments(self, holdings: np.ndarray) -> Scenario:
        """The same economy with new endowments ``float64[n_agents, g]`` in ledger row order
        (e.g. the holdings reached after trading, to ask what equilibrium they support)."""
        pops: list[Any] = [
            attrs.evolve(p, endowment=holdings[rows])  # type: ignore[misc]
            for p, rows in zip(self.populations, self.population_slices().values(), strict=True)
        ]
        return attrs.evolve(self, populations=pops)

    def endowments(self) -> np.ndarray:
        """All agents' endowments ``float64[n_agents, g]`` in ledger row order."""
        return np.vstack([p.endowment for p in self.populations])


def list_scenarios() -> dict[str, str]:
    """Shipped scenario names -> first line of their docstring."""
    # Looked up by name, as the registry finds mechanisms: what a scenario is does not depend on
    # the scripts that build one.
    shipped = importlib.import_module("mktsim.scenarios")
    out = {}
    for info in pkgutil.iter_modules(shipped.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"mktsim.scenarios.{info.name}")
        if hasattr(mod, "build"):
            out[info.name] = (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else ""
    return out


def load_module(name_or_path: str | Path) -> ModuleType:
    """Import a scenario script by shipped name or by file path."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".py") or path.exists() or "/" in text:
        if not path.is_file():
            raise ScenarioError(f"scenario file {text!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"mktsim_scenario_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ScenarioError(f"cannot load scenario file {text!r}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a user's script may fail in any way: report it as data
            raise ScenarioError(f"scenario file {text!r} failed to load: {exc}") from exc
    else:
        # Found by module name, so that only the scenario asked for is imported (the others
        # load what they need: scipy, production graphs); the full list only for the error.
        shipped = importlib.import_module("mktsim.scenarios")
        names = {i.name for i in pkgutil.iter_modules(shipped.__path__) if i.name[:1] != "_"}
        if text not in names:
            raise UnknownName("scenario", text, list(list_scenarios()))
        module = importlib.import_module(f"mktsim.scenarios.{text}")
    if not callable(getattr(module, "build", None)):
        raise ScenarioError(f"scenario {text!r} defines no build(**params) function")
    return module


def _typed(scenario: str, key: str, value: Any, annotation: Any) -> Any:
    """A ``build`` parameter annotated ``bool``, ``int`` or ``float`` checked to be one (from
    ``--set``, "nan" arrives as text and "maybe" would be a true ``bool``); others as given."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    if kind == "bool":
        try:
            return boolean(value)
        except ValueError:
            raise InvalidParameter(
                f"{key}(={value!r}) of scenario {scenario} must be true or false"
            ) from None
    if kind not in ("int", "float") or isinstance(value, (int, float, np.number)):
        return value
    if kind == "float" and isinstance(value, str):
        try:
            return float(value)  # build() then judges the number
        except ValueError:
            pass
    what = "an integer" if kind == "int" else "a number"
    raise InvalidParameter(f"{key}(={value!r}) of scenario {scenario} must be {what}")


def build_scenario(name_or_path: str | Path, **params: Any) -> Scenario:
    """Load a scenario script and call its ``build`` with ``params`` (checked against its
    signature, so a misspelt parameter is an error naming the valid ones)."""
    module = load_module(name_or_path)
    sig = inspect.signature(module.build)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_any:
        for key in params:
            if key not in sig.parameters:
                raise UnknownName(
                    f"parameter of scenario {name_or_path}", key, list(sig.parameters)
                )
    for key, value in params.items():
        if key in sig.parameters:
            params[key] = _typed(str(name_or_path), key, value, sig.parameters[key].annotation)
    given = dict(params)
    try:
        scenario = module.build(**params)
    except MktsimError:
        raise
    except (Exception, SystemExit) as exc:  # a user's script may fail in any way
        raise ScenarioError(
            f"build() of scenario {str(name_or_path)!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(scenario, Scenario):
        raise ScenarioError(
            f"build() of {name_or_path!r} returned {type(scenario).__name__}, not a Scenario"
        )
    text = str(name_or_path)
    shipped = not (text.endswith(".py") or "/" in text or Path(text).exists())
    script = text if shipped else str(Path(text).resolve())
    return attrs.evolve(scenario, source={"script": script, "params": given})


#: The notebook view of a scenario (jinja2, every name escaped).
_SCENARIO_HTML = """<div class="mktsim-scenario"><strong>Scenario {{ s.name }}</strong>
{% if s.description %}<p>{{ s.description }}</p>{% endif %}
<table><tbody>
<tr><th>goods</th><td>{{ s.goods.names | join(", ") }}</td></tr>
<tr><th>mechanism</th><td>{{ s.mechanism }}</td></tr>
<tr><th>until</th><td>{{ s.until }}</td></tr>
<tr><th>agents</th><td>{{ s.n_agents }}</td></tr>
{% if s.shocks %}<tr><th>shocks</th><td>{{ s.shocks | join("; ") }}</td></tr>{% endif %}
{% if s.params %}<tr><th>parameters</th><td>
{% for k, v in s.params.items() %}{{ k }}={{ v }}{{ ", " if not loop.last }}{% endfor %}
</td></tr>{% endif %}
</tbody></table>
<table><thead><tr><th>population</th><th>kind</th><th>agents</th><th>behaviour</th></tr></thead>
<tbody>{% for name, kind, size, behaviour in populations %}
<tr><td>{{ name }}</td><td>{{ kind }}</td><td>{{ size }}</td><td>{{ behaviour }}</td></tr>
{% endfor %}
</tbody></table></div>
"""
