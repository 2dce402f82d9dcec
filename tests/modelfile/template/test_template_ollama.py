"""Ollama's rules around a template: collation, legacy per-turn rendering, SYSTEM and MESSAGE."""

from __future__ import annotations

import pytest

from ingot.modelfile import Message
from ingot.modelfile.template import (
    ChatMessage,
    InputError,
    PromptInputs,
    TemplateError,
    compile_template,
    conversation,
    render_generate,
    render_prompt,
)
from ingot.modelfile.template.ollama import collate

HELLO = [{"role": "user", "content": "Hello friend!"},
         {"role": "assistant", "content": "Hello human!"},
         {"role": "user", "content": "What is your name?"}]
WITH_SYSTEM = [{"role": "system", "content": "You are a helpful assistant!"}, *HELLO]

MISTRAL_LEGACY_NO_RESPONSE = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] "
MISTRAL_LEGACY = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}"
MISTRAL_MESSAGES = ("[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n"
                    "{{- if eq .Role \"user\" }}{{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}"
                    "{{ .Content }}[INST] {{ end }}\n{{- end }}")


# Expected strings below are Ollama's own (template/template_test.go, TestExecuteWithMessages).

@pytest.mark.parametrize("source", [MISTRAL_LEGACY_NO_RESPONSE, MISTRAL_LEGACY, MISTRAL_MESSAGES])
def test_legacy_and_messages_templates_agree(source: str) -> None:
    template = compile_template(source)
    assert render_prompt(template, messages=HELLO) == \
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "
    assert render_prompt(template, messages=WITH_SYSTEM) == \
        "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] "


def test_last_assistant_message_is_continued_not_closed() -> None:
    messages = [*HELLO, {"role": "assistant", "content": "My name is Ollama and I"}]
    expected = "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"
    legacy = compile_template("[INST] {{ .Prompt }}[/INST] {{ .Response }}")
    modern = compile_template("\n{{- range $i, $m := .Messages }}\n{{- if eq .Role \"user\" }}[INST] "
                              "{{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}"
                              "{{ end }}\n{{- end }}")
    assert render_prompt(legacy, messages=messages) == expected
    assert render_prompt(modern, messages=messages) == expected


def test_chatml_legacy_cuts_after_the_response() -> None:
    legacy = compile_template("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                              "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
                              "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n")
    assert render_prompt(legacy, messages=WITH_SYSTEM) == (
        "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!"
        "<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?"
        "<|im_end|>\n<|im_start|>assistant\n")


def test_system_goes_to_the_first_turn_only_in_legacy_templates() -> None:
    template = compile_template("{{ if .System }}S={{ .System }};{{ end }}U={{ .Prompt }};A={{ .Response }}|")
    assert render_prompt(template, messages=WITH_SYSTEM) == \
        "S=You are a helpful assistant!;U=Hello friend!;A=Hello human!|U=What is your name?;A="


def test_template_without_response_gets_it_appended() -> None:
    template = compile_template("Q: {{ .Prompt }} A: ")
    messages = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"},
                {"role": "user", "content": "2+2?"}]
    assert render_prompt(template, messages=messages) == "Q: 1+1? A: 2Q: 2+2? A: "


def test_fill_in_the_middle_uses_prompt_and_suffix() -> None:
    # Ollama's TestExecuteWithSuffix.
    template = compile_template("{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n"
                                "{{- else }}{{ .Prompt }}\n{{- end }}")
    assert template.supports_suffix
    assert render_generate(template, "def add(", suffix="return x") == "<PRE> def add( <SUF>return x <MID>"
    assert render_prompt(template, messages=[{"role": "user", "content": "hello"}]) == "hello"


def test_suffix_needs_a_template_that_uses_it() -> None:
    with pytest.raises(InputError, match="does not support a suffix"):
        render_generate(compile_template("{{ .Prompt }}"), "a", suffix="b")


def test_collate_merges_runs_but_not_tool_results() -> None:
    system, merged = collate([
        ChatMessage("system", "A"), ChatMessage("user", "Hello"), ChatMessage("user", "How are you?"),
        ChatMessage("tool", "sunny", tool_name="get_weather"), ChatMessage("tool", "72F"),
        ChatMessage("system", "B"),
    ])
    assert system == "A\n\nB"
    assert [(m.role, m.content) for m in merged] == [
        ("system", "A"), ("user", "Hello\n\nHow are you?"), ("tool", "sunny"), ("tool", "72F"),
        ("system", "B")]
    assert merged[2].tool_name == "get_weather"


def test_messages_template_sees_joined_system_and_merged_messages() -> None:
    template = compile_template("[{{ .System }}]{{ range .Messages }}<{{ .Role }}:{{ .Content }}>{{ end }}")
    messages = [{"role": "system", "content": "A"}, {"role": "system", "content": "B"},
                {"role": "user", "content": "x"}, {"role": "user", "content": "y"}]
    assert render_prompt(template, messages=messages) == "[A\n\nB]<system:A\n\nB><user:x\n\ny>"


# --- SYSTEM and MESSAGE from the Modelfile ---------------------------------

ECHO = compile_template("{{ range .Messages }}<{{ .Role }}:{{ .Content }}>{{ end }}")
MODELFILE_MESSAGES = (Message("user", "example question"), Message("assistant", "example answer"))


def test_default_system_and_modelfile_messages_come_first() -> None:
    text = render_prompt(ECHO, messages=[{"role": "user", "content": "hi"}],
                         default_system="Be terse.", modelfile_messages=MODELFILE_MESSAGES)
    assert text == "<system:Be terse.><user:example question><assistant:example answer><user:hi>"


def test_a_request_system_message_replaces_the_default_system() -> None:
    text = render_prompt(ECHO, messages=[{"role": "system", "content": "Mine."},
                                         {"role": "user", "content": "hi"}],
                         default_system="Be terse.", modelfile_messages=MODELFILE_MESSAGES)
    assert text == "<user:example question><assistant:example answer><system:Mine.><user:hi>"


def test_system_argument_acts_as_a_leading_system_message() -> None:
    text = render_prompt(ECHO, messages=[{"role": "user", "content": "hi"}], system="Mine.",
                         default_system="Be terse.")
    assert text == "<system:Mine.><user:hi>"


def test_conversation_keeps_defaults_when_request_starts_elsewhere() -> None:
    inputs = PromptInputs(messages=(ChatMessage("user", "q"), ChatMessage("system", "late")))
    roles = [m.role for m in conversation(inputs, default_system="S")]
    assert roles == ["system", "user", "system"]


def test_generate_puts_system_then_messages_then_prompt() -> None:
    text = render_generate(ECHO, "hi", default_system="Be terse.", modelfile_messages=MODELFILE_MESSAGES)
    assert text == "<system:Be terse.><user:example question><assistant:example answer><user:hi>"
    assert render_generate(ECHO, "hi", "Mine.", default_system="Be terse.") == "<system:Mine.><user:hi>"


def test_no_template_at_all_uses_ollamas_default() -> None:
    assert render_generate(None, "just this") == "just this"
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}]
    assert render_prompt(None, messages=messages) == "abc"


# --- tools, thinking and message fields -------------------------------------

TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "Now & here",
                                           "parameters": {"type": "object", "properties": {
                                               "tz": {"type": "string", "description": "zone"}}}}}]


def test_tools_and_tool_calls_render_like_ollama() -> None:
    template = compile_template(
        "{{ range .Tools }}{{ .Function.Name }}:{{ json .Function }}{{ end }}\n"
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }}{{ .Function.Arguments }}{{ end }}"
        "{{ if .ToolName }}[{{ .ToolName }}]{{ .Content }}{{ end }}{{ end }}")
    messages = [{"role": "user", "content": "time?"},
                {"role": "assistant", "tool_calls": [
                    {"function": {"name": "get_time", "arguments": '{"tz": "UTC", "n": 2}'}}]},
                {"role": "tool", "content": "12:00", "tool_name": "get_time"}]
    assert render_prompt(template, messages=messages, tools=TOOLS) == (
        'get_time:{"name":"get_time","description":"Now \\u0026 here","parameters":{"type":"object",'
        '"properties":{"tz":{"type":"string","description":"zone"}}}}\n'
        'get_time{"n":2,"tz":"UTC"}[get_time]12:00')  # keys sorted, as Ollama's templates see them


def test_no_tools_is_falsy_and_prints_null_json() -> None:
    template = compile_template("{{ if .Tools }}T{{ else }}none{{ end }} {{ json .Tools }} {{ .Messages | len }}")
    assert render_prompt(template, messages=[{"role": "user", "content": "x"}]) == "none null 1"


def test_think_values() -> None:
    template = compile_template("{{ .Think }}/{{ .IsThinkSet }}{{ range .Messages }}{{ end }}")
    one = [{"role": "user", "content": "x"}]
    assert render_prompt(template, messages=one) == "false/false"
    assert render_prompt(template, messages=one, think=True) == "true/true"
    assert render_prompt(template, messages=one, think=False) == "false/true"


def test_unknown_message_field_is_an_error_like_go() -> None:
    template = compile_template("{{ range .Messages }}{{ .Nope }}{{ end }}")
    with pytest.raises(TemplateError) as caught:
        render_prompt(template, messages=[{"role": "user", "content": "x"}])
    assert "can't evaluate field Nope in type *api.Message" in str(caught.value)


def test_malformed_messages_and_tools_are_input_errors() -> None:
    with pytest.raises(InputError, match="role"):
        render_prompt(ECHO, messages=[{"content": "x"}])
    with pytest.raises(InputError, match=r"tools\[0\]\.function\.name must be a string"):
        render_prompt(ECHO, messages=[{"role": "user", "content": "x"}],
                      tools=[{"type": "function", "function": {"name": 3}}])
