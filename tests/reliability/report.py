"""Render the README's "Reliability" section from the suite itself.

    python -m tests.reliability.report [--soak .cache/reliability/soak.json] [--fuzz-examples 100000]

The fault matrix comes from ``test_fault_matrix.CASES``, the soak figures from the JSON the soak
writes, the security table from ``SECURITY`` below (``test_report`` checks that every test it
names exists). Output goes to stdout; ``tests/reliability/README-section.md`` is its copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tests.reliability.test_fault_matrix import CASES

__all__ = ["SECURITY", "render"]

SECURITY: list[tuple[str, list[str]]] = [
    (
        "TLS verified by default on the socket: a self-signed server is refused without its CA, "
        "accepted with it; the host name is checked",
        [
            "tests/integration/test_client_basic.py::test_tls_is_verified_by_default",
            "tests/integration/test_client_basic.py::test_host_name_is_checked",
        ],
    ),
    (
        "TLS verified by default on the OAuth endpoints (HTTPS): same three checks",
        ["tests/reliability/test_security.py::test_oauth_over_https_verifies_certificate_and_host_name"],
    ),
    (
        "Client secret, access and refresh tokens (and authorization codes) never in any log record "
        "at DEBUG, any exception text, or the repr/str of any library object, across a full OAuth + "
        "client flow with refreshes, a reconnect and refused requests",
        [
            "tests/reliability/test_security.py::test_secrets_never_leak_across_a_full_flow",
            "tests/integration/test_client_tokens.py::test_secrets_never_reach_the_logs",
            "tests/unit/test_oauth.py::test_server_text_echoing_secrets_is_scrubbed",
            "tests/unit/test_oauth.py::test_httpx_request_log_line_has_secrets_redacted",
        ],
    ),
    (
        "OAuth `state` mismatch rejected",
        [
            "tests/integration/test_oauth_callback.py::test_state_mismatch_is_refused_and_the_real_callback_still_works",
            "tests/reliability/test_security.py::test_a_forged_callback_is_refused_and_the_real_one_completes",
            "tests/unit/test_oauth.py::test_code_from_redirect_failures",
        ],
    ),
    (
        "Callback server bound to loopback only",
        [
            "tests/integration/test_oauth_callback.py::test_binds_loopback_only",
            "tests/integration/test_oauth_callback.py::test_non_loopback_or_https_redirect_uris_are_rejected",
        ],
    ),
    (
        "Callback server takes one callback, then stops listening",
        ["tests/integration/test_oauth_callback.py::test_only_one_callback_is_accepted"],
    ),
    (
        "Callback server is time-limited",
        [
            "tests/integration/test_oauth_callback.py::test_timeout_is_clean_and_closes_the_listener",
            "tests/integration/test_oauth_callback.py::test_authorize_in_browser_times_out",
        ],
    ),
    (
        "Token file created 0600 (directories 0700), whatever the umask",
        ["tests/unit/test_tokens_file.py::test_file_is_0600_and_new_directories_0700"],
    ),
    (
        "Token file replaced atomically: a writer killed (SIGKILL) mid-write leaves the old or the new "
        "file, never a partial or mixed one",
        [
            "tests/unit/test_tokens_file.py::test_writer_killed_mid_write_leaves_a_whole_file",
            "tests/unit/test_tokens_file.py::test_save_replaces_the_file_rather_than_rewriting_it",
        ],
    ),
    (
        "A server echoing the client secret or a token in an error text (literal, URL-encoded or "
        "JSON-escaped): scrubbed from the exception, the library's log records and the events, on the "
        "socket path and the OAuth path",
        [
            "tests/integration/test_client_trust.py::test_application_auth_refusal_echoing_secrets_is_scrubbed",
            "tests/integration/test_client_trust.py::test_account_auth_refusal_echoing_secrets_is_scrubbed",
            "tests/integration/test_client_trust.py::test_refresh_refusal_echoing_secrets_is_scrubbed",
            "tests/integration/test_client_trust.py::test_unsolicited_errors_echoing_secrets_are_scrubbed",
            "tests/unit/test_oauth_hardening.py::test_echoed_secrets_are_scrubbed_in_every_spelling",
            "tests/unit/test_secrets.py::test_every_spelling_is_scrubbed",
        ],
    ),
    (
        "Settings that switch certificate or host-name checks off are refused unless `insecure_tls=True`; "
        "an untrusted certificate (unknown CA, another host) raises `TLSVerificationError`",
        [
            "tests/integration/test_client_trust.py::test_settings_that_switch_verification_off_are_refused",
            "tests/integration/test_client_trust.py::test_a_certificate_from_an_unknown_ca_is_not_trusted",
            "tests/integration/test_client_trust.py::test_a_certificate_for_another_host_is_not_trusted",
        ],
    ),
    (
        "A refreshed token pair reaches the store before anything else can fail; absurd lifetimes "
        "are clamped; the refresher never dies and never hammers the server",
        [
            "tests/integration/test_client_trust.py::test_a_lifetime_of_2_to_the_62_is_clamped_stored_first_and_the_refresher_lives_on",
            "tests/integration/test_client_trust.py::test_a_server_granting_tokens_shorter_than_the_margin_is_not_hammered",
            "tests/integration/test_client_trust.py::test_a_store_that_raises_is_reported_and_the_refresher_lives_on",
            "tests/unit/test_pacing_refresh.py::test_no_input_makes_refreshes_closer_than_the_minimum_or_raises",
        ],
    ),
    (
        "Callback server: a local process holding any address of the redirect host on that port "
        "(IPv4 or IPv6 loopback) stops the flow before a consent URL is shown",
        [
            "tests/integration/test_oauth_callback_hardening.py::test_a_squatter_on_ipv6_loopback_stops_a_localhost_callback",
            "tests/integration/test_oauth_callback_hardening.py::test_a_squatter_on_ipv4_loopback_stops_a_localhost_callback",
            "tests/integration/test_oauth_callback_hardening.py::test_authorize_in_browser_never_shows_a_consent_url_when_a_squatter_would_get_the_code",
        ],
    ),
    (
        "A pasted redirect without `state` is refused when a state was sent",
        ["tests/unit/test_oauth_hardening.py::test_a_redirect_without_state_is_refused_when_one_was_sent"],
    ),
    (
        "Token store: a FIFO, device or deep-JSON file is refused without blocking; loose permissions "
        "are reported and tightened; temp files left by a killed writer (they hold tokens) are removed",
        [
            "tests/unit/test_tokens_hardening.py::test_a_fifo_at_the_token_path_is_refused_without_blocking",
            "tests/unit/test_tokens_hardening.py::test_hostile_contents_raise_the_stores_error",
            "tests/unit/test_tokens_hardening.py::test_a_file_others_may_read_is_reported_and_tightened",
            "tests/unit/test_tokens_hardening.py::test_a_writer_killed_mid_write_leaves_a_temp_file_that_is_removed_later",
        ],
    ),
]
"""Each security requirement of the issue and the tests that check it."""

HEADER = """## Reliability

A trading client is trusted only if it survives what real links do. `tests/reliability/` proves it
against the simulator (and, for servers that misbehave on purpose, against `RawServer`) over real TLS
on 127.0.0.1. It runs with the rest of the suite, except the soak and the order burst (CI runs a
fast slice of them, `nox -s soak` the whole); the fuzz properties run there at a small size."""

MATRIX_INTRO = """### Fault matrix

One table-driven module (`tests/reliability/test_fault_matrix.py`): each row injects one fault and
checks its expected outcome. Every row also checks, through the same harness, that no request is left
pending or waits past its timeout (in-flight requests use 30 s timeouts inside a 15 s budget), that
the client is usable afterwards (a round trip on the restored session and a spot event on the
restored subscription; a new client where the old one was told to stop), that no task is left behind
(`asyncio.all_tasks()` before and after) and no socket (the process's open file descriptors before
and after), and that asyncio logged no error."""

FUZZ_TEXT = """### Fuzzing

Hypothesis properties in `tests/reliability/test_fuzz.py` over the inbound path: arbitrary byte
streams (valid, truncated and mutated frames, arbitrary length prefixes, garbage) split at arbitrary
points give exactly the frames a reference reading of the wire format gives, or a `ProtocolError` -
never another exception, a hang, or a buffer above one frame of the limit; the same streams through the
client's own dispatch give exactly the expected events or `RemoteProtocolError`; and every message
wrapper decodes valid, mutated and random payloads to a fully readable message or a decode error.
{examples}"""

FOUND = """### Found by this suite (fixed, kept as regression tests)

- A coroutine handler (`client.on`) got one task per event without bound: now at most
  `event_queue_size` tasks per handler, the overflow counted in `HandlerRegistration.dropped`
  (matrix row "Slow consumer on an async handler").
- An account auth carrying the held access token after it expired was refused instead of refreshed
  (matrix row "Expired access token at start").
- Invalid UTF-8 in a string field reached fields typed `str` as `bytes`, and a `ClientDisconnectEvent`
  with such a reason raised `TypeError` inside the dispatch (fuzzing, 100,000 examples).
- An error whose `maintenanceEndTimestamp` lies past year 9999 raised `ValueError` inside the
  dispatch (fuzzing, 100,000 examples).
- The simulator counted quotes for a connection already closing as sent, and showed a queued
  request's payload (which may hold a token) in a repr.

Found by attacking the client with `RawServer`, realistic bots and abused OAuth inputs (each fixed,
each a regression test; the table above and the matrix rows name them):

- Default pacing put exactly 50 requests into one server second: 120 orders fired at once got up to
  33 `BLOCKED_PAYLOAD_TYPE` refusals (10-46 at 40/s, which still burst), and refused trading
  requests were not resent. Now requests are
  spread at 40/s (4/s historical, counted against both), and a refused request of any kind (it was
  never executed) is resent after `retryAfter` within the caller's timeout (see "Order burst").
- A token lifetime no longer than `refresh_margin` refreshed about 50 times a second; an
  `expiresIn` of 2**62 raised `OverflowError` before the new pair was stored (losing the only valid
  pair) and killed the refresher silently; absurd OAuth replies raised `OverflowError` or
  `RecursionError` instead of `OAuthError`.
- Secrets echoed by a server reached exception texts, log lines, events and the CLI's stderr.
- `server_hostname=""` connected to a certificate for another host; verification failures arrived as
  a generic connection failure.
- A trickled partial frame kept a dead link "alive"; maintenance ten years out was waited for; a
  second reader of one stream hung; `close()` left paced requests waiting for their timeouts.
- Unread streams were bounded by count only (16 MiB frames held 1.2 GB); distinct unknown payload
  types grew a set and the log without bound; the simulator's frame log, answer queue and partial
  frames grew without bound.
- The callback server listened on IPv4 only while a squatter held `[::1]`; a pasted redirect without
  `state` was accepted; the token store blocked on a FIFO, recursed on deep JSON, used 0666 files
  silently and never removed a killed writer's temp file.
- The refresh schedule, given lifetimes near 2**62 seconds, could compute an infinite clock and a
  NaN delay that let refreshes come sooner than the 30 s minimum (a Hypothesis property); delays
  are now finite and at most ten years, and a NaN `refresh_margin` is refused.
- A short "secret" (a test authorised with the access token `token`) entered the process-wide
  scrubber and turned "Access token was revoked" into "Access [redacted] was revoked"; nothing
  shorter than 8 characters is treated as a secret."""

BURST = """### Order burst

`tests/reliability/test_order_burst.py` (in CI and `nox -s soak`): with default pacing, 500 market
orders are fired at once, then all 500 positions are closed at once, while a spinning process keeps
each core busy. Checked: every request reaches the server exactly once (a refused one would be
resent, so it would show as an extra arrival), 1,000 orders executed, no position left open, one
connection throughout. The simulator judges every request against a rolling one-second window per
connection (50, and 5 for historical requests, which count against both)."""

SECURITY_INTRO = """### Security

| Requirement | Checked by |
|---|---|"""


def _matrix() -> list[str]:
    lines = ["| Case | Injection | Expected outcome (checked) |", "|---|---|---|"]
    for case in CASES:
        outcome = case.outcome
        if case.known_issue:
            outcome += f" - **known issue, strict xfail:** {case.known_issue}"
        lines.append(f"| {case.case} | {case.injection} | {outcome} |")
    return lines


def _soak(report: dict[str, Any] | None) -> list[str]:
    lines = ["### Soak", ""]
    if report is None:
        return [*lines, "_Run the soak to fill in its figures._"]
    p, requests, spots = report["parameters"], report["requests"], report["spot_events"]
    outcomes = ", ".join(f"{kind}: {n:,}" for kind, n in requests["outcomes"].items() if kind != "answered")
    injected = ", ".join(f"{n} x {kind}" for kind, n in report["injected"].items())
    steady = report["checkpoints"][2:]
    blocks = [c["allocated_blocks"] for c in steady]
    rss = [c["rss_mib"] for c in steady]
    lines += [
        f"`tests/reliability/test_soak.py`: one connection, {p['accounts']} accounts, "
        f"{p['concurrency']} concurrent callers, seed {p['seed']}; a link drop or a payload-type block "
        f"every {p['inject_every_s']} s on average (the schedule is seeded; how many requests a drop "
        f"catches in flight depends on timing, so the failure counts vary a little between runs). "
        f"Last run, on its own ({report['machine']['cpus']} cores, Python {report['machine']['python']}): "
        f"**{report['elapsed_s']} s**.",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| Requests sent | {requests['sent']:,} |",
        f"| answered | {requests['answered']:,} |",
        f"| failed with a typed error | {requests['failed_typed']:,} ({outcomes}) |",
        f"| failed otherwise, or left pending | {requests['failed_untyped']} |",
        f"| Orders placed / reaching the server / executed | {requests['trading_requests_sent']} / "
        f"{requests['trading_requests_reaching_the_server']} / "
        f"{requests.get('orders_executed_by_the_server', '-')} (a refused order is resent; none "
        "executed twice) |",
        f"| Spot events sent by the simulator | {spots['sent_by_the_simulator']:,} |",
        f"| delivered, in order | {spots['delivered']:,} |",
        f"| lost / duplicated (by per-link sequence) | {spots['lost']} / {spots['duplicated']} |",
        f"| cut in flight with a socket dropped by RST (never reached the client) | "
        f"{spots['cut_in_flight_with_a_dropped_socket']} |",
        f"| Links | {spots['links']} ({report['reconnects']} reconnects) |",
        f"| Injected | {injected} |",
        f"| Tasks at each checkpoint (besides the test's own) | {steady[0]['tasks']} throughout |",
        f"| Allocated memory blocks after warm-up | {min(blocks):,} to {max(blocks):,}: growth "
        f"{report['allocated_blocks_growth_after_warmup']:,}, allowed "
        f"{report['allocated_blocks_growth_allowed']:,} (15,000 + 100 per order placed: the simulated "
        f"broker keeps every order, the client its last 1,024 orders' executions) |",
        f"| RSS after warm-up | {min(rss)} to {max(rss)} MiB |",
    ]
    return lines


def render(soak: dict[str, Any] | None, fuzz_examples: int, fuzz_note: str = "") -> str:
    examples = (
        f"The dedicated session (`nox -s fuzz`) runs {fuzz_examples:,} examples per property "
        f"({3 * fuzz_examples:,} in all); the default test run 200 per property and CI 2,000."
    )
    if fuzz_note:
        examples += f" {fuzz_note}"
    parts = [
        HEADER,
        "",
        MATRIX_INTRO,
        "",
        *_matrix(),
        "",
        *_soak(soak),
        "",
        BURST,
        "",
        FUZZ_TEXT.format(examples=examples),
        "",
        FOUND,
        "",
        SECURITY_INTRO,
        *(f"| {requirement} | {', '.join(f'`{t}`' for t in tests)} |" for requirement, tests in SECURITY),
        "",
        "Interop: `nox -s interop` (in CI) has independent clients, Spotware's official OpenApiPy among "
        "them, complete a bot's whole flow against `ctrader-typed sim` (clients and versions: "
        "`docs/interop.md`).",
        "",
        "### Reproduce",
        "",
        "```bash",
        "nox -s reliability          # the matrix, the soak and the security checks, with the default fuzz run",
        "nox -s fuzz                 # 100,000 examples per property",
        "nox -s soak                 # the full-size soak (figures in .cache/reliability/soak.json) and the order burst",
        "CTRADER_SOAK_EVENTS=500000 CTRADER_SOAK_REQUESTS=25000 CTRADER_SOAK_ACCOUNTS=6 CTRADER_SOAK_SEED=1 \\",
        "    python -m pytest tests/reliability/test_soak.py -m soak -s -n 0   # the same, by hand",
        "python -m tests.reliability.report   # this section, from the rows and the last soak",
        "```",
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--soak", type=Path, default=Path(".cache/reliability/soak.json"))
    parser.add_argument("--fuzz-examples", type=int, default=100_000)
    parser.add_argument("--fuzz-note", default="", help="a sentence on the last dedicated run")
    args = parser.parse_args(argv)
    soak = json.loads(args.soak.read_text()) if args.soak.exists() else None
    sys.stdout.write(render(soak, args.fuzz_examples, args.fuzz_note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
