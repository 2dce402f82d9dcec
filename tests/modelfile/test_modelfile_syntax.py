"""The forms a Modelfile may take: case, comments, blank lines, quoting, line ends, encodings.

Many cases mirror ollama/ollama parser/parser_test.go so ingot reads what Ollama reads.
"""

from __future__ import annotations

import pytest

from ingot.modelfile import Message, ModelfileError, parse


def system_of(text: str) -> str | None:
    return parse("FROM base\n" + text).system


# --- instruction names, whitespace, comments ------------------------------------------------


@pytest.mark.parametrize("keyword", ["FROM", "from", "From", "fRoM"])
def test_instruction_names_are_case_insensitive(keyword: str) -> None:
    m = parse(f"{keyword} llama3\nsystem hi\nParameter temperature 0.5\nmessage user hello\n")
    assert m.base == "llama3"
    assert m.system == "hi"
    assert m.parameters == {"temperature": 0.5}
    assert m.messages == (Message("user", "hello"),)


def test_non_ascii_lookalike_letters_do_not_make_an_instruction() -> None:
    # U+017F LATIN SMALL LETTER LONG S case-folds to "s" in Unicode regexes.
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\n\u017fYSTEM hi\n")
    assert (caught.value.line, caught.value.column) == (2, 1)


def test_leading_whitespace_before_an_instruction_is_allowed() -> None:
    m = parse("  FROM test\n\tSYSTEM 你好👋\n")
    assert (m.base, m.system) == ("test", "你好👋")


def test_comments_only_at_line_start_after_optional_whitespace() -> None:
    m = parse("# leading comment\nFROM x\n   # indented comment\n\t# tab comment\nSYSTEM a # not a comment\n")
    assert m.system == "a # not a comment"


def test_a_hash_inside_a_quoted_value_is_text() -> None:
    m = parse('FROM x\nSYSTEM """\n# heading\ntext\n"""\nLICENSE "#1"\n')
    assert m.system == "\n# heading\ntext\n"
    assert m.licenses == ("#1",)


def test_blank_and_whitespace_only_lines_are_ignored() -> None:
    assert parse("\n\n   \nFROM x\n\t\n\nSYSTEM y\n \n").system == "y"


def test_tabs_and_runs_of_blanks_separate_fields() -> None:
    m = parse("FROM\t\tx\nPARAMETER \t top_k \t 7  \nMESSAGE\tuser\t hi there \n")
    assert m.base == "x"
    assert m.parameters == {"top_k": 7}
    assert m.messages == (Message("user", "hi there"),)


def test_file_without_final_newline() -> None:
    assert parse("FROM x\nSYSTEM last line").system == "last line"


def test_empty_and_comment_only_files_miss_from() -> None:
    for text in ("", "\n\n", "# only a comment"):
        with pytest.raises(ModelfileError, match="missing FROM"):
            parse(text)


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # from ollama's TestParseFileFrom
        ('FROM "FOO  BAR  "', "FOO  BAR  "),
        ("FROM     FOOO BAR    ", "FOOO BAR"),
        ("FROM /what/is/the path ", "/what/is/the path"),
        ("FROM llama3:7b-instruct-q4_K_M", "llama3:7b-instruct-q4_K_M"),
        ('FROM "     model 1"', "     model 1"),
        ("FROM ./model.gguf", "./model.gguf"),
        ("FROM ~/models/m.gguf", "~/models/m.gguf"),
    ],
)
def test_from_values(line: str, expected: str) -> None:
    assert parse(line).base == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # from ollama's TestParseFileQuoted
        ('SYSTEM """\nThis is a\nmultiline system.\n"""\n', "\nThis is a\nmultiline system.\n"),
        ('SYSTEM """\nThis is a\nmultiline system."""\n', "\nThis is a\nmultiline system."),
        ('SYSTEM """This is a\nmultiline system."""\n', "This is a\nmultiline system."),
        ('SYSTEM """This is a multiline system."""\n', "This is a multiline system."),
        ('SYSTEM """\nThis is a multiline system with "quotes".\n"""\n',
         '\nThis is a multiline system with "quotes".\n'),
        ('SYSTEM """"""\n', ""),
        ('SYSTEM ""\n', ""),
        ("SYSTEM \"'\"\n", "'"),
        ('SYSTEM """\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""\n', '\'\'"\'""\'""\'"\'\'\'\'\'""\'""\''),
        # blanks around the quotes are not part of the value, blanks inside are
        ('SYSTEM    """  kept  """    \n', "  kept  "),
        ('SYSTEM "  kept  "\t\n', "  kept  "),
        # a single-quoted value may span lines too
        ('SYSTEM "one\ntwo"\n', "one\ntwo"),
        # quotes elsewhere in a bare value are plain characters
        ('SYSTEM say "hi" now\n', 'say "hi" now'),
        ('SYSTEM ends with "quote"\n', 'ends with "quote"'),
        # a closing quote only counts at the end of a line
        ('SYSTEM """a""" b"""\n', 'a""" b'),
        ('SYSTEM "a" b"\n', 'a" b'),
        ('SYSTEM """"quoted" start"""\n', '"quoted" start'),
        ('SYSTEM """end with a quote""""\n', 'end with a quote"'),
        ('SYSTEM ""x"\n', '"x'),
        # no escape sequences
        ('SYSTEM "a\\nb"\n', "a\\nb"),
        # an instruction name inside a quoted value is text
        ('SYSTEM """\nFROM other\nPARAMETER x y\n"""\n', "\nFROM other\nPARAMETER x y\n"),
        # nothing after the instruction: the empty text, as SYSTEM "" is
        ("SYSTEM\n", ""),
        ("SYSTEM   \n", ""),
    ],
)
def test_text_values(text: str, expected: str) -> None:
    assert system_of(text) == expected


def test_template_from_ollama_tests_is_kept_exactly() -> None:
    text = (
        'FROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER temperature 1\n'
        'TEMPLATE """{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n'
        '{{ .System }}<|eot_id|>{{ end }}"""    \n'
    )
    m = parse(text)
    assert m.template == (
        "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}")
    assert m.adapters == ("adapter1",)
    assert m.licenses == ("MIT",)


def test_parameter_line_from_ollama_parameter_then_from() -> None:
    # ollama: "PARAMETER what the \nFROM lemons make lemonade " splits name/value at the first blank
    m = parse("PARAMETER stop the end \nFROM lemons make lemonade ")
    assert m.parameters == {"stop": ("the end",)}
    assert m.base == "lemons make lemonade"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # from ollama's TestParseFileParameters
        ("stop ### User:", "### User:"),
        ("stop ### User: ", "### User:"),
        ('stop "### User:"', "### User:"),
        ('stop "### User: "', "### User: "),
        ('stop """### User:"""', "### User:"),
        ('stop """### User:\n"""', "### User:\n"),
        ("stop <|endoftext|>", "<|endoftext|>"),
        ("stop <|eot_id|>", "<|eot_id|>"),
        ("stop </s>", "</s>"),
    ],
)
def test_stop_values(line: str, expected: str) -> None:
    assert parse(f"FROM foo\nPARAMETER {line}\n").parameters == {"stop": (expected,)}


def test_message_values_from_ollama() -> None:
    m = parse(
        "FROM foo\nMESSAGE system You are a file parser. Always parse things.\n"
        "MESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n"
        'MESSAGE system """\nYou are a multiline file parser. Always parse things.\n"""\n'
    )
    assert m.messages == (
        Message("system", "You are a file parser. Always parse things."),
        Message("user", "Hey there!"),
        Message("assistant", "Hello, I want to parse all the things!"),
        Message("system", "\nYou are a multiline file parser. Always parse things.\n"),
    )


# --- line ends and encodings ----------------------------------------------------------------

SAMPLE = 'FROM bob\nPARAMETER num_ctx 4096\nSYSTEM """You are\na utf16 file 你好👋."""\n'


def expected_sample() -> tuple[str, dict[str, object], str | None]:
    return "bob", {"num_ctx": 4096}, "You are\na utf16 file 你好👋."


def summary(text: str | bytes) -> tuple[str, dict[str, object], str | None]:
    m = parse(text)
    return m.base, dict(m.parameters), m.system


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE,
        SAMPLE.encode("utf-8"),
        "\ufeff" + SAMPLE,
        b"\xef\xbb\xbf" + SAMPLE.encode("utf-8"),
        b"\xff\xfe" + SAMPLE.encode("utf-16-le"),
        b"\xfe\xff" + SAMPLE.encode("utf-16-be"),
        SAMPLE.replace("\n", "\r\n"),
        SAMPLE.replace("\n", "\r\n").encode("utf-8"),
        b"\xff\xfe" + SAMPLE.replace("\n", "\r\n").encode("utf-16-le"),
        SAMPLE.replace("\n", "\r"),
        bytearray(SAMPLE.encode("utf-8")),
    ],
    ids=["str", "utf8", "str-bom", "utf8-bom", "utf16le", "utf16be", "crlf", "crlf-bytes",
         "utf16le-crlf", "lone-cr", "bytearray"],
)
def test_encodings_and_line_ends_read_the_same(data: str | bytes) -> None:
    assert summary(data) == expected_sample()


def test_crlf_inside_a_triple_quoted_value_becomes_lf() -> None:
    assert system_of('SYSTEM """a\r\nb\r\n"""\r\n') == "a\nb\n"


def test_error_positions_in_a_crlf_file_count_lines_once() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\r\n\r\nBOGUS y\r\n")
    assert (caught.value.line, caught.value.column) == (3, 1)
    assert caught.value.source_line == "BOGUS y"


def test_invalid_utf8_is_reported_at_its_position() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse(b"FROM x\nSYSTEM caf\xe9 au lait\n", filename="Modelfile")
    error = caught.value
    assert (error.filename, error.line, error.column) == ("Modelfile", 2, 11)
    assert "not valid UTF-8" in error.message
    assert "UTF-8" in (error.hint or "")


def test_truncated_utf16_is_an_error() -> None:
    with pytest.raises(ModelfileError, match="not valid UTF-16"):
        parse(b"\xff\xfe" + "FROM x\n".encode("utf-16-le") + b"\x00")


def test_utf16_without_bom_is_explained() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse("FROM x\n".encode("utf-16-le"))
    assert (caught.value.line, caught.value.column) == (1, 2)
    assert "NUL" in caught.value.message
    assert "byte-order mark" in (caught.value.hint or "")


def test_parse_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        parse(42)  # type: ignore[arg-type]
