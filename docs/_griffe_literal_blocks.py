"""Griffe extension of the documentation site: reST literal blocks in docstrings become code fences.

The package's docstrings introduce examples the reST way, with a paragraph ending in ``::``
followed by an indented block. Rendered as Markdown, that leaves a stray ``::`` and an
unhighlighted block. This extension, listed under the mkdocstrings handler's ``extensions`` in
mkdocs.yml, rewrites each such block as a fenced one (``text`` for drawings such as the
exception tree, ``python`` otherwise) and the ``::`` as ``:`` (or drops a lone ``::`` line),
as reST itself reads them. Docstrings in the source stay as they are.
"""

from __future__ import annotations

import textwrap
from typing import Any

import griffe

_DRAWING = frozenset("├└│─")


def _language(block: str) -> str:
    return "text" if _DRAWING & set(block) else "python"


def convert(text: str) -> str:
    """Rewrite the reST literal blocks of a (dedented) docstring as Markdown code fences."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        end = start
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
        ):
            end += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if end == start:  # no indented block follows: not a literal block
            out.append(line)
            i += 1
            continue
        intro = line.rstrip()[:-2].rstrip()
        if intro.strip():
            out.append(intro + ":")
        out.append("")
        block = textwrap.dedent("\n".join(lines[start:end]))
        pad = " " * indent
        out.append(f"{pad}```{_language(block)}")
        out.extend(pad + b if b else "" for b in block.split("\n"))
        out.append(f"{pad}```")
        i = end
    return "\n".join(out)


class LiteralBlocks(griffe.Extension):
    """Turns ``text::`` + indented block into ``text:`` + a fenced code block."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is not None and "::" in docstring.value:
            docstring.value = convert(docstring.value)
