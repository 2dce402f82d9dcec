"""`ingot batch INPUT.jsonl`: run a file of requests through the daemon, resumably, as batch work."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingot.cli.output import print_json, user_errors

if TYPE_CHECKING:
    from ingot.cli.client import Client
    from ingot.daemon.batch.lines import ParsedInput
    from ingot.daemon.batch.runner import BatchProgress

__all__ = ["register"]

DESCRIPTION = """\
Run every request of INPUT through the ingot daemon and write the answers.

INPUT is the OpenAI Batch API's JSONL: one {"custom_id", "method": "POST",
"url", "body"} a line, url /v1/chat/completions, /v1/completions or
/v1/embeddings. With --model, a line may also be a plain JSON string or an
object with "prompt", "messages" or "input" (sent to --endpoint, custom_id
line-N unless it gives one).

Answers go to OUTPUT (default INPUT.output.jsonl), failures and bad input
lines (with their line numbers) to ERRORS (default INPUT.errors.jsonl), in the
Batch API's output format. Each result is written and synced as it finishes:
rerun the same command after a crash, a kill or Ctrl-C and it skips every
request already answered. The requests run at batch priority: interactive
users of the same daemon go first.
"""

_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="run a JSONL file of requests (OpenAI Batch API format), resumably",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: ingot batch tickets.jsonl --model llama3 -c 8 --json",
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="the requests, one JSON line each")
    parser.add_argument("-o", "--output", type=Path, metavar="OUTPUT", help="answers (default INPUT.output.jsonl)")
    parser.add_argument("--errors", type=Path, metavar="ERRORS", help="failures and bad lines (default INPUT.errors.jsonl)")
    parser.add_argument("-m", "--model", help="the model for plain lines, and for bodies that name none")
    parser.add_argument("--endpoint", choices=_ENDPOINTS, default=_ENDPOINTS[0],
                        help="where plain lines go (default %(default)s)")
    parser.add_argument("-c", "--concurrency", type=int, metavar="N",
                        help="requests in flight (default: the slots of the models used)")
    parser.add_argument("--order", choices=("input", "completion"), default="input",
                        help="order of the finished files (default input; while running, lines are in completion order)")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first bad line or failed request")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class _Paths:
    input: Path
    output: Path
    errors: Path


def _paths(args: argparse.Namespace) -> _Paths:
    stem = args.input.name.removesuffix(".jsonl")
    output = args.output or args.input.with_name(f"{stem}.output.jsonl")
    errors = args.errors or args.input.with_name(f"{stem}.errors.jsonl")
    if len({args.input.resolve(), output.resolve(), errors.resolve()}) < 3:
        from ingot.daemon.batch.errors import BatchError

        raise BatchError("INPUT, OUTPUT and ERRORS must be three different files")
    return _Paths(args.input, output, errors)


def _default_concurrency(client: Client, parsed: ParsedInput) -> int:
    """The slots of every model the file uses (loading them now, so the first requests do not wait)."""
    import grpc

    from ingot.proto.ingot.v1 import runtime_pb2

    models = {str(r.body.get("model", "")) for r in parsed.requests} - {""}
    slots = 0
    for model in sorted(models):
        try:
            loaded = client.runtime.Load(runtime_pb2.LoadRequest(model=model), timeout=600)
        except grpc.RpcError:
            continue  # its requests fail one by one, each with the daemon's reason
        slots += max(loaded.model.parallel, 1)
    return max(slots, 1)


def _summary(progress: BatchProgress, paths: _Paths, concurrency: int) -> dict[str, Any]:
    tokens = progress.completion_tokens or progress.prompt_tokens
    return {
        "input": str(paths.input),
        "output": str(paths.output),
        "errors": str(paths.errors),
        "total": progress.total,
        "done": progress.done,
        "succeeded": progress.succeeded,
        "failed": progress.failed,
        "bad_lines": progress.bad_lines,
        "skipped": progress.skipped,
        "prompt_tokens": progress.prompt_tokens,
        "completion_tokens": progress.completion_tokens,
        "elapsed_s": round(progress.elapsed_s, 3),
        "tokens_per_s": round(tokens / progress.elapsed_s, 1) if progress.elapsed_s > 0 else 0.0,
        "concurrency": concurrency,
        "stopped": progress.stopped or None,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    stopped = summary["stopped"]
    head = f"batch stopped ({stopped})" if stopped else "batch done"
    print(
        f"{head}: {summary['done']}/{summary['total']} finished, {summary['succeeded']} succeeded, "
        f"{summary['failed']} failed ({summary['bad_lines']} bad lines), {summary['skipped']} already done"
    )
    print(
        f"{summary['prompt_tokens']} prompt + {summary['completion_tokens']} completion tokens in "
        f"{summary['elapsed_s']:.1f} s ({summary['tokens_per_s']} tok/s, concurrency {summary['concurrency']})"
    )
    print(f"answers: {summary['output']}")
    if summary["failed"]:
        print(f"failures: {summary['errors']}")
    if stopped:
        print("rerun the same command to do the rest")


@user_errors("ingot.cli.client:ClientError", "ingot.daemon.batch.errors:BatchError")
def run(args: argparse.Namespace) -> int:
    from ingot.cli.batch_progress import BatchBar
    from ingot.cli.client import connect
    from ingot.daemon.batch.errors import BatchError
    from ingot.daemon.batch.execute import check_body
    from ingot.daemon.batch.grpc_calls import GrpcCalls
    from ingot.daemon.batch.lines import parse_input
    from ingot.daemon.batch.results import ResultFile
    from ingot.daemon.batch.runner import BatchRun

    if args.concurrency is not None and args.concurrency < 1:
        raise BatchError(f"--concurrency must be at least 1, got {args.concurrency}")
    paths = _paths(args)
    with open(paths.input, "rb") as handle:
        parsed = parse_input(handle, filename=str(paths.input), check=check_body, model=args.model,
                             endpoint=args.endpoint)
    with connect() as client:
        client.check()
        concurrency = args.concurrency or _default_concurrency(client, parsed)
        bar = BatchBar(enabled=False if args.no_progress else None)
        with ResultFile.open(paths.output) as output, ResultFile.open(paths.errors) as errors:
            batch = BatchRun(parsed, GrpcCalls(client.inference), output=output, errors=errors,
                             concurrency=concurrency, fail_fast=args.fail_fast, on_progress=bar)
            try:
                progress = batch.run()
            except KeyboardInterrupt:
                bar.close()
                print("interrupted: what finished is saved; rerun the same command to do the rest", file=sys.stderr)
                return 130
            finally:
                bar.close()
            if not progress.stopped:
                batch.finish(args.order)
    summary = _summary(progress, paths, concurrency)
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0 if progress.failed == 0 and not progress.stopped else 1
