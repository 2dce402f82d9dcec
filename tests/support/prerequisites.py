"""What a test does when something it needs is not installed: skip here, fail under CI (which installs it all)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    """Skip the test with `message`; under CI (``$CI`` set) fail it, so a missing install step cannot hide."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
