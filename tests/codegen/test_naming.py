"""The generator's naming rules, in one place."""

from __future__ import annotations

import pytest

from codegen import naming


@pytest.mark.parametrize(
    ("proto", "python"),
    [
        ("skipSWAPPeriods", "skip_swap_periods"),
        ("ctidTraderAccountId", "ctid_trader_account_id"),
        ("utcTimestampInMinutes", "utc_timestamp_in_minutes"),
        ("swapRollover3Days", "swap_rollover_3_days"),
        ("positionUnrealizedPnL", "position_unrealized_pnl"),
        ("isLive", "is_live"),
        ("SLTP", "sltp"),
        ("volume", "volume"),
        ("type", "type"),
        ("from", "from_"),
        ("timeout", "timeout_"),
        ("self", "self_"),
    ],
)
def test_snake_case(proto: str, python: str) -> None:
    assert naming.snake_case(proto) == python


def test_snake_case_rejects_unsplittable_names() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        naming.snake_case("bad-name")


def test_prefixes_are_dropped_and_collisions_get_common() -> None:
    names = naming.public_names(
        [
            "ProtoOAErrorRes",
            "ProtoErrorRes",
            "ProtoHeartbeatEvent",
            "ProtoMessage",
            "ProtoOASpotEvent",
            "ProtoPayloadType",
            "ProtoOAPayloadType",
        ]
    )
    assert names == {
        "ProtoOAErrorRes": "ErrorRes",
        "ProtoErrorRes": "CommonErrorRes",
        "ProtoHeartbeatEvent": "HeartbeatEvent",
        "ProtoMessage": "ProtoMessage",
        "ProtoOASpotEvent": "SpotEvent",
        "ProtoPayloadType": "CommonPayloadType",
        "ProtoOAPayloadType": "PayloadType",
    }


def test_duplicate_public_names_are_refused() -> None:
    with pytest.raises(ValueError, match="both map"):
        # ProtoThing collides with ProtoOAThing, so it becomes CommonThing: taken already.
        naming.public_names(["ProtoOAThing", "ProtoThing", "ProtoOACommonThing"])


@pytest.mark.parametrize(
    ("request_name", "method"),
    [
        ("ProtoOAApplicationAuthReq", "send_application_auth_req"),
        ("ProtoOAGetAccountListByAccessTokenReq", "send_get_account_list_by_access_token_req"),
        ("ProtoOAGetDynamicLeverageByIDReq", "send_get_dynamic_leverage_by_id_req"),
        ("ProtoOAAmendPositionSLTPReq", "send_amend_position_sltp_req"),
        ("ProtoOAGetPositionUnrealizedPnLReq", "send_get_position_unrealized_pnl_req"),
    ],
)
def test_method_names(request_name: str, method: str) -> None:
    assert naming.method_name(request_name) == method
