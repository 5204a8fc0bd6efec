"""Prepare the Node JSON-over-WebSocket interop client (``client.js``): find Node and npm, install ``ws``.

``run_interop.py`` registers the client and calls :func:`prepare` with a cache directory of the
client's own. The one package (``ws``, pinned by the committed ``package-lock.json``) is installed
with ``npm ci`` into a directory named after the lock file's hash inside that cache, never into the
repository, and reused while the lock file is unchanged.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "client.js"
LOCK = HERE / "package-lock.json"
MANIFEST = HERE / "package.json"
MIN_NODE = 18


class Unavailable(Exception):
    """Node or npm is missing or too old here, or the locked packages cannot be installed."""


def find_node() -> tuple[str, str]:
    """Paths of ``node`` and ``npm`` on PATH; :class:`Unavailable` if either is missing or too old."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        raise Unavailable("no node on PATH (the JSON WebSocket client needs Node.js >= 18 and npm)")
    if npm is None:
        raise Unavailable("node is on PATH but npm is not")
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"node --version failed: {exc}") from exc
    major = re.match(r"v?(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        raise Unavailable(f"node {version} is older than {MIN_NODE}")
    return node, npm


def install(npm: str, workdir: Path) -> Path:
    """``node_modules`` filled by ``npm ci`` from the committed lock file (reused while it is unchanged)."""
    key = hashlib.sha256(LOCK.read_bytes() + MANIFEST.read_bytes()).hexdigest()[:12]
    target = workdir / f"npm-{key}"
    modules = target / "node_modules"
    stamp = target / ".installed"
    if stamp.is_file() and (modules / "ws" / "package.json").is_file():
        return modules
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(MANIFEST, target / "package.json")
    shutil.copy2(LOCK, target / "package-lock.json")
    print(f"interop: npm ci in {target}", flush=True)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--cache", str(workdir / "npm-cache")],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise Unavailable(f"npm ci failed: {' / '.join(tail)}")
    stamp.write_text(key + "\n")
    return modules


def prepare(workdir: Path) -> list[str]:
    """Install the client's package under ``workdir``; the command that runs its flow."""
    node, npm = find_node()
    modules = install(npm, workdir)
    return [node, str(CLIENT), "--modules", str(modules)]
