"""The reply parsers on recorded outputs of each family, whole and streamed in random pieces."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingot.modelfile.reply import ParsedCall, ReplyParser, ThinkingTags, ToolCallFormat

THINK = ThinkingTags("<think>", "</think>")
HERMES = ToolCallFormat(start="<tool_call>", end="</tool_call>", lead="<tool_call>\n", between="\n",
                        trail="\n</tool_call>")
MISTRAL = ToolCallFormat(start="[TOOL_CALLS]", lead="[TOOL_CALLS][", between=", ", trail="]")
MISTRAL_ARGS = ToolCallFormat(start="[TOOL_CALLS]", name_marker="[ARGS]", lead="[TOOL_CALLS]", call_prefix="",
                              call_infix="[ARGS]", call_suffix="", between="[TOOL_CALLS]")
LLAMA = ToolCallFormat(alt_starts=("<|python_tag|>",), call_infix='", "parameters": ')
BARE = ToolCallFormat()
NAMES = frozenset({"get_current_weather", "get_time", "say_hello"})

PARIS = {"location": "Paris, France", "format": "celsius"}


@dataclass(frozen=True)
class Case:
    name: str
    output: str
    tools: ToolCallFormat | None
    content: str
    calls: tuple[tuple[str, dict], ...] = ()
    thinking: str = ""
    tags: ThinkingTags | None = None
    opened_by_prompt: bool = False


CASES = [
    # Hermes / Qwen 2.5 / Qwen 3: calls inside <tool_call> blocks, one JSON object each.
    Case("qwen2.5 one call",
         '<tool_call>\n{"name": "get_current_weather", "arguments": {"location": "Paris, France", '
         '"format": "celsius"}}\n</tool_call>', HERMES, "", (("get_current_weather", PARIS),)),
    Case("qwen2.5 text then two blocks",
         'Let me check both. <tool_call>\n{"name": "get_current_weather", "arguments": {"location": "Paris, France", '
         '"format": "celsius"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
         HERMES, "Let me check both. ", (("get_current_weather", PARIS), ("get_time", {}))),
    Case("ollama qwen template: two objects in one block",
         '<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n{"name": "say_hello", "arguments": {}}\n'
         '</tool_call>', HERMES, "", (("get_time", {"tz": "UTC"}), ("say_hello", {}))),
    Case("qwen3 thinking then a call",
         '<think>\nThe user wants the weather in Paris. I should call get_current_weather.\n</think>\n\n'
         '<tool_call>\n{"name": "get_current_weather", "arguments": {"location": "Paris, France", '
         '"format": "celsius"}}\n</tool_call>', HERMES, "", (("get_current_weather", PARIS),),
         thinking="The user wants the weather in Paris. I should call get_current_weather.\n", tags=THINK),
    Case("a call written inside the reasoning is not a call",
         '<think>maybe <tool_call>{"name": "get_time", "arguments": {}}</tool_call>?</think>No tools needed.',
         HERMES, "No tools needed.", (),
         thinking='maybe <tool_call>{"name": "get_time", "arguments": {}}</tool_call>?', tags=THINK),
    Case("arguments as a JSON string",
         '<tool_call>{"name": "get_time", "arguments": "{\\"tz\\": \\"CET\\"}"}</tool_call>', HERMES, "",
         (("get_time", {"tz": "CET"}),)),
    Case("an unknown tool is text", '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call> done', HERMES,
         '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call> done'),
    Case("broken JSON is text", '<tool_call>{"name": "get_time", "arguments": {]}</tool_call>', HERMES,
         '<tool_call>{"name": "get_time", "arguments": {]}</tool_call>'),
    Case("a reply cut off inside a call keeps its text",
         'Checking. <tool_call>\n{"name": "get_current_weather", "arguments": {"loca', HERMES,
         'Checking. <tool_call>\n{"name": "get_current_weather", "arguments": {"loca'),
    Case("a tag-like text that is not the tag", "Use <tool> or <tool_cal>, not <b>.", HERMES,
         "Use <tool> or <tool_cal>, not <b>."),
    Case("a partial tag at the end is text", "The answer is 4 <tool_", HERMES, "The answer is 4 <tool_"),
    Case("braces in strings", '<tool_call>{"name": "say_hello", "arguments": {"text": "}{ \\" ]["}}</tool_call>',
         HERMES, "", (("say_hello", {"text": '}{ " ]['}),)),
    Case("non-ASCII arguments", '<tool_call>{"name": "say_hello", "arguments": {"to": "Zoë 😀"}}</tool_call>',
         HERMES, "", (("say_hello", {"to": "Zoë 😀"}),)),
    # Mistral v0.3: [TOOL_CALLS] then a JSON list.
    Case("mistral list of two",
         '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": {"location": "Paris, France", "format": '
         '"celsius"}}, {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]', MISTRAL, "",
         (("get_current_weather", PARIS), ("get_time", {"tz": "Europe/Paris"}))),
    Case("mistral closing tag", '[TOOL_CALLS][{"name": "get_time", "arguments": {}}][/TOOL_CALLS]',
         ToolCallFormat(start="[TOOL_CALLS]", end="[/TOOL_CALLS]"), "", (("get_time", {}),)),
    Case("mistral plain answer", "Paris is sunny [citation needed].", MISTRAL, "Paris is sunny [citation needed]."),
    # Mistral v11 (Magistral, Devstral): [TOOL_CALLS]name[ARGS]{...}, repeated per call.
    Case("mistral name[ARGS]",
         '[TOOL_CALLS]get_current_weather[ARGS]{"location": "Paris, France", "format": "celsius"}'
         '[TOOL_CALLS]get_time[ARGS]{}', MISTRAL_ARGS, "", (("get_current_weather", PARIS), ("get_time", {}))),
    Case("mistral name[ARGS] with an unknown name", "[TOOL_CALLS]nope[ARGS]{}", MISTRAL_ARGS,
         "[TOOL_CALLS]nope[ARGS]{}"),
    # Llama 3.1 / 3.2: bare JSON with "parameters", optionally after <|python_tag|>.
    Case("llama3.2 bare JSON",
         '{"name": "get_current_weather", "parameters": {"location": "Paris, France", "format": "celsius"}}',
         LLAMA, "", (("get_current_weather", PARIS),)),
    Case("llama3.1 python_tag", '<|python_tag|>{"name": "get_time", "parameters": {"tz": "UTC"}}', LLAMA, "",
         (("get_time", {"tz": "UTC"}),)),
    Case("llama calls separated by semicolons",
         '{"name": "get_time", "parameters": {}}; {"name": "say_hello", "parameters": {"to": "you"}}', LLAMA, "",
         (("get_time", {}), ("say_hello", {"to": "you"}))),
    Case("bare JSON after text is text", 'Here: {"name": "get_time", "parameters": {}}', LLAMA,
         'Here: {"name": "get_time", "parameters": {}}'),
    Case("a JSON answer that is no call", '\n{"answer": 42, "unit": "°C"}\n', BARE, '\n{"answer": 42, "unit": "°C"}\n'),
    Case("OpenAI-shaped call list",
         '[{"type": "function", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}]', BARE, "",
         (("get_time", {"tz": "UTC"}),)),
    # Thinking without tools.
    Case("deepseek-r1: the prompt opened the reasoning",
         "Okay, 2 + 2.\nThat is 4.\n</think>\n\nThe answer is **4**.", None, "The answer is **4**.",
         thinking="Okay, 2 + 2.\nThat is 4.\n", tags=THINK, opened_by_prompt=True),
    Case("no reasoning at all", "  Hello there.", None, "  Hello there.", tags=THINK),
    Case("a reply cut off while thinking", "<think>\nLet me think about th", None, "",
         thinking="Let me think about th", tags=THINK),
    Case("a partial closing tag at the end", "<think>hmm</thi", None, "", thinking="hmm</thi", tags=THINK),
    Case("magistral tags", "[THINK]short[/THINK]Done.", None, "Done.", thinking="short",
         tags=ThinkingTags("[THINK]", "[/THINK]")),
    Case("plain text, nothing to parse", "Just text {not json} [nor this]", None, "Just text {not json} [nor this]"),
]


def _run(case: Case, pieces: list[str]) -> tuple[str, str, list[ParsedCall]]:
    parser = ReplyParser(thinking=case.tags, thinking_opened_by_prompt=case.opened_by_prompt,
                         tool_calls=case.tools, tool_names=NAMES)
    content, thinking, calls = [], [], []
    for piece in pieces:
        delta = parser.feed(piece)
        content.append(delta.content)
        thinking.append(delta.thinking)
        calls.extend(delta.calls)
    last = parser.finish()
    content.append(last.content)
    thinking.append(last.thinking)
    calls.extend(last.calls)
    return "".join(content), "".join(thinking), calls


def _check(case: Case, pieces: list[str]) -> None:
    content, thinking, calls = _run(case, pieces)
    assert content == case.content
    assert thinking == case.thinking
    assert [(c.name, dict(c.arguments)) for c in calls] == list(case.calls)
    assert [c.index for c in calls] == list(range(len(calls)))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_output_whole(case: Case) -> None:
    _check(case, [case.output])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recorded_output_one_character_at_a_time(case: Case) -> None:
    _check(case, list(case.output))


@st.composite
def _chunked(draw: st.DrawFn) -> tuple[Case, list[str]]:
    case = draw(st.sampled_from(CASES))
    cuts = sorted(draw(st.sets(st.integers(0, len(case.output)), max_size=12)))
    bounds = [0, *cuts, len(case.output)]
    return case, [case.output[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=400, deadline=None)
@given(_chunked())
def test_recorded_output_in_random_pieces(chunked: tuple[Case, list[str]]) -> None:
    case, pieces = chunked
    _check(case, pieces)


_ATOMS = st.sampled_from([
    "<tool_call>", "</tool_call>", "<tool", "_call>", "<", ">", "{", "}", "[", "]", '"', "\\", " ", "\n", ",", ";",
    '"name": "get_time"', '"arguments": {}', '{"name": "say_hello", "arguments": {"to": "x"}}', "<think>",
    "</think>", "</thi", "[TOOL_CALLS]", "<|python_tag|>", "hello", "é", "😀",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ATOMS, max_size=30).map("".join), st.data())
def test_any_text_splits_the_same_in_any_pieces(text: str, data: st.DataObject) -> None:
    for tools in (HERMES, MISTRAL, LLAMA):
        case = Case("random", text, tools, "", tags=THINK)
        whole = _run(case, [text])
        cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=10)))
        bounds = [0, *cuts, len(text)]
        assert _run(case, [text[a:b] for a, b in zip(bounds, bounds[1:])]) == whole


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_characters="<{[|"), max_size=80))
def test_text_without_any_opening_passes_through_untouched(text: str) -> None:
    for tools in (HERMES, MISTRAL, LLAMA, BARE):
        assert _run(Case("plain", text, tools, ""), [text]) == (text, "", [])
