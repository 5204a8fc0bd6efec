"""A transport that does not exist, which ``mypy --strict`` must reject; the errors are in transport.golden."""

from __future__ import annotations

from ctrader_typed import AsyncClient


def misuse(transport: str) -> None:
    AsyncClient("example.test", transport="udp")
    AsyncClient.demo(transport="wss")
    AsyncClient.live(transport=transport)
