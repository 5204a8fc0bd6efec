"""``python -m benchmarks [--only NAME ...] [--quick] [--no-openapipy] [--publish] [--strict]``.

Runs every benchmark (each ratio side by side with its baseline), prints the table and
writes ``bench-results/latest.json`` / ``.md`` (plus a time-stamped copy); ``--publish``
also writes the committed ``benchmarks/results/latest.*``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from benchmarks import codegen_time, decode, history, imports, memory, replay, roundtrip, stream, websocket
from benchmarks._harness import Row, load_average, log, machine_info, write_results
from benchmarks._report import write_readme_section

NAMES = ("stream", "roundtrip", "websocket", "decode", "imports", "codegen", "memory", "history", "replay")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=NAMES, help="run only these benchmarks")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions (a smoke run, not for figures)"
    )
    parser.add_argument("--no-openapipy", action="store_true", help="skip the OpenApiPy comparison")
    parser.add_argument(
        "--publish",
        action="store_true",
        help=(
            "also write benchmarks/results/latest.* and (for a full run) benchmarks/README-section.md, "
            "copied into the Performance section of README.md"
        ),
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    chosen = args.only or list(NAMES)
    quick = args.quick
    started = time.perf_counter()
    machine = machine_info()
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"protobuf {machine['protobuf']} ({machine['protobuf_backend']})")  # fmt: skip
    rows: list[Row] = []
    for name in NAMES:
        if name not in chosen:
            continue
        log(f"== {name}")
        if name == "stream":
            rows += asyncio.run(
                stream.run(
                    n=50_000 if quick else 200_000,
                    # Rounds of one side vary by +-10% on a shared 2-core VM: nine steady the medians.
                    repeats=2 if quick else 9,
                    openapipy_n=10_000 if quick else 50_000,
                    openapipy=not args.no_openapipy,
                )
            )
        elif name == "roundtrip":
            rows += asyncio.run(roundtrip.run(samples=500 if quick else 3_000, repeats=2 if quick else 5))
            with asyncio.Runner(loop_factory=roundtrip.spinning_loop) as runner:
                rows.append(runner.run(roundtrip.added_while_spinning(samples=500 if quick else 3_000)))
        elif name == "websocket":
            rows += asyncio.run(
                websocket.run(
                    n=20_000 if quick else 100_000,
                    repeats=2 if quick else 5,
                    samples=400 if quick else 2_000,
                )
            )
        elif name == "decode":
            rows += decode.run(repeats=3 if quick else 9)
        elif name == "imports":
            rows += imports.run(repeats=5 if quick else 21)
        elif name == "codegen":
            rows += codegen_time.run(repeats=1 if quick else 3)
        elif name == "memory":
            rows += memory.run(events=20_000 if quick else 200_000)
        elif name == "history":
            rows += history.run(repeats=3 if quick else 9)
        elif name == "replay":
            rows += replay.run(n=10_000 if quick else 50_000, repeats=2 if quick else 5)
    elapsed = time.perf_counter() - started
    machine["load_average_after"] = load_average()
    path = write_results(rows, machine, elapsed, publish=args.publish)
    if args.publish and not args.only and not args.quick:
        log(f"wrote {write_readme_section(rows, machine, elapsed)}")
    sys.stdout.write(path.read_text(encoding="utf-8"))
    missed = [row.what for row in rows if row.met is False]
    if missed:
        log(f"targets missed: {'; '.join(missed)}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
