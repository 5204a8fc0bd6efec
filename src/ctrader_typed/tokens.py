"""OAuth token sets and where they are kept.

``TokenSet`` is what the OAuth endpoints (and ``ProtoOARefreshTokenReq``) hand out.
A ``TokenStore`` keeps the newest set; the client hands every refreshed set to its
store *before* using it, so a crash never loses the only valid refresh token.

Two stores come with the package: ``MemoryTokenStore`` and ``FileTokenStore``, a JSON
file per client id and environment under ``$CTRADER_TYPED_HOME`` (default
``~/.config/ctrader-typed/``), created with mode 0600 and replaced atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import decimal
import hashlib
import json
import math
import numbers
import os
import re
import secrets
import stat
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, Protocol, overload, runtime_checkable

from ctrader_typed._secrets import get_logger

if sys.platform != "win32":
    import fcntl

__all__ = [
    "MAX_LIFETIME_SECONDS",
    "STALE_TEMP_SECONDS",
    "FileTokenStore",
    "MemoryTokenStore",
    "TokenSet",
    "TokenStore",
    "TokenStoreError",
    "default_token_dir",
]

MAX_LIFETIME_SECONDS: Final = 3653 * 24 * 3600
"""The longest lifetime a ``TokenSet`` records (ten years); real access tokens live 30 days."""


def _clamped_lifetime(expires_in: object) -> float | None:
    """``expires_in`` in ``0 .. MAX_LIFETIME_SECONDS``; ``None`` when unknown (``None``, NaN)."""
    if expires_in is None:
        return None
    if not isinstance(expires_in, numbers.Real | decimal.Decimal):
        raise TypeError(f"expires_in must be a number of seconds or None, not {type(expires_in).__name__}")
    value: Any = expires_in  # a real number of some kind: int, float, Fraction, Decimal, numpy...
    if isinstance(value, int):  # exact whatever its size: float(10**400) would overflow
        return float(min(max(value, 0), MAX_LIFETIME_SECONDS))
    try:
        number = float(value)
    except OverflowError:  # e.g. Fraction(10**400)
        number = math.inf if value > 0 else -math.inf
    except ValueError:  # Decimal("sNaN")
        number = math.nan
    if math.isnan(number):
        return None
    return min(max(number, 0.0), float(MAX_LIFETIME_SECONDS))


@dataclasses.dataclass(frozen=True, slots=True)
class TokenSet:
    """An access token, its single-use refresh token and when the access token expires.

    Tokens never appear in ``repr``/``str``. For code written against dict-shaped token
    replies, ``tokens["access_token"]`` and friends keep working.
    """

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    token_type: str = "bearer"
    expires_at: datetime | None = None
    """Absolute, timezone-aware expiry of the access token; ``None`` if unknown."""
    scope: str | None = None
    """``"trading"`` or ``"accounts"`` when the server said."""

    @classmethod
    def from_expires_in(
        cls,
        access_token: str,
        refresh_token: str,
        expires_in: float | None,
        *,
        token_type: str = "bearer",
        scope: str | None = None,
        now: datetime | None = None,
    ) -> TokenSet:
        """Build a set from a relative lifetime in seconds, as the servers send it.

        Whatever the number, this never raises for its size: ``expires_in`` is clamped to
        ``0 .. MAX_LIFETIME_SECONDS`` (ten years). Zero or less (``-inf`` included) means
        the token is already expired (``expires_at`` is the issue time); more than ten
        years (``inf`` and integers of any size included) is taken as ten years; ``None``
        and NaN leave the expiry unknown (``expires_at`` is ``None``). A naive ``now`` is
        taken as UTC. Anything that is not a real number raises ``TypeError``.
        """
        issued = now or datetime.now(UTC)
        if issued.tzinfo is None:
            issued = issued.replace(tzinfo=UTC)
        lifetime = _clamped_lifetime(expires_in)
        expires_at: datetime | None = None
        if lifetime is not None:
            try:
                expires_at = issued + timedelta(seconds=lifetime)
            except OverflowError:  # issued within ten years of the end of the calendar
                expires_at = datetime.max.replace(tzinfo=UTC)
        return cls(access_token, refresh_token, token_type or "bearer", expires_at, scope)

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """True when the access token expires within ``seconds`` (never, if the expiry is unknown)."""
        if self.expires_at is None:
            return False
        # Compared as floats, so any ``seconds`` (inf, 1e300) works; NaN is never "within".
        remaining = (self.expires_at - (now or datetime.now(UTC))).total_seconds()
        return remaining <= seconds

    @overload
    def __getitem__(self, key: Literal["access_token", "refresh_token", "token_type"]) -> str: ...
    @overload
    def __getitem__(self, key: Literal["expires_at"]) -> datetime | None: ...
    @overload
    def __getitem__(self, key: Literal["scope"]) -> str | None: ...
    @overload
    def __getitem__(self, key: Literal["expires_in"]) -> int | None: ...
    def __getitem__(self, key: str) -> str | datetime | int | None:
        if key == "expires_in":
            if self.expires_at is None:
                return None
            return max(0, int((self.expires_at - datetime.now(UTC)).total_seconds()))
        if key in {"access_token", "refresh_token", "token_type", "expires_at", "scope"}:
            value: str | datetime | None = getattr(self, key)
            return value
        raise KeyError(key)


@runtime_checkable
class TokenStore(Protocol):
    """Somewhere to keep the newest token set (a file, a keyring, a database)."""

    async def load(self) -> TokenSet | None:
        """The stored set, or ``None`` if nothing is stored yet."""
        ...

    async def save(self, tokens: TokenSet) -> None:
        """Persist ``tokens``, replacing what was stored; must be durable when it returns."""
        ...


class MemoryTokenStore:
    """A ``TokenStore`` that keeps the set in memory (tests, short-lived scripts)."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens
        self.saves = 0
        """How many times ``save`` was called."""

    async def load(self) -> TokenSet | None:
        return self._tokens

    async def save(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self.saves += 1

    def __repr__(self) -> str:
        return f"MemoryTokenStore(has_tokens={self._tokens is not None}, saves={self.saves})"


class TokenStoreError(Exception):
    """A stored token file exists but cannot be read as a token set, or the token path
    is not a regular file (a FIFO, a device, a directory)."""


def default_token_dir() -> Path:
    """``$CTRADER_TYPED_HOME``, else ``$XDG_CONFIG_HOME/ctrader-typed``, else ``~/.config/ctrader-typed``."""
    home = os.environ.get("CTRADER_TYPED_HOME")
    if home:
        return Path(home).expanduser()
    return _config_dir()


def _config_dir() -> Path:
    """The per-user directory that belongs to this library (``$CTRADER_TYPED_HOME`` aside)."""
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config).expanduser() if config else Path.home() / ".config"
    return base / "ctrader-typed"


logger = get_logger("ctrader_typed.tokens")

_FILE_FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_POSIX: Final = os.name != "nt"
_MAX_FILE_BYTES: Final = 16 * 1024 * 1024
"""A token file is a few hundred bytes; anything past this is not one (and is not read whole)."""
STALE_TEMP_SECONDS: Final = 60.0
"""A temporary file of a store is removed once unchanged this long and not locked by a writer."""
_TEMP_SUFFIX = re.compile(r"[0-9a-f]{12}\.tmp")
_wall_clock = time.time  # the clock compared with file mtimes (tests replace it)
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_O_BINARY: Final = getattr(os, "O_BINARY", 0)
_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)


class FileTokenStore:
    """A ``TokenStore`` backed by one JSON file.

    Writes go to a temporary file in the same directory (created 0600 with ``O_EXCL`` and
    locked with ``flock`` while it is written), are fsynced, then ``os.replace``-d over the
    old file and the directory is fsynced: a crash leaves either the old or the new file,
    never a partial one. Directories are created 0700. Use ``for_client`` for the
    standard location.

    What is found on disk is checked on every ``load`` and ``save``:

    - The token path must be a regular file: a FIFO, device or directory raises
      ``TokenStoreError`` (it is opened non-blocking, so a FIFO cannot hang ``load``), as
      do files over 16 MiB and contents that are not a token set (nesting too deep for
      the JSON parser included).
    - A token file other users may access (group/other bits) is logged as a WARNING with
      its path and mode and tightened to 0600. A directory other users may access is
      logged too, and tightened to 0700 when it is the store's own: the library's
      per-user config directory (``$XDG_CONFIG_HOME/ctrader-typed``, default
      ``~/.config/ctrader-typed``) or one this store created. A directory named by the
      caller or ``$CTRADER_TYPED_HOME`` is only reported, never changed. (POSIX only.)
    - Temporary files this store's writers left behind (``.<name>.<12 hex>.tmp``: a
      writer killed mid-write) are removed, once unchanged for ``STALE_TEMP_SECONDS``
      (60 s) *and* not locked: a live writer holds an exclusive ``flock`` on its temporary
      file from just after creating it until it has been renamed into place, and the
      age covers the instant in between. Where ``flock`` is missing (Windows) the age
      alone decides.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._created_dir = False
        self._warned: set[tuple[str, int]] = set()

    @classmethod
    def for_client(
        cls, client_id: str, environment: str = "demo", *, directory: str | os.PathLike[str] | None = None
    ) -> FileTokenStore:
        """The store for ``client_id`` on ``environment`` (``"demo"``/``"live"``) in ``directory``."""
        if not client_id:
            raise ValueError("client_id is empty")
        if not environment or _UNSAFE.search(environment):
            raise ValueError(f"environment must be a plain name like 'demo' or 'live', not {environment!r}")
        safe = _UNSAFE.sub("_", client_id)[:64]
        if safe != client_id:  # keep different ids apart after sanitising
            safe += "-" + hashlib.sha256(client_id.encode()).hexdigest()[:12]
        folder = Path(directory) if directory is not None else default_token_dir()
        return cls(folder / f"tokens-{safe}-{environment}.json")

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    async def load(self) -> TokenSet | None:
        return await asyncio.to_thread(self.load_sync)

    async def save(self, tokens: TokenSet) -> None:
        await asyncio.to_thread(self.save_sync, tokens)

    def load_sync(self) -> TokenSet | None:
        """The stored set, ``None`` if there is no file; ``TokenStoreError`` if it is unreadable."""
        self._check_directory()
        self._remove_stale_temp_files()
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {self.path}: {exc.strerror or exc}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TokenStoreError(
                    f"token file {self.path} is not a regular file ({_kind(info.st_mode)}); refusing to read it"
                )
            self._check_file_mode(fd, info)
            raw = _read_at_most(fd, _MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        if len(raw) > _MAX_FILE_BYTES:
            raise TokenStoreError(
                f"token file {self.path} is larger than {_MAX_FILE_BYTES} bytes; not a token set"
            )
        try:
            return _tokens_from_json(json.loads(raw))
        except (ValueError, TypeError, KeyError, RecursionError):
            raise TokenStoreError(f"token file {self.path} is not a valid token set") from None

    def save_sync(self, tokens: TokenSet) -> None:
        """Write ``tokens`` atomically and durably (``TokenStoreError`` if the path is not a file)."""
        data = json.dumps(_tokens_to_json(tokens), indent=2, sort_keys=True).encode() + b"\n"
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True)
            self._created_dir = True
        except FileExistsError:
            pass
        self._check_directory()
        self._remove_stale_temp_files()
        try:
            existing = os.stat(self.path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISREG(existing.st_mode):
                raise TokenStoreError(
                    f"token file {self.path} is not a regular file ({_kind(existing.st_mode)}); "
                    "refusing to replace it"
                )
        tmp = folder / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_BINARY, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                _lock(fd)  # this temporary file is not a dead writer's: cleaners keep off
                if _POSIX:
                    os.fchmod(fd, 0o600)  # exactly, whatever the umask took away
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                if _POSIX:  # renamed while still open and locked
                    os.replace(tmp, self.path)
            if not _POSIX:  # Windows cannot rename an open file
                os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(folder)

    def delete(self) -> bool:
        """Remove the file (and stale temporary files); ``True`` if there was one."""
        self._remove_stale_temp_files()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.path.parent)
        return True

    # -- what is found on disk ---------------------------------------------------------------

    def _warn_once(self, path: Path, mode: int, message: str, *args: object) -> None:
        if (str(path), mode) not in self._warned:
            self._warned.add((str(path), mode))
            logger.warning(message, *args)

    def _check_file_mode(self, fd: int, info: os.stat_result) -> None:
        mode = stat.S_IMODE(info.st_mode)
        if not _POSIX or not mode & 0o077:
            return
        try:
            os.fchmod(fd, 0o600)
        except OSError as exc:
            self._warn_once(
                self.path,
                mode,
                "token file %s has mode %04o: other users may read it; it could not be tightened to 0600 (%s)",
                self.path,
                mode,
                exc.strerror or exc,
            )
            return
        self._warn_once(
            self.path,
            mode,
            "token file %s had mode %04o: other users may have read it; tightened to 0600",
            self.path,
            mode,
        )

    def _check_directory(self) -> None:
        folder = self.path.parent
        if not _POSIX:
            return
        try:
            info = os.stat(folder)
        except OSError:
            return
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            return
        if info.st_uid == os.geteuid() and self._owns_directory(folder):
            try:
                os.chmod(folder, 0o700)
            except OSError as exc:
                self._warn_once(
                    folder,
                    mode,
                    "token directory %s has mode %04o: other users may reach the token files; "
                    "it could not be tightened to 0700 (%s)",
                    folder,
                    mode,
                    exc.strerror or exc,
                )
            else:
                self._warn_once(
                    folder,
                    mode,
                    "token directory %s had mode %04o: other users could reach the token files; tightened to 0700",
                    folder,
                    mode,
                )
            return
        self._warn_once(
            folder,
            mode,
            "token directory %s has mode %04o: other users may list it or replace the token file; "
            "left as it is (not the store's own directory): chmod 700 it",
            folder,
            mode,
        )

    def _owns_directory(self, folder: Path) -> bool:
        if self._created_dir:
            return True
        with contextlib.suppress(OSError, RuntimeError):
            return folder.resolve() == _config_dir().resolve()
        return False

    def _remove_stale_temp_files(self) -> None:
        folder = self.path.parent
        prefix = f".{self.path.name}."
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix) and _TEMP_SUFFIX.fullmatch(name[len(prefix) :]):
                try:
                    _remove_if_stale(folder / name)
                except OSError as exc:
                    logger.debug("could not check temporary token file %s: %s", folder / name, exc)


def _remove_if_stale(path: Path) -> None:
    """Remove ``path`` if it is a regular file unchanged for a while that no writer holds."""
    fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        if _wall_clock() - info.st_mtime < STALE_TEMP_SECONDS:
            return  # maybe a writer between creating the file and locking it
        if not _try_lock(fd):
            return  # a live writer holds it
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            return
        os.unlink(path)
    finally:
        os.close(fd)
    logger.info("removed %s, a temporary token file left by a writer that did not finish", path)


def _lock(fd: int) -> None:
    """Hold an exclusive lock on ``fd`` until it is closed (best effort: some filesystems refuse)."""
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _try_lock(fd: int) -> bool:
    """False when another open file (a live writer) holds a lock on this file."""
    if sys.platform == "win32":
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # locks unsupported here: the age alone decides
        return True
    return True


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tokens_to_json(tokens: TokenSet) -> dict[str, Any]:
    return {
        "format": _FILE_FORMAT,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": tokens.token_type,
        "expires_at": tokens.expires_at.isoformat() if tokens.expires_at is not None else None,
        "scope": tokens.scope,
        "saved_at": datetime.now(UTC).isoformat(),
    }


def _tokens_from_json(data: Any) -> TokenSet:
    if not isinstance(data, dict) or type(data.get("format")) is not int or data["format"] != _FILE_FORMAT:
        raise ValueError("not a token file")
    access, refresh = data["access_token"], data["refresh_token"]
    if not isinstance(access, str) or not isinstance(refresh, str) or not access:
        raise ValueError("tokens missing")
    expires_at = None
    if data.get("expires_at") is not None:
        if not isinstance(data["expires_at"], str):
            raise ValueError("expires_at is not a date")
        expires_at = datetime.fromisoformat(data["expires_at"])
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    scope = data.get("scope")
    token_type = data.get("token_type")
    return TokenSet(
        access,
        refresh,
        token_type if isinstance(token_type, str) and token_type else "bearer",
        expires_at,
        scope if isinstance(scope, str) else None,
    )
