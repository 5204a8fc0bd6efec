"""Stage 2: a typed, fully precomputed model of the schema.

Every Python name, annotation, expression and docstring the templates print is
computed here, so the templates only lay text out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal

from google.protobuf import descriptor_pb2

from codegen import naming
from codegen.errors import CodegenError
from codegen.policy import Policy

FDP = descriptor_pb2.FieldDescriptorProto

# Field names whose values are credentials: kept out of reprs.
SECRET_FIELDS = frozenset({"clientSecret", "accessToken", "refreshToken"})

# Request fields that carry a price as a plain double (every double field of a request in the
# schema; tests/codegen/test_request_params.py keeps the list complete). Their send_* parameters
# take a Decimal (what SymbolUnits returns) or an int as well, converted by _convert.wire_price.
PRICE_FIELDS = frozenset({"limitPrice", "stopPrice", "stopLoss", "takeProfit", "baseSlippagePrice"})

# Request fields that carry a moment as Unix milliseconds (int64; their comments say so). Their
# send_* parameters take an aware datetime as well, converted by _convert.wire_millis.
MILLISECOND_FIELDS = frozenset({"expirationTimestamp", "fromTimestamp", "toTimestamp"})

# What an event is about, for the ``account_id`` / ``symbol_id`` filters of ``AsyncClient.events``
# and ``on``: each message with a payload type derives from one of the bases of
# ``ctrader_typed._scopes``, decided by these fields (``ctrader_typed._filters`` reads the same ones).
ACCOUNT_FIELDS = frozenset({"ctidTraderAccountId", "ctidTraderAccountIds"})
SYMBOL_FIELDS = frozenset({"symbolId"})
# Messages whose symbol is in a sub-message (an execution's order, position or deal), by the
# fields that hold it; the client's filter (``_filters.symbol_ids_of``) has a case for each.
NESTED_SYMBOL: dict[str, frozenset[str]] = {"ProtoOAExecutionEvent": frozenset({"order", "position", "deal"})}

# What each kind of friendlier parameter accepts and the helper that converts it for the wire.
_PARAM_KINDS: dict[ParamKind, tuple[str, str, str]] = {
    # kind: (wire type, parameter type, conversion function in the generated module)
    "price": ("float", "Decimal | float", "_price"),
    "millis": ("int", "datetime | int", "_millis"),
}

_SCALARS: dict[int, str] = {
    FDP.TYPE_DOUBLE: "float",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int",
    FDP.TYPE_UINT64: "int",
    FDP.TYPE_INT32: "int",
    FDP.TYPE_FIXED64: "int",
    FDP.TYPE_FIXED32: "int",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "str",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "int",
    FDP.TYPE_SFIXED32: "int",
    FDP.TYPE_SFIXED64: "int",
    FDP.TYPE_SINT32: "int",
    FDP.TYPE_SINT64: "int",
}

Label = Literal["required", "optional", "repeated"]
Scope = Literal["AccountScoped", "SymbolScoped", "Unscoped"]
Kind = Literal["scalar", "enum", "message"]
ParamKind = Literal["price", "millis"]


def docstring_text(text: str) -> str:
    """Make comment text safe inside a triple-quoted docstring."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()


# A schema type name, optionally with a member (``ProtoOATrader.isLimitedRisk``), or a lower-case
# word that may be a field name (``relativeStopLoss``).
_SCHEMA_WORD = re.compile(r"\b(?:(Proto[A-Za-z0-9_]*)(?:\.([A-Za-z_]\w*))?|([a-z][A-Za-z0-9_]*))\b")


@dataclass(frozen=True, slots=True)
class PythonNames:
    """Rewrites schema names in comment text into the Python names users see.

    ``ProtoOAExecutionEvent`` becomes ``ExecutionEvent``, ``ProtoOATrader.isLimitedRisk``
    becomes ``Trader.is_limited_risk`` and a field name such as ``relativeStopLoss`` becomes
    ``relative_stop_loss``; enum values keep their names. Names the schema does not define are
    left as they are. Each rewritten name is set as code.
    """

    types: dict[str, str]  # schema message/enum name -> Python class name
    members: dict[str, dict[str, str]]  # schema message/enum name -> {schema member: Python member}
    fields: dict[str, str]  # every camelCase field name of the schema -> its snake_case name

    @classmethod
    def of(cls, descriptors: descriptor_pb2.FileDescriptorSet, public: dict[str, str]) -> PythonNames:
        members: dict[str, dict[str, str]] = {}
        fields: dict[str, str] = {}
        for fd in descriptors.file:
            for enum in fd.enum_type:
                members[enum.name] = {v.name: v.name for v in enum.value}
            for msg in fd.message_type:
                members[msg.name] = {f.name: naming.snake_case(f.name) for f in msg.field}
                fields.update(
                    (f.name, naming.snake_case(f.name)) for f in msg.field if f.name != f.name.lower()
                )
        return cls(types=public, members=members, fields=fields)

    def _replace(self, match: re.Match[str]) -> str:
        type_name, member, word = match.group(1), match.group(2), match.group(3)
        if word is not None:
            snake = self.fields.get(word)
            return f"``{snake}``" if snake is not None else word
        python = self.types.get(type_name)
        if python is None:
            return match.group(0)
        if member is None:
            return f"``{python}``"
        python_member = self.members.get(type_name, {}).get(member)
        if python_member is None:
            return f"``{python}``.{member}"
        return f"``{python}.{python_member}``"

    def rewrite(self, text: str) -> str:
        return _SCHEMA_WORD.sub(self._replace, text)


def _comment(
    locations: dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location],
    path: tuple[int, ...],
    names: PythonNames,
) -> str:
    location = locations.get(path)
    if location is None:
        return ""
    parts = [location.leading_comments, location.trailing_comments]
    lines = [line.strip() for part in parts for line in part.strip().splitlines()]
    return docstring_text(names.rewrite("\n".join(line for line in lines if line)))


@dataclass(frozen=True, slots=True)
class EnumValue:
    name: str
    number: int
    doc: str


@dataclass(frozen=True, slots=True)
class Enum:
    proto_name: str
    py_name: str
    file: str
    doc: str
    values: tuple[EnumValue, ...]

    @property
    def by_name(self) -> bool:
        """An error-code enum: its values travel as their names in string fields (``errorCode``),
        never as numbers, so it is generated as a ``StrEnum`` whose values are the names."""
        return self.proto_name.endswith("ErrorCode")


@dataclass(frozen=True, slots=True)
class Field:
    proto_name: str
    py_name: str
    number: int
    label: Label
    kind: Kind
    annotation: str  # dataclass annotation
    param_annotation: str  # annotation as a send_* parameter
    default: str | None  # dataclass default expression; None = no default
    from_proto: str  # expression over the protobuf message ``m``
    to_proto: str  # expression over the wrapper ``self`` producing a constructor argument
    param_to_proto: str  # the same over a send_* parameter of the same name
    default_doc: str  # the proto2 default as Python text, or ""
    doc: str
    secret: bool
    deprecated: bool
    param_kind: ParamKind | None = None  # a send_* parameter that takes more than the wire type
    element: str = ""  # the Python type of the value (of each item, for a repeated field)

    @property
    def lazy(self) -> bool:
        """Repeated sub-messages of a parsed message are wrapped on first access."""
        return self.label == "repeated" and self.kind == "message"


@dataclass(frozen=True, slots=True)
class Message:
    proto_name: str
    py_name: str
    file: str
    proto_ref: str  # e.g. ``_OpenApiMessages_pb2.ProtoOASpotEvent``
    doc: str
    fields: tuple[Field, ...]
    payload_type: int | None
    scope: Scope | None = None  # the filter base of a message with a payload type (``_scopes``)

    @property
    def lazy_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.lazy)

    @property
    def lite(self) -> bool:
        """Whether the generated module has a ``_<Name>_lite_builder`` (``LITE_EVENTS``)."""
        return self.proto_name in LITE_EVENTS and self.payload_type is not None and bool(self.lite_skipped)

    @property
    def lite_skipped(self) -> tuple[Field, ...]:
        """The repeated sub-message fields: the lite variant reads them as bytes (``_lite``), and
        one present turns the client's lite route off."""
        return tuple(f for f in self.fields if f.label == "repeated" and f.kind == "message")

    @property
    def lite_refused(self) -> tuple[Field, ...]:
        """The fields the lite builder refuses: ``lite_skipped`` and the message's ``USUALLY_ABSENT``
        ones (the lite variant gathers them in one oneof, so one call tells whether any is there)."""
        return tuple(
            f
            for f in self.fields
            if f in self.lite_skipped or f"{self.proto_name}.{f.proto_name}" in USUALLY_ABSENT
        )

    @property
    def lite_refused_text(self) -> str:
        """``a`` or ``b``: the fields of ``lite_refused``, for docstrings."""
        return " or ".join(f"``{f.proto_name}``" for f in self.lite_refused)


@dataclass(frozen=True, slots=True)
class Parameter:
    field: Field
    keyword_only: bool
    default: str | None


@dataclass(frozen=True, slots=True)
class Request:
    message: Message
    response: Message
    method: str
    parameters: tuple[Parameter, ...]
    policy: Policy

    @property
    def restore_text(self) -> str:
        """What the policy's ``restore`` means, in words for REQUESTS.md ("" when nothing)."""
        kind = (self.policy.subscription or "").replace("_", " ")
        return {
            "application_auth": "application authorised again",
            "account_auth": "account authorised again",
            "account_logout": "account forgotten",
            "subscribe": f"{kind} subscription made again",
            "unsubscribe": f"{kind} subscription dropped",
            None: "",
        }[self.policy.restore]

    @property
    def positional(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if not p.keyword_only)

    @property
    def keyword(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.keyword_only)


@dataclass(frozen=True, slots=True)
class File:
    name: str  # ``OpenApiMessages.proto``
    module: str  # ``OpenApiMessages_pb2``
    alias: str  # ``_OpenApiMessages_pb2``


@dataclass(frozen=True, slots=True)
class Model:
    files: tuple[File, ...]
    enums: tuple[Enum, ...]
    messages: tuple[Message, ...]
    requests: tuple[Request, ...]

    @property
    def listed(self) -> frozenset[str]:
        """Wrappers that are the items of a repeated field: each gets a ``_X_many`` list builder."""
        return frozenset(f.element for m in self.messages for f in m.fields if f.lazy)

    @property
    def uses_prices(self) -> bool:
        """Some ``send_*`` parameter takes a ``Decimal`` price (the module imports the helper)."""
        return any(p.field.param_kind == "price" for r in self.requests for p in r.parameters)

    @property
    def uses_millis(self) -> bool:
        """Some ``send_*`` parameter takes a ``datetime`` (the module imports the helper)."""
        return any(p.field.param_kind == "millis" for r in self.requests for p in r.parameters)


def _module_of(file_name: str) -> str:
    return file_name.removesuffix(".proto").replace("-", "_").replace(".", "_") + "_pb2"


def _default_literal(field: descriptor_pb2.FieldDescriptorProto, enum_py: str | None) -> str:
    if not field.HasField("default_value"):
        return ""
    value = field.default_value
    if field.type == FDP.TYPE_ENUM:
        return f"{enum_py}.{value}"
    if field.type == FDP.TYPE_BOOL:
        return "True" if value == "true" else "False"
    if field.type == FDP.TYPE_STRING:
        return repr(value)
    return value


def build(descriptors: descriptor_pb2.FileDescriptorSet, policies: Mapping[str, Policy]) -> Model:
    """The model of the schema in ``descriptors``, its requests governed by ``policies``.

    Raises:
        CodegenError: The schema cannot be generated, or the policy table does not fit it.
    """
    files: list[File] = []
    enum_files: dict[str, str] = {}
    message_files: dict[str, str] = {}
    all_names: list[str] = []
    for fd in descriptors.file:
        if fd.package:
            raise CodegenError(f"{fd.name}: a package ({fd.package}) is not supported; the schema has none")
        module = _module_of(fd.name)
        files.append(File(name=fd.name, module=module, alias="_" + module))
        for enum in fd.enum_type:
            enum_files[enum.name] = fd.name
            all_names.append(enum.name)
        for msg in fd.message_type:
            if msg.nested_type or msg.enum_type:
                raise CodegenError(
                    f"{fd.name}: message {msg.name} nests types; the generator expects a flat schema"
                )
            message_files[msg.name] = fd.name
            all_names.append(msg.name)
    try:
        public = naming.public_names(all_names)
    except ValueError as exc:
        raise CodegenError(str(exc)) from exc
    alias_of = {f.name: f.alias for f in files}
    names = PythonNames.of(descriptors, public)

    enum_refs = {name: f"{alias_of[file]}.{name}" for name, file in enum_files.items()}
    enums: list[Enum] = []
    enum_numbers: dict[str, dict[str, int]] = {}
    for fd in descriptors.file:
        locations = {tuple(loc.path): loc for loc in fd.source_code_info.location}
        for i, enum in enumerate(fd.enum_type):
            values = tuple(
                EnumValue(name=v.name, number=v.number, doc=_comment(locations, (5, i, 2, j), names))
                for j, v in enumerate(enum.value)
            )
            enum_numbers[enum.name] = {v.name: v.number for v in values}
            enums.append(
                Enum(
                    proto_name=enum.name,
                    py_name=public[enum.name],
                    file=fd.name,
                    doc=_comment(locations, (5, i), names),
                    values=values,
                )
            )

    messages: list[Message] = []
    for fd in descriptors.file:
        locations = {tuple(loc.path): loc for loc in fd.source_code_info.location}
        for i, msg in enumerate(fd.message_type):
            payload_type: int | None = None
            fields: list[Field] = []
            for j, f in enumerate(msg.field):
                if f.name == "payloadType" and f.number == 1:
                    if f.type == FDP.TYPE_ENUM and f.HasField("default_value"):
                        enum_name = f.type_name.lstrip(".")
                        numbers = enum_numbers.get(enum_name, {})
                        if f.default_value not in numbers:
                            raise CodegenError(
                                f"{fd.name}: message {msg.name} defaults payloadType to "
                                f"{enum_name}.{f.default_value}, which does not exist. Fix: add the "
                                f"value to {enum_name} or delete {msg.name}."
                            )
                        payload_type = numbers[f.default_value]
                        continue
                    if f.label == FDP.LABEL_REQUIRED:
                        pass  # the envelope's own payloadType: an ordinary field
                    else:
                        continue
                if f.type == FDP.TYPE_ENUM and f.type_name.lstrip(".").endswith("ErrorCode"):
                    raise CodegenError(
                        f"{fd.name}: field {msg.name}.{f.name} has the type of an error-code enum "
                        f"({f.type_name.lstrip('.')}); the generator makes those enums string-valued "
                        "(the schema carries error codes as names in string fields). Fix: declare the "
                        "field as string."
                    )
                fields.append(
                    _field(f, public, enum_refs, enum_numbers, locations, (4, i, 2, j), names, msg.name)
                )
            messages.append(
                Message(
                    proto_name=msg.name,
                    py_name=public[msg.name],
                    file=fd.name,
                    proto_ref=f"{alias_of[fd.name]}.{msg.name}",
                    doc=_comment(locations, (4, i), names),
                    fields=tuple(fields),
                    payload_type=payload_type,
                    scope=_scope(fd.name, msg.name, fields) if payload_type is not None else None,
                )
            )

    seen_types: dict[int, str] = {}
    for message in messages:
        if message.payload_type is None:
            continue
        if message.payload_type in seen_types:
            raise CodegenError(
                f"{message.file}: messages {seen_types[message.payload_type]} and {message.proto_name} "
                f"share payload type {message.payload_type}"
            )
        seen_types[message.payload_type] = message.proto_name

    by_name = {m.proto_name: m for m in messages}
    error_codes = {
        value for name, numbers in enum_numbers.items() if name.endswith("ErrorCode") for value in numbers
    }
    requests = [
        _request(m, by_name, policies, error_codes)
        for m in messages
        if m.proto_name.endswith("Req") and m.payload_type is not None
    ]
    _check_policy_names(policies, by_name, {r.message.proto_name for r in requests})
    return Model(files=tuple(files), enums=tuple(enums), messages=tuple(messages), requests=tuple(requests))


def _scope(file: str, name: str, fields: list[Field]) -> Scope:
    """Which filters a message with a payload type takes (see ``ACCOUNT_FIELDS``).

    Raises:
        CodegenError: The message names a symbol but no account (the filters assume that a
            symbol is always an account's: ``SymbolScoped`` derives from ``AccountScoped``).
    """
    names = {f.proto_name for f in fields}
    account = bool(names & ACCOUNT_FIELDS)
    symbol = bool(names & (SYMBOL_FIELDS | NESTED_SYMBOL.get(name, frozenset())))
    if symbol and not account:
        raise CodegenError(
            f"{file}: message {name} names a symbol but no account (ctidTraderAccountId); the event "
            "filters take a symbol to be an account's. Fix: add the account field, or teach "
            "codegen/model.py (_scope) and ctrader_typed/_scopes.py about account-less symbols."
        )
    if symbol:
        return "SymbolScoped"
    return "AccountScoped" if account else "Unscoped"


def _label(f: descriptor_pb2.FieldDescriptorProto) -> Label:
    if f.label == FDP.LABEL_REQUIRED:
        return "required"
    if f.label == FDP.LABEL_REPEATED:
        return "repeated"
    return "optional"


def _absent_value(
    f: descriptor_pb2.FieldDescriptorProto, enum_numbers: dict[str, dict[str, int]]
) -> str | None:
    """What protobuf returns for ``f`` (a singular scalar or enum) when it is absent, as Python text.

    ``None`` when that value has no simple literal (a float default of ``inf`` or ``nan``, a
    bytes default): the generated build then asks for presence every time.
    """
    explicit = f.HasField("default_value")
    value = f.default_value
    if f.type == FDP.TYPE_ENUM:
        numbers = enum_numbers.get(f.type_name.lstrip("."), {})
        if explicit:
            return str(numbers[value]) if value in numbers else None
        return str(next(iter(numbers.values()))) if numbers else None
    if f.type == FDP.TYPE_BOOL:
        return "True" if explicit and value == "true" else "False"
    if f.type == FDP.TYPE_STRING:
        return repr(value) if explicit else "''"
    if f.type == FDP.TYPE_BYTES:
        return None if explicit else "b''"
    if not explicit:
        return "0"
    if f.type in (FDP.TYPE_DOUBLE, FDP.TYPE_FLOAT):
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    return str(int(value))


LITE_EVENTS: Final = frozenset({"ProtoOASpotEvent"})
"""Events whose repeated sub-messages are absent from almost every one (a spot event carries
bars only for a live-bar subscription). Their stream fast path parses a *lite* variant of the
message (``ctrader_typed._lite``), where those fields are plain bytes - reading an absent repeated
field from protobuf builds a container, the single costliest read of the event - and sit in one
oneof with the message's ``USUALLY_ABSENT`` fields. The generated ``_<Name>_lite_builder`` builds
the same wrapper, and refuses a message that carries any field of that oneof (the client then
parses it in full)."""

USUALLY_ABSENT: Final = frozenset({"ProtoOASpotEvent.sessionClose"})
"""Optional fields the server leaves out of almost every message they belong to: the wrapper
tests their presence first (one read when absent) instead of reading the value first (one read
when present). ``sessionClose`` rides only on the first spot event after a subscription."""


def _field(
    f: descriptor_pb2.FieldDescriptorProto,
    public: dict[str, str],
    enum_refs: dict[str, str],
    enum_numbers: dict[str, dict[str, int]],
    locations: dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location],
    path: tuple[int, ...],
    names: PythonNames,
    message_name: str,
) -> Field:
    label = _label(f)
    py = naming.snake_case(f.name)
    src = f"m.{f.name}"
    kind: Kind
    value_type = ""  # the pb2 enum's ValueType, which mypy-protobuf stubs demand
    if f.type == FDP.TYPE_MESSAGE:
        kind = "message"
        element = public[f.type_name.lstrip(".")]
    elif f.type == FDP.TYPE_ENUM:
        kind = "enum"
        element = public[f.type_name.lstrip(".")]
        value_type = enum_refs[f.type_name.lstrip(".")] + ".ValueType"
    else:
        kind = "scalar"
        element = _SCALARS[f.type]

    def convert_in(expr: str, owned: str = "owned") -> str:
        if kind == "message":
            return f"{element}._from_proto({expr}, {owned})"
        if kind == "enum":
            return f"_{element}_BY_VALUE[{expr}]"
        if element == "str":
            # proto2 does not check UTF-8 on parse: invalid text arrives as bytes. ``expr`` is a
            # plain name here; the class test costs less than calling _text for valid text.
            return f"({expr} if {expr}.__class__ is str else _text({expr}))"
        return expr

    # The value read once into a local named after the field (a walrus inside the expression),
    # so each field keeps its own type for mypy.
    var = f"v_{py}"

    def convert_out(expr: str) -> str:
        if kind == "message":
            return f"{expr}.to_proto()"
        if kind == "enum":
            return f"{value_type}({expr})"
        return expr

    if label == "repeated":
        annotation = f"tuple[{element}, ...]"
        param_annotation = f"Sequence[{element}]"
        default: str | None = "()"
        if kind == "message":
            # Parsed (owned) messages wrap their repeated sub-messages on first access; an
            # empty one is () at once (nothing to defer, and the message is not kept alive).
            held = f"r_{py}"
            from_proto = (
                f"((_Pending({held}, _{element}_many) if ({held} := {src}) else ()) if owned "
                f"else _{element}_many({src}, False))"
            )
        elif kind == "enum" or element == "str":
            from_proto = f"tuple([{convert_in('x')} for x in {src}])"
        else:
            from_proto = f"tuple({src})"
        to_proto = f"[{convert_out('x')} for x in self.{py}]" if kind != "scalar" else f"self.{py}"
        param_to_proto = f"[{convert_out('x')} for x in {py}]" if kind != "scalar" else py
    elif label == "required":
        annotation = element
        param_annotation = element
        default = None
        if element == "str":
            from_proto = f"({var} if ({var} := {src}).__class__ is str else _text({var}))"
        else:
            from_proto = convert_in(src)
        to_proto = convert_out(f"self.{py}")
        param_to_proto = convert_out(py)
    else:
        annotation = f"{element} | None"
        param_annotation = annotation
        default = "None"
        # ``name in m`` is HasField without building a bound method each time. A singular
        # scalar or enum reads as its default when absent, so any other value is present and
        # the presence test only runs for a value equal to the default.
        absent = None if kind == "message" else _absent_value(f, enum_numbers)
        if absent is None or f"{message_name}.{f.name}" in USUALLY_ABSENT:
            from_proto = f"({convert_in(src)} if {f.name!r} in m else None)"
        else:
            if absent in ("0", "False", "''", "b''"):
                differs = f"({var} := {src})"
            elif absent == "True":
                differs = f"({var} := {src}) is not True"
            else:
                differs = f"({var} := {src}) != {absent}"
            from_proto = f"({convert_in(var)} if {differs} or {f.name!r} in m else None)"
        if kind != "scalar":
            to_proto = f"({convert_out('self.' + py)} if self.{py} is not None else None)"
            param_to_proto = f"({convert_out(py)} if {py} is not None else None)"
        else:
            to_proto = f"self.{py}"
            param_to_proto = py
    return Field(
        proto_name=f.name,
        py_name=py,
        number=f.number,
        label=label,
        kind=kind,
        annotation=annotation,
        param_annotation=param_annotation,
        default=default,
        from_proto=from_proto,
        to_proto=to_proto,
        param_to_proto=param_to_proto,
        default_doc=_default_literal(f, element if kind == "enum" else None),
        doc=_comment(locations, path, names),
        secret=f.name in SECRET_FIELDS,
        deprecated=f.options.deprecated,
        element=element,
    )


def _missing_policy(message: Message) -> str:
    return (
        f"{message.file}: request {message.proto_name} has no entry in the request policy table "
        f'(protos/policy.toml). Fix: add a line such as {message.proto_name} = {{ scope = "account" }} '
        "with the flags that apply (see the keys at the top of that file)."
    )


def _check_policy_names(
    policies: Mapping[str, Policy], by_name: dict[str, Message], requests: set[str]
) -> None:
    for name, policy in policies.items():
        if name in requests:
            continue
        message = by_name.get(name)
        if message is None:
            raise CodegenError(
                f"{policy.where}: {name} names no message of the schema. Fix: correct the name, or delete "
                "the line if the request was removed from protos/."
            )
        raise CodegenError(
            f"{policy.where}: {name} ({message.file}) is not a request (a request's name ends in Req and "
            "it has a payload type). Fix: delete the line."
        )


def _friendlier(message: Message, field: Field) -> Field:
    """``field`` as a ``send_*`` parameter: a price also takes a ``Decimal``, a millisecond
    timestamp an aware ``datetime`` (see ``PRICE_FIELDS`` and ``MILLISECOND_FIELDS``).

    Raises:
        CodegenError: A field so named is not of the type those lists expect.
    """
    kind: ParamKind
    if field.proto_name in PRICE_FIELDS:
        kind = "price"
    elif field.proto_name in MILLISECOND_FIELDS:
        kind = "millis"
    else:
        return field
    wire, accepted, helper = _PARAM_KINDS[kind]
    if (
        field.kind != "scalar"
        or field.label == "repeated"
        or field.annotation.removesuffix(" | None") != wire
    ):
        raise CodegenError(
            f"{message.file}: {message.proto_name}.{field.proto_name} is listed as a {kind} field in "
            f"codegen/model.py but is not a single {wire} ({field.annotation}). Fix: remove the name from "
            "PRICE_FIELDS / MILLISECOND_FIELDS, or correct the field's type."
        )
    py = field.py_name
    call = f"{helper}({py}, {py!r})"
    if field.label == "required":
        return replace(field, param_annotation=accepted, param_to_proto=call, param_kind=kind)
    return replace(
        field,
        param_kind=kind,
        param_annotation=f"{accepted} | None",
        param_to_proto=f"({call} if {py} is not None else None)",
    )


def _request(
    message: Message, by_name: dict[str, Message], policies: Mapping[str, Policy], error_codes: set[str]
) -> Request:
    policy = policies.get(message.proto_name)
    if policy is None:
        raise CodegenError(_missing_policy(message))
    response_name = policy.response or message.proto_name[: -len("Req")] + "Res"
    response = by_name.get(response_name)
    if response is None or response.payload_type is None:
        raise CodegenError(
            f"{message.file}: request {message.proto_name} has no answer: {response_name} is not defined "
            f"(or has no payload type). Fix: add message {response_name} to the schema, or name the "
            f'answer with response = "..." in its line of protos/policy.toml ({policy.where}).'
        )
    if policy.already_done is not None and policy.already_done not in error_codes:
        raise CodegenError(
            f"{policy.where}: {message.proto_name}: already_done = {policy.already_done!r} is no value of "
            "an error-code enum of the schema (an enum whose name ends in ErrorCode)."
        )
    account_scoped = any(f.proto_name == "ctidTraderAccountId" for f in message.fields)
    if policy.scope in ("account", "trading") and not account_scoped:
        raise CodegenError(
            f"{policy.where}: {message.proto_name}: scope = {policy.scope!r} needs the request to name "
            "an account, but it has no ctidTraderAccountId field."
        )
    if account_scoped and policy.scope in ("none", "application") and policy.restore != "account_auth":
        raise CodegenError(
            f"{policy.where}: {message.proto_name}: names an account (ctidTraderAccountId) but has "
            f"scope = {policy.scope!r}; the server first wants that account authorised: scope = 'account'."
        )
    parameters: list[Parameter] = []
    fields = tuple(_friendlier(message, field) for field in message.fields)
    for index, field in enumerate(fields):
        if field.label == "optional":
            parameters.append(Parameter(field=field, keyword_only=True, default="None"))
        elif field.label == "required":
            parameters.append(Parameter(field=field, keyword_only=False, default=None))
        else:
            required_follows = any(later.label == "required" for later in fields[index + 1 :])
            parameters.append(
                Parameter(field=field, keyword_only=False, default=None if required_follows else "()")
            )
    return Request(
        message=message,
        response=response,
        method=naming.method_name(message.proto_name),
        parameters=tuple(parameters),
        policy=policy,
    )
