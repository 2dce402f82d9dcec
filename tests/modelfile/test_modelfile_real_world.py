"""Modelfiles copied verbatim from the ollama/ollama repository (see data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.modelfile import Message, ModelfileError, format_modelfile, parse, parse_file

DATA = Path(__file__).parent / "data"
ACCEPTED = sorted(p.name for p in DATA.glob("*.Modelfile")
                  if p.name not in {"ollama_examples_json_grammar.Modelfile",
                                    "ollama_examples_mario_prompt.Modelfile"})


def test_docs_basic_example() -> None:
    m = parse_file(DATA / "ollama_docs_mario.Modelfile")
    assert m.base == "llama3.2"
    assert m.parameters == {"temperature": 1.0, "num_ctx": 4096}
    assert m.system == "You are Mario from super mario bros, acting as an assistant."
    assert m.warnings == ()


def test_docs_show_modelfile_output() -> None:
    m = parse_file(DATA / "ollama_docs_show_llama3.2.Modelfile")
    assert m.base.startswith("/Users/pdevine/.ollama/models/blobs/sha256-00e1317c")
    assert m.parameters == {"stop": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                                     "<|reserved_special_token")}
    assert m.template is not None
    assert m.template.startswith("{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}")
    assert m.template.endswith("{{ .Response }}<|eot_id|>")


def test_examples_with_triple_quoted_system_prompts() -> None:
    devops = parse_file(DATA / "ollama_examples_devops_engineer.Modelfile")
    assert devops.base == "llama2:13b"
    assert devops.parameters == {"temperature": 1.0}
    assert devops.system is not None and devops.system.startswith("\nYou are a senior devops engineer")
    assert devops.system.endswith("when possible\n")
    tweets = parse_file(DATA / "ollama_examples_10tweets.Modelfile")
    assert tweets.system is not None and tweets.system.endswith("Always include ten. \n")


def test_instruction_lookalikes_inside_a_quoted_value_are_text() -> None:
    m = parse_file(DATA / "ollama_examples_dockerit.Modelfile")
    assert m.base == "llama2"
    assert m.system is not None
    assert "\nFROM nginx:alpine\nCOPY /myweb /usr/share/nginx/html\nEXPOSE 80\n" in m.system
    assert "\nFROM postgres:latest\n" in m.system
    assert m.system.endswith("an nothing else.\n")


def test_unsupported_grammar_parameter_is_refused_at_its_name() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse_file(DATA / "ollama_examples_json_grammar.Modelfile")
    assert (caught.value.line, caught.value.column) == (7, 11)
    assert caught.value.message == "unknown parameter 'grammar'"


def test_old_prompt_instruction_is_refused_with_a_pointer_to_template() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse_file(DATA / "ollama_examples_mario_prompt.Modelfile")
    assert (caught.value.line, caught.value.column) == (3, 1)
    assert caught.value.hint is not None and "TEMPLATE" in caught.value.hint


@pytest.mark.parametrize("name", ACCEPTED)
def test_real_files_round_trip_through_the_canonical_form(name: str) -> None:
    original = parse_file(DATA / name)
    canonical = format_modelfile(original)
    again = parse(canonical)
    assert again == original
    assert format_modelfile(again) == canonical


@pytest.mark.parametrize("name", ACCEPTED)
def test_real_files_read_the_same_as_utf16_with_crlf(name: str) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    utf16 = b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le")
    assert parse(utf16) == parse_file(DATA / name)


def test_docs_message_example_conversation() -> None:
    m = parse(
        "FROM llama3.2\n"
        "MESSAGE user Is Toronto in Canada?\nMESSAGE assistant yes\n"
        "MESSAGE user Is Sacramento in Canada?\nMESSAGE assistant no\n"
        "MESSAGE user Is Ontario in Canada?\nMESSAGE assistant yes\n"
    )
    assert m.messages[1] == Message("assistant", "yes")
    assert [message.role for message in m.messages] == ["user", "assistant"] * 3
