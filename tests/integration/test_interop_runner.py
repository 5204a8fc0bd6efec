"""The interop runner's contract (tests/interop/run_interop.py), with stand-in clients.

Each stand-in flow is a small Python command run against a real ``ctrader-typed sim`` subprocess,
as the registered clients are: what it receives, and how its outcome turns into the report and the
exit status (a failure fails the run, a skip does not unless ``--strict``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUNNER_PATH = Path(__file__).resolve().parents[1] / "interop" / "run_interop.py"


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_interop_runner_under_test", RUNNER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The stand-in flow: checks the simulator's JSON line, connects to its port, exits with argv[1].
FLOW = """
import json, os, socket, ssl, sys
info = json.loads(os.environ["CTRADER_SIM_INFO"])
assert {"host", "port", "ca_file", "client_id", "client_secret", "access_token"} <= set(info)
context = ssl.create_default_context(cafile=info["ca_file"])
with socket.create_connection((info["host"], info["port"]), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname=info["host"]):
        print("ok: TLS to the simulator verified")
sys.exit(int(sys.argv[1]))
"""


def stand_in(runner: ModuleType, name: str, code: int) -> object:
    return runner.Client(
        name=name, title=f"stand-in {name}", prepare=lambda _workdir: [sys.executable, "-c", FLOW, str(code)]
    )


def skipped(runner: ModuleType, name: str) -> object:
    def prepare(_workdir: Path) -> list[str]:
        raise runner.Skip("no such runtime here")

    return runner.Client(name=name, title=f"stand-in {name}", prepare=prepare)


def test_a_passing_and_a_failing_flow_each_against_their_own_simulator(
    runner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "CLIENTS", [stand_in(runner, "good", 0), stand_in(runner, "bad", 3)])
    status = runner.main(["--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "[good] ok: TLS to the simulator verified" in out
    assert "[bad] ok: TLS to the simulator verified" in out
    report = out[out.index("interop results:") :]
    assert "good  PASSED" in report
    assert "bad   FAILED" in report
    assert "flow exited with 3" in report


def test_a_skip_is_reported_with_its_reason_and_fails_only_under_strict(
    runner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "CLIENTS", [skipped(runner, "absent")])
    assert runner.main(["--cache-dir", str(tmp_path)]) == 0
    assert "absent  SKIPPED" in capsys.readouterr().out
    assert runner.main(["--cache-dir", str(tmp_path), "--strict"]) == 1
    assert "no such runtime here" in capsys.readouterr().out


def test_client_selects_by_name_and_a_crashing_prepare_is_a_failure(
    runner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_workdir: Path) -> list[str]:
        raise OSError("disk full")

    crash = runner.Client(name="crash", title="stand-in crash", prepare=broken)
    monkeypatch.setattr(runner, "CLIENTS", [crash, skipped(runner, "other")])
    assert runner.main(["--cache-dir", str(tmp_path), "--client", "crash"]) == 1
    out = capsys.readouterr().out
    assert "prepare: OSError: disk full" in out
    assert "other" not in out[out.index("interop results:") :]


def test_an_unknown_client_name_is_a_usage_error(runner: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "CLIENTS", [stand_in(runner, "good", 0)])
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["--client", "nope"])
    assert exit_info.value.code == 2


def test_a_newer_python_than_any_installed_is_a_skip_with_the_reason(runner: ModuleType) -> None:
    with pytest.raises(runner.Skip, match=r"needs Python >= 3\.99"):
        runner.find_python((3, 99))
    assert runner.find_python(None) == sys.executable
