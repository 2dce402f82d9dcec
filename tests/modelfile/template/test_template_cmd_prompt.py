"""`ingot prompt`: the exact prompt bytes, from a template file or a packaged model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingot.cli.main import main
from ingot.modelfile import parse
from ingot.registry.home import HOME_ENV
from ingot.registry.package import build_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

CHATML_GO = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
             "{{ end }}<|im_start|>assistant\n")
CHATML_JINJA = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _ingot(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    if home is not None:
        env[HOME_ENV] = str(home)
    return subprocess.run([sys.executable, "-m", "ingot.cli.main", *args], capture_output=True,
                          env=env, timeout=120, check=False)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    template = tmp_path / "chat.gotmpl"
    template.write_text(CHATML_GO, encoding="utf-8")
    messages = tmp_path / "chat.json"
    messages.write_text(json.dumps([{"role": "user", "content": "Hi"},
                                    {"role": "assistant", "content": "Hello!"},
                                    {"role": "user", "content": "Ça va?"}]), encoding="utf-8")
    return {"template": template, "messages": messages}


def test_prints_exact_bytes_without_a_trailing_newline(files: dict[str, Path]) -> None:
    result = _ingot("prompt", "--template", str(files["template"]), "--messages", str(files["messages"]),
                    "--system", "Be brief.")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nÇa va?<|im_end|>\n"
        "<|im_start|>assistant\n").encode()


def test_template_error_is_one_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gotmpl"
    bad.write_text("ok\n{{ range .Messages }}{{ .Content | shout }}{{ end }}", encoding="utf-8")
    result = _ingot("prompt", "--template", str(bad), "--prompt", "x")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert f"{bad}:2:" in err and 'function "shout" not defined' in err and "^" in err
    assert "Traceback" not in err
    assert result.stdout == b""


def test_a_runaway_template_stops_within_the_configured_budget(tmp_path: Path) -> None:
    runaway = tmp_path / "runaway.gotmpl"
    runaway.write_text("{{ range .Messages }}{{ range 1000 }}.{{ end }}{{ end }}", encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    assert _ingot("prompt", "--template", str(runaway), "--prompt", "x", home=home).stdout == b"." * 1000
    (home / "config.yaml").write_text("templates:\n  max_loop_iterations: 999\n", encoding="utf-8")
    result = _ingot("prompt", "--template", str(runaway), "--prompt", "x", home=home)
    assert result.returncode == 1 and result.stdout == b""
    err = result.stderr.decode()
    assert f"{runaway}:1:22: template render budget exceeded" in err and "max_loop_iterations" in err
    assert "Traceback" not in err


def test_prompt_only_renders_like_generate(files: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["prompt", "--template", str(files["template"]), "--prompt", "Q"]) == 0
    assert capfd.readouterr().out == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


def test_prompt_is_appended_to_messages(files: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["prompt", "--template", str(files["template"]), "--messages", str(files["messages"]),
                 "--prompt", "More?", "--json"]) == 0
    shown = json.loads(capfd.readouterr().out)
    assert shown["dialect"] == "go"
    # Two user turns in a row are merged, as Ollama collates them.
    assert shown["prompt"].endswith("<|im_start|>user\nÇa va?\n\nMore?<|im_end|>\n<|im_start|>assistant\n")


def test_messages_file_with_tools(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "t.gotmpl"
    template.write_text("{{ range .Tools }}{{ .Function.Name }};{{ end }}{{ range .Messages }}{{ .Content }}{{ end }}")
    convo = tmp_path / "c.json"
    convo.write_text(json.dumps({"messages": [{"role": "user", "content": "go"}],
                                 "tools": [{"type": "function", "function": {"name": "f"}}]}))
    assert main(["prompt", "--template", str(template), "--messages", str(convo)]) == 0
    assert capfd.readouterr().out == "f;go"


def test_bad_messages_json_points_at_the_spot(files: dict[str, Path], tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"role": "user", "content": "x"},\n  oops\n]')
    assert main(["prompt", "--template", str(files["template"]), "--messages", str(broken)]) == 1
    assert f"{broken}:3:3: invalid JSON" in capfd.readouterr().err
    missing_role = tmp_path / "norole.json"
    missing_role.write_text('[{"content": "x"}]')
    assert main(["prompt", "--template", str(files["template"]), "--messages", str(missing_role)]) == 1
    assert "message 1" in capfd.readouterr().err


def test_nothing_to_render_is_refused(files: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["prompt", "--template", str(files["template"])]) == 1
    assert "nothing to render" in capfd.readouterr().err
    assert main(["prompt", "--prompt", "x"]) == 1
    assert "NAME or --template" in capfd.readouterr().err


def _package(home: Path, tmp_path: Path, name: str, modelfile: str, spec: SyntheticSpec) -> None:
    folder = tmp_path / name
    folder.mkdir()
    write_synthetic_gguf(folder / "model.gguf", spec)
    store = Store(home / "models")
    build_package(store, parse(modelfile), folder, ref=Reference.parse(name), env={})


def test_named_model_uses_its_template_system_and_messages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(home))
    modelfile = ("FROM ./model.gguf\nTEMPLATE \"\"\"" + CHATML_GO + "\"\"\"\nSYSTEM You are a pirate.\n"
                 "MESSAGE user Ahoy?\nMESSAGE assistant Arr.\n")
    _package(home, tmp_path, "pirate", modelfile, SyntheticSpec())
    assert main(["prompt", "pirate", "--prompt", "Where is the treasure?"]) == 0
    assert capfd.readouterr().out == (
        "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nAhoy?<|im_end|>\n"
        "<|im_start|>assistant\nArr.<|im_end|>\n<|im_start|>user\nWhere is the treasure?<|im_end|>\n"
        "<|im_start|>assistant\n")
    # A request system prompt replaces the model's SYSTEM.
    assert main(["prompt", "pirate", "--prompt", "Hi", "--system", "Be plain."]) == 0
    assert capfd.readouterr().out.startswith("<|im_start|>system\nBe plain.<|im_end|>\n<|im_start|>user\nAhoy?")


def test_named_model_without_template_uses_the_gguf_chat_template(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(home))
    _package(home, tmp_path, "jinja-model", "FROM ./model.gguf\n", SyntheticSpec(chat_template=CHATML_JINJA))
    assert main(["prompt", "jinja-model", "--prompt", "Hi"]) == 0
    # bos_token is the GGUF's own BOS text.
    assert capfd.readouterr().out == "<s><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_unknown_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    assert main(["prompt", "nosuchmodel", "--prompt", "x"]) == 1
    err = capfd.readouterr().err
    assert "nosuchmodel" in err and "Traceback" not in err
