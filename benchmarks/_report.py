"""The README's "Performance" section, written from a run's results (and the committed
``results/before.json``, the run before the hot-path fixes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._harness import PUBLISHED_DIR, Row, markdown

BEFORE = PUBLISHED_DIR / "before.json"


def _by_key(rows: Sequence[Row]) -> dict[str, Row]:
    return {row.key: row for row in rows}


def _before() -> dict[str, dict[str, Any]]:
    if not BEFORE.exists():
        return {}
    document = json.loads(BEFORE.read_text(encoding="utf-8"))
    return {row["key"]: row for row in document["results"]}


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _us(rate: float | None) -> float:
    return 1e6 / rate if rate else float("nan")


def _stream_bounds(now: dict[str, Row]) -> list[str]:
    """Why the stream targets that were missed were missed, from the run's own figures."""
    stream = now.get("spot_stream")
    if stream is None:
        return []
    extra = stream.extra
    per_cpu: dict[str, float] = extra.get("events_per_cpu_second", {})
    parts: dict[str, float] = extra.get("breakdown_us", {})
    ours_us, bare_us = _us(per_cpu.get("ours")), _us(per_cpu.get("bare"))
    skip_us, tls_us = _us(per_cpu.get("bare_skip")), _us(per_cpu.get("raw_split"))
    wrap = parts.get("wrap", 0.0)
    split = parts.get("split_and_parse", 0.0)
    out: list[str] = []

    def needs(target_us: float, total_us: float) -> str:
        """What the wrapper build would have to cost for ``total_us`` to become ``target_us``."""
        rest = total_us - wrap
        if rest >= target_us:
            return f"even a free wrapper would leave {rest:.2f} us, above the {target_us:.2f} us the target allows"
        return f"it needs the wrapper built in about {target_us - rest:.2f} us instead of {wrap:.2f}"

    skip = now.get("spot_stream_skip")
    if stream.met is False or (skip is not None and skip.met is False):
        budget = bare_us / 0.6
        skip_text = (
            f" and {skip.ratio:.2f}x the envelope-skipping loop ({skip_us:.2f} us; target 0.45x)"
            if skip is not None and skip.ratio is not None
            else ""
        )
        out.append(
            f"- **Spot stream, {stream.ratio:.2f}x the bare loop per CPU second (target 0.6x){skip_text}.** "
            f"Ours costs {ours_us:.2f} us per event, the bare loop {bare_us:.2f} us. Measured in memory in "
            f"the same run: the SDK's decoder taking the envelope-skipping path and parsing each spot "
            f"payload straight from the buffer, fed as the link reads, {split:.2f} us per event (the "
            f"skipping bare loop {parts.get('bare_skip_loop', 0):.2f} us), building the frozen `SpotEvent` "
            f"{wrap:.2f} us, the whole receive "
            f"path without a socket (decoder, dispatch, wrapper, queue, `get_nowait`) "
            f"{parts.get('sdk_in_memory', 0):.2f} us; TLS and asyncio's read add {tls_us:.2f} us (a bare "
            f"protocol that only splits frames). 0.6x allows {budget:.2f} us per event: {needs(budget, ours_us)}."
        )
    batches = now.get("spot_stream_batches")
    if batches is not None and batches.met is False:
        batch_us = _us(per_cpu.get("ours_batches"))
        budget = bare_us / 0.8
        out.append(
            f"- **`stream.batches()`, {batches.ratio:.2f}x the bare loop (target 0.8x).** {batch_us:.2f} us "
            f"per event against {bare_us:.2f}: 0.8x allows {budget:.2f} us, and parsing each payload, "
            f"building its wrapper and the TLS read alone take {split + wrap + tls_us:.2f} us; "
            f"{needs(budget, batch_us)}."
        )
    theirs = now.get("openapipy_stream")
    if theirs is not None and theirs.met is False and theirs.baseline:
        their_us = _us(theirs.baseline)
        out.append(
            f"- **OpenApiPy on upb, {theirs.ratio:.2f}x (target 2x).** On the same protobuf runtime OpenApiPy "
            f"spends {their_us:.2f} us per event: Twisted's framing, then `Protobuf.extract` (envelope and "
            f"payload parse) handing out the bare protobuf object - no typed wrapper, no queue. 2x would be "
            f"{their_us / 2:.2f} us per event, {their_us / 2 / bare_us:.2f}x the bare loop's cost; ours, "
            f"{ours_us:.2f} us, spends {wrap:.2f} us of it building the wrapper OpenApiPy does not have."
        )
    return out


def readme_section(rows: Sequence[Row], machine: dict[str, Any], elapsed: float) -> str:
    """Markdown starting with ``## Performance``."""
    now = _by_key(rows)
    before = _before()
    out = [
        "## Performance",
        "",
        "Measured with `nox -s bench` (`python -m benchmarks`). Every ratio compares two things measured "
        "side by side in the same run - repetitions interleaved, the median of each side - so it compares "
        "code, not machines. Stream figures are **events per CPU second of the consuming process**: they "
        "do not move with how producer and consumer share the cores, or with other work on the machine "
        "(wall-clock rates are in the notes, with the load average). The stream's producer is a "
        "pre-encoded firehose in its own process (`benchmarks/_firehose.py`: frames encoded once, written "
        "in 256 KiB writes), so the client is the bottleneck; the simulator, which builds every event as it "
        "goes, is kept as a labelled row. Everything crosses real TLS on loopback. Results: "
        "`bench-results/latest.json` and `.md` (the run below is committed as "
        "`benchmarks/results/latest.json`). OpenApiPy (`ctrader-open-api==0.9.2`) runs in two virtualenvs "
        "of its own: the interop suite's (`$CTRADER_INTEROP_VENV`, its protobuf 3.20.1 pin: pure Python "
        "here) and one with the pin overridden to the upb protobuf we use (`$CTRADER_OPENAPIPY_UPB_VENV`); "
        "`python -m benchmarks --no-openapipy` skips both, `--only stream roundtrip ...` picks benchmarks, "
        "`--quick` is a smoke run.",
        "",
        markdown(rows, machine, elapsed).rstrip("\n"),
        "",
    ]
    rtt, imp, spinning = now.get("roundtrip_p50"), now.get("import"), now.get("roundtrip_spinning")
    bounds = _stream_bounds(now)
    if rtt is not None and rtt.met is False and rtt.ours is not None and rtt.baseline:
        memory = rtt.extra.get("in_memory_us", {})
        written = rtt.extra.get("until_written_us", 0.0)
        handled = rtt.extra.get("answer_handled_us", 0.0)
        own = max(memory.get("ours", 0) - memory.get("bare", 0), 1e-9)
        bounds.append(
            f"- **Round trip, +{rtt.ours:.1f} us over a bare client (target +10 us; p50 {rtt.ratio:.2f}x).** "
            f"Without a socket, against an instant in-memory server, a request costs "
            f"{memory.get('ours', 0):.1f} us through the SDK and {memory.get('bare', 0):.1f} us as a bare "
            f"future: the SDK's own work is {own:.1f} us per request (two coroutine layers - the generated "
            "`send_*` method and the pipeline's call - the request's pending-table entry and deadline, "
            "the envelope, routing and correlating the answer, parsing the response and building its "
            "wrapper; the bare client hands back the envelope and parses no response). Over TLS the SDK "
            f"adds {rtt.ours / own:.1f}x that much, and the parts measured on their own show why: from the "
            f"call to the frame's write it took {written:.1f} us over TLS against "
            f"{memory.get('until_written', 0):.1f} us back to back in memory, and handling the answer's "
            f"envelope {handled:.1f} us against {memory.get('answer_handled', 0):.1f} us - the same code, "
            "run right after the event loop woke from waiting on the socket, most likely with cold caches "
            "(the simulator's process runs in between, on a machine of two cores)."
            + (
                f" With an event loop that never sleeps (it polls the socket, so its core stays busy) the "
                f"SDK adds {spinning.ours:+.1f} us over the bare client on the same loop, so about "
                f"{rtt.ours - spinning.ours:.0f} us of the +{rtt.ours:.1f} us come from running right after "
                "a wake-up; what is left is still above the in-memory figure, as TLS (OpenSSL) and the "
                "simulator's process run between one request and the next."
                if spinning is not None and spinning.ours is not None
                else ""
            )
        )
    if imp is not None and imp.met is False and imp.baseline:
        wrappers = imp.extra.get("wrappers_and_enums_only_ms", 0.0)
        bounds.append(
            f"- **Import, {imp.ratio:.1f}x (target 2x).** The wrappers and enums (all the generated code and "
            f"the protobuf modules) import in {wrappers:.0f} ms, {wrappers / imp.baseline:.2f}x the bare "
            "modules; the client (asyncio), OAuth (httpx) and the helpers already load on first use "
            "(PEP 562), so what remains is the generated code itself."
        )
    explained: set[str] = set()
    for row in rows:
        if row.key.endswith("_read_all") and row.met is False and row.ratio is not None:
            floor = row.extra.get("floor_ratio")
            if floor is None:
                continue
            compiled = row.extra.get("compiled_ratio")
            if compiled is None:
                compiled_text = (
                    f"(The compiled side was not built here: {row.extra.get('compiled_missing')}.) "
                )
            else:
                compiled_text = (
                    "The same wrappers built in C - each instance allocated and its slots filled with the "
                    "same presence tests and conversions, no Python code per element - measured "
                    f"{compiled:.2f}x in this run: "
                    + (
                        "compiling the wrapping does not reach 1.5x either, because what remains is what "
                        "the bare side never pays (an object per element, a second read of every value), "
                        "not interpreting. "
                        if compiled > 1.5
                        else "only compiled wrapping reaches the target here. "
                    )
                )
            bounds.append(
                f"- **{row.what}: {row.ratio:.2f}x (target 1.5x).** The floor of any eager wrapping in "
                f"Python, measured in the same run, is {floor:.2f}x: a wrapper that copies the fields reads "
                "each one from protobuf once (all that the bare side does), then also makes an object, "
                f"stores the values and is read in turn. {compiled_text}A lazy wrapper reads protobuf at "
                "every access through a Python property, which costs more per read than the bare read it "
                f"wraps. Ours is {row.ratio - floor:.2f}x above the Python floor: presence tests (an "
                "optional field absent or at its default is read twice), enum members for enum fields, "
                "and the switch from the build class to the frozen class."
            )
            explained.add(row.key)
    explained |= {
        "spot_stream",
        "spot_stream_skip",
        "spot_stream_batches",
        "openapipy_stream",
        "roundtrip_p50",
    }
    explained.add("import")
    for row in rows:
        if row.met is False and row.key not in explained:
            ratio = f"{row.ratio:.2f}x {row.ratio_label}".strip() if row.ratio is not None else "-"
            bounds.append(
                f"- **{row.what}**: {ratio} (target {row.target}); its note above gives the figures."
            )
    out += ["### Where a target is missed, and why", ""]
    out += bounds if bounds else ["Every target was met in this run."]
    out += [
        "",
        "### The stream path",
        "",
        "- A spot event's envelope holds nothing but its payload type and payload, so its first bytes are "
        "always the same. The frame decoder reads the frame length, those header bytes and the payload "
        "length with one `struct` call and, for a type a stream asked for, parses the payload straight "
        "from the receive buffer - the envelope is never parsed. Anything unusual (a `clientMsgId`, "
        "another field, a long payload, a payload that does not parse) takes the full parse, in order; "
        "a Hypothesis test checks that both paths agree for arbitrary envelopes.",
        "- Consecutive frames of one type are parsed in a tight loop and queued as one list "
        "(`deque.extend`), drop-oldest overflow and filters included, so the cost per event is the "
        "parse and the wrapper.",
        "- A spot event is parsed with a *lite* variant of its message (`ctrader_typed._lite`, made at "
        "run time from the real descriptor), whose live-bar field is plain bytes: reading an absent "
        "repeated field of the real message builds a container, the costliest read of the event. "
        "Each run of frames is parsed into one such message, made once per run (making a message "
        "costs more than the parse; a new one per run because a message keeps the unknown fields it "
        "parsed until it is dropped), and the generated builder copies the fields into the frozen "
        "`SpotEvent`. The bars and the rarely sent `sessionClose` sit in one oneof of the variant, "
        "so one call per event tells whether either is there; such an event is refused by that "
        "builder and parsed in full (after one with bars, every spot event is); Hypothesis tests "
        "check both paths build what `from_bytes` builds.",
        "- The TLS link feeds what it reads to the decoder 16 KiB at a time and takes the rest of a "
        "larger read in callbacks of its own, each after the consumers the last slice woke, so a "
        "consumer that keeps up holds one slice of events at a time - fewer than the 700 new "
        "objects after which Python's garbage collector walks the young ones, which cost the stream "
        "about a tenth of its speed while two or more slices piled up. At the end of a stream it "
        "delivers everything it holds first.",
        "- `async for` over a stream resumes one async generator; `stream.batches()` hands out "
        "everything queued at once.",
        "",
    ]
    changes: list[str] = []

    def change(
        label: str,
        key: str,
        fmt: str,
        *,
        extra: str | None = None,
        scale: float = 1.0,
        relative: tuple[str, str] | None = None,
    ) -> None:
        """A row: the figure before and after and, where it has one, its ratio to the baseline of
        its own run (which a busier or quieter machine moves much less)."""
        if key not in before or key not in now:
            return
        old_extra, new_extra = before[key]["extra"], now[key].extra
        old = old_extra.get(extra) if extra else before[key]["ours"]
        new = new_extra.get(extra) if extra else now[key].ours
        if old is None or new is None:
            return
        if relative is not None:
            numerator, denominator = relative
            old_ratio = old_extra[numerator] / old_extra[denominator]
            new_ratio = new_extra[numerator] / new_extra[denominator]
        else:
            old_ratio, new_ratio = before[key]["ratio"], now[key].ratio
        ratios = f"{old_ratio:.2f}x | {new_ratio:.2f}x" if old_ratio and new_ratio else "- | -"
        changes.append(f"| {label} | {fmt.format(old * scale)} | {fmt.format(new * scale)} | {ratios} |")

    change(
        "SDK receive path without a socket (events/s; ratio to the bare loop)",
        "spot_stream",
        "{:,.0f}",
        extra="sdk_in_memory",
        relative=("sdk_in_memory", "bare"),
    )
    change("import ctrader_typed (ms; ratio to the bare modules)", "import", "{:.0f}")
    change(
        "20,000-symbol SymbolsListRes, decode + read all (ms; ratio to the bare parse)",
        "symbols_20k_decode_all",
        "{:.1f}",
    )
    change(
        "100,000-bar GetTrendbarsRes, decode + read all (ms; ratio to the bare parse)",
        "trendbars_100k_decode_all",
        "{:.0f}",
    )
    change(
        "full event queue (10,000 spot events), bytes per event",
        "memory",
        "{:.0f}",
        extra="full_queue_heap_kib",
        scale=1024 / 10_000,
    )
    if changes:
        out += [
            "### Hot-path fixes, before and after",
            "",
            "Before: `benchmarks/results/before.json` (the same benchmarks at commit "
            f"{json.loads(BEFORE.read_text(encoding='utf-8'))['machine'].get('git_commit')}, on this machine, "
            "which other work was loading then). Absolute figures move with the machine's load from run to "
            "run; the ratios to each run's own baseline move much less.",
            "",
            "| figure | before | after | before, ratio | after, ratio |",
            "|---|---|---|---|---|",
            *changes,
            "",
            "- Wrappers of parsed messages are built through the slots' own setters, test presence with "
            "`name in message` instead of a bound `HasField` per field, and set an empty repeated "
            "sub-message field to `()` at once (no parsed message kept alive for it): building a "
            "`SpotEvent` from its parsed message went from 1.95 to 1.04 us (timeit, during the work).",
            "- The client's dispatch table holds each wrapper's parse and build functions, so an event "
            "costs no `from_bytes`/`cast` call, and an absent `clientMsgId` is not read.",
            "- The stream's fast path (issue 15, second round): the lite spot-event variant and one "
            "message per run (above), 16 KiB slices with the consumers running between, `sessionClose` "
            "tested for presence first (it rides only on the first event after a subscription), and "
            "wrappers made by calling their build class rather than `object.__new__` on it.",
            "- Wrapper classes are made by `wrapper_dataclass` (same classes as "
            "`@dataclass(frozen=True, slots=True, kw_only=True)`, checked field by field in the tests) "
            "without compiling methods at import: the wrappers module went from about 150 ms to 20 ms.",
            "",
        ]
    return "\n".join(out)


README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- --8<-- [start:performance] -->", "<!-- --8<-- [end:performance] -->"


def write_readme_section(rows: Sequence[Row], machine: dict[str, Any], elapsed: float) -> Path:
    """Write ``benchmarks/README-section.md`` and copy it (without its heading) between the
    README's performance markers, which the docs' Performance page also shows."""
    path = Path(__file__).resolve().parent / "README-section.md"
    section = readme_section(rows, machine, elapsed)
    path.write_text(section, encoding="utf-8")
    publish(section)
    return path


def publish(section: str, readme: Path = README) -> None:
    """Replace what lies between the performance markers of ``readme`` with ``section`` (its
    ``## Performance`` heading left out: the README has its own, above the markers)."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise RuntimeError(f"{readme} has no {START} ... {END} markers")
    body = section.split("\n", 1)[1] if section.startswith("## Performance") else section
    readme.write_text(
        text[: start + len(START)] + "\n" + body.rstrip("\n") + "\n" + text[end:], encoding="utf-8"
    )
