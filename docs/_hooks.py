"""mkdocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

README sections
    The README is the single source of a few things the site shows too: the two
    getting-started commands and the performance and reliability figures. A page marks
    such a place with a block::

        <!-- readme: performance -->
        what to show while the README has no such section
        <!-- /readme -->

    When README.md has the snippet section ``performance`` (the lines between
    ``<!-- --8<-- [start:performance] -->`` and ``<!-- --8<-- [end:performance] -->``), the
    block becomes a pymdownx.snippets include of it; otherwise the block's own text stays.
    A README that has a ``## Performance`` (or ``## Reliability``) heading but no markers
    fails the build, so the figures cannot be left out by accident.

Requests table
    The requests page includes ``src/ctrader_typed/_generated/REQUESTS.md`` verbatim. Its
    coroutine and message names become cross-references into the API reference; autorefs
    fails a strict build if one of them has no reference entry, so the table and the
    reference cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

README = "README.md"
REQUESTS_PAGE = "requests.md"
CLIENT = "ctrader_typed.client.AsyncClient"
MESSAGES = "ctrader_typed._generated.messages"

# Sections whose README heading demands snippet markers.
_HEADINGS = {"performance": "Performance", "reliability": "Reliability"}
_BLOCK = re.compile(
    r"^<!-- readme: (?P<name>[a-z][-_0-9a-z]*) -->\n(?P<body>.*?)^<!-- /readme -->\n?", re.M | re.S
)
_METHOD_CELL = re.compile(r"<td><code>(send_\w+_req)</code></td>")
_MESSAGE_CELL = re.compile(r"<td><code>([A-Z]\w*)</code> \((\d+)\)</td>")


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).parent


def _has_section(readme: str, name: str) -> bool:
    return f"[start:{name}]" in readme and f"[end:{name}]" in readme


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if "<!-- readme: " not in markdown:
        return markdown
    path = _root(config) / README
    readme = path.read_text(encoding="utf-8") if path.is_file() else ""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if _has_section(readme, name):
            return f'--8<-- "{README}:{name}"\n'
        heading = _HEADINGS.get(name)
        if heading is not None and re.search(rf"^## {heading}\s*$", readme, re.M):
            raise PluginError(
                f"{README} has a '## {heading}' section but no snippet markers for it: put "
                f"'<!-- --8<-- [start:{name}] -->' after the heading and '<!-- --8<-- [end:{name}] -->' "
                f"at the end of the section, so {page.file.src_uri} can include it"
            )
        return match["body"]

    return _BLOCK.sub(replace, markdown)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != REQUESTS_PAGE:
        return html
    html = _METHOD_CELL.sub(
        lambda m: f'<td><autoref identifier="{CLIENT}.{m[1]}"><code>{m[1]}</code></autoref></td>', html
    )
    return _MESSAGE_CELL.sub(
        lambda m: f'<td><autoref identifier="{MESSAGES}.{m[1]}"><code>{m[1]}</code></autoref> ({m[2]})</td>',
        html,
    )
