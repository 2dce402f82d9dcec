"""The Go template language construct by construct: trimming, control flow, variables, functions.

Expected values are Go's (checked against Go's text/template where the
golden corpus does not already cover them).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingot.modelfile.template import TemplateError, compile_template, render_prompt
from ingot.modelfile.template.budget import DEFAULT_BUDGET, RenderBudget, TemplateBudgetError
from ingot.modelfile.template.evaluator import execute
from ingot.modelfile.template.functions import FUNCTIONS
from ingot.modelfile.template.lexer import ActionItem, TextItem, lex
from ingot.modelfile.template.parser import parse_template

DATA: dict[str, Any] = {
    "Name": "Ada", "Empty": "", "List": ["a", "b", "c"], "Nums": [3, 1, 2],
    "Map": {"b": 2, "a": 1}, "T": True, "F": False, "Nil": None,
    "Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}],
}


def render(source: str, data: Any = DATA, budget: RenderBudget = DEFAULT_BUDGET) -> str:
    root = parse_template(source, name="TEMPLATE", functions=FUNCTIONS)
    return execute(root, data, source=source, name="TEMPLATE", budget=budget)


def error_of(source: str, data: Any = DATA) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render(source, data)
    return caught.value


# --- lexing and trimming --------------------------------------------------

def test_text_between_actions_is_kept_verbatim() -> None:
    source = "  a\r\n\tb {{ .Name }} \n c  "
    assert render(source) == "  a\r\n\tb Ada \n c  "


def test_left_trim_removes_all_ascii_whitespace_before() -> None:
    assert render("x \t\r\n\n {{- .Name }}") == "xAda"


def test_right_trim_removes_all_ascii_whitespace_after() -> None:
    assert render("{{ .Name -}} \n\r\t y") == "Aday"


def test_trim_keeps_non_ascii_whitespace() -> None:
    # Go trims only space, tab, CR and LF; a no-break space stays.
    assert render("x\u00a0{{- .Name -}}\u00a0y") == "x\u00a0Ada\u00a0y"


def test_dash_without_space_is_a_number_not_a_trim_marker() -> None:
    assert render("a {{-3}} b") == "a -3 b"


def test_trim_markers_on_a_comment_still_trim() -> None:
    assert render("a \n {{- /* gone */ -}} \n b") == "ab"
    assert render("a {{/* multi\nline */}} b") == "a  b"


def test_delimiters_inside_strings_do_not_end_the_action() -> None:
    assert render('{{ "a}}b" }}|{{ `{{ raw }}` }}|{{ printf "%c" \'}\' }}') == "a}}b|{{ raw }}|}"


def test_actions_may_span_lines() -> None:
    assert render("{{\n  printf\n  \"%s-%s\"\n  .Name\n  .Name\n}}") == "Ada-Ada"


def test_lexer_reports_positions_of_text_and_actions() -> None:
    items = lex("ab {{- .X }} cd")
    assert items == [TextItem(0, "ab"), ActionItem(3, ".X ", 7), TextItem(12, " cd")]


# --- control flow ---------------------------------------------------------

def test_if_else_if_else_chain() -> None:
    source = "{{ range .Nums }}{{ if eq . 1 }}one{{ else if eq . 2 }}two{{ else }}other{{ end }} {{ end }}"
    assert render(source) == "other one two "


def test_with_sets_dot_and_else_runs_on_empty() -> None:
    assert render("{{ with .Name }}<{{ . }}>{{ else }}none{{ end }}") == "<Ada>"
    assert render("{{ with .Empty }}<{{ . }}>{{ else }}none{{ end }}") == "none"


def test_else_with_chain() -> None:
    # Go 1.23's {{else with}}: the second pipeline becomes dot.
    source = "{{ with .Missing }}a{{ else with .Name }}b={{ . }}{{ else }}c{{ end }}"
    assert render(source) == "b=Ada"


def test_range_with_else_runs_else_only_when_empty() -> None:
    source = "{{ range .X }}[{{ . }}]{{ else }}empty{{ end }}"
    assert render(source, {"X": ["a"]}) == "[a]"
    assert render(source, {"X": []}) == "empty"
    assert render(source, {"X": {}}) == "empty"
    assert render(source, {}) == "empty"


def test_range_two_variables_and_map_order() -> None:
    assert render("{{ range $i, $m := .List }}{{ $i }}{{ $m }}{{ end }}") == "0a1b2c"
    assert render("{{ range $k, $v := .Map }}{{ $k }}={{ $v }};{{ end }}") == "a=1;b=2;"
    assert render("{{ range $m := .List }}{{ $m }}{{ end }}") == "abc"


def test_range_over_an_integer() -> None:
    # Go 1.22: range over an int counts from 0.
    assert render("{{ range $i := 3 }}{{ $i }}{{ end }}") == "012"
    assert render("{{ range 0 }}x{{ else }}none{{ end }}") == "none"


def test_break_and_continue() -> None:
    source = ("{{ range .Nums }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}"
              "{{ if eq . 3 }}{{ break }}{{ end }}{{ end }}")
    assert render(source, {"Nums": [1, 2, 3, 4]}) == "23"


def test_range_element_fields_and_root_dollar() -> None:
    source = "{{ range .Messages }}{{ .Role }}:{{ .Content }}@{{ $.Name }} {{ end }}"
    assert render(source) == "user:hi@Ada assistant:yo@Ada "


# --- variables ------------------------------------------------------------

def test_declare_and_assign() -> None:
    assert render("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}") == "12"


def test_variables_declared_in_a_block_end_with_it() -> None:
    assert render('{{ $x := "out" }}{{ if .T }}{{ $x := "in" }}{{ $x }}{{ end }}-{{ $x }}') == "in-out"
    with pytest.raises(TemplateError, match='undefined variable "\\$y"'):
        render("{{ if .T }}{{ $y := 1 }}{{ end }}{{ $y }}")


def test_assignment_inside_a_block_changes_the_outer_variable() -> None:
    source = '{{ $acc := "" }}{{ range .List }}{{ $acc = printf "%s%s" $acc . }}{{ end }}{{ $acc }}'
    assert render(source) == "abc"


def test_range_variables_are_fresh_each_iteration() -> None:
    source = "{{ range .List }}{{ $seen := . }}{{ $seen }}{{ end }}"
    assert render(source) == "abc"


def test_dollar_is_the_root_data() -> None:
    assert render("{{ with .Map }}{{ $.Name }}{{ end }}") == "Ada"


# --- values and printing --------------------------------------------------

def test_missing_map_key_prints_no_value() -> None:
    assert render("[{{ .Missing }}][{{ .Nil }}]") == "[<no value>][<no value>]"


def test_field_of_missing_key_is_an_error_as_in_go() -> None:
    err = error_of("{{ .Missing.Field }}")
    assert "nil pointer evaluating interface {}.Field" in err.message


def test_literals() -> None:
    assert render("{{ 0x10 }} {{ 1e3 }} {{ 'A' }} {{ \"q\\\"\" }} {{ `r\\n` }} {{ true }}") == \
        '16 1000 65 q" r\\n true'


def test_parenthesised_arguments_and_field_of_parenthesised_pipeline() -> None:
    assert render("{{ printf \"%d\" (len (slice .List 1)) }}") == "2"
    assert render("{{ (index .Messages 1).Content }}") == "yo"


def test_pipeline_passes_value_as_last_argument() -> None:
    assert render('{{ .Name | printf "<%s>" | printf "%s!" }}') == "<Ada>!"


# --- functions ------------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ('{{ eq .Name "Bob" "Ada" }}', "true"),
    ("{{ eq 1 2 3 }}", "false"),
    ('{{ eq .Missing "x" }}', "false"),
    ("{{ ne 1 2 }}", "true"),
    ("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2.5 2.5 }}", "true true false true"),
    ('{{ lt "a" "b" }}', "true"),
])
def test_comparisons(source: str, expected: str) -> None:
    assert render(source) == expected


def test_and_or_return_the_deciding_value() -> None:
    assert render("[{{ and 1 0 2 }}][{{ and 1 2 }}][{{ or 0 \"\" \"x\" }}][{{ or 0 \"\" }}]") == \
        "[0][2][x][]"


def test_and_or_short_circuit() -> None:
    # The second argument would fail (index out of range) if it were evaluated.
    assert render("{{ and .F (index .List 99) }}|{{ or .T (index .List 99) }}") == "false|true"
    with pytest.raises(TemplateError, match="index out of range: 99"):
        render("{{ and .T (index .List 99) }}")


def test_not_and_truthiness() -> None:
    assert render("{{ not .Empty }} {{ not .List }} {{ not .Missing }} {{ not 0 }}") == \
        "true false true true"


def test_len_counts_utf8_bytes_like_go() -> None:
    assert render("{{ len .List }} {{ len .Map }} {{ len .S }}", {**DATA, "S": "héllo"}) == "3 2 6"


def test_index_and_slice() -> None:
    assert render("{{ index .List 2 }} {{ index .Map \"b\" }} [{{ index .Map \"zz\" }}]") == "c 2 [<no value>]"
    assert render("{{ slice .List 1 }} {{ slice .List 0 1 }} {{ slice .Name 1 }}") == "[b c] [a] da"
    assert render("{{ index .Name 0 }}") == "65"


def test_index_and_slice_errors() -> None:
    assert "index out of range: 3" in error_of("{{ index .List 3 }}").message
    assert "invalid slice index: 2 > 1" in error_of("{{ slice .List 2 1 }}").message
    assert "cannot index slice/array with type string" in error_of('{{ index .List "x" }}').message


def test_printf_verbs() -> None:
    source = '{{ printf "%s|%d|%v|%q|%%|%5s|%-3s|%03d|%x|%.2f|%t" .Name 7 .List "q" "r" "l" 5 255 3.14159 .T }}'
    assert render(source) == 'Ada|7|[a b c]|"q"|%|    r|l  |005|ff|3.14|true'


def test_printf_complains_like_go() -> None:
    assert render('{{ printf "%d" "x" }}|{{ printf "%s" }}|{{ printf "%s" 1 2 }}') == \
        "%!d(string=x)|%!s(MISSING)|%!s(int=1)%!(EXTRA int=2)"


def test_json_is_go_encoding() -> None:
    assert render('{{ json .Map }} {{ json "<&>" }} {{ json .Nil }} {{ json 1.5 }}') == \
        '{"a":1,"b":2} "\\u003c\\u0026\\u003e" null 1.5'


# --- errors point at the template -----------------------------------------

def test_undefined_function_points_at_it_with_a_caret() -> None:
    err = error_of("line one\n  {{ .Name | upper }}")
    assert (err.line, err.column) == (2, 14)
    assert err.message == 'function "upper" not defined'
    text = str(err)
    assert text.splitlines()[0] == 'TEMPLATE:2:14: function "upper" not defined'
    assert text.splitlines()[1].strip() == "{{ .Name | upper }}"
    assert text.splitlines()[2].index("^") == text.splitlines()[1].index("upper")
    assert "printf" in (err.hint or "")


def test_syntax_error_is_never_a_bare_lark_error() -> None:
    err = error_of("ok\n{{ .Name ) }}")
    assert (err.line, err.column) == (2, 10)
    assert "unexpected" in err.message
    assert "lark" not in str(err).lower()


def test_missing_end_names_the_opening_line() -> None:
    err = error_of("a\n{{ if .T }}\nb")
    assert "{{if}} opened at line 2 has no {{end}}" in err.message


def test_unexpected_end_and_else() -> None:
    assert error_of("x {{ end }}").column == 3
    assert "unexpected {{else}}" in error_of("{{ else }}").message


def test_else_if_inside_range_is_refused() -> None:
    assert "{{else if}} can only follow {{if}}" in error_of("{{ range .L }}{{ else if .T }}{{ end }}").message


def test_execution_error_points_at_the_failing_node() -> None:
    err = error_of("{{ range .Messages }}\n  {{ .Role.Name }}{{ end }}")
    assert (err.line, err.column) == (2, 6)
    assert "can't evaluate field Name in type string" in err.message


def test_unterminated_string_and_unclosed_action() -> None:
    assert "unterminated quoted string" in error_of('{{ "abc }}').message
    err = error_of("text {{ .Name")
    assert err.message == "unclosed action" and err.column == 6


def test_comment_must_end_at_the_delimiter() -> None:
    assert "comment ends before closing delimiter" in error_of("{{/* c */ .Name }}").message


# --- named templates ------------------------------------------------------

def test_define_and_template_run_with_the_given_dot() -> None:
    source = ('{{ define "turn" }}<{{ .Role }}:{{ .Content }}>{{ end }}'
              '{{ range .Messages }}{{ template "turn" . }}{{ end }}')
    assert render(source) == "<user:hi><assistant:yo>"


def test_template_without_a_pipeline_gets_no_value() -> None:
    assert render('{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" }}') == "[<no value>]"


def test_a_named_template_sees_only_its_own_dollar() -> None:
    assert render('{{ define "x" }}{{ $ }}{{ end }}{{ $v := 1 }}{{ template "x" .Name }}{{ $v }}') == "Ada1"
    err = error_of('{{ $v := 1 }}{{ define "x" }}{{ $v }}{{ end }}')
    assert err.message == 'undefined variable "$v"'


def test_block_defines_and_runs_in_place_and_define_may_replace_an_empty_one() -> None:
    assert render('a{{ block "b" .Name }}<{{ . }}>{{ end }}z') == "a<Ada>z"
    assert render('{{ define "x" }} {{ end }}{{ define "x" }}X{{ end }}{{ template "x" }}') == "X"


def test_two_definitions_of_one_name_are_refused() -> None:
    err = error_of('{{ define "x" }}a{{ end }}\n{{ define "x" }}b{{ end }}')
    assert "multiple definition of template 'x'" in err.message and err.line == 2
    assert "line 1" in (err.hint or "")


def test_an_undefined_template_fails_only_when_called() -> None:
    assert render('{{ if false }}{{ template "nope" }}{{ end }}ok') == "ok"
    assert error_of('{{ template "nope" }}').message == "no such template 'nope'"


def test_break_inside_a_definition_has_no_range_to_leave() -> None:
    assert error_of('{{ define "x" }}{{ break }}{{ end }}').message == "{{break}} outside {{range}}"


def test_conversation_rules_see_inside_named_templates() -> None:
    # Ollama's Vars walks every template of the set: .Messages inside a definition
    # makes it a messages template (rendered once, no {{ .Response }} appended).
    template = compile_template('{{ define "m" }}{{ range .Messages }}{{ .Content }};{{ end }}{{ end }}'
                                '{{ template "m" . }}')
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert render_prompt(template, messages=messages) == "a;b;"
    # A legacy template's last-turn cut never removes the definitions it calls.
    legacy = compile_template('{{ template "p" . }}{{ .Response }}tail{{ define "p" }}[{{ .Prompt }}]{{ end }}')
    assert render_prompt(legacy, messages=[{"role": "user", "content": "q"}]) == "[q]"


def test_define_inside_a_block_is_refused() -> None:
    err = error_of('{{ if 1 }}{{ define "x" }}a{{ end }}{{ end }}')
    assert "unexpected {{define}} inside a block" in err.message and err.column == 11


def test_non_executable_later_stage() -> None:
    assert "non executable command in pipeline stage 2" in error_of('{{ .Name | "x" }}').message


def test_empty_action() -> None:
    assert error_of("a {{ }}").message == "missing value for command"


def test_wrong_argument_count() -> None:
    assert "wrong number of args for len: want 1 got 2" in error_of("{{ len .List .List }}").message


# --- limits ---------------------------------------------------------------

def test_runaway_range_is_stopped() -> None:
    with pytest.raises(TemplateBudgetError, match="too many loop iterations") as caught:
        render("{{ range $x := .List }}{{ range 100000 }}{{ end }}{{ end }}",
               budget=RenderBudget(max_loop_iterations=1000))
    assert caught.value.limit == "max_loop_iterations"


def test_output_size_is_bounded() -> None:
    with pytest.raises(TemplateBudgetError, match="output") as caught:
        render("{{ range 100 }}xx{{ end }}", budget=RenderBudget(max_output_bytes=50))
    assert caught.value.limit == "max_output_bytes" and caught.value.column == 16


def test_deep_nesting_is_a_template_error_not_a_crash() -> None:
    assert "nests too deeply" in error_of("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}").message
    assert "nests too deeply" in error_of("{{ if 1 }}" * 3000 + "{{ end }}" * 3000).message


# --- properties -----------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_actions_is_copied_exactly(text: str) -> None:
    assert render(text, {}) == text


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(alphabet=" \t\r\n"), st.text(alphabet=" \t\r\n"))
def test_values_print_verbatim_and_trim_only_ascii_space(value: str, before: str, after: str) -> None:
    assert render("{{ .S }}", {"S": value}) == value
    assert render(f"<{before}{{{{- .S -}}}}{after}>", {"S": value}) == f"<{value}>"
