"""The fault matrix's harness must fail a row that leaks: otherwise its post-conditions prove nothing."""

from __future__ import annotations

import asyncio
import socket

import pytest

from .harness import Case, Ctx, run_case

PATIENCE = 0.3
"""Seconds the harness waits for a leak to go away (it will not)."""


def leaky(run: object) -> Case:
    assert callable(run)
    return Case(id="leak", case="-", injection="-", outcome="-", run=run)


async def test_a_leaked_task_fails_the_row(caplog: pytest.LogCaptureFixture) -> None:
    stray: list[asyncio.Task[None]] = []

    async def run(ctx: Ctx) -> None:
        stray.append(asyncio.create_task(asyncio.sleep(3600)))

    try:
        with pytest.raises(AssertionError, match="sleep"):
            await run_case(leaky(run), caplog, patience=PATIENCE)
    finally:
        stray[0].cancel()


async def test_a_leaked_socket_fails_the_row(caplog: pytest.LogCaptureFixture) -> None:
    stray: list[socket.socket] = []

    async def run(ctx: Ctx) -> None:
        stray.append(socket.socket())

    try:
        with pytest.raises(AssertionError, match="socket:"):
            await run_case(leaky(run), caplog, patience=PATIENCE)
    finally:
        stray[0].close()


async def test_a_pending_request_fails_the_row(caplog: pytest.LogCaptureFixture) -> None:
    stray: list[asyncio.Task[object]] = []

    async def run(ctx: Ctx) -> None:
        ctx.sim.delay_answers(0.5)
        stray.append(asyncio.create_task(ctx.client.send_version_req(timeout=30)))
        await ctx.arrived(2104)

    with pytest.raises(AssertionError, match="still pending"):
        await run_case(leaky(run), caplog, patience=PATIENCE)
    assert stray[0].done()  # closing the client failed it


async def test_an_unusable_client_fails_the_row(caplog: pytest.LogCaptureFixture) -> None:
    async def run(ctx: Ctx) -> None:
        await ctx.client.close()  # a row that expects a restored session gets a closed client

    with pytest.raises(AssertionError, match="did not recover"):
        await run_case(leaky(run), caplog, patience=PATIENCE)


async def test_a_row_over_its_budget_fails(caplog: pytest.LogCaptureFixture) -> None:
    async def run(ctx: Ctx) -> None:
        ctx.sim.delay_answers(30.0)
        await ctx.client.send_version_req(timeout=30)

    case = Case(id="slow", case="-", injection="-", outcome="-", run=run, budget=0.3)
    with pytest.raises(TimeoutError):
        await run_case(case, caplog, patience=PATIENCE)
