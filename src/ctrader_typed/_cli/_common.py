"""What every ``ctrader-typed`` subcommand shares: settings, errors, progress, tables, parsing."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from ctrader_typed._cli import _ui
from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed.oauth import DEFAULT_BASE_URL, DEFAULT_REDIRECT_URI
from ctrader_typed.tokens import FileTokenStore, default_token_dir

if TYPE_CHECKING:
    from ctrader_typed._client.options import Transport
    from ctrader_typed._generated.messages import CtidTraderAccount

__all__ = [
    "CLIError",
    "Download",
    "Progress",
    "Settings",
    "add_connection_arguments",
    "parse_account",
    "parse_period",
    "parse_time",
    "render_table",
    "suggest",
]

ENVIRONMENTS = ("demo", "live")
HOSTS = {"demo": "demo.ctraderapi.com", "live": "live.ctraderapi.com"}
DEFAULT_PORT = 5035
TRANSPORTS = ("tls", "websocket")

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A failure to report as one line on stderr, with a non-zero exit status."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Where to connect and as whom; flags win over environment variables."""

    environment: str
    host: str
    port: int
    ca_file: str | None
    oauth_url: str
    redirect_uri: str
    client_id: str | None = dataclasses.field(default=None)
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    access_token: str | None = dataclasses.field(default=None, repr=False)
    account: int | str | None = None
    """What ``--account`` asked for: an account id or trader login (``int``), ``"live"`` or
    ``"demo"`` (the only account of that kind), or ``None`` (see ``_session.choose_account``)."""
    environment_given: bool = False
    """``--env`` or ``CTRADER_ENV`` was set (rather than the demo default)."""
    host_given: bool = False
    """``--host`` or ``CTRADER_HOST`` was set: every connection goes there, whatever the account."""
    hosts: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(HOSTS))
    """The host of each environment, used when ``host_given`` is false."""
    token_dir: Path | None = None
    transport: Transport = "tls"
    """``--transport``: protobuf over TLS or over WebSocket (the same host and port)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        environment_text = args.env or _env("CTRADER_ENV")
        environment = (environment_text or "demo").lower()
        if environment not in ENVIRONMENTS:
            raise CLIError(f"CTRADER_ENV must be 'demo' or 'live', not {environment!r}", exit_code=EXIT_USAGE)
        port_text = args.port or _env("CTRADER_PORT")
        try:
            port = int(port_text) if port_text else DEFAULT_PORT
        except ValueError:
            raise CLIError(f"port must be a number, not {port_text!r}", exit_code=EXIT_USAGE) from None
        account = parse_account(args.account or _env("CTRADER_ACCOUNT_ID"))
        token_dir = getattr(args, "token_dir", None)
        host = args.host or _env("CTRADER_HOST")
        transport = (getattr(args, "transport", None) or _env("CTRADER_TRANSPORT") or "tls").lower()
        if transport not in TRANSPORTS:
            raise CLIError(
                f"CTRADER_TRANSPORT must be {' or '.join(map(repr, TRANSPORTS))}, not {transport!r}",
                exit_code=EXIT_USAGE,
            )
        return cls(
            environment=environment,
            environment_given=environment_text is not None,
            host=host or HOSTS[environment],
            host_given=host is not None,
            port=port,
            ca_file=args.ca_file or _env("CTRADER_CA_FILE"),
            oauth_url=args.oauth_url or _env("CTRADER_OAUTH_URL") or DEFAULT_BASE_URL,
            redirect_uri=args.redirect_uri or _env("CTRADER_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
            client_id=args.client_id or _env("CTRADER_CLIENT_ID"),
            client_secret=args.client_secret or _env("CTRADER_CLIENT_SECRET"),
            access_token=args.access_token or _env("CTRADER_ACCESS_TOKEN"),
            account=account,
            token_dir=Path(token_dir) if token_dir else None,
            transport=cast("Transport", transport),
        )

    def host_for(self, account: CtidTraderAccount) -> str:
        """Where ``account`` is authorised: the given host, else its environment's (live or demo)."""
        if self.host_given:
            return self.host
        return self.hosts["live" if account.is_live else "demo"]

    def credentials(self) -> tuple[str, str]:
        """The application's client id and secret, or a one-line error saying how to give them."""
        missing = [
            name
            for name, value in (
                ("CTRADER_CLIENT_ID", self.client_id),
                ("CTRADER_CLIENT_SECRET", self.client_secret),
            )
            if not value
        ]
        if missing:
            raise CLIError(
                f"missing application credentials: set {' and '.join(missing)} "
                "(or pass --client-id/--client-secret)",
                exit_code=EXIT_USAGE,
            )
        assert self.client_id is not None
        assert self.client_secret is not None
        return self.client_id, self.client_secret

    def token_store(self) -> FileTokenStore:
        client_id, _ = self.credentials()
        return FileTokenStore.for_client(client_id, self.environment, directory=self.token_dir)

    def ssl_context(self) -> ssl.SSLContext:
        """System trust, or only ``ca_file`` (a simulator's CA) when one is given."""
        if self.ca_file is None:
            return ssl.create_default_context()
        if not Path(self.ca_file).is_file():
            raise CLIError(f"CA file {self.ca_file} does not exist", exit_code=EXIT_USAGE)
        return ssl.create_default_context(cafile=self.ca_file)

    def http_verify(self) -> ssl.SSLContext | bool:
        return self.ssl_context() if self.ca_file is not None else True


def parse_account(text: str | None) -> int | str | None:
    """``--account``: an id or login (digits), ``live`` or ``demo``; anything else is a usage error."""
    if text is None or not text.strip():
        return None
    value = text.strip().lower()
    if value in ENVIRONMENTS:
        return value
    if value.isdigit():
        return int(value)
    raise CLIError(
        f"--account takes an account id, a trader login (as shown in cTrader), 'live' or 'demo', not {text!r}",
        exit_code=EXIT_USAGE,
    )


def add_connection_arguments(parser: argparse.ArgumentParser, *, account: bool = True) -> None:
    """The flags every networked subcommand takes; each falls back to an environment variable."""
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output"
    )
    group = parser.add_argument_group(
        "connection and credentials",
        "Each flag falls back to the environment variable named in its help. Prefer the variables "
        "for secrets: command lines are visible to other local users.",
    )
    group.add_argument("--env", choices=ENVIRONMENTS, help="demo or live servers (CTRADER_ENV; default demo)")
    group.add_argument("--client-id", metavar="ID", help="application client id (CTRADER_CLIENT_ID)")
    group.add_argument(
        "--client-secret", metavar="SECRET", help="application client secret (CTRADER_CLIENT_SECRET)"
    )
    group.add_argument(
        "--access-token",
        metavar="TOKEN",
        help="use this access token instead of the stored one (CTRADER_ACCESS_TOKEN)",
    )
    if account:
        group.add_argument(
            "--account",
            metavar="ACCOUNT",
            help="the account to use: its login as shown in cTrader, its ctidTraderAccountId, or 'live'/'demo' "
            "for the only account of that kind; the host follows the account (CTRADER_ACCOUNT_ID; "
            "default: the first account of the environment)",
        )
    group.add_argument("--host", help="Open API host (CTRADER_HOST; default {demo,live}.ctraderapi.com)")
    group.add_argument("--port", help=f"Open API port (CTRADER_PORT; default {DEFAULT_PORT})")
    group.add_argument(
        "--transport",
        choices=TRANSPORTS,
        help="protobuf over raw TLS, or over WebSocket (wss://host:port; needs the 'websocket' extra) "
        "(CTRADER_TRANSPORT; default tls)",
    )
    group.add_argument(
        "--ca-file",
        metavar="PEM",
        help="trust only this CA, e.g. a simulator's (CTRADER_CA_FILE; default: the system store)",
    )
    group.add_argument(
        "--oauth-url", metavar="URL", help=f"OAuth base URL (CTRADER_OAUTH_URL; default {DEFAULT_BASE_URL})"
    )
    group.add_argument(
        "--redirect-uri",
        metavar="URI",
        help=f"registered redirect URI (CTRADER_REDIRECT_URI; default {DEFAULT_REDIRECT_URI})",
    )
    group.add_argument(
        "--token-dir",
        metavar="DIR",
        help=f"where tokens are stored (CTRADER_TYPED_HOME; default {default_token_dir()})",
    )
    if not account:
        parser.set_defaults(account=None)


class Progress:
    """Status lines on stderr (stdout stays clean for data); updates in place on a terminal.

    Off a terminal every step is one line, ``- text ... ok (12 ms)``, and transient updates are
    not shown. On a terminal, updates (a page count) show on the line below the step and are
    cleared when it ends; its ``ok`` then goes back onto the step's own line instead of printing
    the step again. With rich (the ``cli`` extra) outcomes are coloured (unless ``NO_COLOR``)
    and ``download`` shows a progress bar with the time left.
    """

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.console = _ui.rich_console(self.stream) if not quiet else None
        self._step: str | None = None
        """The step whose ``- text ... `` is waiting for its ``ok``."""
        self._step_interrupted = False
        self._step_column: int | None = None
        """Where the cursor stood after ``- text ... `` (on a terminal), while only updates interrupted it."""
        self._transient = False

    def _write(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def _width(self) -> int:
        return _ui.terminal_size(self.stream).columns

    def styled(self, text: str, style: str) -> str:
        """``text`` in a rich style (``"green"``, ``"bold red"``) on a rich terminal, else as is."""
        if self.console is None:
            return text
        with self.console.capture() as captured:
            self.console.print(text, style=style, end="", markup=False, highlight=False)
        return captured.get()

    def _clear_transient(self) -> None:
        if self._transient:
            self._write("\r\x1b[2K")
            self._transient = False

    def _break_line(self) -> None:
        if self._transient:
            self._clear_transient()
        elif self._step is not None and not self._step_interrupted:
            self._write("\n")
        if self._step is not None:
            self._step_interrupted = True
            self._step_column = None  # something stays printed below the step line now

    def info(self, text: str) -> None:
        self._break_line()
        self._write(text + "\n")

    def update(self, text: str) -> None:
        """A transient status (a page count); only shown on a terminal, cut to one row."""
        if not self.tty:
            return
        line = _ui.fit(text, self._width())
        if self._transient:
            self._write("\r\x1b[2K" + line)
        else:
            if self._step is not None and not self._step_interrupted:
                self._write("\n")  # below the step line, which keeps its place
                self._step_interrupted = True
            self._write(line)
            self._transient = True

    def _finish(self, text: str, outcome: str) -> None:
        self._clear_transient()
        if self._step_interrupted and self._step_column is not None:
            # Only updates came between: back up onto the step line and finish it there.
            self._write(f"\x1b[1A\x1b[{self._step_column + 1}G{outcome}\n")
        elif self._step_interrupted:
            self._write(f"- {text} ... {outcome}\n")
        else:
            self._write(f"{outcome}\n")
        self._step = None
        self._step_interrupted = False
        self._step_column = None

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        """``- text ... ok (12 ms)`` around a piece of work; ``failed`` if it raises."""
        if self._step is not None:  # a step inside a step: close the outer line first
            self._break_line()
        outer, outer_interrupted = self._step, self._step_interrupted
        prefix = f"- {text} ... "
        self._write(prefix)
        self._step, self._step_interrupted = text, False
        column = len(prefix) % self._width() if self.tty else 0
        self._step_column = column or None  # 0: the prefix filled its last row exactly; print again
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            self._finish(text, self.styled("failed", "bold red"))
            self._step, self._step_interrupted = outer, outer_interrupted
            raise
        elapsed = (time.perf_counter() - started) * 1000
        self._finish(text, self.styled("ok", "green") + f" ({elapsed:.0f} ms)")
        self._step, self._step_interrupted = outer, outer_interrupted

    @contextlib.contextmanager
    def download(self, text: str, total: float, *, unit: str, label: str | None = None) -> Iterator[Download]:
        """A step for a long download whose size is known up front (``total``, e.g. seconds of history).

        Call ``advance_to(done, count)`` as data arrives: ``done`` in the units of ``total``,
        ``count`` what was received so far (shown as ``count unit``). On a rich terminal this is
        a progress bar (named ``label``, short enough to leave room for it on a narrow terminal)
        with the time left; on a plain terminal an update line with the share done and the time
        left; off a terminal just the step line.
        """
        if self.console is not None and self._step is None:
            with self._rich_download(text, label or text, total, unit) as download:
                yield download
            return
        with self.step(text):
            yield Download(total, unit, self._plain_update)

    def _plain_update(self, download: Download) -> None:
        self.update(f"  {download.describe()}")

    @contextlib.contextmanager
    def _rich_download(self, text: str, label: str, total: float, unit: str) -> Iterator[Download]:
        from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bars

        assert self.console is not None
        bars = Bars(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            TextColumn("{task.fields[count]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            expand=True,
        )
        task = bars.add_task(label, total=total or 1, count="")

        def show(download: Download) -> None:
            bars.update(task, completed=download.done, count=f"{download.count} {download.unit}")

        started = time.perf_counter()
        try:
            with bars:  # transient: the bar is gone once the block ends
                yield Download(total, unit, show)
        except BaseException:
            self._write(f"- {text} ... {self.styled('failed', 'bold red')}\n")
            raise
        elapsed = (time.perf_counter() - started) * 1000
        self._write(f"- {text} ... {self.styled('ok', 'green')} ({elapsed:.0f} ms)\n")


class Download:
    """How far a download got; given by ``Progress.download``."""

    def __init__(self, total: float, unit: str, show: Callable[[Download], None]) -> None:
        self.total = total
        self.unit = unit
        self.done = 0.0
        self.count = 0
        self._show = show
        self._started = time.monotonic()
        self._shown = 0.0

    def advance_to(self, done: float, count: int) -> None:
        """``done`` of ``total`` so far, ``count`` items received; shown at most ten times a second."""
        self.done = min(max(done, self.done), self.total)
        self.count = count
        now = time.monotonic()
        if now - self._shown >= 0.1:
            self._shown = now
            self._show(self)

    def describe(self) -> str:
        """``1500 bars, 40%, about 12 s left`` (the time left once there is a rate to go by)."""
        share = self.done / self.total if self.total > 0 else 1.0
        text = f"{self.count} {self.unit}, {share:.0%}"
        elapsed = time.monotonic() - self._started
        if 0 < share < 1 and elapsed >= 0.5:
            text += f", about {_duration(elapsed * (1 - share) / share)} left"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table; numeric-looking columns are right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in cells[1:] if row[i]) and any(row[i] for row in cells[1:])
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_period(text: str) -> TrendbarPeriod:
    name = text.strip().upper()
    try:
        return TrendbarPeriod[name]
    except KeyError:
        choices = ", ".join(p.name for p in TrendbarPeriod)
        raise CLIError(f"unknown period {text!r}; choose one of {choices}", exit_code=EXIT_USAGE) from None


_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, *, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), ``now``, or an age like ``3d``/``12h``/``90m``."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if len(value) >= 2 and value[-1].lower() in _UNITS and value[:-1].isdigit():
        return now - timedelta(seconds=int(value[:-1]) * _UNITS[value[-1].lower()])
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise CLIError(
            f"cannot read {text!r} as a time; use e.g. 2024-05-01, 2024-05-01T12:00, now or 3d",
            exit_code=EXIT_USAGE,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def suggest(name: str, known: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the closest known name, or an empty string."""
    folded = {k.upper().replace("/", ""): k for k in known}
    matches = difflib.get_close_matches(name.upper().replace("/", ""), list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[matches[0]]}?)" if matches else ""
