"""Every Python name the generator emits is derived here, in one tested place."""

from __future__ import annotations

import keyword
import re

# Split points for camelCase with acronyms: "skipSWAPPeriods" -> skip, SWAP, Periods.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

# Mixed-case acronyms that the splitter would tear apart ("PnL" -> "pn_l").
_MIXED_ACRONYMS = {"PnL": "Pnl"}

# Names that would shadow something important on a dataclass or module scope.
_RESERVED = frozenset({"self", "cls", "timeout", "message", "PROTO", "PAYLOAD_TYPE"})


def snake_case(name: str) -> str:
    """Convert a proto field name to an acronym-aware snake_case identifier.

    >>> snake_case("skipSWAPPeriods")
    'skip_swap_periods'
    >>> snake_case("ctidTraderAccountId")
    'ctid_trader_account_id'
    """
    source = name
    for acronym, replacement in _MIXED_ACRONYMS.items():
        source = source.replace(acronym, replacement)
    words = _WORD.findall(source)
    if not words or "".join(words) != source.replace("_", ""):
        raise ValueError(f"cannot derive a snake_case name from {name!r}")
    result = "_".join(word.lower() for word in words)
    if keyword.iskeyword(result) or result in _RESERVED:
        result += "_"
    return result


def strip_prefix(proto_name: str) -> str:
    """Drop the ``ProtoOA`` or ``Proto`` prefix of a message or enum name."""
    for prefix in ("ProtoOA", "Proto"):
        if proto_name.startswith(prefix) and len(proto_name) > len(prefix):
            rest = proto_name[len(prefix) :]
            if rest[0].isupper() or rest[0].isdigit():
                return rest
    return proto_name


def public_names(proto_names: list[str]) -> dict[str, str]:
    """Map every proto message/enum name to its unique public Python name.

    ``ProtoOA*`` names lose their prefix. A common-layer ``Proto*`` name whose
    stripped form collides with an OA name (``ProtoErrorRes`` vs ``ProtoOAErrorRes``)
    becomes ``Common*``. ``ProtoMessage`` keeps its name: a bare ``Message`` would read
    as protobuf's own base class.
    """
    oa_names = {strip_prefix(n) for n in proto_names if n.startswith("ProtoOA")}
    result: dict[str, str] = {}
    for name in proto_names:
        if name == "ProtoMessage":
            public = name
        elif name.startswith("ProtoOA"):
            public = strip_prefix(name)
        else:
            public = strip_prefix(name)
            if public in oa_names:
                public = "Common" + public
        result[name] = public
    seen: dict[str, str] = {}
    for name, public in result.items():
        if public in seen:
            raise ValueError(f"{name} and {seen[public]} both map to the Python name {public}")
        seen[public] = name
    return result


def method_name(request_name: str) -> str:
    """``ProtoOAGetAccountListByAccessTokenReq`` -> ``send_get_account_list_by_access_token_req``."""
    return "send_" + snake_case(strip_prefix(request_name))
