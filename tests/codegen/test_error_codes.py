"""Error-code enums are generated string-valued: the wire carries a code's name, never its number."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen import load, model, policy
from codegen.__main__ import DEFAULT_TEMPLATES, generate
from codegen.errors import CodegenError

FIXTURES = Path(__file__).parent / "fixtures"


def test_error_code_enum_is_a_str_enum_of_names_with_numbers() -> None:
    files = generate(FIXTURES / "basic", DEFAULT_TEMPLATES)
    enums = files["enums.py"]
    assert "class ErrorCode(enum.StrEnum):" in enums
    assert '    NOT_ENOUGH_MONEY = "NOT_ENOUGH_MONEY"\n    """The account cannot pay for it."""\n' in enums
    assert (
        '_ErrorCode_NUMBERS: dict[str, int] = {\n    "NOT_ENOUGH_MONEY": 1,\n    "TOO_LATE": 7,\n}' in enums
    )
    assert "class TradeSide(enum.IntEnum):" in enums
    # Nothing decodes an error-code enum from a number.
    assert "_ErrorCode_BY_VALUE" not in files["messages.py"]
    assert "_TradeSide_BY_VALUE" in files["messages.py"]
    namespace: dict[str, object] = {}
    exec(compile(enums, "enums.py", "exec"), namespace)  # noqa: S102 - our own generated code
    error_code = namespace["ErrorCode"]
    member = error_code.TOO_LATE  # type: ignore[attr-defined]
    assert member == "TOO_LATE"
    assert member.number == 7


def test_a_field_typed_with_an_error_code_enum_fails_precisely(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(FIXTURES / "basic", protos)
    mini = protos / "Mini.proto"
    text = mini.read_text(encoding="utf-8")
    mini.write_text(
        text.replace(
            "optional bytes blob = 4;", "optional bytes blob = 4;\n    optional ProtoOAErrorCode why = 5;"
        ),
        encoding="utf-8",
    )
    with pytest.raises(CodegenError) as caught:
        model.build(load.run_protoc(protos).descriptors, policy.load(protos / policy.FILE_NAME))
    message = str(caught.value)
    assert (
        "Mini.proto: field ProtoOATickEvent.why has the type of an error-code enum (ProtoOAErrorCode)"
        in message
    )
    assert "declare the field as string" in message
