"""Tools, tool calls, tool results and thinking in prompt templates, byte for byte.

Go: ``golden/tools/templates/*.gotmpl`` (written for ingot in the style of
each family: Hermes/Qwen, Llama 3.x JSON, Mistral, a Qwen 3 style thinking
template, and one printing every field) with ``golden/tools/cases.json``;
``golden/tools/expected/<template>/<case>`` is what Go 1.19's text/template
wrote for each pair, given the values Ollama's ``template.Execute`` passes a
template that uses ``.Messages`` (tool-call arguments and top-level tool
properties as sorted Go maps, ``.Think``/``.ThinkLevel``/``.IsThinkSet``).

Jinja: ``golden/tools/jinja/*.jinja`` rendered by ingot from the request's
messages, against jinja2 itself rendering the same messages untouched, in
an environment set up as Hugging Face's ``apply_chat_template`` sets it up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ingot.modelfile.template import compile_template, render_prompt

TOOLS_GOLDEN = Path(__file__).parent / "golden" / "tools"
CASES: dict[str, dict] = json.loads((TOOLS_GOLDEN / "cases.json").read_text(encoding="utf-8"))
GO_TEMPLATES = sorted(p.stem for p in (TOOLS_GOLDEN / "templates").glob("*.gotmpl"))
JINJA_TEMPLATES = sorted(p.name for p in (TOOLS_GOLDEN / "jinja").glob("*.jinja"))


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def test_every_pair_has_an_expected_output() -> None:
    assert len(GO_TEMPLATES) >= 5 and len(CASES) >= 6
    for name in GO_TEMPLATES:
        for case in CASES:
            assert (TOOLS_GOLDEN / "expected" / name / case).is_file(), (name, case)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", GO_TEMPLATES)
def test_go_template_renders_tools_like_go(name: str, case: str) -> None:
    template = compile_template(_read(TOOLS_GOLDEN / "templates" / f"{name}.gotmpl"))
    spec = CASES[case]
    got = render_prompt(template, messages=spec["messages"], tools=spec.get("tools"), think=spec.get("think"))
    assert got == _read(TOOLS_GOLDEN / "expected" / name / case)


# ---- Jinja, against jinja2 with Hugging Face's settings ------------------------------------------

def _hf_environment() -> ImmutableSandboxedEnvironment:
    """What transformers' apply_chat_template compiles chat templates with."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather & forecast",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "city": {"type": "string"}}}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}

# Conversations in the shape OpenAI clients send them (and Hugging Face templates expect), each
# message's keys in the order of OpenAI's reference, which is the order ingot passes them in.
JINJA_CASES: dict[str, dict[str, Any]] = {
    "call-and-result": {"tools": [WEATHER, TIME], "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in São Paulo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"unit": "celsius", "city": "São Paulo"}}}]},
        {"role": "tool", "content": "24 °C <sunny>", "tool_call_id": "call_1", "name": "get_weather"},
    ]},
    "parallel-then-answer": {"tools": [WEATHER, TIME], "messages": [
        {"role": "user", "content": "Oslo weather and the time?"},
        {"role": "assistant", "content": "Both.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "content": "-3", "tool_call_id": "call_a", "name": "get_weather"},
        {"role": "tool", "content": "09:00", "tool_call_id": "call_b", "name": "get_time"},
        {"role": "assistant", "content": "-3 °C at 09:00."},
        {"role": "user", "content": "Thanks!"},
    ]},
    "no-tools-thinking-off": {"tools": None, "enable_thinking": False, "messages": [
        {"role": "user", "content": "Hi"},
    ]},
    "thinking-on": {"tools": None, "enable_thinking": True, "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Two and two."},
        {"role": "user", "content": "3+3?"},
    ]},
}

PRINTS_EVERYTHING = (
    "{% for m in messages %}{{ m | tojson }}\n{% endfor %}{{ tools | tojson }} "
    "{{ enable_thinking is defined }} {{ add_generation_prompt }}")


@pytest.mark.parametrize("case", sorted(JINJA_CASES))
@pytest.mark.parametrize("name", [*JINJA_TEMPLATES, "prints-everything"])
def test_jinja_template_gets_what_apply_chat_template_passes(name: str, case: str) -> None:
    source = PRINTS_EVERYTHING if name == "prints-everything" else _read(TOOLS_GOLDEN / "jinja" / name)
    spec = JINJA_CASES[case]
    extra = {"enable_thinking": spec["enable_thinking"]} if "enable_thinking" in spec else {}
    expected = _hf_environment().from_string(source).render(
        messages=spec["messages"], tools=spec["tools"], add_generation_prompt=True, bos_token="<s>",
        eos_token="</s>", **extra)
    got = render_prompt(compile_template(source), messages=spec["messages"], tools=spec["tools"],
                        think=spec.get("enable_thinking"), bos_token="<s>", eos_token="</s>")
    assert got == expected


def test_a_thinking_level_reaches_jinja_as_reasoning_effort() -> None:
    template = compile_template("{{ enable_thinking }} {{ reasoning_effort }}{% for m in messages %}{% endfor %}")
    assert render_prompt(template, messages=[{"role": "user", "content": "x"}], think="low") == "True low"


def test_ollamas_date_functions() -> None:
    import datetime

    template = compile_template("{{ currentDate }} {{ yesterdayDate }}{{ range .Messages }}{{ end }}")
    before = datetime.date.today()
    got = render_prompt(template, messages=[{"role": "user", "content": "x"}])
    after = datetime.date.today()
    assert got in {f"{d.isoformat()} {(d - datetime.timedelta(days=1)).isoformat()}" for d in (before, after)}
