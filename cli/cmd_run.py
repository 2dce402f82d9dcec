"""`ingot run NAME [PROMPT]`: answer one prompt, or chat with a model in an interactive session."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ingot.cli.output import user_errors
from ingot.cli.transfer_progress import transfer_display
from ingot.registry.digest import Progress
from ingot.registry.reference import Reference

if TYPE_CHECKING:
    from ingot.cli.client import Client

__all__ = ["ensure_local", "register"]

DESCRIPTION = """\
Run NAME through the ingot daemon.

With a PROMPT, or with text piped on stdin (appended to PROMPT), print one
answer and exit. Otherwise start an interactive chat: type a message, or use
\"\"\" to start and end one of several lines; /? lists the commands (/set,
/show, /clear, /save, /load, /bye). Ctrl-C stops the reply being written,
Ctrl-D leaves.

A NAME with a registry host (host/namespace/name:tag) that is not in the
local store is pulled first. A daemon must be running: start one with
'ingot serve' (INGOT_HOST points the CLI at one elsewhere).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="chat with a model, or answer one prompt",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="the model, e.g. llama3 or host/ns/name:tag")
    parser.add_argument("prompt", nargs="*", metavar="PROMPT", help="answer this and exit")
    parser.add_argument("--verbose", action="store_true", help="print timings and tokens/s after each reply")
    parser.add_argument("--format", default="", metavar="FORMAT", help="'json', or a JSON schema the reply follows")
    parser.add_argument("--keep-alive", metavar="DURATION", help="how long the model stays loaded afterwards (5m)")
    parser.add_argument("--insecure", action="store_true", help="pull over plain HTTP / without TLS verification")
    parser.set_defaults(handler=run)


def _pull(client: Client, name: str, *, insecure: bool) -> None:
    import grpc

    from ingot.cli.client import rpc_error
    from ingot.proto.ingot.v1 import models_pb2

    sys.stderr.write(f"pulling {name}\n")
    with transfer_display("bars", title=f"pulling {name}") as report:
        try:
            for event in client.models.Pull(models_pb2.PullRequest(model=name, insecure=insecure)):
                if event.status != "success":
                    report(Progress(event.status, event.digest or None, event.total, event.completed))
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None


def ensure_local(client: Client, name: str, *, insecure: bool = False) -> None:
    """Make sure the daemon's store has `name`, pulling it when it names a registry host."""
    import grpc

    from ingot.cli.client import rpc_error
    from ingot.proto.ingot.v1 import models_pb2

    try:
        client.models.Show(models_pb2.ShowRequest(model=name), timeout=30)
        return
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise rpc_error(exc) from None
        missing = rpc_error(exc)
    try:
        reference = Reference.parse(name)
    except ValueError:
        raise missing from None
    if reference.is_local:
        raise missing
    _pull(client, name, insecure=insecure)


@user_errors("ingot.cli.client:ClientError", "ingot.modelfile:ParameterError")
def run(args: argparse.Namespace) -> int:
    # The client and the chat session load gRPC, the Modelfile parser and llama.cpp's
    # option tables: import them only when the command runs, not for `ingot --help`.
    from ingot.cli.client import ClientError, connect
    from ingot.cli.repl import ChatSession, Repl

    prompt = " ".join(args.prompt)
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped.strip():
            prompt = f"{prompt}\n\n{piped}" if prompt else piped
    with connect() as client:
        client.check()
        ensure_local(client, args.name, insecure=args.insecure)
        session = ChatSession(
            client, model=args.name, format=args.format, keep_alive=args.keep_alive, verbose=args.verbose
        )
        if prompt.strip():
            return 0 if session.reply(prompt) is not None else 130
        if not sys.stdin.isatty():
            raise ClientError("nothing to answer: give a PROMPT or pipe text in, or run in a terminal to chat")
        session.preload()
        return Repl(session).run()
