"""``wrapper_dataclass``: what ``@dataclass(frozen=True, slots=True, kw_only=True)`` makes, made cheaply.

The generated module defines some 120 wrapper classes. ``dataclasses.dataclass`` compiles
five or six methods per class with ``exec`` at import time, which made importing the
wrappers take about 150 ms. This decorator builds the same classes without compiling
anything: ``__init__`` is written out by the generator (so it is in the module's cached
bytecode, with its exact signature), and the rest - ``__repr__``, ``__eq__``, ``__hash__``,
the frozen ``__setattr__``/``__delattr__``, pickling, ``__match_args__``, the slots and
the ``__dataclass_fields__``/``__dataclass_params__`` that ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` read - is shared code bound per class.
Those two attributes are made on first read, so importing the wrappers imports neither
``dataclasses`` (nor the ``inspect`` it pulls in) nor makes some 800 ``Field`` objects;
``field(repr=False)`` is the field specifier the generator writes for secrets.

Type checkers see it through ``dataclass_transform`` (frozen, keyword-only), so they
treat the classes as the frozen dataclasses they are. ``tests/unit/test_dataclass.py``
checks the result against ``dataclasses.dataclass`` itself, class by class.

``build_class`` and ``adopt`` are how the generated ``_from_proto`` builds an instance
cheaply: it fills the slots of a *build class* (a subclass adding no slot, no frozen ``__setattr__``,
so each ``b.field = value`` is a plain slot store) and then gives the object the
wrapper's class by ``__class__`` assignment, which CPython allows between classes whose
layouts are the same.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from types import MemberDescriptorType
from typing import TYPE_CHECKING, Any, TypeVar, cast, dataclass_transform

if TYPE_CHECKING:
    import dataclasses

__all__ = ["adopt", "build_class", "field", "wrapper_dataclass"]

_T = TypeVar("_T")


class _Missing:
    """No default (``dataclasses.MISSING`` without importing ``dataclasses``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


class _Spec:
    """What ``field(...)`` wrote in a class body: a default and whether ``repr`` shows it."""

    __slots__ = ("default", "repr")

    def __init__(self, default: Any, repr: bool) -> None:
        self.default = default
        self.repr = repr


def field(*, default: Any = _MISSING, repr: bool = True) -> Any:
    """A field with options, as ``dataclasses.field`` (the two options the generator uses)."""
    return _Spec(default, repr)


def _dataclasses() -> Any:
    """The ``dataclasses`` module, imported on first need (it imports ``inspect``: ~5 ms)."""
    module = sys.modules.get("dataclasses")
    if module is None:
        import dataclasses as module
    return module


def _frozen(message: str) -> Exception:
    error: Exception = _dataclasses().FrozenInstanceError(message)
    return error


_reference_parts: tuple[Any, Any] | None = None


def _reference() -> tuple[Any, Any]:
    """The parameters object and the field marker of a real dataclass with our parameters."""
    global _reference_parts
    if _reference_parts is None:
        dc = _dataclasses()

        @dc.dataclass(frozen=True, slots=True, kw_only=True)
        class _Reference:
            field: int = 0

        marker = dc.fields(_Reference)[0]._field_type
        _reference_parts = (getattr(_Reference, "__dataclass_params__"), marker)  # noqa: B009 - not in the stubs
    return _reference_parts


def _make_field(name: str, annotation: str, spec: _Spec) -> dataclasses.Field[Any]:
    dc = _dataclasses()
    made: dataclasses.Field[Any] = (
        dc.field(repr=spec.repr)
        if spec.default is _MISSING
        else dc.field(default=spec.default, repr=spec.repr)
    )
    made.name = name
    made.type = annotation
    made.kw_only = True
    setattr(made, "_field_type", _reference()[1])  # noqa: B010 - what dataclasses.fields() filters on
    return made


class _LazyFields:
    """``__dataclass_fields__`` of a wrapper: the ``dataclasses.Field`` objects, made on first read.

    ``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` read it through the
    class or an instance; until one of them does, neither the ``Field`` objects nor the
    ``dataclasses`` module are needed (importing the package stays cheaper).
    """

    __slots__ = ("_made", "_specs")

    def __init__(self, specs: dict[str, tuple[str, _Spec]]) -> None:
        self._specs = specs
        self._made: dict[str, dataclasses.Field[Any]] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> dict[str, dataclasses.Field[Any]]:
        made = self._made
        if made is None:
            made = {
                name: _make_field(name, annotation, spec) for name, (annotation, spec) in self._specs.items()
            }
            self._made = made
        return made


class _LazyParams:
    """``__dataclass_params__``: the parameters of ``@dataclass(frozen=True, slots=True, kw_only=True)``."""

    __slots__ = ()

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return _reference()[0]


_PARAMS = _LazyParams()


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj -> (obj.a, obj.b, ...)`` in C."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    return operator.attrgetter(*names)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def wrapper_dataclass(cls: type[_T]) -> type[_T]:
    """Turn ``cls`` (fields annotated, ``__init__`` defined) into a frozen, slotted dataclass."""
    namespace = dict(cls.__dict__)
    if "__init__" not in namespace:
        raise TypeError(f"{cls.__name__} must define __init__ (the generator writes it)")
    specs: dict[str, tuple[str, _Spec]] = {}
    for name, annotation in namespace.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar[", "typing.ClassVar[")):
            continue
        value = namespace.pop(name, _MISSING)
        specs[name] = (annotation, value if isinstance(value, _Spec) else _Spec(value, True))
    names = tuple(specs)
    fields = frozenset(names)
    values = _getter(names)
    shown = tuple((name, operator.attrgetter(name)) for name, (_, spec) in specs.items() if spec.repr)

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
            raise _frozen(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is made or name in fields:
            raise _frozen(f"cannot delete field {name!r}")
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
    namespace["__dataclass_fields__"] = _LazyFields(specs)
    namespace["__dataclass_params__"] = _PARAMS
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    metaclass: Any = type(cls)
    made = cast("type[_T]", metaclass(cls.__name__, cls.__bases__, namespace))
    made.__qualname__ = cls.__qualname__
    return made


def build_class(cls: type) -> type[Any]:
    """A subclass of the wrapper ``cls`` that adds no slot and has no frozen ``__setattr__``.

    An instance of it (made by calling it: its ``__init__`` is ``object.__init__``) can be
    filled with plain attribute stores (the interpreter's fastest way into a slot: its
    ``__setattr__`` and ``__delattr__`` are ``object``'s, so CPython stores straight into the
    slot), then turned into a ``cls`` by assigning ``__class__``. Being a subclass that adds
    nothing, it has the layout of ``cls`` itself, which makes that assignment the cheap case
    for CPython (no comparison of the two classes' slot names). Its namespace holds the slots'
    own descriptors, so a store is never caught by a descriptor that ``cls`` puts over a slot
    later (``_base._install_lazy``). The assignment is tried once here, so a class it cannot
    serve fails at import, not on the first message.
    """
    slots = cls.__dict__.get("__slots__")
    if slots is None or cls.__base__ is None:
        raise TypeError(f"{cls.__qualname__} declares no __slots__: it is not a wrapper class")
    names: tuple[str, ...] = (slots,) if isinstance(slots, str) else tuple(slots)
    namespace: dict[str, Any] = {name: cls.__dict__[name] for name in names}
    for name, descriptor in namespace.items():
        if type(descriptor) is not MemberDescriptorType:
            raise TypeError(
                f"{cls.__qualname__}.{name} is not a plain slot any more: make the build class "
                "before anything is put over the slot"
            )
    namespace.update(
        __slots__=(),
        __init__=object.__init__,
        __setattr__=object.__setattr__,
        __delattr__=object.__delattr__,
        __module__=cls.__module__,
        __qualname__=f"{cls.__qualname__}Build",
        WRAPPER_SLOTS=names,
    )
    builder: type[Any] = type(f"{cls.__name__}Build", (cls,), namespace)
    probe = builder()
    probe.__class__ = cls
    return builder


def adopt(cls: type[_T], built: object) -> _T:
    """``built`` (a filled build-class instance) copied into a new ``cls``.

    For a subclass of a generated wrapper whose layout differs (a subclass that has a
    ``__dict__`` or slots of its own), where ``__class__`` assignment is refused.
    """
    made = object.__new__(cls)
    names: tuple[str, ...] = cast("Any", type(built)).WRAPPER_SLOTS
    for name in names:
        object.__setattr__(made, name, getattr(built, name))
    return made
