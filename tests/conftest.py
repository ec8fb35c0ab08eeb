"""Shared fixtures: the real embedded broker, started once per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from abacus.embedded.broker import EmbeddedBroker, free_port
from tests.support.mail import Mailbox
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(port=free_port(), log_path=log) as running:
        yield running


@pytest.fixture
def stack_factory(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Make isolated stacks on the session broker; every one is closed at teardown."""
    made: list[Stack] = []

    def make(**extra_env: str) -> Stack:
        stack = Stack(broker.bootstrap, tmp_path / f"home{len(made)}", extra_env=extra_env)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.close()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    """A local SMTP server (aiosmtpd) for a module's export and portal mails."""
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()
