"""Mail over SMTP: the export-ready link and the password-reset link (blocking; run it off
the event loop). Both use the same `ABACUS_SMTP__*` settings."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

from abacus.errors import AbacusError
from abacus.settings import SmtpSettings

__all__ = ["LinkMail", "ResetMail", "send_link_mail", "send_reset_mail"]


@dataclass(frozen=True)
class LinkMail:
    """The "your export is ready" mail to one requester; ``link`` is the portal page."""

    to: str
    district: str
    request_id: str
    link: str
    rows: int
    expires_at: datetime
    product: str = "Student Data"  # e.g. "Grade 3+", for "Download Grade 3+ Export File"


@dataclass(frozen=True)
class ResetMail:
    """The "set your password" mail; ``link`` carries the single-use token."""

    to: str
    district_name: str
    link: str
    minutes: int


def send_link_mail(smtp: SmtpSettings, mail: LinkMail) -> None:
    """Send the mail; raise AbacusError when SMTP is not configured or the server refuses."""
    msg = EmailMessage()
    msg["Subject"] = f"Your Student Data Export is ready ({mail.district})"
    msg.set_content(
        f"Your Student Data Export {mail.request_id} is ready: {mail.rows} student row(s).\n\n"
        f"Download {mail.product} Export File:\n{mail.link}\n\n"
        "The link opens the district portal; sign in with your own account to download.\n"
        f"The file is deleted on {_when(mail.expires_at)}.\n"
    )
    _send(smtp, mail.to, msg, "export")


def send_reset_mail(smtp: SmtpSettings, mail: ResetMail) -> None:
    """Send the reset link; raise AbacusError when SMTP is not configured or refuses."""
    msg = EmailMessage()
    msg["Subject"] = f"Set your password for the {mail.district_name} portal"
    msg.set_content(
        "Someone (hopefully you) asked to set a new password for your account in the "
        f"{mail.district_name} district portal.\n\n"
        f"Set your password here within {mail.minutes} minutes (the link works once):\n"
        f"{mail.link}\n\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n"
    )
    _send(smtp, mail.to, msg, "reset")


def _send(smtp: SmtpSettings, to: str, msg: EmailMessage, what: str) -> None:
    if smtp.host is None:
        raise AbacusError("SMTP is not configured")
    msg["From"] = smtp.sender
    msg["To"] = to
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.username and smtp.password:
                server.login(smtp.username, smtp.password.get_secret_value())
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise AbacusError(f"could not send the {what} mail: {_why(exc)}") from exc


def _why(exc: BaseException) -> str:
    """The failure without the recipient: a refusal's text names the address (and a
    server's reply may echo it), and this message goes to the worker's log."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(c) for c, _ in exc.recipients.values()})
        return f"the server refused the recipient (SMTP {', '.join(codes)})"
    if code is not None:
        return f"{type(exc).__name__} (SMTP {code})"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return type(exc).__name__


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
