"""Tools, thinking and grammars decided before a model runs: checks, plans, GBNF, reading a reply."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingot.daemon.engine.types import SamplingOptions
from ingot.daemon.errors import InvalidOptionError
from ingot.daemon.grammar import _until, check_expressible, json_grammar, schema_grammar, tool_call_grammar
from ingot.daemon.replies import ReplyPiece, plan_reply, think_value
from ingot.daemon.toolspec import ToolChoice, tool_choice_from_proto, tools_from_proto
from ingot.modelfile.reply import ThinkingTags, ToolCallFormat
from ingot.modelfile.template import compile_template
from ingot.proto.ingot.v1 import common_pb2

from real_model import smollm2

HERMES = compile_template(
    "{{ range .Tools }}{{ . }}{{ end }}{{ range .Messages }}{{ .Role }}: {{ .Content }}"
    "{{ range .ToolCalls }}<tool_call>\n{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ .Function.Arguments }}}"
    "\n</tool_call>{{ end }}\n{{ end }}assistant: ")
THINKER = compile_template(
    "{{ range .Messages }}{{ .Role }}: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}\n"
    "{{ end }}assistant: {{ if .Think }}<think>\n{{ end }}")
PLAIN = compile_template("{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}assistant: ")
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _tool(name: str, parameters: object = CITY, description: str = "") -> common_pb2.Tool:
    return common_pb2.Tool(name=name, description=description,
                           parameters_json=parameters if isinstance(parameters, str) else json.dumps(parameters))


# ---- tools and tool choice ----------------------------------------------------------------------

def test_tools_are_read_and_shown_in_the_request_shape() -> None:
    specs = tools_from_proto([_tool("get_weather", description="Weather"), _tool("now", parameters="")])
    assert specs[0].template_tool() == {"type": "function", "function": {
        "name": "get_weather", "description": "Weather", "parameters": CITY}}
    assert specs[1].template_tool() == {"type": "function", "function": {"name": "now"}}
    assert specs[1].schema == {"type": "object", "properties": {}}


@pytest.mark.parametrize(("tools", "field", "words"), [
    ([_tool("")], "tools[0].function.name", "is empty"),
    ([_tool("a b")], "tools[0].function.name", "not a valid function name"),
    ([_tool("x" * 65)], "tools[0].function.name", "not a valid function name"),
    ([_tool("f"), _tool("g"), _tool("f")], "tools[2].function.name", "also the name of tools[0]"),
    ([_tool("f", parameters="{nope")], "tools[0].function.parameters", "not JSON"),
    ([_tool("f", parameters=[1])], "tools[0].function.parameters", "must be a JSON Schema object"),
    ([_tool("f", parameters={"type": "string"})], "tools[0].function.parameters.type", "must be \"object\""),
    ([_tool("f", parameters={"type": "object", "properties": {"a": {"type": 3}}})],
     "tools[0].function.parameters.properties.a.type", "not a valid JSON Schema"),
])
def test_bad_tools_name_their_field(tools: list[common_pb2.Tool], field: str, words: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        tools_from_proto(tools)
    assert caught.value.option == field and words in str(caught.value)


def test_tool_choice_must_fit_the_tools() -> None:
    tools = tools_from_proto([_tool("f")])
    named = common_pb2.ToolChoice(mode=common_pb2.ToolChoice.FUNCTION, function="f")
    assert tool_choice_from_proto(named, tools) == ToolChoice("function", "f")
    with pytest.raises(InvalidOptionError, match="not one of the tools"):
        tool_choice_from_proto(common_pb2.ToolChoice(mode=common_pb2.ToolChoice.FUNCTION, function="g"), tools)
    with pytest.raises(InvalidOptionError, match="required needs tools"):
        tool_choice_from_proto(common_pb2.ToolChoice(mode=common_pb2.ToolChoice.REQUIRED), ())


# ---- plans ----------------------------------------------------------------------------------------

def test_a_template_without_tools_refuses_them_naming_the_model() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        plan_reply(model="tiny:1", template=PLAIN, tools=tools_from_proto([_tool("f")]))
    assert caught.value.option == "tools" and "tiny:1 does not support tools" in str(caught.value)


def test_thinking_needs_tags_and_is_on_by_default_where_there_are_some() -> None:
    with pytest.raises(InvalidOptionError, match="tiny does not support thinking"):
        plan_reply(model="tiny", template=PLAIN, think=True)
    assert plan_reply(model="tiny", template=PLAIN, think=False).think is False
    default = plan_reply(model="tiny", template=THINKER)
    assert default.think is True and default.thinking == ThinkingTags("<think>", "</think>")
    assert plan_reply(model="tiny", template=THINKER, think="high").think == "high"
    assert plan_reply(model="tiny", template=THINKER, think=False).thinking is None


def test_think_levels_are_checked() -> None:
    assert think_value(None, "high") == "high" and think_value(True, "") is True and think_value(None, "") is None
    with pytest.raises(InvalidOptionError, match="unknown thinking level"):
        think_value(None, "extreme")
    with pytest.raises(InvalidOptionError, match="think is false"):
        think_value(False, "low")


def test_tool_choice_none_hides_the_tools() -> None:
    tools = tools_from_proto([_tool("f")])
    assert plan_reply(model="m", template=HERMES, tools=tools, choice=ToolChoice("none")).template_tools is None
    assert plan_reply(model="m", template=HERMES, tools=tools).template_tools == [t.template_tool() for t in tools]


def test_required_and_a_format_cannot_both_constrain() -> None:
    tools = tools_from_proto([_tool("f")])
    with pytest.raises(InvalidOptionError, match="both constrain") as caught:
        plan_reply(model="m", template=HERMES, tools=tools, choice=ToolChoice("required"), fmt="json")
    assert caught.value.option == "tool_choice"


def test_required_builds_a_grammar_in_the_templates_format() -> None:
    tools = tools_from_proto([_tool("get_weather"), _tool("get_time", parameters="")])
    plan = plan_reply(model="m", template=HERMES, tools=tools, choice=ToolChoice("function", "get_time"))
    sampling = plan.sampling(SamplingOptions(json_output=True), "prompt")
    assert sampling.grammar is not None and not sampling.json_output
    assert sampling.grammar.startswith('root ::= "<tool_call>\\n" call (')
    assert 'call0 ::= "{\\"name\\": \\"get_time\\", \\"arguments\\": " tool0-arguments "}"' in sampling.grammar
    assert "get_weather" not in sampling.grammar
    free = plan_reply(model="m", template=HERMES, tools=tools)
    assert free.sampling(SamplingOptions(), "prompt") == SamplingOptions()


def test_a_thinking_model_may_reason_before_its_constrained_answer() -> None:
    plan = plan_reply(model="m", template=THINKER, fmt='{"type": "object"}')
    opened = plan.sampling(SamplingOptions(), "user: hi\nassistant: <think>\n").grammar
    assert opened is not None and opened.startswith("root ::= think-0 think-gap answer")
    closed = plan.sampling(SamplingOptions(), "user: hi\nassistant: ").grammar
    assert closed is not None and closed.startswith('root ::= ( "<think>" think-0 think-gap )? answer')


def test_the_reader_names_calls_and_keeps_one_without_parallel_calls() -> None:
    tools = tools_from_proto([_tool("f", parameters=""), _tool("g", parameters="")])
    text = '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call><tool_call>\n{"name": "g", "arguments": {}}\n'
    for parallel, names in ((True, ["f", "g"]), (False, ["f"])):
        reader = plan_reply(model="m", template=HERMES, tools=tools, parallel=parallel).reader("assistant: ")
        piece = reader.feed(text) + reader.finish()
        assert [c.name for c in piece.tool_calls] == names
        assert [c.index for c in piece.tool_calls] == list(range(len(names)))
        assert len({c.id for c in piece.tool_calls}) == len(names) and all(
            re.fullmatch(r"call_[0-9a-f]{24}", c.id) for c in piece.tool_calls)
    assert not ReplyPiece() and ReplyPiece(thinking="x")


# ---- what the grammar can enforce ----------------------------------------------------------------

@pytest.mark.parametrize(("schema", "path"), [
    ({"type": "integer", "minimum": 1}, ".minimum"),
    ({"type": "object", "properties": {"n": {"type": "number", "multipleOf": 2}}}, ".properties.n.multipleOf"),
    ({"not": {"type": "string"}}, ".not"),
    ({"type": "string", "format": "email"}, ".format"),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, ".uniqueItems"),
    ({"anyOf": [{"type": "string"}, {"type": "object", "patternProperties": {}}]}, ".anyOf[1].patternProperties"),
    ({"$ref": "https://example.com/schema"}, ".$ref"),
    ({"type": "strng"}, ".type"),
])
def test_schemas_the_grammar_cannot_enforce_are_refused_at_the_keyword(schema: dict, path: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        check_expressible(schema, field="format")
    assert caught.value.option == "format" + path


def test_schemas_it_can_enforce_pass() -> None:
    check_expressible({
        "title": "Booking", "type": "object", "additionalProperties": False, "required": ["when"],
        "properties": {
            "when": {"type": "string", "format": "date-time", "description": "ISO"},
            "guests": {"type": "integer", "enum": [1, 2, 3]},
            "names": {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 1},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "kind": {"anyOf": [{"const": "a"}, {"$ref": "#/$defs/k"}]},
        },
        "$defs": {"k": {"type": ["string", "null"]}},
    }, field="format")


def _accepts(rules: list[tuple[str, str]], text: str) -> bool:
    """Run `_until`'s rules as the automaton they are (one alternative per character class or literal)."""
    table = dict(rules)
    state = rules[0][0]
    for position, char in enumerate(text):
        for alternative in table[state].split(" | "):
            head, _, target = alternative.partition(" ")
            if head.startswith("[^"):
                excluded = re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), head[2:-1])
                matched = char not in excluded
            else:
                matched = json.loads(head) == char
            if matched:
                break
        else:
            return False
        if not target:  # the tag is complete: the text must end here
            return position == len(text) - 1
        state = target
    return False


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("<>/thinkTHINK[]a \n"), max_size=40), st.sampled_from(["</think>", "[/THINK]"]))
def test_the_reasoning_rules_stop_exactly_at_the_first_closing_tag(text: str, tag: str) -> None:
    rules = _until(tag, "t-")
    assert _accepts(rules, text) == (text.endswith(tag) and text.find(tag) == len(text) - len(tag))


def test_every_grammar_parses_in_llama_cpp(smollm2: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(smollm2).encode(), params)
    assert model
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        hermes = ToolCallFormat(start="<tool_call>", end="</tool_call>", lead="<tool_call>\n",
                                between="\n</tool_call>\n<tool_call>\n", trail="\n</tool_call>")
        marker = ToolCallFormat(start="[TOOL_CALLS]", name_marker="[ARGS]", lead="[TOOL_CALLS]", call_prefix="",
                                call_infix="[ARGS]", call_suffix="", between="")
        think = ThinkingTags("<think>", "</think>")
        grammars = [
            tool_call_grammar(hermes, [("get_weather", CITY), ("now", {"type": "object", "properties": {}})],
                              parallel=True, thinking=think),
            tool_call_grammar(marker, [("f", {})], parallel=True, thinking=ThinkingTags("[THINK]", "[/THINK]"),
                              thinking_opened=True),
            tool_call_grammar(ToolCallFormat(), [("f", CITY)], parallel=False),
            schema_grammar({"type": "array", "items": {"type": "string", "format": "date"}}, thinking=think),
            json_grammar(),
        ]
        for grammar in grammars:
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            assert sampler, grammar
            llama_cpp.llama_sampler_free(sampler)
    finally:
        llama_cpp.llama_model_free(model)
