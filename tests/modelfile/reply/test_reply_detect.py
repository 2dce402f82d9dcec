"""Reading a template: tool support, how its model writes calls, its thinking tags.

The templates here are written for these tests in the style of each family
(Hermes/Qwen, Llama 3.x, Mistral v3 and v11, Command R); each test also
checks the round trip: what the template writes for a call in the history
is what the parser reads back as that call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.modelfile.reply import ReplyParser, ThinkingTags, reply_format
from ingot.modelfile.template import compile_template, render_prompt

# Jinja templates in the style of Qwen 2.5, Llama 3.1 and Mistral v11, shared with the template tests.
JINJA = Path(__file__).parents[1] / "template" / "golden" / "tools" / "jinja"
JINJA_QWEN = (JINJA / "qwen.jinja").read_text(encoding="utf-8")
JINJA_LLAMA = (JINJA / "llama3.jinja").read_text(encoding="utf-8")
JINJA_MISTRAL_ARGS = (JINJA / "mistral-v11.jinja").read_text(encoding="utf-8")

GO_HERMES = """\
{{- if .Tools }}<|im_start|>system
Tools:
{{- range .Tools }}
{{ json . }}
{{- end }}
Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call>.<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .ToolCalls }}
{{- range .ToolCalls }}<tool_call>
{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
</tool_call>
{{ end }}
{{- else }}{{ .Content }}{{ end }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

GO_LLAMA = """\
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}{{ .Content }}{{ end }}<|eot_id|>
{{- end }}{{ if .Tools }}(tools: {{ len .Tools }}){{ end }}<|start_header_id|>assistant<|end_header_id|>

"""

GO_MISTRAL = """\
{{- range $i, $m := .Messages }}
{{- if eq .Role "user" }}[INST] {{ if $.Tools }}[AVAILABLE_TOOLS] {{ json $.Tools }}[/AVAILABLE_TOOLS]{{ end }}{{ .Content }}[/INST]
{{- else if .ToolCalls }}[TOOL_CALLS] [{{ range $j, $c := .ToolCalls }}{{ if $j }}, {{ end }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{ end }}]</s>
{{- else if eq .Role "tool" }}[TOOL_RESULTS] {"content": {{ .Content }}}[/TOOL_RESULTS]
{{- else }} {{ .Content }}</s>
{{- end }}{{ end }}"""

GO_THINKING = """\
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>
{{ .Thinking }}
</think>
{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if and .IsThinkSet (not .Think) }}<think>

</think>
{{ end }}"""




JINJA_NO_TOOLS = """\
{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\
{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""

JINJA_TOOLS_BUT_NO_CALLS = """\
{%- if tools %}Tools: {{ tools | tojson }}. Answer with <tool_call>{"name": ..., "arguments": ...}</tool_call>.
{% endif %}{%- for message in messages %}{{ message.role }}: {{ message.content }}
{% endfor %}assistant:"""

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "required": ["city"], "properties": {
                                               "city": {"type": "string"}, "days": {"type": "integer"}}}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]


@pytest.mark.parametrize(("source", "start", "end", "infix", "marker"), [
    (GO_HERMES, "<tool_call>", "</tool_call>", '", "arguments": ', ""),
    (GO_LLAMA, "", "", '", "parameters": ', ""),
    (GO_MISTRAL, "[TOOL_CALLS]", "", '", "arguments": ', ""),
    (JINJA_QWEN, "<tool_call>", "</tool_call>", '", "arguments": ', ""),
    (JINJA_LLAMA, "", "", '", "parameters": ', ""),
    (JINJA_MISTRAL_ARGS, "[TOOL_CALLS]", "", "[ARGS]", "[ARGS]"),
], ids=["go-hermes", "go-llama", "go-mistral", "jinja-qwen", "jinja-llama", "jinja-mistral-v11"])
def test_call_format_is_read_from_the_template(source: str, start: str, end: str, infix: str, marker: str) -> None:
    fmt = reply_format(compile_template(source))
    assert fmt.tools
    assert (fmt.tool_calls.start, fmt.tool_calls.end, fmt.tool_calls.call_infix, fmt.tool_calls.name_marker) == (
        start, end, infix, marker)


def test_llama_accepts_the_python_tag_when_its_template_knows_it() -> None:
    assert reply_format(compile_template(JINJA_LLAMA)).tool_calls.alt_starts == ("<|python_tag|>",)
    assert reply_format(compile_template(GO_LLAMA)).tool_calls.alt_starts == ()


@pytest.mark.parametrize("source", [GO_HERMES, GO_LLAMA, GO_MISTRAL, JINJA_QWEN, JINJA_LLAMA, JINJA_MISTRAL_ARGS],
                         ids=["go-hermes", "go-llama", "go-mistral", "jinja-qwen", "jinja-llama", "jinja-mistral-v11"])
def test_the_parser_reads_back_what_the_template_writes(source: str) -> None:
    template = compile_template(source)
    fmt = reply_format(template)
    before = [{"role": "user", "content": "Weather in Oslo?"}]
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}}]}
    with_call = render_prompt(template, messages=[*before, call], tools=TOOLS)
    with_text = render_prompt(template, messages=[*before, {"role": "assistant", "content": "X"}], tools=TOOLS)
    start = next(i for i, (a, b) in enumerate(zip(with_call, with_text)) if a != b)
    written = with_call[start:]
    parser = ReplyParser(tool_calls=fmt.tool_calls, tool_names={"get_weather", "get_time"})
    calls = [*parser.feed(written).calls, *parser.finish().calls]
    assert [(c.name, dict(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo", "days": 2})]


def test_a_grammar_shape_rebuilds_the_templates_own_text() -> None:
    fmt = reply_format(compile_template(GO_HERMES)).tool_calls
    call = fmt.call_prefix + "get_time" + fmt.call_infix + "{}" + fmt.call_suffix
    assert fmt.lead + call + fmt.trail == '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    assert fmt.between == "\n</tool_call>\n<tool_call>\n"


def test_mistral_lists_always_get_a_comma_between_calls() -> None:
    no_commas = GO_MISTRAL.replace("{{ if $j }}, {{ end }}", "")
    assert reply_format(compile_template(no_commas)).tool_calls.between == ", "


def test_without_tools_in_the_template_there_is_no_tool_support() -> None:
    assert not reply_format(compile_template(JINJA_NO_TOOLS)).tools
    assert not reply_format(compile_template("{{ .System }} {{ .Prompt }}")).tools


def test_tools_shown_but_calls_never_rendered_fall_back_on_what_the_text_names() -> None:
    fmt = reply_format(compile_template(JINJA_TOOLS_BUT_NO_CALLS))
    assert fmt.tools
    assert (fmt.tool_calls.start, fmt.tool_calls.end) == ("<tool_call>", "</tool_call>")


def test_go_thinking_tags_are_inferred_like_ollama() -> None:
    assert reply_format(compile_template(GO_THINKING)).thinking == ThinkingTags("<think>", "</think>")
    # Outside a range over .Messages, .Thinking says nothing about tags.
    assert reply_format(compile_template("{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}")).thinking is None
    assert reply_format(compile_template(GO_HERMES)).thinking is None


def test_jinja_thinking_tags_are_the_known_pair_it_names() -> None:
    assert reply_format(compile_template(JINJA_QWEN)).thinking == ThinkingTags("<think>", "</think>")
    assert reply_format(compile_template(JINJA_NO_TOOLS)).thinking is None
    magistral = "{% for m in messages %}[THINK]{{ m.content }}[/THINK]{% endfor %}"
    assert reply_format(compile_template(magistral)).thinking == ThinkingTags("[THINK]", "[/THINK]")
