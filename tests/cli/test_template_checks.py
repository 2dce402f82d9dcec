"""`ingot create` checks the template: one that does not compile is refused at its Modelfile line and column,
one that fails a trial render (a runaway, or one over the configured budget) is built with a warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

INGOT = str(Path(sys.executable).parent / "ingot")


def ingot(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "INGOT_HOME"}, "INGOT_HOME": str(home)}
    return subprocess.run([INGOT, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("w") / "m.gguf", SyntheticSpec())


def modelfile(folder: Path, gguf: Path, body: str) -> Path:
    path = folder / "Modelfile"
    path.write_text(f"FROM {gguf}\n{body}")
    return path


def listed(home: Path) -> list[str]:
    result = ingot(home, "list", "--json")
    assert result.returncode == 0, result.stderr
    return [m["name"] for m in json.loads(result.stdout)]


def test_a_template_that_does_not_compile_fails_create_at_its_line_and_column(tmp_path: Path, gguf: Path) -> None:
    path = modelfile(tmp_path, gguf, 'SYSTEM hi\nTEMPLATE """{{ range .Messages }}\n  {{ .Content | shout }}\n{{ end }}"""\n')
    result = ingot(tmp_path / "home", "create", "bad", "-f", str(path))
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert f"{path}:4:17: TEMPLATE: function \"shout\" not defined" in result.stderr
    assert listed(tmp_path / "home") == []

    first_line = modelfile(tmp_path, gguf, "TEMPLATE {{ if .System }}x\n")
    result = ingot(tmp_path / "home", "create", "bad", "-f", str(first_line))
    assert result.returncode == 1 and f"{first_line}:2:" in result.stderr and "has no {{end}}" in result.stderr


def test_a_runaway_template_is_built_with_a_warning(tmp_path: Path, gguf: Path) -> None:
    path = modelfile(tmp_path, gguf, "TEMPLATE {{ range .Messages }}{{ range 1000000000 }}x{{ end }}{{ end }}\n")
    result = ingot(tmp_path / "home", "create", "runaway", "-f", str(path), "--json")
    assert result.returncode == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    assert len(warnings) == 1 and "trial render" in warnings[0] and "max_loop_iterations" in warnings[0]
    assert "warning: runaway" in result.stderr
    assert listed(tmp_path / "home") == ["runaway"]


def test_the_trial_render_uses_the_budget_in_config_yaml(tmp_path: Path, gguf: Path) -> None:
    home = tmp_path / "home"
    path = modelfile(tmp_path, gguf, "TEMPLATE {{ range .Messages }}{{ .Content }}{{ end }}\n")
    result = ingot(home, "create", "fine", "-f", str(path), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["warnings"] == []
    (home / "config.yaml").write_text("templates:\n  max_output_bytes: 10\n")
    result = ingot(home, "create", "fine", "-f", str(path), "--json")
    assert result.returncode == 0, result.stderr
    [warning] = json.loads(result.stdout)["warnings"]
    assert "max_output_bytes" in warning


def test_a_gguf_chat_template_that_refuses_the_standard_conversation_warns(tmp_path: Path) -> None:
    refusing = "{% for m in messages %}{% if m.role == 'assistant' %}{{ raise_exception('no answers') }}" \
               "{% endif %}{% endfor %}"
    weights = write_synthetic_gguf(tmp_path / "r.gguf", SyntheticSpec(chat_template=refusing))
    result = ingot(tmp_path / "home", "create", "picky", "-f", str(modelfile(tmp_path, weights, "")), "--json")
    assert result.returncode == 0, result.stderr
    [warning] = json.loads(result.stdout)["warnings"]
    assert "GGUF chat template" in warning and "no answers" in warning
