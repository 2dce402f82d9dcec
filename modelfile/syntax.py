"""Modelfile text -> a list of positioned `Command` records (no meaning checked yet).

Decoding follows Ollama: bytes are UTF-8, or UTF-16 (LE or BE) when they
start with its byte-order mark; a UTF-8 BOM is dropped. CRLF and lone CR
line ends become LF, also inside quoted values. NUL characters are refused
(they mean a UTF-16 file without its BOM far more often than intent).

The grammar is `modelfile.lark`. Every Lark exception is turned into one
`ModelfileError` with file, line, column, the offending line and a hint.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from .errors import ModelfileError, shown
from .model import Diagnostic

INSTRUCTIONS: tuple[str, ...] = (
    "FROM", "PARAMETER", "TEMPLATE", "SYSTEM", "ADAPTER", "LICENSE", "MESSAGE", "REQUIRES",
)
"""The instructions ingot accepts, in the order the docs list them."""

UNSUPPORTED_INSTRUCTIONS: tuple[str, ...] = ("DRAFT", "RENDERER", "PARSER")
"""Newer Ollama instructions the grammar recognises so it can refuse them by name."""

# Names users write that are not instructions but mean one.
_FORMER_NAMES = {"PROMPT": "TEMPLATE"}

# Instructions whose value is free text: an unquoted one that spills onto the
# next line is the most common Modelfile mistake.
_TEXT_INSTRUCTIONS = ("template", "system", "license", "message")

ValueStyle = Literal["bare", "quoted", "triple"]


@dataclass(frozen=True)
class Word:
    """A PARAMETER name or MESSAGE role as written, with its position."""

    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Value:
    """An instruction's value with its quotes removed; the position is where it starts."""

    text: str
    style: ValueStyle
    line: int
    column: int


@dataclass(frozen=True)
class Command:
    """One instruction: ``instruction`` is lower-case (``"from"``, ``"parameter"``...)."""

    instruction: str
    line: int
    column: int
    end_line: int
    end_column: int
    argument: Word | None
    value: Value | None


@dataclass(frozen=True)
class Comment:
    """A comment line's text (after the #) and its line number."""

    text: str
    line: int


@dataclass(frozen=True)
class Source:
    """Decoded text plus its name: makes positioned errors and warnings."""

    filename: str
    text: str

    def line_text(self, line: int) -> str:
        lines = self.text.split("\n")
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    def error(self, line: int, column: int, message: str, hint: str | None = None) -> ModelfileError:
        return ModelfileError(message, filename=self.filename, line=line, column=column, hint=hint,
                              source_line=self.line_text(line))

    def warning(self, line: int, column: int, message: str) -> Diagnostic:
        return Diagnostic(self.filename, line, column, message)


@dataclass(frozen=True)
class Document:
    """What the grammar found: commands and comments, in file order."""

    source: Source
    commands: tuple[Command, ...]
    comments: tuple[Comment, ...]


def decode(source: str | bytes, filename: str = "<string>") -> Source:
    """Bytes or text -> normalised text (LF line ends, no BOM, ending in a newline)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        text = _decode_bytes(bytes(source), filename)
    elif isinstance(source, str):
        text = source
    else:
        raise TypeError(f"a Modelfile is str or bytes, not {type(source).__name__}")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    nul = text.find("\x00")
    if nul >= 0:
        line, column = _line_column(text, nul)
        raise Source(filename, text).error(
            line, column, "the file contains a NUL character",
            hint="a Modelfile is text: if this is UTF-16, save it with a byte-order mark or as UTF-8")
    return Source(filename, text)


def parse_document(source: str | bytes, *, filename: str = "<string>") -> Document:
    """Read `source` into commands and comments; raise `ModelfileError` on any syntax error."""
    decoded = decode(source, filename)
    try:
        tree = _parser().parse(decoded.text)
    except UnexpectedInput as exc:
        line = exc.line if isinstance(exc.line, int) and exc.line > 0 else 1
        column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
        raise _explain(decoded, line, column) from None
    except LarkError as exc:  # pragma: no cover - the grammar reports all input errors as above
        raise decoded.error(1, 1, f"cannot parse the Modelfile: {exc}") from None
    commands: list[Command] = []
    comments: list[Comment] = []
    for child in tree.children:
        if isinstance(child, Token):
            comments.append(Comment(str(child)[1:], child.line or 0))
        else:
            commands.append(_command(child))
    return Document(decoded, tuple(commands), tuple(comments))


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("modelfile.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=False)


def _decode_bytes(data: bytes, filename: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec, label = "utf-16", "UTF-16"
    else:
        codec, label = "utf-8-sig", "UTF-8"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode(codec, errors="replace").replace("\r\n", "\n")
        before = before.replace("\r", "\n").lstrip("\ufeff")
        line, column = _line_column(before, len(before))
        text = data.decode(codec, errors="replace").replace("\r\n", "\n").replace("\r", "\n")
        bad = data[exc.start: exc.end].hex(" ")
        raise Source(filename, text.lstrip("\ufeff")).error(
            line, column, f"the file is not valid {label} (bytes {bad})",
            hint="save the Modelfile as UTF-8 (or UTF-16 with a byte-order mark)") from None


def _line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _offset(text: str, line: int, column: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return start + column - 1


def _command(tree: Tree[Token]) -> Command:
    tokens = [t for t in tree.children if isinstance(t, Token)]
    keyword = tokens[0]
    argument: Word | None = None
    value: Value | None = None
    rest = tokens[1:]
    if tree.data in ("parameter", "message") and rest:
        argument = Word(str(rest[0]), rest[0].line or 0, rest[0].column or 0)
        rest = rest[1:]
    if rest:
        value = _value(rest[0])
    last = tokens[-1]
    return Command(
        instruction=str(keyword).lower(),
        line=keyword.line or 0,
        column=keyword.column or 0,
        end_line=last.end_line or 0,
        end_column=last.end_column or 0,
        argument=argument,
        value=value,
    )


def _value(token: Token) -> Value:
    text = str(token)
    if token.type == "TRIPLE":
        return Value(text[3:-3], "triple", token.line or 0, token.column or 0)
    if token.type == "QUOTED":
        return Value(text[1:-1], "quoted", token.line or 0, token.column or 0)
    return Value(text, "bare", token.line or 0, token.column or 0)


def _explain(source: Source, line: int, column: int) -> ModelfileError:
    """Turn the place Lark stopped into the error a person can act on."""
    text = source.text
    offset = _offset(text, line, column)
    line_text = source.line_text(line)
    if line_text[: column - 1].strip(" \t"):
        rest = text[offset:]
        if rest.startswith('"""'):
            return source.error(
                line, column, 'unterminated """ value: no closing """ at the end of a line',
                hint='end the value with """ as the last thing on a line; text after the closing '
                     '""" on the same line is not allowed')
        if rest.startswith('"'):
            return source.error(
                line, column, 'unterminated quoted value: no closing " at the end of a line',
                hint='a value that starts with " must end with " as the last thing on a line; '
                     'drop the quotes, or use """...""" for text that contains quotes')
        return source.error(line, column, f"unexpected text {shown(rest.split(chr(10))[0])}")
    return _explain_line_start(source, line, column)


def _explain_line_start(source: Source, line: int, column: int) -> ModelfileError:
    word = re.match(r"[^ \t\n]*", source.line_text(line)[column - 1:]).group(0)  # type: ignore[union-attr]
    valid = ", ".join(INSTRUCTIONS)
    head = re.match(r"[A-Za-z]+", word)
    name = head.group(0).upper() if head else ""
    if name in INSTRUCTIONS + UNSUPPORTED_INSTRUCTIONS and len(head.group(0)) < len(word):  # type: ignore[union-attr]
        return source.error(line, column + len(name), f"expected a space after {name}",
                            hint=f"write '{name} value'")
    spill = _spilled_text_value(source, line)
    if spill is not None and (spill.value is None or spill.value.style == "bare"):
        name = spill.instruction.upper()
        return source.error(
            line, column,
            f"unexpected text {shown(word)}: this line is not an instruction, and the "
            f"{name} value on line {spill.line} ends at the end of its line",
            hint=f'to give {name} several lines, wrap it in triple quotes: {name} """..."""')
    if spill is not None:
        name = spill.instruction.upper()
        return source.error(
            line, column,
            f"unexpected text {shown(word)}: this line is not an instruction, and the quoted "
            f"{name} value from line {spill.line} was closed on line {spill.end_line}",
            hint="a quoted value ends at the first closing quote that ends a line; if this line "
                 "belongs to the value, move that closing quote to its real end")
    upper = word.upper()
    suggestion = _FORMER_NAMES.get(upper)
    if suggestion is None:
        close = difflib.get_close_matches(upper, INSTRUCTIONS, n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    hint = f"did you mean {suggestion}? " if suggestion else ""
    hint += f"valid instructions: {valid}; comments start with #"
    return source.error(line, column, f"unknown instruction {shown(word)}", hint=hint)


def _spilled_text_value(source: Source, line: int) -> Command | None:
    """The text instruction that `line` most likely belongs to, if any."""
    prefix = "\n".join(source.text.split("\n")[: line - 1]) + "\n"
    try:
        tree = _parser().parse(prefix)
    except LarkError:
        return None
    commands = [c for c in tree.children if isinstance(c, Tree)]
    if not commands:
        return None
    last = _command(commands[-1])
    if last.instruction not in _TEXT_INSTRUCTIONS:
        return None
    between = range(last.end_line + 1, line)
    if any(source.line_text(n).strip(" \t") for n in between):
        return None
    return last
