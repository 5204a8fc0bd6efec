"""The generated ``send_*_req`` methods, against an in-memory fake of the request primitive."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import Any, TypeVar

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings

from ctrader_typed import (
    AccountAuthRes,
    ApplicationAuthRes,
    ExecutionEvent,
    ExecutionType,
    GetAccountListByAccessTokenRes,
    MarginCall,
    NotificationType,
    OrderType,
    SymbolsListRes,
    TradeSide,
)
from ctrader_typed._base import Wrapper
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.registry import (
    HISTORICAL_PAYLOAD_TYPES,
    PAYLOAD_TYPES,
    REQUEST_METHODS,
    RESPONSE_PAYLOAD_TYPES,
    TRADING_PAYLOAD_TYPES,
)
from ctrader_typed._generated.requests import GeneratedRequests
from tests.unit.strategies import messages_of

W = TypeVar("W", bound=Wrapper)


class FakeSender(GeneratedRequests):
    """Records what was sent and answers with a canned wrapper of the requested type."""

    def __init__(self) -> None:
        self.sent: list[tuple[Message, type[Wrapper], float | None]] = []
        self.answers: dict[type[Wrapper], Wrapper] = {}

    async def _request(self, message: Message, response_type: type[W], *, timeout: float | None = None) -> W:
        self.sent.append((message, response_type, timeout))
        answer = self.answers[response_type]
        assert isinstance(answer, response_type)
        return answer


REQUESTS = sorted(REQUEST_METHODS.items())


def test_one_method_per_request_and_the_known_pairs() -> None:
    assert len(REQUESTS) == 40
    assert RESPONSE_PAYLOAD_TYPES[2100] == 2101  # application auth
    assert {PAYLOAD_TYPES[pt].__name__ for pt in TRADING_PAYLOAD_TYPES} == {
        "NewOrderReq",
        "CancelOrderReq",
        "AmendOrderReq",
        "AmendPositionSLTPReq",
        "ClosePositionReq",
    }
    assert all(RESPONSE_PAYLOAD_TYPES[pt] == ExecutionEvent.PAYLOAD_TYPE for pt in TRADING_PAYLOAD_TYPES)
    assert {PAYLOAD_TYPES[pt].__name__ for pt in HISTORICAL_PAYLOAD_TYPES} == {
        "GetTrendbarsReq",
        "GetTickDataReq",
        "DealListReq",
        "CashFlowHistoryListReq",
    }


@pytest.mark.parametrize(("payload_type", "method_name"), REQUESTS, ids=[m for _, m in REQUESTS])
def test_signature_follows_the_rules(payload_type: int, method_name: str) -> None:
    request = PAYLOAD_TYPES[payload_type]
    method = getattr(GeneratedRequests, method_name)
    assert inspect.iscoroutinefunction(method)
    params = list(inspect.signature(method).parameters.values())[1:]
    assert params[-1].name == "timeout"
    assert params[-1].kind is inspect.Parameter.KEYWORD_ONLY
    assert params[-1].default is None
    fields = {f.proto_name: f for f in _fields(request)}
    by_name = {p.name: p for p in params[:-1]}
    assert set(by_name) == {f.py_name for f in fields.values()}
    for field in fields.values():
        param = by_name[field.py_name]
        if field.label == "optional":
            assert param.kind is inspect.Parameter.KEYWORD_ONLY
            assert param.default is None
        else:
            assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            if field.label == "required":
                assert param.default is inspect.Parameter.empty
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == [f.py_name for f in fields.values() if f.label != "optional"]  # proto field order
    assert method.__doc__
    assert "Args:" in method.__doc__
    assert "Returns:" in method.__doc__
    assert "Raises:" in method.__doc__


@dataclasses.dataclass(frozen=True)
class _Field:
    proto_name: str
    py_name: str
    label: str


def _fields(request: type[Wrapper]) -> list[_Field]:
    """The request's fields in proto declaration order, as the wrapper names them."""
    descriptor = request.PROTO.DESCRIPTOR
    wrapper_fields = [f.name for f in dataclasses.fields(request)]  # type: ignore[arg-type]
    proto_fields = [f for f in descriptor.fields if not (f.name == "payloadType" and f.number == 1)]
    assert len(wrapper_fields) == len(proto_fields)
    labels = {True: "repeated", False: "optional"}
    return [
        _Field(pf.name, wf, "required" if pf.is_required else labels[pf.is_repeated])
        for pf, wf in zip(proto_fields, wrapper_fields, strict=True)
    ]


@pytest.mark.parametrize(("payload_type", "method_name"), REQUESTS, ids=[m for _, m in REQUESTS])
def test_builds_the_right_protobuf_and_returns_the_paired_wrapper(
    payload_type: int, method_name: str
) -> None:
    request = PAYLOAD_TYPES[payload_type]
    response_type = PAYLOAD_TYPES[RESPONSE_PAYLOAD_TYPES[payload_type]]

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(messages_of(request.PROTO), messages_of(response_type.PROTO))
    def run(expected: Message, answer_message: Message) -> None:
        sender = FakeSender()
        answer = response_type.from_bytes(answer_message.SerializeToString())
        sender.answers[response_type] = answer
        wrapped = request.from_bytes(expected.SerializeToString())
        kwargs: dict[str, Any] = {f.name: getattr(wrapped, f.name) for f in dataclasses.fields(wrapped)}  # type: ignore[arg-type]
        result = asyncio.run(getattr(sender, method_name)(**kwargs, timeout=7.5))
        assert result is answer
        [(sent, sent_type, timeout)] = sender.sent
        assert sent == expected
        assert type(sent) is request.PROTO
        assert sent_type is response_type
        assert timeout == 7.5

    run()


async def test_seed_calls_read_naturally() -> None:
    sender = FakeSender()
    sender.answers[ApplicationAuthRes] = ApplicationAuthRes()
    sender.answers[GetAccountListByAccessTokenRes] = GetAccountListByAccessTokenRes(access_token="tok")
    sender.answers[AccountAuthRes] = AccountAuthRes(ctid_trader_account_id=42)
    sender.answers[SymbolsListRes] = SymbolsListRes(ctid_trader_account_id=42)
    sender.answers[ExecutionEvent] = ExecutionEvent(
        ctid_trader_account_id=42, execution_type=ExecutionType.ORDER_ACCEPTED
    )

    await sender.send_application_auth_req("client-id", "client-secret")
    await sender.send_get_account_list_by_access_token_req("tok")
    assert (await sender.send_account_auth_req(42, "tok")).ctid_trader_account_id == 42
    await sender.send_symbols_list_req(42)
    await sender.send_new_order_req(42, 1, OrderType.MARKET, TradeSide.BUY, 100_000, label="x")

    sent = [m for m, _, _ in sender.sent]
    assert sent[0] == pb.ProtoOAApplicationAuthReq(clientId="client-id", clientSecret="client-secret")
    assert sent[1] == pb.ProtoOAGetAccountListByAccessTokenReq(accessToken="tok")
    assert sent[2] == pb.ProtoOAAccountAuthReq(ctidTraderAccountId=42, accessToken="tok")
    assert sent[3] == pb.ProtoOASymbolsListReq(ctidTraderAccountId=42)
    assert not sent[3].HasField("includeArchivedSymbols")  # omitted optional stays absent
    order = sent[4]
    assert isinstance(order, pb.ProtoOANewOrderReq)
    assert (order.orderType, order.tradeSide, order.volume, order.label) == (1, 1, 100_000, "x")
    assert not order.HasField("limitPrice")
    assert [t for _, t, _ in sender.sent] == [
        ApplicationAuthRes,
        GetAccountListByAccessTokenRes,
        AccountAuthRes,
        SymbolsListRes,
        ExecutionEvent,
    ]


async def test_sequences_and_message_arguments_are_converted() -> None:
    sender = FakeSender()
    from ctrader_typed import MarginCallUpdateRes, SymbolByIdRes

    sender.answers[SymbolByIdRes] = SymbolByIdRes(ctid_trader_account_id=1)
    sender.answers[MarginCallUpdateRes] = MarginCallUpdateRes()
    await sender.send_symbol_by_id_req(1, (1, 2, 3))
    await sender.send_symbol_by_id_req(1, [4])
    call = MarginCall(margin_call_type=NotificationType.MARGIN_LEVEL_THRESHOLD_1, margin_level_threshold=0.5)
    await sender.send_margin_call_update_req(1, call)
    assert list(sender.sent[0][0].symbolId) == [1, 2, 3]  # type: ignore[attr-defined]
    assert list(sender.sent[1][0].symbolId) == [4]  # type: ignore[attr-defined]
    assert sender.sent[2][0].marginCall == call.to_proto()  # type: ignore[attr-defined]
