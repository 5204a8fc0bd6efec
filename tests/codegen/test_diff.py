"""``python -m codegen diff``: wire-level differences between our schema and an upstream one."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from codegen import diff
from codegen.__main__ import main
from codegen.errors import CodegenError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
OURS = FIXTURES / "diff" / "ours"
THEIRS = FIXTURES / "diff" / "theirs"
REFERENCE = ROOT.parent / "shared" / "reference" / "openapi-proto-messages"


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _report(ours: Path, theirs: Path) -> diff.Report:
    return diff.compare(diff.compile_schema(ours, "our"), diff.compile_schema(theirs, "upstream"))


def test_every_kind_of_change_is_reported() -> None:
    report = _report(OURS, THEIRS)
    assert report.messages == [
        "- ProtoOAOldEvent (Diff.proto)",
        "+ ProtoOAPongReq (Diff.proto, 2 fields)",
        "+ ProtoOAPongRes (Diff.proto, 1 field)",
    ]
    assert report.fields == [
        "~ ProtoOAPingReq.colour #11: default RED -> BLUE (same bytes; an absent field reads differently)",
        "~ ProtoOAPingReq.count #5: renamed count -> amount (same bytes; the Python name changes)",
        "~ ProtoOAPingReq.ids #6: label repeated -> optional (changes the encoding)",
        "~ ProtoOAPingReq.levels #12: packed true -> unset (parsers read both encodings)",
        "+ ProtoOAPingReq.loud #10 optional bool",
        "~ ProtoOAPingReq.moved: number 8 -> 9 (incompatible bytes)",
        "- ProtoOAPingReq.note #7 optional string",
        "~ ProtoOAPingReq.price #4: type uint64 -> double (varint -> 64-bit: incompatible bytes)",
        "~ ProtoOAPingReq.text #2: label required -> optional (same bytes; presence rules change)",
        "~ ProtoOAPingReq.volume #3: type int64 -> int32 (both varint)",
    ]
    assert report.enums == ["- ProtoOAGone (Diff.proto)", "+ ProtoOAShape (Diff.proto): ROUND = 1"]
    assert report.enum_values == [
        "~ ProtoOAColour.BLUE: number 3 -> 4 (incompatible bytes)",
        "~ ProtoOAColour.GREEN = 2: renamed GREEN -> LIME (same bytes)",
        "+ ProtoOAColour.YELLOW = 5",
        "- ProtoOAPayloadType.PROTO_OA_OLD_EVENT = 3002",
        "+ ProtoOAPayloadType.PROTO_OA_PONG_REQ = 3003",
        "+ ProtoOAPayloadType.PROTO_OA_PONG_RES = 3004",
    ]
    assert report.new_requests == ["ProtoOAPongReq"]
    assert report.problems == []
    assert report.changes == 21


def test_a_schema_equals_itself_and_comments_do_not_count(tmp_path: Path) -> None:
    assert _report(OURS, OURS).changes == 0
    text = (OURS / "Diff.proto").read_text(encoding="utf-8")
    (tmp_path / "Diff.proto").write_text(
        text.replace("// Our side", "// Reworded: our side"), encoding="utf-8"
    )
    report = _report(OURS, tmp_path)
    assert report.changes == 0
    assert report.lines("a", "b")[-1] == "No wire-level differences."


def test_the_cli_prints_the_report_and_exits_1_on_differences(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(THEIRS), "--protos", str(OURS)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"codegen diff: {OURS} (ours) -> {THEIRS} (upstream)"
    assert "Fields:" in out
    assert "  ~ ProtoOAPingReq.moved: number 8 -> 9 (incompatible bytes)" in out
    assert out[out.index("New requests (each needs a line in protos/policy.toml):") + 1] == "  ProtoOAPongReq"
    assert out[-1] == "21 wire-level difference(s)."
    assert main(["diff", str(OURS), "--protos", str(OURS)]) == 0


def test_an_upstream_default_naming_a_removed_value_is_compared_and_listed() -> None:
    orphan = FIXTURES / "missing_default"
    before = _hashes(orphan)
    report = _report(OURS, orphan)
    assert _hashes(orphan) == before  # fixed up in a temporary copy only
    assert "+ ProtoOAOrphanEvent (Orphan.proto, 2 fields)" in report.messages
    assert report.problems == [
        "Orphan.proto:13: message ProtoOAOrphanEvent defaults to ProtoOAPayloadType.PROTO_OA_REMOVED_EVENT, "
        "which ProtoOAPayloadType does not define (the file does not compile as published)"
    ]


def test_other_protoc_errors_fail_precisely(capsys: pytest.CaptureFixture[str]) -> None:
    broken = FIXTURES / "diff" / "broken"
    with pytest.raises(CodegenError) as caught:
        diff.compile_schema(broken, "upstream")
    assert (
        str(caught.value)
        == f'protoc rejected the upstream schema in {broken}:\nBroken.proto:5:1: Expected ";".'
    )
    assert main(["diff", str(broken), "--protos", str(OURS)]) == 2
    assert "codegen diff: error: protoc rejected the upstream schema" in capsys.readouterr().err


def test_a_missing_directory_fails_precisely(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: not a directory (upstream schema)" in capsys.readouterr().err
    with pytest.raises(CodegenError, match=r"no \.proto files found"):
        diff.compile_schema(tmp_path, "upstream")


@pytest.mark.skipif(
    not (REFERENCE / "head").is_dir(), reason="../shared/reference is not beside this checkout"
)
def test_upstream_head_differs_from_protos_only_by_its_orphans() -> None:
    """Upstream head does not compile as published; the diff still reads it, and leaves it untouched."""
    head = REFERENCE / "head"
    before = _hashes(head)
    proc = subprocess.run(
        [sys.executable, "-m", "codegen", "diff", str(head)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert _hashes(head) == before
    assert proc.returncode == 1, proc.stderr
    report = _report(ROOT / "protos", head)
    orphans = ["Event", "SubscribeReq", "SubscribeRes", "UnSubscribeReq", "UnSubscribeRes"]
    assert [line.split(" (")[0] for line in report.messages] == [f"+ ProtoOAv1PnLChange{o}" for o in orphans]
    assert (report.fields, report.enums, report.enum_values) == ([], [], [])
    assert len(report.problems) == 5
    assert "5 wire-level difference(s)." in proc.stdout
