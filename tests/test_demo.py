"""The README's main-job command works offline: it builds a model, serves it and gets an answer."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scripts_demo_serves_a_model_and_answers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--once"],
        env={**os.environ, "INGOT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # --verbose prints its timings on stderr, after the streamed reply.
    assert "eval count:           48 token(s)" in result.stderr
    # The daemon was shut down and took its socket with it.
    assert not (home / "ingot.sock").exists()
