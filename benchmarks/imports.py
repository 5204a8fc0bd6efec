"""``import ctrader_typed`` against importing the bare protobuf modules, each in a fresh interpreter.

Both sides time only the import statements, inside the child process (interpreter start-up
is not counted). Bytecode is cached (as in an installed package): the children run with
``PYTHONPYCACHEPREFIX`` under ``bench-results/`` and one warm-up each fills it. The
baseline imports the four ``*_pb2`` modules without running ``ctrader_typed/__init__.py``
(stand-in package objects are put in ``sys.modules`` first), so it costs what protobuf
and the schema cost, nothing of ours.
"""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks._harness import RESULTS_DIR, ROOT, Row, interleave, log, median

_TIMER = "import time as _t; _s = _t.perf_counter()\n"
_REPORT = "\nprint(_t.perf_counter() - _s)\n"

OURS = _TIMER + "import ctrader_typed" + _REPORT

BARE = (
    _TIMER
    + f"""
import sys, types
_src = {str(ROOT / "src" / "ctrader_typed")!r}
import importlib.util
_spec = importlib.util.find_spec("ctrader_typed")
_root = _spec.submodule_search_locations[0] if _spec and _spec.submodule_search_locations else _src
for _name, _path in (("ctrader_typed", _root), ("ctrader_typed._generated", _root + "/_generated")):
    _m = types.ModuleType(_name)
    _m.__path__ = [_path]
    sys.modules[_name] = _m
_s = _t.perf_counter()
from ctrader_typed._generated import (
    OpenApiCommonMessages_pb2, OpenApiCommonModelMessages_pb2, OpenApiMessages_pb2, OpenApiModelMessages_pb2,
)
"""
    + _REPORT
)


# The wrappers and enums alone (what ``ctrader_typed/__init__.py`` must import eagerly to
# re-export them), without the client, OAuth (httpx) and helpers the package also imports.
WRAPPERS_ONLY = BARE.replace(
    "from ctrader_typed._generated import (",
    "import ctrader_typed._generated.enums, ctrader_typed._generated.messages\nfrom ctrader_typed._generated import (",
)


def _child(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS_DIR / "pycache")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def breakdown() -> dict[str, float]:
    """Cumulative import time (ms) of the heaviest modules under ``import ctrader_typed`` (-X importtime)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS_DIR / "pycache")
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import ctrader_typed"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative: dict[str, float] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        if cumulative_us.strip().isdigit():
            cumulative[name.strip()] = int(cumulative_us) / 1000
    wanted = [
        "ctrader_typed",
        "ctrader_typed._generated.messages",
        "ctrader_typed._generated.enums",
        "ctrader_typed._generated.OpenApiMessages_pb2",
        "ctrader_typed.client",
        "ctrader_typed.oauth",
        "httpx",
        "asyncio",
    ]
    return {name: cumulative[name] for name in wanted if name in cumulative}


def run(repeats: int = 21) -> list[Row]:
    samples = interleave(
        {
            "ours": lambda: _child(OURS),
            "bare": lambda: _child(BARE),
            "wrappers_only": lambda: _child(WRAPPERS_ONLY),
        },
        repeats,
    )
    ours, bare = median(samples["ours"]) * 1e3, median(samples["bare"]) * 1e3
    wrappers = median(samples["wrappers_only"]) * 1e3
    parts = breakdown()
    log(f"  imports: ours {ours:.1f} ms, bare protobuf modules {bare:.1f} ms; breakdown {parts}")
    heavy = ", ".join(f"{name} {ms:.0f} ms" for name, ms in parts.items() if name != "ctrader_typed")
    return [
        Row(
            key="import",
            what="import ctrader_typed",
            ours=ours,
            unit="ms",
            baseline=bare,
            baseline_label="importing the four bare *_pb2 modules",
            ratio=ours / bare,
            ratio_label="of the bare import",
            target="<= 2x",
            met=ours / bare <= 2,
            samples={k: [x * 1e3 for x in v] for k, v in samples.items()},
            extra={"importtime_cumulative_ms": parts, "wrappers_and_enums_only_ms": wrappers},
            notes=[
                f"one -X importtime run, cumulative: {heavy}. The wrappers and enums alone (the four "
                f"*_pb2 modules included) import in {wrappers:.1f} ms ({wrappers / bare:.2f}x the bare "
                "modules); the client (asyncio), OAuth (httpx) and the helpers load on first use "
                "(PEP 562 `__getattr__` in the package's __init__)."
            ],
        )
    ]
