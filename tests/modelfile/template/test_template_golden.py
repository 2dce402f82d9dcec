"""Byte-for-byte conformance with Go's text/template under Ollama's rules.

golden/templates/ holds Ollama's own templates (template/*.gotmpl) and a few
written for ingot; golden/cases.json the conversations; golden/expected/
what Go's text/template produced for each pair, executed the way Ollama's
template.Execute does (see golden/README.md). golden/constructs.json covers
the language construct by construct, again with Go's output or Go's refusal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingot.modelfile.template import TemplateError, compile_template, render_prompt
from ingot.modelfile.template.evaluator import execute
from ingot.modelfile.template.functions import FUNCTIONS
from ingot.modelfile.template.parser import parse_template

GOLDEN = Path(__file__).parent / "golden"
CASES: dict[str, dict] = json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))
TEMPLATES = sorted(p.stem for p in (GOLDEN / "templates").glob("*.gotmpl"))
CONSTRUCTS = json.loads((GOLDEN / "constructs.json").read_text(encoding="utf-8"))


def _read(path: Path) -> str:
    # newline="" keeps the bytes: a golden file's \r or trailing newline matters.
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def test_golden_corpus_is_complete() -> None:
    assert len(TEMPLATES) >= 20
    for name in TEMPLATES:
        for case in CASES:
            assert (GOLDEN / "expected" / name / case).is_file(), (name, case)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_renders_like_go(name: str) -> None:
    template = compile_template(_read(GOLDEN / "templates" / f"{name}.gotmpl"))
    assert template.dialect == "go"
    for case, spec in CASES.items():
        expected = _read(GOLDEN / "expected" / name / case)
        got = render_prompt(template, messages=spec["messages"], tools=spec.get("tools"),
                            think=spec.get("think"))
        assert got == expected, f"{name} / {case}"


@pytest.mark.parametrize("case", CONSTRUCTS["cases"], ids=[c["id"] for c in CONSTRUCTS["cases"]])
def test_construct_matches_go(case: dict) -> None:
    source = case["template"]
    if "output" in case:
        root = parse_template(source, name="t", functions=FUNCTIONS)
        assert execute(root, CONSTRUCTS["data"], source=source, name="t") == case["output"]
    else:
        # Go refused this template (at parse or execution time); so must we, with a position.
        with pytest.raises(TemplateError) as caught:
            root = parse_template(source, name="t", functions=FUNCTIONS)
            execute(root, CONSTRUCTS["data"], source=source, name="t")
        assert caught.value.line >= 1 and caught.value.column >= 1
        assert str(caught.value).startswith("t:")
