"""``headwater docs``: a static, self-contained documentation site.

``build_docs(loaded, state, state_dir)`` writes ``target/docs/``::

    index.html          search, the DAG (pan, zoom, colour by kind or status), every node
    nodes/NAME.html     description, columns with lineage, checks, last run, code
    data.js             the search index (a script: fetch() of local files fails on file://)
    assets/shared.css, assets/shared.js   what the web UI (headwater serve) uses too
    assets/style.css, assets/app.js       the rest, for this site only

No page loads anything from the network (a Content-Security-Policy forbids it),
so the folder can be opened from disk, zipped or served by any static server.
Code is highlighted with Pygments at build time; highlighted code and column
lineage are cached under ``.headwater/`` so a rebuild of a large project is
fast.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from headwater.docs.model import gather
from headwater.docs.render import data_js, index_page, node_page, page_file
from headwater.lineage.columns import LineageCache, ProjectLineage

if TYPE_CHECKING:
    from headwater.load.loader import LoadedProject
    from headwater.state.store import StateStore

__all__ = ["build_docs", "DOCS_DIR"]

DOCS_DIR = Path("target") / "docs"
HIGHLIGHT_CACHE = "docs-cache.json"
ASSETS = Path(__file__).parent / "assets"


def build_docs(loaded: LoadedProject, state: StateStore, state_dir: Path,
               out: Path | None = None, *, env: str = "prod") -> Path:
    """Write the site of a loaded project into ``out`` (default target/docs); return
    index.html. ``Project.docs()`` is the usual way in."""
    out = (out if out is not None else loaded.root / DOCS_DIR).resolve()
    lineage = ProjectLineage.from_state(loaded, state, env, state_dir)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    site = gather(loaded, lineage, state, env, generated)
    sources_of = lineage.source_index()
    highlighter = Highlighter(LineageCache(state_dir / HIGHLIGHT_CACHE))

    pages = out / "nodes"
    pages.mkdir(parents=True, exist_ok=True)
    assets = out / "assets"
    assets.mkdir(exist_ok=True)
    for asset in ASSETS.iterdir():
        if asset.is_file():
            shutil.copyfile(asset, assets / asset.name)
    writer = _Writer(out, highlighter.cache)
    writer.write("assets/pygments.css", highlighter.css())
    writer.write("data.js", data_js(site))
    writer.write("index.html", index_page(site, loaded.graph.upstream))
    written = set()
    for doc in site.nodes.values():
        name = page_file(doc.name)
        written.add(name)
        writer.write(f"nodes/{name}",
                     node_page(site, doc, lineage, sources_of, highlighter.html))
    for stale in pages.glob("*.html"):
        if stale.name not in written:
            stale.unlink()
    writer.done()
    highlighter.cache.save(keep=max(2000, 2 * len(site.nodes)))
    return out / "index.html"


class _Writer:
    """Writes pages whose content changed since the last build (known by hash)."""

    KEY = "pages:"

    def __init__(self, out: Path, cache: LineageCache) -> None:
        self.out = out
        self.cache = cache
        self.key = self.KEY + hashlib.sha256(str(out).encode()).hexdigest()[:16]
        self.before: dict[str, str] = dict(cache.get(self.key) or {})
        self.now: dict[str, str] = {}

    def write(self, rel: str, text: str) -> None:
        from headwater.core.secrets import redact

        data = redact(text).encode("utf-8")  # a page never shows a secret
        digest = hashlib.sha1(data).hexdigest()
        self.now[rel] = digest
        path = self.out / rel
        if self.before.get(rel) == digest and path.is_file():
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # never half a page

    def done(self) -> None:
        if self.now != self.before:
            self.cache.put(self.key, self.now)


class Highlighter:
    """Pygments HTML for code, cached by content."""

    STYLE = "friendly"

    def __init__(self, cache: LineageCache) -> None:
        self.cache = cache
        self._formatter = None
        self._lexers: dict[str, object] = {}

    def css(self) -> str:
        from pygments.formatters import HtmlFormatter

        rules: str = HtmlFormatter(style=self.STYLE).get_style_defs("pre.hl")
        return rules + "\n"

    def html(self, code: str, language: str) -> str:
        key = hashlib.sha256(f"{self.STYLE}\0{language}\0{code}".encode()).hexdigest()[:32]
        hit = self.cache.get(key)
        if hit is not None:
            return str(hit["html"])
        from pygments import highlight
        from pygments.formatters import HtmlFormatter

        if self._formatter is None:
            self._formatter = HtmlFormatter(nowrap=True)
        html: str = highlight(code, self._lexer(language), self._formatter)
        self.cache.put(key, {"html": html})
        return html

    def _lexer(self, language: str) -> object:
        if language not in self._lexers:
            from pygments.lexers import get_lexer_by_name

            self._lexers[language] = get_lexer_by_name(language)
        return self._lexers[language]
