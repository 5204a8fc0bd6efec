"""``ClientSettings``: the client's options, their defaults and their checks, in one place.

``AsyncClient(**options)`` builds one; every part of the client reads it. The public
``ClientOptions`` (a ``TypedDict`` for ``Unpack``) names the same keys: a unit test holds
the two together.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Final, Literal, get_args

from ctrader_typed._framing import DEFAULT_MAX_FRAME_SIZE
from ctrader_typed._ratelimit import DEFAULT_HISTORICAL_PER_SECOND, DEFAULT_REQUESTS_PER_SECOND
from ctrader_typed._transport import check_tls_settings
from ctrader_typed.events import DEFAULT_MAX_BYTES
from ctrader_typed.tokens import TokenSet, TokenStore

__all__ = ["DEFAULT_MAX_MAINTENANCE_WAIT", "ClientSettings", "Transport"]

Transport = Literal["tls", "websocket"]
"""How the client reaches the server: protobuf frames over TLS, or protobuf messages over WebSocket (WSS)."""

DEFAULT_MAX_MAINTENANCE_WAIT: Final = 12 * 3600.0
"""Longest announced maintenance the client waits out by default (12 h); longer: it stops."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """The keyword options of ``AsyncClient`` with their defaults (described there).

    Raises:
        ValueError: An option is out of range, or the TLS settings switch verification
            off without ``insecure_tls``.
    """

    transport: Transport = "tls"
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    insecure_tls: bool = False
    client_id: str | None = None
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    tokens: TokenSet | None = None
    token_store: TokenStore | None = None
    refresh_margin: float = 300.0
    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    heartbeat_interval: float = 10.0
    dead_link_timeout: float | None = 30.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    reconnect: bool = True
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_jitter: float = 0.5
    reconnect_max_attempts: int | None = None
    rate_limits: bool = True
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    historical_per_second: float = DEFAULT_HISTORICAL_PER_SECOND
    rate_limit_retries: int = 5
    rate_limit_max_wait: float = 60.0
    event_queue_size: int = 10_000
    event_queue_bytes: int = DEFAULT_MAX_BYTES
    handler_task_limit: int | None = None
    max_maintenance_wait: float | None = DEFAULT_MAX_MAINTENANCE_WAIT

    def __post_init__(self) -> None:
        if self.transport not in get_args(Transport):
            raise ValueError(f"transport must be one of {get_args(Transport)}, not {self.transport!r}")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("give both client_id and client_secret, or neither")
        if not 0 <= self.reconnect_jitter <= 1:
            raise ValueError("reconnect_jitter must be between 0 and 1")
        if self.heartbeat_interval <= 0 or self.request_timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("heartbeat_interval, request_timeout and connect_timeout must be positive")
        if self.event_queue_size < 1:
            raise ValueError("event_queue_size must be at least 1")
        if self.handler_task_limit is not None and self.handler_task_limit < 1:
            raise ValueError("handler_task_limit must be at least 1, or None for event_queue_size")
        if self.dead_link_timeout is not None and self.dead_link_timeout <= 0:
            raise ValueError("dead_link_timeout must be positive, or None to disable it")
        if not 1 <= self.max_frame_size <= 0xFFFFFFFF:
            raise ValueError(f"max_frame_size must be between 1 and {0xFFFFFFFF}")
        if self.event_queue_bytes < 1:
            raise ValueError("event_queue_bytes must be at least 1")
        if self.max_maintenance_wait is not None and self.max_maintenance_wait < 0:
            raise ValueError("max_maintenance_wait must be >= 0, or None to wait however long")
        if not self.refresh_margin >= 0:  # NaN too
            raise ValueError("refresh_margin must be a number >= 0")
        check_tls_settings(self.ssl_context, self.server_hostname, insecure=self.insecure_tls)
