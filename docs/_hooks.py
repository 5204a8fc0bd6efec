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

Reference options
    The message and enum pages list one ``::: ctrader_typed.Name`` line per class, under the
    public name users import (so anchors and links read ``ctrader_typed.SpotEvent``, not the
    generated module's path), and the message pages one ``::: ctrader_typed.client.AsyncClient.send_x_req``
    line per request coroutine. Those entries share one set of mkdocstrings options each
    (``_CLASS_OPTIONS``, ``_COROUTINE_OPTIONS``): a bare ``:::`` line on such a page gets them,
    and a line that already has an ``options:`` block keeps its own.

Names in the reference
    Docstrings name other classes in text: as Python names in inline code (SymbolByIdRes,
    Symbol.leverage_id) or as the schema's names in plain text (ProtoOASymbolByIdRes,
    ProtoOASymbol.leverageId). On the reference pages both become links to the class (or its
    field, or enum member) that users import, shown under the Python name. Code that is more
    than such a name, names in links and headings, and names the package does not export stay
    as written.

Table of contents
    Reference entries are long CamelCase names; the table of contents may wrap them, and does
    so between words (``GetAccountListByAccessToken`` / ``Res``) rather than mid-word.

Requests table
    The requests page includes ``src/ctrader_typed/_generated/REQUESTS.md`` verbatim. Its
    coroutine and message names become cross-references into the API reference; autorefs
    fails a strict build if one of them has no reference entry, so the table and the
    reference cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import AnchorLink

README = "README.md"
REQUESTS_PAGE = "requests.md"
CLIENT = "ctrader_typed.client.AsyncClient"
MESSAGES = "ctrader_typed"

# Pages whose bare ":::" lines get shared options: the message groups and the enums.
_CLASS_PAGES = ("reference/messages/", "reference/enums.md")
# A compact class: no constructor signature (the fields below say it all), fields as h4 under an
# h3 class heading (the page's h2 sections group them), no "class" badge in the table of contents
# (every entry is one). The bases, PROTO and to_proto are the same on every wrapper: documented
# once, on the base classes.
_CLASS_OPTIONS = """    options:
      heading_level: 3
      separate_signature: false
      show_signature: false
      show_labels: false
      show_bases: false
      show_symbol_type_toc: false
      filters: ["!^_", "!^PROTO$", "!^to_proto$"]
"""
# A request coroutine of AsyncClient, documented with the messages it sends and receives.
_COROUTINE_OPTIONS = """    options:
      heading_level: 3
      show_symbol_type_toc: false
"""
_BARE_DIRECTIVE = re.compile(r"^::: (ctrader_typed\.[\w.]+)\n(?!    options:)", re.M)


def _with_options(match: re.Match[str]) -> str:
    coroutine = match[1].startswith(f"{CLIENT}.")
    return f"{match[0]}{_COROUTINE_OPTIONS if coroutine else _CLASS_OPTIONS}"


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
    if page.file.src_uri.startswith(_CLASS_PAGES) and page.file.src_uri != "reference/messages/index.md":
        markdown = _BARE_DIRECTIVE.sub(_with_options, markdown)
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
    if page.file.src_uri.startswith("reference/"):
        _wrap_between_words(list(page.toc))
        return _link_schema_names(html)
    if page.file.src_uri != REQUESTS_PAGE:
        return html
    html = _METHOD_CELL.sub(
        lambda m: f'<td><autoref identifier="{CLIENT}.{m[1]}"><code>{m[1]}</code></autoref></td>', html
    )
    return _MESSAGE_CELL.sub(
        lambda m: f'<td><autoref identifier="{MESSAGES}.{m[1]}"><code>{m[1]}</code></autoref> ({m[2]})</td>',
        html,
    )


_SCHEMA_DOC = re.compile(r"Schema name: ``(\w+)``")
_SCHEMA_NAME = re.compile(r"\b(Proto[A-Z]\w*)(?:\.([A-Za-z]\w*))?")
_PYTHON_NAME = re.compile(r"([A-Z]\w*)(?:\.([A-Za-z]\w*))?")
# Text, and the elements inside which names are left alone.
_TAG = re.compile(r"(<[^>]+>)")
_KEEP = re.compile(r"<(/?)(a|code|pre|h[1-6]|autoref|script|style)\b", re.I)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=_)(?=[a-z])")


@functools.cache
def _exported() -> tuple[dict[str, type], dict[str, type]]:
    """The classes ``ctrader_typed`` exports, by Python name and by schema name (from the
    "Schema name:" line of their docstrings)."""
    import ctrader_typed

    by_name: dict[str, type] = {}
    by_schema: dict[str, type] = {}
    loaded = vars(ctrader_typed)  # the messages and enums load with the package; skip lazy exports
    for public in ctrader_typed.__all__:
        obj = loaded.get(public)
        if not isinstance(obj, type) or obj.__name__ != public:
            continue
        by_name[public] = obj
        match = _SCHEMA_DOC.search(obj.__doc__ or "")
        if match is not None:
            by_schema[match[1]] = obj
    return by_name, by_schema


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _link(cls: type, member: str | None, rest: str = "") -> str:
    """A link to ``cls`` (or to its field or enum member ``member``), shown under its Python name."""
    target, shown = f"ctrader_typed.{cls.__name__}", cls.__name__
    if member is not None:
        field = _snake(member)
        if issubclass(cls, enum.Enum) and member in cls.__members__:
            target, shown = f"{target}.{member}", f"{shown}.{member}"
        elif dataclasses.is_dataclass(cls) and field in {f.name for f in dataclasses.fields(cls)}:
            target, shown = f"{target}.{field}", f"{shown}.{field}"
        else:
            rest = f".{member}{rest}"
    return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>{rest}'


def _schema_link(match: re.Match[str]) -> str:
    cls = _exported()[1].get(match[1])
    return match[0] if cls is None else _link(cls, match[2])


def _link_schema_names(html: str) -> str:
    """Schema names in running text, and ``<code>`` spans holding just an exported name
    (``SymbolByIdRes``, ``Symbol.leverage_id``), become links to the reference entry."""
    parts = _TAG.split(html)
    depth = 0
    for i, part in enumerate(parts):
        if i % 2:  # a tag
            if depth == 0 and part == "<code>" and i + 2 < len(parts) and parts[i + 2] == "</code>":
                name = _PYTHON_NAME.fullmatch(parts[i + 1])
                cls = _exported()[0].get(name[1]) if name is not None else None
                if name is not None and cls is not None:
                    parts[i], parts[i + 1], parts[i + 2] = _link(cls, name[2]), "", ""
                    continue
            keep = _KEEP.match(part)
            if keep is not None and not part.endswith("/>"):
                depth += -1 if keep[1] else 1
        elif depth == 0 and "Proto" in part:
            parts[i] = _SCHEMA_NAME.sub(_schema_link, part)
    return "".join(parts)


def _wrap_between_words(items: list[AnchorLink]) -> None:
    for item in items:
        item.title = "".join(
            part if i % 2 else _CAMEL_HUMP.sub("<wbr>", part) for i, part in enumerate(_TAG.split(item.title))
        )
        _wrap_between_words(item.children)
