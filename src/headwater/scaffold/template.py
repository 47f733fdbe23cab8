"""Write the example project: copy the text template, then generate its data."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from headwater.errors import ProjectError
from headwater.scaffold.data import TELEMETRY_DAYS, generate_data

# Dotfiles are stored without the dot so packaging tools and git don't treat them as their own.
_RENAMES = {"gitignore": ".gitignore"}
_SKIP = {"__pycache__"}


def init_project(
    dest: Path, rows: int = 100_000, *, seed: int = 42, force: bool = False
) -> list[Path]:
    """Write the example project into dest; return the files written.

    Raises ProjectError if dest exists and is non-empty (unless force) or rows is too small.
    """
    dest = Path(dest)
    _check_destination(dest, force)
    if rows < TELEMETRY_DAYS:
        raise ProjectError(
            f"--rows must be at least {TELEMETRY_DAYS} (one telemetry row per day), got {rows}",
            hint="the default is 100000",
        )
    dest.mkdir(parents=True, exist_ok=True)
    written = _copy_tree(resources.files("headwater.scaffold") / "template", dest)
    written += generate_data(dest / "data", rows=rows, seed=seed)
    return written


def _check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise ProjectError(f"{dest} exists and is not a directory", path=dest)
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ProjectError(
            f"{dest} is not empty",
            path=dest,
            hint="choose an empty or new directory, or pass --force to overwrite",
        )


def _copy_tree(src: Traversable, dest: Path) -> list[Path]:
    written: list[Path] = []
    for entry in sorted(src.iterdir(), key=lambda e: e.name):
        if entry.name in _SKIP or entry.name.endswith(".pyc"):
            continue
        target = dest / _RENAMES.get(entry.name, entry.name)
        if entry.is_dir():
            target.mkdir(exist_ok=True)
            written += _copy_tree(entry, target)
        else:
            target.write_bytes(entry.read_bytes())
            written.append(target)
    return written
