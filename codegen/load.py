"""Stage 1: run protoc (from grpcio-tools) over the schema.

Produces the descriptor set *with source info* that the model is built from, plus
protoc's own Python modules and mypy-protobuf's stubs for them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from codegen.errors import CodegenError

_MISSING_ENUM_VALUE = re.compile(
    r'^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): Enum type "(?P<enum>[^"]+)" '
    r'has no value named "(?P<value>[^"]+)"'
)
_MESSAGE_DECL = re.compile(r"^\s*message\s+(\w+)")


@dataclass(frozen=True, slots=True)
class Loaded:
    """What protoc produced for one schema directory."""

    descriptors: descriptor_pb2.FileDescriptorSet
    pb2_sources: dict[str, str]  # file name -> text (``X_pb2.py`` and ``X_pb2.pyi``)


def proto_files(proto_dir: Path) -> list[Path]:
    files = sorted(proto_dir.glob("*.proto"))
    if not files:
        raise CodegenError(f"{proto_dir}: no .proto files found")
    return files


def _enclosing_message(path: Path, line: int) -> str:
    """Name of the message declared nearest above ``line`` (diagnostics only)."""
    lines = path.read_text(encoding="utf-8").splitlines()[:line]
    for text in reversed(lines):
        match = _MESSAGE_DECL.match(text)
        if match:
            return match.group(1)
    return "<top level>"


@dataclass(frozen=True, slots=True)
class MissingEnumValue:
    """protoc's complaint that a default names an enum value that does not exist."""

    path: Path
    line: int  # 1-based
    column: int  # 1-based, where the value's name starts
    enum: str
    value: str
    message: str  # the message declared nearest above the line


def missing_enum_values(proto_dir: Path, stderr: str) -> list[MissingEnumValue]:
    """Every missing-enum-value error in protoc's ``stderr`` for a run over ``proto_dir``."""
    found = []
    for raw in stderr.splitlines():
        match = _MISSING_ENUM_VALUE.match(raw.strip())
        if not match:
            continue
        path = Path(match.group("file"))
        if not path.is_absolute():
            path = proto_dir / path
        line = int(match.group("line"))
        found.append(
            MissingEnumValue(
                path=path,
                line=line,
                column=int(match.group("col")),
                enum=match.group("enum"),
                value=match.group("value"),
                message=_enclosing_message(path, line),
            )
        )
    return found


def _explain_protoc_failure(proto_dir: Path, stderr: str) -> str:
    explanations = []
    for missing in missing_enum_values(proto_dir, stderr):
        file_name = missing.path.name
        explanations.append(
            f"{file_name}:{missing.line}: message {missing.message} names "
            f"{missing.enum}.{missing.value} as a default, but enum "
            f"{missing.enum} has no such value. Fix: add {missing.value} to "
            f"{missing.enum}, or delete message {missing.message} from {file_name} if the "
            "server no longer speaks it (upstream's orphaned ProtoOAv1PnLChange* messages "
            "fail exactly like this)."
        )
    header = f"protoc rejected the schema in {proto_dir}:"
    body = "\n".join(explanations) if explanations else stderr.strip()
    return f"{header}\n{body}"


def _protoc_plugin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        raise CodegenError(f"{name} not found: install the codegen extra (pip install -e '.[dev]')")
    return found


def run_protoc(proto_dir: Path) -> Loaded:
    proto_dir = proto_dir.resolve()
    files = proto_files(proto_dir)
    with tempfile.TemporaryDirectory(prefix="ctrader-codegen-") as tmp:
        out = Path(tmp)
        descriptor_path = out / "schema.pb"
        args = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            "--include_source_info",
            f"--descriptor_set_out={descriptor_path}",
            f"--python_out={out}",
            f"--plugin=protoc-gen-mypy={_protoc_plugin('protoc-gen-mypy')}",
            f"--mypy_out={out}",
            *(f.name for f in files),
        ]
        proc = subprocess.run(args, capture_output=True, text=True, check=False, cwd=proto_dir)
        if proc.returncode != 0:
            raise CodegenError(_explain_protoc_failure(proto_dir, proc.stderr))
        descriptors = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
        sources = {
            path.name: path.read_text(encoding="utf-8")
            for path in sorted(out.iterdir())
            if path.name.endswith(("_pb2.py", "_pb2.pyi"))
        }
    return Loaded(descriptors=descriptors, pb2_sources=sources)


def compile_descriptors(proto_dir: Path) -> tuple[descriptor_pb2.FileDescriptorSet | None, str]:
    """Compile ``proto_dir`` to a descriptor set (no source info, no Python output).

    Returns the set, or ``None`` and protoc's error output when it rejects the schema.
    """
    proto_dir = proto_dir.resolve()
    files = proto_files(proto_dir)
    with tempfile.TemporaryDirectory(prefix="ctrader-codegen-") as tmp:
        descriptor_path = Path(tmp) / "schema.pb"
        args = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--descriptor_set_out={descriptor_path}",
            *(f.name for f in files),
        ]
        proc = subprocess.run(args, capture_output=True, text=True, check=False, cwd=proto_dir)
        if proc.returncode != 0:
            return None, proc.stderr
        return descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes()), ""
