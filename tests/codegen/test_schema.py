"""protos/ is wire-identical to the schema the servers speak.

Two witnesses:
- Spotware's official PyPI package ``ctrader-open-api`` (an older schema): every message,
  field and enum value it has must match ours exactly. Its descriptors are read straight
  from the serialized ``FileDescriptorProto`` bytes in its ``*_pb2.py`` files, without
  importing it (it pins protobuf 3.20.1 and must never touch our environment). ``.ci/run``
  downloads the wheel; locally set ``CTRADER_OPEN_API_WHEEL`` or run ``.ci/run`` once.
- The newest upstream snapshot in ``../shared/reference`` (when present), minus its five
  orphaned ``ProtoOAv1PnLChange*`` messages: equal descriptor for descriptor.
"""

from __future__ import annotations

import ast
import os
import zipfile
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from codegen import load

ROOT = Path(__file__).resolve().parents[2]
WHEEL_NAME = "ctrader_open_api-0.9.2-py3-none-any.whl"
REFERENCE_HEAD = ROOT.parent / "shared" / "reference" / "openapi-proto-messages" / "head"
ORPHANS = {
    "ProtoOAv1PnLChangeEvent",
    "ProtoOAv1PnLChangeSubscribeReq",
    "ProtoOAv1PnLChangeSubscribeRes",
    "ProtoOAv1PnLChangeUnSubscribeReq",
    "ProtoOAv1PnLChangeUnSubscribeRes",
}

# What our schema (upstream head) has beyond the official package's older one.
EXPECTED_EXTRAS = {
    "enum ProtoOAStopOutStrategy",
    "enum value ProtoOAErrorCode.NOT_SUBSCRIBED_TO_PNL",
    "enum value ProtoOAErrorCode.RET_ACCOUNT_DISABLED",
    "enum value ProtoOAErrorCode.RET_NO_SUCH_LOGIN",
    "enum value ProtoOASwapCalculationType.POINTS",
    "field ProtoOAAssetClass.sortingNumber",
    "field ProtoOACtidTraderAccount.brokerTitleShort",
    "field ProtoOAErrorRes.retryAfter",
    "field ProtoOAGetTrendbarsRes.hasMore",
    "field ProtoOALightSymbol.sortingNumber",
    "field ProtoOAReconcileReq.returnProtectionOrders",
    "field ProtoOASymbol.measurementUnits",
    "field ProtoOASymbolCategory.sortingNumber",
    "field ProtoOATradeData.closeTimestamp",
    "field ProtoOATradeData.measurementUnits",
    "field ProtoOATrader.fairStopOut",
    "field ProtoOATrader.stopOutStrategy",
}

# Upstream changed these after the official package was cut. Each keeps its name, number and
# wire encoding (label changes never reach the wire; int32/int64/bool share the varint
# encoding), so both schemas read each other's bytes. Listed so any further drift fails.
EXPECTED_EVOLUTION = {
    "ProtoOADealListReq.fromTimestamp": "label required -> optional",
    "ProtoOADealListReq.toTimestamp": "label required -> optional",
    "ProtoOAOrderListReq.fromTimestamp": "label required -> optional",
    "ProtoOAOrderListReq.toTimestamp": "label required -> optional",
    "ProtoOAGetTrendbarsReq.fromTimestamp": "label required -> optional",
    "ProtoOAGetTrendbarsReq.toTimestamp": "label required -> optional",
    "ProtoOAGetTrendbarsRes.timestamp": "label required -> optional",
    "ProtoOAGetTickDataReq.fromTimestamp": "label required -> optional",
    "ProtoOAGetTickDataReq.toTimestamp": "label required -> optional",
    "ProtoOADealListByPositionIdReq.fromTimestamp": "label required -> optional",
    "ProtoOADealListByPositionIdReq.toTimestamp": "label required -> optional",
    "ProtoOADealListByPositionIdRes.hasMore": "label optional -> required; type int64 -> bool",
    "ProtoOADynamicLeverageTier.leverage": "type int64 -> int32",
    "ProtoOAPositionUnrealizedPnL.netUnrealizedPnL": "type int32 -> int64",
}

FDP = descriptor_pb2.FieldDescriptorProto
_LABELS = {FDP.LABEL_OPTIONAL: "optional", FDP.LABEL_REQUIRED: "required", FDP.LABEL_REPEATED: "repeated"}
_TYPES = {value: name.removeprefix("TYPE_").lower() for name, value in FDP.Type.items()}
_WIRE = {
    **dict.fromkeys(["int32", "int64", "uint32", "uint64", "bool", "enum"], "varint"),
    **dict.fromkeys(["sint32", "sint64"], "zigzag"),
    **dict.fromkeys(["fixed64", "sfixed64", "double"], "i64"),
    **dict.fromkeys(["fixed32", "sfixed32", "float"], "i32"),
    **dict.fromkeys(["string", "bytes", "message", "group"], "len"),
}


def _wire_key(field: descriptor_pb2.FieldDescriptorProto) -> tuple[object, ...]:
    """What both peers must agree on to read each other's bytes."""
    return (
        field.name,
        field.number,
        _WIRE[_TYPES[field.type]],
        field.label == FDP.LABEL_REPEATED,
        field.type_name,
        field.options.packed if field.options.HasField("packed") else None,
        field.default_value if field.HasField("default_value") else None,
    )


def _evolution(theirs: descriptor_pb2.FieldDescriptorProto, ours: descriptor_pb2.FieldDescriptorProto) -> str:
    changes = []
    if theirs.label != ours.label:
        changes.append(f"label {_LABELS[theirs.label]} -> {_LABELS[ours.label]}")
    if theirs.type != ours.type:
        changes.append(f"type {_TYPES[theirs.type]} -> {_TYPES[ours.type]}")
    return "; ".join(changes)


@pytest.fixture(scope="module")
def ours() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    return {f.name: f for f in load.run_protoc(ROOT / "protos").descriptors.file}


def _wheel_path() -> Path | None:
    candidates = [os.environ.get("CTRADER_OPEN_API_WHEEL", ""), str(ROOT / ".cache" / "wheels" / WHEEL_NAME)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _descriptors_from_wheel(wheel: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    result: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not name.endswith("_pb2.py"):
                continue
            tree = ast.parse(archive.read(name).decode("utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "AddSerializedFile"
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, bytes)
                ):
                    fd = descriptor_pb2.FileDescriptorProto.FromString(node.args[0].value)
                    result[fd.name] = fd
    return result


@pytest.fixture(scope="module")
def official() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    wheel = _wheel_path()
    if wheel is None:
        if os.environ.get("CI"):
            pytest.fail(f"{WHEEL_NAME} is missing: .ci/run downloads it into .cache/wheels/")
        pytest.skip(f"{WHEEL_NAME} not downloaded (set CTRADER_OPEN_API_WHEEL or run .ci/run)")
    files = _descriptors_from_wheel(wheel)
    assert set(files) == {
        "OpenApiCommonMessages.proto",
        "OpenApiCommonModelMessages.proto",
        "OpenApiMessages.proto",
        "OpenApiModelMessages.proto",
    }
    return files


def _compare(
    theirs: dict[str, descriptor_pb2.FileDescriptorProto], ours: dict[str, descriptor_pb2.FileDescriptorProto]
) -> tuple[list[str], dict[str, str], set[str]]:
    """Wire mismatches in what both define, wire-compatible evolutions, and what only ours defines."""
    mismatches: list[str] = []
    evolution: dict[str, str] = {}
    extras: set[str] = set()
    for file_name, their_file in theirs.items():
        our_file = ours[file_name]
        assert our_file.package == their_file.package == ""
        our_messages = {m.name: m for m in our_file.message_type}
        their_messages = {m.name: m for m in their_file.message_type}
        for name, their_msg in their_messages.items():
            if name not in our_messages:
                mismatches.append(f"message {name} missing from protos/{file_name}")
                continue
            our_fields = {f.number: f for f in our_messages[name].field}
            for field in their_msg.field:
                ours_f = our_fields.get(field.number)
                if ours_f is None or _wire_key(ours_f) != _wire_key(field):
                    mismatches.append(f"field {name}.{field.name} (#{field.number}) differs")
                elif change := _evolution(field, ours_f):
                    evolution[f"{name}.{field.name}"] = change
            their_numbers = {f.number for f in their_msg.field}
            extras |= {
                f"field {name}.{f.name}" for f in our_messages[name].field if f.number not in their_numbers
            }
        extras |= {f"message {n}" for n in our_messages.keys() - their_messages.keys()}
        our_enums = {e.name: e for e in our_file.enum_type}
        their_enums = {e.name: e for e in their_file.enum_type}
        for name, their_enum in their_enums.items():
            if name not in our_enums:
                mismatches.append(f"enum {name} missing from protos/{file_name}")
                continue
            our_values = {v.name: v.number for v in our_enums[name].value}
            for value in their_enum.value:
                if our_values.get(value.name) != value.number:
                    mismatches.append(f"enum value {name}.{value.name} = {value.number} differs")
            their_names = {v.name for v in their_enum.value}
            extras |= {f"enum value {name}.{v}" for v in our_values if v not in their_names}
        extras |= {f"enum {n}" for n in our_enums.keys() - their_enums.keys()}
    return mismatches, evolution, extras


def test_every_official_message_field_and_enum_value_matches(
    official: dict[str, descriptor_pb2.FileDescriptorProto],
    ours: dict[str, descriptor_pb2.FileDescriptorProto],
) -> None:
    mismatches, evolution, extras = _compare(official, ours)
    assert mismatches == []
    assert evolution == EXPECTED_EVOLUTION
    # What we have beyond the official package, listed so drift is noticed.
    assert extras == EXPECTED_EXTRAS


def test_comparison_catches_a_changed_field(
    official: dict[str, descriptor_pb2.FileDescriptorProto],
    ours: dict[str, descriptor_pb2.FileDescriptorProto],
) -> None:
    """The comparison is not vacuous: a renumbered field is reported."""
    tampered = {
        name: descriptor_pb2.FileDescriptorProto.FromString(fd.SerializeToString())
        for name, fd in ours.items()
    }
    spot = next(m for m in tampered["OpenApiMessages.proto"].message_type if m.name == "ProtoOASpotEvent")
    next(f for f in spot.field if f.name == "bid").type = FDP.TYPE_DOUBLE
    next(f for f in spot.field if f.name == "ask").label = FDP.LABEL_REQUIRED
    mismatches, evolution, _ = _compare(official, tampered)
    assert mismatches == ["field ProtoOASpotEvent.bid (#4) differs"]
    assert evolution == {**EXPECTED_EVOLUTION, "ProtoOASpotEvent.ask": "label optional -> required"}


@pytest.mark.skipif(not REFERENCE_HEAD.is_dir(), reason="../shared/reference is not beside this checkout")
def test_equal_to_upstream_head_without_its_orphans(
    tmp_path: Path, ours: dict[str, descriptor_pb2.FileDescriptorProto]
) -> None:
    # Upstream head does not compile as published: load its text, drop the orphans' blocks by
    # their declarations found through protoc's own error report, then compile the rest.
    for source in REFERENCE_HEAD.glob("*.proto"):
        text = source.read_text(encoding="utf-8")
        if source.name == "OpenApiMessages.proto":
            cut = min(text.index(f"message {name} ") for name in ORPHANS)
            cut = text.rindex("\n", 0, text.rindex("\n", 0, cut)) + 1  # keep nothing of the orphans' comments
            text = text[:cut]
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    upstream = {f.name: f for f in load.run_protoc(tmp_path).descriptors.file}
    assert set(upstream) == set(ours)
    for name, their_file in upstream.items():
        theirs = descriptor_pb2.FileDescriptorProto()
        theirs.CopyFrom(their_file)
        mine = descriptor_pb2.FileDescriptorProto()
        mine.CopyFrom(ours[name])
        for fd in (theirs, mine):
            fd.ClearField("source_code_info")
            fd.ClearField("options")
        assert {m.name for m in theirs.message_type} & ORPHANS == set()
        assert mine == theirs, name
