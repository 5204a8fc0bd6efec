"""FileTokenStore: location, permissions, round trips, and atomic replacement under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctrader_typed.tokens import (
    FileTokenStore,
    MemoryTokenStore,
    TokenSet,
    TokenStore,
    TokenStoreError,
    default_token_dir,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and signals")

TOKENS = TokenSet(
    "access-AAA",
    "refresh-RRR",
    "bearer",
    datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    "trading",
)


def test_default_directory_honours_ctrader_typed_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CTRADER_TYPED_HOME", str(tmp_path / "home"))
    assert default_token_dir() == tmp_path / "home"
    store = FileTokenStore.for_client("1234_abc", "live")
    assert store.path == tmp_path / "home" / "tokens-1234_abc-live.json"


def test_default_directory_falls_back_to_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CTRADER_TYPED_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_token_dir() == tmp_path / ".config" / "ctrader-typed"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_token_dir() == tmp_path / "xdg" / "ctrader-typed"


def test_one_file_per_client_and_environment(tmp_path: Path) -> None:
    paths = {
        FileTokenStore.for_client(cid, env, directory=tmp_path).path
        for cid in ("1234_abc", "../../etc/passwd", "..-..-etc-passwd")
        for env in ("demo", "live")
    }
    assert len(paths) == 6
    assert all(p.parent == tmp_path for p in paths)
    with pytest.raises(ValueError, match="environment"):
        FileTokenStore.for_client("x", "../demo", directory=tmp_path)
    with pytest.raises(ValueError, match="client_id"):
        FileTokenStore.for_client("", "demo", directory=tmp_path)


async def test_round_trip_and_missing_file(tmp_path: Path) -> None:
    store = FileTokenStore.for_client("1234_abc", "demo", directory=tmp_path / "new" / "dir")
    assert isinstance(store, TokenStore)
    assert await store.load() is None
    await store.save(TOKENS)
    assert await store.load() == TOKENS
    assert not store.path.with_suffix(".tmp").exists()
    assert [p.name for p in store.path.parent.iterdir()] == [store.path.name]
    assert store.delete()
    assert not store.delete()
    assert await store.load() is None


async def test_unknown_expiry_round_trips(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t.json")
    tokens = TokenSet("a", "r")
    await store.save(tokens)
    assert await store.load() == tokens


@posix_only
async def test_file_is_0600_and_new_directories_0700(tmp_path: Path) -> None:
    old = os.umask(0)  # even a permissive umask must not widen the file
    try:
        store = FileTokenStore(tmp_path / "cfg" / "tokens.json")
        await store.save(TOKENS)
        await store.save(TOKENS)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


async def test_save_replaces_the_file_rather_than_rewriting_it(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    await store.save(TOKENS)
    first = store.path.stat().st_ino
    newer = TokenSet.from_expires_in("access-2", "refresh-2", 3600)
    await store.save(newer)
    assert store.path.stat().st_ino != first
    assert await store.load() == newer


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"format": 1}', b'{"format": 99, "access_token": "a", "refresh_token": "r"}'],
)
async def test_unreadable_file_raises_without_showing_content(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    with pytest.raises(TokenStoreError) as info:
        await FileTokenStore(path).load()
    assert str(path) in str(info.value)


async def test_repr_shows_path_not_tokens(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    await store.save(TOKENS)
    assert "access-AAA" not in repr(store)
    assert "refresh-RRR" not in repr(TOKENS)
    memory = MemoryTokenStore(TOKENS)
    assert "access-AAA" not in repr(memory)


_WRITER = """
import sys
from ctrader_typed.tokens import FileTokenStore, TokenSet
store = FileTokenStore(sys.argv[1])
pad = "x" * 400_000
i = 0
while True:
    i += 1
    # both tokens carry the same counter: a torn or mixed file would show different ones
    store.save_sync(TokenSet(f"access-{i}-" + pad, f"refresh-{i}-" + pad * (i % 3)))
    if i == 3:
        print("ready", flush=True)
"""


@posix_only
def test_writer_killed_mid_write_leaves_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    seen_counters: set[int] = set()
    for round_ in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
            time.sleep(0.003 * round_)  # vary where in a write the kill lands
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            if writer.stdout is not None:
                writer.stdout.close()
        assert writer.returncode == -signal.SIGKILL
        data = json.loads(path.read_bytes())  # never partial
        access = data["access_token"].split("-")
        refresh = data["refresh_token"].split("-")
        assert access[1] == refresh[1], "access and refresh token come from different writes"
        tokens = FileTokenStore(path).load_sync()
        assert tokens is not None
        seen_counters.add(int(access[1]))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(seen_counters) > 1, "every kill landed on the same write; the writer made no progress"


def test_expires_within_uses_absolute_expiry() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    tokens = TokenSet.from_expires_in("a", "r", 100, now=now)
    assert tokens.expires_at == now + timedelta(seconds=100)
    assert tokens.expires_within(100, now=now)
    assert not tokens.expires_within(99, now=now)
