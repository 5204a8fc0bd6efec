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


def _explain_protoc_failure(proto_dir: Path, stderr: str) -> str:
    explanations = []
    for raw in stderr.splitlines():
        match = _MISSING_ENUM_VALUE.match(raw.strip())
        if not match:
            continue
        path = Path(match.group("file"))
        if not path.is_absolute():
            path = proto_dir / path
        file_name = path.name
        message = _enclosing_message(path, int(match.group("line")))
        explanations.append(
            f"{file_name}:{match.group('line')}: message {message} names "
            f"{match.group('enum')}.{match.group('value')} as a default, but enum "
            f"{match.group('enum')} has no such value. Fix: add {match.group('value')} to "
            f"{match.group('enum')}, or delete message {message} from {file_name} if the "
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
