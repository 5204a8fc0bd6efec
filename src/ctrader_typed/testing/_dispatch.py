"""Dispatch: the checks every request passes, in order, before its handler answers it.

1. A payload type the simulator has no handler for: ``ProtoErrorRes`` ``UNSUPPORTED_MESSAGE``.
2. Maintenance (``set_maintenance``): ``SERVER_IS_UNDER_MAINTENANCE``.
3. A server-wide block (``block_payload_type`` without a connection), then the connection's
   rate limits and blocks, decided when the frame was read: ``BLOCKED_PAYLOAD_TYPE`` or
   ``REQUEST_FREQUENCY_EXCEEDED``.
4. On an endpoint of one environment (``live_endpoint``): a request that names an account of
   the other environment in ``ctidTraderAccountId`` (account auth included) gets
   ``CANT_ROUTE_REQUEST``, as Spotware's demo and live hosts answer it.
5. What the request needs authorised first, from its policy in the generated registry
   (``RequestPolicy.scope``): anything but ``"none"`` needs the application
   (``CH_CLIENT_NOT_AUTHENTICATED``); ``"account"`` and ``"trading"`` need the account it names
   authorised on this connection, ``"trading"`` with a token of the trading scope
   (``ACCOUNT_NOT_AUTHORIZED``). The payload is decoded between the two (``INVALID_REQUEST``).
6. The handler. A ``RequestError`` it raises is answered as ``ProtoOAErrorRes``; an
   ``AlreadyDone`` with the code of the policy's ``already_done``. A handler may return an
   awaitable (long history answers do, to yield to the event loop between slices): it is
   awaited before the next request of the connection is answered.

The handler table is built from the registry too: each request's handler is the
``RequestHandlers`` method named after its ``send_*_req`` coroutine.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import math
from typing import Final

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated.registry import PAYLOAD_TYPES, REQUEST_POLICIES, RequestPolicy
from ctrader_typed.testing._broker import RequestError
from ctrader_typed.testing._connection import Request, SimConnection
from ctrader_typed.testing._handlers import AlreadyDone, Handler, RequestHandlers
from ctrader_typed.testing._settings import FaultSwitches, SimulatorSettings
from ctrader_typed.testing._world import World

__all__ = ["Dispatcher", "handler_name"]

_ACCOUNT_SCOPES: Final = frozenset({"account", "trading"})


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    policy: RequestPolicy
    message_type: type[ProtobufMessage]
    handler: Handler


def handler_name(policy: RequestPolicy) -> str:
    """The ``RequestHandlers`` method that answers a request: ``send_new_order_req`` -> ``new_order``."""
    return policy.method.removeprefix("send_").removesuffix("_req")


class Dispatcher:
    """Answers the requests of every connection of one simulator."""

    def __init__(self, settings: SimulatorSettings, switches: FaultSwitches, world: World) -> None:
        self._clock = settings.rate_limit_clock
        self._switches = switches
        self._world = world
        handlers = RequestHandlers(world, settings)
        self._routes: dict[int, _Route] = {}
        for payload_type, policy in REQUEST_POLICIES.items():
            handler: Handler | None = getattr(handlers, handler_name(policy), None)
            if handler is not None:
                self._routes[payload_type] = _Route(policy, PAYLOAD_TYPES[payload_type].PROTO, handler)

    @property
    def payload_types(self) -> frozenset[int]:
        """The requests this simulator answers."""
        return frozenset(self._routes)

    async def answer(self, conn: SimConnection, request: Request) -> None:
        """Answer one request frame (awaited by the connection's worker, in arrival order)."""
        cmid = request.client_msg_id
        route = self._routes.get(request.payload_type)
        if route is None:
            conn.send_common_error(
                "UNSUPPORTED_MESSAGE", f"Payload type {request.payload_type} is not supported", cmid
            )
            return
        if self._refused(conn, request):
            return
        policy = route.policy
        if policy.scope != "none" and not conn.app_authenticated:
            conn.send_error("CH_CLIENT_NOT_AUTHENTICATED", "Open API application is not authorized", cmid)
            return
        message = route.message_type()
        try:
            message.ParseFromString(request.payload)
        except DecodeError:
            conn.send_common_error("INVALID_REQUEST", "The payload could not be decoded", cmid)
            return
        if not message.IsInitialized():
            missing = ", ".join(
                f.name for f in message.DESCRIPTOR.fields if f.is_required and not message.HasField(f.name)
            )
            conn.send_common_error("INVALID_REQUEST", f"Missing required fields: {missing}", cmid)
            return
        account_id = _account_of(message)
        if (
            account_id is not None
            and conn.environment is not None
            and self._misrouted(conn, account_id, cmid)
        ):
            return
        if policy.scope in _ACCOUNT_SCOPES and not self._authorised(conn, policy, account_id, cmid):
            return
        try:
            result = route.handler(conn, message, cmid)
            if inspect.isawaitable(result):
                await result
        except RequestError as exc:
            conn.send_error(exc.code, exc.description, cmid, account_id=account_id)
        except AlreadyDone as exc:
            if policy.already_done is None:
                raise RuntimeError(f"{policy.method}: no already_done code in its policy") from exc
            conn.send_error(policy.already_done, exc.description, cmid, account_id=account_id)

    def _refused(self, conn: SimConnection, request: Request) -> bool:
        """Maintenance, a server-wide block or the connection's rate limits refuse it (answered)."""
        cmid = request.client_msg_id
        switches = self._switches
        until = switches.maintenance_until
        if until is not None:
            if until > datetime.datetime.now(datetime.UTC):
                conn.send_error(
                    "SERVER_IS_UNDER_MAINTENANCE",
                    "Server is under maintenance",
                    cmid,
                    maintenance_end_s=int(until.timestamp()),
                )
                return True
            switches.maintenance_until = None
        blocked_until = switches.blocked.get(request.payload_type)
        if blocked_until is not None:
            remaining = blocked_until - self._clock()
            if remaining > 0:
                conn.send_error(
                    "BLOCKED_PAYLOAD_TYPE",
                    "Message is blocked by server or rate limit is reached",
                    cmid,
                    retry_after=max(1, math.ceil(remaining)),
                )
                return True
            del switches.blocked[request.payload_type]
        verdict = request.verdict
        if verdict is not None:
            conn.send_error(verdict.code, verdict.description, cmid, retry_after=verdict.retry_after)
            return True
        return False

    def _misrouted(self, conn: SimConnection, account_id: int, cmid: str | None) -> bool:
        """The account belongs to the other environment than ``conn``'s endpoint (answered)."""
        account = self._world.broker.account(account_id)
        if account is None or account.is_live == (conn.environment == "live"):
            return False
        served_by = "live" if account.is_live else "demo"
        conn.send_error(
            "CANT_ROUTE_REQUEST",
            f"Can't route request: trading account {account_id} is served by the {served_by} endpoint",
            cmid,
            account_id=account_id,
        )
        return True

    def _authorised(
        self, conn: SimConnection, policy: RequestPolicy, account_id: int | None, cmid: str | None
    ) -> bool:
        """The account the request names is authorised on ``conn`` as the policy needs (else answered)."""
        if account_id is None or account_id not in conn.accounts:
            conn.send_error(
                "ACCOUNT_NOT_AUTHORIZED", "Trading account is not authorized", cmid, account_id=account_id
            )
            return False
        if policy.scope == "trading" and self._world.scope_of(conn, account_id) != "trading":
            conn.send_error(
                "ACCOUNT_NOT_AUTHORIZED", "The access token has the view-only 'accounts' scope", cmid,
                account_id=account_id,
            )  # fmt: skip
            return False
        return True


def _account_of(message: ProtobufMessage) -> int | None:
    field = message.DESCRIPTOR.fields_by_name.get("ctidTraderAccountId")
    if field is None:
        return None
    value: int = getattr(message, "ctidTraderAccountId")  # noqa: B009 - any message with this field
    return value
