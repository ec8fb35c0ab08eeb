"""Driver errors → StorageError, once, at the store's boundary (keeping the server's code)."""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.exceptions import ClickHouseError, Error, OperationalError

from abacus.errors import StorageError

__all__ = ["RETRIABLE_CODES", "RetryPolicy", "storage_error"]

# Server error codes worth trying again: the server is busy, short of a resource for a
# moment, or lost its connection; the same call may well work a second later.
RETRIABLE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (a replica catching up)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        999,  # KEEPER_EXCEPTION
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retriable failure is tried again (backoff doubles)."""

    attempts: int = 4
    first_delay_s: float = 0.2
    max_delay_s: float = 2.0

    def delays(self) -> list[float]:
        """The waits between attempts: 0.2, 0.4, 0.8 s with the defaults."""
        return [min(self.max_delay_s, self.first_delay_s * 2**i) for i in range(self.attempts - 1)]


def storage_error(what: str, exc: ClickHouseError) -> StorageError:
    """Wrap a driver error: transport trouble and the codes above are retriable."""
    code = exc.code if isinstance(exc, Error) else None
    name = exc.name if isinstance(exc, Error) else None
    retriable = isinstance(exc, OperationalError) or code in RETRIABLE_CODES
    return StorageError(f"{what}: {exc}", retriable=retriable, code=code, name=name)
