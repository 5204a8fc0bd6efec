"""The three examples, run end to end against ``ctrader-typed sim``, configured by the environment only.

The browser of ``oauth_auth_example.py`` is ``$BROWSER``: a small script that follows the
simulator's consent redirect to the example's own callback server, as a browser would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctrader_typed.tokens import FileTokenStore
from tests.integration.cli_support import BROWSER_SCRIPT, Lines, SimInfo, fresh_tokens, running_sim, sim_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimInfo]:
    with running_sim(tmp_path_factory.mktemp("sim") / "sim.log") as info:
        yield info


def run_example(name: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def no_secrets(sim: SimInfo, text: str) -> None:
    assert sim["client_secret"] not in text


@pytest.mark.skipif(os.name != "posix", reason="$BROWSER command lines are POSIX-style here")
def test_oauth_auth_example(sim: SimInfo, tmp_path: Path) -> None:
    browser = tmp_path / "browser.py"
    browser.write_text(BROWSER_SCRIPT)
    env = sim_env(
        sim,
        tmp_path,
        CTRADER_REDIRECT_URI="http://localhost:0/auth/callback",
        BROWSER=f"{sys.executable} {browser} %s",
    )
    result = run_example("oauth_auth_example.py", env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Opening the sign-in page" in out
    assert "Signed in with scope trading" in out
    assert "browser: 200 /auth/callback" in result.stderr
    store = FileTokenStore.for_client(sim["client_id"], "demo", directory=tmp_path)
    assert f"Tokens saved to {store.path}" in out
    tokens = store.load_sync()
    assert tokens is not None
    for account_id in sim["accounts"]:
        assert f"Account {account_id} (" in out
    assert f"Account {sim['accounts'][0]} is authorised; balance " in out
    no_secrets(sim, out + result.stderr)
    assert tokens.access_token not in out + result.stderr


def test_simple_oauth_example(sim: SimInfo, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path, CTRADER_REDIRECT_URI=sim["redirect_uri"])
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "simple_oauth_example.py")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(proc)
        url = lines.until("http")
        # The "browser": the consent page redirects to the redirect URI, where nothing
        # listens; the user copies that address and pastes it.
        location = httpx.get(url, follow_redirects=False, trust_env=False).headers["location"]
        assert proc.stdin is not None
        proc.stdin.write(location + "\n")
        proc.stdin.close()
        proc.wait(timeout=60)
        out = lines.rest()
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == 0, out + err
    assert "Got tokens (type bearer" in out
    assert f"The token grants {len(sim['accounts'])} accounts." in out
    assert f"Account {sim['accounts'][0]} is authorised and has " in out
    no_secrets(sim, out + err)


def test_simple_oauth_example_rejects_a_foreign_state(sim: SimInfo, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path)
    pasted = f"{sim['redirect_uri']}?code=abc&state=not-ours\n"
    result = run_example("simple_oauth_example.py", env, stdin=pasted)
    assert result.returncode != 0
    assert "STATE_MISMATCH" in result.stderr


def test_basic_usage_with_an_access_token(sim: SimInfo, tmp_path: Path) -> None:
    tokens = fresh_tokens(sim)
    env = sim_env(sim, tmp_path, CTRADER_ACCESS_TOKEN=tokens.access_token, CTRADER_SYMBOL="GBPUSD")
    result = run_example("basic_usage.py", env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"Account {sim['accounts'][0]} authorised." in out
    assert "GBPUSD: id " in out
    assert out.count("Quote: bid ") == 3
    assert " H1 bars in the last two days." in out
    no_secrets(sim, out + result.stderr)
    assert tokens.access_token not in out + result.stderr


def test_basic_usage_with_stored_tokens(sim: SimInfo, tmp_path: Path) -> None:
    store = FileTokenStore.for_client(sim["client_id"], "demo", directory=tmp_path)
    store.save_sync(fresh_tokens(sim))
    result = run_example("basic_usage.py", sim_env(sim, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "H1 bars in the last two days." in result.stdout


def test_examples_explain_missing_configuration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTRADER_")}
    for name in ("oauth_auth_example.py", "simple_oauth_example.py", "basic_usage.py"):
        result = run_example(name, env)
        assert result.returncode == 1
        assert "Set CTRADER_CLIENT_ID" in result.stderr
