"""The request policy table: precise failures, and generated flags equal to what the SDK does.

The "matches today" tests pin the values read from the code that held these rules before the
table existed: the client (``_IDEMPOTENT_SUCCESS``, the ``ALREADY_SUBSCRIBED`` check while
re-subscribing, ``TRADING_PAYLOAD_TYPES``), the session state (``SessionState.record``/``forget``)
and the simulator's handlers (application auth first, account checks, trading scope in ``_trade``).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from codegen import load, model, policy
from codegen.__main__ import DEFAULT_PROTOS, DEFAULT_TEMPLATES, generate, main
from codegen.errors import CodegenError
from ctrader_typed._generated import registry
from ctrader_typed._generated.registry import REQUEST_POLICIES, RequestPolicy

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = """\
[requests]
ProtoOAPingReq = { scope = "application", historical = true }
ProtoOANewOrderReq = { scope = "trading", trading = true, response = "ProtoOAExecutionEvent" }
"""


@pytest.fixture(scope="module")
def mini() -> descriptor_pb2.FileDescriptorSet:
    return load.run_protoc(FIXTURES / "basic").descriptors


def _table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _build_error(mini: descriptor_pb2.FileDescriptorSet, tmp_path: Path, text: str) -> str:
    with pytest.raises(CodegenError) as caught:
        model.build(mini, policy.load(_table(tmp_path, text)))
    return str(caught.value)


def _load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(CodegenError) as caught:
        policy.load(_table(tmp_path, text))
    return str(caught.value)


def test_the_fixture_table_builds(mini: descriptor_pb2.FileDescriptorSet, tmp_path: Path) -> None:
    built = model.build(mini, policy.load(_table(tmp_path, GOOD)))
    ping, order = built.requests
    assert (ping.policy.scope, ping.policy.historical, ping.policy.trading) == ("application", True, False)
    assert (order.response.proto_name, order.policy.trading) == ("ProtoOAExecutionEvent", True)


def test_a_request_without_an_entry_fails_precisely(
    mini: descriptor_pb2.FileDescriptorSet, tmp_path: Path
) -> None:
    text = _build_error(
        mini, tmp_path, GOOD.replace('ProtoOAPingReq = { scope = "application", historical = true }\n', "")
    )
    assert text.startswith("Mini.proto: request ProtoOAPingReq has no entry in the request policy table")
    assert 'ProtoOAPingReq = { scope = "account" }' in text


def test_an_entry_naming_no_message_fails_with_its_line(
    mini: descriptor_pb2.FileDescriptorSet, tmp_path: Path
) -> None:
    text = _build_error(mini, tmp_path, GOOD + 'ProtoOAPongReq = { scope = "none" }\n')
    assert text.startswith("policy.toml:4: ProtoOAPongReq names no message of the schema")


def test_an_entry_naming_a_message_that_is_no_request_fails(
    mini: descriptor_pb2.FileDescriptorSet, tmp_path: Path
) -> None:
    text = _build_error(mini, tmp_path, GOOD + 'ProtoOAPingRes = { scope = "none" }\n')
    assert text.startswith("policy.toml:4: ProtoOAPingRes (Mini.proto) is not a request")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            '{ scope = "accounts" }',
            "scope = 'accounts' is not one of 'none', 'application', 'account', 'trading'",
        ),
        ("{ historical = true }", "ProtoOAPingReq has no scope"),
        ('{ scope = "none", historical = "yes" }', "historical = 'yes' must be true or false"),
        ('{ scope = "none", trading = 1 }', "trading = 1 must be true or false"),
        ('{ scope = "none", histrical = true }', "unknown key histrical"),
        ('{ scope = "none", restore = "resubscribe" }', "restore = 'resubscribe' is not one of"),
        ('{ scope = "none", restore = "subscribe" }', "restore = 'subscribe' needs a subscription"),
        ('{ scope = "none", subscription = "spots" }', "subscription = 'spots' needs restore"),
        (
            '{ scope = "none", subscription = "bars", restore = "subscribe" }',
            "subscription = 'bars' is not one of",
        ),
        ('{ scope = "none", already_done = "already subscribed" }', "must be an error code"),
        ('{ scope = "account", trading = true }', "a trading request needs scope = 'trading', not 'account'"),
        ('{ scope = "none", response = 3 }', "response = 3 must name a message"),
        ('"account"', "ProtoOAPingReq must be an inline table"),
    ],
)
def test_an_invalid_value_fails_with_its_line(tmp_path: Path, entry: str, expected: str) -> None:
    text = _load_error(tmp_path, f"[requests]\nProtoOAPingReq = {entry}\n")
    assert text.startswith("policy.toml:2: ProtoOAPingReq")
    assert expected in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[requests\n", "not valid TOML"),
        ("[requests]\n[extras]\n", "unexpected extras"),
        ("title = 1\n", "unexpected title"),
        ("", "no [requests] table"),
    ],
)
def test_a_malformed_file_fails(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _load_error(tmp_path, text)


def test_a_missing_file_fails_precisely(tmp_path: Path) -> None:
    with pytest.raises(CodegenError, match="the request policy table is missing"):
        policy.load(tmp_path / "policy.toml")


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        (
            'response = "ProtoOAExecutionEvent"',
            'response = "ProtoOAFillEvent"',
            "ProtoOAFillEvent is not defined",
        ),
        (
            'ProtoOAPingReq = { scope = "application"',
            'ProtoOAPingReq = { scope = "account"',
            "scope = 'account' needs the request to name an account",
        ),
        (
            'ProtoOANewOrderReq = { scope = "trading", trading = true,',
            'ProtoOANewOrderReq = { scope = "application",',
            "names an account (ctidTraderAccountId) but has scope = 'application'",
        ),
        (
            "historical = true",
            'already_done = "ALREADY_PINGED"',
            "already_done = 'ALREADY_PINGED' is no value of an error-code enum",
        ),
    ],
)
def test_an_entry_that_does_not_fit_the_schema_fails(
    mini: descriptor_pb2.FileDescriptorSet, tmp_path: Path, replace: str, by: str, expected: str
) -> None:
    assert replace in GOOD
    assert expected in _build_error(mini, tmp_path, GOOD.replace(replace, by))


def test_cli_takes_another_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(tmp_path, GOOD.replace("historical = true", 'scope2 = "x"'))
    argv = ["--protos", str(FIXTURES / "basic"), "--policy", str(table), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "unknown key scope2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_table_is_an_input_of_the_manifest() -> None:
    assert '"protos/policy.toml"' in generate(DEFAULT_PROTOS, DEFAULT_TEMPLATES)["manifest.json"]


# -- the generated table equals what the client and the simulator did before it existed ------------

TRADING = {2106, 2108, 2109, 2110, 2111}  # New/Cancel/AmendOrder, AmendPositionSLTP, ClosePosition


def test_request_policy_has_the_agreed_fields() -> None:
    fields = [(f.name, f.type) for f in dataclasses.fields(RequestPolicy)]
    assert fields == [
        ("request", "int"),
        ("response", "int"),
        ("method", "str"),
        ("historical", "bool"),
        ("trading", "bool"),
        ("scope", "RequestScope"),
        ("already_done", "str | None"),
        ("restore", "RestoreAction | None"),
        ("subscription", "SubscriptionKind | None"),
    ]
    assert typing.get_args(registry.RequestScope) == policy.SCOPES
    assert typing.get_args(registry.RestoreAction) == policy.RESTORES
    assert typing.get_args(registry.SubscriptionKind) == policy.SUBSCRIPTIONS


def test_every_request_has_a_policy_keyed_by_its_payload_type() -> None:
    requests = {pt for pt, cls in registry.PAYLOAD_TYPES.items() if cls.__name__.endswith("Req")}
    assert set(REQUEST_POLICIES) == requests
    for payload_type, p in REQUEST_POLICIES.items():
        assert p.request == payload_type
        assert registry.RESPONSE_PAYLOAD_TYPES[payload_type] == p.response
        assert registry.REQUEST_METHODS[payload_type] == p.method


def test_trading_is_the_five_order_requests_answered_by_execution_events() -> None:
    assert registry.TRADING_PAYLOAD_TYPES == TRADING
    assert {pt for pt, p in REQUEST_POLICIES.items() if p.response == 2126} == TRADING
    # The simulator checks the trading scope for exactly these (its _trade).
    assert {pt for pt, p in REQUEST_POLICIES.items() if p.scope == "trading"} == TRADING


def test_historical_requests() -> None:
    names = {registry.PAYLOAD_TYPES[pt].__name__ for pt in registry.HISTORICAL_PAYLOAD_TYPES}
    assert names == {"GetTrendbarsReq", "GetTickDataReq", "DealListReq", "CashFlowHistoryListReq"}


def test_scopes_match_the_simulators_checks() -> None:
    # Every request but application auth needs the application authorised first.
    assert {pt for pt, p in REQUEST_POLICIES.items() if p.scope == "none"} == {2100}
    # A request naming an account needs it authorised on the connection, but account auth itself.
    for payload_type, p in REQUEST_POLICIES.items():
        names_account = any(
            f.name == "ctidTraderAccountId"
            for f in registry.PAYLOAD_TYPES[payload_type].PROTO.DESCRIPTOR.fields
        )
        assert (p.scope in ("account", "trading")) == (names_account and payload_type != 2102), p.method


def test_already_done_codes() -> None:
    assert {pt: p.already_done for pt, p in REQUEST_POLICIES.items() if p.already_done} == {
        2100: "CH_CLIENT_ALREADY_AUTHENTICATED",  # ApplicationAuthReq
        2102: "ALREADY_LOGGED_IN",  # AccountAuthReq
        2127: "ALREADY_SUBSCRIBED",  # SubscribeSpotsReq
        2135: "ALREADY_SUBSCRIBED",  # SubscribeLiveTrendbarReq
        2156: "ALREADY_SUBSCRIBED",  # SubscribeDepthQuotesReq
    }


def test_restore_actions_match_the_session_state() -> None:
    restore = {
        registry.PAYLOAD_TYPES[pt].__name__: (p.restore, p.subscription)
        for pt, p in REQUEST_POLICIES.items()
        if p.restore is not None
    }
    assert restore == {
        "ApplicationAuthReq": ("application_auth", None),
        "AccountAuthReq": ("account_auth", None),
        "AccountLogoutReq": ("account_logout", None),
        "SubscribeSpotsReq": ("subscribe", "spots"),
        "UnsubscribeSpotsReq": ("unsubscribe", "spots"),
        "SubscribeLiveTrendbarReq": ("subscribe", "live_trendbar"),
        "UnsubscribeLiveTrendbarReq": ("unsubscribe", "live_trendbar"),
        "SubscribeDepthQuotesReq": ("subscribe", "depth"),
        "UnsubscribeDepthQuotesReq": ("unsubscribe", "depth"),
    }


def test_requests_md_shows_the_flags() -> None:
    text = (Path(registry.__file__).parent / "REQUESTS.md").read_text(encoding="utf-8")
    header = "| Coroutine | Request (payload type) | Answer (payload type) | Rate class | Needs | Trading |"
    assert header in text
    row = (
        "| `send_subscribe_spots_req` | `SubscribeSpotsReq` (2127) | `SubscribeSpotsRes` (2128) | standard |"
    )
    assert row + " account |  | `ALREADY_SUBSCRIBED` | spots subscription made again |" in text
    assert (
        "| `send_get_trendbars_req` | `GetTrendbarsReq` (2137) | `GetTrendbarsRes` (2138) | historical |"
        in text
    )
