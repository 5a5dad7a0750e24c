"""Where the relay hands messages: SMTP when `SAASSY_SMTP_URL` is set, else the console.

`SAASSY_SMTP_URL` forms: `smtp://user:pass@host:587` (STARTTLS when the server offers it),
`smtp://host:25?starttls=true` (STARTTLS required), `?starttls=false` (never), and
`smtps://user:pass@host:465` (TLS from the first byte).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from saassy.config import Settings

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def build_message(settings: Settings, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="saassy")
    message.set_content(body)
    return message


class ConsoleSender:
    """Development: print the whole message so the sign-in link can be copied from the terminal."""

    async def send(self, message: EmailMessage) -> None:
        rule = "-" * 72
        headers = "".join(f"{name}: {message[name]}\n" for name in ("From", "To", "Subject"))
        # The decoded text, not the wire form: a quoted-printable link cannot be clicked.
        print(f"{rule}\n{headers}\n{message.get_content()}{rule}", file=sys.stdout, flush=True)


@dataclass(frozen=True)
class SmtpSender:
    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSender:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SAASSY_SMTP_URL must look like smtp://[user:pass@]host[:port]")
        use_tls = parts.scheme == "smtps"
        starttls = parse_qs(parts.query).get("starttls", [""])[-1].lower()
        start_tls = True if starttls in _TRUE else False if starttls in _FALSE else None
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=None if use_tls else start_tls,
        )

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )


def sender_for(settings: Settings) -> EmailSender:
    if settings.smtp_url is None:
        return ConsoleSender()
    return SmtpSender.from_url(settings.smtp_url.get_secret_value())
