"""The API reference documents every public message, enum and request coroutine exactly once,
under the public name users import (``ctrader_typed.SpotEvent``, never a private module's path).

The message and enum pages are written by hand, grouped by domain; a message added to the schema
fails here until it is placed on one of them.
"""

from __future__ import annotations

import enum
import pkgutil
import re
from collections import Counter
from pathlib import Path

import ctrader_typed

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: (?P<path>[\w.]+)$", re.M)


def _documented() -> Counter[str]:
    return Counter(
        match["path"] for page in REFERENCE.rglob("*.md") for match in DIRECTIVE.finditer(page.read_text())
    )


def _exported_classes(kind: type, module: str) -> set[str]:
    """The classes of ``kind`` that ``ctrader_typed`` exports from ``module`` (read through
    ``getattr``, so the lazy exports count whether or not another test loaded them first)."""
    exported = {name: getattr(ctrader_typed, name) for name in ctrader_typed.__all__}
    return {
        name
        for name, value in exported.items()
        if isinstance(value, type)
        and issubclass(value, kind)
        and value.__name__ == name
        and value.__module__ == module
    }


def test_every_message_is_documented_once_under_its_public_name() -> None:
    messages = _exported_classes(ctrader_typed.Wrapper, "ctrader_typed._generated.messages")
    assert len(messages) > 100
    documented = _documented()
    missing = sorted(name for name in messages if documented[f"ctrader_typed.{name}"] == 0)
    twice = sorted(name for name in messages if documented[f"ctrader_typed.{name}"] > 1)
    assert not missing, f"add these to a page of docs/reference/messages/: {missing}"
    assert not twice, f"documented on more than one page: {twice}"


def test_every_enum_is_documented_once_under_its_public_name() -> None:
    enums = _exported_classes(enum.Enum, "ctrader_typed._generated.enums")
    assert len(enums) > 20
    documented = _documented()
    assert sorted(name for name in enums if documented[f"ctrader_typed.{name}"] != 1) == []


def test_every_request_coroutine_is_documented_once_with_its_messages() -> None:
    client = ctrader_typed.AsyncClient
    coroutines = {name for name in dir(client) if re.fullmatch(r"send_\w+_req", name)}
    assert len(coroutines) >= 40
    pages: dict[str, list[str]] = {}
    for md in (REFERENCE / "messages").glob("*.md"):
        for match in DIRECTIVE.finditer(md.read_text()):
            pages.setdefault(match["path"], []).append(md.stem)
    for name in sorted(coroutines):
        where = pages.get(f"ctrader_typed.client.AsyncClient.{name}", [])
        assert len(where) == 1, f"{name} is documented on {where or 'no page'} of docs/reference/messages/"
        # On the page of the request it sends.
        request = name.removeprefix("send_").replace("_", "")
        page = (REFERENCE / "messages" / f"{where[0]}.md").read_text()
        assert any(
            path.removeprefix("ctrader_typed.").lower() == request for path in DIRECTIVE.findall(page)
        ), f"{name} is not on the page of its request"


def test_no_reference_entry_names_a_private_module() -> None:
    private = sorted(path for path in _documented() if any(part.startswith("_") for part in path.split(".")))
    assert private == []


def test_every_public_module_has_a_reference_entry() -> None:
    modules = {
        info.name
        for info in pkgutil.iter_modules(ctrader_typed.__path__)
        if not info.name.startswith("_") and info.name != "cli"  # the CLI has its own page, cli.md
    }
    assert {"client", "events", "errors", "testing"} <= modules
    documented = _documented()
    missing = sorted(
        name
        for name in modules
        if not any(
            path == f"ctrader_typed.{name}" or path.startswith(f"ctrader_typed.{name}.")
            for path in documented
        )
    )
    assert not missing, f"add a page (or a ::: line) to docs/reference/ for: {missing}"
