"""``ctrader-typed demo``: the whole flow, narrated, against the built-in simulator (or the demo server).

Without credentials (the default) everything runs in this process against a local
simulator and nothing leaves the machine: the browser-less OAuth exchange, application
auth, accounts, account auth, symbols, a few live quotes, a market order and its fill,
closing the position, and a page of historical bars.

With ``CTRADER_CLIENT_ID``/``CTRADER_CLIENT_SECRET`` and tokens stored by
``ctrader-typed auth`` (or ``CTRADER_ACCESS_TOKEN``), the same runs against
demo.ctraderapi.com on a demo account (never a live one).
"""

from __future__ import annotations

import argparse

from ctrader_typed._cli._common import Progress, add_connection_arguments

HELP = "run the whole flow against the built-in simulator (or the demo server)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help=HELP,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sim",
        action="store_true",
        help="use the built-in simulator even when credentials and tokens are available",
    )
    parser.add_argument("--symbol", default="EURUSD", help="symbol to quote and trade (default EURUSD)")
    parser.add_argument("--quotes", type=int, default=5, metavar="N", help="live quotes to show (default 5)")
    add_connection_arguments(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._demo_flow import run_demo  # the client and simulator load only now

    return await run_demo(args, progress)
