"""Choosing the transport, as a user would write it; must pass ``mypy --strict`` untouched."""

from __future__ import annotations

import ssl

from ctrader_typed import AsyncClient, MissingExtraError
from ctrader_typed.client import ClientOptions


async def over_websocket(host: str, port: int, ctx: ssl.SSLContext) -> str:
    options: ClientOptions = {"transport": "websocket", "ssl_context": ctx}
    try:
        client = AsyncClient(host, port, **options)
    except MissingExtraError as missing:
        return f"install the {missing.extra} extra"
    async with client, AsyncClient.demo(transport="tls") as other:
        return (await client.send_version_req()).version + (await other.send_version_req()).version
