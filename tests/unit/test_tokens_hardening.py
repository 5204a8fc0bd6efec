"""TokenSet lifetimes that no server value can break, and FileTokenStore against hostile files."""

from __future__ import annotations

import logging
import math
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from ctrader_typed import tokens
from ctrader_typed.tokens import (
    MAX_LIFETIME_SECONDS,
    STALE_TEMP_SECONDS,
    FileTokenStore,
    TokenSet,
    TokenStoreError,
)

if sys.platform != "win32":
    import fcntl

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes, FIFOs, flock and signals")

NOW = datetime(2030, 1, 1, tzinfo=UTC)
MAX = timedelta(seconds=MAX_LIFETIME_SECONDS)


def test_maximum_lifetime_is_ten_years() -> None:
    assert timedelta(days=365 * 10) < MAX < timedelta(days=365 * 10 + 4)


@pytest.mark.parametrize(
    "expires_in",
    [2**62, 2**63, 10**400, -(10**400), 1e12, 1e308, math.inf, Fraction(10**400), Decimal("1e400")],
)
def test_absurdly_long_lifetimes_are_clamped_to_the_maximum(expires_in: float) -> None:
    tokens = TokenSet.from_expires_in("a", "r", expires_in, now=NOW)
    expected = NOW if expires_in < 0 else NOW + MAX
    assert tokens.expires_at == expected


@pytest.mark.parametrize("expires_in", [0, 0.0, -1, -60, -1e12, -(2**63), -math.inf, Fraction(-1, 3)])
def test_zero_or_negative_means_already_expired(expires_in: float) -> None:
    tokens = TokenSet.from_expires_in("a", "r", expires_in, now=NOW)
    assert tokens.expires_at == NOW
    assert tokens.expires_within(0, now=NOW)
    assert TokenSet.from_expires_in("a", "r", expires_in)["expires_in"] == 0


@pytest.mark.parametrize("expires_in", [None, math.nan, -math.nan, Decimal("NaN"), Decimal("sNaN")])
def test_none_and_nan_mean_unknown(expires_in: float | None) -> None:
    tokens = TokenSet.from_expires_in("a", "r", expires_in, now=NOW)
    assert tokens.expires_at is None
    assert not tokens.expires_within(math.inf, now=NOW)


def test_ordinary_lifetimes_are_kept_exactly() -> None:
    assert TokenSet.from_expires_in("a", "r", 2_628_000, now=NOW).expires_at == NOW + timedelta(
        seconds=2_628_000
    )
    assert TokenSet.from_expires_in("a", "r", 0.5, now=NOW).expires_at == NOW + timedelta(seconds=0.5)
    assert TokenSet.from_expires_in("a", "r", True, now=NOW).expires_at == NOW + timedelta(seconds=1)


def test_issue_time_near_the_end_of_the_calendar_does_not_overflow() -> None:
    late = datetime(9999, 12, 31, tzinfo=UTC)
    tokens = TokenSet.from_expires_in("a", "r", 10**400, now=late)
    assert tokens.expires_at == datetime.max.replace(tzinfo=UTC)
    assert not tokens.expires_within(0, now=late)


def test_naive_issue_time_is_taken_as_utc() -> None:
    tokens = TokenSet.from_expires_in("a", "r", 60, now=datetime(2030, 1, 1))
    assert tokens.expires_at == NOW + timedelta(seconds=60)
    assert tokens.expires_at.tzinfo is not None


@pytest.mark.parametrize("value", ["60", b"60", [60], {"s": 60}, object()])
def test_non_numbers_are_a_type_error_not_a_crash_elsewhere(value: object) -> None:
    with pytest.raises(TypeError, match="expires_in"):
        TokenSet.from_expires_in("a", "r", value, now=NOW)  # type: ignore[arg-type]  # the point


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, 1e300, -1e300, 10**400])
def test_expires_within_accepts_any_number(seconds: float) -> None:
    tokens = TokenSet.from_expires_in("a", "r", 100, now=NOW)
    assert tokens.expires_within(seconds, now=NOW) is (seconds >= 100)


# -- FileTokenStore against what it may find on disk -------------------------------------------

TOKENS = TokenSet("access-HARD", "refresh-HARD", "bearer", datetime(2030, 1, 2, tzinfo=UTC), "trading")
DEEP = 100_000


@pytest.mark.parametrize(
    "content",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"a":' * DEEP + b"1" + b"}" * DEEP,
        b'{"format": 1, "access_token": "a", "refresh_token": "r", "scope": '
        + b"[" * DEEP
        + b"]" * DEEP
        + b"}",
        b"[" * DEEP,
        b'{"format": true, "access_token": "a", "refresh_token": "r"}',
        b'{"format": 1, "access_token": "a", "refresh_token": "r", "expires_at": ["2030-01-01"]}',
        b'{"format": 1, "access_token": "a", "refresh_token": "r", "expires_at": "' + b"9" * 100_000 + b'"}',
        b'{"format": 1, "access_token": "a", "refresh_token": "r", "expires_at": 1e400}',
        b'{"format": 1, "access_token": ' + b"1" * 5000 + b', "refresh_token": "r"}',
    ],
    ids=[
        "list",
        "object",
        "in-a-field",
        "unclosed",
        "format-bool",
        "date-list",
        "date-long",
        "date-inf",
        "digits",
    ],
)
async def test_hostile_contents_raise_the_stores_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    with pytest.raises(TokenStoreError) as info:
        await FileTokenStore(path).load()
    assert type(info.value) is TokenStoreError
    assert str(path) in str(info.value)


def test_a_file_too_large_to_be_a_token_set_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    with path.open("wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(TokenStoreError, match="larger than"):
        FileTokenStore(path).load_sync()


_LOAD_FIFO = """
import sys
from ctrader_typed.tokens import FileTokenStore, TokenStoreError
try:
    FileTokenStore(sys.argv[1]).load_sync()
except TokenStoreError as exc:
    print("refused:", exc)
"""


@posix_only
def test_a_fifo_at_the_token_path_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "tokens.json"
    os.mkfifo(fifo)
    # In a child process: if load() blocked on the FIFO, only the (generous) guard would end it.
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_FIFO, str(fifo)], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.startswith("refused:")
    assert "not a regular file (a FIFO)" in result.stdout
    assert str(fifo) in result.stdout


@posix_only
def test_saving_over_a_fifo_or_a_directory_is_refused_and_leaves_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    folder = tmp_path / "dir.json"
    folder.mkdir()
    for path, kind in ((fifo, "a FIFO"), (folder, "a directory")):
        with pytest.raises(TokenStoreError, match=kind):
            FileTokenStore(path).save_sync(TOKENS)
        with pytest.raises(TokenStoreError, match=kind):
            FileTokenStore(path).load_sync()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert folder.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "fifo.json"]  # no temp file left


@posix_only
def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.symlink_to("/dev/zero")
    with pytest.raises(TokenStoreError, match="character device"):
        FileTokenStore(path).load_sync()


# -- permissions -----------------------------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@posix_only
@pytest.mark.parametrize("mode", [0o666, 0o644, 0o640, 0o604])
def test_a_file_others_may_read_is_reported_and_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    store = FileTokenStore(folder / "tokens.json")
    store.save_sync(TOKENS)
    os.chmod(store.path, mode)
    caplog.set_level(logging.WARNING, "ctrader_typed.tokens")
    assert store.load_sync() == TOKENS
    (warning,) = warnings_of(caplog)
    assert str(store.path) in warning
    assert f"{mode:04o}" in warning
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load_sync() == TOKENS
    assert len(warnings_of(caplog)) == 1  # fixed: nothing more to say


@posix_only
def test_a_directory_of_the_callers_is_reported_but_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)  # noqa: S103  # the point of the test
    store = FileTokenStore(folder / "tokens.json")
    caplog.set_level(logging.WARNING, "ctrader_typed.tokens")
    store.save_sync(TOKENS)
    assert store.load_sync() == TOKENS
    (warning,) = warnings_of(caplog)  # said once, not on every call
    assert str(folder) in warning
    assert "0777" in warning
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@posix_only
@pytest.mark.parametrize("call", ["load", "save"])
def test_the_librarys_own_config_directory_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, call: str
) -> None:
    monkeypatch.delenv("CTRADER_TYPED_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    own = tmp_path / "xdg" / "ctrader-typed"
    own.mkdir(parents=True)
    os.chmod(own, 0o777)  # noqa: S103  # the point of the test
    store = FileTokenStore.for_client("1234_abc", "demo")
    assert store.path.parent == own
    caplog.set_level(logging.WARNING, "ctrader_typed.tokens")
    if call == "load":
        assert store.load_sync() is None
    else:
        store.save_sync(TOKENS)
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
    (warning,) = warnings_of(caplog)
    assert str(own) in warning
    assert "0777" in warning


@posix_only
def test_a_directory_the_store_created_is_kept_0700(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "made" / "tokens.json")
    store.save_sync(TOKENS)
    os.chmod(store.path.parent, 0o755)  # noqa: S103  # the point of the test
    store.save_sync(TOKENS)
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o177, 0o277, 0o377])
def test_every_file_written_is_exactly_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    old = os.umask(umask)
    try:
        store.save_sync(TOKENS)
        store.save_sync(TOKENS)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load_sync() == TOKENS


# -- temporary files left by killed writers --------------------------------------------------

CLOCK = 2_000_000_000.0


def temp_file(folder: Path, name: str, *, age: float) -> Path:
    path = folder / name
    path.write_text('{"access_token": "left-behind"}')
    os.utime(path, (CLOCK - age, CLOCK - age))
    return path


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_wall_clock", lambda: CLOCK)


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("call", ["load", "save", "delete"])
def test_stale_temp_files_of_this_store_are_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, call: str
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    stale = temp_file(tmp_path, ".tokens.json.0123456789ab.tmp", age=STALE_TEMP_SECONDS + 1)
    fresh = temp_file(tmp_path, ".tokens.json.ba9876543210.tmp", age=STALE_TEMP_SECONDS - 1)
    others = [
        temp_file(tmp_path, name, age=10**6)
        for name in (
            ".other.json.0123456789ab.tmp",  # another store's
            ".tokens.json.0123456789AB.tmp",  # not a name this store makes
            ".tokens.json.0123456789a.tmp",
            ".tokens.json.0123456789ab.tmp.bak",
            "tokens.json.0123456789ab.tmp",
        )
    ]
    caplog.set_level(logging.INFO, "ctrader_typed.tokens")
    getattr(store, {"load": "load_sync", "delete": "delete"}.get(call, "save_sync"))(
        *([TOKENS] if call == "save" else [])
    )
    assert not stale.exists()
    assert fresh.exists(), "maybe a writer between creating and locking it"
    assert all(p.exists() for p in others)
    assert str(stale) in caplog.text


@posix_only
@pytest.mark.usefixtures("frozen_clock")
def test_a_symlink_named_like_a_temp_file_is_not_followed(tmp_path: Path) -> None:
    target = temp_file(tmp_path, "precious", age=10**6)
    link = tmp_path / ".tokens.json.0123456789ab.tmp"
    link.symlink_to(target)
    os.utime(link, (CLOCK - 10**6, CLOCK - 10**6), follow_symlinks=False)
    FileTokenStore(tmp_path / "tokens.json").load_sync()
    assert target.exists()
    assert link.is_symlink()


@posix_only
@pytest.mark.usefixtures("frozen_clock")
def test_a_temp_file_locked_by_a_writer_is_kept_however_old(tmp_path: Path) -> None:
    held = temp_file(tmp_path, ".tokens.json.0123456789ab.tmp", age=10**6)
    with held.open("rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        FileTokenStore(tmp_path / "tokens.json").load_sync()
        assert held.exists()
    FileTokenStore(tmp_path / "tokens.json").load_sync()  # the writer is gone: now it is stale
    assert not held.exists()


@posix_only
def test_the_writer_holds_its_temp_file_locked_until_it_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    monkeypatch.setattr(tokens, "_wall_clock", lambda: time.time() + 10**6)  # every file looks stale
    real_fsync = os.fsync
    checked: list[Path] = []

    def fsync_then_clean(fd: int) -> None:
        real_fsync(fd)
        temps = list(tmp_path.glob(".tokens.json.*.tmp"))
        if temps and not checked:
            checked.extend(temps)
            FileTokenStore(store.path).load_sync()  # another reader's clean-up, mid-write
            assert all(t.exists() for t in temps), "a live writer's temp file was removed"

    monkeypatch.setattr(os, "fsync", fsync_then_clean)
    store.save_sync(TOKENS)
    assert checked, "the hook never saw the temp file"
    monkeypatch.undo()
    assert store.load_sync() == TOKENS
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


_STALLED_WRITER = """
import os, sys
from ctrader_typed.tokens import FileTokenStore, TokenSet
real_fsync = os.fsync
def stall(fd):
    real_fsync(fd)
    print("writing", flush=True)
    sys.stdin.readline()  # never answered: killed here, mid-write, temp file locked
os.fsync = stall
FileTokenStore(sys.argv[1]).save_sync(TokenSet("access-KILLED", "refresh-KILLED"))
"""


@posix_only
def test_a_writer_killed_mid_write_leaves_a_temp_file_that_is_removed_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    monkeypatch.setattr(tokens, "_wall_clock", lambda: time.time() + 10**6)
    writer = subprocess.Popen(
        [sys.executable, "-c", _STALLED_WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        (temp,) = tmp_path.glob(".tokens.json.*.tmp")
        assert FileTokenStore(path).load_sync() is None
        assert temp.exists(), "the writer is alive and holds it"
    finally:
        writer.kill()
        writer.wait()
        for pipe in (writer.stdin, writer.stdout):
            if pipe is not None:
                pipe.close()
    assert FileTokenStore(path).load_sync() is None
    assert not temp.exists()
    assert list(tmp_path.iterdir()) == []
