"""Mail the download link over SMTP (blocking; run it off the event loop)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

from abacus.errors import AbacusError
from abacus.settings import SmtpSettings

__all__ = ["LinkMail", "send_link_mail"]


@dataclass(frozen=True)
class LinkMail:
    """The "your export is ready" mail to one requester."""

    to: str
    district: str
    request_id: str
    link: str
    rows: int
    expires_at: datetime


def send_link_mail(smtp: SmtpSettings, mail: LinkMail) -> None:
    """Send the mail; raise AbacusError when SMTP is not configured or the server refuses."""
    if smtp.host is None:
        raise AbacusError("SMTP is not configured")
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = mail.to
    msg["Subject"] = f"Your Student Data Export is ready ({mail.district})"
    msg.set_content(
        f"Your Student Data Export {mail.request_id} is ready: {mail.rows} student row(s).\n\n"
        f"Download it here:\n{mail.link}\n\n"
        f"The link expires, and the file is deleted, on {_when(mail.expires_at)}.\n"
    )
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.username and smtp.password:
                server.login(smtp.username, smtp.password.get_secret_value())
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise AbacusError(f"could not send the export mail: {exc}") from exc


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
