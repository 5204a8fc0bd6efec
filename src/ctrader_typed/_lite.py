"""Lite variants of event messages, for the stream fast path.

A lite variant is the same message with each repeated sub-message field declared as optional
``bytes`` instead (same field number, same wire type): it parses the same bytes, and asking
whether such a field is there is one cheap presence test, where reading an empty repeated field
of the real message builds a container object - for a spot event, the costliest read of all,
and its bars are absent from almost every one. The generated ``_<Name>_from_lite`` builders
(``_generated.messages.LITE_BUILDERS``) build the very same wrapper from it, and refuse a message
that carries one of those fields (``_base.LiteMessageRefused``): the client then parses that
frame with the real class, and stops using the lite variant for that payload type.

The variants are made at run time from the real descriptors, in protobuf's default pool under
the package ``ctrader_typed.lite``, so they follow the schema the generator was run on.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

__all__ = ["LITE_PACKAGE", "lite_class"]

LITE_PACKAGE = "ctrader_typed.lite"

_FDP = descriptor_pb2.FieldDescriptorProto
_made: dict[str, type[Message]] = {}


def lite_class(proto: type[Message]) -> type[Message]:
    """The lite variant of ``proto`` (made once per process).

    Raises:
        ValueError: ``proto`` has no repeated sub-message field (it has no lite variant).
    """
    descriptor = proto.DESCRIPTOR
    made = _made.get(descriptor.full_name)
    if made is not None:
        return made
    shape = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(shape)
    changed = 0
    for field in shape.field:
        if field.label == _FDP.LABEL_REPEATED and field.type == _FDP.TYPE_MESSAGE:
            field.label = _FDP.LABEL_OPTIONAL
            field.type = _FDP.TYPE_BYTES
            field.ClearField("type_name")
            changed += 1
    if not changed:
        raise ValueError(f"{descriptor.full_name} has no repeated sub-message field: it has no lite variant")
    file = descriptor.file
    lite_file = descriptor_pb2.FileDescriptorProto(
        name=f"ctrader_typed/lite/{descriptor.full_name}.proto",
        package=LITE_PACKAGE,
        syntax="proto2",
        dependency=[file.name, *(dependency.name for dependency in file.dependencies)],
    )
    lite_file.message_type.add().CopyFrom(shape)
    pool = descriptor_pool.Default()
    pool.AddSerializedFile(lite_file.SerializeToString())
    made = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{LITE_PACKAGE}.{shape.name}"))
    _made[descriptor.full_name] = made
    return made
