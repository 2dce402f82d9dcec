"""The canonical form `format_modelfile` writes, its quoting, and what it refuses."""

from __future__ import annotations

import pytest

from ingot.modelfile import FormatError, Message, Modelfile, format_modelfile, parse
from ingot.modelfile.formatter import quote_value


def test_canonical_layout_and_order() -> None:
    source = (
        "# a comment that the canonical form drops\n"
        "requires v0.14.0\n"
        "license MIT\n"
        "message user hi\n"
        "system be brief\n"
        'template """{{ .Prompt }}\n"""\n'
        "parameter Top_K 5\n"
        "parameter stop b\n"
        "parameter temperature 1\n"
        "parameter stop a\n"
        "adapter ./lora.gguf\n"
        "from ./model.gguf\n"
        "message assistant hello\n"
        "license Apache-2.0\n"
    )
    assert format_modelfile(parse(source)) == (
        "FROM ./model.gguf\n"
        "ADAPTER ./lora.gguf\n"
        "\n"
        "PARAMETER stop b\n"
        "PARAMETER stop a\n"
        "PARAMETER temperature 1.0\n"
        "PARAMETER top_k 5\n"
        "\n"
        'TEMPLATE """{{ .Prompt }}\n"""\n'
        "\n"
        "SYSTEM be brief\n"
        "\n"
        "MESSAGE user hi\n"
        "MESSAGE assistant hello\n"
        "\n"
        "LICENSE MIT\n"
        "LICENSE Apache-2.0\n"
        "\n"
        "REQUIRES 0.14.0\n"
    )


def test_minimal_file() -> None:
    assert format_modelfile(Modelfile(base="llama3.2")) == "FROM llama3.2\n"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain text", "plain text"),
        ('say "hi" now', 'say "hi" now'),
        ("#hash", "#hash"),
        ("", '""'),
        (" leading", '" leading"'),
        ("trailing\t", '"trailing\t"'),
        ('"starts with a quote', '""""starts with a quote"""'),
        (' "both" ', '""" "both" """'),
        ("two\nlines", '"""two\nlines"""'),
        ("\n", '"""\n"""'),
        ('ends with """', 'ends with """'),
        ('"""', '"' * 9),  # bare would be read as an unterminated """; triple reads back
        ('a"""b\nc', '"""a"""b\nc"""'),
        ('x"""  ', '"""x"""  """'),
        ('line"\nnext', '"""line"\nnext"""'),
    ],
)
def test_quoting_is_the_lightest_that_reads_back(value: str, written: str) -> None:
    assert quote_value(value) == written
    assert parse(f"FROM x\nSYSTEM {written}\n").system == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a\rb", "carriage return"),
        ("a\x00b", "NUL"),
        ('a"""\nb', '""" followed by the end of a line'),
        ('a"""  \t\nb', '""" followed by the end of a line'),
    ],
)
def test_values_a_modelfile_cannot_hold_raise_format_error(value: str, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        format_modelfile(Modelfile(base="x", system=value))


@pytest.mark.parametrize(
    ("modelfile", "words"),
    [
        (Modelfile(base=""), "FROM needs a non-empty value"),
        (Modelfile(base=" \n"), "FROM needs"),
        (Modelfile(base="x", adapters=("",)), "ADAPTER needs"),
        (Modelfile(base="x", parameters={"temprature": 1.0}), "unknown parameter 'temprature'"),
        (Modelfile(base="x", parameters={"mirostat": 1}), "deprecated"),
        (Modelfile(base="x", parameters={"top_p": 2.0}), "between 0.0 and 1.0"),
        (Modelfile(base="x", parameters={"num_ctx": "big"}), "whole number"),
        (Modelfile(base="x", parameters={"stop": ("",)}), "must not be empty"),
        (Modelfile(base="x", parameters={"Top_K": 3}), "lower-case"),
        (Modelfile(base="x", messages=(Message("tool", "{}"),)), "message role"),
        (Modelfile(base="x", requires="v1.0.0"), "no leading v"),
        (Modelfile(base="x", requires="soon"), "REQUIRES must be a version"),
        (Modelfile(base="x", system=5), "must be a string"),  # type: ignore[arg-type]
    ],
)
def test_objects_parse_would_never_build_raise_format_error(modelfile: Modelfile, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        format_modelfile(modelfile)
    assert issubclass(FormatError, ValueError)


def test_typed_values_are_written_in_canonical_spelling() -> None:
    m = Modelfile(base="x", parameters={"num_ctx": 4096.0, "top_p": 1, "use_mmap": True, "stop": ["a"]})
    text = format_modelfile(m)
    assert "PARAMETER num_ctx 4096\n" in text
    assert "PARAMETER top_p 1.0\n" in text
    assert "PARAMETER use_mmap true\n" in text
    assert parse(text) == m


def test_formatting_is_idempotent_on_a_messy_file() -> None:
    messy = 'from  x \r\n\r\nSYSTEM   "  padded  "  \r\nparameter STOP "a b"\r\nMESSAGE user """multi\r\nline"""\r\n'
    once = format_modelfile(parse(messy))
    assert format_modelfile(parse(once)) == once
    assert parse(once) == parse(messy)
