"""The documentation's code is real code: examples type-check under ``mypy --strict`` and run
against the simulator, and every Python block of the guide pages is valid Python."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PYTHON_BLOCK = re.compile(r"^(?P<indent> *)```python[^\n]*\n(?P<code>.*?)^(?P=indent)```", re.M | re.S)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _run(name: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    main = _load(name).main
    await main()
    return capsys.readouterr().out.splitlines()


@pytest.mark.typecheck
def test_examples_pass_strict_mypy(tmp_path: Path) -> None:
    files = sorted(str(path) for path in EXAMPLES.glob("*.py"))
    assert len(files) >= 7
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-color-output",
            "--show-error-codes",
            "--cache-dir",
            str(tmp_path / "cache"),
            *files,
        ]
    )
    assert (stderr, status) == ("", 0), stdout


def test_every_included_example_exists_and_every_example_is_included() -> None:
    pages = "\n".join(path.read_text(encoding="utf-8") for path in DOCS.rglob("*.md"))
    # Block-style includes (--8<-- / path / --8<--): an inline one parses as Python, which ruff would format.
    included = set(re.findall(r"^--8<--\ndocs/examples/([\w.]+)\n--8<--$", pages, re.M))
    assert included == {path.name for path in EXAMPLES.glob("*.py")}


def test_python_blocks_of_the_pages_are_valid_python() -> None:
    checked = 0
    for page in sorted(DOCS.rglob("*.md")):
        for match in PYTHON_BLOCK.finditer(page.read_text(encoding="utf-8")):
            code = "\n".join(line.removeprefix(match["indent"]) for line in match["code"].splitlines())
            if code.lstrip().startswith("--8<--"):
                continue  # an included example: checked by the tests above and below
            try:
                compile(code, str(page), "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            except SyntaxError as exc:
                pytest.fail(f"{page.relative_to(ROOT)}: invalid Python block: {exc}\n{code}")
            checked += 1
    assert checked >= 15  # the guide's fragments were found at all


async def test_quickstart_prints_five_quotes(capsys: pytest.CaptureFixture[str]) -> None:
    lines = await _run("quickstart", capsys)
    assert len(lines) == 5
    for line in lines:
        assert re.fullmatch(r"EURUSD bid (\d\.\d{5}|unchanged) ask (\d\.\d{5}|unchanged)", line), line


async def test_trading_example_fills_closes_and_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    lines = await _run("trading", capsys)
    assert lines[0] == "first answer: ORDER_ACCEPTED"
    assert re.fullmatch(r"filled 0\.1 lots at \d\.\d+", lines[1]), lines[1]
    assert lines[2:] == ["position closed: ORDER_FILLED", "refused: TRADING_BAD_VOLUME"]


async def test_history_example_downloads_bars_and_ticks(capsys: pytest.CaptureFixture[str]) -> None:
    bars, ticks = await _run("history", capsys)
    assert re.fullmatch(r"16[89] bars; last: \S+ \S+ close \d\.\d{5}", bars), bars
    assert re.fullmatch(r"[1-9]\d* bid ticks; last at \S+ price \d\.\d{5}", ticks), ticks


async def test_reconnect_example_sees_the_session_restored(capsys: pytest.CaptureFixture[str]) -> None:
    lines = await _run("reconnect", capsys)
    assert [line.split(" ")[0] for line in lines] == ["disconnected", "account", "reconnected", "quotes"]
    assert lines[0].endswith("reconnecting: True")


def test_pytest_example_passes() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n0",  # one process, as in a project without this repository's -n auto
            str(EXAMPLES / "test_with_simulator.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_the_testing_reference_lists_every_export() -> None:
    import ctrader_typed.testing

    page = (DOCS / "reference" / "testing.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: ctrader_typed\.testing\.(\w+)$", page, re.M))
    assert set(ctrader_typed.testing.__all__) <= documented
