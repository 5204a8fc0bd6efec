"""Which send_* parameters take a Decimal price or a datetime, and that the lists fit the schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from codegen import load, model, policy
from codegen.__main__ import DEFAULT_OUT, DEFAULT_PROTOS, DEFAULT_TEMPLATES, generate
from codegen.errors import CodegenError

FIXTURES = Path(__file__).parent / "fixtures"
FDP = descriptor_pb2.FieldDescriptorProto


@pytest.fixture(scope="module")
def schema() -> load.Loaded:
    return load.run_protoc(DEFAULT_PROTOS)


def _request_fields(loaded: load.Loaded) -> list[tuple[str, descriptor_pb2.FieldDescriptorProto, str]]:
    """(message, field, comment) for every field of every request message of the schema."""
    found = []
    for fd in loaded.descriptors.file:
        comments = {tuple(loc.path): loc.leading_comments for loc in fd.source_code_info.location}
        for i, msg in enumerate(fd.message_type):
            if not msg.name.endswith("Req"):
                continue
            for j, field in enumerate(msg.field):
                found.append((msg.name, field, comments.get((4, i, 2, j), "")))
    return found


def test_price_fields_are_every_double_of_a_request(schema: load.Loaded) -> None:
    doubles = {f.name for _, f, _ in _request_fields(schema) if f.type == FDP.TYPE_DOUBLE}
    assert (
        doubles
        == model.PRICE_FIELDS
        == {
            "limitPrice",
            "stopPrice",
            "stopLoss",
            "takeProfit",
            "baseSlippagePrice",
        }
    )


def test_millisecond_fields_are_the_request_timestamps_documented_as_milliseconds(
    schema: load.Loaded,
) -> None:
    millis = {
        f.name
        for _, f, comment in _request_fields(schema)
        if f.type == FDP.TYPE_INT64 and "Unix milliseconds" in comment
    }
    assert millis == model.MILLISECOND_FIELDS == {"expirationTimestamp", "fromTimestamp", "toTimestamp"}
    # Every field so named in a request is an int64 documented as milliseconds.
    for message, field, comment in _request_fields(schema):
        if field.name in model.MILLISECOND_FIELDS:
            assert field.type == FDP.TYPE_INT64, (message, field.name)
            assert "milliseconds" in comment, (message, field.name)


def test_committed_coroutines_take_decimal_prices_and_datetimes() -> None:
    requests = (DEFAULT_OUT / "requests.py").read_text(encoding="utf-8")
    assert "        stop_loss: Decimal | float | None = None,\n" in requests
    assert "        limit_price: Decimal | float | None = None,\n" in requests
    assert "        expiration_timestamp: datetime | int | None = None,\n" in requests
    # Required timestamps (cash-flow history) take a datetime too, converted unconditionally.
    assert "        from_timestamp: datetime | int,\n" in requests
    assert 'fromTimestamp=_millis(from_timestamp, "from_timestamp"),' in requests
    assert 'stopLoss=(_price(stop_loss, "stop_loss") if stop_loss is not None else None),' in requests
    # Nothing else changed type: volumes, relative distances and ids stay int.
    assert "        relative_stop_loss: int | None = None,\n" in requests
    assert "        volume: int,\n" in requests


def test_fixture_output_converts_listed_fields(tmp_path: Path) -> None:
    requests = generate(FIXTURES / "basic", DEFAULT_TEMPLATES)["requests.py"]
    assert "to_timestamp: datetime | int | None = None," in requests
    assert "stop_loss: Decimal | float | None = None," in requests
    assert "from ctrader_typed._convert import wire_millis as _millis" in requests
    assert "An aware ``datetime`` is sent as its Unix milliseconds." in requests
    assert "NaiveDatetimeError: A timestamp was given as a ``datetime`` without a time zone." in requests


def test_no_conversion_imports_when_nothing_needs_them(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(FIXTURES / "basic", protos)
    mini = protos / "Mini.proto"
    text = mini.read_text(encoding="utf-8")
    text = text.replace("optional int64 toTimestamp = 6;", "optional int64 untilWhen = 6;")
    text = text.replace("optional double stopLoss = 7;", "optional double lossLevel = 7;")
    mini.write_text(text, encoding="utf-8")
    requests = generate(protos, DEFAULT_TEMPLATES)["requests.py"]
    assert "_convert" not in requests
    assert "Decimal" not in requests
    assert "datetime" not in requests
    assert "loss_level: float | None = None," in requests


def test_a_listed_name_of_the_wrong_type_fails_precisely(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(FIXTURES / "basic", protos)
    mini = protos / "Mini.proto"
    text = mini.read_text(encoding="utf-8")
    mini.write_text(text.replace("optional double stopLoss = 7;", "optional string stopLoss = 7;"), "utf-8")
    with pytest.raises(CodegenError) as caught:
        model.build(load.run_protoc(protos).descriptors, policy.load(protos / policy.FILE_NAME))
    message = str(caught.value)
    assert "Mini.proto: ProtoOANewOrderReq.stopLoss is listed as a price field" in message
    assert "not a single float (str | None)" in message
    assert "PRICE_FIELDS" in message
