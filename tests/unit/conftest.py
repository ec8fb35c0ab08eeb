"""Unit tests never open a network socket: pytest-socket makes any that tries fail loudly.

Unix sockets stay allowed: asyncio's event loop wakes itself through a Unix socket pair.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
