"""Spotware's official Python client (OpenApiPy, ``ctrader-open-api`` 0.9.2) against our simulator.

Runs in its own virtualenv (Twisted, protobuf 3.20.1); see ``run_interop.py``. Takes the JSON
line printed by ``ctrader-typed sim`` from ``--info`` or the ``CTRADER_SIM_INFO`` environment
variable, then does: application auth -> account list -> account auth -> symbols list ->
spot subscription with at least 10 spot events -> a market order and its execution events.
Exits 0 only if every step succeeded.

OpenApiPy builds its TLS endpoint as ``clientFromString(reactor, "ssl:HOST:PORT")``, which
neither checks the certificate nor its name. To trust only the simulator's throwaway CA, with
hostname checking on, we extend that endpoint description with Twisted's own ``caCertsDir``
and ``hostname`` options; the rest of OpenApiPy is used unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# Imported by name: these packages exist only in the interop virtualenv, not where mypy runs.
openapi: Any = importlib.import_module("ctrader_open_api")
openapi_client: Any = importlib.import_module("ctrader_open_api.client")
messages: Any = importlib.import_module("ctrader_open_api.messages.OpenApiMessages_pb2")
model: Any = importlib.import_module("ctrader_open_api.messages.OpenApiModelMessages_pb2")
reactor: Any = importlib.import_module("twisted.internet.reactor")
Client, Protobuf, TcpProtocol = openapi.Client, openapi.Protobuf, openapi.TcpProtocol
BUY, MARKET, ORDER_ACCEPTED, ORDER_FILLED = model.BUY, model.MARKET, model.ORDER_ACCEPTED, model.ORDER_FILLED

SPOTS_WANTED = 10
TIMEOUT_S = 120


def trust_only(ca_file: str, hostname: str) -> Path:
    """Make OpenApiPy's TLS endpoint verify the server against ``ca_file`` and ``hostname``."""
    ca_dir = Path(tempfile.mkdtemp(prefix="openapipy-ca-"))
    shutil.copy(ca_file, ca_dir / "simulator-ca.pem")
    original = openapi_client.clientFromString

    def client_from_string(reactor_: Any, description: str) -> Any:
        return original(reactor_, f"{description}:caCertsDir={ca_dir}:hostname={hostname}")

    openapi_client.clientFromString = client_from_string
    return ca_dir


class Flow:
    """The steps, chained through OpenApiPy's Deferreds and message callback."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.client = Client(info["host"], info["port"], TcpProtocol)
        self.account_id = 0
        self.symbol_id = 0
        self.spots = 0
        self.order_id = 0
        self.execution_types: list[int] = []
        self.steps: list[str] = []
        self.failure: str | None = None
        self.done = False

    def start(self) -> None:
        self.client.setConnectedCallback(self.on_connected)
        self.client.setDisconnectedCallback(self.on_disconnected)
        self.client.setMessageReceivedCallback(self.on_message)
        self.client.startService()
        reactor.callLater(TIMEOUT_S, self.fail, f"timed out after {TIMEOUT_S}s")

    def step(self, name: str) -> None:
        self.steps.append(name)
        print(f"ok: {name}", flush=True)

    def fail(self, reason: object) -> None:
        if self.done:
            return
        self.done = True
        self.failure = str(reason)
        print(f"FAILED after {self.steps}: {reason}", flush=True)
        self.stop()

    def succeed(self) -> None:
        if self.done:
            return
        self.done = True
        self.stop()

    def stop(self) -> None:
        self.client.stopService()
        reactor.callLater(0.5, reactor.stop)

    def send(self, message: Any, then: Any) -> None:
        deferred = self.client.send(message, responseTimeoutInSeconds=30)
        deferred.addCallbacks(lambda response: self.guard(then, Protobuf.extract(response)), self.fail)

    def guard(self, callback: Any, message: Any) -> None:
        try:
            callback(message)
        except Exception as exc:  # a failed check ends the flow with its reason
            self.fail(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def expect(message: Any, name: str) -> None:
        if type(message).__name__ != name:
            raise AssertionError(f"expected {name}, got {type(message).__name__}: {message}")

    # -- the flow -----------------------------------------------------------------------------

    def on_connected(self, _client: Any) -> None:
        self.step("connected over TLS (certificate and hostname verified)")
        request = messages.ProtoOAApplicationAuthReq(
            clientId=self.info["client_id"], clientSecret=self.info["client_secret"]
        )
        self.send(request, self.on_app_auth)

    def on_app_auth(self, message: Any) -> None:
        self.expect(message, "ProtoOAApplicationAuthRes")
        self.step("application auth")
        self.send(
            messages.ProtoOAGetAccountListByAccessTokenReq(accessToken=self.info["access_token"]),
            self.on_accounts,
        )

    def on_accounts(self, message: Any) -> None:
        self.expect(message, "ProtoOAGetAccountListByAccessTokenRes")
        demo = [a.ctidTraderAccountId for a in message.ctidTraderAccount if not a.isLive]
        if not demo:
            raise AssertionError("no demo account listed")
        self.account_id = demo[0]
        self.step(f"account list ({len(message.ctidTraderAccount)} accounts)")
        request = messages.ProtoOAAccountAuthReq(
            ctidTraderAccountId=self.account_id, accessToken=self.info["access_token"]
        )
        self.send(request, self.on_account_auth)

    def on_account_auth(self, message: Any) -> None:
        self.expect(message, "ProtoOAAccountAuthRes")
        if message.ctidTraderAccountId != self.account_id:
            raise AssertionError("account auth answered for another account")
        self.step(f"account auth ({self.account_id})")
        self.send(messages.ProtoOASymbolsListReq(ctidTraderAccountId=self.account_id), self.on_symbols)

    def on_symbols(self, message: Any) -> None:
        self.expect(message, "ProtoOASymbolsListRes")
        by_name = {s.symbolName: s.symbolId for s in message.symbol}
        if "EURUSD" not in by_name:
            raise AssertionError("EURUSD is not listed")
        self.symbol_id = by_name["EURUSD"]
        self.step(f"symbols list ({len(by_name)} symbols)")
        request = messages.ProtoOASubscribeSpotsReq(
            ctidTraderAccountId=self.account_id, symbolId=[self.symbol_id]
        )
        self.send(request, self.on_subscribed)

    def on_subscribed(self, message: Any) -> None:
        self.expect(message, "ProtoOASubscribeSpotsRes")
        self.step("spot subscription")

    def on_message(self, _client: Any, envelope: Any) -> None:
        if self.done:
            return
        if envelope.payloadType == messages.ProtoOASpotEvent().payloadType:
            spot = Protobuf.extract(envelope)
            if spot.symbolId == self.symbol_id and spot.ctidTraderAccountId == self.account_id:
                self.spots += 1
                if self.spots == SPOTS_WANTED:
                    self.step(f"{SPOTS_WANTED} spot events")
                    self.place_order()
        elif envelope.payloadType == messages.ProtoOAExecutionEvent().payloadType:
            self.guard(self.on_execution, Protobuf.extract(envelope))
        elif envelope.payloadType in (
            50,
            2142,
            2132,
        ):  # ProtoErrorRes, ProtoOAErrorRes, ProtoOAOrderErrorEvent
            self.fail(f"error from the server: {Protobuf.extract(envelope)}")

    def place_order(self) -> None:
        request = messages.ProtoOANewOrderReq(
            ctidTraderAccountId=self.account_id,
            symbolId=self.symbol_id,
            orderType=MARKET,
            tradeSide=BUY,
            volume=100_000,  # 1,000 units
        )
        # OpenApiPy resolves the Deferred with the first message echoing the clientMsgId
        # (ORDER_ACCEPTED); ORDER_FILLED arrives through the message callback.
        self.send(request, self.on_order_answer)

    def on_order_answer(self, message: Any) -> None:
        self.expect(message, "ProtoOAExecutionEvent")
        if message.executionType != ORDER_ACCEPTED:
            raise AssertionError(f"first answer to the order is {message.executionType}, not ORDER_ACCEPTED")
        self.step("market order accepted")

    def on_execution(self, event: Any) -> None:
        if event.ctidTraderAccountId != self.account_id:
            return
        self.execution_types.append(event.executionType)
        self.order_id = self.order_id or event.order.orderId
        if event.order.orderId != self.order_id:
            raise AssertionError("execution events of another order")
        if event.executionType == ORDER_FILLED:
            if self.execution_types != [ORDER_ACCEPTED, ORDER_FILLED]:
                raise AssertionError(f"execution sequence {self.execution_types}")
            if event.position.tradeData.volume != 100_000 or event.deal.filledVolume != 100_000:
                raise AssertionError(f"filled volume is wrong: {event}")
            self.step(
                f"market order filled at {event.deal.executionPrice} (position {event.position.positionId})"
            )
            self.succeed()

    def on_disconnected(self, _client: Any, reason: Any) -> None:
        if not self.done:
            self.fail(f"disconnected: {reason}")


def load_info(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--info", help="the JSON line printed by `ctrader-typed sim` (else $CTRADER_SIM_INFO)"
    )
    args = parser.parse_args(argv)
    raw = args.info or os.environ.get("CTRADER_SIM_INFO")
    if not raw:
        parser.error("give the simulator's JSON line with --info or CTRADER_SIM_INFO")
    info: dict[str, Any] = json.loads(raw)
    return info


def main(argv: list[str] | None = None) -> int:
    info = load_info(sys.argv[1:] if argv is None else argv)
    ca_dir = trust_only(info["ca_file"], info["host"])
    flow = Flow(info)
    try:
        reactor.callWhenRunning(flow.start)
        reactor.run()
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)
    ok = flow.failure is None and flow.done
    print("interop: PASSED" if ok else "interop: FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
