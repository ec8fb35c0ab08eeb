"""Mail the download link over SMTP (blocking; run it off the event loop)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from abacus.errors import AbacusError
from abacus.settings import SmtpSettings

__all__ = ["send_link_mail"]


def send_link_mail(
    smtp: SmtpSettings, to: str, *, district: str, request_id: str, link: str, rows: int
) -> None:
    """Send the "your export is ready" mail; raise AbacusError when the server refuses."""
    if smtp.host is None:
        raise AbacusError("SMTP is not configured")
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Subject"] = f"Your Student Data Export is ready ({district})"
    msg.set_content(
        f"Your Student Data Export {request_id} is ready: {rows} student row(s).\n\n"
        f"Download it here (the link expires):\n{link}\n"
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
