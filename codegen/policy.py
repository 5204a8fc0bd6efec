"""The request policy table (``protos/policy.toml``): how the SDK treats each request.

This module reads the table and checks every entry on its own (known keys, value types,
allowed values, flags that only make sense together). ``model.build`` then checks the table
against the schema: every request has an entry, every entry names a request, the answer and
the "already done" error code exist.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast, get_args

from codegen.errors import CodegenError

FILE_NAME: Final = "policy.toml"

Scope = Literal["none", "application", "account", "trading"]
Restore = Literal["application_auth", "account_auth", "account_logout", "subscribe", "unsubscribe"]
Subscription = Literal["spots", "live_trendbar", "depth"]

SCOPES: Final[tuple[str, ...]] = get_args(Scope)
RESTORES: Final[tuple[str, ...]] = get_args(Restore)
SUBSCRIPTIONS: Final[tuple[str, ...]] = get_args(Subscription)
_KEYS: Final = ("scope", "response", "historical", "trading", "already_done", "restore", "subscription")
_ERROR_CODE: Final = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Policy:
    """One entry of the table, checked on its own (not yet against the schema)."""

    request: str  # schema name of the request message
    where: str  # ``policy.toml:LINE``, for error messages
    scope: Scope
    response: str | None  # schema name of the answer when it is not the name-derived ``*Res``
    historical: bool
    trading: bool
    already_done: str | None
    restore: Restore | None
    subscription: Subscription | None


def _lines(text: str) -> dict[str, int]:
    """Line number of each ``Name = ...`` entry (tomllib reports no positions)."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match:
            found.setdefault(match.group(1), number)
    return found


def _choice(where: str, name: str, key: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise CodegenError(f"{where}: {name}: {key} = {value!r} is not one of {options}")
    return value


def _flag(where: str, name: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise CodegenError(f"{where}: {name}: {key} = {value!r} must be true or false")
    return value


def _entry(name: str, where: str, raw: object) -> Policy:
    if not isinstance(raw, dict):
        raise CodegenError(
            f'{where}: {name} must be an inline table such as {name} = {{ scope = "account" }}, not {raw!r}'
        )
    entry = cast(dict[str, object], raw)
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise CodegenError(
            f"{where}: {name}: unknown key {', '.join(unknown)}; the keys are {', '.join(_KEYS)}"
        )
    if "scope" not in entry:
        options = ", ".join(repr(s) for s in SCOPES)
        raise CodegenError(f"{where}: {name} has no scope; give one of {options}")
    scope = cast(Scope, _choice(where, name, "scope", entry["scope"], SCOPES))
    response = entry.get("response")
    if response is not None and (not isinstance(response, str) or not response):
        raise CodegenError(f"{where}: {name}: response = {response!r} must name a message of the schema")
    historical = _flag(where, name, "historical", entry.get("historical", False))
    trading = _flag(where, name, "trading", entry.get("trading", False))
    already_done = entry.get("already_done")
    if already_done is not None and (
        not isinstance(already_done, str) or not _ERROR_CODE.fullmatch(already_done)
    ):
        raise CodegenError(
            f"{where}: {name}: already_done = {already_done!r} must be an error code such as 'ALREADY_SUBSCRIBED'"
        )
    restore = entry.get("restore")
    if restore is not None:
        restore = _choice(where, name, "restore", restore, RESTORES)
    subscription = entry.get("subscription")
    if subscription is not None:
        subscription = _choice(where, name, "subscription", subscription, SUBSCRIPTIONS)
    if restore in ("subscribe", "unsubscribe") and subscription is None:
        options = ", ".join(repr(s) for s in SUBSCRIPTIONS)
        raise CodegenError(f"{where}: {name}: restore = {restore!r} needs a subscription ({options})")
    if subscription is not None and restore not in ("subscribe", "unsubscribe"):
        raise CodegenError(
            f"{where}: {name}: subscription = {subscription!r} needs restore = 'subscribe' or 'unsubscribe'"
        )
    if trading and scope != "trading":
        raise CodegenError(f"{where}: {name}: a trading request needs scope = 'trading', not {scope!r}")
    return Policy(
        request=name,
        where=where,
        scope=scope,
        response=response,
        historical=historical,
        trading=trading,
        already_done=already_done,
        restore=cast("Restore | None", restore),
        subscription=cast("Subscription | None", subscription),
    )


def load(path: Path) -> dict[str, Policy]:
    """Read and check the table at ``path``; entries by request name, in file order."""
    if not path.is_file():
        raise CodegenError(
            f"{path}: the request policy table is missing. Every request of the schema needs a line "
            f"in it (see CONTRIBUTING.md, 'Adding a request'); pass another file with --policy."
        )
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CodegenError(f"{path}: not valid TOML: {exc}") from exc
    extra = sorted(set(data) - {"requests"})
    if extra:
        raise CodegenError(f"{path}: unexpected {', '.join(extra)}; the file holds only a [requests] table")
    requests = data.get("requests")
    if not isinstance(requests, dict):
        raise CodegenError(f"{path}: no [requests] table")
    lines = _lines(text)
    return {
        name: _entry(name, f"{path.name}:{lines.get(name, '?')}", raw)
        for name, raw in cast(dict[str, object], requests).items()
    }
