"""Delivery through a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from saassy.config import Settings
from saassy.context import AppContext
from saassy.email.relay import deliver_pending_emails
from saassy.email.senders import SmtpSender
from tests.email.mail import magic_token, make_due
from tests.email.mail import rows as outbox_rows

pytestmark = pytest.mark.smtp

USER, PASSWORD = "relay", "s3cret p@ss"


class Inbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 OK"


def authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd answers the refusal (535) itself.
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def smtp_url(port: int, user: str = USER, password: str = PASSWORD) -> str:
    return f"smtp://{user}:{password.replace(' ', '%20').replace('@', '%40')}@127.0.0.1:{port}"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], smtp_server: tuple[Inbox, int]) -> Settings:
    return settings_factory(smtp_url=smtp_url(smtp_server[1]), email_from="Saassy <hi@saassy.test>")


async def test_a_magic_link_arrives_by_smtp_and_signs_in(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp_server
    response = await client.post("/api/v1/auth/magic-link", json={"email": "ada@example.com"})
    assert response.status_code == 202

    assert await deliver_pending_emails(ctx) == 1

    ((envelope, message),) = inbox.messages
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert envelope.mail_from == "hi@saassy.test"
    assert message["Subject"] == "Your sign-in link for Saassy"
    assert message["Message-ID"]
    body = message.get_content()
    token = magic_token(body)
    verify = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert verify.status_code == 200, verify.text
    assert verify.json()["user"]["email"] == "ada@example.com"


async def test_refused_credentials_are_retried_later(
    client: httpx.AsyncClient,
    ctx: AppContext,
    smtp_server: tuple[Inbox, int],
    settings_factory: Callable[..., Settings],
) -> None:
    inbox, port = smtp_server
    await client.post("/api/v1/auth/magic-link", json={"email": "ada@example.com"})
    wrong = dataclasses.replace(
        ctx, settings=settings_factory(smtp_url=smtp_url(port, password="wrong"))
    )

    assert await deliver_pending_emails(wrong) == 0
    assert inbox.messages == []
    (row,) = await outbox_rows(ctx)
    assert row.attempts == 1
    assert row.sent_at is None
    assert row.last_error is not None
    assert "535" in row.last_error
    assert "wrong" not in row.last_error

    # Not due yet; once it is, the right credentials deliver it.
    assert await deliver_pending_emails(ctx) == 0
    await make_due(ctx)
    assert await deliver_pending_emails(ctx) == 1
    assert len(inbox.messages) == 1


async def test_an_unreachable_server_is_a_retry_not_a_crash(
    client: httpx.AsyncClient, ctx: AppContext, settings_factory: Callable[..., Settings]
) -> None:
    await client.post("/api/v1/auth/magic-link", json={"email": "ada@example.com"})
    down = dataclasses.replace(ctx, settings=settings_factory(smtp_url=smtp_url(free_port())))
    assert await deliver_pending_emails(down) == 0
    (row,) = await outbox_rows(ctx)
    assert row.next_attempt_at is not None
    assert row.last_error is not None
    assert "SMTPConnect" in row.last_error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://u%40x:p%3Aw@mail.example.com:587",
            SmtpSender("mail.example.com", 587, "u@x", "p:w", use_tls=False, start_tls=None),
        ),
        (
            "smtp://mail.example.com?starttls=true",
            SmtpSender("mail.example.com", 25, start_tls=True),
        ),
        (
            "smtp://mail.example.com:2525?starttls=false",
            SmtpSender("mail.example.com", 2525, start_tls=False),
        ),
        ("smtps://u:p@mail.example.com", SmtpSender("mail.example.com", 465, "u", "p", True)),
    ],
)
def test_smtp_urls(url: str, expected: SmtpSender) -> None:
    assert SmtpSender.from_url(url) == expected


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "mail.example.com:25"])
def test_bad_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="SAASSY_SMTP_URL"):
        SmtpSender.from_url(url)
