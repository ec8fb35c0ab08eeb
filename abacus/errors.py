"""One error hierarchy for Abacus: what the caller must do decides the class."""

from __future__ import annotations

__all__ = [
    "AbacusError",
    "ExportRequestError",
    "InvalidEventError",
    "PrivacyRequestError",
    "RosterInputError",
    "SettingsError",
    "StackError",
    "StorageError",
]


class AbacusError(Exception):
    """Root of every error Abacus raises on purpose."""


class SettingsError(AbacusError):
    """The settings are invalid, or unsafe to start with (one-line message naming them)."""


class StackError(AbacusError):
    """A part of the running stack (broker, store, worker) cannot be started or reached."""


class RosterInputError(AbacusError):
    """A roster upload refused as a whole, before anything is published (too large, no
    roster file in it); the message is the one line the operator sees."""


class InvalidEventError(AbacusError):
    """A poison record: it goes to the dead-letter topic with this reason; the stream goes on.

    ``label`` is the reason's bounded class (`abacus.events.reasons.REASON_CLASSES`).
    """

    def __init__(
        self,
        reason: str,
        *,
        label: str = "out_of_range",
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.label = label
        self.topic = topic
        self.partition = partition
        self.offset = offset


class StorageError(AbacusError):
    """ClickHouse failed; ``retriable`` says whether trying the same call again may work.

    ``code`` and ``name`` are the server's error code and symbolic name when it gave them
    (e.g. 60, ``UNKNOWN_TABLE``); None for transport errors.
    """

    def __init__(
        self, message: str, *, retriable: bool, code: int | None = None, name: str | None = None
    ) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.code = code
        self.name = name


class ExportRequestError(AbacusError):
    """An export request that is rejected; the reason goes on the export-status topic."""


class PrivacyRequestError(AbacusError):
    """A deletion request that is rejected; the reason goes on the privacy-status topic."""
