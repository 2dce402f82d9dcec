"""Property tests: format/parse round-trips over generated objects and texts, and a fuzz test.

For every accepted Modelfile m: ``parse(format(m)) == m`` and
``format(parse(format(m))) == format(m)``. For any input at all: `parse`
returns a Modelfile or raises ModelfileError, never anything else.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingot.modelfile import (
    DEPRECATED_PARAMETERS,
    MESSAGE_ROLES,
    PARAMETERS,
    Message,
    Modelfile,
    ModelfileError,
    format_modelfile,
    parse,
)
from ingot.modelfile.parameters import ParameterSpec, render_parameter

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that matter to the syntax, mixed with arbitrary ones (no surrogates).
TRICKY = ['"', '"', '"', " ", "\t", "\n", "\n", "#", "F", "R", "O", "M", "s", "{", "}", "é", "你",
          "👋", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\ufeff", "\\"]
CHARS = st.one_of(st.sampled_from(TRICKY), st.characters(blacklist_categories=("Cs",)))
UNREPRESENTABLE = re.compile(r'\r|\x00|"""[ \t]*\n')


def representable(text: str) -> bool:
    """What Modelfile syntax can hold: see formatter.py."""
    return UNREPRESENTABLE.search(text) is None


TEXT = st.text(alphabet=CHARS, max_size=30).filter(representable)
NON_BLANK = TEXT.filter(lambda t: t.strip(" \t\n") != "")
STOP = TEXT.filter(lambda t: t != "")


def parameter_value(spec: ParameterSpec) -> st.SearchStrategy[object]:
    if spec.type == "int":
        return st.integers(min_value=int(spec.minimum), max_value=int(spec.maximum))  # type: ignore[arg-type]
    if spec.type == "float":
        return st.floats(min_value=spec.minimum, max_value=spec.maximum, allow_nan=False,
                         allow_infinity=False)
    if spec.type == "bool":
        return st.booleans()
    return st.lists(STOP, min_size=1, max_size=3).map(tuple)


PARAMETER_DICTS = st.fixed_dictionaries(
    {}, optional={name: parameter_value(spec) for name, spec in PARAMETERS.items()})

NUMBER = st.integers(min_value=0, max_value=300).map(str)
VERSIONS = st.one_of(
    NUMBER,
    st.builds(lambda a, b: f"{a}.{b}", NUMBER, NUMBER),
    st.builds(lambda a, b, c, pre: f"{a}.{b}.{c}{pre}", NUMBER, NUMBER, NUMBER,
              st.sampled_from(["", "-rc1", "-alpha.2", "+build.7", "-rc.1+sha.5"])),
)

MODELFILES = st.builds(
    Modelfile,
    base=NON_BLANK,
    parameters=PARAMETER_DICTS,
    template=st.none() | TEXT,
    system=st.none() | TEXT,
    adapters=st.lists(NON_BLANK, max_size=2).map(tuple),
    licenses=st.lists(TEXT, max_size=2).map(tuple),
    messages=st.lists(st.builds(Message, st.sampled_from(MESSAGE_ROLES), TEXT), max_size=3).map(tuple),
    requires=st.none() | VERSIONS,
)


@SETTINGS
@given(MODELFILES)
def test_generated_modelfiles_round_trip(m: Modelfile) -> None:
    text = format_modelfile(m)
    again = parse(text)
    assert again == m
    assert format_modelfile(again) == text
    assert again.warnings == ()


# --- raw texts, written the many ways people write Modelfiles ---------------------------------

BLANK = st.sampled_from(["", " ", "\t", "  \t "])
SEP = st.sampled_from([" ", "\t", "   ", " \t"])


def cased(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word.upper(), word.lower(), word.capitalize()])


@st.composite
def written_value(draw: st.DrawFn, value: str | None = None) -> str:
    """A value as a person might write it: bare, "...", or \"\"\"...\"\"\" with stray blanks."""
    text = draw(TEXT) if value is None else value
    style = draw(st.sampled_from(["bare", "quoted", "triple"]))
    if style == "bare":
        text = text.replace("\n", " ")
        return text
    if style == "quoted":
        return f'"{text}"' + draw(BLANK)
    return f'"""{text}"""' + draw(BLANK)


@st.composite
def instruction_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["parameter", "parameter", "template", "system", "adapter",
                                 "license", "message", "requires", "comment", "blank"]))
    indent = draw(BLANK)
    if kind == "blank":
        return indent
    if kind == "comment":
        return indent + "#" + draw(TEXT).replace("\n", " ")
    head = indent + draw(cased(kind)) + draw(SEP)
    if kind == "parameter":
        name = draw(st.sampled_from(sorted(PARAMETERS) + sorted(DEPRECATED_PARAMETERS)[:3]))
        spec = PARAMETERS.get(name)
        raw = draw(parameter_value(spec)) if spec else 1
        item = raw[0] if isinstance(raw, tuple) else render_parameter(raw)  # type: ignore[arg-type]
        return head + draw(cased(name)) + draw(SEP) + draw(written_value(item))
    if kind == "message":
        return head + draw(cased(draw(st.sampled_from(MESSAGE_ROLES)))) + draw(SEP) + draw(written_value())
    if kind == "requires":
        return head + draw(VERSIONS)
    return head + draw(written_value())


@st.composite
def modelfile_texts(draw: st.DrawFn) -> str | bytes:
    lines = draw(st.lists(instruction_line(), max_size=8))
    base = draw(st.sampled_from(["llama3.2", "./model.gguf", '"/path with spaces/m.gguf"',
                                 "~/m.gguf", "hf.co/org/model:Q4_K_M"]))
    lines.insert(draw(st.integers(0, len(lines))), draw(cased("from")) + draw(SEP) + base)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    encoding = draw(st.sampled_from(["str", "utf-8", "utf-8-sig", "utf-16"]))
    return text if encoding == "str" else text.encode(encoding)


@SETTINGS
@given(modelfile_texts())
def test_written_texts_round_trip_through_the_canonical_form(source: str | bytes) -> None:
    try:
        m = parse(source)
    except ModelfileError:
        return  # e.g. a stray quote made a value unterminated: covered by the fuzz test below
    canonical = format_modelfile(m)
    assert parse(canonical) == m
    assert format_modelfile(parse(canonical)) == canonical


def test_written_texts_are_mostly_accepted() -> None:
    # Guards the generator above: a strategy whose texts were always rejected
    # would make the round-trip property vacuous.
    accepted = 0

    @settings(max_examples=100, deadline=None, database=None)
    @given(modelfile_texts())
    def count(source: str | bytes) -> None:
        nonlocal accepted
        try:
            parse(source)
            accepted += 1
        except ModelfileError:
            pass

    count()
    assert accepted >= 30


# --- fuzz: nothing but a Modelfile or a ModelfileError -----------------------------------------

KEYWORD_SOUP = st.lists(
    st.one_of(
        st.sampled_from(["FROM ", "from", "PARAMETER ", "SYSTEM ", "TEMPLATE ", "MESSAGE ", "user ",
                         "stop ", "num_ctx ", "DRAFT ", '"""', '"', "#", "\n", "\r\n", "\r", " ",
                         "\t", "x", "1", "\x00", "\ufeff", "é"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=30,
).map("".join)


def check_total(source: str | bytes) -> None:
    try:
        m = parse(source, filename="fuzz")
    except ModelfileError as error:
        assert error.filename == "fuzz"
        assert error.line >= 1 and error.column >= 1
        assert str(error).startswith(f"fuzz:{error.line}:{error.column}: ")
        return
    assert isinstance(m, Modelfile)
    canonical = format_modelfile(m)
    assert parse(canonical) == m


@settings(max_examples=200, deadline=None)
@given(st.one_of(KEYWORD_SOUP, st.text(max_size=60)))
def test_fuzz_text_gives_a_modelfile_or_a_modelfile_error(source: str) -> None:
    check_total(source)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.binary(max_size=60),
                 st.builds(lambda bom, t: bom + t.encode("utf-8", "surrogatepass"),
                           st.sampled_from([b"", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"]),
                           KEYWORD_SOUP)))
def test_fuzz_bytes_gives_a_modelfile_or_a_modelfile_error(source: bytes) -> None:
    check_total(source)
