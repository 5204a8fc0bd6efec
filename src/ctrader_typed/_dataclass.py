"""``wrapper_dataclass``: what ``@dataclass(frozen=True, slots=True, kw_only=True)`` makes, made cheaply.

The generated module defines some 120 wrapper classes. ``dataclasses.dataclass`` compiles
five or six methods per class with ``exec`` at import time, which made importing the
wrappers take about 150 ms. This decorator builds the same classes without compiling
anything: ``__init__`` is written out by the generator (so it is in the module's cached
bytecode, with its exact signature), and the rest - ``__repr__``, ``__eq__``, ``__hash__``,
the frozen ``__setattr__``/``__delattr__``, pickling, ``__match_args__``, the slots and
the ``__dataclass_fields__``/``__dataclass_params__`` that ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` read - is shared code bound per class.

Type checkers see it through ``dataclass_transform`` (frozen, keyword-only), so they
treat the classes as the frozen dataclasses they are. ``tests/unit/test_dataclass.py``
checks the result against ``dataclasses.dataclass`` itself, class by class.

``build_class`` and ``adopt`` are how the generated ``_from_proto`` builds an instance
cheaply: it fills the slots of a *build class* (same slots, no frozen ``__setattr__``,
so each ``b.field = value`` is a plain slot store) and then gives the object the
wrapper's class by ``__class__`` assignment, which CPython allows between classes whose
layouts are the same.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform

__all__ = ["adopt", "build_class", "wrapper_dataclass"]

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Reference:
    """A real dataclass with the same parameters: its params and field marker are reused."""

    field: int = 0


_PARAMS = getattr(_Reference, "__dataclass_params__")  # noqa: B009 - not in the stubs
_FIELD_TYPE = getattr(dataclasses.fields(_Reference)[0], "_field_type")  # noqa: B009 - private marker


def _make_field(name: str, annotation: str, value: Any) -> dataclasses.Field[Any]:
    if isinstance(value, dataclasses.Field):
        field: dataclasses.Field[Any] = value
    elif value is dataclasses.MISSING:
        field = dataclasses.field()
    else:
        field = dataclasses.field(default=value)
    field.name = name
    field.type = annotation
    field.kw_only = True
    setattr(field, "_field_type", _FIELD_TYPE)  # noqa: B010 - what dataclasses.fields() filters on
    return field


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj -> (obj.a, obj.b, ...)`` in C."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    return operator.attrgetter(*names)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(dataclasses.field,))
def wrapper_dataclass(cls: type[_T]) -> type[_T]:
    """Turn ``cls`` (fields annotated, ``__init__`` defined) into a frozen, slotted dataclass."""
    namespace = dict(cls.__dict__)
    if "__init__" not in namespace:
        raise TypeError(f"{cls.__name__} must define __init__ (the generator writes it)")
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name, annotation in namespace.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar[", "typing.ClassVar[")):
            continue
        fields[name] = _make_field(name, annotation, namespace.pop(name, dataclasses.MISSING))
    names = tuple(fields)
    values = _getter(names)
    shown = tuple((name, operator.attrgetter(name)) for name, f in fields.items() if f.repr)

    def __repr__(self: Any) -> str:
        parts = ", ".join(f"{name}={get(self)!r}" for name, get in shown)
        return f"{self.__class__.__qualname__}({parts})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(values(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is made or name in fields:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is made or name in fields:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    def __getstate__(self: Any) -> list[Any]:
        return list(values(self))

    def __setstate__(self: Any, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    for method in (__repr__, __eq__, __hash__, __setattr__, __delattr__, __getstate__, __setstate__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        namespace.setdefault(method.__name__, method)
    namespace["__slots__"] = names
    namespace["__match_args__"] = ()
    namespace["__dataclass_fields__"] = fields
    namespace["__dataclass_params__"] = _PARAMS
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    metaclass: Any = type(cls)
    made = cast("type[_T]", metaclass(cls.__name__, cls.__bases__, namespace))
    made.__qualname__ = cls.__qualname__
    return made


def build_class(cls: type) -> type[Any]:
    """A class with exactly the slots of the wrapper ``cls`` and no frozen ``__setattr__``.

    An instance of it can be filled with plain attribute stores (the interpreter's fastest
    way into a slot), then turned into a ``cls`` by assigning ``__class__``. It derives from
    the same base as ``cls``, which CPython requires of that assignment; the assignment is
    tried once here, so a class it cannot serve fails at import, not on the first message.
    """
    slots = cls.__dict__.get("__slots__")
    base = cls.__base__
    if slots is None or base is None:
        raise TypeError(f"{cls.__qualname__} declares no __slots__: it is not a wrapper class")
    builder: type[Any] = type(
        f"{cls.__name__}Build",
        (base,),
        {"__slots__": slots, "__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}Build"},
    )
    probe = object.__new__(builder)
    probe.__class__ = cls
    return builder


def adopt(cls: type[_T], built: object) -> _T:
    """``built`` (a filled build-class instance) copied into a new ``cls``.

    For a subclass of a generated wrapper whose layout differs (a subclass that has a
    ``__dict__`` or slots of its own), where ``__class__`` assignment is refused.
    """
    made = object.__new__(cls)
    names: tuple[str, ...] = type(built).__dict__["__slots__"]
    for name in names:
        object.__setattr__(made, name, getattr(built, name))
    return made
