"""Find the account a user means from what they know: a login, "live", "demo", or nothing.

cTrader shows traders their account's **login** (e.g. 5100002); the Open API addresses
accounts by ``ctidTraderAccountId`` (e.g. 44000002). ``resolve_account`` asks the server
which accounts a token reaches (``GetAccountListByAccessTokenReq``, application auth only)
and picks the one meant::

    account = await resolve_account(client, tokens.access_token, 5100002)   # a login
    account = await resolve_account(client, tokens.access_token, "demo")    # the only demo account
    account = await resolve_account(client, tokens.access_token)            # the only account
    await client.send_account_auth_req(account.ctid_trader_account_id, tokens.access_token)

A number is matched against both the ids and the logins of the listed accounts (the
logins come from the list's ``traderLogin``); a choice that matches no account raises
``AccountNotFoundError``, one that matches several raises ``AmbiguousAccountError``, both
listing the accounts the token does reach. Live and demo accounts are authorised on
different hosts: ``account.is_live`` tells which connection to use.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctrader_typed._generated.messages import CtidTraderAccount
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed.errors import CTraderError

__all__ = [
    "AccountChoice",
    "AccountNotFoundError",
    "AccountResolutionError",
    "AmbiguousAccountError",
    "describe_account",
    "list_accounts",
    "pick_account",
    "resolve_account",
]

AccountChoice = int | str | None
"""What a user may give: an account id or login (``int``, or its digits as ``str``),
``"live"`` or ``"demo"`` (the only account of that kind), or ``None`` (the only account)."""

_KINDS: dict[str, bool] = {"live": True, "demo": False}


class AccountResolutionError(CTraderError, LookupError):
    """No single account matches what was asked for.

    Attributes:
        choice: What was asked for.
        candidates: The accounts that matched (several) or, when none did, every account
            the token reaches.
    """

    def __init__(self, message: str, choice: AccountChoice, candidates: Sequence[CtidTraderAccount]) -> None:
        super().__init__(message)
        self.choice = choice
        self.candidates: tuple[CtidTraderAccount, ...] = tuple(candidates)


class AccountNotFoundError(AccountResolutionError):
    """No account of the token matches (``candidates`` lists the ones it reaches)."""


class AmbiguousAccountError(AccountResolutionError):
    """Several accounts match (``candidates`` lists them): say which, by id or login."""


def describe_account(account: CtidTraderAccount) -> str:
    """One line for a person: ``44000002 (login 5100002, demo, SimBroker)``."""
    parts: list[str] = []
    if account.trader_login is not None:
        parts.append(f"login {account.trader_login}")
    parts.append("live" if account.is_live else "demo")
    if account.broker_title_short:
        parts.append(account.broker_title_short)
    return f"{account.ctid_trader_account_id} ({', '.join(parts)})"


def _listing(accounts: Sequence[CtidTraderAccount]) -> str:
    return "; ".join(describe_account(a) for a in accounts) if accounts else "none"


async def list_accounts(
    client: GeneratedRequests, access_token: str, *, timeout: float | None = None
) -> tuple[CtidTraderAccount, ...]:
    """Every account (live and demo) the access token reaches, as the server lists them.

    Needs only application auth on the connection.
    """
    answer = await client.send_get_account_list_by_access_token_req(access_token, timeout=timeout)
    return answer.ctid_trader_account


def pick_account(
    accounts: Sequence[CtidTraderAccount],
    choice: AccountChoice = None,
    *,
    live: bool | None = None,
) -> CtidTraderAccount:
    """The one account of ``accounts`` that ``choice`` means (no request; see ``resolve_account``).

    Args:
        accounts: The accounts a token reaches (``list_accounts``).
        choice: An id or login (``int`` or digits), ``"live"``/``"demo"``, or ``None`` for
            the only account.
        live: Only consider live (``True``) or demo (``False``) accounts.

    Raises:
        AccountNotFoundError: Nothing matches.
        AmbiguousAccountError: Several accounts match.
        ValueError: ``choice`` is a string that is neither a number nor "live"/"demo", or
            a kind that contradicts ``live``.
    """
    number: int | None = None
    if isinstance(choice, str):
        text = choice.strip().lower()
        if text in _KINDS:
            if live is not None and live != _KINDS[text]:
                raise ValueError(f"asked for a {text} account with live={live}")
            live = _KINDS[text]
        elif text.isdigit():
            number = int(text)
        else:
            raise ValueError(f"an account is an id, a login, 'live' or 'demo', not {choice!r}")
    elif isinstance(choice, bool):
        raise TypeError("an account is an id, a login, 'live' or 'demo', not a bool")
    elif choice is not None:
        number = choice
    pool = [a for a in accounts if live is None or bool(a.is_live) == live]
    kind = "" if live is None else ("live " if live else "demo ")
    if number is None:
        if len(pool) == 1:
            return pool[0]
        if not pool:
            raise AccountNotFoundError(
                f"the token reaches no {kind}account (it reaches: {_listing(accounts)})", choice, accounts
            )
        raise AmbiguousAccountError(
            f"the token reaches {len(pool)} {kind}accounts: {_listing(pool)}; give the account's id or login",
            choice,
            pool,
        )
    by_id = [a for a in pool if a.ctid_trader_account_id == number]
    by_login = [a for a in pool if a.trader_login == number and a not in by_id]
    matches = by_id + by_login
    if len(matches) == 1:
        return matches[0]
    if not matches:
        unknown_logins = sum(1 for a in pool if a.trader_login is None)
        note = f" ({unknown_logins} of them without a login in the list)" if unknown_logins else ""
        raise AccountNotFoundError(
            f"no {kind}account of the token has the id or login {number}; it reaches: {_listing(pool)}{note}",
            choice,
            accounts,
        )
    raise AmbiguousAccountError(
        f"{number} names {len(matches)} {kind}accounts: {_listing(matches)}; "
        "give the account id, or say live/demo",
        choice,
        matches,
    )


async def resolve_account(
    client: GeneratedRequests,
    access_token: str,
    choice: AccountChoice = None,
    *,
    live: bool | None = None,
    timeout: float | None = None,
) -> CtidTraderAccount:
    """The account of ``access_token`` that ``choice`` means, asked of the server.

    Args:
        client: A connected client with the application authorised (any host: the list
            names live and demo accounts alike).
        access_token: The token whose accounts are considered.
        choice: ``5100002`` (a login as shown in cTrader) or ``44000002`` (an account id),
            as ``int`` or digits; ``"live"`` or ``"demo"`` for the only account of that
            kind; ``None`` for the only account of the token.
        live: Only consider live (``True``) or demo (``False``) accounts, e.g. to tell
            apart a login that exists at two brokers.
        timeout: Seconds to wait for the list; ``None`` uses the client's default.

    Returns:
        The account as listed (``ctid_trader_account_id``, ``is_live``, ``trader_login``,
        ``broker_title_short``).

    Raises:
        AccountNotFoundError: The token reaches no such account.
        AmbiguousAccountError: Several accounts match.
        ValueError: ``choice`` is not a number, "live" or "demo".
        APIError: The server refused the listing (e.g. ``CH_ACCESS_TOKEN_INVALID``).
    """
    accounts = await list_accounts(client, access_token, timeout=timeout)
    return pick_account(accounts, choice, live=live)
