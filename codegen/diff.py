"""``python -m codegen diff UPSTREAM_DIR``: what an upstream schema release changed, at wire level.

Compares the schema in ``protos/`` (ours) with the ``.proto`` files of an upstream release and
lists the messages, fields and enum values that upstream added (``+``), removed (``-``) or
changed (``~``). Fields are matched by number and compared by name, type, label, default and
packing; enum values are matched by name and compared by number. Comments and file options are
not compared: our files are written in our own words.

Upstream has published schemas that protoc rejects: a default naming an enum value that was
removed (the ``ProtoOAv1PnLChange*`` messages of 2025). Such a default is dropped so the rest
can be compared, and the message is listed under "upstream problems". Any other protoc error
fails with protoc's own message.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

from codegen import load
from codegen.errors import CodegenError

FDP = descriptor_pb2.FieldDescriptorProto
_LABELS = {FDP.LABEL_OPTIONAL: "optional", FDP.LABEL_REQUIRED: "required", FDP.LABEL_REPEATED: "repeated"}
_SCALARS = {value: name.removeprefix("TYPE_").lower() for name, value in FDP.Type.items()}
_WIRE = {
    **dict.fromkeys(["int32", "int64", "uint32", "uint64", "bool", "enum"], "varint"),
    **dict.fromkeys(["sint32", "sint64"], "zigzag varint"),
    **dict.fromkeys(["fixed64", "sfixed64", "double"], "64-bit"),
    **dict.fromkeys(["fixed32", "sfixed32", "float"], "32-bit"),
    **dict.fromkeys(["string", "bytes", "message", "group"], "length-delimited"),
}


@dataclass(frozen=True, slots=True)
class Schema:
    """One compiled schema, flattened for comparison."""

    messages: dict[str, tuple[str, descriptor_pb2.DescriptorProto]]  # name -> (file, message)
    enums: dict[str, tuple[str, descriptor_pb2.EnumDescriptorProto]]  # name -> (file, enum)
    problems: tuple[str, ...] = ()  # what had to be dropped to compile it


@dataclass(slots=True)
class Report:
    """The differences, grouped; each entry is one printable line."""

    messages: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    enums: list[str] = field(default_factory=list)
    enum_values: list[str] = field(default_factory=list)
    new_requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.messages) + len(self.fields) + len(self.enums) + len(self.enum_values)

    def lines(self, ours: str, theirs: str) -> list[str]:
        out = [f"codegen diff: {ours} (ours) -> {theirs} (upstream)"]
        for title, entries in (
            ("Messages", self.messages),
            ("Fields", self.fields),
            ("Enums", self.enums),
            ("Enum values", self.enum_values),
        ):
            if entries:
                out += ["", f"{title}:", *(f"  {entry}" for entry in entries)]
        if self.new_requests:
            out += [
                "",
                "New requests (each needs a line in protos/policy.toml):",
                *(f"  {name}" for name in self.new_requests),
            ]
        if self.problems:
            out += [
                "",
                "Upstream problems (fixed up only to compare; do not port them as they are):",
                *(f"  {problem}" for problem in self.problems),
            ]
        if self.changes:
            out += ["", f"{self.changes} wire-level difference(s)."]
        else:
            out += ["", "No wire-level differences."]
        return out


def _flatten(descriptors: descriptor_pb2.FileDescriptorSet, problems: Iterable[str] = ()) -> Schema:
    messages: dict[str, tuple[str, descriptor_pb2.DescriptorProto]] = {}
    enums: dict[str, tuple[str, descriptor_pb2.EnumDescriptorProto]] = {}
    for fd in descriptors.file:
        prefix = f"{fd.package}." if fd.package else ""
        for message in fd.message_type:
            messages[prefix + message.name] = (fd.name, message)
        for enum in fd.enum_type:
            enums[prefix + enum.name] = (fd.name, enum)
    return Schema(messages=messages, enums=enums, problems=tuple(problems))


def _drop_default(copy: Path, file_name: str, line: int, value: str) -> bool:
    """Remove the ``[default = value]`` option on ``line`` of the copied file; False if it is not there alone.

    Only ever writes inside ``copy``, the temporary copy of the schema: never the caller's files.
    """
    path = copy / Path(file_name).name
    if path.parent != copy or not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not 0 < line <= len(lines):
        return False
    option = re.compile(r"\[\s*default\s*=\s*" + re.escape(value) + r"\s*\]")
    fixed, count = option.subn("", lines[line - 1], count=1)
    if count != 1:
        return False
    lines[line - 1] = fixed
    path.write_text("".join(lines), encoding="utf-8")
    return True


def compile_schema(proto_dir: Path, label: str) -> Schema:
    """Compile a schema directory; tolerate defaults naming removed enum values (see the module doc)."""
    if not proto_dir.is_dir():
        raise CodegenError(f"{proto_dir}: not a directory ({label} schema)")
    descriptors, stderr = load.compile_descriptors(proto_dir)
    if descriptors is not None:
        return _flatten(descriptors)
    # Fix up a temporary copy, never the files themselves.
    with tempfile.TemporaryDirectory(prefix="ctrader-codegen-diff-") as tmp:
        copy = Path(tmp).resolve()
        for path in load.proto_files(proto_dir):
            shutil.copyfile(path, copy / path.name)
        problems: list[str] = []
        descriptors, stderr = load.compile_descriptors(copy)
        for _ in range(3):  # protoc reports every such default at once; a retry is a safety net
            if descriptors is not None:
                break
            missing = load.missing_enum_values(copy, stderr)
            if not missing or not all(_drop_default(copy, m.path.name, m.line, m.value) for m in missing):
                break
            problems += [
                f"{m.path.name}:{m.line}: message {m.message} defaults to {m.enum}.{m.value}, "
                f"which {m.enum} does not define (the file does not compile as published)"
                for m in missing
            ]
            descriptors, stderr = load.compile_descriptors(copy)
        if descriptors is not None:
            return _flatten(descriptors, problems)
        raise CodegenError(
            f"protoc rejected the {label} schema in {proto_dir}:\n{_relative(stderr, copy).strip()}"
        )


def _relative(stderr: str, directory: Path) -> str:
    return stderr.replace(f"{directory}/", "")


def _type(f: descriptor_pb2.FieldDescriptorProto) -> str:
    if f.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
        return f.type_name.lstrip(".")
    return _SCALARS[f.type]


def _wire(f: descriptor_pb2.FieldDescriptorProto) -> str:
    return _WIRE[_SCALARS[f.type]]


def _describe(f: descriptor_pb2.FieldDescriptorProto) -> str:
    text = f"{_LABELS[f.label]} {_type(f)}"
    if f.HasField("default_value"):
        text += f" [default = {f.default_value}]"
    if f.options.HasField("packed"):
        text += f" [packed = {str(f.options.packed).lower()}]"
    return text


def _or_unset(value: str | None) -> str:
    return "unset" if value is None else value


def _field_changes(
    ours: descriptor_pb2.FieldDescriptorProto, theirs: descriptor_pb2.FieldDescriptorProto
) -> list[str]:
    changes = []
    if ours.name != theirs.name:
        changes.append(f"renamed {ours.name} -> {theirs.name} (same bytes; the Python name changes)")
    if _type(ours) != _type(theirs):
        same = _wire(ours) == _wire(theirs)
        encoding = f"both {_wire(ours)}" if same else f"{_wire(ours)} -> {_wire(theirs)}: incompatible bytes"
        changes.append(f"type {_type(ours)} -> {_type(theirs)} ({encoding})")
    if ours.label != theirs.label:
        repeated = FDP.LABEL_REPEATED in (ours.label, theirs.label)
        effect = "changes the encoding" if repeated else "same bytes; presence rules change"
        changes.append(f"label {_LABELS[ours.label]} -> {_LABELS[theirs.label]} ({effect})")
    our_default = ours.default_value if ours.HasField("default_value") else None
    their_default = theirs.default_value if theirs.HasField("default_value") else None
    if our_default != their_default:
        changes.append(
            f"default {_or_unset(our_default)} -> {_or_unset(their_default)} (same bytes; an absent field reads differently)"
        )
    our_packed = str(ours.options.packed).lower() if ours.options.HasField("packed") else None
    their_packed = str(theirs.options.packed).lower() if theirs.options.HasField("packed") else None
    if our_packed != their_packed:
        changes.append(
            f"packed {_or_unset(our_packed)} -> {_or_unset(their_packed)} (parsers read both encodings)"
        )
    return changes


def _compare_fields(
    name: str, ours: descriptor_pb2.DescriptorProto, theirs: descriptor_pb2.DescriptorProto
) -> list[str]:
    lines: list[str] = []
    our_fields = {f.number: f for f in ours.field}
    their_fields = {f.number: f for f in theirs.field}
    removed = {n: f for n, f in our_fields.items() if n not in their_fields}
    added = {n: f for n, f in their_fields.items() if n not in our_fields}
    # A field that kept its name but moved to another number.
    for number, gone in sorted(removed.items()):
        moved = next((f for f in added.values() if f.name == gone.name), None)
        if moved is not None:
            lines.append(f"~ {name}.{gone.name}: number {number} -> {moved.number} (incompatible bytes)")
            del added[moved.number]
        else:
            lines.append(f"- {name}.{gone.name} #{number} {_describe(gone)}")
    for number, new in sorted(added.items()):
        lines.append(f"+ {name}.{new.name} #{number} {_describe(new)}")
    for number in sorted(our_fields.keys() & their_fields.keys()):
        changes = _field_changes(our_fields[number], their_fields[number])
        if changes:
            lines.append(f"~ {name}.{our_fields[number].name} #{number}: " + "; ".join(changes))
    return sorted(lines, key=lambda line: line[2:])


def _compare_enum(
    name: str, ours: descriptor_pb2.EnumDescriptorProto, theirs: descriptor_pb2.EnumDescriptorProto
) -> list[str]:
    lines: list[str] = []
    our_values = {v.name: v.number for v in ours.value}
    their_values = {v.name: v.number for v in theirs.value}
    removed = {n: v for n, v in our_values.items() if n not in their_values}
    added = {n: v for n, v in their_values.items() if n not in our_values}
    for old_name, number in sorted(removed.items()):
        renamed = next((n for n, v in added.items() if v == number), None)
        if renamed is not None:
            lines.append(f"~ {name}.{old_name} = {number}: renamed {old_name} -> {renamed} (same bytes)")
            del added[renamed]
        else:
            lines.append(f"- {name}.{old_name} = {number}")
    for new_name, number in sorted(added.items()):
        lines.append(f"+ {name}.{new_name} = {number}")
    for value_name in sorted(our_values.keys() & their_values.keys()):
        if our_values[value_name] != their_values[value_name]:
            lines.append(
                f"~ {name}.{value_name}: number {our_values[value_name]} -> {their_values[value_name]} "
                "(incompatible bytes)"
            )
    return sorted(lines, key=lambda line: line[2:])


def compare(ours: Schema, theirs: Schema) -> Report:
    """Everything upstream (``theirs``) has added, removed or changed compared with ``ours``."""
    report = Report(problems=list(theirs.problems))
    for name in sorted(ours.messages.keys() | theirs.messages.keys()):
        mine, upstream = ours.messages.get(name), theirs.messages.get(name)
        if upstream is None:
            assert mine is not None
            report.messages.append(f"- {name} ({mine[0]})")
        elif mine is None:
            count = len(upstream[1].field)
            report.messages.append(f"+ {name} ({upstream[0]}, {count} field{'s' if count != 1 else ''})")
            if name.endswith("Req"):
                report.new_requests.append(name)
        else:
            if mine[0] != upstream[0]:
                report.messages.append(f"~ {name}: moved from {mine[0]} to {upstream[0]} (same bytes)")
            report.fields += _compare_fields(name, mine[1], upstream[1])
    for name in sorted(ours.enums.keys() | theirs.enums.keys()):
        mine_enum, upstream_enum = ours.enums.get(name), theirs.enums.get(name)
        if upstream_enum is None:
            assert mine_enum is not None
            report.enums.append(f"- {name} ({mine_enum[0]})")
        elif mine_enum is None:
            values = ", ".join(f"{v.name} = {v.number}" for v in upstream_enum[1].value)
            report.enums.append(f"+ {name} ({upstream_enum[0]}): {values}")
        else:
            if mine_enum[0] != upstream_enum[0]:
                report.enums.append(f"~ {name}: moved from {mine_enum[0]} to {upstream_enum[0]} (same bytes)")
            report.enum_values += _compare_enum(name, mine_enum[1], upstream_enum[1])
    return report


def main(argv: list[str], default_protos: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codegen diff",
        description="List what an upstream schema release added, removed or changed, at wire level.",
    )
    parser.add_argument("upstream", type=Path, help="directory with upstream's .proto files")
    parser.add_argument(
        "--protos", type=Path, default=default_protos, help="our schema directory (default: protos/)"
    )
    args = parser.parse_args(argv)
    try:
        ours = compile_schema(args.protos, "our")
        theirs = compile_schema(args.upstream, "upstream")
    except CodegenError as exc:
        print(f"codegen diff: error: {exc}", file=sys.stderr)
        return 2
    report = compare(ours, theirs)
    print("\n".join(report.lines(str(args.protos), str(args.upstream))))
    return 1 if report.changes else 0
