"""`ingot prompt`: print exactly the text a model would receive, without running it.

A template can be debugged on its own (``--template FILE``) or as packaged
(``NAME``: the package's TEMPLATE, SYSTEM and MESSAGE lines, or the GGUF's
chat template when it has no TEMPLATE). The conversation comes from a JSON
file (``--messages``), a ``--prompt``, or both.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingot.cli.output import print_json, user_errors

# The template engine (lark, jinja2) is imported where it is used, so that
# building the parser for `ingot --help` does not load it.
if TYPE_CHECKING:
    from ingot.modelfile.template import ChatMessage, Template

_MESSAGES_SHAPE = ('a JSON list of {"role": ..., "content": ...} objects, or an object '
                   '{"messages": [...], "tools": [...]}')


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prompt",
        help="print the exact prompt text a model would receive (debug a template)",
        description=(
            "Render a conversation through a prompt template and print the result byte for byte, "
            "with no newline added: what the model would be given, without loading it. Use a "
            "local package's template and defaults (NAME), or a template file (--template; Go "
            "text/template as in Ollama, or Jinja). With only --prompt the text is rendered the "
            "way /generate does; with --messages it is a chat, and --prompt adds a last user turn."
        ),
        epilog="Example: ingot prompt --template chat.gotmpl --messages chat.json --system 'Be brief.'",
    )
    parser.add_argument("model", nargs="?", metavar="NAME",
                        help="a model in the local store (its TEMPLATE, SYSTEM and MESSAGE lines)")
    parser.add_argument("--template", metavar="FILE", type=Path,
                        help="a template file; overrides the model's template")
    parser.add_argument("--messages", metavar="FILE.json", type=Path,
                        help=f"the conversation: {_MESSAGES_SHAPE}")
    parser.add_argument("--system", metavar="TEXT",
                        help="a system prompt for this request (replaces the model's SYSTEM)")
    parser.add_argument("--prompt", metavar="TEXT", help="a user message (the last turn)")
    parser.add_argument("--think", action=argparse.BooleanOptionalAction, default=None,
                        help="set the request's thinking switch (.Think / enable_thinking)")
    parser.add_argument("--json", action="store_true",
                        help="print {prompt, dialect, template} as JSON instead of the raw text")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class _ModelDefaults:
    """What a packaged model contributes to a prompt."""

    template: Template | None
    gguf_chat_template: str | None
    system: str | None
    messages: tuple[Any, ...]
    weights: Path | None


@dataclass(frozen=True)
class _Conversation:
    messages: tuple[ChatMessage, ...] | None
    tools: tuple[Any, ...] | None


@user_errors("ingot.modelfile.template:InputError")
def run(args: argparse.Namespace) -> int:
    from ingot.daemon.config import load_template_budget
    from ingot.modelfile.template import ChatMessage, InputError, render_generate, render_prompt
    from ingot.registry.home import IngotHome

    if args.model is None and args.template is None:
        raise InputError("give a model NAME or --template FILE")
    conversation = _read_conversation(args.messages) if args.messages else _Conversation(None, None)
    if conversation.messages is None and args.prompt is None:
        raise InputError("nothing to render: give --messages FILE.json and/or --prompt TEXT")
    defaults = _model_defaults(args.model) if args.model else _ModelDefaults(None, None, None, (), None)
    template = _read_template(args.template) if args.template else defaults.template
    gguf_chat_template = defaults.gguf_chat_template if template is None else None
    bos = eos = ""
    jinja = template.dialect == "jinja" if template is not None else bool(gguf_chat_template)
    if jinja and defaults.weights is not None:
        bos, eos = _special_tokens(defaults.weights)
    common: dict[str, Any] = dict(default_system=defaults.system,
                                  modelfile_messages=defaults.messages,
                                  gguf_chat_template=gguf_chat_template,
                                  bos_token=bos, eos_token=eos, think=args.think,
                                  # the daemon's budget (config.yaml templates:), so a runaway stops here too
                                  budget=load_template_budget(IngotHome.from_env()))
    if conversation.messages is None:
        text = render_generate(template, args.prompt, args.system, **common)
    else:
        messages = list(conversation.messages)
        if args.prompt is not None:
            messages.append(ChatMessage(role="user", content=args.prompt))
        text = render_prompt(template, messages=messages, system=args.system,
                             tools=conversation.tools, **common)
    if args.json:
        if template is not None:
            source = template.name
        else:
            source = "tokenizer.chat_template" if gguf_chat_template else "default"
        print_json({"prompt": text, "dialect": "jinja" if jinja else "go", "template": source})
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()
    return 0


def _read_template(path: Path) -> Template:
    from ingot.modelfile.template import compile_template

    text = path.read_bytes().decode("utf-8-sig", "surrogateescape")
    return compile_template(text, name=str(path))


def _read_conversation(path: Path) -> _Conversation:
    from ingot.modelfile.template import ChatMessage, InputError

    raw = path.read_bytes().decode("utf-8-sig", "surrogateescape")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    tools: Any = None
    if isinstance(data, dict):
        tools = data.get("tools")
        data = data.get("messages")
    if not isinstance(data, list):
        raise InputError(f"{path}: expected {_MESSAGES_SHAPE}")
    if tools is not None and not isinstance(tools, list):
        raise InputError(f'{path}: "tools" must be a list of tool definitions')
    messages = []
    for index, item in enumerate(data):
        try:
            messages.append(ChatMessage.from_dict(item))
        except InputError as exc:
            raise InputError(f"{path}: message {index + 1}: {exc}") from None
    return _Conversation(tuple(messages), tuple(tools) if tools is not None else None)


def _model_defaults(name: str) -> _ModelDefaults:
    from ingot.modelfile.template import compile_template
    from ingot.registry.gguf_info import inspect_gguf
    from ingot.registry.home import IngotHome
    from ingot.registry.package import load_package
    from ingot.registry.reference import Reference
    from ingot.registry.store import Store

    store = Store.open(IngotHome.from_env())
    package = load_package(store, Reference.parse(name))
    modelfile = package.modelfile
    template = None
    gguf_chat_template = None
    if modelfile.template is not None:
        template = compile_template(modelfile.template, name=f"{name} TEMPLATE")
    else:
        gguf_chat_template = inspect_gguf(package.weights).chat_template
    return _ModelDefaults(template, gguf_chat_template, modelfile.system, modelfile.messages,
                          package.weights)


def _special_tokens(path: Path) -> tuple[str, str]:
    """The text of the BOS and EOS tokens, which Jinja chat templates print."""
    import gguf

    reader = gguf.GGUFReader(path)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    texts: list[str] = []
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        text = ""
        field = reader.fields.get(key)
        if tokens is not None and field is not None:
            token_id = int(field.contents())
            if 0 <= token_id < len(tokens.data):
                value = tokens.contents(token_id)
                text = value if isinstance(value, str) else ""
        texts.append(text)
    return texts[0], texts[1]
