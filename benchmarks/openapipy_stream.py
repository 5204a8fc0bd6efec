"""Spotware's OpenApiPy consuming a spot burst; runs in the interop virtualenv, not ours.

Started by ``benchmarks/stream.py`` with the simulator's JSON line in ``CTRADER_SIM_INFO``
and ``ACCOUNT N REPEATS`` as arguments. It authenticates, subscribes to every symbol with
timestamps, prints ``ready <process CPU seconds>``, then for each of ``REPEATS`` bursts of
``N`` spot events extracts every event as OpenApiPy users do (``Protobuf.extract``), reads
its bid, and prints ``done <time.monotonic() at the N-th event> <process CPU seconds>``.
The parent triggers the bursts.

The TLS set-up (trusting only the simulator's CA) is the interop flow's, imported.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "interop"))
flow: Any = importlib.import_module("openapipy_flow")  # only importable inside the interop virtualenv

SPOT_EVENT = 2131


class Consumer:
    def __init__(self, info: dict[str, Any], account_id: int, n: int, repeats: int) -> None:
        self.info = info
        self.account_id = account_id
        self.n = n
        self.repeats = repeats
        self.count = 0
        self.counting = False
        self.client = flow.Client(info["host"], info["port"], flow.TcpProtocol)

    def start(self) -> None:
        self.client.setConnectedCallback(self.on_connected)
        self.client.setDisconnectedCallback(lambda _c, reason: self.fail(f"disconnected: {reason}"))
        self.client.setMessageReceivedCallback(self.on_message)
        self.client.startService()

    def fail(self, reason: object) -> None:
        print(f"error {reason}", flush=True)
        self.stop()

    def stop(self) -> None:
        if flow.reactor.running:
            self.client.stopService()
            flow.reactor.callLater(0.2, flow.reactor.stop)

    def send(self, message: Any, then: Any) -> None:
        deferred = self.client.send(message, responseTimeoutInSeconds=30)
        deferred.addCallbacks(then, self.fail)

    def on_connected(self, _client: Any) -> None:
        request = flow.messages.ProtoOAApplicationAuthReq(
            clientId=self.info["client_id"], clientSecret=self.info["client_secret"]
        )
        self.send(request, self.on_app_auth)

    def on_app_auth(self, _answer: Any) -> None:
        request = flow.messages.ProtoOAAccountAuthReq(
            ctidTraderAccountId=self.account_id, accessToken=self.info["access_token"]
        )
        self.send(request, self.on_account_auth)

    def on_account_auth(self, _answer: Any) -> None:
        request = flow.messages.ProtoOASubscribeSpotsReq(
            ctidTraderAccountId=self.account_id, symbolId=list(range(1, 11)), subscribeToSpotTimestamp=True
        )
        self.send(request, self.on_subscribed)

    def on_subscribed(self, _answer: Any) -> None:
        flow.reactor.callLater(1.0, self.ready)  # let the first events of the subscription go by

    def ready(self) -> None:
        self.count = 0
        self.counting = True
        print(f"ready {time.process_time()!r}", flush=True)

    def on_message(self, _client: Any, envelope: Any) -> None:
        if envelope.payloadType != SPOT_EVENT or not self.counting:
            return
        spot = flow.Protobuf.extract(envelope)
        spot.bid  # noqa: B018 - read a field, as a consumer would
        self.count += 1
        if self.count == self.n:
            print(f"done {time.monotonic()!r} {time.process_time()!r}", flush=True)
            self.count = 0
            self.repeats -= 1
            if self.repeats == 0:
                self.stop()


def main() -> int:
    info: dict[str, Any] = json.loads(os.environ["CTRADER_SIM_INFO"])
    account_id, n, repeats = (int(arg) for arg in sys.argv[1:4])
    ca_dir = flow.trust_only(info["ca_file"], info["host"])
    consumer = Consumer(info, account_id, n, repeats)
    flow.reactor.callWhenRunning(consumer.start)
    flow.reactor.run()
    shutil.rmtree(ca_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
