"""Run folders you can trust: written atomically, never over someone else's files, reopened as
the same :class:`~mktsim.run.Run` (:func:`mktsim.run.load`), and rerun bit for bit from what they
record (:func:`mktsim.run.rerun`).

A run's ``summary.json`` carries a ``config`` entry with everything needed to run it again: the
scenario's source (a shipped name or a script path) and ``build`` parameters, the mechanism and
the options given to it, the seed, the horizon, the shocks, what was recorded, the price
tolerance and the package version.

Writing is all or nothing: the files go to a fresh temporary folder beside the target, which
then replaces the target in one rename, so a run never leaves stale files from another and never
writes through a symlink. A target that holds a different run is refused unless ``overwrite``;
a target that holds anything else (files that are not a run's) is always refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from mktsim.errors import InvalidParameter, MktsimError
from mktsim.recorder import read_frame, read_json_object, write_frame

__all__ = [
    "FolderTables",
    "config_id",
    "default_folder",
    "read_summary",
    "run_config",
    "slug",
    "write_folder",
]

#: Files and folders a run folder may hold (anything else is someone else's).
_RUN_FILES = re.compile(
    r"^(summary\.json|counterfactual\.json|report\.(html|md)|[A-Za-z0-9_]+\.(parquet|png)|"
    r"report_figures|baseline|treated)$"
)


def _shock_dict(shock: Any) -> dict[str, Any]:
    return {"kind": shock.kind, **attrs.asdict(shock)}


@lru_cache(maxsize=1)
def _package_version() -> str:
    """The installed distribution's version, read from its metadata once per process."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mktsim")
    except PackageNotFoundError:
        return "0+unknown"


def run_config(
    scenario: Any,
    mechanism: str,
    options: dict[str, Any],
    seed: int,
    until: float,
    shocks: Sequence[Any] | None,
    record: str,
    price_tolerance: float,
) -> dict[str, Any]:
    """What :func:`rerun` needs to run again, JSON-ready; ``rerunnable`` is False (with
    ``why``) when part of it cannot be written down (a scenario built in Python, a callable
    option, a preference shock carrying a utility object)."""
    package_version = _package_version()
    source = scenario.source or {}
    config: dict[str, Any] = {
        "scenario": source.get("script"),
        "params": dict(source.get("params", {})),
        "mechanism": mechanism,
        "options": dict(options),
        "seed": seed,
        "until": until,
        "shocks": None if shocks is None else [_shock_dict(s) for s in shocks],
        "record": record,
        "price_tolerance": price_tolerance,
        "version": package_version,
    }
    why = None
    if not source:
        why = "the scenario was built in Python, not by a scenario script"
    else:
        try:
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            why = f"part of the configuration cannot be written down ({exc})"
    if why is not None:
        config = json.loads(json.dumps(config, default=repr))
    config["rerunnable"] = why is None
    config["why"] = why
    return config


def config_id(config: dict[str, Any]) -> str:
    """A short hash of what distinguishes one configuration from another."""
    keys = ("scenario", "params", "mechanism", "options", "seed", "until", "shocks", "record")
    text = json.dumps({k: config.get(k) for k in keys}, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def slug(text: str) -> str:
    """A file-name-safe form of a name (no separators, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".") or "run"


def default_folder(config: dict[str, Any], scenario_name: str, customised: bool) -> Path:
    """``reports/runs/<scenario>_<mechanism>_seed<seed>``, with the configuration's hash
    appended when anything beyond scenario, mechanism and seed was set, so two different
    configurations never share a folder."""
    name = f"{slug(scenario_name)}_{slug(config['mechanism'])}_seed{config['seed']}"
    if customised:
        name += f"_{config_id(config)}"
    return Path("reports") / "runs" / name


def _is_run_folder(path: Path) -> tuple[bool, dict[str, Any] | None]:
    """Whether every entry of ``path`` belongs to a run, and that run's summary."""
    entries = list(path.iterdir())
    if any(not _RUN_FILES.match(e.name) or e.is_symlink() for e in entries):
        return False, None
    summary_file = path / "summary.json"
    if not summary_file.is_file():
        summary_file = path / "counterfactual.json"
    if not summary_file.is_file():
        return not entries, None
    try:
        return True, read_json_object(summary_file)
    except MktsimError:
        return False, None


def write_folder(
    directory: str | Path,
    write: Callable[[Path], None],
    config: dict[str, Any] | None,
    overwrite: bool = False,
) -> Path:
    """Write a run into ``directory`` through ``write(temporary_folder)``, then swap it in.

    Raises:
        InvalidParameter: the target is empty text, a symlink, a file, holds files that are not
            a run's, or holds a different run and ``overwrite`` is False.
    """
    if str(directory).strip() == "":
        raise InvalidParameter("out(='') must name a folder")
    target = Path(directory)
    for part in [target, *target.parents]:
        if part.is_symlink():
            raise InvalidParameter(f"out(={str(target)!r}): {str(part)!r} is a symlink")
    if target.exists():
        if not target.is_dir():
            raise InvalidParameter(f"out(={str(target)!r}) is a file, not a folder")
        is_run, summary = _is_run_folder(target)
        if not is_run:
            raise InvalidParameter(
                f"out(={str(target)!r}) holds files that are not a run's; choose another folder"
            )
        same = (
            summary is not None
            and config is not None
            and isinstance(summary.get("config"), dict)
            and config_id(summary["config"]) == config_id(config)
        )
        if summary is not None and not same and not overwrite:
            what = f"{summary.get('scenario')} under {summary.get('mechanism')}"
            raise InvalidParameter(
                f"out(={str(target)!r}) holds another run ({what}, seed {summary.get('seed')}); "
                "choose another folder or overwrite it (--overwrite)"
            )
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise InvalidParameter(f"out(={str(target)!r}) cannot be written: {exc}") from None
    try:
        write(fresh)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            old.rmdir()
            target.rename(old)
            fresh.rename(target)
            shutil.rmtree(old)
        else:
            fresh.rename(target)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return target


class FolderTables:
    """The tables of a saved run, read from its Parquet files with the same API as a live
    run's recorder (``tables``, ``frame``, ``parts``, ``write``)."""

    def __init__(self, path: Path, order: list[str] | None = None) -> None:
        self.path = path
        found = {
            p.name.removesuffix(".parquet")
            for p in path.iterdir()
            if p.name.endswith(".parquet") and p.stem != "welfare"
        }
        known = [name for name in order or [] if name in found]
        self._names = known + sorted(found - set(known))

    @property
    def tables(self) -> list[str]:
        return list(self._names)

    def frame(self, name: str) -> pd.DataFrame:
        """A table (or the saved ``welfare`` table) as written."""
        if name not in self._names and not (name == "welfare" and self._has("welfare")):
            from mktsim.errors import UnknownName

            raise UnknownName("table", name, self._names)
        try:
            return read_frame(self.path / f"{name}.parquet")
        except Exception as exc:  # a damaged file: any pyarrow error
            raise MktsimError(f"cannot read {self.path / name}.parquet: {exc}") from None

    def _has(self, name: str) -> bool:
        return (self.path / f"{name}.parquet").exists()

    def parts(self, name: str) -> list[Path]:
        found = self.path / f"{name}.parquet"
        return sorted(found.glob("*.parquet")) if found.is_dir() else [found]

    def write(self, name: str, path: str | Path) -> Path:
        write_frame(self.frame(name), path)
        return Path(path)


def read_summary(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """A run folder's path and its summary (raises MktsimError when it is not one)."""
    path = Path(directory)
    if not path.is_dir():
        raise MktsimError(f"run folder {str(path)!r} does not exist")
    return path, read_json_object(path / "summary.json")
