"""Skip conditions in one place: a missing Docker engine may skip a test; a missing
command-line tool (promtool, prometheus, chromium) only outside CI."""

from __future__ import annotations

import functools
import os
import shutil

import pytest

# Debian package that provides each tool `require_tool` knows (`make test` installs them).
TOOL_PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus", "chromium": "chromium"}


@functools.cache
def docker_engine_reason() -> str | None:
    """None when a Docker engine answers, else why not (the docker CLI alone is not enough)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine to use
        return f"no Docker engine reachable ({type(exc).__name__}); testcontainers cannot run"
    return None


requires_docker = pytest.mark.skipif(
    docker_engine_reason() is not None, reason=docker_engine_reason() or ""
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str) -> str:
    """The path of command-line tool ``name``. When it is missing the test FAILS under
    CI=true (CI must run it) and is skipped with the reason elsewhere."""
    path = shutil.which(name)
    if path is not None:
        return path
    package = TOOL_PACKAGES.get(name, name)
    reason = (
        f"{name} is not installed (Debian package `{package}`; "
        f"`make test` installs it with apt-get)"
    )
    if in_ci():
        pytest.fail(f"{reason}; CI=true requires this test to run", pytrace=False)
    pytest.skip(reason)
