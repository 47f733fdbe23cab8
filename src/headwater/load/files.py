"""Which files of a project are nodes, and reading them as text.

Every file in the node folders (``sources/``, ``transforms/``, ``sinks/``, ``checks/``)
is loaded, left out with a warning, or refused with an error; only housekeeping files
nobody means as project content (:data:`HOUSEKEEPING`, documentation, ``__pycache__``)
are passed over without a word:

* loaded: ``sources/*.toml``, ``transforms/*.sql``, ``transforms/*.py``,
  ``sinks/*.toml``, ``checks/*.sql``;
* errors (the file was surely meant to be read): an upper-case extension (``x.SQL``),
  a project file in the wrong folder (``transforms/x.toml``), a name Headwater reserves
  (``_hw...``, ``NAME__rejected``, ``NAME__quarantine``), transforms in a subfolder of
  ``transforms/``, a folder named like a file (``transforms/x.sql/``), a case variant of a
  project folder (``Transforms/``), a file over its size limit;
* warnings (left out on purpose, most likely): hidden files (``.x.sql``), editor
  backups and temporary files (``x.sql~``, ``#x.sql#``, ``x.sql.swp``, ``x.sql.bak``),
  Python helpers (``transforms/_util.py``), other files (``sources/orders.csv``,
  ``transforms/schema.yml``), and ``.sql`` files in folders Headwater does not read
  (``models/``).

Text files are read as UTF-8; a leading byte-order mark is accepted (and dropped).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.errors import ProjectError, caret_snippet, display_path

# Transform and configuration files larger than this are refused before they are read:
# parsing costs memory in proportion (sqlglot needs about 250 MB for a 1 MB SELECT), and
# no hand-written transform comes near it. Data belongs in files a source reads.
MAX_SQL_BYTES = 1024 * 1024
MAX_PYTHON_BYTES = 1024 * 1024
MAX_TOML_BYTES = 1024 * 1024
SIZE_LIMITS = {".sql": MAX_SQL_BYTES, ".py": MAX_PYTHON_BYTES, ".toml": MAX_TOML_BYTES}

FOLDERS: dict[str, tuple[str, ...]] = {
    "sources": (".toml",),
    "transforms": (".sql", ".py"),
    "sinks": (".toml",),
    "checks": (".sql",),
}
WHAT = {"sources": "sources are sources/NAME.toml files",
        "transforms": "transforms are transforms/NAME.sql and transforms/NAME.py files",
        "sinks": "sinks are sinks/NAME.toml files",
        "checks": "custom checks are checks/NAME.sql files"}
# Where a file of this extension belongs, for "wrong folder" hints.
HOME = {".sql": "transforms/ (or checks/ for a custom check)", ".py": "transforms/",
        ".toml": "sources/ or sinks/"}

# Files no one means as project content; passed over silently.
HOUSEKEEPING = frozenset({".gitkeep", ".keep", ".gitignore", ".gitattributes", ".DS_Store",
                          "Thumbs.db", "desktop.ini", "__init__.py"})
DOC_SUFFIXES = (".md", ".rst", ".txt")
SILENT_SUFFIXES = (".pyc", ".pyo")
SILENT_FOLDERS = frozenset({"__pycache__"})
# Data beside a source's or sink's TOML may well be what it reads or writes.
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".ndjson", ".jsonl", ".json", ".gz", ".zst")
BACKUP_SUFFIXES = (".swp", ".swo", ".swx", ".bak", ".orig", ".rej", ".tmp", ".temp",
                   ".old", ".save", ".sav")
# Top-level folders a user may have meant as one of Headwater's.
NEAR_MISSES = {"transform": "transforms", "models": "transforms", "model": "transforms",
               "source": "sources", "sink": "sinks", "check": "checks"}
RESERVED_PREFIX = "_hw"
RESERVED_SUFFIXES = ("__rejected", "__quarantine")


@dataclass(frozen=True)
class LoadWarning:
    """A file the loader left out, and why."""

    path: Path
    message: str
    hint: str | None = None

    def render(self) -> str:
        text = f"{display_path(self.path)}: {self.message}"
        return text + (f"\nhint: {self.hint}" if self.hint else "")


@dataclass
class ProjectFiles:
    """The files of each node folder to load, in name order, and what was left out."""

    folders: dict[str, list[Path]] = field(default_factory=dict)
    warnings: list[LoadWarning] = field(default_factory=list)

    def __getitem__(self, folder: str) -> list[Path]:
        return self.folders.get(folder, [])


def discover(root: Path) -> ProjectFiles:
    """Classify every file under the project's node folders (see the module docstring)."""
    found = ProjectFiles()
    try:
        top = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise ProjectError(f"cannot list the project folder: {exc.strerror}", path=root) from None
    for entry in top:
        _top_level(entry, root, found)
    for folder, suffixes in FOLDERS.items():
        found.folders[folder] = _folder(root / folder, folder, suffixes, root, found)
    return found


def _top_level(entry: os.DirEntry[str], root: Path, found: ProjectFiles) -> None:
    name = entry.name
    if name in FOLDERS:
        if not entry.is_dir():
            raise ProjectError(
                f"{name} is not a folder", path=Path(entry.path),
                hint=f"{WHAT[name]}: make {name}/ a folder")
        return
    if entry.is_dir():
        if name.lower() in FOLDERS:
            raise ProjectError(
                f"{name}/ is not read: project folders are lower-case",
                path=Path(entry.path), hint=f"rename {name}/ to {name.lower()}/")
        meant = NEAR_MISSES.get(name.lower())
        if meant and _has_project_files(Path(entry.path)):
            found.warnings.append(LoadWarning(
                Path(entry.path), "folder not read by Headwater",
                f"{WHAT[meant]}: move its files to {meant}/"))
        return
    if name.endswith(".sql") and entry.is_file():
        found.warnings.append(LoadWarning(
            Path(entry.path), "not loaded: SQL files at the top of the project are not read",
            f"{WHAT['transforms']}: move it to transforms/"))
    elif name != "headwater.toml" and name.lower() == "headwater.toml":
        raise ProjectError(
            f"{name} is not read: the project file is headwater.toml (lower-case)",
            path=Path(entry.path), hint=f"rename {name} to headwater.toml")


def _has_project_files(folder: Path) -> bool:
    try:
        return any(e.name.lower().endswith((".sql", ".py", ".toml")) for e in os.scandir(folder))
    except OSError:
        return False


def _folder(
    folder: Path, kind: str, suffixes: tuple[str, ...], root: Path, found: ProjectFiles
) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []  # reported by _top_level
    except OSError as exc:
        raise ProjectError(f"cannot list {kind}/: {exc.strerror}", path=folder) from None
    out = []
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir():
            _subfolder(path, kind, suffixes, found)
            continue
        if _classify(entry, path, kind, suffixes, found):
            out.append(path)
    return out


def _classify(
    entry: os.DirEntry[str], path: Path, kind: str, suffixes: tuple[str, ...],
    found: ProjectFiles,
) -> bool:
    """True when ``entry`` is a node file to load; otherwise warn, raise or pass over."""
    name = entry.name
    suffix = os.path.splitext(name)[1]
    if name in HOUSEKEEPING or suffix in SILENT_SUFFIXES or suffix.lower() in DOC_SUFFIXES:
        return False
    if _is_backup(name):
        found.warnings.append(LoadWarning(
            path, "not loaded: an editor backup or temporary file",
            "delete it once you no longer need it"))
        return False
    if name.startswith("."):
        shown = name.lstrip(".")
        found.warnings.append(LoadWarning(
            path, "not loaded: hidden file",
            f"rename it to {shown} to load it" if shown.endswith(suffixes)
            else "hidden files are never read"))
        return False
    if suffix not in suffixes:
        _not_a_node_file(path, name, suffix, kind, suffixes, found)
        return False
    stem = name[: -len(suffix)]
    _check_reserved(stem, path)
    if kind == "transforms" and suffix == ".py" and stem.startswith("_"):
        found.warnings.append(LoadWarning(
            path, "not loaded as a transform: Python files whose name starts with '_' "
            "are left for helper code",
            f"rename it to {stem.lstrip('_')}.py to make it a transform"))
        return False
    if not entry.is_file():
        what = "a folder" if entry.is_dir() else (
            "a broken symbolic link" if entry.is_symlink() and not path.exists()
            else "not a regular file")
        raise ProjectError(f"cannot read file: it is {what}", path=path,
                           hint=f"{WHAT[kind]}; remove or replace {name}")
    return True


def _is_backup(name: str) -> bool:
    if name.endswith("~") or name.startswith(".#") or (
            len(name) > 1 and name.startswith("#") and name.endswith("#")):
        return True
    base, suffix = os.path.splitext(name)
    return suffix.lower() in BACKUP_SUFFIXES and base != ""


def _not_a_node_file(
    path: Path, name: str, suffix: str, kind: str, suffixes: tuple[str, ...],
    found: ProjectFiles,
) -> None:
    lower = suffix.lower()
    if lower in suffixes:
        fixed = name[: -len(suffix)] + lower
        raise ProjectError(
            f"file extension {suffix} is not read: extensions are lower-case",
            path=path, hint=f"rename it to {fixed}")
    if lower in HOME:
        raise ProjectError(
            f"{suffix} files in {kind}/ are not read",
            path=path, hint=f"{WHAT[kind]}; a {lower} file belongs in {HOME[lower]}")
    if kind in ("sources", "sinks") and lower in DATA_SUFFIXES:
        return
    if lower in (".yml", ".yaml", ".json"):
        hint = ("descriptions, tags and checks go in a transform's leading comment "
                "(-- @check: not_null(id)) or a Python docstring" if kind == "transforms"
                else f"{WHAT[kind]} (TOML, not {lower[1:].upper()})")
    else:
        hint = WHAT[kind]
    found.warnings.append(LoadWarning(path, f"not loaded: not a {'/'.join(suffixes)} file",
                                      hint))


def _subfolder(folder: Path, kind: str, suffixes: tuple[str, ...], found: ProjectFiles) -> None:
    """Node folders are flat: node names are file names, unique across the project."""
    name = folder.name
    if name in SILENT_FOLDERS or name.startswith("."):
        return
    if name.endswith(suffixes) and not name.startswith("."):
        raise ProjectError(
            "cannot read file: it is a folder", path=folder,
            hint=f"{WHAT[kind]}; rename or remove the folder {name}")
    if kind == "transforms" and (folder / "__init__.py").is_file():
        return  # a Python package of helper code
    nested = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SILENT_FOLDERS and not d.startswith("."))
        nested += [Path(dirpath) / f for f in sorted(filenames)
                   if f.endswith(suffixes) and not f.startswith(".")]
    if nested:
        listed = ", ".join(display_path(p) for p in nested[:3]) + (
            f" and {len(nested) - 3} more" if len(nested) > 3 else "")
        raise ProjectError(
            f"{kind} are not read from subfolders of {kind}/ ({listed})",
            path=nested[0],
            hint=f"move the files of {display_path(folder)}/ into {kind}/ "
            "(node names come from file names, so every node file sits directly in "
            f"{kind}/)")


def _check_reserved(stem: str, path: Path) -> None:
    lower = stem.lower()
    if lower.startswith(RESERVED_PREFIX):
        raise ProjectError(
            f"the name {stem!r} is reserved: Headwater's own schemas and tables start "
            f"with {RESERVED_PREFIX}",
            path=path, hint=f"rename the file so its name does not start with {RESERVED_PREFIX}")
    for suffix in RESERVED_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            raise ProjectError(
                f"the name {stem!r} is reserved: a source's {suffix[2:]} rows are "
                f"published as NAME{suffix}",
                path=path, hint=f"rename the file so its name does not end in {suffix}")


def name_key(name: str) -> str:
    """What two node names must not share: names that differ only in case (or in
    Unicode normalisation) are one table to SQL and one file on macOS and Windows."""
    if name.isascii():
        return name.lower()
    import unicodedata

    return unicodedata.normalize("NFC", name).lower()


# -- reading -------------------------------------------------------------------------------


def read_text(path: Path) -> tuple[bytes, str]:
    """The bytes of a project text file and its text (UTF-8, a leading BOM dropped).

    Raises ProjectError when the file cannot be read, is over its size limit
    (:data:`SIZE_LIMITS`, by extension) or is not UTF-8 (with the line and column
    of the first bad byte).
    """
    limit = SIZE_LIMITS.get(path.suffix.lower())
    try:
        with open(path, "rb") as f:
            raw = f.read() if limit is None else f.read(limit + 1)
            if limit is not None and len(raw) > limit:
                raise too_big(path, os.fstat(f.fileno()).st_size, limit)
    except OSError as exc:
        raise ProjectError(f"cannot read file: {exc.strerror}", path=path) from None
    return raw, decode(raw, path)


def too_big(path: Path, size: int, limit: int) -> ProjectError:
    kind = {".sql": "SQL", ".py": "Python", ".toml": "TOML"}.get(path.suffix.lower(), "")
    if path.suffix.lower() == ".toml":
        todo = "keep long lists of values in a data file that a source reads"
    else:
        todo = ("split it into several transforms that refer to each other by name, and "
                "keep literal data (long VALUES or IN lists) in a file that a source reads")
    return ProjectError(
        f"file too large: {_size(size)} ({size:,} bytes), over the {_size(limit)} limit "
        f"for {kind} files",
        path=path, hint=todo)


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB".replace(".0 MiB", " MiB")
    if n >= 1024:
        return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{n} bytes"


BOM = "\ufeff"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode(raw: bytes, path: Path) -> str:
    """``raw`` as UTF-8 text without a leading BOM; a ProjectError with line and column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if raw.startswith(_UTF16_BOMS):
            raise ProjectError("file is UTF-16 text, not UTF-8", path=path,
                               hint="save it as UTF-8 (in most editors: Save with "
                               "Encoding, UTF-8)") from None
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        column = len(before[start:].decode("utf-8", "replace")) + 1
        shown = raw.decode("utf-8", "replace")
        raise ProjectError(
            f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            path=path, line=line, column=column,
            snippet=caret_snippet(shown, line, column) or None,
            hint="save it as UTF-8 (Latin-1 or Windows-1252 text converts with "
            "`iconv -f cp1252 -t utf-8`)") from None
    return text[1:] if text.startswith(BOM) else text


def case_clash(name: str, other: str, path: Path, other_path: Path, root: Path) -> ProjectError:
    """Two node names that differ only in case."""
    (a, an), (b, bn) = sorted([(_rel(other_path, root), other), (_rel(path, root), name)])
    return ProjectError(
        f"two nodes differ only in case: {a} ({an}) and {b} ({bn})",
        path=path,
        hint="table names are not case-sensitive in SQL, so both would be the same table; "
        "rename one of the files",
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


_TOML_HINT = 'fix the TOML syntax: key = "quoted string", numbers, true/false, [a, b], [table]'


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; a syntax error becomes a ProjectError with line and caret."""
    from headwater.core import secrets

    text = read_text(path)[1]  # size-limited, UTF-8, a BOM dropped
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(exc, text, path) from None
    secrets.learn_config(data, path)  # masked everywhere from now on
    return data, text


_TOML_HINT = 'fix the TOML syntax: key = "quoted string", numbers, true/false, [a, b], [table]'


def toml_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> ProjectError:
    """A ProjectError for a TOML syntax error: where, what, and how to fix it."""
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    line = int(m.group(1)) if m else None
    col = int(m.group(2)) if m else None
    msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
    hint = _TOML_HINT
    src = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
    if msg.startswith("Illegal character '\\n'") and col is not None:
        opener = max(src.rfind('"', 0, col - 1), src.rfind("'", 0, col - 1))
        if opener >= 0:
            msg, col = "unterminated string", opener + 1
            hint = f"add the closing {src[opener]} at the end of the value"
    elif msg == "Invalid value":
        msg = "invalid value"
        hint = (
            'strings need quotes (path = "data/*.csv"); other values are numbers, '
            'true/false, [arrays] or {inline = "tables"}'
        )
    return ProjectError(
        f"invalid TOML: {msg}",
        path=path,
        line=line,
        column=col,
        snippet=caret_snippet(text, line, col) if line else None,
        hint=hint,
    )
