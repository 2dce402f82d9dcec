"""Every error the Modelfile layer reports: its line:column, message and hint, and how it prints."""

from __future__ import annotations

import pickle

import pytest

from ingot.modelfile import ModelfileError, parse

CASES = [
    # (text, line, column, in message, in hint)
    ("FORM llama3\n", 1, 1, "unknown instruction 'FORM'", "did you mean FROM?"),
    ("FROM x\n  BOGUS thing\n", 2, 3, "unknown instruction 'BOGUS'", "valid instructions: FROM, PARAMETER"),
    ("FROM x\nPROMPT {{ .Prompt }}\n", 2, 1, "unknown instruction 'PROMPT'", "did you mean TEMPLATE?"),
    ("FROM x\nSYSTEM: be brief\n", 2, 7, "expected a space after SYSTEM", "SYSTEM value"),
    ('FROM"x"\n', 1, 5, "expected a space after FROM", None),
    # an unquoted multi-line value: the next line is not an instruction
    ("FROM x\nSYSTEM You are Mario.\nAlways answer as Mario.\n", 3, 1,
     "SYSTEM value on line 2 ends at the end of its line", "wrap it in triple quotes"),
    ("FROM x\nTEMPLATE [INST]\n\n{{ .Prompt }} [/INST]\n", 4, 1,
     "TEMPLATE value on line 2", 'TEMPLATE """..."""'),
    ("FROM x\nSYSTEM\nYou are Mario.\n", 3, 1, "SYSTEM value on line 2", "triple quotes"),
    ("FROM x\nMESSAGE user first line\nsecond line\n", 3, 1, "MESSAGE value on line 2", "triple quotes"),
    # a quoted value closed early by a quote that ends a line
    ('FROM x\nTEMPLATE """{{ .System }}\n{{ .Prompt }}"""\n{{ .Response }}\n', 4, 1,
     "quoted TEMPLATE value from line 2 was closed on line 3", "move that closing quote"),
    ('FROM x\nSYSTEM "Say "\nhello" to everyone"\n', 3, 1, "was closed on line 2", None),
    # unterminated quotes point at where they opened
    ('FROM x\nSYSTEM """\nline one\nline two\n', 2, 8, 'unterminated """ value', 'end the value with """'),
    ('FROM x\nSYSTEM """This is a multiline system.""\n', 2, 8, 'unterminated """ value', None),
    ('FROM x\nSYSTEM """done""" trailing\n', 2, 8, 'unterminated """ value', "same line is not allowed"),
    ('FROM x\nSYSTEM "\n', 2, 8, "unterminated quoted value", 'use """..."""'),
    ('FROM x\nSYSTEM "Hello" world\n', 2, 8, "unterminated quoted value", "drop the quotes"),
    ('FROM x\nPARAMETER stop "</s>\n', 2, 16, "unterminated quoted value", None),
    # FROM
    ("PARAMETER temperature 0.7\n", 1, 1, "missing FROM", "FROM ./model.gguf"),
    ("", 1, 1, "missing FROM", None),
    ("FROM\n", 1, 5, "FROM needs a model name or a path", None),
    ('FROM "  "\n', 1, 6, "FROM needs", None),
    ("FROM a\nSYSTEM s\nFROM b\n", 3, 1, "a second FROM (the first is on line 1)", "exactly one model"),
    # ADAPTER / REQUIRES need values
    ("FROM x\nADAPTER\n", 2, 8, "ADAPTER needs a path", None),
    ("FROM x\nREQUIRES latest\n", 2, 10, "REQUIRES must be a version such as 0.14.0, got 'latest'",
     "MAJOR.MINOR.PATCH"),
    ("FROM x\nREQUIRES 01.2.3\n", 2, 10, "REQUIRES must be a version", None),
    ("FROM x\nREQUIRES\n", 2, 9, "REQUIRES needs", None),
    # PARAMETER
    ("FROM x\nPARAMETER\n", 2, 10, "PARAMETER needs a name and a value", "PARAMETER temperature 0.7"),
    ("FROM x\nPARAMETER temperature\n", 2, 22, "PARAMETER 'temperature' needs a value", None),
    ("FROM x\nPARAMETER temprature 0.7\n", 2, 11, "unknown parameter 'temprature'", "did you mean 'temperature'?"),
    ("FROM x\nPARAMETER num-ctx 4096\n", 2, 11, "unknown parameter 'num-ctx'", "did you mean 'num_ctx'?"),
    ("FROM x\nPARAMETER grammar root\n", 2, 11, "unknown parameter 'grammar'", "valid parameters:"),
    ("FROM x\nPARAMETER draft_num_predict 4\n", 2, 11, "not supported", "remove it"),
    ("FROM x\nPARAMETER num_ctx abc\n", 2, 19, "'num_ctx' expects a whole number, got 'abc'", "num_ctx 4096"),
    ("FROM x\nPARAMETER num_ctx 4096.0\n", 2, 19, "expects a whole number", None),
    ("FROM x\nPARAMETER num_ctx 0\n", 2, 19, "'num_ctx' must be between 1 and 16777216, got 0", None),
    ("FROM x\nPARAMETER top_p 1.5\n", 2, 17, "'top_p' must be between 0.0 and 1.0, got 1.5", None),
    ("FROM x\nPARAMETER temperature -0.5\n", 2, 23, "'temperature' must be between 0.0 and 100.0", None),
    ("FROM x\nPARAMETER temperature hot\n", 2, 23, "'temperature' expects a number, got 'hot'", None),
    ("FROM x\nPARAMETER temperature nan\n", 2, 23, "expects a number", None),
    ("FROM x\nPARAMETER use_mmap maybe\n", 2, 20, "'use_mmap' expects true or false", None),
    ('FROM x\nPARAMETER stop ""\n', 2, 16, "'stop' must not be empty", None),
    # MESSAGE
    ("FROM x\nMESSAGE\n", 2, 8, "MESSAGE needs a role and content", "MESSAGE user"),
    ("FROM x\nMESSAGE badguy I'm a bad guy!\n", 2, 9, "unknown message role 'badguy'",
     "valid roles: system, user, assistant"),
    ("FROM x\nMESSAGE tool {}\n", 2, 9, "unknown message role 'tool'", None),
    ("FROM x\nMESSAGE usr hi\n", 2, 9, "unknown message role 'usr'", "did you mean 'user'?"),
    # instructions ingot refuses by name
    ("FROM x\nDRAFT ./assistant\n", 2, 1, "DRAFT is not supported by ingot (yet)", "remove the DRAFT line"),
    ("FROM x\nrenderer qwen3\n", 2, 1, "RENDERER is not supported by ingot (yet)", "remove the RENDERER line"),
    ("FROM x\nPARSER qwen3\n", 2, 1, "PARSER is not supported by ingot (yet)", "remove the PARSER line"),
    # text that is not UTF-8 / not text
    (b"FROM x\nSYSTEM \xff\n", 2, 8, "not valid UTF-8", "UTF-8"),
    ("FROM x\nSYSTEM a\x00b\n", 2, 9, "NUL character", None),
]


@pytest.mark.parametrize(("text", "line", "column", "message", "hint"), CASES,
                         ids=[f"{n}" for n in range(len(CASES))])
def test_error_position_message_and_hint(text: str | bytes, line: int, column: int, message: str,
                                         hint: str | None) -> None:
    with pytest.raises(ModelfileError) as caught:
        parse(text, filename="Modelfile")
    error = caught.value
    assert (error.filename, error.line, error.column) == ("Modelfile", line, column), str(error)
    assert message in error.message
    if hint is not None:
        assert error.hint is not None and hint in error.hint, error.hint
    assert isinstance(error, ValueError)


def test_str_shows_place_line_caret_and_hint() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\nPARAMETER top_p 1.5\n", filename="models/Modelfile")
    assert str(caught.value) == (
        "models/Modelfile:2:17: parameter 'top_p' must be between 0.0 and 1.0, got 1.5\n"
        "    PARAMETER top_p 1.5\n"
        "                    ^\n"
        "hint: " + caught.value.hint  # type: ignore[operator]
    )


def test_caret_follows_tabs_and_wide_characters() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\n\tPARAMETER 你好\n")
    lines = str(caught.value).splitlines()
    assert caught.value.column == 14
    assert lines[1] == "    \tPARAMETER 你好"
    assert lines[2] == "    \t" + " " * 10 + " " * 4 + "^"


def test_long_lines_are_shown_as_a_window_around_the_column() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\nPARAMETER " + "a" * 1000 + "\n")
    assert caught.value.column == 1011
    shown, caret = str(caught.value).splitlines()[1:3]
    assert len(shown) < 200
    assert shown.startswith("    …")
    assert caret.index("^") == len(shown)


def test_control_characters_do_not_reach_the_terminal() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\nBOGUS \x1b[31mred\n")
    assert "\x1b" not in str(caught.value)


def test_missing_from_in_an_empty_file_still_prints() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("", filename="Modelfile")
    assert str(caught.value).startswith("Modelfile:1:1: missing FROM")


def test_errors_survive_pickling() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\nFORM y\n", filename="Modelfile")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value)
    assert (copy.line, copy.column, copy.hint) == (2, 1, caught.value.hint)
