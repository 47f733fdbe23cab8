"""Headwater's exceptions.

Every error a user can cause derives from :class:`HeadwaterError` and carries
where it happened (file, line, column), what is wrong and, where known, what to
do. The CLI turns them into one readable message and a non-zero exit code; no
other layer formats them for people.

Hierarchy::

    HeadwaterError
    ├── ProjectError          bad project files: TOML, SQL, Python, config keys
    │   ├── ParseError        SQL or Python that does not parse
    │   ├── UnknownReferenceError
    │   └── CycleError
    ├── SelectionError        a --select that names nothing
    ├── ConnectorError        a source or sink failed to read/write
    ├── TransformError        a transform failed while running
    ├── StateError            the state store is unusable
    ├── DiskFullError         no space left where Headwater writes
    └── LockedError           another run holds the project lock
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class HeadwaterError(Exception):
    """Root of every error Headwater raises on purpose."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
        snippet: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        self.snippet = snippet

    @property
    def location(self) -> str:
        """``file:line:col`` as far as known, or an empty string."""
        if self.path is None:
            return ""
        loc = display_path(self.path)
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def render(self) -> str:
        """The full user-facing text: location, message, snippet with caret, hint."""
        head = f"{self.location}: {self.message}" if self.location else self.message
        parts = [head]
        if self.snippet:
            parts.append(self.snippet)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.render()


class ProjectError(HeadwaterError):
    """The project's files are wrong: layout, TOML, config keys, transforms."""

    exit_code = 2


class ParseError(ProjectError):
    """SQL or Python that does not parse, or is not a single SELECT."""


class UnknownReferenceError(ProjectError):
    """A transform refers to a table that is not a node of the project."""


class CycleError(ProjectError):
    """The dependency graph has a cycle."""

    def __init__(self, cycle: list[str], **kwargs: object) -> None:
        self.cycle = cycle
        path = " -> ".join([*cycle, cycle[0]])
        kwargs.setdefault("hint", "break the cycle by removing one of these references")
        super().__init__(f"dependency cycle: {path}", **kwargs)  # type: ignore[arg-type]


class SelectionError(HeadwaterError):
    """A selection expression matched nothing or is malformed."""

    exit_code = 2


class ConnectorError(HeadwaterError):
    """A source could not be read or a sink could not be written.

    ``transient`` marks failures worth retrying (a dropped connection, HTTP 429
    or 5xx, a timeout); the runner retries those with backoff.
    """

    def __init__(self, message: str, *, transient: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.transient = transient


class TransformError(HeadwaterError):
    """A transform failed while it ran (SQL runtime error, Python exception)."""


class CheckFailedError(TransformError):
    """An error-severity check failed: the new build is not published."""

    def __init__(self, message: str, *, results: list[Any], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.results = results


class StateError(HeadwaterError):
    """The state store could not be read or written."""


class LockedError(HeadwaterError):
    """Another process holds the project lock."""

    exit_code = 3


class DiskFullError(HeadwaterError):
    """No space left on the device (or over quota) where Headwater had to write."""

    exit_code = 1


_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded",
              "not enough space on the disk")


def disk_full(exc: BaseException) -> DiskFullError | None:
    """``exc`` as a DiskFullError when it says the disk is full (an OSError, SQLite's
    "database or disk is full", a DuckDB I/O error), else None."""
    import errno

    if isinstance(exc, DiskFullError):
        return exc
    text = str(exc)
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full and not any(t in text.lower() for t in _FULL_TEXT):
        return None
    where = getattr(exc, "filename", None)
    return DiskFullError(
        f"the disk is full: cannot write {where}" if where else
        f"the disk is full ({type(exc).__name__}: {text.splitlines()[0] if text else 'ENOSPC'})",
        hint="free some space (`headwater gc` drops tables no environment uses) and run again;"
        " what was published before stays as it was")


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Names from ``candidates`` that look like ``name``, best first."""
    import difflib

    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A ``did you mean ...?`` hint, or None when nothing is close."""
    matches = closest(name, candidates)
    if not matches:
        return None
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"


def display_path(path: Path) -> str:
    """``path`` relative to the current folder when it lies inside it, else as given."""
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except (ValueError, OSError):
            pass
    return str(path)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset into ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def caret_snippet(text: str, line: int, column: int | None) -> str:
    """The offending line of ``text`` with a caret under ``column`` (both 1-based)."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1]
    gutter = f"{line:>4} | "
    out = gutter + src
    if column is not None and column >= 1:
        column = min(column, len(src) + 1)
        # keep tabs so the caret lines up however wide the terminal draws them
        pad = "".join(c if c == "\t" else " " for c in src[: column - 1])
        out += "\n" + " " * len(gutter) + pad + "^"
    return out
