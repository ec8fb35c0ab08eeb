"""Skip conditions in one place: only a missing Docker engine may skip a test."""

from __future__ import annotations

import functools

import pytest


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
