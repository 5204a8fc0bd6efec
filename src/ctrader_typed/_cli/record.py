"""``ctrader-typed record``: record a session (quotes of some symbols, the account's events) to a file."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ctrader_typed._cli._common import EXIT_USAGE, CLIError, Progress, Settings, add_connection_arguments

__all__ = ["add_parser", "run_record"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    record = sub.add_parser(
        "record",
        help="record a session to a file (for replay and backtests)",
        description="Connect, authorise the account, subscribe to the quotes of the given symbols (with "
        "their timestamps) and "
        "record every frame in and out - redacted: the client secret and tokens are replaced by "
        "placeholders - to FILE until Ctrl-C (or --duration). The file can be replayed with "
        "ctrader_typed.testing.ReplayServer and drives 'ctrader-typed backtest --recording'.",
    )
    record.add_argument("file", metavar="FILE", help="the recording to write (must not exist unless --force)")
    record.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols whose quotes to record")
    record.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    record.add_argument(
        "--max-bytes", type=int, metavar="N", help="start a new segment file every N bytes (rotation)"
    )
    record.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    add_connection_arguments(record)
    record.set_defaults(handler=run_record, interrupt_exit=0)


async def run_record(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import find_symbols, open_session
    from ctrader_typed.recording import Recorder

    if args.duration is not None and args.duration <= 0:
        raise CLIError("--duration must be positive", exit_code=EXIT_USAGE)
    path = Path(args.file)
    try:
        recorder = Recorder(path, max_bytes=args.max_bytes, overwrite=args.force)
    except FileExistsError:
        raise CLIError(f"{path} exists (pass --force to overwrite it)", exit_code=EXIT_USAGE) from None
    except ValueError as exc:
        raise CLIError(str(exc), exit_code=EXIT_USAGE) from None
    settings = Settings.from_args(args)
    try:
        async with open_session(settings, progress, recorder=recorder) as session:
            client = session.client
            if args.symbols:
                with progress.step("looking up " + ", ".join(args.symbols)):
                    symbols = await find_symbols(session, args.symbols)
                with progress.step("subscribing to quotes"):
                    await client.send_subscribe_spots_req(
                        session.account_id,
                        [s.symbol_id for _, s in symbols],
                        subscribe_to_spot_timestamp=True,
                    )
            await client.send_reconcile_req(session.account_id)
            progress.info(
                f"recording to {path}"
                + (f" for {args.duration:g} s" if args.duration else "; press Ctrl-C to stop")
            )
            try:
                await asyncio.sleep(args.duration if args.duration is not None else float("inf"))
            finally:
                recorder.close()
    finally:
        recorder.close()
        progress.info(f"{recorder.frames_written} frames recorded in {len(recorder.segments)} file(s)")
    return 0
