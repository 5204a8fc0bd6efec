"""``wrapper_dataclass`` makes what ``@dataclass(frozen=True, slots=True, kw_only=True)`` makes.

Each generated wrapper is compared with a reference class built by ``dataclasses`` itself
from the same fields: field metadata, parameters, signature, and for sample messages the
repr, equality, hash, ``replace``, ``asdict``, pickling and the frozen errors.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings

from ctrader_typed._dataclass import wrapper_dataclass
from ctrader_typed._generated import messages as generated
from tests.unit.strategies import messages_of

WRAPPERS: list[type[Any]] = [getattr(generated, name) for name in generated.__all__]


def _reference(wrapper: type[Any]) -> type[Any]:
    spec = []
    for f in dataclasses.fields(wrapper):
        if f.default is dataclasses.MISSING:
            spec.append((f.name, f.type, dataclasses.field(repr=f.repr)))
        else:
            spec.append((f.name, f.type, dataclasses.field(default=f.default, repr=f.repr)))
    reference: type[Any] = dataclasses.make_dataclass(
        wrapper.__name__, spec, frozen=True, slots=True, kw_only=True
    )
    reference.__qualname__ = wrapper.__qualname__
    return reference


def _metadata(cls: type[Any]) -> list[tuple[Any, ...]]:
    return [
        (f.name, f.type, f.default, f.repr, f.init, f.compare, f.hash, f.kw_only)
        for f in dataclasses.fields(cls)
    ]


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.__name__)
def test_class_matches_a_real_dataclass(wrapper: type[Any]) -> None:
    reference = _reference(wrapper)
    assert dataclasses.is_dataclass(wrapper)
    assert _metadata(wrapper) == _metadata(reference)
    assert repr(getattr(wrapper, "__dataclass_params__")) == repr(getattr(reference, "__dataclass_params__"))  # noqa: B009
    assert wrapper.__dict__["__match_args__"] == reference.__dict__["__match_args__"] == ()
    assert set(wrapper.__dict__["__slots__"]) == set(reference.__dict__["__slots__"])
    assert "__dict__" not in wrapper.__dict__  # instances have no __dict__
    ours = inspect.signature(wrapper).parameters
    theirs = inspect.signature(reference).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.__name__)
def test_instances_behave_like_real_dataclass_instances(wrapper: type[Any]) -> None:
    reference = _reference(wrapper)

    @settings(max_examples=5, deadline=None)
    @given(messages_of(wrapper.PROTO))
    def check(message: Message) -> None:
        ours: Any = wrapper.from_bytes(message.SerializePartialToString())
        values = {f.name: getattr(ours, f.name) for f in dataclasses.fields(wrapper)}
        theirs = reference(**values)
        assert repr(ours) == repr(theirs)
        assert hash(ours) == hash(theirs)
        assert ours == wrapper(**values)
        assert ours != theirs  # another class: never equal, as between two dataclasses
        assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)
        assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
        assert pickle.loads(pickle.dumps(ours)) == ours  # noqa: S301 - our own bytes
        assert dataclasses.replace(ours) == ours
        for name in values:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(ours, name, None)
            with pytest.raises(dataclasses.FrozenInstanceError):
                delattr(ours, name)

    check()


def test_constructor_errors_are_those_of_a_keyword_only_init() -> None:
    from ctrader_typed import SpotEvent

    with pytest.raises(TypeError):
        SpotEvent(1, 2)  # type: ignore[call-arg]  # keyword-only
    with pytest.raises(TypeError):
        SpotEvent(symbol_id=2)  # type: ignore[call-arg]  # a required field is missing
    with pytest.raises(TypeError):
        SpotEvent(ctid_trader_account_id=1, symbol_id=2, colour="red")  # type: ignore[call-arg]


def test_a_class_without_init_is_refused() -> None:
    class NoInit:
        x: int = 0

    with pytest.raises(TypeError, match="must define __init__"):
        wrapper_dataclass(NoInit)


def test_subclass_instances_may_hold_attributes_that_are_not_fields() -> None:
    from ctrader_typed import SpotEvent

    class Tagged(SpotEvent):
        pass

    tagged = Tagged(ctid_trader_account_id=1, symbol_id=2)
    tagged.note = "mine"  # type: ignore[attr-defined]  # not a field: allowed, as with dataclasses
    with pytest.raises(dataclasses.FrozenInstanceError):
        tagged.bid = 3  # type: ignore[misc]
