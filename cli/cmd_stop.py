"""`ingot stop NAME`: unload a model from the daemon (once its requests in flight finish)."""

from __future__ import annotations

import argparse

from ingot.cli.output import user_errors

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stop",
        help="unload a running model",
        description="Unload NAME from the daemon: at once when idle, otherwise as soon as its requests "
        "in flight finish. The next request for it loads it again.",
    )
    parser.add_argument("name", metavar="NAME", help="the model, as 'ingot ps' shows it")
    parser.set_defaults(handler=run)


@user_errors("ingot.cli.client:ClientError")
def run(args: argparse.Namespace) -> int:
    # gRPC and the generated messages load only when the command runs, not for `ingot --help`.
    import grpc

    from ingot.cli.client import connect, rpc_error
    from ingot.proto.ingot.v1 import runtime_pb2

    with connect() as client:
        client.check()
        try:
            client.runtime.Unload(runtime_pb2.UnloadRequest(model=args.name), timeout=60)
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None
    return 0
