"""A real local SMTP server (aiosmtpd) collecting the messages the worker sends."""

from __future__ import annotations

import email
import email.message
from typing import Any

from abacus.embedded.broker import free_port
from tests.support.stack import wait_until


class Mailbox:
    """Start with ``controller.start()``; ``messages`` fills as mail arrives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.Message] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def env(self) -> dict[str, str]:
        """The worker settings that send its mail here."""
        return {
            "ABACUS_SMTP__HOST": "127.0.0.1",
            "ABACUS_SMTP__PORT": str(self.port),
            "ABACUS_SMTP__SENDER": "portal@abacus.test",
        }

    def wait_for(self, to: str, subject_has: str, timeout: float = 30) -> email.message.Message:
        """The newest message to ``to`` whose subject contains ``subject_has``."""

        def found() -> email.message.Message | None:
            hits = [m for m in self.messages if m["To"] == to and subject_has in m["Subject"]]
            return hits[-1] if hits else None

        return wait_until(found, timeout, f"a mail to {to} about {subject_has!r}")

    def count(self, to: str) -> int:
        return sum(1 for m in self.messages if m["To"] == to)


def body(message: email.message.Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def first_link(message: email.message.Message) -> str:
    return next(line for line in body(message).splitlines() if line.startswith("http"))
