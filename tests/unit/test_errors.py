"""The error tree: server messages become the most specific typed error, with nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ctrader_typed import (
    APIError,
    AuthenticationError,
    CommonErrorCode,
    CommonErrorRes,
    CTraderError,
    ErrorCode,
    ErrorRes,
    OrderError,
    OrderErrorEvent,
    RateLimitError,
    RequestTimeoutError,
)
from ctrader_typed.errors import api_error_from, error_code_of, maintenance_end_from

END = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def test_maintenance_units_differ_by_message_and_are_also_judged_by_size() -> None:
    seconds, millis = int(END.timestamp()), int(END.timestamp()) * 1000
    assert maintenance_end_from(seconds, unit_hint="s") == END
    assert maintenance_end_from(millis, unit_hint="ms") == END
    assert maintenance_end_from(millis, unit_hint="s") == END  # a server sending ms where s is documented


@pytest.mark.parametrize("value", [None, 0, -5, 253_402_300_800_000, 2**63 - 1])
def test_unknown_or_unrepresentable_maintenance_ends_are_none(value: int | None) -> None:
    assert maintenance_end_from(value, unit_hint="ms") is None
    assert maintenance_end_from(value, unit_hint="s") is None


def test_oa_error_keeps_every_field_and_the_raw_message() -> None:
    raw = ErrorRes(
        ctid_trader_account_id=7,
        error_code="SERVER_IS_UNDER_MAINTENANCE",
        description="Back soon",
        maintenance_end_timestamp=int(END.timestamp()),
    )
    error = api_error_from(raw)
    assert type(error) is APIError
    assert (error.error_code, error.description, error.account_id, error.maintenance_end) == (
        "SERVER_IS_UNDER_MAINTENANCE",
        "Back soon",
        7,
        END,
    )
    assert error.raw is raw
    assert (
        str(error)
        == "SERVER_IS_UNDER_MAINTENANCE: Back soon (account 7) (maintenance until 2026-11-28T06:00:00+00:00)"
    )


def test_the_subclass_follows_the_code() -> None:
    blocked = api_error_from(ErrorRes(error_code="BLOCKED_PAYLOAD_TYPE", retry_after=3))
    assert isinstance(blocked, RateLimitError)
    assert blocked.retry_after == 3.0
    assert isinstance(api_error_from(ErrorRes(error_code="CH_ACCESS_TOKEN_INVALID")), AuthenticationError)
    common = api_error_from(CommonErrorRes(error_code="FRAME_TOO_LONG"))
    assert type(common) is APIError
    assert common.account_id is None
    unknown = api_error_from(ErrorRes(error_code="SOMETHING_NEW_FROM_SPOTWARE"))
    assert type(unknown) is APIError
    assert unknown.error_code == "SOMETHING_NEW_FROM_SPOTWARE"


def test_order_errors_carry_order_and_position() -> None:
    raw = OrderErrorEvent(
        ctid_trader_account_id=1, error_code="TRADING_BAD_VOLUME", order_id=5, position_id=6
    )
    error = api_error_from(raw)
    assert isinstance(error, OrderError)
    assert (error.order_id, error.position_id, error.raw) == (5, 6, raw)


def test_one_root_and_timeouts_are_timeouts() -> None:
    assert issubclass(APIError, CTraderError)
    assert issubclass(RequestTimeoutError, TimeoutError)
    assert issubclass(RequestTimeoutError, CTraderError)


def test_known_codes_are_enum_members_that_still_equal_their_text() -> None:
    error = api_error_from(OrderErrorEvent(ctid_trader_account_id=1, error_code="NOT_ENOUGH_MONEY"))
    assert error.error_code == ErrorCode.NOT_ENOUGH_MONEY
    assert error.error_code == "NOT_ENOUGH_MONEY"
    assert "NOT_ENOUGH_MONEY" == error.error_code  # noqa: SIM300 - the reflected comparison holds too
    assert error.error_code in {"NOT_ENOUGH_MONEY"}
    assert error.error_code != ErrorCode.TRADING_BAD_VOLUME
    assert str(error) == "NOT_ENOUGH_MONEY (account 1)"
    match error.error_code:
        case ErrorCode.NOT_ENOUGH_MONEY:
            matched = True
        case _:
            matched = False
    assert matched
    assert error.error_code is ErrorCode.NOT_ENOUGH_MONEY
    # Protocol-level codes come from CommonErrorCode, whichever message carried them.
    blocked = api_error_from(ErrorRes(error_code="BLOCKED_PAYLOAD_TYPE", retry_after=1))
    assert blocked.error_code is CommonErrorCode.BLOCKED_PAYLOAD_TYPE
    assert (
        api_error_from(CommonErrorRes(error_code="FRAME_TOO_LONG")).error_code
        is CommonErrorCode.FRAME_TOO_LONG
    )


def test_unknown_and_local_codes_stay_plain_text() -> None:
    unknown = api_error_from(ErrorRes(error_code="SOMETHING_NEW_FROM_SPOTWARE", description="?"))
    assert type(unknown.error_code) is str
    assert unknown.error_code == "SOMETHING_NEW_FROM_SPOTWARE"
    assert str(unknown) == "SOMETHING_NEW_FROM_SPOTWARE: ?"
    local = AuthenticationError("NO_REFRESH_TOKEN", "no token set")
    assert type(local.error_code) is str
    assert error_code_of("ORDER_NOT_FOUND") is ErrorCode.ORDER_NOT_FOUND
    assert error_code_of("order_not_found") == "order_not_found"  # no guessing: names are exact


def test_an_enum_member_given_as_the_code_is_kept() -> None:
    error = OrderError(ErrorCode.POSITION_NOT_FOUND, "gone", order_id=3)
    assert error.error_code is ErrorCode.POSITION_NOT_FOUND
    assert str(error) == "POSITION_NOT_FOUND: gone"


def test_error_code_enums_are_the_schema_names_with_their_numbers() -> None:
    assert ErrorCode.CH_ACCESS_TOKEN_INVALID.value == "CH_ACCESS_TOKEN_INVALID"
    assert ErrorCode.CH_ACCESS_TOKEN_INVALID.number == 104
    assert CommonErrorCode.BLOCKED_PAYLOAD_TYPE.number == 11
    assert all(member.value == member.name for member in [*ErrorCode, *CommonErrorCode])
    assert ErrorCode("TRADING_BAD_VOLUME") is ErrorCode.TRADING_BAD_VOLUME
