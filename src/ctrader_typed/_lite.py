"""Lite variants of event messages, for the stream fast path.

A lite variant parses the same bytes as the real message, with two changes:

* each repeated sub-message field is declared as optional ``bytes`` (same field number, same
  wire type): reading an empty repeated field of the real message builds a container object -
  for a spot event, the costliest read of all, and its bars are absent from almost every one;
* the fields the generated builder refuses - those, and the ones that are rarely there - are
  gathered in one oneof, ``lite_refused``, so that a single ``WhichOneof`` call tells whether a
  message has any of them (a oneof keeps only the last of its fields that it parsed; a message
  with any of them is parsed again in full, so nothing is lost).

The generated ``_<Name>_lite_builder`` (``_generated.messages.LITE_BUILDERS``) builds the very
same wrapper from it and refuses a message with any field of the oneof
(``_base.LiteMessageRefused``): the client then parses that frame with the real class.

The variants are made at run time from the real descriptors, in protobuf's default pool under
the package ``ctrader_typed.lite``, so they follow the schema the generator was run on.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

__all__ = ["LITE_PACKAGE", "REFUSED_ONEOF", "lite_class"]

LITE_PACKAGE = "ctrader_typed.lite"
REFUSED_ONEOF = "lite_refused"

_FDP = descriptor_pb2.FieldDescriptorProto
_made: dict[tuple[str, tuple[str, ...]], type[Message]] = {}


def lite_class(proto: type[Message], refused: Iterable[str]) -> type[Message]:
    """The lite variant of ``proto`` whose oneof ``lite_refused`` holds the fields ``refused``
    (schema names), made once per process.

    Raises:
        ValueError: ``refused`` leaves out a repeated sub-message field, names a field that
            ``proto`` lacks, a repeated scalar or a field of a oneof of its own, or is empty.
    """
    descriptor = proto.DESCRIPTOR
    names = tuple(refused)
    key = (descriptor.full_name, names)
    made = _made.get(key)
    if made is not None:
        return made
    if not names:
        raise ValueError(f"{descriptor.full_name}: a lite variant refuses at least one field")
    shape = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(shape)
    by_name = {field.name: field for field in shape.field}
    for field in shape.field:
        if field.label == _FDP.LABEL_REPEATED and field.type == _FDP.TYPE_MESSAGE and field.name not in names:
            raise ValueError(
                f"{descriptor.full_name}.{field.name} is a repeated sub-message: it must be refused"
            )
    oneof = len(shape.oneof_decl)
    shape.oneof_decl.add(name=REFUSED_ONEOF)
    for name in names:
        found = by_name.get(name)
        if found is None:
            raise ValueError(f"{descriptor.full_name} has no field {name!r}")
        field = found
        if field.HasField("oneof_index"):
            raise ValueError(f"{descriptor.full_name}.{name} belongs to a oneof already")
        if field.label == _FDP.LABEL_REPEATED:
            if field.type != _FDP.TYPE_MESSAGE:
                raise ValueError(f"{descriptor.full_name}.{name} is a repeated scalar: it cannot be refused")
            field.type = _FDP.TYPE_BYTES
            field.ClearField("type_name")
        field.label = _FDP.LABEL_OPTIONAL
        field.ClearField("default_value")
        field.oneof_index = oneof
    shape.name = "__".join((shape.name, *names))
    file = descriptor.file
    lite_file = descriptor_pb2.FileDescriptorProto(
        name=f"ctrader_typed/lite/{shape.name}.proto",
        package=LITE_PACKAGE,
        syntax="proto2",
        dependency=[file.name, *(dependency.name for dependency in file.dependencies)],
    )
    lite_file.message_type.add().CopyFrom(shape)
    pool = descriptor_pool.Default()
    pool.AddSerializedFile(lite_file.SerializeToString())
    made = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{LITE_PACKAGE}.{shape.name}"))
    _made[key] = made
    return made
