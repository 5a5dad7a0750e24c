"""A task page's live feed ends when its viewer's access does (a task may run for a day), and a
resume id no column can hold starts the feed over instead of failing it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine, build_task_engine
from saassy.kit.time import utcnow
from saassy.models import BrowserSession, Membership, TaskStatus, User
from saassy.runtime.fake import FakeRuntime, FakeScript
from saassy.task_output import streams
from saassy.web.cookies import SESSION_COOKIE
from tests.processes import serving
from tests.web.support import browser_for, sign_up, submit
from tests.web.test_tasks_pages import submit_task, task_id_of, task_row


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keepalives and access checks every fraction of a second instead of every few seconds."""
    monkeypatch.setattr(streams, "KEEPALIVE_S", 0.1)
    monkeypatch.setattr(streams, "RECHECK_S", 0.05)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        await sign_up(client)
        yield client


@pytest.fixture
async def engine(app: FastAPI, ctx: AppContext) -> AsyncIterator[tuple[TaskEngine, FakeRuntime]]:
    runtime = FakeRuntime()
    built = build_task_engine(
        ctx.settings, ctx.sessionmaker, runtime, lease=timedelta(seconds=3), poll_s=0.05
    )
    ctx.task_engine = built
    await built.start()
    yield built, runtime
    ctx.task_engine = None
    await built.stop(grace_s=0.1)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a real socket: the in-process transport hands back a stream only once it has
    ended, and these feeds must be read while they run."""
    async with serving(app) as url:
        yield url


async def running_task(
    browser: httpx.AsyncClient, ctx: AppContext, engine: tuple[TaskEngine, FakeRuntime]
) -> uuid.UUID:
    """A task whose sandbox runs until the test ends."""
    built, runtime = engine
    runtime.default = FakeScript(hang=True)  # its id is unknown before the engine may claim it
    task_id = task_id_of(await submit_task(browser, {"type": "echo", "input": "{}"}))
    built.notify_submitted()
    for _ in range(200):
        if (await task_row(ctx, task_id)).status == TaskStatus.running:
            return task_id
        await asyncio.sleep(0.05)
    raise AssertionError("the task did not start")


async def follow_until_cut(
    served: str, browser: httpx.AsyncClient, path: str, cut: Callable[[], Awaitable[None]]
) -> str:
    """Open the feed as `browser` (its session cookie, over a real socket), see it live (two
    keepalives), `cut` access, and read until the server ends the feed; fails if it is still
    open a few seconds later."""
    cookie = {"Cookie": f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}"}
    received: list[str] = []
    async with (
        httpx.AsyncClient(base_url=served, timeout=10) as client,
        client.stream("GET", path, headers=cookie) as response,
    ):
        assert response.status_code == 200
        chunks = response.aiter_text()

        async def until(count: int) -> None:
            while "".join(received).count(": keepalive") < count:
                received.append(await anext(chunks))

        await asyncio.wait_for(until(2), 5)
        await cut()

        async def to_the_end() -> None:
            async for chunk in chunks:
                received.append(chunk)

        await asyncio.wait_for(to_the_end(), 5)
    return "".join(received)


async def test_the_feed_ends_when_the_browser_signs_out(
    browser: httpx.AsyncClient,
    ctx: AppContext,
    engine: tuple[TaskEngine, FakeRuntime],
    served: str,
) -> None:
    task_id = await running_task(browser, ctx, engine)

    async def log_out() -> None:
        response = await submit(browser, "/logout", page="/app")
        assert response.status_code == 303

    body = await follow_until_cut(served, browser, f"/app/tasks/{task_id}/events", log_out)
    assert "event: end" not in body  # the task still runs: the feed was cut, not finished


async def test_the_feed_ends_when_every_session_is_signed_out(
    browser: httpx.AsyncClient,
    ctx: AppContext,
    engine: tuple[TaskEngine, FakeRuntime],
    served: str,
) -> None:
    """As "sign out everywhere" and a password change do: the user's sessions revoked."""
    task_id = await running_task(browser, ctx, engine)

    async def revoke_all() -> None:
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(update(BrowserSession).values(revoked_at=utcnow()))

    body = await follow_until_cut(served, browser, f"/app/tasks/{task_id}/events", revoke_all)
    assert "event: end" not in body


async def test_the_feed_ends_when_the_member_leaves_the_organization(
    app: FastAPI, ctx: AppContext, engine: tuple[TaskEngine, FakeRuntime], served: str
) -> None:
    async with browser_for(app) as owner, browser_for(app) as member:
        await sign_up(owner)
        email = await sign_up(member)
        task_id = await running_task(owner, ctx, engine)
        organization_id = (await task_row(ctx, task_id)).organization_id
        async with ctx.sessionmaker() as session, session.begin():
            user = (await session.execute(User.__table__.select().where(User.email == email))).one()
            session.add(Membership(organization_id=organization_id, user_id=user.id, role="member"))
        # The member switches to the owner's organization and watches the task there.
        response = await submit(
            member,
            "/app/organization/switch",
            {"organization_id": str(organization_id)},
            page="/app",
        )
        assert response.status_code == 303, response.text
        assert (await member.get(f"/app/tasks/{task_id}")).status_code == 200

        async def remove() -> None:
            async with ctx.sessionmaker() as session, session.begin():
                await session.execute(
                    delete(Membership).where(
                        Membership.organization_id == organization_id,
                        Membership.user_id == user.id,
                    )
                )

        body = await follow_until_cut(served, member, f"/app/tasks/{task_id}/events", remove)
        assert "event: end" not in body
        # The owner, still a member, keeps watching.
        async with (
            httpx.AsyncClient(base_url=served, timeout=10) as client,
            client.stream(
                "GET",
                f"/app/tasks/{task_id}/events",
                headers={"Cookie": f"{SESSION_COOKIE}={owner.cookies[SESSION_COOKIE]}"},
            ) as response,
        ):
            seen = ""
            async for chunk in response.aiter_text():
                seen += chunk
                if seen.count(": keepalive") >= 3:
                    break


@pytest.mark.parametrize(
    "resume",
    [
        {"params": {"after": "1-99999999999999999999999"}},
        {"headers": {"Last-Event-ID": "1-99999999999999999999"}},
        {"headers": {"Last-Event-ID": "99999999999999999999-1"}},
        {"headers": {"Last-Event-ID": "2147483648-0"}},
    ],
)
async def test_a_resume_id_too_large_for_the_columns_starts_over(
    browser: httpx.AsyncClient,
    ctx: AppContext,
    engine: tuple[TaskEngine, FakeRuntime],
    resume: dict[str, dict[str, str]],
) -> None:
    built, _ = engine
    task_id = task_id_of(await submit_task(browser, {"type": "echo", "input": "{}"}))
    built.notify_submitted()
    for _ in range(200):
        if TaskStatus((await task_row(ctx, task_id)).status).terminal:
            break
        await asyncio.sleep(0.05)
    response = await browser.get(f"/app/tasks/{task_id}/events", **resume)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.text.rstrip().endswith('event: end\ndata: {"status":"succeeded"}')


def test_resume_ids_are_bounded() -> None:
    assert streams.parse_log_event_id("3-7") == (3, 7)
    assert streams.parse_log_event_id(f"1-{2**31 - 1}") == (1, 2**31 - 1)
    assert streams.parse_log_event_id(f"1-{2**31}") == (0, 0)
    assert streams.parse_log_event_id("1-" + "9" * 5000) == (0, 0)
    assert streams.parse_log_event_id("-1-2") == (0, 0)
