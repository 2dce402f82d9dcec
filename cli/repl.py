"""`ingot run`'s conversation: a chat session with the daemon, and the interactive prompt around it.

`ChatSession` holds the model, the turns so far, the system message and the
parameters set with /set; `reply()` streams one answer to the terminal, and
Ctrl-C while it streams cancels that answer only (the daemon frees the slot
at once), keeping the session.

`Repl` reads lines (with readline editing when available):

    >>> text                     one message
    >>> \"\"\"                      a message over several lines, until a line ending in \"\"\"
    /set parameter NAME VALUE    a Modelfile parameter for the next replies (stop takes several)
    /set system TEXT             the system message (\"\"\"...\"\"\" for several lines)
    /show [info|modelfile|parameters|system|template|license]
    /clear                       forget the conversation (the system message stays)
    /save NAME                   save model + parameters + system + conversation as a new model
    /load NAME                   switch to another model (a new conversation, no /set values)
    /bye                         leave (so does Ctrl-D)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import grpc

from ingot.cli.client import Client, ClientError, rpc_error
from ingot.modelfile import Message, Modelfile, ParameterError, coerce_parameter, format_modelfile
from ingot.modelfile.model import ParameterValue
from ingot.proto.ingot.v1 import common_pb2, inference_pb2, models_pb2
from ingot.registry.reference import Reference

__all__ = ["ChatSession", "Repl", "ReplyStats", "read_message"]

PROMPT = ">>> "
CONTINUATION = "... "
TRIPLE = '"""'

HELP = """\
Available commands:
  /set parameter NAME VALUE   set a parameter (e.g. /set parameter temperature 0.2)
  /set system TEXT            set the system message
  /show [WHAT]                show info, modelfile, parameters, system, template or license
  /clear                      clear the conversation
  /save NAME                  save this session as a new model
  /load NAME                  load another model
  /bye                        exit
  /?, /help                   this help

Use \"\"\" to begin and end a message of several lines.
Ctrl-C stops a reply; Ctrl-D or /bye exits."""


@dataclass(frozen=True)
class ReplyStats:
    """What `--verbose` prints after a reply."""

    prompt_tokens: int
    completion_tokens: int
    truncated_tokens: int
    time_to_first_token_ns: int
    eval_ns: int
    total_ns: int
    load_ns: int

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / (self.eval_ns / 1e9) if self.eval_ns > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"total duration:       {self.total_ns / 1e6:.1f} ms",
            f"load duration:        {self.load_ns / 1e6:.1f} ms",
            f"time to first token:  {self.time_to_first_token_ns / 1e6:.1f} ms",
            f"prompt eval count:    {self.prompt_tokens} token(s)",
            f"eval count:           {self.completion_tokens} token(s)",
            f"eval rate:            {self.tokens_per_second:.2f} tokens/s",
        ]
        if self.truncated_tokens:
            out.append(f"truncated:            {self.truncated_tokens} oldest prompt token(s) dropped to fit")
        return out


@dataclass
class ChatSession:
    client: Client
    model: str
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    format: str = ""
    keep_alive: str | None = None
    verbose: bool = False
    system: str | None = None
    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    messages: list[common_pb2.ChatMessage] = field(default_factory=list)

    def _request(self) -> inference_pb2.ChatRequest:
        # daemon.options reaches the engine types, which load llama.cpp and numpy: only
        # pay for that once a message is sent, not when `ingot run` starts.
        from ingot.daemon.options import options_to_proto

        turns = list(self.messages)
        if self.system is not None:
            turns.insert(0, common_pb2.ChatMessage(role="system", content=self.system))
        request = inference_pb2.ChatRequest(
            model=self.model, messages=turns, options=options_to_proto(self.parameters), format=self.format
        )
        if self.keep_alive is not None:
            request.keep_alive = self.keep_alive
        return request

    def reply(self, text: str) -> ReplyStats | None:
        """Send `text`, stream the answer; None when it was cancelled with Ctrl-C."""
        self.messages.append(common_pb2.ChatMessage(role="user", content=text))
        call = self.client.inference.Chat(self._request())
        pieces: list[str] = []
        final: inference_pb2.ChatResponse | None = None
        try:
            for chunk in call:
                if chunk.message.content:
                    pieces.append(chunk.message.content)
                    self.out.write(chunk.message.content)
                    self.out.flush()
                if chunk.done:
                    final = chunk
        except KeyboardInterrupt:
            call.cancel()
            self.messages.pop()
            self.out.write("\n")
            self.out.flush()
            return None
        except grpc.RpcError as exc:
            self.messages.pop()
            if pieces:
                self.out.write("\n")
            raise rpc_error(exc) from None
        self.out.write("\n")
        self.out.flush()
        self.messages.append(common_pb2.ChatMessage(role="assistant", content="".join(pieces)))
        metrics = final.metrics if final is not None else common_pb2.Metrics()
        stats = ReplyStats(
            prompt_tokens=metrics.prompt_eval_count,
            completion_tokens=metrics.eval_count,
            truncated_tokens=metrics.truncated_tokens,
            time_to_first_token_ns=metrics.time_to_first_token_ns,
            eval_ns=metrics.eval_duration_ns,
            total_ns=metrics.total_duration_ns,
            load_ns=metrics.load_duration_ns,
        )
        if self.verbose:
            self.err.write("\n".join(stats.lines()) + "\n")
            self.err.flush()
        return stats

    def set_parameter(self, name: str, values: list[str]) -> ParameterValue:
        """Validate and keep a parameter; raises ParameterError naming it."""
        if not values:
            raise ParameterError(name, f"/set parameter {name} needs a value", kind="type")
        value = coerce_parameter(name, values if name.lower() == "stop" else " ".join(values))
        self.parameters[name.lower()] = value
        return value

    def show(self) -> models_pb2.ShowResponse:
        try:
            return self.client.models.Show(models_pb2.ShowRequest(model=self.model), timeout=30)
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None

    def save(self, name: str) -> None:
        """Create `name` from this model plus the session's parameters, system and conversation."""
        target = Reference.parse(name)
        base = Reference.parse(self.model).without_digest().tagged
        modelfile = Modelfile(
            base=base,
            parameters=dict(self.parameters),
            system=self.system,
            messages=tuple(Message(m.role, m.content) for m in self.messages),
        )
        request = models_pb2.CreateRequest(model=str(target), modelfile=format_modelfile(modelfile))
        try:
            for _ in self.client.models.Create(request, timeout=600):
                pass
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None

    def load(self, name: str) -> None:
        """Switch to `name` (which must exist), starting a new conversation."""
        previous = self.model
        self.model = name
        try:
            self.show()
        except ClientError:
            self.model = previous
            raise
        self.messages.clear()
        self.system = None
        self.parameters.clear()
        self.preload()

    def preload(self) -> None:
        """Have the daemon load the model now, so the first reply does not wait for it."""
        request = inference_pb2.GenerateRequest(model=self.model)
        if self.keep_alive is not None:
            request.keep_alive = self.keep_alive
        try:
            for _ in self.client.inference.Generate(request, timeout=600):
                pass
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None


def read_message(read_line: Callable[[str], str], first: str) -> str:
    """`first`, or when it opens a \"\"\" block, every line up to the one that closes it (markers removed).

    Raises EOFError when input ends inside a block.
    """
    stripped = first.lstrip()
    head, marker, rest = first.partition(TRIPLE)
    if not marker or (head.strip() and not head.strip().startswith("/")):
        return first
    if TRIPLE in rest:
        inner, _, _ = rest.partition(TRIPLE)
        return head + inner
    lines = [rest] if rest else []
    while True:
        line = read_line(CONTINUATION)
        if TRIPLE in line:
            before, _, _ = line.partition(TRIPLE)
            lines.append(before)
            break
        lines.append(line)
    body = "\n".join(lines)
    return head + body if stripped.startswith("/") else body


class Repl:
    """The interactive loop; returns the exit status from `run()`."""

    def __init__(self, session: ChatSession, *, read_line: Callable[[str], str] = input) -> None:
        self.session = session
        self._read_line = read_line

    def run(self) -> int:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        out = self.session.out
        while True:
            try:
                line = self._read_line(PROMPT)
                text = read_message(self._read_line, line)
            except EOFError:
                out.write("\n")
                return 0
            except KeyboardInterrupt:
                out.write("\nUse Ctrl + d or /bye to exit.\n")
                continue
            if not text.strip():
                continue
            if text.lstrip().startswith("/"):
                if self._command(text.strip()):
                    return 0
                continue
            try:
                self.session.reply(text)
            except ClientError as exc:
                self.session.err.write(f"error: {exc}\n")

    def _command(self, text: str) -> bool:
        """Run one /command; True means leave."""
        out, err = self.session.out, self.session.err
        words = text.split()
        command = words[0].lower()
        try:
            if command in ("/bye", "/exit"):
                return True
            if command in ("/?", "/help"):
                out.write(HELP + "\n")
            elif command == "/clear":
                self.session.messages.clear()
                out.write("Cleared session context\n")
            elif command == "/set":
                self._set(text, words)
            elif command == "/show":
                self._show(words[1].lower() if len(words) > 1 else "info")
            elif command == "/save":
                if len(words) != 2:
                    err.write("Usage: /save NAME\n")
                else:
                    self.session.save(words[1])
                    out.write(f"Created new model '{words[1]}'\n")
            elif command == "/load":
                if len(words) != 2:
                    err.write("Usage: /load NAME\n")
                else:
                    out.write(f"Loading model '{words[1]}'\n")
                    self.session.load(words[1])
            else:
                err.write(f"Unknown command '{words[0]}'. Type /? for help\n")
        except (ClientError, ParameterError, ValueError) as exc:
            err.write(f"error: {exc}\n")
        except KeyboardInterrupt:
            out.write("\n")
        return False

    def _set(self, text: str, words: list[str]) -> None:
        out, err = self.session.out, self.session.err
        if len(words) >= 2 and words[1].lower() == "system":
            system = text.split(None, 2)[2] if len(words) > 2 else ""
            system = system.strip()
            if len(system) >= 2 and system[0] == system[-1] == '"':
                system = system[1:-1]
            self.session.system = system or None
            out.write("Set system message.\n")
        elif len(words) >= 3 and words[1].lower() == "parameter":
            value = self.session.set_parameter(words[2], words[3:])
            shown = ", ".join(value) if isinstance(value, tuple) else value
            out.write(f"Set parameter '{words[2].lower()}' to '{shown}'\n")
        else:
            err.write("Usage: /set parameter NAME VALUE | /set system TEXT\n")

    def _show(self, what: str) -> None:
        out = self.session.out
        info = self.session.show()
        if what == "info":
            details = info.details
            rows = [
                ("model", info.name),
                ("architecture", details.family),
                ("parameters", details.parameter_size),
                ("context length", details.context_length or ""),
                ("quantization", details.quantization_level),
            ]
            out.write("".join(f"  {k:<16}{v}\n" for k, v in rows if v != ""))
            self._write_parameters(_fields(info.parameters))
        elif what == "modelfile":
            out.write(info.modelfile.rstrip("\n") + "\n")
        elif what == "parameters":
            self._write_parameters(_fields(info.parameters))
        elif what == "system":
            system = self.session.system if self.session.system is not None else info.system
            out.write((system or "No system message was specified for this model.") + "\n")
        elif what == "template":
            out.write((info.template or "No prompt template was specified for this model.") + "\n")
        elif what == "license":
            out.write(("\n\n".join(info.license) or "No license was specified for this model.") + "\n")
        else:
            self.session.err.write("Usage: /show [info|modelfile|parameters|system|template|license]\n")

    def _write_parameters(self, model_parameters: dict[str, Any]) -> None:
        out = self.session.out
        merged = {**model_parameters, **self.session.parameters}
        if not merged:
            out.write("No parameters were specified for this model.\n")
            return
        out.write("Parameters:\n")
        for name, value in sorted(merged.items()):
            values = value if isinstance(value, (tuple, list)) else (value,)
            for item in values:
                out.write(f"  {name:<16}{item}\n")


def _fields(options: common_pb2.Options) -> dict[str, Any]:
    return {f.name: (tuple(v) if f.name == "stop" else v) for f, v in options.ListFields()}
