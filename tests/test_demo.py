"""The README's main-job command works offline: it builds the real demo model, serves it and gets an answer."""

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
    # The real model answers in English (the Modelfile's low temperature keeps it on the fact).
    assert "Paris" in result.stdout, result.stdout[-3000:]
    assert "\ufffd" not in result.stdout
    # --verbose prints its timings on stderr, after the streamed reply.
    assert "eval count:" in result.stderr
    # The daemon was shut down and took its socket with it.
    assert not (home / "ingot.sock").exists()
