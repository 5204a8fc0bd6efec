"""``python -m codegen [--check]``: regenerate ``src/ctrader_typed/_generated/``.

``python -m codegen diff UPSTREAM_DIR``: list what an upstream schema release changed compared
with ``protos/``, at wire level (see ``codegen/diff.py``).
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import sys
import time
from pathlib import Path

from codegen import diff, load, model, policy, render
from codegen.errors import CodegenError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROTOS = ROOT / "protos"
DEFAULT_TEMPLATES = ROOT / "templates"
DEFAULT_OUT = ROOT / "src" / "ctrader_typed" / "_generated"


def generate(proto_dir: Path, template_dir: Path, policy_file: Path | None = None) -> dict[str, str]:
    """Run load -> model -> render and return the generated files by name.

    ``policy_file`` is the request policy table; by default ``policy.toml`` in ``proto_dir``.
    """
    policy_file = policy_file or proto_dir / policy.FILE_NAME
    loaded = load.run_protoc(proto_dir)
    built = model.build(loaded.descriptors, policy.load(policy_file))
    inputs: dict[str, bytes] = {}
    for path in load.proto_files(proto_dir):
        inputs[f"protos/{path.name}"] = path.read_bytes()
    inputs[f"protos/{policy.FILE_NAME}"] = policy_file.read_bytes()
    for path in sorted(template_dir.glob("*.j2")):
        inputs[f"templates/{path.name}"] = path.read_bytes()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        inputs[f"codegen/{path.name}"] = path.read_bytes()
    return render.render(built, loaded, template_dir, inputs)


def write(files: dict[str, str], out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def check(files: dict[str, str], out_dir: Path) -> list[str]:
    """Names every stale, missing or extra file; empty when the output is current."""
    problems: list[str] = []
    existing = {p.name for p in out_dir.iterdir() if p.is_file()} if out_dir.is_dir() else set()
    existing -= {n for n in existing if n.endswith((".pyc",))}
    for name in sorted(files):
        path = out_dir / name
        if name not in existing:
            problems.append(f"missing: {path}")
            continue
        current = path.read_text(encoding="utf-8")
        if current != files[name]:
            diff = difflib.unified_diff(
                current.splitlines(),
                files[name].splitlines(),
                f"{name} (committed)",
                f"{name} (fresh)",
                lineterm="",
                n=1,
            )
            excerpt = "\n".join(list(diff)[:12])
            problems.append(f"stale: {path}\n{excerpt}")
    for name in sorted(existing - set(files)):
        problems.append(f"extra: {out_dir / name}")
    if out_dir.is_dir():
        for sub in sorted(p for p in out_dir.iterdir() if p.is_dir() and p.name != "__pycache__"):
            problems.append(f"extra: {sub}/")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diff"]:
        return diff.main(argv[1:], DEFAULT_PROTOS)
    parser = argparse.ArgumentParser(
        prog="python -m codegen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="verify the committed output equals a fresh run")
    parser.add_argument(
        "--protos", type=Path, default=DEFAULT_PROTOS, help="schema directory (default: protos/)"
    )
    parser.add_argument(
        "--policy",
        type=Path,
        default=None,
        help=f"request policy table (default: {policy.FILE_NAME} in the schema directory)",
    )
    parser.add_argument("--templates", type=Path, default=DEFAULT_TEMPLATES, help="template directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        files = generate(args.protos, args.templates, args.policy)
    except CodegenError as exc:
        print(f"codegen: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(files, args.out)
        if problems:
            print("codegen: generated code is out of date; run `python -m codegen`:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"codegen: {len(files)} files up to date ({time.perf_counter() - started:.2f}s)")
        return 0
    write(files, args.out)
    print(f"codegen: wrote {len(files)} files to {args.out} ({time.perf_counter() - started:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
