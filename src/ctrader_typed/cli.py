"""The ``ctrader-typed`` command line: argparse wiring only; the commands live in ``ctrader_typed._cli``.

Data goes to stdout, progress and errors to stderr. Every failure the user can fix
(bad input, missing credentials, an expired token) is one line on stderr and a non-zero
exit status: 2 for bad input or configuration, 1 for everything else, 130 on Ctrl-C
(``quotes``, ``account`` and ``sim`` run until Ctrl-C and then exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from importlib.metadata import version
from typing import Any, cast

from ctrader_typed._cli import _common, _ui, account, auth, backtest, demo, market, record, sim
from ctrader_typed._cli._errors import describe

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace, _common.Progress], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctrader-typed",
        description="Tools for Spotware's cTrader Open API: sign in, look at accounts, symbols, "
        "quotes, bars and a live account, run the offline demo or the local simulator.",
        epilog="Run 'ctrader-typed COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('ctrader-typed')}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    auth.add_parser(sub)
    market.add_parsers(sub)
    account.add_parser(sub)
    demo.add_parser(sub)
    record.add_parser(sub)
    backtest.add_parser(sub)
    sim.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "sim" in args_list:  # the simulator's entry point parses (and documents) its own options
        index = args_list.index("sim")
        if set(args_list[:index]) <= {"-q", "--quiet"}:
            return sim.run(args_list[index + 1 :])
    parser = build_parser()
    args = parser.parse_args(args_list)
    progress = _common.Progress(quiet=args.quiet)
    handler = cast(Handler, args.handler)
    try:
        return asyncio.run(handler(args, progress))
    except BrokenPipeError:  # stdout closed early (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        _ui.end_interrupted_line()
        code: int = getattr(args, "interrupt_exit", 130)
        if code:
            progress.info("interrupted")
        return code
    except Exception as exc:
        message, status = describe(exc)
        if message is None:
            raise
        sys.stderr.write(f"ctrader-typed {args.command}: {progress.styled('error:', 'bold red')} {message}\n")
        return status


if __name__ == "__main__":
    sys.exit(main())
