"""The decode benchmark's compiled side: ``_compiled.c`` built with this Python's C compiler.

``compiled_builder(wrapper)`` returns a function that wraps a repeated field's protobuf
messages as ``wrapper`` instances in C - every field, with the generated ``_from_proto``'s
presence tests and conversions - or ``None`` with the reason when the module cannot be built
(no C compiler or no Python headers: the row is then left out, and says why). The module is
built once per source and interpreter into ``bench-results/compiled/`` and is never part of
the package.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import shlex
import subprocess
import sys
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from benchmarks._harness import RESULTS_DIR
from ctrader_typed._generated import messages

_SOURCE = Path(__file__).with_name("_compiled.c")
_NAME = "_ctrader_bench_compiled"
_REQUIRED, _VALUE_FIRST = 0, 1
_NONE, _TEXT, _TABLE = 0, 1, 2

_module: types.ModuleType | None = None
_why_not: str | None = None


def _build() -> types.ModuleType:
    """Compile (once per source and interpreter) and import the module; raises ``OSError`` or
    ``RuntimeError`` when that cannot be done here."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    ldshared = sysconfig.get_config_var("LDSHARED")
    if not suffix or not ldshared:
        raise RuntimeError("this Python does not say how to link an extension module (no LDSHARED)")
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        raise RuntimeError(f"no Python headers at {include}")
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + sys.version.encode()).hexdigest()[:16]
    out_dir = RESULTS_DIR / "compiled" / key
    target = out_dir / f"{_NAME}{suffix}"
    if not target.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        cflags = shlex.split(sysconfig.get_config_var("CCSHARED") or "")
        command = [*shlex.split(ldshared), *cflags, "-O2", f"-I{include}", str(_SOURCE), "-o", str(target)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the C compiler failed: {done.stderr.strip()[-400:]}")
    spec = importlib.util.spec_from_file_location(
        _NAME, target, loader=importlib.machinery.ExtensionFileLoader(_NAME, str(target))
    )
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {target}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load() -> types.ModuleType | None:
    global _module, _why_not
    if _module is None and _why_not is None:
        try:
            _module = _build()
        except (OSError, RuntimeError, ImportError) as exc:
            _why_not = str(exc) or type(exc).__name__
    return _module


def why_not() -> str | None:
    """Why the compiled side is missing (``None`` once it was built)."""
    _load()
    return _why_not


def _slot(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise LookupError(f"{cls.__name__} has no slot {name!r}")


def _enum_table(annotation: str) -> dict[int, Any]:
    enum = getattr(messages, annotation.split("|")[0].strip())
    return {member.value: member for member in enum}


def plan_for(wrapper: type[Any]) -> tuple[tuple[Any, ...], ...]:
    """The builder's plan for ``wrapper``: one entry per field, in the order of its slots.

    Raises:
        ValueError: ``wrapper`` has a field the compiled side does not build (a sub-message or
            a repeated field).
    """
    proto_fields = wrapper.PROTO.DESCRIPTOR.fields
    names = list(wrapper.__dataclass_fields__)
    entries = []
    for name, field in zip(names, proto_fields, strict=True):
        if field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE:
            raise ValueError(f"{wrapper.__name__}.{name}: only singular scalar and enum fields are built")
        mode = _REQUIRED if field.is_required else _VALUE_FIRST
        conversion: int = _NONE
        table: object = None
        if field.type == FieldDescriptor.TYPE_ENUM:
            conversion, table = _TABLE, _enum_table(wrapper.__dataclass_fields__[name].type)
        elif field.type == FieldDescriptor.TYPE_STRING:
            conversion, table = _TEXT, messages._text
        default = field.default_value
        # A falsy default is tested by truth (None here), any other by equality.
        absent = default if default else None
        entries.append((_slot(wrapper, name), field.name, mode, conversion, absent, table))
    return tuple(entries)


def compiled_builder(wrapper: type[Any]) -> Callable[[Any], tuple[Any, ...]] | None:
    """``items -> tuple of wrapper``, built in C; ``None`` when the module cannot be built here."""
    module = _load()
    if module is None:
        return None
    builder = module.Builder(wrapper, plan_for(wrapper))
    many: Callable[[Any], tuple[Any, ...]] = builder.many
    return many
