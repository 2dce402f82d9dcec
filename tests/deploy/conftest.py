"""Fixtures for the deploy/ tests: a private environment (no developer settings leak into the pods)."""

from __future__ import annotations

from shared_fixtures import docker_config, private_environment, registry  # noqa: F401 - fixtures, registered by import
