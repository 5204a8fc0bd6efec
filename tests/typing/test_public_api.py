"""No ``Any`` leaks into the public API: every public signature and attribute is precise."""

from __future__ import annotations

import importlib
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator

PUBLIC_MODULES = [
    "ctrader_typed",
    "ctrader_typed.client",
    "ctrader_typed.errors",
    "ctrader_typed.events",
    "ctrader_typed.history",
    "ctrader_typed.oauth",
    "ctrader_typed.testing",
    "ctrader_typed.tokens",
    "ctrader_typed.trading",
    "ctrader_typed.units",
]


def _contains_any(hint: object) -> bool:
    if hint is typing.Any:
        return True
    return any(_contains_any(arg) for arg in typing.get_args(hint))


def _hints(obj: Callable[..., object] | type) -> dict[str, object]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except NameError:
        # Names imported only under TYPE_CHECKING: judge the annotation text instead.
        raw = inspect.get_annotations(obj) if isinstance(obj, type) else dict(obj.__annotations__)
        return {
            name: typing.Any if isinstance(text, str) and re.search(r"\bAny\b", text) else text
            for name, text in raw.items()
        }


def _public_objects() -> Iterator[tuple[str, object]]:
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        assert names is not None, f"{module_name} has no __all__"
        for name in names:
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj


def _members(cls: type) -> Iterator[tuple[str, Callable[..., object]]]:
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in {
            "__init__",
            "__call__",
            "__aenter__",
            "__aiter__",
            "__anext__",
        }:
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            yield name, value


def _offenders() -> list[str]:
    found: list[str] = []
    for qualified, obj in _public_objects():
        if isinstance(obj, type):
            targets: list[tuple[str, Callable[..., object] | type]] = [(qualified, obj)]
            targets += [(f"{qualified}.{name}", fn) for name, fn in _members(obj)]
        elif inspect.isfunction(obj):
            targets = [(qualified, obj)]
        else:
            continue
        for where, target in targets:
            for name, hint in _hints(target).items():
                if _contains_any(hint):
                    found.append(f"{where}: {name}: {hint}")
    return found


def test_public_api_has_no_any() -> None:
    assert _offenders() == []


def test_the_walker_sees_an_any() -> None:
    def leaky(x: typing.Any) -> list[typing.Any]:
        return [x]

    hints = typing.get_type_hints(leaky)
    assert _contains_any(hints["x"])
    assert _contains_any(hints["return"])
    assert not _contains_any(types.NoneType)
