"""Hostile templates against the render budget: each is stopped by the limit it runs into, fast, in bounded memory.

Every case renders in a child process that reports which limit stopped it,
how long the render took and how far it pushed the peak RSS (ru_maxrss after
the render minus before it). The child runs under a 1.5 GiB address-space
limit and a timeout, so a template that escapes its budget fails the test
(MemoryError or timeout) instead of taking the machine down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

from ingot.modelfile.template import (
    DEFAULT_BUDGET,
    RenderBudget,
    TemplateBudgetError,
    TemplateError,
    compile_template,
    render_prompt,
)

MiB = 1024 * 1024

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 * 1024,) * 2)
    from ingot.modelfile.template import RenderBudget, TemplateBudgetError, compile_template, render_prompt
    case = json.loads(sys.stdin.read())
    messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"},
                {"role": "user", "content": "What is 2 + 2?"}]
    template = compile_template(case["source"])
    render_prompt(compile_template("{{ range .Messages }}{{ .Content }}{{ end }}"), messages=messages)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        text = render_prompt(template, messages=messages, budget=RenderBudget(**case["budget"]))
        outcome = {"limit": None, "length": len(text)}
    except TemplateBudgetError as exc:
        outcome = {"limit": exc.limit, "message": str(exc)}
    seconds = time.monotonic() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({**outcome, "seconds": seconds, "rss_growth": grown * 1024}))
""")


@dataclass(frozen=True)
class Case:
    source: str
    limit: str
    budget: dict[str, Any] = field(default_factory=dict)
    max_rss_growth: int = 64 * MiB

    def render_budget(self) -> dict[str, Any]:
        # Where the case is about another limit, a long render time keeps a loaded
        # machine from hitting the clock first.
        if self.limit == "max_render_time":
            return self.budget
        return {"max_render_time": 30.0, **self.budget}


def _render_in_child(source: str, budget: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps({"source": source, "budget": budget}),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _go_chain(names: str) -> str:
    """Templates calling the next one twice: 2**len(names) calls, no output, no loop."""
    parts = [f'{{{{ define "{a}" }}}}{{{{ template "{b}" . }}}}{{{{ template "{b}" . }}}}{{{{ end }}}}'
             for a, b in zip(names, names[1:])]
    return "".join(parts) + f'{{{{ define "{names[-1]}" }}}}{{{{ end }}}}{{{{ template "{names[0]}" . }}}}{{{{ .Messages }}}}'


SMALL_OUTPUT = {"max_output_bytes": MiB}

CASES = {
    # Go: json of json of ... a backslash doubles (and more) with every level.
    "go-exponential-json": Case('{{ $x := "\\\\\\"" }}' + "{{ $x = json $x }}" * 40 + "{{ $x }}{{ .Messages }}",
                                "max_output_bytes", SMALL_OUTPUT),
    "go-exponential-json-default-budget": Case(
        '{{ $x := "\\\\\\"" }}' + "{{ $x = json $x }}" * 40 + "{{ $x }}{{ .Messages }}",
        "max_output_bytes", max_rss_growth=192 * MiB),
    "go-printf-doubling": Case('{{ $x := "ab" }}' + '{{ $x = printf "%s%s" $x $x }}' * 40 + "{{ .Messages }}",
                               "max_output_bytes", SMALL_OUTPUT),
    "go-printf-width": Case('{{ printf "%9999999d%9999999d" 1 2 }}{{ .Messages }}', "max_output_bytes", SMALL_OUTPUT),
    "go-huge-range": Case("{{ range 1000000000 }}x{{ end }}{{ .Messages }}", "max_loop_iterations"),
    "go-nested-ranges": Case("{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}{{ .Messages }}",
                             "max_loop_iterations", {"max_loop_iterations": 200_000}),
    "go-output-growth": Case("{{ range 1000 }}{{ range 1000 }}" + "x" * 100 + "{{ end }}{{ end }}{{ .Messages }}",
                             "max_output_bytes", SMALL_OUTPUT),
    "go-deep-recursion": Case('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}{{ .Messages }}',
                              "max_nesting_depth"),
    "go-exponential-recursion": Case(_go_chain("abcdefghijklmnopqrstuvwxyz"), "max_render_time",
                                     {"max_render_time": 0.5}),
    # Jinja: loops the sandbox's range() cap does not stop, and strings that grow.
    "jinja-nested-loops": Case("{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}"
                               "{% endfor %}{% endfor %}{% endfor %}", "max_loop_iterations"),
    "jinja-filtered-loops": Case("{% for i in range(100000) %}{% for j in range(100000) if false %}"
                                 "{% endfor %}{% endfor %}", "max_loop_iterations"),
    "jinja-string-repeat": Case("{{ 'a' * 10**9 }}", "max_output_bytes"),
    "jinja-namespace-doubling": Case("{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
                                     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "max_output_bytes",
                                     SMALL_OUTPUT),
    "jinja-set-doubling": Case("{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40 + "{{ x }}", "max_output_bytes",
                               SMALL_OUTPUT),
    "jinja-plus-doubling": Case("{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
                                "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", "max_output_bytes", SMALL_OUTPUT),
    "jinja-buffered-output": Case("{% set big = 'a' * 100000 %}{% set x %}{% for i in range(100000) %}{{ big }}"
                                  "{% endfor %}{% endset %}{{ x|length }}", "max_output_bytes", SMALL_OUTPUT),
    "jinja-macro-output": Case("{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}"
                               "{{ m() }}", "max_output_bytes", SMALL_OUTPUT),
    "jinja-padding": Case("{{ 'x'|center(999999999) }}", "max_output_bytes"),
    "jinja-format-width": Case("{{ '%999999999d' % 1 }}", "max_output_bytes"),
    "jinja-replace": Case("{% set s = 'a' * 100000 %}{{ s|replace('a', s) }}", "max_output_bytes"),
    "jinja-big-number": Case("{{ 2 ** 100000000 }}", "max_output_bytes"),
    "jinja-deep-recursion": Case("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "max_nesting_depth"),
    "jinja-exponential-recursion": Case("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                                        "{% endmacro %}{{ f(60) }}", "max_render_time", {"max_render_time": 0.5}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_runaway_template_is_stopped_by_its_limit_in_time_and_bounded_memory(name: str) -> None:
    case = CASES[name]
    result = _render_in_child(case.source, case.render_budget())
    assert result["limit"] == case.limit, result
    if case.limit == "max_render_time":
        # Stopped at its deadline (plus slack for a shared, noisy machine).
        assert result["seconds"] < RenderBudget(**case.budget).max_render_time + 1.0, result
    else:
        assert result["seconds"] < 10.0, result  # stopped by its limit long before any clock
    assert result["rss_growth"] < case.max_rss_growth, result
    assert f"templates.{case.limit}" in result["message"]


def test_the_error_names_the_limit_and_points_at_the_template() -> None:
    template = compile_template("{{ range .Messages }}\n{{ range 100000 }}x{{ end }}{{ end }}")
    with pytest.raises(TemplateBudgetError) as caught:
        render_prompt(template, messages=[{"role": "user", "content": "hi"}],
                      budget=RenderBudget(max_loop_iterations=1000))
    error = caught.value
    assert (error.limit, error.line, error.column) == ("max_loop_iterations", 2, 1)
    assert "1,000 loop iterations" in error.message and "config.yaml" in (error.hint or "")
    assert isinstance(error, TemplateError)


def test_a_budget_exactly_large_enough_is_enough() -> None:
    messages = [{"role": "user", "content": "x" * 100}]
    go = compile_template("{{ range .Messages }}{{ .Content }}{{ end }}")
    jinja = compile_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    for template in (go, jinja):
        assert len(render_prompt(template, messages=messages, budget=RenderBudget(max_output_bytes=100))) == 100
        with pytest.raises(TemplateBudgetError):
            render_prompt(template, messages=messages, budget=RenderBudget(max_output_bytes=99))


def test_output_is_counted_in_utf8_bytes() -> None:
    template = compile_template("{{ range .Messages }}{{ .Content }}{{ end }}")
    messages = [{"role": "user", "content": "é" * 50}]  # 100 bytes
    assert render_prompt(template, messages=messages, budget=RenderBudget(max_output_bytes=100))
    with pytest.raises(TemplateBudgetError):
        render_prompt(template, messages=messages, budget=RenderBudget(max_output_bytes=99))


def test_legacy_templates_share_one_budget_across_turns() -> None:
    # A legacy template renders once per turn; the budget is the whole prompt's.
    template = compile_template("{{ .Prompt }}{{ .Response }}")
    messages = [{"role": r, "content": "x" * 40} for r in ("user", "assistant") * 3]
    assert len(render_prompt(template, messages=messages)) == 240
    with pytest.raises(TemplateBudgetError, match="output"):
        render_prompt(template, messages=messages, budget=RenderBudget(max_output_bytes=200))


def test_loops_are_counted_across_the_whole_render() -> None:
    template = compile_template("{{ range .Messages }}{{ range 10 }}.{{ end }}{{ end }}")
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert render_prompt(template, messages=messages, budget=RenderBudget(max_loop_iterations=22)) == "." * 20
    with pytest.raises(TemplateBudgetError):
        render_prompt(template, messages=messages, budget=RenderBudget(max_loop_iterations=21))


def test_jinja_loops_and_calls_are_counted() -> None:
    template = compile_template("{% for m in messages %}{% for c in m.content %}{{ c }}{% endfor %}{% endfor %}")
    messages = [{"role": "user", "content": "abc"}]
    assert render_prompt(template, messages=messages, budget=RenderBudget(max_loop_iterations=4)) == "abc"
    with pytest.raises(TemplateBudgetError):
        render_prompt(template, messages=messages, budget=RenderBudget(max_loop_iterations=3))
    nested = compile_template("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}")
    assert render_prompt(nested, messages=messages, budget=RenderBudget(max_nesting_depth=6)) == ""
    with pytest.raises(TemplateBudgetError, match="nest"):
        render_prompt(nested, messages=messages, budget=RenderBudget(max_nesting_depth=5))


def test_the_sandbox_still_refuses_python_internals() -> None:
    template = compile_template("{{ messages.__class__.__mro__ }}{% if 1 %}{% endif %}")
    with pytest.raises(TemplateError, match="unsafe|undefined|has no attribute") as caught:
        render_prompt(template, messages=[{"role": "user", "content": "x"}])
    assert not isinstance(caught.value, TemplateBudgetError)


def test_budget_values_are_checked() -> None:
    with pytest.raises(ValueError, match="max_nesting_depth"):
        RenderBudget(max_nesting_depth=0)
    with pytest.raises(ValueError, match="max_render_time"):
        RenderBudget(max_render_time=0)
    assert DEFAULT_BUDGET.max_output_bytes == 16 * MiB
