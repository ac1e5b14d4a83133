from bot.sim import errors as E


def test_codes_and_exact_messages():
    assert E.transfer_insufficient().body() == {"code": -5013, "msg": "Asset transfer failed: insufficient balance"}
    assert E.spot_insufficient_balance().msg == "Account has insufficient balance for requested action."
    assert E.spot_would_take().code == -2010
    assert (E.margin_insufficient().code, E.balance_insufficient().code) == (-2019, -2018)
    assert E.filter_failure("NOTIONAL").msg == "Filter failure: NOTIONAL"
    assert E.perp_min_notional(__import__("decimal").Decimal("5.0")).msg == (
        "Order's notional must be no smaller than 5 (unless you choose reduce only)."
    )
    assert E.invalid_leverage(200).msg == "Leverage 200 is not valid"
    assert E.margin_type_unchanged().msg == "No need to change margin type."
    assert E.unknown_order().code == -2011 and E.order_does_not_exist().code == -2013
    assert E.post_only_rejected().code == -5022 and E.invalid_symbol().code == -1121
    assert E.SimError(-1, "x", 503).http_status == 503
